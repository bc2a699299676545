"""recsim.analysis on a tiny run: shapes, columns, and values checked against direct
computations from the run's tables and event log."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from recsim import analysis
from recsim.config import scenario_from_dict
from recsim.experiment import run_experiment
from recsim.metrics import HEADLINE

POLICIES = ["random", "chronological", "engagement_oracle", "wellbeing_oracle"]
N_USERS = 16
N_REPS = 2
SCENARIO = {
    "name": "analysis_tiny",
    "seed": 3,
    "horizon": "2d",
    "warmup": "1d",
    "replications": N_REPS,
    "workers": 1,
    "population": {"n_users": N_USERS},
    "catalog": {"n_items": 400, "upload_rate": "100/d"},
    "recommender": {"slate_size": 5, "n_candidates": 40, "retrain_interval": "12h"},
    # churn far more likely than by default, so that survival curves have steps to check
    "behaviour": {"churn": {"zeta0": -2.5}},
    "policies": POLICIES,
    "outputs": {"metrics_interval": "12h"},
}
N_BUCKETS = 4  # 2 days in 12-hour buckets


@pytest.fixture(scope="session")
def run_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("analysis") / "run"
    return run_experiment(scenario_from_dict(SCENARIO), out, workers=1)


@pytest.fixture(scope="session")
def run(run_dir):
    return analysis.load_run(run_dir)


@pytest.fixture(scope="session")
def watches(run_dir):
    """Every watch row, read with pandas directly (the independent reference)."""
    frame = pd.read_parquet(run_dir / "events")
    frame = frame[frame["event"].astype(str) == "watch"].copy()
    frame["policy"] = frame["policy"].astype(str)
    frame["replication"] = frame["replication"].astype(int)
    return frame


# ----------------------------------------------------------------------------- loading
def test_load_run_reads_the_folder(run, run_dir):
    assert run.path == run_dir
    assert run.policies == POLICIES
    assert run.oracle == {
        "random": False,
        "chronological": False,
        "engagement_oracle": True,
        "wellbeing_oracle": True,
    }
    assert run.manifest["status"] == "complete"
    assert run.scenario["name"] == "analysis_tiny"
    assert (run.n_users, run.n_replications, run.horizon, run.metrics_interval) == (
        N_USERS,
        N_REPS,
        2 * 86400.0,
        43200.0,
    )
    assert run.extreme_threshold == pytest.approx(0.4)
    if (run_dir / "comparison.csv").exists():
        assert run.comparison.equals(pd.read_csv(run_dir / "comparison.csv"))
    else:
        assert run.comparison is None
    assert list(run.summary["policy"]) == POLICIES
    assert len(run.replications) == len(POLICIES) * N_REPS

    metrics = run.metrics
    assert {"policy", "replication", "metric", "kind", "start", "end", "value", "oracle"} <= set(
        metrics.columns
    )
    assert metrics["replication"].dtype.kind == "i"
    assert list(dict.fromkeys(metrics["policy"])) == POLICIES  # scenario order
    users = run.users
    assert len(users) == len(POLICIES) * N_REPS * N_USERS * 2
    assert set(users["stage"]) == {"initial", "final"}


def test_load_run_rejects_a_folder_that_is_not_a_run(tmp_path):
    with pytest.raises(FileNotFoundError, match="not a run folder"):
        analysis.load_run(tmp_path)


def test_events_read_only_the_rows_and_columns_asked_for(run, watches):
    frame = run.events(["time", "watch_time"], event="watch", policy="random", replication=1)
    assert list(frame.columns) == ["time", "watch_time", "policy", "replication"]
    expected = watches[(watches["policy"] == "random") & (watches["replication"] == 1)]
    assert len(frame) == len(expected) > 0
    assert np.allclose(np.sort(frame["watch_time"]), np.sort(expected["watch_time"]))

    several = analysis.read_events(
        run.path, ["user_id"], event=["watch", "click"], user_id=[0, 1], time=(0.0, 86400.0)
    )
    assert set(several["user_id"]) <= {0, 1}
    everything = pd.read_parquet(run.path / "events")
    mask = (
        everything["event"].astype(str).isin(["watch", "click"])
        & everything["user_id"].isin([0, 1])
        & (everything["time"] < 86400.0)
    )
    assert len(several) == int(mask.sum())


def test_latest_run_and_default_reference(run, run_dir):
    assert analysis.latest_run(run_dir.parent) == run_dir
    with pytest.raises(FileNotFoundError):
        analysis.latest_run(run_dir / "metrics")
    assert analysis.default_reference(run) == "chronological"
    other = analysis.load_run(run_dir)
    other.scenario = {**other.scenario, "reference": "random"}
    assert analysis.default_reference(other) == "random"


# ----------------------------------------------------------------------------- curves
def test_drift_curves_shape_and_values(run, watches):
    drift = analysis.drift_curves(run)
    assert list(drift.columns) == [
        "policy",
        "replication",
        "oracle",
        "metric",
        "kind",
        "start",
        "end",
        "time",
        "day",
        "value",
    ]
    per_task = drift.groupby(["policy", "replication", "metric"]).size()
    assert len(per_task) == len(POLICIES) * N_REPS * 3
    assert (
        per_task.xs("consumed_extremeness", level="metric") == N_BUCKETS
    ).all()  # flow: per bucket
    assert (
        per_task.xs("mean_appetite", level="metric") == N_BUCKETS + 1
    ).all()  # state: t=0 and bucket ends
    assert np.allclose(drift["day"], drift["time"] / 86400)

    # consumed extremeness = Σ τ·e / Σ τ over the bucket's watches
    sub = drift[
        (drift["policy"] == "engagement_oracle")
        & (drift["replication"] == 0)
        & (drift["metric"] == "consumed_extremeness")
    ].sort_values("start")
    w = watches[(watches["policy"] == "engagement_oracle") & (watches["replication"] == 0)]
    for _, row in sub.iterrows():
        b = w[(w["time"] >= row["start"]) & (w["time"] < row["end"])]
        expected = (b["watch_time"] * b["true_extremeness"]).sum() / b["watch_time"].sum()
        assert row["value"] == pytest.approx(expected)
        assert row["time"] == pytest.approx((row["start"] + row["end"]) / 2)


# ----------------------------------------------------------------------------- trade-off
def test_tradeoff_matches_the_summary(run):
    trade = analysis.tradeoff(run)
    assert list(trade["policy"]) == POLICIES
    assert {
        "engagement",
        "engagement_ci_low",
        "engagement_ci_high",
        "wellbeing",
        "wellbeing_ci_low",
        "wellbeing_ci_high",
        "engagement_metric",
        "wellbeing_metric",
        "oracle",
        "n_replications",
    } <= set(trade)
    summary = run.summary.set_index("policy")
    for _, row in trade.iterrows():
        s = summary.loc[row["policy"]]
        assert row["engagement"] == pytest.approx(s["watch_minutes_per_user_day"])
        assert row["engagement_ci_low"] == pytest.approx(s["watch_minutes_per_user_day_ci_low"])
        assert row["wellbeing"] == pytest.approx(s["wellbeing_change"])
        assert row["wellbeing_ci_high"] == pytest.approx(s["wellbeing_change_ci_high"])


def test_paired_differences_against_a_direct_computation(run):
    diffs = analysis.paired_differences(run, "random")
    assert set(diffs["policy"]) == set(POLICIES) - {"random"}
    assert (diffs["reference"] == "random").all()
    assert set(diffs["metric"]) <= set(HEADLINE)
    assert list(diffs.columns) == [
        "policy",
        "reference",
        "oracle",
        "metric",
        "relative",
        "n_replications",
        "mean_difference",
        "ci_low",
        "ci_high",
        "p_value",
    ]

    wide = run.replications.pivot(
        index="replication", columns="policy", values="watch_minutes_per_user_day"
    )
    d = (wide["engagement_oracle"] - wide["random"]).to_numpy()
    low, high = stats.t.interval(0.95, len(d) - 1, loc=d.mean(), scale=stats.sem(d))
    row = diffs[
        (diffs["policy"] == "engagement_oracle") & (diffs["metric"] == "watch_minutes_per_user_day")
    ].iloc[0]
    assert row["mean_difference"] == pytest.approx(d.mean())
    assert (row["ci_low"], row["ci_high"]) == (pytest.approx(low), pytest.approx(high))
    assert row["p_value"] == pytest.approx(
        stats.ttest_rel(wide["engagement_oracle"], wide["random"]).pvalue
    )

    with pytest.raises(ValueError, match="unknown reference"):
        analysis.paired_differences(run, "nope")


@pytest.mark.parametrize("reference", ["chronological", "random"])
def test_goodhart_gap(run, reference):
    gap = analysis.goodhart_gap(run, reference)
    assert list(gap.columns) == [
        "policy",
        "reference",
        "oracle",
        "quantity",
        "mean",
        "ci_low",
        "ci_high",
    ]
    assert len(gap) == 3 * (len(POLICIES) - 1)
    assert (gap["reference"] == reference).all()
    assert list(dict.fromkeys(gap["quantity"])) == [
        "goodhart_watch_gain",
        "goodhart_wellbeing_change",
        "goodhart_extremeness_change",
    ]
    reps = run.replications
    wide = reps.pivot(index="replication", columns="policy", values="watch_minutes_per_user_day")
    gain = (
        wide["engagement_oracle"].mean() / wide[reference].mean() - 1
    )  # relative gain of the mean
    row = gap[
        (gap["policy"] == "engagement_oracle") & (gap["quantity"] == "goodhart_watch_gain")
    ].iloc[0]
    assert row["mean"] == pytest.approx(gain)
    wide = reps.pivot(index="replication", columns="policy", values="final_wellbeing")
    row = gap[
        (gap["policy"] == "wellbeing_oracle") & (gap["quantity"] == "goodhart_wellbeing_change")
    ].iloc[0]
    assert row["mean"] == pytest.approx((wide["wellbeing_oracle"] - wide[reference]).mean())
    assert row["oracle"]


def test_goodhart_gap_agrees_with_comparison_csv(run, run_dir):
    assert (run_dir / "comparison.csv").exists(), "a run of several policies writes comparison.csv"
    table = pd.read_csv(run_dir / "comparison.csv")
    reference = table["reference"].iloc[0]
    from_file = analysis.goodhart_gap(run, reference)
    fresh = analysis.load_run(run_dir)
    fresh.comparison = None  # force the computation from replications.csv
    computed = analysis.goodhart_gap(fresh, reference)
    pd.testing.assert_frame_equal(from_file, computed)
    row = table[
        (table["policy"] == "engagement_oracle") & (table["metric"] == "goodhart_watch_gain")
    ].iloc[0]
    mine = from_file[
        (from_file["policy"] == "engagement_oracle")
        & (from_file["quantity"] == "goodhart_watch_gain")
    ]
    assert mine["mean"].iloc[0] == pytest.approx(row["difference"])


# ----------------------------------------------------------------------------- proxy validity
def test_watch_value_correlation_reproduces_the_metric_and_scipy(run, watches):
    validity = analysis.watch_value_correlation(run)
    assert list(validity.columns) == [
        "policy",
        "replication",
        "oracle",
        "start",
        "end",
        "time",
        "day",
        "n_watches",
        "value",
    ]
    assert len(validity) == len(POLICIES) * N_REPS * N_BUCKETS
    metric = analysis.metric_curves(run, ["watch_value_correlation"])
    merged = validity.merge(
        metric, on=["policy", "replication", "start", "end"], suffixes=("", "_metric")
    )
    assert len(merged) == len(validity)
    assert np.allclose(merged["value"], merged["value_metric"], equal_nan=True)

    w = watches[
        (watches["policy"] == "random") & (watches["replication"] == 1) & (watches["time"] < 43200)
    ]
    row = validity[(validity["policy"] == "random") & (validity["replication"] == 1)].iloc[0]
    assert row["n_watches"] == len(w)
    assert row["value"] == pytest.approx(
        stats.spearmanr(w["watch_time"], w["true_value"]).statistic
    )

    daily = analysis.watch_value_correlation(run, interval=86400.0)
    assert len(daily) == len(POLICIES) * N_REPS * 2
    assert daily.groupby(["policy", "replication"])["n_watches"].sum().sum() == len(watches)


def test_proxy_validity_is_the_panel_metrics_per_bucket(run):
    frame = analysis.proxy_validity(run)
    assert list(frame.columns) == ["policy", "replication", "oracle", "start", "end", "time", "day",
                                   "validity", "regret"]
    assert len(frame) == len(POLICIES) * N_REPS * N_BUCKETS
    metrics = run.metrics
    for name, column in (("proxy_validity", "validity"), ("proxy_regret", "regret")):
        rows = metrics[metrics["metric"] == name].merge(frame, on=["policy", "replication", "start", "end"])
        assert len(rows) == len(frame)
        assert np.allclose(rows["value"], rows[column], equal_nan=True)
    assert frame["validity"].between(-1, 1).all() and (frame["regret"] >= 0).all()


# ----------------------------------------------------------------------------- rabbit holes
def _direct_counts(watches, edges, policy, within_session=False):
    """Transition counts by walking each user's watches in time order (a plain loop)."""
    n = len(edges) - 1
    counts = np.zeros((n, n), dtype=int)
    w = watches[watches["policy"] == policy].sort_values(["replication", "user_id", "time"])
    for _, user in w.groupby(["replication", "user_id"]):
        e = user["true_extremeness"].to_numpy()
        s = user["session"].to_numpy()
        b = [min(int(np.sum(x >= edges[1:-1])), n - 1) for x in e]
        for k in range(len(b) - 1):
            if within_session and s[k] != s[k + 1]:
                continue
            counts[b[k], b[k + 1]] += 1
    return counts


