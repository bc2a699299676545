"""Runs on a real Dask cluster (issue 12: kinds 1 and 2, and Ctrl-C of kind 4).

A scheduler and a worker are started as separate processes (``dask scheduler``, ``dask
worker``), once for the module, in a temporary directory of their own — not the client's,
and without the scenarios' folders on their path — as on a cluster of other machines:

- a relative ``--out`` still lands in the client's folder (paths are made absolute before
  they leave the client), and the client checks every task's partitions before the run is
  complete; a task whose partitions are missing fails the run (exit 1, one screen naming it);
- user code named by a scenario (a policy, a user-model component) reaches the workers;
- an error in user code on a worker comes back as one screen naming the policy, the task and
  the user's own file and line (every recsim error survives pickling);
- Ctrl-C of a Dask run prints one line, exits 130 and leaves the partial folder marked
  ``interrupted``; an unreachable scheduler is one line.
"""

from __future__ import annotations

import errno
import importlib
import inspect
import json
import os
import pickle
import pkgutil
import re
import shutil
import signal
import socket
import subprocess
import sys
import textwrap
import time
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pytest
from support import one_screen
import yaml

DASK = Path(sys.executable).with_name("dask")
SCENARIOS = Path(__file__).resolve().parent.parent / "scenarios"
STARTUP_SECONDS = 60


def _env(**extra: str) -> dict[str, str]:
    """The environment of the processes started here: no colours, wide lines, nothing on
    PYTHONPATH (the workers must get user code from the client)."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "FORCE_COLOR", "COLUMNS", "LINES")}
    env.update(NO_COLOR="1", COLUMNS="200", **extra)
    return env


def _stop(process: subprocess.Popen) -> None:
    """Stop a process started here in its own session, and every process of that session."""
    for sig, wait in ((signal.SIGTERM, 20), (signal.SIGKILL, 10)):
        try:
            os.killpg(process.pid, sig)
        except ProcessLookupError:
            break
        try:
            process.wait(timeout=wait)
        except subprocess.TimeoutExpired:
            continue
        if not _group_alive(process.pid):
            break
        time.sleep(0.5)


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True


@dataclass
class Cluster:
    address: str
    workdir: Path  # the scheduler's and the worker's working directory


@pytest.fixture(scope="module")
def cluster(tmp_path_factory) -> Cluster:
    """A scheduler and one single-threaded worker, started as separate processes in a
    directory of their own; both are stopped afterwards, whatever happens."""
    from distributed import Client

    home = tmp_path_factory.mktemp("dask_cluster")
    workdir = tmp_path_factory.mktemp("dask_workdir")
    scheduler_file = home / "scheduler.json"
    processes: list[subprocess.Popen] = []
    logs = []

    def start(*args: str, log: str) -> subprocess.Popen:
        handle = open(home / log, "w")  # noqa: SIM115 — closed at the end
        logs.append(handle)
        process = subprocess.Popen([str(DASK), *args], cwd=workdir, env=_env(), stdout=handle,
                                   stderr=subprocess.STDOUT, start_new_session=True)
        processes.append(process)
        return process

    def log_text() -> str:
        return "\n".join(f"--- {p.name}\n{p.read_text()[-3000:]}" for p in sorted(home.glob("*.log")))

    try:
        scheduler = start("scheduler", "--scheduler-file", str(scheduler_file), "--port", "0", "--no-dashboard",
                          log="scheduler.log")
        deadline = time.monotonic() + STARTUP_SECONDS
        address = None
        while address is None:
            assert scheduler.poll() is None, f"the scheduler exited:\n{log_text()}"
            assert time.monotonic() < deadline, f"the scheduler did not start:\n{log_text()}"
            try:
                address = json.loads(scheduler_file.read_text())["address"]
            except (OSError, ValueError, KeyError):
                time.sleep(0.2)
        start("worker", "--scheduler-file", str(scheduler_file), "--nworkers", "1", "--nthreads", "1",
              "--no-dashboard", log="worker.log")
        with Client(address, timeout=STARTUP_SECONDS) as client:
            client.wait_for_workers(1, timeout=STARTUP_SECONDS)
        yield Cluster(address, workdir)
    finally:
        for process in reversed(processes):
            _stop(process)
        for handle in logs:
            handle.close()


def recsim(*args, cwd: Path, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "recsim", *map(str, args)], cwd=cwd, env=_env(**env),
                          capture_output=True, text=True, timeout=300, check=False)


def write_scenario(folder: Path, data: dict, name: str = "scenario.yaml") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return path


def small(tiny: dict, policies: list, **changes) -> dict:
    """The tiny scenario with ``policies`` (seconds per task)."""
    return {**tiny, "policies": policies, **changes}


def partitions(run_dir: Path, policy: str, replication: int) -> list[Path]:
    return [run_dir / table / f"policy={policy}" / f"replication={replication}" / "part-0.parquet"
            for table in ("events", "metrics", "users")]


def manifest(folder: Path) -> dict:
    return json.loads((folder / "manifest.json").read_text())


# ============================================================================ kind 1: paths
def test_a_relative_out_lands_in_the_clients_folder_and_is_verified(cluster, tiny, tmp_path):
    """The default, relative --out: the workers (in another directory) write into the client's
    run folder, which is completed only once the client has seen every task's partitions, and
    the report has the run's figures."""
    client = tmp_path / "client"
    write_scenario(client, small(tiny, ["random", "chronological"], replications=2))
    result = recsim("run", "scenario.yaml", "--out", "runs/r", "--scheduler", cluster.address, "-q", cwd=client)
    assert result.returncode == 0, result.stderr
    out = client / "runs" / "r"
    info = manifest(out)
    assert info["status"] == "complete" and info["outputs_verified"] is True
    for policy in ("random", "chronological"):
        for replication in (0, 1):
            for path in partitions(out, policy, replication):
                assert path.is_file(), path
    assert not list(cluster.workdir.rglob("*.parquet")), "partitions were written in the workers' directory"
    events = pd.read_parquet(out / "events")
    assert set(events["policy"].astype(str)) == {"random", "chronological"} and len(events) > 0
    summary = pd.read_csv(out / "summary.csv")
    assert list(summary["policy"]) == ["random", "chronological"]
    assert summary["watch_minutes_per_user_day"].notna().all()
    report = (out / "report" / "report.html").read_text(encoding="utf-8")
    assert "chronological" in report and "<img" in report


