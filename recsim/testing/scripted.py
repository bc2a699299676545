"""Conformance check for scripted users' rules (:mod:`recsim.users.scripted`)."""

from __future__ import annotations

import copy

import numpy as np

from ..users.scripted import ScriptedChoice, ScriptedRule, build_rule
from ._common import _global_random_state, _same_global_state, _scenario

__all__ = ["SCRIPTED_RULE_CHECKS", "ScriptedRuleCheckError", "check_scripted_rule"]

#: what :func:`check_scripted_rule` holds a rule to (the keys name the failing property)
SCRIPTED_RULE_CHECKS = {
    "returns_choice": "choose returns a ScriptedChoice (position and direct, one per slate)",
    "shapes": "position and direct are integer arrays of shape (B,)",
    "in_range": "position in -1 .. n-1 (the slate), direct in -1 .. n_items-1 (the catalog)",
    "one_action": "no row both picks a slate position and watches an item off the slate",
    "fraction": "fraction is in (0, 1]",
    "deterministic": "the same slates and counts give the same choice (rules draw no randomness)",
    "no_mutation": "the slates and counts passed in are not modified",
    "no_global_random_state": "numpy's and Python's global random state are left alone",
}


class ScriptedRuleCheckError(AssertionError):
    """A scripted rule broke its contract: ``check`` names the property (a key of
    :data:`SCRIPTED_RULE_CHECKS`) and ``rule`` the rule checked."""

    def __init__(self, check: str, rule: object, detail: str):
        self.check, self.rule = check, repr(rule)
        super().__init__(f"scripted rule {self.rule} fails {check!r}: {detail} ({SCRIPTED_RULE_CHECKS[check]})")

    def __reduce__(self):  # picklable with its attributes (it may cross processes)
        return (_rebuild, (self.check, self.rule, str(self)), self.__dict__)  # notes too


def _rebuild(check: str, rule: str, message: str) -> ScriptedRuleCheckError:
    error = ScriptedRuleCheckError.__new__(ScriptedRuleCheckError)
    AssertionError.__init__(error, message)
    error.check, error.rule = check, rule
    return error


def check_scripted_rule(rule: ScriptedRule | type[ScriptedRule] | str, params: dict | None = None) -> None:
    """Hold a scripted rule (an instance, a class built with default parameters, or a name
    with ``params``) to :data:`SCRIPTED_RULE_CHECKS` on slates of a small synthetic catalog.

    Raises :class:`ScriptedRuleCheckError` naming the first property that fails."""
    from ..world import build_world

    if isinstance(rule, str):
        rule = build_rule(rule, params)
    elif isinstance(rule, type):
        rule = rule(rule.Params(**(params or {})))
    catalog = build_world(_scenario(), 0).catalog
    g = np.random.default_rng(0)
    n_items = catalog.n_items
    B, n = 64, 10
    slates = np.stack([g.choice(n_items, n, replace=False) for _ in range(B)])
    watched = g.integers(0, 40, B)
    if not 0.0 < rule.fraction <= 1.0:
        raise ScriptedRuleCheckError("fraction", rule, f"fraction = {rule.fraction}")
    before = _global_random_state()
    slates_in, watched_in = slates.copy(), watched.copy()
    first = rule.choose(slates_in, catalog, watched_in)
    if not _same_global_state(before, _global_random_state()):
        raise ScriptedRuleCheckError("no_global_random_state", rule, "the global random state changed")
    if not isinstance(first, ScriptedChoice):
        raise ScriptedRuleCheckError("returns_choice", rule, f"returned {type(first).__name__}")
    for name in ("position", "direct"):
        values = getattr(first, name)
        if not (isinstance(values, np.ndarray) and values.shape == (B,) and values.dtype.kind in "iu"):
            raise ScriptedRuleCheckError("shapes", rule, f"{name} is {getattr(values, 'dtype', type(values))} "
                                         f"of shape {getattr(values, 'shape', None)} for {B} slates")
    if ((first.position < -1) | (first.position >= n)).any() or ((first.direct < -1) | (first.direct >= n_items)).any():
        raise ScriptedRuleCheckError("in_range", rule, "a position or item id is out of range")
    if ((first.position >= 0) & (first.direct >= 0)).any():
        raise ScriptedRuleCheckError("one_action", rule, "a row has both")
    if not (np.array_equal(slates_in, slates) and np.array_equal(watched_in, watched)):
        raise ScriptedRuleCheckError("no_mutation", rule, "its inputs changed")
    again = copy.deepcopy(rule).choose(slates.copy(), catalog, watched.copy())
    if not (np.array_equal(again.position, first.position) and np.array_equal(again.direct, first.direct)):
        raise ScriptedRuleCheckError("deterministic", rule, "two calls on the same input differ")
