"""Experiments at scale: paired intervals, common random numbers, executors, sweeps, resume."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from pydantic import BaseModel, ConfigDict

from recsim.config import scenario_from_dict
from recsim.experiment import run_experiment
from recsim.policies.base import Policy
from recsim.stats import FIELLER, PAIRED_T, compare, paired_t_ci, ratio_ci

# ----------------------------------------------------------------------------- paired intervals


def assert_same_outputs(a, b) -> None:
    """:func:`support.assert_same_outputs`, imported on use: this module is also imported as a
    policy's (in subprocesses, where the tests folder is not on the path)."""
    from support import assert_same_outputs as check

    check(a, b)


def test_paired_t_interval_covers_the_true_difference_at_the_nominal_rate():
    """1000 synthetic experiments of n=50 paired replications with a known mean difference
    (0.5) and skewed noise: the 95% paired t interval (what comparison.csv shows; it replaced
    a BCa bootstrap that covered 0.930 here and far less at the 2–5 replications users run)
    must cover it in 95% of them. Tolerance: 3 binomial standard errors,
    3·sqrt(0.95·0.05/1000) = 0.021, plus 0.020 for the t interval's known under-coverage with
    skewed differences: the shared noise cancels, leaving exponential differences (skewness
    γ = 2), and the Edgeworth expansion of the studentized mean puts the two-sided coverage
    error at −z·φ(z)·(z⁴ + 2z² − 3)·γ²/(9n) ≈ −0.25·γ²/n = −0.020 (Hall 1992, §3.5).
    Measured: 0.929. Every interval at 3–30 replications is measured in tests/test_stats.py."""
    n_experiments, n, truth = 1000, 50, 0.5
    hits = 0
    for i in range(n_experiments):
        rng = np.random.default_rng(1000 + i)
        base = rng.normal(0.0, 1.0, n)  # shared by both arms: the common random numbers
        a = base + truth + rng.exponential(0.3, n) - 0.3
        _, low, high = paired_t_ci(a, base)
        hits += low <= truth <= high
    coverage = hits / n_experiments
    tolerance = 3 * math.sqrt(0.95 * 0.05 / n_experiments) + 0.25 * 2.0**2 / n
    assert abs(coverage - 0.95) <= tolerance, coverage


def test_paired_interval_needs_two_replications_and_handles_constants():
    assert all(math.isnan(float(x)) for x in paired_t_ci(np.ones(1), np.zeros(1))[1:])
    assert tuple(map(float, paired_t_ci(np.ones(5), np.zeros(5)))) == (1.0, 1.0, 1.0)
    assert tuple(map(float, ratio_ci(2 * np.ones(5), np.ones(5)))) == (1.0, 1.0, 1.0)


def _synthetic_replications():
    rows = []
    rng = np.random.default_rng(3)
    for rep in range(12):
        world = rng.normal(0, 10)
        for policy, shift, wb in (("chronological", 0.0, 0.66), ("engagement", 80.0, 0.55)):
            rows.append({
                "policy": policy, "oracle": False, "replication": rep,
                "watch_minutes_per_user_day": 40 + shift + world + rng.normal(0, 1),
                "final_wellbeing": wb + world / 100 + rng.normal(0, 0.005),
                "consumed_extremeness": 0.24 + shift / 1000 + rng.normal(0, 0.002),
            })
    return pd.DataFrame(rows)


def test_compare_reports_paired_differences_and_the_goodhart_gap():
    reps = _synthetic_replications()
    table = compare(reps, "chronological", metrics=("watch_minutes_per_user_day", "final_wellbeing"))
    assert set(table["policy"]) == {"engagement"}
    rows = table.set_index("metric")
    watch = rows.loc["watch_minutes_per_user_day"]
    pol = reps[reps.policy == "engagement"]["watch_minutes_per_user_day"].to_numpy()
    ref = reps[reps.policy == "chronological"]["watch_minutes_per_user_day"].to_numpy()
    assert watch["difference"] == pytest.approx((pol - ref).mean())
    assert watch["ci_low"] < watch["difference"] < watch["ci_high"]
    assert watch["interval"] == PAIRED_T
    assert rows.loc["goodhart_watch_gain", "difference"] == pytest.approx(pol.mean() / ref.mean() - 1)
    gain = rows.loc["goodhart_watch_gain"]
    assert gain["interval"] == FIELLER and gain["ci_low"] < gain["difference"] < gain["ci_high"]
    assert rows.loc["goodhart_wellbeing_change", "difference"] < 0
    assert rows.loc["goodhart_extremeness_change", "difference"] > 0
    # the shared world effect cancels in paired differences
    assert watch["crn_variance_ratio"] < 0.05
    with pytest.raises(ValueError, match="not in this run"):
        compare(reps, "nope")


