"""The baseline scenario's qualitative result, at a reduced size, over several seeds.

Issue: with default parameters, engagement_oracle has the highest watch time, yet lower mean
wellbeing than chronological and wellbeing_oracle, and the extremeness of what its users watch
and their appetite for it rise over the horizon, more than under the neutral feeds (random,
chronological). Nothing in the code special-cases a policy: this must come out of the model's
equations.

How the thresholds are derived (issue 11, item 8). The statistical unit is the **user**, not
the day. In the default user model users do not interact, so within one replication (one
world: one catalog, one population) users' outcomes are independent given the world, and under
common random numbers the same user meets every policy. Each check takes one number per user
and policy, forms the paired per-user difference between two policies (or takes one policy's
per-user change alone), and requires its mean to exceed Z = 3 standard errors. No daily series
is regressed on time, so the serial correlation of daily metrics (lag-1 autocorrelation +0.4
to +0.7 in the residuals of a linear trend) does not enter any error, and there is no other
escape: a check passes only by clearing 3 SE.

* Levels (whole-horizon watch minutes, final wellbeing) are checked **in each** of the
  SEEDS = 3 worlds: mean over the N_USERS = 60 users, SE = sd / sqrt(60). With ~59 degrees of
  freedom, 3 SE is a one-sided test at about the 0.2% level, in every world.
* Drifts (a user's appetite at the end minus the start of the horizon; the watch-time-weighted
  mean true extremeness of what a user watched in the last third of the horizon minus in the
  first third — Bartlett's three-group trend estimate, about 90% as efficient as a least-squares
  slope for a linear trend) are checked **pooled over the 3 worlds**: the mean of the per-world
  means, with SE = sqrt(Σ SE_world²) / 3 (each SE_world = sd / sqrt(n) over that world's users;
  n = 60 for appetite, the users with a watch in both thirds under the policies compared —
  52 to 60 at this size — for extremeness), about 180 users in all, so again ~0.2% one-sided.
  Inference is conditional on the three worlds.

A change is a difference of two noisy per-user measurements, and a contrast with a neutral
feed a difference of two changes, so the extremeness contrast is the weakest signal here. In a
power study over 9 other root seeds (3 worlds each), engagement_oracle − chronological, pooled,
was 2.4 to 6.1 SE (below 3 for 2 of the 9) and − random 3.6 to 6.8 SE; one world alone
resolves neither (at this file's seed, per world: 3.6, 3.2, 2.96 SE and 5.9, 2.3, 4.8 SE).
The extremeness check therefore compares with the mean of the two neutral feeds, user by user,
which halves the neutral side's variance: 4.1 to 7.1 SE over the same 9 root seeds, 7.9 at
this file's seed. Over all 10 root seeds, the appetite contrasts were at least 23 SE, the
engagement oracle's own drifts at least 7 SE, and the levels at least 5 SE in each of the 30
worlds.

Since behaviour.allure.w_e was calibrated to 0.75 (issue 14, validation target 13), the drift
of *consumed* extremeness is checked with the former w_e = 1.5 (``former_pull_run``): at 0.75
the engagement oracle still serves more extreme content than the neutral feeds, raises the
appetite more and lowers wellbeing, all checked at the defaults, but what it serves follows
the appetite too weakly for a drift of consumed extremeness to resolve at this size (the power
figures above were measured at w_e = 1.5).

Not asserted: that the drift is flat under the neutral feeds. With this 5-day warm-up the
appetite under random still rises over the horizon, by +0.008 (4.4 SE pooled; +0.007 under
chronological; positive for all 10 root seeds): the warm-up is shorter than the appetite's
10-day relaxation time (after a 40-day warm-up, random's change is +0.0000 ± 0.0006). The
contrast with the neutral feeds is what the tests check.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from recsim.config import load_scenario
from recsim.experiment import run_experiment

SEEDS = 3  # replications: independent worlds (seeds derived from the root seed)
N_USERS = 60
HORIZON_DAYS = 10
Z = 3.0  # required distance from zero, in standard errors of the mean per-user difference
NEUTRAL = ("random", "chronological")


def _run(tmp_path_factory, extra: list[str]) -> dict[str, pd.DataFrame]:
    sc = load_scenario(
        "scenarios/baseline.yaml",
        [
            f"population.n_users={N_USERS}",
            f"horizon={HORIZON_DAYS}d",
            "warmup=5d",
            f"replications={SEEDS}",
            "outputs.log_impressions=false",
            *extra,
        ],
    )
    path = run_experiment(sc, tmp_path_factory.mktemp("baseline") / "run", workers=2)
    users = pd.read_parquet(path / "users")
    columns = ["event", "time", "user_id", "watch_time", "true_extremeness", "policy", "replication"]
    events = pd.read_parquet(path / "events", columns=columns)
    watches = events[events["event"] == "watch"]
    return {  # one row per (replication, user), one column per policy
        "watch_minutes": _per_user(users, "final", "watch_minutes"),
        "wellbeing": _per_user(users, "final", "wellbeing"),
        "appetite_change": _per_user(users, "final", "appetite") - _per_user(users, "initial", "appetite"),
        "extremeness_change": _extremeness_change(watches, sc.horizon),
        "extremeness": _consumed_extremeness(watches),
    }


@pytest.fixture(scope="module")
def baseline_run(tmp_path_factory):
    """The baseline at the shipped defaults."""
    return _run(tmp_path_factory, [])


@pytest.fixture(scope="module")
def former_pull_run(tmp_path_factory):
    """The baseline with extremeness pulling as hard as before its calibration: w_e = 1.5
    (the design's value; validation target 13 halved it), the engagement oracle and the
    neutral feeds only."""
    return _run(tmp_path_factory, ["behaviour.allure.w_e=1.5",
                                   "policies=[random, chronological, engagement_oracle]"])


def _per_user(users: pd.DataFrame, stage: str, column: str) -> pd.DataFrame:
    """One row per (replication, user), one column per policy: ``column`` at ``stage``."""
    d = users[users["stage"] == stage]
    return d.pivot_table(index=["replication", "user_id"], columns="policy", values=column,
                         observed=True)


def _extremeness_change(watches: pd.DataFrame, horizon: float) -> pd.DataFrame:
    """Per user: watch-time-weighted mean true extremeness of what they watched in the last
    third of the horizon minus in its first third (NaN for a user with no watch in either)."""
    t = watches["time"]
    third = np.where(t < horizon / 3, 0, np.where(t >= 2 * horizon / 3, 2, 1))
    w = watches.assign(third=third, te=watches["true_extremeness"] * watches["watch_time"])
    w = w[w["third"] != 1]
    keys = ["replication", "user_id", "policy", "third"]
    sums = w.groupby(keys, observed=True)[["te", "watch_time"]].sum()
    mean_e = (sums["te"] / sums["watch_time"]).unstack("third")
    return (mean_e[2] - mean_e[0]).unstack("policy")


def _consumed_extremeness(watches: pd.DataFrame) -> pd.DataFrame:
    """Per user: the watch-time-weighted mean true extremeness of what they watched over the
    horizon (NaN for a user with no watch)."""
    w = watches.assign(te=watches["true_extremeness"] * watches["watch_time"])
    sums = w.groupby(["replication", "user_id", "policy"], observed=True)[["te", "watch_time"]].sum()
    return (sums["te"] / sums["watch_time"]).unstack("policy")


def _paired(per_user: pd.DataFrame, rep: int, policy: str, other: str | None) -> tuple[float, float, int]:
    """Mean and standard error over the users of replication ``rep`` of ``policy − other``
    (or of ``policy`` alone), users missing under either policy left out."""
    d = per_user.loc[rep]
    diff = (d[policy] - d[other]) if other is not None else d[policy]
    diff = diff.dropna()
    n = len(diff)
    return float(diff.mean()), float(diff.std(ddof=1) / np.sqrt(n)), n


def _assert_above(per_user: pd.DataFrame, policy: str, other: str | None, what: str) -> None:
    """In each world: mean of the per-user ``policy − other`` above Z SE."""
    for rep in range(SEEDS):
        mean, se, n = _paired(per_user, rep, policy, other)
        assert n == N_USERS, (what, rep, n)
        assert mean > Z * se, (
            f"{what}, world {rep}: {policy} − {other}: mean {mean:+.4f}, SE {se:.4f}, n {n}")


def _assert_above_pooled(per_user: pd.DataFrame, policy: str, other: str | None, what: str) -> None:
    """Pooled over the worlds: the mean of the per-world means of the per-user
    ``policy − other`` above Z times its SE, sqrt(Σ SE_world²) / SEEDS."""
    per_world = [_paired(per_user, rep, policy, other) for rep in range(SEEDS)]
    for rep, (_, _, n) in enumerate(per_world):  # most users take part in the comparison
        assert n >= N_USERS * 3 // 4, (what, rep, n)
    mean = float(np.mean([m for m, _, _ in per_world]))
    se = float(np.sqrt(sum(s**2 for _, s, _ in per_world)) / SEEDS)
    detail = ", ".join(f"world {r}: {m:+.4f} (SE {s:.4f}, n {n})"
                       for r, (m, s, n) in enumerate(per_world))
    assert mean > Z * se, (
        f"{what}: {policy} − {other}: pooled mean {mean:+.4f}, SE {se:.4f}; {detail}")


@pytest.mark.parametrize("other", ["random", "chronological", "wellbeing_oracle"])
def test_engagement_oracle_has_the_highest_watch_time(baseline_run, other):
    """In each world, users' horizon watch minutes are higher under engagement_oracle than
    under the other policy, by more than 3 SE of the paired per-user difference."""
    _assert_above(baseline_run["watch_minutes"], "engagement_oracle", other, "watch minutes")


@pytest.mark.parametrize("other", ["chronological", "wellbeing_oracle"])
def test_engagement_oracle_lowers_wellbeing(baseline_run, other):
    """In each world, final wellbeing is lower under engagement_oracle than under the other
    policy by more than 3 SE of the paired per-user difference (same users under CRN)."""
    _assert_above(baseline_run["wellbeing"], other, "engagement_oracle", "final wellbeing")


@pytest.mark.parametrize("other", NEUTRAL)
def test_appetite_rises_more_under_engagement_than_under_neutral_feeds(baseline_run, other):
    """Users' appetite change over the horizon (final − initial) is larger under
    engagement_oracle than under the neutral feed: pooled over the worlds, by more than 3 SE."""
    _assert_above_pooled(baseline_run["appetite_change"], "engagement_oracle", other, "Δ appetite")


@pytest.mark.parametrize("other", NEUTRAL)
def test_users_watch_more_extreme_content_under_engagement_than_under_neutral_feeds(baseline_run, other):
    """Over the horizon, the extremeness of what a user watches (watch-time weighted) is
    higher under engagement_oracle than under the neutral feed: pooled over the worlds, by
    more than 3 SE of the paired per-user difference (the amplification of validation target
    13, on the oracle)."""
    _assert_above_pooled(baseline_run["extremeness"], "engagement_oracle", other, "consumed extremeness")


def test_consumed_extremeness_rises_more_under_engagement_than_under_neutral_feeds(former_pull_run):
    """With the former pull (w_e = 1.5): the change in users' consumed extremeness (last
    third − first third of the horizon) is larger under engagement_oracle than the mean of its
    changes under the two neutral feeds: pooled over the worlds, by more than 3 SE. At the
    calibrated w_e = 0.75 this contrast is not resolved at this size (−0.003, SE 0.005, when
    the calibration landed): what the oracle serves follows the appetite only weakly once
    relevance dominates allure; the appetite contrast above still is (README, "What the
    baseline shows")."""
    change = former_pull_run["extremeness_change"]
    change = change.assign(neutral=change[list(NEUTRAL)].mean(axis=1, skipna=False))
    _assert_above_pooled(change, "engagement_oracle", "neutral", "Δ consumed extremeness")


def test_engagement_oracle_drift_is_upward(baseline_run):
    """Under engagement_oracle alone the mean per-user change of appetite is positive, pooled
    over the worlds by more than 3 SE: the drift rises over the horizon, not only relative to
    the neutral feeds."""
    _assert_above_pooled(baseline_run["appetite_change"], "engagement_oracle", None, "appetite_change")


@pytest.mark.parametrize("measure", ["appetite_change", "extremeness_change"])
def test_with_the_former_pull_engagement_oracle_drift_is_upward(former_pull_run, measure):
    """With the former pull (w_e = 1.5) both drifts rise under engagement_oracle alone, pooled
    over the worlds by more than 3 SE (at w_e = 0.75 the consumed extremeness's was +0.0065,
    SE 0.0033, when the calibration landed)."""
    _assert_above_pooled(former_pull_run[measure], "engagement_oracle", None, measure)
