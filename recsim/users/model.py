"""The user model: one component per role, chosen and configured by the scenario.

``build_user_model(scenario)`` reads the scenario's ``user_model:`` section (which component
plays each role: a built-in name or ``"module:Class"``, with its ``params``) and ``behaviour:``
(the parameters of the default components). Both engines, the oracles and the metrics call the
model through the :class:`UserModel` it returns.
"""

from __future__ import annotations

import inspect
from typing import Any

import numpy as np
from pydantic import ValidationError

from ..config import UserModelConfig
from ..plugins import import_object
from .components import ROLES, Component
from .state import StateView, UserState

__all__ = [
    "UserModel",
    "build_user_model",
    "resolve_component",
    "builtin_components",
    "DEFAULT_COMPONENTS",
    "UserModelError",
    "check_user_model_config",
    "ComponentError",
]


class UserModelError(ValueError):
    """A user model that cannot be built: names the role, the component and what is wrong;
    ``loc`` is the path of the offending key below ``user_model`` (e.g. ``("choice", "type")``)."""

    def __init__(self, message: str, loc: tuple = ()):
        super().__init__(message)
        self.loc = tuple(loc)


def _builtins() -> dict[str, dict[str, tuple[type[Component], str | None]]]:
    """role -> name -> (class, where the default parameters come from: a ``behaviour``
    section, ``"behaviour"`` for the whole of it, ``"population"``, or None for ``params``)."""
    from . import default as d
    from . import peers as p

    return {
        "sampler": {"population": (d.PopulationSampler, "population")},
        "allure": {"allure": (d.Allure, "allure")},
        "value": {"value": (d.Value, "value"), "lts_kale": (p.KaleValue, None)},
        "choice": {
            "logit": (d.LogitChoice, "choice"),
            "proportional": (p.ProportionalChoice, None),
            "cascade": (p.CascadeChoice, None),
            "first_item": (p.FirstItemChoice, None),
        },
        "response": {
            "lognormal": (d.LogNormalWatch, "watch"),
            "budget_watch": (p.BudgetWatch, None),
            "lts_engagement": (p.ChocKaleEngagement, None),
        },
        "transition": {"consumption": (d.Consumption, "behaviour"), "lts_exposure": (p.NetPositiveExposure, None)},
        "relaxation": {"relax": (d.BetweenSessions, "behaviour"), "none": (p.NoRelaxation, None)},
        "session": {
            "continuation": (d.Continuation, "continuation"),
            "time_budget": (p.TimeBudget, None),
            "patience": (p.Patience, None),
        },
        "returns": {"hawkes": (d.HawkesReturns, "returns"), "poisson": (p.PoissonReturns, None)},
        "churn": {"value_ema": (d.ValueChurn, "churn"), "never": (p.NoChurn, None)},
        "survey": {"linear": (d.LinearSurvey, "survey"), "never": (p.NoSurvey, None)},
    }


#: the default model's component name for each role (the scenario's defaults)
DEFAULT_COMPONENTS = {role: field.get_default(call_default_factory=True).type
                      for role, field in UserModelConfig.model_fields.items()}


def builtin_components() -> dict[str, dict[str, type[Component]]]:
    """role -> built-in name -> class."""
    return {role: {name: cls for name, (cls, _) in table.items()} for role, table in _builtins().items()}


def resolve_component(role: str, type_name: str) -> type[Component]:
    """The component class for ``type_name`` in ``role``: a built-in name or
    ``"module:Class"``. Raises :class:`UserModelError` with what was expected."""
    if role not in ROLES:
        raise UserModelError(f"unknown role {role!r}; roles are {', '.join(ROLES)}")
    interface, method = ROLES[role]
    table = _builtins()[role]
    if ":" not in type_name:
        if type_name in table:
            return table[type_name][0]
        raise UserModelError(
            f"unknown {role} component {type_name!r}; built-ins are {', '.join(table)}, "
            "or give your own as 'module:Class'"
        )
    try:
        obj = import_object(type_name, f"{role} component {type_name!r}")
    except LookupError as exc:
        raise UserModelError(str(exc)) from None
    if not (inspect.isclass(obj) and issubclass(obj, interface)):
        raise UserModelError(
            f"{type_name!r} is not a {role} component: expected a subclass of "
            f"recsim.users.{interface.__name__} implementing {method}()"
        )
    if getattr(obj, method) is getattr(interface, method):
        raise UserModelError(f"{type_name!r} does not implement {method}(), the {role} component's required method")
    return obj


def _default_params_of(role: str, scenario: Any):
    """The behaviour (or population) section a role's default component reads, if any."""
    return _default_params(_builtins()[role][DEFAULT_COMPONENTS[role]][1], scenario)


def _default_params(source: str | None, scenario: Any):
    if source is None:
        return None
    if source == "population":
        return scenario.population
    if source == "behaviour":
        return scenario.behaviour
    return getattr(scenario.behaviour, source)


