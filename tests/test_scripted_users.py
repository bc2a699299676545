"""Scripted users (sock puppets, ``population.scripted``): the rules, the engine running them
beside the modelled users, and outputs that keep the two apart."""

from __future__ import annotations

import math
import pickle
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
import yaml

from recsim import analysis
from recsim.config import ScenarioError, scenario_from_dict
from recsim.engine.batched import simulate_batched
from recsim.engine.reference import simulate
from recsim.eventlog import EventLog
from recsim.experiment import run_experiment
from recsim.testing import ScriptedRuleCheckError, check_scripted_rule
from recsim.users.scripted import MostExtreme, Replay, ScriptedChoice, ScriptedRule, TopItem, build_rule
from recsim.world import build_world

BASE = {
    "name": "puppets",
    "seed": 11,
    "horizon": "2d",
    "warmup": "1d",
    "population": {"n_users": 30},
    "catalog": {"n_items": 300, "upload_rate": "150/d"},
    "recommender": {"slate_size": 6, "n_candidates": 40, "retrain_interval": "12h"},
    "outputs": {"metrics_interval": "12h"},
    "behaviour": {"churn": {"zeta0": -2.5}},
}
GROUPS = [
    {"name": "top", "n_users": 3, "rule": "top_item", "params": {"fraction": 0.5}},
    {"name": "extreme", "n_users": 3, "rule": "most_extreme"},
    {"name": "replayer", "n_users": 2, "rule": "replay", "params": {"items": [1, 2, 3], "then": "most_extreme",
                                                                    "then_params": {"oracle": True}}},
]


class _Catalog:
    """The two attributes the rules read."""

    def __init__(self, classifier, extremeness):
        self.classifier, self.extremeness = np.asarray(classifier), np.asarray(extremeness)
        self.n_items = self.classifier.shape[0]


def _scenario(policy="engagement", groups=GROUPS, **changes):
    spec = {"name": "engagement", "type": "engagement", "params": {"min_clicks": 5}} if policy == "engagement" else policy
    data = {**BASE, "policies": [spec], **changes}
    data["population"] = {**BASE["population"], "scripted": groups, **changes.get("population", {})}
    if not groups:
        data["population"].pop("scripted")
    return scenario_from_dict(data)


def _run(engine, scenario, path: Path):
    world = build_world(scenario, 0)
    log = EventLog(path, log_impressions=scenario.outputs.log_impressions, groups=world.groups,
                   user_limit=scenario.outputs.sampled_users(world.n_modelled))
    result = engine(world, scenario.policies[0], log)
    return result, pq.read_table(path).to_pandas()


# ----------------------------------------------------------------------------- rules
def test_the_rules_choose_what_they_say_on_slates_with_known_answers():
    catalog = _Catalog(classifier=[0.1, 0.9, 0.5, 0.2, 0.7], extremeness=[0.3, 0.1, 0.8, 0.2, 0.0])
    slates = np.array([[0, 1, 2], [3, 4, 0], [2, 0, 4]])
    watched = np.array([0, 1, 5])
    assert TopItem().choose(slates, catalog, watched).position.tolist() == [0, 0, 0]
    # classifier: item 1 (0.9), item 4 (0.7), item 4 (0.7); truth: item 2, item 0, item 2
    assert MostExtreme().choose(slates, catalog, watched).position.tolist() == [1, 1, 2]
    assert MostExtreme(oracle=True).choose(slates, catalog, watched).position.tolist() == [2, 2, 0]
    replay = Replay(items=[4, 3], then="most_extreme")
    picked = replay.choose(slates, catalog, watched)
    assert picked.direct.tolist() == [4, 3, -1]  # watches 0 and 1 replay the list, off the slate
    assert picked.position.tolist() == [-1, -1, 2]  # then the rule `then`
    assert TopItem(fraction=0.25).fraction == 0.25


@pytest.mark.parametrize("rule, params", [("top_item", {}), ("most_extreme", {"oracle": True}),
                                          ("replay", {"items": [5, 6], "then": "top_item"})])
