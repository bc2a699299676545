"""What a task reports when something goes wrong during its run.

A task is one policy on one replication (of one sweep grid point). Whatever user code does in
it — a policy or a user-model component that raises, returns a bad slate, breaks its output
contract, calls ``os._exit`` or ``sys.exit``, runs out of memory or never returns — the task
ends with a :class:`TaskError` that names the task, the simulated time when known, the policy
(or ``user_model.<role>`` component) and the line of user code (``file:line`` and its source):
one screen, no traceback needed. Errors are picklable with every attribute, so they cross from
a worker process to the parent intact.

Policies are called through :meth:`recsim.engine.core.Simulation._policy_call` (which knows
which policy and which method); everything else is caught by :class:`TaskGuard` around the
whole run, which finds the component at fault from the traceback (the innermost frame whose
``self`` is a user component).

``recommender.policy_time_limit`` bounds the wall time of every policy call
(:class:`CallLimit`): each call is timed, and a call still running at the limit is interrupted
where it is. On the main thread of a process (inline runs and the local process pool's workers)
this uses ``SIGALRM`` (``setitimer``), which also interrupts a policy blocked in a sleep, a lock
or I/O; elsewhere (a Dask worker thread, Windows, or when something else owns ``SIGALRM``) a
watchdog thread raises the timeout in the running thread between two Python instructions, which
cannot interrupt one long call into C (a sleep, one huge NumPy operation): such a call is
reported when it returns.
"""

from __future__ import annotations

import ctypes
import os
import signal
import sys
import threading
import time
from types import TracebackType
from typing import Any

import numpy as np

from ..plugins import CodeLine, definition_line, short_message, user_line
from ..users.model import ComponentError

__all__ = [
    "TaskError",
    "UserCodeError",
    "SlateError",
    "PolicyTimeout",
    "ComponentFailure",
    "WorkerDied",
    "OutputsMissing",
    "TaskGuard",
    "CallLimit",
    "format_sim_time",
    "show_slate",
]


def format_sim_time(t: float) -> str:
    """A simulated time for messages, from the start of the horizon: ``t = 1d 03:12:05``
    (negative in the warm-up)."""
    if not np.isfinite(t):
        return f"t = {t}"
    sign = "-" if t < 0 else ""
    days, rest = divmod(abs(float(t)), 86400.0)
    hours, rest = divmod(rest, 3600.0)
    minutes, seconds = divmod(rest, 60.0)
    text = f"t = {sign}{int(days)}d {int(hours):02d}:{int(minutes):02d}:{int(seconds):02d}"
    return text + (" (warm-up)" if t < 0 else "")


def show_slate(slate: Any, limit: int = 10) -> str:
    """A slate as a short, one-line list: at most ``limit`` items, then how many there are."""
    if slate is None:
        return "None"
    try:
        return _show_slate(slate, limit)
    except Exception:  # noqa: BLE001 — whatever the user returned, say something
        try:
            text = repr(slate)
        except Exception:  # noqa: BLE001
            text = f"<a {type(slate).__name__} that cannot be printed>"
        text = " ".join(text.split())
        return text if len(text) <= 120 else text[:119] + "…"


def _show_slate(slate: Any, limit: int) -> str:
    array = np.asarray(slate)
    flat = array.ravel()
    shown = ", ".join(repr(x.item() if hasattr(x, "item") else x) for x in flat[:limit])
    more = f", … ({flat.shape[0]} items)" if flat.shape[0] > limit else ""
    kind = f"{type(slate).__name__}" if not isinstance(slate, np.ndarray) else f"{array.dtype} array"
    if isinstance(slate, np.ndarray) and array.ndim != 1:
        kind += f" of shape {array.shape}"
    text = f"[{shown}{more}] ({kind})"
    return text if len(text) <= 240 else text[:239] + "…"


def _restore(cls: type, message: str, state: dict[str, Any]) -> BaseException:
    error = cls.__new__(cls)
    BaseException.__init__(error, message)
    error.__dict__.update(state)
    return error


