"""What happens to a user at each step of their life on the platform, for a batch of users.

Both engines run these steps; they differ only in *when* they take them. A user's life is a
chain of four kinds of step, each at a time the previous one fixed:

* ``RETURN`` — the user comes back: the churn check, then a session starts (the state relaxes
  over the time away);
* ``SERVE``  — a slate is requested and served: candidates, the policy, the user's choice
  after scanning the slate; a click starts a watch;
* ``WATCH``  — a watch ends: the item's value, the state transition, whether the session goes on;
* ``END``    — the session ends: session summaries feed churn, the return process and the
  survey; the next return is drawn.

Every model quantity comes from the user model's components (:mod:`recsim.users`); this module
only routes arrays between them, the policy, the logs and the metrics. Between synchronization
points (retrains, metric snapshots) users do not affect one another, so steps of different
users may be taken in any order: the reference engine takes them one user at a time in time
order (SimPy), the batched engine all due users at once. Everything a step emits carries the
simulated time at which it happens and is handed to the event log and the metrics in time order
at the next synchronization point (:meth:`Simulation.flush`), so both engines write the same
outputs, bit for bit: every user's numbers are computed by the same array functions from the
same counter-based draws, whatever the batch.

Nothing here imports SimPy. Times are simulated seconds: the warm-up runs on ``[start, 0)``,
the horizon on ``[0, end]``; events and metrics cover the horizon (an event counts if it
happens at ``t >= 0``, whenever its session started).
"""

from __future__ import annotations

import math
import sys
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

from .. import rng as rngmod
from ..config import PolicySpec
from ..creators import CreatorPool
from ..eventlog import EVENT_CODES as _CODE
from ..eventlog import EventLog
from ..metrics import MetricsCollector, _nanmean, proxy_panel
from ..policies.base import (
    BatchFeatures,
    Feedback,
    HistoryTable,
    OracleBatch,
    Policy,
    PolicyContext,
    RequestBatch,
    RequestRngs,
    learns_from_feedback,
    observes_feedback,
    revise_items,
)
from ..plugins import definition_line, is_library_file, short_message, user_line
from ..policies.registry import build_policy, resolve_policy
from ..users.components import SessionSummary
from ..users.formulas import sample_choice, session_mean
from ..users.scripted import build_rule
from ..users.state import Draws, ItemView
from ..world import World
from .errors import (
    CallLimit,
    ComponentFailure,
    ExitCalled,
    PolicyTimeout,
    SlateError,
    TaskError,
    TaskGuard,
    TimedOut,
    UserCodeError,
    WorkerDied,
    component_at_fault,
    component_failure,
    format_sim_time,
    show_slate,
    user_component_classes,
)

__all__ = [
    "Simulation", "RunResult", "SlateError", "RETURN", "SERVE", "WATCH", "END", "DONE", "check_slate",
    "TaskError", "UserCodeError", "PolicyTimeout", "ComponentFailure", "WorkerDied", "TaskGuard",
]

RETURN, SERVE, WATCH, END, DONE = range(5)
_NAN = math.nan


@dataclass
class RunResult:
    """What one (policy, replication) run produced, besides its event log file."""

    metrics: list[tuple]  # (metric, kind, start, end, value)
    headline: dict[str, float]
    initial_state: dict[str, np.ndarray]
    final_state: dict[str, np.ndarray]
    user_totals: dict[str, np.ndarray]
    retrain_times: list[float] = field(default_factory=list)
    #: what the policy reported it had learned after each fit: (time, name, value)
    models: list[tuple[float, str, float]] = field(default_factory=list)
    n_events: int = 0
    n_decisions: int = 0
    policy: Policy | None = None  # the policy as it ended the run (learned state included)
    #: scripted user groups (population.scripted): name -> their metric rows and headline
    #: figures, as ``metrics`` and ``headline`` are the modelled users'
    group_metrics: dict[str, list[tuple]] = field(default_factory=dict)
    group_headlines: dict[str, dict[str, float]] = field(default_factory=dict)
    #: adapting creators (catalog.creators): one row per creator per adaptation
    #: (:meth:`recsim.creators.CreatorPool.table`); None without them
    creators: dict[str, np.ndarray] | None = None


class _Table:
    """Rows of named columns, each with the simulated time it was emitted at, in growable
    preallocated arrays (struct of arrays); taken in emission order (rows emitted at the same
    time keep the order they were added in, and a user's rows are added in the order the user
    emits them).

    ``columns`` maps each name to ``(dtype, default)``: the default fills the column of rows
    added without it; a default of None leaves it unset (a column only some rows use). A
    dtype with a shape (``np.dtype((np.int64, (k,)))``) makes a column of ``(n, k)``."""

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
            self._alloc(max(4 * self.capacity, self.n + n))  # few, large growths: copies cost
        lo, hi = self.n, self.n + n
        self.emit[lo:hi] = emit
        for name, (_, default) in self.spec.items():
            value = columns.get(name, default)
            if value is not None:
                self.cols[name][lo:hi] = value
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

    def take_last(self, n: int) -> dict[str, np.ndarray]:
        """Copies of the last ``n`` rows added (they stay)."""
        return {name: col[self.n - n: self.n].copy() for name, col in self.cols.items()}

    def __len__(self) -> int:
        return self.n


def _event_rows(slate_size: int) -> _Table:
    """Event rows emitted but not yet written (the event log's columns), and a ``slate``
    column: a shown slate is held as one ``impression`` row whose ``slate`` lists its items
    (padded with -1 up to ``slate_size``), and becomes one row per position when the rows are
    taken (:func:`_impression_rows`): a tenth of the rows to buffer and sort."""
    return _Table({
        "time": (np.float64, _NAN), "user_id": (np.int64, -1), "session": (np.int64, 0),
        "event": (np.int8, 0), "item_id": (np.int64, -1), "position": (np.int64, 0),
        "watch_time": (np.float64, _NAN), "watch_fraction": (np.float64, _NAN),
        "survey_score": (np.float64, _NAN), "true_value": (np.float64, _NAN),
        "true_extremeness": (np.float64, _NAN), "true_allure": (np.float64, _NAN),
        "slate": _slate_column(slate_size),
    })


def _slate_column(slate_size: int) -> tuple[np.dtype, None]:
    """The spec of a ``slate`` column of a :class:`_Table`: ``slate_size`` item ids a row
    (-1 where none), left unset in rows without a slate."""
    return np.dtype((np.int64, (max(int(slate_size), 1),))), None


def _padded(slates: np.ndarray, width: int) -> np.ndarray:
    """A new ``(B, width)`` int64 copy of ``slates`` ``(B, n)``, ``n <= width``, padded with -1:
    the ``slate`` column of :func:`_slate_column`."""
    out = np.full((slates.shape[0], width), -1, dtype=np.int64)
    out[:, : slates.shape[1]] = slates
    return out


def _slate_rows(cols: dict[str, np.ndarray], holders: np.ndarray) -> dict[str, np.ndarray]:
    """Taken rows ``cols`` (with a ``slate`` column, dropped) with each row of ``holders``
    (row indices, ascending) written out as one row per item of its slate (entries >= 0), in
    slate order, in its place: ``item_id`` the item, ``position`` its 1-based slate rank,
    the other columns the holder's. The arrays returned are new."""
    slate = cols.pop("slate")
    if not holders.shape[0]:
        return cols
    items = slate[holders]
    row, col = np.nonzero(items >= 0)  # row-major: each slate's items in slate order
    per = np.bincount(row, minlength=holders.shape[0])
    counts = np.ones(cols["position"].shape[0], dtype=np.int64)
    counts[holders] = per
    out = {name: np.repeat(values, counts) for name, values in cols.items()}
    first = np.cumsum(counts) - counts  # each taken row's first row out
    at = first[holders][row] + np.arange(row.shape[0]) - (np.cumsum(per) - per)[row]
    out["item_id"][at] = items[row, col]
    out["position"][at] = col + 1
    return out


