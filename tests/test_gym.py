"""recsim.gym: the stepped engine runs the engines' model, the environments keep Gymnasium's
contract, seeding gives common random numbers, and agents and policies cross over.

The strongest checks are bit-for-bit: built-in policies acting one decision at a time through
the stepped engine leave every user's observable history and hidden state exactly as the
batched engine does, and an agent named as a scenario policy (``recsim.gym:AgentPolicy``) in a
run acts exactly as it does on the environment's observations.
"""

from __future__ import annotations

import math
import warnings

import gymnasium
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

import recsim.gym  # noqa: F401 - registers the environment
from recsim import rng as rngmod
from recsim.config import PolicySpec, ScenarioError, scenario_from_dict
from recsim.engine import batched as batched_engine
from recsim.engine.batched import simulate_batched
from recsim.engine.stepped import SteppedSimulation, UnsupportedScenario
from recsim.gym import ENV_ID, PolicyAgent
from recsim.gym.env import SlateRecommendationEnv, SlateRecommendationVectorEnv
from recsim.gym.observation import USER_FEATURES, observe, slates_from_indices, slates_from_scores
from recsim.policies.registry import build_policy
from recsim.world import build_world

TINY = {
    "name": "gym-tiny",
    "seed": 11,
    "horizon": "2d",
    "warmup": "1d",
    "replications": 1,
    "population": {"n_users": 30},
    "catalog": {"n_items": 300, "upload_rate": "150/d"},
    "recommender": {"slate_size": 6, "n_candidates": 40, "retrain_interval": "12h"},
    "outputs": {"metrics_interval": "12h"},
    "behaviour": {"survey": {"probability": 0.3}, "churn": {"zeta0": -2.5}},
    "policies": ["random"],
}


def tiny(**changes):
    data = {**TINY, **changes}
    return scenario_from_dict(data)


class _NoLog:
    log_impressions = False
    user_limit = None
    n_rows = 0

    def add_rows(self, cols):
        pass

    def close(self):
        pass


class RelevanceAgent:
    """A deterministic agent for the tests: scores candidates by topic relevance to the user's
    profile minus their classifier score (row by row)."""

    action_kind = "scores"

    def act(self, observation, rng=None, greedy=False):
        relevance = np.einsum("bck,bk->bc", observation["candidate_topics"], observation["user_topics"])
        scores = relevance - 0.5 * observation["candidate_classifier"]
        return np.where(observation["candidate_mask"] > 0, scores, -np.inf)


RELEVANCE = RelevanceAgent()


def _batched_sim(sc, spec):
    """The batched engine's Simulation after a run of ``spec`` on replication 0."""
    holder = {}
    original = batched_engine.Simulation

    class Keep(original):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            holder["sim"] = self

    batched_engine.Simulation = Keep
    try:
        simulate_batched(build_world(sc, 0), spec, _NoLog())
    finally:
        batched_engine.Simulation = original
    return holder["sim"]


def _assert_same_users(run, stepped):
    for name in run.hist.FIELDS:
        np.testing.assert_array_equal(getattr(run.hist, name), getattr(stepped.hist, name), err_msg=name)
    for name in run.state.fields:
        np.testing.assert_array_equal(run.state[name], stepped.state[name], err_msg=name)
    np.testing.assert_array_equal(run.churned, stepped.churned)
    np.testing.assert_array_equal(run.session, stepped.session)


def _step_all(st, choose):
    """Drive every place of ``st`` to the end, ``choose(places) -> slates`` at each decision."""
    n = 0
    while st.waiting.any():
        places = np.flatnonzero(st.waiting)
        for c in np.unique(st.count[places]).tolist():
            group = places[st.count[places] == c]
            st.act(group, choose(group))
            n += group.shape[0]
    return n


