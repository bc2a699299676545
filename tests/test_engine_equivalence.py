"""The batched engine writes the reference engine's event log and metrics, bit for bit.

Each case runs one tiny scenario × policy through both engines on the same world (same seed)
and compares everything a run produces: the event log row by row (order included), the metric
rows, the headline figures, the per-user totals, the initial and final hidden state, the retrain
times and the number of decisions. The scenarios are chosen so that every kind of event occurs
(the test checks that it does): sessions, clicks and no-click exits, returns, churn, surveys,
uploads during the run, retrains, breaks, the warm-up, and user code without a batch method.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from recsim.config import scenario_from_dict
from recsim.engine.batched import OnlinePolicyError, simulate_batched
from recsim.engine.reference import simulate
from recsim.eventlog import EventLog
from recsim.policies.base import Policy
from recsim.world import build_world

SCENARIOS = Path(__file__).resolve().parent.parent / "scenarios"

BASE = {
    "name": "equivalence",
    "seed": 11,
    "horizon": "2d",
    "warmup": "1d",
    "replications": 1,
    "population": {"n_users": 40},
    "catalog": {"n_items": 300, "upload_rate": "150/d"},
    "recommender": {"slate_size": 6, "n_candidates": 40, "retrain_interval": "12h"},
    "outputs": {"metrics_interval": "12h"},
    "behaviour": {"survey": {"probability": 0.3}, "churn": {"zeta0": -2.5}},
}

CASES = {
    "engagement_oracle": "engagement_oracle",
    "attribute_oracle": {"name": "choc", "type": "attribute_oracle"},
    "click_value_oracle": "click_value_oracle",
    "wellbeing_oracle": "wellbeing_oracle",
    "random": "random",
    "chronological": "chronological",
    "popularity": "popularity",
    "engagement": {"name": "engagement", "type": "engagement", "params": {"min_clicks": 5}},
    "harm_penalized": {"name": "harm", "type": "harm_penalized", "params": {"min_clicks": 5}},
    "stated_preference": {"name": "stated", "type": "stated_preference", "params": {"min_clicks": 5}},
    "bandit": "bandit",
    "breaks": {"name": "breaks", "type": "break_suggesting",
               "params": {"budget": "10m", "base": {"type": "chronological"}}},
    "diversity": {"name": "mmr", "type": "diversity", "params": {"base": {"type": "engagement", "params": {"min_clicks": 5}}}},
    "epsilon_greedy": {"name": "eps", "type": "epsilon_greedy", "params": {"base": {"type": "chronological"}}},
    "calibrated": {"name": "cal", "type": "calibrated", "params": {"base": {"type": "engagement", "params": {"min_clicks": 5}}}},
    "matrix_factorization": {"name": "mf", "type": "matrix_factorization", "params": {"explore": 0.2}},
    "user_code": {"name": "mine", "type": "my_policies:RelevantAndMild"},
    # a reinforcement-learning agent as a policy (recsim.gym): recommend on the reference
    # engine builds each request's observation alone, recommend_batch the batch's
    "agent": {"name": "agent", "type": "recsim.gym:AgentPolicy", "params": {"agent": "test_gym:RELEVANCE"}},
}


def _run(engine, scenario, tmp_path: Path, tag: str):
    world = build_world(scenario, 0)
    path = tmp_path / f"{tag}.parquet"
    log = EventLog(path, log_impressions=scenario.outputs.log_impressions)
    result = engine(world, scenario.policies[0], log)
    table = pq.read_table(path).to_pandas() if path.exists() else pd.DataFrame()
    return result, table


def _compare(scenario, tmp_path: Path) -> pd.DataFrame:
    ref, ref_events = _run(simulate, scenario, tmp_path, "reference")
    bat, bat_events = _run(simulate_batched, scenario, tmp_path, "batched")
    assert len(ref_events) > 0
    pd.testing.assert_frame_equal(bat_events, ref_events, check_exact=True)
    assert bat.n_decisions == ref.n_decisions
    assert bat.n_events == ref.n_events
    assert bat.retrain_times == ref.retrain_times
    assert len(bat.metrics) == len(ref.metrics)
    for a, b in zip(bat.metrics, ref.metrics):
        assert a[:4] == b[:4]
        assert a[4] == b[4] or (math.isnan(a[4]) and math.isnan(b[4])), (a, b)
    assert bat.headline.keys() == ref.headline.keys()
    for key, value in ref.headline.items():
        assert bat.headline[key] == value or (math.isnan(value) and math.isnan(bat.headline[key])), key
    for key, value in ref.user_totals.items():
        np.testing.assert_array_equal(bat.user_totals[key], value, err_msg=key)
    for state_b, state_r in ((bat.initial_state, ref.initial_state), (bat.final_state, ref.final_state)):
        assert state_b.keys() == state_r.keys()
        for key, value in state_r.items():
            np.testing.assert_array_equal(state_b[key], value, err_msg=key)
    return ref_events


@pytest.fixture(autouse=True)
def _scenario_dir_on_path(monkeypatch):
    monkeypatch.syspath_prepend(str(SCENARIOS))  # for my_policies


def test_every_built_in_policy_is_compared():
    from recsim.policies.registry import BUILTIN_POLICIES

    compared = {spec if isinstance(spec, str) else spec["type"] for spec in CASES.values()}
    assert set(BUILTIN_POLICIES) <= compared, set(BUILTIN_POLICIES) - compared


@pytest.mark.parametrize("case", list(CASES))
def test_batched_engine_matches_reference(case, tmp_path):
    scenario = scenario_from_dict({**BASE, "policies": [CASES[case]]})
    events = _compare(scenario, tmp_path)
    kinds = set(events["event"].astype(str))
    # the scenario exercises what the equivalence is about
    assert {"session_start", "impression", "click", "watch", "session_end", "survey", "churn"} <= kinds, kinds
    sessions = events[events["event"].astype(str).isin(["session_start", "watch"])]
    per_session = sessions.groupby(["user_id", "session"])["event"].agg(lambda e: (e.astype(str) == "watch").sum())
    assert (per_session == 0).any(), "some session ends without a click"
    assert (events.groupby("user_id")["session"].max() > 1).any(), "users return"
    if case == "breaks":
        assert "break" in kinds
    if case in ("engagement", "popularity", "bandit", "matrix_factorization"):
        assert "retrain" in kinds
    # items uploaded during the run are served
    scenario_world = build_world(scenario, 0)
    uploaded_late = scenario_world.catalog.upload_time > scenario_world.start
    served = events.loc[events["event"].astype(str) == "impression", "item_id"].to_numpy()
    assert uploaded_late[served].any()


def test_equivalence_without_warmup_impressions_and_with_small_catalog(tmp_path):
    """No warm-up, impressions not logged, and a catalog smaller than the candidate count at
    first (every available item is a candidate; ragged candidate lists)."""
    data = {
        **BASE,
        "warmup": "0s",
        "catalog": {"n_items": 60, "upload_rate": "200/d"},
        "outputs": {"metrics_interval": "7h", "log_impressions": False},
        "policies": [{"name": "engagement", "type": "engagement", "params": {"min_clicks": 5}}],
    }
    events = _compare(scenario_from_dict(data), tmp_path)
    assert "impression" not in set(events["event"].astype(str))


#: one scenario per built-in alternative component (and one of the reader's own): both
#: engines run every user model the same way
USER_MODELS = {
    "proportional": {"choice": {"type": "proportional", "params": {"score": "relevance"}}},
    "cascade": {"choice": {"type": "cascade", "params": {"attention": 0.8}}},
    "first_item+patience": {"choice": "first_item", "session": {"type": "patience", "params": {"initial": 2}}},
    "time_budget": {"session": {"type": "time_budget", "params": {"budget": "20m", "min_budget": "1s"}},
                    "response": "budget_watch"},
    "lts": {"choice": "first_item", "response": "lts_engagement", "transition": "lts_exposure",
            "value": "lts_kale", "relaxation": "none", "churn": "never",
            "session": {"type": "time_budget", "params": {"budget": "10m", "extension": 0.0}}},
    "poisson+never": {"returns": {"type": "poisson", "params": {"rate": "4/d"}}, "survey": "never"},
    "own": {"choice": {"type": "my_user_model:Satisficing", "params": {"aspiration": 3.0}}},
}


@pytest.mark.parametrize("case", list(USER_MODELS))
def test_both_engines_run_every_user_model_alike(case, tmp_path):
    data = {**BASE, "user_model": USER_MODELS[case], "policies": ["engagement_oracle"]}
    if case == "lts":
        data["catalog"] = {**BASE["catalog"], "clickbait": {"values": [0.0, 1.0]}, "length": {"median": "1h"}}
    events = _compare(scenario_from_dict(data), tmp_path)
    assert (events["event"].astype(str) == "watch").sum() > 50


class _Online(Policy):
    online = True

    def recommend(self, request, rng):
        return request.candidates[: request.slate_size]


def test_online_policy_is_refused_with_a_clear_message(monkeypatch):
    import recsim.engine.core as core

    scenario = scenario_from_dict({**BASE, "policies": ["random"]})
    monkeypatch.setattr(core, "build_policy", lambda spec: _Online())
    with pytest.raises(OnlinePolicyError, match="reference"):
        simulate_batched(build_world(scenario, 0), scenario.policies[0], EventLog(None))


class OnlineFirstK(Policy):
    """Learns after every event (as far as the engines know): only the reference engine runs it."""

    online = True

    def recommend(self, request, rng):
        return request.candidates[: request.slate_size]


def test_online_policy_runs_on_the_reference_engine_with_a_warning(tmp_path):
    from recsim.engine import engine_for
    from recsim.engine import simulate as dispatch

    scenario = scenario_from_dict({**BASE, "policies": [{"name": "online", "type": f"{__name__}:OnlineFirstK"}]})
    assert scenario.engine == "batched"
    world = build_world(scenario, 0)
    with pytest.warns(UserWarning, match="reference engine"):
        assert engine_for(world, scenario.policies[0]) == "reference"
    with pytest.warns(UserWarning, match="learns after every event"):
        result = dispatch(world, scenario.policies[0], EventLog(tmp_path / "a.parquet"))
    expected = simulate(build_world(scenario, 0), scenario.policies[0], EventLog(tmp_path / "b.parquet"))
    assert result.n_decisions == expected.n_decisions > 0
    pd.testing.assert_frame_equal(pq.read_table(tmp_path / "a.parquet").to_pandas(),
                                  pq.read_table(tmp_path / "b.parquet").to_pandas())


def test_a_candidate_window_serves_recent_items_alike_in_both_engines(tmp_path):
    """recommender.candidate_window: both engines draw every candidate among the items uploaded
    in the window before the request (or the n_candidates most recent, when fewer were)."""
    window = 6 * 3600.0
    data = {**BASE, "recommender": {**BASE["recommender"], "candidate_window": "6h"},
            "policies": ["engagement_oracle"]}
    scenario = scenario_from_dict(data)
    events = _compare(scenario, tmp_path)
    world = build_world(scenario, 0)
    upload = world.catalog.upload_time
    shown = events[events["event"].astype(str) == "impression"]
    assert len(shown) > 100
    t = shown["time"].to_numpy()
    items = shown["item_id"].to_numpy()
    n_avail = np.searchsorted(upload, t, side="right")
    in_window = upload[items] > t - window
    among_most_recent = items >= n_avail - scenario.recommender.n_candidates
    assert (in_window | among_most_recent).all()
    assert (items < n_avail).all()
    # and it is a real restriction: without the window, old items are served too
    plain = _compare(scenario_from_dict({**BASE, "policies": ["engagement_oracle"]}), tmp_path / "plain")
    old = plain[plain["event"].astype(str) == "impression"]
    old_t, old_items = old["time"].to_numpy(), old["item_id"].to_numpy()
    assert (upload[old_items] <= old_t - window).mean() > 0.5


def test_scripted_users_bots_and_adapting_creators_run_alike_in_both_engines(tmp_path):
    """Scripted groups (every built-in rule, a replay off the slate included), a takeover of
    modelled users by bots and creators who adapt from watch time (the catalog revised every
    12 h), under a learned ranker that trains on their feedback and caches item features:
    both engines write the same events group by group, the same metrics and the same creators."""
    data = {
        **BASE,
        "catalog": {**BASE["catalog"], "n_creators": 30,
                    "creators": {"split": "zipf", "period": "12h", "signal": "watch_time", "params": {"rate": 3.0}}},
        "population": {
            "n_users": 40,
            "scripted": [
                {"name": "top", "n_users": 3, "rule": "top_item", "params": {"fraction": 0.5}},
                {"name": "extreme", "n_users": 3, "rule": "most_extreme", "params": {"oracle": True}},
                {"name": "replay", "n_users": 2, "rule": "replay", "params": {"items": [5, 6, 7]}},
            ],
            "takeover": {"users": 6, "after_watches": 3, "rule": "most_extreme"},
        },
        "recommender": {**BASE["recommender"], "candidate_window": "12h"},
        "policies": [{"name": "engagement", "type": "engagement", "params": {"min_clicks": 5}}],
    }
    scenario = scenario_from_dict(data)
    world = build_world(scenario, 0)
    frames = []
    for engine, tag in ((simulate, "reference"), (simulate_batched, "batched")):
        path = tmp_path / f"{tag}.parquet"
        log = EventLog(path, groups=build_world(scenario, 0).groups)
        result = engine(build_world(scenario, 0), scenario.policies[0], log)
        frames.append((result, pq.read_table(path).to_pandas()))
    (ref, ref_events), (bat, bat_events) = frames
    pd.testing.assert_frame_equal(bat_events, ref_events, check_exact=True)
    assert bat.n_decisions == ref.n_decisions and bat.retrain_times == ref.retrain_times
    assert set(ref_events["group"].dropna().astype(str)) == {"modelled", "top", "extreme", "replay"}
    watched_off_slate = ref_events[(ref_events["event"].astype(str) == "watch") & (ref_events["position"] == 0)]
    assert len(watched_off_slate) > 0 and world.n_users == 48
    assert len(bat.metrics) == len(ref.metrics)
    for a, b in zip(bat.metrics, ref.metrics):
        assert a[:4] == b[:4] and (a[4] == b[4] or (math.isnan(a[4]) and math.isnan(b[4]))), (a, b)
    assert ref.creators.keys() == bat.creators.keys()
    for name, values in ref.creators.items():
        np.testing.assert_array_equal(bat.creators[name], values, err_msg=name)
    # the creators did adapt (three times: at 12 h, 24 h and 36 h of the 2-day horizon)
    assert np.unique(ref.creators["time"]).tolist() == [43200.0, 86400.0, 129600.0]
    assert np.abs(ref.creators["extremeness_offset"]).max() > 0.01
