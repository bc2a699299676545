"""Gymnasium environments over the simulator: one user's life on the platform per episode.

:class:`SlateRecommendationEnv` (id ``recsim/SlateRecommendation-v0``) serves one user, one
slate per step; :class:`SlateRecommendationVectorEnv` serves ``num_envs`` users at once on the
batched steps (Gymnasium's vector API, ``gymnasium.make_vec``). Both run the model of
``docs/model.md`` through :class:`recsim.engine.stepped.SteppedSimulation`, the same steps the
engines take.

Episode: a new user arrives on the scenario's platform (catalog and uploads of
``replication``), lives through the warm-up under the scenario's warm-up policy, and from the
first slate request of the horizon on, each step is one decision: the agent's slate is shown,
the user scans it, watches or not, goes on or ends the session, comes back or not — simulated
time passes — and the step returns at the user's next request. ``terminated`` when the user
churns, ``truncated`` when the horizon ends first. A user who leaves (or never comes back)
before their first request of the horizon is skipped: every episode starts at a decision
(``info["skipped_users"]`` counts them).

Observation: :mod:`recsim.gym.observation` (only what the platform observes). Action
(``action=``): ``"slate"`` (default), ``MultiDiscrete([c] * k)`` indices into the candidates,
best first — a repeat or a padding index is replaced by the first candidate not in the slate,
so a slate always holds ``min(k, candidates)`` items; or ``"scores"``, ``Box(c,)`` one score
per candidate, the slate being the ``k`` best real candidates. Reward (``reward=``): ``"watch_time"`` (default, the proxy): seconds
watched during the step; ``"value"`` (an oracle's): the hidden value of those watches;
``"survey"``: the survey scores (1–5) answered during the step, 0 without one. ``info`` holds
the step's hidden quantities for evaluation (never in the observation): ``value``,
``wellbeing``, ``appetite``, ``satisfaction``, ``habit``, ``topic_drift`` (the user's state at
the next decision, or at the end), ``extreme_seconds`` (Σ watch seconds × true extremeness),
and observable ones: ``time`` (seconds), ``watch_time``, ``clicks``, ``n_surveys``,
``survey_sum``, ``churned``, ``user`` (the user's stream id).

Seeding: ``reset(seed=s)`` fixes the sequence of users (each episode's user is drawn from the
environment's ``np_random``) and every draw of their lives (per-user counter-based streams), so
two agents reset with the same seed meet the same users with the same noise (common random
numbers); in the vector environment place ``i`` is seeded with ``s + i`` and behaves as a
single environment reset with that seed.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

try:
    import gymnasium as gym
    from gymnasium import spaces
    from gymnasium.vector import AutoresetMode, VectorEnv
    from gymnasium.vector.utils import batch_space
except ImportError as exc:  # pragma: no cover - the extra is installed by make test
    raise ImportError(
        "recsim's reinforcement-learning environments need Gymnasium: pip install 'recsim-engagement[gym]'"
    ) from exc

from ..config import Scenario, load_scenario
from ..engine.stepped import SteppedSimulation
from .observation import USER_FEATURES, check_actions, observe, slates_from_indices, slates_from_scores

__all__ = ["SlateRecommendationEnv", "SlateRecommendationVectorEnv", "resolve_scenario", "REWARDS", "ACTIONS"]

REWARDS = ("watch_time", "value", "survey")
ACTIONS = ("slate", "scores")
#: tries at drawing a user who reaches a decision in the horizon before giving up
MAX_SKIPPED = 1000


def resolve_scenario(scenario: Scenario | dict | str | Path, overrides: list[str] | None = None) -> Scenario:
    """A :class:`Scenario` from itself, a dict of its fields, a YAML file, or the name of a shipped example
    (``"baseline"``), with ``dotted.key=value`` ``overrides``. Raises :class:`ScenarioError`
    (bad file or values) or ``FileNotFoundError``."""
    if isinstance(scenario, dict):
        from ..config import scenario_from_dict

        scenario = scenario_from_dict(scenario, str(scenario.get("name", "<scenario>")))
    if isinstance(scenario, Scenario):
        if not overrides:
            return scenario
        from ..config import apply_overrides, scenario_from_dict

        data = apply_overrides(scenario.model_dump(), list(overrides), scenario.name)
        return scenario_from_dict(data, scenario.name)
    path = Path(scenario)
    if not path.is_file():
        from ..examples import find_example

        found = find_example(str(scenario))
        if found is None:
            raise FileNotFoundError(f"no scenario file {str(scenario)!r} and no example scenario of that name")
        path = found
    return load_scenario(path, overrides=list(overrides or []))


class _Platform:
    """What both environments share: the stepped engine with one place per environment, the
    spaces, and the conversions between observations, actions, rewards and infos."""

    def __init__(self, scenario, n_places: int, reward: str, action: str, replication: int,
                 overrides: list[str] | None):
        if reward not in REWARDS:
            raise ValueError(f"reward must be one of {', '.join(REWARDS)}; got {reward!r}")
        if action not in ACTIONS:
            raise ValueError(f"action must be one of {', '.join(ACTIONS)}; got {action!r}")
        if isinstance(replication, bool) or not isinstance(replication, (int, np.integer)) or replication < 0:
            raise ValueError(f"replication must be a non-negative integer; got {replication!r}")
        self.scenario = sc = resolve_scenario(scenario, overrides)
        self.reward, self.action = reward, action
        self.stepped = SteppedSimulation(sc, n_places, replication)
        self.c = c = sc.recommender.n_candidates
        self.k = k = sc.recommender.slate_size
        self.K = K = self.stepped.sim.catalog.n_topics
        inf = np.float32(np.inf)
        self.observation_space = spaces.Dict({
            "user": spaces.Box(0.0, inf, (len(USER_FEATURES),), np.float32),
            "user_topics": spaces.Box(-inf, inf, (K,), np.float32),
            "candidate_topics": spaces.Box(-inf, inf, (c, K), np.float32),
            "candidate_classifier": spaces.Box(-inf, inf, (c,), np.float32),
            "candidate_length": spaces.Box(0.0, inf, (c,), np.float32),
            "candidate_age": spaces.Box(0.0, inf, (c,), np.float32),
            "candidate_mask": spaces.Box(0, 1, (c,), np.int8),
        })
        self.action_space = (spaces.MultiDiscrete(np.full(k, c)) if action == "slate"
                             else spaces.Box(-inf, inf, (c,), np.float32))
        self.over = np.ones(n_places, dtype=bool)  # no episode under way
        self.last_now = np.zeros(n_places)

    # ------------------------------------------------------------------ episodes
    def start(self, places: np.ndarray, rngs: list[np.random.Generator]) -> np.ndarray:
        """New users in ``places`` (each drawn from its generator) up to a decision; returns
        how many users were skipped for each."""
        st = self.stepped
        skipped = np.zeros(places.shape[0], dtype=np.int64)
        todo = np.arange(places.shape[0])
        while todo.shape[0]:
            ids = np.array([int(rngs[i].integers(0, 2**62)) for i in todo.tolist()], dtype=np.int64)
            ready = st.arrive(places[todo], ids)
            skipped[todo[~ready]] += 1
            if skipped.max() > MAX_SKIPPED:
                raise RuntimeError(
                    f"scenario {self.scenario.name!r}: {MAX_SKIPPED} users in a row left before their first "
                    "slate request of the horizon (churned in the warm-up, or no return in the horizon); "
                    "lengthen the horizon or lower churn"
                )
            todo = todo[~ready]
        self.over[places] = False
        self.last_now[places] = st.now[places]
        return skipped

    def observations(self, places: np.ndarray) -> dict[str, np.ndarray]:
        st = self.stepped
        now = np.where(st.waiting[places], st.now[places], self.last_now[places])
        count = np.where(st.waiting[places], st.count[places], 0)
        return observe(st.sim.hist, places, now, st.candidates[places], count, st.sim.items)

    def slates(self, places: np.ndarray, actions: np.ndarray) -> list[np.ndarray]:
        st = self.stepped
        a = check_actions(actions, self.action, places.shape[0], self.k, self.c)
        if self.action == "slate":
            return slates_from_indices(a, st.candidates[places], st.count[places], self.k)
        return slates_from_scores(a, st.candidates[places], st.count[places], self.k)

    def step(self, places: np.ndarray, actions: np.ndarray):
        """One decision in each of ``places``: rewards, terminated, truncated, infos (arrays)."""
        if self.over[places].any():
            raise RuntimeError("step() before reset() or after the episode ended: call reset() first")
        st = self.stepped
        outcome = st.act(places, self.slates(places, actions))
        hidden = st.hidden(places)
        reward = {"watch_time": outcome.watch_time, "value": outcome.value,
                  "survey": outcome.survey_sum}[self.reward]
        terminated = outcome.churned
        truncated = outcome.ended
        ended = terminated | truncated
        # the time of the next decision; of the churn (the last step taken); or the horizon's end
        self.last_now[places] = np.where(ended, np.where(terminated, st.clock[places], st.world.end), st.now[places])
        self.over[places[ended]] = True
        info = {
            "time": self.last_now[places].copy(), "watch_time": outcome.watch_time, "value": outcome.value,
            "clicks": outcome.clicks, "n_surveys": outcome.n_surveys, "survey_sum": outcome.survey_sum,
            "extreme_seconds": outcome.extreme_seconds, **hidden, "churned": terminated.copy(),
            "user": st.stream_ids[places].copy(),
        }
        return reward.astype(float), terminated, truncated, info

    def start_info(self, places: np.ndarray, skipped: np.ndarray) -> dict[str, np.ndarray]:
        st = self.stepped
        return {"time": st.now[places].copy(), **st.hidden(places), "user": st.stream_ids[places].copy(),
                "skipped_users": skipped}


def _one(arrays: dict[str, np.ndarray]) -> dict[str, Any]:
    """Row 0 of batched arrays, as the single environment's values."""
    out = {}
    for name, values in arrays.items():
        v = values[0]
        out[name] = v.item() if isinstance(v, np.generic) else v
    return out


