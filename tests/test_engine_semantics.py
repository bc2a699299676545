"""Engine semantics that used to be wrong, each pinned by a test:

* a user's first session relaxes the hidden state over the time since the start of the run
  (the start of the warm-up), never over a negative interval;
* a session that starts in the warm-up and goes on past t = 0 has its events and metrics from
  t = 0 on logged;
* an online policy (``online = True``) gets ``update(feedback)`` after every event that
  produces feedback (a served slate, a watch, a survey answer);
* nothing a policy is handed can be written through into the world.
"""

from __future__ import annotations

import numpy as np
import pyarrow.parquet as pq
import pytest

from recsim.config import scenario_from_dict
from recsim.engine import simulate_batched, simulate_reference
from recsim.engine.core import RETURN, Simulation
from recsim.eventlog import EventLog
from recsim.policies.base import Policy
from recsim.policies.builtin import RandomPolicy
from recsim.world import build_world

ENGINES = {"reference": simulate_reference, "batched": simulate_batched}


def _scenario(tiny, **changes):
    data = {**tiny, **changes}
    return scenario_from_dict(data)


# ----------------------------------------------------------------------------- relaxation
def test_first_session_relaxes_over_the_time_since_the_start_of_the_warmup(tiny):
    """With a non-neutral initial satisfaction S₀ = 2, a user's first session starts with
    S = S₀·e^{−(t − start)/τ_S} (start = −warm-up): less than S₀, never more (relaxing from
    t = 0 instead, a warm-up session would see a negative interval and S grow)."""
    sc = _scenario(tiny, warmup="3d", population={"n_users": 12, "initial_satisfaction": 2.0})
    world = build_world(sc, 0)
    sim = Simulation(world, sc.policies[0], EventLog(None))
    assert (sim.state_time == world.start).all()
    sim.start()
    first = int(np.argmin(sim.t_next))
    t = float(sim.t_next[first])
    assert sim.phase[first] == RETURN and world.start < t < 0  # a warm-up session
    sim.step(np.array([first]), np.array([t]))
    tau_s = sc.behaviour.satisfaction.relax
    expected = 2.0 * np.exp(-(t - world.start) / tau_s)
    assert world.state["satisfaction"][first] == pytest.approx(expected, rel=1e-12)
    assert 0.0 < world.state["satisfaction"][first] < 2.0


# ----------------------------------------------------------------------------- straddling sessions
@pytest.mark.parametrize("engine", list(ENGINES))
def test_a_session_under_way_at_t0_is_logged_from_t0(tiny, tmp_path, engine):
    sc = _scenario(tiny, warmup="1d", horizon="12h", population={"n_users": 60},
                   outputs={"metrics_interval": "12h"}, policies=["chronological"])
    log = EventLog(tmp_path / "events.parquet")
    result = ENGINES[engine](build_world(sc, 0), sc.policies[0], log)
    events = pq.read_table(tmp_path / "events.parquet").to_pandas()
    events["event"] = events["event"].astype(str)
    assert (events["time"] >= 0).all()
    started = set(map(tuple, events.loc[events.event == "session_start", ["user_id", "session"]].to_numpy()))
    watches = events[events.event == "watch"]
    straddling = [key not in started for key in map(tuple, watches[["user_id", "session"]].to_numpy())]
    # some sessions began in the warm-up: their watches after t = 0 are in the log ...
    assert sum(straddling) > 0
    # ... and in the metrics: the logged watch time is the metric's, all of it
    watched = watches["watch_time"].sum() / 60.0 / (len(result.user_totals["watch_minutes"]) * 0.5)
    flow = [row for row in result.metrics if row[0] == "watch_minutes_per_user_day"]
    assert flow[0][4] == pytest.approx(watched, rel=1e-12)
    assert result.user_totals["watch_minutes"].sum() == pytest.approx(watches["watch_time"].sum() / 60.0, rel=1e-12)


# ----------------------------------------------------------------------------- online policies
class CountingOnline(RandomPolicy):
    """Learns after every event (for the engines): counts its updates and the rows in them."""

    online = True

    def reset(self, context):
        self.calls = 0
        self.impressions = 0
        self.watches = 0
        self.surveys = 0

    def update(self, feedback):
        self.calls += 1
        self.impressions += int((~feedback.clicked).sum())
        self.watches += int(feedback.clicked.sum())
        self.surveys += int(feedback.surveys["time"].shape[0])


def test_an_online_policy_is_updated_after_every_event(tiny, tmp_path):
    sc = _scenario(tiny, warmup="0s", horizon="1d", population={"n_users": 20},
                   behaviour={"survey": {"probability": 0.5}},
                   policies=[{"name": "online", "type": f"{__name__}:CountingOnline"}])
    result = simulate_reference(build_world(sc, 0), sc.policies[0], EventLog(tmp_path / "e.parquet"))
    policy = result.policy
    events = pq.read_table(tmp_path / "e.parquet").to_pandas()
    kind = events["event"].astype(str)
    n_slates = events[kind == "impression"].groupby(["user_id", "time"]).ngroups
    n_watches, n_surveys = int((kind == "watch").sum()), int((kind == "survey").sum())
    assert n_watches > 20 and n_surveys > 5
    # one update per served slate, per watch and per survey answer, with exactly their rows
    assert policy.calls == n_slates + n_watches + n_surveys
    assert policy.impressions == int((kind == "impression").sum()) - int((kind == "click").sum())
    assert policy.watches == n_watches
    assert policy.surveys == n_surveys


