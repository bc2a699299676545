"""Simulation engines: the only package that imports SimPy (in :mod:`.reference`).

Two engines over one model (see ``docs/model.md``): both take the steps of
:mod:`.core`, which call the user model's components; the reference engine (:mod:`.reference`,
one SimPy process per user) takes them one user at a time in time order and defines the
semantics, the batched engine (:mod:`.batched`) takes every due user's step at once between
synchronization points. Same seed, same outputs, bit for bit.
"""

from __future__ import annotations

import warnings
from importlib import import_module
from typing import TYPE_CHECKING, Callable

from ..policies.registry import resolve_policy

if TYPE_CHECKING:
    from ..config import PolicySpec
    from ..eventlog import EventLog
    from ..world import World
    from .core import RunResult

__all__ = [
    "RunResult", "simulate", "simulate_reference", "simulate_batched", "OnlinePolicyError", "SlateError",
    "engine_for",
]

# the engines, imported on first use (PEP 562): a command that simulates nothing (`recsim
# validate`) and reads only recsim.engine.errors does not load them, SciPy and pandas
_EXPORTS = {"OnlinePolicyError": ("batched", "OnlinePolicyError"), "simulate_batched": ("batched", "simulate_batched"),
            "RunResult": ("core", "RunResult"), "SlateError": ("core", "SlateError"),
            "simulate_reference": ("reference", "simulate")}


def __dir__() -> list[str]:
    return sorted({*globals(), *_EXPORTS, *_SUBMODULES})


_SUBMODULES = ("batched", "core", "errors", "reference", "stepped")


def __getattr__(name: str):
    where = _EXPORTS.get(name)
    if where is not None:
        value = getattr(import_module(f".{where[0]}", __name__), where[1])
    elif name in _SUBMODULES:  # recsim.engine.core, ...
        value = import_module(f".{name}", __name__)
    else:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    globals()[name] = value
    return value


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
        from .batched import simulate_batched

        return simulate_batched(world, spec, events, progress)
    from .reference import simulate as simulate_reference

    return simulate_reference(world, spec, events, progress)
