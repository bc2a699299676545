"""The stepped engine: users' lives one slate at a time, each slate chosen outside the engine.

A reinforcement-learning environment (:mod:`recsim.gym`) needs the simulation to stop at every
decision point of a user — a slate request in the horizon — hand over what the platform
observes, and go on once a slate is chosen. This engine does that for a fixed number of
*places* (one per environment of a vector of environments), each holding one user at a time:

* :meth:`SteppedSimulation.arrive` puts a new user in a place and takes the steps of
  :mod:`recsim.engine.core` up to the user's first decision in the horizon (the warm-up runs
  under the scenario's warm-up policy, as in a run);
* :meth:`SteppedSimulation.act` shows the places' slates and takes every step up to each
  user's next decision, or to the end of the user's life on the platform (churn, or the end
  of the horizon);
* what happened in between (watches, their hidden value, surveys) is summed per place.

The steps are the ones both other engines take, called on batches of users exactly as the
batched engine calls them: a user's numbers come from the same array functions and the same
counter-based draws whatever the batch (``tests/test_gym.py`` runs built-in policies through
this engine and gets the batched engine's outputs, bit for bit). Between decisions users do
not affect one another, and nothing here synchronizes them: each place runs on its own
clock. So the scenario's policy list, retrains and metric buckets play no part here, and
scenarios whose users interact through the platform (adapting creators) or whose users follow
scripts are refused.

Nothing here imports SimPy. Times are simulated seconds (the horizon starts at 0).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .. import rng as rngmod
from ..catalog import make_topic_centers
from ..config import PolicySpec, Scenario
from ..eventlog import EVENT_CODES
from ..policies.base import BatchFeatures, OracleBatch, RequestBatch, RequestRngs
from ..world import build_world
from .core import DONE, END, RETURN, SERVE, WATCH, Simulation

__all__ = ["SteppedSimulation", "Outcome", "UnsupportedScenario"]

_WATCH, _SURVEY, _CLICK = EVENT_CODES["watch"], EVENT_CODES["survey"], EVENT_CODES["click"]


class UnsupportedScenario(ValueError):
    """The scenario has something the stepped engine cannot run (named in the message)."""


class _NoEvents:
    """Stands in for the event log: the stepped engine reads the rows itself."""

    log_impressions = False
    user_limit = None
    n_rows = 0

    def add_rows(self, cols) -> None:  # pragma: no cover - never called (rows are taken first)
        pass

    def close(self) -> None:
        pass


class _PlaceRngs(RequestRngs):
    """Request generators keyed by the user in each place (its stream id), not by the place."""

    def __init__(self, base: RequestRngs, stream_ids: np.ndarray):
        self.__dict__.update(base.__dict__)
        self._ids = stream_ids

    def rows(self, users: np.ndarray, counters: np.ndarray) -> RequestRngs:
        return RequestRngs.rows(self, self._ids[users], counters)


@dataclass
class Outcome:
    """What happened in each place between two decisions, arrays ``(B,)``: seconds watched
    (``watch_time``), the hidden value of the watches (``value``), clicks, the sum and number
    of survey answers (``survey_sum``, ``n_surveys``), the seconds of extreme-weighted watching
    (``extreme_seconds``: Σ τ·e, hidden), and whether the user churned (``churned``) or the
    horizon ended (``ended``: no decision left, without churn)."""

    watch_time: np.ndarray
    value: np.ndarray
    clicks: np.ndarray
    survey_sum: np.ndarray
    n_surveys: np.ndarray
    extreme_seconds: np.ndarray
    churned: np.ndarray
    ended: np.ndarray


class SteppedSimulation:
    """``n_places`` users at a time on one replication's platform, one decision at a time.

    The platform (topic centres, catalog, uploads) is the scenario's for ``replication``; each
    user who arrives is new: hidden state drawn from the scenario's population model with its
    own stream (``rng.generator(seed, replication, "stepped:population:<id>")``), and
    per-user streams those of user ``<id>`` of the replication. With ``from_world=True`` the
    places start with the replication's own users ``0 .. n_places-1`` (as a run would have
    them; :meth:`arrive` is then not needed for the first users).

    Raises :class:`UnsupportedScenario` for adapting creators, scripted user groups and
    takeovers."""

    def __init__(self, scenario: Scenario, n_places: int, replication: int = 0, from_world: bool = False):
        problems = []
        if scenario.catalog.creators is not None:
            problems.append("catalog.creators (adapting creators couple users through the catalog)")
        if scenario.population.scripted:
            problems.append("population.scripted (scripted users follow rules, not slates)")
        if scenario.population.takeover is not None:
            problems.append("population.takeover (a counterfactual bot replaces the user's choices)")
        if problems:
            raise UnsupportedScenario(
                f"scenario {scenario.name!r} cannot be stepped one decision at a time: it sets "
                + "; ".join(problems) + ". Remove these for a reinforcement-learning environment."
            )
        if n_places < 1:
            raise ValueError(f"n_places must be at least 1, got {n_places}")
        data = scenario.model_dump()
        data["population"]["n_users"] = int(n_places)
        sc = Scenario.model_validate(data)
        self.scenario = sc
        self.replication = replication
        world = build_world(sc, replication)
        self.world = world
        # the place's policy is never asked (slates come from outside); the warm-up policy is
        sim = Simulation(world, PolicySpec(name="agent", type=sc.warmup_policy), _NoEvents(), single=False)
        self.sim = sim
        self.n_places = n_places
        self.centers = make_topic_centers(sc.catalog, rngmod.generator(sc.seed, replication, "topics"))
        #: each place's user: the id that keys their streams
        self.stream_ids = np.arange(n_places, dtype=np.int64)
        sim.warmup_rngs = _PlaceRngs(sim.warmup_rngs, self.stream_ids)
        n = sc.recommender.n_candidates
        self.candidates = np.full((n_places, n), -1, dtype=np.int64)  # padded with -1
        self.count = np.zeros(n_places, dtype=np.int64)
        self.now = np.zeros(n_places)
        self.waiting = np.zeros(n_places, dtype=bool)  # at a decision, candidates drawn
        #: the time of each place's last step taken (seconds): a churned user's churn time
        self.clock = np.full(n_places, world.start)
        self.n_decisions = 0
        sim.start()
        if from_world:
            self._advance(np.arange(n_places))
            sim.rows.take_before(np.inf)  # before the first decision: nobody reads them

    # ------------------------------------------------------------------ users
    def new_user_state(self, stream_id: int) -> dict[str, np.ndarray]:
        """The hidden state of a new user with stream id ``stream_id`` (fields with a leading
        axis of 1)."""
        sc = self.scenario
        rng = rngmod.generator(sc.seed, self.replication, f"stepped:population:{int(stream_id)}")
        state = self.world.model.initial_state(1, self.centers, rng, self.world.start)
        return {name: state[name] for name in state.fields}

    def arrive(self, places: np.ndarray, stream_ids: np.ndarray) -> np.ndarray:
        """New users (stream ids ``stream_ids``) in ``places``, taken to their first decision
        in the horizon. Returns whether each is at a decision: False for a user whose life
        ended first (churned in the warm-up, or no return in the horizon)."""
        places = np.asarray(places, dtype=np.int64)
        stream_ids = np.asarray(stream_ids, dtype=np.int64)
        states = [self.new_user_state(int(s)) for s in stream_ids]
        state = {name: np.concatenate([st[name] for st in states]) for name in states[0]}
        self.stream_ids[places] = stream_ids
        self.waiting[places] = False
        self.clock[places] = self.world.start
        self.sim.renew_users(places, state, stream_ids)
        self._advance(places)
        self.sim.rows.take_before(np.inf)  # the warm-up's rows: nobody reads them
        return self.waiting[places].copy()

    # ------------------------------------------------------------------ decisions
    def request(self, places: np.ndarray, oracle: bool = False) -> RequestBatch:
        """The pending requests of ``places`` (all waiting) as the batch a policy gets: user
        ids are places (``histories`` is indexed by place), candidates ``(B, c)``; places with
        fewer candidates than others are not allowed here (see :attr:`count`)."""
        places = np.asarray(places, dtype=np.int64)
        c = int(self.count[places].min())
        candidates = np.ascontiguousarray(self.candidates[places, :c])
        candidates.flags.writeable = False
        now = self.now[places].copy()
        now.flags.writeable = False
        sim = self.sim
        return RequestBatch(
            user_ids=places, now=now, candidates=candidates, histories=sim.hist_view,
            features=BatchFeatures(sim.items, candidates, now), slate_size=self.scenario.recommender.slate_size,
            items=sim.items,
            oracle=OracleBatch(sim.model, sim.state, places, candidates, sim.catalog) if oracle else None,
        )

    def policy_rngs(self, key: int, places: np.ndarray) -> RequestRngs:
        """The generators of the places' pending requests for a policy whose stream key is
        ``key`` (keyed by each user's stream id and request number, as in a run)."""
        return RequestRngs(key).rows(self.stream_ids[places], self.sim.n_requests[places])

    def act(self, places: np.ndarray, slates: list[np.ndarray] | np.ndarray) -> Outcome:
        """Show each place's slate (item ids among its candidates, at least one) and take
        every step up to the user's next decision or the end of their life here."""
        places = np.asarray(places, dtype=np.int64)
        if not self.waiting[places].all():
            raise RuntimeError("act() on a place with no pending decision: call arrive() first")
        sim = self.sim
        now = self.now[places]
        sim.n_requests[places] += 1
        self.waiting[places] = False
        self.n_decisions += places.shape[0]
        if isinstance(slates, np.ndarray) and slates.ndim == 2:
            sim._show(places, now, slates.astype(np.int64, copy=False))
        else:
            lengths = np.fromiter(map(len, slates), np.int64, len(slates))
            for length in np.unique(lengths).tolist():
                rows = np.flatnonzero(lengths == length)
                slate = np.array([np.asarray(slates[i], dtype=np.int64) for i in rows.tolist()],
                                 dtype=np.int64).reshape(rows.shape[0], length)
                sim._show(places[rows], now[rows], slate)
        self._advance(places)
        return self._outcome(places)

    # ------------------------------------------------------------------ internals
    def _advance(self, places: np.ndarray) -> None:
        """Take the places' steps up to each user's next decision in the horizon (candidates
        drawn) or the end of their life here. One step per user per round, grouped by kind
        of step, as the batched engine takes them."""
        sim = self.sim
        steps = ((RETURN, sim.returns), (SERVE, sim.serve), (WATCH, sim.watch), (END, sim.end))
        moving = places[~self.waiting[places] & (sim.phase[places] != DONE)]
        while moving.shape[0]:
            phase, t = sim.phase[moving], sim.t_next[moving]
            decide = (phase == SERVE) & (t >= 0)
            if decide.any():  # a user whose pool ran dry is sent to END instead (no decision)
                users, now, candidates, count = sim.draw_candidates(moving[decide], t[decide])
                self.candidates[users] = -1
                self.candidates[users, : candidates.shape[1]] = candidates
                self.count[users] = count
                self.now[users] = now
                self.waiting[users] = True
            moving = moving[~self.waiting[moving]]
            ph = sim.phase[moving]
            for code, step in steps:
                users = moving[ph == code]
                if users.shape[0]:
                    now = sim.t_next[users]
                    self.clock[users] = now
                    step(users, now)
            moving = moving[sim.phase[moving] != DONE]

    def _outcome(self, places: np.ndarray) -> Outcome:
        cols = self.sim.rows.take_before(np.inf)
        B = places.shape[0]
        index = np.full(self.n_places, -1, dtype=np.int64)
        index[places] = np.arange(B)

        def total(mask_code: int, values: np.ndarray | None) -> np.ndarray:
            if cols is None:
                return np.zeros(B)
            rows = cols["event"] == mask_code
            where = index[cols["user_id"][rows]]
            weights = None if values is None else values[rows]
            return np.bincount(where, weights=weights, minlength=B).astype(float)

        if cols is not None:
            tau = cols["watch_time"]
            ext = np.where(cols["event"] == _WATCH, tau * cols["true_extremeness"], 0.0)
        else:
            tau = ext = None
        sim = self.sim
        churned = sim.churned[places].copy()
        return Outcome(
            watch_time=total(_WATCH, tau), value=total(_WATCH, None if cols is None else cols["true_value"]),
            clicks=total(_CLICK, None), survey_sum=total(_SURVEY, None if cols is None else cols["survey_score"]),
            n_surveys=total(_SURVEY, None), extreme_seconds=total(_WATCH, ext),
            churned=churned, ended=~self.waiting[places] & ~churned,
        )

    # ------------------------------------------------------------------ hidden state
    def hidden(self, places: np.ndarray) -> dict[str, np.ndarray]:
        """The places' users' hidden state now (``wellbeing``, ``appetite``, ``satisfaction``,
        ``habit``, ``topic_drift``), ``(B,)`` each, as :func:`recsim.metrics.effective_state`
        computes it: at the pending decision, at the churn for a user who churned (as their last
        session left them), or at the end of the horizon."""
        from ..metrics import effective_state
        from ..users.state import UserState

        sim = self.sim
        places = np.asarray(places, dtype=np.int64)
        part = UserState.__new__(UserState)
        part.n_users = places.shape[0]
        part.arrays = {name: values[places] for name, values in sim.state.arrays.items()}
        when = np.where(self.waiting[places], self.now[places],
                        np.where(sim.churned[places], self.clock[places], self.world.end))
        state = effective_state(sim.model, part, sim.in_session[places], sim.state_time[places], when,
                                with_theta=False, frozen=sim.churned[places])
        return {name: state[name] for name in ("wellbeing", "appetite", "satisfaction", "habit", "topic_drift")}