# ----------------------------------------------------------------------------- read-only inputs
WRITES = {
    "catalog lengths via the context": lambda self, request: self.context_.items.length.__setitem__(0, 1.0),
    "candidate ids": lambda self, request: request.candidates.__setitem__(0, 0),
}


class Writer(Policy):
    """Tries to write into what it is handed."""

    where = "candidate ids"

    def reset(self, context):
        self.context_ = context

    def recommend(self, request, rng):
        WRITES[type(self).where](self, request)
        return request.candidates[: request.slate_size]


class WriterBatch(Writer):
    def recommend_batch(self, batch, rngs):
        batch.histories.watch_seconds[batch.user_ids] = 0.0
        return [batch.candidates[i, : batch.slate_size] for i in range(len(batch))]


@pytest.mark.parametrize("engine", list(ENGINES))
@pytest.mark.parametrize("where", list(WRITES))
def test_a_policy_cannot_write_into_the_world(tiny, engine, where, monkeypatch):
    monkeypatch.setattr(Writer, "where", where)
    sc = _scenario(tiny, warmup="0s", policies=[{"name": "writer", "type": f"{__name__}:Writer"}])
    with pytest.raises(ValueError, match="read-only"):
        ENGINES[engine](build_world(sc, 0), sc.policies[0], EventLog(None))


def test_a_batch_policy_cannot_write_into_the_histories(tiny):
    sc = _scenario(tiny, warmup="0s", policies=[{"name": "writer", "type": f"{__name__}:WriterBatch"}])
    with pytest.raises(ValueError, match="read-only"):
        simulate_batched(build_world(sc, 0), sc.policies[0], EventLog(None))


def test_hidden_catalog_arrays_are_read_only(tiny):
    world = build_world(_scenario(tiny), 0)
    for name in ("topics", "extremeness", "quality", "clickbait", "length", "topics_obs", "classifier"):
        assert not getattr(world.catalog, name).flags.writeable, name


# ----------------------------------------------------------------------------- impression rows
def test_a_slate_buffered_as_one_row_is_written_as_one_impression_row_per_position():
    """The engines buffer a shown slate as one row holding its items (padded with -1) and
    write it out when the rows are taken: known answer, rows added out of time order, a
    short slate, a click at the same emission time after its slate, a slate-less event."""
    from recsim.engine.core import _event_rows, _impression_rows
    from recsim.eventlog import EVENT_CODES as CODE

    rows = _event_rows(4)
    # user 1: slate of 4 at t=10 (emitted at 12), then its click at 12
    rows.add(np.array([12.0]), 1, time=np.array([10.0]), user_id=np.array([1]), session=np.array([3]),
             event=CODE["impression"], slate=np.array([[7, 8, 9, 6]]))
    rows.add(np.array([12.0]), 1, time=np.array([12.0]), user_id=np.array([1]), session=np.array([3]),
             event=CODE["click"], item_id=np.array([9]), position=np.array([3]))
    # user 2: session start at 5, a slate of 2 (padded) emitted at 6
    rows.add(np.array([6.0]), 1, time=np.array([5.0]), user_id=np.array([2]), session=np.array([1]),
             event=CODE["impression"], slate=np.array([[4, 5, -1, -1]]))
    rows.add(np.array([5.0]), 1, time=np.array([5.0]), user_id=np.array([2]), session=np.array([1]),
             event=CODE["session_start"])
    out = _impression_rows(rows.take_before(100.0))
    assert "slate" not in out
    imp, click, start = CODE["impression"], CODE["click"], CODE["session_start"]
    expected = [  # (time, user, session, event, item, position), in emission order
        (5.0, 2, 1, start, -1, 0),
        (5.0, 2, 1, imp, 4, 1), (5.0, 2, 1, imp, 5, 2),
        (10.0, 1, 3, imp, 7, 1), (10.0, 1, 3, imp, 8, 2), (10.0, 1, 3, imp, 9, 3), (10.0, 1, 3, imp, 6, 4),
        (12.0, 1, 3, click, 9, 3),
    ]
    got = list(zip(*(out[name].tolist() for name in ("time", "user_id", "session", "event", "item_id", "position"))))
    assert got == expected
    assert np.isnan(out["watch_time"]).all() and np.isnan(out["true_value"]).all()
    assert len(rows) == 0


class ShortSlates(Policy):
    """Serves 1 to slate_size items, by user and request (exercises the padded slate rows)."""

    def recommend(self, request, rng):
        n = 1 + (request.user_id + int(request.now)) % request.slate_size
        return request.candidates[:n]


