"""The equations of recsim's default user model, each written once as an array function.

These are the formulas of the model documented in ``docs/model.md`` (relevance, allure,
value, wellbeing, the multinomial logit with an outside option and position term, watch
time, continuation, the hidden-state updates, relaxation between sessions, the return
intensity and its thinning bound, churn and surveys). The default components of
:mod:`recsim.users.default` call them, both engines and the oracles call those components,
and the unit tests call these very functions: there is no other copy of the model.

Conventions: every function takes NumPy arrays and broadcasts; per-user quantities are
``(B,)`` (one row per user of a batch), per-item ones ``(B,)`` or ``(B, n)`` (a slate of
``n`` per user; use :func:`recsim.users.state.align` to put a per-user quantity beside them);
topic vectors have a trailing ``K`` axis. Nothing is mutated; randomness enters only as
arguments (standard normals ``z``, uniforms ``u``). Times are seconds, fatigue ``F`` hours of
watching, watch time ``tau`` seconds. Every operation is elementwise or a reduction along the
last axis, so a user's numbers are the same bits whatever batch the user is in.
"""

from __future__ import annotations

import functools
from typing import Callable

import numpy as np
from scipy.special import expit, ndtr

from ..arrays import sum_first, vector_norm

__all__ = [
    "relevance",
    "grip",
    "allure",
    "value",
    "wellbeing",
    "position_term",
    "outside_utility",
    "logit_probabilities",
    "proportional_probabilities",
    "cascade_click",
    "cascade_probabilities",
    "sample_choice",
    "watch_log_mean",
    "watch_time",
    "capped_lognormal_mean",
    "expected_watch_time",
    "continue_probability",
    "update_topic",
    "relax_topic",
    "update_appetite",
    "relax_toward",
    "update_satisfaction",
    "update_habit",
    "add_fatigue",
    "session_mean",
    "update_ema",
    "decay_and_add",
    "daily_cycle",
    "return_intensity",
    "return_intensity_bound",
    "thinning",
    "spend_budget",
    "net_positive_exposure",
    "choc_kale_log_engagement",
    "lose_patience",
    "churn_probability",
    "survey_score",
]

HOUR = 3600.0
MINUTE = 60.0
DAY = 86400.0


def _unit_rows(v: np.ndarray, fallback: np.ndarray) -> np.ndarray:
    """Rows of ``v`` (``(..., K)``) scaled to unit norm, a zero row replaced by ``fallback``'s."""
    norm = vector_norm(v)[..., None]
    safe = np.where(norm > 0, norm, 1.0)
    return np.where(norm > 0, v / safe, fallback)


# ----------------------------------------------------------------------------- item terms
def relevance(theta: np.ndarray, topics_by_topic: np.ndarray) -> np.ndarray:
    """r = θ·x, the user's topic preference dotted with each item's true topic vector.

    ``theta`` ``(B, K)``; ``topics_by_topic`` the items' topic vectors with the topic axis
    first: ``(K, B)`` (one item per user) → ``(B,)``, or ``(K, B, n)`` (a slate per user) →
    ``(B, n)`` (:attr:`ItemView.topics_by_topic <recsim.users.state.ItemView>`). Summed term by
    term over topics (:func:`recsim.arrays.sum_first`, no BLAS), so the bits do not depend on
    the batch."""
    th = theta.T
    if topics_by_topic.ndim == 3:
        th = th[:, :, None]
    return sum_first(topics_by_topic * th)


def grip(e, a, delta: float, omega: float):
    """g(e; a) = exp(−(e − a − δ)² / (2ω²)): content just past the appetite grips most."""
    d = e - a - delta
    return np.exp(-(d * d) / (2.0 * omega * omega))


def allure(r, e, b, a, cfg):
    """A = w_r·r + w_e·g(e; a) + w_c·b — what pulls (clicks, watch time, continuation).

    ``cfg``: :class:`recsim.config.AllureConfig` (w_r, w_e, w_c, delta, omega)."""
    return cfg.w_r * r + cfg.w_e * grip(e, a, cfg.delta, cfg.omega) + cfg.w_c * b


