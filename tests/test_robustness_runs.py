"""The run folder's life (issue 12, kinds 4, 5, 11, 12): signals and crashes, disks, the report's
status, resume.

Runs are held part-way at a known point by the :class:`Gate` policy (it waits in the worker
processes until a file exists), so that nothing here depends on timing: a signal is sent once
every worker is known to be inside a task.
"""

from __future__ import annotations

import contextlib
import copy
import json
import multiprocessing
import os
import pickle
import resource
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pandas as pd
import psutil
import pytest
import yaml
from pydantic import BaseModel, ConfigDict

from recsim.config import load_scenario, scenario_from_dict
from recsim.experiment import _run_all, make_tasks, run_experiment
from recsim.policies.base import Policy
from recsim.storage import ResumeRefused, RunFolder, RunFolderBusy, RunFolderError

ROOT = Path(__file__).resolve().parents[1]
GATE = "tests.test_robustness_runs:Gate"


class Gate(Policy):
    """Serves the newest candidates. In a worker process (so not in the conformance check the
    CLI runs first, nor inline), once past the warm-up, it writes ``<gate>/reached-<pid>`` and
    waits until ``<gate>/open`` exists: the run is held inside its tasks for as long as a test
    needs. What it serves does not depend on the gate."""

    class Params(BaseModel):
        model_config = ConfigDict(extra="forbid")
        gate: str = ""

    def recommend(self, request, rng):
        gate = Path(self.params.gate) if self.params.gate else None
        if gate is not None and multiprocessing.parent_process() is not None and request.now > 0:
            if not (gate / "open").exists():
                (gate / f"reached-{os.getpid()}").touch()
                while not (gate / "open").exists():
                    time.sleep(0.05)
        order = np.argsort(-request.features.upload_time)
        return request.candidates[order[: request.slate_size]]


def _tiny() -> dict:
    """A fresh copy of the tiny scenario of ``conftest.py`` (imported here, not at the top: the
    CLI's worker processes import this module for :class:`Gate`, without pytest's path)."""
    from conftest import TINY

    return copy.deepcopy(TINY)


def _gate_data(gate: Path) -> dict:
    """Two replications of ``random`` and a gated policy: on two workers, both random tasks
    finish and each worker then waits in a gated task."""
    data = _tiny()
    data.update(replications=2, workers=2)
    data["policies"] = ["random", {"name": "gate", "type": GATE, "params": {"gate": str(gate)}}]
    return data


def _write(folder: Path, data: dict, name: str = "scenario.yaml") -> Path:
    path = folder / name
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def _recsim(*args, **kw) -> list[str]:
    return [sys.executable, "-m", "recsim", *map(str, args)]


def _run(*args, timeout: float = 180, **kw) -> subprocess.CompletedProcess:
    return subprocess.run(_recsim(*args), capture_output=True, text=True, timeout=timeout, cwd=ROOT, **kw)


def _start(*args) -> subprocess.Popen:
    return subprocess.Popen(_recsim(*args), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT)


