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
from concurrent.futures import Executor, ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator

import numpy as np
import pandas as pd

from .config import Scenario, default_workers, scenario_from_dict
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
    "verify_outputs",
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
    #: scripted user groups' headline figures (population.scripted): group -> metric -> value
    groups: dict[str, dict[str, float]] = dataclasses.field(default_factory=dict)


def make_tasks(scenario: Scenario, run_dir: Path, point: int | None = None) -> list[Task]:
    """One task per policy × replication of ``scenario``, writing into ``run_dir``. The path is
    made absolute here, before any task leaves this process: a worker elsewhere (a Dask
    cluster) has its own working directory, where a relative path would lead its partitions."""
    data = scenario.dump()
    run_dir = os.path.abspath(run_dir)
    return [
        Task(data, p, r, run_dir, point)
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
    groups = world.groups
    if len(groups) > 1:  # scripted users: which group each user is in
        static["group"] = pd.Categorical.from_codes(world.group_codes(), [name for name, _, _ in groups])
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
        user_limit=scenario.outputs.sampled_users(world.n_modelled),
        groups=groups,  # scripted users' rows: always written, labelled with their group
    )
    result = simulate(world, spec, events, progress)

    metrics = pd.DataFrame(result.metrics, columns=["metric", "kind", "start", "end", "value"])
    if result.group_metrics:  # one set of rows per user group, modelled users' first
        metrics["group"] = "modelled"
        metrics = pd.concat(
            [metrics, *(pd.DataFrame(rows, columns=metrics.columns[:5]).assign(group=name)
                        for name, rows in result.group_metrics.items())], ignore_index=True)
        metrics["group"] = pd.Categorical(metrics["group"], [name for name, _, _ in groups])
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

    if result.creators is not None:  # adapting creators: their offsets after each period
        creators = pd.DataFrame(result.creators)
        creators["oracle"] = oracle
        path = partition(run_dir, "creators", spec.name, task.replication)
        path.parent.mkdir(parents=True, exist_ok=True)
        creators.to_parquet(path, index=False)

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
        groups=result.group_headlines,
    )
    task.marker.parent.mkdir(parents=True, exist_ok=True)
    tmp = task.marker.with_suffix(".tmp")
    tmp.write_text(json.dumps(dataclasses.asdict(outcome)), encoding="utf-8")
    os.replace(tmp, task.marker)
    return outcome


#: the progress queue of this process when it is a worker of the local pool (set by
#: :func:`_init_worker`), else None
_WORKER_PROGRESS: Any = None

#: how often (seconds) a worker of the local pool checks that the process that started it is
#: still alive (it exits when not: a parent killed with SIGKILL leaves no worker running)
PARENT_CHECK_SECONDS = 0.5


def _run_task_reporting(task: Task, queue: Any = None) -> TaskResult:
    """Worker entry point: run ``task``, forwarding its progress as ``(task key, fraction)``
    to ``queue`` (anything with ``put``; by default the queue this worker process was started
    with, if any). A write the run folder's file system refuses (a full disk, a quota, a
    permission) is a :class:`recsim.storage.RunFolderError` naming the task and the path."""
    queue = queue if queue is not None else _WORKER_PROGRESS
    report = None
    if queue is not None:
        report = lambda fraction: queue.put((task.key, fraction))  # noqa: E731
    with _task_writes(task):
        return run_task(task, report)


@contextlib.contextmanager
def _task_writes(task: Task) -> Iterator[None]:
    """Within: an ``OSError`` of the file system the task writes to (see
    :func:`recsim.storage.is_storage_error`) becomes a :class:`recsim.storage.RunFolderError`
    naming the task and the file (or the task's folder when the error names none, as
    pyarrow's do)."""
    from .storage import RunFolderError, is_storage_error

    try:
        yield
    except OSError as exc:
        if isinstance(exc, RunFolderError) or not is_storage_error(exc, task.run_dir):
            raise
        name = f"{task.policy} × replication {task.replication}"
        if task.point is not None:
            name += f", sweep grid point {task.point}"
        raise RunFolderError.from_os_error(exc, path=task.run_dir, task=name) from exc


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
    """Run ``tasks``: inline (no ``executor`` and ``workers <= 1``), on a local pool of
    ``workers`` processes (:func:`_run_on_pool`), or on ``executor`` (whose owner stops what
    still runs there on an error; its futures not started yet are cancelled here). Results in
    task order; the first failure (in task order) is raised."""
    if not tasks:
        return []
    if executor is None and workers <= 1:
        results = []
        for task in tasks:
            report = None
            if on_progress is not None:
                report = lambda f, key=task.key: on_progress(key, f)  # noqa: E731
            with _task_writes(task):
                results.append(run_task(task, report))
        return results
    if executor is None:
        return _run_on_pool(tasks, workers, on_progress)
    futures: dict[Any, int] = {}
    try:
        for i, task in enumerate(tasks):
            futures[executor.submit(_run_task_reporting, task, None)] = i
        return _collect(futures, tasks, on_progress, None)
    except BaseException:
        for future in futures:
            future.cancel()
        raise


