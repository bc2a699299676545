"""An example of your own policy, used by scenarios/custom_policy.yaml.

A policy is a class with one method, ``recommend(request, rng) -> slate``. The request holds
only what a platform observes: the user's observable history (``request.history``), the
candidates' observable features (``request.features``: noisy topics, the extremeness
classifier score, length, age) and the slate size. Declare parameters as a pydantic model
named ``Params``; the scenario's ``params`` are checked against it.

Check a policy before you run it:

    >>> from recsim.testing import check_policy
    >>> check_policy(RelevantAndMild(penalty=1.0))
"""

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from recsim import Policy


class RelevantAndMild(Policy):
    """Ranks candidates by how well their topics match what the user has watched, minus a
    penalty on the extremeness classifier score. No learning, no hidden state."""

    class Params(BaseModel):
        model_config = ConfigDict(extra="forbid")
        penalty: float = Field(1.0, ge=0.0, description="score lost per unit classifier score")

    def recommend(self, request, rng):
        match = request.features.topics @ request.history.topic_profile
        score = match - self.params.penalty * request.features.classifier
        score = score + 1e-9 * rng.random(score.shape[0])  # break ties at random
        best = np.argsort(-score)[: request.slate_size]
        return request.candidates[best]
