"""Conformance checks for plug-ins, in the spirit of Gymnasium's ``check_env``
and scikit-learn's ``check_estimator``: :func:`check_policy` for policies,
:func:`check_user_model` for user-model components.

Run :func:`check_policy` on your own policy before naming it in a scenario file::

    from recsim.testing import check_policy

    check_policy(MyPolicy(alpha=0.3))   # or check_policy(MyPolicy) for default parameters

It builds a small synthetic world (a catalog of a few hundred items, a handful of users with
logged histories, feedback with clicks, watch times and surveys), resets and fits the policy,
serves a few dozen requests and raises :class:`PolicyCheckError` (an :class:`AssertionError`)
naming the first property that fails (a key of :data:`POLICY_CHECKS`, also its ``check``). It
never mutates the policy it is given: every step works on copies. It takes well under a second
for a policy of the size of the built-ins.

The synthetic users are recsim's default user model (:func:`recsim.users.model.build_user_model`
of a tiny scenario): their hidden state is a real :class:`~recsim.users.state.UserState` and
every click, watch time, state change and survey answer in the logs comes from the model's
components, called as the engines call them (``recsim/engine/core.py``).

Ending sessions: a policy may serve an **empty slate** to end the user's session (a break
suggestion; the engine logs a ``break`` event). :func:`check_policy` accepts an empty slate
only from a policy that declares it can do so with the class attribute
``may_end_sessions = True`` (a wrapper may instead set it on the instance in its constructor,
from the base policy it wraps); otherwise a slate must hold exactly
``min(request.slate_size, len(request.candidates))`` items. Oracle policies (``oracle = True``)
receive ``request.oracle``, an :class:`~recsim.oracle.OracleView` of the synthetic users'
hidden state.

Run :func:`check_user_model` on your own user-model component (or a whole
:class:`~recsim.users.model.UserModel`) before naming it in a scenario's ``user_model:``::

    from recsim.testing import check_user_model

    check_user_model(MyChoice)              # a class, built with default parameters
    check_user_model(MyChoice(beta=3.0))    # or an instance, checked in the default model
    check_user_model(model)                 # every component of a model

It raises :class:`UserModelCheckError` naming the role, the component class and the first
property that fails (a key of :data:`USER_MODEL_CHECKS`).
"""

from __future__ import annotations

import copy
import functools
import inspect
import math
import pickle
import random as stdlib_random  # only read, to catch plug-ins that draw from it
from collections.abc import Callable
from dataclasses import dataclass
from dataclasses import fields as dataclass_fields
from typing import Any

import numpy as np
from pydantic import BaseModel

from . import rng as rngmod
from .catalog import Catalog, ObservableItems, generate_catalog, make_topic_centers
from .config import CatalogConfig, Scenario
from .oracle import OracleView
from .policies.base import CandidateFeatures, Feedback, History, Policy, PolicyContext, Request
from .users.components import ROLES, Component, SessionSummary
from .users.formulas import sample_choice, session_mean
from .users.model import UserModel, UserModelError, build_user_model
from .users.state import Draws, ItemView, StateView, UserState, gather_items

__all__ = [
    "POLICY_CHECKS",
    "USER_MODEL_CHECKS",
    "PolicyCheckError",
    "UserModelCheckError",
    "check_policy",
    "check_user_model",
]

#: The properties :func:`check_policy` verifies; an :class:`AssertionError` names the key.
POLICY_CHECKS: dict[str, str] = {
    "interface": "the object is a recsim Policy (a class must be constructible with default "
    "parameters), and reset(context), fit(feedback, now) — with logged "
    "feedback and with an empty Feedback, as the engine refits on schedule even when nothing "
    "was logged — and recommend(request, rng) run without raising",
    "integer_ids": "recommend returns a 1-D numpy array of integer item ids (an empty slate may "
    "have any dtype)",
    "slate_length": "a slate never holds more than request.slate_size items, and holds exactly "
    "min(slate_size, number of candidates) unless it is empty and the policy sets "
    "may_end_sessions = True (an empty slate ends the session)",
    "no_duplicates": "no item appears twice in a slate",
    "subset_of_candidates": "every item of a slate is one of request.candidates",
    "request_unchanged": "recommend does not modify the request: its candidates, the candidate "
    "features, the user's history, its scalars and (for oracles) the oracle view's inputs",
    "context_unchanged": "reset, fit and recommend do not modify the observable item features "
    "of the PolicyContext (the engine shares these arrays with every user)",
    "no_global_random": "recommend draws randomness only from the rng it is given, never from "
    "the global numpy.random or random module state",
    "deterministic": "two deep copies of the fitted policy, given generators from the same seed, "
    "serve identical slates (no hidden randomness: unseeded generators, time, hash order)",
    "picklable": "the policy can be deep-copied, and the fitted policy survives a pickle "
    "round-trip with the copy serving the same slates under the same rng (policies may cross "
    "process boundaries; hold no lambdas, local functions, generator objects or locks)",
    "reset_clears_state": "after fit, reset(context) forgets everything learned: the policy then "
    "serves the same slates as a copy that was never fitted, under the same rng",
}

