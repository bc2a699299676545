"""Built-in alternatives to the default components, mostly from peer simulators.

=============  ====================  ======================================================
role           built-in name         class: what it does
=============  ====================  ======================================================
choice         ``proportional``      :class:`ProportionalChoice`: RecSim's multinomial
                                     proportional model, P(j) ∝ s_j − s_min
choice         ``cascade``           :class:`CascadeChoice`: a cascade, P(k) =
                                     Π_{j<k}(1 − c_j)·c_k
choice         ``first_item``        :class:`FirstItemChoice`: always clicks position 1
                                     (RecSim's long-term-satisfaction user)
response       ``budget_watch``      :class:`BudgetWatch`: RecSim interest evolution's
                                     min(budget, length)
response       ``lts_engagement``    :class:`ChocKaleEngagement`: RecSim long-term
                                     satisfaction's log-normal choc/kale engagement
transition     ``lts_exposure``      :class:`NetPositiveExposure`: the same model's net
                                     positive exposure, wellbeing sigmoid(κ·NPE)
value          ``lts_kale``          :class:`KaleValue`: an item's push on NPE, −2(c − ½)
session        ``time_budget``       :class:`TimeBudget`: RecSim interest evolution's
                                     per-session time budget
session        ``patience``          :class:`Patience`: a patience stock that
                                     unsatisfying items use up (KuaiSim's leave model)
returns        ``poisson``           :class:`PoissonReturns`: a constant return rate
churn          ``never``             :class:`NoChurn`
survey         ``never``             :class:`NoSurvey`
relaxation     ``none``              :class:`NoRelaxation`: nothing changes between sessions
=============  ====================  ======================================================

Components that have parameters take them from ``user_model.<role>.params`` (never from
``behaviour:``); the defaults are RecSim's where the component comes from RecSim. Two
scenarios put them together: ``scenarios/recsim_long_term_satisfaction.yaml`` and
``scenarios/recsim_interest_evolution.yaml`` (the README's section "RecSim's environments as
recsim scenarios" gives the closed forms they reproduce; ``tests/test_peer_models.py`` and
``tests/test_choice_models.py`` check them).

Sources: Ie et al., "RecSim: A Configurable Simulation Platform for Recommender Systems"
(2019) and its code (``recsim/choice_model.py``, ``environments/interest_evolution.py``,
``environments/long_term_satisfaction.py``); Craswell et al., "An experimental comparison of
click position-bias models" (WSDM 2008); Zhao et al., "KuaiSim" (NeurIPS 2023). The arithmetic
is in :mod:`recsim.users.formulas`; nothing is computed here that is not written there.

Units: RecSim counts interest-evolution time in minutes and long-term-satisfaction sessions in
items; here every duration is in seconds (scenario files may write ``200m``), so RecSim's
200-minute budget is ``budget: 200m`` and its 0.5-minute step penalty ``no_click_penalty: 30s``.
"""

from __future__ import annotations

from typing import Annotated, Literal, Optional

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, model_validator

from ..config import Duration, Probability, Rate
from . import formulas as f
from .components import (
    ChoiceModel,
    ChurnRule,
    Relaxation,
    ResponseModel,
    ReturnProcess,
    SessionRule,
    StateTransition,
    SurveyModel,
    ValueModel,
)
from .state import align

__all__ = [
    "ProportionalChoice",
    "CascadeChoice",
    "FirstItemChoice",
    "BudgetWatch",
    "ChocKaleEngagement",
    "NetPositiveExposure",
    "KaleValue",
    "TimeBudget",
    "Patience",
    "PoissonReturns",
    "NoChurn",
    "NoSurvey",
    "NoRelaxation",
]


class _Params(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)


class _ChoiceParams(_Params):
    scan_time: Optional[Annotated[Duration, Field(gt=0.0)]] = Field(
        None, description="time to look over a slate, > 0 (default: behaviour.choice.scan_time)")


# ----------------------------------------------------------------------------- choice
class ProportionalParams(_ChoiceParams):
    score: Literal["allure", "relevance"] = Field("allure", description="the term an item is scored by")
    no_click_mass: float = Field(1.0, description="m, the no-click option's score")
    min_normalizer: float = Field(-1.0, description="s_min, subtracted from every score")


