"""Target 5: RecSim's interest-evolution environment (Ie et al., "RecSim: A Configurable
Simulation Platform for Recommender Systems", 2019; ``recsim/environments/interest_evolution.py``
of RecSim's code: ``IEvUserModel``, ``UtilityModelUserSampler``, ``UtilityModelVideoSampler``).

The session rule (recsim: :class:`recsim.users.peers.TimeBudget` with the ``budget_watch``
response, :func:`recsim.users.formulas.spend_budget`; RecSim: ``IEvUserModel.update_state``)::

    τ = min(b, L)                       a clicked video of length L is watched for τ seconds
    b ← b − τ + α_b·τ·q                 after the watch (q the video's quality, α_b = 0.9/3.4)
    b ← b − 30 s                        after a slate without a click
    the session ends when b ≤ 0         (RecSim's ``is_terminal``; recsim's ``min_budget: 0s``)

with b = B = 200 min at the start of a session and every video L = 4 min long. RecSim's update
multiplies α_b·q by the watch time (``user_update_alpha * watch_time * received_utility``), so a
full watch costs L(1 − α_b·q): the issue's ⌈200/(4 − α_b·q)⌉ reads as if the extension were
α_b·q minutes per watch; RecSim's code and recsim give ⌈B/(L(1 − α_b·q))⌉ (the same at q = 0).

What is checked, all on runs of the engine (``scenarios/validation/interest_evolution.yaml``
with ``--set``-style overrides; :func:`recsim.validation._run.simulate`):

1. **Budget arithmetic** (forced clicks: ``choice: first_item``; items of one constant quality
   q): for q ≤ 0 every full watch costs L(1 − α_b·q) ≥ L, so the session ends after exactly
   ⌈B/(L(1 − α_b·q))⌉ clicks, having watched (n − 1)·L + min(L, B − (n − 1)·L(1 − α_b·q))
   seconds. For 0 < α_b·q < 1 the first n_f = ⌊(B − L)/(L(1 − α_b·q))⌋ + 1 watches are full;
   then b < L, each watch is partial (τ = b) and leaves b ← α_b·q·b > 0: the budget regenerates
   and, in exact arithmetic, RecSim's rule never ends the session, whose total watch time
   tends to B/(1 − α_b·q). In floating point (recsim's and RecSim's: the same IEEE doubles, the
   same operations, b − τ + (α_b·τ)·q) b sinks into the subnormal numbers, multiples of
   2⁻¹⁰⁷⁴ ≈ 4.9·10⁻³²⁴ s, where the rounding decides: at q = 3 it stalls at a fixed point,
   6·2⁻¹⁰⁷⁴ s (α_b·τ rounds to 2·2⁻¹⁰⁷⁴, times 3 gives 6·2⁻¹⁰⁷⁴ back), and the session never
   ends; at q = 1 (q ≤ 1: the product never rounds back up to b) it underflows to 0 and the
   session ends, after about ⌈ln(b_f/2⁻¹⁰⁷⁵)/ln(1/(α_b·q))⌉ partial watches (b_f the budget the
   last full watch leaves).
   recsim's ``min_budget`` (e.g. 1 s, the shipped ``scenarios/recsim_interest_evolution.yaml``)
   ends the session after n_f + ⌈ln(b_f/min_budget)/ln(1/(α_b·q))⌉ watches. The counts are
   computed with exact fractions (α_b = 9/34); the watch-time totals are sums of up to a few
   thousand doubles, compared to a relative 10⁻⁹.
2. **Greedy on interest vs quality at equal interest**, with RecSim's multinomial proportional
   choice (P(j) ∝ r_j + 1, no click ∝ 2; r the user's relevance for the item): a greedy ranker
   (``InterestGreedy``: observable relevance of the candidates to the user's topic profile) and
   a ranker with the same interest score that, among candidates of equal interest (the same
   topic cluster: the scenario's topics are noiseless), serves the higher-quality items first
   (``QualityAtEqualInterest``: an **oracle** reading true quality, as RecSim's experiment used
   a policy with knowledge of cluster quality; recsim's catalog draws quality per item, not per
   cluster). Equal interest means equal click probabilities, so the quality-preferring feed
   spends the budget more slowly: its sessions should last longer and hold more watch time.
   Measured over the sessions that start on the first day of the horizon (after a day of
   random feeds that builds every profile), per replication: the mean session length (seconds
   of simulated time from start to end) and the mean watch time per session; the two policies
   run on the same replications (same seed: common random numbers), and the paired differences
   (greedy − quality) get a 95% Student-t interval over replications.
"""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np

from ..users.model import build_user_model
from . import Outcome, Target, status_of
from ._run import scenario, simulate, t_interval

