"""The policy interface (docs/model.md §1, §9): one required method, optional hooks.

A policy sees a :class:`Request` holding only what a platform observes and returns a slate:
an array of item ids chosen from ``request.candidates``, best first. Oracles (flagged by
``oracle = True``) additionally receive ``request.oracle``, a view of the hidden truth, and are
marked as oracles in every output.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, ClassVar

import numpy as np
from pydantic import BaseModel, ConfigDict

from .. import kernels
from ..catalog import ObservableItems

__all__ = [
    "Policy",
    "PolicyContext",
    "Request",
    "History",
    "CandidateFeatures",
    "Feedback",
    "FunctionPolicy",
    "ScoringPolicy",
    "NoParams",
    "top_k",
    "top_k_rows",
    "RequestBatch",
    "HistoryTable",
    "BatchFeatures",
    "OracleBatch",
    "RequestRngs",
]


class NoParams(BaseModel):
    model_config = ConfigDict(extra="forbid")


@dataclass(frozen=True)
class PolicyContext:
    """What a policy may know when it is reset: sizes, its scenario settings, and the
    observable features of every item by id (to interpret the item ids in :class:`Feedback`).

    With adapting creators (``catalog.creators``) the items not yet uploaded are remade at each
    adaptation, and the platform replaces ``items`` with a new :class:`ObservableItems` (the
    requests carry the new one too). An ``ObservableItems`` never changes: read ``items`` from
    the context or the request when you need it, and key anything you compute from it by its
    identity (``cached_items is context.items``)."""

    n_topics: int
    slate_size: int
    n_candidates: int
    retrain_interval: float  # seconds
    items: ObservableItems | None = None
    n_users: int = 0


def revise_items(context: PolicyContext, items: ObservableItems) -> None:
    """Hand the policies sharing ``context`` the revised observable ``items`` (the platform
    does this when creators remake future uploads; the context is otherwise read-only)."""
    object.__setattr__(context, "items", items)


class History:
    """A user's observable history, kept by the engine from logged events (read-only for
    policies). Times in seconds; ``topic_mix`` is the watch-time-weighted sum of the observable
    topic vectors of watched items, shape ``(K,)``."""

    __slots__ = (
        "n_sessions", "n_impressions", "n_clicks", "watch_seconds", "watch_fraction_sum",
        "classifier_seconds", "topic_mix", "last_session_end", "session_items",
        "session_watch_seconds", "survey_sum", "n_surveys",
    )

    def __init__(self, n_topics: int):
        self.n_sessions = 0
        self.n_impressions = 0
        self.n_clicks = 0
        self.watch_seconds = 0.0
        self.watch_fraction_sum = 0.0
        self.classifier_seconds = 0.0  # Σ τ·ê over watched items
        self.topic_mix = np.zeros(n_topics)
        self.last_session_end = -np.inf
        self.session_items = 0
        self.session_watch_seconds = 0.0
        self.survey_sum = 0.0
        self.n_surveys = 0

    @property
    def mean_watch_fraction(self) -> float:
        return self.watch_fraction_sum / self.n_clicks if self.n_clicks else 0.0

    @property
    def mean_classifier(self) -> float:
        """Watch-time-weighted mean extremeness-classifier score of what the user watched."""
        return self.classifier_seconds / self.watch_seconds if self.watch_seconds else 0.0

    @property
    def topic_profile(self) -> np.ndarray:
        """``topic_mix`` scaled to unit norm (zeros before the first watch)."""
        norm = float(np.linalg.norm(self.topic_mix))
        return self.topic_mix / norm if norm > 0 else np.zeros_like(self.topic_mix)


class _lazy:
    """functools.cached_property without its per-instance lock (Python < 3.12 takes one on
    every first access, a noticeable cost once per request): computed on first access and
    stored in the instance's ``__dict__``, which later lookups find first."""

    def __init__(self, func: Callable[[Any], Any]):
        self.func = func
        self.attrname = func.__name__
        self.__doc__ = func.__doc__

    def __set_name__(self, owner: type, name: str) -> None:
        self.attrname = name

    def __get__(self, instance: Any, owner: type | None = None) -> Any:
        if instance is None:
            return self
        value = instance.__dict__[self.attrname] = self.func(instance)
        return value


