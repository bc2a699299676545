"""Re-rankers and wrappers (recsim.policies.rerank): MMR, calibration, break suggestions,
epsilon-greedy exploration; hook forwarding; nested parameter errors; a short engine run."""

from __future__ import annotations

from itertools import combinations

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
from pydantic import BaseModel, ConfigDict
from scipy import stats

from recsim.catalog import ObservableItems, generate_catalog, make_topic_centers
from recsim.config import CatalogConfig, ScenarioError, scenario_from_dict
from recsim.experiment import make_tasks, partition, run_task
from recsim.policies.base import (
    CandidateFeatures,
    Feedback,
    History,
    Policy,
    PolicyContext,
    Request,
    ScoringPolicy,
    top_k,
)
from recsim.policies.rerank import (
    CALIBRATION_ALPHA,
    BreakSuggestingPolicy,
    CalibratedPolicy,
    DiversityPolicy,
    EpsilonGreedyPolicy,
)

HERE = "tests.test_rerank"
RERANK = "recsim.policies.rerank"
K_TOPICS = 20
N_CANDIDATES = 40
SLATE = 10


# ----------------------------------------------------------------------------- test bases
class TopicMatch(ScoringPolicy):
    """Deterministic: cosine of the candidate's observable topics with the user's profile."""

    def score(self, request, rng):
        return request.features.topics @ request.history.topic_profile


class WatchSeconds(TopicMatch):
    """TopicMatch on another scale (like predicted watch seconds): same order, other units."""

    def score(self, request, rng):
        return 50.0 + 300.0 * super().score(request, rng)


class ByClassifier(Policy):
    """Deterministic and not a ScoringPolicy: highest classifier score first."""

    def recommend(self, request, rng):
        return top_k(request.candidates, request.features.classifier, request.slate_size)


class Breaker(Policy):
    """Always ends the session."""

    may_end_sessions = True

    def recommend(self, request, rng):
        return np.empty(0, dtype=np.int64)


class FakeOracle(ScoringPolicy):
    oracle = True

    def score(self, request, rng):
        return request.features.classifier


class OnlineBase(TopicMatch):
    online = True


class SpyParams(BaseModel):
    model_config = ConfigDict(extra="forbid")
    tag: str = "spy"


class Spy(ScoringPolicy):
    """Records every hook call (on the instance; a new instance per reset of the wrapper)."""

    Params = SpyParams

    def reset(self, context):
        self.calls = [("reset", context)]

    def fit(self, feedback, now):
        self.calls.append(("fit", feedback, now))

    def update(self, feedback):
        self.calls.append(("update", feedback))

    def score(self, request, rng):
        self.calls.append(("score", request))
        return request.features.classifier


# ----------------------------------------------------------------------------- fixtures
@pytest.fixture(scope="module")
def world():
    cfg = CatalogConfig(n_items=600, n_topics=K_TOPICS)
    rng = np.random.default_rng(11)
    centers = make_topic_centers(cfg, rng)
    catalog = generate_catalog(cfg, centers, 0.0, 0.0, rng, np.random.default_rng(12))
    items = catalog.observable()
    context = PolicyContext(
        n_topics=K_TOPICS, slate_size=SLATE, n_candidates=N_CANDIDATES,
        retrain_interval=86400.0, items=items, n_users=1,
    )
    return catalog, items, context


def history_of(catalog, clusters=(0, 1), weights=(0.7, 0.3), n_watched=30, seed=0) -> History:
    """A user who watched items of ``clusters`` with these shares of watch time."""
    rng = np.random.default_rng(seed)
    hist = History(catalog.n_topics)
    for cluster, weight in zip(clusters, weights):
        pool = np.flatnonzero(catalog.cluster == cluster)
        watched = rng.choice(pool, size=n_watched, replace=False)
        hist.topic_mix += weight * 240.0 * catalog.topics_obs[watched].sum(axis=0)
    hist.watch_seconds = 240.0 * n_watched
    return hist