# ----------------------------------------------------------------------------- tiny runs
TINY = {
    "name": "exp",
    "seed": 5,
    "horizon": "1d",
    "warmup": "12h",
    "population": {"n_users": 15},
    "catalog": {"n_items": 300},
    "recommender": {"slate_size": 5, "n_candidates": 30, "retrain_interval": "12h"},
    "policies": ["chronological", "random", "popularity"],
    "outputs": {"log_impressions": True},
}


def test_common_random_numbers_shrink_the_variance_of_a_policy_difference(tmp_path):
    """Eight replications of two neutral feeds (random vs chronological): the variance of the
    paired per-replication difference in watch time is far below var(random) +
    var(chronological), what independent seeds would give. Measured ratio: 0.10."""
    sc = scenario_from_dict({**TINY, "replications": 8, "policies": ["chronological", "random"],
                             "population": {"n_users": 30}, "horizon": "2d"})
    path = run_experiment(sc, tmp_path / "run", workers=2)
    table = pd.read_csv(path / "comparison.csv").set_index("metric")
    ratio = table.loc["watch_minutes_per_user_day", "crn_variance_ratio"]
    assert ratio < 0.5, ratio  # measured 0.10; 1.0 would mean no gain at all


def test_identical_outputs_for_one_worker_two_workers_and_dask(tmp_path):
    sc = scenario_from_dict({**TINY, "replications": 2})
    one = run_experiment(sc, tmp_path / "one", workers=1)
    two = run_experiment(sc, tmp_path / "two", workers=2)
    dask = run_experiment(scenario_from_dict({**TINY, "replications": 2, "executor": "dask"}), tmp_path / "dask", workers=2)
    assert_same_outputs(one, two)
    assert_same_outputs(one, dask)
    assert "Executor" in json.loads((dask / "manifest.json").read_text())["executor"]


# ----------------------------------------------------------------------------- sweeps and resume
class Trap(Policy):
    """Serves the newest candidates; raises when the file named by the environment variable
    ``trap`` exists and ``level`` is 2 — a task that fails part-way through a sweep, for a
    reason outside the scenario (a file the scenario named itself would be one of its inputs:
    the manifest records it, and --resume refuses once it changed)."""

    class Params(BaseModel):
        model_config = ConfigDict(extra="forbid")
        level: int = 1
        trap: str = ""

    def recommend(self, request, rng):
        armed = self.params.trap and os.environ.get(self.params.trap)
        if self.params.level == 2 and armed and Path(armed).exists():
            raise RuntimeError("trap sprung")
        order = np.argsort(-request.features.upload_time)
        return request.candidates[order[: request.slate_size]]


def _sweep_scenario(tmp_path: Path) -> Path:
    data = {
        **TINY,
        "replications": 2,
        "policies": ["random", {"name": "trap", "type": "tests.test_experiments:Trap",
                                "params": {"trap": "RECSIM_TEST_TRAP"}}],
        "sweep": {"policies.1.params.level": [1, 2], "behaviour.appetite.eta_up": [0.01, 0.03]},
    }
    path = tmp_path / "sweep.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def _sweep(scenario: Path, out: Path, *extra: str) -> subprocess.CompletedProcess:
    """``recsim sweep``, with the Trap policy's file next to the scenario."""
    env = {**os.environ, "RECSIM_TEST_TRAP": str(scenario.parent / "trap")}
    return subprocess.run(
        [sys.executable, "-m", "recsim", "sweep", str(scenario), "--out", str(out), "-q", "--workers", "1", *extra],
        capture_output=True, text=True, timeout=600, cwd=Path.cwd(), env=env,
    )