# Size of the synthetic world: realistic shapes, small enough to check in well under a second.
_N_ITEMS = 300
_N_USERS = 10
_N_CANDIDATES = 40
_SLATE_SIZE = 5
_LOG_SPAN = 2 * 86400.0  # feedback covers the two days before the fit
_FIT_TIME = 0.0
_EMPTY_FIT_TIME = 3600.0  # a second, empty refit an hour later
_REQUEST_START = 3600.0 + 60.0
_LOGGED_SESSIONS = 3  # per user (the new user excepted), in the two days before the fit
_MAX_SLATES = 12  # a logged session ends after at most this many slates
# the sessions under way at the requests (users u with u % 3 == 1, 2): a few items, or a
# binge of over an hour (policies that end long sessions must meet one)
_SHORT_SESSION_ITEMS = 3
_BINGE_SECONDS = 1.25 * 3600.0
_BINGE_START = _FIT_TIME - 5 * 3600.0
_SHORT_START = _FIT_TIME - 1800.0
_FEED_POOL = 50  # a session under way is served from the user's 50 most alluring items
_MAX_CURRENT_SLATES = 1000


@functools.cache
def _scenario(surveys: float | None = None) -> Scenario:
    """A tiny scenario of the default user model (built once: validation takes a while).
    ``surveys`` overrides the share of sessions that end with a survey."""
    behaviour = {} if surveys is None else {"survey": {"probability": surveys}}
    return Scenario(name="check", policies=["random"], behaviour=behaviour)


class PolicyCheckError(AssertionError):
    """A failed conformance check; ``check`` is the failed property (a key of
    :data:`POLICY_CHECKS`)."""

    def __init__(self, message: str, check: str):
        super().__init__(message)
        self.check = check


def _fail(name: str, check: str, message: str) -> PolicyCheckError:
    assert check in POLICY_CHECKS
    return PolicyCheckError(f"check_policy({name}): property {check!r} failed: {message}", check)


@dataclass
class _RequestSpec:
    user_id: int
    now: float
    candidates: np.ndarray


@dataclass
class _World:
    """A small synthetic world: hidden catalog, observable view, logged histories, feedback,
    and the users' hidden state as of the requests (for oracle views)."""

    catalog: Catalog
    context: PolicyContext
    feedback: Feedback
    empty_feedback: Feedback
    histories: list[History]  # templates; each serving pass works on deep copies
    requests: list[_RequestSpec]
    model: UserModel
    state: UserState  # every user's hidden state at the requests (never written after the build)

    def make_requests(self, oracle: bool) -> list[Request]:
        """Fresh requests (fresh histories and feature caches) for one serving pass."""
        histories = copy.deepcopy(self.histories)
        items = self.context.items
        out = []
        for spec in self.requests:
            hist = histories[spec.user_id]
            candidates = spec.candidates.copy()
            request = Request(
                user_id=spec.user_id,
                now=spec.now,
                history=hist,
                candidates=candidates,
                features=CandidateFeatures(items, candidates, spec.now),
                slate_size=self.context.slate_size,
            )
            if oracle:  # a single request's view, as OracleBatch.view gives it
                request.oracle = OracleView(
                    self.model, self.state, np.array([spec.user_id], dtype=np.int64), candidates,
                    self.catalog,
                )
            out.append(request)
        return out


def _empty_feedback() -> Feedback:
    f, i = np.zeros(0), np.zeros(0, np.int64)
    return Feedback(
        time=f, user_id=i, item_id=i.copy(), position=i.copy(), clicked=np.zeros(0, bool),
        watch_time=f.copy(), served_at=f.copy(), session=i.copy(),
        surveys={"time": f.copy(), "user_id": i.copy(), "session": i.copy(), "score": f.copy()},
    )


