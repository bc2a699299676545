"""The user model: hidden state and behaviour, as components both engines run.

The interfaces (one required method each) are in :mod:`.components`, the default model's
equations in :mod:`.formulas` and its components in :mod:`.default`, alternatives from peer
simulators in :mod:`.peers`; :func:`build_user_model` assembles the components a scenario's
``user_model:`` section names. Subclass an interface to bring your own component and name it
in a scenario as ``"module:Class"``; check it with :func:`recsim.testing.check_user_model`.
"""

from .components import (
    ROLES,
    AllureModel,
    ChoiceModel,
    ChurnRule,
    Component,
    Relaxation,
    ResponseModel,
    ReturnProcess,
    SessionRule,
    SessionSummary,
    StateTransition,
    SurveyModel,
    UserSampler,
    ValueModel,
)
from .model import (
    DEFAULT_COMPONENTS,
    UserModel,
    UserModelError,
    build_user_model,
    builtin_components,
)
from .state import Draws, ItemView, StateView, UserState, align

__all__ = [
    "ROLES",
    "Component",
    "UserSampler",
    "AllureModel",
    "ValueModel",
    "ChoiceModel",
    "ResponseModel",
    "StateTransition",
    "Relaxation",
    "SessionRule",
    "ReturnProcess",
    "ChurnRule",
    "SurveyModel",
    "SessionSummary",
    "UserModel",
    "UserModelError",
    "build_user_model",
    "builtin_components",
    "DEFAULT_COMPONENTS",
    "UserState",
    "StateView",
    "ItemView",
    "Draws",
    "align",
]
