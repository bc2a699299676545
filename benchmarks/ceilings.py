"""The ceilings the engine benchmarks are compared with (see benchmarks/README.md).

* :func:`simpy_timeouts_per_second` — bare SimPy: processes that do nothing but wait. No engine
  built on SimPy can schedule its events faster.
* :func:`numpy_decisions_per_second` — the per-decision arithmetic of the model, vectorized over
  all users at once with NumPy (what a batched engine does between synchronization points):
  each step, every user draws candidates from the counter-based stream, the candidates are
  scored as ``engagement_oracle`` scores them (P(click) × E[watch time]), the top ``k`` form
  the slate, the slate's allure gives the multinomial-logit choice, the clicked item's watch
  time is drawn and the user's hidden state is updated — through the model's own functions
  (:mod:`recsim.users.formulas`), as the engine computes them. It skips what only an
  event-driven engine needs (clocks, sessions, returns, logging, the component and policy
  layers) and removes no repeated candidates: the speed of the model's arithmetic itself on
  this machine, which the engine's overheads come on top of.
* :func:`compiled_decisions_per_second` — one decision's arithmetic compiled with numba
  (single-threaded), user after user: the candidate draw as ``rng.candidate_rows`` makes it,
  a learned linear ranker's scores (``scoring="learned"``) or the engagement oracle's
  (``"oracle"``), top ``k``, the logit choice, the log-normal watch time, the hidden-state
  updates and the event rows — the same operations in the same order as the NumPy path, so
  the same numbers (tests/test_ceilings.py). What a compiled engine could reach on one core.
  Needs numba (the ``bench`` extra); without it, raises :class:`CompiledCeilingUnavailable`.
"""

from __future__ import annotations

import math
import time

import numpy as np

__all__ = [
    "LEARNED_INTERCEPT",
    "LEARNED_WEIGHTS",
    "NUMBA_VERSION",
    "CompiledCeilingUnavailable",
    "compiled_ceiling",
    "compiled_decisions_per_second",
    "compiled_inputs",
    "ndtr",
    "ndtri",
    "numpy_decisions_per_second",
    "run_compiled",
    "simpy_timeouts_per_second",
]


def simpy_timeouts_per_second(n_processes: int = 1000, n_timeouts: int = 300_000) -> float:
    """Timeouts per second processed by SimPy for ``n_processes`` processes that only wait."""
    import simpy

    env = simpy.Environment()
    per = n_timeouts // n_processes

    def proc(env):
        for _ in range(per):
            yield env.timeout(1.0)

    for _ in range(n_processes):
        env.process(proc(env))
    start = time.perf_counter()
    env.run()
    return n_processes * per / (time.perf_counter() - start)


