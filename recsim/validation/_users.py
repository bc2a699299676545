"""User-model components of the validation suite's own, written the way a user brings theirs
(subclasses of the public interfaces of :mod:`recsim.users`, ``Params`` as pydantic models,
held to :func:`recsim.testing.check_user_model`), named in ``scenarios/validation/`` as
``"recsim.validation._users:ClassName"``. Nothing in recsim's shipped model depends on them.

* :class:`NeedStockReturns` — returns driven by a *need stock* that consumption depletes
  (Saig & Rosenfeld, ICML 2023; target 7, :mod:`recsim.validation.breaks`): the visit rate
  λ ("drive") and the need μ ("interest") follow the paper's Lotka–Volterra system, stepped
  once per visit, and the next visit comes at the rate λ.
* :class:`SessionUtilityChurn` — the user keeps visiting only while the utility of a whole
  session (the sum of the values of its items, not their mean) is at least the outside option
  (Kleinberg, Mullainathan & Raghavan 2022; target 9, :mod:`recsim.validation.cold_turkey`).
"""

from __future__ import annotations

from typing import Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from ..config import Duration
from ..users import ChurnRule, ReturnProcess

__all__ = ["NeedStockReturns", "SessionUtilityChurn", "lv_equilibrium", "lv_optimal_break"]


# ============================================================================ need stock
def lv_equilibrium(alpha: float, beta: float, gamma: float, delta: float, a: float) -> tuple[float, float]:
    """The interior equilibrium (λ*, μ*) of the Lotka–Volterra system of Saig & Rosenfeld
    with a share ``a`` = 1 − p of visits that consume (p the per-visit break probability):

        dλ/dt = λ·(−α + a·β·μ),     dμ/dt = μ·(γ·(1 − μ) − a·δ·λ)

    μ* = α/(aβ), λ* = (γ/(aδ))·(1 − α/(aβ)) when aβ > α; otherwise the drive dies out
    (λ* = 0, μ* = 1). See :mod:`recsim.validation.breaks` for the derivation."""
    if a * beta <= alpha:
        return 0.0, 1.0
    mu = alpha / (a * beta)
    return (gamma / (a * delta)) * (1.0 - mu), mu


def lv_optimal_break(alpha: float, beta: float) -> float:
    """The break probability maximizing λ*: p* = 1 − 2α/β (0 when 2α ≥ β)."""
    return max(0.0, 1.0 - 2.0 * alpha / beta)


class NeedStockParams(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)
    alpha: float = Field(0.2, ge=0.0, description="α: how fast the drive λ decays, per unit of model time")
    beta: float = Field(1.0, ge=0.0, description="β: drive gained per unit of need, per consuming visit")
    gamma: float = Field(1.0, ge=0.0, description="γ: logistic regrowth rate of the need μ (capacity 1)")
    delta: float = Field(1.0, ge=0.0, description="δ: need used up per unit of drive, per consuming visit")
    step: float = Field(0.05, gt=0.0, le=1.0,
                        description="h: model time per visit (each visit is one Euler step of size h)")
    unit: Duration = Field(86400.0, gt=0.0, description="λ is in visits per `unit` of simulated time")
    initial_drive: float = Field(1.0, gt=0.0, description="λ at the start of the run (visits per unit)")
    initial_need: float = Field(0.5, gt=0.0, le=1.0, description="μ at the start of the run")
    gaps: Literal["exponential", "deterministic"] = Field(
        "exponential",
        description="the time to the next visit: Exp(λ) (a point process of intensity λ, constant "
                    "between visits) or exactly 1/λ (the authors' simulator)")


