"""Returns to the platform (recsim.users.formulas: daily_cycle, return_intensity,
return_intensity_bound, thinning; recsim.users.default.HawkesReturns) and churn
(formulas.churn_probability, default.ValueChurn).

Between two sessions the user's state is fixed, so the returns form a non-homogeneous Poisson
process with intensity λ(t); ``HawkesReturns.next_return`` gives the *one* next point after
``now`` for every user of a batch, and calling it again from each accepted point (state
unchanged) generates the whole process. The tests drive it as the engine does — a batch of
users, each with its own counter-based "returns" stream — and check that process against its
law:

* thinning against a hand computation with known uniforms, and a row's result independent of
  the other rows (bits alone or in a batch);
* constant λ: gaps are Exp(λ) (KS test), including a case where the thinning bound exceeds λ,
  so rejection really happens;
* time-varying λ (daily cycle, wellbeing decay, impulse and slow kernels): the number of points
  over many independent sequences matches ∫λ dt (scipy quad), in total and per hour of day, and
  the per-sequence count is Poisson(∫λ dt).

Statistical thresholds. Seeds are fixed, so the tests are deterministic; thresholds say how
often a correct implementation would fail for an arbitrary seed: p > 0.001 (0.1%) for
goodness-of-fit tests, |observed − expected| < 4 standard errors (two-sided 6.3e-5) for counts.
They follow from the sampling error and were not tuned.
"""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from scipy import integrate, stats

from recsim.config import BehaviourConfig, ChurnConfig, ReturnsConfig, SatisfactionConfig
from recsim.users import formulas as f
from recsim.users.components import SessionSummary
from recsim.users.default import HawkesReturns, ValueChurn
from recsim.users.peers import PoissonReturns
from recsim.users.state import Draws, StateView

HOUR, DAY = 3600.0, 86400.0
Z4 = 4.0  # two-sided normal tail 6.3e-5: false-failure probability of a correct implementation
P_MIN = 1e-3  # p-value threshold: 0.1% false-failure rate for a correct implementation
SAT = SatisfactionConfig()


def hawkes(cfg: ReturnsConfig, sat: SatisfactionConfig = SAT) -> HawkesReturns:
    """The returns component as the model builds it: bound to a behaviour section (κ, τ_S)."""
    return HawkesReturns(cfg).bind(BehaviourConfig(returns=cfg, satisfaction=sat))


def state_of(n, t_end, satisfaction, impulse, slow) -> dict[str, np.ndarray]:
    """``n`` users with the same return-process state (the fields HawkesReturns reads)."""
    return {
        "kernel_time": np.full(n, float(t_end)),
        "satisfaction": np.full(n, float(satisfaction)),
        "impulse": np.full(n, float(impulse)),
        "slow": np.full(n, float(slow)),
    }


def simulate(returns, arrays, start, end, seed, max_points=None):
    """Every user's successive returns on (start, end] from the state ``arrays`` (unchanged
    between points: no session in between), each user drawing from its own "returns" stream
    as in the engine. Returns (all times, per-user counts, the draws)."""
    n = arrays["kernel_time"].shape[0]
    draws = Draws.for_users(seed, returns.streams, np.arange(n))
    alive = np.arange(n)
    t = np.full(n, float(start))
    counts = np.zeros(n, dtype=np.int64)
    times = []
    while alive.size and (max_points is None or counts.max() < max_points):
        view = StateView.of({k: v[alive] for k, v in arrays.items()})
        nxt = returns.next_return(view, t[alive], end, draws.subset(alive))
        assert nxt.shape == alive.shape
        hit = np.isfinite(nxt)
        assert np.all((nxt[hit] > t[alive][hit]) & (nxt[hit] <= end))
        times.append(nxt[hit])
        counts[alive[hit]] += 1
        t[alive[hit]] = nxt[hit]
        alive = alive[hit]
    return np.concatenate(times) if times else np.empty(0), counts, draws


