"""Simulation engines: the only package that imports SimPy."""

from .reference import RunResult, simulate

__all__ = ["RunResult", "simulate"]
