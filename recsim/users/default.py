"""recsim's default user model (``docs/model.md``), as components over :mod:`.formulas`.

Each class here is one part of the model; its parameters are a section of the scenario's
``behaviour:`` (or ``population:`` for the sampler), and its arithmetic is the functions of
:mod:`recsim.users.formulas` — nothing is computed here that is not written there.
"""

from __future__ import annotations

import numpy as np

from ..catalog import unit_rows
from ..config import (
    AllureConfig,
    BehaviourConfig,
    ChoiceConfig,
    ChurnConfig,
    ContinuationConfig,
    PopulationConfig,
    ReturnsConfig,
    SurveyConfig,
    ValueConfig,
    WatchConfig,
)
from .. import kernels
from . import formulas as f
from .components import (
    AllureModel,
    ChoiceModel,
    ChurnRule,
    Relaxation,
    ResponseModel,
    ReturnProcess,
    SessionRule,
    SessionSummary,
    StateTransition,
    SurveyModel,
    UserSampler,
    ValueModel,
)
from .state import Draws, ItemView, StateView, align

__all__ = [
    "PopulationSampler",
    "Allure",
    "Value",
    "LogitChoice",
    "LogNormalWatch",
    "Consumption",
    "BetweenSessions",
    "Continuation",
    "HawkesReturns",
    "ValueChurn",
    "LinearSurvey",
]


def _catalog_ids(items, formulas: tuple[str, ...]) -> np.ndarray | None:
    """The ids of ``items`` as ``(B, c)`` when a compiled kernel standing for ``formulas``
    (names in :mod:`.formulas`) can read the catalog's arrays directly: kernels on, the
    formulas as defined (:func:`.formulas.as_defined`), a catalog's :class:`ItemView` of
    ``(B,)`` or ``(B, c)`` ids. None to compute with the formulas themselves."""
    if not kernels.enabled() or type(items) is not ItemView or not f.as_defined(*formulas):
        return None
    catalog, ids = items.catalog, items.ids
    if getattr(catalog, "topics", None) is None or not isinstance(ids, np.ndarray) \
            or ids.ndim not in (1, 2) or ids.dtype.kind != "i":
        return None
    return ids if ids.ndim == 2 else ids.reshape(ids.shape[0], 1)  # (also for B = 0)


def _floats(x, ndim: int) -> bool:
    """True if ``x`` is a plain float64 array of ``ndim`` axes (what a kernel takes as is)."""
    return type(x) is np.ndarray and x.dtype == np.float64 and x.ndim == ndim


class PopulationSampler(UserSampler):
    """Users around a home topic cluster (``population:`` settings): θ₀ = normalize(center +
    noise), a₀ ~ Beta (the home cluster's own Beta when ``appetite_by_cluster`` names it), a
    vulnerable share with a high susceptibility, others log-normal around 1, and an initial
    satisfaction S₀. θ and a start at θ₀ and a₀."""

    Params = PopulationConfig
    provides = ("home_cluster", "vulnerable", "susceptibility", "theta0", "theta", "appetite0",
                "appetite", "satisfaction")

    def sample(self, n_users: int, centers: np.ndarray, rng: np.random.Generator) -> dict[str, np.ndarray]:
        p = self.params
        n, k = n_users, centers.shape[1]
        home = rng.integers(0, centers.shape[0], size=n)
        theta0 = unit_rows(centers[home] + rng.normal(0.0, p.home_noise, size=(n, k)))
        a0 = rng.beta(*p.appetite, size=n)
        vulnerable = rng.random(n) < p.vulnerable_share
        ordinary = np.exp(rng.normal(0.0, p.susceptibility_log_sd, size=n))
        # Home clusters with their own appetite (population.appetite_by_cluster) redraw their
        # users' a₀ after every other draw, cluster by cluster in index order: without the
        # option the draws are exactly those above, and with it everything else stays the same.
        for index, beta in sorted((p.appetite_by_cluster or {}).items()):
            mine = np.flatnonzero(home == index)
            a0[mine] = rng.beta(*beta, size=mine.size)
        return {
            "home_cluster": home,
            "vulnerable": vulnerable,
            "susceptibility": np.where(vulnerable, p.vulnerable_susceptibility, ordinary),
            "theta0": theta0,
            "theta": theta0.copy(),
            "appetite0": a0,
            "appetite": a0.copy(),
            "satisfaction": np.full(n, p.initial_satisfaction),
        }


