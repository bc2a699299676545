"""Time-bucketed metrics (docs/model.md §5.10), computed while a run goes.

Flow metrics accumulate over a bucket from the events; state metrics are snapshots of the
hidden state at the bucket's end (and once at t=0, the start of the horizon). Output rows are
tidy: ``metric, kind ('flow' | 'state'), start, end, value`` with times in seconds.
"""

from __future__ import annotations

import math
from array import array

import numpy as np
from scipy.stats import spearmanr

from .measures import gini, jaccard_pairs, spearman_rows, topk_regret

__all__ = [
    "HEADLINE",
    "FLOW_METRICS",
    "STATE_METRICS",
    "MetricsCollector",
    "canonical_order",
    "effective_state",
    "SNAPSHOT_FIELDS",
    "spearman",
    "proxy_panel",
    "HOMOGENIZATION_PAIRS",
]

DAY = 86400.0

FLOW_METRICS = (
    "watch_minutes_per_user_day",
    "sessions_per_user_day",
    "clicks_per_user_day",
    "active_users",
    "value_per_user_day",
    "cumulative_value_per_user",
    "regret_minutes_per_user_day",
    "consumed_extremeness",
    "extreme_share",
    "topic_entropy",
    "proxy_validity",
    "proxy_regret",
    "watch_value_correlation",
    "coverage_shown",
    "coverage_watched",
    "exposure_gini",
    "homogenization",
    "survey_mean",
)
STATE_METRICS = (
    "mean_wellbeing",
    "mean_appetite",
    "topic_drift",
    "mean_habit",
    "retained_users",
    "churn_rate",
    "survival",
)

#: user pairs a bucket's homogenization (mean Jaccard similarity) is averaged over, at most
HOMOGENIZATION_PAIRS = 2000


def _running_sum(x: np.ndarray) -> float:
    """((0.0 + x[0]) + x[1]) + ...: the sum a loop of ``+=`` from 0.0 gives (not NumPy's
    pairwise sum, which rounds differently)."""
    if x.shape[0] == 0:
        return 0.0
    return float(np.add.accumulate(np.concatenate([[0.0], x]))[-1])


def canonical_order(times: np.ndarray, users: np.ndarray) -> np.ndarray | None:
    """Indices that order events by ``(time, user)``, ties kept in the given order (a stable
    sort); ``None`` if they are in that order already (the reference engine's case)."""
    n = times.shape[0]
    if n < 2:
        return None
    dt = times[1:] - times[:-1]
    if not (dt < 0).any():
        ties = dt == 0
        if not ties.any() or not (users[1:][ties] < users[:-1][ties]).any():
            return None
    order = np.argsort(users, kind="stable")
    return order[np.argsort(times[order], kind="stable")]


def _check_lengths(**arrays: np.ndarray) -> int:
    """The common length of 1-D arrays (a ValueError names them if they differ)."""
    lengths = {name: np.shape(x) for name, x in arrays.items()}
    shapes = set(lengths.values())
    if len(shapes) != 1 or len(next(iter(shapes))) != 1:
        raise ValueError(f"expected 1-D arrays of one length, got shapes {lengths}")
    return next(iter(shapes))[0]


def _extend(buffer: array, values: np.ndarray, dtype: type) -> None:
    """Append a NumPy array to an ``array.array`` buffer of the same item type."""
    buffer.frombytes(np.ascontiguousarray(values, dtype=dtype).tobytes())


def _row_entropies(mix: np.ndarray, block: int = 65536) -> np.ndarray:
    """Entropy of each row of ``mix`` normalized to sum 1 (0·log 0 = 0), computed in blocks of
    rows (the same values as at once, with bounded temporaries)."""
    out = np.empty(mix.shape[0])
    with np.errstate(divide="ignore", invalid="ignore"):
        for lo in range(0, mix.shape[0], block):
            m = mix[lo: lo + block]
            p = m / m.sum(axis=1, keepdims=True)
            out[lo: lo + block] = -np.where(p > 0, p * np.log(p), 0.0).sum(axis=1)
    return out


def _nanmean(values: list[float]) -> float:
    x = np.asarray(values, dtype=float)
    x = x[~np.isnan(x)]
    return float(x.mean()) if x.shape[0] else math.nan


