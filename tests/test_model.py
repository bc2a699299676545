"""The default user model's equations (recsim.users.formulas) and components
(recsim.users.default), plus catalog and population sanity.

Every test calls what the engines call: the array functions of ``recsim.users.formulas`` and
the components of ``recsim.users.default`` through their methods (``score``, ``value``,
``probabilities``, ``watch_time``, ``consume``, ``relax``, ``after_watch``, ...), on the
shapes the engines use (state rows ``(B,)``, slates ``(B, n)``, one watched item per user
``(B,)``).

* Formulas against the documented equations and hand computations, and their directions of
  effect (the per-component direction tests of the hidden-state updates are in
  ``test_hidden_state_directions.py``).
* Choice: the logit against an independent transcription of the formula, and a chi-square
  goodness-of-fit test of sampled choice frequencies.
* Watch time: the closed-form expectation against numerical integration and Monte Carlo.
* Batch invariance: a user's numbers are the same bits alone or inside a larger batch, in any
  order (both engines rely on it: they batch users differently).

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

from recsim.catalog import Catalog, generate_catalog, make_topic_centers, unit_rows
from recsim.config import (
    AppetiteDynamicsConfig,
    BehaviourConfig,
    CatalogConfig,
    ChoiceConfig,
    LengthConfig,
    PopulationConfig,
    Scenario,
    SurveyConfig,
    WatchConfig,
)
from recsim.users import formulas as f
from recsim.users.components import SessionSummary
from recsim.users.default import (
    Allure,
    BetweenSessions,
    Consumption,
    Continuation,
    LinearSurvey,
    LogitChoice,
    LogNormalWatch,
    PopulationSampler,
    Value,
)
from recsim.users.model import build_user_model
from recsim.users.state import Draws, ItemView, StateView, UserState

BEHAVIOUR = BehaviourConfig()
ALLURE = BEHAVIOUR.allure
VALUE = BEHAVIOUR.value
CHOICE = BEHAVIOUR.choice
WATCH = BEHAVIOUR.watch
CONT = BEHAVIOUR.continuation
TOPIC = BEHAVIOUR.topic
APPETITE = BEHAVIOUR.appetite
SAT = BEHAVIOUR.satisfaction
HABIT = BEHAVIOUR.habit

#: the default model, as both engines build it from a scenario
MODEL = build_user_model(Scenario(name="t", policies=["random"]))

Z4 = 4.0  # z-tolerance: two-sided false-failure probability 6.3e-5 for a correct implementation
P_MIN = 1e-3  # p-value threshold: false-failure rate 0.1% for a correct implementation
HOUR, DAY = 3600.0, 86400.0


def _unit(v):
    v = np.asarray(v, dtype=float)
    return v / np.linalg.norm(v)


def _random_unit(rng, k=20):
    return _unit(rng.normal(size=k))


def _view(**arrays) -> StateView:
    """A batch's state view (``wellbeing`` derived from ``satisfaction`` as the model does)."""
    return StateView.of(
        {k: np.asarray(v) for k, v in arrays.items()}, {"wellbeing": MODEL.wellbeing}
    )


def _catalog(topics, extremeness, quality, clickbait, length) -> Catalog:
    """A hand-made catalog (true = observable attributes; ids are row numbers)."""
    topics = np.atleast_2d(np.asarray(topics, dtype=float))
    n = topics.shape[0]
    col = lambda x: np.broadcast_to(np.asarray(x, dtype=float), (n,)).copy()
    e = col(extremeness)
    return Catalog(
        topics=topics,
        cluster=np.zeros(n, dtype=np.int64),
        extremeness=e,
        quality=col(quality),
        clickbait=col(clickbait),
        length=col(length),
        creator=np.zeros(n, dtype=np.int64),
        upload_time=np.zeros(n),
        topics_obs=topics.copy(),
        classifier=e.copy(),
    )


def _satisfaction_for(W, kappa=SAT.kappa):
    """The S whose wellbeing sigmoid(κ·S) is W."""
    return math.log(W / (1 - W)) / kappa


# =============================================================================== allure
def test_grip_peaks_just_past_the_appetite():
    d_, w_ = ALLURE.delta, ALLURE.omega
    for a in (0.0, 0.2, 0.5, 0.8):
        grid = np.linspace(-0.5, 1.5, 20001)  # step 1e-4
        g = f.grip(grid, a, d_, w_)
        assert grid[np.argmax(g)] == pytest.approx(a + d_, abs=1e-4)
        assert f.grip(a + d_, a, d_, w_) == pytest.approx(1.0)
        # content exactly at the appetite grips less than content just past it (δ > 0) ...
        assert f.grip(a, a, d_, w_) < f.grip(a + d_, a, d_, w_)
        # ... and far more extreme content repels (3ω past the peak: exp(-4.5) ≈ 0.011)
        assert f.grip(a + d_ + 3 * w_, a, d_, w_) == pytest.approx(math.exp(-4.5))
        # symmetric Gaussian bump of width ω around a + δ
        assert f.grip(a + d_ + 0.07, a, d_, w_) == pytest.approx(f.grip(a + d_ - 0.07, a, d_, w_))
        assert f.grip(a + d_ + w_, a, d_, w_) == pytest.approx(math.exp(-0.5))


def test_allure_increases_with_relevance_and_clickbait():
    r = np.linspace(-1, 1, 21)
    A = f.allure(r, 0.3, 0.4, 0.2, ALLURE)
    assert np.all(np.diff(A) > 0)
    np.testing.assert_allclose(np.diff(A), ALLURE.w_r * np.diff(r), rtol=1e-12)
    b = np.linspace(0, 1, 11)
    assert np.all(np.diff(f.allure(0.5, 0.3, b, 0.2, ALLURE)) > 0)


def test_allure_formula():
    r, e, b, a = 0.6, 0.35, 0.2, 0.25
    g = math.exp(-((e - a - ALLURE.delta) ** 2) / (2 * ALLURE.omega**2))
    expected = ALLURE.w_r * r + ALLURE.w_e * g + ALLURE.w_c * b
    assert f.allure(r, e, b, a, ALLURE) == pytest.approx(expected, rel=1e-12)


def test_allure_follows_the_grip_in_extremeness():
    a = 0.2
    e = np.linspace(0, 1, 1001)
    A = f.allure(0.5, e, 0.3, a, ALLURE)
    assert e[np.argmax(A)] == pytest.approx(a + ALLURE.delta, abs=1e-3)