class Allure(AllureModel):
    """Relevance r = θ·x and allure A = w_r·r + w_e·g(e; a) + w_c·b (``behaviour.allure``)."""

    Params = AllureConfig
    requires = ("theta", "appetite")

    def score(self, state: StateView, items: ItemView) -> dict[str, np.ndarray]:
        ids = _catalog_ids(items, ("relevance", "grip", "allure"))
        if ids is not None:  # the compiled kernel: the same numbers, no (K, B, c) gather
            from ..kernels.model import relevance_allure

            p, catalog = self.params, items.catalog
            r, A = relevance_allure(state["theta"], state["appetite"], catalog.topics,
                                    catalog.extremeness, catalog.clickbait, ids,
                                    p.w_r, p.w_e, p.w_c, p.delta, p.omega)
            shape = np.shape(items.ids)
            return {"relevance": r.reshape(shape), "allure": A.reshape(shape)}
        r = f.relevance(state["theta"], items.topics_by_topic)
        A = f.allure(r, items.extremeness, items.clickbait, align(state["appetite"], r), self.params)
        return {"relevance": r, "allure": A}


class Value(ValueModel):
    """V = v_r·r + v_q·q − v_h·e² − c_τ·minutes watched (``behaviour.value``)."""

    Params = ValueConfig

    def value(self, state, items, terms, watch_time):
        return f.value(terms["relevance"], items.quality, items.extremeness, watch_time, self.params)


class LogitChoice(ChoiceModel):
    """Multinomial logit over the slate with position term ℓ_k = log(k^−p) and an outside
    option U₀ = u₀ + φ_F·F (``behaviour.choice``)."""

    Params = ChoiceConfig
    requires = ("fatigue",)

    def probabilities(self, state, terms):
        p = self.params
        A = terms["allure"]
        utility = A + f.position_term(A.shape[1], p.position_exponent)
        return f.logit_probabilities(utility, f.outside_utility(state["fatigue"], p.u0, p.phi_f), p.beta)

    def click_probability_alone(self, state, terms):
        """P(click) of each of ``c`` items shown alone in position 1, ``(B, c)``: the
        probabilities above for ``B·c`` slates of one item (the logistic form, σ(β·(A + ℓ₁ −
        U₀))), without repeating the users' state ``c`` times."""
        p = self.params
        A = terms["allure"]
        B, c = A.shape
        F = state["fatigue"]
        if kernels.enabled() and _floats(A, 2) and _floats(F, 1) and F.shape[0] == B \
                and f.as_defined("position_term", "outside_utility", "logit_probabilities"):
            from ..kernels.model import click_probability_alone  # the same numbers, one pass

            return click_probability_alone(A, float(f.position_term(1, p.position_exponent)[0]), F,
                                           float(p.u0), float(p.phi_f), float(p.beta))
        utility = A.reshape(B * c, 1) + f.position_term(1, p.position_exponent)
        outside = np.repeat(f.outside_utility(F, p.u0, p.phi_f), c)
        return f.logit_probabilities(utility, outside, p.beta)[:, 1].reshape(B, c)


class LogNormalWatch(ResponseModel):
    """τ = min(L, T), log T ~ N(log L + μ_τ + α_A·A + α_W·(W − ½), σ_τ²) (``behaviour.watch``)."""

    Params = WatchConfig
    streams = ("watch",)

    def watch_time(self, state, items, terms, draws: Draws):
        return f.watch_time(items.length, items.log_length, terms["allure"], state["wellbeing"],
                            draws.normal("watch"), self.params)

    def expected_watch_time(self, state, items, terms):
        A = terms["allure"]
        ids = _catalog_ids(items, ("watch_log_mean", "capped_lognormal_mean", "expected_watch_time"))
        if ids is not None:
            from ..kernels.model import expected_watch_time

            p, catalog = self.params, items.catalog
            return expected_watch_time(catalog.length, catalog.log_length, ids, np.reshape(A, ids.shape),
                                       state["wellbeing"], p.mu, p.alpha_a, p.alpha_w, p.sigma).reshape(A.shape)
        return f.expected_watch_time(items.length, items.log_length, A, align(state["wellbeing"], A), self.params)


