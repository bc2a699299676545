"""The world of one replication: catalog, user model and the users' initial state, streams.

Everything here depends only on (scenario, replication), never on the policy, so every policy
of a replication meets the same users, items and per-user noise (common random numbers).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

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
        """Every user: the modelled ones, then the scripted groups'."""
        return self.state.n_users

    @property
    def n_modelled(self) -> int:
        """Users following the behaviour model: ids ``0 .. n_modelled - 1``."""
        return self.scenario.population.n_users

    @property
    def groups(self) -> list[tuple[str, int, int]]:
        """``(name, first id, end id)`` of each user group: ``modelled``, then each scripted
        group of ``population.scripted`` in order."""
        out = [("modelled", 0, self.n_modelled)]
        lo = self.n_modelled
        for group in self.scenario.population.scripted:
            out.append((group.name, lo, lo + group.n_users))
            lo += group.n_users
        return out

    def group_codes(self) -> np.ndarray:
        """Each user's group index into :attr:`groups`, ``(n_users,)`` int."""
        codes = np.zeros(self.n_users, dtype=np.int64)
        for index, (_, lo, hi) in enumerate(self.groups):
            codes[lo:hi] = index
        return codes


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
    n_scripted = sum(group.n_users for group in scenario.population.scripted)
    if n_scripted:  # from their own stream: the modelled users are the same with or without them
        scripted = model.initial_state(
            n_scripted, centers, rngmod.generator(seed, replication, "population:scripted"), start
        )
        state = state.extend(scripted)
    streams = dict.fromkeys([*rngmod.USER_STREAMS, *model.streams])
    keys = {name: rngmod.stream_key(seed, replication, f"user:{name}") for name in streams}
    return World(scenario, replication, catalog, model, state, keys)
