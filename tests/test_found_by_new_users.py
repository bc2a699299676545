"""Cases a new user found by trying recsim (kept as tests): duplicate keys, a policy that ends
the process or raises BaseException at start-up, and the time reported for a failure inside a
batch of requests."""

from __future__ import annotations

import re
import subprocess
import sys
import textwrap

import pytest
import yaml

TINY = {
    "name": "found",
    "seed": 3,
    "horizon": "1d",
    "warmup": "0s",
    "replications": 1,
    "workers": 1,
    "population": {"n_users": 12},
    "catalog": {"n_items": 300, "upload_rate": "100/d"},
    "recommender": {"slate_size": 5, "n_candidates": 30, "retrain_interval": "12h"},
}


def _recsim(*args, cwd):
    return subprocess.run([sys.executable, "-m", "recsim", *map(str, args)], capture_output=True, text=True,
                          cwd=cwd, timeout=300)


def test_a_key_given_twice_is_an_error_naming_both_lines(tmp_path):
    path = tmp_path / "dup.yaml"
    path.write_text("name: x\nseed: 1\npolicies: [random]\nseed: 2\n")
    result = _recsim("validate", path, cwd=tmp_path)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "duplicate key 'seed' (first given at line 2)" in result.stderr and "line 4" in result.stderr
    nested = tmp_path / "nested.yaml"
    nested.write_text("name: x\npolicies: [random]\npopulation:\n  n_users: 5\n  n_users: 6\n")
    assert "duplicate key 'n_users'" in _recsim("validate", nested, cwd=tmp_path).stderr


POLICIES = textwrap.dedent("""
    import os
    from recsim.policies.base import Policy

    class OsExit(Policy):
        def recommend(self, request, rng):
            os._exit(4)

    class Base(Policy):
        def recommend(self, request, rng):
            raise BaseException("base")

    class SaysDask(Policy):
        def recommend(self, request, rng):
            if request.now > 3600.0 * 6:  # after check_policy's requests (about the first 2 h)
                raise RuntimeError("my Dask-free policy failed")
            return request.candidates[: request.slate_size]

    class Late(Policy):
        def recommend(self, request, rng):
            if request.now > 3600.0 * 6:
                raise ValueError("late")
            return request.candidates[: request.slate_size]
""")


@pytest.mark.parametrize("cls, fragment", [("OsExit", "called os._exit(4)"), ("Base", "raised BaseException: base")])
def test_a_policy_ending_the_process_at_start_up_is_a_scenario_error(tmp_path, cls, fragment):
    (tmp_path / "bad_policies.py").write_text(POLICIES)
    path = tmp_path / "s.yaml"
    path.write_text(yaml.safe_dump({**TINY, "policies": ["random", {"name": "m", "type": f"bad_policies:{cls}"}]}))
    for command in ("validate", "run"):
        result = _recsim(command, path, "--out", tmp_path / "out", cwd=tmp_path) if command == "run" else \
            _recsim(command, path, cwd=tmp_path)
        assert result.returncode == 2, (command, result.stderr)
        assert "policies.1.type" in result.stderr and fragment in result.stderr and "bad_policies.py" in result.stderr
        assert "Traceback" not in result.stderr
    assert not (tmp_path / "out").exists()


def test_a_failure_inside_a_batch_gives_the_batchs_time_span_not_a_wrong_time(tmp_path):
    (tmp_path / "bad_policies.py").write_text(POLICIES)
    data = {**TINY, "policies": [{"name": "late", "type": "bad_policies:Late"}]}
    path = tmp_path / "s.yaml"
    path.write_text(yaml.safe_dump(data))
    batched = _recsim("run", path, "--out", tmp_path / "b", "-q", cwd=tmp_path)
    assert batched.returncode == 1 and "late" in batched.stderr
    assert "in a batch of" in batched.stderr and "replication 0, at simulated" not in batched.stderr
    data["engine"] = "reference"
    path.write_text(yaml.safe_dump(data))
    reference = _recsim("run", path, "--out", tmp_path / "r", "-q", cwd=tmp_path)
    assert reference.returncode == 1
    # the reference engine names the failing request's time: past the policy's 6 h threshold,
    # and inside the batch the batched engine reported
    hours = [int(h) * 3600 + int(m) * 60 + int(s) for h, m, s in re.findall(r"0d (\d\d):(\d\d):(\d\d)", reference.stderr)]
    span = [int(h) * 3600 + int(m) * 60 + int(s) for h, m, s in re.findall(r"0d (\d\d):(\d\d):(\d\d)", batched.stderr)]
    assert len(hours) == 1 and len(span) == 2 and hours[0] > 6 * 3600 and span[0] <= hours[0] <= span[1]


