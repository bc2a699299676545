"""The world of one replication: catalog, population and random streams.

Everything here depends only on (scenario, replication), never on the policy, so every policy
of a replication meets the same users, items and per-user noise (common random numbers).
"""

from __future__ import annotations

from dataclasses import dataclass

from . import rng as rngmod
from .catalog import Catalog, generate_catalog, make_topic_centers
from .config import Scenario
from .users.population import Population, generate_population

__all__ = ["World", "build_world"]


@dataclass
class World:
    scenario: Scenario
    replication: int
    catalog: Catalog
    population: Population
    user_stream_keys: dict[str, int]  # counter-based per-user streams

    @property
    def start(self) -> float:
        """Simulated time at which the warm-up starts (the horizon starts at 0)."""
        return -self.scenario.warmup

    @property
    def end(self) -> float:
        return self.scenario.horizon


def build_world(scenario: Scenario, replication: int) -> World:
    seed = scenario.seed
    centers = make_topic_centers(scenario.catalog, rngmod.generator(seed, replication, "topics"))
    start, end = -scenario.warmup, scenario.horizon
    catalog = generate_catalog(
        scenario.catalog,
        centers,
        start,
        end,
        rngmod.generator(seed, replication, "catalog"),
        rngmod.generator(seed, replication, "uploads"),
    )
    population = generate_population(
        scenario, centers, rngmod.generator(seed, replication, "population")
    )
    keys = {name: rngmod.stream_key(seed, replication, f"user:{name}") for name in rngmod.USER_STREAMS}
    return World(scenario, replication, catalog, population, keys)
