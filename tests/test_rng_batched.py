"""The vectorized draws the engines take equal the definition of the per-user draws, number
for number (the definition: :func:`recsim.rng.counter_uniform`, one number at a time)."""

from __future__ import annotations

import numpy as np
from scipy import stats

from recsim import rng


def test_standard_normals_are_the_inverse_normal_cdf_everywhere():
    """Central values, both tails and the extremes a 52-bit uniform can take: within 1e-13
    (relative) of SciPy's reference quantile function, which is the definition."""
    g = np.random.default_rng(5)
    p = np.concatenate([
        g.random(200_000),
        g.random(2_000) * 1e-12,
        1.0 - g.random(2_000) * 1e-12,
        [2.0**-53, 1.0 - 2.0**-53, 0.5, 0.075, 0.925, 0.5 - 0.425, 0.5 + 0.425],
    ])
    np.testing.assert_allclose(rng.standard_normals(p), stats.norm.ppf(p), rtol=1e-13, atol=1e-300)
    # elementwise: a value's quantile does not depend on the batch it is in
    assert rng.standard_normals(p[7:8])[0] == rng.standard_normals(p)[7]


def _scalar_candidates(key: int, user: int, counter: int, n: int, n_available: int) -> tuple[np.ndarray, int]:
    """The candidate draw, one decision at a time: ``m = n + 8 + 2n²//N`` uniforms of the
    user's ``candidates`` stream after ``counter`` draws, mapped to ``floor(u·N)``, and the
    first ``n`` distinct ones in draw order (every available item when N ≤ n)."""
    if n_available <= n:
        return np.arange(n_available), 0
    ukey = rng.user_key(key, user)
    m = n + 8 + 2 * (n * n) // n_available
    idx = np.array([int(rng.counter_uniform(ukey, counter + j + 1) * n_available) for j in range(m)])
    _, first = np.unique(idx, return_index=True)
    return idx[np.sort(first)][:n], m


def test_candidate_rows_equal_the_per_user_draw():
    g = np.random.default_rng(7)
    key = rng.stream_key(1, 0, "user:candidates")
    n, B = 30, 1500
    users = g.integers(0, 5000, size=B)
    n_available = g.integers(1, 300, size=B)  # many below and just above n: short rows occur
    counters = g.integers(0, 10_000, size=B)
    out, count, m = rng.candidate_rows(rng.user_keys(key, users), counters, n, n_available)
    short = 0
    for i in range(B):
        expected, m_i = _scalar_candidates(key, int(users[i]), int(counters[i]), n, int(n_available[i]))
        assert m[i] == m_i
        assert count[i] == expected.shape[0]
        np.testing.assert_array_equal(out[i, : count[i]], expected)
        assert (out[i, count[i]:] == -1).all()
        short += expected.shape[0] < min(n, n_available[i])
    assert short > 0, "the case of fewer distinct draws than n is exercised"


def test_uniforms_are_counter_uniform():
    key = rng.user_key(rng.stream_key(2, 0, "user:returns"), 17)
    vector = rng.uniforms(key, np.arange(20, dtype=np.uint64))
    assert vector.tolist() == [rng.counter_uniform(key, k) for k in range(1, 21)]


def test_candidate_rows_from_a_pool_of_recent_items_are_the_whole_catalog_draw_shifted():
    """A pool ``first ≤ id < N`` draws exactly what a catalog of ``N − first`` items would,
    offset by ``first``: the same counters, the same number of draws, every id in the pool."""
    g = np.random.default_rng(8)
    key = rng.stream_key(1, 0, "user:candidates")
    n, B = 30, 800
    ukeys = rng.user_keys(key, g.integers(0, 5000, size=B))
    counters = g.integers(0, 10_000, size=B)
    n_available = g.integers(40, 600, size=B)
    first = (g.uniform(size=B) * (n_available - 1)).astype(np.int64)  # pools of 1 item and up
    out, count, m = rng.candidate_rows(ukeys, counters, n, n_available, first)
    plain, plain_count, plain_m = rng.candidate_rows(ukeys, counters, n, n_available - first)
    np.testing.assert_array_equal(count, plain_count)
    np.testing.assert_array_equal(m, plain_m)
    np.testing.assert_array_equal(out, np.where(plain >= 0, plain + first[:, None], -1))
    valid = out >= 0
    rows = np.nonzero(valid)[0]
    assert (out[valid] >= first[rows]).all() and (out[valid] < n_available[rows]).all()
    assert (count < n).any() and (count == n).any()  # small pools (every item) and large ones
    # first = 0 everywhere is the whole catalog, bit for bit
    same = rng.candidate_rows(ukeys, counters, n, n_available, np.zeros(B, dtype=np.int64))
    whole = rng.candidate_rows(ukeys, counters, n, n_available)
    for a, b in zip(same, whole):
        np.testing.assert_array_equal(a, b)


