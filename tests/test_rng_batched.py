"""The batched engine's vectorized draws equal the per-user scalar draws, number for number."""

from __future__ import annotations

import math
from statistics import NormalDist

import numpy as np

from recsim import rng


def test_standard_normals_equal_the_scalar_inverse_cdf_everywhere():
    g = np.random.default_rng(5)
    p = np.concatenate([
        g.random(200_000),
        g.random(2_000) * 1e-12,  # far tails (r > 5 in AS241)
        1.0 - g.random(2_000) * 1e-12,
        [2.0**-53, 1.0 - 2.0**-53, 0.5, 0.075, 0.925, 0.5 - 0.425, 0.5 + 0.425],
    ])
    inv = NormalDist().inv_cdf
    expected = np.array([inv(x) for x in p.tolist()])
    np.testing.assert_array_equal(rng.standard_normals(p), expected)


def test_user_normals_match_userdraws_normal():
    keys = {"watch": rng.stream_key(3, 1, "user:watch")}
    users = np.arange(50)
    draws = [rng.UserDraws(keys, int(u)) for u in users]
    counters = np.zeros(50, dtype=np.int64)
    ukeys = rng.user_keys(keys["watch"], users)
    for _ in range(5):
        vector = rng.standard_normals(rng.uniforms(ukeys, counters))
        counters += 1
        assert vector.tolist() == [d.normal("watch") for d in draws]


def test_libm_exp_is_math_exp():
    x = np.random.default_rng(1).normal(size=10_000) * 20
    assert rng.libm_exp(x).tolist() == [math.exp(v) for v in x.tolist()]


def _scalar_candidates(key: int, user: int, counter: int, n: int, n_available: int) -> tuple[np.ndarray, int]:
    """The reference engine's candidate draw (recsim.engine.reference._Simulation._candidates)."""
    if n_available <= n:
        return np.arange(n_available), 0
    draws = rng.UserDraws({"candidates": key}, user)
    draws.counters["candidates"] = counter
    m = n + 8 + 2 * (n * n) // n_available
    idx = draws.indices("candidates", m, n_available)
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


def test_counter_uniform_is_the_kth_userdraws_uniform():
    keys = {"returns": rng.stream_key(2, 0, "user:returns")}
    draws = rng.UserDraws(keys, 17)
    ukey = rng.user_key(keys["returns"], 17)
    assert [draws.uniform("returns") for _ in range(20)] == [rng.counter_uniform(ukey, k) for k in range(1, 21)]
