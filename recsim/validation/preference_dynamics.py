"""Target 6: Dean & Morgenstern's preference dynamics ("Preference dynamics under personalized
recommendations", EC 2022), after Hązła et al. (2019) and Gaitonde, Kleinberg & Tardos (2021).

In the paper a user's preference p (unit vector) moves toward content x consumed and liked
and away from content consumed and disliked, p ← normalize(p + η⟨p, x⟩x). Under repeated
exposure to one item, c_t = ⟨p_t, x⟩ follows

    c_{t+1} = c_t·(1 + η) / √(1 + (2η + η²)·c_t²),        and c_t → sign(c₀),

and a heterogeneous population under uniform consumption of media converges toward two poles.

recsim's topic drift (docs/model.md §6.1, ``formulas.update_topic``) is θ ← normalize(θ +
η_θ·s·r·(τ/L)·x), called by the default transition ``Consumption.consume`` at every watch
with r = θ·x the relevance the allure component computed with the item's *true* topic vector
x (``Allure.score``), s the user's susceptibility and τ/L the watch fraction. So it is the
paper's update with ⟨p, x⟩ = r and η = η_θ·s·(τ/L); with s = 1 and a full watch, η = η_θ.

Two checks:

1. *The recurrence*, through ``Consumption.consume`` (what the engine calls after a watch,
   relevance from ``Allure.score``): a batch of users with c₀ ∈ {±0.9, ±0.5, ±0.1, ±0.01},
   K = 5 topics, watch one item again and again (in full or half of it), at η = η_θ·s·(τ/L)
   of 0.01, 0.02, 0.08 (default η_θ = 0.02; s = 1 or 4; τ/L = ½ or 1) and 0.5 (η_θ = 0.5)
   for 3000 watches. Compared with the
   closed-form recurrence one step at a time and as a whole trajectory (max abs error ≤ 1e-9:
   rounding is ~1e-16 a step and the map is contracting near its fixed points ±1), and
   |c_t| must grow monotonically to |c_T − sign(c₀)| ≤ 1e-9.
2. *A population under a uniform feed*, run by the engine
   (``scenarios/validation/preference_dynamics.yaml``): one content cluster (every item near
   one direction x̄, the paper's fixed item), users spread around it (home noise 1 in K = 6
   topics: 14% start with ⟨θ₀, x̄⟩ < 0), the ``random`` policy serving one item a slate and
   the ``first_item`` choice, so users consume what they are shown — the paper's uniform
   consumption. (At the full size recsim's own logit choice, where users pick what they
   watch from ten, is run too, for information.) The 1-D projection is c = ⟨θ, x̄⟩, x̄ the
   normalized mean of the items' true topic vectors: the paper's c_t for the content every
   user meets. K = 6 because a population spread on the sphere projects to a unimodal c only
   for K ≥ 4 (K = 2 gives the U-shaped arcsine law, BC 2/3; K = 3 a uniform, BC exactly 5/9;
   K = 4 a semicircle, BC ½) and the users' pull toward their home center skews c, which
   raises BC: at K = 6 it starts near 0.46. Sarle's bimodality coefficient
   BC = (g² + 1)/(κ + 3(n−1)²/((n−2)(n−3))) (g, κ the bias-corrected skewness and excess
   kurtosis) of c over all users (churned users as their last session left them) at t = 0
   and at later times (runs of growing horizon: the trajectories are the same prefix, draws
   being counted per user), with relaxation toward θ₀ between sessions as by default
   (τ_θ = 3 d) and without it (τ_θ = 10⁶ d). Expected: BC < 5/9 at the start and above it
   later, tolerance: the 95% percentile bootstrap interval over users (users are independent
   under a random feed: no learning, a fixed catalog) of the final BC above 5/9 and that of
   the rise above 0. And the two poles: the paper's map is odd in c — with u = c/√(1 − c²) it
   is exactly u ← (1 + η)·u — so users who dislike the content (c₀ < 0) should progress
   toward −1 as fast as likers toward +1: log|u_T/u₀| compared between the two groups (95%
   Welch interval of the difference of means; the paper's value 0). Status: reproduced when
   the recurrence holds and, with the default relaxation, BC rises past 5/9 and the two
   groups progress alike; partly reproduced when BC rises (with or without relaxation) but
   c₀ < 0 users progress measurably slower (one pole forms, not two).
"""

from __future__ import annotations

import math

import numpy as np
from scipy.stats import kurtosis, skew, ttest_ind

