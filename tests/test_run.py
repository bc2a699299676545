"""Whole runs: the CLI end to end, the run folder's tables, atomic writes."""

from __future__ import annotations

import json
import subprocess
import sys

import pandas as pd
import pytest
import yaml

from recsim.config import scenario_from_dict
from recsim.eventlog import EVENT_SCHEMA
from recsim.experiment import run_experiment
from recsim.metrics import HEADLINE
from recsim.policies.base import Policy


def _write(tmp_path, data, name="scenario.yaml"):
    path = tmp_path / name
    path.write_text(yaml.safe_dump(data))
    return path


def test_cli_run_writes_a_complete_run_folder(tiny, tmp_path):
    tiny["replications"] = 2
    scenario = _write(tmp_path, tiny)
    out = tmp_path / "run"
    proc = subprocess.run(
        [sys.executable, "-m", "recsim", "run", str(scenario), "--out", str(out), "--workers", "2"],
        capture_output=True, text=True, timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    assert str(out) in proc.stdout.replace("\n", "")
    assert "engagement_oracle" in proc.stdout and "watch" in proc.stdout

    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["status"] == "complete"
    assert manifest["seed"] == tiny["seed"]
    assert {p["name"]: p["oracle"] for p in manifest["policies"]} == {
        "random": False, "chronological": False, "popularity": False,
        "engagement_oracle": True, "wellbeing_oracle": True,
    }
    assert len(manifest["tasks"]) == 10 and manifest["wall_seconds"] > 0
    resolved = yaml.safe_load((out / "scenario.yaml").read_text())
    assert scenario_from_dict(resolved).model_dump() == scenario_from_dict(tiny).model_dump()

    events = pd.read_parquet(out / "events")
    assert set(events.columns) == {f.name for f in EVENT_SCHEMA} | {"policy", "replication"}
    assert set(events["policy"].astype(str)) == {p for p in tiny["policies"]}
    assert set(events["replication"].astype(int)) == {0, 1}
    assert set(events["event"].astype(str)) >= {"session_start", "impression", "click", "watch", "session_end"}

    oracles = {"engagement_oracle", "wellbeing_oracle"}
    assert (events["oracle"] == events["policy"].astype(str).isin(oracles)).all()
    metrics = pd.read_parquet(out / "metrics")
    assert (metrics["oracle"] == metrics["policy"].astype(str).isin(oracles)).all()
    assert {"policy", "replication", "metric", "kind", "start", "end", "value"} <= set(metrics.columns)
    users = pd.read_parquet(out / "users")
    assert (users["oracle"] == users["policy"].astype(str).isin(oracles)).all()
    assert set(users["stage"]) == {"initial", "final"}
    assert {"appetite", "wellbeing", "topic_drift", "churned", "watch_minutes", "vulnerable"} <= set(users.columns)
    assert len(users) == 2 * 2 * 5 * tiny["population"]["n_users"]

    summary = pd.read_csv(out / "summary.csv")
    assert list(summary["policy"]) == tiny["policies"]
    assert summary.set_index("policy")["oracle"].to_dict()["engagement_oracle"]
    for metric in HEADLINE:
        assert {metric, f"{metric}_ci_low", f"{metric}_ci_high"} <= set(summary.columns)
    row = summary.iloc[0]
    assert row["watch_minutes_per_user_day_ci_low"] <= row["watch_minutes_per_user_day"] <= row["watch_minutes_per_user_day_ci_high"]
    reps = pd.read_csv(out / "replications.csv")
    assert len(reps) == 10
    assert summary.set_index("policy").loc["random", "watch_minutes_per_user_day"] == pytest.approx(
        reps[reps.policy == "random"]["watch_minutes_per_user_day"].mean()
    )
    assert not list(tmp_path.glob(".*.partial"))


def test_existing_run_folder_is_not_overwritten(tiny, tmp_path):
    sc = scenario_from_dict({**tiny, "policies": ["random"]})
    out = tmp_path / "run"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    from recsim.storage import RunFolderExists

    with pytest.raises(RunFolderExists):
        run_experiment(sc, out)
    assert (out / "keep.txt").read_text() == "mine"
    # --overwrite replaces only a recsim output folder: never a folder of the user's own
    with pytest.raises(RunFolderExists, match="not a recsim output folder"):
        run_experiment(sc, out, overwrite=True, workers=1)
    assert (out / "keep.txt").read_text() == "mine"
    done = tmp_path / "done"
    run_experiment(sc, done, workers=1)
    (done / "stale.txt").write_text("from the earlier run")
    with pytest.raises(RunFolderExists):
        run_experiment(sc, done)
    run_experiment(sc, done, overwrite=True, workers=1)
    assert not (done / "stale.txt").exists()
    assert json.loads((done / "manifest.json").read_text())["status"] == "complete"


class ExplodingPolicy(Policy):
    """Fails part-way through a run, as a buggy user policy would."""

    def recommend(self, request, rng):
        if request.now > 3600:
            raise RuntimeError("boom")
        return request.candidates[: request.slate_size]


def test_failed_run_never_looks_complete(tiny, tmp_path):
    sc = scenario_from_dict({**tiny, "policies": ["random", {"type": "tests.test_run:ExplodingPolicy", "name": "boom"}]})
    out = tmp_path / "run"
    with pytest.raises(RuntimeError, match="boom"):
        run_experiment(sc, out, workers=1)
    assert not out.exists()
    partial = tmp_path / ".run.partial"
    manifest = json.loads((partial / "manifest.json").read_text())
    assert manifest["status"] == "failed"
    assert "boom" in manifest["error"]
    assert not (partial / "summary.csv").exists()


def test_default_run_folder_is_under_runs(tiny, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    sc = scenario_from_dict({**tiny, "policies": ["random"]})
    path = run_experiment(sc, workers=1)
    assert path.parent.name == "runs" and path.name.startswith("tiny-")
    assert (tmp_path / path / "summary.csv").exists()


def test_public_api_is_explicit():
    import recsim

    assert sorted(recsim.__all__) == sorted(
        [
            "__version__", "Scenario", "PolicySpec", "ScenarioError", "load_scenario",
            "scenario_from_dict", "run_experiment", "Policy", "PolicyContext", "Request",
            "History", "CandidateFeatures", "Feedback", "FunctionPolicy", "BUILTIN_POLICIES",
        ]
    )
    for name in recsim.__all__:
        assert hasattr(recsim, name)


def test_only_the_engine_imports_simpy():
    from pathlib import Path

    import recsim

    root = Path(recsim.__file__).parent
    importers = {
        p.relative_to(root).as_posix()
        for p in root.rglob("*.py")
        if "import simpy" in p.read_text() or "from simpy" in p.read_text()
    }
    assert importers and all(p.startswith("engine/") for p in importers)


def test_no_global_random_state_is_used():
    from pathlib import Path

    import recsim

    root = Path(recsim.__file__).parent
    for p in root.rglob("*.py"):
        text = p.read_text()
        assert "np.random.seed" not in text and "import random\n" not in text, p
        for call in ("np.random.rand(", "np.random.normal(", "np.random.choice(", "np.random.random("):
            assert call not in text, (p, call)


def test_ctrl_c_leaves_no_complete_folder(tiny, tmp_path):
    """Ctrl-C part-way: exit 130, no run folder, the .partial folder's manifest says
    'interrupted', and no traceback."""
    import signal
    import time

    tiny.update(horizon="30d", replications=2)
    tiny["population"]["n_users"] = 60
    scenario = _write(tmp_path, tiny)
    out = tmp_path / "run"
    partial = tmp_path / ".run.partial"
    proc = subprocess.Popen(
        [sys.executable, "-m", "recsim", "run", str(scenario), "--out", str(out), "--workers", "2"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    deadline = time.monotonic() + 60
    while not (partial / "manifest.json").exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    time.sleep(2.0)
    assert proc.poll() is None, "the run finished before it could be interrupted"
    proc.send_signal(signal.SIGINT)
    _, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 130
    assert "Traceback" not in stderr and "interrupted" in stderr
    assert not out.exists()
    assert json.loads((partial / "manifest.json").read_text())["status"] == "interrupted"


def test_builtin_policy_names_match_the_registry():
    from recsim.policies.registry import BUILTIN_POLICIES, _builtins

    assert BUILTIN_POLICIES == tuple(_builtins())