def test_allure_component_scores_a_slate_per_user():
    """Allure.score on slates (B, n): relevance θ_b·x_j and allure with each user's own
    appetite, against a hand computation item by item."""
    rng = np.random.default_rng(4)
    K, B, n = 6, 5, 4
    topics = unit_rows(rng.normal(size=(12, K)))
    cat = _catalog(
        topics, rng.uniform(0, 1, 12), rng.uniform(0, 1, 12), rng.uniform(0, 1, 12), 200.0
    )
    theta = unit_rows(rng.normal(size=(B, K)))
    a = rng.uniform(0, 0.6, B)
    slates = np.stack([rng.choice(12, n, replace=False) for _ in range(B)])
    terms = MODEL.allure.score(_view(theta=theta, appetite=a), ItemView(cat, slates))
    assert terms["relevance"].shape == terms["allure"].shape == (B, n)
    for b in range(B):
        for j in range(n):
            i = slates[b, j]
            r = float(theta[b] @ topics[i])
            assert terms["relevance"][b, j] == pytest.approx(r, rel=1e-12, abs=1e-15)
            A = f.allure(r, cat.extremeness[i], cat.clickbait[i], a[b], ALLURE)
            assert terms["allure"][b, j] == pytest.approx(A, rel=1e-12)
    # one item per user (B,): the same numbers as the slate's first column
    one = MODEL.allure.score(_view(theta=theta, appetite=a), ItemView(cat, slates[:, 0]))
    np.testing.assert_array_equal(one["allure"], terms["allure"][:, 0])


# =============================================================================== value
def test_value_decreases_with_extremeness_and_watch_time():
    e = np.linspace(0, 1, 101)
    assert np.all(np.diff(f.value(0.5, 0.5, e, 300.0, VALUE)) < 0)
    tau = np.linspace(0, 3600, 61)
    assert np.all(np.diff(f.value(0.5, 0.5, 0.2, tau, VALUE)) < 0)
    # c_τ is per *minute*: one extra minute costs exactly c_τ
    assert f.value(0.5, 0.5, 0.2, 60.0, VALUE) - f.value(0.5, 0.5, 0.2, 120.0, VALUE) == (
        pytest.approx(VALUE.c_tau)
    )


def test_value_increases_with_relevance_and_quality():
    r = np.linspace(-1, 1, 21)
    assert np.all(np.diff(f.value(r, 0.5, 0.2, 120.0, VALUE)) > 0)
    q = np.linspace(0, 1, 11)
    assert np.all(np.diff(f.value(0.5, q, 0.2, 120.0, VALUE)) > 0)


def test_value_formula_and_component():
    r, q, e, tau = 0.7, 0.4, 0.3, 150.0
    expected = VALUE.v_r * r + VALUE.v_q * q - VALUE.v_h * e**2 - VALUE.c_tau * tau / 60
    assert f.value(r, q, e, tau, VALUE) == pytest.approx(expected, rel=1e-12)
    # Value.value reads the relevance term and the item's quality and extremeness
    cat = _catalog(np.eye(3), [0.3, 0.6, 0.1], [0.4, 0.9, 0.2], 0.5, 300.0)
    ids = np.array([0, 1, 2])
    rel = np.array([0.7, -0.2, 0.5])
    taus = np.array([150.0, 30.0, 600.0])
    V = MODEL.value.value(
        _view(satisfaction=np.zeros(3)), ItemView(cat, ids), {"relevance": rel}, taus
    )
    hand = [
        VALUE.v_r * rel[k]
        + VALUE.v_q * cat.quality[k]
        - VALUE.v_h * cat.extremeness[k] ** 2
        - VALUE.c_tau * taus[k] / 60
        for k in range(3)
    ]
    np.testing.assert_allclose(V, hand, rtol=1e-12)


def test_allure_and_value_diverge_past_the_appetite():
    """The Goodhart mechanism emerges from the equations: moving an item from the appetite
    toward a + δ raises what pulls (allure) and lowers what helps (value)."""
    a = 0.25
    e = np.linspace(a, a + ALLURE.delta, 13)
    assert np.all(np.diff(f.allure(0.5, e, 0.3, a, ALLURE)) > 0)
    assert np.all(np.diff(f.value(0.5, 0.5, e, 240.0, VALUE)) < 0)


def test_wellbeing_is_a_sigmoid_of_satisfaction():
    S = np.linspace(-10, 10, 41)
    W = f.wellbeing(S, SAT.kappa)
    assert np.all(np.diff(W) > 0)
    assert np.all((W > 0) & (W < 1))
    assert f.wellbeing(0.0, SAT.kappa) == 0.5
    assert f.wellbeing(2.0, 0.4) == pytest.approx(1 / (1 + math.exp(-0.8)))
    # the model's derived wellbeing is the transition component's: W = sigmoid(κ·S)
    np.testing.assert_array_equal(_view(satisfaction=S)["wellbeing"], W)
    np.testing.assert_array_equal(MODEL.transition.wellbeing(_view(satisfaction=S)), W)


