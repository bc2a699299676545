"""The behaviour model of DESIGN §2.3–2.5 as plain functions.

Every function works on scalars and on NumPy arrays (broadcasting), takes its randomness as
arguments (uniforms ``u`` or standard normals ``z``), and mutates nothing. Both engines and the
oracle policies call these, so the model is written down once.

Units: times in seconds, fatigue ``F`` in hours of watching, watch time ``tau`` in seconds.
"""

from __future__ import annotations

import math

import numpy as np
from scipy.special import expit, ndtr

from ..config import (
    AllureConfig,
    AppetiteDynamicsConfig,
    ChoiceConfig,
    ContinuationConfig,
    TopicDynamicsConfig,
    ValueConfig,
    WatchConfig,
)

__all__ = [
    "grip",
    "allure",
    "value",
    "wellbeing",
    "position_term",
    "outside_utility",
    "choice_probabilities",
    "sample_choice",
    "click_probability_alone",
    "watch_log_mean",
    "watch_time",
    "expected_watch_time",
    "continue_probability",
    "update_topic",
    "relax_topic",
    "update_appetite",
    "relax_toward",
    "update_satisfaction",
    "update_habit",
]

_max = np.maximum.reduce  # ndarray.max() and .sum() minus their Python-level wrappers
_sum = np.add.reduce


def grip(e, a, cfg: AllureConfig):
    """g(e; a) = exp(-(e - a - δ)² / (2ω²)): content just past the appetite grips most."""
    d = e - a - cfg.delta
    if type(d) is np.ndarray:
        # in place, on the fresh array ``d``; x / (-c) is bit-identical to (-x) / c
        np.multiply(d, d, out=d)
        d /= -(2.0 * cfg.omega * cfg.omega)
        return np.exp(d, out=d)
    return np.exp(-(d * d) / (2.0 * cfg.omega * cfg.omega))


def allure(r, e, b, a, cfg: AllureConfig):
    """A = w_r·r + w_e·g(e; a) + w_c·b — what pulls: clicks, watch time, continuation."""
    g = e - a
    if type(g) is np.ndarray and type(r) is np.ndarray and type(b) is np.ndarray and g.shape == r.shape == b.shape:
        # grip inlined, in place on fresh temporaries: the same operations
        g -= cfg.delta
        np.multiply(g, g, out=g)
        g /= -(2.0 * cfg.omega * cfg.omega)
        np.exp(g, out=g)
        g *= cfg.w_e
        A = cfg.w_r * r
        A += g
        g = np.multiply(b, cfg.w_c, out=g)
        A += g
        return A
    return cfg.w_r * r + cfg.w_e * grip(e, a, cfg) + cfg.w_c * b


def value(r, q, e, tau, cfg: ValueConfig):
    """V = v_r·r + v_q·q - v_h·e² - c_τ·(τ in minutes) — what helps (hidden)."""
    return cfg.v_r * r + cfg.v_q * q - cfg.v_h * e * e - cfg.c_tau * (tau / 60.0)


def wellbeing(S, kappa: float):
    """W = sigmoid(κ·S), in (0, 1)."""
    return expit(kappa * S)


def position_term(n: int, cfg: ChoiceConfig) -> np.ndarray:
    """ℓ_k = log(k^-p) for positions k = 1..n, shape ``(n,)``."""
    return -cfg.position_exponent * np.log(np.arange(1, n + 1, dtype=float))


def outside_utility(F, cfg: ChoiceConfig):
    """U₀ = u₀ + φ_F·F: tired users click less."""
    return cfg.u0 + cfg.phi_f * F


def choice_probabilities(
    slate_allure: np.ndarray, F: float, cfg: ChoiceConfig, position: np.ndarray | None = None
) -> np.ndarray:
    """Multinomial-logit probabilities over ``[outside, item 1, ..., item n]``, shape ``(n+1,)``.

    P(i) = exp(β(A_i + ℓ_k)) / (exp(β·U₀) + Σ_j exp(β(A_j + ℓ_kj))).
    ``position``, if given, is ``position_term(n, cfg)`` (callers cache it).
    """
    n = slate_allure.shape[0]
    z = np.empty(n + 1)
    z[0] = outside_utility(F, cfg)
    np.add(slate_allure, position_term(n, cfg) if position is None else position, out=z[1:])
    z *= cfg.beta
    z -= _max(z)
    np.exp(z, out=z)
    z /= _sum(z)
    return z


def sample_choice(probabilities: np.ndarray, u: float) -> int:
    """Index into the slate chosen by uniform ``u``, or -1 for the outside option (no click)."""
    # the first index whose cumulative probability exceeds u (np.searchsorted(np.cumsum(p), u,
    # side="right")), summed sequentially as np.cumsum does, without two NumPy calls
    c = 0.0
    index = 0
    for p in probabilities.tolist():
        c += p
        if c > u:
            return index - 1
        index += 1
    return index - 2  # u beyond the last cumulative value (rounding): the last item


def click_probability_alone(A, F, cfg: ChoiceConfig):
    """P(click) of an item shown alone in position 1: sigmoid(β(A - U₀)). Used by oracles."""
    return expit(cfg.beta * (A - outside_utility(F, cfg)))


def watch_log_mean(L, A, W, cfg: WatchConfig):
    """Mean of log T: log L + μ_τ + α_A·A + α_W·(W - ½)."""
    return np.log(L) + cfg.mu + cfg.alpha_a * A + cfg.alpha_w * (W - 0.5)


