"""Run folders: written atomically, never overwritten unless asked.

A run is written into a hidden sibling ``.<name>.partial/`` and renamed to ``<name>/`` only
once every table and ``manifest.json`` (``"status": "complete"``) are in place. An interrupted
or failed run leaves the ``.partial`` folder (its manifest says ``interrupted`` or ``failed``)
and never a folder that looks complete.
"""

from __future__ import annotations

import json
import os
import platform
import shutil
import sys
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import yaml

__all__ = ["RunFolderExists", "RunFolder", "default_run_dir", "read_manifest"]


class RunFolderExists(FileExistsError):
    """The output folder exists and overwriting was not asked for."""


def default_run_dir(scenario_name: str, root: Path = Path("runs")) -> Path:
    """``runs/<scenario>-<YYYYmmdd-HHMMSS>``, with a suffix if that already exists."""
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    path = root / f"{scenario_name}-{stamp}"
    n = 1
    while path.exists():
        n += 1
        path = root / f"{scenario_name}-{stamp}-{n}"
    return path


def _versions() -> dict[str, str]:
    from importlib import metadata

    out = {"python": platform.python_version()}
    for dist in ("recsim-engagement", "numpy", "pandas", "simpy", "pyarrow", "scipy"):
        try:
            out[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            out[dist] = "unknown"
    return out


def _write_json(path: Path, data: dict[str, Any]) -> None:
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(data, indent=2, default=str) + "\n", encoding="utf-8")
    os.replace(tmp, path)


class RunFolder:
    """Context manager around one run's output folder.

    >>> with RunFolder(path, scenario_data, overwrite=False) as folder:
    ...     write tables into folder.work   # the .partial folder
    ...     folder.manifest["tasks"] = ...
    On a clean exit the manifest is marked complete and the folder renamed to ``path``.
    """

    def __init__(self, path: Path, scenario: dict[str, Any], overwrite: bool = False,
                 command: list[str] | None = None, resume: bool = False):
        self.path = Path(path)
        self.overwrite = overwrite
        self.resume = resume
        if self.path.exists() and not overwrite:
            raise RunFolderExists(
                f"{self.path} already exists; choose another --out or pass --overwrite"
            )
        self.work = self.path.parent / f".{self.path.name}.partial"
        if resume:
            if not self.work.exists():
                raise RunFolderExists(f"nothing to resume: {self.work} does not exist")
            previous = yaml.safe_load((self.work / "scenario.yaml").read_text(encoding="utf-8"))
            if previous != json.loads(json.dumps(scenario)):
                raise RunFolderExists(
                    f"cannot resume {self.work}: it was started with a different scenario"
                )
        self.scenario = scenario
        self.manifest: dict[str, Any] = {
            "status": "running",
            "scenario": scenario.get("name"),
            "seed": scenario.get("seed"),
            "replications": scenario.get("replications"),
            # outputs.event_sample: the share of users whose full event rows are logged (a
            # sweep over it has each grid point's value in grid.csv)
            "event_sample": scenario.get("outputs", {}).get("event_sample", 1.0),
            "versions": _versions(),
            "command": command if command is not None else sys.argv,
            "started_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        }
        self._t0 = 0.0

    def __enter__(self) -> "RunFolder":
        if self.resume:
            self.manifest["resumed"] = True
        else:
            if self.work.exists():
                shutil.rmtree(self.work)
            self.work.mkdir(parents=True)
        (self.work / "scenario.yaml").write_text(
            yaml.safe_dump(self.scenario, sort_keys=False, allow_unicode=True), encoding="utf-8"
        )
        self._t0 = time.perf_counter()
        _write_json(self.work / "manifest.json", self.manifest)
        return self

    def save_manifest(self) -> None:
        """Write the manifest as it stands (still ``running``) into the work folder."""
        _write_json(self.work / "manifest.json", self.manifest)

    def __exit__(self, exc_type, exc, tb) -> bool:
        self.manifest["finished_at"] = datetime.now(timezone.utc).isoformat(timespec="seconds")
        self.manifest["wall_seconds"] = round(time.perf_counter() - self._t0, 3)
        if exc_type is None:
            self.manifest["status"] = "complete"
            _write_json(self.work / "manifest.json", self.manifest)
            if self.path.exists():  # only reachable with overwrite=True
                shutil.rmtree(self.path)
            os.replace(self.work, self.path)
        else:
            interrupted = issubclass(exc_type, KeyboardInterrupt)
            self.manifest["status"] = "interrupted" if interrupted else "failed"
            self.manifest["error"] = f"{exc_type.__name__}: {exc}"
            try:
                _write_json(self.work / "manifest.json", self.manifest)
            except OSError:
                pass
        return False


def read_manifest(run_dir: Path) -> dict[str, Any]:
    return json.loads((Path(run_dir) / "manifest.json").read_text(encoding="utf-8"))