class TaskError(RuntimeError):
    """A task (one policy on one replication, of one sweep grid point) failed during its run.

    ``message`` says what happened; ``policy``, ``replication``, ``point`` and ``time`` (the
    simulated time, seconds, when known) name the task; ``details`` are further lines. ``str()``
    is the whole report, a few lines long."""

    def __init__(self, message: str, *, policy: str | None = None, replication: int | None = None,
                 point: int | None = None, time: float | None = None, details: list[str] | tuple = ()):
        super().__init__(message)
        self.message = message
        self.policy = policy
        self.replication = replication
        self.point = point
        self.time = time
        self.details = list(details)

    @staticmethod
    def describe_task(policy: str, replication: int | None, point: int | None = None) -> str:
        """``"<policy> × replication <r>"``, and ``", sweep grid point <p>"`` in a sweep."""
        text = f"{policy} × replication {replication}"
        return text + (f", sweep grid point {point}" if point is not None else "")

    @property
    def task(self) -> str | None:
        """``"<policy> × replication <r>"`` (and the grid point), or None if not known."""
        if self.policy is None:
            return None
        return self.describe_task(self.policy, self.replication, self.point)

    def _where(self) -> str | None:
        parts = []
        if self.task is not None:
            parts.append(f"task {self.task}")
        if self.time is not None:
            parts.append(f"simulated {format_sim_time(self.time)}")
        return "  in " + ", at ".join(parts) if parts else None

    def lines(self) -> list[str]:
        """The report, line by line."""
        where = self._where()
        return [self.message, *([where] if where else []), *(f"  {line}" for line in self.details)]

    def __str__(self) -> str:
        return "\n".join(self.lines())

    def __reduce__(self):
        return (_restore, (type(self), self.message, dict(self.__dict__)))


class UserCodeError(TaskError, ValueError):
    """User code — a policy, or a user-model component — failed during a run or broke its
    contract (a :class:`RuntimeError`, and a :class:`ValueError` like the contract errors it
    generalizes). Besides the task: ``actor`` (``"policy 'mine' (my_policies:Mine)"`` or
    ``"user_model.choice"``), ``call`` (the method the engine called), ``error`` (the
    exception, ``Type: message``, if one was raised) and the line of user code: ``location``
    (``file:line``), ``function`` and ``source`` (the line itself); ``line_note`` says what the
    line is (where it failed, or the method whose output broke the contract)."""

    def __init__(self, message: str, *, actor: str = "", call: str = "", error: str = "",
                 line: CodeLine | None = None, line_note: str = "your code", **task: Any):
        super().__init__(message, **task)
        self.actor = actor
        self.call = call
        self.error = error
        self.location = line.location if line is not None else None
        self.function = line.function if line is not None else ""
        self.source = line.source if line is not None else ""
        self.line_note = line_note

    def lines(self) -> list[str]:
        out = [self.message]
        where = self._where()
        if where:
            out.append(where)
        if self.location:
            out.append(f"  {self.line_note}: {self.location}" + (f", in {self.function}" if self.function else ""))
            if self.source:
                out.append(f"      {self.source}")
        out.extend(f"  {line}" for line in self.details)
        return out


class SlateError(UserCodeError):
    """A policy returned a slate that breaks the contract: ``problem`` says what is wrong,
    ``slate`` shows it (truncated); the message names the policy and the task."""

    def __init__(self, message: str, *, problem: str | None = None, slate: str | None = None, **kw: Any):
        super().__init__(message, **kw)
        self.problem = problem or message
        self.slate = slate


class PolicyTimeout(UserCodeError):
    """A policy call ran past ``recommender.policy_time_limit``; ``limit`` and ``elapsed`` in
    seconds (``elapsed`` is None when the call was interrupted)."""

    def __init__(self, message: str, *, limit: float = 0.0, elapsed: float | None = None, **kw: Any):
        super().__init__(message, **kw)
        self.limit = limit
        self.elapsed = elapsed


class ComponentFailure(UserCodeError, ComponentError):
    """A user-model component raised, or broke its output contract, during a run: ``actor`` is
    ``user_model.<role>``; ``component`` the class (``module.Class``)."""

    def __init__(self, message: str, *, component: str = "", **kw: Any):
        super().__init__(message, **kw)
        self.component = component


class WorkerDied(TaskError):
    """The process running one or more tasks died (killed, out of memory, a crash in native
    code): ``tasks`` names the tasks it may have been running."""

    def __init__(self, message: str = "", *, tasks: list[str] | tuple = (), **kw: Any):
        tasks = list(tasks)
        if not message:
            which = ", ".join(tasks) if tasks else "unknown tasks"
            message = (
                f"a worker process died while running {which} (killed by the system or by hand, out of "
                "memory, os._exit or a crash in native code); nothing was written for the unfinished "
                "tasks — run again with --resume to finish them, with --workers 1 to see which fails"
            )
        super().__init__(message, **kw)
        self.tasks = tasks