def spearman(x: np.ndarray, y: np.ndarray) -> float:
    """Spearman rank correlation, NaN when undefined (fewer than 3 points or a constant)."""
    if len(x) < 3 or np.all(x == x[0]) or np.all(y == y[0]):
        return math.nan
    return float(spearmanr(x, y).statistic)


#: per-user quantities of a snapshot (NaN where the user model has no such thing)
SNAPSHOT_FIELDS = ("appetite", "satisfaction", "wellbeing", "topic_drift", "habit")


def effective_state(
    model, state, in_session: np.ndarray, state_time: np.ndarray, now: float,
    with_theta: bool = True, block: int = 65536, frozen: np.ndarray | None = None,
) -> dict[str, np.ndarray]:
    """Every user's hidden state as of ``now`` (seconds; one time, or one per user
    ``(n_users,)``): users between sessions have relaxed since
    their last session (the user model's relaxation over ``now - state_time``), users in a
    session are as they are, and users in ``frozen`` (bool, e.g. those who churned) stay as
    their last session left them. Pure: ``state`` is not mutated.

    Returns ``(n_users,)`` arrays ``appetite``, ``satisfaction``, ``wellbeing`` (the model's
    W), ``topic_drift`` (‖θ − θ₀‖) and ``habit`` — NaN where the model has no such field —,
    every other per-user numeric field the model's components provide (but time stamps), and,
    with ``with_theta``, the ``(n_users, K)`` topic vectors ``theta``. Computed in
    blocks of users (bounded temporaries)."""
    n = state.n_users
    out = {name: np.full(n, math.nan) for name in SNAPSHOT_FIELDS}
    # the model's other per-user fields (e.g. fatigue, ubar; npe, budget, patience of other
    # models), as of now; time stamps (``*_time``) left out
    sampled = set(getattr(model.sampler, "provides", ()))
    extra = [name for c in model.components.values() for name in c.provides
             if name not in sampled and name not in out and not name.endswith("_time")
             and state[name].ndim == 1 and state[name].dtype.kind in "biuf"]
    for name in dict.fromkeys(extra):
        out[name] = np.empty(n, dtype=float)
    theta = np.empty_like(state["theta"]) if with_theta and "theta" in state else None
    times = np.broadcast_to(np.asarray(now, dtype=float), (n,))
    for lo in range(0, n, block):  # in blocks of users: bounded (block, K) temporaries
        users = np.arange(lo, min(lo + block, n))
        view = model.view(state, users)
        away = ~in_session[users] if frozen is None else ~(in_session[users] | frozen[users])
        at = times[users]
        dt = np.where(away, at - state_time[users], 0.0)
        relaxed = view.with_values(model.relaxation.relax(view, dt, at))
        for name in ("appetite", "satisfaction", "habit", *dict.fromkeys(extra)):
            if name in relaxed:
                out[name][users] = relaxed[name]
        out["wellbeing"][users] = model.wellbeing(relaxed)
        if "theta" in relaxed and "theta0" in relaxed:
            t = relaxed["theta"]
            out["topic_drift"][users] = np.linalg.norm(t - relaxed["theta0"], axis=1)
            if theta is not None:
                theta[users] = t
    if theta is not None:
        out["theta"] = theta
    return out


