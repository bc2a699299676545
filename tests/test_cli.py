"""The command line as a user meets it: real subprocesses, real exit codes, real stderr.

Each call costs about a second (interpreter start plus imports), so the cases are chosen to
cover each documented error once rather than every variant (tests/test_config.py covers those).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from importlib import metadata
from pathlib import Path

import pytest

from recsim.config import scenario_json_schema

ROOT = Path(__file__).resolve().parents[1]
BASELINE = ROOT / "scenarios" / "baseline.yaml"
BUILTINS = ("random", "chronological", "popularity", "engagement_oracle", "wellbeing_oracle")
TINY_RUN = [
    "--set", "population.n_users=5", "--set", "horizon=1d", "--set", "warmup=0",
    "--set", "catalog.n_items=300", "--set", "recommender.n_candidates=50",
    "--set", "replications=1", "--workers", "1",
]
MAX_ERROR_LINES = 24  # one screen


def recsim(*args: str, cwd: Path | None = None, command: list[str] | None = None):
    """Run ``python -m recsim ARGS`` (or ``command``) as a user would from ``cwd``."""
    env = {k: v for k, v in os.environ.items() if k not in ("FORCE_COLOR", "COLUMNS", "LINES")}
    env["NO_COLOR"] = "1"
    return subprocess.run(
        [*(command or [sys.executable, "-m", "recsim"]), *map(str, args)],
        check=False,
        cwd=cwd or ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def assert_bad_input(result, *fragments: str) -> None:
    """Exit code 2, a short message on stderr with every fragment, no traceback."""
    err = result.stderr
    assert result.returncode == 2, (result.returncode, err)
    assert "Traceback" not in err and "Traceback" not in result.stdout, err
    assert len(err.strip().splitlines()) <= MAX_ERROR_LINES, err
    assert err.lstrip().lower().startswith("error"), err
    for fragment in fragments:
        assert fragment in err, f"{fragment!r} not in stderr:\n{err}"


def write(tmp_path: Path, text: str, name: str = "scenario.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


# ============================================================================ validation errors
# The scenario is passed as a relative path from its folder, as users type it; the long
# absolute path case is test_long_file_path_is_printed_whole below.
@pytest.mark.parametrize(
    ("body", "fragments"),
    [
        pytest.param(
            "name: t\npolicies: [random]\npopulation:\n  n_userz: 5\n",
            ["population.n_userz", "did you mean 'n_users'"],
            id="misspelt-key",
        ),
        pytest.param(
            "name: t\npolicies: [random]\nhorizon: 14d\nbehaviour:\n  allure:\n    w_r: strong\n",
            ["behaviour.allure.w_r", "valid number", "strong"],
            id="wrong-type",
        ),
        pytest.param(
            "name: t\npolicies: [random]\ncatalog:\n  n_items: -3\n",
            ["catalog.n_items", "greater than or equal to 1", "-3"],
            id="negative-size",
        ),
        pytest.param(
            "name: t\npolicies:\n  - random\n  - engagment_oracle\n",
            ["policies.1.type", "unknown policy 'engagment_oracle'", "engagement_oracle"],
            id="unknown-policy",
        ),
        pytest.param(
            "name: t\npolicies:\n  - random\n population:\n  n_users: 3\n",
            ["malformed YAML", "line 4"],
            id="malformed-yaml",
        ),
        pytest.param(
            'name: t\npolicies:\n  - {name: mine, type: "no_such_module_xyz:MyPolicy"}\n',
            ["policies.0.type", "cannot import module 'no_such_module_xyz'"],
            id="module-not-importable",
        ),
        pytest.param(
            'name: t\npolicies:\n  - {name: mine, type: "recsim.policies.builtin:NoSuchPolicy"}\n',
            ["policies.0.type", "NoSuchPolicy"],
            id="class-not-in-module",
        ),
        pytest.param(
            "name: t\npolicies:\n  - random\n  - type: popularity\n    params: {half_lif: 2d}\n",
            ["policies.1.params.half_lif", "half_life"],
            id="wrong-policy-param",
        ),
    ],
)
def test_invalid_scenario_gives_a_short_clear_error(tmp_path, body, fragments):
    write(tmp_path, body)
    result = recsim("validate", "scenario.yaml", cwd=tmp_path)
    assert_bad_input(result, "scenario.yaml", *fragments)
    assert result.stdout == ""


def test_missing_file(tmp_path):
    result = recsim("validate", "no_such_scenario.yaml", cwd=tmp_path)
    assert_bad_input(result, "no_such_scenario.yaml", "not found")


def test_user_policy_module_next_to_the_scenario(tmp_path):
    # `python -m recsim` imports modules from the working directory; a wrong parameter of a
    # user's own policy class is reported at its path like a built-in's.
    write(
        tmp_path,
        "from pydantic import BaseModel, ConfigDict\n"
        "from recsim.policies.base import Policy\n\n"
        "class TopParams(BaseModel):\n"
        "    model_config = ConfigDict(extra='forbid')\n"
        "    k: int = 3\n\n"
        "class Top(Policy):\n"
        "    Params = TopParams\n\n"
        "    def recommend(self, request, rng):\n"
        "        return request.candidates[: request.slate_size]\n",
        name="my_policies.py",
    )
    write(
        tmp_path,
        "name: t\npolicies:\n  - {name: top2, type: 'my_policies:Top', params: {k: 2}}\n"
        "  - {name: top3, type: 'my_policies:Top', params: {k: three}}\n",
    )
    result = recsim("validate", "scenario.yaml", cwd=tmp_path)
    assert_bad_input(result, "scenario.yaml", "policies.1.params.k")
    assert "policies.0" not in result.stderr


def test_console_script_imports_user_policy_from_working_directory(tmp_path):
    script = Path(sys.executable).with_name("recsim")
    if not script.exists():  # the console script must be installed beside the interpreter
        raise FileNotFoundError(script)
    write(
        tmp_path,
        "from recsim.policies.base import Policy\n\n"
        "class Mine(Policy):\n"
        "    def recommend(self, request, rng):\n"
        "        return request.candidates[: request.slate_size]\n",
        name="my_policies.py",
    )
    write(tmp_path, "name: t\npolicies:\n  - {name: mine, type: 'my_policies:Mine'}\n")
    result = recsim("validate", "scenario.yaml", cwd=tmp_path, command=[str(script)])
    assert result.returncode == 0, result.stderr


def test_long_file_path_is_printed_whole(tmp_path):
    folder = tmp_path / ("a_long_folder_name_" * 4)
    folder.mkdir()
    path = write(folder, "name: t\npolicies: [random]\npopulation:\n  n_userz: 5\n")
    result = recsim("validate", path)
    assert_bad_input(result, str(path), "population.n_userz")


# ============================================================================ --set
@pytest.mark.parametrize(
    ("override", "fragments"),
    [
        pytest.param(
            "population.n_users", ["population.n_users", "dotted.key=value"], id="no-equals"
        ),
        pytest.param("policies.9.name=x", ["policies.9", "no list item"], id="bad-index"),
        pytest.param(
            "population.n_userz=5",
            ["population.n_userz", "did you mean 'n_users'"],
            id="unknown-key",
        ),
    ],
)
def test_invalid_override(override, fragments):
    result = recsim("validate", BASELINE, "--set", override)
    assert_bad_input(result, str(BASELINE.name), *fragments)


def test_override_changes_what_validate_reports():
    result = recsim(
        "validate", BASELINE, "--set", "population.n_users=42", "--set", "horizon=3d"
    )
    assert result.returncode == 0, result.stderr
    assert "42 users" in result.stdout
    assert "horizon 3 d" in result.stdout


# ============================================================================ run
def test_run_refuses_an_existing_out_folder(tmp_path):
    out = tmp_path / "existing"
    out.mkdir()
    (out / "notes.txt").write_text("keep me", encoding="utf-8")
    result = recsim("run", BASELINE, "--out", out, "--quiet", *TINY_RUN, cwd=tmp_path)
    assert_bad_input(result, "existing", "already exists", "--overwrite")
    assert sorted(p.name for p in out.iterdir()) == ["notes.txt"]
    assert (out / "notes.txt").read_text(encoding="utf-8") == "keep me"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["existing"]


def test_run_with_an_invalid_scenario_writes_nothing(tmp_path):
    write(tmp_path, "name: t\npolicies: [random]\ncatalog:\n  n_items: -3\n")
    result = recsim("run", "scenario.yaml", "--out", "out", cwd=tmp_path)
    assert_bad_input(result, "scenario.yaml", "catalog.n_items")
    assert not (tmp_path / "out").exists()


# ============================================================================ other commands
def test_version():
    result = recsim("--version")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"recsim {metadata.version('recsim-engagement')}"


def test_help_lists_the_commands():
    result = recsim("--help")
    assert result.returncode == 0, result.stderr
    for command in ("run", "validate", "schema", "policies"):
        assert command in result.stdout


def test_validate_baseline():
    result = recsim("validate", "scenarios/baseline.yaml")
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    assert "baseline" in result.stdout
    assert "random, chronological, engagement_oracle, wellbeing_oracle" in result.stdout


def test_schema_prints_the_json_schema():
    result = recsim("schema")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == scenario_json_schema()


def test_policies_lists_the_builtins():
    result = recsim("policies")
    assert result.returncode == 0, result.stderr
    for name in BUILTINS:
        assert name in result.stdout
    assert "half_life" in result.stdout


def test_components_lists_every_built_in_component_by_role():
    from recsim.users.model import builtin_components

    result = recsim("components")
    assert result.returncode == 0, result.stderr
    for role, names in builtin_components().items():
        assert role in result.stdout
        for name in names:
            assert name in result.stdout, name
    assert "from `behaviour.choice`" in result.stdout  # where the default's parameters live
    assert "no_click_mass" in result.stdout


def test_validate_names_the_user_model():
    result = recsim("validate", "scenarios/custom_user_model.yaml")
    assert result.returncode == 0, result.stderr
    assert "user model: default, with choice=my_user_model:Satisficing" in result.stdout
    baseline = recsim("validate", "scenarios/baseline.yaml").stdout
    assert "user model: default\n" in baseline
    assert "slates of 10 from 200 candidates per request; watched items left out" in baseline
    assert "watched items can be served again" in recsim(
        "validate", "scenarios/baseline.yaml", "--set", "recommender.exclude_watched=false").stdout


def test_validate_notes_a_catalog_a_heavy_user_could_run_dry():
    """The baseline's catalog (81,500 items over 21 days: a heavy user's 420 watches are 0.5%)
    gets no note; the former default (8,150 items: 5%) does, naming the fix; with watched items
    allowed again, no note."""
    assert "heavy user" not in recsim("validate", "scenarios/baseline.yaml").stdout
    small = ["--set", "catalog.n_items=5000", "--set", "catalog.upload_rate=150/d"]
    out = " ".join(recsim("validate", "scenarios/baseline.yaml", *small).stdout.split())
    assert "note: a heavy user can watch about 420 items over the run (20 a day), 5% of the 8,150" in out
    assert "catalog.n_items" in out and "recommender.exclude_watched: false" in out
    off = recsim("validate", "scenarios/baseline.yaml", *small, "--set", "recommender.exclude_watched=false")
    assert "heavy user" not in off.stdout


def test_help_and_validate_load_neither_the_engines_nor_scipy_stats():
    """`recsim --help` and `recsim validate` simulate nothing: they must not pay for importing
    the engines, the statistics (SciPy's stats) and the analysis (about 2 s of a 3 s start)."""
    heavy = ("recsim.engine.core", "recsim.experiment", "recsim.analysis", "recsim.stats", "scipy.stats", "simpy")
    script = (
        "import sys\n"
        "from typer.testing import CliRunner\n"
        "from recsim.cli import app\n"
        "for args in (['--help'], ['validate', sys.argv[1]]):\n"
        "    result = CliRunner().invoke(app, args)\n"
        "    assert result.exit_code == 0, result.output\n"
        f"print(sorted(m for m in {heavy!r} if m in sys.modules))\n"
    )
    out = recsim(str(BASELINE), command=[sys.executable, "-c", script])
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]", out.stdout


