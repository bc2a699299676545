"""The policy interface (DESIGN §2.7, §5.2): one required method, optional hooks.

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
    observable features of every item by id (to interpret the item ids in :class:`Feedback`)."""

    n_topics: int
    slate_size: int
    n_candidates: int
    retrain_interval: float  # seconds
    items: ObservableItems | None = None
    n_users: int = 0


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
    """The hidden truth of every row of a batch (oracle policies only): the catalog, the
    candidates ``(B, c)``, each user's ``theta`` ``(B, K)``, ``appetite``, ``fatigue`` and
    ``wellbeing`` ``(B,)``, and the behaviour settings."""

    catalog: Any
    candidates: np.ndarray
    theta: np.ndarray
    appetite: np.ndarray
    fatigue: np.ndarray
    wellbeing: np.ndarray
    behaviour: Any

    def view(self, i: int):
        """Row ``i`` as the :class:`~recsim.oracle.OracleView` a single request carries."""
        from ..oracle import OracleView

        return OracleView(
            self.catalog, self.candidates[i], self.theta[i], float(self.appetite[i]),
            float(self.fatigue[i]), float(self.wellbeing[i]), self.behaviour,
        )


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
    """Observable feedback logged since the last ``fit``, sorted by ``time``.

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
        """Learn from the feedback logged since the previous call (on the retrain schedule)."""

    def update(self, feedback: Feedback) -> None:
        """Learn from one event as it happens (only called for ``online`` policies)."""

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


def top_k_rows(candidates: np.ndarray, scores: np.ndarray, k: int) -> np.ndarray:
    """:func:`top_k` of every row of ``(B, c)`` candidates and scores, shape ``(B, min(k, c))``
    — row for row the same slates."""
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
#
# A batched engine must serve row ``i`` of a batch exactly as the per-request engine serves the
# request alone. Elementwise NumPy ufuncs round every element the same whatever the array's
# shape; BLAS products (``@``, ``np.dot``, ``einsum``, ``np.linalg.norm`` of a vector) do not:
# a ``(c, K) @ (K,)`` product and the same rows inside a ``(B, c, K)`` product may differ in the
# last bit. The helpers below compute dot products as a sum over the *first* axis of a
# C-contiguous ``(K, ...)`` array of products — each output element accumulated term by term
# in index order, an elementwise operation — which is also much faster than a sum along a
# short last axis.

#: Rows of a batch are processed in blocks of about this many elements (≈ 1 MB of float64),
#: so temporaries stay in cache and never span the whole batch.
BLOCK_ELEMENTS = 1 << 17


def row_blocks(n_rows: int, row_elements: int, block_elements: int = BLOCK_ELEMENTS) -> list[slice]:
    """Slices covering ``range(n_rows)`` in blocks of about ``block_elements`` elements, for
    rows of ``row_elements`` elements each (at least one row per block)."""
    step = max(1, block_elements // max(1, row_elements))
    return [slice(start, min(start + step, n_rows)) for start in range(0, n_rows, step)]


def sum_first(x: np.ndarray) -> np.ndarray:
    """``((x[0] + x[1]) + ...) + x[n-1]``, in that order, elementwise over the other axes: the
    same bits for any shape of the other axes.

    NumPy reduces the first axis of a C-contiguous array so (term by term, the other axes
    inner), except when the other axes hold a single element: it then sums pairwise, as along
    a contiguous axis. That case is summed here explicitly.
    """
    if not x.flags.c_contiguous:
        x = np.ascontiguousarray(x)
    n = x.shape[0]
    if n == 0:
        return np.zeros(x.shape[1:], dtype=x.dtype)
    if x.ndim > 1 and x[0].size != 1:
        return np.add.reduce(x, axis=0)
    if x.dtype == np.float64:  # Python floats add as float64 does, with less overhead
        values = x.reshape(n).tolist()
        total = values[0]
        for value in values[1:]:
            total += value
        return np.full(x.shape[1:], total)
    total = x[0].copy()
    for term in x[1:]:
        total += term
    return total


def dot_last(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``Σ_k a[..., k] · b[..., k]`` (the arguments broadcast), without BLAS: the products
    are laid out ``(K, ...)`` and summed term by term in ``k`` order (:func:`sum_first`), so
    every element has the same bits whatever the other axes' shapes — one request's
    ``(c, K)`` and ``(K,)``, or a batch's ``(B, c, K)`` and ``(B, 1, K)``."""
    a, b = np.asarray(a), np.asarray(b)
    if a.ndim == 2 and b.ndim == 1 and a.shape[0] > 1 and a.dtype == b.dtype == np.float64:
        # one request's (c, K) · (K,): what the general path below computes, minus its overhead
        products = np.empty((a.shape[1], a.shape[0]))
        np.multiply(a.T, b[:, None], out=products)
        return np.add.reduce(products, axis=0)
    nd = max(a.ndim, b.ndim)
    if a.ndim < nd:
        a = a[(None,) * (nd - a.ndim)]
    if b.ndim < nd:
        b = b[(None,) * (nd - b.ndim)]
    axes = (nd - 1, *range(nd - 1))  # the summed axis first
    a, b = a.transpose(axes), b.transpose(axes)
    shape = tuple(x if y == 1 else y for x, y in zip(a.shape, b.shape))
    dtype = a.dtype if a.dtype == b.dtype else np.promote_types(a.dtype, b.dtype)
    products = np.empty(shape, dtype=dtype)
    np.multiply(a, b, out=products)
    return sum_first(products)


def gather_dot(table: np.ndarray, index: np.ndarray, vectors: np.ndarray) -> np.ndarray:
    """Row ``j`` of ``table`` (``(n, K)``) dotted with a vector, for every id ``j`` of
    ``index`` (:func:`dot_last`).

    One request: ``index`` ``(c,)`` and ``vectors`` ``(K,)`` give shape ``(c,)``. A batch:
    ``index`` ``(B, c)`` and ``vectors`` ``(B, K)`` (row ``i``'s ids and vector) give
    ``(B, c)``, row for row bit-identical to the single-request values, computed in blocks of
    rows rather than through a ``(B, c, K)`` temporary.
    """
    if index.ndim == 1:
        return dot_last(table.take(index, axis=0), vectors)
    n_rows, c = index.shape
    out = np.empty((n_rows, c), dtype=np.result_type(table, vectors))
    for rows in row_blocks(n_rows, c * table.shape[-1]):
        out[rows] = dot_last(table.take(index[rows], axis=0), vectors[rows, None, :])
    return out


def vector_norm(x: np.ndarray) -> np.ndarray:
    """L2 norm along the last axis, summed term by term (:func:`sum_first`): the same bits for
    one vector as for the same vector inside a matrix (``np.linalg.norm`` of a 1-D vector uses
    a BLAS dot product, which rounds differently)."""
    return np.sqrt(dot_last(x, x))


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
        oracle = OracleBatch(
            oracle.catalog, oracle.candidates[rows], oracle.theta[rows], oracle.appetite[rows],
            oracle.fatigue[rows], oracle.wellbeing[rows], oracle.behaviour,
        )
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


__all__ += ["batch_rows", "dot_last", "gather_dot", "rngs_rows", "row_blocks", "sum_first", "vector_norm"]