def intensity(t, arrays, cfg, kappa=SAT.kappa, tau_s=SAT.relax):
    """λ(t) of the first user of ``arrays`` (the formula the component thins against)."""
    return f.return_intensity(
        t,
        arrays["kernel_time"][0],
        arrays["satisfaction"][0],
        arrays["impulse"][0],
        arrays["slow"][0],
        cfg,
        kappa,
        tau_s,
    )


def intensity_integral(a, b, arrays, cfg, kappa=SAT.kappa, tau_s=SAT.relax):
    value, _ = integrate.quad(
        lambda t: float(intensity(t, arrays, cfg, kappa, tau_s)),
        a,
        b,
        limit=200,
        epsabs=0,
        epsrel=1e-10,
    )
    return value


# =============================================================================== the intensity
def test_daily_cycle_peaks_at_the_configured_time_with_mean_one():
    cfg = ReturnsConfig()  # amplitude 0.5, peak 20:00
    amp, peak = cfg.cycle_amplitude, cfg.cycle_peak
    assert peak == 20 * HOUR
    for day in (-7, 0, 3):
        assert f.daily_cycle(day * DAY + 20 * HOUR, amp, peak) == pytest.approx(1.5)
        assert f.daily_cycle(day * DAY + 8 * HOUR, amp, peak) == pytest.approx(
            0.5
        )  # trough 12 h later
    hours = np.arange(0, 24, 0.25) * HOUR
    d = f.daily_cycle(hours, amp, peak)
    assert hours[np.argmax(d)] == 20 * HOUR
    mean, _ = integrate.quad(lambda t: float(f.daily_cycle(t, amp, peak)), 0, DAY)
    assert mean / DAY == pytest.approx(1.0, abs=1e-10)
    assert np.all(f.daily_cycle(hours, 0.0, peak) == 1.0)


def test_return_intensity_formula():
    cfg = ReturnsConfig()
    kappa, tau_s = 0.4, DAY
    t_end, S, impulse, slow = 10 * HOUR, 2.0, 1e-4, 2e-6
    t = 13 * HOUR
    dt = t - t_end
    W = 1 / (1 + math.exp(-kappa * 2.0 * math.exp(-dt / tau_s)))
    d = 1 + 0.5 * math.cos(2 * math.pi * (t - 20 * HOUR) / DAY)
    expected = (
        cfg.base_rate * d * math.exp(cfg.b_w * (W - 0.5))
        + impulse * math.exp(-dt / cfg.tau_impulse)
        + slow * math.exp(-dt / cfg.tau_value)
    )
    assert f.return_intensity(t, t_end, S, impulse, slow, cfg, kappa, tau_s) == pytest.approx(
        expected, rel=1e-12
    )
    assert cfg.base_rate == pytest.approx(1.5 / DAY)  # rates are per second


def test_higher_wellbeing_and_kernels_raise_the_intensity():
    cfg = ReturnsConfig()
    t = 5 * HOUR
    lam = f.return_intensity(t, 0.0, np.array([-5.0, 0.0, 5.0]), 0.0, 0.0, cfg, 0.4, DAY)
    assert lam[0] < lam[1] < lam[2]  # b_W > 0
    base = f.return_intensity(t, 0.0, 0.0, 0.0, 0.0, cfg, 0.4, DAY)
    assert f.return_intensity(t, 0.0, 0.0, 1e-5, 0.0, cfg, 0.4, DAY) > base
    assert f.return_intensity(t, 0.0, 0.0, 0.0, 1e-5, cfg, 0.4, DAY) > base
    # the impulse kernel fades over hours (τ₁), the value kernel over weeks (τ₂)
    t0 = np.array([0.0, cfg.tau_impulse])
    imp = f.return_intensity(t0, 0.0, 0.0, 1e-5, 0.0, cfg, 0.4, DAY) - f.return_intensity(
        t0, 0.0, 0.0, 0.0, 0.0, cfg, 0.4, DAY
    )
    assert imp[1] / imp[0] == pytest.approx(math.exp(-1))
    t2 = np.array([0.0, cfg.tau_value])
    slow = f.return_intensity(t2, 0.0, 0.0, 0.0, 1e-5, cfg, 0.4, DAY) - f.return_intensity(
        t2, 0.0, 0.0, 0.0, 0.0, cfg, 0.4, DAY
    )
    assert slow[1] / slow[0] == pytest.approx(math.exp(-1))


