"""Durations and rates as written in scenario files.

Simulated time is in **seconds** everywhere inside recsim. Scenario files may write
durations as ``45s``, ``30m``, ``6h``, ``14d`` or ``2w`` (a bare number means seconds) and
rates as ``1.5/d`` or ``0.04/h`` (a bare number means per second).
"""

from __future__ import annotations

import math
import re

__all__ = ["SECONDS", "parse_duration", "parse_rate", "format_duration", "format_rate"]

SECONDS = {"s": 1.0, "m": 60.0, "min": 60.0, "h": 3600.0, "d": 86400.0, "w": 7 * 86400.0}

_NUMBER = r"([-+]?[0-9]*\.?[0-9]+(?:[eE][-+]?[0-9]+)?)"
_DURATION = re.compile(r"^\s*" + _NUMBER + r"\s*(s|min|m|h|d|w)?\s*$")
_RATE = re.compile(r"^\s*" + _NUMBER + r"\s*/\s*(s|min|m|h|d|w)\s*$")


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
    if not math.isfinite(seconds):
        raise ValueError(f"a duration must be finite, got {value!r}")
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
    if not math.isfinite(rate):
        raise ValueError(f"a rate must be finite, got {value!r}")
    if rate < 0:
        raise ValueError(f"a rate cannot be negative, got {value!r}")
    return rate


def _exact(value: float, units: tuple[str, ...], template: str) -> str:
    """The shortest rendering of ``value`` (a rate per second if ``template`` has a ``/``, else
    seconds) that reads back as exactly the same float; ties go to the larger unit."""
    per = "/" in template
    best = template.format(repr(float(value)).removesuffix(".0"), "s")
    for unit in units:
        size = SECONDS[unit]
        scaled = value * size if per else value / size
        text = repr(float(scaled)).removesuffix(".0")
        back = float(text) / size if per else float(text) * size
        candidate = template.format(text, unit)
        if back == value and len(candidate) < len(best):
            best = candidate
    return best


def format_duration(seconds: float) -> str:
    """Shortest rendering of ``seconds`` that parses back to exactly the same float, in the
    largest unit that allows it (``86400 -> '1d'``, ``90 -> '90s'``)."""
    return _exact(seconds, ("w", "d", "h", "m", "s"), "{}{}")


def format_rate(rate: float) -> str:
    """Rendering of a per-second ``rate`` that parses back exactly (``'1.5/d'``, ``'0.04/h'``)."""
    return _exact(rate, ("d", "h", "m", "s"), "{}/{}")
