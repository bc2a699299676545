"""Creators who adapt (recsim.creators, docs/model.md §2.1): the item formula, the imitation
gap, the rules and their bounds, the direction of every creator update, the catalog revision
policies see, the creator metrics against direct computations, and bad input."""

from __future__ import annotations

import copy
import math
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from recsim.catalog import ADAPTED, item_attributes
from recsim.config import scenario_from_dict
from recsim.creators import (
    CREATOR_METRICS,
    CreatorPool,
    CreatorRule,
    Imitate,
    Static,
    build_creator_rule,
    imitation_gap,
)
from recsim.engine.batched import simulate_batched
from recsim.eventlog import EventLog
from recsim.policies.base import PolicyContext, Request, revise_items
from recsim.testing import CREATOR_RULE_CHECKS, CreatorRuleCheckError, check_creator_rule
from recsim.world import build_world

DAY = 86400.0

TINY = {
    "name": "creators",
    "seed": 5,
    "horizon": "3d",
    "warmup": "12h",
    "population": {"n_users": 120},
    "catalog": {"n_items": 400, "n_creators": 20, "upload_rate": "300/d",
                "creators": {"period": "1d", "split": "zipf"}},
    "recommender": {"slate_size": 5, "n_candidates": 40, "retrain_interval": "12h"},
    "outputs": {"metrics_interval": "1d"},
    "policies": ["chronological"],
}


def _scenario(**catalog_creators):
    data = copy.deepcopy(TINY)
    data["catalog"]["creators"].update(catalog_creators)
    return scenario_from_dict(data)


def _run(scenario, tmp_path: Path, tag: str = "run", log_impressions: bool = False):
    world = build_world(scenario, 0)
    path = tmp_path / f"{tag}.parquet"
    result = simulate_batched(world, scenario.policies[0], EventLog(path, log_impressions=log_impressions))
    events = pd.read_parquet(path) if path.exists() else pd.DataFrame()
    return world, result, events


# ----------------------------------------------------------------------------- items
def test_the_draws_remake_the_catalog_exactly_and_offsets_0_change_nothing():
    """item_attributes is the function the generator calls: from the kept draws it gives every
    item's attributes bit for bit; with creators at offset 0 the catalog is the one without."""
    plain = scenario_from_dict({k: v for k, v in TINY.items() if k != "catalog"} | {
        "catalog": {k: v for k, v in TINY["catalog"].items() if k != "creators"}})
    catalog = build_world(plain, 0).catalog
    made = item_attributes(plain.catalog, catalog.draws)
    for name in (*ADAPTED, "classifier"):
        np.testing.assert_array_equal(made[name], getattr(catalog, name), err_msg=name)
    zero = item_attributes(plain.catalog, catalog.draws, np.zeros((catalog.n_items, 3)))
    for name in (*ADAPTED, "classifier"):
        np.testing.assert_array_equal(zero[name], getattr(catalog, name), err_msg=name)
    uniform = build_world(_scenario(split="uniform"), 0).catalog  # the same draws, the same items
    for name in ("extremeness", "quality", "clickbait", "classifier", "creator", "upload_time", "length"):
        np.testing.assert_array_equal(getattr(uniform, name), getattr(catalog, name), err_msg=name)


def test_each_offset_moves_its_attribute_and_extremeness_lowers_quality_through_the_slope():
    sc = _scenario()
    cfg = sc.catalog
    draws = build_world(sc, 0).catalog.draws
    n = draws.extremeness.shape[0]
    base = item_attributes(cfg, draws, np.zeros((n, 3)))
    for j, name in enumerate(ADAPTED):
        offsets = np.zeros((n, 3))
        offsets[:, j] = 0.1
        made = item_attributes(cfg, draws, offsets)
        assert (made[name] >= base[name]).all() and made[name].mean() > base[name].mean() + 0.05, name
    offsets = np.zeros((n, 3))
    offsets[:, 0] = 0.1
    made = item_attributes(cfg, draws, offsets)
    assert (made["classifier"] >= base["classifier"]).all()  # the observable score follows the truth
    inside = (base["quality"] > 0.1) & (base["quality"] < 0.9) & (base["extremeness"] < 0.85)
    np.testing.assert_allclose(made["quality"][inside], base["quality"][inside] - cfg.quality.slope * 0.1, atol=1e-12)
    offsets[:, 0] = 5.0  # bounds: attributes stay in [0, 1] and quality in [min, max]
    offsets[:, 1] = -5.0
    made = item_attributes(cfg, draws, offsets)
    assert (made["extremeness"] == 1.0).all() and (made["quality"] == cfg.quality.min).all()