def value(r, q, e, tau, cfg):
    """V = v_r·r + v_q·q − v_h·e² − c_τ·(τ in minutes) — what helps (hidden).

    ``tau`` in seconds; ``cfg``: :class:`recsim.config.ValueConfig`."""
    return cfg.v_r * r + cfg.v_q * q - cfg.v_h * e * e - cfg.c_tau * (tau / MINUTE)


def wellbeing(S, kappa: float):
    """W = sigmoid(κ·S), in (0, 1)."""
    return expit(kappa * np.asarray(S, dtype=float))


# ----------------------------------------------------------------------------- choice
@functools.lru_cache(maxsize=256)
def position_term(n: int, exponent: float) -> np.ndarray:
    """ℓ_k = log(k^−p) for positions k = 1..n, shape ``(n,)`` (read-only: computed once per
    slate length and exponent)."""
    out = -exponent * np.log(np.arange(1, n + 1, dtype=float))
    out.flags.writeable = False
    return out


def outside_utility(F, u0: float, phi_f: float):
    """U₀ = u₀ + φ_F·F: tired users click less (F in hours of watching)."""
    return u0 + phi_f * F


def logit_probabilities(utility: np.ndarray, outside: np.ndarray, beta: float) -> np.ndarray:
    """Multinomial logit with an outside option: ``(B, n+1)`` probabilities of
    ``[no click, position 1, ..., position n]``,

    P(k) = exp(β·U_k) / (exp(β·U₀) + Σ_j exp(β·U_j)), P(no click) = exp(β·U₀) / (same),

    from the slate's utilities ``(B, n)`` (allure plus position term) and the outside
    option's ``(B,)``. Shifted by the row maximum before exponentiating (stable for large
    utilities)."""
    B, n = utility.shape
    z = np.empty((B, n + 1))
    if n == 1:  # one item: the logistic form of the same probabilities (no max-shift needed)
        z[:, 1] = expit(beta * (utility[:, 0] - outside))
        np.subtract(1.0, z[:, 1], out=z[:, 0])
        return z
    z[:, 0] = outside
    z[:, 1:] = utility
    z *= beta
    z -= np.maximum.reduce(z, axis=1)[:, None]  # row by row: a row's bits do not depend on B
    np.exp(z, out=z)
    z /= np.add.reduce(z, axis=1)[:, None]
    return z


def sample_choice(probabilities: np.ndarray, u: np.ndarray) -> np.ndarray:
    """The slate index chosen in each row by inverse CDF with uniform ``u`` ``(B,)``: 0-based
    position, or −1 for no click. ``probabilities`` ``(B, n+1)`` list no click first.

    The first index whose cumulative probability exceeds ``u``; a ``u`` beyond the last
    cumulative value (rounding) picks the last position."""
    cum = np.cumsum(probabilities, axis=1)
    above = cum > np.asarray(u)[:, None]
    n = probabilities.shape[1] - 1
    first = np.where(above.any(axis=1), above.argmax(axis=1), n)
    return first - 1


def proportional_probabilities(score: np.ndarray, no_click_mass: float, min_normalizer: float) -> np.ndarray:
    """RecSim's multinomial proportional choice (Ie et al. 2019): ``(B, n+1)`` probabilities
    of [no click, position 1..n] proportional to s_j − s_min, the no click to m − s_min
    (m the no-click mass, s_min the normalizer). Weights below 0 count as 0; a row without
    any weight is a sure no click."""
    B, n = score.shape
    w = np.empty((B, n + 1))
    w[:, 0] = no_click_mass - min_normalizer
    w[:, 1:] = score - min_normalizer
    np.maximum(w, 0.0, out=w)
    total = np.add.reduce(w, axis=1)
    empty = total <= 0.0
    w[empty, 0] = 1.0
    total[empty] = 1.0
    return w / total[:, None]


def cascade_click(score, outside, beta: float, attention: float):
    """The cascade's probability of clicking an examined item: attention·sigmoid(β(s − U₀))."""
    return attention * expit(beta * (score - outside))


def cascade_probabilities(click: np.ndarray) -> np.ndarray:
    """A cascade over a slate (Craswell et al. 2008): the user examines positions in order and
    clicks position k with probability c_k, stopping at the first click. ``click`` ``(B, n)``
    holds c_k; returns ``(B, n+1)``: P(k) = Π_{j<k}(1 − c_j)·c_k, P(no click) = Π_j(1 − c_j)."""
    B, n = click.shape
    survive = np.cumprod(1.0 - click, axis=1)  # Π_{j≤k}(1 − c_j)
    out = np.empty((B, n + 1))
    out[:, 1] = click[:, 0]
    out[:, 2:] = survive[:, :-1] * click[:, 1:]
    out[:, 0] = survive[:, -1]
    return out


