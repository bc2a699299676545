"""Small policies used by the validation scenarios (``scenarios/validation/``), named there as
``"recsim.validation._policies:ClassName"``.

* :class:`InterestGreedy` — greedy on interest: ranks candidates by their observable relevance
  to the user's profile, x̃·p̂ (x̃ the candidate's observable topic vector, p̂ the user's
  ``history.topic_profile``: the watch-time-weighted sum of the observable topics of what the
  user watched, scaled to unit norm). Sees only what a platform observes (not an oracle).
* :class:`QualityAtEqualInterest` — the same interest score, and among candidates of *equal*
  interest the one of higher true quality first. It reads the items' true quality (hidden), so
  it is an **oracle** (``oracle = True``: flagged in every output), like the policy with
  knowledge of cluster quality that RecSim's interest-evolution experiment compared with a
  myopic one (Ie et al. 2019). With the validation scenario's noiseless topics
  (``catalog.item_noise: 0``, ``catalog.topic_noise: 0``) every item of a topic cluster has
  the same topic vector, so "equal interest" means "same cluster", bit for bit.

Both serve the top ``slate_size`` candidates; remaining ties go to the candidate drawn first
(candidates arrive in random order). ``recommend_batch`` gives row for row the slates of
``recommend`` (the dot products are summed term by term, :mod:`recsim.arrays`).
"""

from __future__ import annotations

import numpy as np

from ..arrays import dot_last, gather_dot, vector_norm
from ..policies.base import Request, RequestBatch, RequestRngs, ScoringPolicy, uses_own

__all__ = ["InterestGreedy", "QualityAtEqualInterest"]


def _profiles(topic_mix: np.ndarray) -> np.ndarray:
    """Users' topic profiles p̂ = mix/‖mix‖ (zeros before the first watch), ``(..., K)``."""
    norm = vector_norm(topic_mix)
    return topic_mix / np.where(norm > 0, norm, 1.0)[..., None]


class InterestGreedy(ScoringPolicy):
    """Greedy on interest: score = x̃·p̂, the candidate's observable topics dotted with the
    user's observable topic profile (see the module docstring). Before the user's first watch
    every score is 0 and the slate is the first candidates drawn (a random slate)."""

    def score(self, request: Request, rng: np.random.Generator) -> np.ndarray:
        profile = _profiles(np.asarray(request.history.topic_mix, dtype=float))
        return dot_last(request.features.topics, profile)

    def score_batch(self, batch: RequestBatch, rngs: RequestRngs) -> np.ndarray:
        if not uses_own(self, InterestGreedy, "score"):
            return super().score_batch(batch, rngs)
        profiles = _profiles(batch.histories.topic_mix[batch.user_ids])
        return gather_dot(batch.items.topics, batch.candidates, profiles)


class QualityAtEqualInterest(InterestGreedy):
    """Oracle: :class:`InterestGreedy`'s interest score first; among candidates of equal
    interest, higher true quality q first (a lexicographic order). Reads the items' hidden
    quality (``request.oracle.items.quality``), so it is an oracle."""

    oracle = True

    @staticmethod
    def _order(candidates: np.ndarray, interest: np.ndarray, quality: np.ndarray, k: int) -> np.ndarray:
        # rank by interest, then quality: quality only reorders candidates of equal interest
        # (a stable argsort on quality first, then a stable argsort on interest)
        by_quality = np.argsort(-quality, axis=-1, kind="stable")
        interest_q = np.take_along_axis(interest, by_quality, axis=-1)
        order = np.take_along_axis(by_quality, np.argsort(-interest_q, axis=-1, kind="stable"), axis=-1)
        return np.take_along_axis(candidates, order[..., :k], axis=-1)

    def recommend(self, request: Request, rng: np.random.Generator) -> np.ndarray:
        interest = self.score(request, rng)
        k = min(request.slate_size, request.candidates.shape[0])
        return self._order(request.candidates, interest, np.asarray(request.oracle.items.quality).reshape(-1), k)

    def recommend_batch(self, batch: RequestBatch, rngs: RequestRngs) -> np.ndarray | list[np.ndarray]:
        if not uses_own(self, QualityAtEqualInterest, "recommend", "score"):
            return super().recommend_batch(batch, rngs)
        interest = InterestGreedy.score_batch(self, batch, rngs)
        quality = batch.oracle.block(slice(None)).items.quality
        k = min(batch.slate_size, batch.candidates.shape[1])
        return self._order(batch.candidates, interest, np.asarray(quality), k)
