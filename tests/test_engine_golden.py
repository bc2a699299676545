"""Pinned outputs: a change that alters what the simulator produces must do so on purpose.

Each case runs one tiny scenario × policy through :func:`recsim.experiment.run_task` (the
batched engine; the reference engine writes the same outputs bit for bit,
``tests/test_engine_equivalence.py``) and compares a summary of everything it wrote — how many
events of each kind, decisions and retrains, sums of every numeric column of the event log, of
every metric and of the users table, and the headline figures — with the summary recorded in
``tests/golden_summaries.json``. Together the cases cover the warm-up, churn, surveys, uploads,
retrains, breaks, impressions on and off, a learned policy, the oracles, user code, the peer
simulators' user models and a user model of one's own.

Counts must match exactly and sums to a relative 1e-9: that holds on any IEEE-754 platform
(another libm or SIMD path may round an ``exp`` differently in the last bit, which moves a sum
by ~1e-16 relatively; a draw would have to land within 1e-16 of a threshold to flip a count).
``tests/test_mutations.py`` shows that single-formula bugs in the model fail these checks.

If a change alters results on purpose (a model change), re-record with
``python tests/test_engine_golden.py`` and say so in the commit.
"""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from recsim.config import scenario_from_dict
from recsim.experiment import make_tasks, partition, run_task

HERE = Path(__file__).resolve().parent
SCENARIOS = HERE.parent / "scenarios"
RECORD = HERE / "golden_summaries.json"
RTOL = 1e-9

_BASE = {
    "seed": 11,
    "horizon": "2d",
    "warmup": "1d",
    "replications": 1,
    "workers": 1,
    "population": {"n_users": 30},
    "catalog": {"n_items": 300, "upload_rate": "150/d"},
    "recommender": {"slate_size": 6, "n_candidates": 40, "retrain_interval": "12h"},
    "outputs": {"metrics_interval": "12h"},
    "behaviour": {
        "survey": {"probability": 0.3},
        # more churn than the default, so that churn events occur in a tiny run
        "churn": {"zeta0": -2.5},
    },
}

_POLICIES_A = [
    "random",
    "popularity",
    "engagement_oracle",
    {"name": "engagement", "type": "engagement", "params": {"min_clicks": 5}},
    {"name": "breaks", "type": "break_suggesting",
     "params": {"budget": "10m", "base": {"type": "chronological"}}},
    {"name": "mine", "type": "my_policies:RelevantAndMild"},
    "wellbeing_oracle",
]

_SMALL = {
    "seed": 5, "warmup": "0s", "horizon": "3d",
    "catalog": {"n_items": 60, "upload_rate": "40/d"},
    "recommender": {"slate_size": 10, "n_candidates": 50, "retrain_interval": "1d"},
    "outputs": {"log_impressions": False, "metrics_interval": "1d"},
    "policies": ["chronological", {"name": "engagement", "type": "engagement", "params": {"min_clicks": 5}}],
}

CASES = {
    # name: (scenario overrides, policy index)
    **{f"a-{i}": ({"policies": _POLICIES_A}, i) for i in range(len(_POLICIES_A))},
    # no warm-up, no impression rows, a crowded candidate pool (repeats in the draws), daily buckets
    "b-chronological": (_SMALL, 0),
    "b-engagement": (_SMALL, 1),
    # other user models: the peer simulators' components and one of the reader's own
    "c-lts": ({
        "catalog": {"n_items": 300, "upload_rate": "150/d", "clickbait": {"values": [0.0, 1.0]},
                    "length": {"median": "1h", "log_sd": 0.0}},
        "user_model": {"choice": "first_item", "response": "lts_engagement", "transition": "lts_exposure",
                       "value": "lts_kale", "relaxation": "none",
                       "session": {"type": "time_budget", "params": {"budget": "10m", "extension": 0.0}},
                       "churn": "never"},
        "policies": [{"name": "choc", "type": "attribute_oracle"}, "random"],
    }, 0),
    "c-ie": ({
        "catalog": {"n_items": 300, "upload_rate": "150/d", "length": {"median": "4m", "log_sd": 0.3},
                    "quality": {"base": 0.0, "slope": 0.0, "noise": 1.5, "min": -3.4, "max": 3.4}},
        "user_model": {"choice": {"type": "proportional", "params": {"score": "relevance"}},
                       "session": {"type": "time_budget", "params": {"budget": "30m", "min_budget": "1s"}},
                       "response": "budget_watch", "returns": {"type": "poisson", "params": {"rate": "3/d"}}},
        "policies": ["chronological"],
    }, 0),
    "c-cascade-patience": ({
        "user_model": {"choice": {"type": "cascade", "params": {"attention": 0.9}},
                       "session": {"type": "patience", "params": {"initial": 3}}},
        "policies": ["engagement_oracle"],
    }, 0),
    "c-own": ({
        "user_model": {"choice": {"type": "my_user_model:Satisficing", "params": {"aspiration": 3.0}}},
        "policies": ["engagement_oracle"],
    }, 0),
}


