"""Helpers shared by the conformance checks."""

from __future__ import annotations

import functools
import random as stdlib_random  # only read, to catch plug-ins that draw from it

import numpy as np

from ..config import Scenario


@functools.cache
def _scenario(surveys: float | None = None) -> Scenario:
    """A tiny scenario of the default user model (built once: validation takes a while).
    ``surveys`` overrides the share of sessions that end with a survey."""
    behaviour = {} if surveys is None else {"survey": {"probability": surveys}}
    return Scenario(name="check", policies=["random"], behaviour=behaviour)


def _global_random_state() -> tuple:
    return np.random.get_state(), stdlib_random.getstate()


def _same_global_state(a: tuple, b: tuple) -> bool:
    (np_a, py_a), (np_b, py_b) = a, b
    return (
        np_a[0] == np_b[0]
        and np.array_equal(np_a[1], np_b[1])
        and tuple(np_a[2:]) == tuple(np_b[2:])
        and py_a == py_b
    )
