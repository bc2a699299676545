"""The candidate draw's kernel (recsim.kernels.draws) gives what ``rng.candidate_rows``' NumPy
code gives, bit for bit: the same candidates, counts and draw counts, in the same dtypes.

Random batches cover pools with and without watched items (counted or given), pools that start
past item 0, short pools (every unwatched item, no draw), empty ones, rows with different
numbers of draws, rows with fewer than ``n`` distinct unwatched draws, ``B`` = 0 and 1, ``n`` =
0 and 1, both of the kernel's tables of repeats, and arguments outside what the engines pass
(watched bits past the pool, a wrong watched count), where the kernel must still agree. A tiny
run of the batched engine then writes the same outputs with the kernels on and off.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from test_engine_equivalence import BASE, CASES, _run

from recsim import kernels, rng
from recsim.config import scenario_from_dict
from recsim.engine.batched import simulate_batched
from recsim.kernels import draws

KEY = rng.stream_key(4, 0, "user:candidates")


def test_the_kernels_are_there():
    # numba is a dependency: without it these tests would compare the NumPy code with itself
    assert kernels.NUMBA_VERSION is not None
    with kernels.use("numba"):
        assert kernels.enabled()


def _numpy(args: tuple, kwargs: dict) -> tuple:
    with kernels.use("numpy"):
        return rng.candidate_rows(*args, **kwargs)


def _assert_same(got: tuple, expected: tuple, where: str = "") -> None:
    assert got is not None, where
    for name, a, b in zip(("candidates", "count", "m"), got, expected):
        assert a.dtype == b.dtype, (where, name, a.dtype, b.dtype)
        assert a.shape == b.shape, (where, name, a.shape, b.shape)
        assert np.array_equal(a, b), (where, name)


def _check(args: tuple, kwargs: dict, where: str = "") -> tuple:
    """Every way into the kernel equals the NumPy code; returns the NumPy code's rows."""
    expected = _numpy(args, kwargs)
    with kernels.use("numba"):
        _assert_same(rng.candidate_rows(*args, **kwargs), expected, where)
    for table in (0, 1, 2):  # by size, the stamps, the hash table
        _assert_same(draws.candidate_rows(*args, **kwargs, table=table), expected, f"{where} table={table}")
    return expected


