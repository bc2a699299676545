"""From agent to policy and back.

* :class:`AgentPolicy` runs a trained agent as a recsim policy: name it in a scenario
  (``type: recsim.gym:AgentPolicy``, ``params: {agent: ...}``) and ``recsim run`` /
  ``recsim compare`` set it beside the built-in policies on the same users and draws (common
  random numbers), with the usual paired intervals. The agent sees the observation it was
  trained on (:func:`recsim.gym.observation.observe`, the same function).
* :class:`PolicyAgent` makes any recsim policy act in an environment
  (:mod:`recsim.gym.env`), with the request, the generators and — for an oracle — the hidden
  state it would get in a run.

An *agent* is any object with ``act(observation, rng=None, greedy=False) -> actions`` taking a
batched observation (a leading axis ``B``) and an attribute ``action_kind``: ``"slate"``
(actions ``(B, k)`` indices into the candidates) or ``"scores"`` (``(B, c)`` one score per
candidate). An agent whose observation has a fixed shape (a neural network) says how many
candidates it observes in ``n_candidates``: requests are padded to it (the padding masked),
as the environment pads a short pool. :mod:`recsim.gym.agents` has some; a stable-baselines3
model fits in a few lines (README, "Reinforcement learning").
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from ..config import PolicySpec
from ..policies.base import (
    History,
    HistoryTable,
    Policy,
    PolicyContext,
    Request,
    RequestBatch,
    RequestRngs,
    learns_from_feedback,
)
from .observation import check_actions, observe, slates_from_indices, slates_from_scores

__all__ = ["AgentPolicy", "PolicyAgent", "load_agent_reference", "recsim_platform"]


def load_agent_reference(reference: str) -> Any:
    """The agent named by ``reference``: a ``.npz`` file saved by :mod:`recsim.gym.agents`
    (relative paths from the working directory), or ``"module:name"`` naming an agent object
    or a function of no arguments returning one. Raises ``FileNotFoundError``, ``LookupError``
    or ``TypeError`` (not an agent)."""
    if reference.endswith(".npz"):
        path = Path(reference)
        if not path.is_file():
            raise FileNotFoundError(f"agent file {reference!r} not found (from {Path.cwd()})")
        from .agents import load_agent

        agent = load_agent(path)
    else:
        if ":" not in reference:
            raise LookupError(f"agent {reference!r}: name a saved agent file (.npz) or 'module:name'")
        from ..plugins import import_object

        agent = import_object(reference, f"agent {reference!r}")
        if not hasattr(agent, "act") and callable(agent):
            agent = agent()
    if not callable(getattr(agent, "act", None)) or getattr(agent, "action_kind", None) not in ("slate", "scores"):
        raise TypeError(f"agent {reference!r} is not an agent: it needs act(observation, rng=None, greedy=False) "
                        "and action_kind 'slate' or 'scores'")
    return agent


class AgentParams(BaseModel):
    model_config = ConfigDict(extra="forbid")
    agent: str = Field(description="a saved agent (.npz) or 'module:name' of an agent or a function returning one")
    greedy: bool = Field(True, description="act greedily (deterministic); false: sample with the request's generator")


class AgentPolicy(Policy):
    """A trained agent as a policy (module docstring). ``agent``: see
    :func:`load_agent_reference`; ``greedy``: the agent's deterministic action (default), or
    its sampled one, row by row with each request's generator."""

    Params = AgentParams

    def reset(self, context: PolicyContext) -> None:
        self.context = context
        self.agent = load_agent_reference(self.params.agent)

    def _slates(self, actions: Any, candidates: np.ndarray, count: np.ndarray, k: int) -> list[np.ndarray]:
        kind = self.agent.action_kind
        try:  # held to the environment's action contract, so it acts here as it did in training
            a = check_actions(actions, kind, candidates.shape[0], k, candidates.shape[1])
        except ValueError as exc:
            raise ValueError(f"agent {self.params.agent!r} (action_kind {kind!r}) returned a bad action: {exc}") from None
        if kind == "slate":
            return slates_from_indices(a, candidates, count, k)
        return slates_from_scores(a, candidates, count, k)

    def recommend_batch(self, batch: RequestBatch, rngs: RequestRngs) -> list[np.ndarray]:
        B, c = batch.candidates.shape
        fixed = getattr(self.agent, "n_candidates", None)  # an agent with a fixed observation shape
        if fixed is not None and c > int(fixed):
            raise ValueError(f"agent {self.params.agent!r} observes {int(fixed)} candidates; the request has {c} "
                             "(run it on a scenario with recommender.n_candidates as in its training)")
        n = int(fixed) if fixed is not None else max(self.context.n_candidates, c)
        candidates = np.full((B, n), -1, dtype=np.int64)
        candidates[:, :c] = batch.candidates
        count = np.full(B, c)
        obs = observe(batch.histories, batch.user_ids, batch.now, candidates, count, batch.items)
        if self.params.greedy:
            actions = self.agent.act(obs, greedy=True)
        else:
            actions = [self._slates(self.agent.act({name: v[i: i + 1] for name, v in obs.items()}, rng=rngs[i],
                                                   greedy=False), candidates[i: i + 1], count[i: i + 1],
                                    batch.slate_size)[0] for i in range(B)]
            return actions
        return self._slates(actions, candidates, count, batch.slate_size)

    def recommend(self, request: Request, rng: np.random.Generator) -> np.ndarray:
        table = _table_of(request.history)
        batch = RequestBatch(
            user_ids=np.zeros(1, dtype=np.int64), now=np.array([request.now]), candidates=request.candidates[None, :],
            histories=table, features=None, slate_size=request.slate_size, items=request.features._items,
        )
        return self.recommend_batch(batch, _One(rng))[0]


