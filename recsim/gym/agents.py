"""Small reinforcement-learning agents in plain NumPy, their training loop and their evaluation.

**The agent protocol** (what :mod:`recsim.gym.env`, :func:`train`, :func:`evaluate` and
:class:`recsim.gym.adapters.AgentPolicy` rely on):

* ``agent.action_kind`` — ``"slate"`` (actions ``(B, k)`` indices into the candidates) or
  ``"scores"`` (actions ``(B, c)``, one score per candidate, the slate being the ``k`` best
  real candidates). The agents here all use ``"scores"``: padding candidates get ``-inf``.
* ``agent.act(observation, rng=None, greedy=False) -> np.ndarray`` — ``observation`` is a
  *batched* observation dict (:mod:`recsim.gym.observation`, every array with a leading axis
  ``B``, as the vector environment returns it). ``greedy=True`` is deterministic and row by
  row independent: row ``i`` of the result depends only on row ``i`` of the observation, to
  the bit (sums are taken with :mod:`recsim.arrays`, not BLAS), so an agent acts the same in
  the environment and as a scenario policy. ``greedy=False`` samples with ``rng`` (a
  ``np.random.Generator``; a fresh unseeded one if ``None``).
* ``agent.save(path)`` writes a ``.npz``; :func:`load_agent` reads any agent of this module
  back (the class is stored in the file), so a trained agent can be named in a scenario
  (``type: recsim.gym:AgentPolicy``, ``params: {agent: my_agent.npz}``).

**Agents.** :class:`RandomAgent` (uniform random scores: the baseline) and
:class:`LinearSoftmaxAgent`, a linear softmax policy over a few per-candidate features
(:data:`FEATURES`, built from the observation only), trained by REINFORCE (Williams 1992,
"Simple statistical gradient-following algorithms for connectionist reinforcement learning")
with Plackett–Luce slates (Plackett 1975; Luce 1959): the ``k`` items of a slate are drawn
without replacement from ``softmax(s / T)`` over the real candidates, ``s = φ·w``. The
log-probability of an ordered slate ``(i_1 … i_k)`` is

    log π = Σ_j [ s_{i_j} − log Σ_{m ∈ R_j} exp(s_m) ] / T  (R_j: candidates not in i_1 … i_{j-1})

and its gradient ``∇_w log π = (1/T) Σ_j (φ_{i_j} − Σ_{m ∈ R_j} p_{j,m} φ_m)`` with ``p_j``
the softmax over ``R_j`` (:func:`plackett_luce_score_grad`). A Plackett–Luce slate is the
top ``k`` of ``s / T + Gumbel noise`` (the Gumbel-top-k trick: Yellott 1977; Kool, van Hoof
and Welling 2019), so the agent hands the environment the perturbed scores (``"scores"``
action) and the environment's top ``k`` is the sample; the agent records that ordering to
compute the gradient.

**Training** (:func:`train`): the vector environment's ``N`` users in parallel, one
decision each per vector step. Every decision stores ``∇_w log π(slate | obs)`` and its
reward (seconds watched after the slate, divided by ``reward_scale`` = 60: minutes). The
return of decision ``t`` of an episode is ``G_t = Σ_{j ≥ 0} γ^j r_{t+j}`` up to the end of
the episode (``γ`` = ``gamma`` per decision; ``γ = 0`` is the myopic agent, whose return is
the next watch), or truncated after ``horizon`` rewards if given. Every ``update_every``
vector steps the decisions whose returns are complete give the estimate

    ĝ = (1/M) Σ_t Â_t ∇_w log π(a_t | o_t),   Â_t = (G_t − b) / sd(G − b)

(``b`` the batch mean of the returns — ``baseline="batch"`` — or 0 with ``"none"``), and
``w`` takes one Adam step of ascent (Kingma and Ba 2015). That is the REINFORCE estimator
with a constant baseline and normalized advantages; the gradients of a decision are those of
the policy that acted, so a return completed after later updates is slightly off-policy
(policy lag of at most the episode's length, none for ``γ = 0``).

**Evaluation** (:func:`evaluate`): one row per episode (one user's life on the platform)
with the observable and hidden totals; the same ``seed`` gives every agent the same users
with the same noise (the environments draw users from the reset seed), so two agents'
per-user results pair up (:func:`paired_difference`).
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ..arrays import dot_last
from .observation import USER_FEATURES

__all__ = [
    "FEATURES", "FEATURE_NAMES", "LinearSoftmaxAgent", "RandomAgent", "candidate_features",
    "discounted_returns", "evaluate", "gumbel_top_k", "load_agent", "paired_difference",
    "plackett_luce_log_prob", "plackett_luce_score_grad", "train",
]

_U = {name: i for i, name in enumerate(USER_FEATURES)}

#: The per-candidate features φ of :class:`LinearSoftmaxAgent`, in order, and the fixed scale
#: each is divided by (about the feature's standard deviation over the candidates a random
#: policy's users see under the default catalog parameters, so every weight starts on the same
#: footing; fixed numbers, not running statistics: a saved agent acts the same after loading). ``r = x̃·u`` is the candidate's observable topic vector dotted with the
#: user's unit watch profile (``user_topics``; 0 before the first watch), ``ê`` the
#: candidate's classifier score, ``m`` the user's watch-weighted mean ``ê`` (``mean_classifier``),
#: ``f`` the user's mean watch fraction, ``n`` their clicks so far, ``L`` the length and
#: ``age`` the seconds since upload. A feature constant over a user's candidates would not
#: change the softmax, so there is no intercept, and centring a feature would not either.
FEATURES = (
    ("relevance", 0.3),                   # r
    ("relevance_sq", 0.3),                # r²
    ("relevance_x_watch_fraction", 0.2),  # r · f
    ("relevance_x_experience", 0.15),     # r · n / (n + 10): the profile's reliability
    ("classifier", 0.15),                 # ê
    ("classifier_sq", 0.07),              # ê²
    ("classifier_x_user_classifier", 0.04),  # ê · m: lets the preferred ê move with m
    ("log_length", 0.7),                  # log(L / 240 s) (the catalog's log-sd is 0.7)
    ("log_length_x_relevance", 0.3),      # log(L / 240 s) · r
    ("log_age", 1.2),                     # log1p(age / 3600 s)
)
FEATURE_NAMES = tuple(name for name, _ in FEATURES)
_SCALES = np.array([scale for _, scale in FEATURES])


def candidate_features(observation: dict[str, np.ndarray]) -> np.ndarray:
    """The features :data:`FEATURES` of every candidate of a batched observation: ``(B, c, d)``
    float64, already divided by their scales; padding candidates' rows are 0. Elementwise
    arithmetic and :func:`recsim.arrays.dot_last` only: row ``i`` depends on row ``i`` of the
    observation alone, to the bit."""
    user = np.asarray(observation["user"], dtype=np.float64)
    u = np.asarray(observation["user_topics"], dtype=np.float64)
    x = np.asarray(observation["candidate_topics"], dtype=np.float64)
    e = np.asarray(observation["candidate_classifier"], dtype=np.float64)
    length = np.asarray(observation["candidate_length"], dtype=np.float64)
    age = np.asarray(observation["candidate_age"], dtype=np.float64)
    mask = np.asarray(observation["candidate_mask"]) > 0
    r = dot_last(x, u[:, None, :])
    f = user[:, _U["mean_watch_fraction"], None]
    m = user[:, _U["mean_classifier"], None]
    n = user[:, _U["n_clicks"], None]
    ell = np.log(np.maximum(length, 1.0) / 240.0)
    columns = (
        r, r * r, r * f, r * (n / (n + 10.0)), e, e * e, e * m, ell, ell * r,
        np.log1p(np.maximum(age, 0.0) / 3600.0),
    )
    phi = np.stack(columns, axis=-1) / _SCALES
    phi[~mask] = 0.0
    return phi


# ----------------------------------------------------------------------------- Plackett–Luce
def _log_softmax_over(scores: np.ndarray, avail: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Softmax probabilities ``(B, c)`` over the available entries of each row and each row's
    log-sum-exp ``(B,)`` (``-inf`` and probabilities 0 for a row with none available)."""
    s = np.where(avail, scores, -np.inf)
    top = np.max(s, axis=1)
    safe = np.where(np.isfinite(top), top, 0.0)
    z = np.exp(s - safe[:, None])
    total = z.sum(axis=1)
    p = np.divide(z, total[:, None], out=np.zeros_like(z), where=total[:, None] > 0)
    with np.errstate(divide="ignore"):
        lse = safe + np.log(total)
    return p, lse


