"""The world of one replication: catalog, user model and the users' initial state, streams.

Everything here depends only on (scenario, replication), never on the policy, so every policy
of a replication meets the same users, items and per-user noise (common random numbers).
"""

from __future__ import annotations

from dataclasses import dataclass

from . import rng as rngmod
from .catalog import Catalog, generate_catalog, make_topic_centers
from .config import Scenario
from .users.model import UserModel, build_user_model
from .users.state import UserState

__all__ = ["World", "build_world"]


@dataclass
class World:
    scenario: Scenario
    replication: int
    catalog: Catalog
    model: UserModel
    state: UserState  # every user's hidden state (mutated by a run: use a fresh world per run)
    user_stream_keys: dict[str, int]  # counter-based per-user streams: name -> stream key

    @property
    def start(self) -> float:
        """Simulated time at which the warm-up starts (the horizon starts at 0)."""
        return -self.scenario.warmup

    @property
    def end(self) -> float:
        return self.scenario.horizon

    @property
    def n_users(self) -> int:
        return self.state.n_users


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
    model = build_user_model(scenario)
    state = model.initial_state(
        scenario.population.n_users, centers, rngmod.generator(seed, replication, "population"), start
    )
    streams = dict.fromkeys([*rngmod.USER_STREAMS, *model.streams])
    keys = {name: rngmod.stream_key(seed, replication, f"user:{name}") for name in streams}
    return World(scenario, replication, catalog, model, state, keys)
