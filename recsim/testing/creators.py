"""Conformance check for creators' adaptation rules (:mod:`recsim.creators`)."""

from __future__ import annotations

import copy

import numpy as np

from ..creators import CreatorRule, build_creator_rule
from ._common import _global_random_state, _same_global_state

__all__ = ["CREATOR_RULE_CHECKS", "CreatorRuleCheckError", "check_creator_rule"]

#: what :func:`check_creator_rule` holds a rule to (the keys name the failing property)
CREATOR_RULE_CHECKS = {
    "shape": "adapt returns a float array of shape (C, 3): one row of offsets per creator",
    "finite": "the offsets are finite numbers",
    "deterministic": "the same inputs give the same offsets (rules draw no randomness)",
    "no_mutation": "the offsets, gaps and exposures passed in are not modified (they are read-only)",
    "no_global_random_state": "numpy's and Python's global random state are left alone",
}


class CreatorRuleCheckError(AssertionError):
    """A creator rule broke its contract: ``check`` names the property (a key of
    :data:`CREATOR_RULE_CHECKS`) and ``rule`` the rule checked."""

    def __init__(self, check: str, rule: object, detail: str):
        self.check, self.rule = check, repr(rule)
        super().__init__(f"creator rule {self.rule} fails {check!r}: {detail} ({CREATOR_RULE_CHECKS[check]})")

    def __reduce__(self):  # picklable with its attributes (it may cross processes)
        return (_rebuild, (self.check, self.rule, str(self)), self.__dict__)


def _rebuild(check: str, rule: str, message: str) -> CreatorRuleCheckError:
    error = CreatorRuleCheckError.__new__(CreatorRuleCheckError)
    AssertionError.__init__(error, message)
    error.check, error.rule = check, rule
    return error


def _readonly(x: np.ndarray) -> np.ndarray:
    x = x.copy()
    x.flags.writeable = False
    return x


def check_creator_rule(rule: CreatorRule | type[CreatorRule] | str, params: dict | None = None,
                       n_creators: int | None = None) -> None:
    """Hold a creator rule (an instance, a class built with default parameters, or a name with
    ``params``) to :data:`CREATOR_RULE_CHECKS` on synthetic offsets, gaps and exposures of 50
    creators (some with no exposure, some at the bounds), and of ``n_creators`` too when given
    (the scenario's number: a rule that assumes a size fails here, not a day into the run).

    Raises :class:`CreatorRuleCheckError` naming the first property that fails."""
    if isinstance(rule, str):
        rule = build_creator_rule(rule, params)
    elif isinstance(rule, type):
        rule = rule(rule.Params(**(params or {})))
    for size in dict.fromkeys([50, *([n_creators] if n_creators else [])]):
        _check_at(rule, size)


def _check_at(rule: CreatorRule, C: int) -> None:
    g = np.random.default_rng(0)
    offsets = np.clip(g.normal(0.0, 0.15, (C, 3)), -0.3, 0.3)
    offsets[:5] = 0.0
    gap = g.normal(0.0, 0.05, (C, 3))
    exposure = g.poisson(20.0, C).astype(float)
    exposure[::7] = 0.0
    gap[exposure == 0] = 0.0
    inputs = [_readonly(offsets), _readonly(gap), _readonly(exposure)]
    before = _global_random_state()
    try:
        first = rule.adapt(*inputs)
    except ValueError as exc:
        if "read-only" in str(exc):
            raise CreatorRuleCheckError("no_mutation", rule, f"it wrote into an input: {exc}") from None
        raise
    if not _same_global_state(before, _global_random_state()):
        raise CreatorRuleCheckError("no_global_random_state", rule, "the global random state changed")
    out = np.asarray(first)
    if out.shape != (C, 3) or out.dtype.kind not in "fiu":
        raise CreatorRuleCheckError("shape", rule, f"returned {getattr(out, 'dtype', type(first))} of shape "
                                    f"{getattr(out, 'shape', None)} for {C} creators")
    if not np.isfinite(out.astype(float)).all():
        raise CreatorRuleCheckError("finite", rule, "returned NaN or infinite offsets")
    again = np.asarray(copy.deepcopy(rule).adapt(_readonly(offsets), _readonly(gap), _readonly(exposure)))
    if not np.array_equal(again, out):
        raise CreatorRuleCheckError("deterministic", rule, "two calls on the same input differ")