def component_params(role: str, spec: Any, scenario: Any):
    """The Params instance of the component ``spec`` plays ``role`` with (spec may be None:
    the default); default components take theirs from the scenario's sections."""
    name = DEFAULT_COMPONENTS[role] if spec is None else spec.type
    cls = resolve_component(role, name)
    source = _builtins()[role].get(name, (None, None))[1] if ":" not in name else None
    if source is None and ":" in name:
        # a subclass of a default component that keeps its Params reads the same section
        default_cls, default_source = _builtins()[role][DEFAULT_COMPONENTS[role]]
        if default_source is not None and cls.Params is default_cls.Params:
            source = default_source
    if source is not None:
        if spec is not None and spec.params:
            where = "population" if source == "population" else (
                "behaviour" if source == "behaviour" else f"behaviour.{source}")
            raise UserModelError(
                f"the {role} component {name!r} takes its parameters from `{where}`; set them "
                "there, not in user_model params"
            )
        return cls, _default_params(source, scenario)
    params = {} if spec is None else spec.params
    try:
        return cls, cls.Params(**params)
    except ValidationError as exc:
        first = exc.errors()[0]
        field = ".".join(str(x) for x in first["loc"])
        message = first["msg"].removeprefix("Value error, ")
        if first["type"] == "extra_forbidden":
            known = ", ".join(cls.Params.model_fields) or "none"
            message = f"unknown parameter {field!r} of {name!r}; its parameters are: {known}"
        elif "input" in first and first["type"] != "missing":
            message += f" (got {first['input']!r:.60})"
        raise UserModelError(message, (role, "params", *first["loc"])) from None


class UserModel:
    """The components of a user model, by role (see :mod:`recsim.users.components`)."""

    def __init__(self, components: dict[str, Component], behaviour: Any = None):
        missing = [role for role in ROLES if role not in components]
        if missing:
            raise UserModelError(f"a user model needs a component for every role; missing: {', '.join(missing)}")
        for role, component in components.items():
            interface = ROLES[role][0]
            if not isinstance(component, interface):
                raise UserModelError(f"{component!r} cannot play the {role} role (not a {interface.__name__})")
            if behaviour is not None:
                component.bind(behaviour)
        self.components = dict(components)
        self.behaviour = behaviour
        provided = {name for c in components.values() for name in c.provides} | {"wellbeing"}
        for role, component in components.items():
            lacking = [name for name in component.requires if name not in provided]
            if lacking:
                raise UserModelError(
                    f"the {role} component {type(component).__name__} reads the state field(s) "
                    f"{', '.join(lacking)}, which no component of this model provides"
                    f"{_providers_hint(lacking)}"
                )
        engine_streams = {"candidates", "choice", "churn"}  # the engine's own (rng.USER_STREAMS)
        for role, component in components.items():
            clash = engine_streams.intersection(component.streams)
            if clash:
                raise UserModelError(
                    f"the {role} component {type(component).__name__} declares the stream(s) "
                    f"{', '.join(sorted(clash))}, which the engine draws from itself; name its own "
                    "streams (drawing from the engine's would shift its draws and break common "
                    "random numbers)", (role,))
        scan = components["choice"].scan_time
        if not scan > 0:
            raise UserModelError(f"the choice component's scan_time must be > 0 seconds (got {scan})", ("choice",))
        self._derived = {"wellbeing": self.wellbeing}
        for role in ROLES:
            setattr(self, role, components[role])

    # ------------------------------------------------------------------ state
    @property
    def streams(self) -> tuple[str, ...]:
        """Per-user random streams the components draw from."""
        return tuple(dict.fromkeys(s for c in self.components.values() for s in c.streams))

    def initial_state(self, n_users: int, centers: np.ndarray, rng: np.random.Generator, start: float) -> UserState:
        """Sample every user's initial hidden state and let each component add its fields."""
        state = UserState(n_users, self.sampler.sample(n_users, centers, rng))
        everyone = np.arange(n_users)
        for role, component in self.components.items():
            if role == "sampler":
                continue
            for name, values in component.initial_state(self.view(state, everyone), start).items():
                state.add(name, values)
        return state

    def view(self, state: UserState, users: np.ndarray) -> StateView:
        """The state of ``users`` as components read it (``wellbeing`` derived on access)."""
        return StateView(state, users, self._derived)

    def wellbeing(self, state: StateView) -> np.ndarray:
        """W of each row of ``state``, ``(B,)`` (the transition component defines it)."""
        return self.transition.wellbeing(state)

    # ------------------------------------------------------------------ for oracles
    def click_probability_alone(self, state: StateView, terms: dict[str, np.ndarray]) -> np.ndarray:
        """P(click) of each of ``c`` items if shown alone in position 1, ``(B, c)``: the
        choice model on ``B·c`` slates of one item each."""
        own = getattr(self.choice, "click_probability_alone", None)
        # a built-in's shortcut: the same numbers (not a plug-in's, even one that inherits it
        # from a built-in and is held to its contract here: its own probabilities decide)
        if own is not None and _built_in(self.choice) and not isinstance(self.choice, _Guarded):
            return own(state, terms)
        B, c = terms["allure"].shape
        single = {name: values.reshape(B * c, 1) for name, values in terms.items()}
        return self.choice.probabilities(state.repeat(c), single)[:, 1].reshape(B, c)

    def guarded(self, state: UserState) -> "UserModel":
        """This model with every component that is not recsim's own held to its output
        contract (:mod:`recsim.users.contracts`) on every call, for users whose state is
        ``state``: a plug-in that returns NaN probabilities, a watch time longer than the item
        or a return in the past stops the run with a :class:`ComponentError` naming it."""
        from .contracts import OutputContract

        if all(_built_in(c) for c in self.components.values()):
            return self
        contract = OutputContract(self, state, set(state.fields))
        wrapped = {role: c if _built_in(c) else _Guarded(role, c, contract)
                   for role, c in self.components.items()}
        model = object.__new__(UserModel)
        model.__dict__.update(self.__dict__)
        model.components = wrapped
        for role in ROLES:
            setattr(model, role, wrapped[role])
        model._derived = {"wellbeing": model.wellbeing}
        return model

    def __repr__(self) -> str:
        inner = ", ".join(f"{role}={type(c).__name__}" for role, c in self.components.items())
        return f"UserModel({inner})"


