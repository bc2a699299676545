"""The measures behind the Goodhart metrics, each against a direct computation and a synthetic
case with a known answer: proxy validity and top-k regret on a panel no policy chose,
coverage, exposure Gini, homogenization, churn and survival, the distance to the
natural-drift twin, and the oracles that bound them."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from recsim.config import scenario_from_dict
from recsim.experiment import partition, run_experiment
from recsim.measures import gini, jaccard_pairs, spearman_rows, topk_regret
from recsim.metrics import MetricsCollector, proxy_panel
from recsim.policies.builtin import ClickValueOracle, WellbeingOracle
from recsim.users import ValueModel
from recsim.world import build_world


# ----------------------------------------------------------------------------- pure measures
def test_spearman_rows_is_scipys_row_by_row_with_ties():
    g = np.random.default_rng(1)
    x = g.integers(0, 6, (40, 25)).astype(float)  # many ties
    y = x + g.normal(0, 2, x.shape)
    got = spearman_rows(x, y)
    for i in range(40):
        assert got[i] == pytest.approx(stats.spearmanr(x[i], y[i]).statistic, abs=1e-12)
    assert np.isnan(spearman_rows(np.ones((1, 5)), y[:1, :5]))[0]  # constant row
    assert np.isnan(spearman_rows(x[:, :2], y[:, :2])).all()  # fewer than 3 values


def test_topk_regret_direct_and_known_answers():
    g = np.random.default_rng(2)
    value = g.normal(size=(30, 20))
    proxy = g.normal(size=(30, 20))
    got = topk_regret(proxy, value, 5)
    for i in range(30):
        best = np.sort(value[i])[::-1][:5].mean()
        chosen = value[i][np.argsort(-proxy[i], kind="stable")[:5]].mean()
        assert got[i] == pytest.approx(best - chosen)
    assert (got >= -1e-12).all()
    np.testing.assert_allclose(topk_regret(3 * value + 1, value, 5), 0.0, atol=1e-12)  # same order
    worst = np.sort(value, axis=1)
    np.testing.assert_allclose(topk_regret(-value, value, 5), worst[:, ::-1][:, :5].mean(1) - worst[:, :5].mean(1))


def test_gini_direct_and_known_answers():
    g = np.random.default_rng(3)
    x = g.integers(0, 50, 200).astype(float)
    # mean absolute difference form: G = Σ_i Σ_j |x_i − x_j| / (2 n² mean)
    direct = np.abs(x[:, None] - x[None, :]).sum() / (2 * x.shape[0] ** 2 * x.mean())
    assert gini(x) == pytest.approx(direct)
    assert gini(np.full(10, 3.0)) == pytest.approx(0.0)
    assert gini(np.r_[np.zeros(9), 5.0]) == pytest.approx(0.9)  # (n − 1)/n: all on one item
    assert math.isnan(gini(np.zeros(4)))


def _jaccard_direct(users, items, pairs) -> float:
    """The mean of |A ∩ B| / |A ∪ B| over the pairs with Python sets, added in pair order."""
    sets = {}
    for u, i in zip(users.tolist(), items.tolist()):
        sets.setdefault(u, set()).add(i)
    total = 0.0
    for a, b in pairs.tolist():
        A, B = sets.get(a, set()), sets.get(b, set())
        total += len(A & B) / len(A | B) if A | B else 0.0
    return total / len(pairs)


def test_jaccard_pairs_against_python_sets():
    g = np.random.default_rng(4)
    users = g.integers(0, 8, 120)
    items = g.integers(0, 30, 120)
    pairs = np.array(list(itertools.combinations(range(9), 2)))  # user 8 watched nothing
    assert jaccard_pairs(users, items, pairs) == _jaccard_direct(users, items, pairs)
    # many users and pairs: repeated watches, negative ids, a user paired with itself, pairs
    # repeated and users in pairs who watched nothing, users beyond the watchers' ids
    for seed in range(5):
        g = np.random.default_rng(seed)
        users = g.integers(-3, 300, 5000)
        items = g.integers(-2, 80 + 400 * seed, 5000)
        pairs = g.integers(-5, 320, (2000, 2))
        pairs[:10, 1] = pairs[:10, 0]
        pairs[10:20] = pairs[:10]
        assert jaccard_pairs(users, items, pairs) == _jaccard_direct(users, items, pairs)
    assert jaccard_pairs(np.array([], dtype=np.int64), np.array([], dtype=np.int64), np.array([[0, 1]])) == 0.0
    assert jaccard_pairs(np.array([0, 1]), np.array([5, 5]), np.array([[0, 1]])) == 1.0  # same sets
    assert math.isnan(jaccard_pairs(users, items, np.empty((0, 2), dtype=np.int64)))


# ----------------------------------------------------------------------------- the proxy panel
class ValueIsAllure(ValueModel):
    """A world in which what pulls is exactly what helps."""

    def value(self, state, items, terms, watch_time):
        return 2.0 * terms["allure"] + 1.0


class ValueIsMinusAllure(ValueModel):
    """A world in which what pulls is exactly what harms."""

    def value(self, state, items, terms, watch_time):
        return -terms["allure"]


def _panel(value_type: str | None, size: int = 40):
    data = {
        "name": "panel", "seed": 4, "warmup": "0s", "horizon": "1d", "policies": ["random"],
        "population": {"n_users": 30},
        # one length for every item: the expected watch time then rises with allure alone
        "catalog": {"n_items": 400, "length": {"median": "4m", "log_sd": 0.0}},
    }
    if value_type:
        data["user_model"] = {"value": f"{__name__}:{value_type}"}
    sc = scenario_from_dict(data)
    world = build_world(sc, 0)
    n = world.n_users
    keys = np.arange(n, dtype=np.uint64) * np.uint64(0x9E3779B97F4A7C15) + np.uint64(7)
    return proxy_panel(world.model, world.state, np.arange(n), np.zeros(n, bool), np.zeros(n), 0.0,
                       world.catalog, world.catalog.n_items, keys, 0, size, 5)


def test_panel_known_answers():
    """Value ∝ allure: the proxy (expected watch time, increasing in allure at a fixed length)
    ranks items exactly by value — validity 1, regret 0. Value = −allure: validity −1."""
    validity, regret = _panel("ValueIsAllure")
    np.testing.assert_allclose(validity, 1.0, atol=1e-12)
    np.testing.assert_allclose(regret, 0.0, atol=1e-12)
    validity, regret = _panel("ValueIsMinusAllure")
    np.testing.assert_allclose(validity, -1.0, atol=1e-12)
    assert (regret > 0).all()


def test_panel_of_the_default_model_is_between_the_extremes():
    validity, regret = _panel(None)
    assert (np.abs(validity) < 1).all() and (regret >= 0).all()


def test_panel_is_the_same_for_a_user_whoever_else_is_measured():
    """Common random numbers: a user's panel is drawn from their own stream."""
    sc = scenario_from_dict({"name": "p", "warmup": "0s", "policies": ["random"], "population": {"n_users": 20},
                             "catalog": {"n_items": 300}})
    world = build_world(sc, 0)
    n = world.n_users
    keys = np.arange(n, dtype=np.uint64) * np.uint64(0x9E3779B97F4A7C15) + np.uint64(9)
    args = (np.zeros(n, bool), np.zeros(n), 0.0, world.catalog, 300, keys, 50, 30, 5)
    everyone = proxy_panel(world.model, world.state, np.arange(n), *args)
    some = proxy_panel(world.model, world.state, np.array([3, 11]), *args)
    np.testing.assert_array_equal(some[0], everyone[0][[3, 11]])
    np.testing.assert_array_equal(some[1], everyone[1][[3, 11]])