#: forced-click runs: two users who come back at 100/d (the first session starts within
#: minutes), a 20-item catalog (the horizon: 20 h unless said)
_FORCED = [
    "warmup=0s", "population.n_users=2", "catalog.n_items=20", "recommender.n_candidates=10",
    "user_model.returns.params.rate=100/d", "policies=[random]",
    "user_model.choice=first_item",
    # the length pinned by min = max: with log_sd 0 alone it is exp(log 240 s) ≠ 240 s
    "catalog.length={median: 4m, log_sd: 0, min: 4m, max: 4m}",
]
#: relative tolerance of a session's total watch time: a sum of ≤ a few thousand doubles
_RTOL = 1e-9
#: sizes of the policy comparison: (replications, users)
_SIZES = {"fast": (3, 80), "full": (20, 150)}


def _forced(q: float, min_budget: str, horizon: str = "20h"):
    """The validation scenario with forced clicks on items of constant quality ``q``."""
    return scenario("interest_evolution", [
        *_FORCED, f"horizon={horizon}",
        f"catalog.quality={{base: {q}, slope: 0, noise: 0, min: -10, max: 10}}",
        f"user_model.session.params.min_budget={min_budget}",
    ])


def _constants(sc) -> tuple[Fraction, Fraction, Fraction]:
    """(B, L, α_b) of the scenario, B and L in seconds; α_b as the exact 9/34 (RecSim's
    0.9/3.4: the counts sit on integer boundaries)."""
    session = build_user_model(sc).session.params
    if session.extension != 0.9 / 3.4:
        raise AssertionError(f"α_b is {session.extension}, not RecSim's 0.9/3.4")
    return Fraction(session.budget), Fraction(sc.catalog.length.median), Fraction(9, 34)


def _first_sessions(events):
    """Per user (sorted): the watch times (s, in order) of the first session, and whether it
    ended (a ``session_end`` row)."""
    first = events[events["session"] == 1]
    watches = first[first["event"] == "watch"]
    ended = set(first.loc[first["event"] == "session_end", "user_id"].astype(int))
    return {int(u): (g["watch_time"].to_numpy(), int(u) in ended) for u, g in watches.groupby("user_id", sort=True)}


def _minutes(sessions) -> str:
    """The distinct total watch times of the sessions, in minutes (4 decimals)."""
    return "/".join(sorted({f"{t.sum() / 60:.4f}" for t, _ in sessions.values()}))