def test_zipf_split_gives_shares_proportional_to_rank_to_the_minus_s():
    """1000 creators × 20000 backlog items, s = 1: each of the top 5 creators' counts within
    4 binomial standard deviations of n·p_c."""
    sc = scenario_from_dict({**TINY, "catalog": {**TINY["catalog"], "n_items": 20000, "n_creators": 1000}})
    creator = build_world(sc, 0).catalog.creator[:20000]
    counts = np.bincount(creator, minlength=1000)
    p = 1.0 / np.arange(1, 1001)
    p /= p.sum()
    for c in range(5):
        sd = math.sqrt(20000 * p[c] * (1 - p[c]))
        assert abs(counts[c] - 20000 * p[c]) < 4 * sd, (c, counts[c], 20000 * p[c])


# ----------------------------------------------------------------------------- the gap
def test_imitation_gap_known_answer():
    creator = np.array([0, 0, 1, 1, 2])
    residual = np.zeros((5, 3))
    residual[:, 0] = [0.1, 0.5, 0.2, 0.4, 0.9]
    weight = np.array([0.0, 2.0, 1.0, 1.0, 0.0])
    gap, exposure = imitation_gap(creator, weight, residual, 4)
    # creator 0: all weight on the 0.5 item, mean 0.3 → +0.2; creator 1: equal weights → 0;
    # creator 2: no exposure → 0; creator 3: no items → 0
    np.testing.assert_allclose(gap[:, 0], [0.2, 0.0, 0.0, 0.0], atol=1e-15)
    assert (gap[:, 1:] == 0).all()
    np.testing.assert_array_equal(exposure, [2.0, 2.0, 0.0, 0.0])


def test_imitation_gap_agrees_with_a_direct_computation():
    g = np.random.default_rng(1)
    n, C = 500, 30
    creator = g.integers(0, C, n)
    weight = g.poisson(3.0, n).astype(float)
    residual = g.random((n, 3))
    gap, exposure = imitation_gap(creator, weight, residual, C)
    for c in range(C):
        mine = creator == c
        w = weight[mine]
        if w.sum() == 0:
            assert (gap[c] == 0).all()
            continue
        expected = (w[:, None] * residual[mine]).sum(0) / w.sum() - residual[mine].mean(0)
        np.testing.assert_allclose(gap[c], expected, rtol=1e-12, atol=1e-15)
        assert exposure[c] == w.sum()


def test_equal_weights_give_no_gap_exactly():
    g = np.random.default_rng(2)
    creator = g.integers(0, 10, 200)
    residual = g.random((200, 3))
    gap, _ = imitation_gap(creator, np.full(200, 3.0), residual, 10)
    np.testing.assert_allclose(gap, 0.0, atol=1e-15)


# ----------------------------------------------------------------------------- rules
def test_imitate_is_a_step_toward_the_gap_less_the_effort():
    rule = build_creator_rule("imitate", {"rate": 0.4, "effort_cost": 0.25})
    offsets = np.array([[0.2, -0.1, 0.0]])
    gap = np.array([[0.1, 0.1, -0.2]])
    np.testing.assert_allclose(rule.adapt(offsets, gap, np.ones(1)), 0.75 * offsets + 0.4 * gap)
    # direction: a positive gap raises the offset, a negative one lowers it; effort pulls to 0
    zero = np.zeros((1, 3))
    assert (rule.adapt(zero, np.array([[0.1, 0.1, 0.1]]), np.ones(1)) > 0).all()
    assert (rule.adapt(zero, np.array([[-0.1, -0.1, -0.1]]), np.ones(1)) < 0).all()
    np.testing.assert_allclose(np.abs(rule.adapt(offsets, np.zeros((1, 3)), np.ones(1))), 0.75 * np.abs(offsets))
    np.testing.assert_array_equal(Static().adapt(offsets, gap, np.ones(1)), offsets)