# =============================================================================== choice
def _direct_choice_probabilities(allures, F, cfg):
    """An independent transcription of the logit (no max-shift; plain math):
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
def test_choice_probabilities_match_the_formula(cfg):
    """LogitChoice.probabilities on a batch of users (one fatigue per row) against the
    formula row by row."""
    rng = np.random.default_rng(7)
    choice = LogitChoice(cfg)
    F = np.array([0.0, 0.4, 2.5])
    for n in (1, 3, 10, 25):
        A = rng.uniform(-1.0, 5.0, size=(F.size, n))
        p = choice.probabilities(_view(fatigue=F), {"allure": A})
        assert p.shape == (F.size, n + 1)
        for b in range(F.size):
            np.testing.assert_allclose(
                p[b], _direct_choice_probabilities(A[b], F[b], cfg), rtol=1e-12
            )
        np.testing.assert_allclose(p.sum(axis=1), 1.0, atol=1e-12)


def test_choice_probabilities_position_term_ratio():
    """Equal allure at every position: P(k)/P(1) = exp(β·ℓ_k) = k^(-β·0.8)."""
    n = 10
    p = MODEL.choice.probabilities(_view(fatigue=[0.0]), {"allure": np.full((1, n), 2.0)})[0]
    k = np.arange(1, n + 1)
    np.testing.assert_allclose(p[1:] / p[1], k ** (-CHOICE.beta * 0.8), rtol=1e-12)
    np.testing.assert_allclose(f.position_term(n, 0.8), np.log(k**-0.8), rtol=1e-12, atol=1e-15)


def test_choice_probabilities_are_stable_for_large_utilities():
    A = np.array([[400.0, 399.0, -300.0]])  # exp(β·A) would overflow without the max-shift
    p = MODEL.choice.probabilities(_view(fatigue=[0.0]), {"allure": A})[0]
    assert np.all(np.isfinite(p))
    assert p.sum() == pytest.approx(1.0)
    ell2 = -0.8 * math.log(2)
    assert p[1] / p[2] == pytest.approx(math.exp(CHOICE.beta * (1.0 - ell2)))


def test_click_probability_alone_is_the_one_item_slate():
    """UserModel.click_probability_alone (the oracles) is the choice model on one-item
    slates, for every (user, item)."""
    A = np.array([[-1.0, 2.0, 3.3, 6.0], [0.5, 2.0, 4.0, -3.0]])
    F = np.array([0.0, 1.2])
    alone = MODEL.click_probability_alone(_view(fatigue=F), {"allure": A})
    assert alone.shape == A.shape
    for b in range(2):
        for j in range(A.shape[1]):
            p = _direct_choice_probabilities([A[b, j]], F[b], CHOICE)
            assert alone[b, j] == pytest.approx(p[1], rel=1e-12)


def test_fatigue_raises_the_outside_option():
    F = np.linspace(0, 3, 13)
    assert np.all(np.diff(f.outside_utility(F, CHOICE.u0, CHOICE.phi_f)) > 0)
    A = np.tile([3.5, 3.0, 2.5, 2.0], (F.size, 1))
    p_out = MODEL.choice.probabilities(_view(fatigue=F), {"allure": A})[:, 0]
    assert np.all(np.diff(p_out) > 0)  # tired users click less


def test_sample_choice_boundaries():
    p = np.array([[0.25, 0.5, 0.25]])  # outside, item 0, item 1
    cases = [(1e-12, -1), (0.2499, -1), (0.2501, 0), (0.7499, 0), (0.7501, 1), (1 - 1e-16, 1)]
    u = np.array([c[0] for c in cases])
    got = f.sample_choice(np.repeat(p, len(cases), axis=0), u)
    np.testing.assert_array_equal(got, [c[1] for c in cases])
    # if rounding leaves the cumulative sum slightly below u, the last item is chosen, not an
    # index past the slate
    assert f.sample_choice(np.array([[0.3, 0.3, 0.3999999]]), np.array([0.99999999]))[0] == 1


def test_choice_frequencies_match_the_logit_formula():
    """Chi-square goodness of fit of the engine's choice (LogitChoice.probabilities, then
    sample_choice on each user's counter-based "choice" uniform) over 2·10⁵ users with the
    same slate, against the formula.

    Threshold p > 0.001: a false-failure rate of 0.1% for a correct implementation over
    arbitrary seeds (with this fixed seed the test is deterministic anyway). Every cell has an
    expected count ≥ 5 so the chi-square approximation holds (asserted below)."""
    r = np.array([0.9, 0.8, 0.85, 0.6, 0.7, 0.5, 0.9, 0.4])
    e = np.array([0.1, 0.35, 0.3, 0.05, 0.5, 0.2, 0.33, 0.1])
    b = np.array([0.2, 0.5, 0.3, 0.1, 0.9, 0.4, 0.6, 0.2])
    A = f.allure(r, e, b, 0.2, ALLURE)
    F = 0.5
    p_true = _direct_choice_probabilities(A, F, CHOICE)

    n_users = 200_000
    users = np.arange(n_users)
    probs = MODEL.choice.probabilities(
        _view(fatigue=np.full(n_users, F)), {"allure": np.tile(A, (n_users, 1))}
    )
    u = Draws.for_users(20240501, ("choice",), users).uniform("choice")
    counts = np.bincount(f.sample_choice(probs, u) + 1, minlength=A.size + 1)  # 0 = outside

    expected = p_true * n_users
    assert expected.min() >= 5
    assert stats.chisquare(counts, expected).pvalue > P_MIN

    # Power check (the test can fail): the same counts are decisively rejected against a
    # model without the position term.
    p_flat = _direct_choice_probabilities(A, F, ChoiceConfig(position_exponent=0.0))
    assert stats.chisquare(counts, p_flat * n_users).pvalue < 1e-12


# =============================================================================== watch time
def test_watch_time_formula_and_cap():
    L, A, W = 300.0, 1.0, 0.7
    logL = math.log(L)
    median = L * math.exp(WATCH.mu + WATCH.alpha_a * A + WATCH.alpha_w * (W - 0.5))
    assert median * math.exp(WATCH.sigma) < L
    assert f.watch_log_mean(logL, A, W, WATCH) == pytest.approx(math.log(median))
    assert f.watch_time(L, logL, A, W, 0.0, WATCH) == pytest.approx(median)
    assert f.watch_time(L, logL, A, W, 1.0, WATCH) == pytest.approx(median * math.exp(WATCH.sigma))
    assert f.watch_time(L, logL, A, W, 8.0, WATCH) == L  # τ = min(L, T)
    z = np.linspace(-4, 4, 41)
    tau = f.watch_time(L, logL, A, W, z, WATCH)
    assert np.all(tau <= L) and np.all(tau > 0)
    assert np.all(np.diff(tau) >= 0)


def test_watch_time_increases_with_allure_and_wellbeing():
    L = 3000.0  # with z = 0.3 and A ≤ 3, T < L: the cap never binds below
    logL = math.log(L)
    A = np.linspace(0, 3, 11)
    assert np.all(np.diff(f.watch_time(L, logL, A, 0.5, 0.3, WATCH)) > 0)
    W = np.linspace(0.05, 0.95, 10)
    assert np.all(np.diff(f.watch_time(L, logL, 2.0, W, 0.3, WATCH)) > 0)


def test_higher_wellbeing_raises_expected_watch_time():
    L, logL = 300.0, math.log(300.0)
    W = np.linspace(0.01, 0.99, 50)
    assert np.all(np.diff(f.expected_watch_time(L, logL, 2.5, W, WATCH)) > 0)
    assert np.all(np.diff(f.expected_watch_time(L, logL, np.linspace(0, 6, 30), 0.5, WATCH)) > 0)
    # through the component: users with higher satisfaction expect to watch longer
    S = np.linspace(-5, 5, 11)
    cat = _catalog(np.eye(2)[:1], 0.2, 0.5, 0.5, L)
    ew = MODEL.response.expected_watch_time(
        _view(satisfaction=S),
        ItemView(cat, np.zeros((11, 1), dtype=np.int64)),
        {"allure": np.full((11, 1), 2.5)},
    )
    assert ew.shape == (11, 1)
    assert np.all(np.diff(ew[:, 0]) > 0)


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
    g = lambda z: math.exp(min(math.log(L), m + cfg.sigma * z)) * stats.norm.pdf(z)
    below, _ = integrate.quad(g, -np.inf, kink)
    above, _ = integrate.quad(g, kink, np.inf)
    assert f.expected_watch_time(L, math.log(L), A, W, cfg) == pytest.approx(
        below + above, rel=1e-7
    )


def test_expected_watch_time_without_noise():
    cfg = WatchConfig(sigma=0.0)
    L, logL = 240.0, math.log(240.0)
    assert f.expected_watch_time(L, logL, 2.0, 0.5, cfg) == pytest.approx(
        L * math.exp(cfg.mu + cfg.alpha_a * 2.0)
    )
    assert f.expected_watch_time(L, logL, 9.0, 0.5, cfg) == L


def test_capped_lognormal_mean_with_an_array_of_scales():
    """The array form of s (used by the choc/kale response) agrees with the scalar form,
    including s = 0 (no noise: min(L, e^m))."""
    cap = np.array([240.0, 240.0, 60.0, 1000.0])
    m = np.array([5.0, 5.0, 3.0, 8.0])
    s = np.array([0.8, 0.0, 1.3, 0.0])
    got = f.capped_lognormal_mean(cap, np.log(cap), m, s)
    for k in range(4):
        one = f.capped_lognormal_mean(cap[k], math.log(cap[k]), m[k], float(s[k]))
        assert got[k] == pytest.approx(one, rel=1e-12)
    assert got[1] == pytest.approx(min(240.0, math.exp(5.0)))
    assert got[3] == 1000.0


def test_watch_time_sample_mean_matches_expected_watch_time():
    """LogNormalWatch.watch_time over 10⁵ users (counter-based "watch" normals) against
    LogNormalWatch.expected_watch_time; tolerance 4 standard errors of the sample mean
    (SE = sample sd / √n; the sampled τ is bounded by L so the CLT applies)."""
    n = 100_000
    L, A, W = 240.0, 3.5, 0.6
    cat = _catalog(np.eye(2)[:1], 0.2, 0.5, 0.5, L)
    state = _view(satisfaction=np.full(n, _satisfaction_for(W)))
    items = ItemView(cat, np.zeros(n, dtype=np.int64))
    terms = {"allure": np.full(n, A)}
    tau = MODEL.response.watch_time(
        state, items, terms, Draws.for_users(11, ("watch",), np.arange(n))
    )
    assert tau.shape == (n,) and np.all((tau > 0) & (tau <= L))
    expected = MODEL.response.expected_watch_time(state, items, terms)
    assert expected[0] == pytest.approx(
        f.expected_watch_time(L, math.log(L), A, W, WATCH), rel=1e-12
    )
    se = tau.std(ddof=1) / math.sqrt(n)
    assert abs(tau.mean() - expected[0]) < Z4 * se
    # power check: ignoring the cap (E[T] = e^{m + σ²/2}) is rejected by the same sample
    m = f.watch_log_mean(math.log(L), A, W, WATCH)
    assert abs(tau.mean() - math.exp(m + WATCH.sigma**2 / 2)) > 10 * se


# =============================================================================== continuation
def test_fatigue_lowers_continuation_probability():
    F = np.linspace(0, 4, 17)
    assert np.all(np.diff(f.continue_probability(2.5, 3.0, F, CONT)) < 0)


def test_allure_and_habit_raise_continuation_probability():
    A = np.linspace(-1, 6, 15)
    assert np.all(np.diff(f.continue_probability(A, 0.0, 0.5, CONT)) > 0)
    psi = np.linspace(0, 100, 11)
    assert np.all(np.diff(f.continue_probability(2.0, psi, 0.5, CONT)) > 0)
    A, psi, F = 2.0, 10.0, 0.5
    x = CONT.c0 + CONT.c_a * A + CONT.c_psi * psi - CONT.c_f * F
    assert f.continue_probability(A, psi, F, CONT) == pytest.approx(1 / (1 + math.exp(-x)))


def test_continuation_frequencies():
    """Continuation.after_watch continues with probability sigmoid(c₀ + c_A·A + c_ψ·ψ − c_F·F)
    and after_no_click leaves with probability p_leave_no_click: shares over 10⁵ users are
    binomial, tolerance 4·√(p(1−p)/n)."""
    n = 100_000
    A, psi, F = 1.0, 20.0, 0.6
    state = _view(habit=np.full(n, psi), fatigue=np.full(n, F))
    draws = Draws.for_users(3, Continuation.streams, np.arange(n))
    goes_on, updates = MODEL.session.after_watch(
        state, None, {"allure": np.full(n, A)}, np.full(n, 60.0), np.zeros(n), draws
    )
    assert updates == {} and goes_on.dtype == bool
    p = float(f.continue_probability(A, psi, F, CONT))
    assert 0.2 < p < 0.8
    assert abs(goes_on.mean() - p) < Z4 * math.sqrt(p * (1 - p) / n)
    stays, _ = MODEL.session.after_no_click(state, draws)
    q = 1 - CONT.p_leave_no_click
    assert abs(stays.mean() - q) < Z4 * math.sqrt(q * (1 - q) / n)


# =============================================================================== topic
def test_watched_relevant_item_raises_relevance_and_keeps_unit_norm():
    rng = np.random.default_rng(3)
    theta = unit_rows(rng.normal(size=(200, 20)))
    x = unit_rows(theta + rng.normal(size=theta.shape))  # some relevant items
    r = _relevance_rows(theta, x)
    keep = r > 0
    theta, x, r = theta[keep], x[keep], r[keep]
    assert theta.shape[0] > 50
    before = theta.copy()
    new = f.update_topic(theta, x, r, np.full(r.size, 0.8), np.ones(r.size), TOPIC.eta)
    np.testing.assert_array_equal(theta, before)  # not mutated
    np.testing.assert_allclose(np.linalg.norm(new, axis=1), 1.0, atol=1e-12)
    assert np.all(_relevance_rows(new, x) > r)


def test_topic_update_formula():
    theta = _unit(np.arange(1.0, 21.0))[None]
    x = _unit(np.ones(20))[None]
    r, frac, s = _relevance_rows(theta, x), np.array([0.6]), np.array([2.0])
    assert r[0] == pytest.approx(float(theta[0] @ x[0]), rel=1e-14)
    expected = _unit(theta[0] + TOPIC.eta * s[0] * r[0] * frac[0] * x[0])
    np.testing.assert_allclose(
        f.update_topic(theta, x, r, frac, s, TOPIC.eta)[0], expected, rtol=1e-12
    )


def test_unwatched_item_does_not_move_topic():
    theta = _unit(np.arange(1.0, 21.0))[None]
    x = _unit(np.ones(20))[None]
    new = f.update_topic(theta, x, _relevance_rows(theta, x), np.zeros(1), np.ones(1), TOPIC.eta)
    np.testing.assert_allclose(new, theta, rtol=1e-15, atol=1e-16)


def test_susceptibility_and_watch_fraction_scale_the_topic_step():
    theta = np.tile(_unit(np.r_[1.0, np.zeros(19)]), (4, 1))
    x = np.tile(_unit(np.r_[1.0, 1.0, np.zeros(18)]), (4, 1))
    r = _relevance_rows(theta, x)
    s = np.array([0.5, 1.0, 2.0, 4.0])
    gains = _relevance_rows(f.update_topic(theta, x, r, np.ones(4), s, TOPIC.eta), x) - r
    assert np.all(np.diff(gains) > 0)
    # small steps: the relevance gain is ≈ linear in s (first order in η·s)
    assert gains[3] / gains[1] == pytest.approx(4.0, rel=0.1)
    frac = np.array([0.1, 0.5, 1.0])
    fr = (
        _relevance_rows(f.update_topic(theta[:3], x[:3], r[:3], frac, np.ones(3), TOPIC.eta), x[:3])
        - r[:3]
    )
    assert np.all(np.diff(fr) > 0)


def test_relax_topic_moves_back_toward_theta0_monotonically():
    rng = np.random.default_rng(5)
    theta0 = _random_unit(rng)
    theta = _random_unit(rng)
    dts = np.array([0.0, 3600.0, 86400.0, 3 * 86400.0, 10 * 86400.0, 60 * 86400.0])
    m = dts.size
    relaxed = f.relax_topic(np.tile(theta, (m, 1)), np.tile(theta0, (m, 1)), dts, TOPIC.relax)
    dist = np.linalg.norm(relaxed - theta0, axis=1)
    assert dist[0] == pytest.approx(np.linalg.norm(theta - theta0))
    assert np.all(np.diff(dist) < 0)
    assert dist[-1] < 1e-6
    np.testing.assert_allclose(np.linalg.norm(relaxed, axis=1), 1.0, atol=1e-12)
    # the formula of the docstring: normalize(θ₀ + (θ - θ₀)·e^{-dt/τ})
    np.testing.assert_allclose(
        relaxed[3], _unit(theta0 + (theta - theta0) * math.exp(-1.0)), rtol=1e-12
    )


# =============================================================================== appetite
def test_item_above_appetite_raises_it_and_below_lowers_it():
    a = np.full(3, 0.3)
    out = f.update_appetite(a, np.array([0.6, 0.1, 0.3]), np.ones(3), np.ones(3), APPETITE)
    assert out[0] > 0.3 and out[1] < 0.3 and out[2] == 0.3


def test_appetite_ratchet_formula_and_asymmetry():
    cfg = APPETITE
    assert cfg.eta_up > cfg.eta_down
    a, d = 0.4, 0.2
    up = f.update_appetite(a, a + d, 1.0, 1.0, cfg) - a
    down = a - f.update_appetite(a, a - d, 1.0, 1.0, cfg)
    assert up == pytest.approx(cfg.eta_up * d)
    assert down == pytest.approx(cfg.eta_down * d)
    assert up > down  # η_up > η_down: same distance, the ratchet goes up faster
    # general formula with s and watch fraction
    s, frac = 2.5, 0.4
    assert f.update_appetite(a, 0.9, frac, s, cfg) == pytest.approx(a + cfg.eta_up * s * frac * 0.5)
    # the downward step carries neither s nor the watch fraction
    assert f.update_appetite(a, 0.1, frac, s, cfg) == pytest.approx(a - cfg.eta_down * 0.3)


def test_susceptibility_scales_the_appetite_step():
    a, e = 0.2, 0.5
    s = np.array([1.0, 2.0, 4.0])
    steps = f.update_appetite(np.full(3, a), np.full(3, e), np.ones(3), s, APPETITE) - a
    np.testing.assert_allclose(steps / steps[0], [1.0, 2.0, 4.0], rtol=1e-12)
    frac = np.array([0.25, 0.5, 1.0])
    fr = f.update_appetite(np.full(3, a), np.full(3, e), frac, np.ones(3), APPETITE) - a
    assert np.all(np.diff(fr) > 0)


def test_appetite_stays_in_unit_interval():
    cfg = AppetiteDynamicsConfig(eta_up=5.0, eta_down=5.0)
    assert f.update_appetite(0.9, 1.0, 1.0, 4.0, cfg) == 1.0
    assert f.update_appetite(0.1, 0.0, 1.0, 1.0, cfg) == 0.0


@pytest.mark.parametrize(
    "x, target, tau", [(0.5, 0.2, 10 * 86400.0), (-3.0, 0.0, 86400.0), (2.0, 0.0, 3600.0)]
)
def test_relax_toward_moves_toward_target_monotone_in_dt(x, target, tau):
    dts = tau * np.array([0.0, 0.01, 0.5, 1.0, 3.0, 20.0])
    out = f.relax_toward(x, target, dts, tau)
    gap = np.abs(out - target)
    assert out[0] == pytest.approx(x)
    assert np.all(np.diff(gap) < 0)  # strictly closer the longer the time away
    assert np.all(np.sign(out - target) == np.sign(x - target))  # never overshoots
    np.testing.assert_allclose(out, target + (x - target) * np.exp(-dts / tau), rtol=1e-12)
    # relaxing over dt₁ then dt₂ equals relaxing over dt₁ + dt₂ (split idle periods agree)
    two_steps = f.relax_toward(f.relax_toward(x, target, 5000.0, tau), target, 7000.0, tau)
    assert two_steps == pytest.approx(f.relax_toward(x, target, 12000.0, tau))


# =============================================================================== satisfaction
def test_extreme_low_quality_item_lowers_satisfaction():
    V = f.value(0.2, 0.1, 0.9, 300.0, VALUE)  # extreme, low quality, mildly relevant
    assert V < 0
    S = np.array([-1.0, 0.0, 0.5, 2.0])
    # compared with carrying S over unchanged by a neutral (V = 0) item, same noise
    z = np.array([0.3, -1.0, 0.0, 2.0])
    assert np.all(
        f.update_satisfaction(S, V, z, SAT.gamma, SAT.noise)
        < f.update_satisfaction(S, 0.0, z, SAT.gamma, SAT.noise)
    )
    new = f.update_satisfaction(0.5, V, 0.0, SAT.gamma, SAT.noise)
    assert new < 0.5
    assert f.wellbeing(new, SAT.kappa) < f.wellbeing(0.5, SAT.kappa)


def test_mild_relevant_quality_item_raises_satisfaction():
    V = f.value(0.9, 0.8, 0.05, 180.0, VALUE)
    assert V > 0
    assert f.update_satisfaction(0.0, V, 0.0, SAT.gamma, SAT.noise) > 0.0


def test_satisfaction_update_formula():
    assert f.update_satisfaction(2.0, -0.5, 1.0, 0.8, 0.1) == pytest.approx(0.8 * 2.0 - 0.5 + 0.1)
    assert f.update_satisfaction(2.0, -0.5, -2.0, 0.8, 0.3) == pytest.approx(0.8 * 2.0 - 0.5 - 0.6)
    V = np.linspace(-2, 2, 9)
    assert np.all(np.diff(f.update_satisfaction(1.0, V, 0.0, SAT.gamma, SAT.noise)) > 0)


def test_satisfaction_noise_comes_from_the_satisfaction_stream():
    """Consumption.consume adds σ_S·z, z the user's next "satisfaction" normal."""
    cat = _catalog(np.eye(3)[:1], 0.2, 0.5, 0.5, 300.0)
    n = 4
    state = _view(
        theta=np.tile(np.eye(3)[0], (n, 1)),
        appetite=np.full(n, 0.2),
        satisfaction=np.linspace(-1, 1, n),
        susceptibility=np.ones(n),
        habit=np.zeros(n),
        habit_time=np.zeros(n),
        fatigue=np.zeros(n),
    )
    V = np.array([0.3, -0.2, 0.0, 1.0])
    out = MODEL.transition.consume(
        state,
        ItemView(cat, np.zeros(n, dtype=np.int64)),
        {"relevance": np.ones(n), "allure": np.ones(n)},
        np.full(n, 100.0),
        V,
        np.full(n, 10.0),
        Draws.for_users(8, ("satisfaction",), np.arange(n)),
    )
    z = Draws.for_users(8, ("satisfaction",), np.arange(n)).normal("satisfaction")
    np.testing.assert_array_equal(
        out["satisfaction"], SAT.gamma * state["satisfaction"] + V + SAT.noise * z
    )


