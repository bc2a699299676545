"""The reference engine: one SimPy process per user, exactly as in DESIGN §2.6.

This module (with :mod:`recsim.engine`) is the only place that knows SimPy. Model components
(:mod:`recsim.users.model`, :mod:`recsim.users.returns`), policies and metrics are plain code
called from here.

Clock: simulated seconds; the warm-up runs on ``[-warmup, 0)`` under the warm-up policy and
the horizon on ``[0, horizon]``. Events and metrics cover the horizon only.
"""

from __future__ import annotations

import gc
import math
from dataclasses import dataclass, field
from itertools import chain
from typing import Callable

import numpy as np
import simpy

from .. import rng as rngmod
from ..config import PolicySpec
from ..eventlog import EventLog
from ..metrics import MetricsCollector
from ..oracle import OracleView
from ..policies.base import CandidateFeatures, Feedback, History, Policy, PolicyContext, Request, RequestRngs
from ..policies.registry import build_policy, resolve_policy
from ..users import model
from ..users.returns import ReturnState, churn_probability, next_return
from ..world import World

__all__ = ["RunResult", "simulate"]

#: candidate draws hashed ahead, in decisions (one array pass serves this many more decisions)
_DECISIONS_AHEAD = 7


@dataclass
class RunResult:
    """What one (policy, replication) run produced, besides its event log file."""

    metrics: list[tuple]  # (metric, kind, start, end, value)
    headline: dict[str, float]
    initial_state: dict[str, np.ndarray]
    final_state: dict[str, np.ndarray]
    user_totals: dict[str, np.ndarray]
    retrain_times: list[float] = field(default_factory=list)
    n_events: int = 0
    n_decisions: int = 0
    policy: Policy | None = None  # the policy as it ended the run (learned state included)


class _FeedbackBuffer:
    """Observable feedback since the last retrain, as the platform logs it: one row per
    impression, with the watch time of clicked ones, and the survey answers. Slates are kept
    whole and expanded on :meth:`take`, because appending row by row is the hot path."""

    def __init__(self) -> None:
        # (served_at, user, session, slate, chosen index or -1)
        self.slates: list[tuple[float, int, int, list[int], int]] = []
        # (time, served_at, user, session, item, position, watch time)
        self.watches: list[tuple[float, float, int, int, int, int, float]] = []
        self.surveys: list[tuple[float, int, int, float]] = []  # (time, user, session, score)

    def clear(self) -> None:
        # emptied in place: user processes hold the lists' bound ``append`` methods
        self.slates.clear()
        self.watches.clear()
        self.surveys.clear()

    def take(self) -> Feedback:
        """All rows since the last call, sorted by the time their outcome became known
        (non-clicked impressions when served, clicked ones when the watch ended)."""
        n_slates = len(self.slates)
        if n_slates:
            served_at, users, sessions, slates, chosen_index = zip(*self.slates)
        else:
            served_at = users = sessions = slates = chosen_index = ()
        sizes = np.fromiter(map(len, slates), np.int64, n_slates)

        def column(values: tuple, dtype) -> np.ndarray:
            return np.repeat(np.array(values, dtype=dtype).reshape(n_slates), sizes)

        served = column(served_at, float)
        user = column(users, np.int64)
        session = column(sessions, np.int64)
        chosen = column(chosen_index, np.int64)
        item = np.fromiter(chain.from_iterable(slates), np.int64, int(sizes.sum()))
        starts = np.repeat(np.cumsum(sizes) - sizes, sizes)
        position = np.arange(item.shape[0]) - starts + 1
        keep = position != chosen + 1
        n_keep = int(keep.sum())
        w = np.array(self.watches, dtype=float).reshape(-1, 7)
        columns = {
            "time": np.concatenate([served[keep], w[:, 0]]),
            "served_at": np.concatenate([served[keep], w[:, 1]]),
            "user_id": np.concatenate([user[keep], w[:, 2].astype(np.int64)]),
            "session": np.concatenate([session[keep], w[:, 3].astype(np.int64)]),
            "item_id": np.concatenate([item[keep], w[:, 4].astype(np.int64)]),
            "position": np.concatenate([position[keep], w[:, 5].astype(np.int64)]),
            "clicked": np.concatenate([np.zeros(n_keep, bool), np.ones(w.shape[0], bool)]),
            "watch_time": np.concatenate([np.zeros(n_keep), w[:, 6]]),
        }
        # canonical order (the batched engine sorts the same way): time, user, the slate's
        # non-clicked impressions before the watch that ends at the same time, position
        order = np.lexsort((columns["position"], columns["clicked"], columns["user_id"], columns["time"]))
        sv = np.array(self.surveys, dtype=float).reshape(-1, 4)
        sv = sv[np.lexsort((sv[:, 1], sv[:, 0]))]
        surveys = {
            "time": sv[:, 0],
            "user_id": sv[:, 1].astype(np.int64),
            "session": sv[:, 2].astype(np.int64),
            "score": sv[:, 3],
        }
        self.clear()
        return Feedback(**{name: values[order] for name, values in columns.items()}, surveys=surveys)