def request_of(items, history, seed, n_candidates=N_CANDIDATES, slate_size=SLATE) -> Request:
    rng = np.random.default_rng(seed)
    candidates = rng.choice(items.n_items, size=n_candidates, replace=False).astype(np.int64)
    return Request(
        user_id=0, now=0.0, history=history, candidates=candidates,
        features=CandidateFeatures(items, candidates, 0.0), slate_size=slate_size,
    )


def ready(cls, context, **params) -> Policy:
    policy = cls(**params)
    policy.reset(context)
    return policy


def tiny_items(topics: np.ndarray, classifier: list[float]):
    """Observable items with these topic rows and classifier scores, and a context for them."""
    n = topics.shape[0]
    items = ObservableItems(topics=topics, classifier=np.array(classifier), length=np.full(n, 60.0),
                            upload_time=np.zeros(n), creator=np.zeros(n, int))
    context = PolicyContext(n_topics=topics.shape[1], slate_size=2, n_candidates=n,
                            retrain_interval=0.0, items=items)
    return items, context


def assert_valid_slate(slate, request):
    assert slate.ndim == 1 and len(slate) <= request.slate_size
    assert len(np.unique(slate)) == len(slate)
    assert np.isin(slate, request.candidates).all()


def mean_pairwise_cosine(topics: np.ndarray) -> float:
    x = topics / np.linalg.norm(topics, axis=1, keepdims=True)
    return float(np.mean([x[i] @ x[j] for i, j in combinations(range(len(x)), 2)]))


def kl_to_user(history: History, topics: np.ndarray) -> float:
    """KL(p ‖ q̃) as Steck defines it, computed independently of the implementation."""
    p = np.clip(history.topic_mix, 0, None)
    p = p / p.sum()
    q_items = np.clip(topics, 0, None)
    q_items = q_items / q_items.sum(axis=1, keepdims=True)
    q = (1 - CALIBRATION_ALPHA) * q_items.mean(axis=0) + CALIBRATION_ALPHA * p
    m = p > 0
    return float(np.sum(p[m] * np.log(p[m] / q[m])))


def feedback_of(n=3) -> Feedback:
    z = np.zeros(n)
    return Feedback(time=z, user_id=z.astype(int), item_id=np.arange(n), position=np.ones(n, int),
                    clicked=z.astype(bool), watch_time=z)


# ----------------------------------------------------------------------------- diversity (MMR)
def test_mmr_with_trade_off_one_is_the_base_ranking(world):
    catalog, items, context = world
    hist = history_of(catalog)
    base = ready(TopicMatch, context)
    mmr = ready(DiversityPolicy, context, base=f"{HERE}:TopicMatch", trade_off=1.0)
    for seed in range(10):
        req = request_of(items, hist, seed)
        expected = base.recommend(req, np.random.default_rng(0))
        np.testing.assert_array_equal(mmr.recommend(req, np.random.default_rng(0)), expected)


def test_mmr_trades_relevance_for_topical_variety(world):
    catalog, items, context = world
    hist = history_of(catalog)
    base = ready(TopicMatch, context)
    similarity, relevance = {}, {}
    for lam in (1.0, 0.9, 0.7, 0.3):
        mmr = ready(DiversityPolicy, context, base=f"{HERE}:TopicMatch", trade_off=lam)
        sims, rels = [], []
        for seed in range(30):
            req = request_of(items, hist, seed)
            slate = mmr.recommend(req, np.random.default_rng(0))
            assert_valid_slate(slate, req)
            assert len(slate) == SLATE
            # the first pick has no slate to differ from: it is the base's best item
            assert slate[0] == base.recommend(req, np.random.default_rng(0))[0]
            sims.append(mean_pairwise_cosine(items.topics[slate]))
            rels.append(float(np.mean(items.topics[slate] @ hist.topic_profile)))
        similarity[lam], relevance[lam] = np.mean(sims), np.mean(rels)
    lams = sorted(similarity, reverse=True)
    assert all(similarity[a] > similarity[b] for a, b in zip(lams, lams[1:])), similarity
    assert all(relevance[a] > relevance[b] for a, b in zip(lams, lams[1:])), relevance


