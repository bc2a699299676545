"""What recsim reproduces: published and closed-form results, run by the same engine.

Each *target* (:class:`Target`) is a result the field already knows — a choice model's
frequencies, a Hawkes process's long-run rate, RecSim's long-term-satisfaction trade-off — with
its source, the value or sign expected, a tolerance and why (sampling error with the number of
draws stated, or the source's own precision), and a :meth:`Target.check` that measures it with
recsim's own components and engines at two sizes: ``"fast"`` (seconds; ``make test`` runs it,
``tests/test_validation.py``) and ``"full"`` (``recsim reproduce``, which writes the README's
table "What recsim reproduces").

A target the model does not reproduce, honestly configured, stays in the table marked
``not reproduced`` with the reason; its test holds the documented status, so a change that
alters it is noticed. Targets are in :data:`TARGETS`, in the issue's numbering; each lives in
its own module of this package, and a scenario it runs is in ``scenarios/validation/``.
"""

from __future__ import annotations

import importlib
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Literal

__all__ = ["Target", "Outcome", "TARGETS", "SCENARIOS", "target", "run_target", "status_of", "Status", "SIZES"]

#: ``not expressed``: recsim cannot run the target yet (a model component, a policy or the
#: check itself is missing); the reason says what
Status = Literal["reproduced", "partly reproduced", "not reproduced", "not expressed"]
SIZES = ("fast", "full")


def status_of(checks) -> Status:
    """``reproduced`` if every check held, ``partly reproduced`` if some did, else ``not
    reproduced`` (``checks``: booleans, one per sub-check of a target)."""
    checks = [bool(c) for c in checks]
    return "reproduced" if all(checks) else "partly reproduced" if any(checks) else "not reproduced"

def _scenarios() -> Path:
    from ..examples import examples_dir  # scenarios/ of a checkout, or the installed recsim.example_scenarios

    try:
        return examples_dir() / "validation"
    except FileNotFoundError:  # pragma: no cover - a broken installation; reported when a target runs
        return Path(__file__).resolve().parents[2] / "scenarios" / "validation"


#: scenarios/validation/ (of the source tree, or shipped in recsim.example_scenarios)
SCENARIOS = _scenarios()


@dataclass
class Outcome:
    """What a check measured: ``value`` (the figure recsim gives, as shown in the table),
    ``status``, ``details`` (one line per sub-check: what was compared, to what, with what
    tolerance) and ``seconds`` (wall time of the check)."""

    value: str
    status: Status
    details: list[str] = field(default_factory=list)
    seconds: float = 0.0


@dataclass(frozen=True)
class Target:
    """A published or closed-form result and how recsim measures it.

    ``number`` and ``key`` name it (the issue's numbering; a short identifier); ``source`` the
    paper or formula; ``expected`` the value or sign (text for the table); ``tolerance`` the
    tolerance and why; ``check(size)`` measures it (``size`` in :data:`SIZES`) and returns an
    :class:`Outcome`; ``status`` the status the full-size check gives, as documented (the
    fast-size test holds the check to it, or to ``fast_status`` when the fast size has too
    few draws to decide the same way: say so in ``reason``); ``reason`` why it is not (fully)
    reproduced."""

    number: int
    key: str
    title: str
    source: str
    expected: str
    tolerance: str
    check: Callable[[str], Outcome]
    status: Status = "reproduced"
    reason: str = ""
    fast_status: Status | None = None

    @property
    def expected_fast_status(self) -> Status:
        """The status the fast-size check must give (``tests/test_validation.py``)."""
        return self.fast_status or self.status

    def documented_status(self, size: str) -> Status:
        """The status documented for a check at ``size`` (``recsim reproduce`` compares with it)."""
        return self.status if size == "full" else self.expected_fast_status


#: the target modules of this package, in the issue's numbering (each defines ``TARGET``)
_MODULES = (
    "choice_models",
    "returns",
    "directions",
    "long_term_satisfaction",
    "interest_evolution",
    "preference_dynamics",
    "breaks",
    "covington",
    "cold_turkey",
    "degeneracy",
    "field_experiment",
    "forgetting_time",
    "homogenization",
    "amplification_paradox",
    "migration",
    "session_mechanics",
    "strategic_creators",
)


def _load() -> list[Target]:
    targets = []
    for name in _MODULES:  # a module defines TARGET, or TARGETS for several
        module = importlib.import_module(f"{__name__}.{name}")
        targets += getattr(module, "TARGETS", None) or [module.TARGET]
    return sorted(targets, key=lambda t: t.number)


TARGETS: list[Target] = _load()


def target(key: str) -> Target:
    """The target named ``key`` (its key or its number as text). Raises LookupError."""
    for t in TARGETS:
        if key in (t.key, str(t.number)):
            return t
    raise LookupError(f"no validation target {key!r}; targets are {', '.join(t.key for t in TARGETS)}")


def run_target(t: Target, size: str = "fast") -> Outcome:
    """``t.check(size)`` with its wall time in ``Outcome.seconds``. Raises ValueError for an
    unknown size."""
    if size not in SIZES:
        raise ValueError(f"size must be one of {SIZES}, not {size!r}")
    started = time.perf_counter()
    outcome = t.check(size)
    outcome.seconds = time.perf_counter() - started
    return outcome
