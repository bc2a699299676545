"""Running tasks on a Dask cluster (the optional ``dask`` extra).

A Dask worker may run on another machine, in another working directory, with another
``sys.path``; everything a task needs must therefore reach it explicitly. :func:`dask_executor`
opens the executor tasks run on and, before any task is submitted:

- **connects** to the scheduler at an address (a scheduler that cannot be reached is a
  :class:`SchedulerUnreachable`, one line) or starts a ``LocalCluster`` of single-threaded
  processes;
- **ships the scenario's user code** (:func:`user_code`): every module a scenario names as
  ``"module:Class"`` (policies, user-model components, the warm-up policy, scripted rules,
  rerankers' base policies — wherever such a name appears) that is not an installed package,
  with the modules from the same folders that they imported, is packed into one zip archive and
  put on every worker's ``sys.path`` by a worker plugin (:class:`UserCode`), also on workers
  that join later. Installed packages must be installed on the workers;
- **checks that every worker sees the run folder** (:func:`check_shared_folders`): tasks write
  their partitions straight into it, so it must be on a file system the workers share, at the
  same absolute path. Task paths are absolute (:func:`recsim.experiment.make_tasks`), and the
  client checks every task's partitions after the run (:func:`recsim.experiment.verify_outputs`).

On the way out, after a failure or Ctrl-C, the remaining tasks are cancelled and the client and
cluster closed with Dask's logging and warnings silenced, so that an interrupt prints one line.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib
import io
import logging
import os
import re
import signal
import sys
import threading
import uuid
import warnings
import zipfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from distributed import Client, LocalCluster
from distributed.diagnostics.plugin import WorkerPlugin

from .cluster_errors import ClusterSetupError, DaskMissing, FolderNotShared, SchedulerUnreachable
from .plugins import object_names, user_modules

__all__ = [
    "SchedulerUnreachable",
    "FolderNotShared",
    "UserCode",
    "dask_executor",
    "connect",
    "named_modules",
    "user_code",
    "ship_user_code",
    "check_shared_folders",
]


#: the file name of the user-code archive on a worker: ``recsim-user-code-<digest>.zip``
_ARCHIVE_PREFIX = "recsim-user-code-"


# ----------------------------------------------------------------------------- user code
def named_modules(data: Any) -> set[str]:
    """Every module a scenario's data names in a ``"module:attribute"`` string, wherever it is."""
    return {name.partition(":")[0] for name in object_names(data)}


def user_code(scenarios: Iterable[dict[str, Any]]) -> dict[str, Path]:
    """The user code the scenarios need (:func:`recsim.plugins.user_modules`)."""
    return user_modules(scenarios)


def _members(modules: dict[str, Path]) -> list[tuple[str, Path]]:
    """The files of ``modules`` (name -> ``.py`` file or package folder) as (name in the
    archive, file): ``name.py``, or every file of a package but ``__pycache__``'s."""
    members: list[tuple[str, Path]] = []
    for name, path in sorted(modules.items()):
        if path.is_dir():
            for file in sorted(path.rglob("*")):
                relative = file.relative_to(path.parent)
                if file.is_file() and "__pycache__" not in relative.parts and file.suffix != ".pyc":
                    members.append((relative.as_posix(), file))
        else:
            members.append((f"{name}.py", path))
    return members


def _archive(members: list[tuple[str, Path]]) -> bytes:
    """A zip archive of ``members`` (name in the archive, file): the same bytes for the same
    sources."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for arcname, file in members:
            info = zipfile.ZipInfo(arcname, date_time=(1980, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, file.read_bytes())
    return buffer.getvalue()


class UserCode(WorkerPlugin):
    """A worker plugin that makes the user modules ``modules`` (top-level names) importable on
    a worker from ``archive`` (a zip of their sources, :func:`_archive`): the archive is written
    into the worker's local directory and put first on ``sys.path``, and older copies of the
    modules are forgotten so that the next import reads these sources. Registered on the
    scheduler, it is set up on every worker, including those that join later."""

    def __init__(self, archive: bytes, modules: list[str]):
        self.archive = archive
        self.modules = sorted(modules)
        self.digest = hashlib.sha256(archive).hexdigest()[:16]

    @property
    def plugin_name(self) -> str:
        return f"{_ARCHIVE_PREFIX}{self.digest}"

    def setup(self, worker: Any) -> None:
        path = Path(worker.local_directory) / f"{self.plugin_name}.zip"
        if not path.exists():
            tmp = path.with_suffix(f".{uuid.uuid4().hex}.tmp")
            tmp.write_bytes(self.archive)
            os.replace(tmp, path)
        if str(path) in sys.path:
            sys.path.remove(str(path))
        sys.path.insert(0, str(path))
        for name in list(sys.modules):  # the next import reads these sources
            if name.split(".")[0] in self.modules:
                del sys.modules[name]
        importlib.invalidate_caches()


def ship_user_code(client: Client, scenarios: Iterable[dict[str, Any]]) -> tuple[str | None, dict[str, Path]]:
    """Make the scenarios' user code (:func:`user_code`) importable on every worker of
    ``client``'s cluster, now and later (a :class:`UserCode` plugin). Returns the plugin's name
    (None when there is no user code: nothing is registered) and the archive's members
    (``name.py`` or ``package/…``) -> the file on this machine each was read from, to map the
    workers' paths back (:func:`_relocate`)."""
    modules = user_code(scenarios)
    if not modules:
        return None, {}
    members = _members(modules)
    plugin = UserCode(_archive(members), list(modules))
    client.register_plugin(plugin, name=plugin.plugin_name)
    return plugin.plugin_name, dict(members)