@pytest.mark.parametrize("name", ["engagement_oracle", "wellbeing_oracle", "click_value_oracle", "random", "chronological"])
def test_stepped_engine_reproduces_the_batched_engine_bit_for_bit(name):
    """A policy that does not learn, asked one decision at a time through the stepped engine
    (its own request batches and generators), leaves every user's history, hidden state,
    sessions and churn exactly as a batched run does."""
    sc = tiny(policies=[name])
    spec = PolicySpec(name=name, type=name)
    run = _batched_sim(sc, spec)
    st = SteppedSimulation(sc, sc.population.n_users, from_world=True)
    policy = build_policy(spec)
    policy.reset(st.sim.context)
    key = rngmod.stream_key(sc.seed, 0, f"policy:{name}")

    def choose(group):
        return policy.recommend_batch(st.request(group, oracle=policy.oracle), st.policy_rngs(key, group))

    decisions = _step_all(st, choose)
    assert decisions > 500  # the users did live: many decisions in the horizon
    assert run.churned.any()  # churn happened (the comparison covers it)
    _assert_same_users(run, st.sim)


def test_an_agent_named_as_a_policy_acts_in_a_run_as_on_the_environments_observations():
    """``recsim.gym:AgentPolicy`` in a batched run = the agent acting on :func:`observe` of the
    stepped engine's pending decisions, bit for bit (the same observation function)."""
    spec = PolicySpec(name="agent", type="recsim.gym:AgentPolicy", params={"agent": "test_gym:RELEVANCE"})
    sc = tiny(policies=[spec.model_dump()])
    run = _batched_sim(sc, spec)
    st = SteppedSimulation(sc, sc.population.n_users, from_world=True)
    k = sc.recommender.slate_size

    def choose(group):
        obs = observe(st.sim.hist, group, st.now[group], st.candidates[group], st.count[group], st.sim.items)
        return slates_from_scores(RELEVANCE.act(obs, greedy=True), st.candidates[group], st.count[group], k)

    _step_all(st, choose)
    _assert_same_users(run, st.sim)


def test_check_env_passes_for_both_action_kinds():
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*infinity.*")  # the spaces are unbounded on purpose
        warnings.filterwarnings("ignore", message=".*Box action spaces.*")  # scores: unbounded on purpose
        for action in ("slate", "scores"):
            env = gymnasium.make(ENV_ID, scenario=tiny(), action=action)
            check_env(env.unwrapped, skip_render_check=True)


def _episode(env, seed, agent=None, max_steps=10_000):
    """Rewards, infos and observations of one episode (actions: ``agent`` or a fixed rule)."""
    obs, info = env.reset(seed=seed)
    rewards, infos, observations = [], [info], [obs]
    for _ in range(max_steps):
        action = agent.act(obs) if agent is not None else np.arange(env.unwrapped.platform.k)
        obs, reward, terminated, truncated, info = env.step(action)
        rewards.append(reward)
        infos.append(info)
        observations.append(obs)
        if terminated or truncated:
            return rewards, infos, observations, terminated, truncated
    raise AssertionError("episode did not end")


def test_same_seed_same_trajectory_and_different_seeds_different_users():
    env, other = SlateRecommendationEnv(tiny()), SlateRecommendationEnv(tiny())
    steps = 0
    for seed in (5, 6, 7):
        a, b = _episode(env, seed), _episode(other, seed)
        assert a[0] == b[0] and a[1] == b[1]
        steps += len(a[0])
        for x, y in zip(a[2], b[2]):
            for key in x:
                np.testing.assert_array_equal(x[key], y[key])
    assert steps > 30  # the users did live
    assert len({_episode(env, seed)[1][0]["user"] for seed in range(5)}) == 5


def test_a_place_reused_after_another_user_behaves_as_a_fresh_one():
    """Every per-user array is reset when a new user arrives (Simulation.renew_users): the
    episode of seed 9 after another episode equals the episode of seed 9 on a fresh environment."""
    used = SlateRecommendationEnv(tiny())
    _episode(used, 4)
    again = _episode(used, 9)
    fresh = _episode(SlateRecommendationEnv(tiny()), 9)
    assert again[0] == fresh[0]
    assert [i.get("wellbeing") for i in again[1]] == [i.get("wellbeing") for i in fresh[1]]


