"""The hidden truth as seen by oracle policies (upper bounds only, never by learned ones)."""

from __future__ import annotations

from functools import cached_property

import numpy as np

from .catalog import Catalog
from .config import BehaviourConfig
from .policies.base import gather_dot
from .users import model

__all__ = ["OracleView"]


class OracleView:
    """True per-candidate quantities for one user at one moment; arrays of shape ``(c,)``.

    ``theta`` (K,), ``appetite``, ``fatigue`` (hours) and ``wellbeing`` are the user's current
    hidden state. Quantities are computed on first access.

    The same view serves a block of rows of a batch (oracle policies' ``recommend_batch``):
    ``candidates`` ``(B, c)``, ``theta`` ``(B, K)`` and the scalars as ``(B, 1)`` arrays give
    ``(B, c)`` quantities, row ``i`` bit for bit those of row ``i``'s own view — every step is
    elementwise, and the relevance a term-by-term sum without BLAS (see
    :func:`recsim.policies.base.gather_dot`).
    """

    def __init__(
        self,
        catalog: Catalog,
        candidates: np.ndarray,
        theta: np.ndarray,
        appetite: float,
        fatigue: float,
        wellbeing: float,
        behaviour: BehaviourConfig,
    ):
        self.catalog = catalog
        self.candidates = candidates
        self.theta = theta
        self.appetite = appetite
        self.fatigue = fatigue
        self.wellbeing = wellbeing
        self.behaviour = behaviour

    @cached_property
    def relevance(self) -> np.ndarray:
        return gather_dot(self.catalog.topics, self.candidates, self.theta)

    @cached_property
    def allure(self) -> np.ndarray:
        c = self.catalog
        idx = self.candidates
        return model.allure(
            self.relevance, c.extremeness[idx], c.clickbait[idx], self.appetite, self.behaviour.allure
        )

    @cached_property
    def click_probability(self) -> np.ndarray:
        """P(click) if shown alone at position 1."""
        return model.click_probability_alone(self.allure, self.fatigue, self.behaviour.choice)

    @cached_property
    def expected_watch_time(self) -> np.ndarray:
        """E[τ | click] in seconds."""
        length = self.catalog.length[self.candidates]
        return model.expected_watch_time(length, self.allure, self.wellbeing, self.behaviour.watch)

    @cached_property
    def expected_value(self) -> np.ndarray:
        """E[V | click] (value depends on watch time through its cost per minute)."""
        c = self.catalog
        idx = self.candidates
        return model.value(
            self.relevance, c.quality[idx], c.extremeness[idx], self.expected_watch_time,
            self.behaviour.value,
        )