def _impression_rows(cols: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Event rows taken from :func:`_event_rows` with each slate's row written out as one
    ``impression`` row per shown item (:func:`_slate_rows`)."""
    return _slate_rows(cols, np.flatnonzero(cols["event"] == _CODE["impression"]))


#: about how many rows, slates written out, a hand-over gives the event log or an observing
#: policy at a time: the rows are held as slates, and written out a piece at a time
_PIECE_ROWS = 250_000


def _cuts(sizes: np.ndarray, budget: int) -> list[int]:
    """Where to cut consecutive rows that make ``sizes`` rows each into pieces of at most
    ``budget`` rows (more only for a single row that makes more): the row indices that start
    a new piece, ascending, without 0."""
    total = np.cumsum(sizes)
    if not total.shape[0] or total[-1] <= budget:
        return []
    cuts = np.searchsorted(total, np.arange(budget, total[-1], budget), side="right")
    return sorted(set(cuts.tolist()) - {0, total.shape[0]})


def _event_pieces(cols: dict[str, np.ndarray], budget: int | None = None):
    """Taken event rows (with slates) as consecutive pieces, each with its slates written out
    (:func:`_impression_rows`) into at most about ``budget`` rows (:data:`_PIECE_ROWS`)."""
    budget = _PIECE_ROWS if budget is None else budget
    sizes = np.ones(cols["event"].shape[0], dtype=np.int64)
    shows = cols["event"] == _CODE["impression"]
    sizes[shows] = (cols["slate"][shows] >= 0).sum(axis=1)
    bounds = [0, *_cuts(sizes, budget), sizes.shape[0]]
    for lo, hi in zip(bounds[:-1], bounds[1:]):
        yield _impression_rows({name: values[lo:hi] for name, values in cols.items()})


class _FeedbackRows:
    """Observable feedback since the last retrain, as :class:`Feedback` rows with emission
    times. A slate's non-clicked impressions are held as one row whose ``slate`` lists them
    (-1 at the clicked position and after the slate's end), and written out when taken."""

    def __init__(self, slate_size: int) -> None:
        self.rows = _Table({
            "time": (np.float64, 0.0), "served_at": (np.float64, 0.0), "user_id": (np.int64, 0),
            "session": (np.int64, 0), "item_id": (np.int64, -1), "position": (np.int64, 0),
            "clicked": (bool, False), "watch_time": (np.float64, 0.0), "slate": _slate_column(slate_size),
        })
        self.surveys = _Table({
            "time": (np.float64, 0.0), "user_id": (np.int64, 0), "session": (np.int64, 0), "score": (np.float64, 0.0),
        })

    @staticmethod
    def _empty(table: _Table) -> dict[str, np.ndarray]:
        return {name: np.empty(0, dtype=dtype) for name, (dtype, _) in table.spec.items()}

    @staticmethod
    def _feedback(cols: dict[str, np.ndarray], sv: dict[str, np.ndarray]) -> Feedback:
        # rows come in emission order; the canonical order (time, user, non-clicked first,
        # position) is then a stable sort by time of [slate rows, clicked rows] (users never
        # share a time), each slate row then written out in its place, by position
        clicked = cols["clicked"]
        grouped = np.concatenate([np.flatnonzero(~clicked), np.flatnonzero(clicked)])
        order = grouped[np.argsort(cols["time"][grouped], kind="stable")]
        cols = {k: v[order] for k, v in cols.items()}
        cols = _slate_rows(cols, np.flatnonzero(~cols["clicked"]))
        so = np.lexsort((sv["user_id"], sv["time"]))
        return Feedback(**cols, surveys={k: v[so] for k, v in sv.items()})

    def take(self, t: float) -> Feedback:
        """Feedback emitted before ``t``, sorted by time, user, non-clicked first, position."""
        cols = self.rows.take_before(t) or self._empty(self.rows)
        sv = self.surveys.take_before(t) or self._empty(self.surveys)
        return self._feedback(cols, sv)

    def pieces(self, until: float, budget: int | None = None):
        """The feedback emitted before ``until`` as ``(end, feedback)`` pieces of about
        ``budget`` rows (:data:`_PIECE_ROWS`) or fewer (a slate's are never cut apart), each
        what a hand-over at ``end`` would take after the pieces before it: the rows and
        surveys emitted before ``end`` (:meth:`take`). The ends are emission times of rows,
        ``until`` the last."""
        budget = _PIECE_ROWS if budget is None else budget
        rows = self.rows
        emit = rows.emit[: rows.n]
        before = emit < until
        clicked = rows.cols["clicked"][: rows.n][before]
        sizes = np.ones(clicked.shape[0], dtype=np.int64)
        sizes[~clicked] = (rows.cols["slate"][: rows.n][before][~clicked] >= 0).sum(axis=1)
        ends = []
        if sizes.sum() > budget:
            order = np.argsort(emit[before], kind="stable")
            times = emit[before][order]
            ends = sorted({float(times[i]) for i in _cuts(sizes[order], budget)} - {float(times[0])})
        for end in [*ends, until]:
            yield end, self.take(end)

    def last(self, n_rows: int, n_surveys: int) -> Feedback:
        """The last rows added (for an online policy's update), without taking them."""
        cols = self.rows.take_last(n_rows) if n_rows else self._empty(self.rows)
        sv = self.surveys.take_last(n_surveys) if n_surveys else self._empty(self.surveys)
        return self._feedback(cols, sv)


class Simulation:
    """One policy on one replication's world: the platform's and the users' bookkeeping and
    the steps of :mod:`this module <recsim.engine.core>`. An engine calls :meth:`start`,
    then :meth:`step` (or the step methods on groups of users due at their ``t_next``) and
    :meth:`sync` at each synchronization point of :meth:`schedule`, and :meth:`finish`.

    ``single`` (the reference engine) serves each request through ``Policy.recommend``, the
    policy's one required method; otherwise requests are served in batches through
    ``Policy.recommend_batch``. ``on_feedback`` (optional) is called with the feedback every
    step logs, as it happens (online policies learn from it)."""

    def __init__(self, world: World, spec: PolicySpec, events: EventLog,
                 progress: Callable[[float], None] | None = None, single: bool = False):
        sc = world.scenario
        self.world, self.sc = world, sc
        # plug-in components are held to their output contract on every call
        self.model = world.model.guarded(world.state)
        self.catalog = cat = world.catalog
        self.state = world.state
        self.events = events
        self.progress = progress
        self.single = single
        self.items = cat.observable()
        n_users = self.n_users = world.n_users
        self.spec = spec
        self.context = PolicyContext(
            n_topics=cat.n_topics,
            slate_size=sc.recommender.slate_size,
            n_candidates=sc.recommender.n_candidates,
            retrain_interval=sc.recommender.retrain_interval,
            items=self.items,
            n_users=n_users,
        )
        # user code is called through _policy_call: what it raises, or a call over
        # recommender.policy_time_limit, stops the task with an error naming it
        self._labels = {
            "policy": f"policy {spec.name!r}" + (f" ({spec.type})" if spec.type != spec.name else ""),
            "warmup": f"the warm-up policy {sc.warmup_policy!r}",
        }
        self._objects: dict[str, Any] = {}
        limit = getattr(sc.recommender, "policy_time_limit", None)
        self.time_limit = CallLimit(limit) if limit else None
        self.policy: Policy = self._policy_call("policy", "__init__", None, build_policy, spec)
        self._objects["policy"] = self.policy
        self._policy_call("policy", "reset", None, self.policy.reset, self.context)
        self.warmup_policy: Policy = self._policy_call("warmup", "__init__", None, resolve_policy(sc.warmup_policy))
        self._objects["warmup"] = self.warmup_policy
        self._policy_call("warmup", "reset", None, self.warmup_policy.reset, self.context)
        # a policy's draws come from a stream per request, keyed by the user and the user's
        # request number: independent of the order requests are served in
        self.policy_rngs = RequestRngs(rngmod.stream_key(sc.seed, world.replication, f"policy:{spec.name}"))
        # identical under every policy: the warm-up is common to all of them
        self.warmup_rngs = RequestRngs(rngmod.stream_key(sc.seed, world.replication, "policy:warmup"))
        self.trusted = _built_in(self.policy)
        self.warmup_trusted = _built_in(self.warmup_policy)
        # user groups: the modelled users (ids 0 .. n_modelled - 1), then scripted ones
        # (population.scripted) whose rule replaces the choice and the watch time, who never
        # churn and whose figures are kept apart from the modelled users'
        self.n_modelled = nm = world.n_modelled
        self.groups = world.groups
        # (first id, end id, rule, watches before it takes over): the scripted groups, and the
        # modelled users a counterfactual bot takes over (population.takeover)
        self.rules = [(lo, hi, build_rule(g.rule, g.params), None)
                      for g, (_, lo, hi) in zip(sc.population.scripted, self.groups[1:])]
        takeover = sc.population.takeover
        if takeover is not None:
            self.rules.insert(0, (0, min(takeover.users, nm), build_rule(takeover.rule, takeover.params),
                                  takeover.after_watches))
        self.script_watched = np.zeros(n_users, dtype=np.int64)  # watches since the start
        self.horizon_watched = np.zeros(n_users, dtype=np.int64)  # watches at t >= 0
        item_topics = np.maximum(cat.topics, 0.0)
        self.metrics = MetricsCollector(nm, cat.n_topics, sc.outputs.extreme_threshold, item_topics,
                                        pair_users=getattr(events, "user_limit", None))
        self.group_metrics = [(name, lo, hi, MetricsCollector(hi - lo, cat.n_topics, sc.outputs.extreme_threshold,
                                                              item_topics))
                              for name, lo, hi in self.groups[1:]]
        # a policy that keeps the base class's no-op fit never reads the feedback: skip it
        # (without retrains nothing would ever read the feedback: none is kept; nor after the
        # run's last retrain, see sync)
        self.learns = learns_from_feedback(self.policy) and sc.recommender.retrain_interval > 0
        # a policy that observes feedback as it is logged gets it at every flush (so it is
        # kept only between flushes), and at a retrain what came since
        self.observes = self.learns and observes_feedback(self.policy)
        self.on_feedback: Callable[[Feedback], None] | None = None
        self.feedback = _FeedbackRows(sc.recommender.slate_size)
        self._last_retrain_time: float | None = None  # after it, learns and observes are off
        self.rows = _event_rows(sc.recommender.slate_size)
        self.hist = HistoryTable(n_users, cat.n_topics)
        self.hist_view = self.hist.readonly()  # what policies see: the live table, read-only
        self.retrain_times: list[float] = []
        self.models: list[tuple[float, str, float]] = []
        self.n_decisions = 0
        self.end_cut = world.end + 1e-9  # nothing happens after the end of the horizon
        # per-user counter-based streams: keys and counters (draws taken so far)
        self.keys = {s: rngmod.user_keys(k, np.arange(n_users)) for s, k in world.user_stream_keys.items()}
        self.ctr = {s: np.zeros(n_users, dtype=np.int64) for s in world.user_stream_keys}
        # the engine's bookkeeping, one entry per user
        self.phase = np.full(n_users, RETURN, dtype=np.int8)
        self.t_next = np.full(n_users, np.inf)
        self.session = np.zeros(n_users, dtype=np.int64)
        self.churned = np.zeros(n_users, dtype=bool)
        self.in_session = np.zeros(n_users, dtype=bool)
        # when each user's state was last relaxed: the start of the run, then session ends
        self.state_time = np.full(n_users, world.start)
        self.n_requests = np.zeros(n_users, dtype=np.int64)
        # the session so far: items watched, seconds, Σ value, Σ allure
        self.n_watched = np.zeros(n_users, dtype=np.int64)
        self.sum_watch = np.zeros(n_users)
        self.sum_value = np.zeros(n_users)
        self.sum_allure = np.zeros(n_users)
        # the watch in progress: item, its terms, τ, when its slate was served, position
        self.w_item = np.zeros(n_users, dtype=np.int64)
        # the items each user has watched, a bit per catalog item (recommender.exclude_watched):
        # they are left out of the user's candidate pools
        self.seen = (np.zeros((n_users, (cat.n_items + 7) // 8), dtype=np.uint8)
                     if sc.recommender.exclude_watched else None)
        self.n_seen = np.zeros(n_users, dtype=np.int64) if self.seen is not None else None  # bits set per row
        self.w_terms: dict[str, np.ndarray] = {}
        self.w_tau = np.zeros(n_users)
        self.w_served = np.zeros(n_users)
        self.w_position = np.zeros(n_users, dtype=np.int64)
        self.avail_times, self.n_avail0 = self._availability()
        # adapting creators (catalog.creators): they remake future uploads at each adaptation
        self.creators = CreatorPool(sc.catalog, cat) if sc.catalog.creators is not None else None
        self.initial_state: dict[str, np.ndarray] = {}
        self.final_state: dict[str, np.ndarray] = {}
        self._bucket_start = 0.0
        self._bucket_index = 0
        self._panel_keys: np.ndarray | None = None
        #: requests scored at once (bounds the policy's temporaries, keeps them in cache)
        self.max_batch = 1024
        # users whose events are written (outputs.event_sample); the others only feed metrics
        limit = getattr(events, "user_limit", None)
        self.written_users = nm if limit is None else min(int(limit), nm)

    def renew_users(self, users: np.ndarray, state: dict[str, np.ndarray], stream_ids: np.ndarray) -> None:
        """Put new users in the places ``users`` ``(B,)`` (distinct): their hidden ``state``
        (every field of the user state, rows aligned with ``users``), per-user streams keyed by
        ``stream_ids`` ``(B,)`` (a user's draws are those of user ``stream_ids[i]`` of the
        replication, from the first) and the engine's bookkeeping of a user who has not yet
        arrived: the first return is drawn from the start of the warm-up. What the run holds
        for everyone (the catalog, the policy, metrics) is unchanged. Used by
        :class:`recsim.engine.stepped.SteppedSimulation` (reinforcement-learning episodes);
        every per-user array of :meth:`__init__` is reset here."""
        missing = set(self.state.fields) - set(state)
        if missing:
            raise ValueError(f"renew_users: no values for state field(s) {sorted(missing)}")
        self.state.put(users, state)
        for s, key in self.world.user_stream_keys.items():
            self.keys[s][users] = rngmod.user_keys(key, stream_ids)
            self.ctr[s][users] = 0
        for array, value in ((self.script_watched, 0), (self.horizon_watched, 0), (self.session, 0),
                             (self.churned, False), (self.in_session, False), (self.state_time, self.world.start),
                             (self.n_requests, 0), (self.n_watched, 0), (self.sum_watch, 0.0),
                             (self.sum_value, 0.0), (self.sum_allure, 0.0), (self.w_item, 0), (self.w_tau, 0.0),
                             (self.w_served, 0.0), (self.w_position, 0)):
            array[users] = value
        for values in self.w_terms.values():
            values[users] = 0.0
        if self.seen is not None:
            self.seen[users] = 0
            self.n_seen[users] = 0
        fresh = HistoryTable(1, self.catalog.n_topics)
        for name in HistoryTable.FIELDS:
            getattr(self.hist, name)[users] = getattr(fresh, name)[0]
        self.phase[users] = RETURN
        self.t_next[users] = np.inf
        self._next_returns(users, np.full(users.shape[0], self.world.start))

    # ------------------------------------------------------------------ helpers
    def _availability(self) -> tuple[np.ndarray, int]:
        """When each upload becomes available, and how many items are available at the start."""
        times = self.catalog.upload_time
        n0 = self.catalog.n_available(self.world.start)
        return np.asarray(times[n0:], dtype=float), n0

    def _pool_start(self, now: np.ndarray, n_avail: np.ndarray) -> np.ndarray | None:
        """The first item id of each request's candidate pool (``(B,)``), or None for the whole
        catalog: with ``recommender.candidate_window`` W, the items uploaded in ``(now − W, now]``,
        or the ``n_candidates`` most recent if fewer were (items are ordered by upload time)."""
        window = self.sc.recommender.candidate_window
        if window is None:
            return None
        start = np.searchsorted(self.catalog.upload_time, now - window, side="right")
        return np.minimum(start, np.maximum(n_avail - self.sc.recommender.n_candidates, 0))

    def draws(self, users: np.ndarray) -> Draws:
        return Draws(self.keys, self.ctr, users)

    def view(self, users: np.ndarray):
        return self.model.view(self.state, users)

    def _written(self, users: np.ndarray, log: np.ndarray) -> np.ndarray:
        """``log`` restricted to the users whose events are written (outputs.event_sample),
        for rows that feed no metric (impressions, session ends, breaks, churn)."""
        if self.written_users < self.n_modelled:  # scripted users' events are always written
            return log & ((users < self.written_users) | (users >= self.n_modelled))
        return log

    def _put(self, users: np.ndarray, updates: dict[str, np.ndarray]) -> None:
        if updates:
            self.state.put(users, updates)

    # ------------------------------------------------------------------ user code
    def _policy_call(self, which: str, method: str, when: Any, function: Callable, *args: Any) -> Any:
        """``function(*args)``: a call into the policy (``which``: "policy" or "warmup") at
        simulated time(s) ``when`` (None before the run). Whatever it raises, ``os._exit`` and
        ``sys.exit`` included, or a call over ``recommender.policy_time_limit``, becomes a
        :class:`UserCodeError` naming the policy, the task, the time and the line of user code."""
        limit = self.time_limit
        if limit is None:
            try:
                return function(*args)
            except (KeyboardInterrupt, GeneratorExit):
                raise
            except BaseException as exc:
                raise self._policy_failure(which, method, when, exc) from exc
        limit.begin()
        try:
            out = function(*args)
            limit.end()
        except (KeyboardInterrupt, GeneratorExit):
            limit.abort()
            raise
        except BaseException as exc:
            elapsed = limit.abort()
            raise self._policy_failure(which, method, when, exc, elapsed) from exc
        return out

    def update_policy(self, feedback: Feedback) -> None:
        """An online policy's ``update`` (the reference engine calls it after every event)."""
        self._policy_call("policy", "update", feedback.time, self.policy.update, feedback)

    def _task(self, when: Any) -> dict[str, Any]:
        time = None
        try:
            if isinstance(when, np.ndarray):
                time = float(when.min()) if when.size else None
            elif when is not None:
                time = float(when)
        except (TypeError, ValueError):
            pass
        return {"policy": self.spec.name, "replication": self.world.replication, "time": time}

    def _policy_files(self, which: str) -> tuple[str, ...]:
        """The source files of a policy's user code (its class, a function it serves, the
        user policies it wraps): the traceback's last frame in one of them is the line shown."""
        files = []
        policy = self._objects.get(which)
        while policy is not None:
            module = sys.modules.get(type(policy).__module__)
            if getattr(module, "__file__", None):
                files.append(module.__file__)
            function = getattr(policy, "function", None)
            if function is not None and hasattr(function, "__code__"):
                files.append(function.__code__.co_filename)
            policy = getattr(policy, "base_", None)
        return tuple(files)

    def _policy_failure(self, which: str, method: str, when: Any, exc: BaseException,
                        elapsed: float | None = None) -> TaskError:
        task = self._task(when)
        label = self._labels[which]
        if isinstance(exc, TaskError):  # already explained (a nested simulation, say)
            return exc
        # an oracle reads the user model: a user component failing under it is at fault
        culprit = component_at_fault(exc.__traceback__, user_component_classes(self.sc))
        if culprit is not None:
            role, component, called = culprit
            return component_failure(exc, role, component, called, called_by=f"{label} ({method})", **task)
        line = user_line(exc.__traceback__, prefer=self._policy_files(which))
        details = []
        if isinstance(when, np.ndarray) and when.size > 1 and when.min() != when.max():
            # a batch: which request failed is not known (the reference engine serves them
            # one at a time, and names it)
            task["time"] = None
            details.append(f"in a batch of {when.size} requests at simulated times {format_sim_time(float(when.min()))} "
                           f"to {format_sim_time(float(when.max()))}; with engine: reference the failing request's "
                           "time and user are named")
        common = dict(actor=label, call=method, line=line, details=details, **task)
        if isinstance(exc, TimedOut):
            seconds = self.time_limit.seconds if self.time_limit else 0.0
            ran = (f"took {elapsed:.3g} s" if elapsed is not None and elapsed > seconds * 1.5
                   else f"was stopped after {seconds:g} s")
            return PolicyTimeout(
                f"{label} ran past recommender.policy_time_limit ({seconds:g} s): {method} {ran}",
                limit=seconds, elapsed=elapsed, line_note="it was running", **common)
        if isinstance(exc, ExitCalled):
            message = f"{label} called os._exit({exc.status}) in {method}, which would have ended the process"
        elif isinstance(exc, SystemExit):
            message = f"{label} called sys.exit({exc.code!r}) in {method}"
        elif isinstance(exc, MemoryError):
            message = f"{label} ran out of memory in {method}: {short_message(exc)}"
        else:
            message = f"{label} failed: {method} raised {short_message(exc)}"
        return UserCodeError(message, error=short_message(exc), **common)

    def _slate_failure(self, which: str, method: str, exc: SlateError, users: np.ndarray, now: np.ndarray,
                       candidates: np.ndarray, row: int | None) -> SlateError:
        label = self._labels[which]
        policy = self._objects[which]
        line = None  # the user's method that served the slate: the one called, or the one it calls
        for name in (method, "recommend", "score"):
            function = getattr(policy, "function", None) or getattr(type(policy), name, None)
            found = definition_line(function) if function is not None else None
            if found is not None and not is_library_file(found.file):
                line = found
                break
        details = []
        if row is not None:
            details.append(f"slate: {exc.slate}")
            details.append(f"for user {int(users[row])}'s request, with {candidates.shape[1]} candidates "
                           f"and slate_size {self.sc.recommender.slate_size}")
        message = (f"{label}: {method} returned an invalid slate: {exc.problem}" if row is not None
                   else f"{label}: {method} {exc.problem}")
        error = SlateError(message, problem=exc.problem,
                           slate=exc.slate, actor=label, call=method, line=line, line_note="the method",
                           details=details, **self._task(now[row] if row is not None else now))
        return error

    def close(self) -> None:
        """Release what the run holds outside itself (the policy time limit's timer)."""
        if self.time_limit is not None:
            self.time_limit.close()

    # ------------------------------------------------------------------ steps
    def start(self) -> None:
        """Draw every user's first return (from the start of the warm-up)."""
        everyone = np.arange(self.n_users)
        self._next_returns(everyone, np.full(self.n_users, self.world.start))

    def step(self, users: np.ndarray, now: np.ndarray) -> None:
        """Take the due step of ``users`` (all in the same phase) at times ``now``."""
        (self.returns, self.serve, self.watch, self.end)[int(self.phase[users[0]])](users, now)

    def _next_returns(self, users: np.ndarray, now: np.ndarray) -> None:
        t = self.model.returns.next_return(self.view(users), now, self.world.end, self.draws(users))
        t = np.where(t < self.end_cut, t, np.inf)
        self.t_next[users] = t
        self.phase[users] = np.where(np.isinf(t), DONE, RETURN)

    def returns(self, users: np.ndarray, now: np.ndarray) -> None:
        """Users come back: churn (at a return after the first session), else a session."""
        again = np.flatnonzero(self.session[users] > 0)
        if again.shape[0]:
            u = users[again]
            p = self.model.churn.probability(self.view(u))
            quit_ = np.zeros(users.shape[0], dtype=bool)
            quit_[again] = self.draws(u).uniform("churn") < p
            if self.rules:  # scripted users never churn
                for rows, _, _ in self._ruled(users, now):
                    quit_[rows] = False
            if quit_.any():
                cu, ct = users[quit_], now[quit_]
                self.churned[cu] = True
                self.phase[cu] = DONE
                self.t_next[cu] = np.inf
                log = self._written(cu, ct >= 0)
                self.rows.add(ct[log], int(log.sum()), time=ct[log], user_id=cu[log],
                              session=self.session[cu][log], event=_CODE["churn"])
                users, now = users[~quit_], now[~quit_]
        if users.shape[0] == 0:
            return
        self.session[users] += 1
        model = self.model
        self._put(users, model.relaxation.relax(self.view(users), now - self.state_time[users], now))
        self._put(users, model.session.start(self.view(users), self.draws(users)))
        self.in_session[users] = True
        hist = self.hist
        hist.n_sessions[users] += 1
        hist.session_items[users] = 0
        hist.session_watch_seconds[users] = 0.0
        logging = now >= 0
        lu = users[logging]
        self.rows.add(now[logging], lu.shape[0], time=now[logging], user_id=lu, session=self.session[lu],
                      event=_CODE["session_start"])
        self.n_watched[users] = 0
        self.sum_watch[users] = 0.0
        self.sum_value[users] = 0.0
        self.sum_allure[users] = 0.0
        self.phase[users] = SERVE  # the first slate, at once

    def serve(self, users: np.ndarray, now: np.ndarray) -> None:
        """Slates are requested: the warm-up policy serves before t = 0, the policy after."""
        warm = now < 0
        for use, policy, rngs, is_warm in ((warm, self.warmup_policy, self.warmup_rngs, True),
                                           (~warm, self.policy, self.policy_rngs, False)):
            if use.any():
                self._serve_with(users[use], now[use], policy, rngs, is_warm)

    def draw_candidates(self, users: np.ndarray, now: np.ndarray
                        ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """The candidates of the requests of ``users`` ``(B,)`` at times ``now`` (seconds)
        (:func:`recsim.rng.candidate_rows`): ``(users, now, candidates (B', n) int64 padded
        with -1 and read-only, count (B',))`` for the users who have any; a user who has
        watched every item of the pool ends the session without a slate (:meth:`_exhausted`)
        and is left out."""
        n = self.sc.recommender.n_candidates
        ctr, keys = self.ctr["candidates"], self.keys["candidates"]
        n_avail = self.n_avail0 + np.searchsorted(self.avail_times, now, side="right")
        seen, n_seen = (self.seen[users], self.n_seen[users]) if self.seen is not None else (None, None)
        candidates, count, m = rngmod.candidate_rows(keys[users], ctr[users], n, n_avail,
                                                     self._pool_start(now, n_avail), seen, n_seen)
        ctr[users] += m
        if not count.all():  # nothing left to recommend: every item of the pool watched
            self._exhausted(users[count == 0], now[count == 0])
            keep = np.flatnonzero(count)
            users, now, candidates, count = users[keep], now[keep], candidates[keep], count[keep]
        candidates.flags.writeable = False
        return users, now, candidates, count

    def _serve_with(self, users, now, policy: Policy, rngs: RequestRngs, warm: bool) -> None:
        size = self.max_batch
        # in chunks of users: the candidate draw's temporaries (B × m hashes) and the policy's
        # (B × c × K floats) stay bounded however many users are served at once
        for lo in range(0, users.shape[0], size):
            u, t, candidates, count = self.draw_candidates(users[lo: lo + size], now[lo: lo + size])
            if not u.shape[0]:
                continue
            counts = np.unique(count)
            if counts.shape[0] == 1:
                self._serve_rows(u, t, candidates[:, : int(counts[0])], policy, rngs, warm)
                continue
            for c in counts.tolist():  # rows with fewer candidates (a small catalog)
                rows = np.flatnonzero(count == c)
                cand = np.ascontiguousarray(candidates[rows, :c])
                cand.flags.writeable = False
                self._serve_rows(u[rows], t[rows], cand, policy, rngs, warm)

    def _serve_rows(self, users, now, candidates, policy, rngs, warm) -> None:
        k = self.sc.recommender.slate_size
        oracle = OracleBatch(self.model, self.state, users, candidates, self.catalog) if policy.oracle else None
        now = now.copy()
        now.flags.writeable = False
        batch = RequestBatch(
            user_ids=_frozen(users), now=now, candidates=candidates, histories=self.hist_view,
            features=BatchFeatures(self.items, candidates, now), slate_size=k, items=self.items, oracle=oracle,
        )
        batch_rngs = rngs.rows(users, self.n_requests[users])
        which = "warmup" if warm else "policy"
        call = self._policy_call
        if self.single:  # the policy's one required method, request by request
            method = "recommend"
            slates = [call(which, method, now[i], policy.recommend, batch.request(i), batch_rngs[i])
                      for i in range(len(batch))]
        else:
            method = "recommend_batch"
            slates = call(which, method, now, policy.recommend_batch, batch, batch_rngs)
        self.n_requests[users] += 1
        check = not (self.warmup_trusted if warm else self.trusted)
        row = None  # the slate being checked
        try:
            if isinstance(slates, np.ndarray) and slates.ndim == 2 and slates.shape[0] == users.shape[0]:
                if check:
                    checked = []
                    for row, s in enumerate(slates):
                        checked.append(check_slate(policy, s, candidates[row], k))
                    slates = np.stack(checked)
                groups = {slates.shape[1]: (np.arange(users.shape[0]), np.asarray(slates, dtype=np.int64))}
            else:
                if slates is None or isinstance(slates, (str, bytes)) or not hasattr(slates, "__iter__"):
                    expected = f"a ({users.shape[0]}, k) array or a list of {users.shape[0]} slates"
                    raise SlateError(f"returned {show_slate(slates)}; expected {expected}")
                slates = list(slates)
                if len(slates) != users.shape[0]:
                    raise SlateError(f"returned {len(slates)} slates for {users.shape[0]} requests")
                if check:
                    checked = []
                    for row, s in enumerate(slates):
                        checked.append(check_slate(policy, s, candidates[row], k))
                    slates = checked
                else:
                    slates = [np.asarray(s, dtype=np.int64).ravel() for s in slates]
                row = None
                lengths = np.fromiter(map(len, slates), np.int64, len(slates))
                groups = {}
                for length in np.unique(lengths).tolist():
                    rows = np.flatnonzero(lengths == length)
                    groups[length] = (rows, np.array([slates[i] for i in rows.tolist()], dtype=np.int64).reshape(rows.shape[0], length))
        except SlateError as exc:
            raise self._slate_failure(which, method, exc, users, now, candidates, row) from None
        for length, (rows, slate) in groups.items():
            if length == 0:
                self._breaks(users[rows], now[rows])
            else:
                self._show(users[rows], now[rows], slate)

    def _exhausted(self, users, now) -> None:
        """No candidate left (the user has watched every item of the pool): the session ends
        without a slate, and no policy is asked."""
        self.phase[users] = END
        self.t_next[users] = now

    def _breaks(self, users, now) -> None:
        """An empty slate: the policy ends the session (a break suggestion)."""
        log = self._written(users, now >= 0)
        self.rows.add(now[log], int(log.sum()), time=now[log], user_id=users[log],
                      session=self.session[users][log], event=_CODE["break"])
        self.phase[users] = END
        self.t_next[users] = now

    def _show(self, users, now, slate) -> None:
        """Users look over their slates ``(B, n)``; after the scan they click one or none."""
        model = self.model
        B, n_shown = slate.shape
        self.n_decisions += B
        state = self.view(users)
        items = ItemView(self.catalog, slate)
        terms = model.allure.score(state, items)
        probs = model.choice.probabilities(state, terms)
        draws = self.draws(users)
        choice = sample_choice(probs, draws.uniform("choice"))
        direct = self._scripted_choice(users, now, slate, choice) if self.rules else None
        t_choice = now + model.choice.scan_time
        alive = t_choice < self.end_cut  # nothing happens after the end of the horizon
        if not alive.all():
            gone = users[~alive]
            self.phase[gone] = DONE
            self.t_next[gone] = np.inf
            keep = np.flatnonzero(alive)
            users, now, slate, choice, t_choice = users[keep], now[keep], slate[keep], choice[keep], t_choice[keep]
            terms = {name: values[keep] for name, values in terms.items()}
            direct = direct[keep] if direct is not None else None
            state = self.view(users)
            B = users.shape[0]
            if B == 0:
                return
        hist = self.hist
        hist.n_impressions[users] += n_shown
        session = self.session[users]
        log = now >= 0
        if log.any():
            if self.group_metrics:
                for lo, hi, m in self._collectors():
                    mine = log & (users >= lo) & (users < hi)
                    if mine.any():
                        m.on_impressions(slate[mine])
            else:
                self.metrics.on_impressions(slate[log])
            if self.creators is not None:
                self.creators.on_impressions(slate[log])
        # impressions feed no metric: rows only for the users whose events are written
        shown_log = self._written(users, log)
        if self.events.log_impressions and shown_log.any():  # one row per slate, see _event_rows
            shown = _padded(slate[shown_log], self.rows.cols["slate"].shape[1])
            self.rows.add(t_choice[shown_log], shown.shape[0], time=now[shown_log], user_id=users[shown_log],
                          session=session[shown_log], event=_CODE["impression"], slate=shown)
        if self.learns or self.on_feedback is not None:  # the non-clicked: one row a slate
            passed = _padded(slate, self.feedback.rows.cols["slate"].shape[1])
            clicked = np.flatnonzero(choice >= 0)
            passed[clicked, choice[clicked]] = -1
            self.feedback.rows.add(t_choice, B, time=now, served_at=now, user_id=users, session=session,
                                   clicked=False, watch_time=0.0, slate=passed)
            if self.on_feedback is not None:
                self.on_feedback(self.feedback.last(B, 0))
        # no click: leave, or look at another slate, after the scan
        none = choice < 0
        if direct is not None:  # a scripted user watching an item off the slate
            none &= direct < 0
        if none.any():
            rows = np.flatnonzero(none)
            nu = users[rows]
            goes_on, updates = model.session.after_no_click(self.view(nu), self.draws(nu))
            self._put(nu, updates)
            self.phase[nu] = np.where(goes_on, SERVE, END)
            self.t_next[nu] = t_choice[rows]
        click = np.flatnonzero(~none)
        if not click.shape[0]:
            return
        cu, cc, ct = users[click], choice[click], t_choice[click]
        item = slate[click, cc]
        chosen = {name: values[click, cc] for name, values in terms.items()}
        if direct is not None and (direct[click] >= 0).any():  # off the slate: position 0
            off = np.flatnonzero(direct[click] >= 0)
            item[off] = direct[click][off]
            for name, values in model.allure.score(self.view(cu[off]), ItemView(self.catalog, item[off])).items():
                chosen[name][off] = values
        hist.n_clicks[cu] += 1
        if self.seen is not None:  # one click per user here: plain fancy indexing is exact
            byte, bit = item >> 3, (1 << (item & 7)).astype(np.uint8)
            self.n_seen[cu] += (self.seen[cu, byte] & bit) == 0
            self.seen[cu, byte] |= bit
        clog = ct >= 0  # the click happens after the scan: logged if that is in the horizon
        self.rows.add(ct[clog], int(clog.sum()), time=ct[clog], user_id=cu[clog], session=session[click][clog],
                      event=_CODE["click"], item_id=item[clog], position=cc[clog] + 1)
        tau = model.response.watch_time(self.view(cu), ItemView(self.catalog, item), chosen, self.draws(cu))
        if self.rules:  # scripted users watch their rule's share of each item
            tau = np.array(tau, dtype=float)
            for rows, rule, _ in self._ruled(cu, now[click]):
                tau[rows] = rule.fraction * self.catalog.length[item[rows]]
        t_watch = ct + tau
        ends = t_watch < self.end_cut
        self.w_item[cu] = item
        for name, values in chosen.items():
            target = self.w_terms.get(name)
            if target is None:
                target = self.w_terms[name] = np.zeros(self.n_users)
            target[cu] = values
        self.w_tau[cu] = tau
        self.w_served[cu] = now[click]
        self.w_position[cu] = cc + 1
        self.phase[cu] = np.where(ends, WATCH, DONE)
        self.t_next[cu] = np.where(ends, t_watch, np.inf)

    def watch(self, users: np.ndarray, now: np.ndarray) -> None:
        """Watches end: value, the state transition, what the platform observes, continuation."""
        model, hist = self.model, self.hist
        item, tau = self.w_item[users], self.w_tau[users]
        items = ItemView(self.catalog, item)
        terms = {name: values[users] for name, values in self.w_terms.items()}
        state = self.view(users)
        draws = self.draws(users)
        V = model.value.value(state, items, terms, tau)
        self._put(users, model.transition.consume(state, items, terms, tau, V, now, draws))
        frac = tau / items.length
        session = self.session[users]
        position = self.w_position[users]
        if self.learns or self.on_feedback is not None:
            fb = slice(None)
            if self.rules and (position == 0).any():  # watched off the slate: not a slate's feedback
                fb = np.flatnonzero(position > 0)
            n_fb = users[fb].shape[0]
            self.feedback.rows.add(now[fb], n_fb, time=now[fb], served_at=self.w_served[users][fb], user_id=users[fb],
                                   session=session[fb], item_id=item[fb], position=position[fb], clicked=True,
                                   watch_time=tau[fb])
            if self.on_feedback is not None and n_fb:
                self.on_feedback(self.feedback.last(n_fb, 0))
        if self.rules:
            self.script_watched[users] += 1
            self.horizon_watched[users] += now >= 0
        obs = self.items
        hist.watch_seconds[users] += tau
        hist.watch_fraction_sum[users] += frac
        hist.classifier_seconds[users] += tau * obs.classifier[item]
        hist.topic_mix[users] += tau[:, None] * obs.topics[item]
        hist.session_items[users] += 1
        hist.session_watch_seconds[users] += tau
        allure = terms["allure"]
        self.n_watched[users] += 1
        self.sum_watch[users] += tau
        self.sum_value[users] += V
        self.sum_allure[users] += allure
        log = now >= 0
        self.rows.add(now[log], int(log.sum()), time=now[log], user_id=users[log], session=session[log],
                      event=_CODE["watch"], item_id=item[log], position=position[log], watch_time=tau[log],
                      watch_fraction=frac[log], true_value=V[log], true_extremeness=items.extremeness[log],
                      true_allure=allure[log])
        goes_on, updates = model.session.after_watch(self.view(users), items, terms, tau, V, draws)
        self._put(users, updates)
        self.phase[users] = np.where(goes_on, SERVE, END)  # at the same time

    def end(self, users: np.ndarray, now: np.ndarray) -> None:
        """Sessions end: session summaries to churn, returns and surveys; the next return."""
        model, hist = self.model, self.hist
        self.in_session[users] = False
        self.state_time[users] = now
        hist.last_session_end[users] = now
        session = self.session[users]
        log = now >= 0
        end_log = self._written(users, log)
        self.rows.add(now[end_log], int(end_log.sum()), time=now[end_log], user_id=users[end_log],
                      session=session[end_log], event=_CODE["session_end"])
        n_w = self.n_watched[users]
        summary = SessionSummary(
            n_watched=n_w,
            watch_time=self.sum_watch[users],
            mean_value=session_mean(self.sum_value[users], n_w),
            mean_allure=session_mean(self.sum_allure[users], n_w),
        )
        self._put(users, model.churn.end_session(self.view(users), summary))
        self._put(users, model.returns.end_session(self.view(users), summary, now))
        draws = self.draws(users)
        score = np.asarray(model.survey.respond(self.view(users), summary, draws), dtype=float)
        asked = ~np.isnan(score)
        if asked.any():
            au, at, sc = users[asked], now[asked], score[asked]
            hist.survey_sum[au] += sc
            hist.n_surveys[au] += 1
            if self.learns or self.on_feedback is not None:
                self.feedback.surveys.add(at, au.shape[0], time=at, user_id=au, session=session[asked], score=sc)
                if self.on_feedback is not None:
                    self.on_feedback(self.feedback.last(0, au.shape[0]))
            alog = log[asked]
            self.rows.add(at[alog], int(alog.sum()), time=at[alog], user_id=au[alog], session=session[asked][alog],
                          event=_CODE["survey"], survey_score=sc[alog])
        self._next_returns(users, now)

    # ------------------------------------------------------------------ synchronization
    def flush(self, until: float) -> None:
        """Hand the rows emitted before ``until`` to the event log and the metrics, and the
        feedback emitted before it to a policy that observes it (:meth:`Policy.observe`)."""
        if self.observes:  # in pieces: what hand-overs at times in between would give
            for end, feedback in self.feedback.pieces(until):
                if len(feedback) or len(feedback.surveys["time"]):
                    self._policy_call("policy", "observe", end, self.policy.observe, feedback)
        cols = self.rows.take_before(until)
        if cols is None:
            return
        slates = cols.pop("slate")  # impressions feed no metric: written out for the log only
        if self.group_metrics:
            uid = cols["user_id"]
            for lo, hi, m in self._collectors():
                self._feed(m, cols, (uid >= lo) & (uid < hi), lo)
        else:
            self._feed(self.metrics, cols, None, 0)
        if self.creators is not None:  # what each item earned, in time order
            watches = cols["event"] == _CODE["watch"]
            if watches.any():
                self.creators.on_watches(cols["item_id"][watches], cols["watch_time"][watches])
        cols["slate"] = slates
        for piece in _event_pieces(cols):
            self.events.add_rows(piece)

    def _collectors(self):
        """``(first id, end id, metrics collector)`` of every user group, modelled first."""
        yield 0, self.n_modelled, self.metrics
        for _, lo, hi, m in self.group_metrics:
            yield lo, hi, m

    def _feed(self, m: MetricsCollector, cols: dict[str, np.ndarray], rows: np.ndarray | None, first: int) -> None:
        """Hand the event rows ``rows`` (a mask, None: all) of one user group, whose ids start
        at ``first``, to its metrics collector (which numbers the group's users from 0)."""
        if rows is not None:
            cols = {name: values[rows] for name, values in cols.items()}
            if first:
                cols["user_id"] = cols["user_id"] - first
        ev = cols["event"]
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

    def schedule(self) -> list[tuple[float, str]]:
        """The synchronization points ``(time, what)`` in time order: retrains every
        ``retrain_interval`` from the start of the warm-up, the initial snapshot at t = 0
        and a metrics snapshot at each bucket end."""
        sc, start, end = self.sc, self.world.start, self.end_cut
        points: list[tuple[float, str]] = []
        interval = sc.recommender.retrain_interval
        if interval > 0:
            k = 1
            while start + k * interval < end:
                points.append((start + k * interval, "retrain"))
                k += 1
        points.append((0.0, "initial"))
        bucket, horizon, b_start = sc.outputs.metrics_interval, sc.horizon, 0.0
        while b_start < horizon:
            b_end = min(b_start + bucket, horizon)
            points.append((b_end, "bucket"))
            b_start = b_end
        creators = sc.catalog.creators
        if creators is not None:  # adaptations: every period of the horizon, after a bucket end
            k = 1
            while k * creators.period < sc.horizon:
                points.append((k * creators.period, "creators"))
                k += 1
        points.sort(key=lambda p: p[0])
        return points

    def sync(self, t: float, what: str) -> None:
        """What happens at a synchronization point (after :meth:`flush` up to ``t``)."""
        if what == "retrain":
            self.retrain_times.append(t)
            if self.learns:
                self._policy_call("policy", "fit", t, self.policy.fit, self.feedback.take(t), t)
                for name, value in self._policy_call("policy", "learned", t, self.policy.learned).items():
                    self.models.append((t, str(name), float(value)))
                if t >= self._last_retrain():  # what is logged from now on no fit would read
                    self.learns = self.observes = False
                    self.feedback = _FeedbackRows(self.sc.recommender.slate_size)
            if t >= 0:
                self.rows.add(t, 1, time=t, user_id=-1, session=0, event=_CODE["retrain"])
        elif what == "initial":
            self.initial_state = self.snapshot(t)
        elif what == "creators":
            self.creators.adapt(t)
            # the revised catalog: a new observable view for the policies (they key their
            # caches by its identity; the old one keeps its values)
            self.items = self.catalog.observable()
            revise_items(self.context, self.items)
        else:
            bucket_end = min(self._bucket_start + self.sc.outputs.metrics_interval, self.sc.horizon)
            n_available = self.n_avail0 + int(np.searchsorted(self.avail_times, t, side="right"))
            replication = self.world.replication
            extra = self._proxy_panel(t, n_available)
            if self.creators is not None:
                extra.update(self.creators.bucket_metrics(self._bucket_start, bucket_end))
            self.metrics.close_bucket(
                self._bucket_start, bucket_end, n_available, extra=extra,
                pairs_rng=rngmod.generator(self.sc.seed, replication, f"metrics:pairs:{self._bucket_index}"),
            )
            for name, _, _, m in self.group_metrics:
                m.close_bucket(self._bucket_start, bucket_end, n_available, pairs_rng=rngmod.generator(
                    self.sc.seed, replication, f"metrics:pairs:{name}:{self._bucket_index}"))
            self.final_state = self.snapshot(t, with_theta=bucket_end >= self.sc.horizon)
            self._bucket_start = bucket_end
            self._bucket_index += 1

    def _last_retrain(self) -> float:
        """The time of the run's last retrain (``-inf`` without any)."""
        if self._last_retrain_time is None:
            self._last_retrain_time = max((t for t, what in self.schedule() if what == "retrain"), default=-math.inf)
        return self._last_retrain_time

    def _proxy_panel(self, now: float, n_available: int) -> dict[str, float]:
        """The bucket's proxy validity and regret (:func:`recsim.metrics.proxy_panel`), means
        over the users active in it (those whose events are written, with event_sample < 1)."""
        size = self.sc.outputs.validity_panel
        users = self.metrics.active_users()
        users = users[(users < self.metrics.pair_users) & ~self.churned[users]]
        if size < 3 or users.shape[0] == 0:
            return {"proxy_validity": math.nan, "proxy_regret": math.nan}
        if self._panel_keys is None:
            key = rngmod.stream_key(self.sc.seed, self.world.replication, "metrics:panel")
            self._panel_keys = rngmod.user_keys(key, np.arange(self.n_users))
        validity, regret = proxy_panel(
            self.model, self.state, users, self.in_session, self.state_time, now, self.catalog, n_available,
            self._panel_keys, self._bucket_index * size, size, self.sc.recommender.slate_size,
        )
        return {"proxy_validity": _nanmean(validity), "proxy_regret": _nanmean(regret)}

    def snapshot(self, now: float, with_theta: bool = False) -> dict[str, np.ndarray]:
        """Every user's effective state at ``now`` (and the state rows of each group's metrics)."""
        if not self.group_metrics:
            state = self.metrics.snapshot(self.model, self.state, self.in_session, self.state_time, self.churned,
                                          now, with_theta=with_theta)
        else:
            parts = [m.snapshot(self.model, self.state.slice(lo, hi), self.in_session[lo:hi], self.state_time[lo:hi],
                                self.churned[lo:hi], now, with_theta=with_theta)
                     for lo, hi, m in self._collectors()]
            state = {name: np.concatenate([part[name] for part in parts]) for name in parts[0]}
        state["churned"] = self.churned.copy()
        return state

    def _ruled(self, users: np.ndarray, now: np.ndarray) -> list[tuple[np.ndarray, Any, np.ndarray]]:
        """``(rows of users, rule, watches so far under it)`` for the users of a batch a rule
        drives at ``now``: scripted users (their watches since the start), and taken-over users
        in the horizon once they have watched ``after_watches`` items of it (the bot's watches
        since the fork)."""
        out = []
        for lo, hi, rule, after in self.rules:
            mine = (users >= lo) & (users < hi)
            if after is not None:  # a takeover: after the user's own first watches of the horizon
                mine &= (self.horizon_watched[users] >= after) & (now >= 0)
            rows = np.flatnonzero(mine)
            if rows.shape[0]:
                counts = (self.script_watched[users[rows]] if after is None
                          else self.horizon_watched[users[rows]] - after)
                out.append((rows, rule, counts))
        return out

    def _scripted_choice(self, users: np.ndarray, now: np.ndarray, slate: np.ndarray,
                         choice: np.ndarray) -> np.ndarray | None:
        """Scripted users' rules replace their sampled choice (``choice``, changed in place):
        returns each row's item watched off the slate (-1: none), or None without scripted
        users in the batch."""
        direct = None
        for rows, rule, counts in self._ruled(users, now):
            picked = rule.choose(slate[rows], self.catalog, counts)
            position, off = np.asarray(picked.position), np.asarray(picked.direct)
            if position.dtype.kind not in "iu" or off.dtype.kind not in "iu":
                raise ValueError(f"scripted rule {rule!r} returned positions of type {position.dtype} and items of "
                                 f"type {off.dtype}; both must be integers")
            position, off = position.astype(np.int64), off.astype(np.int64)
            if position.shape != rows.shape or off.shape != rows.shape:
                raise ValueError(f"scripted rule {rule!r} returned choices of shape {position.shape} and "
                                 f"{off.shape} for {rows.shape[0]} slates")
            if ((position < -1) | (position >= slate.shape[1])).any():
                raise ValueError(f"scripted rule {rule!r} chose a position outside the slate of {slate.shape[1]}")
            if ((off < -1) | (off >= self.catalog.n_items)).any():
                raise ValueError(f"scripted rule {rule!r} chose an item id outside the catalog")
            chosen = off >= 0
            if chosen.any() and (self.catalog.upload_time[off[chosen]] > now[rows][chosen]).any():
                raise ValueError(f"scripted rule {rule!r} chose an item not yet uploaded")
            choice[rows] = np.where(off >= 0, -1, position)
            if (off >= 0).any():
                if direct is None:
                    direct = np.full(users.shape[0], -1, dtype=np.int64)
                direct[rows] = off
        return direct if direct is not None else np.full(users.shape[0], -1, dtype=np.int64)

    def finish(self) -> RunResult:
        """Close the event log and assemble the run's results."""
        self.flush(math.inf)
        self.events.close()
        self.close()
        initial, final = self.initial_state, self.final_state
        headline, totals = self._figures(self.metrics, initial, final, 0, self.n_modelled)
        group_headlines, group_metrics = {}, {}
        all_totals = [totals]
        for name, lo, hi, m in self.group_metrics:
            group_headlines[name], group_totals = self._figures(m, initial, final, lo, hi)
            group_metrics[name] = m.rows
            all_totals.append(group_totals)
        if len(all_totals) > 1:  # the users table covers every user
            totals = {name: np.concatenate([part[name] for part in all_totals]) for name in totals}
        m = self.metrics
        return RunResult(
            metrics=m.rows, headline=headline, initial_state=initial, final_state=final, user_totals=totals,
            retrain_times=self.retrain_times, models=self.models, n_events=self.events.n_rows,
            n_decisions=self.n_decisions,
            policy=self.policy,
            group_metrics=group_metrics,
            group_headlines=group_headlines,
            creators=self.creators.table() if self.creators is not None else None,
        )

    def _figures(self, m: MetricsCollector, initial: dict[str, np.ndarray], final: dict[str, np.ndarray],
                 lo: int, hi: int) -> tuple[dict[str, float], dict[str, np.ndarray]]:
        """The headline figures and per-user totals of the users ``lo ≤ id < hi`` (one group,
        whose metrics ``m`` collected)."""
        headline = m.headline(self.sc.horizon)
        initial = {name: values[lo:hi] for name, values in initial.items()}
        final = {name: values[lo:hi] for name, values in final.items()}
        # state figures over the users retained at the end (present at t = 0, not churned
        # since), changes paired on those users; churned users' wellbeing (frozen at their
        # last session) apart
        retained = ~final["churned"]
        lost = final["churned"] & ~initial["churned"]

        def mean(x: np.ndarray, who: np.ndarray) -> float:
            return float(x[who].mean()) if who.any() else math.nan

        headline.update(
            final_wellbeing=mean(final["wellbeing"], retained),
            wellbeing_change=mean(final["wellbeing"] - initial["wellbeing"], retained),
            final_wellbeing_churned=mean(final["wellbeing"], lost),
            final_appetite=mean(final["appetite"], retained),
            appetite_change=mean(final["appetite"] - initial["appetite"], retained),
            topic_drift=mean(final["topic_drift"], retained),
            # users who churned during the horizon, as a share of the population
            churn_rate=float(lost.mean()),
        )
        flows = [row for row in m.rows if row[0] == "consumed_extremeness" and not math.isnan(row[4])]
        headline["consumed_extremeness_change"] = flows[-1][4] - flows[0][4] if len(flows) >= 2 else math.nan
        totals = {
            "watch_minutes": m.user_watch / 60.0,
            "sessions": m.user_sessions,
            "value": m.user_value,
            "consumed_extremeness": np.divide(
                m.user_ext, m.user_watch, out=np.full_like(m.user_ext, np.nan), where=m.user_watch > 0
            ),
        }
        return headline, totals


def _frozen(x: np.ndarray) -> np.ndarray:
    x = x.view()
    x.flags.writeable = False
    return x


def check_slate(policy: Policy, slate, candidates: np.ndarray, k: int) -> np.ndarray:
    """A user policy's slate as int64 ids, or a :class:`SlateError` saying what is wrong with
    it (``problem``) and showing it (``slate``, truncated)."""
    given = slate

    def fail(problem: str) -> SlateError:
        shown = show_slate(given)  # only on failure: slates are checked on every request
        return SlateError(f"{problem}: {shown}", problem=problem, slate=shown)

    try:
        slate = np.asarray(slate).ravel()
    except Exception:  # noqa: BLE001 — ragged nested lists and the like
        raise fail("it is not an array of item ids") from None
    if slate.dtype == object:  # None, a dict, a mixed list...
        raise fail("it is not an array of item ids")

    if slate.shape[0] == 0:
        if not getattr(policy, "may_end_sessions", False):
            raise fail(
                "it is empty; set may_end_sessions = True on a policy that ends sessions on purpose"
            )
        return slate.astype(np.int64)
    if not np.issubdtype(slate.dtype, np.integer):
        raise fail(f"its item ids are of type {slate.dtype}, not integers (return request.candidates[...], "
                   "not scores or positions as floats)")
    slate = slate.astype(np.int64)
    if slate.shape[0] > k:
        raise fail(f"it holds {slate.shape[0]} items, more than slate_size = {k}")
    if np.unique(slate).shape[0] != slate.shape[0]:
        values, counts = np.unique(slate, return_counts=True)
        repeated = values[counts > 1]
        listed = ", ".join(str(v) for v in repeated[:5].tolist()) + (", …" if repeated.shape[0] > 5 else "")
        raise fail(f"it repeats item(s) {listed}")
    inside = np.isin(slate, candidates)
    if not inside.all():
        outside = slate[~inside]
        listed = ", ".join(str(v) for v in outside[:5].tolist()) + (", …" if outside.shape[0] > 5 else "")
        raise fail(f"item(s) {listed} are not among the request's {candidates.shape[0]} candidates")
    return slate


def _built_in(policy: Policy) -> bool:
    """True if the policy and every policy it wraps (``base_``) are recsim's own, whose slates
    need no checking; user code is checked on every decision."""
    while policy is not None:
        if not type(policy).__module__.startswith("recsim."):
            return False
        policy = getattr(policy, "base_", None)
    return True