def test_common_random_numbers_two_agents_meet_the_same_user():
    """Same seed: the same user (id and hidden state at the first decision) whatever the agent;
    the agents then diverge."""
    env = SlateRecommendationEnv(tiny())
    first = _episode(env, 3)
    chrono = _episode(env, 3, PolicyAgent("chronological", env))
    assert first[1][0] == chrono[1][0]
    assert first[0] != chrono[0]


def test_vector_places_are_single_environments_seeded_s_plus_i_across_autoresets():
    """Place i of the vector environment reset with seed s behaves as a single environment
    reset with s + i, through at least one automatic reset (same step), with the same actions."""
    sc = tiny(horizon="1d", warmup="6h")
    n, s = 3, 20
    vec = SlateRecommendationVectorEnv(n, scenario=sc)
    obs, _ = vec.reset(seed=s)
    k = vec.platform.k
    per_place = [[] for _ in range(n)]
    ended = np.zeros(n, dtype=int)
    steps = 0
    while ended.min() < 2 and steps < 5000:
        obs, reward, term, trunc, info = vec.step(np.tile(np.arange(k), (n, 1)))
        for i in range(n):
            if ended[i] < 2:
                per_place[i].append(reward[i])
        ended += term | trunc
        if (term | trunc).any():
            done = np.flatnonzero(term | trunc)
            assert info["_final_obs"][done].all()
            assert all(info["final_obs"][i]["candidate_mask"].sum() == 0 for i in done)
        steps += 1
    for i in range(n):
        env = SlateRecommendationEnv(sc)
        rewards = _episode(env, s + i)[0]
        obs1, _ = env.reset()  # the next episode from the same generator
        more = []
        while True:
            _, r, term, trunc, _ = env.step(np.arange(k))
            more.append(r)
            if term or trunc:
                break
        assert per_place[i] == rewards + more


def test_rewards_are_the_steps_watch_time_value_or_survey():
    """Each reward kind is the step's quantity: watch seconds (summing to the history's watch
    seconds since the first decision), hidden value, survey scores."""
    sc = tiny(behaviour={"survey": {"probability": 1.0}, "churn": {"zeta0": -2.5}})
    for reward in ("watch_time", "value", "survey"):
        env = SlateRecommendationEnv(sc, reward=reward)
        rewards, infos, observations, _, _ = _episode(env, 2)
        assert len(rewards) > 10
        key = {"watch_time": "watch_time", "value": "value", "survey": "survey_sum"}[reward]
        assert rewards == [i[key] for i in infos[1:]]
        if reward == "watch_time":
            watch = USER_FEATURES.index("watch_seconds")
            total = observations[-1]["user"][watch] - observations[0]["user"][watch]
            assert math.isclose(sum(rewards), total, rel_tol=1e-5)  # float32 observations
        if reward == "survey":
            answered = sum(i["n_surveys"] for i in infos[1:])
            assert answered > 0 and all(1 <= r <= 5 or r == 0 for r in rewards)


def test_the_observation_holds_only_observable_features_computed_from_the_history():
    """The observation's keys are the documented ones (no hidden state), and the user's
    features equal a direct computation from the platform's history table."""
    env = SlateRecommendationEnv(tiny())
    obs, info = env.reset(seed=1)
    for _ in range(5):
        obs, *_ = env.step(np.arange(6))
    assert set(obs) == {"user", "user_topics", "candidate_topics", "candidate_classifier", "candidate_length",
                        "candidate_age", "candidate_mask"}
    st = env.platform.stepped
    h = st.sim.hist
    u = dict(zip(USER_FEATURES, obs["user"].tolist()))
    assert u["time"] == pytest.approx(st.now[0], rel=1e-6)
    assert u["n_clicks"] == h.n_clicks[0]
    assert u["watch_seconds"] == pytest.approx(h.watch_seconds[0], rel=1e-6)
    assert u["mean_classifier"] == pytest.approx(h.classifier_seconds[0] / h.watch_seconds[0], rel=1e-5)
    n = int(st.count[0])
    items = st.sim.items
    cand = st.candidates[0, :n]
    np.testing.assert_allclose(obs["candidate_classifier"][:n], items.classifier[cand], rtol=1e-6)
    np.testing.assert_allclose(obs["candidate_age"][:n], st.now[0] - items.upload_time[cand], rtol=1e-5)
    assert obs["candidate_mask"][:n].all() and not obs["candidate_mask"][n:].any()
    for hidden in ("value", "wellbeing", "appetite"):
        assert hidden not in obs and hidden in env.step(np.arange(6))[4]


