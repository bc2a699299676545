"""Target 11: Jiang et al.'s degeneracy ordering (Jiang, Chiappa, Lattimore, György & Kohli,
"Degenerate Feedback Loops in Recommender Systems", AIES 2019).

In the paper a user's interests μ_t move with what the system recommends, and the system learns
from the feedback; the loop is *degenerate* when ‖μ_t − μ₀‖ keeps growing. Its simulations
compare how fast, by the slope of log‖μ_t − μ₀‖ against log t: the drift grows fastest under a
greedy recommender, slower with ε-greedy exploration (ε = 0.1, slower still at 0.3), and slower
still when the candidate pool grows with new items.

recsim's μ is the users' hidden topic preference θ (docs/model.md §4, §6: θ moves toward what
is watched, ``formulas.update_topic``, and relaxes toward θ₀ between sessions). The check runs
``scenarios/validation/degeneracy.yaml``: no warm-up, so θ = θ₀ at t = 0 (the paper's μ₀), and
no churn, so every time's drift is over the same users. Conditions, each on the same
replications (common random numbers):

* **greedy**: the learned ``engagement`` ranker (it ranks by predicted watch time, retrained daily);
* **ε = 0.1, ε = 0.3**: ``epsilon_greedy`` around it (each slot a random candidate with
  probability ε);
* **growing pool**: the greedy ranker with ``recommender.candidate_window = 2d``, so that the
  candidates are drawn among the last two days of uploads only (issue 13's growing pool: the
  pool follows the catalog as new items arrive);
* **random** (ε = 1), for reference.

The drift D(t) is the ``topic_drift`` metric, the mean over users of ‖θ_t − θ₀‖, read at every
day's end t = 1, …, T (on the first day, before the ranker's first fit, every condition serves a
random-order feed). Per replication the slope is the least-squares slope of log D(t) on log t;
the ordering is checked on the paired differences of slopes (greedy − ε 0.1, ε 0.1 − ε 0.3,
ε 0.3 − growing pool), each with a 95% Student-t interval over replications that must lie above
0. Status: reproduced when the three hold; partly reproduced when exploration measurably slows
the drift (greedy − ε 0.3 above 0) or one of them holds; else not reproduced. For information:
greedy − growing pool (the pool alone), greedy − random, the same slopes for the appetite's
drift (mean a_t − mean a₀), the drift level D(T), and what users watch — the watched items'
relevance θ₀·x to their natural taste, watches per user-day and the share of repeats (an item
the user had already watched) — which shows how much each condition changes consumption.
"""

from __future__ import annotations

import numpy as np

from . import Outcome, Target
from ._run import scenario, simulate, t_interval

#: sizes: (replications, users, horizon in days, with the random feed)
_SIZES = {"fast": (3, 40, 4, False), "full": (6, 200, 7, True)}
#: the growing candidate pool: candidates among the last two days of uploads
_WINDOW = "recommender.candidate_window=2d"
#: (label, policy index in the scenario, growing pool)
_CONDITIONS = (("greedy", 0, False), ("ε 0.1", 1, False), ("ε 0.3", 2, False), ("growing pool", 0, True),
               ("random", 3, False))
#: the ordering checked: (faster, slower)
_LINKS = (("greedy", "ε 0.1"), ("ε 0.1", "ε 0.3"), ("ε 0.3", "growing pool"))


def _curve(result, metric: str) -> tuple[np.ndarray, np.ndarray]:
    """(t in days, value) of a state metric at each bucket end, t = 0 included."""
    rows = sorted((r[3], r[4]) for r in result.metrics if r[0] == metric)
    return np.array([t for t, _ in rows]) / 86400.0, np.array([v for _, v in rows])


def log_log_slope(t: np.ndarray, d: np.ndarray) -> float:
    """Least-squares slope of log d on log t (the paper's degeneracy rate)."""
    return float(np.polyfit(np.log(t), np.log(d), 1)[0])


def _consumption(world, events) -> tuple[float, float, float]:
    """(mean relevance θ₀·x of the watched items, watch-time weighted; watches per user-day; the
    share of watches that are repeats: an item the user had already watched)."""
    watches = events[events["event"] == "watch"]
    users = watches["user_id"].to_numpy().astype(np.int64)
    items = watches["item_id"].to_numpy().astype(np.int64)
    tau = watches["watch_time"].to_numpy()
    relevance = np.einsum("ij,ij->i", world.state["theta0"][users], world.catalog.topics[items])
    user_days = world.n_modelled * world.scenario.horizon / 86400.0
    repeats = 1.0 - np.unique(users * world.catalog.n_items + items).shape[0] / max(users.shape[0], 1)
    return float((relevance * tau).sum() / tau.sum()), float(len(watches) / user_days), float(repeats)