def test_an_empty_section_takes_its_defaults(tmp_path):
    from recsim.config import load_scenario

    path = tmp_path / "empty.yaml"
    path.write_text("name: x\npolicies: [random]\npopulation:\nbehaviour:\n  choice:\noutputs:\n")
    sc = load_scenario(path)
    assert sc.population.n_users == 500 and sc.behaviour.choice.beta == 2.0
    path.write_text("name: x\npolicies:\n")  # a required list left empty is still an error
    result = _recsim("validate", path, cwd=tmp_path)
    assert result.returncode == 2 and "policies" in result.stderr


def test_an_error_of_user_code_mentioning_dask_is_a_run_failure_not_bad_input(tmp_path):
    """Cluster set-up errors are recognized by type, not by the word "Dask" in a message."""
    (tmp_path / "bad_policies.py").write_text(POLICIES)
    path = tmp_path / "s.yaml"
    path.write_text(yaml.safe_dump({**TINY, "policies": [{"name": "d", "type": "bad_policies:SaysDask"}]}))
    result = _recsim("run", path, "--out", tmp_path / "o", "-q", cwd=tmp_path)
    assert result.returncode == 1 and "my Dask-free policy failed" in result.stderr


def test_running_again_without_resume_does_not_discard_finished_tasks(tmp_path):
    """A failed (or interrupted) run's finished tasks are kept: running the same command again
    without --resume is refused with what to do, and --overwrite discards them on purpose."""
    (tmp_path / "bad_policies.py").write_text(POLICIES)
    path = tmp_path / "s.yaml"
    path.write_text(yaml.safe_dump({**TINY, "policies": ["random", {"name": "late", "type": "bad_policies:Late"}]}))
    out = tmp_path / "run"
    first = _recsim("run", path, "--out", out, "-q", "--workers", "1", cwd=tmp_path)
    assert first.returncode == 1
    marker = tmp_path / ".run.partial" / "_tasks" / "random-rep0.json"
    assert marker.exists()
    again = _recsim("run", path, "--out", out, "-q", "--workers", "1", cwd=tmp_path)
    assert again.returncode == 2 and "pass --resume" in again.stderr and "1 finished task(s)" in again.stderr
    assert marker.exists() and "Traceback" not in again.stderr
    fresh = _recsim("run", path, "--out", out, "-q", "--workers", "1", "--overwrite", cwd=tmp_path)
    assert fresh.returncode == 1 and "late" in fresh.stderr  # ran afresh (and failed the same way)


def test_a_rate_without_a_unit_that_cannot_fit_says_it_is_per_second(tmp_path):
    path = tmp_path / "rate.yaml"
    path.write_text("name: x\npolicies: [random]\ncatalog: {upload_rate: 150}\n")
    result = _recsim("validate", path, cwd=tmp_path)
    assert result.returncode == 2 and "catalog.upload_rate" in result.stderr
    assert "without a unit is per second" in " ".join(result.stderr.split())


def test_debug_shows_the_traceback_of_a_start_up_check_failure(tmp_path):
    (tmp_path / "bad_policies.py").write_text(POLICIES)
    path = tmp_path / "s.yaml"
    path.write_text(yaml.safe_dump({**TINY, "policies": [{"name": "m", "type": "bad_policies:Base"}]}))
    plain = _recsim("validate", path, cwd=tmp_path)
    debug = _recsim("validate", path, "--debug", cwd=tmp_path)
    assert plain.returncode == debug.returncode == 2
    assert "Traceback" not in plain.stderr
    assert "Traceback (most recent call last)" in debug.stderr and 'raise BaseException("base")' in debug.stderr