def test_mmr_greedy_step_by_hand():
    """A, B share a topic, C is orthogonal; scores 1, 0.9, 0 (already min-max scaled).
    Second pick: B gains λ·0.9 − (1−λ)·1, C gains 0 → C when λ=0.5, B when λ=0.7."""
    topics = np.array([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0]])
    items, context = tiny_items(topics, classifier=[1.0, 0.9, 0.0])
    candidates = np.array([0, 1, 2])
    req = Request(0, 0.0, History(2), candidates, CandidateFeatures(items, candidates, 0.0), 2)
    for lam, expected in ((0.5, [0, 2]), (0.7, [0, 1])):
        mmr = ready(DiversityPolicy, context, base=f"{HERE}:Spy", trade_off=lam)
        np.testing.assert_array_equal(mmr.recommend(req, np.random.default_rng(0)), expected)


@pytest.mark.parametrize("cls", [DiversityPolicy, CalibratedPolicy])
def test_trade_off_does_not_depend_on_the_units_of_the_base_scores(world, cls):
    catalog, items, context = world
    hist = history_of(catalog)
    unit = ready(cls, context, base=f"{HERE}:TopicMatch", trade_off=0.5)
    seconds = ready(cls, context, base=f"{HERE}:WatchSeconds", trade_off=0.5)
    for seed in range(10):
        req = request_of(items, hist, seed)
        expected = unit.recommend(req, np.random.default_rng(0))
        np.testing.assert_array_equal(seconds.recommend(req, np.random.default_rng(0)), expected)


def test_non_scoring_base_is_ranked_by_its_own_order(world):
    catalog, items, context = world
    hist = history_of(catalog)
    base = ready(ByClassifier, context)
    mmr = ready(DiversityPolicy, context, base=f"{HERE}:ByClassifier", trade_off=1.0)
    cal = ready(CalibratedPolicy, context, base=f"{HERE}:ByClassifier", trade_off=0.0)
    mixed = ready(DiversityPolicy, context, base=f"{HERE}:ByClassifier", trade_off=0.5)
    for seed in range(5):
        req = request_of(items, hist, seed)
        expected = base.recommend(req, np.random.default_rng(0))
        np.testing.assert_array_equal(mmr.recommend(req, np.random.default_rng(0)), expected)
        np.testing.assert_array_equal(cal.recommend(req, np.random.default_rng(0)), expected)
        slate = mixed.recommend(req, np.random.default_rng(0))
        assert_valid_slate(slate, req)
        assert len(slate) == SLATE and slate[0] == expected[0]


@pytest.mark.parametrize("cls", [DiversityPolicy, CalibratedPolicy])
def test_a_break_from_a_non_scoring_base_is_passed_on(world, cls):
    catalog, items, context = world
    policy = ready(cls, context, base=f"{HERE}:Breaker")
    assert policy.may_end_sessions
    req = request_of(items, history_of(catalog), 0)
    assert len(policy.recommend(req, np.random.default_rng(0))) == 0


# ----------------------------------------------------------------------------- calibrated
def test_calibrated_slate_matches_the_users_topic_mix_better(world):
    catalog, items, context = world
    hist = history_of(catalog, clusters=(0, 1, 2), weights=(0.5, 0.3, 0.2))
    base = ready(TopicMatch, context)
    kls = {lam: [] for lam in (0.0, 0.5, 0.9, 1.0)}
    for lam in kls:
        cal = ready(CalibratedPolicy, context, base=f"{HERE}:TopicMatch", trade_off=lam)
        for seed in range(30):
            req = request_of(items, hist, seed)
            slate = cal.recommend(req, np.random.default_rng(0))
            assert_valid_slate(slate, req)
            assert len(slate) == SLATE
            if lam == 0.0:
                np.testing.assert_array_equal(slate, base.recommend(req, np.random.default_rng(0)))
            kls[lam].append(kl_to_user(hist, items.topics[slate]))
    kl = {lam: np.array(values) for lam, values in kls.items()}
    means = [kl[lam].mean() for lam in sorted(kl)]
    assert all(a > b for a, b in zip(means, means[1:])), means
    assert kl[0.9].mean() < 0.6 * kl[0.0].mean()
    assert (kl[0.5] <= kl[0.0] + 1e-12).mean() >= 0.9
    assert (kl[1.0] <= kl[0.0] + 1e-12).all()