class _SyntheticUsers:
    """The users of check_policy's world, one at a time: each step calls the user model's
    components exactly as the engines do (``recsim/engine/core.py``): state rows ``(1,)``,
    a slate ``(1, n)``, the watched item ``(1,)``, counter-based :class:`Draws` from the
    engine's streams and the model's. Times in seconds."""

    def __init__(self, model: UserModel, state: UserState, catalog: Catalog, seed: int,
                 start: float):
        self.model, self.state, self.catalog = model, state, catalog
        n = state.n_users
        streams = tuple(dict.fromkeys([*rngmod.USER_STREAMS, *model.streams]))
        self._draws = Draws.for_users(seed, streams, np.arange(n), n)
        self.state_time = np.full(n, float(start))  # when each user's state was last relaxed

    @staticmethod
    def _rows(u: int) -> np.ndarray:
        return np.array([u], dtype=np.int64)

    def view(self, u: int) -> StateView:
        return self.model.view(self.state, self._rows(u))

    def draws(self, u: int) -> Draws:
        return Draws(self._draws.keys, self._draws.counters, self._rows(u))

    def _put(self, u: int, updates: dict[str, np.ndarray]) -> None:
        if updates:
            self.state.put(self._rows(u), updates)

    def start_session(self, u: int, now: float) -> None:
        """The user comes back at ``now``: the state relaxes over the time away, the session
        rule starts a session."""
        model = self.model
        dt = np.array([now - self.state_time[u]])
        self._put(u, model.relaxation.relax(self.view(u), dt, np.array([now])))
        self._put(u, model.session.start(self.view(u), self.draws(u)))

    def alluring(self, u: int, available: int, size: int) -> np.ndarray:
        """The ``size`` available items that pull user ``u`` most (the allure component's
        ``"allure"``): what an engagement-seeking feed would serve."""
        items = ItemView(self.catalog, np.arange(available)[None, :])
        allure = self.model.allure.score(self.view(u), items)["allure"][0]
        return np.argsort(-allure, kind="stable")[:size]

    def choose(self, u: int, slate: np.ndarray) -> tuple[int, dict[str, np.ndarray]]:
        """The user looks over ``slate`` ``(n,)``: the clicked position (0-based, −1 for none)
        and the slate's terms ``(1, n)``."""
        model = self.model
        view = self.view(u)
        terms = model.allure.score(view, ItemView(self.catalog, slate[None, :]))
        probabilities = model.choice.probabilities(view, terms)
        return int(sample_choice(probabilities, self.draws(u).uniform("choice"))[0]), terms

    def no_click(self, u: int) -> bool:
        """After a slate without a click: whether the user looks at another one."""
        goes_on, updates = self.model.session.after_no_click(self.view(u), self.draws(u))
        self._put(u, updates)
        return bool(goes_on[0])

    def watch(self, u: int, item: int, terms: dict[str, np.ndarray], position: int,
              clicked_at: float) -> tuple[float, float, float, bool]:
        """The user watches ``item`` (clicked at position ``position`` at ``clicked_at``):
        seconds watched τ, value V, allure A, and whether the session goes on."""
        model = self.model
        chosen = {name: values[:, position] for name, values in terms.items()}
        items = ItemView(self.catalog, np.array([item], dtype=np.int64))
        view, draws = self.view(u), self.draws(u)
        tau = model.response.watch_time(view, items, chosen, draws)
        value = model.value.value(view, items, chosen, tau)
        ended = clicked_at + tau
        self._put(u, model.transition.consume(view, items, chosen, tau, value, ended, draws))
        goes_on, updates = model.session.after_watch(self.view(u), items, chosen, tau, value, draws)
        self._put(u, updates)
        return float(tau[0]), float(value[0]), float(chosen["allure"][0]), bool(goes_on[0])

    def end_session(self, u: int, now: float, n_watched: int, seconds: float, sum_value: float,
                    sum_allure: float) -> float:
        """The session ends at ``now``: churn and return state, then the survey answer (NaN
        when not asked)."""
        model = self.model
        n = np.array([n_watched])
        summary = SessionSummary(
            n_watched=n, watch_time=np.array([seconds]),
            mean_value=session_mean(np.array([sum_value]), n),
            mean_allure=session_mean(np.array([sum_allure]), n),
        )
        self._put(u, model.churn.end_session(self.view(u), summary))
        self._put(u, model.returns.end_session(self.view(u), summary, np.array([now])))
        self.state_time[u] = now
        return float(model.survey.respond(self.view(u), summary, self.draws(u))[0])