def _random_case(g: np.random.Generator) -> tuple[tuple, dict, dict]:
    B = int(g.choice([0, 1, 2, 7, 40, 130]))
    n = int(g.choice([0, 1, 2, 5, 30, 64]))
    catalog = int(g.choice([1, max(n, 1), n + 3, 2 * n + 1, 300, 1000]))
    top = g.integers(0, catalog + 1, size=B)
    top[g.uniform(size=B) < 0.5] = catalog
    kwargs: dict = {}
    lo = np.zeros(B, dtype=np.int64)
    if g.uniform() < 0.5:  # a recent-items pool (sometimes empty: first = n_available)
        lo = np.where(g.uniform(size=B) < 0.3, 0, (g.uniform(size=B) * (top + 1)).astype(np.int64))
        lo = np.minimum(lo, top)
        kwargs["first"] = lo
    mode = str(g.choice(["none", "counted", "given", "outside", "wrong"]))
    facts = {"mode": mode, "n": n, "bits_below_first": False}
    if mode != "none":
        width = int(g.choice([catalog, max(catalog // 2, 1), catalog + 13]))  # bit rows short or long
        share = g.choice([0.0, 0.05, 0.3, 0.8, 0.97, 1.0], size=B)
        bits = g.uniform(size=(B, width)) < share[:, None]
        if mode != "outside":  # as the engines keep them: watched items are available ones
            bits &= np.arange(width)[None, :] < top[:, None]
        kwargs["seen"] = np.packbits(bits, axis=1, bitorder="little")
        facts["bits_below_first"] = bool((bits & (np.arange(width)[None, :] < lo[:, None])).any())
        if mode == "given":
            kwargs["n_seen"] = bits.sum(axis=1)
        elif mode == "wrong":  # a count that is not the bits' (the NumPy code trusts it)
            kwargs["n_seen"] = np.maximum(bits.sum(axis=1) + g.integers(-3, 4, size=B), 0)
            kwargs["n_seen"][g.uniform(size=B) < 0.3] = 0
    users = g.integers(0, 10_000, size=B)
    counters = g.integers(0, 2**40, size=B)
    return (rng.user_keys(KEY, users), counters, n, top), kwargs, facts


def test_random_batches_are_the_numpy_paths():
    g = np.random.default_rng(2024)
    seen_kinds: set[str] = set()
    for case in range(400):
        args, kwargs, facts = _random_case(g)
        _, count, m = _check(args, kwargs, f"case {case}: {facts}")
        n = facts["n"]
        for i in range(count.shape[0]):
            if m[i] == 0:
                seen_kinds.add("short" if count[i] else "empty")
            elif n and count[i] < n:
                seen_kinds.add("fewer than n")
            elif n:
                seen_kinds.add("full")
        if m.shape[0] and m.max() > 0 and (m[m > 0] != m.max()).any():
            seen_kinds.add("ragged")
        if count.shape[0] == 0:
            seen_kinds.add("B=0")
        if count.shape[0] == 1:
            seen_kinds.add("B=1")
        if n in (0, 1):
            seen_kinds.add(f"n={n}")
        if facts["bits_below_first"]:
            seen_kinds.add("watched below first")
        seen_kinds.add(facts["mode"])
    assert seen_kinds >= {"short", "empty", "fewer than n", "full", "ragged", "B=0", "B=1", "n=0", "n=1",
                          "watched below first", "none", "counted", "given", "outside", "wrong"}, seen_kinds


def test_a_realistic_batch():
    """What the batched engine asks at full size: 1024 rows, n = 200 of 5,000 items, a few
    percent watched (given), the whole catalog and a recent-items pool."""
    g = np.random.default_rng(7)
    B, n, catalog = 1024, 200, 5000
    bits = g.uniform(size=(B, catalog)) < g.uniform(0.0, 0.06, size=(B, 1))
    seen = np.packbits(bits, axis=1, bitorder="little")
    args = (rng.user_keys(KEY, np.arange(B)), g.integers(0, 10**6, size=B), n, np.full(B, catalog))
    _check(args, {"seen": seen, "n_seen": bits.sum(axis=1)})
    _check(args, {"first": g.integers(0, catalog - n, size=B), "seen": seen, "n_seen": bits.sum(axis=1)})
    _check(args, {})


def test_few_rows_of_a_huge_catalog_use_the_hash_table_and_agree():
    g = np.random.default_rng(3)
    B, n = 3, 50
    args = (rng.user_keys(KEY, np.arange(B)), g.integers(0, 10**6, size=B), n, np.array([10**7, 10**7 + 1, 60]))
    _check(args, {})
    _check(args, {"first": np.array([10**6, 0, 5])})


def test_crowded_pools_where_draws_repeat_and_run_out():
    """Pools just larger than ``n``, mostly watched: many repeats, and rows that get fewer than
    ``n`` distinct unwatched items from their draws."""
    g = np.random.default_rng(11)
    B, n = 300, 30
    top = g.integers(n + 1, 2 * n, size=B)
    width = 2 * n
    bits = (g.uniform(size=(B, width)) < 0.2) & (np.arange(width)[None, :] < top[:, None])
    seen = np.packbits(bits, axis=1, bitorder="little")
    args = (rng.user_keys(KEY, np.arange(B)), g.integers(0, 10**6, size=B), n, top)
    _, count, m = _check(args, {"seen": seen})
    assert ((m > 0) & (count < n)).sum() > 10


def test_argument_types_are_converted_as_the_numpy_code_converts_them():
    g = np.random.default_rng(5)
    B, n = 50, 20
    ukeys = rng.user_keys(KEY, np.arange(B))
    top = g.integers(0, 200, size=B)
    for counters in (g.integers(-(2**40), 2**40, size=B), g.integers(0, 2**31, size=B).astype(np.int32),
                     g.integers(0, 2**62, size=B).astype(np.uint64)):
        _check((ukeys, counters, np.int64(n), top.astype(np.int32)), {})
        _check((ukeys.view(np.int64), counters, n, top.tolist()), {"first": (top // 3).tolist()})
    bits = (g.uniform(size=(B, 200)) < 0.3) & (np.arange(200)[None, :] < top[:, None])
    seen = np.packbits(bits, axis=1, bitorder="little")
    _check((ukeys, np.zeros(B, dtype=np.int64), n, top), {"seen": seen, "n_seen": bits.sum(axis=1).astype(np.int32)})
    wide = np.zeros((B, 2 * seen.shape[1]), dtype=np.uint8)
    wide[:, ::2] = seen
    _check((ukeys, np.zeros(B, dtype=np.int64), n, top), {"seen": wide[:, ::2]})  # not contiguous


def test_arguments_outside_the_kernels_domain_run_the_numpy_code():
    B = 4
    ukeys = rng.user_keys(KEY, np.arange(B))
    counters, top = np.arange(B), np.full(B, 100)
    seen = np.zeros((B, 13), dtype=np.uint8)
    for args, kwargs in (
        ((ukeys, counters, 10, top), {"first": np.array([0, -5, 0, 0])}),
        ((ukeys, counters, 10, top), {"first": np.array([0, 101, 0, 0])}),
        ((ukeys, counters, 10, np.array([100, 2**53, 100, 100])), {}),
        ((ukeys, counters, 10, top), {"seen": seen.astype(np.int16)}),
        ((ukeys, counters, 10, top), {"seen": seen[:2]}),
        ((ukeys, counters, 10, top[:3]), {}),
        ((ukeys, counters, 10, 100), {}),
        ((ukeys, counters, -1, top), {}),
        ((ukeys, counters, 10.0, top), {}),
    ):
        assert draws.candidate_rows(*args, **kwargs) is None
    # where the NumPy code gives rows, the dispatch gives the same
    args, kwargs = (ukeys, counters, 10, top), {"first": np.array([0, -5, 0, 0])}
    with kernels.use("numba"):
        _assert_same(rng.candidate_rows(*args, **kwargs), _numpy(args, kwargs))


# ------------------------------------------------------------------ the batched engine, end to end
@pytest.mark.parametrize("recommender", [
    {},  # the whole catalog, watched items left out
    {"candidate_window": "6h", "n_candidates": 40},  # recent-items pools: short ones and first > 0
    {"exclude_watched": False},
])
def test_the_batched_engine_writes_the_same_outputs_with_and_without_the_kernel(recommender, tmp_path, monkeypatch):
    data = {**BASE, "recommender": {**BASE["recommender"], **recommender}, "policies": [CASES["engagement_oracle"]]}
    scenario = scenario_from_dict(data)
    calls = []
    kernel = draws.candidate_rows

    def counted(*args, **kwargs):
        got = kernel(*args, **kwargs)
        calls.append(got is not None)
        return got

    monkeypatch.setattr(draws, "candidate_rows", counted)
    with kernels.use("numba"):
        on, on_events = _run(simulate_batched, scenario, tmp_path, "kernel")
    assert calls and all(calls)
    calls.clear()
    with kernels.use("numpy"):
        off, off_events = _run(simulate_batched, scenario, tmp_path, "numpy")
    assert not calls
    assert len(on_events) > 0
    pd.testing.assert_frame_equal(on_events, off_events, check_exact=True)
    assert (on.n_decisions, on.n_events, on.retrain_times) == (off.n_decisions, off.n_events, off.retrain_times)
    assert len(on.metrics) == len(off.metrics)
    for a, b in zip(on.metrics, off.metrics):
        assert a[:4] == b[:4] and (a[4] == b[4] or (math.isnan(a[4]) and math.isnan(b[4]))), (a, b)
    assert on.headline.keys() == off.headline.keys()
    for key, value in off.headline.items():
        assert on.headline[key] == value or (math.isnan(value) and math.isnan(on.headline[key])), key
    for mine, theirs in ((on.user_totals, off.user_totals), (on.final_state, off.final_state)):
        assert mine.keys() == theirs.keys()
        for key, value in theirs.items():
            np.testing.assert_array_equal(mine[key], value, err_msg=key)