def test_extremeness_edges(run):
    edges = analysis.extremeness_edges(run, 5)
    assert np.allclose(edges, [0, 0.1, 0.2, 0.3, 0.4, 1.0])
    assert np.allclose(analysis.extremeness_edges(n_bins=3, threshold=0.5), [0, 0.25, 0.5, 1.0])
    with pytest.raises(ValueError):
        analysis.extremeness_edges(run, 1)


def test_transition_matrix_rows_sum_to_one_and_match_counts(run, watches):
    trans = analysis.transition_matrix(run, n_bins=5)
    assert list(trans.columns) == [
        "policy",
        "oracle",
        "from_bin",
        "to_bin",
        "from_label",
        "to_label",
        "count",
        "probability",
    ]
    assert len(trans) == len(POLICIES) * 25
    edges = analysis.extremeness_edges(run, 5)
    for policy in POLICIES:
        sub = trans[trans["policy"] == policy]
        counts = sub.pivot(index="from_bin", columns="to_bin", values="count").to_numpy()
        assert (counts == _direct_counts(watches, edges, policy)).all()
        probs = sub.pivot(index="from_bin", columns="to_bin", values="probability").to_numpy()
        seen = counts.sum(axis=1) > 0
        assert np.allclose(probs[seen].sum(axis=1), 1.0)
        assert np.isnan(probs[~seen]).all()
        assert np.allclose(probs[seen], counts[seen] / counts[seen].sum(axis=1, keepdims=True))
        # every pair of consecutive watches of a user counts once
        n_pairs = sum(
            len(u) - 1
            for _, u in watches[watches["policy"] == policy].groupby(["replication", "user_id"])
        )
        assert counts.sum() == n_pairs

    square = analysis.transition_array(trans, "random")
    assert square.shape == (5, 5)
    assert list(square.index) == ["0.00–0.10", "0.10–0.20", "0.20–0.30", "0.30–0.40", "0.40–1.00"]