class CandidateFeatures:
    """Observable features of the candidates, computed on first access. Shapes ``(c,)`` or
    ``(c, K)``; ``age`` in seconds since upload."""

    def __init__(self, items: ObservableItems, candidates: np.ndarray, now: float):
        self._items = items
        self._candidates = candidates
        self._now = now

    @_lazy
    def topics(self) -> np.ndarray:
        return self._items.topics.take(self._candidates, axis=0)

    @_lazy
    def classifier(self) -> np.ndarray:
        return self._items.classifier[self._candidates]

    @_lazy
    def length(self) -> np.ndarray:
        return self._items.length[self._candidates]

    @_lazy
    def upload_time(self) -> np.ndarray:
        return self._items.upload_time[self._candidates]

    @_lazy
    def age(self) -> np.ndarray:
        return self._now - self.upload_time

    @_lazy
    def creator(self) -> np.ndarray:
        return self._items.creator[self._candidates]


@dataclass
class Request:
    """One slate request. ``candidates`` are item ids; the slate must be a subset of them."""

    user_id: int
    now: float
    history: History
    candidates: np.ndarray
    features: CandidateFeatures
    slate_size: int
    oracle: Any = None  # an OracleView, given to oracle policies only


class HistoryTable:
    """Every user's observable :class:`History` as arrays (struct of arrays), kept by the
    batched engine: the fields of :class:`History` with a leading user axis."""

    FIELDS = History.__slots__

    def __init__(self, n_users: int, n_topics: int):
        self.n_sessions = np.zeros(n_users, dtype=np.int64)
        self.n_impressions = np.zeros(n_users, dtype=np.int64)
        self.n_clicks = np.zeros(n_users, dtype=np.int64)
        self.watch_seconds = np.zeros(n_users)
        self.watch_fraction_sum = np.zeros(n_users)
        self.classifier_seconds = np.zeros(n_users)
        self.topic_mix = np.zeros((n_users, n_topics))
        self.last_session_end = np.full(n_users, -np.inf)
        self.session_items = np.zeros(n_users, dtype=np.int64)
        self.session_watch_seconds = np.zeros(n_users)
        self.survey_sum = np.zeros(n_users)
        self.n_surveys = np.zeros(n_users, dtype=np.int64)

    def readonly(self) -> "HistoryTable":
        """A view of this table that cannot be written through (what policies get: the
        engine's own arrays, as they change, but read-only)."""
        view = HistoryTable.__new__(HistoryTable)
        for name in self.FIELDS:
            array = getattr(self, name).view()
            array.flags.writeable = False
            setattr(view, name, array)
        return view

    def row(self, user: int) -> History:
        """User ``user``'s history as a :class:`History` (a copy)."""
        h = History.__new__(History)
        for name in self.FIELDS:
            value = getattr(self, name)[user]
            setattr(h, name, value.copy() if name == "topic_mix" else value.item())
        return h


class BatchFeatures(CandidateFeatures):
    """Observable features of every row's candidates, shapes ``(B, c)`` or ``(B, c, K)``,
    computed on first access (:class:`CandidateFeatures` over ``(B, c)`` candidates, with
    ``now`` one time per row)."""

    @_lazy
    def age(self) -> np.ndarray:
        return self._now[:, None] - self.upload_time


