"""The coverage of every interval recsim reports, measured by simulation (issue 11), and the
wiring that makes each table show the interval measured here.

Intervals (``recsim/stats.py``), and where they are shown:

- ``summary_t`` — Student t over one policy's replications (:func:`stats.mean_ci`):
  ``summary.csv``, ``analysis.tradeoff``, every band the plots draw, a sweep's summary;
- ``paired_t`` — paired t over replications (:func:`stats.paired_t_ci`): every difference of
  ``comparison.csv`` (Goodhart wellbeing and extremeness changes included),
  ``analysis.paired_differences``, ``analysis.goodhart_gap``;
- ``fieller`` — Fieller's interval of the ratio of paired means (:func:`stats.ratio_ci`):
  ``goodhart_watch_gain`` (relative watch-time gain) and ``paired_differences(relative=True)``;
- ``clustered`` — per-user paired differences, replication-clustered CR2 standard error, t
  with G − 1 degrees of freedom (:func:`stats.clustered_mean_ci`):
  ``analysis.paired_user_differences``.

Two alternatives are measured for the record and shipped nowhere: ``delta`` (delta-method
interval of the relative gain with t quantiles) and ``user_iid`` (per-user differences treated
as independent). The BCa bootstrap recsim used to ship is measured by
``python tests/test_stats.py --bootstrap`` (not a test: it is slow, and it fails).

Synthetic experiments, calibrated to 20 replications of ``scenarios/rabbit_hole.yaml`` (7 days,
150 users; engagement against chronological, watch minutes per user-day). Replication r has a
world (population, catalog, draws) shared by both policies — common random numbers — and its
own noise per policy, each multiplicative:

    reference_r = 38 · (1 + 0.04·W_r + 0.062·B_r),   policy_r = 132 · (1 + 0.04·W_r + 0.009·A_r)

with W, A, B independent standardized noises (mean 0, sd 1): normal, or gamma with shape 4
(skewness 1.0). This reproduces the run's means, coefficients of variation (0.074, 0.041), sd
of the paired difference (4.6) and correlation between policies (0.5); the skewed version has
skewness ≈ 1 for a policy's values, 0.4 for the paired difference and −1 for Fieller's pivot
``policy − θ·reference``, at or above the largest of those measured in the run (|γ| ≤ 1.0 for
every metric, with a standard error of 0.5 at 20 replications). Truths: the means 38 and 132,
the difference 94, the relative gain 132/38 − 1.

Per user (user_iid, clustered): G replications of 50 users; user i of replication g watches
``μ · w_g · u_i · (1 + 0.3·e)`` under each policy, with ``u_i`` gamma (shape 3, mean 1: the
run's per-user CV 0.57, skewness 1.2), ``w_g = 1 + 0.04·W_g`` shared, the policy's effect
varying between replications (``μ_policy·(1 + 0.06·T_g)``: what a learned policy learns
depends on its world), ``e`` the user's own noise under that policy, and each pair missing
with probability 0.1 (users with nothing watched), so cluster sizes differ. This gives the
design effect of 1.7 the run shows for per-user watch-minute differences. Truth: μ_policy −
μ_reference.

Tolerance: each coverage is the share of ``N_EXPERIMENTS`` = 10 000 experiments whose interval
holds the truth; its binomial standard error at 0.95 is sqrt(0.95·0.05/10 000) = 0.0022, and
we allow three: ``BINOMIAL`` = 0.0065. For normal noise every shipped interval is exact (t,
paired t and Fieller by theory; clustered CR2 t(G−1) exactly so for normal cluster means of
equal size, and the means of 45 gamma-distributed users of unequal counts come close), so the
band is ±BINOMIAL with no allowance. For skewed noise t-based intervals under-cover: the
Edgeworth expansion of the studentized mean puts the two-sided coverage error at about
−0.25·γ²/n for large n, γ the skewness of what is averaged (Hall, *The Bootstrap and
Edgeworth Expansion*, 1992, §3.5: 0.008 at γ = 1 and n = 30; ``tests/test_experiments.py``
checks it at γ = 2, n = 50); at n ≤ 10 the expansion does not hold and simulation is the only
guide. ``SKEW_ALLOWANCE`` = 0.015 below nominal, none above, at pivot skewness ≈ 1; the
worst shipped cell measures 0.934 (Fieller at n = 5 and 10), inside it by 0.005.
Everything is seeded: the numbers are the same on every run.
"""

