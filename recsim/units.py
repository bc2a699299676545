"""Durations and rates as written in scenario files.

Simulated time is in **seconds** everywhere inside recsim. Scenario files may write
durations as ``45s``, ``30m``, ``6h``, ``14d`` or ``2w`` (a bare number means seconds) and
rates as ``1.5/d`` or ``0.04/h`` (a bare number means per second).
"""

from __future__ import annotations

import re

__all__ = ["SECONDS", "parse_duration", "parse_rate", "format_duration"]

SECONDS = {"s": 1.0, "m": 60.0, "min": 60.0, "h": 3600.0, "d": 86400.0, "w": 7 * 86400.0}

_DURATION = re.compile(r"^\s*([0-9]*\.?[0-9]+(?:[eE][-+]?[0-9]+)?)\s*(s|min|m|h|d|w)?\s*$")
_RATE = re.compile(r"^\s*([0-9]*\.?[0-9]+(?:[eE][-+]?[0-9]+)?)\s*/\s*(s|min|m|h|d|w)\s*$")


def parse_duration(value: object) -> float:
    """Return a duration in seconds from ``"14d"``, ``"6h"``, ``90`` (seconds), ...

    Raises ``ValueError`` with the accepted forms on anything else (negative values included).
    """
    if isinstance(value, bool):
        raise ValueError("expected a duration such as '45s', '30m', '6h' or '14d'")
    if isinstance(value, (int, float)):
        seconds = float(value)
    elif isinstance(value, str):
        match = _DURATION.match(value)
        if not match:
            raise ValueError(
                f"expected a duration such as '45s', '30m', '6h' or '14d', got {value!r}"
            )
        seconds = float(match.group(1)) * SECONDS[match.group(2) or "s"]
    else:
        raise ValueError(f"expected a duration such as '45s', '30m', '6h' or '14d', got {value!r}")
    if seconds < 0:
        raise ValueError(f"a duration cannot be negative, got {value!r}")
    return seconds


def parse_rate(value: object) -> float:
    """Return a rate in events per second from ``"1.5/d"``, ``"0.04/h"`` or a number (per s)."""
    if isinstance(value, bool):
        raise ValueError("expected a rate such as '1.5/d' or '0.04/h'")
    if isinstance(value, (int, float)):
        rate = float(value)
    elif isinstance(value, str):
        match = _RATE.match(value)
        if not match:
            raise ValueError(f"expected a rate such as '1.5/d' or '0.04/h', got {value!r}")
        rate = float(match.group(1)) / SECONDS[match.group(2)]
    else:
        raise ValueError(f"expected a rate such as '1.5/d' or '0.04/h', got {value!r}")
    if rate < 0:
        raise ValueError(f"a rate cannot be negative, got {value!r}")
    return rate


def format_duration(seconds: float) -> str:
    """Shortest exact rendering of ``seconds`` in the largest whole unit (``86400 -> '1d'``)."""
    for unit in ("w", "d", "h", "m", "s"):
        size = SECONDS[unit]
        if seconds >= size and float(seconds / size).is_integer():
            return f"{int(seconds / size)}{unit}"
    return f"{seconds:g}s"
