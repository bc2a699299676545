"""Re-rankers and wrappers around a base policy (README "Policies"): ``diversity`` (MMR),
``calibrated`` (Steck 2018), ``break_suggesting`` (a session time cap) and ``epsilon_greedy``.

Each wrapper names its base policy in its ``base`` parameter, written like an entry of a
scenario's ``policies`` list: a type name (``"engagement"``, ``"module:Class"``) or a mapping
``{type, params}``. The base spec is validated when the wrapper's parameters are, so an
unknown base type or a bad base parameter is reported at its full path
(``policies.0.params.base.params.epsilon``). The base policy is built in :meth:`reset` (the
constructor stores parameters only) and every hook is forwarded to it: ``reset(context)``,
``fit(feedback, now)`` and ``update(feedback)``.

Two rules hold for every wrapper:

- **Oracle bases are rejected** (at validation). Outputs mark oracles by the policy type named
  in the scenario (``resolve_policy(spec.type).oracle``), so a wrapper around an oracle would be
  reported as a non-oracle, and the engine would not hand it the hidden truth either. Refusing
  is the simple, correct option; wrap an oracle in your own class with ``oracle = True`` if an
  upper bound of a re-ranked oracle is what you need.
- ``online`` (must see every event) and ``may_end_sessions`` (may return an empty slate) are
  set on each *instance* from its base spec, so a wrapper of an online base is online too.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Annotated, Any, ClassVar

import numpy as np
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    ValidationError,
    WithJsonSchema,
)
from pydantic_core import PydanticCustomError

from ..catalog import unit_rows
from ..config import Duration, PolicyParamError, PolicySpec, _default_name
from .base import (
    Feedback,
    Policy,
    PolicyContext,
    Request,
    RequestBatch,
    RequestRngs,
    ScoringPolicy,
    batch_rows,
    draws_nothing,
    rngs_rows,
    top_k,
    uses_own,
)
from .registry import build_policy, resolve_policy, validate_policy_spec

__all__ = [
    "DiversityPolicy",
    "CalibratedPolicy",
    "BreakSuggestingPolicy",
    "EpsilonGreedyPolicy",
]

#: Steck's smoothing of the slate's topic distribution toward the user's: q̃ = (1-α)q + αp.
CALIBRATION_ALPHA = 0.01

_EMPTY_SLATE = np.empty(0, dtype=np.int64)


# ----------------------------------------------------------------------------- base spec
def _spec_error(loc: tuple, message: str, value: Any) -> ValidationError:
    """A validation error at ``loc`` *inside* the base spec; pydantic prefixes the field name
    (``base``), so the full path reaches the scenario's error report."""
    error = PydanticCustomError("policy_spec", "{message}", {"message": message})
    return ValidationError.from_exception_data(
        "base policy", [{"type": error, "loc": tuple(loc), "input": value}]
    )


def _check_base_spec(value: Any) -> PolicySpec:
    """Validate a base policy spec (type resolves, params fit its ``Params``, not an oracle)."""
    try:
        spec = PolicySpec.model_validate(value)
    except ValidationError as exc:
        errors = exc.errors()
        # a misspelt key explains a missing one, so it is reported first
        first = next((e for e in errors if e["type"] == "extra_forbidden"), errors[0])
        loc = tuple(first["loc"])
        if first["type"] == "extra_forbidden":
            message = f"unknown key {loc[-1]!r} in the base policy; expected type and params"
        elif first["type"] == "missing":
            loc = ("type",)  # the name defaults to the type: a missing type is the cause
            message = "required key is missing"
        elif not loc:
            message = (
                f"expected a policy type name or a mapping with type and params, got {value!r:.60}"
            )
        else:
            message = first["msg"].removeprefix("Value error, ")
        raise _spec_error(loc, message, value) from None
    try:
        validate_policy_spec(spec, ())
    except PolicyParamError as exc:
        raise _spec_error(exc.loc, str(exc), value) from None
    if resolve_policy(spec.type).oracle:
        raise _spec_error(
            ("type",),
            f"{spec.type!r} is an oracle; a wrapper around an oracle would not be flagged as one "
            "in the outputs, so oracle bases are not supported",
            value,
        )
    return spec


def _short_spec(spec: PolicySpec) -> Any:
    """The spec as written in a scenario: the bare type name when it has no params."""
    if not spec.params and spec.name == _default_name(spec.type):
        return spec.type
    data: dict[str, Any] = {"type": spec.type, "params": spec.params}
    if spec.name != _default_name(spec.type):
        data["name"] = spec.name
    return data


