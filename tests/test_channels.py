"""The two channels of the wellbeing gap (issue 11, item 6): scenarios/sweep_channels.yaml.

The value of a watched item is V = v_r·r + v_q·q − v_h·e² − c_τ·(minutes watched)
(docs/model.md §3). An engagement optimizer can lower wellbeing through the extremeness
penalty v_h and through the time cost c_τ; the shipped sweep switches each off in turn. These
tests check what holds by construction — the formula, the grid, the pairing the analysis relies
on, and that every logged watch obeys its grid point's formula — on a tiny version of the
sweep. They assert nothing statistical: the measured gaps are in the README.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from recsim.analysis import load_sweep, sweep_table
from recsim.config import CatalogConfig, ValueConfig, load_scenario
from recsim.sweep import grid_points, run_sweep
from recsim.users.formulas import value

SWEEP = "scenarios/sweep_channels.yaml"
CT, VH = "behaviour.value.c_tau", "behaviour.value.v_h"
GRID = [(0.05, 4.0), (0.05, 0.0), (0.0, 4.0), (0.0, 0.0)]  # (c_tau, v_h), in grid order
POLICIES = ["chronological", "engagement_oracle"]


def test_without_either_channel_value_ignores_extremeness_and_watch_time():
    rng = np.random.default_rng(0)
    n = 1000
    r, q = rng.uniform(-1, 1, n), rng.uniform(0, 1, n)
    e1, e2 = rng.uniform(0, 1, n), rng.uniform(0, 1, n)
    t1, t2 = rng.uniform(0, 1800, n), rng.uniform(0, 1800, n)

    neither = ValueConfig(c_tau=0.0, v_h=0.0)
    base = neither.v_r * r + neither.v_q * q
    np.testing.assert_array_equal(value(r, q, e1, t1, neither), base)
    np.testing.assert_array_equal(value(r, q, e2, t2, neither), base)

    # each channel alone: value depends on its own variable only, with the documented slope
    time_only = ValueConfig(c_tau=0.05, v_h=0.0)
    np.testing.assert_array_equal(value(r, q, e1, t1, time_only), value(r, q, e2, t1, time_only))
    np.testing.assert_allclose(value(r, q, e1, t1, time_only) - value(r, q, e1, t2, time_only),
                               0.05 * (t2 - t1) / 60.0, rtol=0, atol=1e-12)
    extremeness_only = ValueConfig(c_tau=0.0, v_h=4.0)
    np.testing.assert_array_equal(value(r, q, e1, t1, extremeness_only),
                                  value(r, q, e1, t2, extremeness_only))
    np.testing.assert_allclose(value(r, q, e1, t1, extremeness_only) - value(r, q, e2, t1, extremeness_only),
                               4.0 * (e2**2 - e1**2), rtol=0, atol=1e-12)


def test_the_shipped_sweep_validates_and_expands_to_the_four_channel_settings():
    sc = load_scenario(SWEEP)
    assert [p.name for p in sc.policies] == POLICIES
    points = grid_points(sc, SWEEP)
    assert [(p.values[CT], p.values[VH]) for p in points] == GRID
    default = ValueConfig()
    assert (default.c_tau, default.v_h) == GRID[0]  # point 0 is the model's defaults
    for p in points:
        v = p.scenario.behaviour.value
        assert (v.c_tau, v.v_h) == (p.values[CT], p.values[VH])
        assert (v.v_r, v.v_q) == (default.v_r, default.v_q)  # only the two channels move
        assert p.scenario.seed == sc.seed  # every point meets the same worlds


def _paired_gaps(grid: pd.DataFrame, results: pd.DataFrame, metric: str) -> pd.DataFrame:
    """Per grid point: engagement_oracle − chronological, paired by replication — mean, the
    95% t-interval half-width over replications, and the number of replications."""
    res = results[results["metric"] == metric]
    rows = []
    for point, g in res.groupby("point"):
        v = g.pivot(index="replication", columns="policy", values="value")
        d = (v["engagement_oracle"] - v["chronological"]).to_numpy()
        half = stats.t.ppf(0.975, len(d) - 1) * d.std(ddof=1) / np.sqrt(len(d))
        rows.append({"point": point, "mean": d.mean(), "half_width": half, "n": len(d)})
    return pd.DataFrame(rows).merge(grid, on="point")


@pytest.fixture(scope="module")
def tiny_sweep(tmp_path_factory):
    sc = load_scenario(SWEEP, [
        "population.n_users=20", "horizon=2d", "warmup=1d", "replications=2",
        "catalog.n_items=1000",
    ])
    path = run_sweep(sc, tmp_path_factory.mktemp("channels") / "sweep", workers=1)
    return sc, path


def test_tiny_sweep_gives_a_paired_gap_at_every_point(tiny_sweep):
    sc, path = tiny_sweep
    grid, results = load_sweep(path)
    assert list(zip(grid[CT], grid[VH])) == GRID
    for metric in ("watch_minutes_per_user_day", "final_wellbeing", "appetite_change",
                   "consumed_extremeness"):
        gaps = _paired_gaps(grid, results, metric)
        assert len(gaps) == len(GRID) and (gaps["n"] == sc.replications).all()
        assert np.isfinite(gaps[["mean", "half_width"]].to_numpy()).all(), gaps
        table = sweep_table(grid, results, metric, x=CT, y=VH, policy="engagement_oracle",
                            reference="chronological")
        assert table.shape == (2, 2)
        for _, row in gaps.iterrows():  # the heat-map cell is the same paired mean
            assert table.loc[row[VH], row[CT]] == pytest.approx(row["mean"], abs=1e-12)


def test_tiny_sweep_pairs_the_same_users_at_every_point(tiny_sweep):
    """The warm-up runs under random with common random numbers, so within a point and a
    replication both policies start the horizon with the very same hidden state: the paired
    difference compares the same users."""
    _, path = tiny_sweep
    for point in range(len(GRID)):
        users = pd.read_parquet(path / "points" / f"point={point}" / "users")
        start = users[users["stage"] == "initial"]
        for _, g in start.groupby("replication", observed=True):
            by = {p: d.sort_values("user_id") for p, d in g.groupby("policy", observed=True)}
            assert sorted(by) == POLICIES
            for column in ("appetite", "wellbeing", "satisfaction", "habit"):
                np.testing.assert_array_equal(by["chronological"][column].to_numpy(),
                                              by["engagement_oracle"][column].to_numpy())


def test_tiny_sweep_logs_values_that_obey_each_points_formula(tiny_sweep):
    """Adding back a point's own penalties to a logged watch value leaves v_r·r + v_q·q,
    which lies in [−v_r + v_q·q_min, v_r + v_q·q_max] (|r| ≤ 1, q clipped to its range)."""
    _, path = tiny_sweep
    v, q = ValueConfig(), CatalogConfig().quality
    low, high = -v.v_r + v.v_q * q.min, v.v_r + v.v_q * q.max
    for point, (c_tau, v_h) in enumerate(GRID):
        ev = pd.read_parquet(path / "points" / f"point={point}" / "events",
                             columns=["event", "watch_time", "true_value", "true_extremeness"])
        w = ev[ev["event"] == "watch"]
        assert len(w) > 0
        rest = w["true_value"] + v_h * w["true_extremeness"] ** 2 + c_tau * w["watch_time"] / 60.0
        assert rest.between(low - 1e-9, high + 1e-9).all(), (point, rest.min(), rest.max())
