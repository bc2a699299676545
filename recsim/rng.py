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


def counter_uniform(ukey: int, k: int) -> float:
    """Draw ``k`` (1-based) of a user's stream with key ``ukey``: what
    :meth:`UserDraws.uniform` returns when it takes its ``k``-th draw."""
    return ((splitmix64(ukey + k * GOLDEN) >> 12) + 0.5) * _TO_UNIT


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
    return _splitmix64_inplace(_steps_upto(n) + np.uint64(base))  # wraps modulo 2⁶⁴ silently


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


def libm_exp(x: np.ndarray) -> np.ndarray:
    """``math.exp`` of every element (the C library's exp, which the per-event scalar code
    uses; NumPy's SIMD exp rounds differently in the last bit for a few percent of inputs)."""
    return np.fromiter(map(math.exp, x.tolist()), np.float64, x.shape[0])


# AS241 (Wichura 1988) coefficients, highest power first, as in CPython's statistics module
_AS241_CENTRAL = (
    (2.5090809287301226727e+3, 3.3430575583588128105e+4, 6.7265770927008700853e+4,
     4.5921953931549871457e+4, 1.3731693765509461125e+4, 1.9715909503065514427e+3,
     1.3314166789178437745e+2, 3.3871328727963666080e+0),
    (5.2264952788528545610e+3, 2.8729085735721942674e+4, 3.9307895800092710610e+4,
     2.1213794301586595867e+4, 5.3941960214247511077e+3, 6.8718700749205790830e+2,
     4.2313330701600911252e+1, 1.0),
)
_AS241_NEAR = (
    (7.74545014278341407640e-4, 2.27238449892691845833e-2, 2.41780725177450611770e-1,
     1.27045825245236838258e+0, 3.64784832476320460504e+0, 5.76949722146069140550e+0,
     4.63033784615654529590e+0, 1.42343711074968357734e+0),
    (1.05075007164441684324e-9, 5.47593808499534494600e-4, 1.51986665636164571966e-2,
     1.48103976427480074590e-1, 6.89767334985100004550e-1, 1.67638483018380384940e+0,
     2.05319162663775882187e+0, 1.0),
)
_AS241_FAR = (
    (2.01033439929228813265e-7, 2.71155556874348757815e-5, 1.24266094738807843860e-3,
     2.65321895265761230930e-2, 2.96560571828504891230e-1, 1.78482653991729133580e+0,
     5.46378491116411436990e+0, 6.65790464350110377720e+0),
    (2.04426310338993978564e-15, 1.42151175831644588870e-7, 1.84631831751005468180e-5,
     7.86869131145613259100e-4, 1.48753612908506148525e-2, 1.36929880922735805310e-1,
     5.99832206555887937690e-1, 1.0),
)


def _horner(coefficients: tuple[float, ...], r: np.ndarray) -> np.ndarray:
    out = coefficients[0] * r
    for c in coefficients[1:-1]:
        out += c
        out *= r
    out += coefficients[-1]
    return out


def standard_normals(p: np.ndarray) -> np.ndarray:
    """The standard normal quantiles of uniforms ``p``: element for element the numbers
    :meth:`UserDraws.normal` gives (CPython's ``NormalDist().inv_cdf``, algorithm AS241, with
    the same operations in the same order; the tails' logarithm is the C library's)."""
    p = np.asarray(p, dtype=np.float64)
    q = p - 0.5
    out = np.empty_like(p)
    central = np.abs(q) <= 0.425
    if central.any():
        qc = q[central]
        r = 0.180625 - qc * qc
        num = _horner(_AS241_CENTRAL[0], r)
        num *= qc
        out[central] = num / _horner(_AS241_CENTRAL[1], r)
    tail = ~central
    if tail.any():
        qt = q[tail]
        pt = p[tail]
        r = np.where(qt <= 0.0, pt, 1.0 - pt)
        r = np.sqrt(-np.fromiter(map(math.log, r.tolist()), np.float64, r.shape[0]))
        near = r <= 5.0
        x = np.empty_like(r)
        rn = r[near] - 1.6
        x[near] = _horner(_AS241_NEAR[0], rn) / _horner(_AS241_NEAR[1], rn)
        rf = r[~near] - 5.0
        x[~near] = _horner(_AS241_FAR[0], rf) / _horner(_AS241_FAR[1], rf)
        x = np.where(qt < 0.0, -x, x)
        out[tail] = x
    return out + 0.0  # mu + x·sigma with mu = 0, sigma = 1 (turns -0.0 into 0.0 as it does)


def candidate_rows(
    ukeys: np.ndarray, counters: np.ndarray, n: int, n_available: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The candidate draw of many decisions at once, each row exactly the reference engine's
    (``n`` distinct items among ``m = n + 8 + 2n²//N`` uniform draws of the ``candidates``
    stream, in order of first occurrence; ``arange(N)`` when N ≤ n).

    ``ukeys``/``counters``: the users' candidate-stream keys and counters ``(B,)``;
    ``n_available`` ``(B,)``. Returns ``(candidates (B, n) int64 padded with -1, number of
    candidates per row, draws consumed per row)``.
    """
    B = ukeys.shape[0]
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