def test_transition_matrix_options(run, watches):
    pooled = analysis.transition_matrix(run, n_bins=4)
    by_rep = analysis.transition_matrix(run, n_bins=4, by_replication=True)
    assert len(by_rep) == len(POLICIES) * N_REPS * 16
    summed = by_rep.groupby(["policy", "from_bin", "to_bin"])["count"].sum()
    pooled_counts = pooled.set_index(["policy", "from_bin", "to_bin"])["count"]
    assert (summed == pooled_counts.reindex(summed.index)).all()

    within = analysis.transition_matrix(run, n_bins=4, within_session=True)
    edges = analysis.extremeness_edges(run, 4)
    counts = (
        within[within["policy"] == "random"]
        .pivot(index="from_bin", columns="to_bin", values="count")
        .to_numpy()
    )
    assert (counts == _direct_counts(watches, edges, "random", within_session=True)).all()
    assert within["count"].sum() < pooled["count"].sum()

    few = analysis.transition_matrix(run, n_bins=4, max_users=4)
    small = watches[watches["user_id"] < 4]
    assert (
        few[few["policy"] == "random"]
        .pivot(index="from_bin", columns="to_bin", values="count")
        .to_numpy()
        == _direct_counts(small, edges, "random")
    ).all()


def test_reach_top_probability_matches_an_absorbing_chain(run):
    trans = analysis.transition_matrix(run, n_bins=5)
    reach = analysis.reach_top_probability(trans, n_items=8)
    assert list(reach.columns) == [
        "policy",
        "oracle",
        "start_bin",
        "start_label",
        "n_items",
        "probability",
    ]
    assert len(reach) == len(POLICIES) * 5 * 8
    for policy in POLICIES:
        p = np.nan_to_num(
            trans[trans["policy"] == policy]
            .pivot(index="from_bin", columns="to_bin", values="probability")
            .to_numpy()
        )
        absorbing = p.copy()
        absorbing[4] = 0.0
        absorbing[4, 4] = 1.0
        sub = reach[reach["policy"] == policy]
        for k in (1, 3, 8):
            got = sub[sub["n_items"] == k].set_index("start_bin")["probability"]
            hit = np.linalg.matrix_power(absorbing, k)[
                :, 4
            ]  # P(in top by step k) from a non-top start
            for s in range(4):
                if not math.isnan(got[s]):
                    assert got[s] == pytest.approx(hit[s])
            # from the top bin: the chance of being back within k items
            back = p[4, 4] + sum(
                p[4, j] * (np.linalg.matrix_power(absorbing, k - 1)[j, 4] if k > 1 else 0)
                for j in range(4)
            )
            if not math.isnan(got[4]):
                assert got[4] == pytest.approx(back)
        curves = sub.pivot(index="n_items", columns="start_bin", values="probability")
        assert (curves.diff().dropna() >= -1e-12).all().all()  # more items, more chance
        assert ((curves >= 0) & (curves <= 1) | curves.isna()).all().all()
    by_rep = analysis.reach_top_probability(
        analysis.transition_matrix(run, by_replication=True), n_items=3
    )
    assert len(by_rep) == len(POLICIES) * N_REPS * 5 * 3 and "replication" in by_rep


