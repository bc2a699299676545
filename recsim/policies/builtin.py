"""Built-in policies of this release: baselines and oracles (README "Policies")."""

from __future__ import annotations

from typing import Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from ..config import Duration
from .base import (
    Feedback,
    Policy,
    PolicyContext,
    Request,
    RequestBatch,
    RequestRngs,
    row_blocks,
    top_k,
    top_k_rows,
    uses_own,
)

__all__ = [
    "RandomPolicy",
    "ChronologicalPolicy",
    "PopularityPolicy",
    "EngagementOracle",
    "WellbeingOracle",
    "ClickValueOracle",
    "AttributeOracle",
]


class RandomPolicy(Policy):
    """A uniformly random slate from the candidates."""

    def recommend(self, request: Request, rng: np.random.Generator) -> np.ndarray:
        n = request.candidates.shape[0]
        k = min(request.slate_size, n)
        return request.candidates[rng.choice(n, size=k, replace=False)]


class ChronologicalPolicy(Policy):
    """The newest candidates first (a reverse-chronological feed)."""

    draws_nothing = True

    def recommend(self, request: Request, rng: np.random.Generator) -> np.ndarray:
        return top_k(request.candidates, request.features.upload_time, request.slate_size)

    def recommend_batch(self, batch: RequestBatch, rngs: RequestRngs) -> np.ndarray | list[np.ndarray]:
        if not uses_own(self, ChronologicalPolicy, "recommend"):
            return super().recommend_batch(batch, rngs)
        return top_k_rows(batch.candidates, batch.features.upload_time, batch.slate_size)


class PopularityParams(BaseModel):
    model_config = ConfigDict(extra="forbid")
    half_life: Duration = Field(86400.0, description="half-life of the watch-time counts")


class PopularityPolicy(Policy):
    """Candidates with the most recent watch time (exponentially decayed counts), refreshed on
    the retrain schedule — a "trending" feed that learns from the logs with a delay.

    Ties (e.g. items never watched) go to the candidate drawn first: candidates arrive in
    random order, so this is a random tie break that draws nothing from ``rng``."""

    draws_nothing = True

    Params = PopularityParams

    def reset(self, context: PolicyContext) -> None:
        self.scores_: dict[int, float] = {}
        self.fitted_at_ = 0.0

    def fit(self, feedback: Feedback, now: float) -> None:
        decay = 0.5 ** ((now - self.fitted_at_) / self.params.half_life)
        scores = {item: s * decay for item, s in self.scores_.items() if s * decay > 1e-6}
        weights = feedback.watch_time * 0.5 ** ((now - feedback.time) / self.params.half_life)
        items, inverse = np.unique(feedback.item_id, return_inverse=True)
        totals = np.bincount(inverse, weights=weights, minlength=items.shape[0])
        for item, total in zip(items.tolist(), totals.tolist()):
            if total > 0:
                scores[item] = scores.get(item, 0.0) + total
        self.scores_ = scores
        self.fitted_at_ = now

    def recommend(self, request: Request, rng: np.random.Generator) -> np.ndarray:
        return top_k(request.candidates, self._lookup(request.candidates), request.slate_size)

    def recommend_batch(self, batch: RequestBatch, rngs: RequestRngs) -> np.ndarray | list[np.ndarray]:
        if not uses_own(self, PopularityPolicy, "recommend"):
            return super().recommend_batch(batch, rngs)
        return top_k_rows(batch.candidates, self._lookup(batch.candidates), batch.slate_size)

    def _lookup(self, candidates: np.ndarray) -> np.ndarray:
        """``scores_.get(item, 0.0)`` of every id in ``candidates`` (any shape), vectorized
        through a dense table of ``scores_`` by item id (rebuilt when a fit replaces it)."""
        table = getattr(self, "table_", None)
        if table is None or table[0] is not self.scores_:
            ids = np.fromiter(self.scores_.keys(), np.int64, len(self.scores_))
            dense = np.zeros(int(ids.max()) + 2 if ids.shape[0] else 1)  # the last entry: 0
            dense[ids] = np.fromiter(self.scores_.values(), float, len(self.scores_))
            table = self.table_ = (self.scores_, dense)
        dense = table[1]
        return dense.take(np.minimum(candidates, dense.shape[0] - 1))


class EngagementOracle(Policy):
    """Oracle: ranks by true expected watch time per impression, P(click)·E[τ | click]
    (myopic) — the perfect optimizer of the proxy. Reads hidden state; an upper bound only.

    P(click) is the user model's choice model on the item alone in position 1, E[τ | click]
    its response model's expectation: the same components the simulated users run.
    ``recommend_batch`` scores a whole batch at once, row for row the same scores."""

    draws_nothing = True

    oracle = True

    @staticmethod
    def _scores(view) -> np.ndarray:
        return view.click_probability * view.expected_watch_time

    def recommend(self, request: Request, rng: np.random.Generator) -> np.ndarray:
        return top_k(request.candidates, self._scores(request.oracle), request.slate_size)

    def recommend_batch(self, batch: RequestBatch, rngs: RequestRngs) -> np.ndarray | list[np.ndarray]:
        if not uses_own(self, EngagementOracle, "recommend"):  # recommend overridden: row by row
            return super().recommend_batch(batch, rngs)
        return top_k_rows(batch.candidates, _block_scores(batch, self._scores), batch.slate_size)