def plackett_luce_log_prob(scores: np.ndarray, mask: np.ndarray, order: np.ndarray) -> np.ndarray:
    """Log-probability ``(B,)`` of the ordered slates ``order`` ``(B, k)`` (indices into the
    candidates, best first; ``-1`` for no item, only after the real ones) under Plackett–Luce
    with logits ``scores`` ``(B, c)`` (already divided by the temperature) over the candidates
    where ``mask`` ``(B, c)`` is true: ``Σ_j s_{i_j} − logsumexp_{R_j} s`` (module docstring)."""
    scores = np.asarray(scores, dtype=np.float64)
    avail = np.asarray(mask, dtype=bool).copy()
    order = np.asarray(order, dtype=np.int64)
    rows = np.arange(scores.shape[0])
    out = np.zeros(scores.shape[0])
    for j in range(order.shape[1]):
        idx = order[:, j]
        has = idx >= 0
        safe = np.where(has, idx, 0)
        _, lse = _log_softmax_over(scores, avail)
        out += np.where(has, scores[rows, safe] - np.where(has, lse, 0.0), 0.0)
        avail[rows[has], idx[has]] = False
    return out


def plackett_luce_score_grad(scores: np.ndarray, mask: np.ndarray, order: np.ndarray) -> np.ndarray:
    """``∂ log π / ∂ scores`` ``(B, c)`` of :func:`plackett_luce_log_prob`: for each position
    ``j``, +1 at the chosen candidate and ``−p_j`` (the softmax over the candidates still
    available) everywhere. The weights' gradient is ``Σ_c grad[:, c] φ[:, c, :]`` (divided by
    the temperature)."""
    scores = np.asarray(scores, dtype=np.float64)
    avail = np.asarray(mask, dtype=bool).copy()
    order = np.asarray(order, dtype=np.int64)
    rows = np.arange(scores.shape[0])
    grad = np.zeros(scores.shape)
    for j in range(order.shape[1]):
        idx = order[:, j]
        has = idx >= 0
        p, _ = _log_softmax_over(scores, avail)
        grad -= np.where(has[:, None], p, 0.0)
        grad[rows[has], idx[has]] += 1.0
        avail[rows[has], idx[has]] = False
    return grad