def _wait_until(condition, proc: subprocess.Popen | None = None, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if proc is not None and proc.poll() is not None:
            out, err = proc.communicate()
            raise AssertionError(f"the run ended (exit {proc.returncode}) before it was held:\n{err}")
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def _held(gate: Path, n: int = 2):
    return lambda: len(list(gate.glob("reached-*"))) >= n


def _alive(processes: list[psutil.Process]) -> list[psutil.Process]:
    out = []
    for process in processes:
        try:
            if process.is_running() and process.status() != psutil.STATUS_ZOMBIE:
                out.append(process)
        except psutil.NoSuchProcess:
            pass
    return out


def _assert_all_gone(processes: list[psutil.Process], within: float = 5.0) -> None:
    deadline = time.monotonic() + within
    while _alive(processes) and time.monotonic() < deadline:
        time.sleep(0.1)
    left = _alive(processes)
    assert not left, [(p.pid, p.cmdline()) for p in left]


def _reap(proc: subprocess.Popen, processes: list[psutil.Process]) -> str:
    """After a test, whatever happened: kill the run and the processes it started if still
    there (a failing test leaves nothing behind, nor hangs on their open pipes); its stderr."""
    for process in _alive(processes):
        with contextlib.suppress(psutil.Error):
            process.kill()
    if proc.poll() is None:
        proc.kill()
    try:
        return proc.communicate(timeout=30)[1]
    except (subprocess.TimeoutExpired, ValueError):
        return "<stderr not read>"


def _one_screen(result_stderr: str) -> None:
    assert "Traceback" not in result_stderr, result_stderr
    assert len(result_stderr.strip().splitlines()) <= 20, result_stderr


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> Path:
    """The gated scenario run uninterrupted (inline: the gate never closes there)."""
    folder = tmp_path_factory.mktemp("reference")
    return run_experiment(scenario_from_dict(_gate_data(folder / "gate")), folder / "run", workers=1)


# ----------------------------------------------------------------------------- kind 4: signals
def assert_same_outputs(a, b) -> None:
    """:func:`support.assert_same_outputs`, imported on use: this module is also imported as a
    policy's (in subprocesses, where the tests folder is not on the path)."""
    from support import assert_same_outputs as check

    check(a, b)


def test_sigterm_is_an_interrupt_and_resume_completes_identically(tmp_path, reference):
    """``kill -TERM`` of ``recsim run --workers 2`` (what timeout, Slurm and Kubernetes send):
    exit 130, one line, no traceback, the workers stopped, the manifest ``interrupted``; a
    second run on the same --out meanwhile is refused (exit 2) without touching it; --resume
    then ends with the tables of an uninterrupted run and a report that says so."""
    gate = tmp_path / "gate"
    gate.mkdir()
    scenario = _write(tmp_path, _gate_data(gate))
    out, partial = tmp_path / "run", tmp_path / ".run.partial"
    proc = _start("run", scenario, "--out", out, "--workers", "2")  # progress lines: the queue
    workers: list[psutil.Process] = []
    try:
        _wait_until(_held(gate), proc)
        workers = psutil.Process(proc.pid).children(recursive=True)
        assert len(workers) >= 2

        second = _run("run", scenario, "--out", out, "--workers", "1", "-q")
        assert second.returncode == 2, second.stderr
        assert second.stderr.count("\n") == 1 and "being written by another run" in second.stderr
        assert f"pid {proc.pid}" in second.stderr
        assert json.loads((partial / "manifest.json").read_text())["status"] == "running"

        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=60)
        _assert_all_gone(workers)
    finally:
        stderr = _reap(proc, workers)
    assert proc.returncode == 130, stderr
    assert "terminated (SIGTERM)" in stderr and "marked 'interrupted'" in stderr and "--resume" in stderr
    assert "Traceback" not in stderr and "Exception" not in stderr, stderr
    assert not out.exists() and not (tmp_path / ".run.lock").exists()
    manifest = json.loads((partial / "manifest.json").read_text())
    assert manifest["status"] == "interrupted" and "Terminated: SIGTERM" in manifest["error"]
    assert len(list((partial / "_tasks").glob("*.json"))) == 2  # the random tasks had finished

    (gate / "open").touch()
    resumed = _run("run", scenario, "--out", out, "--resume", "--workers", "2", "-q")
    assert resumed.returncode == 0, resumed.stderr
    assert_same_outputs(out, reference)

    # kind 11: the report written by the run shows the folder as it ended
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["status"] == "complete" and manifest["resumed"] is True
    html = (out / "report" / "report.html").read_text()
    assert ".partial" not in html and "running" not in html
    assert f"<code>{out.absolute()}</code>" in html
    assert "<th>status</th><td style='text-align:left;white-space:normal'>complete</td>" in html
    assert f"{manifest['wall_seconds']} s on 2 worker(s)" in html and manifest["finished_at"] in html


def test_sigkill_of_the_parent_leaves_no_worker_running(tmp_path, reference):
    """``kill -KILL`` of the parent: its workers notice and exit within seconds (nothing could
    mark the manifest, which still says ``running``); --resume completes the run identically."""
    gate = tmp_path / "gate"
    gate.mkdir()
    scenario = _write(tmp_path, _gate_data(gate))
    out = tmp_path / "run"
    proc = _start("run", scenario, "--out", out, "--workers", "2", "-q", "--no-report")
    children: list[psutil.Process] = []
    try:
        _wait_until(_held(gate), proc)
        children = psutil.Process(proc.pid).children(recursive=True)
        assert len(children) >= 2
        proc.kill()
        proc.wait(timeout=10)
        _assert_all_gone(children)  # well before the gate opens: they exited on their own
    finally:
        _reap(proc, children)
    assert json.loads((tmp_path / ".run.partial" / "manifest.json").read_text())["status"] == "running"

    (gate / "open").touch()
    resumed = _run("run", scenario, "--out", out, "--resume", "-q", "--no-report")
    assert resumed.returncode == 0, resumed.stderr
    assert_same_outputs(out, reference)