def _check(size: str) -> Outcome:
    reps, users, days, with_random = _SIZES[size]
    conditions = [c for c in _CONDITIONS if with_random or c[0] != "random"]
    common = [f"replications={reps}", f"population.n_users={users}", f"horizon={days}d"]
    fixed = scenario("degeneracy", common)
    growing = scenario("degeneracy", [*common, _WINDOW])
    slope = {c: [] for c, _, _ in conditions}
    slope_a = {c: [] for c, _, _ in conditions}
    level = {c: [] for c, _, _ in conditions}
    relevance = {c: [] for c, _, _ in conditions}
    watches = {c: [] for c, _, _ in conditions}
    repeats = {c: [] for c, _, _ in conditions}
    for r in range(reps):
        for label, policy, pool in conditions:
            world, result, events = simulate(growing if pool else fixed, policy, r)
            t, d = _curve(result, "topic_drift")
            _, a = _curve(result, "mean_appetite")
            late = t >= 1.0  # from the ranker's first fit on
            slope[label].append(log_log_slope(t[late], d[late]))
            rise = a[late] - a[0]
            slope_a[label].append(log_log_slope(t[late], rise) if (rise > 0).all() else np.nan)
            level[label].append(d[-1])
            rel, per_day, again = _consumption(world, events)
            relevance[label].append(rel)
            watches[label].append(per_day)
            repeats[label].append(again)
    s = {c: np.asarray(v) for c, v in slope.items()}
    details = [
        (f"{reps} replications × {users} users × {days} d (no warm-up, no churn), the same replications for every "
         f"condition (common random numbers); slope of log D(t) on log t over t = 1 … {days} d per replication, "
         f"D(t) = mean ‖θ_t − θ₀‖; 95% Student-t intervals over replications"),
    ]
    for label, _, _ in conditions:
        m, lo, hi = t_interval(s[label])
        am, alo, ahi = t_interval(np.asarray(slope_a[label]))
        details.append(
            f"{label}: slope {m:.3f} [{lo:.3f}, {hi:.3f}]; D({days} d) {np.mean(level[label]):.4f}; appetite drift "
            f"slope {am:.2f} [{alo:.2f}, {ahi:.2f}] (for information); watched items' relevance θ₀·x "
            f"{np.mean(relevance[label]):.3f}, {np.mean(watches[label]):.1f} watches per user-day, "
            f"{np.mean(repeats[label]):.0%} of them repeats (an item the user had watched)")
    held = []
    pieces = []
    for fast, slow in _LINKS:
        diff = s[fast] - s[slow]
        m, lo, hi = t_interval(diff)
        ok = bool(lo > 0)
        held.append(ok)
        pieces.append(f"{fast} − {slow} {m:+.3f} [{lo:+.3f}, {hi:+.3f}]")
        details.append(f"slope {fast} − {slow} (paired): {m:+.4f} [{lo:+.4f}, {hi:+.4f}], per replication "
                       f"{', '.join(f'{x:+.3f}' for x in diff)} — expected > 0 (interval above 0): "
                       f"{'holds' if ok else 'not resolved' if hi > 0 else 'reversed'}")
    g_m, g_lo, g_hi = t_interval(s["greedy"] - s["ε 0.3"])
    p_m, p_lo, p_hi = t_interval(s["greedy"] - s["growing pool"])
    exploration = bool(g_lo > 0)
    details.append(f"slope greedy − ε 0.3 (paired): {g_m:+.4f} [{g_lo:+.4f}, {g_hi:+.4f}]; greedy − growing pool (the "
                   f"same ranker, the pool alone): {p_m:+.4f} [{p_lo:+.4f}, {p_hi:+.4f}]")
    if with_random:
        r_m, r_lo, r_hi = t_interval(s["greedy"] - s["random"])
        details[-1] += f"; greedy − random (ε = 1): {r_m:+.3f} [{r_lo:+.3f}, {r_hi:+.3f}]"
    status = "reproduced" if all(held) else "partly reproduced" if exploration or any(held) else "not reproduced"
    slopes = ", ".join(f"{label} {np.mean(s[label]):.3f}" for label, _, _ in conditions)
    return Outcome(value=f"slopes {slopes}; {'; '.join(pieces)}", status=status, details=details)


TARGET = Target(
    number=11,
    key="degeneracy",
    title="Degeneracy ordering",
    source="Jiang, Chiappa, Lattimore, György & Kohli 2019, Degenerate Feedback Loops in Recommender Systems "
           "(AIES)",
    expected="preference drift fastest under greedy, slower with ε-greedy (0.1, 0.3), slower still with a growing "
             "candidate pool (slopes of log‖μ_t − μ₀‖ against log t)",
    tolerance="paired slope differences (common random numbers): 95% Student-t intervals over 6 replications "
              "(200 users, 7 d) must lie above 0",
    check=_check,
    status="partly reproduced",
    reason="exploration slows the drift only a little, and a growing pool does not slow it. ε-greedy at ε = 0.3 "
           "drifts slower than at ε = 0.1 (slope 0.78 against 0.82, paired difference +0.038 [+0.022, +0.053]), "
           "but greedy → ε 0.1 is not resolved (+0.008 [−0.005, +0.020]): users pick what they watch from the "
           "slate by allure, so the random slots are seldom watched (the watched items' relevance to θ₀ is "
           "0.943–0.944 under greedy and both ε; a wholly random feed lowers it to 0.903 and its slope to 0.57). A "
           "pool of fresh candidates (candidate_window 2 d) drifts exactly as fast as the whole catalog (greedy − "
           "growing pool −0.000 [−0.026, +0.026]; slope 0.82): the learned ranker scores items by their features, "
           "with no per-item uncertainty that new items would make it explore. (Before watched items left the "
           "candidate pools, the small pool was watched again and again, 73% repeats, and drifted faster; now "
           "there are none.) The paper's mechanisms — users consume what is recommended, new items carry an "
           "interest not yet reinforced — are absent. θ is a unit vector relaxing toward θ₀ (τ_θ = 3 d), so the "
           "drift is bounded and the slopes are below 1. The fast size (3 replications × 40 users × 4 d) resolves "
           "none of the differences",
    fast_status="not reproduced",
)