# ----------------------------------------------------------------------------- watching
def watch_log_mean(log_length, A, W, cfg):
    """Mean of log T: log L + μ_τ + α_A·A + α_W·(W − ½) (``cfg``: WatchConfig)."""
    return log_length + cfg.mu + cfg.alpha_a * A + cfg.alpha_w * (W - 0.5)


def watch_time(length, log_length, A, W, z, cfg):
    """τ = min(L, T), log T = :func:`watch_log_mean` + σ_τ·z, in seconds (z standard normal)."""
    return np.minimum(length, np.exp(watch_log_mean(log_length, A, W, cfg) + cfg.sigma * z))


def capped_lognormal_mean(cap, log_cap, m, s):
    """E[min(L, T)] for log T ~ N(m, s²) and a cap L (closed form; ``s`` a number or an
    array): exp(m + s²/2)·Φ((log L − m − s²)/s) + L·Φ((m − log L)/s), min(L, e^m) at s = 0."""
    if np.ndim(s) == 0:
        if s == 0:
            return np.minimum(cap, np.exp(m))
        # the same operations with three temporaries (this scores every candidate of an oracle)
        below = np.subtract(log_cap, m)
        if not isinstance(below, np.ndarray):  # numbers: the same operations, no buffers
            return np.exp(m + 0.5 * s * s) * ndtr((log_cap - m - s * s) / s) + cap * ndtr((m - log_cap) / s)
        below -= s * s
        below /= s
        ndtr(below, out=below)
        grow = np.add(m, 0.5 * s * s)
        np.exp(grow, out=grow)
        below *= grow
        above = np.subtract(m, log_cap)
        above /= s
        ndtr(above, out=above)
        above *= cap
        above += below
        return above
    s = np.asarray(s, dtype=float)
    safe = np.where(s > 0, s, 1.0)
    below = np.exp(m + 0.5 * s * s) * ndtr((log_cap - m - s * s) / safe)
    return np.where(s > 0, below + cap * ndtr((m - log_cap) / safe), np.minimum(cap, np.exp(m)))


def expected_watch_time(length, log_length, A, W, cfg):
    """E[τ | click] = E[min(L, T)] for the log-normal T of :func:`watch_time`, in seconds
    (:func:`capped_lognormal_mean`; the oracles use it)."""
    return capped_lognormal_mean(length, log_length, watch_log_mean(log_length, A, W, cfg), cfg.sigma)


def continue_probability(A, psi, F, cfg):
    """P(continue the session after an item) = sigmoid(c₀ + c_A·A + c_ψ·ψ − c_F·F)
    (``cfg``: ContinuationConfig; F in hours)."""
    return expit(cfg.c0 + cfg.c_a * A + cfg.c_psi * psi - cfg.c_f * F)


# ----------------------------------------------------------------------------- state updates
def update_topic(theta, x, r, frac, s, eta: float):
    """θ ← normalize(θ + η_θ·s·r·(τ/L)·x): topic drift toward what was watched.

    ``theta``, ``x`` ``(B, K)``; ``r``, ``frac`` (= τ/L), ``s`` ``(B,)``. A zero result keeps θ."""
    step = (eta * s * r * frac)[..., None]
    return _unit_rows(theta + step * x, theta)


def relax_topic(theta, theta0, dt, tau: float):
    """Between sessions θ relaxes toward θ₀: normalize(θ₀ + (θ − θ₀)·e^{−dt/τ_θ}).
    ``theta``, ``theta0`` ``(B, K)``; ``dt`` ``(B,)`` seconds."""
    keep = np.exp(-np.asarray(dt, dtype=float) / tau)[..., None]
    return _unit_rows(theta0 + (theta - theta0) * keep, theta0)


def update_appetite(a, e, frac, s, cfg):
    """The appetite ratchet a ← a + η_up·s·(τ/L)·[e − a]₊ − η_down·[a − e]₊, kept in [0, 1]
    (``cfg``: AppetiteDynamicsConfig)."""
    up = cfg.eta_up * s * frac * np.maximum(e - a, 0.0)
    down = cfg.eta_down * np.maximum(a - e, 0.0)
    return np.clip(a + up - down, 0.0, 1.0)