# ----------------------------------------------------------------------------- bucket measures
def test_coverage_gini_and_homogenization_of_a_bucket():
    m = MetricsCollector(4, 2, 0.4, np.ones((10, 2)))
    m.on_impressions(np.array([[0, 1, 2], [0, 1, 3]]))
    m.on_impressions(np.array([0, 9]))  # item 9 is not available yet at the bucket's end
    m.on_watch_item(0, 10.0, 60.0, 0.1, 0.2, 0)
    m.on_watch_item(1, 20.0, 60.0, 0.1, 0.2, 0)
    m.on_watch_item(1, 30.0, 60.0, 0.1, 0.2, 1)
    m.close_bucket(0.0, 86400.0, n_available=8)
    rows = {name: value for name, _, _, _, value in m.rows}
    assert rows["coverage_shown"] == 4 / 8  # items 0, 1, 2, 3 of 8
    assert rows["coverage_watched"] == 2 / 8
    assert rows["exposure_gini"] == pytest.approx(gini(np.array([3, 2, 1, 1, 0, 0, 0, 0])))
    assert rows["homogenization"] == pytest.approx(1 / 2)  # {0} vs {0, 1}


def test_churn_rate_and_survival_count_from_t0():
    m = MetricsCollector(4, 2, 0.4, np.ones((3, 2)))
    sc = scenario_from_dict({"name": "s", "policies": ["random"], "population": {"n_users": 4},
                             "catalog": {"n_items": 300}})
    world = build_world(sc, 0)
    idle, times = np.zeros(4, bool), np.zeros(4)
    churned = np.array([True, False, False, False])  # lost in the warm-up
    m.snapshot(world.model, world.state, idle, times, churned, 0.0)
    churned = np.array([True, True, False, False])  # one more during the horizon
    m.snapshot(world.model, world.state, idle, times, churned, 86400.0)
    rows = [(name, value) for name, kind, _, _, value in m.rows if kind == "state"]
    first, last = dict(rows[:7]), dict(rows[7:])
    assert first["churn_rate"] == 0.0 and first["survival"] == 1.0 and first["retained_users"] == 3
    assert last["churn_rate"] == 1 / 4 and last["survival"] == pytest.approx(2 / 3) and last["retained_users"] == 2