def _scalar_unwatched_candidates(key, user, counter, n, lo, top, watched) -> tuple[np.ndarray, int]:
    """The definition with watched items left out (``recommender.exclude_watched``): the pool
    is ``lo ≤ id < top`` less ``watched``; ``N'`` its unwatched items; every one of them (in id
    order) when ``N' ≤ n``, else ``m = m₀ + ⌈m₀·w/N'⌉`` draws (``m₀ = n + 8 + 2n²//N'``, ``w``
    the watched items in the pool) mapped to ``lo + ⌊u·N⌋`` and the first ``n`` distinct
    unwatched ones in draw order."""
    pool = np.arange(lo, top)
    free = pool[~np.isin(pool, watched)]
    if free.shape[0] <= n:
        return free, 0
    w = pool.shape[0] - free.shape[0]
    m0 = n + 8 + 2 * n * n // free.shape[0]
    m = m0 + -(-m0 * w // free.shape[0])
    ukey = rng.user_key(key, user)
    idx = np.array([lo + int(rng.counter_uniform(ukey, counter + j + 1) * (top - lo)) for j in range(m)])
    idx = idx[~np.isin(idx, watched)]
    _, firsts = np.unique(idx, return_index=True)
    return idx[np.sort(firsts)][:n], m


def test_candidate_rows_leave_watched_items_out_as_defined():
    """With a user's watched items (a bit row each), every row is the definition's, number for
    number: pools wholly watched, mostly watched (short rows), partly watched, and watched
    items outside a recent-items pool (which must not shrink it)."""
    g = np.random.default_rng(9)
    key = rng.stream_key(3, 0, "user:candidates")
    n, B, catalog = 30, 600, 700
    users = g.integers(0, 5000, size=B)
    counters = g.integers(0, 10_000, size=B)
    top = g.integers(1, catalog + 1, size=B)
    lo = np.where(g.uniform(size=B) < 0.5, 0, (g.uniform(size=B) * (top - 1)).astype(np.int64))
    share = g.choice([0.0, 0.2, 0.9, 1.0], size=B)  # the share of available items watched
    bits = np.zeros((B, catalog), dtype=bool)
    for i in range(B):
        bits[i, : top[i]] = g.uniform(size=top[i]) < share[i]
    seen = np.packbits(bits, axis=1, bitorder="little")
    out, count, m = rng.candidate_rows(rng.user_keys(key, users), counters, n, top, lo, seen)
    given = rng.candidate_rows(rng.user_keys(key, users), counters, n, top, lo, seen, bits.sum(axis=1))
    for a, b in zip(given, (out, count, m)):  # the engine passes the counts it keeps
        np.testing.assert_array_equal(a, b)
    kinds = set()
    for i in range(B):
        watched = np.flatnonzero(bits[i])
        expected, m_i = _scalar_unwatched_candidates(key, int(users[i]), int(counters[i]), n, int(lo[i]),
                                                     int(top[i]), watched)
        assert m[i] == m_i, i
        assert count[i] == expected.shape[0], i
        np.testing.assert_array_equal(out[i, : count[i]], expected)
        assert (out[i, count[i]:] == -1).all()
        assert not np.isin(out[i, : count[i]], watched).any()
        kinds.add("empty" if count[i] == 0 else "short" if count[i] < n else "full")
    assert kinds == {"empty", "short", "full"}
    # no bit set: the draw of a user who watched nothing, bit for bit
    plain = rng.candidate_rows(rng.user_keys(key, users), counters, n, top, lo)
    none = rng.candidate_rows(rng.user_keys(key, users), counters, n, top, lo, np.zeros_like(seen))
    for a, b in zip(plain, none):
        np.testing.assert_array_equal(a, b)