BaseSpec = Annotated[
    PolicySpec,
    BeforeValidator(_check_base_spec),
    PlainSerializer(_short_spec),
    WithJsonSchema(
        {
            "anyOf": [
                {"type": "string", "description": "a policy type name or 'module:Class'"},
                {
                    "type": "object",
                    "properties": {"type": {"type": "string"}, "params": {"type": "object"}},
                    "required": ["type"],
                },
            ],
            "description": "the base policy: a type name, or a mapping {type, params}",
        }
    ),
]


def _default_base() -> PolicySpec:
    return PolicySpec(name="engagement", type="engagement")


def _spec_flag(spec: PolicySpec, flag: str) -> bool:
    """``online`` or ``may_end_sessions`` of the policy a spec (wrappers ask their base)."""
    cls = resolve_policy(spec.type)
    if issubclass(cls, _Wrapper):
        return cls._flag(cls.Params(**spec.params), flag)
    return bool(getattr(cls, flag, False))


# ----------------------------------------------------------------------------- helpers
def _base_scores(base: Policy, request: Request, rng: np.random.Generator) -> np.ndarray | None:
    """One score per candidate (higher is better), shape ``(c,)``, or ``None`` if the base
    ended the session (an empty slate).

    A :class:`ScoringPolicy` base gives its scores. Any other base is asked for a full ranking
    (the same request with ``slate_size`` = the number of candidates) and scored by rank:
    ``c - rank`` for ranked candidates, 0 for candidates it left out. That costs one full
    ranking per request and keeps only the order of the base's preferences.
    """
    candidates = request.candidates
    c = candidates.shape[0]
    if isinstance(base, ScoringPolicy):
        return _checked_scores(base, np.asarray(base.score(request, rng), dtype=float), (c,))
    return _rank_scores(candidates, base.recommend(replace(request, slate_size=c), rng))


def _base_scores_batch(base: Policy, batch: RequestBatch, rngs: RequestRngs) -> list[np.ndarray | None]:
    """:func:`_base_scores` of every row of ``batch``, through the base's batch methods
    (``score_batch``, or ``recommend_batch`` of full rankings): row ``i`` is exactly
    ``_base_scores(base, batch.request(i), rngs[i])``."""
    c = batch.candidates.shape[1]
    if isinstance(base, ScoringPolicy):
        scores = np.asarray(base.score_batch(batch, rngs), dtype=float)
        return list(_checked_scores(base, scores, batch.candidates.shape))
    rankings = base.recommend_batch(replace(batch, slate_size=c), rngs)
    return [_rank_scores(batch.candidates[i], rankings[i]) for i in range(len(batch))]


def _checked_scores(base: ScoringPolicy, scores: np.ndarray, shape: tuple) -> np.ndarray:
    name = type(base).__name__
    if scores.shape != shape:
        method = "score" if len(shape) == 1 else "score_batch"
        raise ValueError(f"{name}.{method} returned shape {scores.shape}; expected {shape}")
    if np.isnan(scores).any():
        raise ValueError(f"{name}.score returned NaN scores")
    return scores


def _rank_scores(candidates: np.ndarray, ranking: np.ndarray) -> np.ndarray | None:
    """Scores ``c - rank`` from a base's full ranking (0 for candidates left out), or None for
    an empty ranking (a break)."""
    c = candidates.shape[0]
    ranking = np.asarray(ranking, dtype=np.int64).ravel()
    if ranking.shape[0] == 0:
        return None
    order = np.argsort(candidates, kind="stable")
    idx = order[np.minimum(np.searchsorted(candidates, ranking, sorter=order), c - 1)]
    ranks = np.arange(ranking.shape[0])
    known = candidates[idx] == ranking  # ignore ids that are not candidates
    scores = np.zeros(c)
    # written in reverse so that the first (best) rank of a repeated id wins
    scores[idx[known][::-1]] = (c - ranks[known])[::-1]
    return scores


def _normalize(scores: np.ndarray) -> np.ndarray:
    """Min-max scale to [0, 1] over the finite scores (-inf → 0, +inf → 1); all equal → 0."""
    finite = np.isfinite(scores)
    if not finite.any():
        return np.where(scores > 0, 1.0, 0.0)
    lo, hi = scores[finite].min(), scores[finite].max()
    if hi <= lo:
        return np.where(scores > hi, 1.0, 0.0)
    return np.clip((scores - lo) / (hi - lo), 0.0, 1.0)


def _topic_distribution(x: np.ndarray) -> np.ndarray:
    """Rows of ``x`` clipped at 0 and normalized to sum 1 (uniform where nothing is positive)."""
    x = np.clip(x, 0.0, None)
    total = x.sum(axis=-1, keepdims=True)
    uniform = np.full_like(x, 1.0 / x.shape[-1])
    return np.divide(x, total, out=uniform, where=total > 0)


