r"""Target 9: cold turkey (Kleinberg, Mullainathan & Raghavan, "The challenge of understanding
what users want: inconsistent preferences and engagement optimization", 2022; Management
Science 2024).

**The paper's mechanism.** A user has two selves. System 1 consumes in the moment: once on the
platform it keeps going with a probability set by the content's pull ("moreishness"), so more
moreish content makes longer sessions whatever it is worth. System 2 decides, with the long
view, whether to use the platform at all: it compares the utility of a *whole session* — the
values of everything the session holds, net of the time it takes — with the outside option,
and stays away once a visit is worth less. A platform that raises engagement step by step,
moving its content toward what pulls rather than what is worth having, sees sessions lengthen
while the utility of a session falls; as long as a visit is still worth more than the outside
option nothing else shows, and at the step where it stops being worth it the user quits
outright ("cold turkey"): engagement rises steadily, then drops discontinuously.

(A note on sources: the stored copies of the paper available to this suite hold its abstract
and introduction, not its formal section; the rule below is the mechanism as the abstract and
the issue state it — sessions driven by System 1's pull, participation by System 2's
comparison of a session's utility with the outside option — not a transcription of the
paper's equations.)

**Closed form of the mechanism** (why the drop is a step). With items drawn i.i.d. from a mix
(a share s of high-pull, low-value items), the session length N is a stopping time of the item
sequence (whether the user goes on after item k depends on items ≤ k), so by Wald's identity
E[U] = E[N]·E[V]: a longer session (E[N] up) of items worth less (E[V] down), E[U](s) falling
once E[V] is small. A System 2 that compares E[U](s) with u₀ keeps every (identical) user while
E[U](s) ≥ u₀ and none after: daily actives are a step function of s.

**What recsim runs** (``scenarios/validation/cold_turkey.yaml``). A feed of one item at a time:
the policy ``random`` serves a uniformly random item, the user watches it (``first_item``) and
goes on with recsim's default continuation probability sigmoid(c₀ + c_A·A + c_ψ·ψ − c_F·F),
which rises with the item's allure A (System 1's pull). The catalog's extremeness is discrete:
regular items at e = 0 and a share s of high-pull, low-value items at e = 0.35, just past the
users' appetite plus the grip offset (a + δ ≈ 0.33): about +1.5 of allure (grip), and −v_h·e² ≈
−0.49 of value. The sweep sets s = ``catalog.extremeness.weights[1]`` (the discrete draw is a
uniform through the CDF, so each step turns more of the same items into high-pull ones).
Everything else is recsim's default model, except what makes users alike, as the paper's
are: one topic cluster with ``item_noise`` 1 (every user meets the same distribution of
relevance, mean ≈ 0.2), appetites a₀ ~ Beta(60, 220) (sd 0.02), no vulnerable users, and no
appetite ratchet (each content type keeps its pull). Without any churn (``churn: never``, 100
users, measured) sessions lengthen from 3.39 items at s = 0 to 4.45 at s = 0.5 and 6.44 at
s = 1, while the utility of a session E[U] falls from +1.35 to +0.54 and −0.91, and the value
per user-day from 2.43 to 1.00 and −1.76.

The paper's participation rule is a churn component of one's own,
:class:`recsim.validation._users.SessionUtilityChurn`: System 2's expectation Û of a session's
utility U = Σ V (recsim's V charges c_τ per minute watched: the time's cost) is the mean of its
sessions' utilities and of a prior Û₀ = 1.3 (the platform without high-pull items) worth 30
sessions; at each would-be return the user quits for good iff Û < u₀ = 0.75. Users learn over a
56 d warm-up (≈ 110 sessions) and are measured over the 14 d horizon.

**Checks** (users are independent — a random feed, nothing learnt or shared — and the same
user ids meet the same draws at every s (common random numbers), so differences between steps
are paired by user and get Student-t intervals over users):

1. sessions lengthen: mean items per session at the last step before the cliff minus at s = 0,
   over users active at both, interval above 0;
2. long-run utility falls: value per user-day (Σ V over the horizon / days) at the step before
   the cliff minus at s = 0, interval below 0;
3. the cliff: the largest one-step fall of daily actives (per-user share of horizon days with a
   session) is ≥ 50% of the daily actives at s = 0 (lower bound of the paired interval);
4. where: users stay where their expectation by the end of the run, Û ≈ (n₀Û₀ + n·E[U](s))/
   (n₀ + n) (n their sessions; E[U](s) measured under the default churn, which loses few
   users), is above u₀, and are gone where it is below: daily actives ≥ 50% of those at s = 0
   at every share where Û − 2 SD > u₀, < 50% wherever Û + 2 SD < u₀ (SD: Û's spread over
   users, √n·σ_U/(n₀ + n), with E[U]'s standard error; shares within 2 SD are not judged).
   Û lags E[U] — the prior still weighs ≈ 20% after ≈ 125 sessions — so users quit about a
   step after E[U] itself crosses u₀.

**What the cliff needs** (measured while building this target, 100 users, 0.1 steps; not re-run
by the check): (i) *alike users*. recsim's default five topic clusters alone make users' mean
session utilities differ (between-user SD ≈ 0.4 beyond sampling noise — two steps of the
sweep), and with the default population and topics (five clusters, a₀ ~ Beta(3, 11),
vulnerable users, the ratchet on) the same rule (prior 2.5 worth 30 sessions, u₀ = 1.6, the
56 d warm-up) loses users over s = 0.2–0.8, at most 27% of them in one step; (ii)
*experience*. The rule compares a learnt expectation with u₀, and users quit the first time it
dips below: with a 7 d warm-up (≈ 40 sessions by the end, a prior worth 20) the drop spread
over s = 0.4–0.7, at most 42% in one step (the ≥ 50% needs the noise of Û, ≈ σ_U/√(n₀ + n) with σ_U ≈ 1, small against E[U]'s fall
per step, ≈ 0.18). The paper's users know E[U] and are identical, so its drop is a true step.

**recsim's default churn is not the paper's** (docs/model.md §7.3, ``ValueChurn``): it averages
the session's *mean* value per item, V̄ (an EMA, weight 0.2) — a longer session of the same
items changes nothing, while in the paper a longer session of items worth less than their time
is worse — and turns it into a *smooth* hazard per return, sigmoid(ζ₀ − ζ₁·(Ū − u_out)) with
ζ₀ = −7, ζ₁ = 4, u_out = 0.5 (0.0006 at Ū = 0.6, 0.007 at 0, 0.047 at −0.5), so users leave by
attrition, a little at every return, rather than by a decision. The check runs the same sweep
with it (``value_ema``) and reports its daily actives and largest one-step fall.
"""