@pytest.mark.parametrize("name", ["imitate", "static"])
def test_built_in_rules_pass_their_conformance_check(name):
    check_creator_rule(name)


class _WrongShape(CreatorRule):
    def adapt(self, offsets, gap, exposure):
        return offsets[:, :2]


class _NotFinite(CreatorRule):
    def adapt(self, offsets, gap, exposure):
        return offsets / 0.0


class _Random(CreatorRule):
    def adapt(self, offsets, gap, exposure):
        return offsets + np.random.normal(size=offsets.shape)


class _Writes(CreatorRule):
    def adapt(self, offsets, gap, exposure):
        offsets += gap
        return offsets


class _Drawing(CreatorRule):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.g = np.random.default_rng(0)

    def adapt(self, offsets, gap, exposure):
        return offsets + self.g.normal(size=offsets.shape)


@pytest.mark.parametrize("rule, check", [
    (_WrongShape, "shape"), (_NotFinite, "finite"), (_Random, "no_global_random_state"),
    (_Writes, "no_mutation"), (_Drawing, "deterministic"),
])
def test_the_conformance_check_names_what_a_rule_breaks(rule, check):
    assert check in CREATOR_RULE_CHECKS
    with np.errstate(divide="ignore", invalid="ignore"), pytest.raises(CreatorRuleCheckError) as raised:
        check_creator_rule(rule)
    assert raised.value.check == check


# ----------------------------------------------------------------------------- the pool
def _pool(rule=None, **creators):
    sc = _scenario(**creators)
    world = build_world(sc, 0)
    return sc, world.catalog, CreatorPool(sc.catalog, world.catalog, rule)


def test_a_creator_whose_extreme_items_earned_exposure_makes_more_extreme_items_next_period():
    """Direction: impressions on creator 0's more extreme items only → its extremeness offset
    rises and its next uploads are more extreme; creators with no exposure keep offset 0."""
    sc, catalog, pool = _pool()
    now = DAY
    n = int(np.searchsorted(catalog.upload_time, now))
    mine = np.flatnonzero(catalog.creator[:n] == 0)
    extreme = mine[catalog.extremeness[mine] > np.median(catalog.extremeness[mine])]
    before = {name: getattr(catalog, name).copy() for name in (*ADAPTED, "classifier")}
    pool.on_impressions(np.repeat(extreme, 3)[:, None])
    pool.adapt(now)
    assert pool.offsets[0, 0] > 0.01
    assert (pool.offsets[1:] == 0).all()
    later = np.flatnonzero((catalog.upload_time >= now) & (catalog.creator == 0))
    assert later.shape[0] > 0
    assert catalog.extremeness[later].mean() > before["extremeness"][later].mean()
    assert (catalog.classifier[later] >= before["classifier"][later]).all()
    # items uploaded before the adaptation and other creators' items are untouched
    others = np.flatnonzero((catalog.upload_time < now) | (catalog.creator != 0))
    for name, values in before.items():
        np.testing.assert_array_equal(getattr(catalog, name)[others], values[others], err_msg=name)


@pytest.mark.parametrize("attribute", range(3))
def test_each_attribute_moves_toward_what_earned_exposure_and_away_from_what_did_not(attribute):
    sc, catalog, pool = _pool(params={"rate": 1.0})
    n = int(np.searchsorted(catalog.upload_time, DAY))
    values = getattr(catalog, ADAPTED[attribute])[:n]
    creator = catalog.creator[:n]
    high = np.flatnonzero((creator == 0) & (values > np.median(values[creator == 0])))
    low = np.flatnonzero((creator == 1) & (values < np.median(values[creator == 1])))
    pool.on_impressions(np.concatenate([high, low])[:, None])
    pool.adapt(DAY)
    assert pool.offsets[0, attribute] > 0 and pool.offsets[1, attribute] < 0


def test_with_no_exposure_signal_nothing_drifts():
    """No impressions at all: every gap is 0, offsets stay 0, the catalog is unchanged."""
    sc, catalog, pool = _pool()
    before = {name: getattr(catalog, name).copy() for name in (*ADAPTED, "classifier")}
    for k in range(1, 4):
        pool.adapt(k * DAY)
    assert (pool.offsets == 0).all()
    for name, values in before.items():
        np.testing.assert_array_equal(getattr(catalog, name), values, err_msg=name)


