"""Every shipped scenario validates, and runs end to end at a tiny size through the CLI."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from recsim.config import load_scenario

SCENARIOS = sorted(Path("scenarios").glob("*.yaml"))
TINY = [
    "population.n_users=6",
    "horizon=1d",
    "warmup=1d",
    "replications=1",
    "catalog.n_items=300",
    "recommender.n_candidates=30",
    "recommender.slate_size=5",
]

#: what a scenario needs besides TINY to fit 6 users (the audit forks at most n_users users)
TINY_EXTRA = {"audit": ["population.takeover.users=3"]}


def test_there_are_scenarios():
    assert {p.name for p in SCENARIOS} >= {"baseline.yaml", "rabbit_hole.yaml", "custom_policy.yaml"}


@pytest.mark.parametrize("path", SCENARIOS, ids=[p.stem for p in SCENARIOS])
def test_scenario_validates(path):
    sc = load_scenario(path)
    assert sc.name == path.stem


@pytest.mark.parametrize("path", SCENARIOS, ids=[p.stem for p in SCENARIOS])
def test_scenario_runs_at_a_tiny_size(path, tmp_path):
    out = tmp_path / "run"
    args = [sys.executable, "-m", "recsim", "run", str(path), "--out", str(out), "--workers", "1", "-q"]
    for override in [*TINY, *TINY_EXTRA.get(path.stem, [])]:
        args += ["--set", override]
    proc = subprocess.run(args, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["status"] == "complete"
    summary = pd.read_csv(out / "summary.csv")
    assert list(summary["policy"]) == [p.name for p in load_scenario(path).policies]
    assert (summary["watch_minutes_per_user_day"] >= 0).all()


def test_custom_policy_runs_from_another_working_directory(tmp_path):
    """The user's module is found next to the scenario file, whatever the working directory."""
    out = tmp_path / "run"
    scenario = Path("scenarios/custom_policy.yaml").resolve()
    args = [sys.executable, "-m", "recsim", "run", str(scenario), "--out", str(out), "--workers", "2", "-q"]
    for override in TINY:
        args += ["--set", override]
    proc = subprocess.run(args, capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    events = pd.read_parquet(out / "events")
    assert "relevant_and_mild" in set(events["policy"].astype(str))


def test_a_function_named_in_a_scenario_is_a_policy(tmp_path):
    """``type: "module:function"`` wraps the function with the FunctionPolicy adapter."""
    (tmp_path / "fpol.py").write_text(
        "def newest_first(request, rng):\n"
        "    order = (-request.features.upload_time).argsort()\n"
        "    return request.candidates[order[: request.slate_size]]\n"
    )
    scenario = tmp_path / "s.yaml"
    scenario.write_text("name: f\npolicies: [{name: newest, type: 'fpol:newest_first'}]\n")
    out = tmp_path / "run"
    args = [sys.executable, "-m", "recsim", "run", str(scenario), "--out", str(out), "-q", "--workers", "1"]
    for override in TINY:
        args += ["--set", override]
    proc = subprocess.run(args, capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert (pd.read_parquet(out / "events")["event"] == "watch").any()


def test_example_user_policy_passes_the_conformance_check():
    import importlib

    from recsim.testing import check_policy

    sys.path.insert(0, str(Path("scenarios").resolve()))
    try:
        module = importlib.import_module("my_policies")
        check_policy(module.RelevantAndMild(penalty=1.0))
    finally:
        sys.path.remove(str(Path("scenarios").resolve()))
