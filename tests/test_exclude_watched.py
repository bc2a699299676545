"""Watched items leave the user's candidate pools (``recommender.exclude_watched``, docs/model.md
§9), in both engines: no user is shown or watches an item twice; with the option off, small
catalogs do show repeats (so the check can fail); a user who has watched every item gets no
slate, and both engines agree event for event."""

from __future__ import annotations

import copy

import pandas as pd
import pytest
from conftest import TINY

from recsim.config import scenario_from_dict
from recsim.experiment import run_experiment


def _events(tmp_path, name: str, engine: str, n_items: int = 60, horizon: str = "3d", **recommender) -> pd.DataFrame:
    data = copy.deepcopy(TINY)
    data.update(name=name, engine=engine, policies=["engagement_oracle", "random"], horizon=horizon, warmup="0s")
    data["catalog"] = {"n_items": n_items, "upload_rate": "0/d"}
    data["recommender"] = {**data["recommender"], "slate_size": 5, "n_candidates": 20, **recommender}
    data["outputs"] = {**data["outputs"], "log_impressions": True}
    path = run_experiment(scenario_from_dict(data), tmp_path / f"{name}-{engine}", workers=1)
    events = pd.read_parquet(path / "events")
    events["event"] = events["event"].astype(str)
    events["policy"] = events["policy"].astype(str)
    return events.sort_values(["policy", "replication", "user_id", "time", "event", "position"],
                              kind="stable").reset_index(drop=True)


def _repeats(events: pd.DataFrame) -> int:
    watches = events[events.event == "click"]
    return int(watches.duplicated(["policy", "replication", "user_id", "item_id"]).sum())


@pytest.mark.parametrize("engine", ["batched", "reference"])
def test_no_item_is_shown_or_watched_twice_by_a_user(tmp_path, engine):
    events = _events(tmp_path, "on", engine)
    assert _repeats(events) == 0
    clicks = events[events.event == "click"]
    shown = events[events.event == "impression"]
    # no impression of an item after the user clicked it
    first_click = clicks.groupby(["policy", "user_id", "item_id"])["time"].min().rename("clicked_at")
    late = shown.join(first_click, on=["policy", "user_id", "item_id"], how="inner")
    assert (late["time"] <= late["clicked_at"]).all()
    # pools larger than n_candidates with watched items in them (the draw that skips them)
    per_user = clicks.groupby(["policy", "user_id"])["item_id"].nunique()
    assert per_user.max() > 5


def test_with_the_option_off_a_small_catalog_is_watched_again(tmp_path):
    assert _repeats(_events(tmp_path, "off", "batched", exclude_watched=False)) > 0


def test_a_user_who_watched_everything_gets_no_slate_and_both_engines_agree(tmp_path):
    a = _events(tmp_path, "eq", "batched", n_items=10, horizon="12d", n_candidates=10)
    b = _events(tmp_path, "eq", "reference", n_items=10, horizon="12d", n_candidates=10)
    pd.testing.assert_frame_equal(a, b)
    assert _repeats(a) == 0
    clicks = a[a.event == "click"]
    done = clicks.groupby(["policy", "user_id"]).agg(n=("item_id", "nunique"), last=("time", "max"))
    done = done[done.n == 10]  # every item of the catalog watched
    assert len(done) > 0
    shown = a[a.event == "impression"].join(done, on=["policy", "user_id"], how="inner")
    assert (shown["time"] <= shown["last"]).all()  # no slate after the last item
    starts = a[a.event == "session_start"].join(done, on=["policy", "user_id"], how="inner")
    assert (starts["time"] > starts["last"]).any()  # they still come back, to nothing