def test_sweep_writes_tidy_tables_over_the_grid(tmp_path):
    scenario = _sweep_scenario(tmp_path)
    proc = _sweep(scenario, tmp_path / "sweep")
    assert proc.returncode == 0, proc.stderr
    out = tmp_path / "sweep"
    grid = pd.read_csv(out / "grid.csv")
    assert len(grid) == 4 and list(grid.columns) == ["point", "policies.1.params.level", "behaviour.appetite.eta_up"]
    results = pd.read_csv(out / "results.csv")
    # one row per grid point × policy × replication × metric
    assert not results.duplicated(["point", "policy", "replication", "metric"]).any()
    assert len(results) == 4 * 2 * 2 * results["metric"].nunique()
    assert {"policies.1.params.level", "behaviour.appetite.eta_up", "value"} <= set(results.columns)
    summary = pd.read_csv(out / "summary.csv")
    assert {"point", "policy", "metric", "mean", "ci_low", "ci_high"} <= set(summary.columns)
    # the same seeds at every grid point: `random` meets the same users, so when the swept
    # parameter does not touch it (the trap's level), its results are identical
    watch = results[(results.metric == "watch_minutes_per_user_day") & (results.policy == "random")]
    by_point = watch.pivot(index="replication", columns="point", values="value")
    pd.testing.assert_series_equal(by_point[0], by_point[2], check_names=False)
    assert not by_point[0].equals(by_point[1])  # eta_up changes the users' behaviour
    for point in range(4):
        assert (out / "points" / f"point={point}" / "summary.csv").exists()


def test_an_interrupted_sweep_resumes_to_the_same_results(tmp_path):
    scenario = _sweep_scenario(tmp_path)
    reference = tmp_path / "uninterrupted"
    assert _sweep(scenario, reference).returncode == 0

    (tmp_path / "trap").write_text("armed")
    out = tmp_path / "resumed"
    failed = _sweep(scenario, out)
    assert failed.returncode != 0 and "trap sprung" in failed.stderr
    partial = tmp_path / ".resumed.partial"
    assert not out.exists() and partial.exists()
    finished_first = sorted(p.name for p in partial.rglob("_tasks/*.json"))
    assert 0 < len(finished_first) < 16
    stamps = {p: p.stat().st_mtime_ns for p in partial.rglob("_tasks/*.json")}

    (tmp_path / "trap").unlink()
    resumed = _sweep(scenario, out, "--resume")
    assert resumed.returncode == 0, resumed.stderr
    # the tasks that had finished were not run again
    for path, stamp in stamps.items():
        assert (out / path.relative_to(partial)).stat().st_mtime_ns == stamp
    assert json.loads((out / "manifest.json").read_text())["resumed"] is True
    for name in ("results.csv", "grid.csv"):
        pd.testing.assert_frame_equal(pd.read_csv(out / name), pd.read_csv(reference / name))
    for point in range(4):
        assert_same_outputs(out / "points" / f"point={point}", reference / "points" / f"point={point}")


def test_resume_refuses_a_different_scenario(tmp_path):
    scenario = _sweep_scenario(tmp_path)
    (tmp_path / "trap").write_text("armed")
    assert _sweep(scenario, tmp_path / "x").returncode != 0
    data = yaml.safe_load(scenario.read_text())
    data["seed"] = 99
    scenario.write_text(yaml.safe_dump(data, sort_keys=False))
    proc = _sweep(scenario, tmp_path / "x", "--resume")
    assert proc.returncode == 2 and "different scenario" in proc.stderr and "Traceback" not in proc.stderr


def test_bad_sweep_values_name_the_path(tmp_path):
    data = {**TINY, "sweep": {"population.n_users": [10, -1]}}
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(data))
    proc = _sweep(path, tmp_path / "out")
    assert proc.returncode == 2
    assert "population.n_users" in proc.stderr and "Traceback" not in proc.stderr


def test_sweep_appetite_scenario_expands_to_its_grid():
    from recsim.config import load_scenario
    from recsim.sweep import grid_points

    points = grid_points(load_scenario("scenarios/sweep_appetite.yaml"))
    assert len(points) == 8
    assert {p.scenario.behaviour.appetite.eta_up for p in points} == {0.0, 0.005, 0.01, 0.02}
    assert {p.scenario.policies[1].params["penalty"] for p in points} == {0, 20}