class _Simulation:
    def __init__(
        self,
        world: World,
        spec: PolicySpec,
        events: EventLog,
        progress: Callable[[float], None] | None,
    ):
        sc = world.scenario
        self.world = world
        self.sc = sc
        self.b = sc.behaviour
        self.catalog = world.catalog
        self.pop = world.population
        self.events = events
        self.progress = progress
        self.env = simpy.Environment(initial_time=world.start)
        self.items = self.catalog.observable()
        self.context = PolicyContext(
            n_topics=self.catalog.n_topics,
            slate_size=sc.recommender.slate_size,
            n_candidates=sc.recommender.n_candidates,
            retrain_interval=sc.recommender.retrain_interval,
            items=self.items,
            n_users=self.pop.n_users,
        )
        self.policy: Policy = build_policy(spec)
        self.policy.reset(self.context)
        # a policy's draws come from a stream per request, keyed by the user and the user's
        # request number: independent of the order requests are served in (the batched engine
        # serves them in another order and must draw the same numbers)
        self.policy_rngs = RequestRngs(rngmod.stream_key(sc.seed, world.replication, f"policy:{spec.name}"))
        self.warmup_policy: Policy = resolve_policy(sc.warmup_policy)()
        self.warmup_policy.reset(self.context)
        # identical under every policy: the warm-up is common to all of them
        self.warmup_rngs = RequestRngs(rngmod.stream_key(sc.seed, world.replication, "policy:warmup"))
        self.trusted = _built_in(self.policy)
        self.metrics = MetricsCollector(
            self.pop.n_users, self.catalog.n_topics, sc.outputs.extreme_threshold, np.maximum(self.catalog.topics, 0.0),
            pair_users=getattr(events, "user_limit", None),
        )
        self.feedback = _FeedbackBuffer()
        # a policy that keeps the base class's no-op fit never reads the feedback: skip
        # recording it (it would hold a whole retrain interval of slates in memory)
        self.learns = not (type(self.policy).fit is Policy.fit and "fit" not in vars(self.policy))
        self.histories = [History(self.catalog.n_topics) for _ in range(self.pop.n_users)]
        self.ubar = np.full(self.pop.n_users, self.b.churn.initial)
        self.n_available = self.catalog.n_available(world.start)
        self.retrain_times: list[float] = []
        self.n_decisions = 0
        self.initial_state: dict[str, np.ndarray] = {}
        self.final_state: dict[str, np.ndarray] = {}
        n_spare = 2 * sc.recommender.n_candidates + 8 + 2 * sc.recommender.n_candidates
        self._positions = np.arange(n_spare, dtype=np.int64)
        self._reverse_positions = self._positions[::-1].copy()
        self._first_seen = np.zeros(self.catalog.n_items, dtype=np.int64)
        # Per-item constants of the hot path, computed once with the very operations the
        # per-event code used to apply (elementwise, so the values are bit-identical), and
        # item attributes as Python floats (scalar arithmetic on them avoids NumPy scalars).
        cat = self.catalog
        self._length = cat.length.tolist()
        self._log_length = [math.log(x) for x in self._length]
        self._extremeness = cat.extremeness.tolist()
        self._quality = cat.quality.tolist()
        self._classifier = cat.classifier.tolist()
        self._position_terms: dict[int, np.ndarray] = {}

    # ------------------------------------------------------------------ processes
    def uploads(self):
        """Make pre-drawn uploads available at their upload times."""
        times = self.catalog.upload_time
        env = self.env
        while self.n_available < times.shape[0]:
            t = times[self.n_available]
            if t > env.now:
                yield env.timeout(t - env.now)
            self.n_available += 1

    def retrainer(self):
        """Refit the policy on the logged feedback every retrain interval (warm-up included),
        so feedback reaches the model late, as on a real platform."""
        env = self.env
        interval = self.sc.recommender.retrain_interval
        if interval <= 0:
            return
        while True:
            yield env.timeout(interval)
            self.retrain_times.append(env.now)
            if self.learns:
                self.policy.fit(self.feedback.take(), env.now)
            if env.now >= 0:
                self.events.add(env.now, -1, 0, "retrain")

    def sampler(self):
        """Metrics snapshots at t=0 and at the end of every bucket."""
        env = self.env
        if env.now < 0:
            yield env.timeout(-env.now)
        self.initial_state = self.metrics.snapshot(self.pop, env.now, self.sc)
        self.initial_state["churned"] = self.pop.churned.copy()  # users lost in the warm-up
        interval = self.sc.outputs.metrics_interval
        start = 0.0
        horizon = self.sc.horizon
        while start < horizon:
            end = min(start + interval, horizon)
            yield env.timeout(end - env.now)
            self.metrics.close_bucket(start, end)
            state = self.metrics.snapshot(self.pop, end, self.sc)
            start = end
        self.final_state = state
        self.final_state["churned"] = self.pop.churned.copy()

    def ticker(self, steps: int = 200):
        env = self.env
        start, end = self.world.start, self.world.end
        step = (end - start) / steps
        for i in range(1, steps + 1):
            yield env.timeout(step)
            self.progress(i / steps)

    # ------------------------------------------------------------------ one decision
    def _candidates(self, draws: rngmod.UserDraws) -> np.ndarray:
        """``n_candidates`` distinct available items, uniformly at random (user's own stream)."""
        n_avail = self.n_available
        n = self.sc.recommender.n_candidates
        if n_avail <= n:
            return np.arange(n_avail)
        # a few spare draws so that, after removing repeats, n distinct items remain
        m = n + 8 + 2 * (n * n) // n_avail
        # == (draws.block("candidates", m) * n_avail).astype(np.int64); the draws of the next
        # few decisions are hashed in the same pass (freed when the session ends)
        idx = draws.indices("candidates", m, n_avail, ahead=_DECISIONS_AHEAD * m)
        # first occurrences without sorting: writing positions in reverse leaves the first
        first = self._first_seen
        first[idx[::-1]] = self._reverse_positions[-m:]
        return idx[first[idx] == self._positions[:m]][:n]

    # ------------------------------------------------------------------ a user
    def user(self, u: int):
        # The hot path. Every quantity is computed with the same floating-point operations, in
        # the same order, as the model functions it mirrors (tests/test_engine_golden.py holds
        # the outputs bit for bit); names are bound locally to save attribute lookups.
        env = self.env
        timeout = env.timeout
        sc, b, cat, pop = self.sc, self.b, self.catalog, self.pop
        events, metrics, feedback = self.events, self.metrics, self.feedback
        add_event = events.add
        add_impressions = events.add_impressions
        feedback_slates = feedback.slates
        feedback_watches = feedback.watches
        learns = self.learns
        draws = rngmod.UserDraws(self.world.user_stream_keys, u)
        uniform = draws.uniform
        normal = draws.normal
        candidates_of = self._candidates
        hist = self.histories[u]
        items = self.items
        topics, topics_obs = cat.topics, cat.topics_obs
        extremeness, clickbait = cat.extremeness, cat.clickbait
        on_watch = metrics.on_watch_item
        length, log_length = self._length, self._log_length
        extremeness_of, quality_of, classifier_of = self._extremeness, self._quality, self._classifier
        kappa = b.satisfaction.kappa
        tau_s = b.satisfaction.relax
        end = self.world.end
        slate_size = sc.recommender.slate_size
        scan = b.choice.scan_time
        allure_cfg, choice_cfg, topic_cfg, appetite_cfg = b.allure, b.choice, b.topic, b.appetite
        continuation_cfg = b.continuation
        p_leave_no_click = b.continuation.p_leave_no_click
        watch_cfg = b.watch
        mu, alpha_a, alpha_w, sigma = watch_cfg.mu, watch_cfg.alpha_a, watch_cfg.alpha_w, watch_cfg.sigma
        value_cfg = b.value
        v_r, v_q, v_h, c_tau = value_cfg.v_r, value_cfg.v_q, value_cfg.v_h, value_cfg.c_tau
        gamma, noise = b.satisfaction.gamma, b.satisfaction.noise
        habit_relax = b.habit.relax
        position_terms = self._position_terms
        allure = model.allure
        choice_probabilities = model.choice_probabilities
        sample_choice = model.sample_choice
        update_topic = model.update_topic
        update_appetite = model.update_appetite
        continue_probability = model.continue_probability
        exp = math.exp
        ret = ReturnState(t_end=env.now, satisfaction=float(pop.satisfaction[u]), impulse=0.0, slow=0.0)
        policy_key = rngmod.user_key(self.policy_rngs.key, u)
        warmup_key = rngmod.user_key(self.warmup_rngs.key, u)
        n_requests = 0
        add_reduce = np.add.reduce
        uniform_returns = lambda: uniform("returns")  # noqa: E731
        session = 0

        while True:
            t_next = next_return(env.now, end, ret, b.returns, kappa, tau_s, uniform_returns)
            if t_next == math.inf:
                return
            yield timeout(t_next - env.now)
            if session > 0:
                p_churn = churn_probability(self.ubar[u], b.churn.zeta0, b.churn.zeta1, b.churn.u_out)
                if uniform("churn") < p_churn:
                    pop.churned[u] = True
                    if env.now >= 0:
                        add_event(env.now, u, session, "churn")
                    return
            session += 1
            logging = env.now >= 0

            # ---- session start: hidden state relaxes over the time away
            now = env.now
            dt = now - float(pop.state_time[u])
            theta = model.relax_topic(pop.theta[u], pop.theta0[u], dt, b.topic.relax)
            a = float(model.relax_toward(pop.appetite[u], pop.appetite0[u], dt, b.appetite.relax))
            S = float(model.relax_toward(pop.satisfaction[u], 0.0, dt, tau_s))
            psi = float(pop.habit[u])
            psi_time = float(pop.habit_time[u])
            F = 0.0
            s = float(pop.susceptibility[u])
            pop.theta[u] = theta
            pop.appetite[u] = a
            pop.satisfaction[u] = S
            pop.fatigue[u] = 0.0
            pop.in_session[u] = True
            hist.n_sessions += 1
            hist.session_items = 0
            hist.session_watch_seconds = 0.0
            if logging:
                add_event(now, u, session, "session_start")
                metrics.on_session(u)
            n_watched = 0
            sum_allure = 0.0
            sum_value = 0.0

            while True:
                # ---- a slate is requested and served
                now = served_at = env.now
                warm = now < 0
                policy = self.warmup_policy if warm else self.policy
                prng = (self.warmup_rngs if warm else self.policy_rngs).keyed_user(
                    warmup_key if warm else policy_key, n_requests
                )
                n_requests += 1
                candidates = candidates_of(draws)
                request = Request(
                    user_id=u,
                    now=now,
                    history=hist,
                    candidates=candidates,
                    features=CandidateFeatures(items, candidates, now),
                    slate_size=slate_size,
                )
                if policy.oracle:
                    W = 1.0 / (1.0 + exp(-kappa * S))
                    request.oracle = OracleView(cat, candidates, theta, a, F, W, b)
                slate = policy.recommend(request, prng)
                if not (warm or self.trusted):
                    slate = check_slate(policy, slate, candidates, slate_size)
                n_shown = len(slate)
                if n_shown == 0:
                    # an empty slate ends the session: the policy suggests a break
                    if logging:
                        add_event(now, u, session, "break")
                    break
                self.n_decisions += 1
                # relevance without BLAS (a matrix product rounds differently with the shape
                # of the batch; this reduction gives the batched engine's bits)
                r = add_reduce(topics.take(slate, axis=0) * theta, axis=1)
                A = allure(r, extremeness.take(slate), clickbait.take(slate), a, allure_cfg)
                position = position_terms.get(n_shown)
                if position is None:
                    position = position_terms[n_shown] = model.position_term(n_shown, choice_cfg)
                probs = choice_probabilities(A, F, choice_cfg, position)
                yield timeout(scan)
                choice = sample_choice(probs, uniform("choice"))
                shown = slate.tolist()
                hist.n_impressions += n_shown
                if logging:
                    add_impressions(now, u, session, shown)
                if learns:
                    feedback_slates.append((now, u, session, shown, choice))

                if choice < 0:
                    if uniform("no_click") < p_leave_no_click:
                        break
                    continue

                # ---- the chosen item is watched
                item = shown[choice]
                A_i = float(A[choice])
                r_i = float(r[choice])
                L = length[item]
                e_i = extremeness_of[item]
                W = 1.0 / (1.0 + exp(-kappa * S))
                click_time = env.now
                if logging:
                    add_event(click_time, u, session, "click", item, choice + 1)
                    metrics.on_click()
                hist.n_clicks += 1
                # model.watch_time, with log L kept per item
                m = log_length[item] + mu + alpha_a * A_i + alpha_w * (W - 0.5)
                tau = min(L, exp(m + sigma * normal("watch")))
                yield timeout(tau)
                now = env.now
                frac = tau / L
                V = v_r * r_i + v_q * quality_of[item] - v_h * e_i * e_i - c_tau * (tau / 60.0)  # model.value

                # ---- hidden-state updates (DESIGN §2.5)
                theta = update_topic(theta, topics[item], r_i, frac, s, topic_cfg)
                a = update_appetite(a, e_i, frac, s, appetite_cfg)
                S = gamma * S + V + noise * normal("satisfaction")  # model.update_satisfaction
                psi = psi * exp(-(now - psi_time) / habit_relax) + A_i  # model.update_habit
                psi_time = now
                F += tau / 3600.0
                pop.theta[u] = theta
                pop.appetite[u] = a
                pop.satisfaction[u] = S
                pop.habit[u] = psi
                pop.habit_time[u] = now
                pop.fatigue[u] = F

                # ---- what the platform observes
                position_1 = choice + 1
                if learns:
                    feedback_watches.append((now, served_at, u, session, item, position_1, tau))
                hist.watch_seconds += tau
                hist.watch_fraction_sum += frac
                hist.classifier_seconds += tau * classifier_of[item]
                hist.topic_mix += tau * topics_obs[item]
                hist.session_items += 1
                hist.session_watch_seconds += tau
                n_watched += 1
                sum_allure += A_i
                sum_value += V
                if logging:
                    add_event(now, u, session, "watch", item, position_1, tau, frac,
                              true_value=V, true_extremeness=e_i, true_allure=A_i)
                    on_watch(u, now, tau, V, e_i, item)

                if uniform("continue") >= continue_probability(A_i, psi, F, continuation_cfg):
                    break

            # ---- session end
            # free what the last decision held (the request caches candidate features) while
            # the user is away: with many users, idle processes would otherwise hold it all
            draws.release()
            request = candidates = slate = shown = r = A = probs = None
            now = env.now
            pop.in_session[u] = False
            pop.fatigue[u] = 0.0
            pop.state_time[u] = now
            hist.last_session_end = now
            if logging:
                add_event(now, u, session, "session_end")
            mean_value = sum_value / n_watched if n_watched else 0.0
            mean_allure = sum_allure / n_watched if n_watched else 0.0
            w = b.churn.ema_weight
            self.ubar[u] = (1.0 - w) * self.ubar[u] + w * mean_value
            rc = b.returns
            dt = now - ret.t_end
            ret = ReturnState(
                t_end=now,
                satisfaction=S,
                impulse=ret.impulse * math.exp(-dt / rc.tau_impulse) + rc.alpha_impulse * max(mean_allure, 0.0),
                slow=ret.slow * math.exp(-dt / rc.tau_value) + rc.alpha_value * max(mean_value, 0.0),
            )
            sv = b.survey
            if uniform("survey") < sv.probability:
                raw = sv.intercept + sv.slope * mean_value + sv.noise * normal("survey")
                score = float(min(5, max(1, round(raw))))
                hist.survey_sum += score
                hist.n_surveys += 1
                if learns:
                    feedback.surveys.append((now, u, session, score))
                if logging:
                    add_event(now, u, session, "survey", survey_score=score)
                    metrics.on_survey(now, u, score)

    # ------------------------------------------------------------------ run
    def run(self) -> RunResult:
        env = self.env
        for u in range(self.pop.n_users):
            env.process(self.user(u))
        env.process(self.uploads())
        env.process(self.retrainer())
        env.process(self.sampler())
        if self.progress is not None:
            env.process(self.ticker())
        # The run allocates many small containers (buffered events, feedback rows) that live
        # until the next flush or retrain; with the default thresholds the cyclic garbage
        # collector would walk them again and again. Collect less often during the run.
        thresholds = gc.get_threshold()
        gc.set_threshold(max(thresholds[0], 50_000), *thresholds[1:])
        try:
            env.run(until=self.world.end + 1e-9)
        finally:
            gc.set_threshold(*thresholds)
        return finish(self)


