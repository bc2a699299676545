"""Find policies by name: built-ins, or user code named ``"module:Class"``."""

from __future__ import annotations

import inspect
from typing import Any

from pydantic import ValidationError

from ..plugins import import_object, object_names
from .base import Policy

__all__ = ["BUILTIN_POLICIES", "resolve_policy", "validate_policy_spec", "build_policy", "user_policy_types"]


def _builtins() -> dict[str, type[Policy]]:
    from . import builtin, factorization, learned, rerank

    return {
        "random": builtin.RandomPolicy,
        "chronological": builtin.ChronologicalPolicy,
        "popularity": builtin.PopularityPolicy,
        "engagement": learned.EngagementPolicy,
        "bandit": learned.BanditPolicy,
        "matrix_factorization": factorization.MatrixFactorizationPolicy,
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
    "matrix_factorization",
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
    """The policy class for a built-in name or ``"module:Class"``; ``LookupError`` otherwise.

    User code must fit the policy interface: a class must subclass :class:`Policy` and
    implement ``recommend`` (or, for a :class:`~recsim.policies.base.ScoringPolicy`,
    ``score``); a function must be a Python function callable as ``f(request, rng)`` (checked
    with :func:`inspect.signature`; a built-in such as ``print`` is refused)."""
    builtins = _builtins()
    if type_name in builtins:
        return builtins[type_name]
    if ":" not in type_name:
        raise LookupError(
            f"unknown policy {type_name!r}; built-ins are {', '.join(builtins)}, "
            "or name your own as 'module:Class'"
        )
    target = import_object(type_name, f"policy {type_name!r}")
    if isinstance(target, type):
        if not issubclass(target, Policy):
            raise LookupError(
                f"{type_name!r} is neither a recsim Policy subclass nor a function: a class used as a "
                "policy must subclass recsim.Policy and implement recommend(request, rng)"
            )
        _check_policy_class(type_name, target)
        return target
    if callable(target):
        _check_policy_function(type_name, target)
        from .base import FunctionPolicy

        return FunctionPolicy.of(target)
    raise LookupError(
        f"{type_name!r} is a {type(target).__name__}, neither a recsim Policy subclass nor a "
        "function f(request, rng)"
    )


def _check_policy_class(type_name: str, cls: type[Policy]) -> None:
    from .base import ScoringPolicy

    if issubclass(cls, ScoringPolicy):
        if cls.score is ScoringPolicy.score and cls.recommend is ScoringPolicy.recommend:
            raise LookupError(f"{type_name!r} does not implement score(request, rng), a ScoringPolicy's required method")
    elif cls.recommend is Policy.recommend:
        raise LookupError(f"{type_name!r} does not implement recommend(request, rng), a policy's required method")


def _check_policy_function(type_name: str, function: Any) -> None:
    """A function used as a policy must be Python code callable as ``f(request, rng)``."""
    if inspect.isbuiltin(function) or inspect.ismethoddescriptor(function):
        raise LookupError(
            f"{type_name!r} is a built-in function, not a policy: a function used as a policy must "
            "be a Python function f(request, rng) returning a slate"
        )
    try:
        signature = inspect.signature(function)
    except (TypeError, ValueError):
        raise LookupError(
            f"{type_name!r} has no signature recsim can check: a function used as a policy must be "
            "a Python function f(request, rng) returning a slate"
        ) from None
    try:
        signature.bind(None, None)
    except TypeError:
        raise LookupError(
            f"{type_name!r} cannot be called as f(request, rng): its signature is "
            f"{getattr(function, '__name__', 'function')}{signature}"
        ) from None


def user_policy_types(spec: Any) -> list[str]:
    """The ``"module:Class"`` types a policy spec (or a type string) names: its own, then those
    of the policies in its parameters (a re-ranker's ``base``, in either form)."""
    if isinstance(spec, str):
        return [spec] if ":" in spec else []
    found = [spec.type] if ":" in spec.type else []
    return found + [name for name in object_names(spec.params) if name not in found]


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
