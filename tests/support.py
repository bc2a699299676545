"""Checks shared by several test files (plain functions; fixtures live in conftest.py)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np
import pandas as pd

#: the most lines an error report may take (one screen)
MAX_ERROR_LINES = 24


def output_tables(path: Path) -> dict[str, pd.DataFrame]:
    """A run folder's partitioned tables (rows in a canonical order) and its CSV tables."""
    out = {}
    for name in ("events", "metrics", "users"):
        frame = pd.read_parquet(path / name)
        frame["policy"] = frame["policy"].astype(str)
        frame["replication"] = frame["replication"].astype(int)
        for column in frame.columns:  # list columns (the users' final topic vectors): hashable
            if frame[column].dtype == object and frame[column].map(lambda v: isinstance(v, np.ndarray)).any():
                frame[column] = frame[column].map(lambda v: None if v is None else tuple(v))
        out[name] = frame.sort_values(list(frame.columns)).reset_index(drop=True)
    for name in ("replications.csv", "summary.csv", "comparison.csv"):
        out[name] = pd.read_csv(path / name)
    return out


def assert_same_outputs(a: Path, b: Path) -> None:
    """Two run folders hold the same tables, value for value."""
    ta, tb = output_tables(a), output_tables(b)
    for name in ta:
        pd.testing.assert_frame_equal(ta[name], tb[name], obj=name)


def one_screen(result: subprocess.CompletedProcess, code: int, *fragments: str) -> str:
    """``result`` exited with ``code`` and reported an error in one screen, without a
    traceback, containing every fragment; returns its stderr."""
    err = result.stderr
    assert result.returncode == code, (result.returncode, err, result.stdout[-2000:])
    assert "Traceback" not in err + result.stdout, err
    assert err.lstrip().startswith("error:"), err
    assert len(err.strip().splitlines()) <= MAX_ERROR_LINES, err
    for fragment in fragments:
        assert fragment in err, f"{fragment!r} not in:\n{err}"
    return err
