"""User code named in a scenario as ``"module:attribute"`` (policies, user-model components),
and where in it something went wrong (the line of the user's own code a traceback reached)."""

from __future__ import annotations

import importlib
import linecache
import os
import re
import sys
import sysconfig
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

__all__ = ["import_object", "CodeLine", "user_line", "definition_line", "is_library_file", "short_message",
           "names_object", "object_names", "user_module_path", "user_modules"]


@dataclass(frozen=True)
class CodeLine:
    """A line of (user) code: ``file:line`` in ``function``, with its source text."""

    file: str
    line: int
    function: str = ""
    source: str = ""

    @property
    def location(self) -> str:
        return f"{self.file}:{self.line}"

    def __str__(self) -> str:
        where = f"{self.location}" + (f", in {self.function}" if self.function else "")
        return f"{where}: {self.source}" if self.source else where


def _library_dirs() -> tuple[str, ...]:
    """Folders whose files are not the user's code: recsim itself, the standard library and
    installed packages."""
    dirs = {os.path.dirname(os.path.abspath(__file__))}
    for scheme_path in ("stdlib", "platstdlib", "purelib", "platlib"):
        for vars_ in ({}, {"base": sys.base_prefix, "platbase": sys.base_exec_prefix}):
            try:
                path = sysconfig.get_path(scheme_path, vars=vars_ or None)
            except KeyError:
                continue
            if path:
                dirs.add(os.path.abspath(path))
    return tuple(d.rstrip(os.sep) + os.sep for d in dirs)


_LIBRARY_DIRS = _library_dirs()


def is_library_file(filename: str) -> bool:
    """True for code that is not the user's: recsim, the standard library, installed packages
    and frozen or generated code (``<frozen ...>``, ``<string>``)."""
    if not filename or filename.startswith("<"):
        return True
    return os.path.abspath(filename).startswith(_LIBRARY_DIRS)


def _source(filename: str, lineno: int) -> str:
    return linecache.getline(filename, lineno).strip()


def user_line(tb: TracebackType | None, prefer: tuple[str, ...] = ()) -> CodeLine | None:
    """The last frame of ``tb`` in the user's code (not recsim, the standard library or an
    installed package), preferring frames in the files ``prefer``; None if the traceback never
    reaches user code. For a :class:`SyntaxError`, use :func:`syntax_line`."""
    best: CodeLine | None = None
    preferred: CodeLine | None = None
    wanted = {os.path.abspath(p) for p in prefer if p}
    while tb is not None:
        code = tb.tb_frame.f_code
        filename = code.co_filename
        if not is_library_file(filename):
            best = CodeLine(filename, tb.tb_lineno, code.co_name, _source(filename, tb.tb_lineno))
            if os.path.abspath(filename) in wanted:
                preferred = best
        tb = tb.tb_next
    return preferred or best


def error_line(exc: BaseException) -> CodeLine | None:
    """Where ``exc`` arose in user code: a syntax error's own line, else the last user frame of
    its traceback (or of its cause's)."""
    if isinstance(exc, SyntaxError) and exc.filename and exc.lineno:
        text = (exc.text or _source(exc.filename, exc.lineno) or "").strip()
        return CodeLine(exc.filename, int(exc.lineno), "", text)
    found = user_line(exc.__traceback__)
    if found is None and isinstance(getattr(exc.__cause__, "tb", None), str):
        found = remote_user_line(exc.__cause__.tb)  # raised in a worker process (concurrent.futures)
    if found is None and exc.__cause__ is not None and exc.__cause__ is not exc:
        return error_line(exc.__cause__)
    return found


_FRAME = re.compile(r'^\s*File "(?P<file>[^"]+)", line (?P<line>\d+), in (?P<function>\S+)')


def remote_user_line(text: str) -> CodeLine | None:
    """The last frame in the user's code of a traceback formatted as text (what
    ``concurrent.futures`` hands back from a worker process as the exception's cause); None if
    it never reaches user code."""
    best = None
    for line in text.splitlines():
        m = _FRAME.match(line)
        if m and not is_library_file(m["file"]):
            number = int(m["line"])
            best = CodeLine(m["file"], number, m["function"], _source(m["file"], number))
    return best


def definition_line(function: Any) -> CodeLine | None:
    """Where ``function`` (a function or method) is defined: its ``def`` line."""
    function = getattr(function, "__func__", function)
    code = getattr(function, "__code__", None)
    if code is None:
        return None
    return CodeLine(code.co_filename, code.co_firstlineno, code.co_name, _source(code.co_filename, code.co_firstlineno))