def _build_world(seed: int, n_requests: int) -> _World:
    """Draw the synthetic world from ``seed``.

    Users are recsim's default user model (hidden state from its sampler). In the two days
    before the fit each user but one (the new user) has three sessions of random slates, each
    step taken by the model's components (choice, watch time, value, state transition,
    continuation, survey; surveys after 30% of sessions so that the logs hold answers), so
    clicks and watch times carry the same signal as in a run; their histories are kept as the
    engine keeps them. At the requests a user's current session is fresh (``u % 3 == 0`` and
    the new user), a few items old, or a binge of over an hour: those two are served from the
    user's most alluring items and their length is scripted (the model decides everything
    within them). Session times are scripted too: nobody churns."""
    streams = [np.random.default_rng(s) for s in np.random.SeedSequence(seed).spawn(6)]
    topics_rng, catalog_rng, uploads_rng, users_rng, logs_rng, requests_rng = streams
    cfg = CatalogConfig(n_items=_N_ITEMS, n_creators=40)
    centers = make_topic_centers(cfg, topics_rng)
    catalog = generate_catalog(cfg, centers, _FIT_TIME, _FIT_TIME, catalog_rng, uploads_rng)
    # writable copies of the observable features: a policy that writes into them (the
    # engine's are read-only) is caught by comparison and named (context_unchanged)
    observable = catalog.observable()
    items = ObservableItems(
        **{f.name: np.array(getattr(observable, f.name)) for f in dataclass_fields(observable)}
    )
    k = catalog.n_topics
    context = PolicyContext(
        n_topics=k, slate_size=_SLATE_SIZE, n_candidates=_N_CANDIDATES,
        retrain_interval=86400.0, items=items, n_users=_N_USERS,
    )
    model = build_user_model(_scenario(surveys=0.3))
    start = _FIT_TIME - _LOG_SPAN
    state = model.initial_state(_N_USERS, centers, users_rng, start)
    users = _SyntheticUsers(model, state, catalog, seed, start)
    scan_time = model.choice.scan_time

    histories = [History(k) for _ in range(_N_USERS)]
    slates: list[tuple[float, int, int, np.ndarray, int]] = []
    watches: list[tuple[float, float, int, int, int, int, float]] = []
    surveys: list[tuple[float, int, int, float]] = []

    def session(u: int, number: int, now: float, feed: Callable[[float], np.ndarray],
                max_slates: int, until_done: Callable[[History], bool] | None = None) -> tuple:
        """User ``u``'s session ``number`` from ``now``, slates from ``feed(now)``; the model
        decides when it ends, or ``until_done(history)`` does. Returns the end time and the
        session's totals (items, seconds, Σ value, Σ allure)."""
        hist = histories[u]
        users.start_session(u, now)
        hist.n_sessions += 1
        hist.session_items = 0
        hist.session_watch_seconds = 0.0
        n_watched, seconds, sum_value, sum_allure = 0, 0.0, 0.0, 0.0
        for _ in range(max_slates):
            slate = feed(now)
            choice, terms = users.choose(u, slate)
            slates.append((now, u, number, slate, choice))
            hist.n_impressions += _SLATE_SIZE
            served_at = now
            now += scan_time
            if choice < 0:
                goes_on = users.no_click(u)
            else:
                item = int(slate[choice])
                tau, value, allure, goes_on = users.watch(u, item, terms, choice, now)
                now += tau
                watches.append((now, served_at, u, number, item, choice + 1, tau))
                length = float(catalog.length[item])
                hist.n_clicks += 1
                hist.watch_seconds += tau
                hist.watch_fraction_sum += tau / length
                hist.classifier_seconds += tau * float(items.classifier[item])
                hist.topic_mix += tau * items.topics[item]
                hist.session_items += 1
                hist.session_watch_seconds += tau
                n_watched, seconds = n_watched + 1, seconds + tau
                sum_value, sum_allure = sum_value + value, sum_allure + allure
            if until_done is not None:
                goes_on = not until_done(hist)  # a scripted session: its length is given
            if not goes_on:
                break
        return now, (n_watched, seconds, sum_value, sum_allure)

    def random_slates(now: float) -> np.ndarray:
        return logs_rng.choice(catalog.n_available(now), size=_SLATE_SIZE, replace=False)

    # ---- logged sessions: random slates, the users' responses from the user model
    cold_user = _N_USERS - 1  # never seen before the requests
    for u in range(_N_USERS - 1):
        starts = np.sort(
            logs_rng.uniform(start + 3600.0, _FIT_TIME - 8 * 3600.0, size=_LOGGED_SESSIONS)
        )
        end = -math.inf
        for number, now in enumerate(starts.tolist(), start=1):
            now = max(now, end + 60.0)  # sessions do not overlap
            end, totals = session(u, number, now, random_slates, _MAX_SLATES)
            histories[u].last_session_end = end
            score = users.end_session(u, end, *totals)
            if not math.isnan(score):
                surveys.append((end, u, number, score))
                histories[u].survey_sum += score
                histories[u].n_surveys += 1

    # ---- the users' current sessions: fresh at the requests, a few items in, or a binge
    for u in range(_N_USERS):
        number = _LOGGED_SESSIONS + 1 if u != cold_user else 1
        if u == cold_user or u % 3 == 0:
            users.start_session(u, _REQUEST_START)
            hist = histories[u]
            hist.n_sessions += 1
            hist.session_items = 0
            hist.session_watch_seconds = 0.0
            continue
        short = u % 3 == 1

        def feed(now: float, u: int = u) -> np.ndarray:
            pool = users.alluring(u, catalog.n_available(now), _FEED_POOL)
            return pool[logs_rng.choice(pool.shape[0], size=_SLATE_SIZE, replace=False)]

        def done(hist: History, short: bool = short) -> bool:
            if short:
                return hist.session_items >= _SHORT_SESSION_ITEMS
            return hist.session_watch_seconds >= _BINGE_SECONDS

        session(u, number, _SHORT_START if short else _BINGE_START, feed, _MAX_CURRENT_SLATES, done)

    # the fit sees what was logged before it (a session under way may run past it)
    feedback = _feedback_from_logs(
        [s for s in slates if s[0] < _FIT_TIME], [w for w in watches if w[0] < _FIT_TIME], surveys
    )

    # ---- requests: users in turn, ~40 random candidates in random order
    requests = []
    for index in range(n_requests):
        # one request whose pool is exactly the slate size (the smallest pool a run allows)
        size = _SLATE_SIZE if index == 1 else _N_CANDIDATES
        candidates = requests_rng.choice(_N_ITEMS, size=size, replace=False).astype(np.int64)
        requests.append(_RequestSpec(index % _N_USERS, _REQUEST_START + 30.0 * index, candidates))

    return _World(
        catalog=catalog, context=context, feedback=feedback, empty_feedback=_empty_feedback(),
        histories=histories, requests=requests, model=model, state=state,
    )
