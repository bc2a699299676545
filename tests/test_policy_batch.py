"""Batched serving: ``recommend_batch`` (and ``score_batch``) of every built-in policy serves,
row for row and bit for bit, what ``recommend(batch.request(i), rngs[i])`` serves alone — the
batched engine relies on it to log exactly the events of the per-request reference engine."""

from __future__ import annotations

import numpy as np
import pytest

from recsim.catalog import generate_catalog, make_topic_centers, unit_rows
from recsim.config import CatalogConfig, scenario_from_dict
from recsim.policies.base import (
    BatchFeatures,
    Feedback,
    HistoryTable,
    OracleBatch,
    Policy,
    PolicyContext,
    RequestBatch,
    RequestRngs,
    ScoringPolicy,
    batch_rows,
    gather_dot,
    rngs_rows,
    top_k_rows,
    vector_norm,
)
from recsim.policies.builtin import EngagementOracle, PopularityPolicy
from recsim.policies.learned import BanditPolicy, EngagementPolicy, UserProfiles
from recsim.policies.registry import BUILTIN_POLICIES, resolve_policy
from recsim.users.model import build_user_model
from recsim.users.state import ItemView

N_ITEMS = 400
N_USERS = 30  # profiles start sized for 30; the batch also asks for users beyond them
SLATE = 6
DAY = 86400.0
FIT_TIME = 2 * DAY

#: Policies whose batch methods are vectorized (they must not call recommend/score per row).
VECTORIZED = {
    "chronological", "popularity", "engagement", "harm_penalized", "stated_preference", "bandit",
    "engagement_oracle", "wellbeing_oracle", "click_value_oracle", "attribute_oracle", "matrix_factorization",
}
#: Wrappers that serve a batch through their base's batch methods (their own per-row work
#: does not go through recommend).
BATCHED_WRAPPERS = {"diversity", "calibrated", "break_suggesting", "epsilon_greedy"}

#: Extra parameters exercising other branches (wrappers keep their default base, engagement).
VARIANTS = {
    "harm_penalized": [{}, {"demote_above": 0.5}],
    "stated_preference": [{}, {"weight": 1.0}],
    "bandit": [{}, {"alpha": 0.0}],
    "diversity": [{}, {"base": "popularity"}, {"base": {"type": "break_suggesting", "params": {"budget": "20m"}}}],
    "calibrated": [{}, {"base": "bandit"}, {"base": "chronological", "trade_off": 0.9}],
    "break_suggesting": [{}, {"base": "random", "budget": "10m"}, {"base": "stated_preference", "budget": "1h"}],
    "epsilon_greedy": [{}, {"base": "chronological", "epsilon": 0.5}, {"base": "popularity", "epsilon": 1.0}],
    "matrix_factorization": [{}, {"explore": 0.0}, {"explore": 1.0, "signal": "minutes"}],
}
CASES = [(name, params) for name in BUILTIN_POLICIES for params in VARIANTS.get(name, [{}])]
IDS = [f"{name}-{i}" for name in BUILTIN_POLICIES for i in range(len(VARIANTS.get(name, [{}])))]


