"""Kernel of the candidate draw, :func:`recsim.rng.candidate_rows`, row after row.

The NumPy code hashes every draw of every row into a ``(B, m)`` block, sorts each row's
``(id, position)`` keys to find first occurrences and gathers them; this kernel takes one row at
a time and stops at its ``n``-th new unwatched id: the same splitmix64 hashes of the same
counters, mapped to ids by the same float64 product (``float64(z)·(float64(N)·2⁻⁵³)``, one
rounding, then truncated), the same first occurrences in draw order, the same short pools in
id order, the same pool sizes and draw counts — so the same candidates, counts and draw counts,
bit for bit, even for a watched count that is not the bits' (``tests/test_kernels_draws.py``).
Arguments outside its domain (see :func:`candidate_rows`) are left to the NumPy code.

Repeats are found with a table of stamps (one slot per id of the largest pool, stamped with
the row's number, allocated once per call: nothing to clear between rows), or, when the pools
are much larger than the call's draws, with a small open-addressing hash table of the row's ids.
"""
from __future__ import annotations

import numpy as np

from ..rng import _M1, _M2, _POPCOUNT, GOLDEN
from . import jit

__all__ = ["candidate_rows", "draw_rows"]

_GOLDEN = np.uint64(GOLDEN)
_UM1 = np.uint64(_M1)
_UM2 = np.uint64(_M2)
_ONE = np.uint64(1)
_S11 = np.uint64(11)
_S27 = np.uint64(27)
_S30 = np.uint64(30)
_S31 = np.uint64(31)
_TO_HALF_UNIT = 2.0**-53
_HASH = np.uint64(0x9E3779B97F4A7C15)  # Fibonacci hashing of an id into the hash table
#: a stamp table may have up to this many slots per draw of the call, and this many in all (else
#: the hash table: zeroing a larger table, and its cache misses, cost more than hashing)
STAMPS_PER_DRAW = 8
MAX_STAMPS = 1 << 21


@jit
def _watched(seen, row, item):
    """Bit ``item`` of ``seen[row]``, 0 or 1 (ids past the bit row read as unset)."""
    byte = item >> 3
    if byte < seen.shape[1]:
        return np.int64((seen[row, byte] >> (item & 7)) & 1)
    return np.int64(0)


@jit
def _next(z0):
    """splitmix64 of ``z0`` (as :func:`recsim.rng._splitmix64_inplace`), less its 11 low bits,
    with the lowest bit set: a 53-bit odd integer, exact as a float64."""
    z = z0 ^ (z0 >> _S30)
    z *= _UM1
    z ^= z >> _S27
    z *= _UM2
    z ^= z >> _S31
    return np.int64((z >> _S11) | _ONE)


@jit
def _draw_with_stamps(out, i, z0, m, n, first, scale, seen, check_watched, mark):
    """Row ``i``'s first ``n`` new unwatched ids of ``m`` draws; ``mark[id − first] == i + 1``
    for an id already drawn. Branch-free: every id is written at ``out[i, c]`` and ``c``
    advances past the new ones."""
    stamp = np.int32(i + 1)
    c = 0
    for _ in range(m):
        z0 += _GOLDEN  # the next counter
        item = np.int64(np.float64(_next(z0)) * scale) + first
        slot = item - first
        new = np.int64(mark[slot] != stamp)
        mark[slot] = stamp
        if check_watched:
            new &= 1 - _watched(seen, i, item)
        out[i, c] = item
        c += new
        if c == n:
            return c
    out[i, c] = -1  # the last id written, if it was no new one
    return c


@jit
def _draw_with_hashes(out, i, z0, m, n, first, scale, seen, check_watched, mark, keys, shift):
    """:func:`_draw_with_stamps` with an open-addressing hash table of the row's ids (linear
    probing; a slot is the row's when ``mark[slot] == i + 1``)."""
    stamp = np.int32(i + 1)
    mask = mark.shape[0] - 1
    c = 0
    for _ in range(m):
        z0 += _GOLDEN
        item = np.int64(np.float64(_next(z0)) * scale) + first
        if check_watched and _watched(seen, i, item):
            continue
        slot = np.int64((np.uint64(item) * _HASH) >> shift)
        while mark[slot] == stamp and keys[slot] != item:
            slot = (slot + 1) & mask
        if mark[slot] == stamp:  # drawn before
            continue
        mark[slot] = stamp
        keys[slot] = item
        out[i, c] = item
        c += 1
        if c == n:
            break
    return c


