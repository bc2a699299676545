"""The user population: hidden state as a struct of arrays (DESIGN §2.2).

Nothing here is ever handed to a non-oracle policy. Shapes are ``(n_users,)`` unless noted.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import numpy as np

from ..catalog import unit_rows
from ..config import Scenario

__all__ = ["Population", "generate_population", "HIDDEN_STATE"]

#: The hidden-state fields that change during a run (snapshotted as initial/final state).
HIDDEN_STATE = ("theta", "appetite", "satisfaction", "habit", "fatigue")


@dataclass
class Population:
    home_cluster: np.ndarray  # int
    vulnerable: np.ndarray  # bool
    susceptibility: np.ndarray  # s, scales how fast θ and a move
    theta0: np.ndarray  # (n, K) unit norm: natural topic preference
    appetite0: np.ndarray  # a₀ in [0, 1]
    theta: np.ndarray  # (n, K) current topic preference
    appetite: np.ndarray  # a
    satisfaction: np.ndarray  # S (W = sigmoid(κ·S))
    habit: np.ndarray  # ψ
    fatigue: np.ndarray  # F, hours watched in the current session
    state_time: np.ndarray  # when θ, a, S were last brought up to date (s)
    habit_time: np.ndarray  # when ψ was last updated (s)
    churned: np.ndarray  # bool
    in_session: np.ndarray  # bool (engine bookkeeping: state relaxes only between sessions)

    @property
    def n_users(self) -> int:
        return int(self.appetite.shape[0])

    def copy(self) -> "Population":
        return Population(**{f.name: getattr(self, f.name).copy() for f in fields(self)})


def generate_population(
    scenario: Scenario, centers: np.ndarray, rng: np.random.Generator
) -> Population:
    """Draw users around home clusters (DESIGN §2.9 defaults); ``rng`` is the population stream."""
    cfg = scenario.population
    n, k = cfg.n_users, centers.shape[1]
    home = rng.integers(0, centers.shape[0], size=n)
    theta0 = unit_rows(centers[home] + rng.normal(0.0, cfg.home_noise, size=(n, k)))
    a0 = rng.beta(*cfg.appetite, size=n)
    vulnerable = rng.random(n) < cfg.vulnerable_share
    ordinary = np.exp(rng.normal(0.0, cfg.susceptibility_log_sd, size=n))
    susceptibility = np.where(vulnerable, cfg.vulnerable_susceptibility, ordinary)
    zeros = np.zeros(n)
    return Population(
        home_cluster=home,
        vulnerable=vulnerable,
        susceptibility=susceptibility,
        theta0=theta0,
        appetite0=a0,
        theta=theta0.copy(),
        appetite=a0.copy(),
        satisfaction=np.full(n, cfg.initial_satisfaction),
        habit=zeros.copy(),
        fatigue=zeros.copy(),
        state_time=zeros.copy(),
        habit_time=zeros.copy(),
        churned=np.zeros(n, dtype=bool),
        in_session=np.zeros(n, dtype=bool),
    )