@dataclass
class OracleBatch:
    """The hidden truth of every row of a batch (oracle policies only): the scenario's user
    ``model``, the user ``state`` (every user's), the rows' ``users`` ``(B,)``, their
    ``candidates`` ``(B, c)`` and the ``catalog``."""

    model: Any
    state: Any
    users: np.ndarray
    candidates: np.ndarray
    catalog: Any

    def view(self, i: int):
        """Row ``i`` as the :class:`~recsim.oracle.OracleView` a single request carries."""
        from ..oracle import OracleView

        return OracleView(self.model, self.state, self.users[i: i + 1], self.candidates[i], self.catalog)

    def block(self, rows: slice | np.ndarray):
        """Rows ``rows`` as one :class:`~recsim.oracle.OracleView` of ``(rows, c)`` quantities,
        row for row those of :meth:`view`."""
        from ..oracle import OracleView

        return OracleView(self.model, self.state, self.users[rows], self.candidates[rows], self.catalog)


class RequestRngs:
    """The random generator of each request of a batch: request ``i`` gets the same numbers
    as it would alone (its stream is keyed by the user and the user's request number), so a
    policy's draws do not depend on which other requests are served, or in what order.

    ``rngs[i]`` re-keys one shared generator and returns it: use it before asking for the
    next row's.
    """

    def __init__(self, key: int, users: np.ndarray | None = None, counters: np.ndarray | None = None):
        self.key = key
        self.users = users
        self.counters = counters
        self._bitgen = np.random.Philox(key=0)
        self._generator = np.random.Generator(self._bitgen)
        self._state = self._bitgen.state
        self._counter = np.zeros(4, dtype=np.uint64)
        self._key = np.zeros(2, dtype=np.uint64)

    def rows(self, users: np.ndarray, counters: np.ndarray) -> "RequestRngs":
        """The generators of a batch: row ``i`` is request ``counters[i]`` of ``users[i]``."""
        rngs = RequestRngs.__new__(RequestRngs)
        rngs.__dict__.update(self.__dict__)
        rngs.users, rngs.counters = users, counters
        return rngs

    def __len__(self) -> int:
        return int(self.users.shape[0])

    def __getitem__(self, i: int) -> np.random.Generator:
        return self.keyed(int(self.users[i]), int(self.counters[i]))

    def keyed(self, user: int, counter: int) -> np.random.Generator:
        """The generator of request number ``counter`` of ``user`` (a fresh stream)."""
        from ..rng import user_key

        return self.keyed_user(user_key(self.key, user), counter)

    def keyed_user(self, user_key: int, counter: int) -> np.random.Generator:
        """:meth:`keyed` given the user's key ``rng.user_key(self.key, user)``."""
        state = self._state
        key = self._key
        key[0] = user_key
        key[1] = counter
        state["state"]["key"] = key
        state["state"]["counter"] = self._counter
        self._bitgen.state = state
        return self._generator


@dataclass
class RequestBatch:
    """``B`` slate requests served at once by the batched engine, row-aligned: ``user_ids``
    and ``now`` ``(B,)``, ``candidates`` ``(B, c)`` (every row has the same number of
    candidates), the users' observable histories (``histories``, a :class:`HistoryTable`
    indexed by user id), candidate ``features`` (:class:`BatchFeatures`) and, for oracle
    policies only, ``oracle`` (:class:`OracleBatch`). ``request(i)`` is row ``i`` as the
    :class:`Request` it would be alone."""

    user_ids: np.ndarray
    now: np.ndarray
    candidates: np.ndarray
    histories: HistoryTable
    features: BatchFeatures
    slate_size: int
    items: ObservableItems
    oracle: OracleBatch | None = None

    def __len__(self) -> int:
        return int(self.user_ids.shape[0])

    def request(self, i: int) -> Request:
        user = int(self.user_ids[i])
        now = float(self.now[i])
        candidates = self.candidates[i]
        return Request(
            user_id=user,
            now=now,
            history=self.histories.row(user),
            candidates=candidates,
            features=CandidateFeatures(self.items, candidates, now),
            slate_size=self.slate_size,
            oracle=None if self.oracle is None else self.oracle.view(i),
        )


