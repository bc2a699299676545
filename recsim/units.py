"""Durations and rates as written in scenario files.

Simulated time is in **seconds** everywhere inside recsim. Scenario files may write
durations as ``45s``, ``30m``, ``6h``, ``14d`` or ``2w`` (a bare number means seconds) and
rates as ``1.5/d`` or ``0.04/h`` (a bare number means per second). A clock time such as
``20:00`` is not a duration (YAML 1.1 read it as 1200 s, in base 60): it is rejected with the
duration to write instead (``20h``), except where a time of day is meant
(:func:`parse_time_of_day`, ``behaviour.returns.cycle_peak``).
"""

from __future__ import annotations

import math
import re

__all__ = [
    "SECONDS",
    "parse_duration",
    "parse_time_of_day",
    "parse_rate",
    "format_duration",
    "format_rate",
]

SECONDS = {"s": 1.0, "m": 60.0, "min": 60.0, "h": 3600.0, "d": 86400.0, "w": 7 * 86400.0}

_NUMBER = r"([-+]?[0-9]*\.?[0-9]+(?:[eE][-+]?[0-9]+)?)"
_DURATION = re.compile(r"^\s*" + _NUMBER + r"\s*(s|min|m|h|d|w)?\s*$")
_RATE = re.compile(r"^\s*" + _NUMBER + r"\s*/\s*(s|min|m|h|d|w)\s*$")
#: ``H:MM`` or ``H:MM:SS`` (a clock time, or a duration written as one)
_CLOCK = re.compile(r"^\s*([0-9]+):([0-5][0-9])(?::([0-5][0-9](?:\.[0-9]*)?))?\s*$")
_CLOCK_PATTERN = r"^\s*([01]?[0-9]|2[0-3]):[0-5][0-9](:[0-5][0-9](\.[0-9]*)?)?\s*$"


def _clock_seconds(value: str) -> float | None:
    """Seconds of ``H:MM[:SS]`` text, or None if it is not written so."""
    match = _CLOCK.match(value)
    if not match:
        return None
    hours, minutes, seconds = match.groups()
    return int(hours) * 3600.0 + int(minutes) * 60.0 + float(seconds or 0.0)


def _as_duration_text(seconds: float) -> str:
    """How to write ``seconds`` as a duration: ``20h``, ``90m`` or ``5415s``."""
    for unit in ("h", "m"):
        if seconds % SECONDS[unit] == 0:
            return f"{seconds / SECONDS[unit]:g}{unit}"
    return f"{seconds:g}s"


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
            clock = _clock_seconds(value)
            if clock is not None:
                raise ValueError(
                    f"{value.strip()!r} is not a duration: for {value.strip()} as hours:minutes "
                    f"write {_as_duration_text(clock)} (a duration is a number and a unit: 45s, "
                    "30m, 6h, 14d)"
                )
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


def parse_time_of_day(value: object) -> float:
    """Seconds after midnight from a clock time ``"20:00"`` / ``"20:30:15"`` (00:00 to
    23:59:59), or from a duration (``"20h"``, seconds) as :func:`parse_duration` reads it."""
    if isinstance(value, str) and _CLOCK.match(value):
        seconds = _clock_seconds(value)
        if seconds is None or seconds >= 86400.0:
            raise ValueError(f"a time of day runs from 00:00 to 23:59, got {value!r}")
        return seconds
    return parse_duration(value)


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
