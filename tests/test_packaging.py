"""Outside the repository: what a plain `pip install` gets — the example scenarios (found by
name, copied by `recsim init`), the license, every subpackage."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

from recsim.examples import copy_examples, example_names, examples_dir, find_example

try:
    import tomllib
except ImportError:  # Python 3.10: the TOML reader pip carries
    from pip._vendor import tomli as tomllib

ROOT = Path(__file__).resolve().parents[1]


def _recsim(*args, cwd: Path):
    return subprocess.run([sys.executable, "-m", "recsim", *args], capture_output=True, text=True, cwd=cwd)


def test_every_subpackage_is_packaged():
    config = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["setuptools"]
    on_disk = {".".join(p.parent.relative_to(ROOT).parts) for p in (ROOT / "recsim").rglob("__init__.py")}
    assert on_disk <= set(config["packages"]), on_disk - set(config["packages"])
    assert config["package-dir"]["recsim.example_scenarios"] == "scenarios"


def test_the_wheel_holds_the_examples_and_the_license(tmp_path):
    built = subprocess.run([sys.executable, "-m", "pip", "wheel", str(ROOT), "--no-deps", "-q", "-w", str(tmp_path)],
                           capture_output=True, text=True, cwd=tmp_path)
    assert built.returncode == 0, built.stderr
    wheel = next(tmp_path.glob("recsim_engagement-*.whl"))
    names = set(zipfile.ZipFile(wheel).namelist())
    for example in sorted(p.name for p in (ROOT / "scenarios").iterdir() if p.suffix in (".yaml", ".py")):
        assert f"recsim/example_scenarios/{example}" in names, example
    assert any(n.endswith("licenses/LICENSE") for n in names)
    for scenario in sorted((ROOT / "scenarios" / "validation").glob("*.yaml")):
        assert f"recsim/example_scenarios/validation/{scenario.name}" in names, scenario.name
    # the validation suite finds its scenarios in the installed package (no checkout around it)
    site = tmp_path / "site"
    zipfile.ZipFile(wheel).extractall(site)
    import os

    env = {**os.environ, "PYTHONPATH": str(site)}
    where = subprocess.run([sys.executable, "-c", "import recsim.validation as v; print(v.__file__); print(v.SCENARIOS)"],
                           capture_output=True, text=True, cwd=tmp_path, env=env)
    assert where.returncode == 0, where.stderr
    module, scenarios = where.stdout.split()
    assert module.startswith(str(site)) and Path(scenarios) == site / "recsim" / "example_scenarios" / "validation"
    listed = subprocess.run([sys.executable, "-m", "recsim", "reproduce", "--list"], capture_output=True, text=True,
                            cwd=tmp_path, env=env)
    assert listed.returncode == 0 and "forgetting_time" in listed.stdout, listed.stderr
    assert (ROOT / "LICENSE").read_text(encoding="utf-8").lstrip().startswith("Apache License")


def test_examples_are_found_by_name_and_copied(tmp_path):
    assert {"baseline", "rabbit_hole", "custom_policy", "custom_user_model"} <= set(example_names())
    assert find_example("baseline") == examples_dir() / "baseline.yaml"
    assert find_example("baseline.yaml") == examples_dir() / "baseline.yaml"
    assert find_example("no_such_example") is None and find_example("../baseline") is None
    written = copy_examples(tmp_path / "mine")
    assert {p.name for p in written} >= {"baseline.yaml", "my_policies.py", "README.md"}
    (tmp_path / "mine" / "baseline.yaml").write_text("name: edited\npolicies: [random]\n", encoding="utf-8")
    assert copy_examples(tmp_path / "mine") == []  # nothing replaced without overwrite
    assert "edited" in (tmp_path / "mine" / "baseline.yaml").read_text(encoding="utf-8")


def test_the_command_line_runs_an_example_by_name_and_inits_a_folder(tmp_path):
    result = _recsim("validate", "baseline", cwd=tmp_path)  # no baseline.yaml here
    assert result.returncode == 0, result.stderr
    assert "using the example scenario" in result.stderr and "scenario baseline" in result.stdout
    result = _recsim("init", "examples", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "examples" / "custom_policy.yaml").is_file()
    result = _recsim("validate", "examples/custom_policy.yaml", cwd=tmp_path)  # its user code beside it
    assert result.returncode == 0, result.stderr
    result = _recsim("validate", "nonexistent.yaml", cwd=tmp_path)
    assert result.returncode == 2 and "file not found" in result.stderr
