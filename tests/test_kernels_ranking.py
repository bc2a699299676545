"""The ranking kernels (recsim.kernels.ranking) give what the NumPy code gives, bit for bit and
slate for slate: the top k of every row of scores (recsim.policies.base.top_k_rows) and the
learned engagement ranker's serving scores, alone, in a batch, and in whole runs."""

from __future__ import annotations

import numpy as np
import pytest

# the batched-serving tests' world, batches and fitted policies; the equivalence tests' tiny
# scenario; the run folders' comparison
from support import assert_same_outputs
from test_engine_equivalence import BASE
from test_engine_equivalence import CASES as ENGINE_CASES
from test_policy_batch import DAY, feedbacks, make_policy, world  # noqa: F401

from recsim import kernels
from recsim.arrays import gather_dot
from recsim.config import scenario_from_dict
from recsim.experiment import run_experiment
from recsim.kernels import ranking
from recsim.policies.base import RequestBatch, batch_rows, rngs_rows, top_k_rows
from recsim.policies.learned import _item_part, _log_odds

LEARNED = ("engagement", "harm_penalized", "stated_preference")


def numpy(function, *args, **kwargs):
    with kernels.use("numpy"):
        return function(*args, **kwargs)


def same_bits(a, b) -> bool:
    """Equal arrays, float for float (NaN payloads and the sign of zero included)."""
    a, b = np.asarray(a), np.asarray(b)
    if a.shape != b.shape or a.dtype != b.dtype:
        return False
    if a.dtype.kind == "f":
        return np.array_equal(a.view(f"u{a.dtype.itemsize}"), b.view(f"u{b.dtype.itemsize}"))
    return np.array_equal(a, b)


@pytest.fixture
def calls(monkeypatch):
    """How many times each ranking kernel ran (and how many rows top_k_rows left to NumPy)."""
    counts = {"top_k_rows": 0, "left": 0, "learned_rows": 0, "learned_row": 0, "learned_top_k_rows": 0}

    def counting(name):
        kernel = getattr(ranking, name)

        def wrapper(*args):
            counts[name] += 1
            out = kernel(*args)
            if name == "top_k_rows":
                counts["left"] += int(out.sum())
            return out

        monkeypatch.setattr(ranking, name, wrapper)

    for name in ("top_k_rows", "learned_rows", "learned_row", "learned_top_k_rows"):
        counting(name)
    return counts


def test_kernels_are_on_in_the_tests():
    assert kernels.enabled(), "numba is a dev dependency: these tests compare the kernels with NumPy"


# ----------------------------------------------------------------------------- top_k_rows
def _scores(rng: np.random.Generator, B: int, c: int, kind: int) -> np.ndarray:
    """Scores of one of several kinds: distinct, few values (many ties), specials mixed in
    (±inf, ±0, NaN few or many), all NaN, all equal."""
    if kind == 0:
        return rng.standard_normal((B, c))
    if kind == 5:
        return np.full((B, c), np.nan)
    if kind == 6:
        return np.full((B, c), rng.choice([0.0, -0.0, 1.5, -np.inf, np.inf]))
    s = rng.integers(-2, 3, size=(B, c)).astype(float)
    if kind >= 2:
        s[rng.random((B, c)) < 0.15] = np.inf
        s[rng.random((B, c)) < 0.15] = -np.inf
        s[rng.random((B, c)) < 0.15] = -0.0
    if kind >= 3:
        share = 0.05 if kind == 3 else rng.random()
        s[rng.random((B, c)) < share] = np.nan
    return s


def _case(rng: np.random.Generator):
    c = int(rng.choice([1, 2, 3, 5, 10, 11, 40, int(rng.integers(1, 250))]))
    k = int(rng.choice([1, 2, c - 1, c, c + 1, 10, int(rng.integers(1, 2 * c + 2))]))
    k = max(k, 1)
    B = int(rng.integers(0, 9))
    scores = _scores(rng, B, c, int(rng.integers(0, 7)))
    if rng.random() < 0.2:
        scores = scores.astype(np.float32)
    candidates = np.array([rng.choice(10_000, c, replace=False) for _ in range(B)]).reshape(B, c)
    candidates[rng.random((B, c)) < 0.1] = -1  # padded places: the caller's scores for them
    return candidates.astype(np.int64), scores, k