def test_validate_notes_a_learning_policy_that_is_never_retrained():
    """A policy with a fit of its own and no retrain in the run (retraining off, or an interval
    as long as the run) would serve untrained throughout: validate says so and names the fix;
    policies that do not learn, or a run that retrains, get no note."""
    from recsim.cli import _learning_notes
    from recsim.config import load_scenario

    def notes(*overrides):
        return _learning_notes(load_scenario("benchmarks/reference.yaml", list(overrides)))

    assert notes() == []  # retrained daily
    off = notes("recommender.retrain_interval=0", "policies=[engagement, random, harm_penalized]")
    assert len(off) == 1 and off[0].startswith("engagement, harm_penalized learn from feedback (fit)")
    assert "retraining off): no fit ever happens" in off[0] and "recommender.retrain_interval (e.g. 1d)" in off[0]
    long = notes("recommender.retrain_interval=8d", "horizon=7d", "warmup=0s")
    assert len(long) == 1 and "(8 d) is not shorter than the run (warm-up + horizon, 7 d)" in long[0]
    # an interval equal to the run fits once, at its very end (the models table has that fit)
    assert "no fit happens before the run's end" in notes("recommender.retrain_interval=7d", "warmup=0s")[0]
    assert notes("recommender.retrain_interval=0", "policies=[random, engagement_oracle]") == []
    assert len(notes("recommender.retrain_interval=0", "policies=[stated_preference]")) == 1


def test_a_bad_user_model_is_a_clear_scenario_error(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: bad\npolicies: [random]\nuser_model:\n  choice: {type: cascade, params: {atention: 1}}\n"
                   "  session: nope\n", encoding="utf-8")
    result = recsim("validate", str(bad))
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert "user_model.choice.params.atention" in result.stderr
    assert "its parameters are" in result.stderr