def short_message(exc: BaseException, limit: int = 300) -> str:
    """``Type: message`` of an exception on one line, cut to about ``limit`` characters."""
    try:
        text = " ".join(str(exc).split())
    except Exception:  # noqa: BLE001 — a user exception whose __str__ fails
        text = "(its message cannot be printed)"
    if isinstance(exc, SyntaxError):
        text = exc.msg or text
    if len(text) > limit:
        text = text[: limit - 1] + "…"
    name = type(exc).__name__
    return f"{name}: {text}" if text else name


def import_object(type_name: str, what: str) -> Any:
    """The object ``"module:attr"`` (``attr`` may be dotted) names; ``what`` says what it is
    for in messages (e.g. ``"policy 'mine:P'"``). Raises ``LookupError`` with one line saying
    what went wrong: the module cannot be found, fails while importing (a syntax error, an
    exception at import time: the message gives the file, the line and its source), or has no
    such attribute."""
    module_name, _, attr = type_name.partition(":")
    if not module_name or not attr:
        raise LookupError(f"{type_name!r} does not name an object: write it as 'module:Class' (for {what})")
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name is not None and module_name != exc.name and not module_name.startswith(f"{exc.name}."):
            # the module exists but imports something that does not: a failure inside it
            raise LookupError(_import_failed(module_name, what, exc)) from None
        raise LookupError(
            f"cannot import module {module_name!r} for {what} ({exc}); put it next to the "
            "scenario file or in the working directory"
        ) from None
    except (Exception, SystemExit) as exc:  # the module itself fails: name it, not a traceback
        raise LookupError(_import_failed(module_name, what, exc)) from None
    target: Any = module
    for part in attr.split("."):
        if not hasattr(target, part):
            raise LookupError(f"module {module_name!r} has no attribute {attr!r} (for {what})")
        target = getattr(target, part)
    return target


def _import_failed(module_name: str, what: str, exc: BaseException) -> str:
    message = f"importing module {module_name!r} for {what} failed: {short_message(exc)}"
    line = error_line(exc)
    if line is not None:
        message += f" at {line}"
    return message


# ----------------------------------------------------------------------------- user code
def names_object(value: str) -> bool:
    """Whether ``value`` is ``"module:attr"`` with dotted identifiers on both sides (how
    scenarios name user code: policies, components, scripted rules)."""
    module, _, attr = value.partition(":")
    parts = (*module.split("."), *attr.split("."))
    return bool(module) and bool(attr) and all(part.isidentifier() for part in parts)


def object_names(data: Any) -> list[str]:
    """Every ``"module:attr"`` string in nested dicts, lists and tuples (a scenario as plain
    data, a policy's params), in depth-first order, each once."""
    found: dict[str, None] = {}

    def walk(value: Any) -> None:
        if isinstance(value, dict):
            for item in value.values():
                walk(item)
        elif isinstance(value, (list, tuple)):
            for item in value:
                walk(item)
        elif isinstance(value, str) and names_object(value.strip()):
            found.setdefault(value.strip())

    walk(data)
    return list(found)


def user_module_path(module_name: str) -> Path | None:
    """The file (``.py``) or package folder of the top-level module ``module_name`` if it is
    user code (not recsim, the standard library or an installed package), else None."""
    import importlib.util

    module = sys.modules.get(module_name)
    if module is not None:
        origin = getattr(module, "__file__", None)
    else:
        try:
            spec = importlib.util.find_spec(module_name)
        except (ImportError, ValueError):
            return None
        origin = spec.origin if spec is not None else None
    if not origin or is_library_file(origin):
        return None
    path = Path(origin).resolve()
    if path.name == "__init__.py":
        return path.parent
    return path if path.suffix == ".py" else None  # a compiled extension is not user source


def user_modules(scenarios: Iterable[Any]) -> dict[str, Path]:
    """The user code scenarios (plain data) run, as top-level module name -> its ``.py`` file
    or package folder: the modules they name (:func:`object_names`) that are not installed
    packages, and the modules already imported from the same folders (the helpers those
    modules import). Found through ``sys.path`` as on this machine (the scenario's folder and
    the working directory are on it once :func:`recsim.config.load_scenario` has run)."""
    tops = sorted({name.partition(":")[0].split(".")[0] for data in scenarios for name in object_names(data)})
    found = {top: path for top in tops if (path := user_module_path(top)) is not None}
    folders = {path.parent for path in found.values()}
    for name in sorted(sys.modules):
        if "." in name or name in found or name == "__main__":
            continue
        path = user_module_path(name)
        if path is not None and path.parent in folders:
            found[name] = path
    return found
