"""The engagement oracle's fused kernel (:func:`recsim.kernels.model.engagement_top_k_rows`)
serves the slates of its definition — the top k of P(click alone)·E[τ | click], the scores
computed by the NumPy code (kernels off) and ranked by NumPy's stable argsort — slate for
slate, for every k, with ties, NaN scores and the parameters' edges, while computing only the
scores that could enter a slate. Whole runs with and without kernels are compared in
``tests/test_kernels.py`` (the golden cases include ``engagement_oracle``)."""

from __future__ import annotations

from dataclasses import replace
from types import SimpleNamespace

import numpy as np
import pytest

from recsim import kernels
from recsim.config import scenario_from_dict
from recsim.kernels import model as kernel_model
from recsim.policies.base import OracleBatch, _top_k_rows_numpy
from recsim.policies.builtin import ClickValueOracle, EngagementOracle, _engagement_top_k
from recsim.users import default
from recsim.world import build_world

N_USERS, N_ITEMS = 60, 300

# parameter sets across the bound's cases: the defaults; σ = 0 (E = min(L, e^m)); an outside
# option so low that most candidates have x = β·(A + ℓ₁ − U₀) > 0 (the bound's min(0, x) at 0);
# a negative α_A with a steep β; no grip (w_e = 0) and a large spread of log-normal watch times
BEHAVIOURS = {
    "defaults": {},
    "sigma-0": {"watch": {"sigma": 0.0}},
    "clicks-likely": {"choice": {"u0": -8.0}},
    "alpha-negative": {"watch": {"alpha_a": -1.5, "mu": 0.5}, "choice": {"beta": 8.0}},
    "wide": {"allure": {"w_e": 0.0}, "watch": {"sigma": 3.0}},
}


def _world(behaviour: dict, seed: int):
    sc = scenario_from_dict({
        "name": "fused-oracle", "seed": seed, "warmup": "0s", "horizon": "1d", "population": {"n_users": N_USERS},
        "catalog": {"n_items": N_ITEMS, "n_topics": 8, "upload_rate": "0/d"},
        "behaviour": behaviour, "policies": ["engagement_oracle"],
    })
    world = build_world(sc, 0)
    rng = np.random.default_rng(seed)
    arrays = world.state.arrays
    arrays["appetite"][:] = rng.random(N_USERS)
    arrays["satisfaction"][:] = rng.normal(0.0, 3.0, N_USERS)
    arrays["fatigue"][:] = rng.exponential(1.0, N_USERS)
    return world, rng


def _twins(catalog):
    """The catalog with items ``i`` and ``i + N_ITEMS // 2`` alike in every true attribute."""
    half = N_ITEMS // 2
    alike = {}
    for name in ("topics", "extremeness", "clickbait", "length"):
        values = getattr(catalog, name).copy()
        values[half:] = values[:half]
        alike[name] = values
    return replace(catalog, **alike, log_length=None, topics_by_topic=None)


