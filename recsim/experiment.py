"""Experiments: one task per (policy, replication), run on any ``concurrent.futures`` executor.

A task is a small picklable spec; its worker builds the replication's world (identical for
every policy: common random numbers), runs the engine and writes its own partitions into the
run folder. The parent process then assembles the tables and the summary.
"""

from __future__ import annotations

import os
import time
from concurrent.futures import Executor, ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pandas as pd

from .config import Scenario, scenario_from_dict
from .engine import simulate
from .eventlog import EventLog
from .policies.registry import resolve_policy
from .stats import summarize
from .world import build_world

__all__ = ["Task", "TaskResult", "make_tasks", "run_task", "run_tasks", "assemble", "run_experiment"]


@dataclass(frozen=True)
class Task:
    scenario: dict[str, Any]  # the resolved scenario as plain data (picklable, small)
    policy_index: int
    replication: int
    run_dir: str

    @property
    def key(self) -> str:
        return f"{self.scenario['policies'][self.policy_index]['name']}/rep{self.replication}"


@dataclass
class TaskResult:
    policy: str
    replication: int
    headline: dict[str, float]
    retrain_times: list[float]
    n_events: int
    n_decisions: int
    seconds: float


def make_tasks(scenario: Scenario, run_dir: Path) -> list[Task]:
    data = scenario.dump()
    return [
        Task(data, p, r, str(run_dir))
        for r in range(scenario.replications)
        for p in range(len(scenario.policies))
    ]


def partition(run_dir: Path, table: str, policy: str, replication: int) -> Path:
    """Hive-style partition path ``<table>/policy=<name>/replication=<r>/part-0.parquet``."""
    return run_dir / table / f"policy={policy}" / f"replication={replication}" / "part-0.parquet"


def run_task(task: Task, progress: Callable[[float], None] | None = None) -> TaskResult:
    """Run one policy on one replication and write its partitions (events, metrics, users)."""
    started = time.perf_counter()
    scenario = scenario_from_dict(task.scenario, "<task>")
    spec = scenario.policies[task.policy_index]
    oracle = resolve_policy(spec.type).oracle
    run_dir = Path(task.run_dir)
    world = build_world(scenario, task.replication)
    pop = world.population
    static = {
        "user_id": np.arange(pop.n_users),
        "home_cluster": pop.home_cluster,
        "vulnerable": pop.vulnerable,
        "susceptibility": pop.susceptibility,
        "appetite0": pop.appetite0,
    }
    events = EventLog(
        partition(run_dir, "events", spec.name, task.replication),
        chunk_rows=scenario.outputs.events_chunk_rows,
        log_impressions=scenario.outputs.log_impressions,
        oracle=oracle,
    )
    result = simulate(world, spec, events, progress)

    metrics = pd.DataFrame(result.metrics, columns=["metric", "kind", "start", "end", "value"])
    metrics["oracle"] = oracle
    path = partition(run_dir, "metrics", spec.name, task.replication)
    path.parent.mkdir(parents=True, exist_ok=True)
    metrics.to_parquet(path, index=False)

    frames = []
    for stage, state in (("initial", result.initial_state), ("final", result.final_state)):
        frame = pd.DataFrame(static)
        frame["oracle"] = oracle
        frame["stage"] = stage
        for name in ("appetite", "wellbeing", "satisfaction", "habit", "topic_drift"):
            frame[name] = state[name]
        frame["churned"] = False if stage == "initial" else pop.churned
        for name, values in result.user_totals.items():
            frame[name] = 0 if stage == "initial" else values
        frames.append(frame)
    path = partition(run_dir, "users", spec.name, task.replication)
    path.parent.mkdir(parents=True, exist_ok=True)
    pd.concat(frames, ignore_index=True).to_parquet(path, index=False)

    return TaskResult(
        policy=spec.name,
        replication=task.replication,
        headline=result.headline,
        retrain_times=result.retrain_times,
        n_events=result.n_events,
        n_decisions=result.n_decisions,
        seconds=time.perf_counter() - started,
    )


def _run_task_reporting(task: Task, queue: Any) -> TaskResult:
    """Worker entry point: forwards progress through a managed queue."""
    report = None
    if queue is not None:
        report = lambda fraction: queue.put((task.key, fraction))  # noqa: E731
    return run_task(task, report)


def default_workers(scenario: Scenario, n_tasks: int) -> int:
    wanted = scenario.workers or os.cpu_count() or 1
    return max(1, min(wanted, n_tasks))


