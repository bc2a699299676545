"""Target 15: Ribeiro et al.'s migration pattern (Ribeiro, Ottoni, West, Almeida & Meira,
"Auditing radicalization pathways on YouTube", FAT* 2020).

The paper follows YouTube commenters over the years: users consistently migrate from milder
communities (the I.D.W., the Alt-lite) to the extreme one (the Alt-right), and among the users
who engage with the extreme content, a growing share are users whose earlier activity was on
the milder content only.

recsim's mechanism for such a migration is the appetite ratchet (docs/model.md §6.1: watching
items past the appetite raises it, and allure's grip pulls toward items just past it), driven
by the learned engagement ranker. The check runs ``scenarios/validation/migration.yaml`` (no
warm-up: on day 0 the ranker has not been fitted yet and serves its candidates in random order,
so day 0 is each user's consumption before the feedback loop) with the ratchet on (the
defaults) and off (``behaviour.appetite.eta_up = 0``), on the same replications (common random
numbers), and reads the event log (every watch, with the watched item's true extremeness e):

* a user's day-0 consumption is **only mild** if they watched something on day 0 and nothing
  with e > 0.4 (``outputs.extreme_threshold``);
* on each later day k, the user is an **extreme consumer** if more than half of their watch
  time that day went to items with e > 0.4;
* the **migrant share** M: among the extreme consumers of a span of days, the share whose day-0
  consumption was only mild (user-days pooled over the span). M_early over the first days after
  the ranker's first fit (days 1–4 at the full size), M_late over the last days of the horizon
  (the last 7 of 16); the **growth** is M_late − M_early.

Expected: with the ratchet on the migrant share grows (growth > 0); with it off the pattern
collapses (growth on − growth off > 0, paired by replication). Tolerance: 95% Student-t
intervals over replications above 0. For information: the share of users who are extreme
consumers, early and late, and the migration itself, the share of the day-0 mild users who are
extreme consumers (late − early). Churn is on (the defaults): a user who has left consumes
nothing and counts in no later day.
"""

from __future__ import annotations

import numpy as np

from . import Outcome, Target, status_of
from ._run import scenario, simulate, t_interval

#: sizes: (replications, users, horizon in days, early days 1 … E from the ranker's first fit,
#: late days: the last L)
_SIZES = {"fast": (3, 100, 6, 2, 3), "full": (6, 200, 16, 4, 7)}
_OFF = "behaviour.appetite.eta_up=0"
DAY = 86400.0