class Consumption(StateTransition):
    """After watching τ of item i: topic drift, the appetite ratchet, S ← γS + V + ε, habit
    ψ ← ψ·e^{−Δ/τ_ψ} + A, fatigue F ← F + τ/3600 (``behaviour.topic``, ``appetite``,
    ``satisfaction``, ``habit``). Wellbeing W = sigmoid(κ·S)."""

    Params = BehaviourConfig
    streams = ("satisfaction",)
    provides = ("habit", "habit_time", "fatigue")
    requires = ("theta", "appetite", "satisfaction", "susceptibility")

    def initial_state(self, state, start):
        n = state.n_rows
        return {"habit": np.zeros(n), "habit_time": np.full(n, float(start)), "fatigue": np.zeros(n)}

    def consume(self, state, items, terms, watch_time, value, now, draws):
        b = self.params
        frac = watch_time / items.length
        s = state["susceptibility"]
        A = terms["allure"]
        return {
            "theta": f.update_topic(state["theta"], items.topics, terms["relevance"], frac, s, b.topic.eta),
            "appetite": f.update_appetite(state["appetite"], items.extremeness, frac, s, b.appetite),
            "satisfaction": f.update_satisfaction(state["satisfaction"], value, draws.normal("satisfaction"),
                                                  b.satisfaction.gamma, b.satisfaction.noise),
            "habit": f.update_habit(state["habit"], A, now - state["habit_time"], b.habit.relax),
            "habit_time": now,
            "fatigue": f.add_fatigue(state["fatigue"], watch_time),
        }

    def wellbeing(self, state):
        return f.wellbeing(state["satisfaction"], self.params.satisfaction.kappa)


class BetweenSessions(Relaxation):
    """Away from the platform θ relaxes toward θ₀ (τ_θ), a toward a₀ (τ_a), S toward 0 (τ_S)
    and fatigue is gone (``behaviour.topic.relax``, ``appetite.relax``, ``satisfaction.relax``);
    habit, which decays continuously (τ_ψ, ``habit.relax``), is brought up to ``now`` — also
    for a user in a session (dt = 0), whose θ, a, S and F stay exactly as they are."""

    Params = BehaviourConfig
    requires = ("theta", "theta0", "appetite", "appetite0", "satisfaction", "habit", "habit_time", "fatigue")

    def relax(self, state, dt, now):
        b = self.params
        away = dt > 0  # a user in a session (dt = 0) keeps θ, a, S and F exactly
        theta = f.relax_topic(state["theta"], state["theta0"], dt, b.topic.relax)
        appetite = f.relax_toward(state["appetite"], state["appetite0"], dt, b.appetite.relax)
        satisfaction = f.relax_toward(state["satisfaction"], 0.0, dt, b.satisfaction.relax)
        return {
            "theta": np.where(away[:, None], theta, state["theta"]),
            "appetite": np.where(away, appetite, state["appetite"]),
            "satisfaction": np.where(away, satisfaction, state["satisfaction"]),
            # habit decays with time whether or not the user is away: brought up to `now`
            "habit": f.update_habit(state["habit"], 0.0, now - state["habit_time"], b.habit.relax),
            "habit_time": now,
            "fatigue": np.where(away, 0.0, state["fatigue"]),
        }


class Continuation(SessionRule):
    """After a watch, continue with probability sigmoid(c₀ + c_A·A + c_ψ·ψ − c_F·F); after a
    slate without a click, leave with probability ``p_leave_no_click`` (``behaviour.continuation``)."""

    Params = ContinuationConfig
    streams = ("continue", "no_click")
    requires = ("habit", "fatigue")

    def after_watch(self, state, items, terms, watch_time, value, draws):
        p = f.continue_probability(terms["allure"], state["habit"], state["fatigue"], self.params)
        return draws.uniform("continue") < p, {}

    def after_no_click(self, state, draws):
        return draws.uniform("no_click") >= self.params.p_leave_no_click, {}


