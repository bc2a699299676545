"""recsim.testing.check_user_model: every built-in component conforms, in the model it needs,
and broken components are caught, each by the property it breaks."""

from __future__ import annotations

import copy
import random
import time

import numpy as np
import pytest

from recsim.config import Scenario
from recsim.testing import USER_MODEL_CHECKS, UserModelCheckError, check_user_model
from recsim.users.components import ROLES, ChoiceModel, SurveyModel
from recsim.users.default import (
    Allure,
    Consumption,
    Continuation,
    HawkesReturns,
    LinearSurvey,
    LogitChoice,
    LogNormalWatch,
    PopulationSampler,
    Value,
    ValueChurn,
)
from recsim.users.model import DEFAULT_COMPONENTS, UserModel, build_user_model, builtin_components
from recsim.users.peers import ProportionalChoice

#: the other components a built-in needs (it reads their fields, or the default ones read
#: fields it does not keep): RecSim's interest-evolution budget, and the rest of its
#: long-term-satisfaction user (no fatigue, habit or default relaxation)
LTS = {"transition": "lts_exposure", "value": "lts_kale", "response": "lts_engagement",
       "choice": "first_item", "relaxation": "none", "session": "patience"}
COMPANIONS = {
    ("response", "budget_watch"): {"response": "budget_watch", "session": "time_budget"},
    ("transition", "lts_exposure"): LTS,
}


def model_of(user_model: dict | None = None) -> UserModel:
    return build_user_model(Scenario(name="t", policies=["random"], user_model=user_model or {}))


DEFAULT = model_of()
BUILTINS = [(role, name) for role, table in builtin_components().items() for name in table]


# ----------------------------------------------------------------------------- built-ins
def test_every_role_and_builtin_is_parametrized():
    assert {role for role, _ in BUILTINS} == set(ROLES)
    assert len(BUILTINS) >= 20
    assert set(COMPANIONS) <= set(BUILTINS)


@pytest.mark.parametrize("role, name", BUILTINS, ids=[f"{r}-{n}" for r, n in BUILTINS])
def test_builtin_component_conforms(role, name):
    cls = builtin_components()[role][name]
    if (role, name) in COMPANIONS:
        model = model_of(COMPANIONS[role, name])
        assert type(model.components[role]) is cls
        check_user_model(model, role)
        # alone, in the default model, it cannot work: interface says which fields are missing
        with pytest.raises(UserModelCheckError) as info:
            check_user_model(cls)
        assert info.value.check == "interface" and info.value.role == role
    else:
        check_user_model(cls)  # a class, built with default parameters, in the default model
        check_user_model(model_of({role: name}), role)  # as a scenario builds it


@pytest.mark.parametrize("user_model", [None, {"response": "budget_watch", "session": "time_budget"}, LTS,
                                        {"choice": "cascade", "returns": "poisson", "churn": "never",
                                         "survey": "never"}],
                         ids=["default", "budget", "long_term_satisfaction", "peers"])
def test_whole_models_conform(user_model):
    check_user_model(model_of(user_model))


@pytest.mark.parametrize("seed", [1, 2, 12345])
def test_default_model_conforms_under_other_seeds(seed):
    check_user_model(DEFAULT, seed=seed)


def test_an_instance_is_checked_and_left_alone():
    choice = ProportionalChoice(no_click_mass=2.0)
    check_user_model(choice)
    assert choice.behaviour is None  # a deep copy was bound into the model, not this one
    before = copy.deepcopy(DEFAULT.components)
    check_user_model(DEFAULT)
    assert all(repr(before[r]) == repr(DEFAULT.components[r]) for r in ROLES)
    assert all(DEFAULT.components[r].behaviour is DEFAULT.behaviour for r in ROLES)


def test_default_components_are_the_default_model():
    assert {r: type(c) for r, c in DEFAULT.components.items()} == {
        r: builtin_components()[r][DEFAULT_COMPONENTS[r]] for r in ROLES
    }


# ----------------------------------------------------------------------------- broken components
class HalvesWatchTime(Value):
    """Writes into the watch times it is given (the engine logs them afterwards)."""

    def value(self, state, items, terms, watch_time):
        np.multiply(watch_time, 0.5, out=watch_time)
        return super().value(state, items, terms, watch_time)


class ClipsAllureInPlace(Consumption):
    def consume(self, state, items, terms, watch_time, value, now, draws):
        np.minimum(terms["allure"], 0.0, out=terms["allure"])
        return super().consume(state, items, terms, watch_time, value, now, draws)


class AddsTerm(LogitChoice):
    def probabilities(self, state, terms):
        terms["utility"] = terms["allure"] * 2.0
        return super().probabilities(state, terms)