def test_the_built_in_rules_pass_their_conformance_check(rule, params):
    check_scripted_rule(rule, params)


class _Random(ScriptedRule):
    def choose(self, slates, catalog, n_watched):
        return ScriptedChoice(np.random.randint(0, slates.shape[1], slates.shape[0]))


class _Floats(ScriptedRule):
    def choose(self, slates, catalog, n_watched):
        return ScriptedChoice(np.zeros(slates.shape[0]))


class _Both(ScriptedRule):
    def choose(self, slates, catalog, n_watched):
        return ScriptedChoice(np.zeros(slates.shape[0], dtype=int), slates[:, 0])


@pytest.mark.parametrize("cls, check", [(_Random, "no_global_random_state"), (_Floats, "shapes"), (_Both, "one_action")])
def test_the_conformance_check_catches_a_broken_rule(cls, check):
    with pytest.raises(ScriptedRuleCheckError) as info:
        check_scripted_rule(cls)
    assert info.value.check == check
    again = pickle.loads(pickle.dumps(info.value))
    assert again.check == check and str(again) == str(info.value)


@pytest.mark.parametrize("group, fragment", [
    ({"name": "b", "n_users": 2, "rule": "nope"}, "population.scripted.0.rule: unknown scripted rule 'nope'"),
    ({"name": "b", "n_users": 2, "rule": "top_item", "params": {"fraction": 2}}, "population.scripted.0.params.fraction"),
    ({"name": "b", "n_users": 2, "rule": "replay", "params": {"items": [10 ** 6]}}, "population.scripted.0.params.items"),
    ({"name": "modelled", "n_users": 2, "rule": "top_item"}, "population.scripted.0.name"),
    ({"name": "b", "n_users": 0, "rule": "top_item"}, "population.scripted.0.n_users"),
    ({"name": "b", "n_users": 2, "rule": "builtins:print"}, "not a subclass of recsim.users.scripted.ScriptedRule"),
])
def test_a_bad_scripted_group_is_a_scenario_error_naming_the_field(group, fragment):
    with pytest.raises(ScenarioError) as info:
        _scenario(groups=[group])
    assert fragment in str(info.value)


def test_group_names_must_be_unique():
    with pytest.raises(ScenarioError, match="population.scripted.1.name"):
        _scenario(groups=[{"name": "b", "n_users": 1, "rule": "top_item"}] * 2)


# ----------------------------------------------------------------------------- engine
@pytest.mark.parametrize("policy", ["engagement", "popularity", "random"])
def test_both_engines_run_scripted_users_alike(policy, tmp_path):
    scenario = _scenario(policy)
    ref, ref_events = _run(simulate, scenario, tmp_path / "ref.parquet")
    bat, bat_events = _run(simulate_batched, scenario, tmp_path / "bat.parquet")
    pd.testing.assert_frame_equal(bat_events, ref_events, check_exact=True)
    assert bat.group_headlines.keys() == ref.group_headlines.keys() == {"top", "extreme", "replayer"}
    for group, figures in ref.group_headlines.items():
        for key, value in figures.items():
            other = bat.group_headlines[group][key]
            assert other == value or (math.isnan(value) and math.isnan(other)), (group, key)
    assert bat.group_metrics == ref.group_metrics or all(
        a[:4] == b[:4] and (a[4] == b[4] or (math.isnan(a[4]) and math.isnan(b[4])))
        for g in ref.group_metrics for a, b in zip(bat.group_metrics[g], ref.group_metrics[g]))