# ----------------------------------------------------------------------------- the world
class World:
    def __init__(self, seed: int = 7):
        rng = np.random.default_rng(seed)
        cfg = CatalogConfig(n_items=N_ITEMS, n_creators=40)
        centers = make_topic_centers(cfg, rng)
        # uploads continue after the fit, so some candidates are younger than others' requests
        self.catalog = generate_catalog(cfg, centers, 0.0, FIT_TIME + DAY, rng, np.random.default_rng(seed + 1))
        self.items = self.catalog.observable()
        self.n_items = self.items.n_items
        self.k = self.catalog.n_topics
        self.context = PolicyContext(
            n_topics=self.k, slate_size=SLATE, n_candidates=40, retrain_interval=DAY,
            items=self.items, n_users=N_USERS,
        )
        self.model = build_user_model(scenario_from_dict({"name": "batch", "policies": ["random"]}))
        # every user's hidden state; the oracle batches below perturb it per batch
        self.state = self.model.initial_state(N_USERS + 5, centers, rng, 0.0)
        self.rng = rng

    def feedback(self, start: float, end: float, n: int) -> Feedback:
        """``n`` impressions of random items to the first 25 users (the rest are never seen),
        clicked and watched as the behaviour model would, with a survey after most sessions."""
        rng, cat = self.rng, self.catalog
        served = np.sort(rng.uniform(start, end, n))
        users = rng.integers(0, 25, n)
        available = np.searchsorted(cat.upload_time, served, side="right")
        items = (rng.random(n) * available).astype(np.int64)
        view = self.model.view(self.state, users)
        terms = self.model.allure.score(view, ItemView(cat, items[:, None]))
        allure = terms["allure"][:, 0]
        clicked = rng.random(n) < self.model.click_probability_alone(view, terms)[:, 0]
        watch = np.minimum(cat.length[items], cat.length[items] * rng.beta(2.0, 2.0, n) * (1 + allure))
        watch = np.where(clicked, watch, 0.0)
        session = (served // 3600).astype(np.int64)
        time = np.where(clicked, served + watch, served)
        order = np.argsort(time, kind="stable")
        keys = np.unique(np.stack([users, session], axis=1), axis=0)
        keys = keys[rng.random(len(keys)) < 0.8]
        return Feedback(
            time=time[order], user_id=users[order], item_id=items[order],
            position=rng.integers(1, SLATE + 1, n)[order], clicked=clicked[order],
            watch_time=watch[order], served_at=served[order], session=session[order],
            surveys={
                "time": np.full(len(keys), end), "user_id": keys[:, 0], "session": keys[:, 1],
                "score": rng.integers(1, 6, len(keys)).astype(float),
            },
        )

    def batch(
        self, n_rows: int = 20, n_candidates: int = 40, oracle: bool = False, seed: int = 0
    ) -> tuple[RequestBatch, RequestRngs]:
        rng = np.random.default_rng(seed)
        users = rng.choice(N_USERS + 5, size=n_rows, replace=n_rows > N_USERS + 5).astype(np.int64)
        now = np.sort(rng.uniform(FIT_TIME + 60.0, FIT_TIME + DAY, n_rows))
        # from the whole catalog: some candidates are uploaded after the request (negative age)
        candidates = np.stack([
            rng.choice(self.n_items, n_candidates, replace=False) for _ in range(n_rows)
        ]).astype(np.int64)
        if n_rows > 1:
            candidates[1, :] = candidates[0, :]  # two rows with the same candidates
        histories = HistoryTable(N_USERS + 5, self.k)
        m = N_USERS + 5
        histories.n_sessions[:] = rng.integers(1, 20, m)
        histories.n_impressions[:] = rng.integers(0, 500, m)
        histories.n_clicks[:] = histories.n_impressions // 5
        histories.watch_seconds[:] = rng.uniform(0, 1e4, m)
        histories.watch_fraction_sum[:] = histories.n_clicks * 0.5
        histories.classifier_seconds[:] = histories.watch_seconds * rng.uniform(0, 0.5, m)
        histories.topic_mix[:] = rng.random((m, self.k)) * rng.uniform(0, 3000, (m, 1))
        histories.topic_mix[::4] = 0.0  # some users have watched nothing
        histories.last_session_end[:] = rng.uniform(0, FIT_TIME, m)
        histories.session_items[:] = rng.integers(0, 30, m)
        histories.session_watch_seconds[:] = rng.uniform(0, 3600, m)
        histories.survey_sum[:] = rng.integers(0, 40, m)
        histories.n_surveys[:] = histories.survey_sum // 4
        oracle_batch = None
        if oracle:
            state = self.state.copy()
            m = state.n_users
            state.arrays["theta"] = unit_rows(state["theta"] + rng.normal(0, 0.05, (m, self.k)))
            state.arrays["appetite"] = rng.beta(3.0, 11.0, m)
            state.arrays["fatigue"] = rng.uniform(0.0, 3.0, m)
            state.arrays["satisfaction"] = rng.normal(0.0, 1.0, m)
            oracle_batch = OracleBatch(self.model, state, users, candidates, self.catalog)
        batch = RequestBatch(
            user_ids=users, now=now, candidates=candidates, histories=histories,
            features=BatchFeatures(self.items, candidates, now), slate_size=SLATE, items=self.items,
            oracle=oracle_batch,
        )
        rngs = RequestRngs(12345, users, rng.integers(0, 1000, n_rows))
        return batch, rngs


@pytest.fixture(scope="module")
def world() -> World:
    return World()


@pytest.fixture(scope="module")
def feedbacks(world):
    return world.feedback(0.0, DAY, 6000), world.feedback(DAY, FIT_TIME, 6000)


def make_policy(world, name, params, feedbacks=None) -> Policy:
    policy = resolve_policy(name)(**params)
    policy.reset(world.context)
    for i, fb in enumerate(feedbacks or ()):
        policy.fit(fb, (i + 1) * DAY)
    return policy


# ----------------------------------------------------------------------------- the checks
def assert_batch_matches(policy: Policy, batch: RequestBatch, rngs: RequestRngs) -> None:
    if isinstance(policy, ScoringPolicy):
        scores = policy.score_batch(batch, rngs)
        assert scores.shape == batch.candidates.shape
        for i in range(len(batch)):
            alone = policy.score(batch.request(i), rngs[i])
            assert np.array_equal(scores[i], alone), (type(policy).__name__, i)
    slates = policy.recommend_batch(batch, rngs)
    assert len(slates) == len(batch)
    for i in range(len(batch)):
        alone = policy.recommend(batch.request(i), rngs[i])
        got = np.asarray(slates[i])
        assert got.shape == alone.shape and np.array_equal(got, alone), (type(policy).__name__, i, got, alone)


def forbid_row_calls(policy: Policy) -> None:
    """Make per-request calls fail on this instance (vectorized batch methods make none)."""

    def fail(*args, **kwargs):
        raise AssertionError("a vectorized batch method served a row through recommend/score")

    policy.recommend = fail
    if isinstance(policy, ScoringPolicy):
        policy.score = fail


@pytest.mark.parametrize("name,params", CASES, ids=IDS)
def test_batch_matches_per_request_fitted(world, feedbacks, name, params):
    policy = make_policy(world, name, params, feedbacks)
    oracle = resolve_policy(name).oracle
    batch, rngs = world.batch(oracle=oracle, seed=1)
    assert_batch_matches(policy, batch, rngs)
    if name in VECTORIZED | BATCHED_WRAPPERS:
        reference = policy.recommend_batch(batch, rngs)
        forbid_row_calls(policy)
        again = policy.recommend_batch(batch, rngs)
        assert all(np.array_equal(a, b) for a, b in zip(again, reference))


@pytest.mark.parametrize("name,params", CASES, ids=IDS)
def test_batch_matches_per_request_unfitted(world, name, params):
    """Before any fit (learned scores all tie) and after a fit on empty feedback."""
    oracle = resolve_policy(name).oracle
    batch, rngs = world.batch(oracle=oracle, seed=2)
    policy = make_policy(world, name, params)
    assert_batch_matches(policy, batch, rngs)
    empty = Feedback(*(np.zeros(0, dtype) for dtype in (float, np.int64, np.int64, np.int64, bool, float)))
    policy.fit(empty, DAY)
    assert_batch_matches(policy, batch, rngs)


@pytest.mark.parametrize("name", ["engagement", "harm_penalized", "stated_preference", "bandit", "popularity"])
def test_unfitted_ties_go_to_the_first_candidates(world, name):
    """No model yet: every score ties, and the slate is the first candidates in draw order."""
    batch, rngs = world.batch(seed=3)
    params = {"harm_penalized": {"penalty": 0.0}, "bandit": {"alpha": 0.0}}.get(name, {})
    policy = make_policy(world, name, params)
    expected = batch.candidates[:, :SLATE]
    assert np.array_equal(np.asarray(policy.recommend_batch(batch, rngs)), expected)
    alone = [policy.recommend(batch.request(i), rngs[i]) for i in range(len(batch))]
    assert np.array_equal(np.stack(alone), expected)


@pytest.mark.parametrize("name", sorted(VECTORIZED))
@pytest.mark.parametrize("n_candidates", [SLATE, 3, 200])
def test_batch_shapes(world, feedbacks, name, n_candidates):
    """Pools of exactly the slate size, smaller than it, and large ones (c = 200)."""
    policy = make_policy(world, name, {}, feedbacks)
    batch, rngs = world.batch(n_rows=7, n_candidates=n_candidates, oracle=policy.oracle, seed=4)
    assert_batch_matches(policy, batch, rngs)
    assert np.asarray(policy.recommend_batch(batch, rngs)).shape == (7, min(SLATE, n_candidates))


class _DrawingTopics(PopularityPolicy):
    """A subclass that takes a draw from the request's generator: it inherits
    ``draws_nothing`` but overrides a serving method, so it no longer qualifies."""

    def recommend(self, request, rng):
        rng.random()
        return super().recommend(request, rng)


@pytest.mark.parametrize("base", ["random", f"{__name__}:_DrawingTopics",
                                  {"type": "diversity", "params": {"base": "chronological"}}])
def test_epsilon_greedy_over_a_base_that_draws_is_served_row_by_row(world, feedbacks, base):
    """The exploration draws after the base: over a base that may draw, the batch is served
    through recommend row by row (still row for row what recommend serves alone); over one
    that draws nothing, through the base's batch method."""
    from recsim.policies.base import draws_nothing

    policy = make_policy(world, "epsilon_greedy", {"base": base, "epsilon": 0.5}, feedbacks)
    assert not draws_nothing(policy.base_)
    batch, rngs = world.batch(oracle=policy.oracle, seed=3)
    assert_batch_matches(policy, batch, rngs)
    calls = []
    row = policy.recommend
    policy.recommend = lambda request, rng: calls.append(1) or row(request, rng)
    policy.recommend_batch(batch, rngs)
    assert len(calls) == len(batch)


def test_draws_nothing_is_declared_by_the_builtins_that_draw_nothing_and_lost_by_overrides():
    from recsim.policies.base import draws_nothing

    drawless = {name for name in BUILTIN_POLICIES if draws_nothing(resolve_policy(name)())}
    assert drawless == {"chronological", "popularity", "engagement_oracle", "wellbeing_oracle",
                        "click_value_oracle", "attribute_oracle", "engagement", "harm_penalized",
                        "stated_preference"}
    assert not draws_nothing(_DrawingTopics())
    policy = PopularityPolicy()
    policy.recommend = lambda request, rng: None  # set on the instance: may draw
    assert not draws_nothing(policy)


def test_a_sub_batch_serves_the_same_rows(world, feedbacks):
    policy = make_policy(world, "stated_preference", {}, feedbacks)
    batch, rngs = world.batch(n_rows=30, seed=5)
    rows = np.array([3, 0, 17, 29])
    full = np.asarray(policy.recommend_batch(batch, rngs))
    part = policy.recommend_batch(batch_rows(batch, rows), rngs_rows(rngs, rows))
    assert np.array_equal(np.asarray(part), full[rows])


def test_items_other_than_the_contexts_give_the_same_features(world, feedbacks):
    """Per-request serving takes a different (generic) path when the request's items are not
    the context's; it and the batch path agree."""
    import dataclasses

    policy = make_policy(world, "engagement", {}, feedbacks)
    batch, rngs = world.batch(seed=6)
    batch.items = dataclasses.replace(world.items)
    batch.features = BatchFeatures(batch.items, batch.candidates, batch.now)
    assert batch.items is not policy.context_.items
    assert_batch_matches(policy, batch, rngs)


def test_folded_log_odds_are_the_models(world, feedbacks):
    """Serving folds the standardization into the coefficients and sums the item terms once
    per fit: the same function as the model's log_odds of the feature matrix."""
    for name in ("engagement", "stated_preference"):
        policy = make_policy(world, name, {}, feedbacks)
        batch, rngs = world.batch(seed=10)
        for i in range(len(batch)):
            request = batch.request(i)
            lo, rel = policy._log_odds(request)
            X = policy.features(request)
            assert np.allclose(lo, policy.model_.log_odds(X), rtol=1e-12, atol=1e-12)
            assert np.array_equal(rel, X[:, 0])
        if name == "stated_preference":
            X = policy.features(batch.request(0))
            lo = policy.model_.log_odds(X)
            stated = X[:, [0, 2, 3, 6]] @ policy.survey_coef_[1:]
            w = policy.params.weight
            expected = (1 - w) * (lo - lo.mean()) / lo.std() + w * (stated - stated.mean()) / stated.std()
            assert np.allclose(policy.score(batch.request(0), rngs[0]), expected, rtol=1e-9, atol=1e-12)


def test_many_rows_and_candidates(world, feedbacks):
    """A larger batch (c = 200) for the policies whose arithmetic differs most between shapes."""
    for name in ("engagement_oracle", "wellbeing_oracle", "engagement", "stated_preference", "bandit"):
        policy = make_policy(world, name, {}, feedbacks)
        batch, rngs = world.batch(n_rows=60, n_candidates=200, oracle=policy.oracle, seed=11)
        assert_batch_matches(policy, batch, rngs)


def test_subclass_overriding_features_is_served_through_them(world, feedbacks):
    class Shorter(EngagementPolicy):
        def features(self, request):
            X = super().features(request)
            X[:, 6] -= 1.0
            return X

    policy = Shorter()
    policy.reset(world.context)
    policy.fit(feedbacks[0], DAY)
    batch, rngs = world.batch(seed=12)
    request = batch.request(0)
    lo = policy.model_.log_odds(policy.features(request))
    assert np.array_equal(policy.predicted_watch_minutes(request), np.exp(np.minimum(lo, 30.0)))
    assert_batch_matches(policy, batch, rngs)


def test_subclass_overriding_score_falls_back_to_rows(world, feedbacks):
    class Shifted(EngagementPolicy):
        def score(self, request, rng):
            return super().score(request, rng) - request.features.length

    class Doubled(EngagementOracle):
        def recommend(self, request, rng):
            return super().recommend(request, rng)[::-1]

    policy = Shifted()
    policy.reset(world.context)
    policy.fit(feedbacks[0], DAY)
    batch, rngs = world.batch(seed=7)
    assert_batch_matches(policy, batch, rngs)
    oracle = Doubled()
    oracle.reset(world.context)
    batch, rngs = world.batch(oracle=True, seed=7)
    assert_batch_matches(oracle, batch, rngs)


def test_popularity_lookup_follows_refits(world, feedbacks):
    policy = make_policy(world, "popularity", {}, feedbacks[:1])
    batch, rngs = world.batch(seed=8)
    assert_batch_matches(policy, batch, rngs)
    policy.fit(feedbacks[1], FIT_TIME)  # a new score table
    assert_batch_matches(policy, batch, rngs)
    assert isinstance(policy, PopularityPolicy) and policy.table_[0] is policy.scores_


# ----------------------------------------------------------------------------- helpers
def test_gather_dot_and_vector_norm_do_not_depend_on_the_batch_size():
    rng = np.random.default_rng(0)
    table = rng.normal(size=(5000, 20))
    index = rng.integers(0, 5000, (300, 200))
    vectors = rng.normal(size=(300, 20))
    together = gather_dot(table, index, vectors)
    alone = np.stack([gather_dot(table, index[i], vectors[i]) for i in range(300)])
    assert np.array_equal(together, alone)
    assert np.allclose(together, np.einsum("bck,bk->bc", table[index], vectors))
    norms = vector_norm(vectors)
    assert np.array_equal(norms, [float(vector_norm(v)) for v in vectors])
    assert np.allclose(norms, np.linalg.norm(vectors, axis=1))


def test_user_profiles_of_many_users_match_one_by_one(world, feedbacks):
    profiles = UserProfiles(N_USERS, world.k, 3 * DAY)
    users = np.arange(N_USERS + 5)  # the last ones have no profile row at all
    assert not profiles.of(users)[2].any()  # nobody known yet (what of() keeps is renewed below)
    profiles.update(feedbacks[0], world.items, DAY)
    assert profiles.of(users)[2].any()
    profiles.update(feedbacks[1], world.items, FIT_TIME)
    topic, mean_cls, activity = profiles.of(users)
    for u in users.tolist():
        t, m, a = profiles.of(u)
        assert np.array_equal(topic[u], t) and mean_cls[u] == m and activity[u] == a, u
    assert (activity[:25] > 0).all() and (activity[25:] == 0).all()
    # many users with random sums: one path rounding differently would show (e.g. math.log1p,
    # which differs from NumPy's log1p in the last bit for a few percent of inputs)
    rng = np.random.default_rng(1)
    n = 4000
    profiles.topic = rng.normal(size=(n, world.k)) * rng.exponential(100.0, (n, 1))
    profiles.watch = np.where(rng.random(n) < 0.1, 0.0, rng.exponential(3000.0, n))
    profiles.classifier = profiles.watch * rng.random(n)
    profiles.topic[:50] = 0.0  # watched, with no topic at all: a zero norm
    profiles._one, profiles._per_user = {}, None  # the sums set by hand: forget what of() kept
    topic, mean_cls, activity = profiles.of(np.arange(n))
    alone = [profiles.of(u) for u in range(n)]
    assert np.array_equal(topic, np.stack([a[0] for a in alone]))
    assert np.array_equal(mean_cls, [a[1] for a in alone])
    assert np.array_equal(activity, [a[2] for a in alone])


def test_top_k_rows_breaks_ties_toward_the_first_candidate():
    scores = np.array([[1.0, 2.0, 2.0, 0.0, 2.0], [0.0, 0.0, 0.0, 0.0, 0.0]])
    candidates = np.array([[10, 11, 12, 13, 14], [20, 21, 22, 23, 24]])
    assert top_k_rows(candidates, scores, 2).tolist() == [[11, 12], [20, 21]]


def test_bandit_bonus_is_the_quadratic_form(world, feedbacks):
    policy = make_policy(world, "bandit", {}, feedbacks)
    batch, rngs = world.batch(seed=9)
    request = batch.request(0)
    f = request.features
    from recsim.policies.learned import pair_features

    profile = policy.profiles_.of(request.user_id)
    X = policy._design(pair_features(*profile, f.topics, f.classifier, f.length, f.age, 1.0))
    expected = X @ policy.theta_ + policy.params.alpha * np.sqrt(np.einsum("ij,jk,ik->i", X, policy.A_inv_, X))
    assert np.allclose(policy.score(request, rngs[0]), expected, rtol=1e-10, atol=1e-12)
    assert isinstance(policy, BanditPolicy)


@pytest.mark.parametrize("name,params", CASES, ids=IDS)
def test_batches_of_one_row_and_of_none(world, feedbacks, name, params):
    policy = make_policy(world, name, params, feedbacks)
    batch, rngs = world.batch(n_rows=1, oracle=policy.oracle, seed=13)
    assert_batch_matches(policy, batch, rngs)
    none = np.zeros(0, dtype=np.int64)
    assert len(policy.recommend_batch(batch_rows(batch, none), rngs_rows(rngs, none))) == 0
