"""Returns to the platform (DESIGN §2.6): a two-speed Hawkes-style intensity, sampled exactly
by thinning (Lewis–Shedler), and the churn probability.

λ(t) = λ₀·d(t)·exp(b_W·(W(t) - ½)) + I₁·e^{-(t-t_end)/τ₁} + I₂·e^{-(t-t_end)/τ₂}

where ``I₁ = Σ_s α₁·[Ā_s]₊·e^{-(t_end - t_s)/τ₁}`` and ``I₂ = Σ_s α₂·[V̄_s]₊·e^{-(t_end-t_s)/τ₂}``
are the kernels' sums at the end of the last session (kept as two decaying accumulators), and
W(t) = sigmoid(κ·S·e^{-(t - t_end)/τ_S}) because S decays toward 0 between sessions.
Session-mean allure is clipped at 0 so the intensity stays non-negative.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

from ..config import ReturnsConfig

__all__ = ["ReturnState", "daily_cycle", "return_intensity", "next_return", "churn_probability"]

DAY = 86400.0


@dataclass
class ReturnState:
    """What the intensity depends on after the last session ended (at ``t_end``)."""

    t_end: float
    satisfaction: float  # S at t_end
    impulse: float  # I₁ at t_end (per second)
    slow: float  # I₂ at t_end (per second)


def daily_cycle(t: float, cfg: ReturnsConfig) -> float:
    """d(t) = 1 + amplitude·cos(2π(t - peak)/1 day): mean 1, highest at the peak time of day."""
    return 1.0 + cfg.cycle_amplitude * math.cos(2.0 * math.pi * (t - cfg.cycle_peak) / DAY)


def _wellbeing_at(t: float, state: ReturnState, kappa: float, tau_s: float) -> float:
    s = state.satisfaction * (math.exp(-(t - state.t_end) / tau_s) if tau_s > 0 else 0.0)
    return 1.0 / (1.0 + math.exp(-kappa * s))


def return_intensity(
    t: float, state: ReturnState, cfg: ReturnsConfig, kappa: float, tau_s: float
) -> float:
    """λ(t) in returns per second, for ``t >= state.t_end``."""
    dt = t - state.t_end
    w = _wellbeing_at(t, state, kappa, tau_s)
    base = cfg.base_rate * daily_cycle(t, cfg) * math.exp(cfg.b_w * (w - 0.5))
    return (
        base
        + state.impulse * math.exp(-dt / cfg.tau_impulse)
        + state.slow * math.exp(-dt / cfg.tau_value)
    )


def _bound(t: float, state: ReturnState, cfg: ReturnsConfig, kappa: float, tau_s: float) -> float:
    """An upper bound of λ on [t, ∞): W(t) moves monotonically toward ½ and kernels decay."""
    dt = t - state.t_end
    w = _wellbeing_at(t, state, kappa, tau_s)
    base = cfg.base_rate * (1.0 + cfg.cycle_amplitude) * math.exp(max(cfg.b_w * (w - 0.5), 0.0))
    return (
        base
        + state.impulse * math.exp(-dt / cfg.tau_impulse)
        + state.slow * math.exp(-dt / cfg.tau_value)
    )


def next_return(
    now: float,
    until: float,
    state: ReturnState,
    cfg: ReturnsConfig,
    kappa: float,
    tau_s: float,
    uniform: Callable[[], float],
) -> float:
    """The next return time after ``now`` by exact thinning, or ``math.inf`` if none by ``until``.

    ``uniform()`` returns the next uniform of the user's ``returns`` stream; each candidate
    point consumes two (the gap and the acceptance).
    """
    # _bound and return_intensity inlined (this runs once per session of every user): the
    # same expressions, evaluated in the same order, so the same numbers
    exp = math.exp
    t_end, s_end, impulse, slow = state.t_end, state.satisfaction, state.impulse, state.slow
    base_rate, amplitude, peak, b_w = cfg.base_rate, cfg.cycle_amplitude, cfg.cycle_peak, cfg.b_w
    tau_impulse, tau_value = cfg.tau_impulse, cfg.tau_value
    base_bound = base_rate * (1.0 + amplitude)
    two_pi = 2.0 * math.pi
    t = now
    while True:
        dt = t - t_end
        s = s_end * (exp(-(t - t_end) / tau_s) if tau_s > 0 else 0.0)
        w = 1.0 / (1.0 + exp(-kappa * s))
        bound = (
            base_bound * exp(max(b_w * (w - 0.5), 0.0))
            + impulse * exp(-dt / tau_impulse)
            + slow * exp(-dt / tau_value)
        )
        if bound <= 0.0:
            return math.inf
        t += -math.log(uniform()) / bound
        if t > until:
            return math.inf
        dt = t - t_end
        s = s_end * (exp(-(t - t_end) / tau_s) if tau_s > 0 else 0.0)
        w = 1.0 / (1.0 + exp(-kappa * s))
        cycle = 1.0 + amplitude * math.cos(two_pi * (t - peak) / DAY)
        intensity = (
            base_rate * cycle * exp(b_w * (w - 0.5))
            + impulse * exp(-dt / tau_impulse)
            + slow * exp(-dt / tau_value)
        )
        if uniform() * bound <= intensity:
            return t


def churn_probability(ubar: float, zeta0: float, zeta1: float, u_out: float) -> float:
    """P(quit for good at a would-be return) = sigmoid(ζ₀ - ζ₁·(Ū - u_out))."""
    x = zeta0 - zeta1 * (ubar - u_out)
    return 1.0 / (1.0 + math.exp(-x))
