"""check_user_model: conformance checks for user-model components (see :mod:`recsim.testing`)."""

from __future__ import annotations

import copy
import inspect
import math
import pickle
from dataclasses import fields as dataclass_fields
from typing import Any

import numpy as np
from pydantic import BaseModel

from .. import rng as rngmod
from ..catalog import Catalog, generate_catalog, make_topic_centers
from ..config import CatalogConfig
from ..users.components import ROLES, Component, SessionSummary
from ..users.contracts import ContractError, OutputContract
from ..users.formulas import sample_choice, session_mean
from ..users.model import UserModel, UserModelError, build_user_model
from ..users.state import Draws, ItemView, StateView, UserState, gather_items
from ._common import _global_random_state, _same_global_state, _scenario

__all__ = ["USER_MODEL_CHECKS", "UserModelCheckError", "check_user_model"]

# ============================================================================= user models
#: The properties :func:`check_user_model` verifies; a :class:`UserModelCheckError` names the key.
USER_MODEL_CHECKS: dict[str, str] = {
    "interface": "the object is a UserModel or a component: a subclass of its role's interface "
    "(recsim.users.components.ROLES) that implements the role's required method, whose Params is "
    "a pydantic model, constructible with default parameters (a class) or from its params as the "
    "model builder does (an instance), with streams / provides / requires tuples of names, every "
    "field in requires provided by the model, and every method running without raising on "
    "realistic inputs (reading only state fields the model has)",
    "shapes": "every output has its documented type, shape, dtype and range (sample and "
    "initial_state: arrays with a leading n_users axis; score: item-shaped arrays with 'allure'; "
    "value: item-shaped, finite; probabilities: (B, n+1), >= 0, rows sum to 1; watch_time: (B,), "
    "0 <= tau <= item length; state updates: the field's shape for the batch; continuation: (B,) "
    "bool; next_return: (B,), > now and <= until, or inf; churn: (B,) in [0, 1]; survey: (B,) in "
    "{1, ..., 5} or NaN)",
    "no_mutation": "no call modifies its inputs: state views, item views, terms dicts and their "
    "arrays, watch times, values, now, dt, session summaries, the sampler's topic centers, the "
    "user state and the catalog (nor tries to write a read-only one)",
    "deterministic": "given the same inputs and fresh identical Draws (the sampler: a generator in "
    "the same state), a call returns bit-identical outputs (no time, id(), hash order or "
    "unseeded generators)",
    "declared_streams": "a component draws only from the per-user streams it declares in "
    "`streams` (each call gets Draws holding only those)",
    "no_global_random": "no call changes numpy.random's global state or the random module's",
    "picklable": "the component survives a pickle round-trip (and a deep copy), and the copy "
    "returns the same outputs for the same inputs (models cross process boundaries; hold no "
    "lambdas, local functions, generator objects or locks)",
    "hidden_observable_split": "a component writes only hidden-state fields of the model (sampled "
    "or declared in some component's provides), samples / initializes exactly the fields it "
    "declares in provides, returns its observable outputs as plain numeric numpy arrays, and "
    "keeps no memory of its own between calls (see check_user_model)",
}

_UM_USERS = 8
_UM_ITEMS = 300
_UM_SLATE = 5
_UM_CANDIDATES = 40
_UM_START = 0.0
_UM_UNTIL = 14 * 86400.0  # the end of the (synthetic) run, seconds
_UM_SURVEY_TRIES = 12  # sessions ended until some user answers a survey
_DAY = 86400.0

#: (role, method) whose outputs the engine turns into what the platform observes
class UserModelCheckError(AssertionError):
    """A failed user-model conformance check: ``check`` is the failed property (a key of
    :data:`USER_MODEL_CHECKS`), ``role`` and ``component`` the role and class name at fault."""

    def __init__(
        self, message: str, check: str, role: str | None = None, component: str | None = None
    ):
        super().__init__(message)
        self.check = check
        self.role = role
        self.component = component

    def __reduce__(self):  # picklable with its attributes (it may cross processes)
        return (type(self), (str(self), self.check, self.role, self.component), self.__dict__)


