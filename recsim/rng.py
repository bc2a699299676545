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

import math
import zlib
from statistics import NormalDist

import numpy as np

__all__ = [
    "USER_STREAMS",
    "stream_id",
    "generator",
    "stream_key",
    "splitmix64",
    "UserDraws",
    "uniforms",
]

MASK = 0xFFFFFFFFFFFFFFFF
GOLDEN = 0x9E3779B97F4A7C15
_M1 = 0xBF58476D1CE4E5B9
_M2 = 0x94D049BB133111EB
_TO_UNIT = 2.0**-52  # 52 bits: (2^52 - 1 + 0.5)·2^-52 < 1 exactly

#: Per-user counter-based streams used by the behaviour model.
USER_STREAMS = (
    "candidates",
    "choice",
    "watch",
    "continue",
    "no_click",
    "satisfaction",
    "returns",
    "churn",
    "survey",
)

_inv_cdf = NormalDist().inv_cdf
try:  # what NormalDist().inv_cdf(p) returns for 0 < p < 1, without its argument checks
    from statistics import _normal_dist_inv_cdf as _std_normal_inv_cdf
except ImportError:  # pragma: no cover - other Python implementations
    _std_normal_inv_cdf = None


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


def uniforms(ukey: int | np.ndarray, counters: np.ndarray) -> np.ndarray:
    """Uniforms in (0, 1) for counters ``counters`` of one user key (or one key per counter).

    Vectorized twin of :meth:`UserDraws.uniform`: ``uniforms(k, [c])[0] == uniform`` of draw c.
    """
    with np.errstate(over="ignore"):
        z = np.asarray(ukey, dtype=np.uint64) + (np.asarray(counters, dtype=np.uint64) + np.uint64(1)) * np.uint64(GOLDEN)
    bits = _splitmix64_array(z) >> np.uint64(12)
    return (bits.astype(np.float64) + 0.5) * _TO_UNIT


class UserDraws:
    """Counter-based draws for one user: ``draws.uniform("choice")`` advances that stream.

    Each stream keeps its own counter, so the number of draws taken from one stream (e.g. by
    a longer session under another policy) never shifts the draws of another.
    """

    __slots__ = ("keys", "counters", "ahead")

    def __init__(self, stream_keys: dict[str, int], user: int):
        self.keys = {name: user_key(key, user) for name, key in stream_keys.items()}
        self.counters = dict.fromkeys(stream_keys, 0)
        #: per stream, [first counter, float64 2b+1 values, size, their indices] kept by
        #: :meth:`indices` for the next calls
        self.ahead: dict[str, list] | None = None

    def uniform(self, stream: str) -> float:
        """The next uniform in (0, 1) of ``stream``."""
        # splitmix64 inlined: this is called several times per simulated decision
        counters = self.counters
        k = counters[stream] + 1
        counters[stream] = k
        z = (self.keys[stream] + k * GOLDEN) & MASK
        z = ((z ^ (z >> 30)) * _M1) & MASK
        z = ((z ^ (z >> 27)) * _M2) & MASK
        return (((z ^ (z >> 31)) >> 12) + 0.5) * _TO_UNIT

    def normal(self, stream: str) -> float:
        """The next standard normal of ``stream`` (inverse CDF of one uniform)."""
        if _std_normal_inv_cdf is None:
            return _inv_cdf(self.uniform(stream))
        counters = self.counters
        k = counters[stream] + 1
        counters[stream] = k
        z = (self.keys[stream] + k * GOLDEN) & MASK
        z = ((z ^ (z >> 30)) * _M1) & MASK
        z = ((z ^ (z >> 27)) * _M2) & MASK
        return _std_normal_inv_cdf((((z ^ (z >> 31)) >> 12) + 0.5) * _TO_UNIT, 0.0, 1.0)

    def exponential(self, stream: str) -> float:
        """The next Exp(1) draw of ``stream``."""
        return -math.log(self.uniform(stream))

    def block(self, stream: str, n: int) -> np.ndarray:
        """The next ``n`` uniforms of ``stream`` as an array (one counter each)."""
        k = self.counters[stream]
        self.counters[stream] = k + n
        return uniforms(self.keys[stream], np.arange(k, k + n, dtype=np.uint64))

    def indices(self, stream: str, n: int, size: int, ahead: int = 0) -> np.ndarray:
        """The next ``n`` uniforms ``u`` of ``stream`` mapped to integers ``floor(u·size)``:
        exactly ``(self.block(stream, n) * size).astype(np.int64)``, with fewer array
        operations (this is the candidate draw of every decision).

        ``ahead > 0`` also hashes that many of the stream's following counters now and keeps
        them for the next calls (one hashing pass serves several calls; draws are a function
        of the counter, so they are the same numbers); :meth:`release` frees them. The result
        is a read-only array.
        """
        k = self.counters[stream]
        self.counters[stream] = k + n
        kept = self.ahead.get(stream) if self.ahead else None
        if kept is None or k < kept[0] or k + n > kept[0] + kept[1].shape[0]:
            z = _hash_block((self.keys[stream] + k * GOLDEN) & MASK, n + ahead)
            # u·size = (b + ½)·2⁻⁵²·size with b = z >> 12, i.e. (2b + 1)·(size·2⁻⁵³): the same
            # real number, rounded once either way, so bit-identical to block() * size
            np.right_shift(z, _U11, out=z)
            np.bitwise_or(z, _U1, out=z)
            kept = [k, z.astype(np.float64), None, None]  # 2b + 1 < 2⁵³: exact
            if ahead:
                if self.ahead is None:
                    self.ahead = {}
                self.ahead[stream] = kept
        if kept[2] != size:  # map the whole kept block for this size at once
            x = kept[1] * (size * _TO_HALF_UNIT)
            kept[2], kept[3] = size, x.astype(np.int64)
            kept[3].flags.writeable = False  # callers get views of it
        start = k - kept[0]
        return kept[3][start : start + n]

    def release(self) -> None:
        """Forget the draws hashed ahead by :meth:`indices` (to free their memory)."""
        self.ahead = None


_U1 = np.uint64(1)
_U11 = np.uint64(11)
_U27 = np.uint64(27)
_U30 = np.uint64(30)
_U31 = np.uint64(31)
_UM1 = np.uint64(_M1)
_UM2 = np.uint64(_M2)
_TO_HALF_UNIT = 2.0**-53
_steps = np.arange(1, 1025, dtype=np.uint64) * np.uint64(GOLDEN)  # (j + 1)·γ mod 2⁶⁴


def _hash_block(base: int, n: int) -> np.ndarray:
    """``splitmix64(base + (j + 1)·γ)`` for ``j = 0..n-1`` (uint64, a fresh array): the hashes
    of ``n`` consecutive counters, ``base`` being ``key + k·γ`` of the first one."""
    global _steps
    if n > _steps.shape[0]:
        _steps = np.arange(1, 2 * n + 1, dtype=np.uint64) * np.uint64(GOLDEN)
    z = _steps[:n] + np.uint64(base)  # array arithmetic wraps modulo 2⁶⁴ silently
    t = z >> _U30
    z ^= t
    z *= _UM1
    np.right_shift(z, _U27, out=t)
    z ^= t
    z *= _UM2
    np.right_shift(z, _U31, out=t)
    z ^= t
    return z