def numpy_decisions_per_second(
    scenario_path: str, n_users: int = 10_000, steps: int = 10, chunk: int = 0, score: bool = True
) -> float:
    """Decisions per second of the vectorized loop described in the module docstring.

    ``score=False`` serves the first ``k`` candidates instead of the oracle's top ``k`` (the
    model's arithmetic alone). Users are processed in chunks of ``chunk`` to bound memory
    (the candidate topic vectors of a chunk are ``chunk × n_candidates × K`` floats); the
    default (0) is 1024, the engine's own batch size and the fastest measured here.
    """
    from scipy.special import ndtri

    from recsim import rng as rngmod
    from recsim.config import load_scenario
    from recsim.users import formulas as f
    from recsim.world import build_world

    chunk = chunk or 1024
    sc = load_scenario(scenario_path, [f"population.n_users={n_users}"])
    world = build_world(sc, 0)
    cat, state, b = world.catalog, world.state, sc.behaviour
    n_cand, k = sc.recommender.n_candidates, sc.recommender.slate_size
    n_avail = cat.n_available(0.0)
    m = n_cand + 8 + 2 * (n_cand * n_cand) // n_avail
    keys = {name: rngmod.user_keys(key, np.arange(n_users)) for name, key in world.user_stream_keys.items()}
    theta, a = state["theta"].copy(), state["appetite"].copy()
    S, psi, F = state["satisfaction"].copy(), state["habit"].copy(), np.zeros(n_users)
    s = state["susceptibility"]
    position = f.position_term(k, b.choice.position_exponent)
    log_length = cat.log_length
    ch = b.choice

    def step(i: int, users: slice) -> None:
        th, ap = theta[users], a[users]
        W = f.wellbeing(S[users], b.satisfaction.kappa)
        # candidate draw: m counter-based uniforms per user
        u = rngmod.uniforms(keys["candidates"][users, None], np.arange(i * m, (i + 1) * m, dtype=np.uint64))
        cand = (u[:, :n_cand] * n_avail).astype(np.int64)
        if score:  # engagement_oracle: P(click) × E[τ | click] of every candidate, top k
            rel = f.relevance(th, cat.topics_by_topic.take(cand, axis=1))
            A = f.allure(rel, cat.extremeness[cand], cat.clickbait[cand], ap[:, None], b.allure)
            outside = f.outside_utility(F[users], ch.u0, ch.phi_f)
            p_click = f.logit_probabilities((A + position[0]).reshape(-1, 1), np.repeat(outside, n_cand), ch.beta)
            ewt = f.expected_watch_time(cat.length[cand], log_length[cand], A, W[:, None], b.watch)
            scores = p_click[:, 1].reshape(A.shape) * ewt
            top = np.argpartition(-scores, k - 1, axis=1)[:, :k]
            order = np.argsort(-np.take_along_axis(scores, top, 1), axis=1)
            slate = np.take_along_axis(cand, np.take_along_axis(top, order, 1), 1)
        else:
            slate = cand[:, :k]
        # the slate's allure and the multinomial-logit choice
        r = f.relevance(th, cat.topics_by_topic.take(slate, axis=1))
        A = f.allure(r, cat.extremeness[slate], cat.clickbait[slate], ap[:, None], b.allure)
        p = f.logit_probabilities(A + position, f.outside_utility(F[users], ch.u0, ch.phi_f), ch.beta)
        u_choice = rngmod.uniforms(keys["choice"][users], np.full(A.shape[0], i, dtype=np.uint64))
        choice = f.sample_choice(p, u_choice)
        rows = np.flatnonzero(choice >= 0)
        if rows.size == 0:
            return
        # watch time of the clicked items and the hidden-state updates
        at = choice[rows]
        item = slate[rows, at]
        A_i, r_i = A[rows, at], r[rows, at]
        L = cat.length[item]
        z_watch = ndtri(rngmod.uniforms(keys["watch"][users][rows], np.full(rows.size, i, dtype=np.uint64)))
        tau = f.watch_time(L, log_length[item], A_i, W[rows], z_watch, b.watch)
        frac = tau / L
        e_i = cat.extremeness[item]
        V = f.value(r_i, cat.quality[item], e_i, tau, b.value)
        idx = np.arange(users.start, users.stop)[rows]
        theta[idx] = f.update_topic(th[rows], cat.topics[item], r_i, frac, s[idx], b.topic.eta)
        a[idx] = f.update_appetite(ap[rows], e_i, frac, s[idx], b.appetite)
        S[idx] = f.update_satisfaction(S[idx], V, 0.0, b.satisfaction.gamma, b.satisfaction.noise)
        psi[idx] = f.update_habit(psi[idx], A_i, tau, b.habit.relax)
        F[idx] = f.add_fatigue(F[idx], tau)

    start = time.perf_counter()
    for i in range(steps):
        for lo in range(0, n_users, chunk):
            step(i, slice(lo, min(lo + chunk, n_users)))
    return steps * n_users / (time.perf_counter() - start)


# ============================================================================ the compiled ceiling
#
# One decision's arithmetic compiled with numba (``@njit``, single-threaded, no fastmath), in a
# loop over users: each step, every user draws candidates from the counter-based stream, they
# are scored (a learned linear ranker, or the engagement oracle), the top ``k`` form the slate,
# the user chooses by the multinomial logit with the outside option, watches a log-normal time,
# the hidden state is updated and the decision's event rows are written. The arithmetic is the
# model's (recsim.users.formulas), written out operation by operation in the same order, so the
# same inputs give the same numbers (tests/test_ceilings.py checks them against the NumPy path).
# numba is an optional dependency (the `bench` extra): without it everything above still works
# and compiled_decisions_per_second raises CompiledCeilingUnavailable.