def test_episodes_end_terminated_on_churn_and_truncated_at_the_horizon():
    """Every observation, the last included, lies in the observation space; a churned user's
    episode ends at the churn (after the last decision), a truncated one at the horizon."""
    env = SlateRecommendationEnv(tiny(behaviour={"churn": {"zeta0": 0.5}}, horizon="3d"))
    kinds = set()
    since = USER_FEATURES.index("since_last_session")
    for seed in range(12):
        _, infos, observations, terminated, truncated = _episode(env, seed)
        assert terminated != truncated
        kinds.add("terminated" if terminated else "truncated")
        assert all(env.observation_space.contains(obs) for obs in observations)
        last = infos[-1]
        assert last["churned"] == terminated
        assert observations[-1]["user"][since] >= 0 and observations[-1]["candidate_mask"].sum() == 0
        if truncated:
            assert last["time"] == env.scenario.horizon
        else:
            assert infos[-2]["time"] < last["time"] <= env.scenario.horizon
    assert kinds == {"terminated", "truncated"}


def test_actions_become_slates_by_the_documented_rule():
    candidates = np.array([[10, 11, 12, 13, -1], [20, 21, 22, 23, 24]])
    count = np.array([4, 5])
    slates = slates_from_indices(np.array([[2, 2, 4, 0], [4, 3, 3, 1]]), candidates, count)
    # the repeat and the padding index dropped, the slate filled with the first free candidates
    assert slates[0].tolist() == [12, 10, 11, 13]
    assert slates[1].tolist() == [24, 23, 21, 20]
    assert slates_from_indices(np.array([[4, 4, 4, 4], [0, 0, 0, 0]]), candidates, count, 3)[0].tolist() == [
        10, 11, 12]
    assert slates_from_indices(np.array([[3, 1, 0, 2]]), candidates[:1], np.array([2]))[0].tolist() == [11, 10]
    scored = slates_from_scores(np.array([[0.1, 0.9, np.nan, 0.5, 99.0], [1, 2, 3, 4, 5]]), candidates, count, 3)
    assert scored[0].tolist() == [11, 13, 10]  # padding never chosen, NaN lowest
    assert scored[1].tolist() == [24, 23, 22]


def test_policy_agent_serves_the_policys_slates():
    """PolicyAgent's actions map back to exactly the slates the policy returns."""
    env = SlateRecommendationEnv(tiny(), action="slate")
    env.reset(seed=0)
    agent = PolicyAgent("engagement_oracle", env)
    st = env.platform.stepped
    place = np.array([0])
    expected = agent.policy.recommend_batch(st.request(place, oracle=True), st.policy_rngs(agent.key, place))
    action = agent.act()
    slate = slates_from_indices(action[None, :], st.candidates[place], st.count[place], agent.platform.k)[0]
    assert slate.tolist() == list(expected[0])


class ShapedAgent:
    """An agent returning actions of a given shape and type (the tests' bad agents)."""

    def __init__(self, kind, shape, dtype):
        self.action_kind, self.shape, self.dtype = kind, shape, dtype

    def act(self, observation, rng=None, greedy=False):
        B = observation["user"].shape[0]
        return np.zeros(tuple(B if d == "B" else d for d in self.shape), dtype=self.dtype)


SHORT = ShapedAgent("slate", ("B", 2), np.int64)
FLOATS = ShapedAgent("slate", ("B", 6), np.float64)
FEW_SCORES = ShapedAgent("scores", ("B", 5), np.float64)
ONE_ROW = ShapedAgent("slate", (6,), np.int64)