from ..catalog import Catalog
from ..users.model import build_user_model
from ..users.state import Draws, ItemView, UserState
from . import Outcome, Target
from ._run import scenario, simulate

BIMODAL = 5.0 / 9.0  # Sarle's threshold: the BC of a uniform distribution
K = 5
C0 = np.array([0.9, 0.5, 0.1, 0.01, -0.01, -0.1, -0.5, -0.9])
#: (η_θ, s, τ/L) of the recurrence's cases: η = η_θ·s·τ/L = 0.02, 0.08, 0.01, 0.5
ETAS = ((0.02, 1.0, 1.0), (0.02, 4.0, 1.0), (0.02, 1.0, 0.5), (0.5, 1.0, 1.0))
STEPS = 3000
#: sizes: (users, the consumption models run with their horizons in days, bootstrap resamples)
_SIZES = {
    "fast": (400, (("first_item", (20,)),), 400),
    "full": (1000, (("first_item", (10, 20, 30)), ("logit", (30,))), 1000),
}
_NO_RELAX = "behaviour.topic.relax=1e6d"


def dm_step(c: np.ndarray, eta: np.ndarray) -> np.ndarray:
    """Dean & Morgenstern's closed-form recurrence c_{t+1} = c(1+η)/√(1 + (2η+η²)c²)."""
    return c * (1.0 + eta) / np.sqrt(1.0 + (2.0 * eta + eta * eta) * c * c)


def _recurrence() -> tuple[bool, list[str], str]:
    """Check 1: iterate ``Consumption.consume`` on one item and compare with :func:`dm_step`."""
    rows = [(eta_theta, s, frac, c0) for eta_theta, s, frac in ETAS for c0 in C0]
    x = np.zeros(K)
    x[0], x[1] = 0.6, 0.8  # the item's true topic vector (unit norm)
    y = np.array([0.0, 0.0, 1.0, 0.0, 0.0])  # a unit vector orthogonal to x
    length = 240.0
    catalog = Catalog(topics=x[None, :], cluster=np.zeros(1, dtype=np.int64), extremeness=np.array([0.2]),
                      quality=np.array([0.5]), clickbait=np.array([0.3]), length=np.array([length]),
                      creator=np.zeros(1, dtype=np.int64), upload_time=np.zeros(1), topics_obs=x[None, :].copy(),
                      classifier=np.array([0.2]))
    worst_step = worst_path = worst_limit = 0.0
    monotone = True
    lines = []
    for eta_theta in sorted({e for e, _, _ in ETAS}):
        sel = [i for i, r in enumerate(rows) if r[0] == eta_theta]
        model = build_user_model(scenario({"name": "dm", "policies": ["random"],
                                           "behaviour": {"topic": {"eta": eta_theta}}}))
        s = np.array([rows[i][1] for i in sel])
        frac = np.array([rows[i][2] for i in sel])
        c0 = np.array([rows[i][3] for i in sel])
        n = len(sel)
        theta = c0[:, None] * x + np.sqrt(1.0 - c0 * c0)[:, None] * y
        state = UserState(n, {
            "theta": theta, "theta0": theta.copy(), "appetite": np.full(n, 0.2), "appetite0": np.full(n, 0.2),
            "satisfaction": np.zeros(n), "susceptibility": s, "habit": np.zeros(n), "habit_time": np.zeros(n),
            "fatigue": np.zeros(n),
        })
        users = np.arange(n)
        items = ItemView(catalog, np.zeros(n, dtype=np.int64))
        draws = Draws.for_users(6, model.transition.streams, users)
        eta = eta_theta * s * frac
        tau = frac * length
        path = np.empty((STEPS + 1, n))
        for t in range(STEPS + 1):
            view = model.view(state, users)
            terms = model.allure.score(view, items)
            path[t] = terms["relevance"]  # c_t = θ_t·x, the model's own relevance
            if t == STEPS:
                break
            value = model.value.value(view, items, terms, tau)
            state.put(users, {"theta": model.transition.consume(view, items, terms, tau, value,
                                                                np.full(n, float(t)), draws)["theta"]})
        one_step = np.abs(path[1:] - dm_step(path[:-1], eta)).max()
        alone = np.empty_like(path)
        alone[0] = c0
        for t in range(STEPS):
            alone[t + 1] = dm_step(alone[t], eta)
        whole = np.abs(path - alone).max()
        limit = np.abs(path[-1] - np.sign(c0)).max()
        grows = bool(np.all(np.diff(np.abs(path), axis=0) >= -1e-15))
        worst_step, worst_path, worst_limit = max(worst_step, one_step), max(worst_path, whole), max(worst_limit, limit)
        monotone &= grows
        for e in sorted(set(eta)):
            lines.append(f"η = {e:g} (η_θ {eta_theta:g}, s·τ/L {e / eta_theta:g})")
    ok = worst_step <= 1e-9 and worst_path <= 1e-9 and worst_limit <= 1e-9 and monotone
    detail = (f"recurrence through Consumption.consume (relevance from Allure.score), {len(rows)} users "
              f"(c₀ ∈ {{±0.9, ±0.5, ±0.1, ±0.01}} × {', '.join(lines)}), {STEPS} watches of one item (τ/L as listed), K = {K}: "
              f"max |c_t+1 − f(c_t)| {worst_step:.1e}, max |c_t − f^t(c₀)| {worst_path:.1e} (tolerance 1e-9, "
              f"rounding ~1e-16 a step); |c_t| monotone: {monotone}; max |c_T − sign(c₀)| {worst_limit:.1e} (≤ 1e-9)")
    value = f"recurrence error {max(worst_step, worst_path):.0e}, c_T = sign(c₀)"
    return ok, [detail], value


