"""Simulation engines: the only package that imports SimPy.

Two engines over one model (DESIGN §4): the reference engine (:mod:`.reference`, one SimPy
process per user; it defines the semantics) and the batched engine (:mod:`.batched`, users
advanced together between synchronization points; the same event log, bit for bit).
"""

from __future__ import annotations

import warnings
from typing import Callable

from ..config import PolicySpec
from ..eventlog import EventLog
from ..policies.registry import resolve_policy
from ..world import World
from .batched import OnlinePolicyError, simulate_batched
from .reference import RunResult
from .reference import simulate as simulate_reference

__all__ = ["RunResult", "simulate", "simulate_reference", "simulate_batched", "OnlinePolicyError", "engine_for"]


def engine_for(world: World, spec: PolicySpec) -> str:
    """The engine that runs ``spec``: the scenario's, except that a policy which learns after
    every event (``online = True``) needs the reference engine."""
    engine = world.scenario.engine
    if engine == "batched" and resolve_policy(spec.type).online:
        warnings.warn(
            f"policy {spec.name!r} learns after every event (online = True), which the batched engine "
            "cannot run; running it on the reference engine (set `engine: reference` to silence this)",
            stacklevel=2,
        )
        return "reference"
    return engine


def simulate(
    world: World,
    spec: PolicySpec,
    events: EventLog,
    progress: Callable[[float], None] | None = None,
) -> RunResult:
    """Run one policy on one replication's world with the scenario's engine."""
    if engine_for(world, spec) == "batched":
        return simulate_batched(world, spec, events, progress)
    return simulate_reference(world, spec, events, progress)