class ProportionalChoice(ChoiceModel):
    """RecSim's multinomial proportional choice (``MultinomialProportionalChoiceModel``):

        P(j) = (s_j − s_min) / W,  P(no click) = (m − s_min) / W,
        W = (m − s_min) + Σ_k (s_k − s_min),

    with s an item's ``score`` term, m the no-click mass and s_min the min normalizer. There is
    no position effect. RecSim's interest-evolution user scores an item by its interest in the
    item's topic (``score: relevance`` here) with m = 1 and s_min = −1. RecSim asserts that
    every s_j − s_min is ≥ 0; here a negative weight counts as 0 (that item is never
    clicked), and a slate without any weight is a sure no click."""

    Params = ProportionalParams

    def probabilities(self, state, terms):
        p = self.params
        return f.proportional_probabilities(terms[p.score], p.no_click_mass, p.min_normalizer)


class CascadeParams(_ChoiceParams):
    score: Literal["allure", "relevance"] = Field("allure", description="the term an item is scored by")
    beta: float = Field(2.0, gt=0.0, description="sensitivity of the click probability to the score")
    u0: float = Field(3.0, description="outside option: an examined item is clicked with sigmoid(β(s − U₀))")
    phi_f: float = Field(1.0, description="outside-option utility per hour of fatigue")
    attention: Probability = Field(1.0, description="probability of examining an item the user reaches")


class CascadeChoice(ChoiceModel):
    """A cascade (Craswell et al. 2008; RecSim's ``CascadeChoiceModel`` family): positions
    are examined in order, an examined position k is clicked with probability

        c_k = attention·sigmoid(β(s_k − U₀)),  U₀ = u₀ + φ_F·F,

    and the scan stops at the first click, so P(position k) = Π_{j<k}(1 − c_j)·c_k and
    P(no click) = Π_j(1 − c_j). The position effect comes from the order alone. (RecSim's
    cascades map a score to c_k = attention·scaling·score or ·exp(score); the logistic link
    here keeps c_k in [0, 1] for any score.) Reads the user's ``fatigue`` (the default
    ``consumption`` transition provides it)."""

    Params = CascadeParams
    requires = ("fatigue",)

    def probabilities(self, state, terms):
        p = self.params
        s = terms[p.score]
        outside = f.outside_utility(align(state["fatigue"], s), p.u0, p.phi_f)
        return f.cascade_probabilities(f.cascade_click(s, outside, p.beta, p.attention))


class FirstItemChoice(ChoiceModel):
    """Always clicks the item in position 1: P = [0, 1, 0, ..., 0] (RecSim's
    long-term-satisfaction user, who has no choice model; also forced clicks for closed-form
    checks). The policy alone decides what is consumed."""

    Params = _ChoiceParams

    def probabilities(self, state, terms):
        B, n = terms["allure"].shape
        out = np.zeros((B, n + 1))
        out[:, 1] = 1.0
        return out


# ----------------------------------------------------------------------------- response
class BudgetWatch(ResponseModel):
    """RecSim interest evolution: a clicked item is watched for τ = min(budget, L) seconds
    (deterministic), the budget being what is left of the session's (the ``time_budget``
    session rule keeps it in the ``budget`` state field); a budget below 0 counts as 0."""

    requires = ("budget",)

    def watch_time(self, state, items, terms, draws):
        return np.minimum(np.maximum(state["budget"], 0.0), items.length)

    def expected_watch_time(self, state, items, terms):
        return np.minimum(np.maximum(align(state["budget"], items.length), 0.0), items.length)


class ChocKaleParams(_Params):
    choc_mean: float = 5.0
    choc_stddev: float = Field(1.0, ge=0.0)
    kale_mean: float = 4.0
    kale_stddev: float = Field(1.0, ge=0.0)
    unit: Duration = Field(1.0, gt=0.0, description="seconds per unit of engagement")


class ChocKaleEngagement(ResponseModel):
    """RecSim long-term satisfaction: engagement e^X with

        X ~ N(SAT·(c·μ_choc + (1 − c)·μ_kale), (c·σ_choc + (1 − c)·σ_kale)²),

    c the item's clickbait and SAT the user's wellbeing *before* the item (RecSim draws the
    response before it updates the state); watched for τ = min(L, ``unit``·e^X) seconds.
    E[e^X | SAT] = exp(SAT·μ_c + σ_c²/2) (μ_c, σ_c the clickbait-mixed mean and sd), so with
    items much longer than ``unit``·e^X the mean watch time is ``unit`` times that. With
    RecSim's ``lts_exposure`` transition, SAT = sigmoid(κ·NPE); with the default transition it
    is the default model's wellbeing."""

    Params = ChocKaleParams
    streams = ("watch",)

    def watch_time(self, state, items, terms, draws):
        x = f.choc_kale_log_engagement(items.clickbait, state["wellbeing"], draws.normal("watch"), self.params)
        return np.minimum(items.length, self.params.unit * np.exp(x))

    def expected_watch_time(self, state, items, terms):
        p = self.params
        c = items.clickbait
        m = f.choc_kale_log_engagement(c, align(state["wellbeing"], c), 0.0, p)
        s = c * p.choc_stddev + (1.0 - c) * p.kale_stddev
        # E[min(L, unit·e^X)] = unit·E[min(L/unit, e^X)], X ~ N(m, s²)
        return p.unit * f.capped_lognormal_mean(items.length / p.unit, items.log_length - np.log(p.unit), m, s)