def test_calibrated_greedy_steps_follow_stecks_objective(world):
    """Replay the greedy construction with the independent KL above: every pick maximizes
    (1 − λ)·Σ s − λ·KL(p ‖ q̃) over the remaining candidates, s min-max scaled."""
    catalog, items, context = world
    hist = history_of(catalog, clusters=(0, 3), weights=(0.6, 0.4))
    lam = 0.7
    cal = ready(CalibratedPolicy, context, base=f"{HERE}:WatchSeconds", trade_off=lam)
    for seed in range(3):
        req = request_of(items, hist, seed)
        slate = cal.recommend(req, np.random.default_rng(0)).tolist()
        raw = TopicMatch().score(req, None)
        s = (raw - raw.min()) / (raw.max() - raw.min())
        index = {item: i for i, item in enumerate(req.candidates.tolist())}
        for j in range(SLATE):
            before = slate[:j]
            objective = {
                item: (1 - lam) * sum(s[index[x]] for x in before + [item])
                - lam * kl_to_user(hist, items.topics[before + [item]])
                for item in req.candidates.tolist() if item not in before
            }
            best = max(objective.values())
            assert objective[slate[j]] >= best - 1e-9, (seed, j)


def test_calibrated_by_hand():
    """User mix p = (½, ½). A = topic 0 (score 1), C = topic 1, D = both topics (scores 0).
    KL(p ‖ q̃(A)) = ½·ln(½/(1−α/2)) + ½·ln(½/(α/2)) ≈ 1.958 with α = 0.01, KL(p ‖ q̃(D)) = 0:
    the first pick is A iff (1 − λ)·1 > λ·1.958, so D for λ = 0.4 and A for λ = 0.3."""
    topics = np.array([[1.0, 0.0], [0.0, 1.0], [np.sqrt(0.5), np.sqrt(0.5)]])
    items, context = tiny_items(topics, classifier=[1.0, 0.0, 0.0])
    hist = History(2)
    hist.topic_mix[:] = [300.0, 300.0]
    candidates = np.array([0, 1, 2])
    for lam, size, expected in ((0.4, 1, [2]), (0.3, 1, [0]), (0.4, 2, [2, 0])):
        req = Request(0, 0.0, hist, candidates, CandidateFeatures(items, candidates, 0.0), size)
        cal = ready(CalibratedPolicy, context, base=f"{HERE}:Spy", trade_off=lam)
        np.testing.assert_array_equal(cal.recommend(req, np.random.default_rng(0)), expected)


def test_calibrated_without_history_targets_a_uniform_mix(world):
    catalog, items, context = world
    cal = ready(CalibratedPolicy, context, base=f"{HERE}:TopicMatch", trade_off=1.0)
    req = request_of(items, History(K_TOPICS), 3)
    slate = cal.recommend(req, np.random.default_rng(0))
    assert_valid_slate(slate, req)
    assert len(slate) == SLATE