@pytest.mark.parametrize("b_w", [0.5, -1.5])
@pytest.mark.parametrize("S", [-6.0, 0.0, 6.0])
def test_thinning_bound_dominates_the_intensity_ahead(b_w, S):
    """Thinning is exact only if the bound taken at t dominates λ on all of [t, ∞). A bound
    that fails somewhere would bias the sampled process silently, so check it on a fine grid."""
    cfg = ReturnsConfig(b_w=b_w)
    kappa, tau_s = 0.4, DAY
    t_end, impulse, slow = 3 * HOUR, 5e-5, 1e-6
    for t in t_end + np.array([0.0, 0.5, 7.0, 30.0]) * HOUR:
        bound = f.return_intensity_bound(t, t_end, S, impulse, slow, cfg, kappa, tau_s)
        lam = f.return_intensity(
            t + np.linspace(0, 5 * DAY, 2001), t_end, S, impulse, slow, cfg, kappa, tau_s
        )
        assert np.all(lam <= bound * (1 + 1e-12))
        assert lam[0] <= bound


# =============================================================================== thinning
def test_thinning_against_a_hand_computation():
    """Each candidate takes two uniforms from its row's stream, the gap then the acceptance:
    t ← t − log(u₁)/λ̄, accepted if u₂·λ̄ ≤ λ(t)."""
    lam_bar, lam = 2.0, 1.0
    streams = {0: [0.5, 0.7, 0.25, 0.3], 1: [0.9, 0.1], 2: [0.01, 0.9]}
    used = {r: 0 for r in streams}

    def uniform(rows):
        out = []
        for r in rows:
            out.append(streams[int(r)][used[int(r)]])
            used[int(r)] += 1
        return np.array(out)

    const = lambda rows, t: np.full(rows.shape[0], lam)
    bound = lambda rows, t: np.full(rows.shape[0], lam_bar)
    now = np.array([10.0, 20.0, 30.0])
    got = f.thinning(now, 31.0, const, bound, uniform)
    # row 0: candidate 1 at 10 + ln2/2 rejected (0.7·2 > 1), candidate 2 accepted (0.3·2 ≤ 1)
    t0 = 10.0 - math.log(0.5) / 2 - math.log(0.25) / 2
    # row 1: candidate 1 at 20 − ln(0.9)/2, accepted (0.1·2 ≤ 1)
    t1 = 20.0 - math.log(0.9) / 2
    # row 2: candidate 1 at 30 − ln(0.01)/2 ≈ 32.3, past `until`: no return
    assert got[0] == t0 and got[1] == t1 and got[2] == math.inf
    assert used == {0: 4, 1: 2, 2: 1}
    # a row with no intensity ahead (bound 0) returns inf without drawing
    zero = lambda rows, t: np.zeros(rows.shape[0])
    assert f.thinning(np.array([0.0]), 1e9, zero, zero, uniform)[0] == math.inf