def test_exposure_independent_of_the_attributes_gives_no_drift_in_expectation():
    """Impressions drawn at random (Poisson, independent of every attribute) for 400 creators:
    the mean extremeness gap over creators is within 4 standard errors (its sample sd / √C) of
    0; the tolerance is sampling error, seed fixed."""
    sc = _scenario()
    data = sc.model_dump(mode="json")
    data["catalog"].update(n_items=8000, n_creators=400)
    data["catalog"]["creators"]["split"] = "uniform"
    sc = scenario_from_dict(data)
    catalog = build_world(sc, 0).catalog
    pool = CreatorPool(sc.catalog, catalog)
    n = int(np.searchsorted(catalog.upload_time, DAY))
    g = np.random.default_rng(3)
    weight = g.poisson(2.0, n).astype(float)
    gap, exposure = imitation_gap(catalog.creator[:n], weight, pool.base[:n], 400)
    for j in range(3):
        se = gap[:, j].std(ddof=1) / math.sqrt(400)
        assert abs(gap[:, j].mean()) < 4 * se, (ADAPTED[j], gap[:, j].mean(), se)
        assert gap[:, j].std() > 0  # the check has power: the gaps do vary


def test_offsets_stay_within_max_offset_and_only_the_adapted_attributes_move():
    sc, catalog, pool = _pool(params={"rate": 1000.0}, max_offset=0.2, adapt=["extremeness"])
    n = int(np.searchsorted(catalog.upload_time, DAY))
    pool.on_impressions(np.arange(n)[catalog.extremeness[:n] > 0.3][:, None])
    pool.adapt(DAY)
    assert np.abs(pool.offsets).max() == pytest.approx(0.2)
    assert (pool.offsets[:, 1:] == 0).all()


def test_a_rule_returning_the_wrong_shape_or_nan_is_refused_naming_the_field():
    for rule, fragment in ((_WrongShape(), "shape"), (_NotFinite(), "not finite")):
        _, _, pool = _pool(rule=rule)
        with np.errstate(divide="ignore", invalid="ignore"), pytest.raises(ValueError) as raised:
            pool.adapt(DAY)
        assert "catalog.creators.rule" in str(raised.value) and fragment in str(raised.value)


# ----------------------------------------------------------------------------- metrics
def test_bucket_metrics_known_answers():
    sc, catalog, pool = _pool()
    # top_creator_share: 20 creators → the top 2; creator 3 gets 60, creator 4 gets 30, ten
    # others 1 each → (60 + 30) / 100
    n = int(np.searchsorted(catalog.upload_time, DAY))
    shown = []
    for c, k in [(3, 60), (4, 30), *((c, 1) for c in range(5, 15))]:
        shown += [np.flatnonzero(catalog.creator[:n] == c)[0]] * k
    pool.on_impressions(np.array(shown)[:, None])
    pool.offsets[:, 1] = np.linspace(-0.1, 0.1, 20)
    pool.offsets[:, 2] = np.linspace(-0.1, 0.1, 20)
    out = pool.bucket_metrics(0.0, DAY)
    assert out["top_creator_share"] == pytest.approx(0.9)
    assert out["creator_quality_clickbait_corr"] > 0.99
    pool.offsets[:, 2] = -pool.offsets[:, 1]
    assert pool.bucket_metrics(0.0, DAY)["creator_quality_clickbait_corr"] < -0.99
    pool.offsets[:] = 0.0  # no variation in style: no correlation to speak of
    out = pool.bucket_metrics(0.0, DAY)
    assert math.isnan(out["creator_quality_clickbait_corr"]) and math.isnan(out["top_creator_share"])
    assert set(out) == set(CREATOR_METRICS)


def _reconstructed_catalog(scenario, table: dict[str, np.ndarray]):
    """The catalog at the end of a run, remade from the creators table alone: the items
    uploaded after each adaptation carry their creator's offsets of that adaptation."""
    catalog = build_world(scenario, 0).catalog
    offsets = np.zeros((catalog.n_items, 3))
    for t in np.unique(table["time"]):
        rows = table["time"] == t
        by_creator = np.column_stack([table[f"{name}_offset"][rows] for name in ADAPTED])
        later = catalog.upload_time >= t
        offsets[later] = by_creator[catalog.creator[later]]
    return catalog, item_attributes(scenario.catalog, catalog.draws, offsets)