# ----------------------------------------------------------------------------- break suggesting
def test_break_suggesting_serves_the_base_until_the_budget(world):
    catalog, items, context = world
    hist = history_of(catalog)
    policy = ready(BreakSuggestingPolicy, context, base=f"{HERE}:TopicMatch", budget="10m")
    assert policy.params.budget == 600.0
    assert policy.may_end_sessions and BreakSuggestingPolicy.may_end_sessions
    base = ready(TopicMatch, context)
    req = request_of(items, hist, 0)
    for watched, ends in ((0.0, False), (599.9, False), (600.0, True), (5000.0, True)):
        hist.session_watch_seconds = watched
        slate = policy.recommend(req, np.random.default_rng(0))
        if ends:
            assert len(slate) == 0
        else:
            np.testing.assert_array_equal(slate, base.recommend(req, np.random.default_rng(0)))


def test_break_budget_must_be_positive():
    with pytest.raises(ValueError, match="budget"):
        BreakSuggestingPolicy.Params(base=f"{HERE}:TopicMatch", budget="0s")
    assert BreakSuggestingPolicy.Params(base=f"{HERE}:TopicMatch").budget == 1800.0


# ----------------------------------------------------------------------------- epsilon-greedy
def test_epsilon_zero_is_the_base(world):
    catalog, items, context = world
    hist = history_of(catalog)
    base = ready(TopicMatch, context)
    eg = ready(EpsilonGreedyPolicy, context, base=f"{HERE}:TopicMatch", epsilon=0.0)
    rng = np.random.default_rng(5)
    for seed in range(10):
        req = request_of(items, hist, seed)
        np.testing.assert_array_equal(eg.recommend(req, rng), base.recommend(req, rng))


def test_epsilon_one_is_uniformly_random(world):
    catalog, items, context = world
    hist = history_of(catalog)
    eg = ready(EpsilonGreedyPolicy, context, base=f"{HERE}:TopicMatch", epsilon=1.0)
    req = request_of(items, hist, 0)
    rng = np.random.default_rng(2024)
    n = 4000
    slates = np.array([eg.recommend(req, rng) for _ in range(n)])
    for slate in slates[:50]:
        assert_valid_slate(slate, req)
    index = {item: i for i, item in enumerate(req.candidates.tolist())}
    for slot in (0, SLATE - 1):
        counts = np.bincount([index[i] for i in slates[:, slot]], minlength=N_CANDIDATES)
        assert stats.chisquare(counts).pvalue > 1e-3, counts
    # the base's favourites get no special treatment: their share is the uniform k/c
    favourites = set(top_k(req.candidates, TopicMatch().score(req, rng), SLATE).tolist())
    share = np.isin(slates, list(favourites)).mean()
    expected = SLATE / N_CANDIDATES
    assert abs(share - expected) < 4 * np.sqrt(expected * (1 - expected) / n)


def _outside_base_moments(epsilon: float, c: int, k: int) -> tuple[float, float]:
    """Mean and variance of the number of slate items that are not in the base slate: at slot
    j, with o such items placed, an exploring slot draws one with probability (c-k-o)/(c-j)."""
    dist = np.zeros(k + 1)
    dist[0] = 1.0
    for j in range(k):
        new = np.zeros(k + 1)
        for o in range(j + 1):
            p_out = epsilon * (c - k - o) / (c - j)
            new[o + 1] += dist[o] * p_out
            new[o] += dist[o] * (1 - p_out)
        dist = new
    values = np.arange(k + 1)
    mean = float(dist @ values)
    return mean, float(dist @ values**2 - mean**2)


@pytest.mark.parametrize("epsilon", [0.1, 0.3])
def test_exploration_rate_matches_epsilon(world, epsilon):
    catalog, items, context = world
    hist = history_of(catalog)
    base = ready(TopicMatch, context)
    eg = ready(EpsilonGreedyPolicy, context, base=f"{HERE}:TopicMatch", epsilon=epsilon)
    rng = np.random.default_rng(99)
    n_requests = 1500
    outside = 0
    for r in range(n_requests):
        req = request_of(items, hist, r % 50)
        base_slate = base.recommend(req, rng)
        slate = eg.recommend(req, rng)
        assert len(slate) == len(base_slate)
        assert_valid_slate(slate, req)
        outside += int((~np.isin(slate, base_slate)).sum())
    mean, var = _outside_base_moments(epsilon, N_CANDIDATES, SLATE)
    assert abs(outside - n_requests * mean) < 4 * np.sqrt(n_requests * var)
    # the share of explored slots is about epsilon (a few explorations pick a base item)
    assert epsilon * 0.6 < outside / (n_requests * SLATE) < epsilon * 1.1