def test_next_return_gives_a_user_the_same_bits_alone_or_in_a_batch():
    """The thinning loop runs rows until each is accepted; a row's points must not depend on
    how long the other rows take (draws per user, candidates per row)."""
    cfg = ReturnsConfig()
    returns = hawkes(cfg)
    rng = np.random.default_rng(3)
    n = 41
    arrays = {
        "kernel_time": rng.uniform(-DAY, 0, n),
        "satisfaction": rng.normal(0, 3, n),
        "impulse": rng.uniform(0, 5e-4, n),
        "slow": rng.uniform(0, 1e-5, n),
    }
    now = arrays["kernel_time"] + rng.uniform(0, HOUR, n)
    until = 5 * DAY
    everyone = np.arange(n)
    full = returns.next_return(
        StateView.of(arrays), now, until, Draws.for_users(1, returns.streams, everyone)
    )
    assert np.isfinite(full).sum() > n // 2
    order = rng.permutation(n)
    shuffled = returns.next_return(
        StateView.of({k: v[order] for k, v in arrays.items()}),
        now[order],
        until,
        Draws.for_users(1, returns.streams, order, n),
    )
    np.testing.assert_array_equal(shuffled, full[order])
    for u in range(n):
        alone = returns.next_return(
            StateView.of({k: v[u : u + 1] for k, v in arrays.items()}),
            now[u : u + 1],
            until,
            Draws.for_users(1, returns.streams, np.array([u]), n),
        )
        np.testing.assert_array_equal(alone, full[u : u + 1])


# =============================================================================== constant rate
def _constant_case(kind):
    """λ constant in time: no cycle, no kernels and W(t) constant.

    'exact': b_W = 0, so λ = λ₀ equals the thinning bound (every candidate accepted).
    'thinned': b_W = -2 and S = 20 (W ≈ 1) with τ_S = 10¹⁵ s (S does not decay over the
    sample: W moves by < 10⁻¹² relative): λ = λ₀·e^{-2(W-½)} ≈ 0.37·λ₀, below the bound λ₀,
    so about 63% of candidates are rejected: the acceptance step is exercised."""
    sat = SatisfactionConfig(relax=1e15)
    if kind == "exact":
        cfg = ReturnsConfig(cycle_amplitude=0.0, b_w=0.0)
        arrays = state_of(1, 0.0, 0.0, 0.0, 0.0)
    else:
        cfg = ReturnsConfig(cycle_amplitude=0.0, b_w=-2.0)
        arrays = state_of(1, 0.0, 20.0, 0.0, 0.0)
    W = 1 / (1 + math.exp(-sat.kappa * arrays["satisfaction"][0]))
    lam = cfg.base_rate * math.exp(cfg.b_w * (W - 0.5))
    return cfg, sat, arrays, lam


@pytest.mark.parametrize("kind", ["exact", "thinned"])
def test_gaps_under_constant_intensity_are_exponential(kind):
    """2 000 users × 10 successive returns each: 20 000 gaps, iid Exp(λ) for a correct
    sampler (within a user's sequence too: the process is memoryless)."""
    cfg, sat, one, lam = _constant_case(kind)
    assert intensity(12345.0, one, cfg, sat.kappa, sat.relax) == pytest.approx(lam, rel=1e-12)
    n_users, per_user = 2000, 10
    arrays = {k: np.repeat(v, n_users) for k, v in one.items()}
    times, counts, draws = simulate(
        hawkes(cfg, sat), arrays, 0.0, math.inf, seed=2024, max_points=per_user
    )
    assert np.all(counts == per_user)
    # times come in rounds (the k-th return of every user); gaps per user, in order
    seq = times.reshape(per_user, n_users).T
    gaps = np.diff(np.c_[np.zeros(n_users), seq], axis=1).ravel()
    assert np.all(gaps > 0)
    # KS against Exp(rate λ); p > 0.001: 0.1% false-failure rate for a correct sampler
    assert stats.kstest(gaps, stats.expon(scale=1 / lam).cdf).pvalue > P_MIN
    if kind == "thinned":
        # power check (the test can fail): the candidate rate (the bound) is clearly rejected,
        # i.e. a sampler that skipped the acceptance step would fail the test above
        assert stats.kstest(gaps, stats.expon(scale=1 / cfg.base_rate).cdf).pvalue < 1e-12
    else:
        # every candidate is accepted when λ equals the bound: two uniforms per point
        assert np.all(draws.counters["returns"] == 2 * per_user)


