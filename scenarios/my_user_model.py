"""A user-model component of one's own: users who satisfice (Simon 1955).

Instead of weighing every item of the slate (the default multinomial logit), a satisficing user
looks down the slate and clicks the first item whose allure reaches an aspiration level; if
none does, they click nothing. It replaces one part of the model (the choice) and keeps the
rest. Named in scenarios/custom_user_model.yaml as ``type: "my_user_model:Satisficing"``.
"""

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from recsim.users import ChoiceModel


class Satisficing(ChoiceModel):
    """Click the first item (in slate order) whose allure is at least ``aspiration``."""

    class Params(BaseModel):
        model_config = ConfigDict(extra="forbid")
        aspiration: float = Field(3.5, description="the allure an item must reach to be clicked")

    def probabilities(self, state, terms):
        allure = terms["allure"]  # (B, n): one row per user, one column per slate position
        good = allure >= self.params.aspiration
        # column 0 is "no click", column k the k-th position: all the mass on one of them
        chosen = np.where(good.any(axis=1), np.argmax(good, axis=1) + 1, 0)
        out = np.zeros((allure.shape[0], allure.shape[1] + 1))
        out[np.arange(allure.shape[0]), chosen] = 1.0
        return out