def _um_fail(role: str | None, name: str, check: str, message: str) -> UserModelCheckError:
    assert check in USER_MODEL_CHECKS
    where = f"{role} component {name}" if role else name
    return UserModelCheckError(
        f"check_user_model: {where}: property {check!r} failed: {message}", check, role, name
    )


def _identical(a: Any, b: Any) -> bool:
    """Bit-identical outputs: arrays of the same shape, dtype and bytes; dicts, tuples and
    lists of identical values; equal scalars (NaN equal to NaN)."""
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        if not (
            isinstance(a, np.ndarray)
            and isinstance(b, np.ndarray)
            and a.shape == b.shape
            and a.dtype == b.dtype
        ):
            return False
        if a.dtype.kind == "O":  # bytes would be pointers
            return bool(np.array_equal(a, b))
        return a.tobytes() == b.tobytes()
    if isinstance(a, dict):
        return isinstance(b, dict) and list(a) == list(b) and all(_identical(a[k], b[k]) for k in a)
    if isinstance(a, (tuple, list)):
        return (
            type(a) is type(b) and len(a) == len(b) and all(_identical(x, y) for x, y in zip(a, b))
        )
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    try:
        return type(a) is type(b) and bool(a == b)
    except (TypeError, ValueError):  # an ambiguous comparison
        return a is b


class _Frozen:
    """A call's argument as it was before the call: to see whether the call changed it, and to
    give a second call a fresh, identical copy (what the determinism and pickle checks need)."""

    def __init__(self, name: str, arg: Any, derived_names: frozenset[str]):
        self.name = name  # the parameter's name, for messages
        self.arg = arg
        if isinstance(arg, StateView):
            # a view of the user state (the private fields are read to rebuild it: a component
            # that keeps a reference or re-flags a gathered array must not get away with it)
            if arg._state is not None:
                self.kind = "state"
                self.n_users = arg._state.n_users
                self.data = {name: values.copy() for name, values in arg._state.arrays.items()}
                self.users = np.array(arg.users, copy=True)
            else:  # a view over gathered arrays (StateView.of, repeat, with_values)
                self.kind = "view"
                # computed beside the view, not through it: the component meets the view
                # exactly as the engine hands it over (nothing gathered yet)
                self.data = {
                    name: np.array(
                        arg._cache[name] if name in arg._cache else arg._derived[name](arg),
                        copy=True,
                    )
                    for name in arg.fields
                    if name not in derived_names
                }
            self.derived = arg._derived
        elif isinstance(arg, ItemView):
            self.kind, self.data = "items", np.array(arg.ids, copy=True)
        elif isinstance(arg, Draws):
            self.kind = "draws"
            self.data = {name: counter.copy() for name, counter in arg.counters.items()}
        elif isinstance(arg, SessionSummary):
            self.kind = "summary"
            self.data = {
                f.name: np.array(getattr(arg, f.name), copy=True) for f in dataclass_fields(arg)
            }
        elif isinstance(arg, dict):
            self.kind = "dict"
            self.data = {name: np.array(values, copy=True) for name, values in arg.items()}
        elif isinstance(arg, np.ndarray):
            self.kind, self.data = "array", arg.copy()
        elif isinstance(arg, np.random.Generator):
            self.kind, self.data = "rng", copy.deepcopy(arg)
        else:  # numbers: immutable
            self.kind, self.data = "value", arg

    def changed(self, catalog: Catalog) -> str | None:
        """What the call changed in the argument, or None."""
        arg, data, name = self.arg, self.data, self.name
        if self.kind == "state":
            now = arg._state.arrays
            for field, values in data.items():
                if field not in now or not _identical(values, now[field]):
                    return f"the user state's field {field!r} (behind {name})"
            for field, values in arg._cache.items():
                if field in data and not _identical(values, data[field][self.users]):
                    return f"{name}[{field!r}] (the state view's gathered array)"
            if not _identical(self.users, arg.users):
                return f"{name}.users"
        elif self.kind == "view":
            for field, values in data.items():
                if not _identical(values, arg[field]):
                    return f"{name}[{field!r}]"
        elif self.kind == "items":
            if not _identical(data, arg.ids):
                return f"{name}.ids"
            for field, values in arg._cache.items():
                if not _identical(values, gather_items(catalog, field, data)):
                    return f"{name}.{field}"
        elif self.kind == "summary":
            for field, values in data.items():
                if not _identical(values, getattr(arg, field)):
                    return f"{name}.{field}"
        elif self.kind == "dict":
            if list(arg) != list(data):
                return f"the keys of {name} (now {sorted(arg)}, were {sorted(data)})"
            for field, values in data.items():
                if not _identical(values, arg[field]):
                    return f"{name}[{field!r}]"
        elif self.kind == "array" and not _identical(data, arg):
            return name
        return None

    def fresh(self) -> Any:
        """An identical, independent copy of the argument as it was before the call."""
        data = self.data
        if self.kind == "state":
            state = UserState(self.n_users, data)
            return StateView(state, self.users.copy(), self.derived)
        if self.kind == "view":
            return StateView.of(
                {name: values.copy() for name, values in data.items()}, self.derived
            )
        if self.kind == "items":
            return ItemView(self.arg.catalog, data.copy())
        if self.kind == "draws":
            return Draws(
                self.arg.keys, {name: c.copy() for name, c in data.items()}, self.arg.users.copy()
            )
        if self.kind == "summary":
            return SessionSummary(**{name: values.copy() for name, values in data.items()})
        if self.kind == "dict":
            return {name: values.copy() for name, values in data.items()}
        if self.kind == "array":
            return data.copy()
        if self.kind == "rng":
            return copy.deepcopy(data)
        return data