def test_top_k_rows_kernel_gives_the_numpy_slates(calls):
    rng = np.random.default_rng(20240516)
    for _ in range(6000):
        candidates, scores, k = _case(rng)
        expected = numpy(top_k_rows, candidates, scores, k)
        got = top_k_rows(candidates, scores, k)
        assert same_bits(got, expected), (candidates, scores, k, got, expected)
    assert calls["top_k_rows"] == 6000
    assert calls["left"] > 0  # rows whose top k takes NaN scores: ranked by the NumPy code


@pytest.mark.parametrize("k", [1, 3, 10, 39, 40, 41])
def test_top_k_rows_edge_rows(k):
    """Rows of ties straddling the cut, every score equal, NaN before and after, infinities,
    -0.0 against 0.0, and the columns of a wider array (a view that is not contiguous)."""
    c = 40
    rows = [
        np.zeros(c), np.full(c, -0.0), np.where(np.arange(c) % 2, 0.0, -0.0), np.full(c, np.nan),
        np.where(np.arange(c) < 5, np.nan, 1.0), np.where(np.arange(c) >= 35, np.nan, 1.0),
        np.where(np.arange(c) % 3 == 0, np.nan, np.arange(c) % 4),
        np.where(np.arange(c) % 2, np.inf, -np.inf), np.linspace(1, 0, c), np.linspace(0, 1, c),
        np.r_[np.full(c - 1, -np.inf), np.nan], np.r_[np.nan, np.full(c - 1, np.inf)],
        np.repeat([3.0, 2.0, 1.0, 0.0], 10), np.tile([1.0, 2.0], c // 2),
    ]
    scores = np.stack(rows)
    wide = np.arange(len(rows) * (c + 5)).reshape(len(rows), c + 5) - 7
    candidates = wide[:, :c]  # not contiguous, and read-only as the engine's
    candidates.flags.writeable = False
    expected = numpy(top_k_rows, candidates, scores, k)
    assert same_bits(top_k_rows(candidates, scores, k), expected)
    assert same_bits(top_k_rows(candidates, scores[:, ::-1], k), numpy(top_k_rows, candidates, scores[:, ::-1], k))


def test_top_k_rows_of_other_scores_takes_the_numpy_code(calls):
    """Integer scores, empty rows and k = 0 are left to the NumPy code (the same results, the
    same errors)."""
    rng = np.random.default_rng(3)
    candidates = rng.permutation(50).reshape(5, 10)
    for scores, k in ((rng.integers(-3, 3, (5, 10)), 4), (np.zeros((5, 0)), 3)):
        cand = candidates[:, : scores.shape[1]]
        assert same_bits(top_k_rows(cand, scores, k), numpy(top_k_rows, cand, scores, k))
    with pytest.raises(ValueError):
        top_k_rows(candidates, rng.random((5, 10)), 0)
    assert calls["top_k_rows"] == 0


# ----------------------------------------------------------------------------- learned serving
@pytest.fixture(scope="module")
def fitted(world, feedbacks):  # noqa: F811 - the imported fixtures
    policies = {name: make_policy(world, name, {}, feedbacks) for name in LEARNED}
    policies["harm_demote"] = make_policy(world, "harm_penalized", {"demote_above": 0.6}, feedbacks)
    assert all(p.model_.fitted for p in policies.values())
    assert policies["stated_preference"].survey_coef_ is not None
    return policies


@pytest.mark.parametrize("name", [*LEARNED, "harm_demote"])
@pytest.mark.parametrize("n_rows,n_candidates", [(700, 200), (37, 40), (1, 1), (0, 40)])
def test_learned_serving_is_the_numpy_code_bit_for_bit(world, fitted, calls, name, n_rows, n_candidates):  # noqa: F811
    """Scores and slates of a batch (700 × 200 spans several blocks of rows), and of each of
    its requests alone, with the kernels and with the NumPy code."""
    policy = fitted[name]
    batch, rngs = world.batch(n_rows=max(n_rows, 1), n_candidates=n_candidates, seed=n_rows)
    if n_rows == 0:
        none = np.zeros(0, dtype=np.int64)
        batch, rngs = batch_rows(batch, none), rngs_rows(rngs, none)
    scores = policy.score_batch(batch, rngs)
    assert same_bits(scores, numpy(policy.score_batch, batch, rngs))
    assert same_bits(policy.recommend_batch(batch, rngs), numpy(policy.recommend_batch, batch, rngs))
    # the engagement ranker's slates come from the fused kernel; the others change the scores
    # (a penalty, a survey term), so they are ranked from their own scores
    assert calls["learned_top_k_rows" if name == "engagement" else "learned_rows"] > 0 or n_rows == 0
    for i in range(min(n_rows, 40)):
        request = batch.request(i)
        alone = policy.score(request, rngs[i])
        assert same_bits(alone, scores[i])
        assert same_bits(alone, numpy(policy.score, request, rngs[i]))
        assert same_bits(policy.recommend(request, rngs[i]), numpy(policy.recommend, request, rngs[i]))
    if n_rows:
        assert calls["learned_row"] > 0 or name == "engagement"


def test_log_odds_and_relevance_alone_and_in_blocks(world, fitted):  # noqa: F811
    policy = fitted["engagement"]
    batch, _ = world.batch(n_rows=50, n_candidates=60, seed=8)
    blocks = list(policy._log_odds_blocks(batch))
    expected = numpy(lambda: list(policy._log_odds_blocks(batch)))
    assert len(blocks) == len(expected)
    for (rows, idx, lo, rel), (rows_n, idx_n, lo_n, rel_n) in zip(blocks, expected):
        assert rows == rows_n and same_bits(idx, idx_n)
        assert same_bits(lo, lo_n) and same_bits(rel, rel_n)
    for i in range(len(batch)):
        request = batch.request(i)
        for got, want in zip(policy._log_odds(request), numpy(policy._log_odds, request)):
            assert same_bits(got, want)
        assert same_bits(policy.predicted_watch_minutes(request), numpy(policy.predicted_watch_minutes, request))


def test_items_out_of_range_raise_numpys_error(world, fitted):  # noqa: F811
    policy = fitted["engagement"]
    batch, rngs = world.batch(n_rows=5, seed=9)
    candidates = batch.candidates.copy()
    candidates[3, 7] = world.n_items
    bad = RequestBatch(batch.user_ids, batch.now, candidates, batch.histories,
                       type(batch.features)(batch.items, candidates, batch.now), batch.slate_size, batch.items)
    for backend in ("numba", "numpy"):
        with kernels.use(backend), pytest.raises(IndexError):
            policy.score_batch(bad, rngs)
        with kernels.use(backend), pytest.raises(IndexError):
            policy.score(bad.request(3), rngs[3])
        with kernels.use(backend), pytest.raises(IndexError):  # the fused slates refuse it too
            policy.recommend_batch(bad, rngs)
        with kernels.use(backend), pytest.raises(IndexError):
            policy.recommend(bad.request(3), rngs[3])


def test_the_oldest_upload_is_kept_per_catalog(world, fitted):  # noqa: F811
    """The fused slates' bound reads the catalog's earliest upload, found once per items
    object (NaN skipped, inf when there is none), not once per request."""
    from types import SimpleNamespace

    policy = fitted["engagement"]
    items = SimpleNamespace(upload_time=np.array([np.nan, 5.0, -3.0, np.nan]))
    assert policy._oldest_upload(items) == -3.0
    items.upload_time = np.array([7.0])  # the same object: what was found is kept
    assert policy._oldest_upload(items) == -3.0
    assert policy._oldest_upload(SimpleNamespace(upload_time=np.array([np.nan]))) == np.inf
    assert policy._oldest_upload(world.items) == np.nanmin(world.items.upload_time)


def test_learned_kernel_on_special_values():
    """The kernel against the NumPy serving arithmetic (gather_dot, _item_part, _log_odds,
    exp(min(·, 30))) with candidates uploaded later (negative age) or at the request (age
    -0.0: np.maximum gives +0.0), NaN and infinite ages, NaN topics, log-odds above 30, the
    last item as -1 (np.take's reading), and no topics at all (K = 0)."""
    rng = np.random.default_rng(11)
    for K in (0, 1, 3, 20):
        n, B, c = 60, 9, 25
        topics = rng.normal(size=(n, K))
        topics[5, :1] = np.nan
        classifier = rng.random(n)
        length = rng.uniform(60, 3600, n)
        upload = rng.uniform(-5 * DAY, 2 * DAY, n)
        upload[:4] = [0.0, np.nan, np.inf, -np.inf]
        candidates = np.stack([rng.choice(n, c, replace=False) for _ in range(B)])
        candidates[0, :6] = [0, 1, 2, 3, 5, -1]
        profile = rng.normal(size=(B, K))
        mean_cls, activity = rng.random(B), rng.uniform(0, 8, B)
        now = rng.uniform(0, 3 * DAY, B)
        now[0] = -0.0  # minus the item uploaded at 0.0: age -0.0
        for scale in (1.0, 40.0):  # 40: log-odds far above 30
            w, b = rng.normal(size=10) * scale, float(rng.normal())
            part = _item_part(w, b, classifier, length)
            rel = gather_dot(topics, candidates, profile)
            lo = _log_odds(w, part.take(candidates), rel, classifier.take(candidates),
                           now[:, None] - upload.take(candidates), mean_cls[:, None], activity[:, None])
            with np.errstate(all="ignore"):
                predicted = np.exp(np.minimum(lo, 30.0))
            got_lo, got_rel, got_pred = np.empty((B, c)), np.empty((B, c)), np.empty((B, c))
            args = (topics, classifier, upload, part, candidates, profile, mean_cls, activity, now, w)
            assert ranking.learned_rows(*args, False, got_lo, got_rel)
            assert ranking.learned_rows(*args, True, got_pred, np.empty((B, 0)))
            assert same_bits(got_lo, lo) and same_bits(got_rel, rel) and same_bits(got_pred, predicted)
            for i in range(B):
                one_lo, one_rel = np.empty(c), np.empty(c)
                assert ranking.learned_row(topics, classifier, upload, part, candidates[i], profile[i],
                                           mean_cls[i], activity[i], now[i], w, False, one_lo, one_rel)
                assert same_bits(one_lo, lo[i]) and same_bits(one_rel, rel[i])
            assert np.isnan(lo[0, 1]) and lo[0, 2] == lo[0, 2]  # NaN age stays NaN; -inf age is 0


def test_log1p_bounds_hold_the_computed_log1p():
    """The bounds the fused top k uses (recsim.kernels.ranking._log1p_bounds) hold np.log1p
    (what the NumPy code and the kernels compute) for ages from 0 to 1e299 days: the edges of
    the table's buckets and one ulp either side, subnormal and huge ages, and 200,000
    log-uniform ones; and they are tight (a bucket spans log(1 + 1/256) ≈ 0.0039), or the
    bound would stop nothing."""
    rng = np.random.default_rng(5)
    edges = np.ldexp(1.0 + np.arange(256) / 256, rng.integers(0, 60, 256)[:, None]).ravel() - 1.0
    edges = edges[edges >= 0]
    days = np.concatenate([
        [0.0, 5e-324, 1e-300, 1e-17, 1e-16, 2.0**-52, 1.0, 2.0, 1e299],
        edges, np.nextafter(edges, np.inf), np.nextafter(edges, -np.inf).clip(0.0),
        10.0 ** rng.uniform(-20, 299, 200_000),
    ])
    y = np.empty(1)
    y_bits = y.view(np.int64)
    lower, upper = np.array([ranking._log1p_bounds(d, y, y_bits) for d in days]).T
    exact = np.log1p(days)
    assert (lower <= exact).all() and (exact <= upper).all()
    assert (upper - lower).max() < np.log1p(1 / 256) + 2.1e-9


def _fused_case(rng: np.random.Generator, K: int, scale: float, w7_sign: float, specials: bool = True):
    """Items, users and a model for the fused top k: specials among the items (as in
    test_learned_kernel_on_special_values; an item uploaded at -inf leaves no bound on the age
    term when its weight is positive), runs of identical items (equal scores), and items a
    second apart (log-odds a few ulps apart)."""
    n, B, c = 80, 12, 40
    topics = rng.normal(size=(n, K))
    topics[5, :1] = np.nan
    topics[40:50] = topics[40]  # identical items: ties in every row
    classifier = rng.random(n)
    classifier[40:50] = classifier[40]
    length = rng.uniform(60, 3600, n)
    length[40:50] = length[40]
    upload = rng.uniform(-5 * DAY, 2 * DAY, n)
    upload[:4] = [0.0, np.nan, np.inf, -np.inf] if specials else upload[:4]
    upload[40:50] = upload[40]
    upload[50:60] = upload[50] + np.arange(10)  # a second apart
    topics[50:60], classifier[50:60], length[50:60] = topics[50], classifier[50], length[50]
    candidates = np.stack([rng.choice(n, c, replace=False) for _ in range(B)])
    candidates[0, :6] = [0, 1, 2, 3, 5, -1]
    candidates[1] = np.r_[np.arange(40, 60), rng.choice(40, c - 20, replace=False)]
    profile = rng.normal(size=(B, K))
    mean_cls, activity = rng.random(B), rng.uniform(0, 8, B)
    now = rng.uniform(0, 3 * DAY, B)
    now[0] = -0.0
    w, b = rng.normal(size=10) * scale, float(rng.normal())
    w[7] = w7_sign * abs(w[7])
    part = _item_part(w, b, classifier, length)
    return topics, classifier, upload, part, candidates, profile, mean_cls, activity, now, w


@pytest.mark.parametrize("K", [0, 1, 20])
@pytest.mark.parametrize("scale", [0.05, 1.0, 40.0])
@pytest.mark.parametrize("w7_sign", [1.0, -1.0, 0.0])
def test_fused_top_k_is_the_top_k_of_the_predicted_scores(K, scale, w7_sign):
    """learned_top_k_rows gives, row for row, top_k_rows of the predicted watch minutes the
    NumPy code computes (gather_dot, _item_part, _log_odds, exp(min(·, 30))) for every k from
    1 to past the candidates: with ties (identical items), near ties (ages a second apart),
    NaN and infinite ages, NaN topics, log-odds far above 30 (scale 40), and the age weight of
    either sign or zero. The rows it leaves are those whose top k takes NaN scores. Without
    an item of infinite age, the bound leaves some scores uncomputed in every row with fewer
    places than candidates (the check that the shortcut is taken)."""
    rng = np.random.default_rng([K, int(100 * scale), int(w7_sign) + 1])
    for specials in (True, False, False):
        args = _fused_case(rng, K, scale, w7_sign, specials)
        topics, classifier, upload, part, candidates, profile, mean_cls, activity, now, w = args
        with np.errstate(all="ignore"):  # NaN topics, infinite ages times a zero weight
            lo = _log_odds(w, part.take(candidates), gather_dot(topics, candidates, profile),
                           classifier.take(candidates), now[:, None] - upload.take(candidates),
                           mean_cls[:, None], activity[:, None])
            predicted = np.exp(np.minimum(lo, 30.0))
        B, c = candidates.shape
        for k in (1, 2, 3, 10, c - 1, c, c + 5):
            expected = numpy(top_k_rows, candidates, predicted, k)
            nan_left = ranking.top_k_rows(candidates, predicted, np.empty_like(expected))
            out, left, scored = np.full_like(expected, -7), np.zeros(B, bool), np.zeros(B, np.int64)
            assert ranking.learned_top_k_rows(*args, np.nanmin(upload), out, left, scored)
            assert same_bits(left, nan_left)
            assert same_bits(out[~left], expected[~left]), k
            assert (scored <= c).all() and (scored >= min(k, c)).all()
            if not specials and k <= 3 and scale <= 1.0:
                assert (scored < c).all(), scored
            if w7_sign == 0.0 and not specials and k < c:
                # no age term: the first pass's bound is each log-odds itself, so only the
                # candidates at or just below the k-th log-odds (the 1e-9 margin) and the NaN
                # ones are scored (a top k kept as the candidates come scores ~k·(1 + ln(c/k)))
                clamped = np.minimum(lo, 30.0)
                kth = -np.sort(-np.where(np.isnan(clamped), -np.inf, clamped), axis=1)[:, k - 1:k]
                near = (clamped >= kth - 1e-9 * (1.0 + np.abs(kth))).sum(axis=1) + np.isnan(lo).sum(axis=1)
                near[kth[:, 0] <= -700.0] = c  # near exp's underflow nothing is skipped
                assert (scored[~left] <= near[~left]).all(), (scored, near)
        assert (candidates[1, :10] == np.arange(40, 50)).all()  # the tied run is in the rows


@pytest.mark.parametrize("w7", [0.01, 0.0, -0.01])
def test_candidates_without_an_age_bound_do_not_raise_the_first_bar(w7):
    """A candidate whose age term is NaN (its upload time NaN) has no lower bound on its
    log-odds, however high the rest of its log-odds: the two best before their age here are
    such candidates, and the slate is still the top k of the predicted scores (the others,
    not left to the NumPy code). (An infinite age leaves the whole row without a bound: the
    oldest upload is then -inf.)"""
    n, K = 7, 1
    topics = np.ones((n, K))
    classifier = np.zeros(n)
    upload = np.array([np.nan, np.nan, 0.0, 0.0, 0.0, 3600.0, 7200.0])
    w = np.zeros(10)
    w[7] = w7
    part = np.array([10.0, 9.5, 9.0, 1.0, 2.0, 3.0, 4.0])  # b + the item's own terms
    candidates = np.arange(n)[None, :]
    args = (topics, classifier, upload, part, candidates, np.zeros((1, K)), np.zeros(1), np.zeros(1),
            np.array([86400.0]), w)
    predicted = np.empty((1, n))
    assert ranking.learned_rows(*args, True, predicted, np.empty((1, 0)))
    for k in (1, 2, 3):
        expected = numpy(top_k_rows, candidates, predicted, k)
        out, left, scored = np.full_like(expected, -7), np.zeros(1, bool), np.zeros(1, np.int64)
        assert ranking.learned_top_k_rows(*args, np.nanmin(upload), out, left, scored)
        assert not left[0] and same_bits(out, expected), (k, out, expected)


def test_log_odds_an_ulp_apart_with_equal_scores_tie_to_the_earlier_column():
    """Two log-odds an ulp apart can have the same exp: the scores then tie, and the earlier
    column — here the one of the smaller log-odds — makes the slate of one. So a candidate
    whose log-odds' bound is merely below the first pass's bar is still scored (the bar is
    lowered by a relative 1e-9, far more than exp's rounding)."""
    x = 0.1 + np.arange(1, 200) / 1024  # below 1: the ulps of exp(x) are wider than x's
    x = x[np.exp(np.nextafter(x, 0.0)) == np.exp(x)][0]
    part = np.array([np.nextafter(x, 0.0), x, -1.0, -2.0])  # w = 0 but w₇: the log-odds are part
    n = part.shape[0]
    w = np.zeros(10)
    args = (np.ones((n, 1)), np.zeros(n), np.zeros(n), part, np.arange(n)[None, :], np.zeros((1, 1)),
            np.zeros(1), np.zeros(1), np.array([86400.0]), w)
    out, left, scored = np.empty((1, 1), np.int64), np.zeros(1, bool), np.zeros(1, np.int64)
    assert ranking.learned_top_k_rows(*args, 0.0, out, left, scored)
    assert out[0, 0] == 0 and not left[0]


def test_fused_top_k_refuses_items_out_of_range():
    rng = np.random.default_rng(2)
    args = list(_fused_case(rng, 3, 1.0, 1.0))
    args[4] = args[4].copy()
    args[4][3, 7] = args[0].shape[0]
    B = args[4].shape[0]
    out, left, scored = np.empty((B, 5), np.int64), np.zeros(B, bool), np.zeros(B, np.int64)
    assert not ranking.learned_top_k_rows(*args, np.nanmin(args[2]), out, left, scored)


# ----------------------------------------------------------------------------- whole runs
@pytest.mark.parametrize("engine,names", [("batched", LEARNED), ("reference", LEARNED[:2])])
def test_runs_of_the_learned_rankers_are_the_same_with_and_without_kernels(tmp_path, calls, engine, names):
    """A tiny scenario (the engine-equivalence one: retrains, surveys, uploads during the run)
    with the learned rankers, retrained twice a day: every output table is the same."""
    policies = [ENGINE_CASES[name] for name in names]
    scenario = scenario_from_dict({**BASE, "engine": engine, "workers": 1, "policies": policies})
    out = {}
    for backend in ("numba", "numpy"):
        before = dict(calls)
        with kernels.use(backend):
            out[backend] = run_experiment(scenario, tmp_path / backend, workers=1)
        ran = {name: calls[name] - before[name] for name in calls}
        if backend == "numba":  # the batched engine serves batches, the reference one requests
            assert all(ran[name] > 0 for name in (("top_k_rows", "learned_rows", "learned_top_k_rows")
                                                  if engine == "batched" else ("learned_row", "learned_top_k_rows")))
        else:
            assert not any(ran.values())
    assert_same_outputs(out["numba"], out["numpy"])