def _scenario(overrides: dict) -> dict:
    data = {**_BASE, "name": "golden"}
    for key, value in overrides.items():
        if isinstance(value, dict) and isinstance(data.get(key), dict):
            data[key] = {**data[key], **value}
        else:
            data[key] = value
    return data


def _sums(frame: pd.DataFrame) -> dict[str, float]:
    out = {}
    for name in frame.columns:
        values = frame[name].to_numpy()
        if values.dtype.kind in "fiub":
            out[name] = float(np.nansum(values.astype(float)))
    return out


def summary(case: str, tmp_path: Path, engine: str | None = None) -> dict:
    """What one case's run wrote, summarized (see the module docstring)."""
    overrides, index = CASES[case]
    data = _scenario(overrides)
    if engine is not None:
        data["engine"] = engine
    sc = scenario_from_dict(data)
    task = next(t for t in make_tasks(sc, tmp_path) if t.policy_index == index)
    result = run_task(task)
    name = sc.policies[index].name
    path = partition(tmp_path, "events", name, 0)
    events = pq.read_table(path).to_pandas() if path.exists() else pd.DataFrame({"event": []})
    kinds = events["event"].astype(str)
    metrics = pd.read_parquet(partition(tmp_path, "metrics", name, 0))
    users = pd.read_parquet(partition(tmp_path, "users", name, 0))
    return {
        "decisions": result.n_decisions,
        "events": result.n_events,
        "retrains": len(result.retrain_times),
        "event_counts": {kind: int(n) for kind, n in sorted(kinds.value_counts().items())},
        "event_sums": {f"{kind}.{col}": v for kind in sorted(set(kinds))
                       for col, v in _sums(events[kinds == kind].drop(columns=["event"])).items()},
        "metric_sums": {f"{metric}": float(np.nansum(group["value"].to_numpy()))
                        for metric, group in metrics.groupby("metric")},
        "user_sums": {f"{stage}.{col}": v for stage, group in users.groupby("stage")
                      for col, v in _sums(group.drop(columns=["stage"])).items()},
        "headline": {k: (None if math.isnan(v) else float(v)) for k, v in sorted(result.headline.items())},
    }


def compare(got: dict, expected: dict, where: str = "") -> list[str]:
    """Differences between two summaries: exact for counts, relative ``RTOL`` for sums."""
    problems = []
    if isinstance(expected, dict):
        if set(got) != set(expected):
            problems.append(f"{where}: keys differ: {sorted(set(got) ^ set(expected))}")
        for key in expected.keys() & got.keys():
            problems += compare(got[key], expected[key], f"{where}.{key}" if where else key)
    elif isinstance(expected, int) and not isinstance(expected, bool):
        if got != expected:
            problems.append(f"{where}: {got} != {expected}")
    elif expected is None or got is None:
        if got is not expected:
            problems.append(f"{where}: {got} != {expected}")
    elif not math.isclose(got, expected, rel_tol=RTOL, abs_tol=1e-12):
        problems.append(f"{where}: {got!r} != {expected!r}")
    return problems


