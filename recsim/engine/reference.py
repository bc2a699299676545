"""The reference engine: one SimPy process per user, each step taken at its own time.

This module (with :mod:`recsim.engine`) is the only place that knows SimPy. Each user is a
process that waits for their next step (a return, a slate, the end of a watch, the end of the
session) and takes it (:mod:`recsim.engine.core`, on a batch of one); retrains and metric
snapshots are a process of their own. So steps happen in true time order, one user at a time,
and a policy that learns after every event (``online = True``) gets ``update(feedback)``
right after each: this engine defines the semantics the batched engine reproduces.

Clock: simulated seconds; the warm-up runs on ``[start, 0)`` and the horizon on
``[0, horizon]``. Events are scheduled at the absolute times the steps compute (not
``now + delay``, which can round differently), with synchronization points first among events
at the same time, as in the batched engine.
"""

from __future__ import annotations

import gc
from heapq import heappush
from typing import Callable

import numpy as np
import simpy
from simpy.events import NORMAL, URGENT

from ..config import PolicySpec
from ..eventlog import EventLog
from ..world import World
from .core import RunResult, Simulation, check_slate
from .errors import TaskGuard

__all__ = ["RunResult", "simulate", "check_slate"]


class _Clock(simpy.Environment):
    """A SimPy environment that can also schedule an event at an absolute time."""

    def at(self, time: float, priority=NORMAL) -> simpy.Event:
        """An event that fires at simulated time ``time`` exactly."""
        if time < self._now:
            raise ValueError(f"cannot schedule at {time}, before now ({self._now})")
        event = simpy.Event(self)
        event._ok = True
        event._value = None
        heappush(self._queue, (time, priority, next(self._eid), event))
        return event


def simulate(
    world: World,
    spec: PolicySpec,
    events: EventLog,
    progress: Callable[[float], None] | None = None,
    flush_interval: float = 3600.0,
) -> RunResult:
    """Run one policy on one replication's world (mutated: pass a fresh world per run) with
    the reference engine; ``progress`` is called with the fraction of simulated time done.
    Rows are handed to the event log every ``flush_interval`` simulated seconds as well as at
    synchronization points (it bounds memory and changes nothing else).

    What goes wrong in user code stops the run with a :class:`~recsim.engine.errors.TaskError`
    naming the task, the policy or component and the line of user code."""
    with TaskGuard(world.scenario, spec.name, world.replication) as guard:
        return _simulate(guard, world, spec, events, progress, flush_interval)


def _simulate(guard: TaskGuard, world: World, spec: PolicySpec, events: EventLog,
              progress: Callable[[float], None] | None, flush_interval: float) -> RunResult:
    guard.sim = sim = Simulation(world, spec, events, progress, single=True)
    if sim.policy.online:
        sim.on_feedback = sim.update_policy  # the policy's update, through Simulation._policy_call
    env = _Clock(initial_time=world.start)
    sim.start()

    def user(u: int):
        one = np.array([u])
        t_next = sim.t_next
        while True:
            t = float(t_next[u])
            if not t < sim.end_cut:
                return
            yield env.at(t)
            try:
                sim.step(one, np.array([t]))
            except (KeyboardInterrupt, GeneratorExit):
                raise
            except BaseException as exc:  # explained here: SimPy re-raises a copy, without the traceback
                guard.reraise(exc)

    def synchronizer():
        points = sim.schedule()
        if flush_interval > 0:
            k, extra = 1, []
            while world.start + k * flush_interval < sim.end_cut:
                extra.append((world.start + k * flush_interval, "flush"))
                k += 1
            points = sorted(points + extra, key=lambda p: p[0])
        for t, what in points:
            yield env.at(t, URGENT)
            sim.flush(t)
            if what != "flush":
                sim.sync(t, what)
            if progress is not None:
                progress(min(1.0, (t - world.start) / (world.end - world.start)))

    for u in range(sim.n_users):
        env.process(user(u))
    env.process(synchronizer())
    # The run allocates many small objects that live until the next flush or retrain; with the
    # default thresholds the cyclic garbage collector would walk them again and again.
    thresholds = gc.get_threshold()
    gc.set_threshold(max(thresholds[0], 50_000), *thresholds[1:])
    try:
        env.run(until=sim.end_cut)
    finally:
        gc.set_threshold(*thresholds)
    result = sim.finish()
    if progress is not None:
        progress(1.0)
    return result
