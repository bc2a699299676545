"""A policy never reads hidden state (docs/model.md §1): nothing reachable from what the
reference engine hands a non-oracle policy — the requests, the reset context, the feedback —
is, shares memory with, or equals the hidden catalog or population. Oracles do get the truth,
which both gives the test teeth and shows the leak detector works on real data."""

from __future__ import annotations

import functools
import types
from dataclasses import dataclass, field
from typing import Any, Iterator

import numpy as np
import pytest

from recsim.catalog import Catalog, ObservableItems
from recsim.config import scenario_from_dict
from recsim.engine import simulate
from recsim.eventlog import EventLog
from recsim.oracle import OracleView
from recsim.policies.base import CandidateFeatures, Feedback, History, PolicyContext, Request
from recsim.policies.builtin import RandomPolicy
from recsim.users.model import UserModel
from recsim.users.state import StateView, UserState
from recsim.world import World, build_world

CATALOG_HIDDEN = ("topics", "extremeness", "quality", "clickbait", "cluster")
POPULATION_HIDDEN = (
    "theta", "theta0", "appetite", "appetite0", "satisfaction", "habit", "fatigue",
    "susceptibility", "vulnerable", "home_cluster", "impulse", "slow", "ubar",
)  # (the state's time stamps — habit_time, kernel_time — are times of observable events)
# per-user hidden scalars that are continuous, so an exact float match is not a coincidence
USER_SCALARS = ("appetite", "appetite0", "satisfaction", "fatigue")

_ATOMS = (str, bytes, int, float, complex, bool, type(None), np.generic, range, slice)


# ----------------------------------------------------------------------------- the walker
def walk(root: Any, name: str) -> Iterator[tuple[str, Any]]:
    """Every object reachable from ``root`` as ``(path, object)``: through containers,
    dataclasses, ``__dict__`` and ``__slots__``, properties of recsim objects, closures and
    bound methods — but not into numpy arrays' internals, nor into classes or modules."""
    seen: set[int] = set()
    stack: list[tuple[str, Any]] = [(name, root)]
    while stack:
        path, obj = stack.pop()
        if id(obj) in seen:
            continue
        seen.add(id(obj))
        yield path, obj
        if isinstance(obj, np.ndarray):
            if obj.dtype == object:
                stack.extend((f"{path}[{i}]", x) for i, x in enumerate(obj.ravel().tolist()))
            continue
        if isinstance(obj, _ATOMS) or isinstance(obj, (type, types.ModuleType)):
            continue
        if isinstance(obj, dict):
            for key, value in obj.items():
                stack.append((f"{path}.<key>", key))
                stack.append((f"{path}[{key!r}]", value))
            continue
        if isinstance(obj, (list, tuple, set, frozenset)):
            stack.extend((f"{path}[{i}]", x) for i, x in enumerate(obj))
            continue
        if isinstance(obj, types.FunctionType):
            cells = obj.__closure__ or ()
            stack.extend((f"{path}.<closure {i}>", c.cell_contents) for i, c in enumerate(cells) if _filled(c))
            stack.append((f"{path}.__defaults__", obj.__defaults__))
            stack.append((f"{path}.__kwdefaults__", obj.__kwdefaults__))
            continue
        if isinstance(obj, types.MethodType):
            stack.append((f"{path}.__self__", obj.__self__))
            stack.append((f"{path}.__func__", obj.__func__))
            continue
        if isinstance(obj, functools.partial):
            stack.extend([(f"{path}.func", obj.func), (f"{path}.args", obj.args), (f"{path}.keywords", obj.keywords)])
            continue
        attrs: dict[str, Any] = dict(getattr(obj, "__dict__", {}) or {})
        for klass in type(obj).__mro__:
            slots = klass.__dict__.get("__slots__", ())
            for slot in (slots,) if isinstance(slots, str) else slots:
                if slot not in ("__dict__", "__weakref__") and hasattr(obj, slot):
                    attrs[slot] = getattr(obj, slot)
        for klass in type(obj).__mro__:
            # computed views of recsim's own objects (e.g. History.topic_profile, features)
            if (klass.__module__ or "").startswith("recsim") or klass.__module__ == __name__:
                for attr, member in vars(klass).items():
                    if isinstance(member, (property, functools.cached_property)) and attr not in attrs:
                        try:
                            attrs[attr] = getattr(obj, attr)
                        except Exception:  # a property that does not apply to this object
                            pass
        stack.extend((f"{path}.{attr}", value) for attr, value in attrs.items())


def _filled(cell) -> bool:
    try:
        cell.cell_contents
    except ValueError:
        return False
    return True


# ----------------------------------------------------------------------------- the detector
def _informative(a: np.ndarray) -> bool:
    """A constant hidden array (e.g. every user's fatigue 0 between sessions) carries no
    hidden information and equals any constant array of its shape, so only non-constant ones
    are compared by value (sharing memory is checked for all)."""
    return a.size > 1 and bool((a != a[0]).any())