# ----------------------------------------------------------------------------- transition, value
class ExposureParams(_Params):
    memory_discount: float = Field(0.7, ge=0.0, lt=1.0, description="γ, how much NPE is kept per item")
    sensitivity: float = Field(0.01, description="κ: SAT = sigmoid(κ·NPE)")
    innovation_stddev: float = Field(0.05, ge=0.0, description="σ of the NPE noise per item")
    initial: float = Field(0.0, description="NPE of a new user")


class NetPositiveExposure(StateTransition):
    """RecSim long-term satisfaction: NPE ← γ·NPE − 2(c − ½) + σ·z after each item of
    clickbait c (z standard normal, from the ``exposure`` stream); wellbeing (RecSim's
    satisfaction) SAT = sigmoid(κ·NPE). Under a constant clickbait c the stationary mean is
    N* = −2(c − ½)/(1 − γ) and the stationary sd σ/√(1 − γ²). Provides ``npe`` (starting at
    ``initial``; RecSim draws it uniformly in ±½/(1 − γ)). Nothing else of the user's state
    changes (no topic drift, appetite or fatigue)."""

    Params = ExposureParams
    streams = ("exposure",)
    provides = ("npe",)

    def initial_state(self, state, start):
        return {"npe": np.full(state.n_rows, self.params.initial)}

    def consume(self, state, items, terms, watch_time, value, now, draws):
        p = self.params
        return {"npe": f.net_positive_exposure(state["npe"], items.clickbait, draws.normal("exposure"),
                                               p.memory_discount, p.innovation_stddev)}

    def wellbeing(self, state):
        return f.wellbeing(state["npe"], self.params.sensitivity)


class KaleValue(ValueModel):
    """The long-term-satisfaction model's value of an item: its push on NPE, V = −2(c − ½)
    (+1 for pure kale, −1 for pure choc), whatever was watched."""

    def value(self, state, items, terms, watch_time):
        return f.net_positive_exposure(0.0, items.clickbait, 0.0, 0.0, 0.0)


# ----------------------------------------------------------------------------- sessions
class TimeBudgetParams(_Params):
    budget: Duration = Field(200 * 60.0, description="the budget a session starts with (RecSim: 200 minutes)")
    extension: float = Field(
        0.9 / 3.4, description="α_b: budget += α_b·τ·q after a watch (RecSim: 0.9/3.4)")
    no_click_penalty: Duration = Field(
        30.0, description="budget lost on a slate without a click (RecSim: 0.5 minutes)")
    min_budget: Duration = Field(
        0.0, description="the session ends when the budget is at or below this (RecSim: 0, "
        "with which a session of items of positive quality never ends; e.g. 1s ends it)")

    @model_validator(mode="after")
    def _starts_above_min(self) -> "TimeBudgetParams":
        if self.budget <= self.min_budget:
            raise ValueError("the budget must be larger than min_budget (a session would end at once)")
        return self


