"""Target 1: the choice models' frequencies against their closed forms (and against a wrong one).

Sources: the multinomial logit with an outside option and a position term (docs/model.md §5.3;
McFadden 1974); RecSim's multinomial proportional model (Ie et al. 2019,
``MultinomialProportionalChoiceModel``: weights s_j − s_min, no click m − s_min); the cascade
model (Craswell et al. 2008: position k clicked with probability Π_{j<k}(1 − c_j)·c_k).

Measured with the very pair of calls the engines make for a slate
(``recsim.engine.core.Simulation._show``): ``model.choice.probabilities(state, terms)`` of the
component (``recsim.users.default.LogitChoice``, ``recsim.users.peers.ProportionalChoice``,
``recsim.users.peers.CascadeChoice``), then ``recsim.users.formulas.sample_choice(probs,
draws.uniform("choice"))`` with the counter-based per-user ``choice`` streams of
:class:`recsim.users.state.Draws`. As in a run, a few thousand users are each shown many slates
in succession, one uniform of their own stream per slate; slate ``r`` of user ``u`` has
configuration ``(u + r) mod C`` (a configuration = the slate's scores and the user's fatigue, in
hours).

The expected frequencies are the closed forms, written out below from the formulas (not from
recsim's functions). Each model gets one Pearson chi-square goodness-of-fit test
(``scipy.stats.chisquare``) pooled over its configurations: a configuration with n positions
has n + 1 cells (no click first) and n degrees of freedom, so the pooled test has
Σ_c n_c degrees of freedom (``ddof = C − 1``); a cell of expected probability exactly 0 is
left out of the test and must be observed 0 times. Every expected count is ≥ 5.

Thresholds: under the right model the p-value is uniform, so p > 0.001 fails a correct
implementation for one seed in 1000 (the seeds are fixed: the outcome is deterministic). The
same counts must reject a plausible wrong model with p < 10⁻⁶ — the power of the test: the
details give the wrong model's non-centrality λ = Σ_c N_c·Σ_k (p_k − q_k)²/q_k (p the right
closed form, q the wrong one) and the probability that a noncentral χ²(dof, λ) exceeds the
10⁻⁶ critical value. The wrong models: the logit without its position term; the proportional
model without subtracting s_min (weights s_j and m, on the configurations whose scores are all
≥ 0, where it is defined); the cascade read as independent clicks (the same no-click
probability Π(1 − c_j), but given a click, position k with probability ∝ c_k).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from scipy import stats

from ..config import ChoiceConfig
from ..users.components import ChoiceModel
from ..users.default import LogitChoice
from ..users.formulas import sample_choice
from ..users.peers import CascadeChoice, ProportionalChoice
from ..users.state import Draws, StateView
from . import Outcome, Target, status_of

#: slates per configuration (4 configurations per model): 4·10⁵ (full) and 4·10⁴ (fast) slates
#: per model; users shown slates in succession (each user's slates use successive uniforms)
_SIZES = {"fast": 10_000, "full": 100_000}
_USERS = 2_000
#: accept the right model above ACCEPT; the wrong one must fall below REJECT
ACCEPT, REJECT = 1e-3, 1e-6

# ----------------------------------------------------------------------------- configurations
#: logit: β, p (position exponent), u₀, φ_F (per hour of fatigue)
LOGIT = {"beta": 2.0, "position_exponent": 0.8, "u0": 1.0, "phi_f": 1.0}
#: (allure of positions 1..n, fatigue in hours)
LOGIT_CONFIGS = [
    ([1.4, 1.1, 0.8, 0.3], 0.0),
    ([0.2, 0.9, 1.2, 0.6], 0.3),
    ([1.9, 0.2, 0.0, 1.5], 0.6),
    ([1.0, 1.0, 1.0, 1.0], 1.0),
]
#: RecSim's interest-evolution user: score = relevance, m = 1, s_min = −1
PROPORTIONAL = {"score": "relevance", "no_click_mass": 1.0, "min_normalizer": -1.0}
PROPORTIONAL_CONFIGS = [
    ([0.8, 0.2, 0.5], 0.0),
    ([0.1, 0.6, 0.9, 0.3], 0.0),
    ([-0.5, 0.0, 1.0], 0.0),
    ([-1.5, 0.4, 0.0], 0.0),  # s_1 − s_min < 0: position 1 is never clicked (its weight counts as 0)
]
CASCADE = {"score": "allure", "beta": 2.0, "u0": 1.0, "phi_f": 1.0, "attention": 0.8}
CASCADE_CONFIGS = [
    ([1.2, 0.8, 1.5, 0.4], 0.0),
    ([0.5, 0.5, 0.5, 0.5], 0.0),
    ([0.0, 1.4, 0.2, 1.9], 0.3),
    ([1.6, 1.6, 0.3, 0.9], 0.6),
]


def _sigmoid(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-x))


# ----------------------------------------------------------------------------- closed forms
def logit_closed_form(allure: list[float], fatigue: float, position_term: bool = True, params=None) -> list[float]:
    """[P(no click), P(1), ..., P(n)] = [e^{βU₀}, e^{βU_1}, ...] / Σ, U_k = A_k − p·ln k,
    U₀ = u₀ + φ_F·F (without the position term: U_k = A_k, the wrong model)."""
    par = params or LOGIT
    b, p, u0, phi = par["beta"], par["position_exponent"], par["u0"], par["phi_f"]
    w = [math.exp(b * (u0 + phi * fatigue))]
    w += [math.exp(b * (a - (p * math.log(k) if position_term else 0.0))) for k, a in enumerate(allure, 1)]
    return [x / sum(w) for x in w]


def proportional_closed_form(scores: list[float], fatigue: float, normalize: bool = True,
                             params=None) -> list[float]:
    """RecSim's weights [m − s_min, s_1 − s_min, ...] (below 0 → 0) / Σ; without the
    normalizer (the wrong model) [m, s_1, ...] / Σ."""
    par = params or PROPORTIONAL
    m, s_min = par["no_click_mass"], par["min_normalizer"] if normalize else 0.0
    w = [max(m - s_min, 0.0)] + [max(s - s_min, 0.0) for s in scores]
    return [x / sum(w) for x in w]


def _cascade_clicks(allure: list[float], fatigue: float, params=None) -> list[float]:
    """c_k = attention·sigmoid(β(s_k − u₀ − φ_F·F))."""
    par = params or CASCADE
    a, b, u0, phi = par["attention"], par["beta"], par["u0"], par["phi_f"]
    return [a * _sigmoid(b * (s - (u0 + phi * fatigue))) for s in allure]


def cascade_closed_form(allure: list[float], fatigue: float, params=None) -> list[float]:
    """[Π_j(1 − c_j), c_1, (1 − c_1)·c_2, ..., Π_{j<n}(1 − c_j)·c_n]."""
    out, reach = [], 1.0
    for c in _cascade_clicks(allure, fatigue, params):
        out.append(reach * c)
        reach *= 1.0 - c
    return [reach] + out


def independent_clicks(allure: list[float], fatigue: float) -> list[float]:
    """The wrong model: no examination order (P(no click) = Π(1 − c_j); a click falls on
    position k with probability ∝ c_k)."""
    c = _cascade_clicks(allure, fatigue)
    none = math.prod(1.0 - x for x in c)
    return [none] + [(1.0 - none) * x / sum(c) for x in c]


# ----------------------------------------------------------------------------- sampling and tests
def _sample(component: ChoiceModel, configs: list, per_config: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """The engine's choice step over ``per_config·C`` slates: ``_USERS`` users, each shown
    slates in rounds; in round r user u sees configuration (u + r) mod C. Returns the choices
    (0-based position, −1 = no click) and each slate's configuration."""
    C = len(configs)
    rounds = per_config * C // _USERS
    users = np.arange(_USERS)
    draws = Draws.for_users(seed, ("choice",), users)
    choices = np.empty((rounds, _USERS), dtype=np.int64)
    config_of = (users[None, :] + np.arange(rounds)[:, None]) % C
    for r in range(rounds):
        out = np.empty(_USERS, dtype=np.int64)
        u_round = np.empty(_USERS)
        # one uniform per slate from each user's own stream, as the engine draws it
        u_round[:] = draws.uniform("choice")
        for c, (scores, fatigue) in enumerate(configs):
            rows = np.flatnonzero(config_of[r] == c)
            s = np.tile(np.asarray(scores, dtype=float), (rows.shape[0], 1))
            state = StateView.of({"fatigue": np.full(rows.shape[0], float(fatigue))})
            terms = {"allure": s, "relevance": s}
            out[rows] = sample_choice(component.probabilities(state, terms), u_round[rows])
        choices[r] = out
    return choices.ravel(), config_of.ravel()