class NeedStockReturns(ReturnProcess):
    """Returns driven by a need stock (Saig & Rosenfeld 2023): two hidden fields, the drive
    ``drive`` (λ, the visit rate, in visits per ``unit``) and the need ``need`` (μ ∈ (0, 1]).

    At the end of every session (a visit), with c = 1 if the user watched something and
    c = 0 if the visit was a break (an empty slate, or nothing watched), both are moved by one
    Euler step of size h of the paper's system, from their values before the visit::

        λ ← λ·(1 + h·(−α + β·μ·c))
        μ ← μ·(1 + h·(γ·(1 − μ) − δ·λ·c))

    Consuming feeds the drive in proportion to the need (positive feedback) and depletes the
    need in proportion to the drive (negative feedback); a break lets the need regrow while the
    drive decays. The next visit comes after an Exp(λ) gap (one uniform of the ``returns``
    stream per visit), or after exactly 1/λ with ``gaps: deterministic``. This is the authors'
    discrete simulator (``lvml.core.simulation``, with its ``dt`` as ``h``), one item per visit:
    its expected step is h times the right-hand side of the ODE, so it has the ODE's
    equilibria, and it follows the ODE as h → 0 (with fluctuations of order √h)."""

    Params = NeedStockParams
    streams = ("returns",)
    provides = ("drive", "need")

    def initial_state(self, state, start):
        n = state.n_rows
        return {"drive": np.full(n, self.params.initial_drive), "need": np.full(n, self.params.initial_need)}

    def end_session(self, state, session, now):
        p = self.params
        lam, mu = state["drive"], state["need"]
        c = (session.n_watched > 0).astype(float)
        new_lam = lam * (1.0 + p.step * (-p.alpha + p.beta * mu * c))
        new_mu = mu * (1.0 + p.step * (p.gamma * (1.0 - mu) - p.delta * lam * c))
        return {"drive": np.maximum(new_lam, 0.0), "need": np.clip(new_mu, 0.0, 1.0)}

    def next_return(self, state, now, until, draws):
        p = self.params
        rate = state["drive"] / p.unit  # visits per second
        if p.gaps == "exponential":
            u = draws.uniform("returns")
            with np.errstate(divide="ignore"):
                gap = -np.log(u) / rate
        else:
            with np.errstate(divide="ignore"):
                gap = 1.0 / rate
        t = np.maximum(now + gap, np.nextafter(now, np.inf))
        return np.where(np.isfinite(t) & (t <= until), t, np.inf)


# ============================================================================ session utility
class SessionUtilityParams(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)
    prior: float = Field(1.5, description="Û₀: the expected session utility before any session")
    prior_sessions: float = Field(20.0, ge=0.0, description="n₀: how many sessions the prior is worth")
    outside_option: float = Field(0.75, description="u₀: the utility of not visiting (the visit's alternative)")
    sharpness: float | None = Field(
        None, gt=0.0,
        description="None: quit exactly when Û < u₀ (the paper's deterministic comparison); a number k: "
                    "P(quit) = sigmoid(k·(u₀ − Û)) instead")


class SessionUtilityChurn(ChurnRule):
    """Quit when a visit is expected to be worth less than the outside option (Kleinberg,
    Mullainathan & Raghavan 2022): the user's System 2 compares the utility of a *whole session*
    — the sum of the values V of the items it holds, U = n·V̄ (recsim's V already charges
    ``c_tau`` per minute watched, the time's opportunity cost) — with the outside option u₀ of
    a visit.

    Û (field ``session_utility``) is the user's expectation of U, learnt from experience: the
    mean of the utilities of the sessions so far (a session without a watch is worth 0) and of
    a prior Û₀ worth n₀ sessions, Û = (n₀·Û₀ + Σ U)/(n₀ + n) (field ``sessions_judged`` = n) —
    the posterior mean of E[U] under a normal prior, which converges to the expectation the
    paper's System 2 knows. At each would-be return the user quits for good when Û < u₀
    (``sharpness: None``), or with probability sigmoid(k·(u₀ − Û)).

    Contrast recsim's default churn (``value_ema``): an EMA (weight 0.2) of the session's *mean*
    value V̄ — how long the session was does not count — through a smooth hazard
    sigmoid(ζ₀ − ζ₁·(Ū − u_out)) per return."""

    Params = SessionUtilityParams
    provides = ("session_utility", "sessions_judged")

    def initial_state(self, state, start):
        n = state.n_rows
        return {"session_utility": np.full(n, self.params.prior), "sessions_judged": np.zeros(n)}

    def end_session(self, state, session):
        n0 = self.params.prior_sessions
        n = state["sessions_judged"]
        total = session.n_watched * session.mean_value
        weight = 1.0 / (n0 + n + 1.0)
        return {"session_utility": state["session_utility"] + weight * (total - state["session_utility"]),
                "sessions_judged": n + 1.0}

    def probability(self, state):
        p = self.params
        gap = p.outside_option - state["session_utility"]
        if p.sharpness is None:
            return (gap > 0.0).astype(float)
        return 1.0 / (1.0 + np.exp(-np.clip(p.sharpness * gap, -700.0, 700.0)))