def _check_interface(role: str, obj: Any, given_class: bool) -> tuple[Component, str]:
    """The static part of ``interface``: returns the component instance to check and its
    class name (a class is built with default parameters)."""
    cls = obj if given_class else type(obj)
    name = getattr(cls, "__qualname__", repr(cls))
    if role not in ROLES:
        raise _um_fail(
            None,
            name,
            "interface",
            f"no role {role!r}; a component is a subclass of one of the interfaces of "
            f"recsim.users.components ({', '.join(ROLES)}), or give role=...",
        )
    interface, method = ROLES[role]
    if not (isinstance(cls, type) and issubclass(cls, interface)):
        raise _um_fail(
            role,
            name,
            "interface",
            f"not a subclass of recsim.users.{interface.__name__}, the {role} role's interface",
        )
    if getattr(cls, method) is getattr(interface, method):
        raise _um_fail(
            role,
            name,
            "interface",
            f"does not implement {method}(), the {role} role's required method",
        )
    params = getattr(cls, "Params", None)
    if not (isinstance(params, type) and issubclass(params, BaseModel)):
        raise _um_fail(
            role, name, "interface", f"Params is {params!r}; expected a pydantic BaseModel subclass"
        )
    for attr in ("streams", "provides", "requires"):
        value = getattr(cls, attr, None)
        if not (isinstance(value, tuple) and all(isinstance(x, str) for x in value)):
            raise _um_fail(
                role, name, "interface", f"{attr} is {value!r}; expected a tuple of names"
            )
    if given_class:
        try:
            obj = cls()
        except Exception as exc:
            raise _um_fail(
                role,
                name,
                "interface",
                f"cannot be constructed with default parameters ({type(exc).__name__}: {exc}); "
                "pass an instance instead",
            ) from exc
    elif not isinstance(obj.params, params):
        raise _um_fail(
            role, name, "interface", f"its params are a {type(obj.params).__name__}, not its Params"
        )
    else:
        try:
            cls(obj.params)  # how the model builder constructs it: Cls(Params(**params))
        except Exception as exc:
            raise _um_fail(
                role,
                name,
                "interface",
                f"cannot be rebuilt from its params as build_user_model does, {name}(params) "
                f"({type(exc).__name__}: {exc})",
            ) from exc
    return obj, name