class OutputsMissing(TaskError):
    """Tasks reported success but their outputs are not in the run folder (checked by the
    client after the run, :func:`recsim.experiment.verify_outputs`): typically workers that
    do not share the run folder with this machine wrote them elsewhere. ``missing`` maps each
    such task (``"<policy> × replication <r>"``) to its missing files, relative to its run
    folder; ``folder`` is the run folder."""

    #: at most this many tasks are listed in the report
    SHOWN = 5

    def __init__(self, missing: dict[str, list[str]], *, folder: str = "", n_tasks: int | None = None,
                 **kw: Any):
        count = f"{len(missing)} of {n_tasks}" if n_tasks is not None else f"{len(missing)}"
        message = (f"the outputs of {count} task(s) are missing from the run folder {folder}, although "
                   "the tasks reported success; the run is not complete")
        shown = list(missing.items())[: self.SHOWN]
        details = [f"task {task}: missing {', '.join(files)}" for task, files in shown]
        if len(missing) > self.SHOWN:
            details.append(f"… and {len(missing) - self.SHOWN} more tasks")
        details.append(
            "on a cluster, every worker must see the run folder at the same absolute path (a "
            "shared file system); run again with --resume to redo these tasks"
        )
        super().__init__(message, details=[*details, *kw.pop("details", ())], **kw)
        self.missing = dict(missing)
        self.folder = folder
        self.n_tasks = n_tasks


# ----------------------------------------------------------------------------- os._exit
class ExitCalled(BaseException):
    """``os._exit(status)`` called by user code during a run (intercepted: it would end the
    process without a word)."""

    def __init__(self, status: int = 0):
        super().__init__(status)
        self.status = status


_real_exit = os._exit
_exit_lock = threading.Lock()
_guarded_threads: dict[int, int] = {}  # thread id -> nesting depth
_guard_pid = os.getpid()


def _intercepted_exit(status: int = 0) -> None:
    if os.getpid() == _guard_pid and threading.get_ident() in _guarded_threads:
        raise ExitCalled(status)
    _real_exit(status)


def _intercept_exit(on: bool) -> None:
    """Count a guarded run on this thread in or out; ``os._exit`` is intercepted while any
    run is under way, for the threads running them."""
    global _guard_pid
    ident = threading.get_ident()
    with _exit_lock:
        if on:
            if not _guarded_threads:
                _guard_pid = os.getpid()
                os._exit = _intercepted_exit
            _guarded_threads[ident] = _guarded_threads.get(ident, 0) + 1
        else:
            depth = _guarded_threads.get(ident, 0) - 1
            if depth > 0:
                _guarded_threads[ident] = depth
            else:
                _guarded_threads.pop(ident, None)
            if not _guarded_threads and os._exit is _intercepted_exit:
                os._exit = _real_exit


# ----------------------------------------------------------------------------- time limit
class TimedOut(BaseException):
    """Raised inside a policy call that ran past ``recommender.policy_time_limit`` (a
    BaseException, so that the policy's own ``except Exception`` cannot swallow it)."""


def _async_raise(thread_id: int, exc: type[BaseException] | None) -> None:
    """Raise ``exc`` in thread ``thread_id`` at its next Python instruction (None: cancel)."""
    ctypes.pythonapi.PyThreadState_SetAsyncExc(ctypes.c_ulong(thread_id), ctypes.py_object(exc) if exc else None)