from __future__ import annotations

import functools
import math
import re
import shutil
import sys

import numpy as np
import pandas as pd
import pytest
from scipy import stats as sps

from recsim import stats

N_EXPERIMENTS = 10_000
SIZES = (3, 5, 10, 30)
BINOMIAL = 3 * math.sqrt(0.95 * 0.05 / N_EXPERIMENTS)  # 0.0065
SKEW_ALLOWANCE = 0.015
SHIPPED = ("summary_t", "paired_t", "fieller", "clustered")
NOISES = {"normal": math.inf, "skewed": 4.0}  # gamma shape (inf: normal)

# the rabbit_hole calibration (see the module docstring)
MU_REF, MU_POL = 38.0, 132.0
CV_WORLD, CV_REF, CV_POL = 0.04, 0.062, 0.009
USERS, CV_USER_NOISE, CV_EFFECT, USER_SHAPE, MISSING = 50, 0.3, 0.06, 3.0, 0.1


def _noise(rng, shape: float, size) -> np.ndarray:
    """Standardized noise: mean 0, sd 1, skewness 2/sqrt(shape) (normal if shape is inf)."""
    if math.isinf(shape):
        return rng.standard_normal(size)
    return (rng.gamma(shape, 1.0, size) - shape) / math.sqrt(shape)


def replication_values(rng, n: int, shape: float, experiments: int = N_EXPERIMENTS):
    """``(policy, reference)``: experiments × n per-replication values of watch minutes."""
    world = _noise(rng, shape, (experiments, n))
    ref = MU_REF * (1 + CV_WORLD * world + CV_REF * _noise(rng, shape, (experiments, n)))
    pol = MU_POL * (1 + CV_WORLD * world + CV_POL * _noise(rng, shape, (experiments, n)))
    return pol, ref


def user_differences(rng, g: int, shape: float, experiments: int):
    """Per-user paired differences (policy − reference), experiments × g × USERS, NaN where
    the pair is missing."""
    size = (experiments, g, USERS)
    world = 1 + CV_WORLD * _noise(rng, shape, (experiments, g, 1))
    effect = 1 + CV_EFFECT * _noise(rng, shape, (experiments, g, 1))
    user = rng.gamma(USER_SHAPE, 1.0 / USER_SHAPE, size)
    ref = MU_REF * world * user * (1 + CV_USER_NOISE * _noise(rng, shape, size))
    pol = MU_POL * effect * world * user * (1 + CV_USER_NOISE * _noise(rng, shape, size))
    d = pol - ref
    d[rng.random(size) < MISSING] = np.nan
    return d


def _covers(low, high, truth) -> np.ndarray:
    return (low <= truth) & (truth <= high)  # NaN bounds (no interval) never cover


@functools.cache
def replication_coverage(n: int, noise: str) -> dict[str, float]:
    """Coverage of the replication-level intervals at n replications."""
    rng = np.random.default_rng([11, n, list(NOISES).index(noise)])
    pol, ref = replication_values(rng, n, NOISES[noise])
    out = {}
    _, low, high = stats.t_interval(ref)
    ref_cov = _covers(low, high, MU_REF).mean()
    _, low, high = stats.t_interval(pol)
    out["summary_t"] = (ref_cov + _covers(low, high, MU_POL).mean()) / 2  # both policies
    out["summary_t (reference)"], out["summary_t (policy)"] = ref_cov, _covers(low, high, MU_POL).mean()
    _, low, high = stats.paired_t_ci(pol, ref)
    out["paired_t"] = _covers(low, high, MU_POL - MU_REF).mean()
    gain, low, high = stats.ratio_ci(pol, ref)
    out["fieller"] = _covers(low, high, MU_POL / MU_REF - 1).mean()
    out["fieller unbounded"] = np.isnan(low).mean()
    z = (pol - (gain + 1)[:, None] * ref) / ref.mean(axis=1, keepdims=True)
    half = sps.t.ppf(0.975, n - 1) * z.std(axis=1, ddof=1) / math.sqrt(n)
    out["delta"] = _covers(gain - half, gain + half, MU_POL / MU_REF - 1).mean()
    return {k: float(v) for k, v in out.items()}


