"""Scripted users: sock-puppet accounts that follow a fixed rule instead of the behaviour model.

Audits of real platforms measure what a recommender serves with scripted accounts ("sock
puppets"): bots that always watch the top recommendation, or the most extreme item offered, or
replay a list of videos and then follow the recommendations (Ribeiro et al. 2020; Haroon et al.
2023; Hosseinmardi et al. 2024, "counterfactual bots"). In recsim they live in the same world as
the modelled users (``population.scripted``): the same policy serves them and their feedback
enters the same logs, so an audit perturbs what it measures, as on a real platform.

A scripted user keeps the model's session and return processes (when it looks at a slate and
comes back) but never churns; what it watches and for how long is its rule's:

==============  ================================================================================
rule            what the user does at each slate
==============  ================================================================================
``top_item``    watches the item in position 1
``most_extreme`` watches the item with the highest classifier score (``oracle: true``: the highest
                true extremeness, an audit with ground truth)
``replay``      watches the listed items in order, off the slate (as a bot opening them by
                address), then follows the rule ``then``
``module:Class`` a :class:`ScriptedRule` of your own
==============  ================================================================================

Every rule watches ``fraction`` (default 1) of each item's length. The engine calls
:meth:`ScriptedRule.choose` with the slates of a batch of scripted users; the rule never sees the
users' hidden state.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

__all__ = [
    "ScriptedRule",
    "TopItem",
    "MostExtreme",
    "Replay",
    "SCRIPTED_RULES",
    "resolve_rule",
    "build_rule",
    "ScriptedChoice",
]


class _Params(BaseModel):
    model_config = ConfigDict(extra="forbid")
    fraction: float = Field(1.0, gt=0.0, le=1.0, description="share of each item's length watched")


class ScriptedChoice:
    """What a batch of scripted users does at their slates: ``position`` ``(B,)`` (0-based slate
    position watched, -1: none from the slate) and ``direct`` ``(B,)`` (an item id watched off
    the slate, -1: none). A row with neither is a no-click."""

    def __init__(self, position: np.ndarray, direct: np.ndarray | None = None):
        self.position = np.asarray(position)  # integers: the engine refuses anything else
        self.direct = np.full(self.position.shape, -1, dtype=np.int64) if direct is None else np.asarray(direct)


class ScriptedRule:
    """The interface of a scripted user's rule (a sock puppet's script).

    Subclass it, give it a pydantic ``Params`` model, and implement :meth:`choose`.
    ``fraction`` (a parameter of every rule, in (0, 1]) is the share of an item's length watched.
    """

    Params: ClassVar[type[BaseModel]] = _Params

    def __init__(self, params: BaseModel | None = None, /, **kwargs: Any):
        self.params = params if params is not None else self.Params(**kwargs)

    @property
    def fraction(self) -> float:
        return float(getattr(self.params, "fraction", 1.0))

    def choose(self, slates: np.ndarray, catalog: Any, n_watched: np.ndarray) -> ScriptedChoice:
        """What each user of a batch watches.

        ``slates`` ``(B, n)`` item ids in slate order; ``catalog`` the world's
        :class:`~recsim.catalog.Catalog` (``classifier`` is what a platform observes,
        ``extremeness`` the ground truth, for oracle audits); ``n_watched`` ``(B,)`` items each
        user has watched since the start of the warm-up. Returns a :class:`ScriptedChoice`."""
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.params!r})"


class TopItem(ScriptedRule):
    """Always watch the first item of the slate."""

    def choose(self, slates: np.ndarray, catalog: Any, n_watched: np.ndarray) -> ScriptedChoice:
        return ScriptedChoice(np.zeros(slates.shape[0], dtype=np.int64))


class _MostExtremeParams(_Params):
    oracle: bool = Field(False, description="rank by true extremeness (an oracle audit), not the classifier score")


class MostExtreme(ScriptedRule):
    """Watch the most extreme item offered: by the platform's classifier score (what an auditor
    sees), or by the true extremeness with ``oracle: true``; ties go to the higher position."""

    Params = _MostExtremeParams

    def choose(self, slates: np.ndarray, catalog: Any, n_watched: np.ndarray) -> ScriptedChoice:
        score = (catalog.extremeness if self.params.oracle else catalog.classifier)[slates]
        return ScriptedChoice(np.argmax(score, axis=1))


class _ReplayParams(_Params):
    items: list[int] = Field(min_length=1, description="item ids watched in order, off the slate")
    then: str = Field("top_item", description="the rule followed after the list (a built-in rule name)")
    then_params: dict[str, Any] = Field(default_factory=dict, description="parameters of `then`")


class Replay(ScriptedRule):
    """Watch ``items`` in order, each opened directly (off the slate), then follow ``then``:
    the counterfactual bot's design (replay a history, then let the recommender lead)."""

    Params = _ReplayParams

    def __init__(self, params: BaseModel | None = None, /, **kwargs: Any):
        super().__init__(params, **kwargs)
        self.items = np.asarray(self.params.items, dtype=np.int64)
        self.then = build_rule(self.params.then, self.params.then_params)

    def choose(self, slates: np.ndarray, catalog: Any, n_watched: np.ndarray) -> ScriptedChoice:
        after = self.then.choose(slates, catalog, n_watched)
        replaying = n_watched < self.items.shape[0]
        direct = np.where(replaying, self.items[np.minimum(n_watched, self.items.shape[0] - 1)], -1)
        position = np.where(replaying, -1, after.position)
        return ScriptedChoice(position, np.where(replaying, direct, after.direct))


#: the built-in rules by name
SCRIPTED_RULES: dict[str, type[ScriptedRule]] = {
    "top_item": TopItem,
    "most_extreme": MostExtreme,
    "replay": Replay,
}


def resolve_rule(name: str) -> type[ScriptedRule]:
    """The class of a rule: a built-in name or ``"module:Class"``.

    Raises LookupError (unknown name, or not a :class:`ScriptedRule`) or ImportError."""
    if ":" not in name:
        try:
            return SCRIPTED_RULES[name]
        except KeyError:
            raise LookupError(
                f"unknown scripted rule {name!r}; built-ins are {', '.join(SCRIPTED_RULES)}, or give "
                "\"module:Class\" (a subclass of recsim.users.scripted.ScriptedRule)"
            ) from None
    from ..plugins import import_object

    cls = import_object(name, f"scripted rule {name!r}")
    if not (isinstance(cls, type) and issubclass(cls, ScriptedRule)):
        raise LookupError(f"{name!r} is not a subclass of recsim.users.scripted.ScriptedRule")
    return cls


def build_rule(name: str, params: dict[str, Any] | None = None) -> ScriptedRule:
    """The rule ``name`` with ``params`` (validated by its ``Params``: pydantic's
    ValidationError on a bad one)."""
    cls = resolve_rule(name)
    return cls(cls.Params(**(params or {})))