# ---------------------------------------------------------------------------- second trial
def test_overwrite_never_deletes_what_is_not_a_run_folder(tmp_path):
    path = tmp_path / "s.yaml"
    path.write_text(yaml.safe_dump({**TINY, "policies": ["random"]}))
    mine = tmp_path / "mydata"
    mine.mkdir()
    (mine / "thesis.tex").write_text("x")
    result = _recsim("run", path, "--out", mine, "--overwrite", "-q", cwd=tmp_path)
    assert result.returncode == 2 and "not a recsim output folder" in result.stderr
    assert (mine / "thesis.tex").read_text() == "x"
    (tmp_path / "afile").write_text("y")
    assert _recsim("run", path, "--out", tmp_path / "afile", "--overwrite", "-q", cwd=tmp_path).returncode == 2
    here = _recsim("run", path, "--out", ".", "--overwrite", "-q", cwd=tmp_path)
    assert here.returncode == 2 and "working folder" in here.stderr and not (tmp_path / "..partial").exists()


def test_resume_names_what_changed_in_the_scenario_and_in_imported_helpers(tmp_path):
    (tmp_path / "helper_mod.py").write_text("SCALE = 1.0\n")
    (tmp_path / "pols.py").write_text(textwrap.dedent("""
        import helper_mod
        from recsim.policies.base import Policy

        class Helped(Policy):
            def recommend(self, request, rng):
                if request.now > 3600.0 * 6 * helper_mod.SCALE:
                    raise ValueError("stop here")
                return request.candidates[: request.slate_size]
    """))
    path = tmp_path / "s.yaml"
    path.write_text(yaml.safe_dump({**TINY, "policies": ["random", {"name": "h", "type": "pols:Helped"}]}))
    out = tmp_path / "run"
    assert _recsim("run", path, "--out", out, "-q", "--workers", "1", cwd=tmp_path).returncode == 1
    changed = _recsim("run", path, "--out", out, "-q", "--resume", "--seed", "9", cwd=tmp_path)
    assert changed.returncode == 2 and "seed: 3 → 9" in changed.stderr and "--overwrite" in changed.stderr
    (tmp_path / "helper_mod.py").write_text("SCALE = 50.0\n")
    helper = _recsim("run", path, "--out", out, "-q", "--resume", cwd=tmp_path)
    assert helper.returncode == 2 and "helper_mod" in helper.stderr


def test_a_replaying_bot_replays_from_the_fork_and_its_items_are_checked():
    from recsim.audit import counterfactual_bots
    from recsim.config import ScenarioError, scenario_from_dict

    data = {**TINY, "horizon": "2d", "warmup": "1d", "replications": 1, "policies": ["chronological"],
            "population": {"n_users": 20, "takeover": {"users": 5, "after_watches": 2, "rule": "replay",
                                                       "params": {"items": [7, 8, 9]}}}}
    trajectories = counterfactual_bots(scenario_from_dict(data))
    bots = trajectories[(trajectories["arm"] == "bot")]
    checked = 0
    for _, mine in bots.groupby(["replication", "user_id"]):
        if len(mine) >= 5:
            assert mine["item_id"].tolist()[2:5] == [7, 8, 9] and (mine["position"].to_numpy()[2:5] == 0).all()
            checked += 1
    assert checked >= 2
    data["population"]["takeover"]["params"] = {"items": [10 ** 6]}
    with pytest.raises(ScenarioError, match="population.takeover.params.items"):
        scenario_from_dict(data)


def test_report_on_an_audit_folder_is_one_line_and_an_audit_that_forks_nobody_warns(tmp_path):
    data = {**TINY, "horizon": "1d", "warmup": "0s", "policies": ["chronological"],
            "population": {"n_users": 10, "takeover": {"users": 3, "after_watches": 10 ** 9}}}
    path = tmp_path / "a.yaml"
    path.write_text(yaml.safe_dump(data))
    audit = _recsim("audit", path, "--out", tmp_path / "a", "-q", cwd=tmp_path)
    assert audit.returncode == 0 and "nothing was forked" in audit.stderr
    report = _recsim("report", tmp_path / "a", cwd=tmp_path)
    assert report.returncode == 2 and "audit folder" in report.stderr and "Traceback" not in report.stderr
    ran = _recsim("run", path, "--out", tmp_path / "r", "-q", "--no-report", cwd=tmp_path)
    assert ran.returncode == 0 and "bot arm alone" in ran.stderr