def test_satisfaction_decays_toward_zero_between_sessions():
    for S in (-2.0, 3.0):
        out = f.relax_toward(S, 0.0, np.array([0.0, 3600.0, 86400.0, 7 * 86400.0]), SAT.relax)
        assert np.all(np.diff(np.abs(out)) < 0)
        assert np.all(np.sign(out) == np.sign(S))


# =============================================================================== habit, fatigue
def test_habit_adds_allure_and_decays_with_time():
    tau = HABIT.relax
    assert f.update_habit(2.0, 1.5, 0.0, tau) == pytest.approx(3.5)
    psi = 4.0
    decayed = f.update_habit(psi, 0.0, np.array([0.0, 3600.0, tau, 5 * tau]), tau)
    assert np.all(np.diff(decayed) < 0)
    assert decayed[2] == pytest.approx(psi / math.e)
    A = np.linspace(0, 3, 7)
    assert np.all(np.diff(f.update_habit(psi, A, 3600.0, tau)) > 0)


def test_fatigue_accumulates_watch_hours_and_lowers_engagement():
    """F ← F + τ/3600; the model reads F in hours: one hour of fatigue raises U₀ by φ_F and
    lowers the continuation logit by c_F."""
    assert f.add_fatigue(0.25, 1800.0) == pytest.approx(0.75)
    np.testing.assert_allclose(
        f.add_fatigue(np.zeros(3), np.array([0.0, 360.0, 7200.0])), [0.0, 0.1, 2.0]
    )
    assert f.outside_utility(1.0, CHOICE.u0, CHOICE.phi_f) - f.outside_utility(
        0.0, CHOICE.u0, CHOICE.phi_f
    ) == (pytest.approx(CHOICE.phi_f))
    logit = lambda p: math.log(p / (1 - p))
    assert logit(f.continue_probability(2.0, 0.0, 0.0, CONT)) - logit(
        f.continue_probability(2.0, 0.0, 1.0, CONT)
    ) == pytest.approx(CONT.c_f)


