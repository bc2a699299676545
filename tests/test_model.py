"""The behaviour model of DESIGN §2.3–2.5 (recsim.users.model), plus catalog and population
sanity (§2.1, §2.2, §2.9 defaults).

* One sign/direction test per hidden-state update of §2.5 (DESIGN §5 rule 8) and per
  direction of effect stated in §2.3–2.4.
* Choice: ``choice_probabilities`` against an independent transcription of the §2.4 formula,
  and a chi-square goodness-of-fit test of ``sample_choice`` frequencies.
* Watch time: the closed-form expectation against numerical integration and Monte Carlo.

Statistical thresholds. Every seed is fixed, so each test is deterministic; the thresholds say
how often a *correct* implementation would fail for an arbitrary seed: p-value thresholds of
0.001 (a 0.1% false-failure rate) and z-tolerances of 4 standard errors (two-sided normal
tail 6.3e-5). They were set from the sampling error before running, never tuned.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import integrate, stats

from recsim.catalog import generate_catalog, make_topic_centers
from recsim.config import (
    AllureConfig,
    AppetiteDynamicsConfig,
    CatalogConfig,
    ChoiceConfig,
    ContinuationConfig,
    LengthConfig,
    PopulationConfig,
    SatisfactionConfig,
    Scenario,
    TopicDynamicsConfig,
    ValueConfig,
    WatchConfig,
)
from recsim.users import model
from recsim.users.population import generate_population

ALLURE = AllureConfig()
VALUE = ValueConfig()
CHOICE = ChoiceConfig()
WATCH = WatchConfig()
CONT = ContinuationConfig()
TOPIC = TopicDynamicsConfig()
APPETITE = AppetiteDynamicsConfig()
SAT = SatisfactionConfig()

Z4 = 4.0  # z-tolerance: two-sided false-failure probability 6.3e-5 for a correct implementation
P_MIN = 1e-3  # p-value threshold: false-failure rate 0.1% for a correct implementation


def _unit(v):
    v = np.asarray(v, dtype=float)
    return v / np.linalg.norm(v)


def _random_unit(rng, k=20):
    return _unit(rng.normal(size=k))


# =============================================================================== §2.3 allure
def test_grip_peaks_just_past_the_appetite():
    for a in (0.0, 0.2, 0.5, 0.8):
        grid = np.linspace(-0.5, 1.5, 20001)  # step 1e-4
        g = model.grip(grid, a, ALLURE)
        peak = grid[np.argmax(g)]
        assert peak == pytest.approx(a + ALLURE.delta, abs=1e-4)
        assert model.grip(a + ALLURE.delta, a, ALLURE) == pytest.approx(1.0)
        # content exactly at the appetite grips less than content just past it (δ > 0) ...
        assert model.grip(a, a, ALLURE) < model.grip(a + ALLURE.delta, a, ALLURE)
        # ... and far more extreme content repels (3ω past the peak: exp(-4.5) ≈ 0.011)
        far = a + ALLURE.delta + 3 * ALLURE.omega
        assert model.grip(far, a, ALLURE) == pytest.approx(math.exp(-4.5))
        # symmetric Gaussian bump of width ω around a + δ
        d = 0.07
        assert model.grip(a + ALLURE.delta + d, a, ALLURE) == pytest.approx(
            model.grip(a + ALLURE.delta - d, a, ALLURE)
        )
        assert model.grip(a + ALLURE.delta + ALLURE.omega, a, ALLURE) == pytest.approx(
            math.exp(-0.5)
        )


def test_allure_increases_with_relevance_and_clickbait():
    r = np.linspace(-1, 1, 21)
    A = model.allure(r, 0.3, 0.4, 0.2, ALLURE)
    assert np.all(np.diff(A) > 0)
    assert np.allclose(np.diff(A), ALLURE.w_r * np.diff(r))
    b = np.linspace(0, 1, 11)
    assert np.all(np.diff(model.allure(0.5, 0.3, b, 0.2, ALLURE)) > 0)


def test_allure_formula():
    r, e, b, a = 0.6, 0.35, 0.2, 0.25
    g = math.exp(-((e - a - ALLURE.delta) ** 2) / (2 * ALLURE.omega**2))
    expected = ALLURE.w_r * r + ALLURE.w_e * g + ALLURE.w_c * b
    assert model.allure(r, e, b, a, ALLURE) == pytest.approx(expected, rel=1e-12)


def test_allure_follows_the_grip_in_extremeness():
    a = 0.2
    e = np.linspace(0, 1, 1001)
    A = model.allure(0.5, e, 0.3, a, ALLURE)
    assert e[np.argmax(A)] == pytest.approx(a + ALLURE.delta, abs=1e-3)


# =============================================================================== §2.3 value
def test_value_decreases_with_extremeness_and_watch_time():
    e = np.linspace(0, 1, 101)
    v = model.value(0.5, 0.5, e, 300.0, VALUE)
    assert np.all(np.diff(v) < 0)
    tau = np.linspace(0, 3600, 61)
    v = model.value(0.5, 0.5, 0.2, tau, VALUE)
    assert np.all(np.diff(v) < 0)
    # c_τ is per *minute*: one extra minute costs exactly c_τ
    assert model.value(0.5, 0.5, 0.2, 60.0, VALUE) - model.value(0.5, 0.5, 0.2, 120.0, VALUE) == (
        pytest.approx(VALUE.c_tau)
    )


def test_value_increases_with_relevance_and_quality():
    r = np.linspace(-1, 1, 21)
    assert np.all(np.diff(model.value(r, 0.5, 0.2, 120.0, VALUE)) > 0)
    q = np.linspace(0, 1, 11)
    assert np.all(np.diff(model.value(0.5, q, 0.2, 120.0, VALUE)) > 0)


def test_value_formula():
    r, q, e, tau = 0.7, 0.4, 0.3, 150.0
    expected = VALUE.v_r * r + VALUE.v_q * q - VALUE.v_h * e**2 - VALUE.c_tau * tau / 60
    assert model.value(r, q, e, tau, VALUE) == pytest.approx(expected, rel=1e-12)


def test_allure_and_value_diverge_past_the_appetite():
    """The Goodhart mechanism emerges from the equations: moving an item from the appetite
    toward a + δ raises what pulls (allure) and lowers what helps (value)."""
    a = 0.25
    e = np.linspace(a, a + ALLURE.delta, 13)
    A = model.allure(0.5, e, 0.3, a, ALLURE)
    V = model.value(0.5, 0.5, e, 240.0, VALUE)
    assert np.all(np.diff(A) > 0)
    assert np.all(np.diff(V) < 0)


def test_wellbeing_is_a_sigmoid_of_satisfaction():
    S = np.linspace(-10, 10, 41)
    W = model.wellbeing(S, SAT.kappa)
    assert np.all(np.diff(W) > 0)
    assert np.all((W > 0) & (W < 1))
    assert model.wellbeing(0.0, SAT.kappa) == 0.5
    assert model.wellbeing(2.0, 0.4) == pytest.approx(1 / (1 + math.exp(-0.8)))


# =============================================================================== §2.4 choice
def _direct_choice_probabilities(allures, F, cfg):
    """An independent transcription of DESIGN §2.4 (no max-shift; plain math):
    P(i) = exp(β(A_i + ℓ_k)) / (exp(β·U₀) + Σ_j exp(β(A_j + ℓ_kj))),
    ℓ_k = log(k^-p), U₀ = u₀ + φ_F·F. Returns [P(outside), P(item 1), ..., P(item n)]."""
    u_out = cfg.u0 + cfg.phi_f * F
    terms = [math.exp(cfg.beta * u_out)]
    for k, a in enumerate(allures, start=1):
        ell = math.log(k ** (-cfg.position_exponent))
        terms.append(math.exp(cfg.beta * (a + ell)))
    total = sum(terms)
    return np.array([t / total for t in terms])


@pytest.mark.parametrize(
    "cfg",
    [
        CHOICE,
        ChoiceConfig(beta=0.7, position_exponent=0.8, u0=-1.0, phi_f=2.0),
        ChoiceConfig(beta=3.0, position_exponent=1.5, u0=2.0, phi_f=0.5),
    ],
)
@pytest.mark.parametrize("F", [0.0, 0.4, 2.5])
def test_choice_probabilities_match_the_design_formula(cfg, F):
    rng = np.random.default_rng(7)
    for n in (1, 3, 10, 25):
        A = rng.uniform(-1.0, 5.0, size=n)
        p = model.choice_probabilities(A, F, cfg)
        assert p.shape == (n + 1,)
        np.testing.assert_allclose(p, _direct_choice_probabilities(A, F, cfg), rtol=1e-12)
        assert p.sum() == pytest.approx(1.0, abs=1e-12)


def test_choice_probabilities_position_term_ratio():
    """Equal allure at every position: P(k)/P(1) = exp(β·ℓ_k) = k^(-β·0.8)."""
    n = 10
    p = model.choice_probabilities(np.full(n, 2.0), 0.0, CHOICE)
    k = np.arange(1, n + 1)
    np.testing.assert_allclose(p[1:] / p[1], k ** (-CHOICE.beta * 0.8), rtol=1e-12)
    np.testing.assert_allclose(
        model.position_term(n, CHOICE), np.log(k**-0.8), rtol=1e-12, atol=1e-15
    )


def test_choice_probabilities_are_stable_for_large_utilities():
    A = np.array([400.0, 399.0, -300.0])  # exp(β·A) would overflow without the max-shift
    p = model.choice_probabilities(A, 0.0, CHOICE)
    assert np.all(np.isfinite(p))
    assert p.sum() == pytest.approx(1.0)
    ell2 = -0.8 * math.log(2)
    assert p[1] / p[2] == pytest.approx(math.exp(CHOICE.beta * (1.0 - ell2)))


def test_click_probability_alone_is_the_one_item_slate():
    for A in (-1.0, 2.0, 3.3, 6.0):
        for F in (0.0, 1.2):
            p = model.choice_probabilities(np.array([A]), F, CHOICE)
            assert model.click_probability_alone(A, F, CHOICE) == pytest.approx(p[1], rel=1e-12)


def test_fatigue_raises_the_outside_option():
    F = np.linspace(0, 3, 13)
    assert np.all(np.diff(model.outside_utility(F, CHOICE)) > 0)
    A = np.array([3.5, 3.0, 2.5, 2.0])
    p_out = [model.choice_probabilities(A, f, CHOICE)[0] for f in F]
    assert np.all(np.diff(p_out) > 0)  # tired users click less


def test_sample_choice_boundaries():
    p = np.array([0.25, 0.5, 0.25])  # outside, item 0, item 1
    assert model.sample_choice(p, 1e-12) == -1
    assert model.sample_choice(p, 0.2499) == -1
    assert model.sample_choice(p, 0.2501) == 0
    assert model.sample_choice(p, 0.7499) == 0
    assert model.sample_choice(p, 0.7501) == 1
    assert model.sample_choice(p, 1 - 1e-16) == 1
    # if rounding leaves cumsum(p)[-1] slightly below u, the last item is chosen, not an index
    # past the slate
    assert model.sample_choice(np.array([0.3, 0.3, 0.3999999]), 0.99999999) == 1


def test_choice_frequencies_match_the_logit_formula():
    """Chi-square goodness of fit of sample_choice over 2·10⁵ draws against the §2.4 formula.

    Threshold p > 0.001: a false-failure rate of 0.1% for a correct implementation over
    arbitrary seeds (with this fixed seed the test is deterministic anyway). Every cell has an
    expected count ≥ 5 so the chi-square approximation holds (asserted below)."""
    rng = np.random.default_rng(20240501)
    r = np.array([0.9, 0.8, 0.85, 0.6, 0.7, 0.5, 0.9, 0.4])
    e = np.array([0.1, 0.35, 0.3, 0.05, 0.5, 0.2, 0.33, 0.1])
    b = np.array([0.2, 0.5, 0.3, 0.1, 0.9, 0.4, 0.6, 0.2])
    A = model.allure(r, e, b, 0.2, ALLURE)
    F = 0.5
    p_true = _direct_choice_probabilities(A, F, CHOICE)
    p = model.choice_probabilities(A, F, CHOICE)

    n_draws = 200_000
    counts = np.zeros(p.shape[0], dtype=np.int64)
    for u in rng.random(n_draws):
        counts[model.sample_choice(p, u) + 1] += 1  # index 0 = outside option (-1)

    expected = p_true * n_draws
    assert expected.min() >= 5
    assert stats.chisquare(counts, expected).pvalue > P_MIN

    # Power check (the test can fail): the same counts are decisively rejected against a
    # model without the position term.
    p_flat = _direct_choice_probabilities(A, F, ChoiceConfig(position_exponent=0.0))
    assert stats.chisquare(counts, p_flat * n_draws).pvalue < 1e-12


# =============================================================================== §2.4 watch time
def test_watch_time_formula_and_cap():
    L, A, W = 300.0, 1.0, 0.7
    median = L * math.exp(WATCH.mu + WATCH.alpha_a * A + WATCH.alpha_w * (W - 0.5))
    assert median * math.exp(WATCH.sigma) < L
    assert model.watch_time(L, A, W, 0.0, WATCH) == pytest.approx(median)
    assert model.watch_time(L, A, W, 1.0, WATCH) == pytest.approx(median * math.exp(WATCH.sigma))
    assert model.watch_time(L, A, W, 8.0, WATCH) == L  # τ = min(L, T)
    z = np.linspace(-4, 4, 41)
    tau = np.array([model.watch_time(L, A, W, zi, WATCH) for zi in z])
    assert np.all(tau <= L) and np.all(tau > 0)
    assert np.all(np.diff(tau) >= 0)


def test_watch_time_increases_with_allure_and_wellbeing():
    L = 3000.0  # with z = 0.3 and A ≤ 3, T < L: the cap never binds below
    A = np.linspace(0, 3, 11)
    assert np.all(np.diff([model.watch_time(L, a, 0.5, 0.3, WATCH) for a in A]) > 0)
    W = np.linspace(0.05, 0.95, 10)
    assert np.all(np.diff([model.watch_time(L, 2.0, w, 0.3, WATCH) for w in W]) > 0)


def test_higher_wellbeing_raises_expected_watch_time():
    W = np.linspace(0.01, 0.99, 50)
    ew = model.expected_watch_time(300.0, 2.5, W, WATCH)
    assert np.all(np.diff(ew) > 0)
    ea = model.expected_watch_time(300.0, np.linspace(0, 6, 30), 0.5, WATCH)
    assert np.all(np.diff(ea) > 0)


@pytest.mark.parametrize(
    "L, A, W, cfg",
    [
        (240.0, 3.0, 0.5, WATCH),
        (30.0, 5.0, 0.9, WATCH),
        (3600.0, 0.5, 0.2, WATCH),
        (240.0, 6.0, 0.9, WatchConfig(mu=1.0, sigma=1.3)),  # mostly capped at L
    ],
)
def test_expected_watch_time_matches_numerical_integration(L, A, W, cfg):
    """E[min(L, T)] = ∫ min(L, exp(m + σz)) φ(z) dz, integrated numerically."""
    m = math.log(L) + cfg.mu + cfg.alpha_a * A + cfg.alpha_w * (W - 0.5)
    kink = (math.log(L) - m) / cfg.sigma
    f = lambda z: math.exp(min(math.log(L), m + cfg.sigma * z)) * stats.norm.pdf(z)  # noqa: E731
    below, _ = integrate.quad(f, -np.inf, kink)
    above, _ = integrate.quad(f, kink, np.inf)
    assert model.expected_watch_time(L, A, W, cfg) == pytest.approx(below + above, rel=1e-7)


def test_expected_watch_time_without_noise():
    cfg = WatchConfig(sigma=0.0)
    assert model.expected_watch_time(240.0, 2.0, 0.5, cfg) == pytest.approx(
        240.0 * math.exp(cfg.mu + cfg.alpha_a * 2.0)
    )
    assert model.expected_watch_time(240.0, 9.0, 0.5, cfg) == 240.0


def test_watch_time_sample_mean_matches_expected_watch_time():
    """Monte Carlo over 10⁵ standard normals; tolerance 4 standard errors of the sample mean
    (SE = sample sd / √n; the sampled τ is bounded by L so the CLT applies)."""
    rng = np.random.default_rng(11)
    L, A, W = 240.0, 3.5, 0.6
    z = rng.standard_normal(100_000)
    tau = np.array([model.watch_time(L, A, W, zi, WATCH) for zi in z])
    se = tau.std(ddof=1) / math.sqrt(tau.size)
    assert abs(tau.mean() - model.expected_watch_time(L, A, W, WATCH)) < Z4 * se


# =============================================================================== §2.4 continuation
def test_fatigue_lowers_continuation_probability():
    F = np.linspace(0, 4, 17)
    p = model.continue_probability(2.5, 3.0, F, CONT)
    assert np.all(np.diff(p) < 0)


def test_allure_and_habit_raise_continuation_probability():
    A = np.linspace(-1, 6, 15)
    assert np.all(np.diff(model.continue_probability(A, 0.0, 0.5, CONT)) > 0)
    psi = np.linspace(0, 100, 11)
    assert np.all(np.diff(model.continue_probability(2.0, psi, 0.5, CONT)) > 0)
    A, psi, F = 2.0, 10.0, 0.5
    x = CONT.c0 + CONT.c_a * A + CONT.c_psi * psi - CONT.c_f * F
    assert model.continue_probability(A, psi, F, CONT) == pytest.approx(1 / (1 + math.exp(-x)))


# =============================================================================== §2.5 topic
def test_watched_relevant_item_raises_relevance_and_keeps_unit_norm():
    rng = np.random.default_rng(3)
    for _ in range(50):
        theta = _random_unit(rng)
        x = _unit(theta + rng.normal(scale=1.0, size=theta.size))  # some relevant item
        r = float(theta @ x)
        if r <= 0:
            continue
        before = theta.copy()
        new = model.update_topic(theta, x, r, 0.8, 1.0, TOPIC)
        assert np.array_equal(theta, before)  # not mutated
        assert np.linalg.norm(new) == pytest.approx(1.0, abs=1e-12)
        assert new @ x > r


def test_topic_update_formula():
    theta = _unit(np.arange(1.0, 21.0))
    x = _unit(np.ones(20))
    r, frac, s = float(theta @ x), 0.6, 2.0
    expected = _unit(theta + TOPIC.eta * s * r * frac * x)
    np.testing.assert_allclose(model.update_topic(theta, x, r, frac, s, TOPIC), expected)


def test_unwatched_item_does_not_move_topic():
    theta = _unit(np.arange(1.0, 21.0))
    x = _unit(np.ones(20))
    new = model.update_topic(theta, x, float(theta @ x), 0.0, 1.0, TOPIC)
    np.testing.assert_allclose(new, theta)


def test_susceptibility_and_watch_fraction_scale_the_topic_step():
    theta = _unit(np.r_[1.0, np.zeros(19)])
    x = _unit(np.r_[1.0, 1.0, np.zeros(18)])
    r = float(theta @ x)
    gains = [model.update_topic(theta, x, r, 1.0, s, TOPIC) @ x - r for s in (0.5, 1.0, 2.0, 4.0)]
    assert np.all(np.diff(gains) > 0)
    # small steps: the relevance gain is ≈ linear in s (first order in η·s)
    assert gains[3] / gains[1] == pytest.approx(4.0, rel=0.1)
    fr = [model.update_topic(theta, x, r, f, 1.0, TOPIC) @ x - r for f in (0.1, 0.5, 1.0)]
    assert np.all(np.diff(fr) > 0)


def test_relax_topic_moves_back_toward_theta0_monotonically():
    rng = np.random.default_rng(5)
    theta0 = _random_unit(rng)
    theta = _random_unit(rng)
    tau = TOPIC.relax
    dts = np.array([0.0, 3600.0, 86400.0, 3 * 86400.0, 10 * 86400.0, 60 * 86400.0])
    relaxed = [model.relax_topic(theta, theta0, dt, tau) for dt in dts]
    dist = [np.linalg.norm(t - theta0) for t in relaxed]
    assert dist[0] == pytest.approx(np.linalg.norm(theta - theta0))
    assert np.all(np.diff(dist) < 0)
    assert dist[-1] < 1e-6
    for t in relaxed:
        assert np.linalg.norm(t) == pytest.approx(1.0, abs=1e-12)
    # the formula of the docstring: normalize(θ₀ + (θ - θ₀)·e^{-dt/τ})
    np.testing.assert_allclose(
        relaxed[3], _unit(theta0 + (theta - theta0) * math.exp(-1.0)), rtol=1e-12
    )


# =============================================================================== §2.5 appetite
def test_item_above_appetite_raises_it_and_below_lowers_it():
    a = 0.3
    assert model.update_appetite(a, 0.6, 1.0, 1.0, APPETITE) > a
    assert model.update_appetite(a, 0.1, 1.0, 1.0, APPETITE) < a
    assert model.update_appetite(a, a, 1.0, 1.0, APPETITE) == a


def test_appetite_ratchet_formula_and_asymmetry():
    cfg = APPETITE
    assert cfg.eta_up > cfg.eta_down
    a, d = 0.4, 0.2
    up = model.update_appetite(a, a + d, 1.0, 1.0, cfg) - a
    down = a - model.update_appetite(a, a - d, 1.0, 1.0, cfg)
    assert up == pytest.approx(cfg.eta_up * d)
    assert down == pytest.approx(cfg.eta_down * d)
    assert up > down  # η_up > η_down: same distance, the ratchet goes up faster
    # general formula with s and watch fraction
    s, frac = 2.5, 0.4
    assert model.update_appetite(a, 0.9, frac, s, cfg) == pytest.approx(
        a + cfg.eta_up * s * frac * 0.5
    )
    # the downward step carries neither s nor the watch fraction (DESIGN §2.5)
    assert model.update_appetite(a, 0.1, frac, s, cfg) == pytest.approx(a - cfg.eta_down * 0.3)


def test_susceptibility_scales_the_appetite_step():
    a, e = 0.2, 0.5
    steps = np.array([model.update_appetite(a, e, 1.0, s, APPETITE) - a for s in (1.0, 2.0, 4.0)])
    np.testing.assert_allclose(steps / steps[0], [1.0, 2.0, 4.0], rtol=1e-12)
    fr = np.array([model.update_appetite(a, e, f, 1.0, APPETITE) - a for f in (0.25, 0.5, 1.0)])
    assert np.all(np.diff(fr) > 0)


def test_appetite_stays_in_unit_interval():
    cfg = AppetiteDynamicsConfig(eta_up=5.0, eta_down=5.0)
    assert model.update_appetite(0.9, 1.0, 1.0, 4.0, cfg) == 1.0
    assert model.update_appetite(0.1, 0.0, 1.0, 1.0, cfg) == 0.0


@pytest.mark.parametrize(
    "x, target, tau", [(0.5, 0.2, 10 * 86400.0), (-3.0, 0.0, 86400.0), (2.0, 0.0, 3600.0)]
)
def test_relax_toward_moves_toward_target_monotone_in_dt(x, target, tau):
    dts = tau * np.array([0.0, 0.01, 0.5, 1.0, 3.0, 20.0])
    out = model.relax_toward(x, target, dts, tau)
    gap = np.abs(out - target)
    assert out[0] == pytest.approx(x)
    assert np.all(np.diff(gap) < 0)  # strictly closer the longer the time away
    assert np.all(np.sign(out - target) == np.sign(x - target))  # never overshoots
    np.testing.assert_allclose(out, target + (x - target) * np.exp(-dts / tau), rtol=1e-12)
    # relaxing over dt₁ then dt₂ equals relaxing over dt₁ + dt₂ (split idle periods agree)
    two_steps = model.relax_toward(model.relax_toward(x, target, 5000.0, tau), target, 7000.0, tau)
    assert two_steps == pytest.approx(model.relax_toward(x, target, 12000.0, tau))


# =============================================================================== §2.5 satisfaction
def test_extreme_low_quality_item_lowers_satisfaction():
    V = model.value(0.2, 0.1, 0.9, 300.0, VALUE)  # extreme, low quality, mildly relevant
    assert V < 0
    for S in (-1.0, 0.0, 0.5, 2.0):
        # compared with carrying S over unchanged by a neutral (V = 0) item
        assert model.update_satisfaction(S, V, 0.0, SAT.gamma) < model.update_satisfaction(
            S, 0.0, 0.0, SAT.gamma
        )
    S = 0.5
    new = model.update_satisfaction(S, V, 0.0, SAT.gamma)
    assert new < S
    assert model.wellbeing(new, SAT.kappa) < model.wellbeing(S, SAT.kappa)


def test_mild_relevant_quality_item_raises_satisfaction():
    V = model.value(0.9, 0.8, 0.05, 180.0, VALUE)
    assert V > 0
    assert model.update_satisfaction(0.0, V, 0.0, SAT.gamma) > 0.0


def test_satisfaction_update_formula():
    assert model.update_satisfaction(2.0, -0.5, 0.1, 0.8) == pytest.approx(0.8 * 2.0 - 0.5 + 0.1)
    V = np.linspace(-2, 2, 9)
    assert np.all(np.diff(model.update_satisfaction(1.0, V, 0.0, SAT.gamma)) > 0)


def test_satisfaction_decays_toward_zero_between_sessions():
    for S in (-2.0, 3.0):
        out = model.relax_toward(S, 0.0, np.array([0.0, 3600.0, 86400.0, 7 * 86400.0]), SAT.relax)
        assert np.all(np.diff(np.abs(out)) < 0)
        assert np.all(np.sign(out) == np.sign(S))


# =============================================================================== §2.5 habit
def test_habit_adds_allure_and_decays_with_time():
    tau = 12 * 3600.0
    assert model.update_habit(2.0, 1.5, 0.0, tau) == pytest.approx(3.5)
    psi = 4.0
    dts = [0.0, 3600.0, tau, 5 * tau]
    decayed = [model.update_habit(psi, 0.0, dt, tau) for dt in dts]
    assert np.all(np.diff(decayed) < 0)
    assert decayed[2] == pytest.approx(psi / math.e)
    A = np.linspace(0, 3, 7)
    assert np.all(np.diff([model.update_habit(psi, a, 3600.0, tau) for a in A]) > 0)


def test_fatigue_accumulates_watch_hours_and_lowers_engagement():
    """F ← F + τ/3600 (done by the engine); the model reads F in hours: one hour of fatigue
    raises U₀ by φ_F and lowers the continuation logit by c_F."""
    assert model.outside_utility(1.0, CHOICE) - model.outside_utility(0.0, CHOICE) == (
        pytest.approx(CHOICE.phi_f)
    )
    logit = lambda p: math.log(p / (1 - p))  # noqa: E731
    assert logit(model.continue_probability(2.0, 0.0, 0.0, CONT)) - logit(
        model.continue_probability(2.0, 0.0, 1.0, CONT)
    ) == pytest.approx(CONT.c_f)


# =============================================================================== arrays
def test_elementwise_functions_broadcast_like_their_scalar_versions():
    rng = np.random.default_rng(2)
    n = 7
    r = rng.uniform(-1, 1, n)
    e, b, a, q, W, frac = (rng.uniform(0, 1, n) for _ in range(6))
    tau, L = rng.uniform(1, 600, n), rng.uniform(15, 1200, n)
    A, S = rng.uniform(0, 5, n), rng.normal(size=n)
    psi, F, s = rng.uniform(0, 20, n), rng.uniform(0, 2, n), rng.uniform(0.5, 4, n)
    cases = [
        (model.grip, (e, a, ALLURE)),
        (model.allure, (r, e, b, a, ALLURE)),
        (model.value, (r, q, e, tau, VALUE)),
        (model.wellbeing, (S, SAT.kappa)),
        (model.expected_watch_time, (L, A, W, WATCH)),
        (model.continue_probability, (A, psi, F, CONT)),
        (model.update_appetite, (a, e, frac, s, APPETITE)),
        (model.relax_toward, (a, e, tau, 300.0)),
        (model.update_satisfaction, (S, r, q, SAT.gamma)),
        (model.click_probability_alone, (A, F, CHOICE)),
    ]
    for fn, args in cases:
        vec = fn(*args)
        assert np.shape(vec) == (n,), fn.__name__
        for i in range(n):
            scalar_args = [x[i] if isinstance(x, np.ndarray) else x for x in args]
            assert vec[i] == pytest.approx(float(fn(*scalar_args)), rel=1e-12), fn.__name__


# =============================================================================== catalog (§2.1)
CATALOG_START, CATALOG_END = -7 * 86400.0, 14 * 86400.0


def _catalog(cfg: CatalogConfig, seed: int = 42):
    ss = np.random.SeedSequence(seed).spawn(3)
    centers = make_topic_centers(cfg, np.random.default_rng(ss[0]))
    cat = generate_catalog(
        cfg, centers, CATALOG_START, CATALOG_END,
        np.random.default_rng(ss[1]), np.random.default_rng(ss[2]),
    )
    return centers, cat


@pytest.fixture(scope="module")
def catalog_default():
    return _catalog(CatalogConfig())


def test_catalog_topics_are_unit_norm(catalog_default):
    centers, cat = catalog_default
    assert centers.shape == (5, 20)
    np.testing.assert_allclose(np.linalg.norm(centers, axis=1), 1.0, rtol=1e-12)
    assert cat.topics.shape == (cat.n_items, 20)
    np.testing.assert_allclose(np.linalg.norm(cat.topics, axis=1), 1.0, rtol=1e-12)
    np.testing.assert_allclose(np.linalg.norm(cat.topics_obs, axis=1), 1.0, rtol=1e-12)
    # items sit around their cluster center (noise 0.05/topic, ≈0.22 in norm): nearly all are
    # closest to their own center (a loose sanity bound, not a statistical tolerance)
    sims = cat.topics @ centers.T
    assert np.mean(np.argmax(sims, axis=1) == cat.cluster) > 0.95


def test_catalog_sorted_by_upload_time_and_upload_count(catalog_default):
    cfg = CatalogConfig()
    _, cat = catalog_default
    assert np.all(np.diff(cat.upload_time) >= 0)
    assert cat.upload_time[0] >= CATALOG_START - cfg.backlog
    assert cat.upload_time[-1] < CATALOG_END
    assert cat.n_available(CATALOG_START - 1e-9) == cfg.n_items  # backlog is before the start
    # Poisson uploads: count ~ Poisson(μ), μ = rate·(end - start); tolerance 4·√μ
    n_new = cat.n_items - cfg.n_items
    mu = cfg.upload_rate * (CATALOG_END - CATALOG_START)
    assert abs(n_new - mu) < Z4 * math.sqrt(mu)
    # given their count, Poisson arrival times are uniform on [start, end): KS test
    new_times = cat.upload_time[cfg.n_items:]
    u = (new_times - CATALOG_START) / (CATALOG_END - CATALOG_START)
    assert stats.kstest(u, "uniform").pvalue > P_MIN


def test_catalog_extremeness_follows_its_beta(catalog_default):
    """e ∈ [0, 1] with mean a/(a+b); tolerance 4 SE with SE = sd_Beta/√n,
    sd_Beta² = ab / ((a+b)²(a+b+1)). Plus a KS test against the Beta itself."""
    a, b = CatalogConfig().extremeness
    _, cat = catalog_default
    e = cat.extremeness
    assert np.all((e >= 0) & (e <= 1))
    mean = a / (a + b)
    sd = math.sqrt(a * b / ((a + b) ** 2 * (a + b + 1)))
    assert abs(e.mean() - mean) < Z4 * sd / math.sqrt(e.size)
    assert stats.kstest(e, stats.beta(a, b).cdf).pvalue > P_MIN
    assert np.all((cat.classifier >= 0) & (cat.classifier <= 1))
    assert np.all((cat.clickbait >= 0) & (cat.clickbait <= 1))


def test_catalog_quality_is_anti_correlated_with_extremeness(catalog_default):
    """Pearson correlation of (e, q). Its standard error is about (1 - ρ²)/√n ≤ 1/√n, so
    requiring ρ̂ < -4/√n asks for a correlation below 0 by 4 standard errors (a one-sided
    test of ρ ≥ 0 at level 3e-5). The defaults give ρ ≈ -0.6·sd_e/sd_q ≈ -0.36 (clipping
    aside), about 30 SE below that line, so a correct catalog essentially never fails."""
    _, cat = catalog_default
    q, e = cat.quality, cat.extremeness
    assert np.all((q >= 0) & (q <= 1))
    rho = np.corrcoef(e, q)[0, 1]
    assert rho + Z4 / math.sqrt(e.size) < 0


def test_catalog_length_is_clipped_log_normal():
    """With min/max near the median clipping really happens (≈16% of items each side at
    log-sd 0.7). Shares are binomial: tolerance 4·√(p(1-p)/n). Clipping leaves the median
    alone, so the share below 240 s is ½."""
    cfg = CatalogConfig(length=LengthConfig(median=240.0, log_sd=0.7, min=120.0, max=480.0))
    _, cat = _catalog(cfg, seed=9)
    L = cat.length
    assert L.min() == 120.0 and L.max() == 480.0
    assert np.all((L >= 120.0) & (L <= 480.0))
    share_clipped_low = np.mean(L == 120.0)
    p_low = stats.norm.cdf(math.log(120 / 240) / 0.7)
    assert abs(share_clipped_low - p_low) < Z4 * math.sqrt(p_low * (1 - p_low) / L.size)
    share_below = np.mean(L < 240.0)
    assert abs(share_below - 0.5) < Z4 * math.sqrt(0.25 / L.size)


def test_catalog_is_reproducible_from_its_seeds():
    cfg = CatalogConfig(n_items=500)
    _, c1 = _catalog(cfg, seed=1)
    _, c2 = _catalog(cfg, seed=1)
    _, c3 = _catalog(cfg, seed=2)
    np.testing.assert_array_equal(c1.topics, c2.topics)
    np.testing.assert_array_equal(c1.upload_time, c2.upload_time)
    assert not np.array_equal(c1.extremeness[:500], c3.extremeness[:500])


# =============================================================================== population (§2.2)
@pytest.fixture(scope="module")
def population_large():
    sc = Scenario(name="t", policies=["random"], population=PopulationConfig(n_users=20_000))
    rng = np.random.default_rng(123)
    centers = make_topic_centers(sc.catalog, np.random.default_rng(122))
    return sc, centers, generate_population(sc, centers, rng)


def test_population_vulnerable_share(population_large):
    """Vulnerable count ~ Binomial(n, p): tolerance 4·√(p(1-p)/n) on the share."""
    sc, _, pop = population_large
    p, n = sc.population.vulnerable_share, pop.n_users
    assert abs(pop.vulnerable.mean() - p) < Z4 * math.sqrt(p * (1 - p) / n)
    assert np.all(pop.susceptibility[pop.vulnerable] == sc.population.vulnerable_susceptibility)
    # others: log-normal around 1 → mean log s = 0 ± 4·log_sd/√n_others
    log_s = np.log(pop.susceptibility[~pop.vulnerable])
    sd = sc.population.susceptibility_log_sd
    assert abs(log_s.mean()) < Z4 * sd / math.sqrt(log_s.size)
    # the SE of a normal sample's sd is ≈ sd/√(2n): relative tolerance 4/√(2n) (≈ 2% here)
    assert log_s.std(ddof=1) == pytest.approx(sd, rel=Z4 / math.sqrt(2 * log_s.size))


def test_population_initial_state(population_large):
    sc, centers, pop = population_large
    np.testing.assert_allclose(np.linalg.norm(pop.theta0, axis=1), 1.0, rtol=1e-12)
    np.testing.assert_array_equal(pop.theta, pop.theta0)
    assert pop.theta is not pop.theta0
    np.testing.assert_array_equal(pop.appetite, pop.appetite0)
    a, b = sc.population.appetite
    assert np.all((pop.appetite0 >= 0) & (pop.appetite0 <= 1))
    sd = math.sqrt(a * b / ((a + b) ** 2 * (a + b + 1)))
    assert abs(pop.appetite0.mean() - a / (a + b)) < Z4 * sd / math.sqrt(pop.n_users)
    assert np.all(pop.satisfaction == sc.population.initial_satisfaction)
    assert np.all(pop.habit == 0) and np.all(pop.fatigue == 0)
    assert not pop.churned.any()
    # users sit around their home cluster (loose sanity bound, as for items)
    sims = pop.theta0 @ centers.T
    assert np.mean(np.argmax(sims, axis=1) == pop.home_cluster) > 0.95


def test_population_copy_is_independent(population_large):
    _, _, pop = population_large
    other = pop.copy()
    other.appetite[0] += 1.0
    other.theta[0, 0] += 1.0
    assert other.appetite[0] != pop.appetite[0]
    assert other.theta[0, 0] != pop.theta[0, 0]