# ----------------------------------------------------------------------------- wrappers
class _Wrapper(Policy):
    """Shared plumbing: builds ``base_`` in :meth:`reset` and forwards every hook to it."""

    may_end_sessions: ClassVar[bool] = False

    def __init__(self, **params: Any):
        super().__init__(**params)
        # derived from the parameters (no learned state): a wrapper inherits its base's needs
        self.online = self._flag(self.params, "online")
        self.may_end_sessions = self._flag(self.params, "may_end_sessions")

    @classmethod
    def _flag(cls, params: BaseModel, flag: str) -> bool:
        return _spec_flag(params.base, flag)

    def reset(self, context: PolicyContext) -> None:
        """Build a fresh base policy (``base_``) and reset it."""
        self.base_: Policy = build_policy(self.params.base)
        self.base_.reset(context)

    def fit(self, feedback: Feedback, now: float) -> None:
        """Forwarded to the base policy (which may mutate its learned state)."""
        self.base_.fit(feedback, now)

    def learned(self) -> dict[str, float]:
        """Forwarded to the base policy (the wrapper itself learns nothing)."""
        return self.base_.learned() if hasattr(self, "base_") else {}

    def update(self, feedback: Feedback) -> None:
        """Forwarded to the base policy (which may mutate its learned state)."""
        self.base_.update(feedback)


_BASE_DOC = "base policy: a type name or {type, params}; oracles are not accepted"


class DiversityParams(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)
    base: BaseSpec = Field(default_factory=_default_base, description=_BASE_DOC)
    trade_off: float = Field(
        0.7, ge=0.0, le=1.0,
        description="λ: weight of relevance; 1 - λ is the weight of novelty (1 = the base ranking)",
    )


class DiversityPolicy(_Wrapper):
    """Maximal marginal relevance (Carbonell & Goldstein, 1998) over a base policy's scores.

    The slate is built greedily, each time adding the candidate maximizing
    ``λ·s_i − (1 − λ)·max_{j in slate} cos(x_i, x_j)``, where ``s`` are the base scores
    min-max scaled to [0, 1] over the candidates, ``x`` the observable topic vectors and
    ``λ = trade_off``. ``λ = 1`` serves the base ranking; lower values trade relevance for
    topical variety. A base that is not a :class:`ScoringPolicy` is scored by the rank it gives
    each candidate in a full ranking (see :func:`_base_scores`); if it returns an empty slate,
    so does this policy (the session ends).

    Mutates nothing itself; ``recommend`` passes ``rng`` to the base. Cost per request:
    ``k`` passes over the ``(c, K)`` topic matrix.
    """

    Params = DiversityParams

    def recommend(self, request: Request, rng: np.random.Generator) -> np.ndarray:
        scores = _base_scores(self.base_, request, rng)
        return self._slate(request.candidates, scores, request.slate_size, lambda: request.features.topics)

    def recommend_batch(self, batch: RequestBatch, rngs: RequestRngs) -> list[np.ndarray]:
        """The base's scores of the whole batch at once (its batch methods), then the greedy
        selection row by row — row ``i`` exactly ``recommend(batch.request(i), rngs[i])``."""
        if not uses_own(self, DiversityPolicy, "recommend", "_slate"):
            return super().recommend_batch(batch, rngs)
        topics, candidates = batch.items.topics, batch.candidates
        return [
            self._slate(candidates[i], scores, batch.slate_size, lambda i=i: topics.take(candidates[i], axis=0))
            for i, scores in enumerate(_base_scores_batch(self.base_, batch, rngs))
        ]

    def _slate(self, candidates: np.ndarray, scores: np.ndarray | None, slate_size: int, topics_of) -> np.ndarray:
        """The MMR slate from the base ``scores`` (None: a break); ``topics_of()`` gives the
        candidates' observable topics."""
        if scores is None:
            return _EMPTY_SLATE
        k = min(slate_size, candidates.shape[0])
        lam = self.params.trade_off
        if lam >= 1.0:
            return top_k(candidates, scores, k)
        relevance = lam * _normalize(scores)
        topics = unit_rows(np.asarray(topics_of(), dtype=float))
        max_similarity = np.full(candidates.shape[0], -np.inf)
        chosen = np.empty(k, dtype=np.int64)
        gain = relevance.copy()  # the first pick has no slate to be similar to
        for j in range(k):
            i = int(np.argmax(gain))
            chosen[j] = i
            np.maximum(max_similarity, topics @ topics[i], out=max_similarity)
            gain = relevance - (1.0 - lam) * max_similarity
            gain[chosen[: j + 1]] = -np.inf
        return candidates[chosen]


