"""Every notebook in notebooks/ executes (nbclient) against tiny runs made here, with its
`parameters` cell overridden the way papermill does it (a cell injected right after it)."""

from __future__ import annotations

from pathlib import Path

import ipykernel  # noqa: F401  (the kernel the notebooks run on: a dev dependency)
import nbclient
import nbformat
import pytest

from recsim.config import scenario_from_dict
from recsim.experiment import run_experiment

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = ROOT / "notebooks"
EXPECTED = [
    "01_engagement_vs_wellbeing.ipynb",
    "02_rabbit_holes.ipynb",
    "03_your_policy.ipynb",
    "04_sweeps.ipynb",
    "05_audits.ipynb",
    "06_rl_agents.ipynb",
]

TINY_RUN = {
    "name": "notebook_tiny",
    "seed": 9,
    "horizon": "2d",
    "warmup": "1d",
    "replications": 3,  # paired intervals of the Goodhart gap (2 are enough; 3 are less wide)
    "workers": 1,
    "population": {"n_users": 16},
    "catalog": {"n_items": 400, "upload_rate": "100/d"},
    "recommender": {"slate_size": 5, "n_candidates": 40, "retrain_interval": "12h"},
    "policies": ["random", "chronological", "engagement_oracle", "wellbeing_oracle"],
    "outputs": {"metrics_interval": "12h", "log_impressions": False},
}
TINY_OVERRIDES = [
    "population.n_users=8",
    "horizon=1d",
    "warmup=1d",
    "catalog.n_items=400",
    "recommender.n_candidates=40",
    "recommender.slate_size=5",
]


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory):
    return run_experiment(
        scenario_from_dict(TINY_RUN), tmp_path_factory.mktemp("nb") / "run", workers=1
    )


def _parameters(name: str, run_dir: Path, tmp: Path) -> dict:
    if name.startswith(("01", "02")):
        return {"run_dir": str(run_dir)}
    if name.startswith("03"):
        return {
            "out_dir": str(tmp / "your_policy"),
            "n_users": 10,
            "horizon": "1d",
            "warmup": "1d",
            "replications": 2,
            "baselines": ["chronological", "engagement"],
        }
    if name.startswith("04"):
        return {
            "scenario_path": str(ROOT / "scenarios" / "sweep_appetite.yaml"),
            "out_dir": str(tmp / "sweep"),
            "workers": 1,
            "overrides": [
                *TINY_OVERRIDES,
                "replications=2",
                "sweep={behaviour.appetite.eta_up: [0.005, 0.02],"
                " policies.1.params.penalty: [0, 20]}",
            ],
        }
    if name.startswith("05"):
        return {
            "scenario_path": str(ROOT / "scenarios" / "audit.yaml"),
            "overrides": [*TINY_OVERRIDES, "population.n_users=20", "population.takeover.users=8",
                          "population.takeover.after_watches=3", "replications=2"],
        }
    if name.startswith("06"):
        return {
            "scenario_path": str(ROOT / "scenarios" / "baseline.yaml"),
            "overrides": TINY_OVERRIDES,
            "out_dir": str(tmp / "rl_agents"),
            "n_envs": 4,
            "train_steps": 60,
            "replications": 2,
        }
    raise AssertionError(f"no test parameters for {name}")


def _inject(nb, parameters: dict) -> None:
    """Insert a cell setting ``parameters`` after the one tagged ``parameters`` (papermill)."""
    index = next(
        i for i, cell in enumerate(nb.cells) if "parameters" in cell.metadata.get("tags", [])
    )
    cell = nbformat.v4.new_code_cell(
        "\n".join(f"{key} = {value!r}" for key, value in parameters.items())
    )
    cell.metadata["tags"] = ["injected-parameters"]
    nb.cells.insert(index + 1, cell)


def test_the_notebooks_are_the_documented_ones():
    assert sorted(p.name for p in NOTEBOOKS.glob("*.ipynb")) == EXPECTED


@pytest.mark.parametrize("name", EXPECTED)
def test_notebook_is_committed_clean_with_a_parameters_cell(name):
    nb = nbformat.read(NOTEBOOKS / name, as_version=4)
    nbformat.validate(nb)
    tagged = [c for c in nb.cells if "parameters" in c.metadata.get("tags", [])]
    assert len(tagged) == 1 and tagged[0].cell_type == "code"
    for cell in nb.cells:
        if cell.cell_type == "code":
            assert cell.outputs == [] and cell.execution_count is None, (
                "commit notebooks without outputs"
            )
    assert sum(c.cell_type == "markdown" for c in nb.cells) >= 4, "explain what each plot shows"


@pytest.mark.parametrize("name", EXPECTED)
def test_notebook_executes(name, tiny_run, tmp_path):
    nb = nbformat.read(NOTEBOOKS / name, as_version=4)
    _inject(nb, _parameters(name, tiny_run, tmp_path))
    client = nbclient.NotebookClient(
        nb, kernel_name="python3", timeout=600, resources={"metadata": {"path": str(tmp_path)}}
    )
    client.execute()  # raises CellExecutionError, with the cell and its traceback, on failure
    images = [
        o
        for c in nb.cells
        if c.cell_type == "code"
        for o in c.outputs
        if o.get("output_type") in ("display_data", "execute_result")
        and "image/png" in o.get("data", {})
    ]
    assert images, "the notebook should draw its plots"
    errors = [
        o
        for c in nb.cells
        if c.cell_type == "code"
        for o in c.outputs
        if o.get("output_type") == "error"
    ]
    assert not errors
