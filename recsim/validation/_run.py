"""Shared plumbing of the validation targets: run a scenario in memory, statistics helpers."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ..config import Scenario, apply_overrides, read_scenario_data, scenario_from_dict
from ..engine.batched import simulate_batched
from ..engine.core import RunResult
from ..eventlog import EventLog
from ..world import World, build_world
from . import SCENARIOS

__all__ = ["scenario", "simulate", "t_interval"]


def scenario(name: str | dict[str, Any], overrides: list[str] | None = None) -> Scenario:
    """The scenario ``scenarios/validation/<name>.yaml`` (or plain data), with ``--set``-style
    ``overrides``. Raises ScenarioError."""
    if isinstance(name, dict):
        data = name
        source = "<validation>"
    else:
        path = SCENARIOS / f"{name}.yaml"
        data, source = read_scenario_data(path), str(path)
    if overrides:
        data = apply_overrides(data, overrides, source)
    return scenario_from_dict(data, source)


def simulate(sc: Scenario, policy: int = 0, replication: int = 0,
             log_impressions: bool | None = None) -> tuple[World, RunResult, pd.DataFrame]:
    """Run policy ``policy`` of ``sc`` on replication ``replication`` with the batched engine,
    in memory: ``(world after the run, result, event log as a DataFrame)``."""
    world = build_world(sc, replication)
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "events.parquet"
        log = EventLog(path, log_impressions=sc.outputs.log_impressions if log_impressions is None else log_impressions)
        result = simulate_batched(world, sc.policies[policy], log)
        events = pd.read_parquet(path) if path.exists() else pd.DataFrame()
    if "event" in events:
        events["event"] = events["event"].astype(str)
    return world, result, events


def t_interval(x: np.ndarray, level: float = 0.95) -> tuple[float, float, float]:
    """``(mean, low, high)``: the Student-t interval of the mean of ``x`` (recsim.stats)."""
    from ..stats import mean_ci

    return mean_ci(np.asarray(x, dtype=float), level)
