"""The batched engine: every due user's next step taken together, with NumPy.

Between synchronization points (retrains and metric snapshots, :meth:`Simulation.schedule`)
users do not affect one another: the policy is fixed, uploads are a known function of time and
every user draws from their own counter-based streams. So each user's chain of steps
(:mod:`recsim.engine.core`) can run on its own clock, and the chains of all users are
advanced together: each iteration takes the next step of every user whose next step falls
before the next synchronization point, grouped by kind of step. What the steps emit is handed
to the event log and the metrics in time order at the synchronization point, so the outputs
are the reference engine's, bit for bit (``tests/test_engine_equivalence.py``).

A policy that learns after every event (``online = True``) needs the reference engine.
"""

from __future__ import annotations

from typing import Callable

import numpy as np

from ..config import PolicySpec
from ..eventlog import EventLog
from ..world import World
from .core import END, RETURN, SERVE, WATCH, RunResult, Simulation
from .errors import TaskGuard

__all__ = ["simulate_batched", "OnlinePolicyError"]


class OnlinePolicyError(ValueError):
    """The policy learns after every event, which only the reference engine can run."""


def _advance(sim: Simulation, until: float) -> None:
    """Take every step due before ``until``."""
    t_next, phase = sim.t_next, sim.phase
    steps = ((RETURN, sim.returns), (SERVE, sim.serve), (WATCH, sim.watch), (END, sim.end))
    while True:
        due = np.flatnonzero(t_next < until)
        if due.shape[0] == 0:
            return
        ph = phase[due]
        for code, step in steps:
            users = due[ph == code]
            if users.shape[0]:
                step(users, t_next[users])


def simulate_batched(
    world: World,
    spec: PolicySpec,
    events: EventLog,
    progress: Callable[[float], None] | None = None,
    max_rows: int = 500_000,
) -> RunResult:
    """Run one policy on one replication's world (mutated: pass a fresh world per run) with
    the batched engine; ``progress`` is called with the fraction of simulated time done.
    Event rows buffered between synchronization points are bounded by handing them over at
    extra points (about ``max_rows`` rows at a time), which changes nothing else; so is the
    feedback of a policy that takes it as it is logged (:meth:`Policy.observe`).

    What goes wrong in user code stops the run with a :class:`~recsim.engine.errors.TaskError`
    naming the task, the policy or component and the line of user code."""
    with TaskGuard(world.scenario, spec.name, world.replication) as guard:
        return _simulate(guard, world, spec, events, progress, max_rows)


def _simulate(guard: TaskGuard, world: World, spec: PolicySpec, events: EventLog,
              progress: Callable[[float], None] | None, max_rows: int) -> RunResult:
    guard.sim = sim = Simulation(world, spec, events, progress, single=False)
    if sim.policy.online:
        raise OnlinePolicyError(
            f"policy {spec.name!r} learns after every event (online = True); only the reference "
            "engine can run it: set `engine: reference` in the scenario"
        )
    sim.start()
    start, end = world.start, world.end
    span = end - start
    # simulated seconds between hand-overs of rows, adapted to the row rate from the next
    # window on; the first is shorter the more users there are
    window = float(min(3600.0, max(60.0, 3600.0 * 1e4 / max(sim.n_users, 1))))
    last = start
    for t, what in sim.schedule() + [(sim.end_cut, "end")]:
        while t - last > window:  # extra hand-over points
            last = last + window
            _advance(sim, last)
            # the rows held until this point: event rows, and the feedback an observing policy
            # takes at each flush (any other learning policy keeps it until the retrain)
            n_rows = len(sim.rows) + (len(sim.feedback.rows) if sim.observes else 0)
            sim.flush(last)
            if n_rows > max_rows:
                window = max(60.0, window / 2)
            elif n_rows < max_rows // 4:
                window = min(86400.0, window * 2)
            if progress is not None:
                progress(min(1.0, (last - start) / span))
        last = t
        _advance(sim, t)
        sim.flush(t)
        if what == "end":
            break
        sim.sync(t, what)
        if progress is not None:
            progress(min(1.0, (t - start) / span))
    result = sim.finish()
    if progress is not None:
        progress(1.0)
    return result