SABOTEUR = '''
import glob
import os

from pydantic import BaseModel, ConfigDict

from recsim import Policy


class Saboteur(Policy):
    """Deletes the files matching ``victims`` when a task starts, once (``flag``): the
    partitions of a task that ran before it go missing, as on a worker that does not share the
    run folder."""

    class Params(BaseModel):
        model_config = ConfigDict(extra="forbid")
        victims: str = ""
        flag: str = ""

    def reset(self, context):
        if self.params.victims and not os.path.exists(self.params.flag):
            for path in glob.glob(self.params.victims):
                os.remove(path)
                open(self.params.flag, "w").close()

    def recommend(self, request, rng):
        return request.candidates[: request.slate_size]
'''


@pytest.mark.parametrize("where", ["cluster", "inline"])
def test_a_task_whose_partitions_are_missing_fails_the_run(cluster, tiny, tmp_path, where):
    """The partitions of a task that reported success are gone when the client checks: the run
    fails (exit 1, one screen naming the task and the file), no folder looks complete, and
    --resume runs that task again."""
    module = f"saboteur_{where}_{os.getpid()}"
    user = tmp_path / "user"
    user.mkdir()
    (user / f"{module}.py").write_text(textwrap.dedent(SABOTEUR), encoding="utf-8")
    out = tmp_path / "run"
    partial = tmp_path / ".run.partial"
    params = {"victims": str(partial / "metrics" / "policy=saboteur" / "replication=*" / "part-0.parquet"),
              "flag": str(tmp_path / "sabotaged")}
    policy = {"name": "saboteur", "type": f"{module}:Saboteur", "params": params}
    scenario = write_scenario(user, small(tiny, [policy], replications=2, workers=1))
    where_args = ["--scheduler", cluster.address] if where == "cluster" else ["--workers", "1"]
    result = recsim("run", scenario, "--out", out, "--no-report", "-q", *where_args, cwd=tmp_path)
    err = one_screen(result, 1, "missing from the run folder", "1 of 2 task(s)",
                     "metrics/policy=saboteur/replication=", "--resume")
    assert re.search(r"task saboteur × replication [01]: missing metrics/", err), err
    assert not out.exists()
    assert manifest(partial)["status"] == "failed"
    if where == "inline":  # the missing task's marker is gone: --resume runs it again
        again = recsim("run", scenario, "--out", out, "--no-report", "-q", "--resume", *where_args, cwd=tmp_path)
        assert again.returncode == 0, again.stderr
        assert manifest(out)["status"] == "complete"
        assert all(path.is_file() for r in (0, 1) for path in partitions(out, "saboteur", r))


