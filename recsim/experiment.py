"""Experiments: one task per (policy, replication), run on any ``concurrent.futures`` executor.

A task is a small picklable spec; its worker builds the replication's world (identical for
every policy: common random numbers), runs the engine and writes its own partitions into the
run folder. The parent process then assembles the tables and the summary.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import time
from concurrent.futures import Executor, ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator

import numpy as np
import pandas as pd

from .config import Scenario, scenario_from_dict
from .engine import simulate
from .eventlog import EventLog
from .policies.registry import resolve_policy
from .stats import compare, summarize
from .world import build_world

__all__ = [
    "Task",
    "TaskResult",
    "make_tasks",
    "run_task",
    "run_tasks",
    "assemble",
    "run_experiment",
    "make_executor",
    "reference_policy",
]


@dataclass(frozen=True)
class Task:
    """One policy on one replication (of one grid point of a sweep): small and picklable."""

    scenario: dict[str, Any]  # the resolved scenario as plain data
    policy_index: int
    replication: int
    run_dir: str  # where the task writes its partitions
    point: int | None = None  # the sweep grid point, if any

    @property
    def policy(self) -> str:
        return self.scenario["policies"][self.policy_index]["name"]

    @property
    def key(self) -> str:
        prefix = f"point{self.point}/" if self.point is not None else ""
        return f"{prefix}{self.policy}/rep{self.replication}"

    @property
    def marker(self) -> Path:
        """Written last, once every partition of the task is complete (used by resume)."""
        return Path(self.run_dir) / "_tasks" / f"{self.policy}-rep{self.replication}.json"


@dataclass
class TaskResult:
    policy: str
    replication: int
    headline: dict[str, float]
    retrain_times: list[float]
    n_events: int
    n_decisions: int
    seconds: float
    point: int | None = None


def make_tasks(scenario: Scenario, run_dir: Path, point: int | None = None) -> list[Task]:
    data = scenario.dump()
    return [
        Task(data, p, r, str(run_dir), point)
        for r in range(scenario.replications)
        for p in range(len(scenario.policies))
    ]


def completed(task: Task) -> TaskResult | None:
    """The result of a task that finished in an earlier, interrupted attempt (or None)."""
    try:
        data = json.loads(task.marker.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return TaskResult(**data)


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
    n_users = world.n_users
    static = {"user_id": np.arange(n_users)}
    for name, missing in (("home_cluster", -1), ("vulnerable", False), ("susceptibility", np.nan),
                          ("appetite0", np.nan)):
        # who the users are (the default sampler's fields; a model without them gets blanks)
        static[name] = world.state[name].copy() if name in world.state else np.full(n_users, missing)
    events = EventLog(
        partition(run_dir, "events", spec.name, task.replication),
        chunk_rows=scenario.outputs.events_chunk_rows,
        log_impressions=scenario.outputs.log_impressions,
        oracle=oracle,
        # outputs.event_sample: full event rows for the first users only (ids are i.i.d.
        # draws, so a random sample); metrics and the users table still cover everyone
        user_limit=scenario.outputs.sampled_users(n_users),
    )
    result = simulate(world, spec, events, progress)

    metrics = pd.DataFrame(result.metrics, columns=["metric", "kind", "start", "end", "value"])
    metrics["oracle"] = oracle
    path = partition(run_dir, "metrics", spec.name, task.replication)
    path.parent.mkdir(parents=True, exist_ok=True)
    metrics.to_parquet(path, index=False)

    if result.models:  # what a learned policy learned, after each retrain
        models = pd.DataFrame(result.models, columns=["time", "name", "value"])
        models["oracle"] = oracle
        path = partition(run_dir, "models", spec.name, task.replication)
        path.parent.mkdir(parents=True, exist_ok=True)
        models.to_parquet(path, index=False)

    frames = []
    for stage, state in (("initial", result.initial_state), ("final", result.final_state)):
        frame = pd.DataFrame(static)
        frame["oracle"] = oracle
        frame["stage"] = stage
        for name, values in state.items():  # every per-user quantity of the snapshot
            if name != "churned" and np.ndim(values) == 1:
                frame[name] = values
        if "theta" in state:  # the final topic preferences, for the distance to the twin
            frame["theta"] = list(state["theta"])
        frame["churned"] = state["churned"]
        for name, values in result.user_totals.items():
            frame[name] = 0 if stage == "initial" else values
        frames.append(frame)
    path = partition(run_dir, "users", spec.name, task.replication)
    path.parent.mkdir(parents=True, exist_ok=True)
    pd.concat(frames, ignore_index=True).to_parquet(path, index=False)

    outcome = TaskResult(
        policy=spec.name,
        replication=task.replication,
        headline=result.headline,
        retrain_times=result.retrain_times,
        n_events=result.n_events,
        n_decisions=result.n_decisions,
        seconds=time.perf_counter() - started,
        point=task.point,
    )
    task.marker.parent.mkdir(parents=True, exist_ok=True)
    tmp = task.marker.with_suffix(".tmp")
    tmp.write_text(json.dumps(dataclasses.asdict(outcome)), encoding="utf-8")
    os.replace(tmp, task.marker)
    return outcome


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
    resume: bool = False,
) -> list[TaskResult]:
    """Run tasks inline (``workers == 1``), on a local process pool, or on ``executor``.

    ``on_progress(task_key, fraction)`` is called from this process as tasks advance (only
    at task completion on an external executor). With ``resume``, tasks whose completion marker
    exists are not run again. Results come back in task order, whatever order they finish in.
    """
    done = [completed(t) if resume else None for t in tasks]
    todo = [t for t, d in zip(tasks, done) if d is None]
    if on_progress is not None:
        for task, result in zip(tasks, done):
            if result is not None:
                on_progress(task.key, 1.0)
    fresh = iter(_run_all(todo, workers, executor, on_progress))
    return [d if d is not None else next(fresh) for d in done]


def _run_all(
    tasks: list[Task],
    workers: int,
    executor: Executor | None,
    on_progress: Callable[[str, float], None] | None,
) -> list[TaskResult]:
    if not tasks:
        return []
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
    if on_progress is not None and executor is None:
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
                if on_progress is not None and progress_queue is None:
                    on_progress(tasks[futures[future]].key, 1.0)
            if progress_queue is not None:
                try:
                    while True:
                        key, fraction = progress_queue.get(timeout=0.1)
                        on_progress(key, fraction)
                except queuemod.Empty:
                    pass
            elif pending:
                with contextlib.suppress(TimeoutError):
                    next(as_completed(pending, timeout=0.5))
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


@contextlib.contextmanager
def make_executor(workers: int, scheduler: str | None = None, kind: str = "local") -> Iterator[Executor | None]:
    """The executor tasks run on: ``None`` (run inline, or on the local process pool that
    :func:`run_tasks` makes for ``workers > 1``), or a Dask distributed cluster's
    ``Client.get_executor()`` when a ``scheduler`` address is given or ``kind == "dask"`` (a
    ``LocalCluster`` of ``workers`` single-threaded processes). Dask is an optional extra."""
    if scheduler is None and kind != "dask":
        yield None
        return
    try:
        from dask.distributed import Client, LocalCluster
    except ImportError:
        raise RuntimeError(
            "the Dask executor needs the optional extra: pip install 'recsim-engagement[dask]'"
        ) from None
    if scheduler is not None:
        client = Client(scheduler)
        cluster = None
    else:
        cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                               dashboard_address=None)
        client = Client(cluster)
    try:
        yield client.get_executor()
    finally:
        client.close()
        if cluster is not None:
            cluster.close()


def reference_policy(scenario: Scenario) -> str:
    """The policy others are compared with: the scenario's ``reference``, else
    ``chronological`` when present, else the first policy."""
    names = [spec.name for spec in scenario.policies]
    if scenario.reference is not None:
        return scenario.reference
    return "chronological" if "chronological" in names else names[0]


def assemble(scenario: Scenario, run_dir: Path, results: list[TaskResult]) -> dict[str, pd.DataFrame]:
    """Write the run-level tables: ``replications.csv`` (one row per policy × replication),
    ``summary.csv`` (one row per policy: mean and 95% CI over replications) and
    ``comparison.csv`` (paired differences with each policy vs the reference policy; not
    written for a single policy). Each file is written atomically (:func:`recsim.analysis.write_csv`)."""
    from .analysis import write_csv

    oracle = {spec.name: resolve_policy(spec.type).oracle for spec in scenario.policies}
    types = {spec.name: spec.type for spec in scenario.policies}
    rows = []
    for res in results:
        row = {"policy": res.policy, "type": types[res.policy], "oracle": oracle[res.policy],
               "replication": res.replication}
        row.update(res.headline)
        rows.append(row)
    replications = pd.DataFrame(rows)
    replications = _add_twin_distances(scenario, run_dir, replications)
    write_csv(replications, run_dir / "replications.csv")  # atomic: never a truncated file
    summary = summarize(replications, [spec.name for spec in scenario.policies])
    summary.insert(1, "type", summary["policy"].map(types))
    summary.insert(2, "oracle", summary["policy"].map(oracle))
    write_csv(summary, run_dir / "summary.csv")
    tables = {"replications": replications, "summary": summary}
    if len(scenario.policies) > 1:
        comparison = compare(replications, reference_policy(scenario), seed=scenario.seed)
        write_csv(comparison, run_dir / "comparison.csv")
        tables["comparison"] = comparison
    return tables


def twin_policy(scenario: Scenario) -> str | None:
    """The policy whose users are every other policy's natural-drift twins: the first of type
    ``random`` (no recommender influence beyond chance), or None."""
    return next((spec.name for spec in scenario.policies if spec.type == "random"), None)


def _add_twin_distances(scenario: Scenario, run_dir: Path, replications: pd.DataFrame) -> pd.DataFrame:
    """``twin_topic_distance`` (mean ‖θ − θ_twin‖) and ``twin_appetite_distance`` (mean
    |a − a_twin|) at the end of the horizon: how far each policy moved its users from where
    the same users (common random numbers) ended under the twin policy (:func:`twin_policy`).
    Absent without a twin policy or topic vectors."""
    twin = twin_policy(scenario)
    if twin is None or replications.empty:
        return replications

    def final(policy: str, replication: int) -> pd.DataFrame | None:
        path = partition(run_dir, "users", policy, replication)
        if not path.exists():
            return None
        users = pd.read_parquet(path)
        users = users[users["stage"] == "final"].sort_values("user_id")
        return users if "theta" in users and "appetite" in users else None

    topic, appetite = [], []
    for policy, replication in zip(replications["policy"], replications["replication"]):
        mine, theirs = final(policy, replication), final(twin, replication)
        if mine is None or theirs is None:
            topic.append(np.nan)
            appetite.append(np.nan)
            continue
        a, b = np.stack(mine["theta"].to_numpy()), np.stack(theirs["theta"].to_numpy())
        topic.append(float(np.linalg.norm(a - b, axis=1).mean()))
        appetite.append(float(np.abs(mine["appetite"].to_numpy() - theirs["appetite"].to_numpy()).mean()))
    out = replications.copy()
    out["twin_topic_distance"] = topic
    out["twin_appetite_distance"] = appetite
    return out


def task_manifest(results: list[TaskResult]) -> list[dict[str, Any]]:
    return [
        {
            **({"point": r.point} if r.point is not None else {}),
            "policy": r.policy,
            "replication": r.replication,
            "seconds": round(r.seconds, 3),
            "decisions": r.n_decisions,
            "events": r.n_events,
            "retrain_times": r.retrain_times,
        }
        for r in results
    ]


def policy_manifest(scenario: Scenario) -> list[dict[str, Any]]:
    return [
        {"name": s.name, "type": s.type, "params": s.params, "oracle": resolve_policy(s.type).oracle}
        for s in scenario.policies
    ]


def execute(
    tasks: list[Task],
    scenario: Scenario,
    manifest: dict[str, Any],
    workers: int | None,
    executor: Executor | None,
    scheduler: str | None,
    on_progress: Callable[[str, float], None] | None,
    resume: bool,
) -> list[TaskResult]:
    """Run ``tasks`` where the caller, then the scenario, says (inline, a local pool, Dask),
    recording the choice in ``manifest``."""
    n_workers = workers if workers else default_workers(scenario, len(tasks))
    manifest["workers"] = n_workers
    with contextlib.ExitStack() as stack:
        if executor is None:
            executor = stack.enter_context(
                make_executor(n_workers, scheduler or scenario.scheduler, scenario.executor)
            )
        manifest["executor"] = "inline/local" if executor is None else type(executor).__name__
        return run_tasks(tasks, n_workers, executor=executor, on_progress=on_progress, resume=resume)


def run_experiment(
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
    report: bool = False,
) -> Path:
    """Run every policy × replication of ``scenario`` and write a complete run folder.

    ``out`` defaults to ``runs/<scenario>-<timestamp>``; an existing folder is an error unless
    ``overwrite``. With ``resume``, an interrupted attempt's partial folder is reused and only
    its unfinished tasks run. ``workers`` defaults to the scenario's setting (0 = one per
    core); ``scheduler`` (or ``executor: dask`` in the scenario) runs the tasks on Dask.
    With ``report``, ``report/`` (PNG plots and ``report.html``) is written into the folder
    before it is completed; a plot that fails becomes a warning, not a failed run.
    Returns the run folder's path.
    """
    from .storage import RunFolder, default_run_dir

    path = Path(out) if out is not None else default_run_dir(scenario.name)
    with RunFolder(path, scenario.dump(), overwrite=overwrite, resume=resume, command=command) as folder:
        tasks = make_tasks(scenario, folder.work)
        results = execute(tasks, scenario, folder.manifest, workers, executor, scheduler, on_progress, resume)
        assemble(scenario, folder.work, results)
        folder.manifest["policies"] = policy_manifest(scenario)
        folder.manifest["tasks"] = task_manifest(results)
        if report:
            from .report import write_report

            folder.save_manifest()
            started = time.perf_counter()
            write_report(folder.work)
            folder.manifest["report_seconds"] = round(time.perf_counter() - started, 3)
    return path