def relax_toward(x, target, dt, tau: float):
    """x relaxes toward ``target`` over ``dt`` seconds with time constant ``tau``:
    target + (x − target)·e^{−dt/τ}."""
    return target + (x - target) * np.exp(-np.asarray(dt, dtype=float) / tau)


def update_satisfaction(S, V, z, gamma: float, noise: float):
    """S ← γ_S·S + V + ε with ε = σ_S·z (z standard normal)."""
    return gamma * S + V + noise * z


def update_habit(psi, A, dt, tau: float):
    """ψ ← ψ·e^{−dt/τ_ψ} + A (dt: seconds since the last habit update)."""
    return psi * np.exp(-np.asarray(dt, dtype=float) / tau) + A


def add_fatigue(F, tau):
    """F ← F + τ/3600: fatigue counts hours watched in the session."""
    return F + tau / HOUR


# ----------------------------------------------------------------------------- sessions, returns
def session_mean(total, count):
    """A per-session mean (Σ over the session's watched items / their number), 0 for a
    session without a watched item."""
    count = np.asarray(count)
    return np.where(count > 0, total / np.maximum(count, 1), 0.0)


def update_ema(x, new, weight: float):
    """x ← (1 − w)·x + w·new, an exponential moving average."""
    return (1.0 - weight) * x + weight * new


def decay_and_add(kernel, dt, tau: float, alpha: float, mark):
    """A self-exciting kernel's sum after ``dt`` seconds of decay and one more event of mark
    ``mark``: I·e^{−dt/τ} + α·[mark]₊ (marks are clipped at 0 so intensities stay ≥ 0)."""
    return kernel * np.exp(-np.asarray(dt, dtype=float) / tau) + alpha * np.maximum(mark, 0.0)


def daily_cycle(t, amplitude: float, peak: float):
    """d(t) = 1 + amplitude·cos(2π(t − peak)/1 day): mean 1 over a day, highest at ``peak``."""
    return 1.0 + amplitude * np.cos(2.0 * np.pi * (np.asarray(t, dtype=float) - peak) / DAY)


def return_intensity(t, t_end, satisfaction, impulse, slow, cfg, kappa: float, tau_s: float):
    """λ(t) in returns per second, for t ≥ t_end (the end of the last session):

    λ(t) = λ₀·d(t)·exp(b_W·(W(t) − ½)) + I₁·e^{−(t−t_end)/τ₁} + I₂·e^{−(t−t_end)/τ₂},

    with W(t) = sigmoid(κ·S·e^{−(t−t_end)/τ_S}) (S relaxes toward 0 between sessions) and
    I₁, I₂ the two kernels' sums at t_end. ``cfg``: ReturnsConfig."""
    dt = np.asarray(t, dtype=float) - t_end
    w = wellbeing(relax_toward(satisfaction, 0.0, dt, tau_s), kappa)
    base = cfg.base_rate * daily_cycle(t, cfg.cycle_amplitude, cfg.cycle_peak) * np.exp(cfg.b_w * (w - 0.5))
    return base + impulse * np.exp(-dt / cfg.tau_impulse) + slow * np.exp(-dt / cfg.tau_value)


def return_intensity_bound(t, t_end, satisfaction, impulse, slow, cfg, kappa: float, tau_s: float):
    """An upper bound of :func:`return_intensity` on [t, ∞): the daily cycle at its peak,
    exp(max(b_W·(W(t) − ½), 0)) because W moves monotonically toward ½, and the kernels'
    current values because they only decay."""
    dt = np.asarray(t, dtype=float) - t_end
    w = wellbeing(relax_toward(satisfaction, 0.0, dt, tau_s), kappa)
    base = cfg.base_rate * (1.0 + cfg.cycle_amplitude) * np.exp(np.maximum(cfg.b_w * (w - 0.5), 0.0))
    return base + impulse * np.exp(-dt / cfg.tau_impulse) + slow * np.exp(-dt / cfg.tau_value)