def test_verify_outputs_names_every_incomplete_task_whatever_ran_it(tiny, tmp_path):
    """verify_outputs (called after the tasks, for every executor) reads nothing but the run
    folder: a missing or truncated partition or a missing marker names its task."""
    from recsim.config import scenario_from_dict
    from recsim.engine.errors import OutputsMissing
    from recsim.experiment import make_tasks, run_tasks, verify_outputs

    scenario = scenario_from_dict(small(tiny, ["random", "chronological"]))
    tasks = make_tasks(scenario, tmp_path / "run")
    assert all(Path(task.run_dir).is_absolute() for task in tasks)
    run_tasks(tasks)
    verify_outputs(tasks)
    events, _, users = partitions(tmp_path / "run", "chronological", 0)
    events.unlink()
    users.write_bytes(users.read_bytes()[:100])  # truncated
    with pytest.raises(OutputsMissing) as info:
        verify_outputs(tasks)
    error = info.value
    assert list(error.missing) == ["chronological × replication 0"]
    assert error.missing["chronological × replication 0"] == [
        "events/policy=chronological/replication=0/part-0.parquet",
        "users/policy=chronological/replication=0/part-0.parquet",
    ]
    assert not tasks[1].marker.exists() and tasks[0].marker.exists()  # --resume redoes it
    assert "chronological × replication 0" in str(error) and "1 of 2" in str(error)
    assert pickle.loads(pickle.dumps(error)).__dict__ == error.__dict__


def test_a_worker_that_cannot_see_the_run_folder_stops_the_run_before_any_task(cluster, tmp_path):
    """Every worker must see the run folder (a probe file written into it) before tasks are
    sent: the real workers do; one on a machine without the folder is named."""
    from distributed import Client

    from recsim.distributed import FolderNotShared, check_shared_folders

    folders = [tmp_path / ".run.partial" / "points" / f"point={i}" for i in (0, 1)]  # not made yet
    (tmp_path / ".run.partial").mkdir()
    with Client(cluster.address) as client:
        check_shared_folders(client, folders)

    class ElsewhereToo:
        """A client whose cluster also has a worker on a machine without the folder."""

        def run(self, function, *args):
            return {"tcp://10.0.0.1:4000": function(*args), "tcp://10.0.0.2:4000": False}

    with pytest.raises(FolderNotShared) as info:
        check_shared_folders(ElsewhereToo(), folders)
    assert info.value.workers == ["tcp://10.0.0.2:4000"]
    assert info.value.folder == str(tmp_path / ".run.partial")
    assert "tcp://10.0.0.2:4000 cannot see the run folder" in str(info.value)
    assert not list((tmp_path / ".run.partial").iterdir()), "the probe file was left behind"


