"""Time-bucketed metrics (DESIGN §2.8), computed while a run goes.

Flow metrics accumulate over a bucket from the events; state metrics are snapshots of the
hidden state at the bucket's end (and once at t=0, the start of the horizon). Output rows are
tidy: ``metric, kind ('flow' | 'state'), start, end, value`` with times in seconds.
"""

from __future__ import annotations

import math

import numpy as np
from scipy.stats import spearmanr

from .users import model
from .users.population import Population

__all__ = ["HEADLINE", "FLOW_METRICS", "STATE_METRICS", "MetricsCollector", "effective_state", "spearman"]

DAY = 86400.0

FLOW_METRICS = (
    "watch_minutes_per_user_day",
    "sessions_per_user_day",
    "clicks_per_user_day",
    "active_users",
    "value_per_user_day",
    "cumulative_value_per_user",
    "regret_minutes_per_user_day",
    "consumed_extremeness",
    "extreme_share",
    "topic_entropy",
    "proxy_validity",
    "survey_mean",
)
STATE_METRICS = (
    "mean_wellbeing",
    "mean_appetite",
    "topic_drift",
    "mean_habit",
    "retained_users",
    "churn_rate",
)


def spearman(x: np.ndarray, y: np.ndarray) -> float:
    """Spearman rank correlation, NaN when undefined (fewer than 3 points or a constant)."""
    if len(x) < 3 or np.all(x == x[0]) or np.all(y == y[0]):
        return math.nan
    return float(spearmanr(x, y).statistic)


def effective_state(pop: Population, now: float, scenario) -> dict[str, np.ndarray]:
    """Hidden state as of ``now``: users between sessions have relaxed since their last
    session (θ → θ₀, a → a₀, S → 0, ψ decays). Pure: ``pop`` is not mutated."""
    b = scenario.behaviour
    idle = ~pop.in_session
    dt = np.where(idle, now - pop.state_time, 0.0)
    appetite = np.where(idle, model.relax_toward(pop.appetite, pop.appetite0, dt, b.appetite.relax), pop.appetite)
    satisfaction = np.where(idle, model.relax_toward(pop.satisfaction, 0.0, dt, b.satisfaction.relax), pop.satisfaction)
    keep = np.exp(-dt / b.topic.relax)[:, None]
    theta = pop.theta0 + (pop.theta - pop.theta0) * keep
    theta /= np.linalg.norm(theta, axis=1, keepdims=True)
    habit = pop.habit * np.exp(-(now - pop.habit_time) / b.habit.relax)
    return {
        "appetite": appetite,
        "satisfaction": satisfaction,
        "wellbeing": model.wellbeing(satisfaction, b.satisfaction.kappa),
        "theta": theta,
        "topic_drift": np.linalg.norm(theta - pop.theta0, axis=1),
        "habit": habit,
    }


