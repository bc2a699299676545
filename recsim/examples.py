"""The example scenarios that ship with recsim (the repository's ``scenarios/`` folder, installed
as the package ``recsim.example_scenarios``): found by name (``recsim run baseline``) and copied into a
folder of one's own by ``recsim init DIR``."""

from __future__ import annotations

import shutil
from pathlib import Path

__all__ = ["examples_dir", "example_names", "find_example", "copy_examples"]


def examples_dir() -> Path:
    """The folder holding the example scenarios: the installed ``recsim.example_scenarios`` package, or
    ``scenarios/`` next to the package in a source checkout."""
    here = Path(__file__).resolve().parent
    source = here.parent / "scenarios"
    if (source / "baseline.yaml").is_file():
        return source
    try:
        from importlib.util import find_spec

        spec = find_spec("recsim.example_scenarios")  # a namespace package: its folder(s)
        for location in (spec.submodule_search_locations or []) if spec is not None else []:
            if (Path(location) / "baseline.yaml").is_file():
                return Path(location)
    except ImportError:  # pragma: no cover - a broken installation
        pass
    raise FileNotFoundError("recsim's example scenarios are not installed (recsim.example_scenarios is missing)")


def example_names() -> list[str]:
    """Names of the example scenarios (``baseline``, ``rabbit_hole``, ...)."""
    return sorted(p.stem for p in examples_dir().glob("*.yaml"))


def find_example(name: str) -> Path | None:
    """The example scenario called ``name`` (with or without ``.yaml``), or None."""
    stem = name[:-5] if name.endswith(".yaml") else name
    if "/" in stem or "\\" in stem:
        return None
    try:
        path = examples_dir() / f"{stem}.yaml"
    except FileNotFoundError:
        return None
    return path if path.is_file() else None


def copy_examples(target: Path, overwrite: bool = False) -> list[Path]:
    """Copy every example scenario, the user code they name and their README into ``target``
    (created if needed); existing files are kept unless ``overwrite``. Returns what was written."""
    target = Path(target)
    target.mkdir(parents=True, exist_ok=True)
    written = []
    for path in sorted(examples_dir().iterdir()):
        if path.suffix not in (".yaml", ".py", ".md", ".json") or path.name == "__init__.py":
            continue
        destination = target / path.name
        if destination.exists() and not overwrite:
            continue
        shutil.copyfile(path, destination)
        written.append(destination)
    return written