def test_every_view_lists_policies_in_scenario_order(run):
    trans = analysis.transition_matrix(run, by_replication=True)
    views = [
        analysis.drift_curves(run),
        analysis.tradeoff(run),
        analysis.proxy_validity(run),
        analysis.watch_value_correlation(run),
        trans,
        analysis.reach_top_probability(trans, 2),
        analysis.survival_curves(run),
        analysis.user_outcomes(run),
        analysis.user_trajectory(run, 0),
    ]
    for frame in views:
        seen = list(dict.fromkeys(frame["policy"]))
        assert seen == [p for p in POLICIES if p in seen]
    assert list(dict.fromkeys(analysis.goodhart_gap(run)["policy"])) == [
        p for p in POLICIES if p != "chronological"
    ]


# ----------------------------------------------------------------------------- retention
def test_survival_curves_from_churn_events(run, run_dir):
    surv = analysis.survival_curves(run, step=3600.0)
    assert list(surv.columns) == [
        "policy",
        "replication",
        "oracle",
        "metric",
        "time",
        "day",
        "value",
    ]
    assert set(surv["metric"]) == {"survival", "active_share"}
    churns = pd.read_parquet(run_dir / "events")
    churns = churns[churns["event"].astype(str) == "churn"]
    assert len(churns) > 0, "the tiny scenario should make some users churn"
    metrics = run.metrics
    for (policy, rep), curve in surv[surv["metric"] == "survival"].groupby(
        ["policy", "replication"]
    ):
        values = curve.sort_values("time")["value"].to_numpy()
        assert len(values) == 49 and values[0] == 1.0
        assert (np.diff(values) <= 0).all()
        n_churned = (
            (churns["policy"].astype(str) == policy) & (churns["replication"].astype(int) == rep)
        ).sum()
        alive0 = metrics[
            (metrics["metric"] == "retained_users")
            & (metrics["end"] == 0)
            & (metrics["policy"] == policy)
            & (metrics["replication"] == rep)
        ]["value"].iloc[0]
        assert values[-1] == pytest.approx(1 - n_churned / alive0)
        retained_end = metrics[
            (metrics["metric"] == "retained_users")
            & (metrics["end"] == run.horizon)
            & (metrics["policy"] == policy)
            & (metrics["replication"] == rep)
        ]["value"].iloc[0]
        assert alive0 - n_churned == retained_end
    active = surv[surv["metric"] == "active_share"]
    assert len(active) == len(POLICIES) * N_REPS * N_BUCKETS
    expected = metrics[metrics["metric"] == "active_users"]["value"].to_numpy() / N_USERS
    assert np.allclose(np.sort(active["value"]), np.sort(expected))


