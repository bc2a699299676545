"""Every notebook's `parameters` cell is one papermill can read: `papermill --help-notebook`
lists each parameter, and `papermill -p name value` can set it."""

from __future__ import annotations

import ast
import json
from pathlib import Path

import papermill
import pytest

NOTEBOOKS = sorted((Path(__file__).resolve().parents[1] / "notebooks").glob("*.ipynb"))


def _parameters_cell(path: Path) -> str:
    cells = json.loads(path.read_text(encoding="utf-8"))["cells"]
    tagged = [c for c in cells if "parameters" in c.get("metadata", {}).get("tags", [])]
    assert len(tagged) == 1, f"{path.name}: expected one cell tagged 'parameters'"
    return "".join(tagged[0]["source"])


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.name for p in NOTEBOOKS])
def test_papermill_reads_every_parameter(path):
    assigned = [node.targets[0].id for node in ast.parse(_parameters_cell(path)).body
                if isinstance(node, ast.Assign)]
    assert assigned, path.name
    assert list(papermill.inspect_notebook(str(path))) == assigned