def _batch(world, rng, B: int, c: int, ties: bool = False, catalog=None) -> OracleBatch:
    users = rng.integers(0, N_USERS, B)
    candidates = rng.integers(0, N_ITEMS, (B, c))
    if ties:  # exact ties between different items: each row holds twins, in either order
        catalog = _twins(catalog or world.catalog)
        twins = (candidates[:, : c - c // 2] + N_ITEMS // 2) % N_ITEMS
        candidates[:, c // 2:] = twins[:, ::-1]
    return OracleBatch(world.model, world.state, users, candidates, catalog or world.catalog)


def _definition(batch: OracleBatch, k: int) -> np.ndarray:
    with kernels.use("numpy"), np.errstate(over="ignore"):  # lengths near the largest float
        scores = EngagementOracle._scores(batch.block(slice(None)))
    return _top_k_rows_numpy(batch.candidates, scores, k)


@pytest.fixture
def scored(monkeypatch):
    """The number of scores each row computed, per call of the fused kernel (and, in
    ``scored.left``, the rows it left to the NumPy code)."""
    calls = Calls()
    fused = kernel_model.engagement_top_k_rows

    def spy(*args):
        done = fused(*args)
        calls.append(args[-1].copy())
        calls.left.append(args[-2].copy())
        return done

    monkeypatch.setattr(kernel_model, "engagement_top_k_rows", spy)
    return calls


class Calls(list):
    def __init__(self):
        super().__init__()
        self.left = []


def _fused(batch: OracleBatch, k: int) -> np.ndarray:
    with kernels.use("numba"):
        slates = _engagement_top_k(batch.block(slice(None)), batch.candidates, k)
    assert slates is not None
    return slates


@pytest.mark.parametrize("behaviour", BEHAVIOURS)
@pytest.mark.parametrize("ties", [False, True])
def test_fused_slates_are_the_definitions_for_every_k(behaviour, ties, scored):
    world, rng = _world(BEHAVIOURS[behaviour], seed=3)
    for c in (1, 7, 200):
        batch = _batch(world, rng, 40, c, ties)
        for k in sorted({1, 2, 3, 5, 10, c - 1, c, c + 3} - {0}):
            got = _fused(batch, k)
            assert np.array_equal(got, _definition(batch, k)), (behaviour, c, k)
            if c == 200 and k <= 3:
                # the shortcut is taken: every row skips some scores (rows whose scores are all
                # 0, where nothing can be skipped, do not arise with these parameters)
                assert (scored[-1] < c).all(), scored[-1]
            else:
                assert (scored[-1] <= c).all()


def test_nan_scores_rank_last_and_rows_needing_them_are_the_numpy_codes(scored):
    world, rng = _world({}, seed=5)
    world.state.arrays["theta"][:5] = np.nan  # users 0-4: every score NaN
    clickbait = world.catalog.clickbait.copy()
    clickbait[::7] = np.nan  # every 7th item: a NaN score for everyone
    batch = _batch(world, rng, 60, 30, catalog=replace(world.catalog, clickbait=clickbait))
    batch.users[:6] = [0, 1, 2, 3, 4, 9]
    assert 0 < (batch.users >= 5).sum() < 55
    with kernels.use("numpy"):
        real = (~np.isnan(EngagementOracle._scores(batch.block(slice(None))))).sum(axis=1)
    assert (real[batch.users < 5] == 0).all() and (real[batch.users >= 5] > 20).all()
    for k in (1, 4, 10, 25, 29, 30, 31):
        assert np.array_equal(_fused(batch, k), _definition(batch, k)), k
        # rows whose top k takes NaN scores are left to the NumPy code
        assert np.array_equal(scored.left[-1], real < min(k, 30)), k


def test_a_huge_or_overflowing_watch_time_bound_still_gives_the_definitions_slates(scored):
    """Lengths up to 1.7e308 s: E[T] overflows for some candidates (their scores are inf),
    and the bound's min(log L, m + σ²/2) is far above the others'."""
    world, rng = _world({"watch": {"sigma": 2.0, "mu": 3.0}}, seed=6)
    length = world.catalog.length.copy()
    length[::5] = 10.0 ** rng.uniform(2, 308, length[::5].shape)
    length[1:N_ITEMS:10] = 1.7e308  # e^(m + σ²/2) overflows: inf scores
    batch = _batch(world, rng, 50, 120, catalog=replace(world.catalog, length=length, log_length=None))
    with kernels.use("numpy"), np.errstate(over="ignore"):
        scores = EngagementOracle._scores(batch.block(slice(None)))
    assert np.isinf(scores).any() and (np.isfinite(scores) & (scores > 1e100)).any()
    for k in (1, 3, 10, 120):
        assert np.array_equal(_fused(batch, k), _definition(batch, k)), k


def test_one_request_takes_the_fused_kernel_and_gets_its_rows_slate(scored):
    world, rng = _world({}, seed=7)
    batch = _batch(world, rng, 12, 50)
    policy = EngagementOracle()
    expected = _definition(batch, 10)
    with kernels.use("numba"):
        for i in range(12):
            request = SimpleNamespace(candidates=batch.candidates[i], oracle=batch.view(i), slate_size=10)
            assert np.array_equal(policy.recommend(request, None), expected[i])
    assert len(scored) == 12


def test_other_scores_or_components_are_not_served_by_the_kernel(scored):
    """ClickValueOracle ranks by its own scores; a user model whose allure is a subclass (a
    plug-in's, or recsim's wrapped) computes with its own code: no fused slates."""
    world, rng = _world({}, seed=8)
    batch = _batch(world, rng, 10, 40)
    request = SimpleNamespace(candidates=batch.candidates[0], oracle=batch.view(0), slate_size=5)
    with kernels.use("numba"):
        ClickValueOracle().recommend(request, None)

        class Mine(default.Allure):
            pass

        world.model.allure = Mine(world.model.allure.params)
        assert _engagement_top_k(batch.block(slice(None)), batch.candidates, 5) is None
    assert scored == []


@pytest.mark.parametrize("name", ["grip", "position_term", "capped_lognormal_mean"])
def test_a_formula_replaced_at_run_time_turns_the_fused_kernel_off(name, monkeypatch, scored):
    from recsim.users import formulas

    world, rng = _world({}, seed=10)
    batch = _batch(world, rng, 5, 20)
    with kernels.use("numba"):
        assert _engagement_top_k(batch.block(slice(None)), batch.candidates, 3) is not None
        monkeypatch.setattr(formulas, name, lambda *args, **kwargs: None)  # a reader's variant
        assert _engagement_top_k(batch.block(slice(None)), batch.candidates, 3) is None
    assert len(scored) == 1


def test_ids_outside_the_catalog_are_refused_not_read():
    world, rng = _world({}, seed=9)
    batch = _batch(world, rng, 4, 10)
    batch.candidates[2, 3] = N_ITEMS
    with kernels.use("numba"):
        assert _engagement_top_k(batch.block(slice(None)), batch.candidates, 3) is None


# ----------------------------------------------------------------------------- found by a trial
def test_scores_that_overflow_to_inf_are_scored_not_bounded(scored):
    """Past m + σ²/2 ≈ 709.78, e^(m + σ²/2) overflows and the computed E[τ] is Φ·inf = inf, above
    the length that bounds the exact value: such a candidate ranks first and must be scored.
    The smallest case: item 1's score is inf, item 0's finite; the slate of one is item 1."""
    one = np.zeros((1, 1))
    out, left, done = np.empty((1, 1), dtype=np.int64), np.zeros(1, dtype=bool), np.empty(1, dtype=np.int64)
    with kernels.use("numba"):
        assert kernel_model.engagement_top_k_rows(
            one, np.zeros(1), np.full(1, 0.5), np.zeros(1), np.zeros((2, 1)), np.zeros(2), np.array([-5.0, 2.0]),
            np.array([1000.0, 100.0]), np.log([1000.0, 100.0]), np.array([[0, 1]]),
            0.0, 0.0, 1.0, 0.12, 0.1, -0.0, -100.0, 1.0, 1.0, 0.0, 1.0, 0.0, 37.6, out, left, done)
    assert out.tolist() == [[1]] and not left[0]
    # and in a world where a sixth of the scores are inf
    world, rng = _world({"watch": {"sigma": 37.6}}, seed=11)
    batch = _batch(world, rng, 60, 100)
    with kernels.use("numpy"), np.errstate(over="ignore", invalid="ignore"):
        scores = EngagementOracle._scores(batch.block(slice(None)))
    assert np.isinf(scores).any() and np.isfinite(scores).any()
    with np.errstate(over="ignore", invalid="ignore"):
        for k in (1, 3, 10, 30):
            assert np.array_equal(_fused(batch, k), _definition(batch, k)), k


def test_parameters_set_in_place_are_the_ones_ranked_by(scored):
    world, rng = _world({}, seed=12)
    batch = _batch(world, rng, 40, 60)
    assert np.array_equal(_fused(batch, 5), _definition(batch, 5))
    world.model.allure.params.w_c = 30.0  # the scenario models allow assignment
    world.model.response.params.alpha_a = -3.0
    assert np.array_equal(_fused(batch, 5), _definition(batch, 5))


def test_scores_set_on_the_instance_are_ranked_by_not_the_kernel(scored):
    world, rng = _world({}, seed=13)
    batch = _batch(world, rng, 5, 40)
    policy = EngagementOracle()
    policy._scores = lambda view: -view.click_probability
    with kernels.use("numba"):
        for i in range(5):
            request = SimpleNamespace(candidates=batch.candidates[i], oracle=batch.view(i), slate_size=5)
            expected = _top_k_rows_numpy(batch.candidates[i: i + 1], -batch.view(i).click_probability[None], 5)[0]
            assert np.array_equal(policy.recommend(request, None), expected)
    assert scored == []


def test_what_the_kernel_cannot_read_as_is_is_left_to_the_numpy_code(scored):
    """A negative σ (the bound is the log-normal's: only by bypassing validation) and item
    arrays that do not fit the catalog are not given to the kernel, which checks no shapes."""
    from recsim.config import WatchConfig

    world, rng = _world({}, seed=14)
    batch = _batch(world, rng, 5, 20)
    short = replace(world.catalog, extremeness=world.catalog.extremeness[:-1].copy())
    with kernels.use("numba"):
        view = OracleBatch(world.model, world.state, batch.users, batch.candidates, short).block(slice(None))
        assert _engagement_top_k(view, batch.candidates, 3) is None
        for topics in (world.catalog.topics[:, 0].copy(), world.catalog.topics.astype(np.float32)):
            odd = replace(world.catalog, topics=topics)  # not the 2-D float64 array the kernel reads
            view = OracleBatch(world.model, world.state, batch.users, batch.candidates, odd).block(slice(None))
            assert _engagement_top_k(view, batch.candidates, 3) is None
        world.model.response.params = WatchConfig.model_construct(**{**world.model.response.params.__dict__,
                                                                    "sigma": -0.5})
        assert _engagement_top_k(batch.block(slice(None)), batch.candidates, 3) is None
    assert scored == []