def _run_on_pool(
    tasks: list[Task], workers: int, on_progress: Callable[[str, float], None] | None
) -> list[TaskResult]:
    """Run ``tasks`` on a pool of ``workers`` spawned processes, progress coming back through
    a queue the workers are started with.

    Only this process handles Ctrl-C and SIGTERM (the workers ignore both, see
    :func:`_init_worker`): on an interrupt or a failed task it kills the workers (SIGKILL) and
    waits for the pool to be torn down — with further signals held meanwhile — so that no worker
    keeps running and nothing of the pool is left for the interpreter's exit hooks (which
    otherwise could print a traceback after an interrupt)."""
    import multiprocessing

    from .storage import signals_deferred

    context = multiprocessing.get_context("spawn")
    queue = context.Queue() if on_progress is not None else None
    pool = ProcessPoolExecutor(max_workers=workers, mp_context=context, initializer=_init_worker,
                               initargs=(os.getpid(), queue))
    processes: dict[int, Any] = {}
    clean = False
    try:
        futures = {pool.submit(_run_task_reporting, task, None): i for i, task in enumerate(tasks)}
        processes.update(getattr(pool, "_processes", None) or {})  # all started by now
        results = _collect(futures, tasks, on_progress, queue)
        clean = True
        return results
    finally:
        with signals_deferred():
            processes.update(getattr(pool, "_processes", None) or {})
            if not clean:  # stop the other tasks now rather than let them finish
                for process in processes.values():
                    with contextlib.suppress(Exception):
                        process.kill()
            pool.shutdown(wait=True, cancel_futures=True)
            if queue is not None:
                queue.close()
                queue.join_thread()


def _collect(futures: dict[Any, int], tasks: list[Task], on_progress: Callable[[str, float], None] | None,
             queue: Any) -> list[TaskResult]:
    """Wait for ``futures`` (future → index in ``tasks``), passing progress on from ``queue``
    (``(key, fraction)`` items; none: each task reports 1.0 as it finishes); their results in
    task order."""
    import queue as queuemod
    from concurrent.futures import FIRST_COMPLETED, wait

    results: list[TaskResult | None] = [None] * len(tasks)
    finished: set[str] = set()
    pending = set(futures)
    while pending:
        done, pending = wait(pending, timeout=0.1 if queue is not None else 0.5, return_when=FIRST_COMPLETED)
        if queue is not None:
            while True:
                try:
                    key, fraction = queue.get_nowait()
                except queuemod.Empty:
                    break
                if key not in finished:  # a late report of a finished task must not set it back
                    on_progress(key, fraction)  # type: ignore[misc]
        for future in sorted(done, key=futures.__getitem__):
            index = futures[future]
            results[index] = future.result()
            finished.add(tasks[index].key)
            if on_progress is not None:
                on_progress(tasks[index].key, 1.0)
    return results  # type: ignore[return-value]


def _ignore_sigint() -> None:
    """Only the parent handles Ctrl-C (and then stops the workers)."""
    import signal

    signal.signal(signal.SIGINT, signal.SIG_IGN)


def _init_worker(parent_pid: int, queue: Any = None) -> None:
    """Initializer of the local pool's workers: ignore SIGINT and SIGTERM (the parent, which
    gets them too from a terminal, ``timeout``, Slurm or Kubernetes, stops the workers), report
    progress to ``queue``, and exit as soon as the process ``parent_pid`` that started this one
    is gone — killed with SIGKILL, or crashed (checked every :data:`PARENT_CHECK_SECONDS` by a
    daemon thread, whatever the task is doing)."""
    import signal
    import threading

    global _WORKER_PROGRESS
    _ignore_sigint()
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    if queue is not None:
        queue.cancel_join_thread()  # exiting never waits for progress nobody will read
    _WORKER_PROGRESS = queue
    threading.Thread(target=_exit_with_parent, args=(parent_pid,), name="recsim-parent-watch",
                     daemon=True).start()