class CalibratedParams(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)
    base: BaseSpec = Field(default_factory=_default_base, description=_BASE_DOC)
    trade_off: float = Field(
        0.5, ge=0.0, le=1.0,
        description="λ: weight of calibration (KL); 1 - λ weights relevance (0 = the base ranking)",
    )


class CalibratedPolicy(_Wrapper):
    """Calibrated recommendations (Steck, RecSys 2018): the slate's topic mix matches the
    user's historical one.

    The slate ``I`` is built greedily, maximizing ``(1 − λ)·Σ_{i in I} s_i − λ·KL(p ‖ q̃(I))``
    with ``λ = trade_off``, ``s`` the base scores min-max scaled to [0, 1] over the candidates
    (so ``λ`` means the same for any base), ``p`` the user's topic distribution
    (``history.topic_mix`` — watch-time weighted observable topics — clipped at 0 and
    normalized; uniform before the first watch), ``q(I)`` the mean over the slate of each
    item's observable topic vector clipped at 0 and normalized, and
    ``q̃ = (1 − α)·q + α·p`` with ``α = 0.01`` (keeps the KL finite). ``λ = 0`` serves the base
    ranking. Non-scoring bases and empty base slates are handled as in
    :class:`DiversityPolicy`.

    Mutates nothing itself; ``recommend`` passes ``rng`` to the base. Cost per request:
    ``k`` passes over a ``(c, K)`` array of logarithms.
    """

    Params = CalibratedParams

    def recommend(self, request: Request, rng: np.random.Generator) -> np.ndarray:
        scores = _base_scores(self.base_, request, rng)
        return self._slate(
            request.candidates, scores, request.slate_size, lambda: request.history.topic_mix,
            lambda: request.features.topics,
        )

    def recommend_batch(self, batch: RequestBatch, rngs: RequestRngs) -> list[np.ndarray]:
        """The base's scores of the whole batch at once (its batch methods), then the greedy
        selection row by row — row ``i`` exactly ``recommend(batch.request(i), rngs[i])``."""
        if not uses_own(self, CalibratedPolicy, "recommend", "_slate"):
            return super().recommend_batch(batch, rngs)
        topics, candidates = batch.items.topics, batch.candidates
        mix, users = batch.histories.topic_mix, batch.user_ids
        return [
            self._slate(
                candidates[i], scores, batch.slate_size, lambda i=i: mix[users[i]],
                lambda i=i: topics.take(candidates[i], axis=0),
            )
            for i, scores in enumerate(_base_scores_batch(self.base_, batch, rngs))
        ]

    def _slate(
        self, candidates: np.ndarray, scores: np.ndarray | None, slate_size: int, mix_of, topics_of
    ) -> np.ndarray:
        """The calibrated slate from the base ``scores`` (None: a break); ``mix_of()`` gives
        the user's topic mix, ``topics_of()`` the candidates' observable topics."""
        if scores is None:
            return _EMPTY_SLATE
        k = min(slate_size, candidates.shape[0])
        lam = self.params.trade_off
        if lam <= 0.0:
            return top_k(candidates, scores, k)
        relevance = (1.0 - lam) * _normalize(scores)
        p = _topic_distribution(np.asarray(mix_of(), dtype=float))
        q = _topic_distribution(np.asarray(topics_of(), dtype=float))
        support = p > 0  # 0·log 0 = 0: topics the user never watched add nothing to the KL
        p_s, q_s = p[support], q[:, support]
        p_log_p = float(p_s @ np.log(p_s))
        alpha = CALIBRATION_ALPHA
        chosen = np.empty(k, dtype=np.int64)
        slate_sum = np.zeros(p_s.shape[0])
        for j in range(k):
            mix = (1.0 - alpha) * (slate_sum + q_s) / (j + 1) + alpha * p_s
            kl = p_log_p - np.log(mix) @ p_s
            gain = relevance - lam * kl  # Σ s over the slate so far is common to all candidates
            gain[chosen[:j]] = -np.inf
            i = int(np.argmax(gain))
            chosen[j] = i
            slate_sum += q_s[i]
        return candidates[chosen]


class BreakSuggestingParams(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)
    base: BaseSpec = Field(default_factory=_default_base, description=_BASE_DOC)
    budget: Duration = Field(
        1800.0, gt=0.0, description="watch time per session after which a break is suggested"
    )