def test_poisson_returns_gaps_are_exponential():
    """The peer PoissonReturns component (constant rate, same thinning): Exp(rate) gaps."""
    returns = PoissonReturns(rate=2.0 / DAY)
    n = 20_000
    t = returns.next_return(
        StateView.of({"x": np.zeros(n)}),
        np.full(n, 5.0),
        math.inf,
        Draws.for_users(6, returns.streams, np.arange(n)),
    )
    assert stats.kstest(t - 5.0, stats.expon(scale=DAY / 2.0).cdf).pvalue > P_MIN


def test_returns_stay_after_now_and_before_until():
    cfg, sat, one, lam = _constant_case("exact")
    returns = hawkes(cfg, sat)
    n = 20_000
    arrays = {k: np.repeat(v, n) for k, v in one.items()}
    view = StateView.of(arrays)
    for k, now in enumerate((0.0, 1000.0, 5 * DAY)):
        t = returns.next_return(
            view, np.full(n, now), now + 1 / lam, Draws.for_users(k, returns.streams, np.arange(n))
        )
        hit = np.isfinite(t)
        assert np.all(t[~hit] == math.inf)
        assert np.all((t[hit] > now) & (t[hit] <= now + 1 / lam))
        # P(no return within a window w) = e^{-λw}: with w = 1/λ the share of inf is e^{-1}.
        # Binomial SE √(p(1-p)/n); 4 SE tolerance.
        p = math.exp(-1)
        assert abs((~hit).mean() - p) < Z4 * math.sqrt(p * (1 - p) / n)


def test_no_intensity_means_no_return():
    returns = hawkes(ReturnsConfig(base_rate=0.0))
    t = returns.next_return(
        StateView.of(state_of(3, 0.0, 0.0, 0.0, 0.0)),
        np.zeros(3),
        30 * DAY,
        Draws.for_users(1, returns.streams, np.arange(3)),
    )
    assert np.all(t == math.inf)


# =============================================================================== varying rate
CASES = {
    # the daily cycle alone (amplitude 0.5, peak 20:00) over 3 days
    "cycle": {
        "cfg": ReturnsConfig(cycle_amplitude=0.5, b_w=0.0),
        "state": state_of(1, 0.0, 0.0, 0.0, 0.0),
        "window": (0.0, 3 * DAY),
    },
    # everything at once: cycle, W(t) decaying toward ½ (S = 4, τ_S = 1 d, b_W = 0.5), a
    # decaying impulse (2/h at the session end, τ₁ = 3 h) and the slow value kernel
    "full": {
        "cfg": ReturnsConfig(cycle_amplitude=0.5, b_w=0.5),
        "state": state_of(1, 5 * HOUR, 4.0, 2.0 / HOUR, 0.5 / DAY),
        "window": (5 * HOUR, 5 * HOUR + 2 * DAY),
    },
}
N_SEQ = 20_000


@pytest.fixture(scope="module", params=list(CASES))
def varying(request):
    case = CASES[request.param]
    start, end = case["window"]
    arrays = {k: np.repeat(v, N_SEQ) for k, v in case["state"].items()}
    times, counts, _ = simulate(hawkes(case["cfg"]), arrays, start, end, seed=77)
    # expected points per hourly bin over the window, per sequence: ∫_bin λ dt
    edges = np.arange(start, end + 1, HOUR)
    per_bin = np.array(
        [intensity_integral(a, b, case["state"], case["cfg"]) for a, b in itertools.pairwise(edges)]
    )
    return dict(case, times=times, counts=counts, edges=edges, per_bin=per_bin, name=request.param)


def test_thinning_reproduces_the_expected_count(varying):
    """Over M independent sequences the total count is Poisson(M·Λ), Λ = ∫λ dt over the window
    (a sum of independent Poissons), so its standard error is √(M·Λ); tolerance 4 SE."""
    start, end = varying["window"]
    Lam = intensity_integral(start, end, varying["state"], varying["cfg"])
    assert Lam == pytest.approx(varying["per_bin"].sum(), rel=1e-8)
    expected = N_SEQ * Lam
    assert abs(varying["times"].size - expected) < Z4 * math.sqrt(expected)