def test_epsilon_greedy_passes_a_break_on(world):
    catalog, items, context = world
    eg = ready(EpsilonGreedyPolicy, context, base=f"{HERE}:Breaker", epsilon=1.0)
    req = request_of(items, history_of(catalog), 0)
    assert len(eg.recommend(req, np.random.default_rng(0))) == 0


# ----------------------------------------------------------------------------- hooks and flags
WRAPPERS = [DiversityPolicy, CalibratedPolicy, BreakSuggestingPolicy, EpsilonGreedyPolicy]


@pytest.mark.parametrize("cls", WRAPPERS)
def test_hooks_are_forwarded_to_a_fresh_base(world, cls):
    catalog, items, context = world
    policy = cls(base={"type": f"{HERE}:Spy", "params": {"tag": "t"}})
    assert not hasattr(policy, "base_")  # the constructor stores parameters only
    policy.reset(context)
    spy = policy.base_
    # (pytest imports this file under another module name than the spec's: compare names)
    assert type(spy).__name__ == "Spy" and spy.params.tag == "t"
    assert spy.calls == [("reset", context)]
    fb = feedback_of()
    policy.fit(fb, 123.0)
    policy.update(fb)
    assert spy.calls[1:] == [("fit", fb, 123.0), ("update", fb)]
    req = request_of(items, history_of(catalog), 0)
    assert_valid_slate(policy.recommend(req, np.random.default_rng(0)), req)
    assert spy.calls[-1] == ("score", req)
    policy.reset(context)
    assert policy.base_ is not spy and policy.base_.calls == [("reset", context)]


@pytest.mark.parametrize("cls", WRAPPERS)
def test_flags_follow_the_base(cls):
    assert cls.oracle is False
    assert cls(base=f"{HERE}:OnlineBase").online
    assert not cls(base=f"{HERE}:TopicMatch").online
    # a break-suggesting base may end sessions, and so may anything wrapping it
    nested = {"type": f"{RERANK}:BreakSuggestingPolicy", "params": {"base": f"{HERE}:TopicMatch"}}
    assert cls(base=nested).may_end_sessions
    assert cls(base=f"{HERE}:TopicMatch").may_end_sessions == (cls is BreakSuggestingPolicy)


@pytest.mark.parametrize("cls", WRAPPERS)
def test_params_round_trip_and_defaults(cls):
    params = cls.Params(base={"type": f"{HERE}:Spy", "params": {"tag": "t"}})
    dumped = params.model_dump(mode="json")
    assert dumped["base"] == {"type": f"{HERE}:Spy", "params": {"tag": "t"}}
    assert cls.Params.model_validate(dumped) == params
    # the default base is shown as written in a scenario (not resolved at import time)
    assert cls.Params().model_dump(mode="json")["base"] == "engagement"
    with pytest.raises(ValueError, match="nope"):
        cls.Params(base=f"{HERE}:TopicMatch", nope=1)