class WritesStateView(Allure):
    def score(self, state, items):
        state["appetite"][:] = 0.0  # read-only: raises
        return super().score(state, items)


class ReflagsAndWritesState(Allure):
    def score(self, state, items):
        theta = state["theta"]
        theta.flags.writeable = True  # the gathered copy owns its data: allowed, but a mutation
        theta *= -1.0
        return super().score(state, items)


class ShiftsNow(Consumption):
    def consume(self, state, items, terms, watch_time, value, now, draws):
        out = super().consume(state, items, terms, watch_time, value, now, draws)
        now += 1.0
        return out


class GlobalNumpyWatch(LogNormalWatch):
    streams = ()

    def watch_time(self, state, items, terms, draws):
        z = np.random.standard_normal(items.shape)
        return np.minimum(items.length, items.length * np.exp(-2.0 + 0.5 * z))


class StdlibRandomSurvey(SurveyModel):
    def respond(self, state, session, draws):
        return np.full(state.n_rows, float(random.randint(1, 5)))


class UndeclaredStream(LogNormalWatch):
    streams = ()  # but watch_time draws from "watch"


class HalfDeclaredContinuation(Continuation):
    streams = ("continue",)  # after_no_click draws from "no_click" too


class BorrowsAStream(LogNormalWatch):
    """Declares "watch" but also draws from "satisfaction", which the model has (another
    component declares it): only restricting each call to its own streams catches it."""

    def watch_time(self, state, items, terms, draws):
        draws.uniform("satisfaction")
        return super().watch_time(state, items, terms, draws)


class DrawsTheEnginesChoice(Continuation):
    def after_no_click(self, state, draws):
        return draws.uniform("choice") < 0.9, {}


class WritesCatalog(Allure):
    def score(self, state, items):
        quality = items.catalog.quality
        quality.flags.writeable = True  # the catalog owns its arrays: allowed, but a mutation
        quality[:] = 0.0
        return super().score(state, items)


class HidesExtremeness(Consumption):
    """Zeroes the watched items' extremeness in the item view, which the engine then logs."""

    def consume(self, state, items, terms, watch_time, value, now, draws):
        out = super().consume(state, items, terms, watch_time, value, now, draws)
        extremeness = items.extremeness
        extremeness.flags.writeable = True  # a gathered copy owns its data: allowed, but a mutation
        extremeness[:] = 0.0
        return out


class FlatChoice(LogitChoice):
    def probabilities(self, state, terms):
        return super().probabilities(state, terms)[:, 1:]  # (B, n): no "no click" column


class UnnormalizedChoice(LogitChoice):
    def probabilities(self, state, terms):
        probabilities = super().probabilities(state, terms)
        probabilities[:, 0] *= 0.5  # forgot to renormalize
        return probabilities


class ColumnWatch(LogNormalWatch):
    def watch_time(self, state, items, terms, draws):
        return super().watch_time(state, items, terms, draws)[:, None]


class OverlongWatch(LogNormalWatch):
    def watch_time(self, state, items, terms, draws):
        return items.length * 2.0


class ReturnsNow(HawkesReturns):
    def next_return(self, state, now, until, draws):
        return np.array(now, dtype=float, copy=True)


class ZeroToFiveSurvey(LinearSurvey):
    def respond(self, state, session, draws):
        return np.zeros(state.n_rows)


class IntFlags(Continuation):
    def after_watch(self, state, items, terms, watch_time, value, draws):
        goes_on, updates = super().after_watch(state, items, terms, watch_time, value, draws)
        return goes_on.astype(int), updates


class ScalarFatigue(Consumption):
    def consume(self, state, items, terms, watch_time, value, now, draws):
        out = super().consume(state, items, terms, watch_time, value, now, draws)
        out["fatigue"] = out["fatigue"].sum()
        return out


class ClockChurn(ValueChurn):
    def probability(self, state):
        return np.full(state.n_rows, (time.perf_counter_ns() % 1_000_003) / 1_000_003)


class IdChurn(ValueChurn):
    def probability(self, state):
        return np.full(state.n_rows, (id(state) % 1_000_003) / 1_000_003)


class UnseededValue(Value):
    def value(self, state, items, terms, watch_time):
        noise = np.random.default_rng().normal(size=np.shape(items.ids))
        return super().value(state, items, terms, watch_time) + noise


class HoldsLambda(Value):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.transform = lambda v: v

    def value(self, state, items, terms, watch_time):
        return self.transform(super().value(state, items, terms, watch_time))


