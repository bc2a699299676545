"""Built-in policies of this release: baselines and oracles (DESIGN §2.7)."""

from __future__ import annotations

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from ..config import Duration
from ..users import model
from .base import (
    Feedback,
    Policy,
    PolicyContext,
    Request,
    RequestBatch,
    RequestRngs,
    gather_dot,
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
]


class RandomPolicy(Policy):
    """A uniformly random slate from the candidates."""

    def recommend(self, request: Request, rng: np.random.Generator) -> np.ndarray:
        n = request.candidates.shape[0]
        k = min(request.slate_size, n)
        return request.candidates[rng.choice(n, size=k, replace=False)]


class ChronologicalPolicy(Policy):
    """The newest candidates first (a reverse-chronological feed)."""

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

    ``recommend_batch`` scores a whole batch at once, row for row the same scores."""

    oracle = True

    def reset(self, context: PolicyContext) -> None:
        # log L per item, for the hot path below (np.log is elementwise: the same values)
        items = context.items
        self.length_ = None if items is None else items.length
        self.log_length_ = None if items is None else np.log(items.length)

    def recommend(self, request: Request, rng: np.random.Generator) -> np.ndarray:
        view = request.oracle
        scores = self._scores(view) if hasattr(view, "catalog") else (
            view.click_probability * view.expected_watch_time
        )
        return top_k(request.candidates, scores, request.slate_size)

    def recommend_batch(self, batch: RequestBatch, rngs: RequestRngs) -> np.ndarray | list[np.ndarray]:
        if not uses_own(self, EngagementOracle, "recommend", "_scores"):
            return super().recommend_batch(batch, rngs)
        scores = np.empty(batch.candidates.shape)
        for rows, view in _batch_views(batch):
            scores[rows] = self._scores(view)
        return top_k_rows(batch.candidates, scores, batch.slate_size)

    def _scores(self, view) -> np.ndarray:
        """``view.click_probability * view.expected_watch_time`` computed with the same
        operations (so bit-identical), minus the view's caching and repeated item lookups.
        Works on a one-request view (``(c,)``) and on a batch view (``(B, c)``)."""
        cat, idx, b = view.catalog, view.candidates, view.behaviour
        relevance = gather_dot(cat.topics, idx, view.theta)
        allure = model.allure(relevance, cat.extremeness.take(idx), cat.clickbait.take(idx), view.appetite, b.allure)
        click = model.click_probability_alone(allure, view.fatigue, b.choice)
        length = cat.length.take(idx)
        log_length = None
        if getattr(self, "length_", None) is cat.length:
            log_length = self.log_length_.take(idx)
        click *= model.expected_watch_time(length, allure, view.wellbeing, b.watch, log_length)
        return click


class WellbeingOracle(Policy):
    """Oracle: ranks by true expected value per impression, P(click)·E[V | click]. Reads
    hidden state; an upper bound on what a wellbeing-minded ranker could do.

    ``recommend_batch`` scores a whole batch at once, row for row the same scores."""

    oracle = True

    def recommend(self, request: Request, rng: np.random.Generator) -> np.ndarray:
        view = request.oracle
        scores = view.click_probability * view.expected_value
        return top_k(request.candidates, scores, request.slate_size)

    def recommend_batch(self, batch: RequestBatch, rngs: RequestRngs) -> np.ndarray | list[np.ndarray]:
        if not uses_own(self, WellbeingOracle, "recommend"):
            return super().recommend_batch(batch, rngs)
        scores = np.empty(batch.candidates.shape)
        for rows, view in _batch_views(batch):
            scores[rows] = view.click_probability * view.expected_value
        return top_k_rows(batch.candidates, scores, batch.slate_size)


#: Rows of a batch an oracle scores at once: ``(rows, c)`` temporaries of ~256 kB stay in cache.
_ORACLE_BLOCK = 1 << 15


def _batch_views(batch: RequestBatch):
    """``(rows, view)`` for blocks of rows of ``batch``: ``view`` an
    :class:`~recsim.oracle.OracleView` of those rows at once, its ``(rows, c)`` quantities row
    for row bit-identical to those of ``batch.oracle.view(i)``."""
    from ..oracle import OracleView

    o = batch.oracle
    if o is None:
        raise ValueError("an oracle policy needs batch.oracle (the hidden state of every row)")
    appetite, fatigue, wellbeing = (
        np.asarray(x, dtype=float)[:, None] for x in (o.appetite, o.fatigue, o.wellbeing)
    )
    for rows in row_blocks(len(batch), o.candidates.shape[1], _ORACLE_BLOCK):
        yield rows, OracleView(
            o.catalog, o.candidates[rows], o.theta[rows], appetite[rows], fatigue[rows],
            wellbeing[rows], o.behaviour,
        )
