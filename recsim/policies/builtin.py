"""Built-in policies of this release: baselines and oracles (README "Policies")."""

from __future__ import annotations

from typing import Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from .. import kernels
from ..config import Duration
from ..users import formulas
from ..users.default import Allure, LogitChoice, LogNormalWatch, _catalog_ids, _floats
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
        if request.candidates.ndim == 1 and self._fused():
            slate = _engagement_top_k(request.oracle, request.candidates.reshape(1, -1), request.slate_size)
            if slate is not None:
                return slate[0]
        return top_k(request.candidates, self._scores(request.oracle), request.slate_size)

    def recommend_batch(self, batch: RequestBatch, rngs: RequestRngs) -> np.ndarray | list[np.ndarray]:
        if not uses_own(self, EngagementOracle, "recommend"):  # recommend overridden: row by row
            return super().recommend_batch(batch, rngs)
        if self._fused() and batch.oracle is not None:
            slates = _engagement_top_k(batch.oracle.block(slice(None)), batch.candidates, batch.slate_size)
            if slates is not None:
                return slates
        return top_k_rows(batch.candidates, _block_scores(batch, self._scores), batch.slate_size)

    def _fused(self) -> bool:
        """Whether slates may come from the fused kernel: this class's scores, not a
        subclass's or one set on the instance."""
        return self._scores is EngagementOracle._scores


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


def _engagement_top_k(view, candidates: np.ndarray, k: int) -> np.ndarray | None:
    """``top_k_rows(candidates, view.click_probability * view.expected_watch_time, k)``
    (:class:`EngagementOracle`'s slates) of rows ``(B, c)`` whose :class:`~recsim.oracle.OracleView`
    is ``view``, through one compiled kernel that skips the scores that cannot make a slate
    (:func:`recsim.kernels.model.engagement_top_k_rows`; the rows it leaves, NaN scores
    inside the top k, by the NumPy code). None — compute the scores — unless the kernels
    are on and the user model's allure, choice and watch time are the default components
    themselves (not subclasses, not plug-ins) with their formulas as defined, and the arrays
    are those the kernel reads; or if ``k < 1`` or an id is outside the catalog."""
    model = view.model
    if k < 1 or not kernels.enabled() or not formulas.as_defined(*_ENGAGEMENT_FORMULAS):
        return None
    params = _engagement_params(model.allure, model.choice, model.response)
    if params is None:
        return None
    ids = _catalog_ids(view.items, ())
    if ids is None or ids.shape != candidates.shape or ids.shape[1] == 0:
        return None
    B, c = ids.shape
    catalog = view.catalog
    state = view.state
    theta, appetite, wellbeing, fatigue = state["theta"], state["appetite"], state["wellbeing"], state["fatigue"]
    if not _floats(catalog.topics, 2):
        return None
    n_items, K = catalog.topics.shape
    item_arrays = (catalog.extremeness, catalog.clickbait, catalog.length, catalog.log_length)
    if not (all(_floats(a, 1) and a.shape[0] == n_items for a in item_arrays)
            and _floats(theta, 2) and theta.shape == (B, K)
            and all(_floats(a, 1) and a.shape[0] == B for a in (appetite, wellbeing, fatigue))):
        return None  # (the kernel checks no shapes: what it is given must fit)
    from ..kernels.model import engagement_top_k_rows

    out = np.empty((B, min(k, c)), dtype=ids.dtype)
    left, scored = np.zeros(B, dtype=bool), np.empty(B, dtype=np.int64)
    if not engagement_top_k_rows(theta, appetite, wellbeing, fatigue, catalog.topics, *item_arrays, ids, *params,
                                 out, left, scored):
        return None
    if left.any():
        rows = np.flatnonzero(left)
        out[rows] = top_k_rows(ids[rows], EngagementOracle._scores(view.rows(rows)), k)
    return out


#: the formulas the fused kernel stands for (:func:`recsim.users.formulas.as_defined`)
_ENGAGEMENT_FORMULAS = ("relevance", "grip", "allure", "position_term", "outside_utility", "logit_probabilities",
                        "watch_log_mean", "capped_lognormal_mean", "expected_watch_time")


def _engagement_params(allure, choice, response) -> tuple[float, ...] | None:
    """The fused kernel's parameters — the allure's (w_r, w_e, w_c, δ, ω), the choice's (ℓ₁,
    the position term of position 1; u₀, φ_F, β) and the watch time's (μ, α_A, α_W, σ) — as
    the components hold them now (parameters may be set in place), if the three components
    are the default ones themselves and σ ≥ 0; else None."""
    if type(allure) is not Allure or type(choice) is not LogitChoice or type(response) is not LogNormalWatch:
        return None
    a, ch, w = allure.params, choice.params, response.params
    if not w.sigma >= 0.0:  # the bound is the log-normal's
        return None
    return (float(a.w_r), float(a.w_e), float(a.w_c), float(a.delta), float(a.omega),
            float(formulas.position_term(1, ch.position_exponent)[0]), float(ch.u0), float(ch.phi_f),
            float(ch.beta), float(w.mu), float(w.alpha_a), float(w.alpha_w), float(w.sigma))


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