# =============================================================================== surveys
def test_survey_score_formula():
    cfg = SurveyConfig()
    raw = lambda v, z: cfg.intercept + cfg.slope * v + cfg.noise * z
    v = np.array([0.0, 0.5, -3.0, 3.0, 0.25, 0.75])
    z = np.array([0.0, 0.1, 0.0, 0.0, 0.0, 0.0])
    got = f.survey_score(v, z, cfg)
    np.testing.assert_array_equal(got, np.clip(np.round(raw(v, z)), 1, 5))
    assert got[2] == 1.0 and got[3] == 5.0  # clipped to 1..5
    assert got[0] == 2.0  # 2.5 rounds half to even
    assert got[5] == 4.0  # 4.0 exactly


def test_linear_survey_asks_with_its_probability():
    """LinearSurvey.respond answers with probability p (binomial share, 4 SE) and NaN
    otherwise; its answers follow survey_score with the user's "survey" normal."""
    n = 50_000
    survey = LinearSurvey(SurveyConfig(probability=0.3))
    mv = np.linspace(-1, 1, n)
    summary = SessionSummary(np.ones(n, dtype=np.int64), np.full(n, 60.0), mv, np.ones(n))
    scores = survey.respond(
        _view(satisfaction=np.zeros(n)), summary, Draws.for_users(5, ("survey",), np.arange(n))
    )
    asked = ~np.isnan(scores)
    assert abs(asked.mean() - 0.3) < Z4 * math.sqrt(0.3 * 0.7 / n)
    assert set(np.unique(scores[asked])) <= {1.0, 2.0, 3.0, 4.0, 5.0}
    # higher session value, higher answers
    assert np.corrcoef(mv[asked], scores[asked])[0, 1] > 0.5


