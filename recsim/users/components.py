"""The user-model interface: one component per part of the model, one required method each.

The decomposition is RecSim's (a user sampler, a choice model over a slate, a response model,
a state transition on consumption) adapted to continuous time, with what a session-and-return
simulator adds (relaxation between sessions, session continuation, a return process, churn,
surveys) and what the Goodhart measurement needs (allure and value kept apart):

============  ==========================================  ====================================
role          required method                             what it decides
============  ==========================================  ====================================
sampler       ``sample(n_users, centers, rng)``           each user's initial hidden state
allure        ``score(state, items)``                     what pulls: per (user, item) terms,
                                                          ``"allure"`` among them
value         ``value(state, items, terms, watch_time)``  what helps: the hidden value V
choice        ``probabilities(state, terms)``             P(no click, position 1..n) of a slate
response      ``watch_time(state, items, terms, draws)``  what a click produces (seconds)
transition    ``consume(state, items, terms, ...)``       the state after watching an item
relaxation    ``relax(state, dt, now)``                   the state after dt seconds away
session       ``after_watch(state, items, ...)``          whether the session goes on
returns       ``next_return(state, now, until, draws)``   when the user comes back
churn         ``probability(state)``                      P(quitting for good at a return)
survey        ``respond(state, session, draws)``          a 1–5 answer, or NaN if not asked
============  ==========================================  ====================================

Arrays in, arrays out: ``state`` is a read-only :class:`~recsim.users.state.StateView` of a
batch of ``B`` users, ``items`` an :class:`~recsim.users.state.ItemView` (``(B,)`` or
``(B, n)`` ids), ``terms`` the allure component's dict of arrays for those items, ``draws`` a
:class:`~recsim.users.state.Draws` of the batch (a component's only source of randomness;
it names its streams in ``streams``). A component returns new values of the state fields it
changes as a dict; the engine writes them. It never sees the engine, SimPy or a policy (times
come to it as arguments).

Parameters are a pydantic model ``Params``; a component is built as ``Cls(**params)`` or
``Cls(params_instance)``, and learns the scenario's ``behaviour`` section (the default model's
parameters, which some components share, such as κ) through :meth:`Component.bind`.
``recsim.testing.check_user_model`` checks a component against this contract.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
from pydantic import BaseModel, ConfigDict

from .state import Draws, ItemView, StateView

__all__ = [
    "Component",
    "NoParams",
    "SessionSummary",
    "UserSampler",
    "AllureModel",
    "ValueModel",
    "ChoiceModel",
    "ResponseModel",
    "StateTransition",
    "Relaxation",
    "SessionRule",
    "ReturnProcess",
    "ChurnRule",
    "SurveyModel",
    "ROLES",
]


class NoParams(BaseModel):
    model_config = ConfigDict(extra="forbid")


@dataclass(frozen=True)
class SessionSummary:
    """What a session amounted to, per user of a batch (arrays ``(B,)``): items watched,
    seconds watched, and the mean value and mean allure of the watched items (0 without
    one)."""

    n_watched: np.ndarray
    watch_time: np.ndarray
    mean_value: np.ndarray
    mean_allure: np.ndarray


class Component:
    """Base of every user-model component (see the module docstring for the roles)."""

    #: which part of the model this is (a key of :data:`ROLES`)
    role: ClassVar[str] = ""
    Params: ClassVar[type[BaseModel]] = NoParams
    #: per-user random streams the component draws from (names; the engine keys them)
    streams: ClassVar[tuple[str, ...]] = ()
    #: hidden-state fields the component adds (initial values from :meth:`initial_state`)
    provides: ClassVar[tuple[str, ...]] = ()
    #: hidden-state fields it reads that another component must provide
    requires: ClassVar[tuple[str, ...]] = ()

    def __init__(self, params: BaseModel | None = None, /, **kwargs: Any):
        if params is not None and kwargs:
            raise TypeError("give a Params instance or keyword parameters, not both")
        self.params = params if params is not None else self.Params(**kwargs)
        self.behaviour: Any = None

    def bind(self, behaviour: Any) -> "Component":
        """Give the component the scenario's ``behaviour`` settings (called by the model)."""
        self.behaviour = behaviour
        return self

    def initial_state(self, state: StateView, start: float) -> dict[str, np.ndarray]:
        """Initial values ``(n_users, ...)`` of the fields in :attr:`provides`, given the
        sampled state; ``start`` is the simulated time the run starts at (seconds)."""
        return {}

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.params!r})"


class UserSampler(Component):
    role = "sampler"

    def sample(self, n_users: int, centers: np.ndarray, rng: np.random.Generator) -> dict[str, np.ndarray]:
        """Initial hidden state of ``n_users`` users: ``name -> (n_users, ...)`` arrays.
        ``centers`` ``(n_clusters, K)`` are the catalog's topic clusters; ``rng`` is the
        replication's population stream."""
        raise NotImplementedError


class AllureModel(Component):
    role = "allure"

    def score(self, state: StateView, items: ItemView) -> dict[str, np.ndarray]:
        """Per (user, item) terms of the items ``(B, n)`` (or ``(B,)``) for the batch's users:
        a dict of arrays of the items' shape with at least ``"allure"``, what pulls (the
        choice, response and session components and the return process read it)."""
        raise NotImplementedError