# ============================================================================ kind 2: user code
@pytest.mark.parametrize("name, module, policy", [
    ("custom_policy", "my_policies", "relevant_and_mild"),
    ("custom_user_model", "my_user_model", "wellbeing_oracle"),
])
def test_a_scenarios_user_code_runs_on_the_cluster(cluster, tmp_path, name, module, policy):
    """scenarios/custom_policy.yaml and custom_user_model.yaml, whose modules sit next to the
    scenario file — on the client's path only — run on the workers."""
    user = tmp_path / "scenarios"
    user.mkdir()
    shutil.copy(SCENARIOS / f"{name}.yaml", user)
    shutil.copy(SCENARIOS / f"{module}.py", user)
    client = tmp_path / "client"
    client.mkdir()
    overrides = ["replications=1", "horizon=1d", "warmup=1d", "population.n_users=10"]
    result = recsim("run", user / f"{name}.yaml", "--out", "out", "--scheduler", cluster.address, "--no-report",
                    "-q", *(arg for o in overrides for arg in ("--set", o)), cwd=client)
    assert result.returncode == 0, result.stderr
    out = client / "out"
    assert manifest(out)["status"] == "complete"
    assert policy in set(pd.read_csv(out / "summary.csv")["policy"])
    from distributed import Client

    with Client(cluster.address) as dask_client:  # the workers never had the folder on their path
        # (lambdas: cloudpickle sends them by value; this test module is not importable there)
        on_path = dask_client.run(lambda folder: folder in sys.path or os.getcwd() == folder, str(user))
        assert not any(on_path.values())
        plugins = dask_client.run_on_scheduler(lambda dask_scheduler: list(dask_scheduler.worker_plugins))
    assert not [name for name in plugins if name.startswith("recsim-user-code")], "the run's plugin was left"


def test_a_sweep_with_user_code_and_a_relative_out_runs_on_the_cluster(cluster, tiny, tmp_path):
    """A sweep: every grid point's tasks, their user policy and their partitions."""
    user = tmp_path / "user"
    user.mkdir()
    shutil.copy(SCENARIOS / "my_policies.py", user)
    data = small(tiny, ["random", {"name": "mild", "type": "my_policies:RelevantAndMild"}],
                 sweep={"population.n_users": [8, 10]})
    write_scenario(user, data)
    result = recsim("sweep", "scenario.yaml", "--out", "runs/s", "--scheduler", cluster.address, "-q", cwd=user)
    assert result.returncode == 0, result.stderr
    out = user / "runs" / "s"
    assert manifest(out)["status"] == "complete"
    for point in (0, 1):
        for policy in ("random", "mild"):
            assert all(p.is_file() for p in partitions(out / "points" / f"point={point}", policy, 0))
    assert not list(cluster.workdir.rglob("*.parquet"))


FAILING = '''
from recsim import Policy


class FailsOn50th(Policy):
    def reset(self, context):
        self.calls = 0

    def recommend(self, request, rng):
        self.calls += 1
        if self.calls == 50:
            raise RuntimeError("boom on the 50th call")  # LINE
        return request.candidates[: request.slate_size]
'''


def test_a_user_policy_failing_on_a_worker_is_one_screen_naming_policy_task_and_line(cluster, tiny, tmp_path):
    """The policy raises mid-run on the worker: the client reports the TaskError it raised
    (pickled across), naming the policy, the task and the line in the user's own file."""
    module = f"fails_on_50th_{os.getpid()}"
    user = tmp_path / "user"
    user.mkdir()
    (user / f"{module}.py").write_text(textwrap.dedent(FAILING), encoding="utf-8")
    line = next(i for i, text in enumerate(textwrap.dedent(FAILING).splitlines(), 1) if text.endswith("# LINE"))
    policy = {"name": "mine", "type": f"{module}:FailsOn50th"}
    write_scenario(user, small(tiny, ["random", policy]))
    result = recsim("run", "scenario.yaml", "--out", tmp_path / "run", "--scheduler", cluster.address,
                    "--no-report", "-q", cwd=user)
    one_screen(result, 1, "policy 'mine'", "RuntimeError: boom on the 50th call", "mine × replication 0",
               f"{user / module}.py:{line}", 'raise RuntimeError("boom on the 50th call")')
    assert not (tmp_path / "run").exists()


def _exception_classes() -> set[type]:
    """Every exception class defined in the recsim package (all its modules imported)."""
    found = set()
    for info in pkgutil.walk_packages(importlib.import_module("recsim").__path__, "recsim."):
        if info.name.rsplit(".", 1)[-1] == "__main__":
            continue
        module = importlib.import_module(info.name)
        for obj in vars(module).values():
            if inspect.isclass(obj) and issubclass(obj, BaseException) and obj.__module__ == module.__name__:
                found.add(obj)
    return found