class CallLimit:
    """Holds policy calls to ``seconds`` of wall time (see the module's docstring): call
    :meth:`begin` before a call, :meth:`end` after it (raises :class:`TimedOut` if it overran),
    :meth:`abort` when it raised, :meth:`close` when the run is over."""

    def __init__(self, seconds: float):
        self.seconds = float(seconds)
        self.active = False
        self.fired = False
        self.started = 0.0
        self.mode: str | None = None  # "alarm" or "watchdog", chosen at the first call
        self._lock = threading.Lock()
        self._previous: Any = None
        self._thread_id = 0
        self._stop: threading.Event | None = None
        self._thread: threading.Thread | None = None

    def _install(self) -> None:
        alarm = hasattr(signal, "setitimer") and threading.current_thread() is threading.main_thread()
        if alarm:
            previous = signal.getsignal(signal.SIGALRM)
            if callable(previous):  # someone else's handler (e.g. a test timeout): leave it alone
                alarm = False
        if alarm:
            self.mode = "alarm"
            self._previous = signal.signal(signal.SIGALRM, self._on_alarm)
        else:
            self.mode = "watchdog"
            self._thread_id = threading.get_ident()
            self._stop = threading.Event()
            self._thread = threading.Thread(target=self._watch, name="recsim-policy-time-limit", daemon=True)
            self._thread.start()

    def _on_alarm(self, signum: int, frame: Any) -> None:
        if self.active:
            self.fired = True
            raise TimedOut()

    def _watch(self) -> None:
        poll = min(0.1, max(0.005, self.seconds / 20))
        stop = self._stop
        assert stop is not None
        while not stop.wait(poll):
            with self._lock:
                if self.active and not self.fired and time.perf_counter() - self.started > self.seconds:
                    self.fired = True
                    _async_raise(self._thread_id, TimedOut)

    def begin(self) -> None:
        if self.mode is None:
            self._install()
        self.fired = False
        self.started = time.perf_counter()
        self.active = True
        if self.mode == "alarm":
            signal.setitimer(signal.ITIMER_REAL, self.seconds)

    def _disarm(self) -> None:
        if self.mode == "alarm":
            signal.setitimer(signal.ITIMER_REAL, 0)
            self.active = False
        else:
            with self._lock:
                self.active = False
                if self.fired:  # raised too late to land in the call: cancel it
                    _async_raise(self._thread_id, None)

    def end(self) -> float:
        """The call's wall time; :class:`TimedOut` if it exceeded the limit."""
        self._disarm()
        elapsed = time.perf_counter() - self.started
        if self.fired or elapsed > self.seconds:
            raise TimedOut()
        return elapsed

    def abort(self) -> float:
        """Disarm after a call that raised; the time it ran."""
        self._disarm()
        return time.perf_counter() - self.started

    def close(self) -> None:
        if self.mode == "alarm":
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, self._previous if self._previous is not None else signal.SIG_DFL)
        elif self.mode == "watchdog" and self._stop is not None:
            self._stop.set()
            if self._thread is not None and self._thread is not threading.current_thread():
                self._thread.join(timeout=1.0)
            self._thread = None
        self.active = False
        self.mode = None


# ----------------------------------------------------------------------------- finding the culprit
def _frames(tb: TracebackType | None):
    while tb is not None:
        yield tb
        tb = tb.tb_next


def sim_time_of(tb: TracebackType | None) -> float | None:
    """The simulated time a failed step was taken at, from the engine's frames: the
    innermost ``now`` (the earliest of a batch's times) or a synchronization point's ``t``."""
    engine_dir = os.path.dirname(os.path.abspath(__file__))
    found = None
    for frame_tb in _frames(tb):
        frame = frame_tb.tb_frame
        if os.path.dirname(os.path.abspath(frame.f_code.co_filename)) != engine_dir:
            continue
        local = frame.f_locals
        for name in ("now", "t"):
            value = local.get(name)
            try:
                if isinstance(value, np.ndarray) and value.size:
                    found = float(value.min())
                    break
                if isinstance(value, (float, int, np.floating)) and not isinstance(value, bool):
                    found = float(value)
                    break
            except Exception:  # noqa: BLE001 — best effort
                pass
    return found


def _module_file(obj: Any) -> str | None:
    module = sys.modules.get(getattr(type(obj), "__module__", ""), None)
    return getattr(module, "__file__", None)


def component_at_fault(tb: TracebackType | None, classes: dict[str, type]) -> tuple[str, Any, str] | None:
    """``(role, component, method)`` of the user component a traceback went through (the
    innermost; ``method`` is the one the engine called), or None. ``classes``: role -> the
    scenario's user component classes; guarded wrappers are recognized too."""
    from ..users.model import _Guarded

    found: list[tuple[str, Any, str]] = []
    for frame_tb in _frames(tb):
        frame = frame_tb.tb_frame
        try:
            obj = frame.f_locals.get("self")
        except Exception:  # noqa: BLE001
            continue
        if obj is None:
            continue
        if isinstance(obj, _Guarded):
            method = frame.f_locals.get("name") or frame.f_code.co_name
            found.append((obj._role, obj._component, str(method)))
            continue
        for role, cls in classes.items():
            if isinstance(obj, cls):
                found.append((role, obj, frame.f_code.co_name))
                break
    if not found:
        return None
    role, component, _ = found[-1]
    # the method the engine called: the outermost frame of the same component
    method = next(m for r, c, m in found if c is component)
    return role, component, method


def user_component_classes(scenario: Any) -> dict[str, type]:
    """role -> class of each user-model component the scenario names as ``module:Class``."""
    from ..users.model import resolve_component

    classes = {}
    for role, spec in getattr(scenario, "user_model", ()):
        if ":" in spec.type:
            try:
                classes[role] = resolve_component(role, spec.type)
            except Exception:  # noqa: BLE001 — reported at validation
                pass
    return classes


