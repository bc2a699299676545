"""The matrix_factorization policy (recsim.policies.factorization): conformance, the batch and
per-request paths, determinism of the fit (runs and engines bit for bit), what it learns on a
world of two groups with disjoint tastes, cold users and items, and the message without the
optional ``implicit`` package."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from recsim.catalog import generate_catalog, make_topic_centers
from recsim.config import CatalogConfig, ScenarioError, scenario_from_dict
from recsim.policies.base import (
    BatchFeatures,
    CandidateFeatures,
    Feedback,
    History,
    HistoryTable,
    PolicyContext,
    Request,
    RequestBatch,
    RequestRngs,
)
from recsim.policies.factorization import MISSING_IMPLICIT, MatrixFactorizationPolicy
from recsim.policies.registry import BUILTIN_POLICIES, resolve_policy
from recsim.testing import check_policy

DAY = 86400.0
N_USERS, N_ITEMS, SLATE = 60, 400, 10


# ----------------------------------------------------------------------------- a two-taste world
class TwoTastes:
    """``N_USERS`` users in two groups; group g watches only items with ``id % 2 == g`` (20
    random ones each): tastes with nothing in common. Items are a real catalog's (ids only
    matter to the policy)."""

    def __init__(self, seed: int = 0):
        rng = np.random.default_rng(seed)
        cfg = CatalogConfig(n_items=N_ITEMS, n_creators=40)
        centers = make_topic_centers(cfg, rng)
        self.catalog = generate_catalog(cfg, centers, 0.0, 0.0, rng, np.random.default_rng(seed + 1))
        self.items = self.catalog.observable()
        self.context = PolicyContext(
            n_topics=self.catalog.n_topics, slate_size=SLATE, n_candidates=50, retrain_interval=DAY,
            items=self.items, n_users=N_USERS,
        )
        self.group = np.arange(N_USERS) % 2
        ids = np.arange(N_ITEMS)
        users = np.repeat(np.arange(N_USERS), 20)
        watched = np.concatenate([rng.choice(ids[ids % 2 == self.group[u]], 20, replace=False) for u in range(N_USERS)])
        n = users.shape[0]
        self.feedback = Feedback(
            time=np.sort(rng.uniform(0.0, DAY, n)), user_id=users, item_id=watched,
            position=np.ones(n, np.int64), clicked=np.ones(n, bool), watch_time=np.full(n, 120.0),
        )
        self.rng = rng

    def request(self, user: int, candidates: np.ndarray, now: float = DAY + 600.0) -> Request:
        return Request(user, now, History(self.catalog.n_topics), candidates,
                       CandidateFeatures(self.items, candidates, now), SLATE)

    def fitted(self, **params) -> MatrixFactorizationPolicy:
        policy = MatrixFactorizationPolicy(**params)
        policy.reset(self.context)
        policy.fit(self.feedback, DAY)
        return policy


@pytest.fixture(scope="module")
def world() -> TwoTastes:
    return TwoTastes()


# ----------------------------------------------------------------------------- conformance
def test_registered_and_conforms():
    assert "matrix_factorization" in BUILTIN_POLICIES
    assert resolve_policy("matrix_factorization") is MatrixFactorizationPolicy
    assert not MatrixFactorizationPolicy.oracle


@pytest.mark.parametrize("params", [
    {}, {"explore": 0.0}, {"explore": 1.0}, {"signal": "minutes", "window": "1d", "refit_every": 2},
    {"factors": 2, "regularization": 0.1, "alpha": 40.0, "iterations": 3, "seed": 9},
])
def test_conforms_with_its_parameters(params):
    check_policy(MatrixFactorizationPolicy(**params))
    check_policy(MatrixFactorizationPolicy(**params), seed=4321, n_requests=12)


def test_bad_parameters_are_refused_with_their_field():
    with pytest.raises(ScenarioError, match=r"policies\.0\.params\.factors"):
        scenario_from_dict({"name": "t", "policies": [{"type": "matrix_factorization", "params": {"factors": 0}}]})
    with pytest.raises(ScenarioError, match=r"policies\.0\.params\.signal"):
        scenario_from_dict({"name": "t", "policies": [{"type": "matrix_factorization", "params": {"signal": "likes"}}]})


# ----------------------------------------------------------------------------- what it learns
def test_recommends_each_group_its_own_items(world):
    """Disjoint tastes: with random candidates from both halves (chance: half of the slate
    from the user's own), the factors put the user's own half first."""
    policy = world.fitted(explore=0.0)
    rng = np.random.default_rng(11)
    shares = []
    for user in range(N_USERS):
        candidates = rng.choice(N_ITEMS, 50, replace=False)
        slate = policy.recommend(world.request(user, candidates), np.random.default_rng(user))
        shares.append(np.mean(slate % 2 == world.group[user]))
    assert np.mean(shares) >= 0.95 and np.min(shares) >= 0.8, shares
    # the items a group watched are scored above the other group's by its users
    scores = policy.score(world.request(0, np.arange(N_ITEMS)), np.random.default_rng(0))
    watched = np.zeros(N_ITEMS, bool)
    watched[world.feedback.item_id] = True
    own, other = (np.arange(N_ITEMS) % 2 == 0) & watched, (np.arange(N_ITEMS) % 2 == 1) & watched
    assert scores[own].mean() > scores[other].mean() + 5 * scores[other].std() / np.sqrt(other.sum())


def test_learned_reports_the_fit(world):
    policy = MatrixFactorizationPolicy()
    policy.reset(world.context)
    assert policy.learned() == {}
    policy.fit(world.feedback, DAY)
    learned = policy.learned()
    assert learned["matrix_factorization.users"] == N_USERS
    assert learned["matrix_factorization.pairs"] == len(world.feedback)  # 20 distinct items each
    assert learned["matrix_factorization.items"] == np.unique(world.feedback.item_id).shape[0]
    assert learned["matrix_factorization.mean_user_norm"] > 0


def test_cold_users_get_the_mean_taste_and_cold_items_score_zero(world):
    policy = world.fitted(explore=0.0)
    candidates = np.arange(N_ITEMS, dtype=np.int64)
    cold_user = policy.score(world.request(N_USERS + 3, candidates), np.random.default_rng(0))
    mean = policy.user_factors_[policy.user_known_].mean(axis=0)
    assert np.allclose(cold_user, policy.item_factors_[:N_ITEMS] @ mean, rtol=1e-12, atol=1e-12)
    never = ~np.isin(candidates, world.feedback.item_id)
    assert never.any() and (policy.score(world.request(0, candidates), None)[never] == 0.0).all()


def test_new_items_are_explored(world):
    """Items no one has watched (e.g. uploaded since the last fit) rank below the user's own
    items but get the explored slots; with explore = 0 they are not served."""
    never = np.setdiff1d(np.arange(N_ITEMS), world.feedback.item_id)
    own = np.unique(world.feedback.item_id[world.feedback.user_id == 0])
    candidates = np.concatenate([own[:15], never[:15]]).astype(np.int64)
    greedy = world.fitted(explore=0.0).recommend(world.request(0, candidates), np.random.default_rng(1))
    assert np.isin(greedy, own).all()
    policy = world.fitted(explore=0.5)
    served_new = []
    for seed in range(200):
        slate = policy.recommend(world.request(0, candidates), np.random.default_rng(seed))
        assert slate.shape == (SLATE,) and np.unique(slate).shape == (SLATE,) and np.isin(slate, candidates).all()
        served_new.append(np.isin(slate, never).mean())
    # each slot explores with probability 0.5: binomial share, 2,000 slots
    assert abs(np.mean(served_new) - 0.5) < 4 * np.sqrt(0.25 / (200 * SLATE))
    everything_new = policy.recommend(world.request(0, never[:30].astype(np.int64)), np.random.default_rng(2))
    assert everything_new.shape == (SLATE,)


def test_window_and_refit_schedule(world):
    policy = MatrixFactorizationPolicy(window="1d", refit_every=2)
    policy.reset(world.context)
    policy.fit(world.feedback, DAY)  # call 1: refit
    first = policy.user_factors_.copy()
    assert policy.n_fits_ == 1
    empty = Feedback(*(np.zeros(0, dtype) for dtype in (float, np.int64, np.int64, np.int64, bool, float)))
    policy.fit(empty, 2 * DAY)  # call 2: no refit, and the day-1 watches leave the window
    assert policy.n_fits_ == 1 and np.array_equal(policy.user_factors_, first) and policy.batches_ == []
    policy.fit(empty, 3 * DAY)  # call 3: a refit with nothing to fit keeps the model
    assert policy.n_fits_ == 1 and np.array_equal(policy.user_factors_, first)


# ----------------------------------------------------------------------------- determinism
def test_the_fit_is_a_function_of_the_data_and_the_seed(world):
    a, b = world.fitted(), world.fitted()
    assert np.array_equal(a.user_factors_, b.user_factors_) and np.array_equal(a.item_factors_, b.item_factors_)
    c = world.fitted(seed=1)
    assert not np.array_equal(a.item_factors_, c.item_factors_)


def test_batch_rows_are_the_requests(world):
    """``recommend_batch`` / ``score_batch`` row i is ``recommend`` / ``score`` of request i
    alone, exploration draws included (users beyond the fitted ones, ids past the table)."""
    policy = world.fitted(explore=0.3)
    rng = np.random.default_rng(3)
    rows, c = 40, 50
    users = rng.integers(0, N_USERS + 10, rows).astype(np.int64)
    candidates = np.stack([rng.choice(N_ITEMS, c, replace=False) for _ in range(rows)]).astype(np.int64)
    now = np.full(rows, DAY + 600.0)
    histories = HistoryTable(N_USERS + 10, world.catalog.n_topics)
    batch = RequestBatch(users, now, candidates, histories, BatchFeatures(world.items, candidates, now), SLATE, world.items)
    rngs = RequestRngs(99, users, rng.integers(0, 1000, rows))
    scores = policy.score_batch(batch, rngs)
    slates = policy.recommend_batch(batch, rngs)
    for i in range(rows):
        assert np.array_equal(scores[i], policy.score(batch.request(i), rngs[i]))
        assert np.array_equal(np.asarray(slates[i]), policy.recommend(batch.request(i), rngs[i]))


# ----------------------------------------------------------------------------- in a run
SCENARIOS = Path(__file__).resolve().parent.parent / "scenarios"

BASE = {
    "name": "mf",
    "seed": 11,
    "horizon": "2d",
    "warmup": "1d",
    "replications": 1,
    "population": {"n_users": 40, "scripted": [{"name": "bots", "n_users": 3, "rule": "top_item"}]},
    "catalog": {"n_items": 300, "upload_rate": "150/d"},
    "recommender": {"slate_size": 6, "n_candidates": 40, "retrain_interval": "12h"},
    "outputs": {"metrics_interval": "12h"},
    "behaviour": {"survey": {"probability": 0.3}, "churn": {"zeta0": -2.5}},
    "policies": [{"name": "mf", "type": "matrix_factorization", "params": {"explore": 0.2, "factors": 8}}],
}


def _run(engine, tmp_path: Path, tag: str):
    from recsim.eventlog import EventLog
    from recsim.world import build_world

    scenario = scenario_from_dict(BASE)
    world = build_world(scenario, 0)
    path = tmp_path / f"{tag}.parquet"
    result = engine(world, scenario.policies[0], EventLog(path, log_impressions=True))
    return result, pd.read_parquet(path)


def test_runs_are_identical_across_runs_and_engines(tmp_path):
    """Two runs of the batched engine and one of the reference engine write the same event
    log, metrics and learned factors, bit for bit (the fit is seeded and single-threaded)."""
    from recsim.engine.batched import simulate_batched
    from recsim.engine.reference import simulate

    first, events = _run(simulate_batched, tmp_path, "a")
    again, events_again = _run(simulate_batched, tmp_path, "b")
    reference, events_ref = _run(simulate, tmp_path, "c")
    for other, other_events in ((again, events_again), (reference, events_ref)):
        pd.testing.assert_frame_equal(other_events, events, check_exact=True)
        assert other.metrics == first.metrics or all(
            a[:4] == b[:4] and (a[4] == b[4] or (np.isnan(a[4]) and np.isnan(b[4])))
            for a, b in zip(other.metrics, first.metrics))
        assert other.models == first.models
        assert np.array_equal(other.policy.user_factors_, first.policy.user_factors_)
        assert np.array_equal(other.policy.item_factors_, first.policy.item_factors_)
    kinds = set(events["event"].astype(str))
    assert {"retrain", "watch", "click"} <= kinds
    assert first.models and {name for _, name, _ in first.models} >= {"matrix_factorization.users"}
    # the bots' watches are in the training data (ids after the modelled users')
    assert first.policy.user_known_[40:].any()
    # items uploaded during the run are served
    from recsim.world import build_world

    world = build_world(scenario_from_dict(BASE), 0)
    served = events.loc[events["event"].astype(str) == "impression", "item_id"].to_numpy()
    assert (world.catalog.upload_time[served] > world.start).any()


# ----------------------------------------------------------------------------- without implicit
_HIDE = "import sys; sys.modules['implicit'] = None\nfrom recsim.cli import main\nsys.argv = ['recsim', *sys.argv[1:]]\nmain()\n"


def test_without_implicit_validate_and_run_give_one_line_exit_2(tmp_path):
    from support import one_screen

    (tmp_path / "hide.py").write_text(_HIDE)
    (tmp_path / "s.yaml").write_text(
        "name: t\nhorizon: 1d\nwarmup: 1d\npopulation: {n_users: 5}\ncatalog: {n_items: 300}\n"
        "policies:\n  - random\n  - {type: matrix_factorization, params: {factors: 8}}\n")
    for command in (["validate", "s.yaml"], ["run", "s.yaml", "--out", "o"]):
        result = subprocess.run([sys.executable, "hide.py", *command], capture_output=True, text=True,
                                cwd=tmp_path, check=False)
        err = one_screen(result, 2, "policies.1.params", "recsim-engagement[mf]")
        assert MISSING_IMPLICIT in " ".join(err.split())
    assert not (tmp_path / "o").exists()