class HawkesReturns(ReturnProcess):
    """Returns with intensity λ(t) = λ₀·d(t)·exp(b_W·(W(t) − ½)) + impulse and value kernels
    fed by each session's mean allure and positive mean value (``behaviour.returns``; W from
    ``behaviour.satisfaction``), sampled exactly by thinning."""

    Params = ReturnsConfig
    streams = ("returns",)
    provides = ("impulse", "slow", "kernel_time")
    requires = ("satisfaction",)

    def initial_state(self, state, start):
        n = state.n_rows
        return {"impulse": np.zeros(n), "slow": np.zeros(n), "kernel_time": np.full(n, float(start))}

    def end_session(self, state, session: SessionSummary, now):
        p = self.params
        dt = now - state["kernel_time"]
        return {
            "impulse": f.decay_and_add(state["impulse"], dt, p.tau_impulse, p.alpha_impulse, session.mean_allure),
            "slow": f.decay_and_add(state["slow"], dt, p.tau_value, p.alpha_value, session.mean_value),
            "kernel_time": now,
        }

    def next_return(self, state, now, until, draws):
        p = self.params
        sat = self.behaviour.satisfaction if self.behaviour is not None else BehaviourConfig().satisfaction
        t_end, S, impulse, slow = state["kernel_time"], state["satisfaction"], state["impulse"], state["slow"]
        compiled = self._compiled(now, until, (t_end, S, impulse, slow), draws, p, sat)
        if compiled is not None:
            return compiled

        def intensity(rows, t):
            return f.return_intensity(t, t_end[rows], S[rows], impulse[rows], slow[rows], p, sat.kappa, sat.relax)

        def bound(rows, t):
            return f.return_intensity_bound(t, t_end[rows], S[rows], impulse[rows], slow[rows], p,
                                            sat.kappa, sat.relax)

        return f.thinning(now, until, intensity, bound, lambda rows: draws.uniform("returns", rows))

    _FORMULAS = ("thinning", "return_intensity", "return_intensity_bound", "daily_cycle", "wellbeing",
                 "relax_toward")

    @staticmethod
    def _compiled(now, until, rows, draws, p, sat) -> np.ndarray | None:
        """:meth:`next_return` by one compiled kernel
        (:func:`recsim.kernels.model.hawkes_next_returns`: the same numbers, the same draws), or
        None when it may not stand in: kernels off, a formula it computes replaced, draws or
        state arrays not the engine's kinds."""
        if not (kernels.enabled() and type(draws) is Draws and f.as_defined(*HawkesReturns._FORMULAS)
                and np.ndim(until) == 0):
            return None
        now = np.asarray(now)
        B = now.shape[0] if now.ndim == 1 else -1
        if now.dtype != np.float64 or not all(type(a) is np.ndarray and a.dtype == np.float64
                                              and a.shape == (B,) for a in rows):
            return None
        arrays = draws.stream_arrays("returns")
        if arrays is None:
            return None
        from ..kernels.model import hawkes_next_returns

        return hawkes_next_returns(*arrays, now, float(until), *rows, float(p.base_rate),
                                   float(p.base_rate * (1.0 + p.cycle_amplitude)), float(p.cycle_amplitude),
                                   float(p.cycle_peak), float(p.b_w), float(p.tau_impulse),
                                   float(p.tau_value), float(sat.kappa), float(sat.relax))


class ValueChurn(ChurnRule):
    """Quit at a would-be return with probability sigmoid(ζ₀ − ζ₁·(Ū − u_out)), Ū an EMA of
    session mean value (``behaviour.churn``)."""

    Params = ChurnConfig
    provides = ("ubar",)

    def initial_state(self, state, start):
        return {"ubar": np.full(state.n_rows, self.params.initial)}

    def probability(self, state):
        return f.churn_probability(state["ubar"], self.params)

    def end_session(self, state, session):
        return {"ubar": f.update_ema(state["ubar"], session.mean_value, self.params.ema_weight)}


class LinearSurvey(SurveyModel):
    """After a session, with probability p, answer round(clip(intercept + slope·V̄ + noise·z,
    1, 5)) (``behaviour.survey``)."""

    Params = SurveyConfig
    streams = ("survey",)

    def respond(self, state, session, draws):
        p = self.params
        asked = draws.uniform("survey") < p.probability
        scores = np.full(asked.shape[0], np.nan)
        if asked.any():
            rows = np.flatnonzero(asked)
            scores[rows] = f.survey_score(session.mean_value[rows], draws.normal("survey", rows), p)
        return scores
