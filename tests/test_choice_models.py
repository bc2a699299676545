"""The choice models against their closed forms, through the functions the engines call.

The engine (``recsim.engine.core.Simulation._show``) turns a slate into a choice with
``model.choice.probabilities(state, terms)`` and ``recsim.users.formulas.sample_choice(probs,
draws.uniform("choice"))``; these tests call exactly that pair, with the counter-based
uniforms of :class:`recsim.users.state.Draws`, and compare the frequencies over 2·10⁵ slates
with the closed forms written out below by hand:

(a) :class:`LogitChoice` — multinomial logit with an outside option and a position term,
    P(k) = exp(β(A_k − p·log k)) / (exp(β(u₀ + φ_F·F)) + Σ_j exp(β(A_j − p·log j)));
(b) :class:`ProportionalChoice` — RecSim's multinomial proportional model, weights
    s_j − s_min and m − s_min for no click;
(c) :class:`CascadeChoice` — position k clicked with probability Π_{j<k}(1 − c_j)·c_k,
    c_k = attention·sigmoid(β(s_k − u₀ − φ_F·F)).

Each is a Pearson chi-square goodness-of-fit test pooled over a few slate configurations
(every configuration with n positions contributes n + 1 cells and n degrees of freedom).

Thresholds: under the right model the p-value is uniform on (0, 1), so "p > 0.001" is what a
correct implementation passes for 999 seeds in 1000 (the seeds are fixed, so the outcome is
deterministic; the threshold says how unlucky a seed would have to be, and a real bug — a
wrong sign, a missing term, an off-by-one position — gives p-values far below it at this
sample size). Each test is also run against a plausible *wrong* model (logit without the
position term, proportional without the min normalizer, cascade treated as independent clicks)
and must reject it with p < 1e-6: the test has the power to tell these apart, so passing it
means something. The configurations are chosen so that every expected count is ≥ 5
(asserted), where the chi-square approximation holds.

The exact tests at the end check each ``.probabilities`` against a hand computation.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.stats import chi2

from recsim.config import ChoiceConfig
from recsim.users.default import LogitChoice
from recsim.users.formulas import sample_choice
from recsim.users.peers import CascadeChoice, FirstItemChoice, ProportionalChoice
from recsim.users.state import Draws, StateView

#: slates per configuration; 4 configurations → 2·10⁵ slates per test
PER_CONFIG = 50_000
#: accept the right model above this p-value, and require the wrong one below REJECT
ACCEPT, REJECT = 1e-3, 1e-6


def _sample(component, fatigue: np.ndarray, terms: dict[str, np.ndarray], seed: int):
    """The engine's choice step on ``len(fatigue)`` slates: the component's probabilities,
    then ``sample_choice`` with one counter-based uniform per slate (one user per slate)."""
    n = fatigue.shape[0]
    state = StateView.of({"fatigue": fatigue})
    probs = component.probabilities(state, terms)
    draws = Draws.for_users(seed, ("choice",), np.arange(n))
    return sample_choice(probs, draws.uniform("choice"))


def _chi_square(choices: np.ndarray, config: np.ndarray, expected: list[list[float]]) -> float:
    """p-value of the Pearson chi-square test of the observed choices (−1 = no click) of
    each configuration against ``expected[c]`` = [P(no click), P(1), ..., P(n)], pooled over
    configurations (statistics and degrees of freedom add)."""
    stat, dof = 0.0, 0
    for c, probs in enumerate(expected):
        probs = np.asarray(probs, dtype=float)
        assert math.isclose(probs.sum(), 1.0, rel_tol=1e-12)
        mine = choices[config == c]
        observed = np.bincount(mine + 1, minlength=probs.shape[0])
        exp_counts = probs * mine.shape[0]
        assert exp_counts.min() >= 5, "configuration too lopsided for the chi-square approximation"
        stat += float(((observed - exp_counts) ** 2 / exp_counts).sum())
        dof += probs.shape[0] - 1
    return float(chi2.sf(stat, dof))


def _tile(rows: list, per: int = PER_CONFIG) -> tuple[np.ndarray, np.ndarray]:
    """Each configuration repeated ``per`` times: (values, configuration index)."""
    values = np.repeat(np.asarray(rows, dtype=float), per, axis=0)
    return values, np.repeat(np.arange(len(rows)), per)


def _sigmoid(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-x))


# ----------------------------------------------------------------------------- (a) logit
LOGIT = dict(beta=1.5, position_exponent=0.8, u0=1.0, phi_f=1.2)
LOGIT_ALLURE = [[1.5, 1.2, 0.9, 0.2], [0.3, 0.8, 1.1, 0.5], [2.0, 0.1, 0.1, 1.4], [0.9, 0.9, 0.9, 0.9]]
LOGIT_FATIGUE = [0.0, 0.25, 0.5, 1.0]  # hours


def _logit_closed_form(allure: list[float], fatigue: float, position_term: bool = True) -> list[float]:
    b, p, u0, phi = LOGIT["beta"], LOGIT["position_exponent"], LOGIT["u0"], LOGIT["phi_f"]
    w0 = math.exp(b * (u0 + phi * fatigue))
    w = [math.exp(b * (a - (p * math.log(k) if position_term else 0.0))) for k, a in enumerate(allure, 1)]
    total = w0 + sum(w)
    return [w0 / total] + [x / total for x in w]


def test_logit_frequencies_match_the_closed_form():
    allure, config = _tile(LOGIT_ALLURE)
    fatigue = np.asarray(LOGIT_FATIGUE)[config]
    choices = _sample(LogitChoice(ChoiceConfig(**LOGIT)), fatigue, {"allure": allure}, seed=101)
    right = [_logit_closed_form(a, f) for a, f in zip(LOGIT_ALLURE, LOGIT_FATIGUE)]
    wrong = [_logit_closed_form(a, f, position_term=False) for a, f in zip(LOGIT_ALLURE, LOGIT_FATIGUE)]
    assert _chi_square(choices, config, right) > ACCEPT
    assert _chi_square(choices, config, wrong) < REJECT


# ----------------------------------------------------------------------------- (b) proportional
PROPORTIONAL = dict(score="relevance", no_click_mass=1.0, min_normalizer=-1.0)  # RecSim's IE user
PROPORTIONAL_SCORES = [[0.9, 0.1, 0.5], [-0.5, 0.0, 1.0], [0.3, 0.3, 0.3], [1.0, -0.9, 0.6]]


def _proportional_closed_form(scores: list[float], normalize: bool = True) -> list[float]:
    m, s_min = PROPORTIONAL["no_click_mass"], PROPORTIONAL["min_normalizer"] if normalize else 0.0
    w = [m - s_min] + [s - s_min for s in scores]
    return [x / sum(w) for x in w]


def test_proportional_frequencies_match_recsims_model():
    scores, config = _tile(PROPORTIONAL_SCORES)
    terms = {"relevance": scores, "allure": np.zeros_like(scores)}
    choices = _sample(ProportionalChoice(**PROPORTIONAL), np.zeros(scores.shape[0]), terms, seed=202)
    right = [_proportional_closed_form(s) for s in PROPORTIONAL_SCORES]
    # the wrong model needs non-negative raw scores: compare on the configurations that have them
    positive = [c for c, s in enumerate(PROPORTIONAL_SCORES) if min(s) > 0]
    assert len(positive) == 2
    keep = np.isin(config, positive)
    wrong = [_proportional_closed_form(PROPORTIONAL_SCORES[c], normalize=False) for c in positive]
    remap = np.searchsorted(positive, config[keep])
    assert _chi_square(choices, config, right) > ACCEPT
    assert _chi_square(choices[keep], remap, wrong) < REJECT


# ----------------------------------------------------------------------------- (c) cascade
CASCADE = dict(score="allure", beta=2.0, u0=1.0, phi_f=1.0, attention=0.8)
CASCADE_ALLURE = [[1.2, 0.8, 1.5, 0.4], [0.5, 0.5, 0.5, 0.5], [0.0, 1.4, 0.2, 1.9], [1.6, 1.6, 0.3, 0.9]]
CASCADE_FATIGUE = [0.0, 0.0, 0.3, 0.6]


def _cascade_clicks(allure: list[float], fatigue: float) -> list[float]:
    a, b, u0, phi = CASCADE["attention"], CASCADE["beta"], CASCADE["u0"], CASCADE["phi_f"]
    return [a * _sigmoid(b * (s - (u0 + phi * fatigue))) for s in allure]


def _cascade_closed_form(allure: list[float], fatigue: float) -> list[float]:
    c = _cascade_clicks(allure, fatigue)
    out, reach = [], 1.0  # reach = Π_{j<k}(1 − c_j)
    for ck in c:
        out.append(reach * ck)
        reach *= 1.0 - ck
    return [reach] + out


def _independent_clicks(allure: list[float], fatigue: float) -> list[float]:
    """The wrong model: each position clicked on its own with c_k, regardless of the
    positions before it (same no-click probability Π(1 − c_j); given a click, position k
    with probability ∝ c_k — no examination order)."""
    c = _cascade_clicks(allure, fatigue)
    none = math.prod(1.0 - x for x in c)
    return [none] + [(1.0 - none) * x / sum(c) for x in c]


def test_cascade_frequencies_match_the_closed_form():
    allure, config = _tile(CASCADE_ALLURE)
    fatigue = np.asarray(CASCADE_FATIGUE)[config]
    choices = _sample(CascadeChoice(**CASCADE), fatigue, {"allure": allure}, seed=303)
    right = [_cascade_closed_form(a, f) for a, f in zip(CASCADE_ALLURE, CASCADE_FATIGUE)]
    wrong = [_independent_clicks(a, f) for a, f in zip(CASCADE_ALLURE, CASCADE_FATIGUE)]
    assert _chi_square(choices, config, right) > ACCEPT
    assert _chi_square(choices, config, wrong) < REJECT


def test_first_item_always_clicks_position_one():
    allure = np.random.default_rng(4).normal(size=(1000, 5))
    choices = _sample(FirstItemChoice(), np.zeros(1000), {"allure": allure}, seed=404)
    assert (choices == 0).all()


# ----------------------------------------------------------------------------- exact small cases
def _state(fatigue):
    return StateView.of({"fatigue": np.asarray(fatigue, dtype=float)})


def test_logit_probabilities_by_hand():
    # β = 1, position exponent 1 (position k weighs 1/k), u₀ = 0, φ_F = ln 2:
    # row 0, F = 0: weights [no click e⁰ = 1, pos 1 e⁰ = 1, pos 2 e^{−ln 2} = 1/2] / 2.5
    # row 1, F = 1 h: no click e^{ln 2} = 2; pos 1 e^{ln 3} = 3, pos 2 e^{0 − ln 2} = 1/2: / 5.5
    choice = LogitChoice(ChoiceConfig(beta=1.0, position_exponent=1.0, u0=0.0, phi_f=math.log(2.0)))
    allure = np.array([[0.0, 0.0], [math.log(3.0), 0.0]])
    probs = choice.probabilities(_state([0.0, 1.0]), {"allure": allure})
    np.testing.assert_allclose(probs, [[0.4, 0.4, 0.2], [2 / 5.5, 3 / 5.5, 0.5 / 5.5]], rtol=1e-14)
    # β scales every utility, the outside option's too: β = 2 squares the weights
    choice2 = LogitChoice(ChoiceConfig(beta=2.0, position_exponent=1.0, u0=0.0, phi_f=math.log(2.0)))
    probs2 = choice2.probabilities(_state([1.0]), {"allure": allure[1:]})
    np.testing.assert_allclose(probs2, [[4 / 13.25, 9 / 13.25, 0.25 / 13.25]], rtol=1e-14)


def test_proportional_probabilities_by_hand():
    choice = ProportionalChoice(score="relevance", no_click_mass=1.0, min_normalizer=-1.0)
    relevance = np.array([
        [0.0, 1.0],    # weights [m − s_min = 2, 1, 2] / 5
        [-2.0, 0.5],   # s − s_min = −1 counts as 0: [2, 0, 1.5] / 3.5
    ])
    probs = choice.probabilities(_state([0.0, 0.0]), {"relevance": relevance, "allure": relevance * 0})
    np.testing.assert_allclose(probs, [[0.4, 0.2, 0.4], [2 / 3.5, 0.0, 1.5 / 3.5]], rtol=1e-14)
    # no weight at all (m = s_min, every score at s_min): a sure no click
    empty = ProportionalChoice(score="allure", no_click_mass=-1.0, min_normalizer=-1.0)
    probs = empty.probabilities(_state([0.0]), {"allure": np.array([[-1.0, -3.0]])})
    np.testing.assert_array_equal(probs, [[1.0, 0.0, 0.0]])


def test_cascade_probabilities_by_hand():
    # scores at U₀ = u₀ + φ_F·F: sigmoid(0) = ½, times attention
    # attention 1:   c = ½ each: [no click ⅛, ½, ¼, ⅛]
    # attention ½:   c = ¼ each: [27/64, 16/64, 12/64, 9/64]
    for attention, expected in ((1.0, [1 / 8, 1 / 2, 1 / 4, 1 / 8]), (0.5, [27 / 64, 16 / 64, 12 / 64, 9 / 64])):
        choice = CascadeChoice(score="allure", beta=3.0, u0=0.5, phi_f=2.0, attention=attention)
        probs = choice.probabilities(_state([0.25]), {"allure": np.full((1, 3), 1.0)})
        np.testing.assert_allclose(probs, [expected], rtol=1e-14)
    # a sure click in position 2 masks position 3: [0, 0, 1, 0] up to sigmoid saturation
    choice = CascadeChoice(score="allure", beta=1.0, u0=0.0, phi_f=0.0, attention=1.0)
    probs = choice.probabilities(_state([0.0]), {"allure": np.array([[-800.0, 800.0, 800.0]])})
    np.testing.assert_allclose(probs, [[0.0, 0.0, 1.0, 0.0]], atol=1e-300)


def test_first_item_probabilities_by_hand():
    probs = FirstItemChoice().probabilities(_state([0.0, 0.0]), {"allure": np.zeros((2, 3))})
    np.testing.assert_array_equal(probs, [[0.0, 1.0, 0.0, 0.0]] * 2)


@pytest.mark.parametrize("u, expected", [(0.0, -1), (0.39, -1), (0.41, 0), (0.79, 0), (0.81, 1), (0.999999, 1)])
def test_sample_choice_is_the_inverse_cdf(u, expected):
    # cumulative [0.4, 0.8, 1.0]: no click below 0.4, position 1 up to 0.8, position 2 above
    probs = np.array([[0.4, 0.4, 0.2]])
    assert sample_choice(probs, np.array([u]))[0] == expected
