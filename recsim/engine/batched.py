"""The batched engine (DESIGN §4): the reference engine's model, advanced for many users at once.

Between synchronization points — policy retrains and metric snapshots — users do not affect one
another: the policy is fixed, uploads are a known function of time, and every user draws from
their own counter-based streams. So each user's chain of events can be advanced on its own
clock, and the chains of all users are advanced together, one step per user per iteration,
with NumPy across users. A step is one of the reference engine's resumption points:

* ``RETURN``  — the user comes back (churn check, session start, state relaxation);
* ``SERVE``   — a slate is served (candidates, the policy, the choice after the scan);
* ``WATCH``   — a watch ends (hidden-state updates, continuation);
* ``END``     — the session ends (return kernels, survey, the next return time by thinning).

A step is taken only when its time is before the next synchronization point, so snapshots
and retrains see exactly the state, logs and feedback the reference engine shows them.
Everything a step emits (event rows, feedback rows, metric contributions) carries the
simulated time at which the reference engine would emit it, and is handed over in that order
at the next synchronization point. Every floating-point operation is the one the reference
engine performs, in the same order (element-wise NumPy operations and reductions along the
last axis give the same bits whatever the batch shape; the scalar C-library functions the
reference engine calls are called here too), so both engines write the same event log and
metrics for the same seed — tests/test_engine_equivalence.py holds them to it.

Time is simulated seconds as in the reference engine; SimPy's clock arithmetic (a timeout
of ``d`` resumes at ``now + d``) is reproduced where times are computed.
"""

from __future__ import annotations

import math
from typing import Callable

import numpy as np
from scipy.special import expit

from .. import rng as rngmod
from ..config import PolicySpec
from ..eventlog import EVENT_CODES as _CODE
from ..eventlog import EventLog
from ..metrics import MetricsCollector
from ..policies.base import (
    BatchFeatures,
    Feedback,
    HistoryTable,
    OracleBatch,
    Policy,
    PolicyContext,
    RequestBatch,
    RequestRngs,
)
from ..policies.registry import build_policy, resolve_policy
from ..users import model
from ..users.returns import ReturnState, next_return
from ..world import World
from .reference import RunResult, _built_in, check_slate, finish

__all__ = ["simulate_batched", "OnlinePolicyError"]

RETURN, SERVE, WATCH, END, DONE = range(5)
_NAN = math.nan


def _unit_rows(new: np.ndarray, fallback: np.ndarray) -> np.ndarray:
    """Rows of ``new`` scaled to unit norm in place, a zero row replaced by ``fallback``'s: the
    per-user paths of model.update_topic and model.relax_topic (``math.sqrt`` of a row sum is
    ``np.sqrt`` of the same sum), row by row."""
    norm = np.sqrt(np.add.reduce(new * new, axis=1))
    pos = norm > 0
    new[pos] /= norm[pos, None]
    new[~pos] = fallback[~pos]
    return new


class OnlinePolicyError(ValueError):
    """The policy learns after every event, which only the reference engine can run."""


class _Table:
    """Rows of named columns, each with the simulated time it was emitted at, in growable
    preallocated arrays (struct of arrays): cheap to append to from vectorized steps; taken in
    emission order (rows emitted at the same time keep the order they were added in, and a
    user's rows are added in the order the user emits them)."""

    def __init__(self, columns: dict[str, tuple[type, object]]):
        self.spec = columns  # name: (dtype, default)
        self.n = 0
        self._alloc(1024)

    def _alloc(self, capacity: int) -> None:
        old = getattr(self, "cols", None)
        self.capacity = capacity
        self.emit = np.empty(capacity) if old is None else np.concatenate([self.emit[: self.n], np.empty(capacity - self.n)])
        cols = {}
        for name, (dtype, _) in self.spec.items():
            col = np.empty(capacity, dtype=dtype)
            if old is not None:
                col[: self.n] = old[name][: self.n]
            cols[name] = col
        self.cols = cols

    def add(self, emit, n: int, **columns) -> None:
        if n == 0:
            return
        if self.n + n > self.capacity:
            self._alloc(max(2 * self.capacity, self.n + n))
        lo, hi = self.n, self.n + n
        self.emit[lo:hi] = emit
        for name, (_, default) in self.spec.items():
            self.cols[name][lo:hi] = columns.get(name, default)
        self.n = hi

    def take_before(self, t: float) -> dict[str, np.ndarray] | None:
        """The rows emitted before ``t``, in emission order; the rest stay."""
        n = self.n
        if n == 0:
            return None
        emit = self.emit[:n]
        now = emit < t
        k = int(now.sum())
        if k == 0:
            return None
        if k == n:
            order = np.argsort(emit, kind="stable")
            out = {name: col[:n][order] for name, col in self.cols.items()}
            self.n = 0
        else:
            taken = np.flatnonzero(now)
            order = taken[np.argsort(emit[taken], kind="stable")]
            out = {name: col[:n][order] for name, col in self.cols.items()}
            rest = np.flatnonzero(~now)
            m = rest.shape[0]
            self.emit[:m] = emit[rest]
            for col in self.cols.values():
                col[:m] = col[rest]
            self.n = m
        return out  # the capacity stays: the next window fills about as many rows

    def __len__(self) -> int:
        return self.n