# ----------------------------------------------------------------------------- users
def test_user_trajectory(run, watches):
    counts = watches[watches["replication"] == 0].groupby("user_id").size()
    user = int(counts.idxmax())
    traj = analysis.user_trajectory(run, user, replication=0, window=3)
    assert {
        "policy",
        "time",
        "day",
        "session",
        "item_index",
        "item_id",
        "watch_time",
        "true_extremeness",
        "true_value",
        "rolling_extremeness",
        "cumulative_watch_minutes",
        "cumulative_value",
        "initial_appetite",
        "final_appetite",
        "appetite0",
    } <= set(traj.columns)
    for policy in POLICIES:
        mine = traj[traj["policy"] == policy]
        direct = watches[
            (watches["policy"] == policy)
            & (watches["replication"] == 0)
            & (watches["user_id"] == user)
        ].sort_values("time")
        assert len(mine) == len(direct)
        if not len(mine):
            continue
        assert list(mine["item_index"]) == list(range(1, len(mine) + 1))
        assert np.allclose(mine["true_extremeness"], direct["true_extremeness"])
        assert mine["cumulative_watch_minutes"].iloc[-1] == pytest.approx(
            direct["watch_time"].sum() / 60
        )
        assert mine["cumulative_value"].iloc[-1] == pytest.approx(direct["true_value"].sum())
        assert mine["rolling_extremeness"].iloc[-1] == pytest.approx(
            direct["true_extremeness"].iloc[-3:].mean()
        )
        users = run.users
        final = users[
            (users["policy"] == policy)
            & (users["replication"] == 0)
            & (users["user_id"] == user)
            & (users["stage"] == "final")
        ]
        assert mine["final_appetite"].iloc[0] == pytest.approx(final["appetite"].iloc[0])
    only = analysis.user_trajectory(run, user, policies=["random"])
    assert set(only["policy"]) <= {"random"}


