"""Sampled event logging (``outputs.event_sample``) and the event log's bulk path.

Full event rows for a sample of users — the first ``ceil(event_sample × n_users)`` ids — and
aggregates (metrics, users table, headline figures) for everyone, identical to a full run.
"""

from __future__ import annotations

import json
import math
import typing

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from recsim.analysis import load_run, survival_curves
from recsim.config import Scenario, ScenarioError, sampled_users, scenario_from_dict
from recsim.eventlog import EVENT_CODES, EVENT_TYPES, EventLog, event_codes
from recsim.experiment import run_experiment
from recsim.metrics import spearman

SHARE = 0.3
#: every engine (both hand their rows to EventLog.add_rows, in different windows)
ENGINES = typing.get_args(Scenario.model_fields["engine"].annotation)


@pytest.fixture(scope="module", params=ENGINES)
def runs(request, tmp_path_factory):
    """The same tiny scenario and seed, logged in full and for 30% of the users."""
    from conftest import TINY

    root = tmp_path_factory.mktemp(f"sample-{request.param}")
    data = {**TINY, "policies": ["random", "popularity", "engagement_oracle"], "replications": 2,
            "engine": request.param}
    # a churn-prone population, so that survival has something to show
    data["behaviour"] = {"churn": {"zeta0": -1.0}}
    out = {}
    for share in (1.0, SHARE):
        scenario = scenario_from_dict({**data, "outputs": {**data["outputs"], "event_sample": share}})
        out[share] = run_experiment(scenario, root / f"run-{share}", workers=1)
    return out


def _table(path, name):
    frame = pd.read_parquet(path / name)
    frame["policy"] = frame["policy"].astype(str)
    frame["replication"] = frame["replication"].astype(int)
    keys = [c for c in ("policy", "replication", "stage", "user_id", "metric", "start") if c in frame]
    return frame.sort_values(keys, kind="stable").reset_index(drop=True)


def test_events_only_for_the_sampled_users_and_retrains(runs):
    n_users = load_run(runs[1.0]).n_users
    limit = math.ceil(SHARE * n_users)
    assert limit == 4 == sampled_users(SHARE, n_users)
    full = pd.read_parquet(runs[1.0] / "events")
    sample = pd.read_parquet(runs[SHARE] / "events")
    # the sampled users' ids, each that has any row in the full log (a user can churn in the
    # warm-up, before any row is logged)
    logged = set(full["user_id"]) & set(range(limit))
    assert len(logged) >= limit - 1 and set(sample["user_id"]) == {-1, *logged}
    assert (sample.loc[sample["user_id"] < 0, "event"].astype(str) == "retrain").all()
    assert (sample["event"].astype(str) == "retrain").sum() == (full["event"].astype(str) == "retrain").sum() > 0
    assert full["user_id"].max() >= limit  # the full log does have the others
    # exactly the full log's rows of those users, in the same order
    expected = full[full["user_id"] < limit].reset_index(drop=True)
    pd.testing.assert_frame_equal(sample.reset_index(drop=True), expected)
    assert {"session_start", "impression", "click", "watch", "session_end"} <= set(sample["event"].astype(str))


#: measured over the sampled users only (a rank correlation over all the horizon's watches, and
#: the proxy panel of every active user, would grow with users × horizon)
SAMPLED_ONLY = ("watch_value_correlation", "proxy_validity", "proxy_regret")


def test_aggregates_cover_every_user_and_equal_the_full_run(runs):
    pd.testing.assert_frame_equal(_table(runs[SHARE], "users"), _table(runs[1.0], "users"))
    metrics = [_table(runs[key], "metrics") for key in (SHARE, 1.0)]
    metrics = [m[~m["metric"].isin(SAMPLED_ONLY)].reset_index(drop=True) for m in metrics]
    pd.testing.assert_frame_equal(*metrics)
    sampled = pd.read_csv(runs[SHARE] / "replications.csv")
    complete = pd.read_csv(runs[1.0] / "replications.csv")
    # every headline figure covers everyone, except those over the sampled users' watches
    pd.testing.assert_frame_equal(sampled.drop(columns=list(SAMPLED_ONLY)), complete.drop(columns=list(SAMPLED_ONLY)))
    limit = sampled_users(SHARE, load_run(runs[1.0]).n_users)
    full = pd.read_parquet(runs[1.0] / "events")
    watches = full[(full["event"].astype(str) == "watch") & (full["user_id"] < limit)]
    for row in sampled.itertuples():
        mine = watches[(watches["policy"].astype(str) == row.policy) & (watches["replication"] == row.replication)]
        expected = spearman(mine["watch_time"].to_numpy(), mine["true_value"].to_numpy())
        assert row.watch_value_correlation == pytest.approx(expected, rel=1e-12, nan_ok=True)
        assert len(mine) >= 3
    users = _table(runs[SHARE], "users")
    assert users["user_id"].nunique() == load_run(runs[SHARE]).n_users