class LosesItsScaleWhenPickled(Value):
    """A pickled (or deep-copied) copy computes something else."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.scale = 2.0

    def __getstate__(self):
        return {name: v for name, v in self.__dict__.items() if name != "scale"}

    def __setstate__(self, state):
        self.__dict__.update(state)
        self.scale = 1.0

    def value(self, state, items, terms, watch_time):
        return self.scale * super().value(state, items, terms, watch_time)


class LogsWatchedItems(Consumption):
    """Writes a field the state does not have (the engine's put would reject it)."""

    def consume(self, state, items, terms, watch_time, value, now, draws):
        return {**super().consume(state, items, terms, watch_time, value, now, draws), "last_item": items.ids}


class WritesWellbeing(Consumption):
    def consume(self, state, items, terms, watch_time, value, now, draws):
        return {**super().consume(state, items, terms, watch_time, value, now, draws),
                "wellbeing": np.zeros(state.n_rows)}


class UndeclaredInitialField(ValueChurn):
    def initial_state(self, state, start):
        return {**super().initial_state(state, start), "streak": np.zeros(state.n_rows)}


class UndeclaredSampledField(PopulationSampler):
    def sample(self, n_users, centers, rng):
        return {**super().sample(n_users, centers, rng), "mood": np.zeros(n_users)}


class RemembersCalls(ValueChurn):
    """Same outputs, but a memory of its own outside the user state."""

    def probability(self, state):
        self.calls = getattr(self, "calls", 0) + 1
        return super().probability(state)


class MaskedChurn(ValueChurn):
    def probability(self, state):
        return np.ma.masked_array(super().probability(state))


class NoRequiredMethod(ChoiceModel):
    pass


class DictParams(LogitChoice):
    Params = dict


class NeedsAPath(LogitChoice):
    def __init__(self, path, /):
        super().__init__()
        self.path = path


class ReadsUnknownField(LogitChoice):
    def probabilities(self, state, terms):
        state["mood"]
        return super().probabilities(state, terms)


class ListStreams(LogNormalWatch):
    streams = ["watch"]  # noqa: RUF012  (the defect under test: a list, not a tuple)


class NeedsBudget(LogNormalWatch):
    requires = ("budget",)


BROKEN = [
    (HalvesWatchTime, "no_mutation"),
    (ClipsAllureInPlace, "no_mutation"),
    (AddsTerm, "no_mutation"),
    (WritesStateView, "no_mutation"),
    (ReflagsAndWritesState, "no_mutation"),
    (ShiftsNow, "no_mutation"),
    (WritesCatalog, "no_mutation"),
    (HidesExtremeness, "no_mutation"),
    (GlobalNumpyWatch, "no_global_random"),
    (StdlibRandomSurvey, "no_global_random"),
    (UndeclaredStream, "declared_streams"),
    (HalfDeclaredContinuation, "declared_streams"),
    (BorrowsAStream, "declared_streams"),
    (DrawsTheEnginesChoice, "declared_streams"),
    (FlatChoice, "shapes"),
    (UnnormalizedChoice, "shapes"),
    (ColumnWatch, "shapes"),
    (OverlongWatch, "shapes"),
    (ReturnsNow, "shapes"),
    (ZeroToFiveSurvey, "shapes"),
    (IntFlags, "shapes"),
    (ScalarFatigue, "shapes"),
    (ClockChurn, "deterministic"),
    (IdChurn, "deterministic"),
    (UnseededValue, "deterministic"),
    (HoldsLambda, "picklable"),
    (LosesItsScaleWhenPickled, "picklable"),
    (LogsWatchedItems, "hidden_observable_split"),
    (WritesWellbeing, "hidden_observable_split"),
    (UndeclaredInitialField, "hidden_observable_split"),
    (UndeclaredSampledField, "hidden_observable_split"),
    (RemembersCalls, "hidden_observable_split"),
    (MaskedChurn, "hidden_observable_split"),
    (NoRequiredMethod, "interface"),
    (DictParams, "interface"),
    (NeedsAPath, "interface"),
    (ReadsUnknownField, "interface"),
    (ListStreams, "interface"),
]


def test_every_check_is_documented_and_caught_somewhere():
    assert set(USER_MODEL_CHECKS) == {
        "interface", "shapes", "no_mutation", "deterministic", "declared_streams", "no_global_random",
        "picklable", "hidden_observable_split",
    }
    assert {check for _, check in BROKEN} == set(USER_MODEL_CHECKS)


@pytest.mark.parametrize("cls, check", BROKEN, ids=[cls.__name__ for cls, _ in BROKEN])
def test_check_user_model_catches_broken_component(cls, check):
    role = cls.role
    with pytest.raises(UserModelCheckError, match=f"property '{check}' failed") as info:
        check_user_model(cls)
    err = info.value
    assert isinstance(err, AssertionError)
    assert (err.check, err.role, err.component) == (check, role, cls.__name__)
    assert f"{role} component {cls.__name__}" in str(err)


@pytest.mark.parametrize("cls, check", [(HalvesWatchTime, "no_mutation"), (ClockChurn, "deterministic"),
                                        (LogsWatchedItems, "hidden_observable_split"), (HoldsLambda, "picklable")],
                         ids=lambda x: getattr(x, "__name__", x))
def test_broken_component_is_caught_inside_a_model_and_as_an_instance(cls, check):
    model = UserModel({**DEFAULT.components, cls.role: cls()}, DEFAULT.behaviour)
    with pytest.raises(UserModelCheckError) as info:
        check_user_model(model)
    assert (info.value.check, info.value.role) == (check, cls.role)
    with pytest.raises(UserModelCheckError) as info:
        check_user_model(cls())
    assert info.value.check == check


@pytest.mark.parametrize("cls", [HalvesWatchTime, ClockChurn, HoldsLambda, RemembersCalls],
                         ids=lambda x: x.__name__)
def test_checking_one_role_of_a_model_checks_only_that_role(cls):
    model = UserModel({**DEFAULT.components, cls.role: cls()}, DEFAULT.behaviour)
    for role in ROLES:
        if role == cls.role:
            with pytest.raises(UserModelCheckError) as info:
                check_user_model(model, role)
            assert info.value.role == role
        else:
            check_user_model(model, role)


@pytest.mark.parametrize("cls, message", [
    (NoRequiredMethod, "does not implement probabilities()"),
    (DictParams, "pydantic"),
    (NeedsAPath, "default parameters"),
    (ReadsUnknownField, "no field 'mood'"),
    (ListStreams, "streams is .* tuple of names"),
    (NeedsBudget, "budget .*default model does not provide"),
], ids=lambda x: getattr(x, "__name__", "message"))
def test_interface_failures_say_what_is_wrong(cls, message):
    with pytest.raises(UserModelCheckError, match=message) as info:
        check_user_model(cls)
    assert info.value.check == "interface"


@pytest.mark.parametrize("cls, message", [
    (HalvesWatchTime, "modified its input: watch_time"),
    (ClipsAllureInPlace, r"modified its input: terms\['allure'\]"),
    (ShiftsNow, "modified its input: now"),
    (WritesCatalog, "quality"),
    (HidesExtremeness, "items.extremeness"),
    (BorrowsAStream, "'satisfaction'"),
    (FlatChoice, r"shape \(7, 5\); expected \(7, 6\)"),
    (UnnormalizedChoice, "rows sum to 1"),
    (LogsWatchedItems, "writes 'last_item'"),
    (RemembersCalls, "own attributes"),
], ids=lambda x: getattr(x, "__name__", "message"))
def test_failures_name_what_went_wrong(cls, message):
    with pytest.raises(UserModelCheckError, match=message):
        check_user_model(cls)


def test_a_lambda_lets_deep_copies_through_but_not_pickle():
    with pytest.raises(UserModelCheckError, match="pickle") as info:
        check_user_model(HoldsLambda(DEFAULT.value.params))
    assert info.value.check == "picklable"


def test_rejects_what_is_not_a_component():
    with pytest.raises(UserModelCheckError, match="'interface'"):
        check_user_model(object())
    with pytest.raises(UserModelCheckError, match="'interface'"):
        check_user_model(dict)
    with pytest.raises(UserModelCheckError, match="not a subclass of recsim.users.ResponseModel") as info:
        check_user_model(LogitChoice, role="response")
    assert info.value.role == "response"


class Crashes(LogitChoice):
    def probabilities(self, state, terms):
        raise ZeroDivisionError("no slate")


def test_a_crash_is_reported_with_its_cause():
    with pytest.raises(UserModelCheckError, match="'interface'.*ZeroDivisionError") as info:
        check_user_model(Crashes)
    assert isinstance(info.value.__cause__, ZeroDivisionError)


def test_missing_fields_name_the_role_that_reads_them():
    with pytest.raises(UserModelCheckError, match="budget") as info:
        check_user_model(NeedsBudget)
    assert (info.value.check, info.value.role) == ("interface", "response")


def test_a_local_class_cannot_be_pickled():
    class Local(LogitChoice):
        pass

    with pytest.raises(UserModelCheckError) as info:
        check_user_model(Local)
    assert info.value.check == "picklable"