def finish(sim) -> RunResult:
    """Close the event log and assemble the run's results (shared by both engines)."""
    sim.events.close()
    m = sim.metrics
    headline = m.headline(sim.sc.horizon)
    initial, final = sim.initial_state, sim.final_state
    headline.update(
        final_wellbeing=float(final["wellbeing"].mean()),
        wellbeing_change=float(final["wellbeing"].mean() - initial["wellbeing"].mean()),
        final_appetite=float(final["appetite"].mean()),
        appetite_change=float(final["appetite"].mean() - initial["appetite"].mean()),
        topic_drift=float(final["topic_drift"].mean()),
        # users who churned during the horizon, as a share of the population
        churn_rate=float((final["churned"] & ~initial["churned"]).mean()),
    )
    flows = [row for row in m.rows if row[0] == "consumed_extremeness" and not math.isnan(row[4])]
    headline["consumed_extremeness_change"] = (
        flows[-1][4] - flows[0][4] if len(flows) >= 2 else math.nan
    )
    totals = {
        "watch_minutes": m.user_watch / 60.0,
        "sessions": m.user_sessions,
        "value": m.user_value,
        "consumed_extremeness": np.divide(
            m.user_ext, m.user_watch, out=np.full_like(m.user_ext, np.nan), where=m.user_watch > 0
        ),
    }
    return RunResult(
        metrics=m.rows,
        headline=headline,
        initial_state=initial,
        final_state=final,
        user_totals=totals,
        retrain_times=sim.retrain_times,
        n_events=sim.events.n_rows,
        n_decisions=sim.n_decisions,
        policy=sim.policy,
    )