try:  # pragma: no cover - depends on the environment
    import numba as _numba

    NUMBA_VERSION: str | None = _numba.__version__
    _NUMBA_ERROR = ""
except ImportError as exc:  # pragma: no cover
    _numba = None
    NUMBA_VERSION = None
    _NUMBA_ERROR = str(exc)


class CompiledCeilingUnavailable(RuntimeError):
    """numba is not importable: the compiled ceiling cannot be measured."""


def _require_numba() -> None:
    if _numba is None:
        raise CompiledCeilingUnavailable(
            "the compiled ceiling needs numba, which is not importable here "
            f"({_NUMBA_ERROR}); install it with: pip install -e '.[bench]'")


def _njit(function):
    """``numba.njit`` (no fastmath, NumPy's error model: no division checks), not cached on
    disk: the kernels call recsim's own (recsim/kernels/model.py), and numba's cache would not
    notice a change there; the plain Python function when numba is missing (never called
    then). The first, untimed call compiles."""
    if _numba is None:
        return function
    return _numba.njit(cache=False, error_model="numpy")(function)


#: The fixed weights of the learned ranker's linear score, one per feature of
#: recsim.policies.learned.FEATURE_NAMES (relevance, relevance², ê, ê², ê × the user's mean ê,
#: the user's mean ê, log length, log age in days, activity, log position), and its intercept:
#: a plausible fitted model (the values change the ranking, not the cost).
LEARNED_WEIGHTS = (1.8, 0.9, 1.4, -1.1, 0.7, 0.1, 0.25, -0.15, 0.05, -0.6)
LEARNED_INTERCEPT = -2.5

# splitmix64 and the counter-based streams (recsim.rng), in uint64 arithmetic
_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)
_ONE = np.uint64(1)
_S11, _S12, _S27, _S30, _S31 = (np.uint64(s) for s in (11, 12, 27, 30, 31))
_TO_UNIT = 2.0**-52
_TO_HALF_UNIT = 2.0**-53
_DAY = 86400.0

# the user's counter-based streams, rows of the keys and counters arrays
_CANDIDATES, _CHOICE, _WATCH, _SATISFACTION = 0, 1, 2, 3
_STREAMS = ("candidates", "choice", "watch", "satisfaction")

# behaviour parameters, entries of the float vector P
(_W_R, _W_E, _W_C, _DELTA, _OMEGA, _BETA, _U0, _PHI_F, _SCAN, _MU, _ALPHA_A, _ALPHA_W, _SIGMA, _ETA,
 _ETA_UP, _ETA_DOWN, _GAMMA, _NOISE, _KAPPA, _HABIT_RELAX, _V_R, _V_Q, _V_H, _C_TAU) = range(24)

# event rows (struct of arrays, as the engines buffer them): float columns ...
_EMIT, _TIME, _WATCH_TIME, _WATCH_FRACTION, _SURVEY, _TRUE_VALUE, _TRUE_EXTREMENESS, _TRUE_ALLURE = range(8)
# ... and integer columns; the event code is a column of its own (int8)
_USER, _SESSION, _ITEM, _POSITION = range(4)
_IMPRESSION, _CLICK, _WATCHED = 1, 2, 3  # recsim.eventlog.EVENT_CODES

# the special functions, the counter-based draws and the relevance loop are the engines' own
# kernels (recsim.kernels): the ceiling runs the same compiled code the engines call
from recsim.kernels.model import _relevances  # noqa: E402
from recsim.kernels.model import expit as _expit  # noqa: E402
from recsim.kernels.model import ndtr, ndtri, row_sum as _row_sum  # noqa: E402, F401
from recsim.kernels.model import splitmix64 as _splitmix64, uniform as _uniform  # noqa: E402