@pytest.fixture(scope="module")
def engagement_run(tmp_path_factory):
    sc = scenario_from_dict({**_scenario(params={"rate": 2.0}).model_dump(mode="json"),
                             "policies": [{"name": "engagement", "type": "engagement", "params": {"min_clicks": 5}}]})
    world, result, events = _run(sc, tmp_path_factory.mktemp("creators"), log_impressions=True)
    return sc, world, result, events


def test_the_run_catalog_is_what_the_creators_table_says(engagement_run):
    """Every revised attribute of the run's catalog, remade from the creators table and the
    draws, bit for bit; and the creators did adapt."""
    sc, world, result, _ = engagement_run
    _, made = _reconstructed_catalog(sc, result.creators)
    for name in (*ADAPTED, "classifier"):
        np.testing.assert_array_equal(made[name], getattr(world.catalog, name), err_msg=name)
    assert np.abs(result.creators["extremeness_offset"]).max() > 0.01


def test_upload_and_exposure_metrics_agree_with_direct_computations_from_the_outputs(engagement_run):
    sc, world, result, events = engagement_run
    metrics = pd.DataFrame(result.metrics, columns=["metric", "kind", "start", "end", "value"])
    _, made = _reconstructed_catalog(sc, result.creators)
    upload = world.catalog.upload_time
    shown = events[events["event"].astype(str) == "impression"]
    creator = build_world(sc, 0).catalog.creator  # creators are observable labels: never revised
    checked = 0
    for (start, end), rows in metrics[metrics["metric"].isin(CREATOR_METRICS)].groupby(["start", "end"]):
        value = dict(zip(rows["metric"], rows["value"]))
        new = (upload >= start) & (upload < end)
        for name in ADAPTED:
            assert value[f"upload_{name}"] == pytest.approx(made[name][new].mean(), rel=1e-12)
            assert value[f"upload_{name}_sd"] == pytest.approx(made[name][new].std(ddof=1), rel=1e-12)
        in_bucket = shown[(shown["time"] >= start) & (shown["time"] < end)]
        per_creator = np.bincount(creator[in_bucket["item_id"].to_numpy()], minlength=sc.catalog.n_creators)
        top = np.sort(per_creator)[::-1][: math.ceil(0.1 * sc.catalog.n_creators)].sum()
        assert value["top_creator_share"] == pytest.approx(top / per_creator.sum(), rel=1e-12)
        checked += 1
    assert checked == 3


def test_policies_are_handed_the_revised_items_and_learned_caches_follow(engagement_run):
    """After a revision the context holds a new ObservableItems (the old one unchanged), and a
    learned ranker that cached per-item terms scores with the new features: its fast path
    equals a fresh copy of the policy on the same request."""
    sc, world, result, _ = engagement_run
    policy = result.policy
    items_before = world.catalog.observable()
    ctx = PolicyContext(n_topics=sc.catalog.n_topics, slate_size=5, n_candidates=40, retrain_interval=43200.0,
                        items=items_before, n_users=world.n_users)
    policy.context_ = ctx
    candidates = np.arange(world.catalog.n_items - 40, world.catalog.n_items)
    from recsim.policies.base import CandidateFeatures, History

    def request(items):
        return Request(user_id=0, now=3 * DAY, candidates=candidates, history=History(sc.catalog.n_topics),
                       features=CandidateFeatures(items, candidates, 3 * DAY), slate_size=5)

    policy.score(request(items_before), np.random.default_rng(0))  # fills the caches
    classifier = items_before.classifier.copy()
    classifier[candidates] = 1.0 - classifier[candidates]
    revised = type(items_before)(topics=items_before.topics, classifier=classifier, length=items_before.length,
                                 upload_time=items_before.upload_time, creator=items_before.creator)
    revise_items(ctx, revised)
    assert ctx.items is revised and items_before.classifier[candidates[0]] != classifier[candidates[0]]
    fresh = copy.deepcopy(policy)
    for name in ("static_features_", "linear_"):
        if hasattr(fresh, name):
            setattr(fresh, name, None)
    np.testing.assert_array_equal(policy.score(request(revised), np.random.default_rng(0)),
                                  fresh.score(request(revised), np.random.default_rng(0)))