class MetricsCollector:
    """Accumulates flow metrics from engine callbacks and emits rows at bucket ends.

    Watches and surveys are only recorded as they happen (a few array appends: this is called
    for every watch). When the bucket closes they are first put in canonical order — by
    ``(time, user)``, a stable sort — and then summed in that order, so the figures do not
    depend on the order of the callbacks within a bucket: an engine that reports events in
    time order (the reference engine) and one that reports them grouped by user steps (the
    batched engine) give bit-identical rows. In time order the sort is the identity, and the
    sums equal the running sums (``+=`` per watch) they replace.

    Callbacks come in two forms, scalar (one event, the reference engine's hot path) and
    vectorized (arrays of events, for the batched engine); they can be mixed freely. Only
    events at ``t >= 0`` are reported; the engine decides which bucket an event belongs to by
    reporting it before or after :meth:`close_bucket`.
    """

    def __init__(
        self,
        n_users: int,
        n_topics: int,
        extreme_threshold: float,
        item_topics: np.ndarray | None = None,
        pair_users: int | None = None,
    ):
        self.n_users = n_users
        #: the whole-horizon (watch time, value) pairs behind the headline proxy_validity are
        #: kept for users with ids below this (outputs.event_sample; all users by default), so
        #: that memory does not grow with users × horizon when events are sampled
        self.pair_users = n_users if pair_users is None else min(int(pair_users), n_users)
        self.threshold = extreme_threshold
        #: ``max(topics, 0)`` per item, shape ``(n_items, K)``, for :meth:`on_watch_item`
        self.item_topics = item_topics
        self.rows: list[tuple[str, str, float, float, float]] = []
        self.cumulative_value = 0.0
        # whole-horizon totals (for the run's headline figures)
        self.total = dict(watch=0.0, sessions=0, clicks=0, value=0.0, regret=0.0, ext=0.0, extreme=0.0)
        self._all_tau: list[np.ndarray] = []  # per bucket, in canonical order
        self._all_value: list[np.ndarray] = []
        #: survey answers of every closed bucket, ordered by (time, user) within each bucket
        self.all_surveys: list[float] = []
        self._user_watch = np.zeros(n_users)  # closed buckets only
        self._user_sessions = [0] * n_users  # from on_session
        self._user_sessions_bulk = np.zeros(n_users, dtype=np.int64)  # from on_sessions
        self._user_value = np.zeros(n_users)
        self._user_ext = np.zeros(n_users)
        self._n_topics = n_topics
        self.n_items = 0 if item_topics is None else int(item_topics.shape[0])
        #: users not churned at t = 0 (set by the first snapshot), for churn_rate and survival
        self.alive_at_start: np.ndarray | None = None
        self.bucket_values: dict[str, list[float]] = {}
        self._new_bucket()

    @property
    def all_tau(self) -> np.ndarray:
        """Watch times (s) of every closed bucket, ordered by (time, user) within each bucket."""
        return np.concatenate([np.empty(0), *self._all_tau])

    @property
    def all_value(self) -> np.ndarray:
        return np.concatenate([np.empty(0), *self._all_value])

    @property
    def user_watch(self) -> np.ndarray:
        """Seconds watched per user over the horizon, shape ``(n_users,)`` (watches of the
        open bucket included)."""
        return self._user_totals()[0]

    @property
    def user_sessions(self) -> np.ndarray:
        return np.array(self._user_sessions, dtype=np.int64) + self._user_sessions_bulk

    @property
    def user_value(self) -> np.ndarray:
        return self._user_totals()[1]

    @property
    def user_ext(self) -> np.ndarray:
        """Σ τ·e over the user's watches (seconds × extremeness)."""
        return self._user_totals()[2]

    def _new_bucket(self) -> None:
        self.b_shown = np.zeros(self.n_items, dtype=np.int64)  # impressions per item
        self.b_sessions = 0
        self.b_clicks = 0
        self.b_active: set[int] = set()  # from on_session
        self._b_active_mask: np.ndarray | None = None  # from on_sessions
        # the bucket's watches, one entry each
        self._w_user = array("q")
        self._w_time = array("d")  # when the watch ended
        self._w_item = array("q")  # item id, or -1 - (index into _w_topics)
        self._w_tau = array("d")
        self._w_value = array("d")
        self._w_ext = array("d")
        self._w_topics: list[np.ndarray] = []  # max(topics, 0) given to on_watch
        # the bucket's surveys
        self._s_time = array("d")
        self._s_user = array("q")
        self._s_score = array("d")

    # ---- engine callbacks, one event each (only called for events at t >= 0)
    def on_session(self, user: int) -> None:
        self.b_sessions += 1
        self.b_active.add(user)
        self._user_sessions[user] += 1

    def on_click(self) -> None:
        self.b_clicks += 1

    def on_watch(
        self, user: int, time: float, tau: float, value: float, extremeness: float, topics: np.ndarray
    ) -> None:
        """A watch of ``tau`` seconds ending at ``time``, with true value and extremeness, of
        an item whose true topic vector is ``topics`` (K,)."""
        self._w_topics.append(np.maximum(topics, 0.0))
        self.on_watch_item(user, time, tau, value, extremeness, -len(self._w_topics))

    def on_watch_item(self, user: int, time: float, tau: float, value: float, extremeness: float, item: int) -> None:
        """:meth:`on_watch` of item ``item``, whose topics are ``item_topics[item]``."""
        self._w_user.append(user)
        self._w_time.append(time)
        self._w_item.append(item)
        self._w_tau.append(tau)
        self._w_value.append(value)
        self._w_ext.append(extremeness)

    def on_survey(self, time: float, user: int, score: float) -> None:
        """A survey answer ``score`` (1–5) given by ``user`` at ``time``."""
        self._s_time.append(time)
        self._s_user.append(user)
        self._s_score.append(score)

    # ---- engine callbacks, many events at once (the batched engine); any order
    def on_sessions(self, users: np.ndarray) -> None:
        """Sessions started by ``users`` (int array; a user may appear several times)."""
        users = np.asarray(users, dtype=np.int64).ravel()
        if users.shape[0] == 0:
            return
        self.b_sessions += users.shape[0]
        if self._b_active_mask is None:
            self._b_active_mask = np.zeros(self.n_users, dtype=bool)
        self._b_active_mask[users] = True
        np.add.at(self._user_sessions_bulk, users, 1)

    def on_clicks(self, n: int) -> None:
        """``n`` clicks."""
        self.b_clicks += int(n)

    def on_impressions(self, items: np.ndarray) -> None:
        """Items shown (any shape of item ids; a slate's every position counts)."""
        items = np.asarray(items, dtype=np.int64).ravel()
        if items.shape[0]:
            self.b_shown += np.bincount(items, minlength=self.n_items)[: self.n_items]

    def active_users(self) -> np.ndarray:
        """Ids of the users who started a session in the open bucket, ascending."""
        mask = np.zeros(self.n_users, dtype=bool) if self._b_active_mask is None else self._b_active_mask.copy()
        if self.b_active:
            mask[np.fromiter(self.b_active, np.int64, len(self.b_active))] = True
        return np.flatnonzero(mask)

    def on_watches(
        self,
        users: np.ndarray,
        times: np.ndarray,
        tau: np.ndarray,
        values: np.ndarray,
        extremeness: np.ndarray,
        items: np.ndarray,
    ) -> None:
        """Many :meth:`on_watch_item` calls at once: equal-length 1-D arrays, one entry per
        watch (``items`` are item ids, whose topics are ``item_topics[items]``)."""
        n = _check_lengths(users=users, times=times, tau=tau, values=values, extremeness=extremeness, items=items)
        if n == 0:
            return
        if self.item_topics is None:
            raise ValueError("on_watches needs the collector's item_topics")
        _extend(self._w_user, users, np.int64)
        _extend(self._w_time, times, np.float64)
        _extend(self._w_item, items, np.int64)
        _extend(self._w_tau, tau, np.float64)
        _extend(self._w_value, values, np.float64)
        _extend(self._w_ext, extremeness, np.float64)

    def on_surveys(self, times: np.ndarray, users: np.ndarray, scores: np.ndarray) -> None:
        """Many :meth:`on_survey` calls at once (equal-length 1-D arrays)."""
        if _check_lengths(times=times, users=users, scores=scores) == 0:
            return
        _extend(self._s_time, times, np.float64)
        _extend(self._s_user, users, np.int64)
        _extend(self._s_score, scores, np.float64)

    # ---- bucket boundaries
    def _watches(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """The open bucket's watches in canonical order: ``users, items, tau, values, ext``."""
        users = np.frombuffer(self._w_user, dtype=np.int64)
        items = np.frombuffer(self._w_item, dtype=np.int64)
        tau = np.frombuffer(self._w_tau, dtype=float)
        values = np.frombuffer(self._w_value, dtype=float)
        ext = np.frombuffer(self._w_ext, dtype=float)
        order = canonical_order(np.frombuffer(self._w_time, dtype=float), users)
        if order is None:  # already in order: views of the buffers, which the bucket then
            # drops (no copies: with a million users a day's watches are hundreds of MB)
            return users, items, tau, values, ext
        return users[order], items[order], tau[order], values[order], ext[order]

    def _surveys(self) -> np.ndarray:
        """The open bucket's survey answers in canonical order."""
        scores = np.frombuffer(self._s_score, dtype=float)
        order = canonical_order(np.frombuffer(self._s_time, dtype=float), np.frombuffer(self._s_user, dtype=np.int64))
        return scores.copy() if order is None else scores[order]

    @staticmethod
    def _add_user_totals(
        totals: tuple[np.ndarray, np.ndarray, np.ndarray], users: np.ndarray, tau: np.ndarray,
        values: np.ndarray, ext: np.ndarray,
    ) -> None:
        """Add watches (in canonical order) to per-user ``(watch, value, ext)`` totals:
        np.add.at adds one index after the other, as running sums per user would."""
        watch, value, extremeness = totals
        np.add.at(watch, users, tau)
        np.add.at(value, users, values)
        np.add.at(extremeness, users, tau * ext)

    def _user_totals(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Copies of the per-user totals, the open bucket's watches included (not committed:
        they are committed, in canonical order, when the bucket closes)."""
        totals = (self._user_watch.copy(), self._user_value.copy(), self._user_ext.copy())
        if len(self._w_user):
            users, _, tau, values, ext = self._watches()
            self._add_user_totals(totals, users, tau, values, ext)
        return totals

    def _topic_mixes(self, users: np.ndarray, items: np.ndarray, tau: np.ndarray) -> np.ndarray:
        """Σ τ·max(x, 0) per user of the bucket, shape ``(n_active, K)``: rows in the order of
        the users' first watch, each summed in the order of the watches (canonical order)."""
        _, first, inverse = np.unique(users, return_index=True, return_inverse=True)
        rank = np.empty(first.shape[0], dtype=np.int64)
        rank[np.argsort(first)] = np.arange(first.shape[0])
        if self._w_topics:
            table = np.vstack([np.zeros((0, self._n_topics)) if self.item_topics is None else self.item_topics,
                               *self._w_topics[::-1]])
            items = np.where(items >= 0, items, items + table.shape[0])  # -1 is the last row
        else:
            table = self.item_topics
        # column by column (bounded temporaries with a million users): bincount adds the
        # weights in input order, as np.add.at(mix, rows, tau[:, None] * table[items]) did
        rows = rank[inverse.ravel()]
        mix = np.empty((first.shape[0], self._n_topics))
        for k in range(self._n_topics):
            mix[:, k] = np.bincount(rows, weights=tau * table[items, k], minlength=first.shape[0])
        return mix

    def _n_active(self) -> int:
        if self._b_active_mask is None:
            return len(self.b_active)
        mask = self._b_active_mask
        if self.b_active:
            mask[np.fromiter(self.b_active, np.int64, len(self.b_active))] = True
        return int(np.count_nonzero(mask))

    def close_bucket(self, start: float, end: float, n_available: int | None = None,
                     extra: dict[str, float] | None = None,
                     pairs_rng: np.random.Generator | None = None) -> None:
        """Emit the flow rows of the bucket ``[start, end)`` and start a new one.

        ``n_available`` is the number of items available at ``end`` (coverage and exposure
        Gini are over them); ``extra`` holds flows the engine measured itself (the proxy
        panel's); ``pairs_rng`` draws the user pairs of homogenization when there are more
        than :data:`HOMOGENIZATION_PAIRS`."""
        users, items, tau, values, ext = self._watches()
        self._add_user_totals((self._user_watch, self._user_value, self._user_ext), users, tau, values, ext)
        surveys = self._surveys()
        # running sums from 0.0 in canonical order, as a sequence of += would give
        w = _running_sum(tau)
        b_value = _running_sum(values)
        b_regret = _running_sum(tau[values < 0])
        b_ext = _running_sum(tau * ext)
        b_extreme = _running_sum(tau[ext > self.threshold])
        user_days = self.n_users * (end - start) / DAY
        self.cumulative_value += b_value
        if tau.shape[0]:
            mix = self._topic_mixes(users, items, tau)
            entropy = float(_row_entropies(mix).mean())
        else:
            entropy = math.nan
        flows = {
            "watch_minutes_per_user_day": w / 60.0 / user_days,
            "sessions_per_user_day": self.b_sessions / user_days,
            "clicks_per_user_day": self.b_clicks / user_days,
            "active_users": float(self._n_active()),
            "value_per_user_day": b_value / user_days,
            "cumulative_value_per_user": self.cumulative_value / self.n_users,
            "regret_minutes_per_user_day": b_regret / 60.0 / user_days,
            "consumed_extremeness": b_ext / w if w > 0 else math.nan,
            "extreme_share": b_extreme / w if w > 0 else math.nan,
            "topic_entropy": entropy,
            "proxy_validity": math.nan,
            "proxy_regret": math.nan,
            "watch_value_correlation": spearman(tau, values),
            **self._exposure(users, items, n_available, pairs_rng),
            "survey_mean": float(np.mean(surveys)) if surveys.shape[0] else math.nan,
        }
        flows.update(extra or {})
        for name, value in flows.items():
            self.rows.append((name, "flow", start, end, float(value)))
            self.bucket_values.setdefault(name, []).append(float(value))
        t = self.total
        t["watch"] += w
        t["sessions"] += self.b_sessions
        t["clicks"] += self.b_clicks
        t["value"] += b_value
        t["regret"] += b_regret
        t["ext"] += b_ext
        t["extreme"] += b_extreme
        if self.pair_users < self.n_users:
            kept = users < self.pair_users
            tau, values = tau[kept], values[kept]
        self._all_tau.append(tau)
        self._all_value.append(values)
        self.all_surveys += surveys.tolist()
        self._new_bucket()

    def _exposure(self, users: np.ndarray, items: np.ndarray, n_available: int | None,
                  rng: np.random.Generator | None) -> dict[str, float]:
        """Coverage, exposure Gini and homogenization of the open bucket."""
        n = self.n_items if n_available is None else int(n_available)
        shown = self.b_shown[:n]
        watched = np.bincount(items[items >= 0], minlength=self.n_items)[:n] if items.shape[0] else np.zeros(n)
        watchers = np.unique(users)
        if watchers.shape[0] < 2:
            pairs = np.empty((0, 2), dtype=np.int64)
        elif watchers.shape[0] * (watchers.shape[0] - 1) // 2 <= HOMOGENIZATION_PAIRS:
            a, b = np.triu_indices(watchers.shape[0], k=1)
            pairs = np.stack([watchers[a], watchers[b]], axis=1)
        else:
            rng = rng if rng is not None else np.random.default_rng(0)
            a = rng.integers(0, watchers.shape[0], HOMOGENIZATION_PAIRS)
            b = (a + rng.integers(1, watchers.shape[0], HOMOGENIZATION_PAIRS)) % watchers.shape[0]  # b ≠ a
            pairs = np.stack([watchers[a], watchers[b]], axis=1)
        return {
            "coverage_shown": float((shown > 0).mean()) if n else math.nan,
            "coverage_watched": float((watched > 0).mean()) if n else math.nan,
            "exposure_gini": gini(shown),
            "homogenization": jaccard_pairs(users, items, pairs),
        }

    def snapshot(self, model, state, in_session: np.ndarray, state_time: np.ndarray, churned_users: np.ndarray,
                 now: float, with_theta: bool = False) -> dict[str, np.ndarray]:
        """Emit the state rows at ``now``; returns the effective per-user state
        (:func:`effective_state`; users who churned stay as their last session left them).
        State means are over retained users; ``churn_rate`` is the share of the population
        that churned since t = 0 (the first snapshot), ``survival`` the share of the users
        present at t = 0 who have not churned since, ``retained_users`` the users not churned
        (warm-up included)."""
        state = effective_state(model, state, in_session, state_time, now, with_theta=with_theta,
                                frozen=churned_users)
        if self.alive_at_start is None:
            self.alive_at_start = ~churned_users
        retained = ~churned_users
        since_start = self.alive_at_start & churned_users

        def mean(x: np.ndarray) -> float:
            return float(x[retained].mean()) if retained.any() else math.nan

        values = {
            "mean_wellbeing": mean(state["wellbeing"]),
            "mean_appetite": mean(state["appetite"]),
            "topic_drift": mean(state["topic_drift"]),
            "mean_habit": mean(state["habit"]),
            "retained_users": float(retained.sum()),
            "churn_rate": float(since_start.sum()) / self.n_users,
            "survival": float((self.alive_at_start & retained).sum()) / max(int(self.alive_at_start.sum()), 1),
        }
        for name, value in values.items():
            self.rows.append((name, "state", now, now, float(value)))
        return state

    def headline(self, horizon: float) -> dict[str, float]:
        """Whole-horizon figures of one run (one policy, one replication)."""
        user_days = self.n_users * horizon / DAY
        t = self.total
        return {
            "watch_minutes_per_user_day": t["watch"] / 60.0 / user_days,
            "sessions_per_user_day": t["sessions"] / user_days,
            "value_per_user_day": t["value"] / user_days,
            "regret_minutes_per_user_day": t["regret"] / 60.0 / user_days,
            "consumed_extremeness": t["ext"] / t["watch"] if t["watch"] > 0 else math.nan,
            "extreme_share": t["extreme"] / t["watch"] if t["watch"] > 0 else math.nan,
            "watch_value_correlation": spearman(self.all_tau, self.all_value),
            "survey_mean": float(np.mean(self.all_surveys)) if self.all_surveys else math.nan,
            # measured per bucket: their mean over the horizon's buckets
            **{name: _nanmean(self.bucket_values.get(name, [])) for name in (
                "proxy_validity", "proxy_regret", "coverage_shown", "coverage_watched",
                "exposure_gini", "homogenization")},
        }


#: Whole-horizon figures of a run, one value per (policy, replication); the summary reports
#: their mean and 95% CI over replications.
HEADLINE = (
    "watch_minutes_per_user_day",
    "sessions_per_user_day",
    "final_wellbeing",
    "wellbeing_change",
    "value_per_user_day",
    "regret_minutes_per_user_day",
    "consumed_extremeness",
    "consumed_extremeness_change",
    "extreme_share",
    "final_appetite",
    "appetite_change",
    "topic_drift",
    "final_wellbeing_churned",
    "churn_rate",
    "proxy_validity",
    "proxy_regret",
    "watch_value_correlation",
    "coverage_shown",
    "coverage_watched",
    "exposure_gini",
    "homogenization",
    "twin_topic_distance",
    "twin_appetite_distance",
    "survey_mean",
)


def proxy_panel(
    model, state, users: np.ndarray, in_session: np.ndarray, state_time: np.ndarray, now: float,
    catalog, n_available: int, keys: np.ndarray, counter: int, size: int, k: int, block: int = 1024,
) -> tuple[np.ndarray, np.ndarray]:
    """How well the proxy ranks what it stands for, at each of ``users``' current hidden state,
    on a panel no policy chose: ``size`` items drawn uniformly (with replacement) from the
    ``n_available`` available items by each user's own counter-based stream (``keys``,
    counters ``counter .. counter + size - 1``), so every policy meets the same panel.

    The proxy is what the platform optimizes, the expected watch time of an impression
    (P(click alone) × E[watch time | click], the engagement oracle's score); what it stands
    for is the item's true value before the cost of the time spent watching it
    (``value.value`` at zero watch time). Returns per user the Spearman correlation of the
    two over the panel (:func:`recsim.measures.spearman_rows`) and the top-``k`` value regret
    of ranking by the proxy (:func:`recsim.measures.topk_regret`), in value units per slot.
    """
    from . import rng as rngmod
    from .users.state import ItemView

    validity = np.full(users.shape[0], math.nan)
    regret = np.full(users.shape[0], math.nan)
    counters = counter + np.arange(size, dtype=np.uint64)
    for lo in range(0, users.shape[0], block):
        u = users[lo: lo + block]
        draws = rngmod.uniforms(keys[u][:, None], counters[None, :])
        panel = np.minimum((draws * n_available).astype(np.int64), n_available - 1)
        view = model.view(state, u)
        dt = np.where(in_session[u], 0.0, now - state_time[u])
        relaxed = view.with_values(model.relaxation.relax(view, dt, np.full(u.shape[0], float(now))))
        items = ItemView(catalog, panel)
        terms = model.allure.score(relaxed, items)
        proxy = model.click_probability_alone(relaxed, terms) * model.response.expected_watch_time(relaxed, items, terms)
        value = model.value.value(relaxed, items, terms, np.zeros(panel.shape))
        validity[lo: lo + block] = spearman_rows(proxy, value)
        regret[lo: lo + block] = topk_regret(proxy, value, k)
    return validity, regret