@_njit
def _decide(
    oracle, steps, n_cand, k, n_avail, exclude_watched,
    keys, ctr, theta, appetite, satisfaction, habit, habit_time, fatigue, clock, susceptibility,
    session, seen, n_seen,
    profile, mean_cls, activity, w, item_part,
    topics, topics_obs, extremeness, clickbait, quality, length, log_length, classifier, upload_time,
    P, position, ev_f, ev_i, ev_e,
    tr_cand, tr_score, tr_slate, tr_prob, tr_choice, tr_tau,
):
    """``steps`` decisions of every user (step by step: each step one decision per user), the
    arithmetic of the engine's serve → show → watch path for one decision, in place on the
    state arrays. ``oracle``: score the candidates by the engagement oracle (else the learned
    linear ranker). Event rows go to the ring buffers ``ev_*`` (wrapping when full: the
    writer's work is not counted). ``tr_*`` (first dimension 0 to skip) record each user's
    last decision for the tests. Returns (event rows written, clicks)."""
    n_users, K = theta.shape
    n_items = topics.shape[0]
    capacity = ev_e.shape[0]
    mark = np.full(n_items, -1, dtype=np.int64)  # the decision that last drew each item
    cand = np.empty(n_cand, dtype=np.int64)
    score = np.empty(n_cand)
    rel = np.empty(n_cand)
    allure = np.empty(n_cand)
    top = np.empty(k, dtype=np.int64)  # slate: indices into cand, best first
    top_score = np.empty(k)
    z = np.empty(k + 1)
    slate_r = np.empty(k)
    slate_a = np.empty(k)
    vec = np.empty(K)
    n_trace = tr_cand.shape[0]
    half_s2 = 0.5 * P[_SIGMA] * P[_SIGMA]
    s2 = P[_SIGMA] * P[_SIGMA]
    two_omega2 = 2.0 * P[_OMEGA] * P[_OMEGA]
    scale = np.float64(n_avail) * _TO_HALF_UNIT
    rows = 0
    clicks = 0
    for step in range(steps):
        for u in range(n_users):
            stamp = step * n_users + u
            now = clock[u]
            # ---- candidates: recsim.rng.candidate_rows (the pool 0 ≤ id < n_avail, less the
            # watched items): m hashes of the candidates stream, the first n distinct unwatched
            n_free = n_avail - n_seen[u]
            if n_free <= n_cand:  # every unwatched item, in id order, no draw
                count = 0
                for item in range(n_avail):
                    if not exclude_watched or not (seen[u, item >> 3] >> (item & 7)) & 1:
                        cand[count] = item
                        count += 1
                m = 0
            else:
                m0 = n_cand + 8 + 2 * (n_cand * n_cand) // n_free
                m = m0 + (m0 * n_seen[u] + n_free - 1) // n_free
                base = keys[_CANDIDATES, u] + np.uint64(ctr[_CANDIDATES, u]) * _GOLDEN
                count = 0
                for j in range(m):
                    base += _GOLDEN
                    item = np.int64(np.float64((_splitmix64(base) >> _S11) | _ONE) * scale)
                    if mark[item] == stamp:
                        continue
                    mark[item] = stamp
                    if exclude_watched and (seen[u, item >> 3] >> (item & 7)) & 1:
                        continue
                    cand[count] = item
                    count += 1
                    if count == n_cand:
                        break
            ctr[_CANDIDATES, u] += m
            if count == 0:
                continue
            # ---- the user's terms
            a = appetite[u]
            W = _expit(P[_KAPPA] * satisfaction[u])
            outside = P[_U0] + P[_PHI_F] * fatigue[u]
            # ---- scores of the candidates, and the top k (ties to the candidate drawn first)
            n_top = 0
            kk = min(k, count)
            if oracle:  # engagement_oracle: P(click alone in position 1) × E[watch time | click]
                _relevances(topics, cand, count, theta[u], rel)
                for j in range(count):
                    item = cand[j]
                    r = rel[j]
                    d = extremeness[item] - a - P[_DELTA]
                    A = P[_W_R] * r + P[_W_E] * math.exp(-(d * d) / two_omega2) + P[_W_C] * clickbait[item]
                    allure[j] = A
                    p_click = _expit(P[_BETA] * (A + position[0] - outside))
                    log_l = log_length[item]
                    mean = log_l + P[_MU] + P[_ALPHA_A] * A + P[_ALPHA_W] * (W - 0.5)
                    below = ndtr((log_l - mean - s2) / P[_SIGMA]) * math.exp(mean + half_s2)
                    above = ndtr((mean - log_l) / P[_SIGMA]) * length[item]
                    score[j] = p_click * (above + below)
            else:  # the learned ranker: b + w·x of the 10 serving features (position 1)
                user_part = w[5] * mean_cls[u] + w[8] * activity[u]
                cls_weight = w[4] * mean_cls[u]
                _relevances(topics_obs, cand, count, profile[u], rel)
                for j in range(count):
                    item = cand[j]
                    r = rel[j]
                    lo = w[1] * r
                    lo += w[0]
                    lo *= r
                    lo += item_part[item]
                    lo += classifier[item] * cls_weight
                    lo += user_part
                    lo += math.log1p(max(now - upload_time[item], 0.0) / _DAY) * w[7]
                    # the policy ranks by exp(min(lo, 30)): the same order as min(lo, 30)
                    score[j] = min(lo, 30.0)
            for j in range(count):
                s = score[j]
                if n_top == kk and not s > top_score[kk - 1]:
                    continue
                i = n_top if n_top < kk else kk - 1
                while i > 0 and top_score[i - 1] < s:
                    top_score[i] = top_score[i - 1]
                    top[i] = top[i - 1]
                    i -= 1
                top_score[i] = s
                top[i] = j
                if n_top < kk:
                    n_top += 1
            # ---- the slate's allure and the multinomial logit with the outside option
            for i in range(kk):
                if oracle:
                    slate_r[i] = rel[top[i]]
                    slate_a[i] = allure[top[i]]
                else:
                    item = cand[top[i]]
                    r = topics[item, 0] * theta[u, 0]
                    for t in range(1, K):
                        r += topics[item, t] * theta[u, t]
                    d = extremeness[item] - a - P[_DELTA]
                    slate_r[i] = r
                    slate_a[i] = P[_W_R] * r + P[_W_E] * math.exp(-(d * d) / two_omega2) + P[_W_C] * clickbait[item]
            if kk == 1:
                z[1] = _expit(P[_BETA] * (slate_a[0] + position[0] - outside))
                z[0] = 1.0 - z[1]
            else:
                z[0] = outside * P[_BETA]
                top_z = z[0]
                for i in range(kk):
                    z[i + 1] = (slate_a[i] + position[i]) * P[_BETA]
                    top_z = max(top_z, z[i + 1])
                for i in range(kk + 1):
                    z[i] = math.exp(z[i] - top_z)
                total = _row_sum(z, kk + 1)
                for i in range(kk + 1):
                    z[i] = z[i] / total
            u_choice = _uniform(keys[_CHOICE, u], ctr[_CHOICE, u])
            ctr[_CHOICE, u] += 1
            cum = 0.0
            choice = kk - 1  # a uniform beyond the last cumulative value: the last position
            for i in range(kk + 1):
                cum = z[i] if i == 0 else cum + z[i]
                if cum > u_choice:
                    choice = i - 1
                    break
            # ---- event rows: the slate's impressions (at the request, emitted after the scan)
            t_choice = now + P[_SCAN]
            for i in range(kk):
                r_ = rows % capacity  # a full buffer goes to the writer (not counted): wrap
                ev_f[_EMIT, r_] = t_choice
                ev_f[_TIME, r_] = now
                for c in range(_WATCH_TIME, _TRUE_ALLURE + 1):
                    ev_f[c, r_] = np.nan
                ev_i[_USER, r_] = u
                ev_i[_SESSION, r_] = session[u]
                ev_i[_ITEM, r_] = cand[top[i]]
                ev_i[_POSITION, r_] = i + 1
                ev_e[r_] = _IMPRESSION
                rows += 1
            tau = 0.0
            if choice >= 0:
                clicks += 1
                item = cand[top[choice]]
                r = slate_r[choice]
                A = slate_a[choice]
                r_ = rows % capacity
                ev_f[_EMIT, r_] = t_choice
                ev_f[_TIME, r_] = t_choice
                for c in range(_WATCH_TIME, _TRUE_ALLURE + 1):
                    ev_f[c, r_] = np.nan
                ev_i[_USER, r_] = u
                ev_i[_SESSION, r_] = session[u]
                ev_i[_ITEM, r_] = item
                ev_i[_POSITION, r_] = choice + 1
                ev_e[r_] = _CLICK
                rows += 1
                # the log-normal watch time, capped at the item's length
                z_watch = ndtri(_uniform(keys[_WATCH, u], ctr[_WATCH, u]))
                ctr[_WATCH, u] += 1
                L = length[item]
                mean = log_length[item] + P[_MU] + P[_ALPHA_A] * A + P[_ALPHA_W] * (W - 0.5)
                tau = min(L, math.exp(mean + P[_SIGMA] * z_watch))
                t_watch = t_choice + tau
                frac = tau / L
                e = extremeness[item]
                V = P[_V_R] * r + P[_V_Q] * quality[item] - P[_V_H] * e * e - P[_C_TAU] * (tau / 60.0)
                # the hidden-state updates (formulas.update_topic, update_appetite,
                # update_satisfaction, update_habit, add_fatigue)
                s_u = susceptibility[u]
                step_size = P[_ETA] * s_u * r * frac
                norm2 = 0.0
                for t in range(K):
                    x = theta[u, t] + step_size * topics[item, t]
                    vec[t] = x
                    norm2 = x * x if t == 0 else norm2 + x * x
                norm = math.sqrt(norm2)
                if norm > 0:  # a zero vector keeps θ
                    for t in range(K):
                        theta[u, t] = vec[t] / norm
                up = P[_ETA_UP] * s_u * frac * max(e - a, 0.0)
                down = P[_ETA_DOWN] * max(a - e, 0.0)
                appetite[u] = min(max(a + up - down, 0.0), 1.0)
                z_sat = ndtri(_uniform(keys[_SATISFACTION, u], ctr[_SATISFACTION, u]))
                ctr[_SATISFACTION, u] += 1
                satisfaction[u] = P[_GAMMA] * satisfaction[u] + V + P[_NOISE] * z_sat
                habit[u] = habit[u] * math.exp(-(t_watch - habit_time[u]) / P[_HABIT_RELAX]) + A
                habit_time[u] = t_watch
                fatigue[u] = fatigue[u] + tau / 3600.0
                if exclude_watched:
                    byte = item >> 3
                    bit = np.uint8(1 << (item & 7))
                    if not seen[u, byte] & bit:
                        n_seen[u] += 1
                        seen[u, byte] = seen[u, byte] | bit
                r_ = rows % capacity
                ev_f[_EMIT, r_] = t_watch
                ev_f[_TIME, r_] = t_watch
                ev_f[_WATCH_TIME, r_] = tau
                ev_f[_WATCH_FRACTION, r_] = frac
                ev_f[_SURVEY, r_] = np.nan
                ev_f[_TRUE_VALUE, r_] = V
                ev_f[_TRUE_EXTREMENESS, r_] = e
                ev_f[_TRUE_ALLURE, r_] = A
                ev_i[_USER, r_] = u
                ev_i[_SESSION, r_] = session[u]
                ev_i[_ITEM, r_] = item
                ev_i[_POSITION, r_] = choice + 1
                ev_e[r_] = _WATCHED
                rows += 1
                clock[u] = t_watch
            else:
                clock[u] = t_choice
            if u < n_trace:
                for j in range(n_cand):
                    tr_cand[u, j] = cand[j] if j < count else -1
                    tr_score[u, j] = score[j] if j < count else np.nan
                for i in range(k):
                    tr_slate[u, i] = cand[top[i]] if i < kk else -1
                for i in range(k + 1):
                    tr_prob[u, i] = z[i] if i <= kk else np.nan
                tr_choice[u] = choice
                tr_tau[u] = tau
    return rows, clicks