def _budget_arithmetic() -> tuple[list[str], list[str], bool]:
    """Part 1: (value pieces, detail lines, all passed)."""
    value, details, ok = [], [], True

    # q ≤ 0: the session ends after ⌈B/(L(1 − α_b q))⌉ clicks
    counts = []
    for q in (-3.0, -1.0, 0.0):
        sc = _forced(q, "0s")
        B, L, a = _constants(sc)
        cost = L * (1 - a * Fraction(q))  # budget a full watch uses
        clicks = math.ceil(B / cost)
        total = (clicks - 1) * L + min(L, B - (clicks - 1) * cost)
        issue = math.ceil(Fraction(200) / (4 - a * Fraction(q)))  # the issue's formula, in minutes
        _, _, events = simulate(sc)
        sessions = _first_sessions(events)
        good = len(sessions) == 2 and all(
            ended and tau.shape[0] == clicks and math.isclose(tau.sum(), float(total), rel_tol=_RTOL)
            for tau, ended in sessions.values())
        ok &= good
        counts.append(f"{clicks}")
        details.append(
            f"budget, q = {q:+g}: sessions of forced clicks end after {sorted({int(t.shape[0]) for t, _ in sessions.values()})} "
            f"clicks, {_minutes(sessions)} min watched; closed form "
            f"⌈B/(L(1 − α_b·q))⌉ = {clicks}, {float(total) / 60:.4f} min (exact count, watch time to 1e-9; "
            f"the issue's ⌈200/(4 − α_b·q)⌉ = {issue}) — {'ok' if good else 'FAILED'}")
    value.append(f"clicks to exhaustion {'/'.join(counts)} at q = −3/−1/0 (= ⌈B/(L(1 − α_b·q))⌉)")

    # q = 3 (α_b q = 0.79 ≥ ½): RecSim's rule never ends the session
    # (28 h: the 239 full watches take ≈ 16.5 h, the ≈ 3250 partial ones that bring b down to
    # the subnormal doubles, 8 s of scan time each, another ≈ 7.3 h)
    q = 3.0
    sc = _forced(q, "0s", "28h")
    B, L, a = _constants(sc)
    aq = a * Fraction(q)
    full = math.floor((B - L) / (L * (1 - aq))) + 1  # watch k is full iff B − (k − 1)·L(1 − α_b q) ≥ L
    limit = never_ending = B / (1 - aq)
    never_full = full
    _, _, events = simulate(sc)
    sessions = _first_sessions(events)
    subnormal = np.finfo(float).tiny  # the smallest normal double: below it, the subnormals
    # stalled: the last 100 watches (800 s of scans) all of the same subnormal length > 0
    good = len(sessions) == 2 and all(
        not ended
        and int((tau >= float(L) * (1 - 1e-12)).sum()) == full
        and math.isclose(tau.sum(), float(limit), rel_tol=_RTOL)
        and 0.0 < tau[-1] < subnormal and (tau[-100:] == tau[-1]).all()
        for tau, ended in sessions.values())
    stall = sorted({round(float(t[-1]) / 2.0 ** -1074) for t, _ in sessions.values()})
    ok &= good
    n_watches = sorted(t.shape[0] for t, _ in sessions.values())
    details.append(
        f"budget, q = +3 (α_b·q = {float(aq):.3f}), RecSim's rule (min_budget 0): no session ends in {sc.horizon / 3600:g} h "
        f"({n_watches} watches: {full} full, then partial ones regenerating the budget as α_b·q·b); total "
        f"{_minutes(sessions)} min → B/(1 − α_b·q) = {float(limit) / 60:.4f} "
        f"(to 1e-9); in floating point the budget stalls at {'/'.join(map(str, stall))}·2⁻¹⁰⁷⁴ s, a fixed point of the rounded update "
        f"(the last 100 watches all that long) — "
        f"{'ok' if good else 'FAILED'}")

    # q = 1 (α_b q = 0.26 < ½): in floating point the budget underflows to 0 and the session ends
    q = 1.0
    sc = _forced(q, "0s")
    B, L, a = _constants(sc)
    aq = a * Fraction(q)
    full = math.floor((B - L) / (L * (1 - aq))) + 1
    left = B - full * L * (1 - aq)
    estimate = full + math.ceil((math.log(left) + 1075 * math.log(2)) / math.log(1 / aq))  # ln(b_f/2⁻¹⁰⁷⁵)
    limit = B / (1 - aq)
    _, _, events = simulate(sc)
    sessions = _first_sessions(events)
    lengths = sorted(t.shape[0] for t, _ in sessions.values())
    good = len(sessions) == 2 and all(
        ended and int((tau >= float(L) * (1 - 1e-12)).sum()) == full
        and abs(tau.shape[0] - estimate) <= 2 and math.isclose(tau.sum(), float(limit), rel_tol=_RTOL)
        for tau, ended in sessions.values())
    ok &= good
    details.append(
        f"budget, q = +1 (α_b·q = {float(aq):.3f}; q ≤ 1), min_budget 0: the session ends by floating-point underflow "
        f"after {lengths} watches ({full} full); the estimate n_f + ⌈ln(b_f/2⁻¹⁰⁷⁵)/ln(1/(α_b·q))⌉ = {estimate} "
        f"(± 2: the last steps round to whole multiples of 2⁻¹⁰⁷⁴); total {float(limit) / 60:.4f} min = "
        f"B/(1 − α_b·q) to 1e-9. RecSim's float64 update (the same operations) ends there too — "
        f"{'ok' if good else 'FAILED'}")

    # q = 3 with recsim's min_budget 1 s: the session ends after n_f + ⌈ln(b_f/1 s)/ln(1/(α_b q))⌉ watches
    q, floor_ = 3.0, Fraction(1)
    sc = _forced(q, "1s")
    B, L, a = _constants(sc)
    aq = a * Fraction(q)
    full = math.floor((B - L) / (L * (1 - aq))) + 1
    left = B - full * L * (1 - aq)
    partial = 1
    while left * aq ** partial > floor_:
        partial += 1
    total = (B - left * aq ** partial) / (1 - aq)  # B − (1 − α_b q)·W is the final budget
    _, _, events = simulate(sc)
    sessions = _first_sessions(events)
    good = len(sessions) == 2 and all(
        ended and tau.shape[0] == full + partial and math.isclose(tau.sum(), float(total), rel_tol=_RTOL)
        for tau, ended in sessions.values())
    ok &= good
    details.append(
        f"budget, q = +3 with recsim's min_budget 1 s (as the shipped scenario): the sessions end after "
        f"{sorted(t.shape[0] for t, _ in sessions.values())} watches = {full} full + {partial} partial "
        f"(closed form, exact), {float(total) / 60:.4f} min watched (to 1e-9) — {'ok' if good else 'FAILED'}")
    value.append(f"q = +3: never ends under RecSim's rule ({never_full} full watches, total → "
                 f"{float(never_ending) / 60:.1f} min)")
    return value, details, ok