@dataclass(frozen=True)
class Feedback:
    """Observable feedback logged since the last ``fit`` (or ``observe``), sorted by ``time``.

    One row per impression: ``served_at`` is when the slate was shown, ``time`` when the
    outcome became known (the end of the watch for a click, ``served_at`` otherwise),
    ``watch_time`` is 0 for an impression not clicked; ``session`` numbers the user's sessions.
    ``surveys`` holds the survey answers logged in the same period: ``time``, ``user_id``,
    ``session``, ``score`` (1–5), each array of equal length.
    """

    time: np.ndarray
    user_id: np.ndarray
    item_id: np.ndarray
    position: np.ndarray
    clicked: np.ndarray
    watch_time: np.ndarray
    served_at: np.ndarray | None = None
    session: np.ndarray | None = None
    surveys: dict[str, np.ndarray] | None = None

    def __len__(self) -> int:
        return int(self.time.shape[0])


class Policy:
    """Base class of recommendation policies.

    Subclasses implement :meth:`recommend`; the hooks default to doing nothing. Parameters are
    declared as a pydantic model ``Params`` (unknown or wrong parameters are rejected with
    their field names); the constructor stores them only — learned state belongs in
    :meth:`reset` and :meth:`fit` (as in scikit-learn).
    """

    Params: ClassVar[type[BaseModel]] = NoParams
    #: True for policies that read hidden state (upper bounds only; flagged in every output).
    oracle: ClassVar[bool] = False
    #: True for policies whose :meth:`update` must see every event as it happens.
    online: ClassVar[bool] = False
    #: True for policies that may return an empty slate, which ends the user's session (a
    #: break suggestion); an empty slate from any other policy is an error.
    may_end_sessions: ClassVar[bool] = False
    #: True for a class whose serving methods (``recommend``, ``recommend_batch``, and
    #: ``score``/``score_batch`` where it has them) take no numbers from the request's
    #: generator: a wrapper that draws after its base (``epsilon_greedy``) can then serve a
    #: batch through the base's batch method (:func:`draws_nothing`).
    draws_nothing: ClassVar[bool] = False

    def __init__(self, **params: Any):
        self.params = self.Params(**params)

    def reset(self, context: PolicyContext) -> None:
        """Forget learned state; called once before a run (and replication)."""

    def recommend(self, request: Request, rng: np.random.Generator) -> np.ndarray:
        """Return up to ``request.slate_size`` distinct item ids from ``request.candidates``."""
        raise NotImplementedError

    def recommend_batch(self, batch: RequestBatch, rngs: RequestRngs) -> np.ndarray | list[np.ndarray]:
        """Slates for every row of ``batch`` (the batched engine's call): a ``(B, k)`` array,
        or a list of ``B`` slates. Row ``i`` must be exactly ``recommend(batch.request(i),
        rngs[i])``; this default calls :meth:`recommend` row by row. Override it with a
        vectorized version for speed (and test it against the default)."""
        return [self.recommend(batch.request(i), rngs[i]) for i in range(len(batch))]

    def fit(self, feedback: Feedback, now: float) -> None:
        """Learn from the feedback logged since the previous call (on the retrain schedule);
        for a policy that defines :meth:`observe` as well, since the previous ``observe``."""

    def observe(self, feedback: Feedback) -> None:
        """Take feedback as it is logged, between retrains (optional; the default does
        nothing and the engines then keep all the feedback until ``fit`` is given it).

        A policy whose class defines ``fit`` and ``observe`` (or inherits both from one class,
        :func:`observes_feedback`), with retraining on, gets every row of feedback once:
        through ``observe``, in pieces in the order the rows were emitted (each piece sorted
        by time; a click is emitted when its watch ends, an impression not clicked when the
        scan ends, so a later piece may hold an impression served a few seconds before the
        last row of the previous one), or through the next ``fit``, which is given what was
        logged since the last ``observe``. The engine then keeps only the feedback of the
        last interval between such points, so memory does not grow with the users × the
        retrain interval. After the run's last retrain nothing more is handed over (no
        ``fit`` would read it).

        Two rules keep the engines' results equal (they, and any number of workers, cut the
        pieces at different points): what ``observe`` takes in must not change what the
        policy serves before the next ``fit``; and what the next ``fit`` learns must not
        depend on where the pieces were cut — a running sum over rows in time order per user,
        or a sample by keys that are the rows' own, do not (keeping "the last n pieces" does).
        :func:`recsim.testing.check_policy` checks both
        (``observe_in_pieces``). :meth:`~recsim.policies.learned.EngagementPolicy.observe`
        is an example."""

    def update(self, feedback: Feedback) -> None:
        """Learn from one event as it happens (only called for ``online`` policies)."""

    def learned(self) -> dict[str, float]:
        """What the policy has learned, as named numbers (optional): the engines record it
        after every ``fit`` in the run folder's ``models`` table (time, name, value), so an
        analysis can follow a learned ranker's inner objective across retrains. The default,
        an empty dict, records nothing."""
        return {}

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.params!r})"