def _examples() -> dict[type, BaseException]:
    """One instance of each recsim exception class, every attribute set."""
    from recsim.cli import Terminated
    from recsim.config import PolicyParamError, ScenarioError
    from recsim.cluster_errors import ClusterSetupError, DaskMissing
    from recsim.distributed import FolderNotShared, SchedulerUnreachable
    from recsim.kernels import KernelConfigError, KernelWarning
    from recsim.engine.batched import OnlinePolicyError
    from recsim.engine.stepped import UnsupportedScenario
    from recsim.engine.errors import (
        ComponentFailure,
        ExitCalled,
        OutputsMissing,
        PolicyTimeout,
        SlateError,
        TaskError,
        TimedOut,
        UserCodeError,
        WorkerDied,
    )
    from recsim.plugins import CodeLine
    from recsim.storage import ResumeRefused, RunFolderBusy, RunFolderError, RunFolderExists
    from recsim.creators import build_creator_rule
    from recsim.testing import CreatorRuleCheckError, PolicyCheckError, ScriptedRuleCheckError, UserModelCheckError
    from recsim.users.contracts import ContractError
    from recsim.users.model import ComponentError, UserModelError

    task = {"policy": "p", "replication": 2, "point": 1, "time": -60.0}
    line = CodeLine("/u/mine.py", 7, "recommend", "return x")
    examples = [
        ScenarioError("s.yaml", [("policies.0.type", "unknown policy"), ("", "top")]),
        PolicyParamError(("policies", 0, "params", "k"), "must be positive"),
        OnlinePolicyError("online policies need the reference engine"),
        UnsupportedScenario("scenario 's' cannot be stepped one decision at a time"),
        TaskError("failed", details=["more"], **task),
        UserCodeError("policy 'p' failed", actor="policy 'p'", call="fit", error="ValueError: x", line=line, **task),
        SlateError("bad slate", problem="it repeats item(s) 3", slate="[3, 3]", actor="policy 'p'", **task),
        PolicyTimeout("too slow", limit=1.0, elapsed=2.5, **task),
        ComponentFailure("user_model.choice failed", component="m.C", actor="user_model.choice", line=line, **task),
        WorkerDied(tasks=["p/rep0", "q/rep1"]),
        OutputsMissing({"p × replication 0": ["events/x.parquet"]}, folder="/runs/r", n_tasks=4),
        ExitCalled(3),
        TimedOut(),
        RunFolderExists("runs/r already exists"),
        RunFolderBusy("another run is writing runs/r"),
        ResumeRefused("cannot resume runs/.r.partial: another scenario"),
        RunFolderError("No space left on device (ENOSPC)", path="/runs/.r.partial/events/x.parquet",
                       folder="/runs/r", task="p × replication 2", error_number=errno.ENOSPC),
        Terminated("SIGTERM"),
        PolicyCheckError("check_policy(p): property 'x' failed: y", "deterministic"),
        UserModelCheckError("check_user_model: failed", "shapes", "choice", "m.C"),
        ContractError("finite", "probabilities must be finite"),
        UserModelError("no such component", ("choice", "type")),
        ComponentError("user_model.choice: bad output"),
        SchedulerUnreachable("tcp://10.0.0.1:8786", "Timed out trying to connect after 30 s"),
        FolderNotShared("/runs/.r.partial", ["tcp://10.0.0.2:40000"]),
        ClusterSetupError("the cluster cannot be used"),
        DaskMissing(),
        KernelWarning("numba is not importable; recsim runs its NumPy code"),
        KernelConfigError("the environment variable RECSIM_KERNELS is 'off'"),
    ]
    from recsim.users.scripted import build_rule

    examples.append(ScriptedRuleCheckError("deterministic", build_rule("top_item", {}), "two answers"))
    examples.append(CreatorRuleCheckError("shape", build_creator_rule("imitate", {}), "shape (50, 2)"))
    return {type(e): e for e in examples}