def test_thinning_reproduces_the_hourly_profile(varying):
    """Given the total, a Poisson process's points fall into disjoint bins multinomially with
    probabilities ∝ ∫_bin λ dt, so a chi-square test over the hourly bins checks the shape of
    λ in time (cycle phase, kernel decay); p > 0.001 (0.1% false-failure rate)."""
    counts, _ = np.histogram(varying["times"], bins=varying["edges"])
    expected = varying["per_bin"] / varying["per_bin"].sum() * counts.sum()
    assert expected.min() >= 5
    assert stats.chisquare(counts, expected).pvalue > P_MIN
    # power check: the same counts reject a cycle peaking at 08:00 instead of 20:00
    wrong = varying["cfg"].model_copy(update={"cycle_peak": 8 * HOUR})
    per_bin_wrong = np.array(
        [
            intensity_integral(a, b, varying["state"], wrong)
            for a, b in itertools.pairwise(varying["edges"])
        ]
    )
    expected_wrong = per_bin_wrong / per_bin_wrong.sum() * counts.sum()
    assert stats.chisquare(counts, expected_wrong).pvalue < 1e-12


def test_peak_and_trough_hours_get_their_expected_counts(varying):
    """Points in the evening hours 16:00–24:00 (around the 20:00 peak) and in 04:00–12:00
    (around the 08:00 trough), over all days of the window: each count is Poisson(M·∫λ) over
    those hours, SE = √(M·∫λ); tolerance 4 SE. A wrong cycle phase or sign fails this."""
    hour_of_day = np.mod(varying["edges"][:-1], DAY) / HOUR
    bin_index = np.clip(
        np.searchsorted(varying["edges"], varying["times"], side="left") - 1,
        0,
        len(hour_of_day) - 1,
    )
    for lo, hi in ((16, 24), (4, 12)):
        in_bins = (hour_of_day >= lo) & (hour_of_day < hi)
        expected = N_SEQ * varying["per_bin"][in_bins].sum()
        observed = int(in_bins[bin_index].sum())
        assert abs(observed - expected) < Z4 * math.sqrt(expected), (lo, hi)
    if varying["name"] == "cycle":
        # cycle alone: evening hours get (1 + 0.5·0.83)/(1 - 0.5·0.83) ≈ 2.4× the morning
        # (0.83 = sin(π/3)/(π/3), the mean of cos over ±4 h around the peak)
        evening = (hour_of_day >= 16) & (hour_of_day < 24)
        morning = (hour_of_day >= 4) & (hour_of_day < 12)
        assert varying["per_bin"][evening].sum() / varying["per_bin"][morning].sum() > 2.0


def test_count_per_sequence_is_poisson(varying):
    """Each sequence's count in the window is Poisson(Λ) for a non-homogeneous Poisson process:
    chi-square of the per-sequence count histogram against Poisson(Λ) (tail cells merged so
    every expected count is ≥ 5); p > 0.001. This would catch, e.g., a sampler whose accepted
    points changed the intensity (over- or under-dispersion)."""
    Lam = varying["per_bin"].sum()
    counts = varying["counts"]
    M = counts.size
    probs = stats.poisson(Lam).pmf(np.arange(0, 200))
    keep = probs * M >= 5
    lo, hi = np.argmax(keep), len(keep) - np.argmax(keep[::-1]) - 1
    cells = np.r_[stats.poisson(Lam).cdf(lo), probs[lo + 1 : hi], stats.poisson(Lam).sf(hi - 1)]
    observed = np.r_[
        (counts <= lo).sum(), [(counts == k).sum() for k in range(lo + 1, hi)], (counts >= hi).sum()
    ]
    assert observed.sum() == M and cells.sum() == pytest.approx(1.0)
    assert stats.chisquare(observed, cells * M).pvalue > P_MIN
    # dispersion: var/mean of a Poisson is 1; SE of the sample variance ratio ≈ √(2/M)
    assert abs(counts.var(ddof=1) / counts.mean() - 1) < Z4 * math.sqrt(2 / M + 1 / (M * Lam))