def _event_rows() -> _Table:
    """Event rows emitted but not yet written (the event log's columns)."""
    return _Table({
        "time": (np.float64, _NAN), "user_id": (np.int64, -1), "session": (np.int64, 0),
        "event": (np.int8, 0), "item_id": (np.int64, -1), "position": (np.int64, 0),
        "watch_time": (np.float64, _NAN), "watch_fraction": (np.float64, _NAN),
        "survey_score": (np.float64, _NAN), "true_value": (np.float64, _NAN),
        "true_extremeness": (np.float64, _NAN), "true_allure": (np.float64, _NAN),
    })


class _FeedbackRows:
    """Observable feedback since the last retrain, as :class:`Feedback` rows with emission
    times (the reference engine appends them as they happen)."""

    def __init__(self) -> None:
        self.rows = _Table({
            "time": (np.float64, 0.0), "served_at": (np.float64, 0.0), "user_id": (np.int64, 0),
            "session": (np.int64, 0), "item_id": (np.int64, 0), "position": (np.int64, 0),
            "clicked": (bool, False), "watch_time": (np.float64, 0.0),
        })
        self.surveys = _Table({
            "time": (np.float64, 0.0), "user_id": (np.int64, 0), "session": (np.int64, 0), "score": (np.float64, 0.0),
        })

    def add(self, emit, n: int, **columns) -> None:
        self.rows.add(emit, n, **columns)

    def add_surveys(self, emit, n: int, **columns) -> None:
        self.surveys.add(emit, n, **columns)

    @staticmethod
    def _empty(table: _Table) -> dict[str, np.ndarray]:
        return {name: np.empty(0, dtype=dtype) for name, (dtype, _) in table.spec.items()}

    def take(self, t: float) -> Feedback:
        """Feedback emitted before ``t``, sorted as the reference engine's (by time, user,
        non-clicked first, position)."""
        cols = self.rows.take_before(t) or self._empty(self.rows)
        # rows come in emission order, which within one user and time lists a slate's
        # non-clicked impressions by position; the canonical order (time, user, non-clicked
        # first, position) is then a stable sort by time of [non-clicked rows, clicked rows]
        # (users never share a time)
        clicked = cols["clicked"]
        grouped = np.concatenate([np.flatnonzero(~clicked), np.flatnonzero(clicked)])
        order = grouped[np.argsort(cols["time"][grouped], kind="stable")]
        sv = self.surveys.take_before(t) or self._empty(self.surveys)
        so = np.lexsort((sv["user_id"], sv["time"]))
        return Feedback(**{k: v[order] for k, v in cols.items()}, surveys={k: v[so] for k, v in sv.items()})


