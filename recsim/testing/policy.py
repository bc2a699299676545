"""check_policy: conformance checks for ranking policies (see :mod:`recsim.testing`)."""

from __future__ import annotations

import copy
import math
import pickle
from collections.abc import Callable
from dataclasses import dataclass
from dataclasses import fields as dataclass_fields
from dataclasses import replace as dataclass_replace
from itertools import pairwise
from typing import Any

import numpy as np

from .. import rng as rngmod
from ..catalog import Catalog, ObservableItems, generate_catalog, make_topic_centers
from ..config import CatalogConfig
from ..oracle import OracleView
from ..policies.base import (
    CandidateFeatures,
    Feedback,
    History,
    Policy,
    PolicyContext,
    Request,
    draws_nothing,
    observe_unused,
    observes_feedback,
)
from ..users.components import SessionSummary
from ..users.formulas import sample_choice, session_mean
from ..users.model import UserModel, build_user_model
from ..users.state import Draws, ItemView, StateView, UserState
from ._common import _global_random_state, _same_global_state, _scenario

__all__ = ["POLICY_CHECKS", "PolicyCheckError", "check_policy"]

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
    "draws_nothing": "a policy whose class declares draws_nothing = True takes no number from the "
    "rng it is given (a wrapper that draws after it, epsilon_greedy, relies on it to serve a batch "
    "through its batch method)",
    "observe_in_pieces": "a policy that observes feedback as it is logged (defines observe): the "
    "logged feedback given to observe in 2, 4 or 16 pieces, in order, and then the last piece to "
    "fit, teaches it what fit given all of it at once does (it serves the same slates), and "
    "observing alone changes nothing served before the next fit; the engines cut the pieces at "
    "points of their own",
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


class PolicyCheckError(AssertionError):
    """A failed conformance check; ``check`` is the failed property (a key of
    :data:`POLICY_CHECKS`)."""

    def __init__(self, message: str, check: str):
        super().__init__(message)
        self.check = check

    def __reduce__(self):  # picklable with its attributes (it may cross processes)
        return (type(self), (str(self), self.check), self.__dict__)


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
        declared = draws_nothing(policy)
        slates = []
        for index, request in enumerate(self.world.make_requests(self.oracle)):
            before = _snapshot(request)
            state = _global_random_state()
            rng_state = rng.bit_generator.state if declared else None
            what = f"recommend (request {index}, {label})"
            slate = self.call(what, policy.recommend, request, rng)
            if declared and rng.bit_generator.state != rng_state:
                raise self.fail(
                    "draws_nothing",
                    f"recommend (request {index}, {label}) drew from its rng, but the class declares "
                    "draws_nothing = True; remove the declaration (or the draw)",
                )
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

        # a base it wraps that declares draws_nothing (epsilon_greedy relies on the base's word)
        inner = getattr(fitted, "base_", None)
        while isinstance(inner, Policy):
            if draws_nothing(inner):
                self.serve(self.copy_of(inner, "fitted base"), f"its base {type(inner).__qualname__}")
            inner = getattr(inner, "base_", None)

        unused = observe_unused(self.policy)
        if unused is not None:
            raise self.fail("interface", f"defines observe(feedback), which the engines never call: {unused}")
        if observes_feedback(self.policy):
            _observe_check(self, served)

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


def _observe_check(checker: _Checker, served: list) -> None:
    """``observe_in_pieces``: the feedback observed in 2, 4 and 16 pieces (the last one given
    to ``fit``) teaches what ``fit`` on all of it does; and observing alone (no ``fit`` yet)
    changes nothing served."""
    world, ctx = checker.world, checker.world.context
    fresh = checker.copy_of(checker.policy, "given")
    checker.call("reset(context)", fresh.reset, ctx)
    cold = checker.serve(checker.copy_of(fresh, "never fitted"), "never fitted")
    for n in (2, 4, 16):
        pieces = checker.copy_of(fresh, "given")
        *head, last = _pieces(world.feedback, n)
        for i, piece in enumerate(head):
            checker.call(f"observe(piece {i + 1} of {n} of the feedback)", pieces.observe, piece)
        if n == 4:
            checker.compare("observe_in_pieces", cold, checker.serve(checker.copy_of(pieces, "observing"), "observed, not fitted"),
                            "observing 3 of 4 pieces of the feedback, before any fit, changed the slates served "
                            "(first: never fitted, second: observed); what observe takes in must not reach "
                            "serving before the next fit")
        checker.call(f"fit(the last of {n} pieces of the feedback, now)", pieces.fit, last, _FIT_TIME)
        checker.call("fit(empty feedback, now)", pieces.fit, world.empty_feedback, _EMPTY_FIT_TIME)
        checker.compare("observe_in_pieces", served, checker.serve(pieces, f"observed in {n} pieces"),
                        f"the policy observed the feedback in {n} pieces and served different slates (second) "
                        "from a copy fitted on all of it at once (first); what it learns must not depend "
                        "on where the pieces are cut")


def _pieces(feedback: Feedback, n: int) -> list[Feedback]:
    """``feedback`` cut into ``n`` pieces of consecutive rows (time order kept), the surveys
    going with the piece whose time span holds them (the last piece: the rest)."""
    cuts = np.linspace(0, len(feedback), n + 1).astype(int)
    columns = [f.name for f in dataclass_fields(feedback) if f.name != "surveys"]
    out = []
    for i, (lo, hi) in enumerate(pairwise(cuts.tolist())):
        end = feedback.time[hi] if hi < len(feedback) else np.inf
        surveys = None
        if feedback.surveys is not None:
            t = np.asarray(feedback.surveys["time"])
            start = feedback.time[lo] if i and lo < len(feedback) else -np.inf
            mine = (t >= start) & (t < end) if i < n - 1 else t >= start
            surveys = {k: np.asarray(v)[mine] for k, v in feedback.surveys.items()}
        values = {c: (None if getattr(feedback, c) is None else getattr(feedback, c)[lo:hi]) for c in columns}
        out.append(dataclass_replace(feedback, **values, surveys=surveys))
    return out


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