class _ModelChecker:
    """Exercises a user model's components in a small synthetic world as the engines call them
    (``recsim/engine/core.py``) and checks every call of the components in ``checked``."""

    def __init__(self, model: UserModel, checked: tuple[str, ...], seed: int):
        self.model = model
        self.checked = checked
        self.seed = seed
        self.names = {role: type(c).__qualname__ for role, c in model.components.items()}
        self.derived_names = frozenset(model._derived)
        self.clones: dict[str, Component] = {}
        self._names: dict[tuple[str, str], list[str]] = {}

    def fail(self, role: str, check: str, message: str) -> UserModelCheckError:
        return _um_fail(role, self.names[role], check, message)

    # ------------------------------------------------------------------ calls
    def view(self, users: np.ndarray) -> StateView:
        return self.model.view(self.state, users)

    def draws(self, users: np.ndarray) -> Draws:
        return Draws(self.all_draws.keys, self.all_draws.counters, users)

    def put(self, users: np.ndarray, updates: dict[str, np.ndarray]) -> None:
        if updates:
            self.state.put(users, updates)

    def _clone(self, role: str, component: Component) -> Component:
        clone = self.clones.get(role)
        if clone is None:
            try:
                clone = self.clones[role] = pickle.loads(pickle.dumps(component))
            except Exception as exc:
                raise self.fail(
                    role,
                    "picklable",
                    f"pickle round-trip raised {type(exc).__name__}: {exc} (hold only picklable "
                    "state: no lambdas, local functions, generator objects or locks)",
                ) from exc
        return clone

    def _parameters(self, role: str, method: str, n: int) -> list[str]:
        """The names of a method's parameters as the interface documents them."""
        key = (role, method)
        names = self._names.get(key)
        if names is None:
            function = getattr(ROLES[role][0], method)
            names = self._names[key] = [
                p for p in inspect.signature(function).parameters if p != "self"
            ]
        return (names + [f"argument {i + 1}" for i in range(len(names), n)])[:n]

    def _raised(self, role: str, what: str, exc: Exception) -> UserModelCheckError:
        message = str(exc.args[0]) if isinstance(exc, KeyError) and exc.args else str(exc)
        if isinstance(exc, KeyError) and "random stream" in message:
            streams = self.model.components[role].streams
            return self.fail(
                role,
                "declared_streams",
                f"{what} drew from a stream it does not declare (it declares "
                f"streams = {streams!r}): {message}",
            )
        if isinstance(exc, KeyError) and "user state has no field" in message:
            return self.fail(
                role,
                "interface",
                f"{what} read a state field the model does not have: {message}; name the "
                "fields it reads in requires and check it in a model that provides them",
            )
        if isinstance(exc, ValueError) and "read-only" in message:
            return self.fail(
                role, "no_mutation", f"{what} tried to write into a read-only input ({message})"
            )
        return self.fail(role, "interface", f"{what} raised {type(exc).__name__}: {message}")

    def call(self, role: str, method: str, *args: Any, optional: bool = False) -> Any:
        """``model.<role>.<method>(*args)``; for a checked component, with every check. An
        optional method the component does not give (NotImplementedError) returns None."""
        component = self.model.components[role]
        if role not in self.checked:
            try:
                return getattr(component, method)(*args)
            except NotImplementedError:
                if optional:
                    return None
                raise
        what = f"{method}()"
        # only the streams it declares (Draws.uniform names an undeclared one)
        args = tuple(
            Draws(
                {s: a.keys[s] for s in component.streams},
                {s: a.counters[s] for s in component.streams},
                a.users,
            )
            if isinstance(a, Draws)
            else a
            for a in args
        )
        names = self._parameters(role, method, len(args))
        frozen = [_Frozen(name, a, self.derived_names) for name, a in zip(names, args)]
        clone = self._clone(role, component)
        memory = pickle.dumps(component)
        global_state = _global_random_state()
        try:
            out = getattr(component, method)(*args)
        except NotImplementedError:
            if optional:
                return None
            raise self.fail(role, "interface", f"{what} raised NotImplementedError") from None
        except UserModelCheckError:
            raise
        except Exception as exc:
            raise self._raised(role, what, exc) from exc
        if not _same_global_state(global_state, _global_random_state()):
            raise self.fail(
                role,
                "no_global_random",
                f"{what} changed the global numpy.random or random state; draw only from the "
                "Draws it is given (the sampler: from its rng)",
            )
        for f in frozen:
            changed = f.changed(self.catalog)
            if changed:
                raise self.fail(role, "no_mutation", f"{what} modified its input: {changed}")
        for name, values in self.catalog_before.items():
            if not _identical(values, getattr(self.catalog, name)):
                raise self.fail(role, "no_mutation", f"{what} modified the catalog's {name}")
        self.validate(role, method, out, args)
        for check, callee, label in (
            ("deterministic", component, "a second call"),
            ("picklable", clone, "the unpickled copy"),
        ):
            try:
                again = getattr(callee, method)(*[f.fresh() for f in frozen])
            except Exception as exc:
                raise self.fail(
                    role,
                    check,
                    f"{label} of {what} on identical inputs raised {type(exc).__name__}: {exc}",
                ) from exc
            if not _identical(out, again):
                why = (
                    "uses time, id(), hash order, an unseeded generator or memory of earlier calls"
                    if check == "deterministic"
                    else "its state did not survive pickling"
                )
                raise self.fail(
                    role,
                    check,
                    f"{label} of {what} on identical inputs and fresh identical draws returned "
                    f"different outputs (the component {why})",
                )
        if pickle.dumps(component) != memory:
            raise self.fail(
                role,
                "hidden_observable_split",
                f"{what} changed the component's own attributes: a component keeps no memory "
                "between calls; keep per-user state in fields it provides (the engine writes "
                "them)",
            )
        return out

    # ------------------------------------------------------------------ outputs
    def validate(self, role: str, method: str, out: Any, args: tuple) -> None:
        """The role's output contract (:mod:`recsim.users.contracts`), as a failed check."""
        try:
            contract = OutputContract(self.model, getattr(self, "state", None), getattr(self, "hidden", set()))
            contract.validate(role, method, out, args)
        except ContractError as exc:
            raise self.fail(role, exc.check, exc.message) from None

    def scan_time(self) -> float:
        component = self.model.choice
        try:
            scan = component.scan_time
        except Exception as exc:
            raise self.fail(
                "choice", "interface", f"scan_time raised {type(exc).__name__}: {exc}"
            ) from exc
        if "choice" in self.checked and not (
            isinstance(scan, (int, float)) and math.isfinite(scan) and scan >= 0
        ):
            raise self.fail(
                "choice", "shapes", f"scan_time is {scan!r}; expected seconds, a finite number >= 0"
            )
        return float(scan)

    # ------------------------------------------------------------------ the exercise
    def run(self) -> None:
        """A run in miniature: the initial state, first returns, a session of three slates
        per user for batches of 7, 4 (shuffled) and 1 users, what an oracle asks, the
        session's end (churn, returns, surveys), the next returns and a metric snapshot."""
        model, n = self.model, _UM_USERS
        rngs = [np.random.default_rng(s) for s in np.random.SeedSequence(self.seed).spawn(5)]
        topics_rng, catalog_rng, uploads_rng, population_rng, slates_rng = rngs
        cfg = CatalogConfig(n_items=_UM_ITEMS, n_creators=40)
        centers = make_topic_centers(cfg, topics_rng)
        catalog = self.catalog = generate_catalog(
            cfg, centers, _UM_START, _UM_START, catalog_rng, uploads_rng
        )
        self.catalog_before = {
            f.name: np.array(getattr(catalog, f.name), copy=True) for f in dataclass_fields(catalog)
            if f.name != "draws"
        }
        everyone = np.arange(n)

        # the initial state: the sampler, then each component's own fields (as
        # UserModel.initial_state does)
        sampled = self.call("sampler", "sample", n, centers, population_rng)
        self.hidden = set(sampled) | {
            name for c in model.components.values() for name in c.provides
        }
        self.state = UserState(n, sampled)
        for role in model.components:
            if role != "sampler":
                for name, values in self.call(
                    role, "initial_state", self.view(everyone), _UM_START
                ).items():
                    self.state.add(name, values)
        streams = tuple(dict.fromkeys([*rngmod.USER_STREAMS, *model.streams]))
        self.all_draws = Draws.for_users(self.seed, streams, everyone, n)

        # first returns; sessions start (a day in for a user without one); the first two
        # users relax over dt = 0, as a user in a session does in a metric snapshot
        first = self.call(
            "returns",
            "next_return",
            self.view(everyone),
            np.full(n, _UM_START),
            _UM_UNTIL,
            self.draws(everyone),
        )
        self.call("churn", "probability", self.view(everyone))
        now = np.where(np.isfinite(first), first, _UM_START + _DAY)
        dt = now - _UM_START
        dt[:2] = 0.0
        self.put(everyone, self.call("relaxation", "relax", self.view(everyone), dt, now.copy()))
        self.call("transition", "wellbeing", self.view(everyone))
        self.put(everyone, self.call("session", "start", self.view(everyone), self.draws(everyone)))

        # slates (B, n) and watches (B,): every user of a batch watches what they chose, or
        # their first item when they chose none (so every call sees every row); the last
        # user watches nothing (a session without a watch)
        scan = self.scan_time()
        n_watched, seconds = np.zeros(n, dtype=np.int64), np.zeros(n)
        sum_value, sum_allure = np.zeros(n), np.zeros(n)
        for batch in (np.arange(n - 1), np.array([5, 1, 6, 2]), np.array([3])):
            B = batch.shape[0]
            slate = np.stack(
                [slates_rng.choice(_UM_ITEMS, size=_UM_SLATE, replace=False) for _ in range(B)]
            )
            view = self.view(batch)
            terms = self.call("allure", "score", view, ItemView(catalog, slate))
            probabilities = self.call("choice", "probabilities", view, terms)
            position = np.maximum(
                sample_choice(probabilities, self.draws(batch).uniform("choice")), 0
            )
            rows = np.arange(B)
            chosen = {name: values[rows, position] for name, values in terms.items()}
            items = ItemView(catalog, slate[rows, position])
            draws = self.draws(batch)
            tau = self.call("response", "watch_time", view, items, chosen, draws)
            value = self.call("value", "value", view, items, chosen, tau)
            end = now[batch] + scan + tau
            self.put(
                batch,
                self.call("transition", "consume", view, items, chosen, tau, value, end, draws),
            )
            self.put(
                batch,
                self.call(
                    "session", "after_watch", self.view(batch), items, chosen, tau, value, draws
                )[1],
            )
            self.put(
                batch,
                self.call("session", "after_no_click", self.view(batch), self.draws(batch))[1],
            )
            now[batch] = end
            n_watched[batch] += 1
            seconds[batch] += tau
            sum_value[batch] += value
            sum_allure[batch] += chosen["allure"]

        # what an oracle asks for one request: candidates (1, c), P(click) alone (c slates of one)
        user = np.array([0])
        candidates = slates_rng.choice(_UM_ITEMS, size=_UM_CANDIDATES, replace=False).reshape(1, -1)
        view, items = self.view(user), ItemView(catalog, candidates)
        terms = self.call("allure", "score", view, items)
        single = {name: values.reshape(_UM_CANDIDATES, 1) for name, values in terms.items()}
        self.call("choice", "probabilities", view.repeat(_UM_CANDIDATES), single)
        expected = self.call("response", "expected_watch_time", view, items, terms, optional=True)
        if expected is None:  # optional: without it, value at half of each item
            expected = 0.5 * catalog.length[candidates]
        self.call("value", "value", view, items, terms, expected)

        # the sessions end
        summary = SessionSummary(
            n_watched=n_watched,
            watch_time=seconds,
            mean_value=session_mean(sum_value, n_watched),
            mean_allure=session_mean(sum_allure, n_watched),
        )
        self.put(everyone, self.call("churn", "end_session", self.view(everyone), summary))
        self.put(everyone, self.call("returns", "end_session", self.view(everyone), summary, now))
        # most sessions end without a survey: end sessions until someone answers
        for _ in range(_UM_SURVEY_TRIES):
            answers = self.call(
                "survey", "respond", self.view(everyone), summary, self.draws(everyone)
            )
            if not np.isnan(answers).all():
                break
        self.call(
            "returns", "next_return", self.view(everyone), now, _UM_UNTIL, self.draws(everyone)
        )
        self.call("churn", "probability", self.view(everyone))

        # a metric snapshot a day later: relaxed state (dt = 0 for users in a session), its W
        view = self.view(everyone)
        later = np.full(n, float(now.max()) + _DAY)
        dt = later - now
        dt[:2] = 0.0
        relaxed = view.with_values(self.call("relaxation", "relax", view, dt, later))
        self.call("transition", "wellbeing", relaxed)