# =============================================================================== batches
def _relevance_rows(theta, topics):
    """f.relevance with the topics given row-major, (B, K) or (B, n, K), gathered topic-major
    as ItemView.topics_by_topic gives them."""
    return f.relevance(theta, np.ascontiguousarray(np.moveaxis(topics, -1, 0)))


def _batch_inputs(B, rng):
    r = rng.uniform(-1, 1, B)
    e, b, a, q, W, frac = (rng.uniform(0, 1, B) for _ in range(6))
    tau, L = rng.uniform(1, 600, B), rng.uniform(15, 1200, B)
    A, S, z = rng.uniform(0, 5, B), rng.normal(size=B), rng.normal(size=B)
    psi, F, s, dt = (
        rng.uniform(0, 20, B),
        rng.uniform(0, 2, B),
        rng.uniform(0.5, 4, B),
        rng.uniform(0, 1e6, B),
    )
    theta, x = unit_rows(rng.normal(size=(B, 20))), unit_rows(rng.normal(size=(B, 20)))
    slate_topics = unit_rows(rng.normal(size=(B, 7, 20)))
    utility = rng.uniform(-1, 5, (B, 7))
    probs = f.logit_probabilities(utility, rng.uniform(2, 4, B), 2.0)
    u = rng.uniform(0, 1, B)
    return [
        (_relevance_rows, (theta, x)),
        (_relevance_rows, (theta, slate_topics)),
        (f.grip, (e, a, ALLURE.delta, ALLURE.omega)),
        (f.allure, (r, e, b, a, ALLURE)),
        (f.value, (r, q, e, tau, VALUE)),
        (f.wellbeing, (S, SAT.kappa)),
        (f.outside_utility, (F, CHOICE.u0, CHOICE.phi_f)),
        (f.logit_probabilities, (utility, F, CHOICE.beta)),
        (f.proportional_probabilities, (utility, 1.0, -1.0)),
        (f.cascade_probabilities, (f.cascade_click(utility, F[:, None], 2.0, 0.9),)),
        (f.sample_choice, (probs, u)),
        (f.watch_log_mean, (np.log(L), A, W, WATCH)),
        (f.watch_time, (L, np.log(L), A, W, z, WATCH)),
        (f.expected_watch_time, (L, np.log(L), A, W, WATCH)),
        (f.continue_probability, (A, psi, F, CONT)),
        (f.update_topic, (theta, x, r, frac, s, TOPIC.eta)),
        (f.relax_topic, (theta, x, dt, TOPIC.relax)),
        (f.update_appetite, (a, e, frac, s, APPETITE)),
        (f.relax_toward, (a, e, dt, 300.0)),
        (f.update_satisfaction, (S, r, z, SAT.gamma, SAT.noise)),
        (f.update_habit, (psi, A, dt, HABIT.relax)),
        (f.add_fatigue, (F, tau)),
        (f.session_mean, (A, np.floor(psi / 5))),
        (f.update_ema, (S, r, 0.2)),
    ]


