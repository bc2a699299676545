"""Reinforcement learning over the simulator: Gymnasium environments, adapters, small agents.

Install the extra: ``pip install 'recsim-engagement[gym]'`` (Gymnasium). Importing this package
registers the environments:

* ``gymnasium.make("recsim/SlateRecommendation-v0", scenario="baseline")`` —
  :class:`~recsim.gym.env.SlateRecommendationEnv`, one user's life per episode;
* ``gymnasium.make_vec("recsim/SlateRecommendation-v0", num_envs=64,
  vectorization_mode="vector_entry_point", scenario=...)`` —
  :class:`~recsim.gym.env.SlateRecommendationVectorEnv`, many users at once on the batched steps.

Without importing it first, name the module in the id:
``gymnasium.make("recsim.gym:recsim/SlateRecommendation-v0", ...)``.

From agent to policy and back (:mod:`recsim.gym.adapters`): a trained agent runs in a scenario
as ``type: recsim.gym:AgentPolicy`` (``params: {agent: ...}``), so it is compared with the
built-in policies under common random numbers with the usual intervals; any recsim policy acts
in the environment through :class:`~recsim.gym.adapters.PolicyAgent`.
"""

from __future__ import annotations

from typing import Any

from .adapters import AgentPolicy, PolicyAgent
from .observation import USER_FEATURES, observe, slates_from_indices, slates_from_scores

__all__ = [
    "AgentPolicy", "PolicyAgent", "USER_FEATURES", "observe", "slates_from_indices", "slates_from_scores",
    "SlateRecommendationEnv", "SlateRecommendationVectorEnv", "ENV_ID", "register_envs",
]

ENV_ID = "recsim/SlateRecommendation-v0"


def register_envs() -> None:
    """Register :data:`ENV_ID` with Gymnasium (done on import when Gymnasium is installed)."""
    import gymnasium

    if ENV_ID not in gymnasium.registry:
        gymnasium.register(
            id=ENV_ID,
            entry_point="recsim.gym.env:SlateRecommendationEnv",
            vector_entry_point="recsim.gym.env:SlateRecommendationVectorEnv",
        )


def __getattr__(name: str) -> Any:
    if name in ("SlateRecommendationEnv", "SlateRecommendationVectorEnv"):
        from . import env

        return getattr(env, name)
    raise AttributeError(f"module 'recsim.gym' has no attribute {name!r}")


try:
    register_envs()
except ImportError:  # Gymnasium missing: the adapters still work; the environments say what to install
    pass