def run_tasks(
    tasks: list[Task],
    workers: int = 1,
    executor: Executor | None = None,
    on_progress: Callable[[str, float], None] | None = None,
) -> list[TaskResult]:
    """Run tasks inline (``workers == 1``), on a local process pool, or on ``executor``.

    ``on_progress(task_key, fraction)`` is called from this process as tasks advance.
    Results come back in task order, whatever order they finish in.
    """
    if executor is None and workers <= 1:
        results = []
        for task in tasks:
            report = None
            if on_progress is not None:
                report = lambda f, key=task.key: on_progress(key, f)  # noqa: E731
            results.append(run_task(task, report))
        return results

    import multiprocessing
    import queue as queuemod
    from multiprocessing.managers import SyncManager

    manager = None
    progress_queue = None
    if on_progress is not None:
        manager = SyncManager()
        manager.start(_ignore_sigint)
        progress_queue = manager.Queue()
    own = executor is None
    pool = executor or ProcessPoolExecutor(
        max_workers=workers, mp_context=multiprocessing.get_context("spawn"), initializer=_ignore_sigint
    )
    interrupted = False
    try:
        futures = {pool.submit(_run_task_reporting, t, progress_queue): i for i, t in enumerate(tasks)}
        results: list[TaskResult | None] = [None] * len(tasks)
        pending = set(futures)
        while pending:
            done = {f for f in pending if f.done()}
            for future in done:
                results[futures[future]] = future.result()
                pending.discard(future)
            if progress_queue is not None:
                try:
                    while True:
                        key, fraction = progress_queue.get(timeout=0.1)
                        on_progress(key, fraction)
                except queuemod.Empty:
                    pass
            elif pending:
                next(as_completed(pending))
        return results  # type: ignore[return-value]
    except BaseException:
        interrupted = True
        raise
    finally:
        if own:
            processes = list((getattr(pool, "_processes", None) or {}).values())
            pool.shutdown(wait=not interrupted, cancel_futures=True)
            if interrupted:
                # Ctrl-C or a failed task: stop the other tasks now rather than finish them
                for process in processes:
                    process.terminate()
        if manager is not None:
            manager.shutdown()


def _ignore_sigint() -> None:
    """Worker initializer: only the parent handles Ctrl-C (and then stops the workers)."""
    import signal

    signal.signal(signal.SIGINT, signal.SIG_IGN)


def assemble(scenario: Scenario, run_dir: Path, results: list[TaskResult]) -> dict[str, pd.DataFrame]:
    """Write the run-level tables: ``replications.csv`` (one row per policy × replication) and
    ``summary.csv`` (one row per policy: mean and 95% CI over replications)."""
    oracle = {spec.name: resolve_policy(spec.type).oracle for spec in scenario.policies}
    types = {spec.name: spec.type for spec in scenario.policies}
    rows = []
    for res in results:
        row = {"policy": res.policy, "type": types[res.policy], "oracle": oracle[res.policy],
               "replication": res.replication}
        row.update(res.headline)
        rows.append(row)
    replications = pd.DataFrame(rows)
    replications.to_csv(run_dir / "replications.csv", index=False)
    summary = summarize(replications, [spec.name for spec in scenario.policies])
    summary.insert(1, "type", summary["policy"].map(types))
    summary.insert(2, "oracle", summary["policy"].map(oracle))
    summary.to_csv(run_dir / "summary.csv", index=False)
    return {"replications": replications, "summary": summary}


def run_experiment(
    scenario: Scenario,
    out: Path | None = None,
    *,
    overwrite: bool = False,
    workers: int | None = None,
    executor: Executor | None = None,
    on_progress: Callable[[str, float], None] | None = None,
    command: list[str] | None = None,
) -> Path:
    """Run every policy × replication of ``scenario`` and write a complete run folder.

    ``out`` defaults to ``runs/<scenario>-<timestamp>``; an existing folder is an error unless
    ``overwrite``. ``workers`` defaults to the scenario's setting (0 = one per core).
    Returns the run folder's path.
    """
    from .storage import RunFolder, default_run_dir

    path = Path(out) if out is not None else default_run_dir(scenario.name)
    with RunFolder(path, scenario.dump(), overwrite=overwrite, command=command) as folder:
        tasks = make_tasks(scenario, folder.work)
        n_workers = workers if workers else default_workers(scenario, len(tasks))
        folder.manifest["workers"] = n_workers
        results = run_tasks(tasks, n_workers, executor=executor, on_progress=on_progress)
        assemble(scenario, folder.work, results)
        folder.manifest["policies"] = [
            {"name": s.name, "type": s.type, "params": s.params, "oracle": resolve_policy(s.type).oracle}
            for s in scenario.policies
        ]
        folder.manifest["tasks"] = [
            {
                "policy": r.policy,
                "replication": r.replication,
                "seconds": round(r.seconds, 3),
                "decisions": r.n_decisions,
                "events": r.n_events,
                "retrain_times": r.retrain_times,
            }
            for r in results
        ]
    return path