class _Batched:
    def __init__(self, world: World, spec: PolicySpec, events: EventLog,
                 progress: Callable[[float], None] | None):
        sc = world.scenario
        self.world, self.sc, self.b = world, sc, sc.behaviour
        self.catalog = cat = world.catalog
        self.pop = pop = world.population
        self.events = events
        self.progress = progress
        self.items = cat.observable()
        n_users = pop.n_users
        self.context = PolicyContext(
            n_topics=cat.n_topics,
            slate_size=sc.recommender.slate_size,
            n_candidates=sc.recommender.n_candidates,
            retrain_interval=sc.recommender.retrain_interval,
            items=self.items,
            n_users=n_users,
        )
        self.policy: Policy = build_policy(spec)
        if self.policy.online:
            raise OnlinePolicyError(
                f"policy {spec.name!r} learns after every event (online = True); only the reference "
                "engine can run it: set `engine: reference` in the scenario"
            )
        self.policy.reset(self.context)
        self.warmup_policy: Policy = resolve_policy(sc.warmup_policy)()
        self.warmup_policy.reset(self.context)
        self.policy_rngs = RequestRngs(rngmod.stream_key(sc.seed, world.replication, f"policy:{spec.name}"))
        self.warmup_rngs = RequestRngs(rngmod.stream_key(sc.seed, world.replication, "policy:warmup"))
        self.trusted = _built_in(self.policy)
        self.metrics = MetricsCollector(n_users, cat.n_topics, sc.outputs.extreme_threshold, np.maximum(cat.topics, 0.0),
                                        pair_users=getattr(events, "user_limit", None))
        self.learns = not (type(self.policy).fit is Policy.fit and "fit" not in vars(self.policy))
        self.feedback = _FeedbackRows()
        self.rows = _event_rows()
        self.hist = HistoryTable(n_users, cat.n_topics)
        self.ubar = np.full(n_users, self.b.churn.initial)
        self.retrain_times: list[float] = []
        self.n_decisions = 0
        self.end_cut = world.end + 1e-9  # env.run(until=...) of the reference engine
        # per-user streams: keys and counters (draws taken so far), one array per stream
        self.keys = {s: rngmod.user_keys(k, np.arange(n_users)) for s, k in world.user_stream_keys.items()}
        self.ctr = {s: np.zeros(n_users, dtype=np.int64) for s in world.user_stream_keys}
        # engine bookkeeping, one entry per user
        self.phase = np.full(n_users, RETURN, dtype=np.int8)
        self.t_next = np.full(n_users, np.inf)
        self.session = np.zeros(n_users, dtype=np.int64)
        self.logging = np.zeros(n_users, dtype=bool)
        self.n_requests = np.zeros(n_users, dtype=np.int64)
        self.n_watched = np.zeros(n_users, dtype=np.int64)
        self.sum_allure = np.zeros(n_users)
        self.sum_value = np.zeros(n_users)
        self.ret_t_end = np.full(n_users, world.start)
        self.ret_s = pop.satisfaction.copy()
        self.ret_impulse = np.zeros(n_users)
        self.ret_slow = np.zeros(n_users)
        # the watch in progress: item, allure, relevance, τ, when its slate was served, position
        self.w_item = np.zeros(n_users, dtype=np.int64)
        self.w_allure = np.zeros(n_users)
        self.w_rel = np.zeros(n_users)
        self.w_tau = np.zeros(n_users)
        self.w_served = np.zeros(n_users)
        self.w_position = np.zeros(n_users, dtype=np.int64)
        self.log_length = np.array([math.log(x) for x in cat.length.tolist()])
        self.position_terms: dict[int, np.ndarray] = {}
        self.avail_times, self.n_avail0 = self._availability()
        self.initial_state: dict[str, np.ndarray] = {}
        self.final_state: dict[str, np.ndarray] = {}
        #: requests scored at once (bounds the policy's temporaries, keeps them in cache)
        self.max_batch = 1024
        #: event rows buffered between synchronization points are bounded by handing them over
        #: at extra points (they change nothing else: users are independent between them)
        self.max_rows = 500_000
        # users whose events are written (outputs.event_sample); the others only feed metrics
        limit = getattr(events, "user_limit", None)
        self.written_users = n_users if limit is None else min(int(limit), n_users)

    # ------------------------------------------------------------------ helpers
    def _availability(self) -> tuple[np.ndarray, int]:
        """When each upload becomes available in the reference engine's upload process
        (its clock arithmetic), and how many items are available at the start."""
        times = self.catalog.upload_time
        now = self.world.start
        n0 = self.catalog.n_available(now)
        out = []
        for t in times[n0:].tolist():
            if t > now:
                now = now + (t - now)
            out.append(now)
        return np.array(out, dtype=float), n0

    def _uniforms(self, stream: str, users: np.ndarray) -> np.ndarray:
        ctr = self.ctr[stream]
        c = ctr[users]
        ctr[users] = c + 1
        return rngmod.uniforms(self.keys[stream][users], c)

    def _normals(self, stream: str, users: np.ndarray) -> np.ndarray:
        return rngmod.standard_normals(self._uniforms(stream, users))

    def _next_returns(self, users: np.ndarray, now: np.ndarray) -> None:
        """Schedule every user's next return (thinning, user by user: the reference engine's
        function with the user's ``returns`` stream), or retire them."""
        b = self.b
        rc, kappa, tau_s, until = b.returns, b.satisfaction.kappa, b.satisfaction.relax, self.world.end
        keys, ctr = self.keys["returns"], self.ctr["returns"]
        t_end, s_end, impulse, slow = (
            self.ret_t_end[users].tolist(), self.ret_s[users].tolist(),
            self.ret_impulse[users].tolist(), self.ret_slow[users].tolist(),
        )
        out = np.empty(users.shape[0])
        counters = ctr[users].tolist()
        ukeys = keys[users].tolist()
        for j, (u_now, key) in enumerate(zip(now.tolist(), ukeys, strict=True)):
            k = counters[j]

            def uniform(key: int = key) -> float:  # the user's next `returns` draw
                nonlocal k
                k += 1
                return rngmod.counter_uniform(key, k)

            state = ReturnState(t_end=t_end[j], satisfaction=s_end[j], impulse=impulse[j], slow=slow[j])
            t = next_return(u_now, until, state, rc, kappa, tau_s, uniform)
            counters[j] = k
            out[j] = u_now + (t - u_now) if t != math.inf else math.inf
        ctr[users] = counters
        done = out == math.inf
        self.t_next[users] = out
        self.phase[users] = np.where(done, DONE, RETURN)

    def _written(self, users: np.ndarray, log: np.ndarray) -> np.ndarray:
        """``log`` restricted to the users whose events are written (outputs.event_sample),
        for rows that feed no metric (impressions, session ends, breaks, churn)."""
        if self.written_users < self.pop.n_users:
            return log & (users < self.written_users)
        return log

    # ------------------------------------------------------------------ steps
    def _returns(self, users: np.ndarray, now: np.ndarray) -> None:
        b, pop, hist = self.b, self.pop, self.hist
        first = self.session[users] == 0
        churn = np.zeros(users.shape[0], dtype=bool)
        again = np.flatnonzero(~first)
        if again.shape[0]:
            u = users[again]
            c = b.churn
            p = expit(c.zeta0 - c.zeta1 * (self.ubar[u] - c.u_out))
            churn[again] = self._uniforms("churn", u) < p
        if churn.any():
            cu, ct = users[churn], now[churn]
            pop.churned[cu] = True
            self.phase[cu] = DONE
            self.t_next[cu] = np.inf
            log = self._written(cu, ct >= 0)
            self.rows.add(ct[log], int(log.sum()), time=ct[log], user_id=cu[log],
                          session=self.session[cu][log], event=_CODE["churn"])
            users, now = users[~churn], now[~churn]
        if users.shape[0] == 0:
            return
        self.session[users] += 1
        session = self.session[users]
        logging = now >= 0
        self.logging[users] = logging
        dt = now - pop.state_time[users]
        # model.relax_topic's per-session path, row by row
        tau_t = b.topic.relax
        keep = np.exp(-dt / tau_t) if tau_t > 0 else np.zeros_like(dt)
        theta0 = pop.theta0[users]
        new = pop.theta[users] - theta0
        new *= keep[:, None]
        new += theta0
        pop.theta[users] = _unit_rows(new, theta0)
        pop.appetite[users] = model.relax_toward(pop.appetite[users], pop.appetite0[users], dt, b.appetite.relax)
        pop.satisfaction[users] = model.relax_toward(pop.satisfaction[users], 0.0, dt, b.satisfaction.relax)
        pop.fatigue[users] = 0.0
        pop.in_session[users] = True
        hist.n_sessions[users] += 1
        hist.session_items[users] = 0
        hist.session_watch_seconds[users] = 0.0
        lu = users[logging]
        self.rows.add(now[logging], lu.shape[0], time=now[logging], user_id=lu, session=session[logging],
                      event=_CODE["session_start"])
        self.n_watched[users] = 0
        self.sum_allure[users] = 0.0
        self.sum_value[users] = 0.0
        self.phase[users] = SERVE  # the first slate, at once

    def _serve(self, users: np.ndarray, now: np.ndarray) -> None:
        warm = now < 0
        for use, policy, rngs in ((warm, self.warmup_policy, self.warmup_rngs), (~warm, self.policy, self.policy_rngs)):
            if use.any():
                self._serve_with(users[use], now[use], policy, rngs, policy is self.warmup_policy)

    def _serve_with(self, users, now, policy: Policy, rngs: RequestRngs, warm: bool) -> None:
        n = self.sc.recommender.n_candidates
        ctr, keys = self.ctr["candidates"], self.keys["candidates"]
        size = self.max_batch
        # in chunks of users: the candidate draw's temporaries (B × m hashes) and the policy's
        # (B × c × K floats) stay bounded however many users are served at once
        for lo in range(0, users.shape[0], size):
            u, t = users[lo: lo + size], now[lo: lo + size]
            n_avail = self.n_avail0 + np.searchsorted(self.avail_times, t, side="right")
            candidates, count, m = rngmod.candidate_rows(keys[u], ctr[u], n, n_avail)
            ctr[u] += m
            counts = np.unique(count)
            if counts.shape[0] == 1:
                self._serve_rows(u, t, candidates[:, : int(counts[0])], policy, rngs, warm)
                continue
            for c in counts.tolist():  # rows with fewer candidates (a small catalog)
                rows = np.flatnonzero(count == c)
                self._serve_rows(u[rows], t[rows], np.ascontiguousarray(candidates[rows, :c]), policy, rngs, warm)

    def _serve_rows(self, users, now, candidates, policy, rngs, warm) -> None:
        sc, b, pop, cat = self.sc, self.b, self.pop, self.catalog
        k = sc.recommender.slate_size
        oracle = None
        if policy.oracle:
            oracle = OracleBatch(
                catalog=cat, candidates=candidates, theta=pop.theta[users], appetite=pop.appetite[users],
                fatigue=pop.fatigue[users], wellbeing=expit(b.satisfaction.kappa * pop.satisfaction[users]),
                behaviour=b,
            )
        batch = RequestBatch(
            user_ids=users, now=now, candidates=candidates, histories=self.hist,
            features=BatchFeatures(self.items, candidates, now), slate_size=k, items=self.items, oracle=oracle,
        )
        slates = policy.recommend_batch(batch, rngs.rows(users, self.n_requests[users]))
        self.n_requests[users] += 1
        if isinstance(slates, np.ndarray) and slates.ndim == 2 and slates.shape[0] == users.shape[0]:
            if not (warm or self.trusted):
                slates = np.stack([check_slate(policy, s, candidates[i], k) for i, s in enumerate(slates)]) \
                    if slates.shape[1] else slates.astype(np.int64)
            groups = {slates.shape[1]: (np.arange(users.shape[0]), np.asarray(slates, dtype=np.int64))}
        else:
            slates = list(slates)
            if len(slates) != users.shape[0]:
                raise ValueError(f"recommend_batch returned {len(slates)} slates for {users.shape[0]} requests")
            if warm or self.trusted:
                slates = [np.asarray(s, dtype=np.int64).ravel() for s in slates]
            else:
                slates = [check_slate(policy, s, candidates[i], k) for i, s in enumerate(slates)]
            lengths = np.fromiter(map(len, slates), np.int64, len(slates))
            groups = {}
            for length in np.unique(lengths).tolist():
                rows = np.flatnonzero(lengths == length)
                groups[length] = (rows, np.array([slates[i] for i in rows.tolist()], dtype=np.int64).reshape(rows.shape[0], length))
        for length, (rows, slate) in groups.items():
            if length == 0:
                self._breaks(users[rows], now[rows])
            else:
                self._show(users[rows], now[rows], slate)

    def _breaks(self, users, now) -> None:
        """An empty slate: the policy ends the session (a break suggestion)."""
        log = self._written(users, self.logging[users])
        self.rows.add(now[log], int(log.sum()), time=now[log], user_id=users[log],
                      session=self.session[users][log], event=_CODE["break"])
        self.phase[users] = END
        self.t_next[users] = now

    def _show(self, users, now, slate) -> None:
        b, pop, cat = self.b, self.pop, self.catalog
        B, n_shown = slate.shape
        self.n_decisions += B
        theta = pop.theta[users]
        r = np.add.reduce(cat.topics[slate] * theta[:, None, :], axis=2)
        A = model.allure(r, cat.extremeness[slate], cat.clickbait[slate], pop.appetite[users][:, None], b.allure)
        position = self.position_terms.get(n_shown)
        if position is None:
            position = self.position_terms[n_shown] = model.position_term(n_shown, b.choice)
        ch = b.choice
        z = np.empty((B, n_shown + 1))
        z[:, 0] = ch.u0 + ch.phi_f * pop.fatigue[users]
        np.add(A, position, out=z[:, 1:])
        z *= ch.beta
        z -= np.maximum.reduce(z, axis=1)[:, None]
        np.exp(z, out=z)
        z /= np.add.reduce(z, axis=1)[:, None]
        u_choice = self._uniforms("choice", users)
        cum = np.cumsum(z, axis=1)
        above = cum > u_choice[:, None]
        first = np.where(above.any(axis=1), above.argmax(axis=1), n_shown + 1)
        choice = np.where(first == n_shown + 1, n_shown - 1, first - 1)  # -1: no click
        t_choice = now + b.choice.scan_time
        alive = t_choice < self.end_cut  # the reference engine never resumes past the end
        if not alive.all():
            gone = users[~alive]
            self.phase[gone] = DONE
            self.t_next[gone] = np.inf
            users, now, slate, r, A, choice, t_choice = (
                users[alive], now[alive], slate[alive], r[alive], A[alive], choice[alive], t_choice[alive]
            )
            B = users.shape[0]
            if B == 0:
                return
        hist = self.hist
        hist.n_impressions[users] += n_shown
        session = self.session[users]
        log = self.logging[users]
        # impressions feed no metric: rows only for the users whose events are written
        shown_log = self._written(users, log)
        if self.events.log_impressions and shown_log.any():
            lu = np.repeat(users[shown_log], n_shown)
            self.rows.add(np.repeat(t_choice[shown_log], n_shown), lu.shape[0],
                          time=np.repeat(now[shown_log], n_shown), user_id=lu,
                          session=np.repeat(session[shown_log], n_shown), event=_CODE["impression"],
                          item_id=slate[shown_log].ravel(),
                          position=np.tile(np.arange(1, n_shown + 1), int(shown_log.sum())))
        if self.learns:
            positions = np.broadcast_to(np.arange(n_shown), (B, n_shown))
            keep = positions != choice[:, None]
            rows_b = np.broadcast_to(np.arange(B)[:, None], (B, n_shown))[keep]
            self.feedback.add(
                t_choice[rows_b], rows_b.shape[0], time=now[rows_b], served_at=now[rows_b], user_id=users[rows_b],
                session=session[rows_b], item_id=slate[keep], position=positions[keep] + 1,
                clicked=False, watch_time=0.0,
            )
        # no click: leave, or look at another slate after the scan
        none = choice < 0
        if none.any():
            nu = users[none]
            leave = self._uniforms("no_click", nu) < b.continuation.p_leave_no_click
            self.phase[nu] = np.where(leave, END, SERVE)
            self.t_next[nu] = t_choice[none]
        click = ~none
        if not click.any():
            return
        cu, cc, cs, ct = users[click], choice[click], slate[click], t_choice[click]
        rows_c = np.flatnonzero(click)
        item = cs[np.arange(cu.shape[0]), cc]
        A_i = A[rows_c, cc]
        r_i = r[rows_c, cc]
        hist.n_clicks[cu] += 1
        clog = log[click]
        self.rows.add(ct[clog], int(clog.sum()), time=ct[clog], user_id=cu[clog], session=session[click][clog],
                      event=_CODE["click"], item_id=item[clog], position=cc[clog] + 1)
        w = b.watch
        W = expit(b.satisfaction.kappa * pop.satisfaction[cu])
        m = self.log_length[item] + w.mu + w.alpha_a * A_i + w.alpha_w * (W - 0.5)
        zw = self._normals("watch", cu)
        L = cat.length[item]
        tau = np.minimum(L, rngmod.libm_exp(m + w.sigma * zw))
        t_watch = ct + tau
        ends = t_watch < self.end_cut
        self.w_item[cu] = item
        self.w_allure[cu] = A_i
        self.w_rel[cu] = r_i
        self.w_tau[cu] = tau
        self.w_served[cu] = now[click]
        self.w_position[cu] = cc + 1
        self.phase[cu] = np.where(ends, WATCH, DONE)
        self.t_next[cu] = np.where(ends, t_watch, np.inf)

    def _watch(self, users, now) -> None:
        b, pop, cat, hist = self.b, self.pop, self.catalog, self.hist
        item, A_i, r_i, tau = self.w_item[users], self.w_allure[users], self.w_rel[users], self.w_tau[users]
        L = cat.length[item]
        e = cat.extremeness[item]
        frac = tau / L
        v = b.value
        V = v.v_r * r_i + v.v_q * cat.quality[item] - v.v_h * e * e - v.c_tau * (tau / 60.0)
        s = pop.susceptibility[users]
        # model.update_topic's per-event path, row by row
        coef = b.topic.eta * s * r_i * frac
        new = cat.topics[item] * coef[:, None]
        theta = pop.theta[users]
        new += theta
        pop.theta[users] = _unit_rows(new, theta)
        a = pop.appetite[users]
        ap = b.appetite
        up = ap.eta_up * s * frac * np.maximum(e - a, 0.0)
        down = ap.eta_down * np.maximum(a - e, 0.0)
        pop.appetite[users] = np.minimum(np.maximum(a + up - down, 0.0), 1.0)
        sat = b.satisfaction
        S = sat.gamma * pop.satisfaction[users] + V + sat.noise * self._normals("satisfaction", users)
        pop.satisfaction[users] = S
        psi = pop.habit[users] * rngmod.libm_exp(-(now - pop.habit_time[users]) / b.habit.relax) + A_i
        pop.habit[users] = psi
        pop.habit_time[users] = now
        F = pop.fatigue[users] + tau / 3600.0
        pop.fatigue[users] = F
        session = self.session[users]
        position = self.w_position[users]
        if self.learns:
            self.feedback.add(now, users.shape[0], time=now, served_at=self.w_served[users], user_id=users,
                              session=session, item_id=item, position=position, clicked=True, watch_time=tau)
        hist.watch_seconds[users] += tau
        hist.watch_fraction_sum[users] += frac
        hist.classifier_seconds[users] += tau * cat.classifier[item]
        hist.topic_mix[users] += tau[:, None] * cat.topics_obs[item]
        hist.session_items[users] += 1
        hist.session_watch_seconds[users] += tau
        self.n_watched[users] += 1
        self.sum_allure[users] += A_i
        self.sum_value[users] += V
        log = self.logging[users]
        self.rows.add(now[log], int(log.sum()), time=now[log], user_id=users[log], session=session[log],
                      event=_CODE["watch"], item_id=item[log], position=position[log], watch_time=tau[log],
                      watch_fraction=frac[log], true_value=V[log], true_extremeness=e[log], true_allure=A_i[log])
        c = b.continuation
        p = expit(c.c0 + c.c_a * A_i + c.c_psi * psi - c.c_f * F)
        stop = self._uniforms("continue", users) >= p
        self.phase[users] = np.where(stop, END, SERVE)  # at the same time

    def _end(self, users, now) -> None:
        b, pop, hist = self.b, self.pop, self.hist
        pop.in_session[users] = False
        pop.fatigue[users] = 0.0
        pop.state_time[users] = now
        hist.last_session_end[users] = now
        session = self.session[users]
        log = self.logging[users]
        end_log = self._written(users, log)
        self.rows.add(now[end_log], int(end_log.sum()), time=now[end_log], user_id=users[end_log],
                      session=session[end_log], event=_CODE["session_end"])
        n_w = self.n_watched[users]
        watched = n_w > 0
        safe = np.maximum(n_w, 1)
        mean_value = np.where(watched, self.sum_value[users] / safe, 0.0)
        mean_allure = np.where(watched, self.sum_allure[users] / safe, 0.0)
        w = b.churn.ema_weight
        self.ubar[users] = (1.0 - w) * self.ubar[users] + w * mean_value
        rc = b.returns
        dt = now - self.ret_t_end[users]
        self.ret_impulse[users] = (self.ret_impulse[users] * rngmod.libm_exp(-dt / rc.tau_impulse)
                                   + rc.alpha_impulse * np.maximum(mean_allure, 0.0))
        self.ret_slow[users] = (self.ret_slow[users] * rngmod.libm_exp(-dt / rc.tau_value)
                                + rc.alpha_value * np.maximum(mean_value, 0.0))
        self.ret_t_end[users] = now
        self.ret_s[users] = pop.satisfaction[users]
        sv = b.survey
        asked = self._uniforms("survey", users) < sv.probability
        if asked.any():
            au, at = users[asked], now[asked]
            raw = sv.intercept + sv.slope * mean_value[asked] + sv.noise * self._normals("survey", au)
            score = np.minimum(5.0, np.maximum(1.0, np.round(raw)))
            hist.survey_sum[au] += score
            hist.n_surveys[au] += 1
            if self.learns:
                self.feedback.add_surveys(at, au.shape[0], time=at, user_id=au, session=session[asked], score=score)
            alog = log[asked]
            self.rows.add(at[alog], int(alog.sum()), time=at[alog], user_id=au[alog], session=session[asked][alog],
                          event=_CODE["survey"], survey_score=score[alog])
        self._next_returns(users, now)

    # ------------------------------------------------------------------ the loop
    def _advance(self, until: float) -> None:
        """Take every step due before ``until`` (a synchronization point)."""
        t_next, phase = self.t_next, self.phase
        steps = ((RETURN, self._returns), (SERVE, self._serve), (WATCH, self._watch), (END, self._end))
        while True:
            due = np.flatnonzero(t_next < until)
            if due.shape[0] == 0:
                return
            ph = phase[due]
            for code, step in steps:
                users = due[ph == code]
                if users.shape[0]:
                    step(users, t_next[users])

    def _flush(self, until: float) -> None:
        """Hand the rows emitted before ``until`` to the event log and the metrics."""
        cols = self.rows.take_before(until)
        if cols is None:
            return
        ev = cols["event"]
        m = self.metrics
        starts = ev == _CODE["session_start"]
        if starts.any():
            m.on_sessions(cols["user_id"][starts])
        clicks = int((ev == _CODE["click"]).sum())
        if clicks:
            m.on_clicks(clicks)
        watches = ev == _CODE["watch"]
        if watches.any():
            m.on_watches(cols["user_id"][watches], cols["time"][watches], cols["watch_time"][watches],
                         cols["true_value"][watches], cols["true_extremeness"][watches], cols["item_id"][watches])
        surveys = ev == _CODE["survey"]
        if surveys.any():
            m.on_surveys(cols["time"][surveys], cols["user_id"][surveys], cols["survey_score"][surveys])
        self.events.add_rows(cols)

    def _schedule(self) -> list[tuple[float, str]]:
        """The synchronization points (time, what happens), in the reference engine's clock."""
        sc, start, end = self.sc, self.world.start, self.end_cut
        points: list[tuple[float, str]] = []
        interval = sc.recommender.retrain_interval
        if interval > 0:
            t = start
            while True:
                t = t + interval
                if not t < end:
                    break
                points.append((t, "retrain"))
        t = start
        if t < 0:
            t = t + (-t)
        points.append((t, "initial"))
        bucket, horizon, b_start = sc.outputs.metrics_interval, sc.horizon, 0.0
        while b_start < horizon:
            b_end = min(b_start + bucket, horizon)
            t = t + (b_end - t)
            if t < end:
                points.append((t, "bucket"))
            b_start = b_end
        points.sort(key=lambda p: p[0])
        return points

    def run(self) -> RunResult:
        pop = self.pop
        everyone = np.arange(pop.n_users)
        self._next_returns(everyone, np.full(pop.n_users, self.world.start))
        bucket_start = 0.0
        span = self.world.end - self.world.start
        # simulated seconds between hand-overs of rows, adapted to the row rate from the next
        # window on; the first is shorter the more users there are
        window = float(min(3600.0, max(60.0, 3600.0 * 1e4 / max(pop.n_users, 1))))
        last = self.world.start
        for t, what in self._schedule() + [(self.end_cut, "end")]:
            while t - last > window:  # extra hand-over points
                last = last + window
                self._advance(last)
                n_rows = len(self.rows)
                self._flush(last)
                if n_rows > self.max_rows:
                    window = max(60.0, window / 2)
                elif n_rows < self.max_rows // 4:
                    window = min(86400.0, window * 2)
                if self.progress is not None:
                    self.progress(min(1.0, (last - self.world.start) / span))
            last = t
            self._advance(t)
            self._flush(t)
            if what == "end":
                break
            if what == "retrain":
                self.retrain_times.append(t)
                if self.learns:
                    self.policy.fit(self.feedback.take(t), t)
                if t >= 0:
                    self.rows.add(t, 1, time=t, user_id=-1, session=0, event=_CODE["retrain"])
            elif what == "initial":
                self.initial_state = self.metrics.snapshot(pop, t, self.sc)
                self.initial_state["churned"] = pop.churned.copy()
            else:
                bucket_end = min(bucket_start + self.sc.outputs.metrics_interval, self.sc.horizon)
                self.metrics.close_bucket(bucket_start, bucket_end)
                self.final_state = self.metrics.snapshot(pop, t, self.sc)
                self.final_state["churned"] = pop.churned.copy()
                bucket_start = bucket_end
            if self.progress is not None:
                self.progress(min(1.0, (t - self.world.start) / span))
        self._flush(math.inf)
        if self.progress is not None:
            self.progress(1.0)
        return finish(self)


def simulate_batched(
    world: World,
    spec: PolicySpec,
    events: EventLog,
    progress: Callable[[float], None] | None = None,
) -> RunResult:
    """:func:`recsim.engine.simulate` with the batched engine (same arguments, same results)."""
    return _Batched(world, spec, events, progress).run()