class FunctionPolicy(Policy):
    """Adapter: a plain function ``f(request, rng) -> slate`` used as a policy.

    In a scenario, name a module-level function like a class: ``type: "my_module:my_function"``.
    (A lambda works from Python but cannot be pickled, so it cannot run on worker processes.)
    """

    def __init__(self, function: Callable[[Request, np.random.Generator], np.ndarray]):
        super().__init__()
        self.function = function

    def recommend(self, request: Request, rng: np.random.Generator) -> np.ndarray:
        return np.asarray(self.function(request, rng))

    def __reduce__(self):
        return (FunctionPolicy, (self.function,))

    @classmethod
    def of(cls, function: Callable[[Request, np.random.Generator], np.ndarray]) -> type["FunctionPolicy"]:
        """A policy class (no parameters) that serves ``function``: what the registry returns
        for ``"module:function"``."""

        def __init__(self) -> None:
            FunctionPolicy.__init__(self, function)

        name = getattr(function, "__name__", "function")
        doc = (function.__doc__ or f"The function {name} used as a policy.").strip()
        return type(name, (cls,), {"__init__": __init__, "__doc__": doc, "__module__": function.__module__})


class ScoringPolicy(Policy):
    """A policy that scores every candidate (higher is better) and serves the top ``k``.

    Subclasses implement :meth:`score`; re-rankers and wrappers call it on a base policy.
    """

    def score(self, request: Request, rng: np.random.Generator) -> np.ndarray:
        """One score per candidate, shape ``(c,)``."""
        raise NotImplementedError

    def score_batch(self, batch: RequestBatch, rngs: RequestRngs) -> np.ndarray:
        """Scores of every row's candidates, ``(B, c)``; row ``i`` exactly
        ``score(batch.request(i), rngs[i])`` (this default computes it so)."""
        return np.stack([np.asarray(self.score(batch.request(i), rngs[i]), dtype=float) for i in range(len(batch))])

    def recommend(self, request: Request, rng: np.random.Generator) -> np.ndarray:
        return top_k(request.candidates, self.score(request, rng), request.slate_size)

    def recommend_batch(self, batch: RequestBatch, rngs: RequestRngs) -> np.ndarray | list[np.ndarray]:
        if type(self).recommend is not ScoringPolicy.recommend:  # recommend overridden
            return Policy.recommend_batch(self, batch, rngs)
        return top_k_rows(batch.candidates, self.score_batch(batch, rngs), batch.slate_size)