def watch_time(L: float, A: float, W: float, z: float, cfg: WatchConfig) -> float:
    """τ = min(L, T) with log T = watch_log_mean + σ·z (z a standard normal draw)."""
    m = math.log(L) + cfg.mu + cfg.alpha_a * A + cfg.alpha_w * (W - 0.5)
    return min(L, math.exp(m + cfg.sigma * z))


def expected_watch_time(L, A, W, cfg: WatchConfig, log_length=None):
    """E[min(L, T)] for log-normal T (closed form), in seconds; arrays broadcast.
    ``log_length``, if given, is ``np.log(L)`` (callers may keep it per item)."""
    log_l = np.log(L) if log_length is None else log_length
    m = log_l + cfg.mu + cfg.alpha_a * A + cfg.alpha_w * (W - 0.5)  # watch_log_mean
    s = cfg.sigma
    if s == 0:
        return np.minimum(L, np.exp(m))
    if type(m) is not np.ndarray:
        below = np.exp(m + 0.5 * s * s) * ndtr((log_l - m - s * s) / s)
        above = L * ndtr((m - log_l) / s)
        return below + above
    # the same operations as above, in place on fresh temporaries
    below = m + 0.5 * s * s
    np.exp(below, out=below)
    t = log_l - m
    t -= s * s
    t /= s
    below *= ndtr(t, out=t)
    np.subtract(m, log_l, out=m)
    m /= s
    above = ndtr(m, out=m)
    above *= L  # L·ndtr(·) == ndtr(·)·L
    above += below  # below + above, commuted
    return above


def continue_probability(A, psi, F, cfg: ContinuationConfig):
    """P(continue the session after an item) = sigmoid(c₀ + c_A·A + c_ψ·ψ - c_F·F)."""
    x = cfg.c0 + cfg.c_a * A + cfg.c_psi * psi - cfg.c_f * F
    if type(x) is float:
        # the per-event path; scipy's expit is 1 / (1 + exp(-x)) with the C library's exp,
        # so this is bit-identical to it, without the cost of a ufunc call
        return 1.0 / (1.0 + math.exp(-x))
    return expit(x)


def update_topic(theta, x, r, frac, s, cfg: TopicDynamicsConfig):
    """θ ← normalize(θ + η_θ·s·r·(τ/L)·x). Returns a new vector; ``theta`` is not mutated."""
    if theta.ndim == 1:
        # the per-event path: the same operations as below with fewer NumPy calls
        # (np.linalg.norm(v, axis=-1) is sqrt(add.reduce(v * v)))
        new = x * (cfg.eta * s * r * frac)
        new += theta
        norm = math.sqrt(np.add.reduce(new * new))
        if norm > 0:
            new /= norm
            return new
        return theta
    step = np.asarray(cfg.eta * s * r * frac)[..., None]
    new = theta + step * x
    norm = np.linalg.norm(new, axis=-1, keepdims=True)
    return np.where(norm > 0, new / np.where(norm > 0, norm, 1.0), theta)


def relax_topic(theta, theta0, dt, tau):
    """Between sessions θ relaxes toward θ₀: normalize(θ₀ + (θ - θ₀)·e^{-dt/τ}).
    ``theta`` may be ``(K,)`` or ``(n, K)`` with ``dt`` scalar or ``(n,)``."""
    if np.ndim(theta) == 1 and type(dt) is float:
        # the per-session path: the same operations as below with fewer NumPy calls
        keep = float(np.exp(-dt / tau)) if tau > 0 else 0.0
        new = theta - theta0
        new *= keep
        new += theta0
        norm = math.sqrt(np.add.reduce(new * new))
        if norm > 0:
            new /= norm
            return new
        return theta0
    keep = np.exp(-np.asarray(dt, dtype=float) / tau) if tau > 0 else np.zeros_like(np.asarray(dt, dtype=float))
    if np.ndim(theta) > 1:
        keep = np.asarray(keep)[..., None]
    new = theta0 + (theta - theta0) * keep
    norm = np.linalg.norm(new, axis=-1, keepdims=True)
    return np.where(norm > 0, new / np.where(norm > 0, norm, 1.0), theta0)


def update_appetite(a, e, frac, s, cfg: AppetiteDynamicsConfig):
    """Appetite ratchet a ← a + η_up·s·(τ/L)·[e - a]₊ - η_down·[a - e]₊, kept in [0, 1]."""
    if type(a) is float and type(e) is float and type(frac) is float:
        # the per-event path, without NumPy scalars (max/min of floats are exact; e - a and
        # a - e are never -0.0, so max(·, 0.0) agrees with np.maximum)
        up = cfg.eta_up * s * frac * max(e - a, 0.0)
        down = cfg.eta_down * max(a - e, 0.0)
        return min(max(a + up - down, 0.0), 1.0)
    up = cfg.eta_up * s * frac * np.maximum(e - a, 0.0)
    down = cfg.eta_down * np.maximum(a - e, 0.0)
    return np.clip(a + up - down, 0.0, 1.0)


def relax_toward(x, target, dt, tau):
    """Exponential relaxation of ``x`` toward ``target`` over ``dt`` with time constant ``tau``."""
    keep = np.exp(-np.asarray(dt) / tau) if tau > 0 else 0.0
    return target + (x - target) * keep


def update_satisfaction(S, V, eps, gamma: float):
    """S ← γ_S·S + V + ε."""
    return gamma * S + V + eps


def update_habit(psi, A, dt, tau):
    """ψ ← ψ·e^{-dt/τ_ψ} + A (dt: time since the last habit update)."""
    if np.ndim(psi) == 0 and np.ndim(dt) == 0:
        return psi * math.exp(-dt / tau) + A  # the per-event path: avoid NumPy scalar overhead
    return psi * np.exp(-np.asarray(dt) / tau) + A
