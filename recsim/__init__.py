"""recsim: a discrete-event simulator of recommendation platforms for studying Goodhart's law.

A policy that maximizes an observable proxy (watch time) can drift users toward extreme
content while their hidden satisfaction falls. See README.md and docs/model.md for the model.
"""

from importlib import metadata as _metadata

from .config import PolicySpec, Scenario, ScenarioError, load_scenario, scenario_from_dict
from .experiment import run_experiment
from .policies import (
    BUILTIN_POLICIES,
    CandidateFeatures,
    Feedback,
    FunctionPolicy,
    History,
    Policy,
    PolicyContext,
    Request,
)

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