class WellbeingParams(BaseModel):
    model_config = ConfigDict(extra="forbid")
    suggest_breaks: bool = Field(
        True, description="serve an empty slate (a break) when no candidate has positive expected value")


class WellbeingOracle(EngagementOracle):
    """Oracle: ranks by the true expected value of watching an item, E[V | click] — what an
    item would do for the user, without rewarding what makes it clicked (allure) — and, with
    ``suggest_breaks``, ends the session (an empty slate) when no candidate has positive
    expected value. Reads hidden state. A myopic bound: the best per-impression value a
    ranker could serve, not the best long-run wellbeing (it ignores what today's slates do to
    tomorrow's appetite and returns).

    ``recommend_batch`` scores a whole batch at once, row for row the same slates."""

    draws_nothing = True

    Params = WellbeingParams
    may_end_sessions = True

    @staticmethod
    def _scores(view) -> np.ndarray:
        return view.expected_value

    def recommend(self, request: Request, rng: np.random.Generator) -> np.ndarray:
        scores = self._scores(request.oracle)
        if self.params.suggest_breaks and not (scores > 0).any():
            return request.candidates[:0]
        return top_k(request.candidates, scores, request.slate_size)

    def recommend_batch(self, batch: RequestBatch, rngs: RequestRngs) -> np.ndarray | list[np.ndarray]:
        if not uses_own(self, WellbeingOracle, "recommend"):
            return Policy.recommend_batch(self, batch, rngs)
        scores = _block_scores(batch, self._scores)
        slates = top_k_rows(batch.candidates, scores, batch.slate_size)
        if not self.params.suggest_breaks:
            return slates
        nothing_good = ~(scores > 0).any(axis=1)
        if not nothing_good.any():
            return slates
        return [slate[:0] if stop else slate for slate, stop in zip(slates, nothing_good.tolist())]


class ClickValueOracle(EngagementOracle):
    """Oracle: ranks by the true expected value per impression, P(click)·E[V | click]. Reads
    hidden state. P(click) rewards allure, which peaks at content just past the user's
    appetite, so this ranker drifts users toward extreme content too: it is not a wellbeing
    bound (``wellbeing_oracle`` is), but shows what weighting value by clicks does.

    ``recommend_batch`` scores a whole batch at once, row for row the same scores."""

    draws_nothing = True

    @staticmethod
    def _scores(view) -> np.ndarray:
        return view.click_probability * view.expected_value


class AttributeOracleParams(BaseModel):
    model_config = ConfigDict(extra="forbid")
    attribute: Literal["clickbait", "extremeness", "quality"] = Field(
        "clickbait", description="the true item attribute to rank by")
    order: Literal["descending", "ascending"] = Field("descending", description="highest or lowest first")


class AttributeOracle(Policy):
    """Oracle: ranks candidates by a true (hidden) item attribute — clickbait, extremeness or
    quality — highest (or lowest) first, ties to the candidate drawn first. A controlled
    exposure for experiments and audits (e.g. RecSim's always-clickbait "choc" and
    always-nutritious "kale" feeds); reads hidden item attributes, so it is an oracle."""

    draws_nothing = True

    Params = AttributeOracleParams
    oracle = True

    def _scores(self, attribute: np.ndarray) -> np.ndarray:
        return attribute if self.params.order == "descending" else -attribute

    def recommend(self, request: Request, rng: np.random.Generator) -> np.ndarray:
        values = getattr(request.oracle.items, self.params.attribute)[0]
        return top_k(request.candidates, self._scores(values), request.slate_size)

    def recommend_batch(self, batch: RequestBatch, rngs: RequestRngs) -> np.ndarray | list[np.ndarray]:
        if not uses_own(self, AttributeOracle, "recommend"):
            return super().recommend_batch(batch, rngs)
        values = getattr(batch.oracle.block(slice(None)).items, self.params.attribute)
        return top_k_rows(batch.candidates, self._scores(values), batch.slate_size)


def _block_scores(batch: RequestBatch, score) -> np.ndarray:
    """``score(view)`` of every row of ``batch``, computed on blocks of rows at once (each an
    :class:`~recsim.oracle.OracleView` of ``(rows, c)`` quantities, row for row those of
    ``batch.oracle.view(i)``; as many rows as :func:`recsim.oracle.block_elements` says)."""
    from ..oracle import block_elements

    o = batch.oracle
    if o is None:
        raise ValueError("an oracle policy needs batch.oracle (the hidden state of every row)")
    scores = np.empty(batch.candidates.shape)
    for rows in row_blocks(len(batch), o.candidates.shape[1], block_elements(o.model)):
        scores[rows] = score(o.block(rows))
    return scores