class Detector:
    """Finds hidden state of one world in an object graph."""

    def __init__(self, world: World):
        self.world = world
        self.catalog = world.catalog
        self.population = world.state
        self.hidden_types = (Catalog, UserState, StateView, UserModel, World, OracleView)

    def references(self, user=None, items=None, row_users=None) -> list[tuple[str, np.ndarray, bool]]:
        """``(label, array, check_memory)``: the hidden arrays live, and their per-candidate,
        per-feedback-row and per-user selections (fresh copies: compared by value)."""
        cat, pop = self.catalog, self.population
        refs = [(f"catalog.{n}", getattr(cat, n), True) for n in CATALOG_HIDDEN]
        refs += [(f"population.{n}", pop[n], True) for n in POPULATION_HIDDEN]
        if items is not None:
            refs += [(f"catalog.{n}[items]", getattr(cat, n)[items], False) for n in CATALOG_HIDDEN]
        if row_users is not None:
            refs += [
                (f"population.{n}[users]", pop[n][row_users], False) for n in POPULATION_HIDDEN
            ]
        if user is not None:
            refs += [(f"population.{n}[user]", pop[n][user], False) for n in ("theta", "theta0")]
        return refs

    def leaks(self, root: Any, name: str, user=None, items=None, row_users=None) -> list[str]:
        refs = self.references(user, items, row_users)
        scalars = {}
        if user is not None:
            for n in USER_SCALARS:
                v = float(self.population[n][user])
                if v != 0.0 and not v.is_integer():
                    scalars[n] = v
        found = []
        for path, obj in walk(root, name):
            if obj is self.catalog or obj is self.population or obj is self.world:
                found.append(f"{path} is the hidden {type(obj).__name__}")
            elif isinstance(obj, self.hidden_types):
                found.append(f"{path} is a {type(obj).__name__}")
            elif isinstance(obj, np.ndarray) and obj.dtype != object:
                for label, ref, memory in refs:
                    if memory and np.may_share_memory(obj, ref) and np.shares_memory(obj, ref):
                        found.append(f"{path} shares memory with {label}")
                    elif obj.shape == ref.shape and _informative(ref) and np.array_equal(obj, ref):
                        found.append(f"{path} equals {label}")
            elif isinstance(obj, (float, np.floating)) and scalars:
                for n, v in scalars.items():
                    if float(obj) == v:
                        found.append(f"{path} equals the user's hidden {n}")
        return found


# ----------------------------------------------------------------------------- spies
@dataclass
class Record:
    detector: Detector | None = None
    contexts: list[PolicyContext] = field(default_factory=list)
    requests: list[Request] = field(default_factory=list)
    feedbacks: list[Feedback] = field(default_factory=list)
    leaks: list[str] = field(default_factory=list)
    noise: list[tuple[float, float]] = field(default_factory=list)  # observable vs true gaps


RECORD = Record()


class Spy(RandomPolicy):
    """Serves random slates and checks everything it is handed against the live hidden state
    (the population changes during the run, so checks happen at the moment of the call)."""

    def reset(self, context):
        RECORD.contexts.append(context)
        RECORD.leaks += RECORD.detector.leaks(context, "context")

    def fit(self, feedback, now):
        RECORD.feedbacks.append(feedback)
        # also compared with the hidden arrays selected per row: by item and user of each
        # impression, and by user of each survey answer
        detector = RECORD.detector
        RECORD.leaks += detector.leaks(feedback, "feedback", items=feedback.item_id, row_users=feedback.user_id)
        surveys = feedback.surveys
        RECORD.leaks += detector.leaks(surveys, "feedback.surveys", row_users=surveys["user_id"])

    def recommend(self, request, rng):
        RECORD.requests.append(request)
        if not type(self).oracle:
            found = RECORD.detector.leaks(request, "request", user=request.user_id, items=request.candidates)
            RECORD.leaks += found
        cat = RECORD.detector.catalog
        f = request.features
        RECORD.noise.append((
            float(np.abs(f.topics - cat.topics[request.candidates]).max()),
            float(np.abs(f.classifier - cat.extremeness[request.candidates]).max()),
        ))
        return super().recommend(request, rng)


class OracleSpy(Spy):
    oracle = True


@pytest.fixture(params=["reference", "batched"])
def engine(request):
    return request.param


def _run(tiny, policy_type: str, engine: str = "reference") -> tuple[World, Record]:
    global RECORD
    tiny["engine"] = engine
    tiny["policies"] = [{"name": "spy", "type": f"{__name__}:{policy_type}"}]
    tiny["behaviour"] = {"survey": {"probability": 0.5}}  # enough survey rows in the feedback
    sc = scenario_from_dict(tiny)
    world = build_world(sc, 0)
    RECORD = Record(detector=Detector(world))
    simulate(world, sc.policies[0], EventLog(None))
    return world, RECORD