# ----------------------------------------------------------------------------- errors
@pytest.mark.parametrize(
    "base, path, words",
    [
        ({"type": "no_such_policy"}, "base.type", "unknown policy"),
        ({"type": "tests.no_such_module:X"}, "base.type", "cannot import"),
        ({"type": f"{HERE}:Spy", "params": {"tga": 1}}, "base.params.tga", "unknown parameter"),
        ({"type": f"{HERE}:Spy", "params": {"tag": [1]}}, "base.params.tag", "valid string"),
        ({"typ": f"{HERE}:Spy"}, "base.typ", "unknown key"),
        ({"params": {}}, "base.type", "missing"),
        (3, "base", "type name or a mapping"),
        ("engagement_oracle", "base.type", "oracle"),
        (f"{HERE}:FakeOracle", "base.type", "oracle"),
        (
            {"type": "recsim.policies.rerank:EpsilonGreedyPolicy",
             "params": {"base": f"{HERE}:TopicMatch", "epsilon": 2}},
            "base.params.epsilon", "less than or equal to 1",
        ),
        (
            {"type": "recsim.policies.rerank:EpsilonGreedyPolicy",
             "params": {"base": {"type": f"{HERE}:Spy", "params": {"tag": 5}}}},
            "base.params.base.params.tag", "valid string",
        ),
    ],
)
def test_nested_errors_name_their_path(tiny, base, path, words):
    with pytest.raises(ValueError) as direct:
        DiversityPolicy(base=base)
    assert path in str(direct.value) and words in str(direct.value)
    tiny["policies"] = [{"type": f"{RERANK}:DiversityPolicy", "params": {"base": base}}]
    with pytest.raises(ScenarioError) as scenario:
        scenario_from_dict(tiny)
    (where, message), = scenario.value.problems
    assert where == f"policies.0.params.{path}" and words in message


def test_scenario_names_a_wrapper_by_module_path(tiny):
    tiny["policies"] = [
        {"name": "mmr", "type": "recsim.policies.rerank:DiversityPolicy",
         "params": {"base": {"type": f"{HERE}:TopicMatch"}, "trade_off": 0.5}},
        {"type": "recsim.policies.rerank:EpsilonGreedyPolicy",
         "params": {"base": "popularity", "epsilon": 0.2}},
    ]
    sc = scenario_from_dict(tiny)
    assert [p.name for p in sc.policies] == ["mmr", "EpsilonGreedyPolicy"]
    assert sc.policies[0].params["base"] == {"type": f"{HERE}:TopicMatch"}


# ----------------------------------------------------------------------------- engine
def _events(data: dict, tmp_path, index: int) -> pd.DataFrame:
    sc = scenario_from_dict(data)
    task = next(t for t in make_tasks(sc, tmp_path) if t.policy_index == index)
    run_task(task)
    return pq.read_table(partition(tmp_path, "events", sc.policies[index].name, 0)).to_pandas()


def test_engine_runs_wrappers_and_logs_breaks(tiny, tmp_path):
    tiny["horizon"] = "1d"
    tiny["policies"] = [
        {"name": "capped", "type": "recsim.policies.rerank:BreakSuggestingPolicy",
         "params": {"base": {"type": "recsim.policies.rerank:EpsilonGreedyPolicy",
                             "params": {"base": f"{HERE}:TopicMatch", "epsilon": 0.2}},
                    "budget": "2m"}},
        {"name": "calibrated_mmr", "type": "recsim.policies.rerank:CalibratedPolicy",
         "params": {"base": {"type": "recsim.policies.rerank:DiversityPolicy",
                             "params": {"base": "popularity"}}}},
    ]
    ev = _events(tiny, tmp_path / "a", 0)
    breaks = ev[ev.event == "break"]
    assert len(breaks) > 0
    watched = ev[ev.event == "watch"].groupby(["user_id", "session"]).watch_time.sum()
    ended = pd.MultiIndex.from_frame(breaks[["user_id", "session"]])
    per_session = watched.reindex(ended).fillna(0)
    assert (per_session >= 120.0).all()
    # a break is the session's last event before its end (a survey may follow the end)
    for (user, session), group in ev[~ev.event.isin(["impression", "survey"])].groupby(["user_id", "session"]):
        if (group.event == "break").any():
            assert list(group.event.iloc[-2:]) == ["break", "session_end"], (user, session)
    ev2 = _events(tiny, tmp_path / "b", 1)
    assert (ev2.event == "watch").sum() > 0 and not (ev2.event == "break").any()
