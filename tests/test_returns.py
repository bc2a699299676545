"""Returns to the platform (DESIGN §2.6, recsim.users.returns): the two-speed intensity, its
exact sampling by thinning, and the churn probability.

Between two sessions the user's state is fixed, so the returns form a non-homogeneous Poisson
process with intensity λ(t); ``next_return`` gives the *one* next point after ``now``, and
calling it again from each accepted point generates the whole process (no self-excitation
happens without a session in between). The tests check that process against its law:

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

import math

import numpy as np
import pytest
from scipy import integrate, stats

from recsim.config import ChurnConfig, ReturnsConfig, SatisfactionConfig
from recsim.users.returns import (
    ReturnState,
    _bound,
    churn_probability,
    daily_cycle,
    next_return,
    return_intensity,
)

HOUR, DAY = 3600.0, 86400.0
Z4 = 4.0  # two-sided normal tail 6.3e-5: false-failure probability of a correct implementation
P_MIN = 1e-3  # p-value threshold: 0.1% false-failure rate for a correct implementation


class Uniforms:
    """A fixed-seed source of uniforms in (0, 1] (1 - random() avoids log(0)), buffered."""

    def __init__(self, seed: int):
        self.rng = np.random.default_rng(seed)
        self.buf = np.empty(0)
        self.i = 0
        self.n_used = 0

    def __call__(self) -> float:
        if self.i == self.buf.size:
            self.buf = 1.0 - self.rng.random(1 << 16)
            self.i = 0
        self.i += 1
        self.n_used += 1
        return float(self.buf[self.i - 1])


def simulate(cfg, state, kappa, tau_s, start, end, n_seq, seed):
    """``n_seq`` independent sequences of returns on (start, end]: all times and per-sequence
    counts."""
    uniform = Uniforms(seed)
    times, counts = [], np.zeros(n_seq, dtype=np.int64)
    for i in range(n_seq):
        t = start
        while True:
            t = next_return(t, end, state, cfg, kappa, tau_s, uniform)
            if t == math.inf:
                break
            assert start < t <= end
            times.append(t)
            counts[i] += 1
    return np.array(times), counts


def intensity_integral(a, b, state, cfg, kappa, tau_s):
    value, err = integrate.quad(
        lambda t: return_intensity(t, state, cfg, kappa, tau_s), a, b, limit=200, epsabs=0,
        epsrel=1e-10,
    )
    return value


# =============================================================================== the intensity
def test_daily_cycle_peaks_at_the_configured_time_with_mean_one():
    cfg = ReturnsConfig()  # amplitude 0.5, peak 20:00
    assert cfg.cycle_peak == 20 * HOUR
    for day in (-7, 0, 3):
        assert daily_cycle(day * DAY + 20 * HOUR, cfg) == pytest.approx(1.5)
        assert daily_cycle(day * DAY + 8 * HOUR, cfg) == pytest.approx(0.5)  # trough 12 h later
    hours = np.arange(0, 24, 0.25) * HOUR
    d = np.array([daily_cycle(h, cfg) for h in hours])
    assert hours[np.argmax(d)] == 20 * HOUR
    mean, _ = integrate.quad(lambda t: daily_cycle(t, cfg), 0, DAY)
    assert mean / DAY == pytest.approx(1.0, abs=1e-10)
    flat = ReturnsConfig(cycle_amplitude=0.0)
    assert all(daily_cycle(h, flat) == 1.0 for h in hours)


def test_return_intensity_formula():
    cfg = ReturnsConfig()
    kappa, tau_s = 0.4, DAY
    state = ReturnState(t_end=10 * HOUR, satisfaction=2.0, impulse=1e-4, slow=2e-6)
    t = 13 * HOUR
    dt = t - state.t_end
    W = 1 / (1 + math.exp(-kappa * 2.0 * math.exp(-dt / tau_s)))
    d = 1 + 0.5 * math.cos(2 * math.pi * (t - 20 * HOUR) / DAY)
    expected = (
        cfg.base_rate * d * math.exp(cfg.b_w * (W - 0.5))
        + 1e-4 * math.exp(-dt / cfg.tau_impulse)
        + 2e-6 * math.exp(-dt / cfg.tau_value)
    )
    assert return_intensity(t, state, cfg, kappa, tau_s) == pytest.approx(expected, rel=1e-12)
    assert cfg.base_rate == pytest.approx(1.5 / DAY)  # rates are per second


def test_higher_wellbeing_and_kernels_raise_the_intensity():
    cfg = ReturnsConfig()
    t = 5 * HOUR
    lam = [
        return_intensity(t, ReturnState(0.0, S, 0.0, 0.0), cfg, 0.4, DAY) for S in (-5, 0, 5)
    ]
    assert lam[0] < lam[1] < lam[2]  # b_W > 0
    base = return_intensity(t, ReturnState(0.0, 0.0, 0.0, 0.0), cfg, 0.4, DAY)
    assert return_intensity(t, ReturnState(0.0, 0.0, 1e-5, 0.0), cfg, 0.4, DAY) > base
    assert return_intensity(t, ReturnState(0.0, 0.0, 0.0, 1e-5), cfg, 0.4, DAY) > base
    # the impulse kernel fades over hours (τ₁), the value kernel over weeks (τ₂)
    imp = [return_intensity(t0, ReturnState(0.0, 0.0, 1e-5, 0.0), cfg, 0.4, DAY)
           - return_intensity(t0, ReturnState(0.0, 0.0, 0.0, 0.0), cfg, 0.4, DAY)
           for t0 in (0.0, cfg.tau_impulse)]
    assert imp[1] / imp[0] == pytest.approx(math.exp(-1))


@pytest.mark.parametrize("b_w", [0.5, -1.5])
@pytest.mark.parametrize("S", [-6.0, 0.0, 6.0])
def test_thinning_bound_dominates_the_intensity_ahead(b_w, S):
    """Thinning is exact only if the bound taken at t dominates λ on all of [t, ∞). A bound
    that fails somewhere would bias the sampled process silently, so check it on a fine grid
    (the private helper is tested because this property is what makes thinning exact)."""
    cfg = ReturnsConfig(b_w=b_w)
    kappa, tau_s = 0.4, DAY
    state = ReturnState(t_end=3 * HOUR, satisfaction=S, impulse=5e-5, slow=1e-6)
    for t in state.t_end + np.array([0.0, 0.5, 7.0, 30.0]) * HOUR:
        bound = _bound(t, state, cfg, kappa, tau_s)
        ahead = t + np.linspace(0, 5 * DAY, 2001)
        lam = np.array([return_intensity(s, state, cfg, kappa, tau_s) for s in ahead])
        assert np.all(lam <= bound * (1 + 1e-12))


# =============================================================================== constant rate
def _constant_case(kind):
    """λ constant in time: no cycle, no kernels and W(t) constant (S does not decay: τ_S = ∞).

    'exact': b_W = 0, so λ = λ₀ equals the thinning bound (every candidate accepted).
    'thinned': b_W = -2 and S = 20 (W ≈ 1): λ = λ₀·e^{-2(W-½)} ≈ 0.37·λ₀, below the
    bound λ₀, so about 63% of candidates are rejected: the acceptance step is exercised."""
    if kind == "exact":
        cfg = ReturnsConfig(cycle_amplitude=0.0, b_w=0.0)
        state = ReturnState(t_end=0.0, satisfaction=0.0, impulse=0.0, slow=0.0)
    else:
        cfg = ReturnsConfig(cycle_amplitude=0.0, b_w=-2.0)
        state = ReturnState(t_end=0.0, satisfaction=20.0, impulse=0.0, slow=0.0)
    kappa, tau_s = 0.4, math.inf
    W = 1 / (1 + math.exp(-kappa * state.satisfaction))
    lam = cfg.base_rate * math.exp(cfg.b_w * (W - 0.5))
    return cfg, state, kappa, tau_s, lam


@pytest.mark.parametrize("kind", ["exact", "thinned"])
def test_gaps_under_constant_intensity_are_exponential(kind):
    cfg, state, kappa, tau_s, lam = _constant_case(kind)
    assert return_intensity(12345.0, state, cfg, kappa, tau_s) == pytest.approx(lam)
    uniform = Uniforms(2024)
    n = 20_000
    times = np.empty(n)
    t = 0.0
    for i in range(n):
        t = next_return(t, math.inf, state, cfg, kappa, tau_s, uniform)
        times[i] = t
    gaps = np.diff(np.r_[0.0, times])
    assert np.all(gaps > 0)
    # KS against Exp(rate λ); p > 0.001: 0.1% false-failure rate for a correct sampler
    assert stats.kstest(gaps, stats.expon(scale=1 / lam).cdf).pvalue > P_MIN
    if kind == "thinned":
        # power check (the test can fail): the candidate rate (the bound) is clearly rejected,
        # i.e. a sampler that skipped the acceptance step would fail the test above
        bound = cfg.base_rate
        assert stats.kstest(gaps, stats.expon(scale=1 / bound).cdf).pvalue < 1e-12
    else:
        # every candidate is accepted when λ equals the bound: two uniforms per point
        assert uniform.n_used == 2 * n


def test_returns_stay_after_now_and_before_until():
    cfg, state, kappa, tau_s, lam = _constant_case("exact")
    uniform = Uniforms(5)
    for now in (0.0, 1000.0, 5 * DAY):
        for _ in range(200):
            t = next_return(now, now + 1 / lam, state, cfg, kappa, tau_s, uniform)
            assert t == math.inf or now < t <= now + 1 / lam
    # P(no return within a window w) = e^{-λw}: with w = 1/λ the share of inf is e^{-1}.
    # Binomial SE √(p(1-p)/n); 4 SE tolerance.
    n = 20_000
    misses = sum(
        next_return(0.0, 1 / lam, state, cfg, kappa, tau_s, uniform) == math.inf for _ in range(n)
    )
    p = math.exp(-1)
    assert abs(misses / n - p) < Z4 * math.sqrt(p * (1 - p) / n)


def test_no_intensity_means_no_return():
    cfg = ReturnsConfig(base_rate=0.0)
    state = ReturnState(t_end=0.0, satisfaction=0.0, impulse=0.0, slow=0.0)
    assert next_return(0.0, 30 * DAY, state, cfg, 0.4, DAY, Uniforms(1)) == math.inf


# =============================================================================== varying rate
CASES = {
    # the daily cycle alone (amplitude 0.5, peak 20:00) over 3 days
    "cycle": dict(
        cfg=ReturnsConfig(cycle_amplitude=0.5, b_w=0.0),
        state=ReturnState(t_end=0.0, satisfaction=0.0, impulse=0.0, slow=0.0),
        window=(0.0, 3 * DAY),
        n_seq=20_000,
    ),
    # everything at once: cycle, W(t) decaying toward ½ (S = 4, τ_S = 1 d, b_W = 0.5), a
    # decaying impulse (2/h at the session end, τ₁ = 3 h) and the slow value kernel
    "full": dict(
        cfg=ReturnsConfig(cycle_amplitude=0.5, b_w=0.5),
        state=ReturnState(t_end=5 * HOUR, satisfaction=4.0, impulse=2.0 / HOUR, slow=0.5 / DAY),
        window=(5 * HOUR, 5 * HOUR + 2 * DAY),
        n_seq=20_000,
    ),
}


@pytest.fixture(scope="module", params=list(CASES))
def varying(request):
    case = CASES[request.param]
    kappa, tau_s = SatisfactionConfig().kappa, SatisfactionConfig().relax
    start, end = case["window"]
    times, counts = simulate(
        case["cfg"], case["state"], kappa, tau_s, start, end, case["n_seq"], seed=77
    )
    # expected points per hourly bin over the window, per sequence: ∫_bin λ dt
    edges = np.arange(start, end + 1, HOUR)
    per_bin = np.array(
        [intensity_integral(a, b, case["state"], case["cfg"], kappa, tau_s)
         for a, b in zip(edges[:-1], edges[1:])]
    )
    return dict(case, kappa=kappa, tau_s=tau_s, times=times, counts=counts, edges=edges,
                per_bin=per_bin, name=request.param)


def test_thinning_reproduces_the_expected_count(varying):
    """Over M independent sequences the total count is Poisson(M·Λ), Λ = ∫λ dt over the window
    (a sum of independent Poissons), so its standard error is √(M·Λ); tolerance 4 SE."""
    M = varying["n_seq"]
    start, end = varying["window"]
    Lam = intensity_integral(start, end, varying["state"], varying["cfg"],
                             varying["kappa"], varying["tau_s"])
    assert Lam == pytest.approx(varying["per_bin"].sum(), rel=1e-8)
    expected = M * Lam
    observed = varying["times"].size
    assert abs(observed - expected) < Z4 * math.sqrt(expected)


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
        [intensity_integral(a, b, varying["state"], wrong, varying["kappa"], varying["tau_s"])
         for a, b in zip(varying["edges"][:-1], varying["edges"][1:])]
    )
    expected_wrong = per_bin_wrong / per_bin_wrong.sum() * counts.sum()
    assert stats.chisquare(counts, expected_wrong).pvalue < 1e-12


def test_peak_and_trough_hours_get_their_expected_counts(varying):
    """Points in the evening hours 16:00–24:00 (around the 20:00 peak) and in 04:00–12:00
    (around the 08:00 trough), over all days of the window: each count is Poisson(M·∫λ) over
    those hours, SE = √(M·∫λ); tolerance 4 SE. A wrong cycle phase or sign fails this."""
    M = varying["n_seq"]
    hour_of_day = np.mod(varying["edges"][:-1], DAY) / HOUR
    bin_index = np.clip(np.searchsorted(varying["edges"], varying["times"], side="left") - 1,
                        0, len(hour_of_day) - 1)
    for lo, hi in ((16, 24), (4, 12)):
        in_bins = (hour_of_day >= lo) & (hour_of_day < hi)
        expected = M * varying["per_bin"][in_bins].sum()
        observed = int(in_bins[bin_index].sum())
        assert abs(observed - expected) < Z4 * math.sqrt(expected), (lo, hi)
    if varying["name"] == "cycle":
        # cycle alone: evening hours get (1 + 0.5·0.83)/(1 - 0.5·0.83) ≈ 2.4× the morning
        # (0.83 = sin(π/3)/(π/3), the mean of cos over ±4 h around the peak)
        evening = (hour_of_day >= 16) & (hour_of_day < 24)
        morning = (hour_of_day >= 4) & (hour_of_day < 12)
        ratio = varying["per_bin"][evening].sum() / varying["per_bin"][morning].sum()
        assert ratio > 2.0


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
    cells = np.r_[stats.poisson(Lam).cdf(lo), probs[lo + 1:hi], stats.poisson(Lam).sf(hi - 1)]
    observed = np.r_[(counts <= lo).sum(), [(counts == k).sum() for k in range(lo + 1, hi)],
                     (counts >= hi).sum()]
    assert observed.sum() == M and cells.sum() == pytest.approx(1.0)
    assert stats.chisquare(observed, cells * M).pvalue > P_MIN
    # dispersion: var/mean of a Poisson is 1; SE of the sample variance ratio ≈ √(2/M)
    assert abs(counts.var(ddof=1) / counts.mean() - 1) < Z4 * math.sqrt(2 / M + 1 / (M * Lam))


# =============================================================================== churn
def test_churn_probability_formula_and_direction():
    c = ChurnConfig()
    assert churn_probability(c.u_out, c.zeta0, c.zeta1, c.u_out) == pytest.approx(
        1 / (1 + math.exp(-c.zeta0))
    )
    ubar = np.linspace(-2, 2, 41)
    p = np.array([churn_probability(u, c.zeta0, c.zeta1, c.u_out) for u in ubar])
    assert np.all(np.diff(p) < 0)  # users who get more value churn less
    assert np.all((p > 0) & (p < 1))
    x = c.zeta0 - c.zeta1 * (0.1 - c.u_out)
    expected = 1 / (1 + math.exp(-x))
    assert churn_probability(0.1, c.zeta0, c.zeta1, c.u_out) == pytest.approx(expected)