# ----------------------------------------------------------------------------- tests
def test_non_oracle_policy_never_sees_hidden_state(tiny, engine):
    world, rec = _run(tiny, "Spy", engine)
    assert len(rec.contexts) == 1
    assert len(rec.requests) > 100
    assert len(rec.feedbacks) >= 4 and sum(len(f) for f in rec.feedbacks) > 100
    assert sum(f.surveys["time"].shape[0] for f in rec.feedbacks) >= 10
    assert all(r.oracle is None for r in rec.requests)
    assert rec.leaks == [], "\n".join(rec.leaks[:20])
    assert isinstance(rec.contexts[0].items, ObservableItems)


def test_candidate_features_are_noisy_views_of_the_truth(tiny):
    _, rec = _run(tiny, "Spy")
    gaps = np.array(rec.noise)
    assert gaps.shape[0] == len(rec.requests) > 100
    # every request's observable topics and classifier scores differ from the true ones
    assert (gaps[:, 0] > 1e-3).all()
    assert (gaps[:, 1] > 1e-3).all()


def test_oracle_policy_does_receive_the_truth(tiny):
    """The same run with an oracle: every request carries an OracleView of this world, and the
    detector reports it — so a leak of that kind to a non-oracle would not go unseen."""
    world, rec = _run(tiny, "OracleSpy")
    assert len(rec.requests) > 100
    assert all(isinstance(r.oracle, OracleView) for r in rec.requests)
    assert all(r.oracle.catalog is world.catalog for r in rec.requests)
    detector = rec.detector
    found = detector.leaks(rec.requests[-1], "request", user=rec.requests[-1].user_id,
                           items=rec.requests[-1].candidates)
    assert any("request.oracle is a OracleView" in f for f in found)
    assert any("is the hidden Catalog" in f for f in found)
    assert any("shares memory with catalog.extremeness" in f for f in found)


class Slotted:
    __slots__ = ("hidden",)

    def __init__(self, value):
        self.hidden = value


def _closure_over(value):
    return lambda: value


USER, ITEMS = 3, np.arange(5, 45)

# what is planted on an otherwise honest request, and what the detector must say about it
CONTROLS = {
    "catalog attribute": (lambda cat, pop: cat, "is the hidden Catalog"),
    "catalog copy in a dict": (lambda cat, pop: {"c": Catalog(**vars(cat))}, "is a Catalog"),
    "population in a closure": (lambda cat, pop: _closure_over(pop), "is the hidden UserState"),
    "view of a theta row": (lambda cat, pop: pop["theta"][USER], "shares memory with population.theta"),
    "copied extremeness of candidates": (
        lambda cat, pop: [cat.extremeness[ITEMS].copy()], "equals catalog.extremeness[items]"
    ),
    "copied true topics in slots": (lambda cat, pop: Slotted(cat.topics.copy()), "equals catalog.topics"),
    "user's appetite as a float": (
        lambda cat, pop: (float(pop["appetite"][USER]),), "equals the user's hidden appetite"
    ),
    "features over the true topics": (
        lambda cat, pop: CandidateFeatures(types.SimpleNamespace(topics=cat.topics), ITEMS, 0.0),
        "shares memory with catalog.topics",
    ),
}


def _honest_request(world: World) -> Request:
    history = History(world.catalog.n_topics)
    history.topic_mix += world.catalog.topics_obs[ITEMS[:3]].sum(axis=0)
    history.n_clicks, history.watch_seconds = 3, 600.0
    features = CandidateFeatures(world.catalog.observable(), ITEMS, 0.0)
    return Request(user_id=USER, now=0.0, history=history, candidates=ITEMS, features=features, slate_size=5)


@pytest.mark.parametrize("control", list(CONTROLS))
def test_walker_catches_a_planted_leak(tiny, control):
    world = build_world(scenario_from_dict(tiny), 0)
    detector = Detector(world)
    honest = _honest_request(world)
    assert detector.leaks(honest, "request", user=USER, items=ITEMS) == []
    plant, expected = CONTROLS[control]
    honest.planted = plant(world.catalog, world.state)
    found = detector.leaks(honest, "request", user=USER, items=ITEMS)
    assert any(expected in f for f in found), found


def test_a_leak_in_the_engine_would_be_caught(tiny, monkeypatch, engine):
    """End-to-end control: an engine that attached the candidates' true extremeness to each
    request (a plausible debugging slip) makes the spy report it."""
    from recsim.policies import base

    def leaky_request(**fields):
        request = Request(**fields)
        request.debug = {"e": RECORD.detector.catalog.extremeness[fields["candidates"]]}
        return request

    # both engines build a policy's requests with RequestBatch.request (recsim.policies.base)
    monkeypatch.setattr(base, "Request", leaky_request)
    _, rec = _run(tiny, "Spy", engine)
    assert all(hasattr(r, "debug") for r in rec.requests), "the engine no longer builds requests as patched"
    assert len(rec.leaks) >= len(rec.requests) > 100
    assert all("equals catalog.extremeness[items]" in leak for leak in rec.leaks)