#: a path into a worker's copy of the user-code archive; group 1 is the member
_ARCHIVE_PATH = re.compile(
    rf"[^\s'\"()]*{_ARCHIVE_PREFIX}[0-9a-f]{{16}}\.zip[/\\]([A-Za-z0-9_./\\-]+\.py)"
)


def _relocate(exc: BaseException, members: dict[str, Path]) -> None:
    """Rewrite, in an error that came back from a worker, the paths into the worker's copy of
    the user-code archive as the files on this machine they came from (``file:line`` of the
    user's code, in every message and attribute), and read the line of user code here when the
    worker could not (a :class:`~recsim.engine.errors.UserCodeError`'s ``source``)."""
    import linecache

    from .engine.errors import UserCodeError

    def local(match: re.Match) -> str:
        path = members.get(match.group(1).replace("\\", "/"))
        return str(path) if path is not None else match.group(0)

    def rewrite(value: Any) -> Any:
        if isinstance(value, str):
            return _ARCHIVE_PATH.sub(local, value)
        if isinstance(value, list):
            return [rewrite(item) for item in value]
        if isinstance(value, tuple):
            return tuple(rewrite(item) for item in value)
        if isinstance(value, dict):
            return {key: rewrite(item) for key, item in value.items()}
        return value

    try:
        exc.args = rewrite(exc.args)
        for name, value in list(vars(exc).items()):
            setattr(exc, name, rewrite(value))
        if isinstance(exc, UserCodeError) and exc.location and not exc.source:
            file, _, line = exc.location.rpartition(":")
            if line.isdigit():
                exc.source = linecache.getline(file, int(line)).strip()
    except (AttributeError, TypeError, ValueError, OSError):  # best effort: reported either way
        return


# ----------------------------------------------------------------------------- the run folder
def _sees(path: str) -> bool:
    """On a worker: whether the file ``path`` exists there."""
    return os.path.isfile(path)


def check_shared_folders(client: Client, folders: Iterable[str | Path]) -> None:
    """Raise :class:`FolderNotShared` unless every worker of ``client`` sees the folders tasks
    write into (each checked through its nearest existing ancestor, where a uniquely named probe
    file is written and then removed)."""
    roots: dict[Path, None] = {}
    for folder in folders:
        path = Path(os.path.abspath(folder))
        while not path.exists() and path.parent != path:
            path = path.parent
        roots[path] = None
    for root in roots:
        probe = root / f".recsim-probe-{uuid.uuid4().hex}"
        try:
            probe.write_bytes(b"")
        except OSError:
            continue  # not writable here: the tasks will say so
        try:
            seen = client.run(_sees, str(probe))
        finally:
            with contextlib.suppress(OSError):
                probe.unlink()
        blind = sorted(worker for worker, ok in seen.items() if not ok)
        if blind:
            raise FolderNotShared(str(root), blind)


# ----------------------------------------------------------------------------- connecting
#: the signals that stop a run (the command line turns SIGTERM and SIGHUP into an interrupt too)
_STOP_SIGNALS = tuple(getattr(signal, name) for name in ("SIGINT", "SIGTERM", "SIGHUP") if hasattr(signal, name))


@contextlib.contextmanager
def _signals_held(block: bool = False) -> Iterator[list[int]]:
    """Hold back the signals that stop a run (:data:`_STOP_SIGNALS`, those handled in Python)
    for a step that must not be cut in two — a local cluster's start (one interrupted half way is
    left half made, and Dask complains about it at exit), the cluster's shutdown. The signals
    received are appended to the list yielded, for the caller to act on afterwards; nothing is
    re-raised here.

    With ``block``, SIGINT is also *blocked* in this thread meanwhile: the threads started now
    (Dask's event loop) inherit the block, and so do the worker processes they spawn — a Ctrl-C
    typed at a terminal, which reaches the whole process group, then leaves the workers alone
    (instead of killing them mid-start, each printing a traceback); the client stops them. Only
    on the main thread (elsewhere Python cannot handle signals); elsewhere nothing is held."""
    received: list[int] = []
    if threading.current_thread() is not threading.main_thread():
        yield received
        return
    previous = {}
    for sig in _STOP_SIGNALS:
        if callable(signal.getsignal(sig)):  # handled in Python (it raises): record it instead
            previous[sig] = signal.signal(sig, lambda signum, frame: received.append(signum))
    blocking = block and signal.SIGINT in previous and hasattr(signal, "pthread_sigmask")
    if blocking:
        mask = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
    try:
        yield received
    finally:
        if blocking:
            if signal.SIGINT in signal.sigpending():  # held back by the block: take it now
                received.append(signal.sigwait({signal.SIGINT}))
            signal.pthread_sigmask(signal.SIG_SETMASK, mask)
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _deliver(received: list[int]) -> None:
    """Deliver the first signal held back by :func:`_signals_held` now, to its own handler
    (``KeyboardInterrupt``, or the command line's ``Terminated``); KeyboardInterrupt if that
    handler does not raise."""
    if received:
        signal.raise_signal(received[0])
        raise KeyboardInterrupt