def test_static_creators_change_no_event_and_no_other_metric(tmp_path):
    """rule: static (offsets stay 0): the events and every metric but the creators' own are the
    run's without catalog.creators."""
    with_static = _scenario(rule="static", split="uniform")
    data = with_static.model_dump(mode="json")
    data["catalog"]["creators"] = None
    without = scenario_from_dict(data)
    _, a, ev_a = _run(with_static, tmp_path, "static")
    _, b, ev_b = _run(without, tmp_path, "none")
    pd.testing.assert_frame_equal(ev_a, ev_b)
    rows_a = [r for r in a.metrics if r[0] not in CREATOR_METRICS]
    assert len(rows_a) == len(b.metrics)
    for x, y in zip(rows_a, b.metrics):
        assert x[:4] == y[:4] and (x[4] == y[4] or (math.isnan(x[4]) and math.isnan(y[4])))
    assert b.creators is None and (a.creators["extremeness_offset"] == 0).all()


# ----------------------------------------------------------------------------- emergent direction
def test_a_ranker_that_rewards_extremeness_makes_creators_more_extreme_and_one_that_penalizes_it_less(tmp_path):
    """Emergent, through the whole engine: ranking by the classifier score (most extreme first)
    raises the mean extremeness offset; ranking least extreme first lowers it."""
    results = {}
    for sign in (1, -1):
        module = tmp_path / f"rank_{'up' if sign > 0 else 'down'}.py"
        module.write_text(textwrap.dedent(f"""
            import numpy as np
            def rank(request, rng):
                order = np.argsort({-sign} * request.features.classifier, kind="stable")
                return request.candidates[order[: request.slate_size]]
        """))
        sys.path.insert(0, str(tmp_path))
        try:
            sc = scenario_from_dict({**_scenario(params={"rate": 1.0}).model_dump(mode="json"),
                                     "policies": [{"name": "rank", "type": f"{module.stem}:rank"}]})
            _, result, _ = _run(sc, tmp_path, module.stem)
        finally:
            sys.path.remove(str(tmp_path))
        last = result.creators["time"] == result.creators["time"].max()
        results[sign] = result.creators["extremeness_offset"][last].mean()
    assert results[1] > 0.02 and results[-1] < -0.02, results


# ----------------------------------------------------------------------------- bad input
def _recsim(*args, cwd):
    return subprocess.run([sys.executable, "-m", "recsim", *map(str, args)], capture_output=True, text=True, cwd=cwd)


