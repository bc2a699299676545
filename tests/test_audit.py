"""Counterfactual-bot audits (recsim.audit, `recsim audit`): exact forks under common random
numbers, bots that follow their rule, and paired differences checked against direct
computations and synthetic cases with known answers."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
import yaml
from scipy import stats

from recsim.audit import audit_summary, counterfactual_bots, paired_differences
from recsim.config import ScenarioError, scenario_from_dict

AFTER = 4
DATA = {
    "name": "tiny_audit",
    "seed": 5,
    "horizon": "2d",
    "warmup": "1d",
    "replications": 2,
    "population": {"n_users": 30, "takeover": {"users": 10, "after_watches": AFTER, "rule": "top_item"}},
    "catalog": {"n_items": 400, "upload_rate": "100/d"},
    "recommender": {"slate_size": 5, "n_candidates": 40, "retrain_interval": "12h"},
    "policies": ["chronological", {"name": "engagement", "type": "engagement", "params": {"min_clicks": 5}}],
    "outputs": {"metrics_interval": "12h", "log_impressions": False},
}


@pytest.fixture(scope="module")
def trajectories():
    return counterfactual_bots(scenario_from_dict(DATA))


def test_the_arms_share_every_draw_until_the_fork(trajectories):
    """Under a policy that learns nothing from the logs, a forked user's watches before the
    fork are the same items at the same times in both arms (common random numbers)."""
    chrono = trajectories[trajectories["policy"] == "chronological"]
    wide = chrono.pivot_table(index=["replication", "user_id", "index"], columns="arm",
                              values=["item_id", "time"], observed=True).dropna()
    before = wide[wide.index.get_level_values("index") < AFTER]
    assert len(before) >= 20
    assert (before[("item_id", "user")] == before[("item_id", "bot")]).all()
    assert (before[("time", "user")] == before[("time", "bot")]).all()
    after = wide[wide.index.get_level_values("index") >= AFTER]
    assert (after[("item_id", "user")] != after[("item_id", "bot")]).any()


def test_bots_follow_their_rule_after_the_fork_only(trajectories):
    bots = trajectories[trajectories["arm"] == "bot"]
    assert (bots.loc[bots["index"] >= AFTER, "position"] == 1).all()
    users = trajectories[trajectories["arm"] == "user"]
    assert (users["position"] > 1).any()  # the users choose by the model: not always the top
    assert set(trajectories["user_id"]) <= set(range(10))


def test_paired_differences_match_a_direct_computation(trajectories):
    table = paired_differences(trajectories)
    row = table[(table["policy"] == "engagement") & (table["index"] == AFTER + 1)].iloc[0]
    t = trajectories[(trajectories["policy"] == "engagement") & (trajectories["index"] == AFTER + 1)]
    wide = t.pivot_table(index=["replication", "user_id"], columns="arm", values="true_extremeness",
                         observed=True).dropna()
    per_rep = (wide["bot"] - wide["user"]).groupby(level="replication").mean()
    assert row["difference"] == pytest.approx(per_rep.mean())
    half = stats.t.ppf(0.975, len(per_rep) - 1) * per_rep.std(ddof=1) / np.sqrt(len(per_rep))
    assert row["ci_high"] - row["difference"] == pytest.approx(half)
    assert row["n_pairs"] == len(wide) and row["n_replications"] == 2


def test_paired_differences_and_summary_on_a_known_answer():
    """Synthetic arms: the bot consumes the user's extremeness + 0.1 after the fork, the same
    before it: the difference is 0.1 (interval of width 0) after and 0 before."""
    rng = np.random.default_rng(0)
    rows = []
    for replication in range(3):
        for user in range(5):
            for index in range(6):
                x = float(rng.uniform())
                for arm, value in (("user", x), ("bot", x + (0.1 if index >= 3 else 0.0))):
                    rows.append({"policy": "p", "replication": replication, "arm": arm, "user_id": user,
                                 "index": index, "true_extremeness": value})
    frame = pd.DataFrame(rows)
    frame["arm"] = pd.Categorical(frame["arm"], ["user", "bot"])
    frame["policy"] = pd.Categorical(frame["policy"], ["p"])
    table = paired_differences(frame)
    np.testing.assert_allclose(table["difference"], [0, 0, 0, 0.1, 0.1, 0.1], atol=1e-12)
    np.testing.assert_allclose(table["ci_high"] - table["ci_low"], 0.0, atol=1e-12)
    summary = audit_summary(frame, after_watches=3).set_index("period")
    assert summary.loc["before fork", "difference"] == pytest.approx(0.0, abs=1e-12)
    assert summary.loc["after fork", "difference"] == pytest.approx(0.1)
    assert summary.loc["after fork", "n_pairs"] == 3 * 5 * 3


def test_a_bad_takeover_is_a_scenario_error():
    bad = {**DATA, "population": {"n_users": 30, "takeover": {"users": 31, "after_watches": 1}}}
    with pytest.raises(ScenarioError, match="population.takeover.users"):
        scenario_from_dict(bad)
    bad["population"]["takeover"] = {"users": 3, "after_watches": 1, "rule": "nope"}
    with pytest.raises(ScenarioError, match="population.takeover.rule"):
        scenario_from_dict(bad)


def test_recsim_audit_writes_its_folder_and_refuses_a_scenario_without_bots(tmp_path):
    data = {**DATA, "replications": 1, "policies": ["chronological"]}
    path = tmp_path / "audit.yaml"
    path.write_text(yaml.safe_dump(data))
    out = tmp_path / "out"
    done = subprocess.run([sys.executable, "-m", "recsim", "audit", path, "--out", out, "-q"],
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert {"trajectories.parquet", "differences.csv", "summary.csv", "manifest.json"} <= {p.name for p in out.iterdir()}
    assert "after fork" in done.stdout
    data["population"].pop("takeover")
    path.write_text(yaml.safe_dump(data))
    refused = subprocess.run([sys.executable, "-m", "recsim", "audit", path, "--out", tmp_path / "x"],
                             capture_output=True, text=True)
    assert refused.returncode == 2 and "population.takeover" in refused.stderr and "Traceback" not in refused.stderr
