"""The two ceilings the engine benchmarks are compared with (see benchmarks/README.md).

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
"""

from __future__ import annotations

import time

import numpy as np

__all__ = ["simpy_timeouts_per_second", "numpy_decisions_per_second"]


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