def _sessions(events, until: float):
    """Sessions that start in [0, until): (start, end or NaN, watch seconds) arrays."""
    starts = events[(events["event"] == "session_start") & (events["time"] < until)]
    key = ["user_id", "session"]
    start = starts.set_index(key)["time"]
    end = events[events["event"] == "session_end"].set_index(key)["time"].reindex(start.index)
    watch = events[events["event"] == "watch"].groupby(key)["watch_time"].sum().reindex(start.index).fillna(0.0)
    return start.to_numpy(), end.to_numpy(), watch.to_numpy()


def _policies(size: str) -> tuple[str, list[str], bool]:
    """Part 2: (value piece, detail lines, passed)."""
    reps, users = _SIZES[size]
    sc = scenario("interest_evolution", [f"replications={reps}", f"population.n_users={users}"])
    window = sc.horizon - 86400.0  # sessions starting on the first day; the second lets them end
    length = {0: [], 1: []}
    watch = {0: [], 1: []}
    counted = {0: 0, 1: 0}
    open_ = {0: 0, 1: 0}
    for r in range(reps):
        for p in (0, 1):
            _, _, events = simulate(sc, p, r)
            start, end, seconds = _sessions(events, window)
            done = ~np.isnan(end)
            open_[p] += int((~done).sum())
            counted[p] += int(done.sum())
            length[p].append(float(np.mean(end[done] - start[done])) / 60.0)
            watch[p].append(float(np.mean(seconds[done])) / 60.0)
    greedy, quality = (sc.policies[0].name, sc.policies[1].name)
    dl = np.asarray(length[0]) - np.asarray(length[1])
    dw = np.asarray(watch[0]) - np.asarray(watch[1])
    lm, llo, lhi = t_interval(dl)
    wm, wlo, whi = t_interval(dw)
    complete = open_[0] == 0 and open_[1] == 0
    ok = lhi < 0 and whi < 0 and complete
    details = [
        (f"policies: {reps} replications × {users} users, paired (same seed, same replication, each policy); "
        f"sessions starting on day 1 of {sc.horizon / 86400:g} (after {sc.warmup / 86400:g} d of random feeds): "
        f"{counted[0]} under {greedy}, {counted[1]} under {quality}; {open_[0] + open_[1]} of them unfinished at the "
        f"horizon (must be 0: no censoring)"),
        (f"session length (start to end, minutes): {greedy} {np.mean(length[0]):.1f}, {quality} {np.mean(length[1]):.1f}; "
        f"paired difference {lm:+.1f} min, 95% t-interval [{llo:+.1f}, {lhi:+.1f}] over {reps} replications — "
        f"expected < 0 (interval below 0): {'ok' if lhi < 0 else 'FAILED'}"),
        (f"watch time per session (minutes): {greedy} {np.mean(watch[0]):.1f}, {quality} {np.mean(watch[1]):.1f}; "
        f"paired difference {wm:+.1f} min [{wlo:+.1f}, {whi:+.1f}] — expected < 0: {'ok' if whi < 0 else 'FAILED'}"),
    ]
    value = (f"greedy − quality-at-equal-interest: session {lm:+.0f} min [{llo:+.0f}, {lhi:+.0f}], "
             f"watch {wm:+.0f} min [{wlo:+.0f}, {whi:+.0f}]")
    return value, details, ok


def _check(size: str) -> Outcome:
    value, details, budget_ok = _budget_arithmetic()
    policy_value, policy_details, policy_ok = _policies(size)
    status = status_of([budget_ok, policy_ok])
    return Outcome(value="; ".join([*value, policy_value]), status=status, details=[*details, *policy_details])


TARGET = Target(
    number=5,
    key="interest_evolution",
    title="RecSim interest evolution",
    source="Ie et al. 2019 (RecSim), interest-evolution environment: 200-min time budget, "
           "b ← b − τ + α_b·τ·q, α_b = 0.9/3.4, proportional choice",
    expected="forced clicks on 4-min items of quality q ≤ 0 exhaust the budget after ⌈B/(L(1 − α_b·q))⌉ clicks "
             "(28 at q = −3, 50 at q = 0); for q > 0 RecSim's rule never ends the session (total watch → "
             "B/(1 − α_b·q)); greedy-on-interest ends sessions sooner, with less watch time, than quality at "
             "equal interest",
    tolerance="budget counts exact and watch totals to 1e-9 (closed forms in exact fractions); policy differences: "
              "95% Student-t intervals of paired replications (common random numbers; 20 at full size) must "
              "exclude 0",
    check=_check,
)
