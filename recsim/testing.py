"""Conformance checks for policy plug-ins (DESIGN §5.5), in the spirit of Gymnasium's
``check_env`` and scikit-learn's ``check_estimator``.

Run :func:`check_policy` on your own policy before naming it in a scenario file::

    from recsim.testing import check_policy

    check_policy(MyPolicy(alpha=0.3))   # or check_policy(MyPolicy) for default parameters

It builds a small synthetic world (a catalog of a few hundred items, a handful of users with
logged histories, feedback with clicks, watch times and surveys), resets and fits the policy,
serves a few dozen requests and raises :class:`PolicyCheckError` (an :class:`AssertionError`)
naming the first property that fails (a key of :data:`POLICY_CHECKS`, also its ``check``). It never mutates the policy it is given: every
step works on copies. It takes well under a second for a policy of the size of the built-ins.

Ending sessions: a policy may serve an **empty slate** to end the user's session (a break
suggestion; the engine logs a ``break`` event). :func:`check_policy` accepts an empty slate
only from a policy that declares it can do so with the class attribute
``may_end_sessions = True`` (a wrapper may instead set it on the instance in its constructor,
from the base policy it wraps); otherwise a slate must hold exactly
``min(request.slate_size, len(request.candidates))`` items. Oracle policies (``oracle = True``)
receive ``request.oracle``, an :class:`~recsim.oracle.OracleView` of synthetic hidden state.
"""

from __future__ import annotations

import copy
import math
import pickle
import random as stdlib_random  # only read, to catch policies that draw from it
from dataclasses import dataclass
from typing import Any

import numpy as np

from .catalog import Catalog, generate_catalog, make_topic_centers, unit_rows
from .config import BehaviourConfig, CatalogConfig
from .oracle import OracleView
from .policies.base import CandidateFeatures, Feedback, History, Policy, PolicyContext, Request
from .users import model