@functools.cache
def user_coverage(g: int, noise: str) -> dict[str, float]:
    """Coverage of the per-user intervals with g replications (in chunks: bounded memory)."""
    rng = np.random.default_rng([12, g, list(NOISES).index(noise)])
    truth = MU_POL - MU_REF
    hits = {"clustered": 0, "user_iid": 0}
    chunk = 2_000
    for _ in range(N_EXPERIMENTS // chunk):
        d = user_differences(rng, g, NOISES[noise], chunk)
        ok = ~np.isnan(d)
        sums = np.where(ok, d, 0.0).sum(axis=2)
        counts = ok.sum(axis=2)
        _, low, high, _, _ = stats.clustered_mean_ci(sums, counts)
        hits["clustered"] += int(_covers(low, high, truth).sum())
        flat = d.reshape(chunk, -1)
        n = ok.reshape(chunk, -1).sum(axis=1)
        mean = np.nanmean(flat, axis=1)
        half = sps.t.ppf(0.975, n - 1) * np.nanstd(flat, axis=1, ddof=1) / np.sqrt(n)
        hits["user_iid"] += int(_covers(mean - half, mean + half, truth).sum())
    return {k: v / N_EXPERIMENTS for k, v in hits.items()}


def coverage(interval: str, n: int, noise: str) -> float:
    if interval in ("clustered", "user_iid"):
        return user_coverage(n, noise)[interval]
    return replication_coverage(n, noise)[interval]


# ----------------------------------------------------------------------------- coverage
@pytest.mark.parametrize("n", SIZES)
@pytest.mark.parametrize("interval", SHIPPED)
def test_every_shipped_interval_is_exact_for_normal_replications(interval, n):
    cov = coverage(interval, n, "normal")
    assert abs(cov - 0.95) <= BINOMIAL, (interval, n, cov)


@pytest.mark.parametrize("n", SIZES)
@pytest.mark.parametrize("interval", SHIPPED)
def test_every_shipped_interval_covers_with_skewed_replications(interval, n):
    """Skewness ≈ 1 (the largest the rabbit_hole run shows): at most SKEW_ALLOWANCE under."""
    cov = coverage(interval, n, "skewed")
    assert 0.95 - BINOMIAL - SKEW_ALLOWANCE <= cov <= 0.95 + BINOMIAL, (interval, n, cov)


def test_summary_interval_covers_each_policy_separately():
    for noise in NOISES:
        for n in SIZES:
            cov = replication_coverage(n, noise)
            low = 0.95 - BINOMIAL - (SKEW_ALLOWANCE if noise == "skewed" else 0.0)
            for which in ("summary_t (reference)", "summary_t (policy)"):
                assert low <= cov[which] <= 0.95 + BINOMIAL, (noise, n, which, cov[which])


def test_fieller_is_bounded_at_the_sizes_users_run():
    """Unbounded (NaN) only when the reference mean is not distinguishable from 0: never at
    n ≥ 3 for watch time (CV 7%)."""
    for n in SIZES:
        assert replication_coverage(n, "skewed")["fieller unbounded"] == 0.0


def test_per_user_intervals_that_ignore_replications_under_cover():
    """Users of a replication share its world and what its policies learned: treating them as
    independent gives intervals too narrow (design effect ≈ 1.7, coverage ≈ 0.87) however many
    replications; clustering by replication fixes it."""
    for n in SIZES:
        cov = user_coverage(n, "skewed")
        assert cov["user_iid"] < 0.95 - 0.05, (n, cov)


# ----------------------------------------------------------------------------- the functions
def test_t_interval_matches_scipy_and_needs_two_values():
    x = np.array([3.0, 1.0, 4.0, 1.0, 5.0])
    mean, low, high = stats.mean_ci(x)
    assert (low, high) == pytest.approx(sps.t.interval(0.95, 4, loc=x.mean(), scale=sps.sem(x)))
    assert mean == pytest.approx(2.8)
    assert math.isnan(stats.mean_ci([2.0])[1]) and stats.mean_ci([2.0])[0] == 2.0
    assert all(math.isnan(v) for v in stats.mean_ci([]))
    assert stats.mean_ci([1.0, np.nan, 3.0])[0] == 2.0
    rows = np.stack([x, x + 1])
    m, lo, _ = stats.t_interval(rows)
    assert lo[1] - lo[0] == pytest.approx(1.0) and m.shape == (2,)


def test_paired_t_is_the_t_interval_of_the_differences():
    a, b = np.array([5.0, 7.0, 6.5]), np.array([1.0, 2.5, 2.0])
    assert stats.paired_t_ci(a, b) == pytest.approx(stats.mean_ci(a - b))
    assert tuple(map(float, stats.paired_t_ci(np.ones(5), np.zeros(5)))) == (1.0, 1.0, 1.0)
    assert all(math.isnan(float(v)) for v in stats.paired_t_ci(np.ones(1), np.zeros(1))[1:])


def test_fieller_bounds_are_where_the_paired_t_test_just_rejects():
    rng = np.random.default_rng(5)
    b = 40 + rng.normal(0, 3, 6)
    a = 1.5 * b + rng.normal(0, 2, 6)
    gain, low, high = map(float, stats.ratio_ci(a, b))
    assert gain == pytest.approx(a.mean() / b.mean() - 1)
    for theta in (low + 1, high + 1):
        assert sps.ttest_1samp(a - theta * b, 0.0).pvalue == pytest.approx(0.05, rel=1e-6)
    assert low < gain < high
    # the reference mean indistinguishable from 0: unbounded, reported as NaN
    _, low, high = stats.ratio_ci(np.array([1.0, 2.0]), np.array([-1.0, 1.5]))
    assert math.isnan(low) and math.isnan(high)
    assert tuple(map(float, stats.ratio_ci(2 * np.ones(4), np.ones(4)))) == (1.0, 1.0, 1.0)


def test_clustered_interval_with_equal_clusters_is_the_t_interval_of_cluster_means():
    """So per-user data give no narrower interval than one mean per replication."""
    rng = np.random.default_rng(2)
    d = rng.gamma(2.0, 1.0, (4, 30))
    mean, low, high, se, g = stats.clustered_mean_ci(d.sum(axis=1), np.full(4, 30))
    assert (float(mean), float(low), float(high)) == pytest.approx(stats.mean_ci(d.mean(axis=1)))
    assert int(g) == 4
    # unequal sizes: CR2, Σ r_g² / (1 − n_g/N) / N², and an empty cluster is left out
    counts = np.array([30, 10, 25, 0])
    sums = np.array([d[0].sum(), d[1, :10].sum(), d[2, :25].sum(), 0.0])
    mean, low, high, se, g = stats.clustered_mean_ci(sums, counts)
    big_n = counts.sum()
    pooled = sums.sum() / big_n
    var = sum((s - c * pooled) ** 2 / (1 - c / big_n) for s, c in zip(sums, counts) if c) / big_n**2
    assert float(mean) == pytest.approx(pooled) and float(se) ** 2 == pytest.approx(var)
    assert int(g) == 3
    assert float(high) - float(mean) == pytest.approx(sps.t.ppf(0.975, 2) * math.sqrt(var))


def test_interval_notes():
    assert "no interval" in stats.interval_note(1)
    assert "very wide" in stats.interval_note(2)
    assert stats.interval_note(3) == "" and stats.interval_note(30, 1.0, 2.0) == ""
    assert "unbounded" in stats.interval_note(3, math.nan, math.nan)


def _replications(n: int, seed: int = 4) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    pol, ref = replication_values(rng, n, 4.0, experiments=1)
    rows = []
    for policy, values, wb, ext in (("chronological", ref[0], 0.66, 0.24), ("engagement", pol[0], 0.55, 0.34)):
        for r, v in enumerate(values):
            rows.append({"policy": policy, "oracle": False, "replication": r,
                         "watch_minutes_per_user_day": v,
                         "final_wellbeing": wb + 0.01 * rng.standard_normal(),
                         "consumed_extremeness": ext + 0.005 * rng.standard_normal()})
    return pd.DataFrame(rows)


LEGACY_COLUMNS = ["policy", "oracle", "reference", "metric", "n_replications", "policy_mean",
                  "reference_mean", "difference", "ci_low", "ci_high", "var_paired",
                  "var_independent", "crn_variance_ratio"]


def test_compare_shows_the_measured_intervals_and_names_them():
    reps = _replications(5)
    table = stats.compare(reps, "chronological", metrics=("watch_minutes_per_user_day",))
    assert list(table.columns[: len(LEGACY_COLUMNS)]) == LEGACY_COLUMNS  # notebooks keep working
    assert {"level", "interval", "interval_note"} <= set(table.columns)
    rows = table.set_index("metric")
    pol = reps[reps.policy == "engagement"]["watch_minutes_per_user_day"].to_numpy()
    ref = reps[reps.policy == "chronological"]["watch_minutes_per_user_day"].to_numpy()
    for metric, (est, low, high), name in (
        ("watch_minutes_per_user_day", stats.paired_t_ci(pol, ref), stats.PAIRED_T),
        ("goodhart_watch_gain", stats.ratio_ci(pol, ref), stats.FIELLER),
    ):
        row = rows.loc[metric]
        assert (row["difference"], row["ci_low"], row["ci_high"]) == pytest.approx(
            (float(est), float(low), float(high))
        )
        assert row["interval"] == name and row["level"] == 0.95 and row["interval_note"] == ""
    for metric in ("goodhart_wellbeing_change", "goodhart_extremeness_change"):
        assert rows.loc[metric, "interval"] == stats.PAIRED_T
    # the seed argument is kept for old callers and changes nothing
    pd.testing.assert_frame_equal(table, stats.compare(reps, "chronological", ("watch_minutes_per_user_day",), seed=9))


def test_compare_says_when_replications_are_too_few():
    one = stats.compare(_replications(1), "chronological", metrics=())
    assert one["ci_low"].isna().all() and one["ci_high"].isna().all()
    assert one["interval_note"].str.contains("1 replication: no interval").all()
    two = stats.compare(_replications(2), "chronological", metrics=())
    assert two["interval_note"].str.contains("very wide").all()
    assert two["ci_low"].notna().all()


def test_summarize_uses_the_t_interval():
    reps = _replications(4)
    summary = stats.summarize(reps, ["chronological", "engagement"], metrics=("final_wellbeing",))
    row = summary.set_index("policy").loc["engagement"]
    mean, low, high = stats.mean_ci(reps[reps.policy == "engagement"]["final_wellbeing"])
    assert (row["final_wellbeing"], row["final_wellbeing_ci_low"], row["final_wellbeing_ci_high"]) == (mean, low, high)


# ----------------------------------------------------------------------------- a tiny run
TINY = {
    "name": "stats_tiny",
    "seed": 3,
    "horizon": "1d",
    "warmup": "12h",
    "replications": 3,
    "workers": 1,
    "population": {"n_users": 30},
    "catalog": {"n_items": 300, "upload_rate": "100/d"},
    "recommender": {"slate_size": 5, "n_candidates": 30, "retrain_interval": "12h"},
    "policies": ["chronological", "random", "engagement_oracle"],
    "outputs": {"metrics_interval": "12h", "log_impressions": False},
}


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    from recsim.config import scenario_from_dict
    from recsim.experiment import run_experiment

    return run_experiment(scenario_from_dict(TINY), tmp_path_factory.mktemp("stats") / "run", workers=1)


def _fewer(run_dir, tmp_path, n: int):
    """A copy of the run's small tables keeping its first n replications, without comparison.csv."""
    copy = tmp_path / f"run{n}"
    shutil.copytree(run_dir, copy, ignore=shutil.ignore_patterns("events", "report", "comparison.csv"))
    reps = pd.read_csv(copy / "replications.csv")
    reps[reps["replication"] < n].to_csv(copy / "replications.csv", index=False)
    return copy


def test_paired_differences_and_goodhart_gap_use_the_measured_intervals(run_dir):
    from recsim import analysis

    run = analysis.load_run(run_dir)
    reps = run.replications
    wide = reps.pivot(index="replication", columns="policy", values="watch_minutes_per_user_day")
    a, b = wide["engagement_oracle"].to_numpy(), wide["chronological"].to_numpy()
    diffs = analysis.paired_differences(run, "chronological", ["watch_minutes_per_user_day"])
    row = diffs[diffs.policy == "engagement_oracle"].iloc[0]
    assert (row["mean_difference"], row["ci_low"], row["ci_high"]) == pytest.approx(
        tuple(map(float, stats.paired_t_ci(a, b)))
    )
    assert diffs.attrs["interval"] == "95% " + stats.PAIRED_T
    rel = analysis.paired_differences(run, "chronological", ["watch_minutes_per_user_day"], relative=True)
    row = rel[rel.policy == "engagement_oracle"].iloc[0]
    assert (row["mean_difference"], row["ci_low"], row["ci_high"]) == pytest.approx(
        tuple(map(float, stats.ratio_ci(a, b)))
    )
    assert np.isfinite([row["ci_low"], row["ci_high"]]).all()  # a bounded Fieller interval is compared
    assert row["p_value"] == pytest.approx(sps.ttest_rel(a, b).pvalue)
    assert rel.attrs["interval"] == "95% " + stats.FIELLER
    gap = analysis.goodhart_gap(run, "chronological")
    g = gap[(gap.policy == "engagement_oracle") & (gap.quantity == "goodhart_watch_gain")].iloc[0]
    assert (g["mean"], g["ci_low"], g["ci_high"]) == pytest.approx(
        (row["mean_difference"], row["ci_low"], row["ci_high"])
    )
    assert gap.attrs["interval"]["goodhart_watch_gain"] == "95% " + stats.FIELLER
    assert gap.attrs["interval"]["goodhart_wellbeing_change"] == "95% " + stats.PAIRED_T
    assert gap.attrs["n_replications"] == 3 and gap.attrs["note"] == ""


def test_goodhart_gap_recomputes_an_old_bootstrap_comparison(run_dir, tmp_path):
    from recsim import analysis

    copy = _fewer(run_dir, tmp_path, 3)
    fresh = analysis.goodhart_gap(analysis.load_run(copy))
    old = stats.compare(pd.read_csv(copy / "replications.csv"), "chronological", metrics=())
    old = old.drop(columns=["level", "interval", "interval_note"]).assign(ci_low=-99.0, ci_high=99.0)
    old.to_csv(copy / "comparison.csv", index=False)  # what an older recsim wrote (BCa)
    pd.testing.assert_frame_equal(analysis.goodhart_gap(analysis.load_run(copy)), fresh)


def test_paired_user_differences(run_dir):
    from recsim import analysis

    run = analysis.load_run(run_dir)
    table = analysis.paired_user_differences(run, "chronological", ["watch_minutes", "consumed_extremeness"])
    assert set(table["policy"]) == {"random", "engagement_oracle"}
    assert (table["interval"] == stats.CLUSTERED).all() and (table["n_replications"] == 3).all()
    users = analysis.user_outcomes(run)
    wide = users.pivot_table(index=["replication", "user_id"], columns="policy", values="watch_minutes")
    d = wide["engagement_oracle"] - wide["chronological"]
    row = table[(table.policy == "engagement_oracle") & (table.quantity == "watch_minutes")].iloc[0]
    # every user present: exactly the paired t interval of the per-replication means
    means = d.groupby(level="replication").mean().to_numpy()
    assert (row["mean_difference"], row["ci_low"], row["ci_high"]) == pytest.approx(stats.mean_ci(means))
    assert row["n_users"] == 3 * TINY["population"]["n_users"]
    assert row["design_effect"] == pytest.approx(
        ((row["ci_high"] - row["mean_difference"]) / sps.t.ppf(0.975, 2)) ** 2 / (d.var() / len(d))
    )
    sub = analysis.paired_user_differences(run, "chronological", ["watch_minutes"], where=lambda u: u["vulnerable"])
    n_vulnerable = int(users[users.policy == "chronological"]["vulnerable"].sum())
    assert (sub["n_users"] == n_vulnerable).all()
    with pytest.raises(ValueError, match="unknown reference"):
        analysis.paired_user_differences(run, "nope")


def _compare_output(run_dir) -> str:
    from typer.testing import CliRunner

    from recsim.cli import app

    result = CliRunner().invoke(app, ["compare", str(run_dir)], env={"COLUMNS": "200", "NO_COLOR": "1"})
    assert result.exit_code == 0, result.output
    return re.sub(r"\s+", " ", result.output)


def test_cli_compare_names_the_intervals_and_warns_when_replications_are_too_few(run_dir, tmp_path):
    text = _compare_output(_fewer(run_dir, tmp_path, 3))
    assert "3 paired replications" in text and "paired t" in text and "Fieller" in text
    assert "BCa" not in text and "bootstrap" not in text
    assert "valid but wide" in text
    text = _compare_output(_fewer(run_dir, tmp_path, 2))
    assert "2 replications: t with 1 degree of freedom, very wide" in text
    text = _compare_output(_fewer(run_dir, tmp_path, 1))
    assert "1 replication: no interval" in text and "[" not in text.split("Goodhart gap")[1].split("common")[0]


def test_report_gap_table_names_its_intervals(run_dir, tmp_path):
    from recsim import analysis
    from recsim.report import _gap_table

    html = _gap_table(analysis.load_run(_fewer(run_dir, tmp_path, 3)))
    assert "Fieller" in html and "paired t" in html and "BCa" not in html and "over 3 replications" in html
    html = _gap_table(analysis.load_run(_fewer(run_dir, tmp_path, 1)))
    assert "1 replication: no interval" in html


# ----------------------------------------------------------------------------- README table
def bca_coverage(n: int, noise: str, experiments: int = 2_000) -> dict[str, float]:
    """The paired BCa bootstrap recsim used to ship (scipy.stats.bootstrap, 9 999 resamples
    then; 2 000 here), on the same experiments: difference and relative gain."""
    rng = np.random.default_rng([13, n, list(NOISES).index(noise)])
    pol, ref = replication_values(rng, n, NOISES[noise], experiments)
    out = {}
    for name, statistic, truth in (
        ("bca_difference", lambda a, b, axis=-1: np.mean(a - b, axis=axis), MU_POL - MU_REF),
        ("bca_gain", lambda a, b, axis=-1: np.mean(a, axis=axis) / np.mean(b, axis=axis) - 1, MU_POL / MU_REF - 1),
    ):
        import warnings

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            res = sps.bootstrap((pol, ref), statistic, paired=True, vectorized=True, method="BCa",
                                n_resamples=2_000, axis=-1, rng=rng)
        out[name] = float(_covers(res.confidence_interval.low, res.confidence_interval.high, truth).mean())
    return out


def coverage_table(noise: str, sizes=(2, *SIZES), bootstrap: bool = False) -> str:
    rows = [
        ("summary_t (reference)", "Student t, one policy (reference)", "summary.csv, tradeoff, plot bands"),
        ("summary_t (policy)", "Student t, one policy (other)", "summary.csv, tradeoff, plot bands"),
        ("paired_t", "paired t, difference", "comparison.csv, paired_differences, goodhart_gap"),
        ("fieller", "Fieller, relative gain", "goodhart_watch_gain, paired_differences(relative=True)"),
        ("clustered", "per-user paired, clustered CR2 t(G−1)", "paired_user_differences"),
        ("delta", "delta method, relative gain", "not used"),
        ("user_iid", "per-user paired, users independent", "not used"),
    ]
    if bootstrap:
        rows += [("bca_difference", "BCa bootstrap, difference", "no longer used"),
                 ("bca_gain", "BCa bootstrap, relative gain", "no longer used")]
    lines = ["| interval | shown in | " + " | ".join(f"n = {n}" for n in sizes) + " |",
             "|---|---|" + "---:|" * len(sizes)]
    for key, label, where in rows:
        cells = []
        for n in sizes:
            if key.startswith("bca"):
                value = bca_coverage(n, noise)[key] if n >= 3 else math.nan
            elif key in ("clustered", "user_iid"):
                value = user_coverage(n, noise)[key]
            else:
                value = replication_coverage(n, noise)[key]
            cells.append("–" if math.isnan(value) else f"{value:.3f}")
        lines.append(f"| {label} | {where} | " + " | ".join(cells) + " |")
    unbounded = [replication_coverage(n, noise)["fieller unbounded"] for n in sizes]
    lines.append("")
    lines.append("Fieller unbounded (no interval): " + ", ".join(f"n = {n}: {u:.1%}" for n, u in zip(sizes, unbounded)))
    return "\n".join(lines)


if __name__ == "__main__":
    for noise in NOISES:
        print(f"\n{noise} noise, {N_EXPERIMENTS} experiments per cell (BCa: 2 000)\n")
        print(coverage_table(noise, bootstrap="--bootstrap" in sys.argv))