@dataclass
class _Fit:
    p_value: float
    statistic: float
    dof: int
    n: int
    noncentrality: float = math.nan  # of the model tested, if it is the wrong one


def _chi_square(choices, config, expected: list[list[float]], truth: list[list[float]] | None = None,
                keep: list[int] | None = None) -> _Fit:
    """Pearson chi-square of the observed choices against ``expected[c]`` ([no click, 1..n]),
    pooled over the configurations ``keep`` (all by default) with ``scipy.stats.chisquare``
    (``ddof = C − 1`` makes its degrees of freedom Σ_c n_c). Cells of expected probability 0
    are left out (their observed count must be 0). With ``truth`` (the right closed forms), the
    non-centrality of this (wrong) model's statistic is computed too."""
    keep = list(range(len(expected))) if keep is None else keep
    observed, exp_counts, lam, n_total = [], [], 0.0, 0
    for c in keep:
        probs = np.asarray(expected[c], dtype=float)
        assert math.isclose(probs.sum(), 1.0, rel_tol=1e-12)
        mine = choices[config == c]
        counts = np.bincount(mine + 1, minlength=probs.shape[0])
        zero = probs == 0.0
        if (counts[zero] > 0).any():  # a cell the model forbids was chosen: a sure rejection
            return _Fit(0.0, math.inf, 0, int(mine.shape[0]))
        observed.append(counts[~zero])
        exp_counts.append(probs[~zero] * mine.shape[0])
        if truth is not None:
            p = np.asarray(truth[c], dtype=float)[~zero]
            lam += mine.shape[0] * float(((p - probs[~zero]) ** 2 / probs[~zero]).sum())
        n_total += int(mine.shape[0])
    obs, exp = np.concatenate(observed), np.concatenate(exp_counts)
    assert exp.min() >= 5, "a configuration too lopsided for the chi-square approximation"
    ddof = len(keep) - 1
    res = stats.chisquare(obs, exp, ddof=ddof)
    return _Fit(float(res.pvalue), float(res.statistic), obs.shape[0] - 1 - ddof, n_total, lam)