class MetricsCollector:
    """Accumulates flow metrics from engine callbacks and emits rows at bucket ends."""

    def __init__(self, n_users: int, n_topics: int, extreme_threshold: float):
        self.n_users = n_users
        self.threshold = extreme_threshold
        self.rows: list[tuple[str, str, float, float, float]] = []
        self.cumulative_value = 0.0
        # whole-horizon totals (for the run's headline figures)
        self.total = dict(watch=0.0, sessions=0, clicks=0, value=0.0, regret=0.0, ext=0.0, extreme=0.0)
        self.all_tau: list[float] = []
        self.all_value: list[float] = []
        self.all_surveys: list[float] = []
        self.user_watch = np.zeros(n_users)
        self.user_sessions = np.zeros(n_users, dtype=np.int64)
        self.user_value = np.zeros(n_users)
        self.user_ext = np.zeros(n_users)
        self._n_topics = n_topics
        self._new_bucket()

    def _new_bucket(self) -> None:
        self.b_watch = 0.0
        self.b_sessions = 0
        self.b_clicks = 0
        self.b_value = 0.0
        self.b_regret = 0.0
        self.b_ext = 0.0
        self.b_extreme = 0.0
        self.b_tau: list[float] = []
        self.b_values: list[float] = []
        self.b_surveys: list[float] = []
        self.b_active: set[int] = set()
        self.b_topics: dict[int, np.ndarray] = {}

    # ---- engine callbacks (only called for events at t >= 0)
    def on_session(self, user: int) -> None:
        self.b_sessions += 1
        self.b_active.add(user)
        self.user_sessions[user] += 1

    def on_click(self) -> None:
        self.b_clicks += 1

    def on_watch(self, user: int, tau: float, value: float, extremeness: float, topics: np.ndarray) -> None:
        self.b_watch += tau
        self.b_value += value
        if value < 0:
            self.b_regret += tau
        self.b_ext += tau * extremeness
        if extremeness > self.threshold:
            self.b_extreme += tau
        self.b_tau.append(tau)
        self.b_values.append(value)
        mix = self.b_topics.get(user)
        if mix is None:
            self.b_topics[user] = tau * np.maximum(topics, 0.0)
        else:
            mix += tau * np.maximum(topics, 0.0)
        self.user_watch[user] += tau
        self.user_value[user] += value
        self.user_ext[user] += tau * extremeness

    def on_survey(self, score: float) -> None:
        self.b_surveys.append(score)

    # ---- bucket boundaries
    def _entropy(self) -> float:
        if not self.b_topics:
            return math.nan
        mix = np.array(list(self.b_topics.values()))
        p = mix / mix.sum(axis=1, keepdims=True)
        with np.errstate(divide="ignore", invalid="ignore"):
            h = -np.where(p > 0, p * np.log(p), 0.0).sum(axis=1)
        return float(h.mean())

    def close_bucket(self, start: float, end: float) -> None:
        """Emit the flow rows of the bucket ``[start, end)`` and start a new one."""
        user_days = self.n_users * (end - start) / DAY
        w = self.b_watch
        self.cumulative_value += self.b_value
        flows = {
            "watch_minutes_per_user_day": w / 60.0 / user_days,
            "sessions_per_user_day": self.b_sessions / user_days,
            "clicks_per_user_day": self.b_clicks / user_days,
            "active_users": float(len(self.b_active)),
            "value_per_user_day": self.b_value / user_days,
            "cumulative_value_per_user": self.cumulative_value / self.n_users,
            "regret_minutes_per_user_day": self.b_regret / 60.0 / user_days,
            "consumed_extremeness": self.b_ext / w if w > 0 else math.nan,
            "extreme_share": self.b_extreme / w if w > 0 else math.nan,
            "topic_entropy": self._entropy(),
            "proxy_validity": spearman(np.array(self.b_tau), np.array(self.b_values)),
            "survey_mean": float(np.mean(self.b_surveys)) if self.b_surveys else math.nan,
        }
        for name, value in flows.items():
            self.rows.append((name, "flow", start, end, float(value)))
        t = self.total
        t["watch"] += w
        t["sessions"] += self.b_sessions
        t["clicks"] += self.b_clicks
        t["value"] += self.b_value
        t["regret"] += self.b_regret
        t["ext"] += self.b_ext
        t["extreme"] += self.b_extreme
        self.all_tau += self.b_tau
        self.all_value += self.b_values
        self.all_surveys += self.b_surveys
        self._new_bucket()

    def snapshot(self, pop: Population, now: float, scenario) -> dict[str, np.ndarray]:
        """Emit the state rows at ``now``; returns the effective per-user state."""
        state = effective_state(pop, now, scenario)
        churned = float(pop.churned.sum())
        values = {
            "mean_wellbeing": state["wellbeing"].mean(),
            "mean_appetite": state["appetite"].mean(),
            "topic_drift": state["topic_drift"].mean(),
            "mean_habit": state["habit"].mean(),
            "retained_users": self.n_users - churned,
            "churn_rate": churned / self.n_users,
        }
        for name, value in values.items():
            self.rows.append((name, "state", now, now, float(value)))
        return state

    def headline(self, horizon: float) -> dict[str, float]:
        """Whole-horizon figures of one run (one policy, one replication)."""
        user_days = self.n_users * horizon / DAY
        t = self.total
        return {
            "watch_minutes_per_user_day": t["watch"] / 60.0 / user_days,
            "sessions_per_user_day": t["sessions"] / user_days,
            "value_per_user_day": t["value"] / user_days,
            "regret_minutes_per_user_day": t["regret"] / 60.0 / user_days,
            "consumed_extremeness": t["ext"] / t["watch"] if t["watch"] > 0 else math.nan,
            "extreme_share": t["extreme"] / t["watch"] if t["watch"] > 0 else math.nan,
            "proxy_validity": spearman(np.array(self.all_tau), np.array(self.all_value)),
            "survey_mean": float(np.mean(self.all_surveys)) if self.all_surveys else math.nan,
        }


#: Whole-horizon figures of a run, one value per (policy, replication); the summary reports
#: their mean and 95% CI over replications.
HEADLINE = (
    "watch_minutes_per_user_day",
    "sessions_per_user_day",
    "final_wellbeing",
    "wellbeing_change",
    "value_per_user_day",
    "regret_minutes_per_user_day",
    "consumed_extremeness",
    "consumed_extremeness_change",
    "extreme_share",
    "final_appetite",
    "appetite_change",
    "topic_drift",
    "churn_rate",
    "proxy_validity",
    "survey_mean",
)
