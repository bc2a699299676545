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

__all__ = [
    "USER_STREAMS",
    "stream_id",
    "generator",
    "stream_key",
    "splitmix64",
    "user_key",
    "user_keys",
    "counter_uniform",
    "uniforms",
    "standard_normals",
    "candidate_rows",
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


def _splitmix64_array(z: np.ndarray) -> np.ndarray:
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
    bits = _splitmix64_array(z) >> np.uint64(12)
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
    return _splitmix64_array(z)


def standard_normals(p: np.ndarray) -> np.ndarray:
    """Standard normal quantiles of uniforms ``p`` (inverse CDF; ``scipy.special.ndtri``,
    element by element, so a user's draw is the same number in any batch)."""
    return ndtri(np.asarray(p, dtype=np.float64))


def candidate_rows(
    ukeys: np.ndarray, counters: np.ndarray, n: int, n_available: np.ndarray,
    first: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The candidate draw of many decisions at once, each row exactly the reference engine's
    (``n`` distinct items among ``m = n + 8 + 2n²//N`` uniform draws of the ``candidates``
    stream, in order of first occurrence; every item of the pool when N ≤ n), from the pool
    of items ``first ≤ id < n_available`` (N = its size; ``first`` = 0: the whole catalog).

    ``ukeys``/``counters``: the users' candidate-stream keys and counters ``(B,)``;
    ``n_available`` and ``first`` ``(B,)``. Returns ``(candidates (B, n) int64 padded with -1,
    number of candidates per row, draws consumed per row)``.
    """
    B = ukeys.shape[0]
    if first is not None and np.any(first):  # a pool of recent items: draw in it, then shift
        first = np.asarray(first, dtype=np.int64)
        out, count, m = candidate_rows(ukeys, counters, n, np.asarray(n_available, dtype=np.int64) - first)
        np.add(out, first[:, None], out=out, where=out >= 0)
        return out, count, m
    N = np.asarray(n_available, dtype=np.int64)
    m = np.where(N <= n, 0, n + 8 + 2 * (n * n) // np.maximum(N, 1))
    m_max = int(m.max()) if B else 0
    out = np.full((B, n), -1, dtype=np.int64)
    count = np.zeros(B, dtype=np.int64)
    small = N <= n
    if small.any():
        rows = np.flatnonzero(small)
        cols = np.arange(n)
        out[rows] = np.where(cols < N[rows, None], cols, -1)
        count[rows] = N[rows]
    big = np.flatnonzero(~small)
    if big.shape[0] and m_max:
        with np.errstate(over="ignore"):
            base = ukeys[big].astype(np.uint64) + counters[big].astype(np.uint64) * np.uint64(GOLDEN)
        # splitmix64 of every draw's counter (as _hash_block does)
        z = _splitmix64_inplace(base[:, None] + _steps_upto(m_max)[None, :])
        np.right_shift(z, _U11, out=z)
        np.bitwise_or(z, _U1, out=z)
        idx = (z.astype(np.float64) * (N[big, None].astype(np.float64) * _TO_HALF_UNIT)).astype(np.int64)
        del z
        m_big = m[big]
        ragged = bool((m_big != m_max).any())
        if ragged:
            idx[np.arange(m_max)[None, :] >= m_big[:, None]] = np.int64(1) << 40  # unused draws
        # first occurrences in draw order: sort each row's (value, position) keys (unique, so
        # any sort is stable) and flag the keys whose value repeats the previous one's
        keys = idx * m_max
        keys += np.arange(m_max, dtype=np.int64)
        keys.sort(axis=1)
        value = keys // m_max
        repeat = value[:, 1:] == value[:, :-1]
        first = np.ones(idx.shape, dtype=bool)
        rows_r, cols_r = np.nonzero(repeat)
        first[rows_r, keys[rows_r, cols_r + 1] - value[rows_r, cols_r + 1] * m_max] = False
        if ragged:
            first &= np.arange(m_max)[None, :] < m_big[:, None]
        n_first = first.sum(axis=1)
        flat = np.flatnonzero(first)  # row-major: each row's first occurrences in draw order
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


def _steps_upto(n: int) -> np.ndarray:
    global _steps
    if n > _steps.shape[0]:
        _steps = np.arange(1, 2 * n + 1, dtype=np.uint64) * np.uint64(GOLDEN)
    return _steps[:n]