def log_tangent(c: np.ndarray) -> np.ndarray:
    """log|u|, u = c/√(1 − c²): the paper's map multiplies u by (1 + η) at each exposure, for
    either sign of c, so log|u_T/u₀| counts a user's progress toward their pole (the sum of
    log(1 + η_t)) independently of where they started."""
    return np.log(np.abs(c)) - 0.5 * np.log1p(-c * c)


def bimodality(x: np.ndarray) -> np.ndarray:
    """Sarle's bimodality coefficient along the last axis: (g² + 1)/(κ + 3(n−1)²/((n−2)(n−3))),
    g and κ the bias-corrected sample skewness and excess kurtosis (> 5/9 suggests bimodality)."""
    n = x.shape[-1]
    g = skew(x, axis=-1, bias=False)
    k = kurtosis(x, axis=-1, bias=False)
    return (g * g + 1.0) / (k + 3.0 * (n - 1) ** 2 / ((n - 2) * (n - 3)))


def _population(size: str) -> tuple[dict, list[str]]:
    """Check 2: the BC of c = ⟨θ, x̄⟩ over time, by consumption model and relaxation, and the
    second pole: whether users who start with c₀ < 0 move toward −1."""
    n_users, variants, resamples = _SIZES[size]
    rng = np.random.default_rng(606)
    idx = rng.integers(0, n_users, size=(resamples, n_users))  # the same resamples everywhere
    results, lines = {}, []
    for variant, horizons in variants:
        extra = [] if variant == "first_item" else ["user_model.choice=logit", "recommender.slate_size=10"]
        for relax in ("default", "off"):
            overrides = [f"population.n_users={n_users}", *extra] + ([_NO_RELAX] if relax == "off" else [])
            points = []
            start = None
            for days in horizons:
                sc = scenario("preference_dynamics", [*overrides, f"horizon={days}d"])
                world, result, events = simulate(sc)
                xbar = world.catalog.topics.mean(axis=0)
                xbar /= np.linalg.norm(xbar)
                if start is None:
                    start = world.state["theta0"] @ xbar  # t = 0 (no warm-up): θ = θ₀
                    points.append((0, bimodality(start), bimodality(start[idx])))
                c = result.final_state["theta"] @ xbar
                points.append((days, bimodality(c), bimodality(c[idx])))
            churned = result.final_state["churned"]
            b0, b0_boot = points[0][1:]
            b1, b1_boot = points[-1][1:]
            lo0, hi0 = np.percentile(b0_boot, [2.5, 97.5])
            lo1, hi1 = np.percentile(b1_boot, [2.5, 97.5])
            rise_lo = np.percentile(b1_boot - b0_boot, 2.5)
            bimodal = bool(b0 < BIMODAL and lo1 > BIMODAL and rise_lo > 0)
            neg = start < 0
            progress = log_tangent(c) - log_tangent(start)
            welch = ttest_ind(progress[neg], progress[~neg], equal_var=False).confidence_interval(0.95)
            slower = bool(welch.high < 0)
            g_neg, g_pos = progress[neg].mean(), progress[~neg].mean()
            watches = events[events["event"] == "watch"]
            frac = watches.groupby(neg[watches["user_id"].to_numpy()])["watch_fraction"].mean()
            results[(variant, relax)] = (bimodal, slower, b0, b1, lo1, hi1, g_neg, g_pos)
            label = ("uniform consumption (first_item)" if variant == "first_item" else "recsim's logit choice") + \
                    (", τ_θ = 3 d (default)" if relax == "default" else ", no relaxation (τ_θ = 10⁶ d)")
            path = ", ".join(f"{d} d {b:.3f}" for d, b, _ in points)
            lines.append(
                f"{label}: BC of ⟨θ, x̄⟩ over {n_users} users at {path}; start [{lo0:.3f}, {hi0:.3f}], end "
                f"[{lo1:.3f}, {hi1:.3f}] (95% percentile bootstrap over users, {resamples} resamples; expected "
                f"start < 5/9 < end interval): {'holds' if bimodal else 'fails'}; at c > 0.9 "
                f"{np.mean(start[~neg] > 0.9):.0%} → {np.mean(c[~neg] > 0.9):.0%} of the c₀ > 0 users, at c < −0.9 "
                f"{np.mean(start[neg] < -0.9):.0%} → {np.mean(c[neg] < -0.9):.0%} of the {neg.sum()} c₀ < 0 users; "
                f"progress toward one's pole log|u_T/u₀| (u = c/√(1−c²), ×(1+η) per exposure whatever the sign in "
                f"the paper): c₀ < 0 {g_neg:.3f}, c₀ > 0 {g_pos:.3f} (ratio {g_neg / g_pos:.2f}), difference 95% "
                f"Welch interval [{welch.low:+.3f}, {welch.high:+.3f}], the paper's 0 "
                f"{'excluded: the second pole forms slower' if slower else 'not excluded'}; mean watch fraction "
                f"c₀ < 0 {frac.get(True, math.nan):.3f}, c₀ > 0 {frac.get(False, math.nan):.3f}; churned "
                f"{churned.mean():.0%}")
    return results, lines