@pytest.mark.parametrize("B", [3, 17, 67])
def test_formulas_give_a_row_the_same_bits_alone_or_in_a_batch(B):
    """Every formula, on a batch of B rows, against each row alone (a batch of one) and the
    batch in reverse order: identical bits (the engines batch users differently)."""
    rng = np.random.default_rng(B)
    for fn, args in _batch_inputs(B, rng):
        batch = fn(*args)
        assert np.shape(batch)[0] == B, fn.__name__
        rev = fn(*[x[::-1].copy() if isinstance(x, np.ndarray) else x for x in args])
        np.testing.assert_array_equal(rev[::-1], batch, err_msg=fn.__name__)
        for i in range(B):
            alone = fn(*[x[i : i + 1].copy() if isinstance(x, np.ndarray) else x for x in args])
            np.testing.assert_array_equal(alone, batch[i : i + 1], err_msg=f"{fn.__name__} row {i}")


def _engine_like_steps(model, arrays, cat, slates, now, users, n_users, seed=99):
    """The component calls of one session of users ``users`` in the order and on the shapes
    of recsim.engine.core: choice over a slate, watch, value, transition, continuation, the
    session's end (churn, returns, survey), the next return and the relaxation until then.
    Returns every output, rows in the order of ``users``."""
    state = UserState(n_users, arrays)  # a private copy
    streams = ("choice", "churn", *model.streams)
    draws = Draws.for_users(seed, streams, users, n_users)
    B = users.shape[0]
    rows = np.arange(B)
    out = {}
    view = model.view(state, users)
    slate = slates[users]
    terms = model.allure.score(view, ItemView(cat, slate))
    probs = model.choice.probabilities(view, terms)
    choice = f.sample_choice(probs, draws.uniform("choice"))
    pick = np.where(choice >= 0, choice, 0)  # everyone watches something, for the test
    item = slate[rows, pick]
    chosen = {k: v[rows, pick] for k, v in terms.items()}
    items = ItemView(cat, item)
    tau = model.response.watch_time(view, items, chosen, draws)
    V = model.value.value(view, items, chosen, tau)
    out.update(
        allure=terms["allure"],
        relevance=terms["relevance"],
        probs=probs,
        choice=choice,
        tau=tau,
        V=V,
        expected=model.response.expected_watch_time(view, ItemView(cat, slate), terms),
        alone=model.click_probability_alone(view, terms),
    )
    t_watch = now[users] + tau
    updates = model.transition.consume(view, items, chosen, tau, V, t_watch, draws)
    out.update({f"consume.{k}": v for k, v in updates.items()})
    state.put(users, updates)
    view = model.view(state, users)
    goes_on, upd = model.session.after_watch(view, items, chosen, tau, V, draws)
    state.put(users, upd)
    out["goes_on"] = goes_on
    summary = SessionSummary(np.ones(B, dtype=np.int64), tau, V, chosen["allure"])
    state.put(users, model.churn.end_session(model.view(state, users), summary))
    state.put(users, model.returns.end_session(model.view(state, users), summary, t_watch))
    view = model.view(state, users)
    out["survey"] = model.survey.respond(view, summary, draws)
    t_next = model.returns.next_return(view, t_watch, t_watch.max() + 30 * DAY, draws)
    out["t_next"] = t_next
    back = np.where(np.isfinite(t_next), t_next, t_watch + DAY)
    relaxed = model.relaxation.relax(view, back - t_watch, back)
    out.update({f"relax.{k}": v for k, v in relaxed.items()})
    out["churn"] = model.churn.probability(model.view(state, users))
    out["wellbeing"] = model.view(state, users)["wellbeing"]
    return out


def test_components_give_a_user_the_same_bits_alone_or_in_a_batch():
    """The default components, called as the engine calls them, give every user the same
    bits in a batch of 67, alone, and inside a shuffled sub-batch (draws are counter-based per
    user, arithmetic elementwise per row)."""
    sc = Scenario(
        name="t",
        policies=["random"],
        population=PopulationConfig(n_users=67),
        catalog=CatalogConfig(n_items=300),
        behaviour=BehaviourConfig(survey=SurveyConfig(probability=0.5)),
    )
    model = build_user_model(sc)
    centers = make_topic_centers(sc.catalog, np.random.default_rng(1))
    cat = generate_catalog(
        sc.catalog, centers, -DAY, DAY, np.random.default_rng(2), np.random.default_rng(3)
    )
    n = sc.population.n_users
    state = model.initial_state(n, centers, np.random.default_rng(4), -DAY)
    rng = np.random.default_rng(5)
    arrays = dict(state.arrays)
    # a lived-in state: satisfaction, habit, fatigue, kernels away from their initial values
    arrays.update(
        satisfaction=rng.normal(0, 2, n),
        habit=rng.uniform(0, 10, n),
        fatigue=rng.uniform(0, 1, n),
        habit_time=rng.uniform(-3600, 0, n),
        impulse=rng.uniform(0, 1e-4, n),
        slow=rng.uniform(0, 1e-6, n),
        kernel_time=rng.uniform(-7200, 0, n),
        ubar=rng.normal(0.5, 1, n),
    )
    slates = np.stack([rng.choice(cat.n_items, 10, replace=False) for _ in range(n)])
    now = rng.uniform(0, 3600, n)
    everyone = np.arange(n)
    full = _engine_like_steps(model, arrays, cat, slates, now, everyone, n)
    assert np.isfinite(full["t_next"]).any() and (~np.isnan(full["survey"])).any()
    subset = rng.permutation(n)[:23]
    part = _engine_like_steps(model, arrays, cat, slates, now, subset, n)
    for name, values in full.items():
        np.testing.assert_array_equal(part[name], values[subset], err_msg=name)
    for u in range(0, n, 6):
        alone = _engine_like_steps(model, arrays, cat, slates, now, np.array([u]), n)
        for name, values in full.items():
            np.testing.assert_array_equal(
                alone[name], values[u : u + 1], err_msg=f"{name} user {u}"
            )


# =============================================================================== catalog
CATALOG_START, CATALOG_END = -7 * 86400.0, 14 * 86400.0


def _generated_catalog(cfg: CatalogConfig, seed: int = 42):
    ss = np.random.SeedSequence(seed).spawn(3)
    centers = make_topic_centers(cfg, np.random.default_rng(ss[0]))
    cat = generate_catalog(
        cfg,
        centers,
        CATALOG_START,
        CATALOG_END,
        np.random.default_rng(ss[1]),
        np.random.default_rng(ss[2]),
    )
    return centers, cat


@pytest.fixture(scope="module")
def catalog_default():
    return _generated_catalog(CatalogConfig())


def test_catalog_topics_are_unit_norm(catalog_default):
    centers, cat = catalog_default
    assert centers.shape == (5, 20)
    np.testing.assert_allclose(np.linalg.norm(centers, axis=1), 1.0, rtol=1e-12)
    assert cat.topics.shape == (cat.n_items, 20)
    np.testing.assert_allclose(np.linalg.norm(cat.topics, axis=1), 1.0, rtol=1e-12)
    np.testing.assert_allclose(np.linalg.norm(cat.topics_obs, axis=1), 1.0, rtol=1e-12)
    np.testing.assert_array_equal(cat.log_length, np.log(cat.length))
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
    u = (cat.upload_time[cfg.n_items :] - CATALOG_START) / (CATALOG_END - CATALOG_START)
    assert stats.kstest(u, "uniform").pvalue > P_MIN