class SlateRecommendationEnv(gym.Env):
    """One user's life on the platform per episode, one slate per step (module docstring).

    Parameters: ``scenario`` (a :class:`Scenario`, a YAML path or an example name; its
    ``policies`` are not used), ``reward`` (``"watch_time"``, ``"value"``, ``"survey"``),
    ``action`` (``"slate"`` or ``"scores"``), ``overrides`` (``dotted.key=value`` strings, as
    ``recsim run --set``), ``replication`` (which replication's platform). Raises
    :class:`~recsim.config.ScenarioError`, ``FileNotFoundError``, ``ValueError`` (bad
    arguments) or :class:`~recsim.engine.stepped.UnsupportedScenario`."""

    metadata = {"render_modes": []}

    def __init__(self, scenario: Scenario | str | Path = "baseline", reward: str = "watch_time",
                 action: str = "slate", overrides: list[str] | None = None, replication: int = 0):
        self.platform = _Platform(scenario, 1, reward, action, replication, overrides)
        self.observation_space = self.platform.observation_space
        self.action_space = self.platform.action_space
        self._place = np.zeros(1, dtype=np.int64)

    @property
    def scenario(self) -> Scenario:
        return self.platform.scenario

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        super().reset(seed=seed)
        skipped = self.platform.start(self._place, [self.np_random])
        info = _one(self.platform.start_info(self._place, skipped))
        return _one(self.platform.observations(self._place)), info

    def step(self, action):
        a = np.asarray(action)[None, ...]
        reward, terminated, truncated, info = self.platform.step(self._place, a)
        obs = _one(self.platform.observations(self._place))
        return obs, float(reward[0]), bool(terminated[0]), bool(truncated[0]), _one(info)