def migrant_counts(events, n_users: int, days: int, threshold: float):
    """Per day k = 0 … days − 1: (extreme consumers, of whom only mild on day 0), and the number
    of users only mild on day 0."""
    watches = events[events["event"] == "watch"]
    user = watches["user_id"].to_numpy().astype(np.int64)
    day = np.minimum((watches["time"].to_numpy() // DAY).astype(np.int64), days - 1)
    tau = watches["watch_time"].to_numpy()
    extreme = watches["true_extremeness"].to_numpy() > threshold
    total = np.zeros((n_users, days))
    on_extreme = np.zeros((n_users, days))
    n_extreme = np.zeros((n_users, days), dtype=np.int64)
    np.add.at(total, (user, day), tau)
    np.add.at(on_extreme, (user, day), tau * extreme)
    np.add.at(n_extreme, (user, day), extreme)
    consumer = on_extreme > 0.5 * total  # more than half of the day's watch time (0 watched: no)
    consumer &= total > 0
    mild = (total[:, 0] > 0) & (n_extreme[:, 0] == 0)
    return consumer.sum(axis=0), (consumer & mild[:, None]).sum(axis=0), int(mild.sum())


def _pooled(consumers: np.ndarray, migrants: np.ndarray, days: range) -> tuple[float, int, int]:
    """(migrant share, extreme consumer-days, migrant-days) pooled over ``days``."""
    c = int(consumers[list(days)].sum())
    m = int(migrants[list(days)].sum())
    return (m / c if c else np.nan), c, m


def _check(size: str) -> Outcome:
    reps, users, days, n_early, n_late = _SIZES[size]
    common = [f"replications={reps}", f"population.n_users={users}", f"horizon={days}d",
              f"outputs.metrics_interval={days}d"]
    arms = {"on": scenario("migration", common), "off": scenario("migration", [*common, _OFF])}
    threshold = arms["on"].outputs.extreme_threshold
    early_days, late_days = range(1, 1 + n_early), range(days - n_late, days)
    share = {arm: {"early": [], "late": []} for arm in arms}
    reached = {arm: {"early": [], "late": []} for arm in arms}  # extreme consumers per user-day
    infected = {arm: {"early": [], "late": []} for arm in arms}  # of the mild users, per day
    mild = []
    for r in range(reps):
        for arm, sc in arms.items():
            _, _, events = simulate(sc, 0, r)
            consumers, migrants, n_mild = migrant_counts(events, users, days, threshold)
            for when, span in (("early", early_days), ("late", late_days)):
                m, c, k = _pooled(consumers, migrants, span)
                share[arm][when].append(m)
                reached[arm][when].append(c / (users * len(span)))
                infected[arm][when].append(k / (n_mild * len(span)) if n_mild else np.nan)
            if arm == "on":
                mild.append(n_mild / users)
    growth = {arm: np.asarray(share[arm]["late"]) - np.asarray(share[arm]["early"]) for arm in arms}
    on_m, on_lo, on_hi = t_interval(growth["on"])
    off_m, off_lo, off_hi = t_interval(growth["off"])
    d_m, d_lo, d_hi = t_interval(growth["on"] - growth["off"])
    i_on = np.asarray(infected["on"]["late"]) - np.asarray(infected["on"]["early"])
    i_off = np.asarray(infected["off"]["late"]) - np.asarray(infected["off"]["early"])
    ion_m, ion_lo, ion_hi = t_interval(i_on)
    ioff_m, ioff_lo, ioff_hi = t_interval(i_off)
    grows = bool(on_lo > 0)
    collapses = bool(d_lo > 0)
    status = status_of([grows, collapses])

    def verdict(ok: bool, high: float) -> str:
        return "holds" if ok else "not resolved" if high > 0 else "reversed"

    details = [
        (f"{reps} replications × {users} users × {days} d, the engagement ranker from a cold start (day 0: its "
         f"random-order feed), ratchet on and off on the same replications (common random numbers); extreme: "
         f"e > {threshold:g}; only mild on day 0: {np.mean(mild):.0%} of users; early = days {early_days[0]}–"
         f"{early_days[-1]}, late = days {late_days[0]}–{late_days[-1]} (counts pooled over the days); 95% "
         f"Student-t intervals over replications"),
    ]
    for arm, label in (("on", "ratchet on (eta_up 0.01)"), ("off", "ratchet off (eta_up 0)")):
        details.append(
            f"{label}: migrant share {np.nanmean(share[arm]['early']):.3f} → {np.nanmean(share[arm]['late']):.3f} "
            f"(growth per replication {', '.join(f'{x:+.3f}' for x in growth[arm])}); extreme consumers per user-day "
            f"{np.mean(reached[arm]['early']):.3f} → {np.mean(reached[arm]['late']):.3f}; of the users only mild on "
            f"day 0, extreme consumers per day {np.nanmean(infected[arm]['early']):.3f} → "
            f"{np.nanmean(infected[arm]['late']):.3f}")
    details += [
        (f"growth of the migrant share, ratchet on: {on_m:+.3f} [{on_lo:+.3f}, {on_hi:+.3f}] — expected > 0: "
         f"{verdict(grows, on_hi)}"),
        (f"ratchet off: {off_m:+.3f} [{off_lo:+.3f}, {off_hi:+.3f}]; on − off (paired): {d_m:+.3f} "
         f"[{d_lo:+.3f}, {d_hi:+.3f}] — expected > 0: {verdict(collapses, d_hi)}"),
        (f"for information, the migration itself (the share of day-0 mild users who are extreme consumers, late "
         f"− early): ratchet on {ion_m:+.3f} [{ion_lo:+.3f}, {ion_hi:+.3f}], off {ioff_m:+.3f} [{ioff_lo:+.3f}, "
         f"{ioff_hi:+.3f}]"),
    ]
    if size == "fast":
        full_reps, _, full_days, _, _ = _SIZES["full"]
        details.append(f"the fast size runs {reps} replications of {days} d: too few, and too short for the ratchet "
                       f"(the appetite relaxes over 10 d), to move the migrant share beyond the noise between "
                       f"replications; the full size runs {full_reps} × {full_days} d")
    value = (f"migrant share {np.nanmean(share['on']['early']):.2f} → {np.nanmean(share['on']['late']):.2f} with "
             f"the ratchet (growth {on_m:+.3f} [{on_lo:+.3f}, {on_hi:+.3f}]), {np.nanmean(share['off']['early']):.2f} "
             f"→ {np.nanmean(share['off']['late']):.2f} without (on − off {d_m:+.3f} [{d_lo:+.3f}, {d_hi:+.3f}])")
    return Outcome(value=value, status=status, details=details)


TARGET = Target(
    number=15,
    key="migration",
    title="Migration pattern",
    source="Ribeiro, Ottoni, West, Almeida & Meira 2020, Auditing radicalization pathways on YouTube (FAT*)",
    expected="with the appetite ratchet on, the share of extreme consumers whose earlier consumption was only mild "
             "grows over time; with it off it collapses",
    tolerance="95% Student-t intervals over 6 replications (200 users, 16 d; ratchet on and off paired by common "
              "random numbers) of the growth and of its on − off difference must lie above 0",
    check=_check,
    status="not reproduced",
    reason="with this release's calibrated allure weight (w_e = 0.75) and watched items left out of the pools, "
           "the migrant share falls over the 16 days with the ratchet on and off alike (−0.076 [−0.212, +0.061] "
           "and −0.111 [−0.271, +0.048]; on − off +0.035 [−0.089, +0.160]): the weaker pull of extremeness makes "
           "few mild users extreme consumers under the engagement ranker (0.029 → 0.027 per day), with or without "
           "the ratchet; with w_e = 1.5 and repeats allowed the full size resolved both (previous release). The "
           "fast size (3 replications × 100 users × 6 d) does not resolve it either",
)
