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

    __slots__ = ("keys", "counters")

    def __init__(self, stream_keys: dict[str, int], user: int):
        self.keys = {name: user_key(key, user) for name, key in stream_keys.items()}
        self.counters = dict.fromkeys(stream_keys, 0)

    def uniform(self, stream: str) -> float:
        """The next uniform in (0, 1) of ``stream``."""
        k = self.counters[stream]
        self.counters[stream] = k + 1
        z = splitmix64(self.keys[stream] + (k + 1) * GOLDEN)
        return ((z >> 12) + 0.5) * _TO_UNIT

    def normal(self, stream: str) -> float:
        """The next standard normal of ``stream`` (inverse CDF of one uniform)."""
        return _inv_cdf(self.uniform(stream))

    def exponential(self, stream: str) -> float:
        """The next Exp(1) draw of ``stream``."""
        return -math.log(self.uniform(stream))

    def block(self, stream: str, n: int) -> np.ndarray:
        """The next ``n`` uniforms of ``stream`` as an array (one counter each)."""
        k = self.counters[stream]
        self.counters[stream] = k + n
        return uniforms(self.keys[stream], np.arange(k, k + n, dtype=np.uint64))