from __future__ import annotations

import math
from itertools import pairwise

import numpy as np

from . import Outcome, Target, status_of
from ._run import scenario, simulate, t_interval

DAY = 86400.0
CLIFF = 0.5
#: the scenario's SessionUtilityChurn parameters (scenarios/validation/cold_turkey.yaml)
PRIOR, PRIOR_SESSIONS, OUTSIDE = 1.3, 30.0, 0.75

#: sizes: users; the shares s of high-pull items swept with the paper's churn and with the default
_SIZES = {
    "fast": {"users": 20, "grid": (0.0, 0.2, 0.4, 0.6, 0.8, 1.0), "default_grid": (0.0, 0.2, 0.4, 0.6, 0.8, 1.0)},
    "full": {"users": 150, "grid": tuple(round(0.1 * i, 1) for i in range(11)),
             "default_grid": tuple(round(0.1 * i, 1) for i in range(11))},
}


def _run(s: float, users: int, churn: str | None) -> dict[str, np.ndarray]:
    """Per-user figures over the horizon at share ``s`` (``churn``: None for the scenario's,
    else a built-in churn name)."""
    overrides = [f"population.n_users={users}", f"catalog.extremeness.weights=[{1.0 - s!r}, {s!r}]"]
    if churn is not None:
        overrides.append(f"user_model.churn={churn}")
    sc = scenario("cold_turkey", overrides)
    world, _, ev = simulate(sc)
    days = sc.horizon / DAY
    starts = ev[ev["event"] == "session_start"]
    day = (starts["time"].to_numpy() // DAY).astype(np.int64)
    uid = starts["user_id"].to_numpy(dtype=np.int64)
    active = np.zeros(users)
    if uid.size:
        pairs = np.unique(uid * 10_000 + day)
        active = np.bincount(pairs // 10_000, minlength=users)[:users] / days
    watches = ev[ev["event"] == "watch"]
    per_session = watches.groupby(["user_id", "session"])["true_value"].agg(["size", "sum"]).reset_index()
    by_user = per_session.groupby("user_id").agg(n=("size", "mean"), u=("sum", "mean"))
    length = np.full(users, np.nan)
    utility = np.full(users, np.nan)
    length[by_user.index.to_numpy()] = by_user["n"].to_numpy()
    utility[by_user.index.to_numpy()] = by_user["u"].to_numpy()
    value = np.bincount(watches["user_id"].to_numpy(dtype=np.int64), weights=watches["true_value"].to_numpy(),
                        minlength=users)[:users] / days
    judged = world.state["sessions_judged"][:users] if "sessions_judged" in world.state else np.full(users, np.nan)
    return {"active": active, "length": length, "utility": utility, "value": value,
            "sessions_u": per_session["sum"].to_numpy(), "judged": judged}


def _steps(runs: list[dict[str, np.ndarray]]) -> tuple[int, float, float, float]:
    """The step k with the largest fall of daily actives (runs k → k + 1), as a share of the
    daily actives at the first point: (k, fall, low, high) (95% paired interval)."""
    base = float(np.mean(runs[0]["active"]))
    falls = [float(np.mean(a["active"] - b["active"])) for a, b in pairwise(runs)]
    k = int(np.argmax(falls))
    m, lo, hi = t_interval(runs[k]["active"] - runs[k + 1]["active"])
    return k, m / base, lo / base, hi / base


def _paired(a: np.ndarray, b: np.ndarray) -> tuple[float, float, float, int]:
    ok = ~(np.isnan(a) | np.isnan(b))
    m, lo, hi = t_interval(b[ok] - a[ok])
    return m, lo, hi, int(ok.sum())


def _check(size: str) -> Outcome:
    sz = _SIZES[size]
    users, grid, dgrid = sz["users"], sz["grid"], sz["default_grid"]
    paper = [_run(s, users, None) for s in grid]
    default = [_run(s, users, "value_ema") for s in dgrid]
    details = [(f"{users} users per share s, 56 d warm-up + 14 d horizon each; shares "
                f"{', '.join(f'{s:g}' for s in grid)} with the paper's churn, {', '.join(f'{s:g}' for s in dgrid)} "
                "with recsim's default; 95% Student-t intervals over users, paired by user across shares (common "
                "random numbers)")]
    dau = [float(np.mean(r["active"])) for r in paper]
    dau_d = [float(np.mean(r["active"])) for r in default]
    details.append("paper's churn (SessionUtilityChurn, u₀ = 0.75): daily actives (share of users × days) "
                   + ", ".join(f"{s:g}: {d:.3f}" for s, d in zip(grid, dau)))
    k, fall, lo, hi = _steps(paper)
    cliff_ok = lo >= CLIFF
    details.append(f"largest one-step fall: s = {grid[k]:g} → {grid[k + 1]:g}, {fall:.0%} [{lo:.0%}, {hi:.0%}] of the "
                   f"daily actives at s = 0 (must be ≥ {CLIFF:.0%}, lower bound) → {'ok' if cliff_ok else 'FAILED'}")
    pre = k  # the last step before the cliff
    # E[U] and lengths under the default churn (few users lost), where the grids meet
    eu = {s: float(np.mean(r["sessions_u"])) for s, r in zip(dgrid, default) if r["sessions_u"].size}
    details.append("mean session utility E[U] = E[Σ V] (measured under the default churn, which keeps most users): "
                   + ", ".join(f"{s:g}: {u:+.3f}" for s, u in eu.items())
                   )
    # where the users' learnt expectation crosses u₀ by the end of the run: Û = (n₀Û₀ + Σ U)/(n₀ + n), n the sessions
    # a user has had (at s = 0, where nobody quits); its mean (n₀Û₀ + n·E[U])/(n₀ + n), its spread over users
    # √n·σ_U/(n₀ + n) (σ_U the SD of a session's utility), with E[U]'s own standard error × n/(n₀ + n)
    n_sessions = float(np.mean(paper[0]["judged"]))
    n0, share = PRIOR_SESSIONS, n_sessions / (PRIOR_SESSIONS + n_sessions)
    verdicts, where_ok = [], True
    for s, r in zip(dgrid, default):
        if s not in grid or not r["sessions_u"].size:
            continue
        u = r["sessions_u"]
        mean = (n0 * PRIOR + n_sessions * u.mean()) / (n0 + n_sessions)
        sd = math.hypot(math.sqrt(n_sessions) * u.std() / (n0 + n_sessions),
                        share * float(np.std(r["utility"][~np.isnan(r["utility"])], ddof=1))
                        / math.sqrt(max(1, int(np.sum(~np.isnan(r["utility"]))))))
        kept = dau[grid.index(s)] / dau[0] if dau[0] > 0 else math.nan
        if mean - 2 * sd > OUTSIDE:
            good = kept >= 0.5
            verdicts.append(f"{s:g}: Û {mean:.3f} ± {2 * sd:.3f} > u₀, kept {kept:.0%} ({'ok' if good else 'FAILED'})")
        elif mean + 2 * sd < OUTSIDE:
            good = kept < 0.5
            verdicts.append(f"{s:g}: Û {mean:.3f} ± {2 * sd:.3f} < u₀, kept {kept:.0%} ({'ok' if good else 'FAILED'})")
        else:
            good = True
            verdicts.append(f"{s:g}: Û {mean:.3f} ± {2 * sd:.3f} ∋ u₀, kept {kept:.0%} (not judged)")
        where_ok = where_ok and good
    details.append(f"where: users have had n ≈ {n_sessions:.0f} sessions by the end (warm-up included), so Û ≈ "
                   f"(n₀Û₀ + n·E[U])/(n₀ + n) = {1 - share:.0%}·{PRIOR} + {share:.0%}·E[U] (± 2 SD: its spread over users and "
                   f"E[U]'s standard error); users must stay (≥ 50% of the daily actives at s = 0) where Û is above "
                   f"u₀ = {OUTSIDE} and be gone (< 50%) where it is below: " + "; ".join(verdicts)
                   + f" → {'ok' if where_ok else 'FAILED'} (Û lags E[U], which crosses u₀ between "
                     f"{max((s for s, u in eu.items() if u >= OUTSIDE), default=float('nan')):g} and "
                     f"{min((s for s, u in eu.items() if u < OUTSIDE), default=float('nan')):g}: the prior still weighs "
                     f"{1 - share:.0%})")
    ok_len = ok_val = False
    if pre > 0:
        m, l_, h_, n = _paired(paper[0]["length"], paper[pre]["length"])
        ok_len = l_ > 0
        details.append(f"sessions lengthen: items per session at s = {grid[pre]:g} minus at s = 0, {n} users active at "
                       f"both: {m:+.3f} [{l_:+.3f}, {h_:+.3f}] (means {np.nanmean(paper[0]['length']):.2f} → "
                       f"{np.nanmean(paper[pre]['length']):.2f}; must be > 0) → {'ok' if ok_len else 'FAILED'}")
        m, l_, h_, n = _paired(paper[0]["value"], paper[pre]["value"])
        ok_val = h_ < 0
        details.append(f"long-run utility falls: value per user-day at s = {grid[pre]:g} minus at s = 0: {m:+.3f} "
                       f"[{l_:+.3f}, {h_:+.3f}] (means {np.mean(paper[0]['value']):.3f} → "
                       f"{np.mean(paper[pre]['value']):.3f}; must be < 0) → {'ok' if ok_val else 'FAILED'}")
    else:
        details.append("the cliff is at the first step: no step before it to compare sessions and utility with")
    kd, fall_d, lo_d, hi_d = _steps(default)
    details.append("recsim's DEFAULT churn (value_ema) on the same sweep: daily actives "
                   + ", ".join(f"{s:g}: {d:.3f}" for s, d in zip(dgrid, dau_d))
                   + f"; largest one-step fall s = {dgrid[kd]:g} → {dgrid[kd + 1]:g}: {fall_d:.0%} [{lo_d:.0%}, {hi_d:.0%}] "
                     f"of the daily actives at s = 0 — "
                   + ("a gradual decline (attrition by a smooth hazard on the mean value per item)" if fall_d < CLIFF
                      else "a fall of ≥ 50% within one step"))
    checks = [ok_len, ok_val, cliff_ok, where_ok]
    status = status_of(checks)
    value = (f"with churn by whole-session utility, a component of the suite's own (_users.SessionUtilityChurn): "
             f"daily actives {dau[0]:.2f} at s = 0, {dau[pre]:.2f} at s = {grid[pre]:g}, {dau[k + 1]:.2f} at "
             f"s = {grid[k + 1]:g} (a fall of {fall:.0%} in one step); recsim's default churn: largest one-step fall {fall_d:.0%} "
             f"({'attrition, no cliff' if fall_d < CLIFF else 'a cliff too'})")
    return Outcome(value=value, status=status, details=details)


TARGET = Target(
    number=9,
    key="cold_turkey",
    title="Cold turkey",
    source="Kleinberg, Mullainathan & Raghavan 2022 (EC; Management Science 2024)",
    expected="more high-pull low-value content lengthens sessions and lowers long-run utility; daily actives drop "
             "≥ 50% within one step once a visit's utility falls below the outside option",
    tolerance="paired per-user differences between steps (common random numbers), 95% Student-t intervals excluding "
              "0; the cliff's lower bound ≥ 50% of the daily actives at s = 0",
    check=_check,
)
