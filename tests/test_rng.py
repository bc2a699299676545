"""Randomness (docs/model.md §10, recsim.rng): named SeedSequence streams and counter-based per-user
draws.

The contract: the k-th draw of stream s for user u is a pure function of
(seed, replication, s, u, k); streams never shift each other; the vectorized ``uniforms``
reproduces the scalar ``UserDraws`` draw for draw; draws are uniform on (0, 1) and show no
structure across counters, streams or users; global generators are reproducible.

Statistical thresholds. Seeds are fixed, so tests are deterministic; the thresholds say how
often a correct generator would fail for an arbitrary seed: p > 0.001 (0.1%) for
goodness-of-fit tests and |r| < 4/√n (two-sided 6.3e-5) for correlations (the standard error
of a sample correlation between independent variables is 1/√n).
"""

from __future__ import annotations

import json
import math
import os
import statistics
import subprocess
import sys
import zlib

import numpy as np
from scipy import stats

from recsim import rng as R

#: the per-user streams of the default model: the engines' own and its components'
STREAMS = ("candidates", "choice", "watch", "continue", "no_click", "satisfaction", "returns", "churn", "survey")

P_MIN = 1e-3
Z4 = 4.0
SEED, REP = 1234, 0


def _keys(seed=SEED, replication=REP):
    """Per-user stream keys the way the world builds them (recsim.world.build_world)."""
    return {name: R.stream_key(seed, replication, f"user:{name}") for name in STREAMS}


# =============================================================================== splitmix64
def test_splitmix64_reference_values():
    """The finalizer applied to the splitmix64 counter sequence (seed 0) reproduces the
    published splitmix64 reference outputs (Vigna's splitmix64.c, seeded with 0)."""
    assert R.splitmix64(1 * R.GOLDEN) == 0xE220A8397B1DCDAF
    assert R.splitmix64(2 * R.GOLDEN) == 0x6E789E6AA1B965F4
    assert R.splitmix64(3 * R.GOLDEN) == 0x06C45D188009454F
    # 64-bit wrap-around: inputs are taken modulo 2^64
    assert R.splitmix64(3 * R.GOLDEN) == R.splitmix64((3 * R.GOLDEN) & R.MASK)
    assert 0 <= R.splitmix64(2**70 + 5) < 2**64


# =============================================================================== keys and ids
def test_stream_ids_and_keys_are_stable_across_processes():
    """Names map to ids by crc32, not Python's salted hash(): a fresh interpreter with a
    different PYTHONHASHSEED derives the same keys, uniforms and generator draws (so 1 or N
    workers give identical outputs)."""
    code = (
        "import json, numpy as np\n"
        "from recsim import rng as R\n"
        f"STREAMS = {STREAMS!r}\n"
        f"keys = {{n: R.stream_key({SEED}, 3, 'user:' + n) for n in STREAMS}}\n"
        "key = R.user_key(keys['choice'], 17)\n"
        "print(json.dumps({'ids': [R.stream_id(n) for n in STREAMS],\n"
        "  'keys': [keys[n] for n in STREAMS],\n"
        "  'u': [R.counter_uniform(key, k) for k in range(1, 6)],\n"
        f"  'g': R.generator({SEED}, 3, 'catalog').random(5).tolist()}}))\n"
    )
    env = dict(os.environ, PYTHONHASHSEED="4242")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env,
                         check=True)
    other = json.loads(out.stdout)
    keys = {n: R.stream_key(SEED, 3, "user:" + n) for n in STREAMS}
    d = ScalarDraws(keys, 17)
    assert other["ids"] == [R.stream_id(n) for n in STREAMS]
    assert other["ids"] == [zlib.crc32(n.encode()) for n in STREAMS]
    assert other["keys"] == [keys[n] for n in STREAMS]
    assert other["u"] == [d.uniform("choice") for _ in range(5)]
    assert other["g"] == R.generator(SEED, 3, "catalog").random(5).tolist()