def check_slate(policy: Policy, slate, candidates: np.ndarray, k: int) -> np.ndarray:
    """A user policy's slate as int64 ids, or a clear error if it breaks the contract."""
    slate = np.asarray(slate).ravel()
    if slate.shape[0] == 0:
        if not policy.may_end_sessions:
            raise ValueError(
                "policy returned an empty slate; set may_end_sessions = True on a policy "
                "that ends sessions on purpose"
            )
        return slate.astype(np.int64)
    if not np.issubdtype(slate.dtype, np.integer):
        raise ValueError(f"policy returned item ids of type {slate.dtype}; expected integers")
    slate = slate.astype(np.int64)
    if slate.shape[0] > k:
        raise ValueError(f"policy returned a slate of {slate.shape[0]} items; expected at most {k}")
    if np.unique(slate).shape[0] != slate.shape[0]:
        raise ValueError("policy returned a slate with repeated items")
    if not np.isin(slate, candidates).all():
        raise ValueError("policy returned items that are not among the candidates")
    return slate


def _built_in(policy: Policy) -> bool:
    """True if the policy and every policy it wraps (``base_``) are recsim's own, whose slates
    need no checking; user code is checked on every decision."""
    while policy is not None:
        if not type(policy).__module__.startswith("recsim."):
            return False
        policy = getattr(policy, "base_", None)
    return True


def simulate(
    world: World,
    spec: PolicySpec,
    events: EventLog,
    progress: Callable[[float], None] | None = None,
) -> RunResult:
    """Run one policy on one replication's world (the world's population is mutated; pass a
    fresh world per run). ``progress`` is called with the fraction of simulated time done."""
    return _Simulation(world, spec, events, progress).run()