def test_manifest_and_run_record_the_share(runs):
    for share, path in runs.items():
        manifest = json.loads((path / "manifest.json").read_text())
        assert manifest["event_sample"] == share
        run = load_run(path)
        assert run.event_sample == share
        assert run.event_users == (4 if share < 1 else run.n_users)
        events = {t["events"] for t in manifest["tasks"]}
        assert all(n > 0 for n in events)


def test_survival_uses_the_sampled_users(runs):
    full, sample = load_run(runs[1.0]), load_run(runs[SHARE])
    curves = survival_curves(sample)
    curves = curves[curves["metric"] == "survival"]
    churns = full.events(["time", "user_id"], event="churn")
    assert (churns["user_id"] < sample.event_users).any(), "the test needs churn among the sampled users"
    users = full.users
    for (policy, rep), curve in curves.groupby(["policy", "replication"]):
        mine = users[(users["policy"] == policy) & (users["replication"] == rep) & (users["stage"] == "initial")]
        alive0 = int((~mine.loc[mine["user_id"] < sample.event_users, "churned"].astype(bool)).sum())
        times = np.sort(churns.loc[(churns["policy"] == policy) & (churns["replication"] == rep)
                                   & (churns["user_id"] < sample.event_users), "time"])
        expected = 1.0 - np.searchsorted(times, curve["time"].to_numpy(), side="right") / max(alive0, 1)
        np.testing.assert_allclose(curve["value"].to_numpy(), expected)


@pytest.mark.parametrize("bad", [0, 0.0, 1.5, -0.1])
def test_the_share_must_be_in_zero_one(tiny, bad):
    tiny["outputs"]["event_sample"] = bad
    with pytest.raises(ScenarioError, match=r"outputs\.event_sample: Input should be"):
        scenario_from_dict(tiny)


def test_sampled_users_reads_the_share_as_written():
    assert sampled_users(0.1, 30) == 3  # not ceil(3.0000000000000004) = 4
    assert sampled_users(0.3, 12) == 4
    assert sampled_users(1.0, 12) == 12
    assert sampled_users(1e-9, 12) == 1


# ----------------------------------------------------------------------------- EventLog
def _events(n_users: int = 6, seed: int = 0):
    """A mixed stream of events as (kind, args) in canonical order."""
    g = np.random.default_rng(seed)
    out = []
    t = 0.0
    for _ in range(300):
        t += float(g.exponential(10))
        u = int(g.integers(-1, n_users))
        if u < 0:
            out.append(("add", (t, -1, 0, "retrain")))
        elif g.random() < 0.3:
            slate = [int(x) for x in g.choice(100, size=int(g.integers(1, 6)), replace=False)]
            out.append(("impressions", (t, u, 1, slate)))
        elif g.random() < 0.5:
            item = int(g.integers(100))
            out.append(("add", (t, u, 2, "watch", item, 3, float(g.exponential(100)), float(g.random()),
                                math.nan, float(g.normal()), float(g.random()), float(g.normal()))))
        else:
            out.append(("add", (t, u, 1, str(g.choice(["session_start", "click", "session_end", "churn"])))))
            if out[-1][1][3] == "click":
                out[-1] = ("add", (*out[-1][1], int(g.integers(100)), 2))
    return out


def _scalar(log: EventLog, stream) -> None:
    for kind, args in stream:
        if kind == "add":
            log.add(*args)
        else:
            log.add_impressions(*args)


def _as_columns(stream) -> dict[str, np.ndarray]:
    """The stream as whole columns (rows expanded), as the batched engine would give them."""
    names = ["time", "user_id", "session", "event", "item_id", "position", "watch_time", "watch_fraction",
             "survey_score", "true_value", "true_extremeness", "true_allure"]
    defaults = [None, None, None, None, -1, 0] + [math.nan] * 6
    rows = []
    for kind, args in stream:
        if kind == "add":
            row = list(args) + defaults[len(args):]
            rows.append(row)
        else:
            t, u, session, slate = args
            rows += [[t, u, session, "impression", item, i + 1] + defaults[6:] for i, item in enumerate(slate)]
    return {name: np.array([r[i] for r in rows]) for i, name in enumerate(names)}


def _write(path, stream, how, chunk_rows=1000, **kwargs):
    log = EventLog(path, chunk_rows=chunk_rows, **kwargs)
    if how == "scalar":
        _scalar(log, stream)
    else:
        cols = _as_columns(stream)
        if how == "codes":
            cols["event"] = event_codes(cols["event"])
        for part in np.array_split(np.arange(len(cols["time"])), 7):  # several calls
            log.add_rows({name: values[part] for name, values in cols.items()})
    log.close()
    return pq.read_table(path)


@pytest.mark.parametrize("how", ["names", "codes"])
@pytest.mark.parametrize("kwargs", [{}, {"user_limit": 3}, {"log_impressions": False},
                                    {"user_limit": 2, "log_impressions": False}])