def test_stream_keys_depend_on_seed_replication_and_name():
    base = R.stream_key(SEED, REP, "user:choice")
    assert base == R.stream_key(SEED, REP, "user:choice")
    assert 0 <= base < 2**64
    others = {
        R.stream_key(SEED + 1, REP, "user:choice"),
        R.stream_key(SEED, REP + 1, "user:choice"),
        R.stream_key(SEED, REP, "user:watch"),
    }
    assert base not in others and len(others) == 3
    assert len(set(_keys().values())) == len(STREAMS)


class ScalarDraws:
    """The definition of the per-user draws, one number at a time: the k-th draw (k = 1, 2,
    ...) of stream s for user u is ``counter_uniform(user_key(key_s, u), k)``. The engines draw
    through the vectorized :func:`recsim.rng.uniforms` (:class:`recsim.users.state.Draws`);
    these tests hold them to this definition."""

    def __init__(self, keys: dict[str, int], user: int):
        self.keys = {name: R.user_key(key, user) for name, key in keys.items()}
        self.counters = dict.fromkeys(keys, 0)

    def uniform(self, stream: str) -> float:
        self.counters[stream] += 1
        return R.counter_uniform(self.keys[stream], self.counters[stream])

    def normal(self, stream: str) -> float:
        return statistics.NormalDist().inv_cdf(self.uniform(stream))

    def exponential(self, stream: str) -> float:
        return -math.log(self.uniform(stream))

    def block(self, stream: str, n: int) -> np.ndarray:
        return np.array([self.uniform(stream) for _ in range(n)])


def test_engine_draws_follow_the_definition():
    """:class:`recsim.users.state.Draws` (what the engines and components draw from) gives
    each user of a batch their own next draws, uniforms and normals, whatever the batch."""
    from recsim.users.state import Draws

    keys = _keys()
    n = 50
    arrays = {s: R.user_keys(keys[s], np.arange(n)) for s in ("choice", "watch")}
    counters = {s: np.zeros(n, dtype=np.int64) for s in arrays}
    draws = Draws(arrays, counters, np.array([3, 17, 42]))
    alone = {u: ScalarDraws(keys, u) for u in (3, 17, 42)}
    for _ in range(4):
        got = draws.uniform("choice")
        assert got.tolist() == [alone[u].uniform("choice") for u in (3, 17, 42)]
    z = Draws(arrays, counters, np.array([17])).normal("watch")
    # the same quantile function up to the last bit (scipy's ndtri vs Python's NormalDist)
    assert math.isclose(z[0], alone[17].normal("watch"), rel_tol=1e-13)
    assert counters["choice"][[3, 17, 42]].tolist() == [4, 4, 4] and counters["watch"][17] == 1


# ======================================================================== counter-based draws
def test_draws_are_a_pure_function_of_seed_replication_stream_user_counter():
    a, b = ScalarDraws(_keys(), 5), ScalarDraws(_keys(), 5)
    seq_a = [a.uniform("choice") for _ in range(50)]
    seq_b = [b.uniform("choice") for _ in range(50)]
    assert seq_a == seq_b
    # random access: the k-th draw does not depend on how we got there
    key = a.keys["choice"]
    np.testing.assert_array_equal(R.uniforms(key, np.array([49, 0, 17], dtype=np.uint64)),
                                  [seq_a[49], seq_a[0], seq_a[17]])


def test_streams_do_not_shift_each_other():
    """Taking more draws from one stream (a longer session under another policy) leaves every
    other stream's sequence unchanged: common random numbers across policies."""
    plain = ScalarDraws(_keys(), 9)
    expected = {s: [plain.uniform(s) for _ in range(20)] for s in ("choice", "returns")}

    busy = ScalarDraws(_keys(), 9)
    got = {"choice": [], "returns": []}
    rng = np.random.default_rng(0)
    for i in range(20):
        for _ in range(int(rng.integers(0, 5))):
            busy.uniform("watch")
            busy.normal("satisfaction")
        busy.block("candidates", 7)
        got["choice"].append(busy.uniform("choice"))
        if i % 3 == 0:
            busy.exponential("continue")
        got["returns"].append(busy.uniform("returns"))
    assert got == expected
    assert busy.counters["choice"] == 20 and busy.counters["candidates"] == 140


