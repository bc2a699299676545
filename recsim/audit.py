"""Counterfactual-bot audits: how much of a user's drift is the recommender, how much the user.

The design is Hosseinmardi et al. (PNAS 2024, "counterfactual bots"): follow a real user's
history for a while, then fork a bot that follows the recommender by a fixed rule, and compare
what the two consume from the fork on. In a simulator the fork is exact: two runs of the same
world under common random numbers, identical (every draw, every slate) until the user's
``after_watches``-th watch of the horizon; from there, in the *bot* arm, the first ``users``
modelled users follow a scripted rule (``population.takeover``), and in the *user* arm they go on
by the behaviour model. Whatever differs afterwards is the difference between the user's own
choices and the rule's, given what the recommender offers.

:func:`counterfactual_bots` runs both arms for every policy × replication of a scenario and
returns tidy trajectories (one row per watch: arm, user, index of the watch in the horizon,
true and classifier extremeness); :func:`paired_differences` gives, per policy and watch index,
the mean bot − user difference with a Student-t 95% interval over replications (each
replication's users share one platform, so the replication, not the user, is the independent
unit).
"""

from __future__ import annotations

import math
import tempfile
from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd
import pyarrow.dataset as ds

from .config import Scenario, Takeover, scenario_from_dict
from .eventlog import EventLog
from .world import build_world

__all__ = ["counterfactual_bots", "paired_differences", "arm_scenario", "ARMS"]

#: the two arms of the design: the users by the behaviour model, and the bots forked from them
ARMS = ("user", "bot")


def arm_scenario(scenario: Scenario, takeover: Takeover, arm: str) -> Scenario:
    """The scenario of one arm of the design: ``"bot"`` with the takeover, ``"user"`` without.

    For what :func:`counterfactual_bots` does not return (the served slates, say): run the two
    arms' scenarios yourself, with impressions logged. Raises ValueError for an unknown arm."""
    if arm not in ARMS:
        raise ValueError(f"arm must be one of {ARMS}, not {arm!r}")
    data = scenario.dump()
    data["population"]["takeover"] = takeover.model_dump(mode="json") if arm == "bot" else None
    return scenario_from_dict(data, f"<{arm} arm>")


def counterfactual_bots(
    scenario: Scenario,
    takeover: Takeover | None = None,
    *,
    progress: Callable[[str], None] | None = None,
) -> pd.DataFrame:
    """Both arms of the counterfactual-bot design for every policy × replication.

    ``takeover`` (default: the scenario's ``population.takeover``) names the users forked (the
    first ``users`` modelled users), the fork point (``after_watches`` of their own watches in
    the horizon) and the bot's rule. Returns one row per watch of a forked user in the horizon:
    ``policy, replication, arm ("user" | "bot"), user_id, index (0-based, the watch's index in
    the horizon), time (s), item_id, position, watch_time (s), true_extremeness, classifier``.
    Raises ValueError without a takeover."""
    takeover = takeover if takeover is not None else scenario.population.takeover
    if takeover is None:
        raise ValueError("no takeover: give one, or set population.takeover in the scenario")
    if scenario.engine == "reference":
        from .engine.reference import simulate
    else:
        from .engine.batched import simulate_batched as simulate
    frames = []
    with tempfile.TemporaryDirectory(prefix="recsim-audit-") as tmp:
        for arm in ARMS:
            arm_sc = arm_scenario(scenario, takeover, arm)
            for replication in range(scenario.replications):
                for spec in arm_sc.policies:
                    if progress is not None:
                        progress(f"{spec.name} × replication {replication}, {arm} arm")
                    world = build_world(arm_sc, replication)
                    path = Path(tmp) / f"{arm}-{spec.name}-{replication}.parquet"
                    log = EventLog(path, log_impressions=False,
                                   user_limit=min(takeover.users, world.n_modelled), groups=world.groups)
                    simulate(world, spec, log)
                    table = ds.dataset(path).to_table(
                        columns=["time", "user_id", "item_id", "position", "watch_time", "true_extremeness"],
                        filter=(ds.field("event") == "watch") & (ds.field("user_id") < takeover.users),
                    ).to_pandas()
                    table = table.sort_values(["user_id", "time"], kind="stable")
                    table["index"] = table.groupby("user_id").cumcount()
                    table["classifier"] = world.catalog.classifier[table["item_id"].to_numpy()]
                    table.insert(0, "policy", spec.name)
                    table.insert(1, "replication", replication)
                    table.insert(2, "arm", arm)
                    frames.append(table)
    out = pd.concat(frames, ignore_index=True)
    out["arm"] = pd.Categorical(out["arm"], list(ARMS))
    out["policy"] = pd.Categorical(out["policy"], [spec.name for spec in scenario.policies])
    columns = ["policy", "replication", "arm", "user_id", "index", "time", "item_id", "position", "watch_time",
               "true_extremeness", "classifier"]
    return out[columns].sort_values(["policy", "replication", "arm", "user_id", "index"]).reset_index(drop=True)