def test_add_rows_writes_what_add_writes(tmp_path, how, kwargs):
    stream = _events()
    one = _write(tmp_path / "a.parquet", stream, "scalar", **kwargs)
    two = _write(tmp_path / "b.parquet", stream, how, **kwargs)
    assert one.num_rows > 0
    assert one.schema == two.schema
    pd.testing.assert_frame_equal(one.to_pandas(), two.to_pandas())  # NaN == NaN here
    users = set(one.column("user_id").to_pylist())
    limit = kwargs.get("user_limit", 6)
    assert users <= {-1, *range(limit)} and -1 in users
    kinds = set(one.column("event").to_pylist())
    assert ("impression" in kinds) == kwargs.get("log_impressions", True)


def test_add_rows_writes_a_row_group_every_chunk_rows(tmp_path):
    stream = _events() * 4
    cols = _as_columns(stream)
    n = len(cols["time"])
    log = EventLog(tmp_path / "e.parquet", chunk_rows=100)
    log.add_rows({name: values[: n // 2] for name, values in cols.items()})
    assert log.n_rows == (n // 2) // 100 * 100  # written as it goes, not held
    assert log._n < 100
    log.add_rows({name: values[n // 2:] for name, values in cols.items()})
    log.close()
    meta = pq.ParquetFile(tmp_path / "e.parquet").metadata
    sizes = [meta.row_group(i).num_rows for i in range(meta.num_row_groups)]
    assert sum(sizes) == n == log.n_rows
    assert all(s == 100 for s in sizes[:-1]) and 0 < sizes[-1] <= 100


def test_rows_given_in_many_calls_make_the_file_one_call_makes(tmp_path):
    """The engines hand over rows in windows of any size; each row group is written from the
    blocks as they came (no concatenation): the same row groups and rows as from one call."""
    cols = _as_columns(_events() * 4)
    n = len(cols["time"])
    files = []
    for name, cuts in (("one", [n]), ("many", sorted({int(x) for x in np.linspace(0, n, 38)[1:]}))):
        log = EventLog(tmp_path / f"{name}.parquet", chunk_rows=150)
        lo = 0
        for hi in cuts:
            log.add_rows({column: values[lo:hi] for column, values in cols.items()})
            lo = hi
        log.close()
        files.append(pq.ParquetFile(tmp_path / f"{name}.parquet"))
    groups = [[f.metadata.row_group(i).num_rows for i in range(f.metadata.num_row_groups)] for f in files]
    assert groups[0] == groups[1] and len(groups[0]) == -(-n // 150)
    assert files[0].read().equals(files[1].read())


def test_add_rows_copies_the_callers_arrays_and_fills_defaults(tmp_path):
    log = EventLog(tmp_path / "e.parquet")
    time = np.array([1.0, 2.0])
    users = np.array([0, 1], dtype=np.int64)
    log.add_rows({"time": time, "user_id": users, "session": np.array([1, 1]),
                  "event": np.array([EVENT_CODES["session_start"], EVENT_CODES["churn"]], dtype=np.int8)})
    time[:] = -5.0  # a caller reusing its buffers
    users[:] = 9
    log.close()
    table = pq.read_table(tmp_path / "e.parquet").to_pydict()
    assert table["time"] == [1.0, 2.0] and table["user_id"] == [0, 1]
    assert table["event"] == ["session_start", "churn"]
    assert table["item_id"] == [-1, -1] and table["position"] == [0, 0]
    assert all(x is None for x in table["watch_time"] + table["true_value"])  # stored as nulls


def test_add_rows_rejects_bad_columns(tmp_path):
    log = EventLog(tmp_path / "e.parquet")
    good = {"time": np.ones(2), "user_id": np.zeros(2, int), "session": np.ones(2, int), "event": np.zeros(2, int)}
    with pytest.raises(ValueError, match="missing columns"):
        log.add_rows({k: v for k, v in good.items() if k != "session"})
    with pytest.raises(ValueError, match="unknown columns"):
        log.add_rows({**good, "colour": np.ones(2)})
    with pytest.raises(ValueError, match="one length"):
        log.add_rows({**good, "time": np.ones(3)})
    with pytest.raises(ValueError, match="event codes"):
        log.add_rows({**good, "event": np.array([0, len(EVENT_TYPES)])})
    with pytest.raises(KeyError, match="unknown event 'lunch'"):
        log.add_rows({**good, "event": np.array(["watch", "lunch"])})
    log.close()


def test_event_codes():
    assert event_codes(["watch", "retrain", "watch"]).tolist() == [3, 8, 3]
    assert event_codes(np.array(EVENT_TYPES)).tolist() == list(range(len(EVENT_TYPES)))
    assert event_codes([]).dtype == np.int8
    assert EVENT_CODES == {name: i for i, name in enumerate(EVENT_TYPES)}


def test_no_path_keeps_nothing():
    log = EventLog(None, user_limit=3)
    log.add(0.0, -1, 0, "retrain")
    log.add(0.0, 1, 1, "session_start")
    log.add_impressions(0.0, 1, 1, [1, 2])
    log.add_rows({"time": np.ones(1), "user_id": np.zeros(1, int), "session": np.ones(1, int),
                  "event": np.zeros(1, int)})
    log.close()
    assert log.n_rows == 0 and log._n == 0