# =================================================================== sessions feed the kernels
def test_session_mean_and_kernel_update_formulas():
    np.testing.assert_array_equal(
        f.session_mean(np.array([3.0, 0.0, -2.0]), np.array([2, 0, 4])), [1.5, 0.0, -0.5]
    )
    # I·e^{−dt/τ} + α·[mark]₊
    assert f.decay_and_add(2.0, 3.0, 3.0, 0.5, 4.0) == pytest.approx(2.0 / math.e + 2.0)
    assert f.decay_and_add(2.0, 3.0, 3.0, 0.5, -4.0) == pytest.approx(
        2.0 / math.e
    )  # marks clipped at 0


def test_hawkes_end_session_against_a_hand_computation():
    cfg = ReturnsConfig()
    returns = hawkes(cfg)
    arrays = {
        "kernel_time": np.array([0.0, 100.0]),
        "impulse": np.array([1e-4, 0.0]),
        "slow": np.array([2e-6, 1e-6]),
        "satisfaction": np.zeros(2),
    }
    summary = SessionSummary(
        n_watched=np.array([3, 0]),
        watch_time=np.array([600.0, 0.0]),
        mean_value=np.array([0.4, -0.3]),
        mean_allure=np.array([2.5, 0.0]),
    )
    now = np.array([HOUR, 2 * HOUR])
    out = returns.end_session(StateView.of(arrays), summary, now)
    dt = now - arrays["kernel_time"]
    np.testing.assert_allclose(
        out["impulse"],
        arrays["impulse"] * np.exp(-dt / cfg.tau_impulse)
        + cfg.alpha_impulse * np.array([2.5, 0.0]),
        rtol=1e-12,
    )
    np.testing.assert_allclose(
        out["slow"],
        arrays["slow"] * np.exp(-dt / cfg.tau_value) + cfg.alpha_value * np.array([0.4, 0.0]),
        rtol=1e-12,
    )
    np.testing.assert_array_equal(out["kernel_time"], now)


# =============================================================================== churn
def test_churn_probability_formula_and_direction():
    c = ChurnConfig()
    assert f.churn_probability(c.u_out, c) == pytest.approx(1 / (1 + math.exp(-c.zeta0)))
    ubar = np.linspace(-2, 2, 41)
    p = f.churn_probability(ubar, c)
    assert np.all(np.diff(p) < 0)  # users who get more value churn less
    assert np.all((p > 0) & (p < 1))
    x = c.zeta0 - c.zeta1 * (0.1 - c.u_out)
    assert f.churn_probability(0.1, c) == pytest.approx(1 / (1 + math.exp(-x)))
    # the component reads the state's EMA
    churn = ValueChurn(c)
    np.testing.assert_array_equal(churn.probability(StateView.of({"ubar": ubar})), p)


def test_value_churn_ema_against_a_hand_computation():
    c = ChurnConfig()
    churn = ValueChurn(c)
    init = churn.initial_state(StateView.of({"x": np.zeros(3)}), 0.0)
    np.testing.assert_array_equal(init["ubar"], np.full(3, c.initial))
    ubar = np.array([0.6, -0.2, 1.5])
    mv = np.array([0.1, 0.9, 0.0])
    summary = SessionSummary(np.ones(3, dtype=np.int64), np.full(3, 60.0), mv, np.ones(3))
    out = churn.end_session(StateView.of({"ubar": ubar}), summary)
    np.testing.assert_allclose(
        out["ubar"], (1 - c.ema_weight) * ubar + c.ema_weight * mv, rtol=1e-15
    )
    assert f.update_ema(0.6, 0.1, 0.2) == pytest.approx(0.8 * 0.6 + 0.2 * 0.1)