class ComponentError(ValueError):
    """A user-model component broke its output contract during a run; names the role, the
    component and what was wrong."""


def _built_in(component: Any) -> bool:
    return type(component).__module__.startswith("recsim.")


#: the methods whose outputs the engines use, by role (held to the contract in guarded models)
_CHECKED = {
    "allure": ("score",), "value": ("value",), "choice": ("probabilities",),
    "response": ("watch_time", "expected_watch_time"), "transition": ("consume", "wellbeing"),
    "relaxation": ("relax",), "session": ("start", "after_watch", "after_no_click"),
    "returns": ("next_return", "end_session"), "churn": ("probability", "end_session"),
    "survey": ("respond",),
}


class _Guarded:
    """A component whose outputs are checked against its role's contract on every call."""

    def __init__(self, role: str, component: Any, contract: Any):
        self._role = role
        self._component = component
        self._contract = contract

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._component, name)
        if name not in _CHECKED.get(self._role, ()):
            return attr
        from .contracts import ContractError

        def checked(*args):
            out = attr(*args)
            try:
                self._contract.validate(self._role, name, out, args)
            except ContractError as exc:
                raise ComponentError(
                    f"user_model.{self._role}: the component {type(self._component).__qualname__} "
                    f"(from {type(self._component).__module__}) broke its contract: {exc.message}"
                ) from None
            return out

        return checked


def _providers_hint(fields: list[str]) -> str:
    """'' or '; built-in components that provide them: ...' for an error message."""
    found = []
    for role, table in _builtins().items():
        for name, (cls, _) in table.items():
            if any(field in cls.provides for field in fields):
                found.append(f"{role}: {name}")
    return f" (built-ins that provide it: {', '.join(found)})" if found else ""


def check_user_model_config(scenario: Any) -> UserModel:
    """Build the scenario's user model, turning every problem into a :class:`UserModelError`
    whose ``loc`` names the role (and key) at fault."""
    specs = scenario.user_model
    components = {}
    for role in ROLES:
        spec = getattr(specs, role)
        try:
            cls, params = component_params(role, spec, scenario)
        except UserModelError as exc:
            if not exc.loc:
                exc.loc = (role, "params" if "parameters from" in str(exc) else "type")
            raise
        if spec is not None and cls.Params is type(params) and params is not _default_params_of(role, scenario):
            # the resolved scenario records every parameter, defaults included
            full = params.model_dump(mode="json")
            if spec.params != full:
                spec.params = full
        try:
            components[role] = cls(params)
        except Exception as exc:  # user code: name it rather than show a traceback
            raise UserModelError(
                f"constructing the {role} component {spec.type!r} failed: {type(exc).__name__}: {exc}", (role,)
            ) from None
    try:
        return UserModel(components, scenario.behaviour)
    except UserModelError as exc:
        role = next((r for r in ROLES if f"the {r} component" in str(exc)), None)
        exc.loc = (role,) if role else ()
        raise


def build_user_model(scenario: Any) -> UserModel:
    """The user model a scenario describes (``user_model:`` and ``behaviour:``)."""
    specs = getattr(scenario, "user_model", None)
    components = {}
    for role in ROLES:
        spec = getattr(specs, role, None) if specs is not None else None
        cls, params = component_params(role, spec, scenario)
        components[role] = cls(params)
    return UserModel(components, scenario.behaviour)