def test_vectorized_uniforms_equal_the_scalar_sequence():
    d = ScalarDraws(_keys(), 42)
    scalar = np.array([d.uniform("watch") for _ in range(1000)])
    key = ScalarDraws(_keys(), 42).keys["watch"]
    np.testing.assert_array_equal(R.uniforms(key, np.arange(1000, dtype=np.uint64)), scalar)
    # block() is the same numbers, continuing the stream's counter
    e = ScalarDraws(_keys(), 42)
    first = e.block("watch", 400)
    rest = np.array([e.uniform("watch") for _ in range(600)])
    np.testing.assert_array_equal(np.r_[first, rest], scalar)


def test_vectorized_uniforms_across_users():
    """One key per counter: a batch of (user, k) pairs gives each user's own k-th draw."""
    keys = _keys()
    users = np.arange(300)
    counters = np.arange(300, dtype=np.uint64) % 7
    ukeys = np.array([ScalarDraws(keys, int(u)).keys["choice"] for u in users], dtype=np.uint64)
    batch = R.uniforms(ukeys, counters)
    for u in users:
        d = ScalarDraws(keys, int(u))
        expected = [d.uniform("choice") for _ in range(int(counters[u]) + 1)][-1]
        assert batch[u] == expected


def test_different_users_streams_replications_seeds_differ():
    n = 200

    def seq(seed=SEED, rep=REP, user=0, stream="choice"):
        d = ScalarDraws(_keys(seed, rep), user)
        return np.array([d.uniform(stream) for _ in range(n)])

    ref = seq()
    for other in (seq(user=1), seq(stream="watch"), seq(rep=1), seq(seed=SEED + 1)):
        assert not np.any(other == ref)  # not even one coincidence among 200 doubles
    first_draws = [ScalarDraws(_keys(), u).uniform("choice") for u in range(2000)]
    assert len(set(first_draws)) == 2000


# =============================================================================== distribution
def test_uniforms_lie_in_the_open_unit_interval_and_are_uniform():
    key = ScalarDraws(_keys(), 3).keys["choice"]
    u = R.uniforms(key, np.arange(100_000, dtype=np.uint64))
    assert np.all((u > 0) & (u < 1))
    # KS uniformity; p > 0.001 is a 0.1% false-failure rate for a correct generator
    assert stats.kstest(u, "uniform").pvalue > P_MIN
    # finer check of the mass in 100 equal cells: chi-square, expected 1000 per cell
    counts, _ = np.histogram(u, bins=100, range=(0, 1))
    assert stats.chisquare(counts).pvalue > P_MIN


def test_uniforms_across_users_are_uniform():
    """The vectorized engine draws one uniform per user at the same counter: those must be
    uniform too (KS, p > 0.001)."""
    keys = _keys()
    ukeys = np.array([R.user_key(keys["returns"], u) for u in range(20_000)], dtype=np.uint64)
    assert np.array_equal(ukeys[:3], [ScalarDraws(keys, u).keys["returns"] for u in range(3)])
    u = R.uniforms(ukeys, np.zeros(ukeys.size, dtype=np.uint64))
    assert np.all((u > 0) & (u < 1))
    assert stats.kstest(u, "uniform").pvalue > P_MIN