def gumbel_top_k(scores: np.ndarray, mask: np.ndarray, k: int, rng: np.random.Generator
                 ) -> tuple[np.ndarray, np.ndarray]:
    """A Plackett–Luce sample of ``min(k, count)`` candidates per row by the Gumbel-top-k
    trick: returns the perturbed scores ``(B, c)`` (``scores + Gumbel(0, 1)``, ``-inf`` on
    padding) and the ordering ``(B, k)`` (indices best first, ``-1`` beyond the row's real
    candidates) — the slate :func:`recsim.gym.observation.slates_from_scores` makes of those
    scores (stable sort, ties to the lower index)."""
    mask = np.asarray(mask, dtype=bool)
    perturbed = np.asarray(scores, dtype=np.float64) + rng.gumbel(size=mask.shape)
    noisy = np.where(mask, perturbed, -np.inf)
    order = np.argsort(-noisy, axis=1, kind="stable")[:, :k]
    count = mask.sum(axis=1)
    order = np.where(np.arange(order.shape[1])[None, :] < count[:, None], order, -1)
    if order.shape[1] < k:
        order = np.concatenate([order, np.full((order.shape[0], k - order.shape[1]), -1)], axis=1)
    return noisy, order


# ----------------------------------------------------------------------------- agents
def _masked(scores: np.ndarray, observation: dict[str, np.ndarray]) -> np.ndarray:
    return np.where(np.asarray(observation["candidate_mask"]) > 0, scores, -np.inf)


