"""recsim: a discrete-event simulator of recommendation platforms for studying Goodhart's law.

A policy that maximizes an observable proxy (watch time) can drift users toward extreme
content while their hidden satisfaction falls. See README.md and docs/model.md for the model.
"""

from importlib import import_module as _import_module
from importlib import metadata as _metadata
from importlib.util import find_spec as _find_spec

# The public names, imported on first use (PEP 562): `import recsim.config` or the command
# line's `recsim validate` then load only what they need, not the engines, pandas and SciPy.
_EXPORTS = {
    "PolicySpec": "config", "Scenario": "config", "ScenarioError": "config", "load_scenario": "config",
    "scenario_from_dict": "config",
    "run_experiment": "experiment",
    "BUILTIN_POLICIES": "policies", "CandidateFeatures": "policies", "Feedback": "policies",
    "FunctionPolicy": "policies", "History": "policies", "Policy": "policies", "PolicyContext": "policies",
    "Request": "policies",
}


def __getattr__(name: str):
    module = _EXPORTS.get(name)
    if module is not None:
        value = getattr(_import_module(f".{module}", __name__), name)
    elif not name.startswith("_") and _find_spec(f"{__name__}.{name}") is not None:
        value = _import_module(f".{name}", __name__)  # a subpackage or module: recsim.analysis
    else:
        raise AttributeError(f"module 'recsim' has no attribute {name!r}")
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    from pkgutil import iter_modules

    return sorted({*globals(), *_EXPORTS, *(m.name for m in iter_modules(__path__) if not m.name.startswith("_"))})

try:
    __version__ = _metadata.version("recsim-engagement")
except _metadata.PackageNotFoundError:  # running from a source tree without installing
    __version__ = "0+unknown"

__all__ = [
    "__version__",
    "Scenario",
    "PolicySpec",
    "ScenarioError",
    "load_scenario",
    "scenario_from_dict",
    "run_experiment",
    "Policy",
    "PolicyContext",
    "Request",
    "History",
    "CandidateFeatures",
    "Feedback",
    "FunctionPolicy",
    "BUILTIN_POLICIES",
]