# ----------------------------------------------------------------------------- the twin, the oracles
def test_distance_to_the_natural_drift_twin(tmp_path):
    sc = scenario_from_dict({
        "name": "twin", "seed": 2, "horizon": "1d", "warmup": "6h", "replications": 1, "workers": 1,
        "population": {"n_users": 15}, "catalog": {"n_items": 300},
        "recommender": {"slate_size": 5, "n_candidates": 30}, "policies": ["engagement_oracle", "random"],
    })
    run = run_experiment(sc, tmp_path / "run", workers=1)
    reps = pd.read_csv(run / "replications.csv").set_index("policy")
    assert reps.loc["random", "twin_topic_distance"] == 0.0 and reps.loc["random", "twin_appetite_distance"] == 0.0

    def final(policy):
        users = pd.read_parquet(partition(run, "users", policy, 0))
        return users[users.stage == "final"].sort_values("user_id")

    mine, twin = final("engagement_oracle"), final("random")
    direct = np.mean([np.linalg.norm(np.asarray(a) - np.asarray(b)) for a, b in zip(mine.theta, twin.theta)])
    assert reps.loc["engagement_oracle", "twin_topic_distance"] == pytest.approx(direct)
    assert reps.loc["engagement_oracle", "twin_appetite_distance"] == pytest.approx(
        np.abs(mine.appetite.to_numpy() - twin.appetite.to_numpy()).mean())
    assert reps.loc["engagement_oracle", "twin_appetite_distance"] > 0


class _View:
    """An oracle view with given expected values and click probabilities."""

    def __init__(self, value, click):
        self.expected_value = np.asarray(value, dtype=float)
        self.click_probability = np.asarray(click, dtype=float)


class _Request:
    def __init__(self, value, click, k=2):
        self.candidates = np.arange(len(value)) + 100
        self.slate_size = k
        self.oracle = _View(value, click)


def test_wellbeing_oracle_ranks_by_value_alone_and_suggests_breaks():
    rng = np.random.default_rng(0)
    # item 101 is worth most but rarely clicked: the wellbeing oracle still serves it first
    request = _Request([0.5, 0.9, -0.2], [0.9, 0.1, 0.99])
    np.testing.assert_array_equal(WellbeingOracle().recommend(request, rng), [101, 100])
    np.testing.assert_array_equal(ClickValueOracle().recommend(request, rng), [100, 101])  # 0.45 > 0.09
    nothing = _Request([-0.1, -0.3, -0.05], [0.5, 0.5, 0.5])
    assert WellbeingOracle().recommend(nothing, rng).shape == (0,)
    np.testing.assert_array_equal(WellbeingOracle(suggest_breaks=False).recommend(nothing, rng), [102, 100])