def _p(p: float) -> str:
    """A p-value as text: "= 0.0123", or "< 1e-300" where it underflows."""
    return "< 1e-300" if p < 1e-300 else f"= {p:.3g}"


def _power(fit: _Fit) -> float:
    """P(noncentral χ²(dof, λ) > the 10⁻⁶ critical value): how surely the test rejects the
    wrong model at this sample size."""
    return float(stats.ncx2.sf(stats.chi2.isf(REJECT, fit.dof), fit.dof, fit.noncentrality))


def _sensitivity(truth: list[list[float]], near: list[list[float]], per_config: int) -> tuple[float, float]:
    """(λ, power): the non-centrality of the right-model test's statistic if the component
    followed the ``near`` closed forms instead, and the probability that the test then gives
    p < ACCEPT (rejects): how small an error the acceptance test would notice."""
    lam, dof = 0.0, 0
    for p, q in zip(truth, near):
        p, q = np.asarray(p), np.asarray(q)
        nz = p > 0
        lam += per_config * float(((q[nz] - p[nz]) ** 2 / p[nz]).sum())
        dof += int(nz.sum()) - 1
    return lam, float(stats.ncx2.sf(stats.chi2.isf(ACCEPT, dof), dof, lam))


def _model(name: str, component: ChoiceModel, configs: list, right: Callable, wrong: Callable,
           wrong_name: str, near: Callable, near_name: str, per_config: int, seed: int,
           wrong_keep: list[int] | None = None):
    choices, config = _sample(component, configs, per_config, seed)
    truth = [right(s, f) for s, f in configs]
    fit = _chi_square(choices, config, truth)
    keep = list(range(len(configs))) if wrong_keep is None else wrong_keep
    wrong_forms = [wrong(s, f) if c in keep else None for c, (s, f) in enumerate(configs)]
    bad = _chi_square(choices, config, wrong_forms, truth, keep)
    ok = fit.p_value > ACCEPT and bad.p_value < REJECT
    lam, power = _sensitivity(truth, [near(s, f) for s, f in configs], per_config)
    lines = [
        (f"{name}: {fit.n} slates ({len(configs)} configurations × {per_config}); chi-square {fit.statistic:.1f} on "
        f"{fit.dof} dof, p = {fit.p_value:.3g} (must be > {ACCEPT:g})"),
        (f"{name} vs {wrong_name}: {bad.n} slates, chi-square {bad.statistic:.1f} on {bad.dof} dof, p "
        f"{_p(bad.p_value)} (must be < {REJECT:g}); non-centrality λ = {bad.noncentrality:.0f}, power "
        f"P(p < {REJECT:g}) = {_power(bad):.4f}"),
        (f"{name} sensitivity: a component off by {near_name} would give λ = {lam:.0f} and fail the first test "
        f"(p < {ACCEPT:g}) with probability {power:.2f} at this size"),
    ]
    return ok, fit, bad, lines, (choices, config)