def paired_differences(trajectories: pd.DataFrame, value: str = "true_extremeness",
                       level: float = 0.95) -> pd.DataFrame:
    """Per policy and watch index: the mean over forked users of bot − user ``value`` (users
    with that watch in both arms), its Student-t interval over replications (the replication
    means are the independent units; no interval with fewer than 2), and the arms' means.

    Columns ``policy, index, bot, user, difference, ci_low, ci_high, n_replications, n_pairs``.
    """
    from .stats import t_interval

    wide = trajectories.pivot_table(index=["policy", "replication", "user_id", "index"], columns="arm",
                                    values=value, observed=True, aggfunc="first")
    wide = wide.dropna(subset=[arm for arm in ARMS if arm in wide]).reset_index()
    if wide.empty or not set(ARMS) <= set(wide.columns):
        return pd.DataFrame(columns=["policy", "index", "bot", "user", "difference", "ci_low", "ci_high",
                                     "n_replications", "n_pairs"])
    wide["difference"] = wide["bot"] - wide["user"]
    per_rep = wide.groupby(["policy", "index", "replication"], observed=True).agg(
        bot=("bot", "mean"), user=("user", "mean"), difference=("difference", "mean"), n=("difference", "size"))
    rows = []
    for (policy, index), sub in per_rep.groupby(level=["policy", "index"], observed=True):
        diffs = sub["difference"].to_numpy()
        mean, low, high = t_interval(diffs[None, :], level)
        rows.append({"policy": policy, "index": int(index), "bot": float(sub["bot"].mean()),
                     "user": float(sub["user"].mean()), "difference": float(mean[0]),
                     "ci_low": float(low[0]) if diffs.shape[0] > 1 else math.nan,
                     "ci_high": float(high[0]) if diffs.shape[0] > 1 else math.nan,
                     "n_replications": int(diffs.shape[0]), "n_pairs": int(sub["n"].sum())})
    return pd.DataFrame(rows)


def audit_summary(trajectories: pd.DataFrame, after_watches: int, value: str = "true_extremeness",
                  level: float = 0.95) -> pd.DataFrame:
    """Per policy, over the watches after the fork (index ≥ ``after_watches``) that both arms
    have: the arms' mean ``value`` and the bot − user difference, with a Student-t interval over
    replications, and the same before the fork (which common random numbers make exactly 0
    under a policy that does not learn from the logs). Columns ``policy, period ("before fork"
    | "after fork"), bot, user, difference, ci_low, ci_high, n_replications, n_pairs``."""
    from .stats import t_interval

    wide = trajectories.pivot_table(index=["policy", "replication", "user_id", "index"], columns="arm",
                                    values=value, observed=True, aggfunc="first").dropna().reset_index()
    rows = []
    if wide.empty or not set(ARMS) <= set(wide.columns):
        return pd.DataFrame(rows, columns=["policy", "period", "bot", "user", "difference", "ci_low", "ci_high",
                                           "n_replications", "n_pairs"])
    wide["period"] = np.where(wide["index"] >= after_watches, "after fork", "before fork")
    wide["difference"] = wide["bot"] - wide["user"]
    for policy in trajectories["policy"].cat.categories if hasattr(trajectories["policy"], "cat") else \
            trajectories["policy"].unique():
        for period in ("before fork", "after fork"):
            sub = wide[(wide["policy"] == policy) & (wide["period"] == period)]
            if sub.empty:
                continue
            per_rep = sub.groupby("replication").agg(bot=("bot", "mean"), user=("user", "mean"),
                                                     difference=("difference", "mean"))
            diffs = per_rep["difference"].to_numpy()
            mean, low, high = t_interval(diffs[None, :], level)
            rows.append({"policy": policy, "period": period, "bot": float(per_rep["bot"].mean()),
                         "user": float(per_rep["user"].mean()), "difference": float(mean[0]),
                         "ci_low": float(low[0]), "ci_high": float(high[0]),
                         "n_replications": int(diffs.shape[0]), "n_pairs": int(sub.shape[0])})
    return pd.DataFrame(rows)


__all__ += ["audit_summary"]