def _feedback_from_logs(slates, watches, surveys) -> Feedback:
    """One row per impression as the engine logs it: non-clicked impressions when served,
    clicked ones when the watch ended; sorted by the time the outcome became known."""
    rows = []
    for served_at, u, session, slate, choice in slates:
        for position, item in enumerate(slate.tolist(), start=1):
            if position != choice + 1:
                rows.append((served_at, served_at, u, session, item, position, False, 0.0))
    for now, served_at, u, session, item, position, tau in watches:
        rows.append((now, served_at, u, session, item, position, True, tau))
    rows.sort(key=lambda row: row[0])
    cols = list(zip(*rows))
    sv = list(zip(*surveys)) if surveys else [(), (), (), ()]
    return Feedback(
        time=np.array(cols[0], float),
        served_at=np.array(cols[1], float),
        user_id=np.array(cols[2], np.int64),
        session=np.array(cols[3], np.int64),
        item_id=np.array(cols[4], np.int64),
        position=np.array(cols[5], np.int64),
        clicked=np.array(cols[6], bool),
        watch_time=np.array(cols[7], float),
        surveys={
            "time": np.array(sv[0], float),
            "user_id": np.array(sv[1], np.int64),
            "session": np.array(sv[2], np.int64),
            "score": np.array(sv[3], float),
        },
    )


# ----------------------------------------------------------------------------- comparisons
_FEATURES = ("topics", "classifier", "length", "upload_time", "age", "creator")
_ITEM_FIELDS = ("topics", "classifier", "length", "upload_time", "creator")


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        return (
            isinstance(a, np.ndarray) and isinstance(b, np.ndarray)
            and a.shape == b.shape and a.dtype == b.dtype
            and bool(np.array_equal(a, b, equal_nan=a.dtype.kind in "fc"))
        )
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    return type(a) is type(b) and a == b


def _snapshot(request: Request) -> dict[str, Any]:
    """Deep copies of everything a policy can reach through the request. Reading every
    feature first fills the lazy caches, so a later in-place write to them is seen."""
    snap: dict[str, Any] = {
        "user_id": request.user_id,
        "now": request.now,
        "slate_size": request.slate_size,
        "candidates": request.candidates.copy(),
    }
    for name in _FEATURES:
        snap[f"features.{name}"] = np.array(getattr(request.features, name), copy=True)
    for name in History.__slots__:
        snap[f"history.{name}"] = copy.deepcopy(getattr(request.history, name))
    view = request.oracle
    if view is not None:
        for name in ("candidates", "theta", "appetite", "fatigue", "wellbeing"):
            snap[f"oracle.{name}"] = copy.deepcopy(getattr(view, name))
    return snap


def _read(request: Request, key: str) -> Any:
    target: Any = request
    for part in key.split("."):
        target = getattr(target, part)
    return target


def _global_random_state() -> tuple:
    return np.random.get_state(), stdlib_random.getstate()


def _same_global_state(a: tuple, b: tuple) -> bool:
    (np_a, py_a), (np_b, py_b) = a, b
    return (
        np_a[0] == np_b[0]
        and np.array_equal(np_a[1], np_b[1])
        and tuple(np_a[2:]) == tuple(np_b[2:])
        and py_a == py_b
    )


