"""Randomness: named SeedSequence streams and counter-based per-user draws.

Two kinds of randomness, both pure functions of the root seed (no global state):

* **Global streams** (catalog, population, uploads, a policy's own draws): a
  ``numpy.random.Generator`` from ``SeedSequence(seed, spawn_key=(replication, stream id))``.
* **Per-user behaviour noise** is *counter-based*: the k-th draw of stream ``s`` for user ``u``
  is ``splitmix64(key(seed, replication, s, u) + k·γ)`` mapped to a uniform in (0, 1). User u's
  k-th choice draw is therefore the same number under every policy (exact common random
  numbers), there are no per-user generator objects, and a vectorized engine can reproduce the
  per-process engine draw for draw.
"""

from __future__ import annotations

import zlib

import numpy as np
from scipy.special import ndtri

from . import kernels

__all__ = [
    "USER_STREAMS",
    "candidate_rows",
    "counter_uniform",
    "generator",
    "splitmix64",
    "splitmix64_array",
    "standard_normals",
    "stream_id",
    "stream_key",
    "uniforms",
    "user_key",
    "user_keys",
]

MASK = 0xFFFFFFFFFFFFFFFF
GOLDEN = 0x9E3779B97F4A7C15
_M1 = 0xBF58476D1CE4E5B9
_M2 = 0x94D049BB133111EB
_TO_UNIT = 2.0**-52  # 52 bits: (2^52 - 1 + 0.5)·2^-52 < 1 exactly

#: Per-user counter-based streams the engines draw from themselves (candidate pools, the choice
#: among a slate, churn at a return); the user model's components name theirs (``streams``).
USER_STREAMS = ("candidates", "choice", "churn")

def stream_id(name: str) -> int:
    """A stable 32-bit id for a stream name (crc32, identical across processes and runs)."""
    return zlib.crc32(name.encode("utf-8"))


def generator(seed: int, replication: int, name: str) -> np.random.Generator:
    """The global stream ``name`` of ``replication``: a fresh, independent Generator."""
    return np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(replication, stream_id(name))))


def stream_key(seed: int, replication: int, name: str) -> int:
    """A 64-bit key for a counter-based stream, derived through SeedSequence."""
    seq = np.random.SeedSequence(seed, spawn_key=(replication, stream_id(name)))
    return int(seq.generate_state(1, dtype=np.uint64)[0])


def splitmix64(z: int) -> int:
    """splitmix64 finalizer on a Python int (64-bit wrap-around)."""
    z &= MASK
    z = ((z ^ (z >> 30)) * _M1) & MASK
    z = ((z ^ (z >> 27)) * _M2) & MASK
    return z ^ (z >> 31)


def splitmix64_array(z: np.ndarray) -> np.ndarray:
    """:func:`splitmix64` of every element of ``z`` (a new uint64 array; ``z`` is not changed)."""
    z = z.astype(np.uint64, copy=True)
    with np.errstate(over="ignore"):
        z ^= z >> np.uint64(30)
        z *= np.uint64(_M1)
        z ^= z >> np.uint64(27)
        z *= np.uint64(_M2)
        z ^= z >> np.uint64(31)
    return z


def user_key(key: int, user: int) -> int:
    """Key of user ``user`` within the stream whose key is ``key``."""
    return splitmix64(int(key) + (int(user) + 1) * GOLDEN)


def counter_uniform(ukey: int, k: int) -> float:
    """Draw ``k`` (1-based) of a user's stream with key ``ukey``, one number at a time: the
    definition :func:`uniforms` vectorizes (it takes 0-based counters: ``uniforms(ukey, [k -
    1])[0] == counter_uniform(ukey, k)``)."""
    return ((splitmix64(ukey + k * GOLDEN) >> 12) + 0.5) * _TO_UNIT


def uniforms(ukey: int | np.ndarray, counters: np.ndarray) -> np.ndarray:
    """Uniforms in (0, 1) for counters ``counters`` of one user key (or one key per counter).

    The vectorized :func:`counter_uniform`: counter ``c`` (0-based) is draw ``c + 1``.
    """
    with np.errstate(over="ignore"):
        z = np.asarray(ukey, dtype=np.uint64) + (np.asarray(counters, dtype=np.uint64) + np.uint64(1)) * np.uint64(GOLDEN)
    bits = splitmix64_array(z) >> np.uint64(12)
    return (bits.astype(np.float64) + 0.5) * _TO_UNIT


_U1 = np.uint64(1)
_U11 = np.uint64(11)
_U27 = np.uint64(27)
_U30 = np.uint64(30)
_U31 = np.uint64(31)
_UM1 = np.uint64(_M1)
_UM2 = np.uint64(_M2)
_TO_HALF_UNIT = 2.0**-53
_steps = np.arange(1, 1025, dtype=np.uint64) * np.uint64(GOLDEN)  # (j + 1)·γ mod 2⁶⁴