def check_user_model(obj: Any, role: str | None = None, *, seed: int = 0) -> None:
    """Check that a user model, or one component, honours the component contract
    (:mod:`recsim.users.components`); raise :class:`UserModelCheckError` (an
    :class:`AssertionError`) naming the role, the component class and the first failed
    property (see :data:`USER_MODEL_CHECKS`).

    ``obj`` is a :class:`~recsim.users.model.UserModel` (every component is checked, or only
    ``role``'s when given), a component instance, or a component class (built with default
    parameters). A lone component is checked inside recsim's default model with it in its role
    (``cls.role``, or ``role``); one that reads fields the default model lacks (``requires``)
    must be checked inside a model that provides them: pass that model (and ``role``). What is
    given is never mutated: the checks work on deep copies.

    The synthetic world, drawn from ``seed``: 300 items (:func:`recsim.catalog.generate_catalog`),
    8 users (the model's ``sample`` and every ``initial_state``), per-user :class:`Draws`. The
    model then lives a run in miniature, called as ``recsim/engine/core.py`` calls it: first
    returns (``next_return``, churn ``probability``); a session start (``relax`` over the time
    away — 0 for two users, as in a metric snapshot — ``wellbeing``, ``start``); three slates
    of 5 for batches of 7, 4 (shuffled) and 1 users (``score`` ``(B, 5)``, ``probabilities``,
    then for a watched item per user ``(B,)``: ``watch_time``, ``value``, ``consume``,
    ``after_watch``, ``after_no_click``); an oracle's request (``score`` of ``(1, 40)``
    candidates, ``probabilities`` of 40 one-item slates, ``expected_watch_time`` if given,
    ``value``); the session's end (``end_session`` of churn and returns, ``respond`` until
    some user answers, at most 12 times, ``next_return``, ``probability``); a metric snapshot
    a day later (``relax``, ``wellbeing``). Every call of a checked component is checked for:

    * ``no_global_random``: numpy.random's and random's global states are unchanged;
    * ``declared_streams``: it is given :class:`Draws` holding only its declared ``streams``;
    * ``no_mutation``: its arguments are unchanged afterwards (state views and the user state
      behind them, item views and their gathered attributes, terms dicts — keys and arrays —,
      watch times, values, ``now``, ``dt``, session summaries, topic centers), and so is the
      catalog; a write into a read-only input (a ValueError) fails here too;
    * ``shapes``: see :data:`USER_MODEL_CHECKS` (``B`` the batch's rows, ``n`` the slate);
    * ``deterministic``: a second call on fresh identical copies of the inputs and fresh
      identical draws (the sampler: a copy of its generator) returns bit-identical outputs;
    * ``picklable``: a pickled copy (made once, before the component's first call) returns
      the same outputs on identical inputs;
    * ``hidden_observable_split``, precisely: (a) every dict of state updates (``consume``,
      ``relax``, ``start``, ``after_watch``, ``after_no_click``, ``end_session``) names only
      hidden-state fields of the model — fields the sampler returns or some component declares
      in ``provides`` — never a derived quantity (``wellbeing``), an item attribute or a new
      name; (b) ``sample`` and ``initial_state`` return exactly the fields the component
      declares in ``provides`` (what ``requires`` is checked against); (c) the outputs the
      engine turns into observations — choice probabilities (the clicked position is sampled
      from them), watch times, continuation flags, return times, churn probabilities, survey
      answers — are plain ``numpy.ndarray`` of bool, int or float (no subclass, object array
      or view object that could carry hidden state along); (d) the component keeps no memory
      of its own: its pickled attributes are the same after every call as before, so all
      hidden state lives in the user state the engine writes (and that metric snapshots,
      relaxation and the oracles see). Items' true attributes reach policies only through
      oracles, which this does not involve.

    Before any call, ``interface``: the class subclasses its role's interface and implements
    the required method, ``Params`` is a pydantic model, the component is constructible
    (default parameters for a class; ``Cls(params)`` for an instance), ``streams``,
    ``provides`` and ``requires`` are tuples of names, and the model provides every field in
    ``requires``; a method that raises fails ``interface`` too.
    """
    if isinstance(obj, UserModel):
        if role is not None and role not in ROLES:
            raise ValueError(f"unknown role {role!r}; roles are {', '.join(ROLES)}")
        try:
            model = copy.deepcopy(obj)
        except Exception as exc:
            raise _um_fail(
                None,
                repr(obj),
                "picklable",
                f"deep copy of the model raised {type(exc).__name__}: {exc}",
            ) from exc
        checked = tuple(ROLES) if role is None else (role,)
        for r in checked:
            _check_interface(r, model.components[r], given_class=False)
    else:
        given_class = isinstance(obj, type)
        cls = obj if given_class else type(obj)
        if role is None:
            role = (
                getattr(cls, "role", "")
                if isinstance(cls, type) and issubclass(cls, Component)
                else ""
            )
        if not given_class:
            if not isinstance(obj, Component):
                raise _um_fail(
                    None,
                    type(obj).__qualname__,
                    "interface",
                    "not a UserModel or a user-model component (recsim.users.components)",
                )
            try:
                obj = copy.deepcopy(obj)
            except Exception as exc:
                raise _um_fail(
                    role or None,
                    cls.__qualname__,
                    "picklable",
                    f"deep copy raised {type(exc).__name__}: {exc} (hold no locks, open files or "
                    "generator objects)",
                ) from exc
        component, name = _check_interface(role, obj, given_class)
        base = build_user_model(_scenario())
        components = dict(base.components)
        components[role] = component
        provided = {field for c in components.values() for field in c.provides} | set(base._derived)
        lacking = [field for field in component.requires if field not in provided]
        if lacking:
            raise _um_fail(
                role,
                name,
                "interface",
                f"reads the state field(s) {', '.join(lacking)} (requires), which the default "
                "model does not provide: check it inside a model with a component that provides "
                "them, "
                f"check_user_model(model, role={role!r})",
            )
        try:
            model = UserModel(components, base.behaviour)
        except UserModelError as exc:
            raise _um_fail(role, name, "interface", str(exc)) from exc
        checked = (role,)
    for r in checked:
        component = model.components[r]
        provided = {field for c in model.components.values() for field in c.provides} | set(
            model._derived
        )
        lacking = [field for field in component.requires if field not in provided]
        if lacking:
            raise _um_fail(
                r,
                type(component).__qualname__,
                "interface",
                f"reads the state field(s) {', '.join(lacking)} (requires), which no component "
                "of the model provides",
            )
    _ModelChecker(model, checked, seed).run()
