"""The reference engine: determinism, common random numbers, event-log invariants, schedule."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from recsim.config import scenario_from_dict
from recsim.experiment import make_tasks, partition, run_task
from recsim.world import build_world


def _run(data: dict, tmp_path, policy_index: int = 0, replication: int = 0):
    sc = scenario_from_dict(data)
    task = next(t for t in make_tasks(sc, tmp_path) if t.policy_index == policy_index and t.replication == replication)
    result = run_task(task)
    name = sc.policies[policy_index].name
    events = pq.read_table(partition(tmp_path, "events", name, replication)).to_pandas()
    metrics = pd.read_parquet(partition(tmp_path, "metrics", name, replication))
    users = pd.read_parquet(partition(tmp_path, "users", name, replication))
    return result, events, metrics, users


@pytest.mark.parametrize("policy_index", [0, 3])
def test_same_seed_gives_identical_event_log(tiny, tmp_path, policy_index):
    _, ev1, m1, u1 = _run(tiny, tmp_path / "a", policy_index)
    _, ev2, m2, u2 = _run(tiny, tmp_path / "b", policy_index)
    assert len(ev1) > 100
    pd.testing.assert_frame_equal(ev1, ev2)
    pd.testing.assert_frame_equal(m1, m2)
    pd.testing.assert_frame_equal(u1, u2)


def test_different_seed_gives_different_event_log(tiny, tmp_path):
    _, ev1, _, _ = _run(tiny, tmp_path / "a")
    tiny["seed"] = 8
    _, ev2, _, _ = _run(tiny, tmp_path / "b")
    assert len(ev1) != len(ev2) or not ev1["time"].equals(ev2["time"])


def test_world_does_not_depend_on_policy(tiny):
    """Common random numbers: population and catalog are functions of (seed, replication)."""
    sc = scenario_from_dict(tiny)
    w1, w2 = build_world(sc, 0), build_world(sc, 0)
    for name in ("topics", "extremeness", "quality", "length", "upload_time", "classifier"):
        np.testing.assert_array_equal(getattr(w1.catalog, name), getattr(w2.catalog, name))
    assert w1.state.fields == w2.state.fields
    for name in w1.state.fields:
        np.testing.assert_array_equal(w1.state[name], w2.state[name], err_msg=name)
    assert w1.user_stream_keys == w2.user_stream_keys
    w3 = build_world(sc, 1)
    assert not np.array_equal(w1.state["appetite0"], w3.state["appetite0"])


def test_policies_share_population_catalog_and_first_sessions(tiny, tmp_path):
    """Two policies meet identical users, and (with no warm-up) every user's first session
    starts at the same time under both, because return draws are per-user counter-based."""
    tiny["warmup"] = 0
    _, ev_a, _, users_a = _run(tiny, tmp_path, policy_index=0)
    _, ev_b, _, users_b = _run(tiny, tmp_path, policy_index=3)
    initial = ["user_id", "home_cluster", "vulnerable", "susceptibility", "appetite0", "appetite", "wellbeing"]
    pd.testing.assert_frame_equal(
        users_a[users_a.stage == "initial"][initial].reset_index(drop=True),
        users_b[users_b.stage == "initial"][initial].reset_index(drop=True),
    )
    first_a = ev_a[ev_a.event == "session_start"].groupby("user_id")["time"].min()
    first_b = ev_b[ev_b.event == "session_start"].groupby("user_id")["time"].min()
    assert len(first_a) >= 8
    pd.testing.assert_series_equal(first_a, first_b)
    # ... while what happens next does differ between the policies
    assert not ev_a[ev_a.event == "watch"]["item_id"].reset_index(drop=True).equals(
        ev_b[ev_b.event == "watch"]["item_id"].reset_index(drop=True)
    )


def test_warmup_is_common_to_all_policies(tiny, tmp_path):
    """The warm-up runs under the warm-up policy for everyone: state at t=0 is identical."""
    _, _, _, users_a = _run(tiny, tmp_path, policy_index=1)
    _, _, _, users_b = _run(tiny, tmp_path, policy_index=4)
    cols = ["appetite", "wellbeing", "satisfaction", "habit", "topic_drift"]
    a = users_a[users_a.stage == "initial"][cols].reset_index(drop=True)
    b = users_b[users_b.stage == "initial"][cols].reset_index(drop=True)
    pd.testing.assert_frame_equal(a, b)
    assert (a["appetite"] != users_a[users_a.stage == "initial"]["appetite0"].to_numpy()).any()


def test_event_log_invariants(tiny, tmp_path):
    sc = scenario_from_dict(tiny)
    world = build_world(sc, 0)
    _, ev, _, _ = _run(tiny, tmp_path, policy_index=3)
    assert ev["time"].between(0, sc.horizon).all()
    for _, g in ev.groupby("user_id"):
        assert g["time"].is_monotonic_increasing
    counts = ev["event"].value_counts()
    # every session that starts in the horizon ends (or the horizon cuts it: at most one per user)
    assert 0 <= counts["session_start"] - counts["session_end"] <= tiny["population"]["n_users"]
    assert 0 <= counts["click"] - counts["watch"] <= tiny["population"]["n_users"]
    # impressions: slate_size rows per served slate, positions 1..slate_size
    imp = ev[ev.event == "impression"]
    assert set(imp["position"]) == set(range(1, 6))
    watches = ev[ev.event == "watch"]
    length = world.catalog.length[watches["item_id"].to_numpy()]
    assert (watches["watch_time"].to_numpy() <= length + 1e-9).all()
    np.testing.assert_allclose(watches["watch_fraction"], watches["watch_time"] / length)
    # the hidden truth logged for analysis matches the catalog
    np.testing.assert_array_equal(watches["true_extremeness"], world.catalog.extremeness[watches["item_id"]])
    # a click is on an item of the slate shown to that user one scan time earlier
    scan = sc.behaviour.choice.scan_time
    slates = imp.groupby(["user_id", "time"])["item_id"].apply(set)
    clicks = ev[(ev.event == "click") & (ev.time >= scan)]  # earlier ones answer warm-up slates
    assert len(clicks) > 20
    for user, time, item in zip(clicks.user_id, clicks.time, clicks.item_id):
        served = slates.loc[user]
        served_at = served.index[np.argmin(np.abs(served.index - (time - scan)))]
        assert served_at == pytest.approx(time - scan)
        assert item in served.loc[served_at]


def test_retrains_happen_on_schedule(tiny, tmp_path):
    sc = scenario_from_dict(tiny)
    result, *_ = _run(tiny, tmp_path, policy_index=2)
    expected = np.arange(-sc.warmup + sc.recommender.retrain_interval, sc.horizon + 1e-6, sc.recommender.retrain_interval)
    np.testing.assert_allclose(result.retrain_times, expected)


def test_metrics_are_tidy_and_cover_the_horizon(tiny, tmp_path):
    from recsim.metrics import FLOW_METRICS, STATE_METRICS

    _, _, metrics, _ = _run(tiny, tmp_path)
    assert list(metrics.columns) == ["metric", "kind", "start", "end", "value", "oracle"]
    assert not metrics["oracle"].any()
    flows = metrics[metrics.kind == "flow"]
    states = metrics[metrics.kind == "state"]
    assert set(flows.metric) == set(FLOW_METRICS)
    assert set(states.metric) == set(STATE_METRICS)
    n_buckets = 4  # 2 days in 12-hour buckets
    assert (flows.groupby("metric").size() == n_buckets).all()
    assert (states.groupby("metric").size() == n_buckets + 1).all()  # plus the t=0 snapshot
    watch = flows[flows.metric == "watch_minutes_per_user_day"]
    np.testing.assert_allclose(watch["end"] - watch["start"], 43200.0)


def test_flow_metrics_match_the_event_log(tiny, tmp_path):
    sc = scenario_from_dict(tiny)
    _, ev, metrics, _ = _run(tiny, tmp_path, policy_index=3)
    n = sc.population.n_users
    watches = ev[ev.event == "watch"]
    first = metrics[(metrics.metric == "watch_minutes_per_user_day") & (metrics.start == 0)]["value"].item()
    in_bucket = watches[watches.time < 43200.0]
    assert first == pytest.approx(in_bucket["watch_time"].sum() / 60 / (n * 0.5))
    ext = metrics[(metrics.metric == "consumed_extremeness") & (metrics.start == 0)]["value"].item()
    expected = np.average(in_bucket["true_extremeness"], weights=in_bucket["watch_time"])
    assert ext == pytest.approx(expected)
    sessions = metrics[(metrics.metric == "sessions_per_user_day") & (metrics.start == 0)]["value"].item()
    n_starts = ((ev.event == "session_start") & (ev.time < 43200.0)).sum()
    assert sessions == pytest.approx(n_starts / (n * 0.5))


def test_no_impressions_logged_when_disabled(tiny, tmp_path):
    tiny["outputs"]["log_impressions"] = False
    _, ev, _, _ = _run(tiny, tmp_path)
    assert "impression" not in set(ev["event"])
    assert (ev["event"] == "watch").any()


def test_churn_during_the_warmup_is_not_counted_in_the_horizon(tiny, tmp_path):
    """Users lost in the warm-up are `churned` at the `initial` stage already, and the
    headline churn rate counts only the horizon's churn events."""
    tiny["behaviour"] = {"churn": {"zeta0": -2.5}}  # churn often enough to see some in 1 day
    tiny["population"]["n_users"] = 30
    result, ev, metrics, users = _run(tiny, tmp_path)
    initial = users[users.stage == "initial"].set_index("user_id")["churned"]
    final = users[users.stage == "final"].set_index("user_id")["churned"]
    assert initial.any(), "the test needs some churn during the warm-up"
    assert (final | ~initial).all()  # once churned, always churned
    churn_events = (ev.event == "churn").sum()
    assert (final & ~initial).sum() == churn_events
    assert result.headline["churn_rate"] == pytest.approx(churn_events / 30)
    retained0 = metrics[(metrics.metric == "retained_users") & (metrics.end == 0)]["value"].item()
    assert retained0 == 30 - initial.sum()