@pytest.mark.parametrize("creators, fragments", [
    ({"rule": "nope"}, ["catalog.creators.rule", "unknown creator rule 'nope'", "imitate"]),
    ({"params": {"rate": -1}}, ["catalog.creators.params.rate", "greater than or equal to 0"]),
    ({"params": {"speed": 1}}, ["catalog.creators.params.speed"]),
    ({"params": {"effort_cost": 2}}, ["catalog.creators.params.effort_cost: must be in [0, 1]"]),
    ({"params": {"effort_cost": {"looks": 0.1}}}, ["catalog.creators.params.effort_cost.looks"]),
    ({"signal": "likes"}, ["catalog.creators.signal", "impressions", "watch_time"]),
    ({"adapt": ["length"]}, ["catalog.creators.adapt"]),
    ({"adapt": []}, ["catalog.creators.adapt", "at least 1"]),
    ({"split": "pareto"}, ["catalog.creators.split"]),
    ({"rule": "myrules:WrongShape"}, ["catalog.creators.rule", "'shape'"]),
    ({"rule": "myrules:NotARule"}, ["catalog.creators.rule", "not a subclass of recsim.creators.CreatorRule"]),
    ({"rule": "myrules:Raises"}, ["catalog.creators.rule", "RuntimeError: boom", "myrules.py"]),
    ({"rule": "myrules:FailsToInit"}, ["catalog.creators.rule", "TypeError: cannot init", "myrules.py"]),
    # right for the check's 50 creators, wrong for the scenario's 20: refused before the run
    ({"rule": "myrules:AlwaysFifty"}, ["catalog.creators.rule", "shape (50, 3) for 20 creators"]),
    ({"period": 0}, ["catalog.creators.period", "greater than 0"]),
    ({"period": "0d"}, ["catalog.creators.period", "greater than 0"]),
    ({"period": "1s"}, ["catalog.creators.period", "at most 100,000"]),
])
def test_bad_creators_input_is_one_screen_naming_the_field_exit_2(tmp_path, creators, fragments):
    from support import one_screen

    (tmp_path / "myrules.py").write_text(textwrap.dedent("""
        import numpy as np
        from recsim.creators import CreatorRule
        class WrongShape(CreatorRule):
            def adapt(self, offsets, gap, exposure):
                return offsets[:, :2]
        class Raises(CreatorRule):
            def adapt(self, offsets, gap, exposure):
                raise RuntimeError("boom")
        class NotARule:
            pass
        class AlwaysFifty(CreatorRule):
            def adapt(self, offsets, gap, exposure):
                return np.zeros((50, 3))
        class FailsToInit(CreatorRule):
            def __init__(self, params):
                raise TypeError("cannot init")
    """))
    data = copy.deepcopy(TINY)
    data["catalog"]["creators"] = creators
    import yaml

    (tmp_path / "s.yaml").write_text(yaml.safe_dump(data))
    for command in ("validate", "run"):
        one_screen(_recsim(command, "s.yaml", "--out", "out", cwd=tmp_path) if command == "run"
                   else _recsim(command, "s.yaml", cwd=tmp_path), 2, *fragments)
    assert not (tmp_path / "out").exists()


def test_a_rule_failing_during_the_run_is_one_screen_naming_the_task_and_the_line(tmp_path):
    from support import one_screen

    (tmp_path / "late.py").write_text(textwrap.dedent("""
        from recsim.creators import CreatorRule
        class Late(CreatorRule):
            def adapt(self, offsets, gap, exposure):
                if not offsets.any():  # passes the check (offsets drawn), fails in the run (they start at 0)
                    raise KeyError("creator 7")
                return offsets.copy()
    """))
    data = copy.deepcopy(TINY)
    data["catalog"]["creators"] = {"rule": "late:Late"}
    data["policies"] = ["chronological"]
    import yaml

    data["replications"] = 2
    (tmp_path / "s.yaml").write_text(yaml.safe_dump(data))
    for workers in ("1", "2"):  # in this process, and in a worker process: the same user line
        one_screen(_recsim("run", "s.yaml", "--out", f"out{workers}", "-q", "--no-report", "-j", workers,
                           cwd=tmp_path), 1, "KeyError", "chronological × replication", "late.py:6")


def test_validate_says_what_the_creators_do_and_notes_a_period_past_the_horizon(tmp_path):
    import yaml

    (tmp_path / "s.yaml").write_text(yaml.safe_dump(TINY))
    shown = _recsim("validate", "s.yaml", cwd=tmp_path)
    assert shown.returncode == 0, shown.stderr
    assert "  creators: 20 (zipf), imitate every 1 d from impressions\n" in shown.stdout
    only = _recsim("validate", "s.yaml", "--set", "catalog.creators.adapt=[clickbait]", cwd=tmp_path)
    assert "  creators: 20 (zipf), imitate every 1 d from impressions (clickbait only)\n" in only.stdout
    late = _recsim("validate", "s.yaml", "--set", "catalog.creators.period=3d", cwd=tmp_path)
    assert late.returncode == 0 and "creators never adapt" in " ".join(late.stdout.split())


def test_effort_costs_may_differ_by_attribute():
    rule = build_creator_rule("imitate", {"rate": 0.0, "effort_cost": {"quality": 0.5, "clickbait": 0.1}})
    offsets = np.array([[0.2, 0.2, 0.2]])
    np.testing.assert_allclose(rule.adapt(offsets, np.zeros((1, 3)), np.ones(1)), [[0.19, 0.1, 0.18]])
    with pytest.raises(Exception, match="effort_cost"):
        build_creator_rule("imitate", {"effort_cost": {"looks": 0.1}})