def _save(path: str | Path, kind: str, **arrays: Any) -> None:
    np.savez(Path(path), kind=np.array(kind), **arrays)


class LinearSoftmaxAgent:
    """A linear softmax (Plackett–Luce) policy: score ``s = φ·w / T`` per candidate
    (:func:`candidate_features`), slates sampled without replacement from ``softmax(s)``
    (module docstring). ``weights`` ``(d,)`` (default zeros: the uniformly random policy),
    ``temperature`` ``T`` > 0. ``greedy=True`` returns ``s`` (the slate is its top ``k``)."""

    action_kind = "scores"

    def __init__(self, weights: np.ndarray | None = None, temperature: float = 1.0):
        d = len(FEATURES)
        self.weights = np.zeros(d) if weights is None else np.array(weights, dtype=np.float64)
        if self.weights.shape != (d,):
            raise ValueError(f"weights must have shape ({d},) (one per feature {FEATURE_NAMES}); "
                             f"got {self.weights.shape}")
        if not temperature > 0:
            raise ValueError(f"temperature must be positive, got {temperature}")
        self.temperature = float(temperature)

    def scores(self, observation: dict[str, np.ndarray],
               phi: np.ndarray | None = None) -> np.ndarray:
        """``s = φ·w / T`` ``(B, c)``, ``-inf`` on padding (row-independent to the bit)."""
        phi = candidate_features(observation) if phi is None else phi
        return _masked(dot_last(phi, self.weights) / self.temperature, observation)

    def act(self, observation: dict[str, np.ndarray], rng: np.random.Generator | None = None,
            greedy: bool = False) -> np.ndarray:
        """Scores ``(B, c)``: ``s`` if ``greedy``, else ``s + Gumbel`` noise drawn with ``rng``
        (the top ``k`` of which is a Plackett–Luce sample)."""
        s = self.scores(observation)
        if greedy:
            return s
        rng = np.random.default_rng() if rng is None else rng
        return np.where(np.isfinite(s), s + rng.gumbel(size=s.shape), -np.inf)

    def sample(self, observation: dict[str, np.ndarray], rng: np.random.Generator, k: int
               ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """A Plackett–Luce slate of ``k`` per row for training: the perturbed scores ``(B, c)``
        to hand the environment, the ordering ``(B, k)`` it makes of them (:func:`gumbel_top_k`)
        and ``∇_w log π(ordering)`` ``(B, d)``."""
        phi = candidate_features(observation)
        s = self.scores(observation, phi)
        mask = np.asarray(observation["candidate_mask"]) > 0
        noisy, order = gumbel_top_k(s, mask, k, rng)
        return noisy, order, self._grad(phi, s, mask, order)

    def log_prob(self, observation: dict[str, np.ndarray], order: np.ndarray) -> np.ndarray:
        """``log π(order | observation)`` ``(B,)`` under the current weights."""
        mask = np.asarray(observation["candidate_mask"]) > 0
        return plackett_luce_log_prob(self.scores(observation), mask, order)

    def log_prob_grad(self, observation: dict[str, np.ndarray], order: np.ndarray) -> np.ndarray:
        """``∇_w log π(order | observation)`` ``(B, d)`` (module docstring)."""
        phi = candidate_features(observation)
        mask = np.asarray(observation["candidate_mask"]) > 0
        return self._grad(phi, self.scores(observation, phi), mask, order)

    def _grad(self, phi: np.ndarray, s: np.ndarray, mask: np.ndarray,
              order: np.ndarray) -> np.ndarray:
        ds = plackett_luce_score_grad(s, mask, order)
        return np.einsum("bc,bcd->bd", ds, phi) / self.temperature

    def save(self, path: str | Path) -> None:
        """Write the agent to ``path`` (``.npz``; :func:`load_agent` reads it back)."""
        _save(path, type(self).__name__, weights=self.weights,
              temperature=np.array(self.temperature), features=np.array(FEATURE_NAMES))

    @classmethod
    def _from(cls, data) -> LinearSoftmaxAgent:
        names = tuple(str(n) for n in data["features"].tolist())
        if names != FEATURE_NAMES:
            raise ValueError(f"the saved agent's features {names} are not this version's "
                             f"{FEATURE_NAMES}")
        return cls(data["weights"], float(data["temperature"]))

    def __repr__(self) -> str:
        weights = ", ".join(f"{n}={w:.3g}" for n, w in zip(FEATURE_NAMES, self.weights.tolist()))
        return f"LinearSoftmaxAgent({weights}, temperature={self.temperature:g})"


class RandomAgent:
    """Uniformly random slates: each real candidate gets a uniform score in [0, 1), padding
    ``-inf``. With ``rng`` and ``greedy=False`` the scores are drawn from ``rng``; with
    ``greedy=True`` (or no ``rng``) they come from a generator seeded with ``seed`` and a CRC32
    of the row's observation — random over decisions, yet deterministic and row-independent,
    so the random policy too can run as a scenario policy."""

    action_kind = "scores"

    def __init__(self, seed: int = 0):
        self.seed = int(seed)

    def act(self, observation: dict[str, np.ndarray], rng: np.random.Generator | None = None,
            greedy: bool = False) -> np.ndarray:
        mask = np.asarray(observation["candidate_mask"]) > 0
        if rng is not None and not greedy:
            return np.where(mask, rng.random(mask.shape), -np.inf)
        names = sorted(observation)
        out = np.empty(mask.shape)
        for i in range(mask.shape[0]):
            crc = 0
            for name in names:
                crc = zlib.crc32(np.ascontiguousarray(observation[name][i]).tobytes(), crc)
            out[i] = np.random.default_rng([self.seed, crc]).random(mask.shape[1])
        return np.where(mask, out, -np.inf)

    def save(self, path: str | Path) -> None:
        _save(path, type(self).__name__, seed=np.array(self.seed))

    @classmethod
    def _from(cls, data) -> RandomAgent:
        return cls(int(data["seed"]))

    def __repr__(self) -> str:
        return f"RandomAgent(seed={self.seed})"


_AGENTS = {cls.__name__: cls for cls in (LinearSoftmaxAgent, RandomAgent)}


def load_agent(path: str | Path) -> LinearSoftmaxAgent | RandomAgent:
    """The agent saved at ``path`` by ``save()``, of the class it was saved from. Raises
    ``FileNotFoundError`` or ``ValueError`` (not an agent file of this module)."""
    with np.load(Path(path), allow_pickle=False) as data:
        kind = str(data["kind"]) if "kind" in data.files else None
        if kind not in _AGENTS:
            raise ValueError(f"{str(path)!r} is not an agent saved by recsim.gym.agents "
                             f"(kind {kind!r}); known: {', '.join(_AGENTS)}")
        return _AGENTS[kind]._from(data)


# ----------------------------------------------------------------------------- environments
class _VectorOfOne:
    """A single environment seen as a vector environment of one, with same-step autoreset
    (what :func:`train` and :func:`evaluate` read of a vector environment)."""

    def __init__(self, env):
        self.env = env
        self.num_envs = 1
        self.single_action_space = env.action_space

    @staticmethod
    def _batch(values: dict[str, Any]) -> dict[str, np.ndarray]:
        return {name: np.asarray([v]) for name, v in values.items()}

    def reset(self, *, seed: int | None = None):
        obs, info = self.env.reset(seed=seed)
        return self._batch(obs), self._batch(info)

    def step(self, actions: np.ndarray):
        obs, reward, terminated, truncated, info = self.env.step(np.asarray(actions)[0])
        info = self._batch(info)
        if terminated or truncated:
            info["final_info"] = {name: v.copy() for name, v in info.items()}
            info["_final_info"] = np.ones(1, dtype=bool)
            obs, start = self.env.reset()
            info.update({name: v for name, v in self._batch(start).items() if name in info})
        return (self._batch(obs), np.array([reward], dtype=float), np.array([terminated]),
                np.array([truncated]), info)


def _vector(env, kind: str = "scores") -> Any:
    """``env`` as a vector environment: itself, a single environment wrapped, or a callable's
    result (either); ``TypeError`` unless it is a recsim environment whose actions are of
    ``kind`` (``"slate"`` or ``"scores"``, an agent's ``action_kind``)."""
    from .adapters import recsim_platform

    if callable(env) and not hasattr(env, "step"):
        env = env()
    platform = recsim_platform(env)
    if platform.action != kind:
        raise TypeError(f"the agent's actions are {kind!r} but the environment was made with action="
                        f"{platform.action!r}: make it with action={kind!r}")
    if getattr(env, "single_action_space", None) is None:
        env = _VectorOfOne(env)
    return env


def _slate_size(env) -> int:
    inner = env.env if isinstance(env, _VectorOfOne) else env
    return int(inner.unwrapped.scenario.recommender.slate_size)


# ----------------------------------------------------------------------------- training
def discounted_returns(rewards: np.ndarray, gamma: float, horizon: int | None = None) -> np.ndarray:
    """``G_t = Σ_{0 ≤ j < H} γ^j r_{t+j}`` ``(n,)`` for one episode's rewards ``(n,)``, ``H`` the
    ``horizon`` (``None``: to the end of the rewards)."""
    r = np.asarray(rewards, dtype=np.float64)
    n = r.shape[0]
    if horizon is None or horizon >= n:
        out = np.empty(n)
        acc = 0.0
        for t in range(n - 1, -1, -1):
            acc = r[t] + gamma * acc
            out[t] = acc
        return out
    powers = gamma ** np.arange(horizon)
    return np.array([float(np.dot(r[t: t + horizon], powers[: min(horizon, n - t)]))
                     for t in range(n)])


class _Adam:
    """Adam (Kingma and Ba 2015) for ascent on a vector of parameters."""

    def __init__(self, size: int, lr: float, betas: tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-8):
        self.lr, self.b1, self.b2, self.eps = lr, betas[0], betas[1], eps
        self.m, self.v, self.t = np.zeros(size), np.zeros(size), 0

    def step(self, grad: np.ndarray) -> np.ndarray:
        self.t += 1
        self.m = self.b1 * self.m + (1 - self.b1) * grad
        self.v = self.b2 * self.v + (1 - self.b2) * grad * grad
        m_hat = self.m / (1 - self.b1 ** self.t)
        v_hat = self.v / (1 - self.b2 ** self.t)
        return self.lr * m_hat / (np.sqrt(v_hat) + self.eps)


class _Pending:
    """One place's decisions whose returns are not complete yet: gradients and rewards."""

    def __init__(self):
        self.grads: list[np.ndarray] = []
        self.rewards: list[float] = []

    def complete(self, gamma: float, horizon: int | None,
                 ended: bool) -> tuple[list[np.ndarray], np.ndarray]:
        """Pop the decisions whose returns are complete (all when the episode ``ended``; those
        ``horizon`` rewards old otherwise) with their returns."""
        n = len(self.rewards)
        if ended:
            done = n
        elif horizon is not None:
            done = max(0, n - horizon + 1)
        else:
            done = 0
        if done == 0:
            return [], np.zeros(0)
        returns = discounted_returns(np.array(self.rewards), gamma, horizon)[:done]
        grads = self.grads[:done]
        del self.grads[:done], self.rewards[:done]
        return grads, returns


def train(env, agent: LinearSoftmaxAgent, steps: int, gamma: float = 0.0, lr: float = 0.05,
          seed: int = 0, baseline: str = "batch", update_every: int = 4,
          horizon: int | None = None, reward_scale: float = 60.0,
          progress: Callable[[dict[str, float]], None] | None = None) -> pd.DataFrame:
    """Train ``agent`` in place by REINFORCE with Plackett–Luce slates (module docstring) for
    ``steps`` vector steps of ``env`` (a vector environment made with ``action="scores"``, a
    single one, or a callable returning either; reset here with ``seed``, which also seeds the
    slates' Gumbel noise).

    ``gamma`` discounts per decision; ``horizon`` truncates returns after that many rewards
    (``None``: to the end of the episode; ``gamma == 0`` needs 1); rewards are divided by
    ``reward_scale`` (60: the environment's seconds become minutes); ``baseline``: ``"batch"``
    (subtract the update's mean return) or ``"none"``; an Adam step of size ``lr`` every
    ``update_every`` vector steps. ``progress`` is called with each update's record. With
    ``gamma > 0`` and returns to the end of the episode, returns are complete only when an
    episode ends, so an update sees the decisions of the few users whose stay just ended: use
    a larger ``update_every`` (``notebooks/06_rl_agents.ipynb`` uses 32 with 64 users; with 4
    the updates rest on about one user each and the weights wander).

    Returns the history, one row per update: ``step`` (vector steps so far), ``decisions`` (in
    the update), ``mean_return`` (of the update's decisions, in units of ``reward_scale``),
    ``episodes`` (ended since the previous update) and ``episode_watch_time`` (their mean
    total, seconds; NaN with none), ``grad_norm``, then the weights."""
    if baseline not in ("batch", "none"):
        raise ValueError(f"baseline must be 'batch' or 'none', got {baseline!r}")
    if not 0.0 <= gamma <= 1.0:
        raise ValueError(f"gamma must be in [0, 1], got {gamma}")
    venv = _vector(env)
    k = _slate_size(venv)
    horizon = 1 if gamma == 0 else horizon
    rng = np.random.default_rng([seed, 0x5EED])
    n = venv.num_envs
    obs, _ = venv.reset(seed=seed)
    adam = _Adam(agent.weights.shape[0], lr)
    pending = [_Pending() for _ in range(n)]
    grads: list[np.ndarray] = []
    returns: list[np.ndarray] = []
    episode_total = np.zeros(n)
    ended_totals: list[float] = []
    history = []
    for step in range(1, steps + 1):
        scores, _, g = agent.sample(obs, rng, k)
        obs, reward, terminated, truncated, _ = venv.step(scores)
        reward = np.asarray(reward, dtype=float)
        ended = np.asarray(terminated) | np.asarray(truncated)
        episode_total += reward
        for i in range(n):
            pending[i].grads.append(g[i])
            pending[i].rewards.append(reward[i] / reward_scale)
            got, G = pending[i].complete(gamma, horizon, bool(ended[i]))
            if got:
                grads.extend(got)
                returns.append(G)
        ended_totals.extend(episode_total[ended].tolist())
        episode_total[ended] = 0.0
        if step % update_every or not grads:
            continue
        G = np.concatenate(returns)
        A = G - G.mean() if baseline == "batch" else G.copy()
        sd = A.std()
        A = A / sd if sd > 0 else np.zeros_like(A)
        grad = (A[:, None] * np.array(grads)).mean(axis=0)
        agent.weights = agent.weights + adam.step(grad)
        record = {"step": step, "decisions": G.shape[0], "mean_return": float(G.mean()),
                  "episodes": len(ended_totals),
                  "episode_watch_time": float(np.mean(ended_totals)) if ended_totals else math.nan,
                  "grad_norm": float(np.linalg.norm(grad)),
                  **{f"w_{name}": float(w)
                     for name, w in zip(FEATURE_NAMES, agent.weights.tolist())}}
        history.append(record)
        if progress is not None:
            progress(record)
        grads, returns, ended_totals = [], [], []
    return pd.DataFrame(history)


# ----------------------------------------------------------------------------- evaluation
_STARTS = ("time", "wellbeing", "appetite", "user")
_SUMS = ("watch_time", "value", "clicks", "extreme_seconds", "n_surveys", "survey_sum")


def evaluate(env, agent, episodes: int | None = None, seed: int = 0, greedy: bool = True,
             max_steps: int = 1_000_000) -> pd.DataFrame:
    """Run ``agent`` in ``env`` (a vector environment, a single one, or a callable returning
    either) reset with ``seed`` until ``episodes`` episodes (default: one per place) have
    ended; ``greedy`` as in ``act`` (sampling uses a generator seeded with ``seed``).

    Episode ``e`` is the ``e // N``-th episode of place ``e % N`` (``N`` places), so with the
    same ``seed`` and ``N`` every agent meets the same user as episode ``e`` (common random
    numbers) and results pair up by ``episode``. One row per episode, in episode order:
    ``episode``, ``place``, ``user`` (stream id), ``n_decisions``, the episode's totals
    ``watch_time`` (seconds), ``value`` (hidden), ``clicks``, ``extreme_seconds``,
    ``n_surveys``, ``survey_sum``; the user's hidden ``wellbeing_first`` / ``wellbeing``
    (at the first decision / at the end) and ``appetite_first`` / ``appetite`` with
    ``appetite_change`` (last − first), ``churned``, and ``start`` / ``end`` (seconds)."""
    venv = _vector(env, getattr(agent, "action_kind", "scores"))
    n = venv.num_envs
    episodes = n if episodes is None else int(episodes)
    quota = np.array([len(range(i, episodes, n)) for i in range(n)])
    done = np.zeros(n, dtype=np.int64)
    rng = np.random.default_rng([seed, 0xE7A1])
    obs, info = venv.reset(seed=seed)
    first = {name: np.array(info[name], dtype=np.int64 if name == "user" else float)
             for name in _STARTS}
    totals = {name: np.zeros(n) for name in _SUMS}
    decisions = np.zeros(n, dtype=np.int64)
    rows = []
    for _ in range(max_steps):
        if (done >= quota).all():
            break
        actions = agent.act(obs, rng=rng, greedy=greedy)
        obs, _, terminated, truncated, info = venv.step(actions)
        for name in _SUMS:
            totals[name] += np.asarray(info[name], dtype=float)
        decisions += 1
        ended = np.asarray(terminated) | np.asarray(truncated)
        for i in np.flatnonzero(ended).tolist():
            if done[i] < quota[i]:
                final = {name: float(info["final_info"][name][i])
                         for name in ("time", "wellbeing", "appetite")}
                rows.append({
                    "episode": i + n * int(done[i]), "place": i, "user": int(first["user"][i]),
                    "n_decisions": int(decisions[i]),
                    **{name: float(totals[name][i]) for name in _SUMS},
                    "wellbeing_first": float(first["wellbeing"][i]),
                    "wellbeing": final["wellbeing"],
                    "appetite_first": float(first["appetite"][i]), "appetite": final["appetite"],
                    "appetite_change": final["appetite"] - float(first["appetite"][i]),
                    "churned": bool(terminated[i]), "start": float(first["time"][i]),
                    "end": final["time"],
                })
            done[i] += 1
            for name in _STARTS:  # the next user's, in the same-step reset
                first[name][i] = info[name][i]
            for name in _SUMS:
                totals[name][i] = 0.0
            decisions[i] = 0
    else:
        raise RuntimeError(f"evaluate: {episodes} episodes did not end within {max_steps} steps")
    return pd.DataFrame(rows).sort_values("episode", ignore_index=True)


def paired_difference(a: pd.DataFrame, b: pd.DataFrame,
                      column: str = "watch_time") -> dict[str, float]:
    """The per-episode difference ``a − b`` of ``column`` between two :func:`evaluate` results
    of the same episodes (same seed and places; checked by user): ``mean``, ``se`` (the sd of
    the differences / √n), ``n``."""
    merged = a.merge(b, on="episode", suffixes=("_a", "_b"), validate="one_to_one")
    if not (merged["user_a"] == merged["user_b"]).all():
        raise ValueError("the two evaluations met different users: use the same seed and "
                         "number of places")
    d = merged[f"{column}_a"].to_numpy(dtype=float) - merged[f"{column}_b"].to_numpy(dtype=float)
    n = d.shape[0]
    se = float(d.std(ddof=1) / math.sqrt(n)) if n > 1 else math.nan
    return {"mean": float(d.mean()), "se": se, "n": n}