def _check(size: str) -> Outcome:
    rec_ok, rec_lines, rec_value = _recurrence()
    results, pop_lines = _population(size)
    bimodal, slower, b0, b1, lo1, hi1, g_neg, g_pos = results[("first_item", "default")]
    off_bimodal, _, _, b1_off, lo_off, hi_off, _, _ = results[("first_item", "off")]
    status = ("reproduced" if rec_ok and bimodal and not slower else
              "partly reproduced" if rec_ok and (bimodal or off_bimodal) else "not reproduced")
    value = (f"{rec_value}; BC {b0:.2f} → {b1:.2f} [{lo1:.2f}, {hi1:.2f}] (τ_θ 3 d), → {b1_off:.2f} "
             f"[{lo_off:.2f}, {hi_off:.2f}] (no relaxation); c₀ < 0 users progress {g_neg / g_pos:.2f}× as fast "
             f"as c₀ > 0 ones (paper: 1×)")
    return Outcome(value=value, status=status, details=[*rec_lines, *pop_lines])


TARGET = Target(
    number=6,
    key="preference_dynamics",
    title="Preference dynamics (Dean & Morgenstern)",
    source="Dean & Morgenstern 2022, Preference dynamics under personalized recommendations (EC)",
    expected="c_t+1 = c_t(1+η)/√(1+(2η+η²)c_t²) → sign(c₀) under repeated exposure; a population under uniform "
             "consumption becomes bimodal (bimodality coefficient of ⟨θ, x̄⟩ rises past 5/9)",
    tolerance="recurrence: max abs error ≤ 1e-9 (rounding); bimodality: 95% bootstrap interval over users of the "
              "final BC above 5/9, start BC below it",
    check=_check,
    status="partly reproduced",
    reason="recsim's topic update is Dean & Morgenstern's exactly, and a population that consumes what a random "
           "feed shows becomes bimodal, with the default relaxation toward θ₀ (τ_θ = 3 d) too (BC 0.46 → 0.62 in "
           "30 d; 0.89 without relaxation) — but around one pole, not two: users who dislike the content "
           "(c₀ < 0) move toward −1 about 15× slower than likers move toward +1 (log-tangent progress 0.049 vs "
           "0.83 in 30 d; 0.32 vs 4.5 without relaxation), because allure, which rises with relevance, sets the watch fraction τ/L that scales "
           "each step (mean 0.16 vs 0.62), the session's continuation and the returns: the paper's update is odd "
           "in c, recsim's exposure is not. Under recsim's own logit choice (users pick what they watch) with the "
           "default relaxation, BC stays below 5/9 over 30 d (0.52)",
)