@jit
def draw_rows(ukeys, counters, n, top, lo, seen, n_seen, has_seen, count_seen, table):
    """The kernel. ``ukeys``, ``counters`` ``(B,)`` uint64; ``top`` (= ``n_available``) and
    ``lo`` (= ``first``, zeros for None) ``(B,)`` int64, each ≥ 0; ``n`` ≥ 0; ``seen``
    ``(B, bytes)`` uint8 (``(B, 0)`` when there is none: ``has_seen`` False); ``n_seen``
    ``(B,)`` int64, read when ``has_seen`` and not ``count_seen`` (else the bits are counted);
    ``table``: 0 picks the table of repeats by size, 1 forces stamps, 2 the hash table (for
    tests). Returns ``(candidates (B, n), count (B,), m (B,))``, all int64, and whether the
    arguments were in the kernel's domain (if not, the rows are not computed): each
    ``0 ≤ first ≤ n_available ≤ 2⁵²``."""
    B = ukeys.shape[0]
    n_bytes = seen.shape[1]
    out = np.full((B, n), -1, dtype=np.int64)
    count = np.zeros(B, dtype=np.int64)
    m = np.zeros(B, dtype=np.int64)
    w = np.zeros(B, dtype=np.int64)  # watched items in the pool
    # ---- pass 1: each row's pool, its unwatched part and its number of draws
    check_watched = False  # as the NumPy code: watched bits are read if any drawing row has some
    n_max = 0
    m_max = 0
    draws = 0
    for i in range(B):
        if lo[i] < 0 or lo[i] > top[i] or top[i] > 2**52:
            return out, count, m, False
        N = top[i] - lo[i]
        s = 0
        if has_seen:
            if count_seen:
                for b in range(n_bytes):
                    s += _POPCOUNT[seen[i, b]]
            else:
                s = n_seen[i]
            x = lo[i]
            if x != 0:  # less the watched items below the pool's first id
                below = min(x >> 3, n_bytes)
                for b in range(below):
                    s -= _POPCOUNT[seen[i, b]]
                if below < n_bytes:
                    s -= _POPCOUNT[seen[i, below] & ((1 << (x & 7)) - 1)]
        w[i] = s
        free = N - s
        if free > n:
            m0 = n + 8 + 2 * (n * n) // max(free, 1)
            m[i] = m0 + (m0 * s + free - 1) // max(free, 1)
            if s != 0:
                check_watched = True
            n_max = max(n_max, N)
            m_max = max(m_max, m[i])
            draws += m[i]
    stamps = table == 1 or (table == 0 and n_max + 1 <= min(max(4096, STAMPS_PER_DRAW * draws), MAX_STAMPS))
    size = 0
    shift = np.uint64(0)
    if n > 0 and draws > 0:
        if stamps:
            size = n_max + 1  # ids first ≤ id ≤ first + N (the top one never comes up)
        else:
            size, bits = 16, 4
            while size < 2 * m_max:
                size, bits = 2 * size, bits + 1
            shift = np.uint64(64 - bits)
    mark = np.zeros(size, dtype=np.int32)
    keys = np.zeros(0 if stamps else size, dtype=np.int64)
    # ---- pass 2: the candidates
    for i in range(B):
        first = lo[i]
        N = top[i] - first
        if N - w[i] <= n:  # a short pool: every unwatched item of it, in id order
            c = 0
            for item in range(first, top[i]):
                if has_seen and _watched(seen, i, item):
                    continue
                if c < n:
                    out[i, c] = item
                c += 1
            count[i] = c
        elif n > 0:  # the draws mapped to first + ⌊u·N⌋, u = (z >> 11 | 1)·2⁻⁵³
            scale = np.float64(N) * _TO_HALF_UNIT
            z0 = ukeys[i] + counters[i] * _GOLDEN
            if stamps:
                count[i] = _draw_with_stamps(out, i, z0, m[i], n, first, scale, seen, check_watched, mark)
            else:
                count[i] = _draw_with_hashes(out, i, z0, m[i], n, first, scale, seen, check_watched,
                                             mark, keys, shift)
    return out, count, m, True


def candidate_rows(ukeys, counters, n, n_available, first=None, seen=None, n_seen=None, table=0):
    """:func:`recsim.rng.candidate_rows` through :func:`draw_rows`, or None for arguments outside
    the kernel's domain (``seen`` not a ``(B, bytes)`` uint8 array, an argument not of shape
    ``(B,)``, ``first`` negative or past ``n_available``, ``n_available`` past 2⁵², ``n`` not a
    non-negative integer): the
    caller then runs the NumPy code, which defines what happens with them. ``table``: as
    :func:`draw_rows`' (tests force either table of repeats)."""
    B = ukeys.shape[0]
    if not isinstance(n, (int, np.integer)) or n < 0:
        return None
    top = np.asarray(n_available, dtype=np.int64)
    lo = np.zeros(B, dtype=np.int64) if first is None else np.asarray(first, dtype=np.int64)
    if top.shape != (B,) or lo.shape != (B,):
        return None
    top, lo = np.ascontiguousarray(top), np.ascontiguousarray(lo)
    if seen is None:
        has_seen = count_seen = False
        seen = np.zeros((B, 0), dtype=np.uint8)
        n_seen = lo
    else:
        if not isinstance(seen, np.ndarray) or seen.dtype != np.uint8 or seen.ndim != 2 or seen.shape[0] != B:
            return None
        seen = np.ascontiguousarray(seen)
        has_seen = True
        count_seen = n_seen is None
        n_seen = lo if count_seen else np.asarray(n_seen, dtype=np.int64)
        if n_seen.shape != (B,):
            return None
        n_seen = np.ascontiguousarray(n_seen)
    keys, ctr = np.asarray(ukeys), np.asarray(counters)
    if keys.shape != (B,) or ctr.shape != (B,):
        return None
    keys = np.ascontiguousarray(keys.astype(np.uint64, copy=False))
    ctr = np.ascontiguousarray(ctr.astype(np.uint64, copy=False))
    out, count, m, ok = draw_rows(keys, ctr, int(n), top, lo, seen, n_seen, has_seen, count_seen, table)
    return (out, count, m) if ok else None