def test_catalog_extremeness_follows_its_beta(catalog_default):
    """e ∈ [0, 1] with mean a/(a+b); tolerance 4 SE with SE = sd_Beta/√n,
    sd_Beta² = ab / ((a+b)²(a+b+1)). Plus a KS test against the Beta itself."""
    a, b = CatalogConfig().extremeness
    _, cat = catalog_default
    e = cat.extremeness
    assert np.all((e >= 0) & (e <= 1))
    sd = math.sqrt(a * b / ((a + b) ** 2 * (a + b + 1)))
    assert abs(e.mean() - a / (a + b)) < Z4 * sd / math.sqrt(e.size)
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
    assert np.corrcoef(e, q)[0, 1] + Z4 / math.sqrt(e.size) < 0


def test_catalog_length_is_clipped_log_normal():
    """With min/max near the median clipping really happens (≈16% of items each side at
    log-sd 0.7). Shares are binomial: tolerance 4·√(p(1-p)/n). Clipping leaves the median
    alone, so the share below 240 s is ½."""
    cfg = CatalogConfig(length=LengthConfig(median=240.0, log_sd=0.7, min=120.0, max=480.0))
    _, cat = _generated_catalog(cfg, seed=9)
    L = cat.length
    assert L.min() == 120.0 and L.max() == 480.0
    p_low = stats.norm.cdf(math.log(120 / 240) / 0.7)
    assert abs(np.mean(L == 120.0) - p_low) < Z4 * math.sqrt(p_low * (1 - p_low) / L.size)
    assert abs(np.mean(L < 240.0) - 0.5) < Z4 * math.sqrt(0.25 / L.size)


def test_catalog_is_reproducible_from_its_seeds():
    cfg = CatalogConfig(n_items=500)
    _, c1 = _generated_catalog(cfg, seed=1)
    _, c2 = _generated_catalog(cfg, seed=1)
    _, c3 = _generated_catalog(cfg, seed=2)
    np.testing.assert_array_equal(c1.topics, c2.topics)
    np.testing.assert_array_equal(c1.upload_time, c2.upload_time)
    assert not np.array_equal(c1.extremeness[:500], c3.extremeness[:500])


# =============================================================================== population
POP_START = -3 * DAY


@pytest.fixture(scope="module")
def population_large():
    """20 000 users as a world gets them: build_user_model(scenario).initial_state."""
    sc = Scenario(name="t", policies=["random"], population=PopulationConfig(n_users=20_000))
    centers = make_topic_centers(sc.catalog, np.random.default_rng(122))
    model = build_user_model(sc)
    state = model.initial_state(
        sc.population.n_users, centers, np.random.default_rng(123), POP_START
    )
    return sc, centers, model, state


def test_initial_state_is_the_samplers_plus_each_components_fields(population_large):
    sc, centers, _, state = population_large
    n = sc.population.n_users
    sampled = PopulationSampler(sc.population).sample(n, centers, np.random.default_rng(123))
    for name, values in sampled.items():
        np.testing.assert_array_equal(state[name], values, err_msg=name)
    assert state.n_users == n
    for name in ("habit", "fatigue", "impulse", "slow"):
        assert np.all(state[name] == 0.0), name
    for name in ("habit_time", "kernel_time"):
        assert np.all(state[name] == POP_START), name
    assert np.all(state["ubar"] == sc.behaviour.churn.initial)
    for name in state.fields:
        assert state[name].shape[0] == n, name


def test_population_vulnerable_share(population_large):
    """Vulnerable count ~ Binomial(n, p): tolerance 4·√(p(1-p)/n) on the share."""
    sc, _, _, state = population_large
    vulnerable, susceptibility = state["vulnerable"], state["susceptibility"]
    p, n = sc.population.vulnerable_share, state.n_users
    assert abs(vulnerable.mean() - p) < Z4 * math.sqrt(p * (1 - p) / n)
    assert np.all(susceptibility[vulnerable] == sc.population.vulnerable_susceptibility)
    # others: log-normal around 1 → mean log s = 0 ± 4·log_sd/√n_others
    log_s = np.log(susceptibility[~vulnerable])
    sd = sc.population.susceptibility_log_sd
    assert abs(log_s.mean()) < Z4 * sd / math.sqrt(log_s.size)
    # the SE of a normal sample's sd is ≈ sd/√(2n): relative tolerance 4/√(2n) (≈ 2% here)
    assert log_s.std(ddof=1) == pytest.approx(sd, rel=Z4 / math.sqrt(2 * log_s.size))


def test_population_initial_state(population_large):
    sc, centers, _, state = population_large
    theta, theta0 = state["theta"], state["theta0"]
    np.testing.assert_allclose(np.linalg.norm(theta0, axis=1), 1.0, rtol=1e-12)
    np.testing.assert_array_equal(theta, theta0)
    assert not np.shares_memory(theta, theta0)
    np.testing.assert_array_equal(state["appetite"], state["appetite0"])
    assert not np.shares_memory(state["appetite"], state["appetite0"])
    a, b = sc.population.appetite
    a0 = state["appetite0"]
    assert np.all((a0 >= 0) & (a0 <= 1))
    sd = math.sqrt(a * b / ((a + b) ** 2 * (a + b + 1)))
    assert abs(a0.mean() - a / (a + b)) < Z4 * sd / math.sqrt(state.n_users)
    assert np.all(state["satisfaction"] == sc.population.initial_satisfaction)
    # users sit around their home cluster (loose sanity bound, as for items)
    sims = theta0 @ centers.T
    assert np.mean(np.argmax(sims, axis=1) == state["home_cluster"]) > 0.95


def test_population_copy_is_independent(population_large):
    _, _, _, state = population_large
    other = state.copy()
    other.put(
        np.array([0]),
        {"appetite": np.array([state["appetite"][0] + 1.0]), "theta": state["theta"][:1] + 1.0},
    )
    assert other["appetite"][0] != state["appetite"][0]
    assert other["theta"][0, 0] != state["theta"][0, 0]


def test_default_model_components():
    """The scenario's default model is made of the default components, bound to its
    behaviour section (what the tests above call)."""
    assert isinstance(MODEL.allure, Allure) and isinstance(MODEL.value, Value)
    assert isinstance(MODEL.choice, LogitChoice) and isinstance(MODEL.response, LogNormalWatch)
    assert isinstance(MODEL.transition, Consumption) and isinstance(
        MODEL.relaxation, BetweenSessions
    )
    assert isinstance(MODEL.session, Continuation)
    assert MODEL.allure.params == ALLURE and MODEL.choice.params == CHOICE
    assert MODEL.transition.params == BEHAVIOUR and MODEL.choice.scan_time == CHOICE.scan_time
