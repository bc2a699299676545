"""Sweeps: a grid over dotted parameter paths, every point × policy × replication one task.

Every grid point keeps the base scenario's seed, so the same users, items and per-user random
numbers are reused across the grid wherever the swept parameters leave them unchanged.
"""

from __future__ import annotations

import itertools
import json
from concurrent.futures import Executor
from pathlib import Path
from typing import Any, Callable

import pandas as pd

from .config import Scenario, ScenarioError, scenario_from_dict, set_path
from .experiment import assemble, execute, make_tasks, policy_manifest, task_manifest
from .metrics import HEADLINE
from .stats import mean_ci

__all__ = ["GridPoint", "grid_points", "run_sweep"]


class GridPoint:
    """One point of a sweep: its index, the swept values and the full scenario."""

    def __init__(self, index: int, values: dict[str, Any], scenario: Scenario):
        self.index = index
        self.values = values
        self.scenario = scenario


def grid_points(scenario: Scenario, source: str = "<scenario>") -> list[GridPoint]:
    """Expand the scenario's ``sweep`` into validated grid points (a ScenarioError names the
    swept path and value that made a point invalid)."""
    if not scenario.sweep:
        raise ScenarioError(source, [("sweep", "this scenario has no sweep section")])
    base = scenario.dump()
    base.pop("sweep")
    paths = list(scenario.sweep)
    points = []
    for index, combo in enumerate(itertools.product(*scenario.sweep.values())):
        data = json.loads(json.dumps(base))
        values = dict(zip(paths, combo))
        for path, value in values.items():
            set_path(data, path, value, source)
        try:
            point = scenario_from_dict(data, source)
        except ScenarioError as exc:
            setting = ", ".join(f"{p}={v!r}" for p, v in values.items())
            raise ScenarioError(
                source, [(f"sweep ({setting}): {path}", message) for path, message in exc.problems]
            ) from None
        points.append(GridPoint(index, values, point))
    return points


def point_dir(root: Path, index: int) -> Path:
    return root / "points" / f"point={index}"


def run_sweep(
    scenario: Scenario,
    out: Path | None = None,
    *,
    overwrite: bool = False,
    resume: bool = False,
    workers: int | None = None,
    executor: Executor | None = None,
    scheduler: str | None = None,
    on_progress: Callable[[str, float], None] | None = None,
    command: list[str] | None = None,
    source: str = "<scenario>",
) -> Path:
    """Run every grid point × policy × replication and write one sweep folder:
    ``grid.csv``, ``points/point=<i>/`` (each point's tables), ``results.csv`` (tidy: point ×
    policy × replication × metric, with the swept values as columns) and ``summary.csv``
    (mean and 95% CI per point × policy × metric). Returns the folder's path."""
    from .storage import RunFolder, default_run_dir

    points = grid_points(scenario, source)
    path = Path(out) if out is not None else default_run_dir(f"{scenario.name}-sweep")
    with RunFolder(path, scenario.dump(), overwrite=overwrite, resume=resume, command=command) as folder:
        grid = pd.DataFrame([{"point": p.index, **p.values} for p in points])
        grid.to_csv(folder.work / "grid.csv", index=False)
        tasks = [t for p in points for t in make_tasks(p.scenario, point_dir(folder.work, p.index), p.index)]
        folder.manifest.update(grid_points=len(points), sweep=scenario.sweep)
        results = execute(tasks, scenario, folder.manifest, workers, executor, scheduler, on_progress, resume)
        frames = []
        for p in points:
            mine = [r for r in results if r.point == p.index]
            tables = assemble(p.scenario, point_dir(folder.work, p.index), mine)
            reps = tables["replications"].melt(
                id_vars=["policy", "type", "oracle", "replication"], var_name="metric", value_name="value"
            )
            reps.insert(0, "point", p.index)
            for column, value in p.values.items():
                reps[column] = value if not isinstance(value, (list, dict)) else json.dumps(value)
            frames.append(reps)
        results_table = pd.concat(frames, ignore_index=True)
        results_table.to_csv(folder.work / "results.csv", index=False)
        _summarize_grid(results_table, list(scenario.sweep), [spec.name for spec in scenario.policies]).to_csv(
            folder.work / "summary.csv", index=False)
        folder.manifest["policies"] = policy_manifest(scenario)
        folder.manifest["tasks"] = task_manifest(results)
    return path


def _summarize_grid(results: pd.DataFrame, params: list[str], policies: list[str]) -> pd.DataFrame:
    """Mean and 95% t interval over replications per point × policy × metric; rows by point,
    then policy in the scenario's order, then metric in the headline order."""
    rows = []
    keys = ["point", *params, "policy", "oracle", "metric"]
    for key, group in results.groupby(keys, sort=False, dropna=False):
        mean, low, high = mean_ci(group["value"].to_numpy(dtype=float))
        rows.append({**dict(zip(keys, key)), "mean": mean, "ci_low": low, "ci_high": high,
                     "n_replications": len(group)})
    order = {"metric": {m: i for i, m in enumerate(HEADLINE)}, "policy": {p: i for i, p in enumerate(policies)}}
    out = pd.DataFrame(rows)
    return out.sort_values(["point", "policy", "metric"], key=lambda s: s.map(order[s.name]) if s.name in order else s,
                           kind="stable")