def connect(scheduler: str | None, workers: int) -> tuple[Client, LocalCluster | None]:
    """A client of the scheduler at ``scheduler``, or of a new ``LocalCluster`` of ``workers``
    single-threaded processes (dashboard off, bound to this machine), and that cluster. An
    unreachable or malformed address is a :class:`SchedulerUnreachable`; Dask waits for the
    scheduler ``distributed.comm.timeouts.connect`` (30 s by default)."""
    if scheduler is not None:
        try:
            return Client(scheduler), None
        except (OSError, ValueError, TimeoutError) as exc:
            raise SchedulerUnreachable(scheduler, str(exc) or type(exc).__name__) from None
    # multiprocessing's resource tracker, started with the first worker process, unblocks
    # SIGINT in the thread that starts it (Dask's event loop): start it now, so that the worker
    # processes inherit the block of _signals_held
    from multiprocessing import resource_tracker

    resource_tracker.ensure_running()
    with _signals_held(block=True) as interrupted:  # a few seconds
        cluster = LocalCluster(
            n_workers=workers, threads_per_worker=1, processes=True, host="127.0.0.1",
            dashboard_address=None,
            # no dashboard; its HTTP server on a free local port (not 8787, which may be taken)
            scheduler_kwargs={"dashboard_address": "127.0.0.1:0"},
            # the workers' own logs: only critical ones. Their errors reach recsim through the
            # tasks' futures (and are reported once); a heartbeat that fails while the cluster is
            # stopped after Ctrl-C is logged at ERROR, with a traceback, and is not news
            silence_logs=logging.CRITICAL,
        )
        try:
            client = Client(cluster)
        except BaseException:
            _close(None, cluster, None, failed=True)
            raise
    if interrupted:  # Ctrl-C while it started: now it can be closed cleanly
        _close(client, cluster, None, failed=True)
        _deliver(interrupted)
    return client, cluster


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """Silence Dask's loggers and warnings (a shutdown after Ctrl-C or a failure: tasks cancelled
    and connections closed mid-way are expected then, not news)."""
    loggers = [logging.getLogger(name) for name in ("distributed", "tornado", "asyncio")]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.CRITICAL + 1)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        for logger, level in zip(loggers, levels):
            logger.setLevel(level)


def _close(client: Client | None, cluster: LocalCluster | None, executor: Any, failed: bool,
           plugin: str | None = None) -> None:
    """Close the executor, the client and the cluster, with further Ctrl-C held back meanwhile
    (a shutdown cut in two leaves processes behind and Dask complaining at exit); the worker
    plugin named ``plugin`` (the run's user code) is unregistered first, so that a long-lived
    cluster does not set it up on workers that join later. After a failure or Ctrl-C
    (``failed``) the tasks still queued or running are cancelled first, quietly
    (:func:`_quiet`), errors while closing are ignored (the error on its way is the one to
    report) and so is a further Ctrl-C; otherwise one is delivered once all is closed."""
    with _signals_held() as received, (_quiet() if failed else contextlib.nullcontext()):
        try:
            if executor is not None:
                executor.shutdown(wait=not failed)
            if client is not None and plugin is not None:
                with contextlib.suppress(Exception):  # tidying only: the workers keep the code
                    client.unregister_worker_plugin(plugin)
            if client is not None:
                client.close()
            if cluster is not None:
                cluster.close()
        except BaseException:
            if not failed:
                raise
    if not failed:
        _deliver(received)


@contextlib.contextmanager
def dask_executor(
    workers: int,
    scheduler: str | None = None,
    scenarios: Iterable[dict[str, Any]] = (),
    folders: Iterable[str | Path] = (),
) -> Iterator[Any]:
    """A Dask cluster's ``concurrent.futures`` executor: the scheduler at ``scheduler``, else a
    ``LocalCluster`` of ``workers`` single-threaded processes. The user code of ``scenarios``
    (plain data) is shipped to the workers (:func:`ship_user_code`) and every worker must see
    ``folders`` (:func:`check_shared_folders`) before the executor is handed out. On the way
    out, after a failure or Ctrl-C, the remaining tasks are cancelled and everything is closed
    quietly (:func:`_close`)."""
    client, cluster = connect(scheduler, workers)
    executor = None
    failed = True
    plugin: str | None = None
    members: dict[str, Path] = {}
    try:
        plugin, members = ship_user_code(client, scenarios)
        check_shared_folders(client, folders)
        executor = client.get_executor()
        yield executor
        failed = False
    except Exception as exc:
        _relocate(exc, members)  # the user's own paths, not the workers' copies
        raise
    finally:
        _close(client, cluster, executor, failed, plugin)
