"""Find policies by name: built-ins, or user code named ``"module:Class"``."""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError

from ..plugins import import_object
from .base import Policy

__all__ = ["BUILTIN_POLICIES", "resolve_policy", "validate_policy_spec", "build_policy"]


def _builtins() -> dict[str, type[Policy]]:
    from . import builtin, learned, rerank

    return {
        "random": builtin.RandomPolicy,
        "chronological": builtin.ChronologicalPolicy,
        "popularity": builtin.PopularityPolicy,
        "engagement": learned.EngagementPolicy,
        "bandit": learned.BanditPolicy,
        "harm_penalized": learned.HarmPenalizedPolicy,
        "stated_preference": learned.StatedPreferencePolicy,
        "diversity": rerank.DiversityPolicy,
        "calibrated": rerank.CalibratedPolicy,
        "break_suggesting": rerank.BreakSuggestingPolicy,
        "epsilon_greedy": rerank.EpsilonGreedyPolicy,
        "engagement_oracle": builtin.EngagementOracle,
        "wellbeing_oracle": builtin.WellbeingOracle,
        "click_value_oracle": builtin.ClickValueOracle,
        "attribute_oracle": builtin.AttributeOracle,
    }


#: Names of the built-in policies (the keys of the registry, listed here so that importing the
#: registry does not import every policy module).
BUILTIN_POLICIES = (
    "random",
    "chronological",
    "popularity",
    "engagement",
    "bandit",
    "harm_penalized",
    "stated_preference",
    "diversity",
    "calibrated",
    "break_suggesting",
    "epsilon_greedy",
    "engagement_oracle",
    "wellbeing_oracle",
    "click_value_oracle",
    "attribute_oracle",
)


def resolve_policy(type_name: str) -> type[Policy]:
    """The policy class for a built-in name or ``"module:Class"``; ``LookupError`` otherwise."""
    builtins = _builtins()
    if type_name in builtins:
        return builtins[type_name]
    if ":" not in type_name:
        raise LookupError(
            f"unknown policy {type_name!r}; built-ins are {', '.join(builtins)}, "
            "or name your own as 'module:Class'"
        )
    target = import_object(type_name, f"policy {type_name!r}")
    if isinstance(target, type) and issubclass(target, Policy):
        return target
    if callable(target) and not isinstance(target, type):
        from .base import FunctionPolicy

        return FunctionPolicy.of(target)
    raise LookupError(f"{type_name!r} is neither a recsim Policy subclass nor a function")


def validate_policy_spec(spec: Any, loc: tuple) -> None:
    """Check that ``spec.type`` resolves and ``spec.params`` fit its ``Params`` model.

    Raises :class:`recsim.config.PolicyParamError` naming the field path.
    """
    from ..config import PolicyParamError

    try:
        cls = resolve_policy(spec.type)
    except LookupError as exc:
        raise PolicyParamError((*loc, "type"), str(exc)) from None
    try:
        cls.Params(**spec.params)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = (*loc, "params", *first["loc"])
        message = first["msg"].removeprefix("Value error, ")
        if first["type"] == "extra_forbidden":
            known = list(cls.Params.model_fields)
            message = f"unknown parameter for {spec.type!r}; expected one of: {', '.join(known) or '(none)'}"
        raise PolicyParamError(where, message) from None


def build_policy(spec: Any) -> Policy:
    """Instantiate the policy a :class:`recsim.config.PolicySpec` describes."""
    return resolve_policy(spec.type)(**spec.params)