def component_failure(exc: BaseException, role: str, component: Any, method: str, *,
                      called_by: str | None = None, **task: Any) -> ComponentFailure:
    """The :class:`ComponentFailure` for ``exc`` raised in (or about) ``component``."""
    cls = type(component)
    name = f"{cls.__module__}.{cls.__qualname__}"
    where = f"user_model.{role}"
    details = [f"called by {called_by}"] if called_by else []
    if isinstance(exc, ComponentError):  # its output broke the contract: the method's def
        line = definition_line(getattr(cls, method, None)) if method else None
        return ComponentFailure(str(exc).splitlines()[0], actor=where, call=method, component=name, line=line,
                                line_note="the method whose output broke it", details=details, **task)
    if isinstance(exc, ExitCalled):
        what = f"called os._exit({exc.status}), which would have ended the process"
    elif isinstance(exc, SystemExit):
        what = f"called sys.exit({exc.code!r})"
    else:
        what = f"raised {short_message(exc)}"
    message = (f"{where}: the component {cls.__qualname__} (from {cls.__module__}) failed: {method} {what}")
    line = user_line(exc.__traceback__, prefer=tuple(f for f in (_module_file(component),) if f))
    return ComponentFailure(message, actor=where, call=method, component=name, error=short_message(exc),
                            line=line, details=details, **task)


def _original(exc: BaseException) -> BaseException:
    """The exception SimPy copied (``type(e)(*e.args)``, the original as ``__cause__``) to
    re-raise it from ``Environment.step``."""
    cause = exc.__cause__
    while cause is not None and type(cause) is type(exc) and cause.args == exc.args:
        exc, cause = cause, cause.__cause__
    return exc


class TaskGuard:
    """Around a task's run: ``os._exit`` from user code is intercepted, and whatever escapes
    becomes a :class:`TaskError` naming the task — a :class:`ComponentFailure` when a user
    component is at fault. recsim's own errors keep their type; a note names the task.

    ``sim`` (set by the engine once built) is closed on the way out (its time limit)."""

    def __init__(self, scenario: Any, policy: str, replication: int, point: int | None = None):
        self.scenario = scenario
        self.policy = policy
        self.replication = replication
        self.point = point
        self.sim: Any = None

    def task(self) -> dict[str, Any]:
        return {"policy": self.policy, "replication": self.replication, "point": self.point}

    def __enter__(self) -> TaskGuard:
        _intercept_exit(True)
        return self

    def __exit__(self, kind, exc, tb) -> bool:
        _intercept_exit(False)
        if self.sim is not None:
            self.sim.close()
        if exc is None or isinstance(exc, (KeyboardInterrupt, GeneratorExit)):
            return False
        original = _original(exc)
        error = self.convert(original)
        if error is exc:
            return False  # recsim's own error: on its way, with a note naming the task
        if error is original:  # SimPy's copy of an error explained already: the original
            raise error
        raise error from original

    def reraise(self, exc: BaseException) -> None:
        """Raise what ``exc`` (being handled) becomes: for code that must explain an error where
        it happens (inside a SimPy process, which re-raises copies of exceptions)."""
        original = _original(exc)
        error = self.convert(original)
        if error is exc:
            raise exc
        if error is original:  # SimPy's copy of an error explained already: the original
            raise error
        raise error from original

    def convert(self, exc: BaseException) -> BaseException:
        exc = _original(exc)
        if isinstance(exc, TaskError):
            for key, value in self.task().items():
                if getattr(exc, key, None) is None:
                    setattr(exc, key, value)
            return exc
        time_ = sim_time_of(exc.__traceback__)
        task = {**self.task(), "time": time_}
        culprit = component_at_fault(exc.__traceback__, user_component_classes(self.scenario))
        if culprit is not None:
            role, component, method = culprit
            return component_failure(exc, role, component, method, **task)
        if isinstance(exc, TimedOut):
            return PolicyTimeout("a policy call ran past recommender.policy_time_limit", **task)
        if isinstance(exc, (ExitCalled, SystemExit)):
            status = exc.status if isinstance(exc, ExitCalled) else exc.code
            call = "os._exit" if isinstance(exc, ExitCalled) else "sys.exit"
            return UserCodeError(f"{call}({status!r}) was called during the run", error=short_message(exc),
                                 line=user_line(exc.__traceback__), **task)
        if not isinstance(exc, Exception):
            return exc
        # recsim's own error (or a library's): keep it, say which task
        note = f"in task {TaskError('', **task).task}" + (f", at simulated {format_sim_time(time_)}" if time_ is not None else "")
        if hasattr(exc, "add_note"):
            exc.add_note(note)
        return exc