def check_case(case: str, tmp_path: Path, engine: str | None = None) -> None:
    expected = json.loads(RECORD.read_text(encoding="utf-8"))[case]
    problems = compare(summary(case, tmp_path, engine), expected)
    assert not problems, f"{case}: outputs changed:\n  " + "\n  ".join(problems[:25])


@pytest.fixture
def user_code_on_path(monkeypatch):
    monkeypatch.syspath_prepend(str(SCENARIOS))


@pytest.mark.parametrize("case", sorted(CASES))
def test_outputs_match_the_recorded_summary(case, tmp_path, user_code_on_path):
    check_case(case, tmp_path)


def test_every_case_is_recorded_and_covers_every_kind_of_event():
    recorded = json.loads(RECORD.read_text(encoding="utf-8"))
    assert set(recorded) == set(CASES)
    kinds = set().union(*(r["event_counts"] for r in recorded.values()))
    assert {"session_start", "impression", "click", "watch", "session_end", "survey", "churn",
            "break", "retrain"} <= kinds, kinds


def test_the_comparison_tolerates_rounding_but_not_changes():
    base = {"n": 3, "s": {"x": 1.0, "y": None}}
    assert compare({"n": 3, "s": {"x": 1.0 + 1e-13, "y": None}}, base) == []
    assert compare({"n": 4, "s": {"x": 1.0, "y": None}}, base)
    assert compare({"n": 3, "s": {"x": 1.0 + 1e-6, "y": None}}, base)
    assert compare({"n": 3, "s": {"x": 1.0, "y": 2.0}}, base)


def test_topic_mix_and_running_sums_equal_sequential_sums():
    """The metrics collector sums a bucket's watches when it closes; the figures equal the
    running sums (+= per watch) they replace."""
    from recsim.metrics import MetricsCollector

    g = np.random.default_rng(2)
    topics = np.maximum(g.normal(size=(50, 6)), 0.0)
    m = MetricsCollector(8, 6, 0.4, topics)
    watches = [(int(g.integers(8)), float(g.exponential(200)), float(g.normal()), float(g.random()), int(g.integers(50)))
               for _ in range(400)]
    for i, (user, *rest) in enumerate(watches):  # ending one second apart, in list order
        m.on_watch_item(user, float(i), *rest)
    m.close_bucket(0.0, 86400.0)
    total, regret, ext, mixes, user_watch = 0.0, 0.0, 0.0, {}, [0.0] * 8
    for user, tau, value, e, item in watches:
        total += tau
        regret += tau if value < 0 else 0.0
        ext += tau * e
        user_watch[user] += tau
        if user in mixes:
            mixes[user] += tau * topics[item]
        else:
            mixes[user] = tau * topics[item]
    rows = {name: value for name, _, _, _, value in m.rows}
    assert rows["watch_minutes_per_user_day"] == total / 60.0 / 8
    assert rows["regret_minutes_per_user_day"] == regret / 60.0 / 8
    assert rows["consumed_extremeness"] == ext / total
    mix = np.array(list(mixes.values()))
    p = mix / mix.sum(axis=1, keepdims=True)
    with np.errstate(divide="ignore", invalid="ignore"):
        entropy = float((-np.where(p > 0, p * np.log(p), 0.0).sum(axis=1)).mean())
    assert rows["topic_entropy"] == entropy
    np.testing.assert_array_equal(m.user_watch, np.array(user_watch))


if __name__ == "__main__":  # re-record: python tests/test_engine_golden.py
    import tempfile

    sys.path.insert(0, str(SCENARIOS))
    out = {}
    for case in sorted(CASES):
        with tempfile.TemporaryDirectory() as tmp:
            out[case] = summary(case, Path(tmp))
        print(case, out[case]["event_counts"])
    RECORD.write_text(json.dumps(out, indent=1, sort_keys=True) + "\n", encoding="utf-8")
    print(f"wrote {RECORD}")