def test_every_shown_item_is_one_impression_row_whatever_the_slate_length(tiny, tmp_path):
    """Slates of every length up to slate_size: each slate's impression rows are its items at
    positions 1..n; the two engines write the same file."""
    sc = _scenario(tiny, warmup="0s", horizon="1d", policies=[{"name": "short", "type": f"{__name__}:ShortSlates"}])
    paths = {}
    for name, simulate in ENGINES.items():
        paths[name] = tmp_path / f"{name}.parquet"
        simulate(build_world(sc, 0), sc.policies[0], EventLog(paths[name]))
    events = pq.read_table(paths["batched"]).to_pandas()
    events["event"] = events["event"].astype(str)
    shown = events[events.event == "impression"]
    lengths = shown.groupby(["user_id", "time"])["position"].agg(["count", "min", "max"])
    assert set(lengths["count"]) == set(range(1, sc.recommender.slate_size + 1))
    assert (lengths["min"] == 1).all() and (lengths["max"] == lengths["count"]).all()
    expected = 1 + (lengths.index.get_level_values("user_id") + lengths.index.get_level_values("time").astype(int)) \
        % sc.recommender.slate_size
    assert (lengths["count"].to_numpy() == expected).all()
    assert pq.read_table(paths["reference"]).equals(pq.read_table(paths["batched"]))


class Observer(RandomPolicy):
    """Keeps every piece of feedback it is handed (observe) and each fit's (fit)."""

    def reset(self, context):
        super().reset(context)
        self.pieces_, self.fits_ = [], []

    def observe(self, feedback):
        self.pieces_.append(feedback)

    def fit(self, feedback, now):
        self.fits_.append(feedback)


def _concatenated(pieces):
    rows = {name: np.concatenate([getattr(p, name) for p in pieces])
            for name in ("time", "served_at", "user_id", "session", "item_id", "position", "clicked", "watch_time")}
    rows["surveys"] = {name: np.concatenate([p.surveys[name] for p in pieces]) for name in pieces[0].surveys}
    return rows


@pytest.mark.parametrize("engine", list(ENGINES))
def test_a_hand_over_in_small_pieces_changes_no_output_and_no_feedback(tiny, tmp_path, engine, monkeypatch):
    """Rows are held as slates and written out a piece of about _PIECE_ROWS rows at a time, to
    the event log and to an observing policy (each feedback piece what a hand-over at its end
    would take). With pieces of 7 rows instead of 250,000 the event log is the same, and the
    observer gets the same rows and surveys cut into more pieces, each in the canonical order
    (a row served before a cut and emitted after it comes in the later piece, as with any
    hand-over)."""
    from recsim.engine import core

    sc = _scenario(tiny, warmup="0s", horizon="1d", policies=[{"name": "obs", "type": f"{__name__}:Observer"}])
    got = {}
    for budget in (core._PIECE_ROWS, 7):
        monkeypatch.setattr(core, "_PIECE_ROWS", budget)
        path = tmp_path / f"events-{budget}.parquet"
        result = ENGINES[engine](build_world(sc, 0), sc.policies[0], EventLog(path))
        got[budget] = (pq.read_table(path), result.policy.pieces_)
    (whole, big), (cut, small) = got[250_000], got[7]
    assert whole.num_rows > 1000 and whole.equals(cut)
    assert len(small) > 5 * len(big)
    # a piece ends at an emission time, so it may pass 7 by the rows emitted with its last
    assert max(len(p) for p in small) <= 7 + sc.recommender.slate_size
    for piece in small:
        assert (np.diff(piece.time) >= 0).all()
    a, b = _concatenated(big), _concatenated(small)
    assert a.keys() == b.keys() and len(a["time"]) > 1000 and len(a["surveys"]["time"]) > 0

    def rows(table):
        order = np.lexsort([table[name] for name in reversed(list(table))])
        return {name: values[order] for name, values in table.items()}

    for x, y in ((a["surveys"], b["surveys"]), ({k: v for k, v in a.items() if k != "surveys"},
                                                   {k: v for k, v in b.items() if k != "surveys"})):
        x, y = rows(x), rows(y)
        for name in x:
            assert np.array_equal(x[name], y[name]), name


def test_the_learned_ranker_learns_the_same_from_small_pieces(tiny, tmp_path, monkeypatch):
    """The learned ranker observes feedback as it is handed over: cut into pieces of 7 rows
    it fits the same models and serves the same slates (the same event log)."""
    from recsim.engine import core

    sc = _scenario(tiny, warmup="12h", horizon="2d", policies=["engagement"])
    got = {}
    for budget in (250_000, 7):
        monkeypatch.setattr(core, "_PIECE_ROWS", budget)
        path = tmp_path / f"events-{budget}.parquet"
        result = simulate_batched(build_world(sc, 0), sc.policies[0], EventLog(path))
        got[budget] = (pq.read_table(path), result.models)
    assert len(got[7][1]) > 0 and got[7][1] == got[250_000][1]
    assert got[7][0].equals(got[250_000][0])