def _splitmix64_inplace(z: np.ndarray) -> np.ndarray:
    """The splitmix64 finalizer on a fresh uint64 array, in place (one temporary)."""
    t = z >> _U30
    z ^= t
    z *= _UM1
    np.right_shift(z, _U27, out=t)
    z ^= t
    z *= _UM2
    np.right_shift(z, _U31, out=t)
    z ^= t
    return z


# ---------------------------------------------------------------- vectorized twins (batched engine)
def user_keys(key: int, users: np.ndarray) -> np.ndarray:
    """:func:`user_key` of many users at once (uint64)."""
    with np.errstate(over="ignore"):
        z = np.uint64(key) + (np.asarray(users, dtype=np.uint64) + np.uint64(1)) * np.uint64(GOLDEN)
    return splitmix64_array(z)


def standard_normals(p: np.ndarray) -> np.ndarray:
    """Standard normal quantiles of uniforms ``p`` (inverse CDF; ``scipy.special.ndtri``,
    element by element, so a user's draw is the same number in any batch)."""
    return ndtri(np.asarray(p, dtype=np.float64))


def candidate_rows(
    ukeys: np.ndarray, counters: np.ndarray, n: int, n_available: np.ndarray,
    first: np.ndarray | None = None, seen: np.ndarray | None = None, n_seen: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The candidate draw of many decisions at once, each row exactly the reference engine's.

    The pool is the items ``first ≤ id < n_available`` (``first`` = None: from 0, the whole
    catalog), less those set in ``seen`` (the user's watched items, ``recommender.exclude_watched``);
    ``N`` is the pool's size and ``N'`` that of its unwatched part. When ``N' ≤ n`` the
    candidates are every unwatched item of the pool, in id order, and no draw is taken.
    Otherwise ``m`` uniform draws of the ``candidates`` stream are mapped to ``first + ⌊u·N⌋``
    and the first ``n`` distinct unwatched ones, in draw order, are the candidates (fewer in the
    rare case that fewer come up), with ``m₀ = n + 8 + 2n²//N'`` and
    ``m = m₀ + ⌈m₀·(N − N')/N'⌉`` (so that about ``m₀`` draws land on unwatched items; without
    watched items in the pool ``m = n + 8 + 2n²//N``, the draw of a user who watched nothing).

    ``ukeys``/``counters``: the users' candidate-stream keys and counters ``(B,)``;
    ``n_available`` and ``first`` ``(B,)``; ``seen``: ``(B, ⌈catalog size/8⌉)`` uint8, bit
    ``id & 7`` of byte ``id >> 3`` set for a watched item (little-endian bit order, as
    ``np.packbits(..., bitorder="little")``), holding only items below ``n_available`` (a user
    watches only available items); ``n_seen`` ``(B,)``: the bits set in each row, if known
    (else counted). Returns ``(candidates (B, n) int64 padded with -1,
    number of candidates per row, draws consumed per row)`` (all int64).

    With the compiled kernels on (:func:`recsim.kernels.enabled`), the rows are computed by
    :func:`recsim.kernels.draws.candidate_rows`, bit for bit the same; the NumPy code below is
    the definition and runs when they are off.
    """
    if kernels.enabled():
        from .kernels import draws  # not at the top: it imports this module's constants

        got = draws.candidate_rows(ukeys, counters, n, n_available, first, seen, n_seen)
        if got is not None:  # None: arguments outside the kernel's domain
            return got
    B = ukeys.shape[0]
    top = np.asarray(n_available, dtype=np.int64)
    lo = np.zeros(B, dtype=np.int64) if first is None else np.asarray(first, dtype=np.int64)
    N = top - lo
    if seen is None:
        n_seen = np.zeros(B, dtype=np.int64)
    else:  # the watched items in the pool: all of them, less those below its first id
        n_seen = _POPCOUNT[seen].sum(axis=1) if n_seen is None else np.asarray(n_seen, dtype=np.int64)
        if first is not None and lo.any():
            n_seen = n_seen - _bits_below(seen, lo)
    free = N - n_seen  # N': the pool's unwatched items
    m0 = n + 8 + 2 * (n * n) // np.maximum(free, 1)
    m = np.where(free <= n, 0, m0 + (m0 * n_seen + free - 1) // np.maximum(free, 1))
    out = np.full((B, n), -1, dtype=np.int64)
    count = np.zeros(B, dtype=np.int64)
    small = free <= n
    if small.any():
        rows = np.flatnonzero(small)
        width = int(N[rows].max())
        ids = lo[rows, None] + np.arange(width)[None, :]
        keep = ids < top[rows, None]
        if seen is not None:
            keep &= ~_bit(seen[rows], np.minimum(ids, top[rows, None] - 1))
        # short rows: every unwatched item of the pool, in id order (a stable sort puts them first)
        order = np.argsort(~keep, axis=1, kind="stable")[:, :n]
        got = np.take_along_axis(ids, order, axis=1)
        out[rows, : got.shape[1]] = np.where(np.take_along_axis(keep, order, axis=1), got, -1)
        count[rows] = keep.sum(axis=1)
    big = np.flatnonzero(~small)
    m_max = int(m[big].max()) if big.shape[0] else 0
    if big.shape[0] and m_max:
        with np.errstate(over="ignore"):
            base = ukeys[big].astype(np.uint64) + counters[big].astype(np.uint64) * np.uint64(GOLDEN)
        # splitmix64 of every draw's counter (as _hash_block does)
        z = _splitmix64_inplace(base[:, None] + _steps_upto(m_max)[None, :])
        np.right_shift(z, _U11, out=z)
        np.bitwise_or(z, _U1, out=z)
        idx = (z.astype(np.float64) * (N[big, None].astype(np.float64) * _TO_HALF_UNIT)).astype(np.int64)
        del z
        idx += lo[big, None]
        m_big = m[big]
        ragged = bool((m_big != m_max).any())
        unused = np.arange(m_max)[None, :] >= m_big[:, None] if ragged else None
        watched = _bit(seen[big], idx) if seen is not None and n_seen[big].any() else None
        if ragged:
            idx[unused] = np.int64(1) << 40  # unused draws
        # first occurrences in draw order: sort each row's (value, position) keys (unique, so
        # any sort is stable) and flag the keys whose value repeats the previous one's
        keys = idx * m_max
        keys += np.arange(m_max, dtype=np.int64)
        keys.sort(axis=1)
        value = keys // m_max
        repeat = value[:, 1:] == value[:, :-1]
        firsts = np.ones(idx.shape, dtype=bool)
        rows_r, cols_r = np.nonzero(repeat)
        firsts[rows_r, keys[rows_r, cols_r + 1] - value[rows_r, cols_r + 1] * m_max] = False
        if ragged:
            firsts &= ~unused
        if watched is not None:
            firsts &= ~watched
        n_first = firsts.sum(axis=1)
        flat = np.flatnonzero(firsts)  # row-major: each row's first occurrences in draw order
        starts = np.cumsum(n_first) - n_first
        full = n_first >= n
        if full.all():
            out[big] = idx.ravel()[flat[starts[:, None] + np.arange(n)[None, :]]]
            count[big] = n
        else:
            for j in range(big.shape[0]):  # rare: fewer than n distinct draws
                sel = flat[starts[j]: starts[j] + min(int(n_first[j]), n)]
                out[big[j], : sel.shape[0]] = idx.ravel()[sel]
                count[big[j]] = sel.shape[0]
    return out, count, m


#: bits set in each byte value (np.bitwise_count needs NumPy 2)
_POPCOUNT = np.array([v.bit_count() for v in range(256)], dtype=np.int64)


def _bit(seen: np.ndarray, ids: np.ndarray) -> np.ndarray:
    """``seen[i]``'s bit of each id in row ``i`` of ``ids`` ``(B, w)`` (ids past the bit rows
    read as unset)."""
    byte = ids >> 3
    inside = byte < seen.shape[1]
    got = np.take_along_axis(seen, np.where(inside, byte, 0), axis=1)
    return inside & (((got >> (ids & 7).astype(np.uint8)) & 1) == 1)


def _bits_below(seen: np.ndarray, x: np.ndarray) -> np.ndarray:
    """The number of bits set in row ``i`` of ``seen`` below bit ``x[i]`` ``(B,)``."""
    if seen.shape[1] == 0:
        return np.zeros(seen.shape[0], dtype=np.int64)
    per_byte = _POPCOUNT[seen]
    below = np.zeros((seen.shape[0], seen.shape[1] + 1), dtype=np.int64)
    np.cumsum(per_byte, axis=1, out=below[:, 1:])
    x = np.asarray(x, dtype=np.int64)
    byte = np.minimum(x >> 3, seen.shape[1])
    rows = np.arange(seen.shape[0])
    partial = seen[rows, np.minimum(byte, seen.shape[1] - 1)] & ((1 << (x & 7)) - 1).astype(np.uint8)
    return below[rows, byte] + np.where(byte < seen.shape[1], _POPCOUNT[partial], 0)


def _steps_upto(n: int) -> np.ndarray:
    global _steps
    if n > _steps.shape[0]:
        _steps = np.arange(1, 2 * n + 1, dtype=np.uint64) * np.uint64(GOLDEN)
    return _steps[:n]