# ----------------------------------------------------------------------------- the check
class _Checker:
    """Runs the checks of :func:`check_policy` on one policy in one synthetic world."""

    def __init__(self, policy: Policy, world: _World, seed: int):
        self.policy = policy
        self.world = world
        self.seed = seed
        self.name = type(policy).__qualname__
        # read like the engine reads them: an instance may override its class (wrappers
        # inherit these flags from the base policy they are built around)
        self.oracle = bool(getattr(policy, "oracle", False))
        self.may_end = bool(getattr(policy, "may_end_sessions", False))

    def fail(self, check: str, message: str) -> PolicyCheckError:
        return _fail(self.name, check, message)

    def copy_of(self, policy: Policy, what: str) -> Policy:
        try:
            return copy.deepcopy(policy)
        except Exception as exc:
            raise self.fail(
                "picklable",
                f"copy.deepcopy of the {what} policy raised {type(exc).__name__}: {exc} "
                "(hold only picklable state: no lambdas, generator objects, open files or locks)",
            ) from exc

    def call(self, what: str, function, *args) -> Any:
        try:
            return function(*args)
        except PolicyCheckError:
            raise
        except Exception as exc:
            raise self.fail("interface", f"{what} raised {type(exc).__name__}: {exc}") from exc

    def serve(self, policy: Policy, label: str) -> list[np.ndarray]:
        """Serve every request with one generator seeded from ``seed``; check each slate."""
        rng = np.random.default_rng(self.seed)
        slates = []
        for index, request in enumerate(self.world.make_requests(self.oracle)):
            before = _snapshot(request)
            state = _global_random_state()
            what = f"recommend (request {index}, {label})"
            slate = self.call(what, policy.recommend, request, rng)
            if not _same_global_state(state, _global_random_state()):
                raise self.fail(
                    "no_global_random",
                    f"recommend (request {index}, {label}) changed the global numpy.random or "
                    "random state; draw only from the rng argument",
                )
            self.check_slate(slate, before, index, label)
            for key, value in before.items():
                if not _same(value, _read(request, key)):
                    raise self.fail(
                        "request_unchanged",
                        f"recommend (request {index}, {label}) modified request.{key}; "
                        "requests are read-only (copy before sorting or writing)",
                    )
            slates.append(np.array(slate, copy=True))
        return slates

    def check_slate(self, slate: Any, before: dict[str, Any], index: int, label: str) -> None:
        where = f"request {index} ({label})"
        if not isinstance(slate, np.ndarray) or slate.ndim != 1:
            kind = type(slate).__name__
            if isinstance(slate, np.ndarray):
                kind = f"{slate.ndim}-D array"
            raise self.fail(
                "integer_ids",
                f"{where}: recommend returned a {kind}; expected a 1-D numpy array of item ids",
            )
        n = slate.shape[0]
        if n and not np.issubdtype(slate.dtype, np.integer):
            raise self.fail(
                "integer_ids", f"{where}: slate has dtype {slate.dtype}; item ids must be integers"
            )
        k = before["slate_size"]
        expected = min(k, before["candidates"].shape[0])
        if n > k:
            raise self.fail("slate_length", f"{where}: slate of {n} items, over slate_size={k}")
        if n == 0 and not self.may_end:
            raise self.fail(
                "slate_length",
                f"{where}: empty slate; only a policy with may_end_sessions = True may end "
                "a session by serving an empty slate",
            )
        if 0 < n < expected:
            raise self.fail(
                "slate_length",
                f"{where}: slate of {n} items; expected {expected} (or empty to end the session)",
            )
        if np.unique(slate).shape[0] != n:
            raise self.fail("no_duplicates", f"{where}: slate {slate.tolist()} repeats an item")
        outside = slate[~np.isin(slate, before["candidates"])]
        if outside.shape[0]:
            raise self.fail(
                "subset_of_candidates",
                f"{where}: items {outside.tolist()} are not among the candidates",
            )

    def compare(self, check: str, first: list, second: list, message: str) -> None:
        for index, (a, b) in enumerate(zip(first, second)):
            if not np.array_equal(a, b):
                raise self.fail(
                    check, f"{message}: request {index} got {a.tolist()} vs {b.tolist()}"
                )

    def run(self) -> None:
        world, ctx = self.world, self.world.context
        items_before = {name: getattr(ctx.items, name).copy() for name in _ITEM_FIELDS}

        pristine = self.copy_of(self.policy, "given")
        self.call("reset(context)", pristine.reset, ctx)
        fitted = self.copy_of(self.policy, "given")
        self.call("reset(context)", fitted.reset, ctx)
        what = f"fit(feedback of {len(world.feedback)} rows, now)"
        self.call(what, fitted.fit, world.feedback, _FIT_TIME)
        self.call("fit(empty feedback, now)", fitted.fit, world.empty_feedback, _EMPTY_FIT_TIME)

        served = self.serve(self.copy_of(fitted, "fitted"), "fitted copy 1")
        again = self.serve(self.copy_of(fitted, "fitted"), "fitted copy 2")
        self.compare("deterministic", served, again,
                     "two copies of the fitted policy with equal rng seeds served different slates")

        try:
            restored = pickle.loads(pickle.dumps(fitted))
        except Exception as exc:
            raise self.fail(
                "picklable",
                f"pickle round-trip of the fitted policy raised {type(exc).__name__}: {exc} "
                "(hold only picklable state: no lambdas, local functions, generator objects)",
            ) from exc
        self.compare("picklable", served, self.serve(restored, "unpickled copy"),
                     "the unpickled policy served different slates from the original")

        cold = self.serve(pristine, "never fitted")
        self.call("reset(context) after fit", fitted.reset, ctx)
        self.compare("reset_clears_state", self.serve(fitted, "reset after fit"), cold,
                     "after fit() then reset(), the policy served different slates from a "
                     "never-fitted copy; reset must forget what fit learned")

        for name, before in items_before.items():
            if not _same(before, getattr(ctx.items, name)):
                raise self.fail(
                    "context_unchanged",
                    f"context.items.{name} was modified; it is shared and read-only",
                )