def thinning(
    now: np.ndarray,
    until: float,
    intensity: Callable[[np.ndarray, np.ndarray], np.ndarray],
    bound: Callable[[np.ndarray, np.ndarray], np.ndarray],
    uniform: Callable[[np.ndarray], np.ndarray],
) -> np.ndarray:
    """The first point after ``now`` of a point process, for every row, by exact thinning
    (Lewis & Shedler 1979; Ogata 1981): ``(B,)`` times, ``inf`` where none falls by ``until``.

    ``intensity(rows, t)`` and ``bound(rows, t)`` evaluate λ and an upper bound of λ on
    [t, ∞) for the rows ``rows`` (indices) at times ``t``; ``uniform(rows)`` returns the next
    uniform of each of those rows' streams. Each candidate point takes two uniforms (the
    exponential gap, then the acceptance) from its row's stream, in that order, so a row's
    result does not depend on the other rows."""
    t = np.array(now, dtype=float)
    out = np.full(t.shape[0], np.inf)
    active = np.arange(t.shape[0])
    while active.shape[0]:
        lam = bound(active, t[active])
        positive = lam > 0.0
        active, lam = active[positive], lam[positive]  # no intensity ahead: no return
        if not active.shape[0]:
            break
        t[active] = t[active] + -np.log(uniform(active)) / lam
        inside = t[active] <= until
        active, lam = active[inside], lam[inside]
        if not active.shape[0]:
            break
        accept = uniform(active) * lam <= intensity(active, t[active])
        out[active[accept]] = t[active[accept]]
        active = active[~accept]
    return out


def spend_budget(budget, tau, quality, extension: float):
    """RecSim interest evolution's session budget after watching τ of an item of quality q:
    budget − τ + α_b·τ·q (good items extend the session, bad ones shorten it; seconds)."""
    return budget - tau + extension * tau * quality


def net_positive_exposure(npe, clickbait, z, memory_discount: float, innovation: float):
    """RecSim long-term satisfaction's latent state after consuming an item of clickbait c:
    NPE ← γ·NPE − 2(c − ½) + σ·z (clickbait lowers it, "kale" raises it; z standard normal)."""
    return memory_discount * npe - 2.0 * (clickbait - 0.5) + innovation * z


def choc_kale_log_engagement(clickbait, satisfaction, z, cfg):
    """log engagement of RecSim's long-term-satisfaction user: normal with mean
    SAT·(c·μ_choc + (1 − c)·μ_kale) and sd c·σ_choc + (1 − c)·σ_kale (``z`` standard normal)."""
    mean = (clickbait * cfg.choc_mean + (1.0 - clickbait) * cfg.kale_mean) * satisfaction
    scale = clickbait * cfg.choc_stddev + (1.0 - clickbait) * cfg.kale_stddev
    return mean + scale * z


def lose_patience(patience, value, threshold: float, cost: float):
    """A patience stock after an item of value V: it loses ``cost`` when V < threshold."""
    return patience - cost * (value < threshold)


def churn_probability(ubar, cfg):
    """P(quit for good at a would-be return) = sigmoid(ζ₀ − ζ₁·(Ū − u_out)), with Ū the EMA
    of session value (``cfg``: ChurnConfig)."""
    return expit(cfg.zeta0 - cfg.zeta1 * (np.asarray(ubar, dtype=float) - cfg.u_out))


def survey_score(mean_value, z, cfg):
    """A survey answer: round(clip(intercept + slope·V̄ + noise·z, 1, 5)), V̄ the session's
    mean value (``cfg``: SurveyConfig; z standard normal). Halves round to even."""
    raw = cfg.intercept + cfg.slope * mean_value + cfg.noise * z
    return np.minimum(5.0, np.maximum(1.0, np.round(raw)))


#: Every function above as this module defines it. Compiled kernels (:mod:`recsim.kernels`)
#: repeat some of them operation by operation; they run only while those functions are still
#: these (:func:`as_defined`), so a formula replaced at run time — by a test's mutation, or by a
#: reader trying a variant — is what runs, through the NumPy code that calls it.
_DEFINED = {name: globals()[name] for name in __all__}


def as_defined(*names: str) -> bool:
    """True if each formula ``names`` (names of this module's functions) is still the function
    defined here, not a replacement assigned to the module since."""
    module = globals()
    return all(module[name] is _DEFINED[name] for name in names)