class ValueModel(Component):
    role = "value"

    def value(self, state: StateView, items: ItemView, terms: dict[str, np.ndarray],
              watch_time: np.ndarray) -> np.ndarray:
        """The hidden value V of watching ``watch_time`` seconds of each item (items' shape)."""
        raise NotImplementedError


class ChoiceModel(Component):
    role = "choice"

    @property
    def scan_time(self) -> float:
        """Seconds a user takes to look over a slate (the ``scan_time`` parameter, else the
        scenario's ``behaviour.choice.scan_time``)."""
        own = getattr(self.params, "scan_time", None)
        if own is not None:
            return float(own)
        return float(self.behaviour.choice.scan_time) if self.behaviour is not None else 8.0

    def probabilities(self, state: StateView, terms: dict[str, np.ndarray]) -> np.ndarray:
        """``(B, n+1)`` probabilities of [no click, position 1, ..., position n] for slates
        of ``n`` items whose terms are ``(B, n)``; rows sum to 1."""
        raise NotImplementedError


class ResponseModel(Component):
    role = "response"

    def watch_time(self, state: StateView, items: ItemView, terms: dict[str, np.ndarray],
                   draws: Draws) -> np.ndarray:
        """Seconds watched of each clicked item ``(B,)``, at most its length."""
        raise NotImplementedError

    def expected_watch_time(self, state: StateView, items: ItemView,
                            terms: dict[str, np.ndarray]) -> np.ndarray:
        """E[watch time | click] in seconds, items' shape (optional: the oracles use it)."""
        raise NotImplementedError(
            f"the response model {type(self).__name__} gives no expected watch time, which the "
            "oracle policies need"
        )


class StateTransition(Component):
    role = "transition"

    def consume(self, state: StateView, items: ItemView, terms: dict[str, np.ndarray],
                watch_time: np.ndarray, value: np.ndarray, now: np.ndarray,
                draws: Draws) -> dict[str, np.ndarray]:
        """New values of the fields that watching ``watch_time`` seconds of ``items`` (one
        per user, ``(B,)``) changes; ``now`` is when the watch ends."""
        raise NotImplementedError

    def wellbeing(self, state: StateView) -> np.ndarray:
        """The user's wellbeing W in [0, 1], ``(B,)`` (optional; NaN when undefined)."""
        return np.full(state.n_rows, np.nan)


class Relaxation(Component):
    role = "relaxation"

    def relax(self, state: StateView, dt: np.ndarray, now: np.ndarray) -> dict[str, np.ndarray]:
        """New values of the fields that change over ``dt`` seconds away ``(B,)``, the time
        away ending at ``now``. The metrics also ask for the state of users in a session, with
        ``dt`` 0: what relaxes between sessions must then stay as it is (quantities that decay
        continuously may be brought up to ``now``)."""
        raise NotImplementedError


class SessionRule(Component):
    role = "session"

    def start(self, state: StateView, draws: Draws) -> dict[str, np.ndarray]:
        """Fields set when a session starts (optional)."""
        return {}

    def after_watch(self, state: StateView, items: ItemView, terms: dict[str, np.ndarray],
                    watch_time: np.ndarray, value: np.ndarray,
                    draws: Draws) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        """After a watch (state already updated): whether each user asks for another slate
        ``(B,)`` bool, and the fields it changes."""
        raise NotImplementedError

    def after_no_click(self, state: StateView, draws: Draws) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        """After a slate without a click: whether each user asks for another slate, and the
        fields it changes (optional; by default the user looks at another slate — with a
        choice model that rarely clicks, override it, or sessions last until the horizon, one
        slate per scan time)."""
        return np.ones(state.n_rows, dtype=bool), {}


class ReturnProcess(Component):
    role = "returns"

    def next_return(self, state: StateView, now: np.ndarray, until: float, draws: Draws) -> np.ndarray:
        """When each user next comes back, ``(B,)`` seconds after ``now`` (the end of their
        last session, or the start of the run), ``inf`` if not by ``until``."""
        raise NotImplementedError

    def end_session(self, state: StateView, session: SessionSummary, now: np.ndarray) -> dict[str, np.ndarray]:
        """Fields changed by a session that ends at ``now`` (optional)."""
        return {}


class ChurnRule(Component):
    role = "churn"

    def probability(self, state: StateView) -> np.ndarray:
        """P(quitting for good) at each would-be return after the first session, ``(B,)``."""
        raise NotImplementedError

    def end_session(self, state: StateView, session: SessionSummary) -> dict[str, np.ndarray]:
        """Fields changed by a session's end (optional)."""
        return {}


class SurveyModel(Component):
    role = "survey"

    def respond(self, state: StateView, session: SessionSummary, draws: Draws) -> np.ndarray:
        """Each user's survey answer (1–5) after a session, or NaN when not asked, ``(B,)``."""
        raise NotImplementedError


#: role -> (interface, its required method)
ROLES: dict[str, tuple[type[Component], str]] = {
    "sampler": (UserSampler, "sample"),
    "allure": (AllureModel, "score"),
    "value": (ValueModel, "value"),
    "choice": (ChoiceModel, "probabilities"),
    "response": (ResponseModel, "watch_time"),
    "transition": (StateTransition, "consume"),
    "relaxation": (Relaxation, "relax"),
    "session": (SessionRule, "after_watch"),
    "returns": (ReturnProcess, "next_return"),
    "churn": (ChurnRule, "probability"),
    "survey": (SurveyModel, "respond"),
}