def top_k(candidates: np.ndarray, scores: np.ndarray, k: int) -> np.ndarray:
    """Candidates with the ``k`` highest scores, best first; ties go to the lower index (the
    candidate drawn first). Exactly ``candidates[argsort(-scores, stable)[:k]]``."""
    negative = -scores
    n = scores.shape[0]
    if k >= n:
        order = negative.argsort(kind="stable")
    else:
        part = negative.argpartition(k - 1)[:k]
        kth = negative[part].max()
        if (negative <= kth).sum() > k:  # a tie straddles the cut: which tied items are in
            # the partition is unspecified, so fall back to the stable sort
            order = negative.argsort(kind="stable")
        else:
            order = part[np.lexsort((part, negative[part]))]
    return candidates[order[:k]]


_KERNEL_SCORES = (np.dtype(np.float64), np.dtype(np.float32))


def top_k_rows(candidates: np.ndarray, scores: np.ndarray, k: int) -> np.ndarray:
    """:func:`top_k` of every row of ``(B, c)`` candidates and scores, shape ``(B, min(k, c))``
    — row for row the same slates.

    With the compiled kernels on (:mod:`recsim.kernels`) float scores are ranked by
    :func:`recsim.kernels.ranking.top_k_rows`, which gives exactly the slates of the NumPy
    code below (the definition), rows whose top ``k`` must take NaN scores excepted: those
    are ranked by the NumPy code."""
    if (k >= 1 and type(scores) is np.ndarray and type(candidates) is np.ndarray and scores.ndim == 2
            and candidates.shape == scores.shape and scores.shape[1] > 0 and scores.dtype in _KERNEL_SCORES
            and candidates.dtype.kind in "iuf" and candidates.dtype.isnative and kernels.enabled()):
        from ..kernels import ranking

        out = np.empty((scores.shape[0], min(k, scores.shape[1])), dtype=candidates.dtype)
        left = ranking.top_k_rows(candidates, scores, out)
        if left.any():  # NaN scores inside the top k: whichever NumPy's argpartition keeps
            rows = np.flatnonzero(left)
            out[rows] = _top_k_rows_numpy(candidates[rows], scores[rows], k)
        return out
    return _top_k_rows_numpy(candidates, scores, k)


def _top_k_rows_numpy(candidates: np.ndarray, scores: np.ndarray, k: int) -> np.ndarray:
    """:func:`top_k_rows` in NumPy (rows are ranked independently of each other)."""
    negative = -scores
    B, n = scores.shape
    if k >= n:
        order = negative.argsort(axis=1, kind="stable")
    else:
        part = negative.argpartition(k - 1, axis=1)[:, :k]
        part_values = np.take_along_axis(negative, part, axis=1)
        kth = part_values.max(axis=1, keepdims=True)
        ties = (negative <= kth).sum(axis=1) > k
        # within the partition: by score, then by index (sort by index, then stably by score)
        key_order = np.argsort(part, axis=1, kind="stable")
        part = np.take_along_axis(part, key_order, axis=1)
        part_values = np.take_along_axis(part_values, key_order, axis=1)
        order = np.take_along_axis(part, np.argsort(part_values, axis=1, kind="stable"), axis=1)
        if ties.any():
            rows = np.flatnonzero(ties)
            order[rows] = negative[rows].argsort(axis=1, kind="stable")[:, :k]
    return np.take_along_axis(candidates, order[:, :k], axis=1)


# ----------------------------------------------------------------------------- batch helpers
# (row-invariant array arithmetic lives in recsim.arrays; re-exported here for policies)
from ..arrays import BLOCK_ELEMENTS, dot_last, gather_dot, row_blocks, sum_first, vector_norm  # noqa: E402, F401


def observes_feedback(policy: Policy) -> bool:
    """True if ``policy`` takes its feedback as it is logged (:meth:`Policy.observe`): the
    class its ``fit`` comes from defines ``observe`` as well (a subclass may then override
    either or both). A subclass that overrides ``fit`` alone expects all the feedback since
    the last retrain in it, and a policy with ``observe`` but the base class's no-op ``fit``
    is never asked to learn: neither observes (:func:`observe_unused` says why)."""
    if "fit" in vars(policy) or "observe" in vars(policy):
        return False
    fit_owner = _owner(type(policy), "fit")
    return fit_owner is not Policy and "observe" in vars(fit_owner)