# ----------------------------------------------------------------------------- driving the kernel
def compiled_inputs(scenario_path: str, n_users: int, overrides: tuple[str, ...] = ()) -> dict:
    """The kernel's inputs for the users of ``scenario_path`` (replication 0) at time 0: their
    hidden state and per-user stream keys, the catalog's arrays, the behaviour parameters, and
    for the learned ranker a profile per user (the unit θ₀, the mean ê = a₀, one hour watched)
    and the fixed weights :data:`LEARNED_WEIGHTS` with their per-item part computed by the
    policy's own function (as the policy does once per fit). Every array is a fresh writable
    copy (the kernel updates the state in place)."""
    from recsim import rng as rngmod
    from recsim.config import load_scenario
    from recsim.policies.learned import _item_part
    from recsim.users import formulas as f
    from recsim.world import build_world

    sc = load_scenario(scenario_path, [f"population.n_users={n_users}", *overrides])
    world = build_world(sc, 0)
    cat, state, b = world.catalog, world.state, sc.behaviour
    k = sc.recommender.slate_size
    users = np.arange(n_users)
    keys = np.stack([rngmod.user_keys(world.user_stream_keys[s], users) for s in _STREAMS])
    w = np.array(LEARNED_WEIGHTS, dtype=float)
    P = np.zeros(24)
    for index, value in [
        (_W_R, b.allure.w_r), (_W_E, b.allure.w_e), (_W_C, b.allure.w_c), (_DELTA, b.allure.delta),
        (_OMEGA, b.allure.omega), (_BETA, b.choice.beta), (_U0, b.choice.u0), (_PHI_F, b.choice.phi_f),
        (_SCAN, b.choice.scan_time), (_MU, b.watch.mu), (_ALPHA_A, b.watch.alpha_a), (_ALPHA_W, b.watch.alpha_w),
        (_SIGMA, b.watch.sigma), (_ETA, b.topic.eta), (_ETA_UP, b.appetite.eta_up),
        (_ETA_DOWN, b.appetite.eta_down), (_GAMMA, b.satisfaction.gamma), (_NOISE, b.satisfaction.noise),
        (_KAPPA, b.satisfaction.kappa), (_HABIT_RELAX, b.habit.relax), (_V_R, b.value.v_r),
        (_V_Q, b.value.v_q), (_V_H, b.value.v_h), (_C_TAU, b.value.c_tau),
    ]:
        P[index] = value
    copy = np.array  # a fresh, writable, C-contiguous copy

    return {
        "n_cand": int(sc.recommender.n_candidates), "k": int(k), "n_avail": int(cat.n_available(0.0)),
        "exclude_watched": bool(sc.recommender.exclude_watched),
        "keys": keys, "ctr": np.zeros((len(_STREAMS), n_users), dtype=np.int64),
        "theta": copy(state["theta"], dtype=float), "appetite": copy(state["appetite"], dtype=float),
        "satisfaction": copy(state["satisfaction"], dtype=float), "habit": copy(state["habit"], dtype=float),
        "habit_time": copy(state["habit_time"], dtype=float), "fatigue": copy(state["fatigue"], dtype=float),
        "clock": np.zeros(n_users), "susceptibility": copy(state["susceptibility"], dtype=float),
        "session": np.ones(n_users, dtype=np.int64),
        "seen": np.zeros((n_users, (cat.n_items + 7) // 8), dtype=np.uint8),
        "n_seen": np.zeros(n_users, dtype=np.int64),
        "profile": copy(state["theta0"], dtype=float), "mean_cls": copy(state["appetite0"], dtype=float),
        "activity": np.full(n_users, np.log1p(60.0)),
        "w": w, "item_part": copy(_item_part(w, LEARNED_INTERCEPT, cat.classifier, cat.length)),
        "topics": copy(cat.topics, dtype=float), "topics_obs": copy(cat.topics_obs, dtype=float),
        "extremeness": copy(cat.extremeness, dtype=float), "clickbait": copy(cat.clickbait, dtype=float),
        "quality": copy(cat.quality, dtype=float), "length": copy(cat.length, dtype=float),
        "log_length": copy(cat.log_length, dtype=float), "classifier": copy(cat.classifier, dtype=float),
        "upload_time": copy(cat.upload_time, dtype=float),
        "P": P, "position": copy(f.position_term(k, b.choice.position_exponent), dtype=float),
    }


_EVENT_CAPACITY = 1 << 16  # rows of the event ring buffers


def run_compiled(inputs: dict, steps: int, scoring: str = "learned", trace: int = 0) -> dict:
    """Run ``steps`` decisions of every user of ``inputs`` (:func:`compiled_inputs`, updated in
    place) through the compiled kernel. Returns ``rows`` (event rows written), ``clicks``,
    ``seconds`` (wall time of the kernel) and, with ``trace`` > 0, the last decision of the
    first ``trace`` users: ``candidates``, ``scores``, ``slate``, ``probabilities``,
    ``choice``, ``watch_time``."""
    _require_numba()
    if scoring not in ("learned", "oracle"):
        raise ValueError(f"scoring must be 'learned' or 'oracle', not {scoring!r}")
    i = inputs
    n_cand, k = i["n_cand"], i["k"]
    t = min(trace, i["theta"].shape[0])
    tr = {"candidates": np.full((t, n_cand), -1, dtype=np.int64), "scores": np.full((t, n_cand), np.nan),
          "slate": np.full((t, k), -1, dtype=np.int64), "probabilities": np.full((t, k + 1), np.nan),
          "choice": np.zeros(t, dtype=np.int64), "watch_time": np.zeros(t)}
    ev_f = i.setdefault("ev_f", np.empty((8, _EVENT_CAPACITY)))
    ev_i = i.setdefault("ev_i", np.empty((4, _EVENT_CAPACITY), dtype=np.int64))
    ev_e = i.setdefault("ev_e", np.empty(_EVENT_CAPACITY, dtype=np.int8))
    start = time.perf_counter()
    rows, clicks = _decide(
        scoring == "oracle", steps, n_cand, k, i["n_avail"], i["exclude_watched"],
        i["keys"], i["ctr"], i["theta"], i["appetite"], i["satisfaction"], i["habit"], i["habit_time"],
        i["fatigue"], i["clock"], i["susceptibility"], i["session"], i["seen"], i["n_seen"],
        i["profile"], i["mean_cls"], i["activity"], i["w"], i["item_part"],
        i["topics"], i["topics_obs"], i["extremeness"], i["clickbait"], i["quality"], i["length"],
        i["log_length"], i["classifier"], i["upload_time"], i["P"], i["position"], ev_f, ev_i, ev_e,
        tr["candidates"], tr["scores"], tr["slate"], tr["probabilities"], tr["choice"], tr["watch_time"],
    )
    out = {"rows": int(rows), "clicks": int(clicks), "seconds": time.perf_counter() - start}
    if trace:
        out.update(tr)
    return out


def compiled_ceiling(scenario_path: str, n_users: int = 10_000, steps: int = 10, scoring: str = "learned",
                     repeat: int = 3) -> dict:
    """The compiled ceiling of :func:`compiled_decisions_per_second`, with its details:
    ``decisions_per_second`` (median over ``repeat`` timed runs, each of the same ``steps``
    decisions per user from the users' state at time 0 — like a session of ``steps`` slates,
    fatigue growing with every watch), ``rows_per_decision``, ``click_rate``,
    ``compile_seconds`` (the untimed first call: compiling, or loading numba's cache)."""
    import copy

    _require_numba()
    inputs = compiled_inputs(scenario_path, n_users)
    start = time.perf_counter()
    run_compiled(copy.deepcopy(inputs), 1, scoring)  # compile (or load the cache) and warm up
    compile_seconds = time.perf_counter() - start
    runs = [run_compiled(copy.deepcopy(inputs), steps, scoring) for _ in range(repeat)]
    rates = sorted(steps * n_users / r["seconds"] for r in runs)
    decisions = steps * n_users * repeat
    return {
        "decisions_per_second": rates[len(rates) // 2],
        "rows_per_decision": sum(r["rows"] for r in runs) / decisions,
        "click_rate": sum(r["clicks"] for r in runs) / decisions,
        "compile_seconds": compile_seconds,
        "users": n_users, "steps": steps, "repeat": repeat, "numba": NUMBA_VERSION,
    }


def compiled_decisions_per_second(scenario_path: str, n_users: int = 10_000, steps: int = 10,
                                  scoring: str = "learned") -> float:
    """Decisions per second of one decision's arithmetic compiled with numba, on one core:
    ``scoring="learned"`` ranks the candidates by a linear score of the learned ranker's 10
    observable features, ``"oracle"`` by the engagement oracle's P(click) × E[watch time]
    (two normal CDFs and three exponentials per candidate). See the section comment above
    :func:`_decide` and benchmarks/README.md. Raises :class:`CompiledCeilingUnavailable`
    without numba."""
    return compiled_ceiling(scenario_path, n_users, steps, scoring)["decisions_per_second"]
