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

    def recommend(self, request: Request, rng: np.random.Generator) -> np.ndarray:
        return top_k(request.candidates, self.score(request, rng), request.slate_size)


def top_k(candidates: np.ndarray, scores: np.ndarray, k: int) -> np.ndarray:
    """Candidates with the ``k`` highest scores, best first (ties: lower index first)."""
    negative = -scores
    if k >= scores.shape[0]:
        order = negative.argsort(kind="stable")
    else:
        part = negative.argpartition(k - 1)[:k]
        order = part[np.lexsort((part, negative[part]))]
    return candidates[order[:k]]