def test_an_interrupted_pool_is_torn_down_before_returning(tmp_path):
    """Ctrl-C (here raised from the progress callback, in the main thread, as the SIGINT
    handler would) while tasks run on the local pool: by the time the interrupt leaves
    ``_run_all`` every worker is gone and the pool's management thread has ended — nothing is
    left for the interpreter's exit hooks, which printed a traceback from
    ``threading._shutdown`` when the pool was torn down after the interrupt."""
    tasks = make_tasks(scenario_from_dict({**_tiny(), "replications": 2}), tmp_path / "work")
    seen: list[psutil.Process] = []
    before = {p.pid for p in psutil.Process().children(recursive=True)}

    def on_progress(key, fraction):
        seen.extend(p for p in psutil.Process().children(recursive=True)
                    if p.pid not in before and "resource_tracker" not in " ".join(p.cmdline()))
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        _run_all(tasks, 2, None, on_progress)
    assert seen
    assert not _alive(seen), [(p.pid, p.cmdline()) for p in _alive(seen)]
    managers = [t for t in threading.enumerate() if type(t).__name__ == "_ExecutorManagerThread"]
    assert not managers


# ----------------------------------------------------------------------------- kind 5: disks
def _limit_file_size(limit: int):
    def apply() -> None:  # in the child, before it runs: its writes past `limit` bytes fail (EFBIG)
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    return apply


def test_a_disk_that_fills_mid_run_is_one_screen_naming_the_path(tmp_path):
    """Writes past a size limit fail with EFBIG as on a full disk (Python ignores SIGXFSZ):
    the scenario and manifest fit, the event log of the first task does not. Exit 1, one
    screen naming the folder, the file or task and the manifest's status, which says
    ``failed``; no temporary file left."""
    data = _tiny()
    data.update(policies=["random", "chronological"], workers=2)
    data["population"]["n_users"] = 30
    scenario = _write(tmp_path, data)
    out, partial = tmp_path / "run", tmp_path / ".run.partial"
    result = subprocess.run(_recsim("run", scenario, "--out", out, "-q"), capture_output=True, text=True,
                            timeout=180, cwd=ROOT, preexec_fn=_limit_file_size(16_000))
    assert result.returncode == 1, result.stderr
    _one_screen(result.stderr)
    err = result.stderr
    assert err.startswith(f"error: cannot write the run folder {out}: File too large (EFBIG)"), err
    assert "in task " in err and "× replication" in err
    assert f"the partial output {partial} is marked 'failed'" in err and "--resume" in err
    manifest = json.loads((partial / "manifest.json").read_text())
    assert manifest["status"] == "failed" and "File too large" in manifest["error"]
    assert not out.exists() and not list(tmp_path.rglob("*.json.tmp"))


def test_a_disk_full_for_the_manifest_too_leaves_no_temporary_file(tmp_path):
    """The disk fills while the run is held (every process's file size limit set to 0 from
    outside), so even the manifest cannot be marked: the message says so and names it, the
    manifest keeps its last content (valid JSON), and no zero-byte ``manifest.json.tmp`` is
    left."""
    gate = tmp_path / "gate"
    gate.mkdir()
    scenario = _write(tmp_path, _gate_data(gate))
    out, partial = tmp_path / "run", tmp_path / ".run.partial"
    proc = _start("run", scenario, "--out", out, "-q", "--no-report")
    processes: list[psutil.Process] = []
    try:
        _wait_until(_held(gate), proc)
        processes = [psutil.Process(proc.pid), *psutil.Process(proc.pid).children(recursive=True)]
        for process in processes:
            resource.prlimit(process.pid, resource.RLIMIT_FSIZE, (0, 0))
        (gate / "open").touch()
        proc.wait(timeout=120)
    finally:
        err = _reap(proc, processes)
    assert proc.returncode == 1, err
    _one_screen(err)
    assert err.startswith(f"error: cannot write the run folder {out}: File too large (EFBIG)"), err
    assert "could not be marked 'failed'" in err and f"{partial / 'manifest.json'} still says 'running'" in err
    assert json.loads((partial / "manifest.json").read_text())["status"] == "running"
    assert not list(tmp_path.rglob("*.tmp"))