class TimeBudget(SessionRule):
    """RecSim interest evolution's session: a time budget b, reset to ``budget`` when a
    session starts, spent by watching and extended by quality,

        b ← b − τ + α_b·τ·q  after a watch of τ seconds of an item of quality q,
        b ← b − ``no_click_penalty``  after a slate without a click,

    the session ending when b ≤ ``min_budget``. With the ``budget_watch`` response
    (τ = min(b, L)) a session of items of quality q ≤ 0 ends after ⌈B/(L(1 − α_b·q))⌉ clicks.
    With 0 < α_b·q < 1 and ``min_budget: 0`` (RecSim's rule) it never ends: once b < L each
    watch is partial, τ = b, so b ← α_b·q·b shrinks geometrically without reaching 0, and the
    total watch time tends to B/(1 − α_b·q) (in floating point b sinks into subnormal numbers
    and can stall at a fixed point above 0). Such a session lasts until the horizon, one
    slate per scan time, and with a scan time of 0 its steps take no simulated time at all:
    set ``min_budget`` (e.g. ``1s``) to end it after ⌈log(b/min_budget)/log(1/(α_b·q))⌉
    partial items, b the budget below L that the last full watch leaves."""

    Params = TimeBudgetParams
    provides = ("budget",)

    def initial_state(self, state, start):
        return {"budget": np.full(state.n_rows, self.params.budget)}

    def start(self, state, draws):
        return {"budget": np.full(state.n_rows, self.params.budget)}

    def after_watch(self, state, items, terms, watch_time, value, draws):
        p = self.params
        budget = f.spend_budget(state["budget"], watch_time, items.quality, p.extension)
        return budget > p.min_budget, {"budget": budget}

    def after_no_click(self, state, draws):
        p = self.params
        budget = state["budget"] - p.no_click_penalty
        return budget > p.min_budget, {"budget": budget}


class PatienceParams(_Params):
    initial: float = Field(5.0, gt=0.0, description="patience at the start of a session (and of a new user)")
    threshold: float = Field(0.0, description="an item of value below this is unsatisfying")
    cost: float = Field(1.0, ge=0.0, description="patience an unsatisfying item uses up")
    no_click_cost: float = Field(1.0, ge=0.0, description="patience a slate without a click uses up")


class Patience(SessionRule):
    """A patience stock P (KuaiSim's leave model), reset to ``initial`` when a session starts:

        P ← P − ``cost``·[V < ``threshold``]  after a watch of value V,
        P ← P − ``no_click_cost``              after a slate without a click,

    and the user leaves when P is used up (P ≤ 0). So a session in which every item is
    unsatisfying holds ⌈initial/cost⌉ items; satisfying items cost nothing (with ``cost: 0``
    or all values above the threshold only no-click slates end a session). A stock within
    10⁻⁹·``initial`` of 0 counts as used up, so that decimal costs that should use the stock
    up exactly do (1 − 10 × 0.1 is 1.4e-16 in floating point, not 0).

    With RecSim's long-term-satisfaction model (V = −2(c − ½) ∈ [−1, 1]) a ``threshold``
    above 1 makes every item cost ``cost``: sessions of ⌈initial/cost⌉ items, RecSim's
    per-session item budget."""

    Params = PatienceParams
    provides = ("patience",)

    def _left(self, patience):
        """Whether some patience is left (see the tolerance in the class docstring)."""
        return patience > 1e-9 * self.params.initial

    def initial_state(self, state, start):
        return {"patience": np.full(state.n_rows, self.params.initial)}

    def start(self, state, draws):
        return {"patience": np.full(state.n_rows, self.params.initial)}

    def after_watch(self, state, items, terms, watch_time, value, draws):
        p = self.params
        patience = f.lose_patience(state["patience"], value, p.threshold, p.cost)
        return self._left(patience), {"patience": patience}

    def after_no_click(self, state, draws):
        patience = state["patience"] - self.params.no_click_cost
        return self._left(patience), {"patience": patience}


# ----------------------------------------------------------------------------- returns, churn, surveys
class PoissonParams(_Params):
    rate: Rate = Field(1.5 / 86400, description="returns per second (e.g. '1.5/d')")


class PoissonReturns(ReturnProcess):
    """Returns at a constant rate λ: exponential gaps of mean 1/λ after each session's end
    (and from the start of the run for the first session), sampled by the same thinning as
    the default (the bound equals the intensity, so every candidate is accepted; two
    uniforms of the ``returns`` stream per return)."""

    Params = PoissonParams
    streams = ("returns",)

    def next_return(self, state, now, until, draws):
        rate = self.params.rate

        def constant(rows, t):
            return np.full(t.shape[0], rate)

        return f.thinning(now, until, constant, constant, lambda rows: draws.uniform("returns", rows))


class NoChurn(ChurnRule):
    """Users never quit."""

    def probability(self, state):
        return np.zeros(state.n_rows)


class NoSurvey(SurveyModel):
    """Nobody is ever asked."""

    def respond(self, state, session, draws):
        return np.full(state.n_rows, np.nan)


class NoRelaxation(Relaxation):
    """Nothing changes between sessions (fatigue included): RecSim's users, whose state
    only moves when they consume something."""

    def relax(self, state, dt, now):
        return {}