class _One:
    """The generators of a batch of one request."""

    def __init__(self, rng: np.random.Generator):
        self.rng = rng

    def __getitem__(self, i: int) -> np.random.Generator:
        return self.rng


def _table_of(history: History) -> HistoryTable:
    """A one-row :class:`HistoryTable` holding ``history``."""
    table = HistoryTable(1, history.topic_mix.shape[0])
    for name in HistoryTable.FIELDS:
        getattr(table, name)[0] = getattr(history, name)
    return table


class PolicyAgent:
    """A recsim policy acting in an environment of :mod:`recsim.gym.env` (single or vector,
    wrapped or not): ``act()`` returns the environment's action for every pending decision,
    the slates the policy serves for the requests it would get in a run — the same candidates,
    the user's observable history, its generator keyed as in a run (the policy's stream, the
    user and the request number) and, for an oracle, the user's hidden state.

    ``policy``: a built-in name, a ``"module:Class"``, a :class:`PolicySpec`-like dict or a
    :class:`Policy`. Policies that learn from feedback (``fit``) are refused: compare those
    with an agent in a scenario (:class:`AgentPolicy`), where they retrain as usual."""

    def __init__(self, policy: Policy | str | dict, env: Any):
        from ..policies.registry import build_policy
        from ..rng import stream_key

        self.platform = recsim_platform(env)
        self.single = not hasattr(env.unwrapped, "num_envs")
        if isinstance(policy, Policy):
            name = type(policy).__name__
        else:
            spec = PolicySpec.model_validate(policy)
            name, policy = spec.name, build_policy(spec)
        if learns_from_feedback(policy):
            raise ValueError(f"policy {name!r} learns from feedback (fit), which the environment does not call; "
                             "run it beside the agent in a scenario instead (type: recsim.gym:AgentPolicy)")
        if getattr(policy, "may_end_sessions", False):
            raise ValueError(f"policy {name!r} may end sessions with an empty slate, which the environment's "
                             "actions cannot express; compare it with an agent in a scenario instead")
        self.policy = policy
        self.name = name
        stepped = self.platform.stepped
        policy.reset(stepped.sim.context)
        self.key = stream_key(stepped.scenario.seed, stepped.replication, f"policy:{name}")
        self.action_kind = self.platform.action

    def act(self, observation: Any = None, rng: Any = None, greedy: bool = True) -> np.ndarray:
        """The environment's action for its pending decisions: batched ``(N, ...)`` for a vector
        environment or when ``observation`` is batched, else one decision's. ``observation``
        is otherwise not read: the policy gets the request itself."""
        platform = self.platform
        st = platform.stepped
        places = np.arange(st.n_places, dtype=np.int64)
        k, c = platform.k, platform.c
        if self.action_kind == "slate":
            actions = np.zeros((places.shape[0], k), dtype=np.int64)
        else:
            actions = np.full((places.shape[0], c), -np.inf, dtype=np.float32)
        waiting = places[st.waiting[places]]
        for n in np.unique(st.count[waiting]).tolist():
            group = waiting[st.count[waiting] == n]
            batch = st.request(group, oracle=self.policy.oracle)
            slates = self.policy.recommend_batch(batch, st.policy_rngs(self.key, group))
            for row, place in enumerate(group.tolist()):
                slate = np.asarray(slates[row], dtype=np.int64).ravel()[:k]
                # each slate item's index among the candidates (they are all candidates)
                order = np.argmax(st.candidates[place, :n][None, :] == slate[:, None], axis=1)
                if self.action_kind == "slate":
                    actions[place] = order[0]  # beyond a short slate: repeats (filled by the rule)
                    actions[place, : order.shape[0]] = order
                else:
                    actions[place, order] = np.arange(order.shape[0], 0, -1, dtype=np.float32)
        batched = not self.single or (observation is not None and np.ndim(observation["user"]) == 2)
        return actions if batched else actions[0]


def recsim_platform(env: Any) -> Any:
    """The recsim platform under ``env`` (a recsim environment, wrapped or not), or
    ``TypeError``: Gymnasium's own vector environments over recsim's hold no single platform."""
    platform = getattr(getattr(env, "unwrapped", env), "platform", None)
    if platform is None:
        raise TypeError(
            f"{type(env).__name__} is not a recsim environment: use gymnasium.make('recsim/SlateRecommendation-v0', "
            "...) or gymnasium.make_vec(..., vectorization_mode='vector_entry_point') (wrappers are fine)"
        )
    return platform
