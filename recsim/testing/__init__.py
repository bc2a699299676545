"""Conformance checks for plug-ins, in the spirit of Gymnasium's ``check_env``
and scikit-learn's ``check_estimator``: :func:`check_policy` for policies,
:func:`check_user_model` for user-model components.

Run :func:`check_policy` on your own policy before naming it in a scenario file::

    from recsim.testing import check_policy

    check_policy(MyPolicy(alpha=0.3))   # or check_policy(MyPolicy) for default parameters

It builds a small synthetic world (a catalog of a few hundred items, a handful of users with
logged histories, feedback with clicks, watch times and surveys), resets and fits the policy,
serves a few dozen requests and raises :class:`PolicyCheckError` (an :class:`AssertionError`)
naming the first property that fails (a key of :data:`POLICY_CHECKS`, also its ``check``). It
never mutates the policy it is given: every step works on copies. It takes well under a second
for a policy of the size of the built-ins.

The synthetic users are recsim's default user model (:func:`recsim.users.model.build_user_model`
of a tiny scenario): their hidden state is a real :class:`~recsim.users.state.UserState` and
every click, watch time, state change and survey answer in the logs comes from the model's
components, called as the engines call them (``recsim/engine/core.py``).

Ending sessions: a policy may serve an **empty slate** to end the user's session (a break
suggestion; the engine logs a ``break`` event). :func:`check_policy` accepts an empty slate
only from a policy that declares it can do so with the class attribute
``may_end_sessions = True`` (a wrapper may instead set it on the instance in its constructor,
from the base policy it wraps); otherwise a slate must hold exactly
``min(request.slate_size, len(request.candidates))`` items. Oracle policies (``oracle = True``)
receive ``request.oracle``, an :class:`~recsim.oracle.OracleView` of the synthetic users'
hidden state.

Run :func:`check_user_model` on your own user-model component (or a whole
:class:`~recsim.users.model.UserModel`) before naming it in a scenario's ``user_model:``::

    from recsim.testing import check_user_model

    check_user_model(MyChoice)              # a class, built with default parameters
    check_user_model(MyChoice(beta=3.0))    # or an instance, checked in the default model
    check_user_model(model)                 # every component of a model

It raises :class:`UserModelCheckError` naming the role, the component class and the first
property that fails (a key of :data:`USER_MODEL_CHECKS`).

:func:`check_scripted_rule` holds a scripted users' rule (``population.scripted``) to
:data:`SCRIPTED_RULE_CHECKS`, and :func:`check_creator_rule` a creators' adaptation rule
(``catalog.creators``) to :data:`CREATOR_RULE_CHECKS`.
"""

from .creators import CREATOR_RULE_CHECKS, CreatorRuleCheckError, check_creator_rule
from .policy import POLICY_CHECKS, PolicyCheckError, check_policy
from .scripted import SCRIPTED_RULE_CHECKS, ScriptedRuleCheckError, check_scripted_rule
from .user_model import USER_MODEL_CHECKS, UserModelCheckError, check_user_model

__all__ = [
    "POLICY_CHECKS",
    "USER_MODEL_CHECKS",
    "SCRIPTED_RULE_CHECKS",
    "CREATOR_RULE_CHECKS",
    "CreatorRuleCheckError",
    "check_creator_rule",
    "PolicyCheckError",
    "ScriptedRuleCheckError",
    "UserModelCheckError",
    "check_policy",
    "check_user_model",
    "check_scripted_rule",
]