def test_scripted_users_follow_their_rules_in_the_logs(tmp_path):
    scenario = _scenario("engagement")
    world = build_world(scenario, 0)
    _, events = _run(simulate_batched, scenario, tmp_path / "events.parquet")
    kind = events["event"].astype(str)
    watches = events[kind == "watch"]
    assert set(events["group"].dropna().astype(str)) == {"modelled", "top", "extreme", "replayer"}
    by_group = {g: w for g, w in watches.groupby(events.loc[kind == "watch", "group"].astype(str))}
    # top_item: position 1, half of each item's length
    top = by_group["top"]
    assert (top["position"] == 1).all()
    np.testing.assert_allclose(top["watch_fraction"], 0.5)
    # most_extreme: the highest classifier score of the slate shown
    shown = events[kind == "impression"]
    slates = shown.groupby(["user_id", "time"])["item_id"].apply(list)
    extreme = by_group["extreme"]
    clicks = events[(kind == "click") & (events["group"].astype(str) == "extreme")]
    assert len(clicks) > 10
    for _, click in clicks.iterrows():
        slate = slates.loc[(click["user_id"], click["time"] - scenario.behaviour.choice.scan_time)]
        assert click["item_id"] == slate[int(np.argmax(world.catalog.classifier[slate]))]
    assert (extreme["watch_fraction"] == 1.0).all()
    # replay: the first watches are the list, off the slate (position 0), in order
    replayer = events[(events["group"].astype(str) == "replayer")]
    assert replayer["user_id"].min() == 36


def test_replay_watches_the_list_first_then_follows_the_rule(tmp_path):
    """With no warm-up, a replaying user's first watches of the horizon are the list."""
    scenario = _scenario("random", groups=[GROUPS[2]], warmup="0s")
    _, events = _run(simulate_batched, scenario, tmp_path / "events.parquet")
    watches = events[(events["event"].astype(str) == "watch") & (events["group"].astype(str) == "replayer")]
    for _, mine in watches.groupby("user_id"):
        assert mine["item_id"].tolist()[:3] == [1, 2, 3]
        assert (mine["position"].to_numpy()[:3] == 0).all() and (mine["position"].to_numpy()[3:] > 0).all()


def test_modelled_users_figures_exclude_scripted_users_exactly(tmp_path):
    """Under `random` (which learns nothing from the logs) the modelled users live exactly as
    without the scripted ones (common random numbers: their streams are their own), so every
    modelled figure is the same to the bit; under `popularity` the puppets' clicks feed the
    ranking and the modelled users' figures move: an audit perturbs what it measures."""
    for policy, same in (("random", True), ("popularity", False)):
        alone, _ = _run(simulate_batched, _scenario(policy, groups=[]), tmp_path / f"{policy}-alone.parquet")
        with_bots, _ = _run(simulate_batched, _scenario(policy), tmp_path / f"{policy}-bots.parquet")
        if same:
            assert with_bots.headline.keys() == alone.headline.keys()
            for key, value in alone.headline.items():
                assert with_bots.headline[key] == value or (math.isnan(value) and math.isnan(with_bots.headline[key])), key
            assert with_bots.metrics == alone.metrics or all(
                a[:4] == b[:4] and (a[4] == b[4] or (math.isnan(a[4]) and math.isnan(b[4])))
                for a, b in zip(with_bots.metrics, alone.metrics))
        else:
            assert with_bots.headline["consumed_extremeness"] != alone.headline["consumed_extremeness"]


def test_scripted_users_never_churn_and_are_always_logged(tmp_path):
    scenario = _scenario("random", behaviour={"churn": {"zeta0": 60.0}},
                         outputs={**BASE["outputs"], "event_sample": 0.1})
    result, events = _run(simulate_batched, scenario, tmp_path / "events.parquet")
    churned = result.final_state["churned"]
    assert churned[:30].mean() > 0.9 and not churned[30:].any()
    logged = set(events["user_id"].unique().tolist()) - {-1}
    assert logged <= set(range(3)) | set(range(30, 38)) and set(range(30, 38)) <= logged
    # churn_rate counts the horizon only (many left during the warm-up)
    assert result.headline["churn_rate"] > 0 and result.group_headlines["top"]["churn_rate"] == 0.0