def test_no_correlation_across_counters_streams_and_users():
    """Sample correlations of independent uniforms have standard error 1/√n; tolerance 4/√n.
    Also a chi-square on consecutive pairs (u_k, u_{k+1}) over a 10×10 grid (expected 500 per
    cell), p > 0.001, which sees non-linear serial structure too."""
    n = 50_000
    keys = _keys()
    c = np.arange(n + 1, dtype=np.uint64)
    d0, d1 = ScalarDraws(keys, 0), ScalarDraws(keys, 1)
    choice0 = R.uniforms(d0.keys["choice"], c)
    watch0 = R.uniforms(d0.keys["watch"], c)
    choice1 = R.uniforms(d1.keys["choice"], c)
    tol = Z4 / math.sqrt(n)
    assert abs(np.corrcoef(choice0[:-1], choice0[1:])[0, 1]) < tol  # lag-1, same stream
    assert abs(np.corrcoef(choice0, watch0)[0, 1]) < tol  # two streams, same user
    assert abs(np.corrcoef(choice0, choice1)[0, 1]) < tol  # two users, same stream
    pairs, _, _ = np.histogram2d(choice0[:-1], choice0[1:], bins=10, range=[[0, 1], [0, 1]])
    assert stats.chisquare(pairs.ravel()).pvalue > P_MIN


def test_normal_and_exponential_draws():
    d = ScalarDraws(_keys(), 8)
    z = np.array([d.normal("watch") for _ in range(20_000)])
    assert stats.kstest(z, "norm").pvalue > P_MIN
    x = np.array([d.exponential("returns") for _ in range(20_000)])
    assert np.all(x > 0)
    assert stats.kstest(x, "expon").pvalue > P_MIN
    # both are transforms of the stream's own uniforms (one counter per draw)
    e = ScalarDraws(_keys(), 8)
    u = [e.uniform("watch") for _ in range(3)]
    np.testing.assert_allclose(z[:3], stats.norm.ppf(u), rtol=1e-12)


# =============================================================================== global streams
def test_generator_is_reproducible_and_independent_by_name_replication_seed():
    a = R.generator(SEED, REP, "catalog").random(100)
    np.testing.assert_array_equal(a, R.generator(SEED, REP, "catalog").random(100))
    for other in (
        R.generator(SEED, REP, "population"),
        R.generator(SEED, REP + 1, "catalog"),
        R.generator(SEED + 1, REP, "catalog"),
    ):
        assert not np.any(other.random(100) == a)
    # drawing from one global stream does not shift another
    g1, g2 = R.generator(SEED, REP, "catalog"), R.generator(SEED, REP, "uploads")
    g1.random(1000)
    np.testing.assert_array_equal(g2.random(10), R.generator(SEED, REP, "uploads").random(10))


# =============================================================================== known defects
def _inverse_splitmix64(z: int) -> int:
    """Inverse of the splitmix64 finalizer (each xorshift and odd multiply is invertible)."""

    def unxorshift(y, s):
        x = y
        for _ in range(64 // s + 1):
            x = y ^ (x >> s)
        return x & R.MASK

    z = unxorshift(z, 31)
    z = (z * pow(R._M2, -1, 2**64)) & R.MASK
    z = unxorshift(z, 27)
    z = (z * pow(R._M1, -1, 2**64)) & R.MASK
    return unxorshift(z, 30)


def test_uniform_is_never_exactly_one():
    """The largest hash maps below 1.0 (with 53 bits it rounded to exactly 1.0)."""
    z = _inverse_splitmix64(R.MASK)  # splitmix64(z) has all 64 bits set
    assert R.splitmix64(z) == R.MASK
    ukey = (z - R.GOLDEN) & R.MASK  # counter 0 hashes ukey + 1·GOLDEN = z
    assert R.uniforms(ukey, np.array([0], dtype=np.uint64))[0] < 1.0
    assert R.counter_uniform(ukey, 1) < 1.0


def test_user_keys_accept_numpy_integer_user_ids():
    keys = _keys()
    assert R.user_key(keys["choice"], np.int64(7)) == R.user_key(keys["choice"], 7)
    assert R.user_keys(keys["choice"], np.array([7]))[0] == R.user_key(keys["choice"], 7)