def _owner(cls: type, name: str) -> type:
    """The class of ``cls``'s method resolution order that defines ``name``."""
    return next(c for c in cls.__mro__ if name in vars(c))


def observe_unused(policy: Policy) -> str | None:
    """Why the engines never call ``policy``'s own ``observe`` (None: they do, or it has none)."""
    cls = type(policy)
    if cls.observe is Policy.observe or observes_feedback(policy):
        return None
    if "fit" in vars(policy) or "observe" in vars(policy):
        return "fit or observe is set on the instance, not defined in the class"
    fit_owner, observe_owner = _owner(cls, "fit"), _owner(cls, "observe")
    if fit_owner is not observe_owner and issubclass(fit_owner, observe_owner):
        return None  # a subclass's own fit takes all the feedback: the inherited observe is not for it
    if fit_owner is Policy:
        return "it defines observe but not fit, and only a policy that learns (defines fit) is given feedback"
    return (f"its fit comes from {fit_owner.__qualname__}, which does not define observe: that fit expects "
            "all the feedback since the last retrain, so the engines give it all there and never call observe; "
            f"define observe in {fit_owner.__qualname__}, or fit beside your observe")


def draws_nothing(policy: Policy) -> bool:
    """True if ``policy`` serves without drawing from the request's generator: its class, or
    the class above it that declares :attr:`Policy.draws_nothing`, declares it, and no class
    below the declaring one overrides a serving method (an override may draw)."""
    cls = type(policy)
    if not cls.draws_nothing or any(name in vars(policy) for name in _SERVING):
        return False
    owner = _owner(cls, "draws_nothing")
    return all(issubclass(owner, _owner(cls, name)) for name in _SERVING if hasattr(cls, name))


_SERVING = ("recommend", "recommend_batch", "score", "score_batch")


def learns_from_feedback(policy: Policy) -> bool:
    """True if ``policy`` overrides :meth:`Policy.fit` (a policy that keeps the base class's
    no-op ``fit`` never reads the feedback)."""
    return not (type(policy).fit is Policy.fit and "fit" not in vars(policy))


def uses_own(policy: Policy, owner: type, *names: str) -> bool:
    """True if ``policy``'s class takes the methods ``names`` from ``owner`` (none overridden
    below it). A vectorized batch method checks this before running, so a subclass that
    overrides ``recommend`` or ``score`` is served by the row-by-row default instead."""
    cls = type(policy)
    return all(getattr(cls, name) is getattr(owner, name) for name in names)


def batch_rows(batch: RequestBatch, rows: np.ndarray | slice) -> RequestBatch:
    """The requests ``rows`` (a slice, indices or a boolean mask) of ``batch`` as a batch of
    their own, sharing its histories and items."""
    candidates = batch.candidates[rows]
    now = batch.now[rows]
    oracle = batch.oracle
    if oracle is not None:
        oracle = OracleBatch(oracle.model, oracle.state, oracle.users[rows], oracle.candidates[rows], oracle.catalog)
    return RequestBatch(
        user_ids=batch.user_ids[rows],
        now=now,
        candidates=candidates,
        histories=batch.histories,
        features=BatchFeatures(batch.items, candidates, now),
        slate_size=batch.slate_size,
        items=batch.items,
        oracle=oracle,
    )


def rngs_rows(rngs: RequestRngs, rows: np.ndarray | slice) -> RequestRngs:
    """The generators of the requests ``rows`` of a batch (the same streams)."""
    return rngs.rows(rngs.users[rows], rngs.counters[rows])


__all__ += ["BLOCK_ELEMENTS", "batch_rows", "learns_from_feedback", "observe_unused", "observes_feedback", "dot_last", "gather_dot", "rngs_rows", "row_blocks", "sum_first", "vector_norm"]