__all__ = ["check_policy", "POLICY_CHECKS", "PolicyCheckError"]

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
_KAPPA = 0.4  # W = sigmoid(κ·S)


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
    """A small synthetic world: hidden catalog, observable view, logged histories, feedback."""

    catalog: Catalog
    context: PolicyContext
    feedback: Feedback
    empty_feedback: Feedback
    histories: list[History]  # templates; each serving pass works on deep copies
    requests: list[_RequestSpec]
    theta: np.ndarray  # (n_users, K) hidden, for oracle views
    appetite: np.ndarray
    satisfaction: np.ndarray
    behaviour: BehaviourConfig

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
            if oracle:
                u = spec.user_id
                fatigue = hist.session_watch_seconds / 3600.0
                wellbeing = 1.0 / (1.0 + math.exp(-_KAPPA * float(self.satisfaction[u])))
                request.oracle = OracleView(
                    self.catalog, candidates, self.theta[u].copy(), float(self.appetite[u]),
                    fatigue, wellbeing, self.behaviour,
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


def _build_world(seed: int, n_requests: int) -> _World:
    """Draw the synthetic world from ``seed``. Users are served random slates over the two
    days before the fit and respond with the behaviour model, so clicks and watch times carry
    the same signal as in a run; their histories are kept as the engine keeps them."""
    streams = [np.random.default_rng(s) for s in np.random.SeedSequence(seed).spawn(6)]
    topics_rng, catalog_rng, uploads_rng, users_rng, logs_rng, requests_rng = streams
    cfg = CatalogConfig(n_items=_N_ITEMS, n_creators=40)
    centers = make_topic_centers(cfg, topics_rng)
    catalog = generate_catalog(cfg, centers, _FIT_TIME, _FIT_TIME, catalog_rng, uploads_rng)
    items = catalog.observable()
    k = catalog.n_topics
    context = PolicyContext(
        n_topics=k, slate_size=_SLATE_SIZE, n_candidates=_N_CANDIDATES,
        retrain_interval=86400.0, items=items, n_users=_N_USERS,
    )
    behaviour = BehaviourConfig()
    b = behaviour

    home = users_rng.integers(0, cfg.n_clusters, size=_N_USERS)
    theta = unit_rows(centers[home] + users_rng.normal(0.0, 0.05, size=(_N_USERS, k)))
    appetite = users_rng.beta(3.0, 11.0, size=_N_USERS)
    satisfaction = users_rng.normal(0.0, 1.0, size=_N_USERS)

    # ---- logged feedback: random slates, responses from the behaviour model
    histories = [History(k) for _ in range(_N_USERS)]
    slates: list[tuple[float, int, int, np.ndarray, int]] = []
    watches: list[tuple[float, float, int, int, int, int, float]] = []
    surveys: list[tuple[float, int, int, float]] = []
    cold_user = _N_USERS - 1  # never seen before the requests
    for u in range(_N_USERS - 1):
        hist = histories[u]
        starts = np.sort(logs_rng.uniform(_FIT_TIME - _LOG_SPAN, _FIT_TIME - 4 * 3600.0, size=3))
        for session, now in enumerate(starts.tolist(), start=1):
            hist.n_sessions += 1
            hist.session_items = 0
            hist.session_watch_seconds = 0.0
            fatigue, values = 0.0, []
            for _ in range(12):  # at most 12 slates per session
                available = catalog.n_available(now)
                slate = logs_rng.choice(available, size=_SLATE_SIZE, replace=False)
                r = catalog.topics[slate] @ theta[u]
                allure = model.allure(r, catalog.extremeness[slate], catalog.clickbait[slate],
                                      appetite[u], b.allure)
                probs = model.choice_probabilities(allure, fatigue, b.choice)
                choice = model.sample_choice(probs, logs_rng.random())
                slates.append((now, u, session, slate, choice))
                hist.n_impressions += _SLATE_SIZE
                served_at = now
                now += b.choice.scan_time
                if choice < 0:
                    if logs_rng.random() < b.continuation.p_leave_no_click:
                        break
                    continue
                item = int(slate[choice])
                length = float(catalog.length[item])
                wellbeing = 1.0 / (1.0 + math.exp(-_KAPPA * float(satisfaction[u])))
                tau = model.watch_time(length, float(allure[choice]), wellbeing,
                                       float(logs_rng.standard_normal()), b.watch)
                now += tau
                fatigue += tau / 3600.0
                watches.append((now, served_at, u, session, item, choice + 1, tau))
                values.append(float(model.value(r[choice], catalog.quality[item],
                                                catalog.extremeness[item], tau, b.value)))
                hist.n_clicks += 1
                hist.watch_seconds += tau
                hist.watch_fraction_sum += tau / length
                hist.classifier_seconds += tau * float(items.classifier[item])
                hist.topic_mix += tau * items.topics[item]
                hist.session_items += 1
                hist.session_watch_seconds += tau
                p_continue = model.continue_probability(float(allure[choice]), 0.0, fatigue,
                                                        b.continuation)
                if logs_rng.random() >= p_continue:
                    break
            hist.last_session_end = now
            if logs_rng.random() < 0.3:  # a survey answer after some sessions
                mean_value = float(np.mean(values)) if values else 0.0
                raw = 2.5 + 2.0 * mean_value + 0.7 * float(logs_rng.standard_normal())
                score = float(min(5, max(1, round(raw))))
                surveys.append((now, u, session, score))
                hist.survey_sum += score
                hist.n_surveys += 1

    feedback = _feedback_from_logs(slates, watches, surveys)

    # ---- the users' current sessions (after the fit): fresh, under way, or long
    for u, hist in enumerate(histories):
        hist.n_sessions += 1
        hist.session_items = 0
        hist.session_watch_seconds = 0.0
        if u == cold_user or u % 3 == 0:
            continue
        n_items, seconds = (3, 600.0) if u % 3 == 1 else (25, 3 * 3600.0)
        mix = items.topics[requests_rng.choice(_N_ITEMS, size=n_items, replace=False)].sum(axis=0)
        hist.n_impressions += _SLATE_SIZE * n_items
        hist.n_clicks += n_items
        hist.watch_seconds += seconds
        hist.watch_fraction_sum += 0.5 * n_items
        hist.classifier_seconds += seconds * 0.2
        hist.topic_mix += seconds / n_items * mix
        hist.session_items = n_items
        hist.session_watch_seconds = seconds

    # ---- requests: users in turn, ~40 random candidates in random order
    requests = []
    for index in range(n_requests):
        # one request whose pool is exactly the slate size (the smallest pool a run allows)
        size = _SLATE_SIZE if index == 1 else _N_CANDIDATES
        candidates = requests_rng.choice(_N_ITEMS, size=size, replace=False).astype(np.int64)
        requests.append(_RequestSpec(index % _N_USERS, _REQUEST_START + 30.0 * index, candidates))

    return _World(
        catalog=catalog, context=context, feedback=feedback, empty_feedback=_empty_feedback(),
        histories=histories, requests=requests, theta=theta, appetite=appetite,
        satisfaction=satisfaction, behaviour=behaviour,
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
