"""User code named in a scenario as ``"module:attribute"`` (policies, user-model components)."""

from __future__ import annotations

import importlib
from typing import Any

__all__ = ["import_object"]


def import_object(type_name: str, what: str) -> Any:
    """The object ``"module:attr"`` (``attr`` may be dotted) names; ``what`` says what it is
    for in messages (e.g. ``"policy 'mine:P'"``). Raises ``LookupError`` with one line saying
    what went wrong: the module cannot be found, fails while importing (a syntax error, an
    exception at import time), or has no such attribute."""
    module_name, _, attr = type_name.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise LookupError(
            f"cannot import module {module_name!r} for {what} ({exc}); put it next to the "
            "scenario file or in the working directory"
        ) from None
    except Exception as exc:  # the module itself fails: name it, not a traceback
        raise LookupError(f"importing module {module_name!r} for {what} failed: {type(exc).__name__}: {exc}") from None
    target: Any = module
    for part in attr.split("."):
        if not hasattr(target, part):
            raise LookupError(f"module {module_name!r} has no attribute {attr!r} (for {what})")
        target = getattr(target, part)
    return target
