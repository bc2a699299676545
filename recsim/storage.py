"""Run folders: written atomically, one writer at a time, never overwritten unless asked.

The life of a run folder ``<name>/``:

* ``.<name>.lock`` beside it is locked (``fcntl.flock``) for as long as a run writes it, so a
  second run on the same ``--out`` is refused (:class:`RunFolderBusy`) rather than mixed in;
* the run is written into the hidden sibling ``.<name>.partial/``, whose ``manifest.json``
  says ``"status": "running"``;
* once every table is in place the manifest says ``complete`` and the folder is renamed to
  ``<name>/``: the rename *is* the completion, so a folder that looks complete is complete;
* an interrupted or failed run leaves the ``.partial`` folder, its manifest ``interrupted`` or
  ``failed`` (when it can still be written), for ``--resume`` to finish;
* a resume is refused (:class:`ResumeRefused`) unless the scenario, the software versions and
  the user code (a SHA-256 of each module a ``"module:Class"`` names) are those the partial run
  was started with: anything else would mix results of two different programs.

A run folder that cannot be written (no permission, a read-only or full file system, a file
size or disk quota limit) raises :class:`RunFolderError`, which names the path and says whether
the run had started.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import os
import platform
import shutil
import signal
import sys
import threading
import time
import warnings
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterator

import yaml

from .plugins import user_modules

try:  # POSIX; elsewhere run folders are not locked
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]

__all__ = [
    "RunFolderExists",
    "RunFolderBusy",
    "ResumeRefused",
    "RunFolderError",
    "RunFolder",
    "default_run_dir",
    "read_manifest",
    "user_code",
    "is_storage_error",
    "signals_deferred",
]


class RunFolderExists(FileExistsError):
    """The output folder exists and overwriting was not asked for."""


class RunFolderBusy(RunFolderExists):
    """Another run is writing the same run folder (its lock file is held)."""


class ResumeRefused(RunFolderExists):
    """``--resume`` of a partial run that was started with another scenario, other software
    versions or other user code, or that cannot be resumed (nothing to resume, no manifest)."""


#: errno values of a file system that cannot take what a run writes (as opposed to, say, a
#: refused network connection, also an ``OSError``)
STORAGE_ERRNOS = frozenset(
    code for code in (
        errno.ENOSPC, getattr(errno, "EDQUOT", None), errno.EFBIG, errno.EROFS, errno.EACCES,
        errno.EPERM, errno.EIO, errno.ENOENT, errno.ENOTDIR, errno.EISDIR, errno.ENAMETOOLONG,
        getattr(errno, "ESTALE", None), errno.EMLINK, errno.EEXIST,
    ) if code is not None
)

_HINTS = {
    errno.ENOSPC: "the disk is full: free some space",
    errno.EFBIG: "a file reached the largest size allowed (ulimit -f, or the file system's limit)",
    errno.EROFS: "the file system is read-only",
    errno.EACCES: "permission denied: choose a folder you can write",
    errno.EPERM: "operation not permitted: choose a folder you can write",
    errno.ENOTDIR: "a part of the path is a file, not a folder",
    errno.EEXIST: "a file of that name is in the way",
}
if hasattr(errno, "EDQUOT"):
    _HINTS[errno.EDQUOT] = "the disk quota is exhausted: free some space"


#: errno values of a file system that is full (whatever file a write failed on)
FULL_ERRNOS = frozenset(code for code in (errno.ENOSPC, getattr(errno, "EDQUOT", None), errno.EFBIG)
                        if code is not None)


def is_storage_error(exc: BaseException, folder: str | os.PathLike | None = None) -> bool:
    """True for an ``OSError`` saying the file system cannot take what a run writes (a full
    disk, a quota, a permission, a read-only file system, a folder removed under the run).
    With ``folder``, an error naming a file outside it counts only if the disk is full (a
    missing input file elsewhere is not the run folder's problem)."""
    if not isinstance(exc, OSError) or getattr(exc, "errno", None) not in STORAGE_ERRNOS:
        return False
    name = getattr(exc, "filename", None)
    if folder is None or name is None or exc.errno in FULL_ERRNOS:
        return True
    try:
        Path(os.fsdecode(name)).resolve().relative_to(Path(folder).resolve())
    except (ValueError, TypeError, OSError):
        return False
    return True


def _add_note(exc: BaseException, note: str) -> None:
    """``exc.add_note(note)`` (Python 3.11+), the same by hand on 3.10."""
    notes = getattr(exc, "__notes__", None)
    if not isinstance(notes, list):
        try:
            exc.__notes__ = notes = []  # type: ignore[attr-defined]
        except AttributeError:  # pragma: no cover - an exception without a __dict__
            return
    notes.append(note)


class RunFolderError(OSError):
    """A run folder cannot be written: ``path`` (the file or folder a write failed on),
    ``folder`` (the run folder the user asked for, when known), ``reason`` (what the system
    said), ``task`` (the task writing, if any) and ``before_run`` (True when nothing had run
    yet: ``recsim`` exits 2 then, 1 during a run). ``str()`` is the whole report, a few lines
    (:meth:`lines`). Picklable, so it crosses from a worker process intact."""

    def __init__(self, reason: str, *, path: str | os.PathLike | None = None,
                 folder: str | os.PathLike | None = None, task: str | None = None,
                 before_run: bool = False, error_number: int | None = None):
        super().__init__(reason)
        self.reason = reason
        self.path = str(path) if path is not None else None
        self.folder = str(folder) if folder is not None else None
        self.task = task
        self.before_run = before_run
        self.error_number = error_number
        if error_number is not None:
            self.errno = error_number

    @classmethod
    def from_os_error(cls, exc: OSError, *, path: str | os.PathLike | None = None, **kw: Any) -> RunFolderError:
        """The report of ``exc``: the file it names (``exc.filename``) or ``path``."""
        number = getattr(exc, "errno", None)
        reason = os.strerror(number) if number else (getattr(exc, "strerror", None) or str(exc))
        if number:
            reason = f"{reason} ({errno.errorcode.get(number, number)})"
        where = exc.filename if getattr(exc, "filename", None) else path
        return cls(reason, path=where, error_number=number, **kw)

    def lines(self) -> list[str]:
        """The report, line by line: what could not be written and why, then hints."""
        target = f"the run folder {self.folder}" if self.folder else (self.path or "the run folder")
        out = [f"cannot {'create' if self.before_run else 'write'} {target}: {self.reason}"]
        if self.path and self.path != self.folder:
            out.append(f"  writing {self.path}")
        if self.task:
            out.append(f"  in task {self.task}")
        hint = _HINTS.get(self.error_number or -1)
        if hint:
            out.append(f"  {hint}" + ("; choose another --out" if self.before_run and "choose" not in hint else ""))
        out.extend(f"  {note}" for note in getattr(self, "__notes__", ()) or ())
        return out

    def __str__(self) -> str:
        return "\n".join(self.lines())

    def __reduce__(self):
        return (_restore_error, (type(self), self.reason, dict(self.__dict__)))


def _restore_error(cls: type, reason: str, state: dict[str, Any]) -> RunFolderError:
    error = cls.__new__(cls)
    OSError.__init__(error, reason)
    error.__dict__.update(state)
    if state.get("error_number") is not None:
        error.errno = state["error_number"]
    return error


def default_run_dir(scenario_name: str, root: Path = Path("runs")) -> Path:
    """``runs/<scenario>-<YYYYmmdd-HHMMSS>``, with a suffix if that already exists (or a run
    is writing it: its ``.partial`` folder or lock file exists)."""
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    path = root / f"{scenario_name}-{stamp}"
    n = 1
    while path.exists() or any((root / f".{path.name}.{what}").exists() for what in ("partial", "lock")):
        n += 1
        path = root / f"{scenario_name}-{stamp}-{n}"
    return path


def _versions() -> dict[str, str]:
    from importlib import metadata

    out = {"python": platform.python_version()}
    for dist in ("recsim-engagement", "numpy", "pandas", "simpy", "pyarrow", "scipy", "numba"):
        try:
            out[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            out[dist] = "unknown"
    return out


def _kernels_backend() -> str:
    from . import kernels

    return kernels.backend()


# ----------------------------------------------------------------------------- user code
def _digest(path: Path) -> str:
    """SHA-256 of a ``.py`` file, or of a package folder's ``.py`` files (names and contents)."""
    files = [path] if path.is_file() else sorted(p for p in path.rglob("*.py") if "__pycache__" not in p.parts)
    digest = hashlib.sha256()
    for file in files:
        digest.update(str(file.relative_to(path.parent)).encode())
        digest.update(file.read_bytes())
    return digest.hexdigest()


def user_code(scenario: dict[str, Any]) -> dict[str, dict[str, str]]:
    """The user code a scenario (as plain data) runs (:func:`recsim.plugins.user_modules`: the
    modules its ``"module:attr"`` strings name — policies and the policies they wrap, the
    warm-up policy, user-model components, scripted rules — and the helpers they import from
    their own folders), as ``{module: {"file": absolute path, "sha256": hex digest}}``."""
    out = {}
    for name, path in user_modules([scenario]).items():
        try:
            out[name] = {"file": str(path), "sha256": _digest(path)}
        except OSError:
            continue
    return out


def data_files(scenario: dict[str, Any]) -> dict[str, dict[str, str]]:
    """The files a scenario (as plain data) names in its parameters — a saved agent's weights
    (``params: {agent: my_agent.npz}``), a table a policy reads — as ``{field path: {"file":
    absolute path, "sha256": hex digest}}``: every text value under a ``params`` mapping (a
    policy's with its defaults filled in, wrapped bases included) that names an existing file,
    relative to the working directory as the runs open them; the digest is the SHA-256 of its
    bytes (what ``sha256sum`` prints). Folders are not recorded: a parameter naming one is as
    often a place a policy writes to (its logs) as one it reads."""
    out: dict[str, dict[str, str]] = {}

    def walk(value: Any, path: str, in_params: bool) -> None:
        if isinstance(value, dict):
            if isinstance(value.get("type"), str):
                value = {**value, "params": _policy_params(value["type"], value.get("params"))}
            for key, item in value.items():
                walk(item, f"{path}.{key}" if path else str(key), in_params or key == "params")
        elif isinstance(value, list):
            for i, item in enumerate(value):
                walk(item, f"{path}.{i}", in_params)
        elif in_params and isinstance(value, str) and value.strip() and len(value) < 4096 and "\n" not in value:
            try:
                target = Path(value)
                if target.is_file():
                    out[path] = {"file": str(target.resolve()), "sha256": _data_digest(target)}
            except (OSError, ValueError):
                pass

    walk(scenario, "", False)
    return out


def _policy_params(type_name: str, params: Any) -> Any:
    """A policy spec's parameters with its ``Params`` defaults filled in (``params`` as given
    when ``type_name`` is not a policy, or they do not validate)."""
    try:
        from .policies.registry import resolve_policy

        return resolve_policy(type_name).Params(**(params or {})).model_dump(mode="json")
    except Exception:  # noqa: BLE001 - not a policy (a component, a rule), or reported elsewhere
        return params


def _data_digest(path: Path) -> str:
    """SHA-256 of a file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as file:
        for block in iter(lambda: file.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _code_changes(before: dict[str, Any], now: dict[str, Any], what: str = "module") -> list[str]:
    """What differs between two :func:`user_code` (or :func:`data_files`, ``what="the file
    named by"``) records, one phrase per entry."""
    changes = []
    for name in sorted(set(before) | set(now)):
        old, new = before.get(name), now.get(name)
        if old is None:
            changes.append(f"{what} {name} ({new['file']}) was not part of it")
        elif new is None:
            changes.append(f"{what} {name} ({old.get('file')}) cannot be found any more")
        elif old.get("sha256") != new["sha256"]:
            changes.append(f"{what} {name} ({new['file']}) changed since")
    return changes


# ----------------------------------------------------------------------------- writing
def _write_json(path: Path, data: dict[str, Any]) -> None:
    """Write ``data`` as JSON to ``path`` atomically (a temporary sibling, flushed to disk,
    then renamed over it): ``path`` is always the old or the new content, and the temporary
    file never outlives a failed write."""
    text = json.dumps(data, indent=2, default=str) + "\n"
    tmp = path.with_name(path.name + ".tmp")
    try:
        with open(tmp, "w", encoding="utf-8") as file:
            file.write(text)
            file.flush()
            os.fsync(file.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise


@contextlib.contextmanager
def signals_deferred() -> Iterator[None]:
    """Within: SIGINT and SIGTERM are held, then delivered on the way out — for the few steps
    that must not be cut in two by a second Ctrl-C (stopping worker processes, the rename that
    completes a run). Only on the main thread (elsewhere Python cannot handle signals)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    received: list[int] = []
    previous = {}
    for sig in (signal.SIGINT, signal.SIGTERM):
        previous[sig] = signal.getsignal(sig)
        signal.signal(sig, lambda signum, frame: received.append(signum))
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler if handler is not None else signal.SIG_DFL)
        if received:
            signal.raise_signal(received[0])


class _Lock:
    """An exclusive ``flock`` on ``path`` (created if need be, holding the holder's pid),
    removed when released. A lock file replaced while waiting (released and removed by its
    holder) is detected by its inode and taken afresh."""

    def __init__(self, path: Path):
        self.path = path
        self.fd: int | None = None

    def acquire(self, folder: Path) -> None:
        if fcntl is None:  # pragma: no cover - Windows: no lock
            return
        while True:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                holder = os.read(fd, 32).decode("ascii", "replace").strip()
                os.close(fd)
                raise RunFolderBusy(
                    f"{folder} is being written by another run (pid {holder or '?'}, lock file "
                    f"{self.path}); wait for it to end, or choose another --out"
                ) from None
            except OSError as exc:
                os.close(fd)
                if exc.errno in (errno.ENOLCK, errno.EOPNOTSUPP, errno.ENOTSUP, errno.EINVAL):
                    warnings.warn(f"cannot lock {self.path} ({exc.strerror}): nothing stops a second "
                                  "run on the same folder", RuntimeWarning, stacklevel=3)
                    return
                raise
            except BaseException:
                os.close(fd)
                raise
            try:
                same = os.path.samestat(os.fstat(fd), os.stat(self.path))
            except FileNotFoundError:
                same = False
            if same:
                break
            os.close(fd)  # its holder removed it as we opened it: take the new one
        self.fd = fd
        try:
            os.ftruncate(fd, 0)
            os.write(fd, f"{os.getpid()}\n".encode("ascii"))
        except BaseException:
            self.release()
            raise

    def release(self) -> None:
        if self.fd is None:
            return
        with contextlib.suppress(OSError):
            if os.path.samestat(os.fstat(self.fd), os.stat(self.path)):
                os.unlink(self.path)
        os.close(self.fd)  # releases the lock
        self.fd = None


class RunFolder:
    """Context manager around one run's output folder (see the module's docstring).

    >>> with RunFolder(path, scenario_data, overwrite=False) as folder:
    ...     write tables into folder.work   # the .partial folder
    ...     folder.manifest["tasks"] = ...
    On a clean exit the manifest is marked complete and the folder renamed to ``path``.

    The manifest records ``status``, the scenario's name, seed and replications, ``versions``
    (Python and the packages that compute the results), ``code`` (:func:`user_code`), the
    command, ``started_at`` and, at the end, ``finished_at`` (UTC, ISO 8601) and
    ``wall_seconds`` (from entering the folder to the results being complete; see
    :meth:`finish`).
    """

    def __init__(self, path: Path, scenario: dict[str, Any], overwrite: bool = False,
                 command: list[str] | None = None, resume: bool = False):
        self.path = Path(path)
        self.overwrite = overwrite
        self.resume = resume
        if self.path.exists() and not overwrite:
            raise RunFolderExists(
                f"{self.path} already exists; choose another --out or pass --overwrite"
            )
        _check_target(self.path, overwrite)
        self.work = self.path.parent / f".{self.path.name}.partial"
        self.lock_path = self.path.parent / f".{self.path.name}.lock"
        self.scenario = scenario
        self.manifest: dict[str, Any] = {
            "status": "running",
            "scenario": scenario.get("name"),
            "seed": scenario.get("seed"),
            "replications": scenario.get("replications"),
            # outputs.event_sample: the share of users whose full event rows are logged (a
            # sweep over it has each grid point's value in grid.csv)
            "event_sample": scenario.get("outputs", {}).get("event_sample", 1.0),
            "versions": _versions(),
            # the engines' compiled kernels ("numba") or the NumPy code ("numpy"): the same
            # outputs either way (tests/test_kernels.py), recorded for provenance
            "kernels": _kernels_backend(),
            "code": user_code(scenario),
            # files the scenario names (a saved agent's weights, ...), hashed like the code
            "data": data_files(scenario),
            "command": command if command is not None else sys.argv,
            "started_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        }
        self._t0 = 0.0
        self._finished = False
        self._lock = _Lock(self.lock_path)

    # ---- entering: lock, check, create
    def __enter__(self) -> "RunFolder":
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._lock.acquire(self.path)
        except OSError as exc:
            if isinstance(exc, RunFolderExists) or not is_storage_error(exc):
                raise
            raise RunFolderError.from_os_error(exc, path=self.lock_path, folder=self.path, before_run=True) from exc
        try:
            # checked again under the lock: another run may have completed it meanwhile
            if self.path.exists() and not self.overwrite:
                raise RunFolderExists(f"{self.path} already exists; choose another --out or pass --overwrite")
            if self.resume:
                self._check_resume()
                self.manifest["resumed"] = True
            else:
                if self.work.exists():  # an earlier attempt's partial output
                    done = list((self.work / "_tasks").glob("*.json")) if (self.work / "_tasks").is_dir() else []
                    if done and not self.overwrite:  # finished tasks would be lost: say so
                        raise RunFolderExists(
                            f"an earlier attempt left {len(done)} finished task(s) in {self.work} "
                            f"({_status_of(self.work)}); pass --resume to finish it, or --overwrite to "
                            "discard it and start afresh"
                        )
                    shutil.rmtree(self.work)
                self.work.mkdir()
            (self.work / "scenario.yaml").write_text(
                yaml.safe_dump(self.scenario, sort_keys=False, allow_unicode=True), encoding="utf-8"
            )
            self._t0 = time.perf_counter()
            _write_json(self.work / "manifest.json", self.manifest)
        except BaseException as exc:
            self._lock.release()
            if isinstance(exc, OSError) and not isinstance(exc, RunFolderExists) and is_storage_error(exc):
                raise RunFolderError.from_os_error(exc, path=self.work, folder=self.path, before_run=True) from exc
            raise
        return self

    def _check_resume(self) -> None:
        """Refuse (:class:`ResumeRefused`) to resume a partial run other than this one."""
        if not self.work.exists():
            raise ResumeRefused(f"nothing to resume: {self.work} does not exist")
        try:
            previous = yaml.safe_load((self.work / "scenario.yaml").read_text(encoding="utf-8"))
            before = json.loads((self.work / "manifest.json").read_text(encoding="utf-8"))
        except (OSError, ValueError, yaml.YAMLError) as exc:
            raise ResumeRefused(
                f"cannot resume {self.work}: its scenario.yaml or manifest.json cannot be read ({exc}); "
                "pass --overwrite (instead of --resume) to start afresh"
            ) from None
        now = json.loads(json.dumps(self.scenario))
        if previous != now:
            differences = _differences(previous, now)
            shown = "; ".join(differences[:5]) + (f"; and {len(differences) - 5} more" if len(differences) > 5 else "")
            raise ResumeRefused(f"cannot resume {self.work}: it was started with a different scenario ({shown}); "
                                "pass --overwrite (instead of --resume) to start afresh")
        changes = [
            f"{name} {before.get('versions', {}).get(name, 'unknown')} → {version}"
            for name, version in self.manifest["versions"].items()
            if before.get("versions", {}).get(name) != version
        ]
        if "code" not in before and self.manifest["code"]:
            changes.append("it did not record its user code (started by an older recsim)")
        else:
            changes += _code_changes(before.get("code", {}), self.manifest["code"])
        # a data file it read that changed or went; one named that did not exist then is left
        # alone (a file the policy itself writes, such as its log or a marker, appears later)
        old_data = before.get("data", {})
        changes += _code_changes(old_data, {k: v for k, v in self.manifest["data"].items() if k in old_data},
                                 "the file named by")
        if changes:
            raise ResumeRefused(
                f"cannot resume {self.work}: it was started with other code or data, and finishing it would mix "
                f"results of both: {'; '.join(changes)}. Pass --overwrite (instead of --resume) to start afresh, "
                "or restore what it was started with"
            )

    # ---- during the run
    def save_manifest(self) -> None:
        """Write the manifest as it stands (still ``running``) into the work folder."""
        try:
            _write_json(self.work / "manifest.json", self.manifest)
        except OSError as exc:
            if not is_storage_error(exc):
                raise
            raise RunFolderError.from_os_error(exc, path=self.work / "manifest.json", folder=self.path) from exc

    def finish(self) -> None:
        """Record the results as finished now: ``finished_at`` and ``wall_seconds``, kept at
        completion (what a report written after this shows; ``report_seconds`` is apart)."""
        self.manifest["finished_at"] = datetime.now(timezone.utc).isoformat(timespec="seconds")
        self.manifest["wall_seconds"] = round(time.perf_counter() - self._t0, 3)
        self._finished = True

    def final_manifest(self) -> dict[str, Any]:
        """The manifest as it will read once the folder is complete (:meth:`finish` first)."""
        return {**self.manifest, "status": "complete"}

    # ---- leaving: complete (the rename) or record why not
    def __exit__(self, exc_type, exc, tb) -> bool:
        try:
            if exc_type is None:
                with signals_deferred():  # a Ctrl-C now must not leave it half renamed
                    self._complete()
                return False
            error = exc
            if not isinstance(exc, RunFolderError) and is_storage_error(exc, self.path.parent):
                # the parent's own writes (tables, reports): say which run folder
                error = RunFolderError.from_os_error(exc, path=self.work, folder=self.path)
                for note in getattr(exc, "__notes__", ()) or ():
                    _add_note(error, note)
            if isinstance(error, RunFolderError) and error.folder is None:
                error.folder = str(self.path)
            self._record_end(error)
            if error is not exc:
                raise error from exc
            return False
        finally:
            self._lock.release()

    def _complete(self) -> None:
        if not self._finished:
            self.finish()
        self.manifest["status"] = "complete"
        trash = self.path.parent / f".{self.path.name}.replaced"
        try:
            _write_json(self.work / "manifest.json", self.manifest)
            if self.path.exists():  # only reachable with overwrite=True: set the old one aside
                if trash.exists():
                    shutil.rmtree(trash)
                os.replace(self.path, trash)
            try:
                os.replace(self.work, self.path)
            except OSError:
                if trash.exists() and not self.path.exists():
                    os.replace(trash, self.path)  # put the old folder back
                raise
        except OSError as exc:
            error = (RunFolderError.from_os_error(exc, path=self.work, folder=self.path)
                     if is_storage_error(exc) else exc)
            self._record_end(error)
            raise error from (exc if error is not exc else None)
        shutil.rmtree(trash, ignore_errors=True)

    def _record_end(self, exc: BaseException) -> None:
        """Mark the manifest ``interrupted`` or ``failed``; when it cannot be written, say so
        in a note on ``exc`` (and leave no temporary file)."""
        self.manifest["finished_at"] = datetime.now(timezone.utc).isoformat(timespec="seconds")
        self.manifest["wall_seconds"] = round(time.perf_counter() - self._t0, 3)
        status = "interrupted" if isinstance(exc, KeyboardInterrupt) else "failed"
        self.manifest["status"] = status
        self.manifest["error"] = f"{type(exc).__name__}: {exc}"
        try:
            _write_json(self.work / "manifest.json", self.manifest)
        except OSError as error:
            _add_note(exc, f"its manifest could not be marked '{status}' ({os.strerror(error.errno) if error.errno else error}): "
                           f"{self.work / 'manifest.json'} still says 'running'")
        else:
            if isinstance(exc, RunFolderError):
                _add_note(exc, f"the partial output {self.work} is marked '{status}'; "
                               "once it can be written, run again with --resume to finish it")


def _check_target(path: Path, overwrite: bool) -> None:
    """Refuse (:class:`RunFolderExists`) an ``--out`` that would take the working folder or one
    of its parents, and an ``--overwrite`` of anything but a recsim output folder (one with a
    ``manifest.json``) or an empty folder: overwriting replaces the whole folder."""
    resolved = path.resolve()
    here = Path.cwd().resolve()
    if resolved == here or resolved in here.parents:
        raise RunFolderExists(f"--out {path} is the working folder or one of its parents; give a new folder's name")
    if overwrite and path.exists():
        if not path.is_dir():
            raise RunFolderExists(f"--overwrite would replace {path}, which is a file, not a run folder")
        if not (path / "manifest.json").exists() and any(path.iterdir()):
            raise RunFolderExists(
                f"--overwrite would delete {path}, which is not a recsim output folder (no manifest.json); "
                "choose another --out"
            )


def _differences(before: Any, now: Any, path: str = "") -> list[str]:
    """``key: old → new`` for every dotted path where two scenarios (plain data) differ."""
    if isinstance(before, dict) and isinstance(now, dict):
        out = []
        for key in [*before, *(k for k in now if k not in before)]:
            out += _differences(before.get(key), now.get(key), f"{path}.{key}" if path else str(key))
        return out
    if before != now:
        return [f"{path or '<top level>'}: {json.dumps(before)} → {json.dumps(now)}"]
    return []


def _status_of(work: Path) -> str:
    """``its manifest says '<status>'``, or that it has none readable."""
    try:
        status = json.loads((work / "manifest.json").read_text(encoding="utf-8")).get("status")
    except (OSError, ValueError, AttributeError):
        status = None
    return f"its manifest says {status!r}" if status else "no readable manifest"


def read_manifest(run_dir: Path) -> dict[str, Any]:
    return json.loads((Path(run_dir) / "manifest.json").read_text(encoding="utf-8"))
