"""Built-in policies of this release: baselines and oracles (DESIGN §2.7)."""

from __future__ import annotations

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from ..config import Duration
from ..users import model
from .base import Feedback, Policy, PolicyContext, Request, top_k

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


class PopularityParams(BaseModel):
    model_config = ConfigDict(extra="forbid")
    half_life: Duration = Field(86400.0, description="half-life of the watch-time counts")


class PopularityPolicy(Policy):
    """Candidates with the most recent watch time (exponentially decayed counts), refreshed on
    the retrain schedule — a "trending" feed that learns from the logs with a delay."""

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
        get = self.scores_.get
        scores = np.fromiter((get(i, 0.0) for i in request.candidates.tolist()), float)
        # ties (e.g. unseen items) are broken at random so the feed is not stuck on low ids
        scores = scores + rng.random(scores.shape[0]) * 1e-9
        return top_k(request.candidates, scores, request.slate_size)


class EngagementOracle(Policy):
    """Oracle: ranks by true expected watch time per impression, P(click)·E[τ | click]
    (myopic) — the perfect optimizer of the proxy. Reads hidden state; an upper bound only."""

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

    def _scores(self, view) -> np.ndarray:
        """``view.click_probability * view.expected_watch_time`` computed with the same
        operations (so bit-identical), minus the view's caching and repeated item lookups."""
        cat, idx, b = view.catalog, view.candidates, view.behaviour
        relevance = cat.topics.take(idx, axis=0) @ view.theta
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
    hidden state; an upper bound on what a wellbeing-minded ranker could do."""

    oracle = True

    def recommend(self, request: Request, rng: np.random.Generator) -> np.ndarray:
        view = request.oracle
        scores = view.click_probability * view.expected_value
        return top_k(request.candidates, scores, request.slate_size)