def test_an_output_folder_that_cannot_be_created_is_exit_2_before_the_run(tmp_path):
    """Found before the run starts — a file where the --out folder's parent should be, or a
    disk already full — is exit 2, one screen naming the path."""
    scenario = _write(tmp_path, {**_tiny(), "policies": ["random"]})
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    result = _run("run", scenario, "--out", blocker / "run", "-q")
    assert result.returncode == 2, result.stderr
    _one_screen(result.stderr)
    assert result.stderr.startswith(f"error: cannot create the run folder {blocker / 'run'}: "), result.stderr
    assert f"writing {blocker}" in result.stderr and "a file of that name is in the way" in result.stderr

    full = subprocess.run(_recsim("run", scenario, "--out", tmp_path / "run", "-q"), capture_output=True,
                          text=True, timeout=180, cwd=ROOT, preexec_fn=_limit_file_size(0))
    assert full.returncode == 2, full.stderr
    _one_screen(full.stderr)
    assert full.stderr.startswith(f"error: cannot create the run folder {tmp_path / 'run'}: File too large"), full.stderr
    assert not (tmp_path / "run").exists() and not list(tmp_path.glob(".run.*"))


def test_run_folder_errors_cross_processes_intact():
    error = RunFolderError("No space left on device (ENOSPC)", path="/x/.r.partial/events", folder="/x/r",
                           task="random × replication 0", error_number=28)
    error.__notes__ = ["the partial output /x/.r.partial is marked 'failed'"]
    copy_ = pickle.loads(pickle.dumps(error))
    assert type(copy_) is RunFolderError and copy_.lines() == error.lines() and copy_.errno == 28
    assert copy_.lines()[:3] == [
        "cannot write the run folder /x/r: No space left on device (ENOSPC)",
        "  writing /x/.r.partial/events",
        "  in task random × replication 0",
    ]


# ----------------------------------------------------------------------------- kind 12: resume, lock
def test_one_writer_at_a_time(tmp_path):
    data = {**_tiny(), "policies": ["random"]}
    out = tmp_path / "run"
    with RunFolder(out, data) as first:
        with pytest.raises(RunFolderBusy, match=f"pid {os.getpid()}"):
            with RunFolder(out, data):
                pass
        assert (first.work / "manifest.json").exists()  # the refused one removed nothing
    assert out.exists() and not (tmp_path / ".run.lock").exists()


MODULE = '''
import numpy as np
from recsim.policies.base import Policy


class Newest(Policy):
    def recommend(self, request, rng):
        order = np.argsort(-request.features.upload_time)
        return request.candidates[order[: request.slate_size]]
'''


class ReadsATable(Policy):
    """A policy whose parameter names a data file by default."""

    class Params(BaseModel):
        model_config = ConfigDict(extra="forbid")
        table: str = "sub/table.csv"

    def recommend(self, request, rng):
        return request.candidates[: request.slate_size]