def _check(size: str) -> Outcome:
    per = _SIZES[size]
    models = [
        ("logit", LogitChoice(ChoiceConfig(**LOGIT)), LOGIT_CONFIGS, logit_closed_form,
         lambda s, f: logit_closed_form(s, f, position_term=False), "the logit without its position term",
         lambda s, f: logit_closed_form(s, f, params={**LOGIT, "position_exponent": 0.75}),
         "a position exponent 0.75 instead of 0.8", 101, None),
        ("proportional", ProportionalChoice(**PROPORTIONAL), PROPORTIONAL_CONFIGS, proportional_closed_form,
         lambda s, f: proportional_closed_form(s, f, normalize=False),
         "the proportional model without subtracting s_min (configurations with all scores ≥ 0)",
         lambda s, f: proportional_closed_form(s, f, params={**PROPORTIONAL, "min_normalizer": -1.1}),
         "s_min = −1.1 instead of −1", 202, [c for c, (s, _) in enumerate(PROPORTIONAL_CONFIGS) if min(s) >= 0]),
        ("cascade", CascadeChoice(**CASCADE), CASCADE_CONFIGS, cascade_closed_form, independent_clicks,
         "independent clicks (no examination order)",
         lambda s, f: cascade_closed_form(s, f, params={**CASCADE, "attention": 0.78}),
         "an attention of 0.78 instead of 0.8", 303, None),
    ]
    details, values, passed = [], [], []
    for name, component, configs, right, wrong, wrong_name, near, near_name, seed, keep in models:
        ok, fit, bad, lines, (choices, config) = _model(name, component, configs, right, wrong, wrong_name, near,
                                                        near_name, per, seed, keep)
        details += lines
        passed.append(ok)
        if name == "proportional":  # a score below s_min has weight 0: that position is never chosen
            c = next(c for c, (s, _) in enumerate(configs) if min(s) < PROPORTIONAL["min_normalizer"])
            forbidden = int((choices[config == c] == int(np.argmin(configs[c][0]))).sum())
            details.append(f"proportional: configuration {configs[c][0]} has a score below s_min = "
                           f"{PROPORTIONAL['min_normalizer']:g}, weight 0: that position was chosen {forbidden} times "
                           "(must be 0; the chi-square leaves the cell out)")
        values.append(f"{name} p = {fit.p_value:.2f} (wrong model p {_p(bad.p_value)})")
    status = status_of(passed)
    return Outcome(value="; ".join(values), status=status, details=details)


TARGET = Target(
    number=1,
    key="choice_models",
    title="Choice models",
    source="multinomial logit with outside option and position term (docs/model.md §5.3); RecSim's "
           "multinomial proportional model (Ie et al. 2019); cascade model (Craswell et al. 2008)",
    expected="click frequencies over ≥ 10⁵ slates match each closed form (chi-square p > 0.001) and reject "
             "a wrong model (p < 10⁻⁶)",
    tolerance="chi-square goodness of fit pooled over 4 configurations, 4·10⁵ slates per model (fast: 4·10⁴): "
              "p > 0.001 (0.1% false failures); the wrong model (no position term; no s_min; independent "
              "clicks) must give p < 10⁻⁶, and the power to do so is stated",
    check=_check,
)
