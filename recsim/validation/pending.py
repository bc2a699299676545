"""Targets recsim cannot run yet: each says what is missing (status ``not expressed``)."""

from __future__ import annotations

from functools import partial

from . import Outcome, Target


def _not_expressed(reason: str, size: str) -> Outcome:
    return Outcome("not measured", "not expressed", [reason])


def _pending(number: int, key: str, title: str, source: str, expected: str, tolerance: str, reason: str) -> Target:
    return Target(number=number, key=key, title=title, source=source, expected=expected, tolerance=tolerance,
                  check=partial(_not_expressed, reason), status="not expressed", reason=reason)


TARGETS = [
    _pending(10, "homogenization", "Homogenization",
             "Chaney, Stewart & Engelhardt, RecSys 2018",
             "Jaccard similarity of paired users higher and mean utility lower under popularity, matrix "
             "factorization and content filtering than under the ideal recommender",
             "paired differences over ≥ 25 seeds, intervals excluding 0",
             "needs a matrix-factorization policy (a well-kept library) and the paper's world; not built yet"),
    _pending(12, "amplification_paradox", "Amplification paradox",
             "Ribeiro, Veselovsky & West, 2023",
             "top-recommendation bots reach far more extreme content than utility-driven users; the "
             "amplification ratio can be below 1 for utility-driven users",
             "intervals over replications",
             "needs the co-consumption recommender of target 10; scripted users exist"),
]