class BreakSuggestingPolicy(_Wrapper):
    """Serves the base policy's slates until the session's watch time
    (``history.session_watch_seconds``, seconds) reaches ``budget``; from then on it returns an
    empty slate, which ends the session (logged as a ``break`` event).

    The cap is checked when a slate is requested: an item already being watched is not cut
    short, so a session can exceed the budget by at most one item. The base is not consulted
    (and draws nothing from ``rng``) once the budget is reached. Mutates nothing itself.
    """

    Params = BreakSuggestingParams
    may_end_sessions: ClassVar[bool] = True

    @classmethod
    def _flag(cls, params: BaseModel, flag: str) -> bool:
        return True if flag == "may_end_sessions" else super()._flag(params, flag)

    def recommend(self, request: Request, rng: np.random.Generator) -> np.ndarray:
        if request.history.session_watch_seconds >= self.params.budget:
            return _EMPTY_SLATE
        return self.base_.recommend(request, rng)

    def recommend_batch(self, batch: RequestBatch, rngs: RequestRngs) -> list[np.ndarray]:
        """Breaks for the rows over budget; the others served by the base's
        ``recommend_batch`` on those rows (with the same generators)."""
        if not uses_own(self, BreakSuggestingPolicy, "recommend"):
            return super().recommend_batch(batch, rngs)
        watched = batch.histories.session_watch_seconds[batch.user_ids]
        serve = np.flatnonzero(~(watched >= self.params.budget))
        slates: list[np.ndarray] = [_EMPTY_SLATE] * len(batch)
        if serve.shape[0] == len(batch):
            return list(self.base_.recommend_batch(batch, rngs))
        if serve.shape[0]:
            served = self.base_.recommend_batch(batch_rows(batch, serve), rngs_rows(rngs, serve))
            for i, slate in zip(serve.tolist(), served):
                slates[i] = slate
        return slates


class EpsilonGreedyParams(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)
    base: BaseSpec = Field(default_factory=_default_base, description=_BASE_DOC)
    epsilon: float = Field(0.1, ge=0.0, le=1.0, description="probability that a slot explores")


class EpsilonGreedyPolicy(_Wrapper):
    """Exploration around any base policy: each slot of the base slate independently, with
    probability ``epsilon``, holds a candidate drawn uniformly from those not already in the
    slate; the other slots take the base slate's items in order (skipping any already placed).

    The slate has the base slate's length; an empty base slate (a break) is returned as is.
    ``epsilon = 0`` serves the base slate, ``epsilon = 1`` a uniformly random one. Draws from
    ``rng`` after the base does (one uniform per slot, plus the exploring picks). Mutates
    nothing itself.
    """

    Params = EpsilonGreedyParams

    def recommend(self, request: Request, rng: np.random.Generator) -> np.ndarray:
        slate = np.asarray(self.base_.recommend(request, rng), dtype=np.int64).ravel()
        return self._explore(slate, request.candidates, rng)

    def recommend_batch(self, batch: RequestBatch, rngs: RequestRngs) -> list[np.ndarray]:
        """The base's slates of the whole batch at once (its batch method), then the
        exploration row by row — row ``i`` exactly ``recommend(batch.request(i), rngs[i])``.
        Only for a base that draws nothing (:func:`~recsim.policies.base.draws_nothing`: the
        exploration's draws then start each row's stream, as they do after such a base's
        ``recommend``); another base is served row by row."""
        if not uses_own(self, EpsilonGreedyPolicy, "recommend", "_explore") or not draws_nothing(self.base_):
            return super().recommend_batch(batch, rngs)
        slates = self.base_.recommend_batch(batch, rngs)
        return [self._explore(np.asarray(slate, dtype=np.int64).ravel(), batch.candidates[i], rngs[i])
                for i, slate in enumerate(slates)]

    def _explore(self, slate: np.ndarray, candidates: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """``slate`` with each slot exploring with probability ``epsilon`` (class docstring)."""
        n = slate.shape[0]
        epsilon = self.params.epsilon
        if n == 0 or epsilon <= 0.0:
            return slate
        explore = rng.random(n) < epsilon
        if not explore.any():
            return slate
        c = candidates.shape[0]
        base_items = slate.tolist()
        out: list[int] = []
        used: set[int] = set()
        nxt = 0
        for j in range(n):
            if not explore[j]:
                while nxt < n and base_items[nxt] in used:
                    nxt += 1
            if explore[j] or nxt == n:
                if len(used) >= c:
                    break
                while True:  # rejection: uniform over the candidates not yet placed
                    item = int(candidates[rng.integers(c)])
                    if item not in used:
                        break
            else:
                item = base_items[nxt]
                nxt += 1
            out.append(item)
            used.add(item)
        return np.asarray(out, dtype=np.int64)