def check_policy(policy: Policy | type[Policy], *, n_requests: int = 24, seed: int = 0) -> None:
    """Check that ``policy`` honours the policy contract; raise :class:`AssertionError` naming
    the first failed property (see :data:`POLICY_CHECKS` for what each one means).

    ``policy`` is an instance, or a :class:`~recsim.policies.base.Policy` subclass constructed
    with default parameters. The given instance is never mutated: the checks work on deep
    copies. The synthetic world (a catalog of 300 items, 10 users with logged histories, one of
    them new, slates of 5 from 40 candidates; oracle policies get an
    :class:`~recsim.oracle.OracleView` of synthetic hidden state) and the policy's generators
    are drawn from ``seed``. Steps: ``reset(context)``; ``fit`` on logged feedback (impressions,
    clicks with watch times, survey answers) and then on an empty one; ``n_requests`` requests
    served by two deep copies of the fitted policy, a pickled copy, a never-fitted copy and the
    fitted policy after ``reset``, each with ``numpy.random.default_rng(seed)``; every slate is
    checked on its own and the passes are compared with one another.
    """
    if n_requests < 1:
        raise ValueError("n_requests must be at least 1")
    if isinstance(policy, type):
        if not issubclass(policy, Policy):
            raise _fail(policy.__qualname__, "interface", "not a subclass of recsim's Policy")
        try:
            policy = policy()
        except Exception as exc:
            raise _fail(
                policy.__qualname__, "interface",
                f"cannot be constructed with default parameters ({type(exc).__name__}: {exc}); "
                "pass an instance instead",
            ) from exc
    if not isinstance(policy, Policy):
        raise _fail(type(policy).__qualname__, "interface", "not an instance of recsim's Policy")
    _Checker(policy, _build_world(seed, n_requests), seed).run()


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
_OBSERVABLE = {
    ("choice", "probabilities"): "choice probabilities (the clicked position is drawn from them)",
    ("response", "watch_time"): "watch times",
    ("session", "after_watch"): "continuation flags",
    ("session", "after_no_click"): "continuation flags",
    ("returns", "next_return"): "return times",
    ("churn", "probability"): "churn probabilities",
    ("survey", "respond"): "survey answers",
}


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