def test_a_run_keeps_the_groups_apart_in_every_output(tmp_path):
    scenario = _scenario("engagement", replications=2)
    path = run_experiment(scenario, tmp_path / "run", workers=1)
    run = analysis.load_run(path)
    assert run.scripted_groups == ["top", "extreme", "replayer"]
    assert (run.metrics["group"] == "modelled").all()
    assert list(run.group_metrics["group"].cat.categories) == ["modelled", "top", "extreme", "replayer"]
    assert run.users["user_id"].max() == 29 and run.all_users["user_id"].max() == 37
    assert run.all_users.groupby("group", observed=True)["user_id"].nunique().to_dict() == {
        "modelled": 30, "top": 3, "extreme": 3, "replayer": 2}
    assert run.events(["user_id"], event="watch")["user_id"].max() < 30
    groups = run.groups
    assert set(groups["group"]) == {"top", "extreme", "replayer"} and set(groups["replication"]) == {0, 1}
    table = analysis.group_summary(run)
    assert list(dict.fromkeys(table["group"])) == ["modelled", "top", "extreme", "replayer"]
    # direct computation: the modelled rows are the replications' headline figures
    row = table[(table["group"] == "modelled") & (table["metric"] == "consumed_extremeness")].iloc[0]
    assert row["mean"] == pytest.approx(run.replications["consumed_extremeness"].mean())
    from recsim.report import write_report

    html = write_report(path).read_text()
    assert "Scripted users" in html and "replayer" in html


def test_a_users_own_rule_runs_and_a_broken_one_is_refused_before_the_run(tmp_path):
    (tmp_path / "my_rules.py").write_text(textwrap.dedent("""
        import numpy as np
        from recsim.users.scripted import ScriptedChoice, ScriptedRule

        class LastItem(ScriptedRule):
            def choose(self, slates, catalog, n_watched):
                return ScriptedChoice(np.full(slates.shape[0], slates.shape[1] - 1))

        class Broken(ScriptedRule):
            def choose(self, slates, catalog, n_watched):
                return ScriptedChoice(np.full(slates.shape[0], 99))
    """))
    data = {**BASE, "replications": 1, "policies": ["chronological"],
            "population": {"n_users": 10, "scripted": [{"name": "last", "n_users": 2, "rule": "my_rules:LastItem"}]}}
    good = tmp_path / "good.yaml"
    good.write_text(yaml.safe_dump(data))
    done = subprocess.run([sys.executable, "-m", "recsim", "run", good, "--out", tmp_path / "run", "-q", "--no-report"],
                          capture_output=True, text=True, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    events = analysis.load_run(tmp_path / "run").events(["position", "group"], event="watch", scripted=True)
    assert (events.loc[events["group"] == "last", "position"] == 6).all()
    data["population"]["scripted"][0]["rule"] = "my_rules:Broken"
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump(data))
    refused = subprocess.run([sys.executable, "-m", "recsim", "validate", bad], capture_output=True, text=True, cwd=tmp_path)
    assert refused.returncode == 2 and "Traceback" not in refused.stderr
    assert "population.scripted.0.rule" in refused.stderr and "in_range" in refused.stderr


def test_build_rule_reads_parameters():
    assert build_rule("replay", {"items": [1], "then": "top_item"}).then.__class__ is TopItem


@pytest.mark.parametrize("engine", [simulate_batched, simulate], ids=["batched", "reference"])
def test_a_rule_watching_an_item_before_its_upload_is_refused(engine, tmp_path):
    """An item id off the slate must already be on the platform: the last item of the catalog is
    uploaded at the end of the horizon, so watching it on day 1 is a broken rule, not a watch."""
    import types

    module = types.ModuleType("future_rules")

    class FromTheFuture(ScriptedRule):
        def choose(self, slates, catalog, n_watched):
            n = slates.shape[0]
            return ScriptedChoice(np.full(n, -1), np.full(n, catalog.n_items - 1))

    module.FromTheFuture = FromTheFuture
    sys.modules["future_rules"] = module
    try:
        sc = _scenario("chronological", groups=[{"name": "future", "n_users": 2, "rule": "future_rules:FromTheFuture"}])
        world = build_world(sc, 0)
        assert world.catalog.upload_time[-1] > 3600  # uploaded well after the first requests
        with pytest.raises(Exception, match="not yet uploaded"):
            _run(engine, sc, tmp_path / "events.parquet")
    finally:
        del sys.modules["future_rules"]