def test_every_recsim_exception_survives_a_pickle_round_trip_with_its_message_and_attributes():
    """Errors cross from Dask workers (and local pool processes) to the client by pickle: each
    class in the package comes back with its type, message and attributes. The classes are
    enumerated, so a new one without an example here fails this test."""
    examples = _examples()
    classes = _exception_classes()
    assert classes == set(examples), f"add an example of: {sorted(c.__qualname__ for c in classes - set(examples))}"
    for cls, error in examples.items():
        if hasattr(error, "add_note"):
            error.add_note("in task p × replication 2")
        copy = pickle.loads(pickle.dumps(error))
        assert type(copy) is cls
        assert str(copy) == str(error), cls
        assert copy.args == error.args, cls
        assert copy.__dict__ == error.__dict__, cls


# ============================================================================ kind 4: Ctrl-C
def _children(pid: int) -> list:
    import psutil

    try:
        return psutil.Process(pid).children(recursive=True)
    except psutil.Error:
        return []


@pytest.mark.parametrize("moment", ["while the cluster starts", "while tasks run"])
def test_ctrl_c_of_a_dask_run_is_one_line_and_exit_130(tiny, tmp_path, moment):
    """Ctrl-C at a terminal (SIGINT to the whole process group: the client and the local
    cluster's worker processes): one line, exit 130, the partial folder marked 'interrupted',
    no traceback and no process left behind."""
    tiny.update(horizon="10d", replications=2, executor="dask", workers=2)
    tiny["population"]["n_users"] = 40
    write_scenario(tmp_path, tiny)
    out = tmp_path / "run"
    partial = tmp_path / ".run.partial"
    process = subprocess.Popen([sys.executable, "-m", "recsim", "run", "scenario.yaml", "--out", out, "-q",
                                "--no-report"], cwd=tmp_path, env=_env(), stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        deadline = time.monotonic() + STARTUP_SECONDS
        if moment == "while the cluster starts":  # a worker process is being started
            ready = lambda: any("spawn_main" in " ".join(child.cmdline())
                                for child in _children(process.pid))
        else:  # a task has finished, others are under way
            ready = lambda: any((partial / "_tasks").glob("*.json"))
        while not ready():
            assert process.poll() is None, process.communicate()
            assert time.monotonic() < deadline, "the run did not get under way"
            time.sleep(0.05)
        assert process.poll() is None, "the run finished before it could be interrupted"
        os.killpg(process.pid, signal.SIGINT)
        _, stderr = process.communicate(timeout=120)
        assert process.returncode == 130, stderr
        assert "Traceback" not in stderr, stderr
        lines = [line for line in stderr.splitlines() if line.strip()]
        assert len(lines) == 1 and lines[0].startswith("interrupted"), stderr
        assert not out.exists()
        assert manifest(partial)["status"] == "interrupted"
        deadline = time.monotonic() + 15
        while _group_alive(process.pid) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert not _group_alive(process.pid), "worker processes were left running"
    finally:
        if process.poll() is None or _group_alive(process.pid):
            _stop(process)


# ============================================================================ connecting
def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.mark.parametrize("address", ["unreachable", "tcp://127.0.0.1", "http://127.0.0.1:8786"])
def test_a_scheduler_that_cannot_be_reached_is_one_line_exit_2(tiny, tmp_path, address):
    """--scheduler naming no running scheduler (or no address at all) is a bad input found
    before any task runs: one line naming the address, exit 2, no complete folder."""
    if address == "unreachable":
        address = f"tcp://127.0.0.1:{_free_port()}"
    write_scenario(tmp_path, small(tiny, ["random"]))
    result = recsim("run", "scenario.yaml", "--out", "run", "--scheduler", address, "-q", cwd=tmp_path,
                    DASK_DISTRIBUTED__COMM__TIMEOUTS__CONNECT="2s")
    err = one_screen(result, 2, "cannot reach the Dask scheduler", repr(address))
    assert len(err.strip().splitlines()) == 1, err
    assert not (tmp_path / "run").exists()