def test_the_manifest_hashes_the_files_a_scenario_names_and_resume_checks_them(tmp_path, monkeypatch):
    """A file a scenario names in a parameter (a saved agent's weights, a table a policy reads,
    by default or not, in a wrapped base too) is part of what the run ran: the manifest records
    its path and SHA-256 (``"data"``; ``sha256sum``'s), and --resume after it changed, or went,
    is refused, naming the field and the file; one that appears since (a file the policy writes)
    is not. Text outside parameters (names), folders (a policy may write there: Gate's) and
    values that name nothing are not recorded."""
    import hashlib

    from recsim.storage import data_files

    monkeypatch.chdir(tmp_path)
    weights = tmp_path / "weights.npz"
    weights.write_bytes(b"first weights")
    (tmp_path / "sub").mkdir()
    table = tmp_path / "sub" / "table.csv"
    table.write_text("a,b\n1,2\n")
    data = load_scenario(_write(tmp_path, {**_tiny(), "name": "weights.npz", "policies": [
        "random", {"name": "mine", "type": GATE, "params": {"gate": "weights.npz"}},
        {"name": "eg", "type": "epsilon_greedy", "params": {"base": {"type": GATE, "params": {"gate": "sub/table.csv"}}}},
        {"name": "folder", "type": GATE, "params": {"gate": "sub"}},
        {"name": "table", "type": "tests.test_robustness_runs:ReadsATable"},
        {"name": "none", "type": GATE, "params": {"gate": "missing.npz"}}]})).dump()
    found = data_files(data)
    assert set(found) == {"policies.1.params.gate", "policies.2.params.base.params.gate", "policies.4.params.table"}
    assert found["policies.1.params.gate"] == {"file": str(weights),
                                               "sha256": hashlib.sha256(b"first weights").hexdigest()}
    assert found["policies.2.params.base.params.gate"]["file"] == found["policies.4.params.table"]["file"] == str(table)

    out = tmp_path / "run"
    with pytest.raises(KeyboardInterrupt), RunFolder(out, data):  # an attempt interrupted at once
        raise KeyboardInterrupt
    manifest = json.loads((tmp_path / ".run.partial" / "manifest.json").read_text())
    assert manifest["data"] == found
    weights.write_bytes(b"retrained weights")
    changed = rf"the file named by policies\.1\.params\.gate \({weights}\) changed since"
    with pytest.raises(ResumeRefused, match=changed), RunFolder(out, data, resume=True):
        pass
    weights.write_bytes(b"first weights")
    table.write_text("a,b\n1,3\n")  # a wrapped base's file, and a default's
    both = r"policies\.2\.params\.base\.params\.gate .*policies\.4\.params\.table"
    with pytest.raises(ResumeRefused, match=both), RunFolder(out, data, resume=True):
        pass
    table.unlink()
    gone = r"policies\.4\.params\.table \(.*\) cannot be found any more"
    with pytest.raises(ResumeRefused, match=gone), RunFolder(out, data, resume=True):
        pass
    table.write_text("a,b\n1,2\n")  # as it was: resumable, even with a file named that did not
    (tmp_path / "missing.npz").write_bytes(b"written by the run")  # exist then (a policy's log)
    with RunFolder(out, data, resume=True) as folder:
        assert folder.manifest["resumed"] is True


def test_resume_refuses_changed_user_code_or_versions(tmp_path, monkeypatch):
    """A partial run records the software versions and a hash of each user module; --resume
    with a changed policy file or another version is refused (exit 2), saying what changed."""
    user = tmp_path / "user"
    user.mkdir()
    module = user / "newest_policy_for_resume.py"
    module.write_text(MODULE)
    scenario = _write(user, {**_tiny(), "policies": ["random", {"name": "mine", "type": "newest_policy_for_resume:Newest"}]})
    monkeypatch.syspath_prepend(str(user))
    data = load_scenario(scenario).dump()
    out = user / "run"
    with pytest.raises(KeyboardInterrupt):
        with RunFolder(out, data):  # an attempt interrupted at once
            raise KeyboardInterrupt
    partial = user / ".run.partial"
    manifest = json.loads((partial / "manifest.json").read_text())
    assert manifest["code"]["newest_policy_for_resume"]["file"] == str(module)
    assert manifest["status"] == "interrupted" and manifest["versions"]["recsim-engagement"]

    module.write_text(MODULE + "\n# tuned\n")
    result = subprocess.run(_recsim("run", "scenario.yaml", "--out", "run", "--resume", "-q"), cwd=user,
                            capture_output=True, text=True, timeout=180)
    assert result.returncode == 2, result.stderr
    _one_screen(result.stderr)
    assert f"module newest_policy_for_resume ({module}) changed since" in result.stderr
    assert "--overwrite (instead of --resume)" in result.stderr

    module.write_text(MODULE)  # as it was: resumable again, but not under another version
    manifest["versions"]["recsim-engagement"] = "0.0.1"
    (partial / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(ResumeRefused, match=r"recsim-engagement 0\.0\.1 → "):
        with RunFolder(out, data, resume=True):
            pass
    manifest["versions"] = RunFolder(out, data).manifest["versions"]
    (partial / "manifest.json").write_text(json.dumps(manifest))
    with RunFolder(out, data, resume=True) as folder:
        assert folder.manifest["resumed"] is True