def test_user_outcomes(run):
    out = analysis.user_outcomes(run)
    assert len(out) == len(POLICIES) * N_REPS * N_USERS
    assert {
        "policy",
        "replication",
        "user_id",
        "vulnerable",
        "susceptibility",
        "appetite0",
        "initial_appetite",
        "final_appetite",
        "appetite_change",
        "initial_wellbeing",
        "final_wellbeing",
        "wellbeing_change",
        "churned",
        "watch_minutes",
        "consumed_extremeness",
    } <= set(out.columns)
    assert np.allclose(out["wellbeing_change"], out["final_wellbeing"] - out["initial_wellbeing"])
    assert np.allclose(out["appetite_change"], out["final_appetite"] - out["initial_appetite"])
    # the final states of the users retained at the end average to the run's headline figures
    retained = out[~out["churned"].astype(bool)]
    means = retained.groupby(["policy", "replication"])[["final_wellbeing", "appetite_change"]].mean()
    reps = run.replications.set_index(["policy", "replication"])
    assert np.allclose(means["final_wellbeing"], reps.loc[means.index, "final_wellbeing"])
    assert np.allclose(means["appetite_change"], reps.loc[means.index, "appetite_change"])
    churn = out.groupby(["policy", "replication"])["churned_in_horizon"].mean()
    assert np.allclose(churn, reps.loc[churn.index, "churn_rate"])