def _exit_with_parent(parent_pid: int) -> None:
    """End this process (at once, ``os._exit``) when its parent is no longer ``parent_pid``
    (the orphan is adopted by init or a subreaper)."""
    while os.getppid() == parent_pid:
        time.sleep(PARENT_CHECK_SECONDS)
    os._exit(1)


@contextlib.contextmanager
def make_executor(
    workers: int, scheduler: str | None = None, kind: str = "local", tasks: list[Task] | tuple = ()
) -> Iterator[Executor | None]:
    """The executor tasks run on: ``None`` (run inline, or on the local process pool that
    :func:`run_tasks` makes for ``workers > 1``), or a Dask distributed cluster's
    ``Client.get_executor()`` when a ``scheduler`` address is given or ``kind == "dask"`` (a
    ``LocalCluster`` of ``workers`` single-threaded processes). For Dask, the user code the
    ``tasks``' scenarios name is shipped to the workers and every worker must see the tasks' run
    folders (:func:`recsim.distributed.dask_executor`). Dask is an optional extra; an
    unreachable scheduler is a :class:`recsim.distributed.SchedulerUnreachable`."""
    if scheduler is None and kind != "dask":
        yield None
        return
    try:
        from .distributed import dask_executor
    except ImportError:
        from .cluster_errors import DaskMissing

        raise DaskMissing() from None
    scenarios = list({id(t.scenario): t.scenario for t in tasks}.values())
    folders = sorted({t.run_dir for t in tasks})
    with dask_executor(workers, scheduler, scenarios, folders) as executor:
        yield executor


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
    group_rows = [
        {"policy": res.policy, "replication": res.replication, "group": group, "metric": metric, "value": value}
        for res in results for group, figures in (res.groups or {}).items() for metric, value in figures.items()
    ]
    if group_rows:  # scripted users (population.scripted): their figures, apart
        groups = pd.DataFrame(group_rows)
        write_csv(groups, run_dir / "groups.csv")
        tables["groups"] = groups
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
    recording the choice in ``manifest``, then check here that every task's partitions are in
    the run folder (:func:`verify_outputs`; ``manifest["outputs_verified"]``) — the run is
    completed only after that."""
    n_workers = workers if workers else default_workers(scenario, len(tasks))
    manifest["workers"] = n_workers
    with contextlib.ExitStack() as stack:
        if executor is None:
            executor = stack.enter_context(
                make_executor(n_workers, scheduler or scenario.scheduler, scenario.executor, tasks)
            )
        manifest["executor"] = "inline/local" if executor is None else type(executor).__name__
        results = run_tasks(tasks, n_workers, executor=executor, on_progress=on_progress, resume=resume)
    verify_outputs(tasks)
    manifest["outputs_verified"] = True
    return results


#: the partitions every task writes (``models`` only for a learned policy that retrained)
TASK_TABLES = ("events", "metrics", "users")


def verify_outputs(tasks: list[Task]) -> None:
    """Check, in this process, that every task's partitions (:data:`TASK_TABLES`) and its
    completion marker are in its run folder and that the partitions are readable Parquet files:
    whatever executor ran the tasks, a run is never completed without them (a worker on a
    machine that does not share the folder writes them elsewhere). Raises
    :class:`~recsim.engine.errors.OutputsMissing` naming the tasks and the missing files; their
    markers are removed so that ``--resume`` runs those tasks again."""
    import pyarrow.parquet as pq

    from .engine.errors import OutputsMissing

    missing: dict[str, list[str]] = {}
    for task in tasks:
        run_dir = Path(task.run_dir)
        absent = []
        for table in TASK_TABLES:
            path = partition(run_dir, table, task.policy, task.replication)
            try:
                pq.read_metadata(path)
            except (OSError, ValueError):  # absent, or not a (whole) Parquet file
                absent.append(str(path.relative_to(run_dir)))
        if not task.marker.is_file():
            absent.append(str(task.marker.relative_to(run_dir)))
        if absent:
            missing[OutputsMissing.describe_task(task.policy, task.replication, task.point)] = absent
            task.marker.unlink(missing_ok=True)
    if missing:
        raise OutputsMissing(missing, folder=os.path.commonpath([t.run_dir for t in tasks]), n_tasks=len(tasks))


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

            folder.finish()  # the results' times, which the report shows
            folder.save_manifest()
            started = time.perf_counter()
            # written into the .partial folder (the rename after it completes the run), it
            # shows the run as it will be: complete, its times, its final path
            write_report(folder.work, manifest=folder.final_manifest(), folder=folder.path.absolute())
            folder.manifest["report_seconds"] = round(time.perf_counter() - started, 3)
    return path