class SlateRecommendationVectorEnv(VectorEnv):
    """``num_envs`` users at once (module docstring), each place an independent episode
    stream; an episode that ends is replaced in the same step (``AutoresetMode.SAME_STEP``:
    ``info["final_obs"]`` holds the ended episodes' last observations, ``info["final_info"]``
    their infos, with ``_final_obs``/``_final_info`` masks). Observations, rewards and info
    entries have a leading ``num_envs`` axis; where an episode ended, ``info``'s state entries
    (``time``, ``wellbeing``, ``appetite``, ``satisfaction``, ``habit``, ``topic_drift``,
    ``user``) are the new user's, its step totals the ended episode's, and ``final_info``
    holds the ended episode's whole info. Parameters as :class:`SlateRecommendationEnv`, and
    ``num_envs`` (a positive integer). Gymnasium's own ``make_vec`` modes ``"sync"`` and
    ``"async"`` reset on the next step unless given
    ``vector_kwargs={"autoreset_mode": AutoresetMode.SAME_STEP}``."""

    metadata = {"render_modes": [], "autoreset_mode": AutoresetMode.SAME_STEP}

    def __init__(self, num_envs: int = 8, scenario: Scenario | str | Path = "baseline", reward: str = "watch_time",
                 action: str = "slate", overrides: list[str] | None = None, replication: int = 0, **kwargs: Any):
        if isinstance(num_envs, bool) or not isinstance(num_envs, (int, np.integer)) or num_envs < 1:
            raise ValueError(f"num_envs must be a positive integer; got {num_envs!r}")
        self.num_envs = int(num_envs)
        self.platform = _Platform(scenario, self.num_envs, reward, action, replication, overrides)
        self.single_observation_space = self.platform.observation_space
        self.single_action_space = self.platform.action_space
        self.observation_space = batch_space(self.single_observation_space, self.num_envs)
        self.action_space = batch_space(self.single_action_space, self.num_envs)
        self._places = np.arange(self.num_envs, dtype=np.int64)
        self._rngs: list[np.random.Generator] | None = None

    @property
    def scenario(self) -> Scenario:
        return self.platform.scenario

    def reset(self, *, seed: int | list[int] | None = None, options: dict[str, Any] | None = None):
        if seed is None and self._rngs is None:
            seed = int(np.random.SeedSequence().generate_state(1)[0] >> 1)
        if seed is not None:
            seeds = ([int(seed) + i for i in range(self.num_envs)] if isinstance(seed, (int, np.integer))
                     else [int(s) for s in seed])
            if len(seeds) != self.num_envs:
                raise ValueError(f"reset got {len(seeds)} seeds for {self.num_envs} environments")
            self._rngs = [np.random.default_rng(s) for s in seeds]
        skipped = self.platform.start(self._places, self._rngs)
        return self.platform.observations(self._places), self.platform.start_info(self._places, skipped)

    def step(self, actions):
        places = self._places
        reward, terminated, truncated, info = self.platform.step(places, np.asarray(actions))
        ended = terminated | truncated
        if ended.any():
            done = places[ended]
            final_obs = self.platform.observations(done)
            final = np.full(self.num_envs, None, dtype=object)
            for i, p in enumerate(done.tolist()):
                final[p] = {name: values[i] for name, values in final_obs.items()}
            info["final_obs"], info["_final_obs"] = final, ended.copy()
            info["final_info"] = {name: values.copy() for name, values in info.items()
                                  if isinstance(values, np.ndarray) and values.dtype != object}
            info["_final_info"] = ended.copy()
            skipped = self.platform.start(done, [self._rngs[p] for p in done.tolist()])
            restart = self.platform.start_info(done, skipped)
            for name in ("time", "wellbeing", "appetite", "satisfaction", "habit", "topic_drift", "user"):
                info[name][ended] = restart[name]
        obs = self.platform.observations(places)
        for name in [n for n in info if not n.startswith("_") and n not in ("final_obs", "final_info")]:
            info["_" + name] = np.ones(self.num_envs, dtype=bool)
        return obs, reward, terminated, truncated, info