# ----------------------------------------------------------------------------- sweeps
def test_sweep_tables(run_dir, tmp_path):
    # a sweep folder in the layout `recsim sweep` writes, with the tiny run at both points
    reps = pd.read_csv(run_dir / "replications.csv")
    long = reps.melt(
        id_vars=["policy", "replication"], value_vars=list(HEADLINE), var_name="metric"
    )
    results = pd.concat([long.assign(point=0), long.assign(point=1)], ignore_index=True)
    results = results[["point", "policy", "replication", "metric", "value"]]
    grid = pd.DataFrame({"point": [0, 1], "a.b": [1, 2], "c": [0.5, 0.5]})
    grid.to_csv(tmp_path / "grid.csv", index=False)
    results.to_csv(tmp_path / "results.csv", index=False)
    grid2, results2 = analysis.load_sweep(tmp_path)
    assert grid2.equals(grid) and len(results2) == len(results)

    table = analysis.sweep_table(
        grid2, results2, "final_wellbeing", "a.b", "c", "engagement_oracle"
    )
    assert table.shape == (1, 2)
    assert list(table.columns) == [1, 2] and table.index.name == "c"
    assert analysis.sweep_table(
        grid2, results2, "final_wellbeing", "a.b", None, "random"
    ).shape == (1, 2)
    reps = run_dir / "replications.csv"
    expected = pd.read_csv(reps).query("policy == 'engagement_oracle'")["final_wellbeing"].mean()
    assert np.allclose(table.to_numpy(), expected)
    diff = analysis.sweep_table(
        grid2, results2, "final_wellbeing", "a.b", "c", "engagement_oracle", reference="random"
    )
    wide = pd.read_csv(reps).pivot(index="replication", columns="policy", values="final_wellbeing")
    assert np.allclose(diff.to_numpy(), (wide["engagement_oracle"] - wide["random"]).mean())
    with pytest.raises(ValueError):
        analysis.sweep_table(grid2, results2, "final_wellbeing", "a.b", "c", "nope")