@pytest.mark.parametrize("agent", ["SHORT", "FLOATS", "FEW_SCORES", "ONE_ROW"])
def test_an_agent_policy_is_held_to_the_environments_action_contract(agent):
    """An agent named as a policy whose actions the environment would refuse is refused in a
    run too, naming the agent (instead of acting differently from training)."""
    spec = PolicySpec(name="agent", type="recsim.gym:AgentPolicy", params={"agent": f"test_gym:{agent}"})
    sc = tiny(policies=[spec.model_dump()])
    with pytest.raises(Exception, match=f"agent 'test_gym:{agent}'.*returned a bad action"):
        simulate_batched(build_world(sc, 0), spec, _NoLog())


def test_policy_agent_and_evaluate_on_a_single_environment():
    from recsim.gym.agents import evaluate

    env = SlateRecommendationEnv(tiny(), action="scores")
    table = evaluate(env, PolicyAgent("engagement_oracle", env), episodes=2, seed=3)
    assert len(table) == 2 and (table["watch_time"] > 0).all()


def test_gymnasiums_own_vector_environments_are_refused_clearly():
    from recsim.gym.agents import LinearSoftmaxAgent, train

    sync = gymnasium.make_vec(ENV_ID, num_envs=2, vectorization_mode="sync", scenario=tiny(), action="scores")
    with pytest.raises(TypeError, match="vector_entry_point"):
        PolicyAgent("random", sync)
    with pytest.raises(TypeError, match="vector_entry_point"):
        train(sync, LinearSoftmaxAgent(), 1)


def test_bad_arguments_and_unsupported_scenarios_are_refused_clearly():
    with pytest.raises(ValueError, match="reward must be one of"):
        SlateRecommendationEnv(tiny(), reward="clicks")
    with pytest.raises(ValueError, match="action must be one of"):
        SlateRecommendationEnv(tiny(), action="ranking")
    with pytest.raises(UnsupportedScenario, match="catalog.creators"):
        SlateRecommendationEnv(tiny(catalog={"n_items": 300, "creators": {}}))
    with pytest.raises(FileNotFoundError, match="no scenario file"):
        SlateRecommendationEnv("no_such_scenario")
    with pytest.raises(ScenarioError):
        SlateRecommendationEnv(tiny(), overrides=["recommender.slate_size=0"])
    with pytest.raises(ValueError, match="learns from feedback"):
        PolicyAgent({"type": "engagement"}, SlateRecommendationEnv(tiny()))
    with pytest.raises(ValueError, match="num_envs must be a positive integer"):
        SlateRecommendationVectorEnv(0, scenario=tiny())
    with pytest.raises(ValueError, match="replication must be a non-negative integer"):
        SlateRecommendationEnv(tiny(), replication=-1)
    env = SlateRecommendationEnv(tiny())
    with pytest.raises(RuntimeError, match="before reset"):
        env.step(np.arange(6))
    env.reset(seed=0)
    with pytest.raises(ValueError, match="integer indices"):
        env.step(np.zeros(3))
    with pytest.raises(ValueError, match=r"must be in \[0, 40\)"):
        env.step(np.array([0, 1, 2, 3, 4, 40]))
    with pytest.raises(ValueError, match="real scores"):
        SlateRecommendationEnv(tiny(), action="scores").platform.slates(np.array([0]), np.zeros((1, 40), complex))
    _, _, _, terminated, truncated = _episode(env, 0)
    with pytest.raises(RuntimeError, match="call reset"):
        env.step(np.arange(6))


def test_a_scenario_given_as_a_dict():
    env = SlateRecommendationEnv(dict(TINY))
    assert env.scenario.name == "gym-tiny"


def test_an_example_scenario_by_name():
    env = gymnasium.make(ENV_ID, scenario="baseline", overrides=["catalog.n_items=2000", "catalog.upload_rate=100/d"])
    obs, info = env.reset(seed=0)
    assert obs["candidate_topics"].shape == (env.unwrapped.platform.c, env.unwrapped.platform.K)
    assert env.observation_space.contains(obs)