def _describe(x: Any) -> str:
    if isinstance(x, np.ndarray):
        return f"{type(x).__name__} of shape {x.shape} and dtype {x.dtype}"
    return type(x).__name__


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
    def _array(self, role: str, what: str, x: Any, shape: tuple, kinds: str = "f") -> np.ndarray:
        if not isinstance(x, np.ndarray):
            raise self.fail(
                role,
                "shapes",
                f"{what} returned a {_describe(x)}; expected a numpy array of shape {shape}",
            )
        if x.shape != shape:
            raise self.fail(role, "shapes", f"{what} returned shape {x.shape}; expected {shape}")
        if x.dtype.kind not in kinds:
            expected = {"f": "float", "b": "bool", "biuf": "numeric"}.get(kinds, kinds)
            raise self.fail(role, "shapes", f"{what} returned dtype {x.dtype}; expected {expected}")
        return x

    def _plain(self, role: str, what: str, x: np.ndarray, label: str) -> None:
        if type(x) is not np.ndarray or x.dtype.kind not in "biuf":
            raise self.fail(
                role,
                "hidden_observable_split",
                f"{what} returned {label} as a {_describe(x)}; observable outputs are plain numpy "
                "arrays of numbers (nothing else rides along with what the platform observes)",
            )

    def _fields(self, role: str, what: str, out: Any, n: int, exact: tuple[str, ...]) -> None:
        """Initial values (sample, initial_state): ``exact`` fields, ``(n, ...)`` arrays."""
        if not isinstance(out, dict):
            raise self.fail(
                role, "shapes", f"{what} returned a {_describe(out)}; expected a dict of arrays"
            )
        if set(out) != set(exact):
            raise self.fail(
                role,
                "hidden_observable_split",
                f"{what} gives the fields {sorted(out)} but the component declares provides = "
                f"{exact!r}: it must give initial values of exactly the fields it provides "
                "(other components name them in requires)",
            )
        for name, values in out.items():
            if not isinstance(values, np.ndarray) or values.ndim == 0 or values.shape[0] != n:
                raise self.fail(
                    role,
                    "shapes",
                    f"{what}[{name!r}] is a {_describe(values)}; expected an array with a leading "
                    f"axis of {n} users",
                )
            if values.dtype.kind not in "biuf":
                raise self.fail(
                    role, "shapes", f"{what}[{name!r}] has dtype {values.dtype}; expected numbers"
                )

    def _updates(self, role: str, what: str, out: Any, B: int) -> None:
        """New values of state fields for a batch of ``B`` users."""
        if not isinstance(out, dict):
            raise self.fail(
                role,
                "shapes",
                f"{what} returned a {_describe(out)}; expected a dict of state fields",
            )
        for name in out:
            if name not in self.hidden:
                raise self.fail(
                    role,
                    "hidden_observable_split",
                    f"{what} writes {name!r}, which is not a hidden-state field of the model "
                    f"(fields: {', '.join(sorted(self.hidden))}); a component writes only fields "
                    "the sampler samples or some component provides (declare a new one in "
                    "provides, with its initial value from initial_state)",
                )
        for name, values in out.items():
            field = self.state[name]
            shape = (B,) + field.shape[1:]
            if not isinstance(values, np.ndarray) or values.shape != shape:
                raise self.fail(
                    role,
                    "shapes",
                    f"{what}[{name!r}] is a {_describe(values)}; expected an array of shape "
                    f"{shape} (the field's shape for a batch of {B})",
                )
            if not np.can_cast(values.dtype, field.dtype, "same_kind"):
                raise self.fail(
                    role,
                    "shapes",
                    f"{what}[{name!r}] has dtype {values.dtype}; the field holds {field.dtype}",
                )

    def validate(self, role: str, method: str, out: Any, args: tuple) -> None:
        what = f"{method}()"
        component = self.model.components[role]
        if method == "sample":
            self._fields(role, what, out, args[0], component.provides)
            return
        if method == "initial_state":
            self._fields(role, what, out, args[0].n_rows, component.provides)
            return
        B = args[0].n_rows
        observable = _OBSERVABLE.get((role, method))
        if method == "score":
            items = args[1]
            if not isinstance(out, dict) or "allure" not in out:
                raise self.fail(
                    role,
                    "shapes",
                    f"{what} returned a {_describe(out)}; expected a dict of item-shaped "
                    "arrays holding 'allure'",
                )
            for name, values in out.items():
                self._array(role, f"{what}[{name!r}]", values, items.shape, "biuf")
            if not np.isfinite(out["allure"]).all():
                raise self.fail(role, "shapes", f"{what}['allure'] is not finite")
        elif method == "value":
            x = self._array(role, what, out, args[1].shape)
            if not np.isfinite(x).all():
                raise self.fail(role, "shapes", f"{what} returned values that are not finite")
        elif method == "probabilities":
            n = args[1]["allure"].shape[1]
            x = self._array(role, what, out, (B, n + 1))
            if not np.isfinite(x).all() or (x < 0).any():
                raise self.fail(
                    role, "shapes", f"{what} returned probabilities that are negative or not finite"
                )
            worst = float(np.max(np.abs(x.sum(axis=1) - 1.0)))
            if worst > 1e-9:
                raise self.fail(
                    role, "shapes", f"{what}: rows sum to 1 within {worst:.3g}; expected 1e-9"
                )
        elif method in ("watch_time", "expected_watch_time"):
            items = args[1]
            x = self._array(role, what, out, items.shape)
            length = self.catalog.length[items.ids]
            if not np.isfinite(x).all() or (x < 0).any() or (x > length).any():
                raise self.fail(
                    role, "shapes", f"{what} returned times outside [0, item length] seconds"
                )
        elif method in ("consume", "relax", "start", "end_session"):
            self._updates(role, what, out, B)
        elif method in ("after_watch", "after_no_click"):
            if not isinstance(out, tuple) or len(out) != 2:
                raise self.fail(
                    role, "shapes", f"{what} returned a {_describe(out)}; expected (flags, updates)"
                )
            self._array(role, f"{what}'s continuation flags", out[0], (B,), "b")
            self._updates(role, what, out[1], B)
            self._plain(role, what, out[0], observable)
            return
        elif method == "next_return":
            now, until = args[1], args[2]
            x = self._array(role, what, out, (B,))
            finite = np.isfinite(x)
            if (
                np.isnan(x).any()
                or (x[finite] <= now[finite]).any()
                or (x[finite] > until).any()
                or (x[~finite] < 0).any()
            ):
                raise self.fail(
                    role,
                    "shapes",
                    f"{what} returned times that are not after now and by until, nor inf",
                )
        elif method == "probability":
            x = self._array(role, what, out, (B,))
            if np.isnan(x).any() or (x < 0).any() or (x > 1).any():
                raise self.fail(role, "shapes", f"{what} returned probabilities outside [0, 1]")
        elif method == "wellbeing":
            x = self._array(role, what, out, (B,))
            if ((x < 0) | (x > 1)).any():
                raise self.fail(
                    role, "shapes", f"{what} returned wellbeing outside [0, 1] (NaN if undefined)"
                )
        elif method == "respond":
            x = self._array(role, what, out, (B,))
            answered = x[~np.isnan(x)]
            if not np.isin(answered, (1.0, 2.0, 3.0, 4.0, 5.0)).all():
                raise self.fail(
                    role, "shapes", f"{what} returned answers other than 1, ..., 5 or NaN"
                )
        if observable is not None:
            self._plain(role, what, out, observable)

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
