"""Terminals and logs (issue 12, kind 14): what `recsim run` and `recsim sweep` print fits an
80-column terminal with every number whole, progress reaches a log that is not a terminal, and
`--workers 0` means one process per core, as `--help` says."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
import yaml

from recsim.analysis import read_csv
from recsim.cli import HEADLINE_COLUMNS, _fmt

LONG = ["random", "a_policy_with_a_rather_long_name", "engagement_oracle", "wellbeing_oracle"]


def _write(tmp_path, data, name="scenario.yaml"):
    path = tmp_path / name
    path.write_text(yaml.safe_dump(data))
    return path


def _recsim(*args, env=None, cwd=None):
    environment = {**os.environ, "COLUMNS": "80", **(env or {})}
    return subprocess.run([sys.executable, "-m", "recsim", *map(str, args)], capture_output=True, text=True,
                          env=environment, cwd=cwd, timeout=300)


def _numbers_fit(text: str) -> None:
    lines = text.splitlines()
    assert max(map(len, lines)) <= 80, "\n".join(line for line in lines if len(line) > 80)
    assert "…" not in text and "..." not in text


@pytest.fixture
def long_names(tiny):
    tiny["replications"] = 2
    tiny["policies"] = [
        "random",
        {"name": "a_policy_with_a_rather_long_name", "type": "chronological"},
        "engagement_oracle",
        "wellbeing_oracle",
    ]
    return tiny


def test_the_results_tables_fit_80_columns_with_every_number_whole(long_names, tmp_path):
    out = tmp_path / "run"
    result = _recsim("run", _write(tmp_path, long_names), "--out", out, "--no-report", "-q")
    assert result.returncode == 0, result.stderr
    _numbers_fit(result.stdout)
    # every headline figure of summary.csv is printed in full (mean and half-width)
    summary = read_csv(out / "summary.csv")
    tokens = set(result.stdout.split())
    for _, row in summary.iterrows():
        for metric, _, spec in HEADLINE_COLUMNS:
            cell = _fmt(spec, row[metric], row[f"{metric}_ci_low"], row[f"{metric}_ci_high"], sep="\n")
            for part in cell.split("\n"):  # the mean and its ±half-width, each whole
                assert part in tokens, (row["policy"], metric, part)
    # the full comparison of `recsim compare` fits too
    compared = _recsim("compare", out)
    assert compared.returncode == 0, compared.stderr
    _numbers_fit(compared.stdout)
    assert "[unbounded]" in compared.stdout or "[" in compared.stdout


def test_the_sweep_table_fits_80_columns(tiny, tmp_path):
    tiny["sweep"] = {"recommender.slate_size": [3, 5], "recommender.candidate_window": [None, "12h"]}
    tiny["policies"] = ["random", "engagement_oracle"]
    result = _recsim("sweep", _write(tmp_path, tiny), "--out", tmp_path / "sweep", "-q", "--workers", "1")
    assert result.returncode == 0, result.stderr
    _numbers_fit(result.stdout)
    assert "±" in result.stdout or "–" in result.stdout
    # a null grid value reads as the scenario writes it; policies keep the scenario's order
    assert "null" in result.stdout and "nan" not in result.stdout
    summary = read_csv(tmp_path / "sweep" / "summary.csv")
    assert list(dict.fromkeys(summary["policy"])) == ["random", "engagement_oracle"]
    assert result.stdout.index("random") < result.stdout.index("engagem")  # (the name may fold)


def test_progress_reaches_a_log_that_is_not_a_terminal(tiny, tmp_path):
    """stderr piped (as in CI or a Slurm log): plain lines, the first at the start, one per
    update at RECSIM_PROGRESS_SECONDS=0, the last with every task done; no terminal codes."""
    tiny["replications"] = 2
    result = _recsim("run", _write(tmp_path, tiny), "--out", tmp_path / "run", "--no-report",
                     env={"RECSIM_PROGRESS_SECONDS": "0"})
    assert result.returncode == 0, result.stderr
    lines = [line for line in result.stderr.splitlines() if "tasks done" in line]
    n_tasks = 2 * len(tiny["policies"])
    assert len(lines) >= 3, result.stderr
    assert lines[0].startswith("tiny: 0.0% of simulated time, 0/") and f"{n_tasks}/{n_tasks} tasks done" in lines[-1]
    assert "\x1b[" not in result.stderr  # no cursor movement or colour codes in a log


def test_progress_in_a_log_is_periodic_not_per_update(tiny, tmp_path):
    """At the default period (30 s) a run of a few seconds writes the first and the last line only."""
    result = _recsim("run", _write(tmp_path, tiny), "--out", tmp_path / "run", "--no-report")
    assert result.returncode == 0, result.stderr
    assert sum("tasks done" in line for line in result.stderr.splitlines()) == 2, result.stderr


def test_quiet_prints_no_progress(tiny, tmp_path):
    result = _recsim("run", _write(tmp_path, tiny), "--out", tmp_path / "run", "--no-report", "-q",
                     env={"RECSIM_PROGRESS_SECONDS": "0"})
    assert result.returncode == 0 and "tasks done" not in result.stderr


def test_workers_0_means_one_process_per_core(tiny, tmp_path):
    help_text = _recsim("run", "--help").stdout
    assert "0 = one per core" in " ".join(help_text.replace("│", " ").split())
    tiny["replications"] = 2
    out = tmp_path / "run"
    result = _recsim("run", _write(tmp_path, tiny), "--out", out, "--no-report", "-q", "--workers", "0")
    assert result.returncode == 0, result.stderr
    assert json.loads((out / "manifest.json").read_text())["workers"] == (os.cpu_count() or 1)
    negative = _recsim("run", _write(tmp_path, tiny), "--out", tmp_path / "neg", "--workers", "-1")
    assert negative.returncode == 2 and "Traceback" not in negative.stderr
