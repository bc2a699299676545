"""Target 3: the direction of every hidden-state update of the default user model
(docs/model.md §6 and §7; ``recsim/users/default.py`` over ``recsim/users/formulas.py``).

Each documented direction is checked over a grid of random states and items (fixed seed),
through the component method the engine calls (``recsim/engine/core.py``): after a watch,
``Allure.score`` → ``LogNormalWatch.watch_time`` (watch times drawn as the engine draws them,
from counter-based per-user streams) → ``Value.value`` → ``Consumption.consume``; at a
return, ``BetweenSessions.relax``; at a session's end, ``HawkesReturns.end_session`` (and the
intensity ``next_return`` thins against, ``formulas.return_intensity``) and
``ValueChurn.end_session`` (with ``ValueChurn.probability``). A comparison is against the
unchanged input, or against the same call with one argument changed and the same draws
(common random numbers: ``Draws.for_users`` with one seed gives the same noise twice), so
the noise cancels and a sign error or a missing update fails the check exactly (no
tolerance).

The clickbait cost (§3, §5.4): clickbait raises allure A = w_r·r + w_e·g + w_c·b, allure
lengthens watches (log T has α_A·A) and value pays c_τ per minute watched, so a clickbait
item lowers satisfaction through watch time. Measured as the mean, over watches drawn by
``LogNormalWatch.watch_time``, of the difference in the satisfaction change S' − S that
``Consumption.consume`` gives for b = 0.9 and for b = 0.1, the items otherwise equal and the
draws paired; expected < 0 with its 95% interval below 0, and equal within 4 standard errors
to the closed form −c_τ·(E[τ | b = 0.9] − E[τ | b = 0.1])/60 of
``LogNormalWatch.expected_watch_time``.
"""

from __future__ import annotations

import math

import numpy as np

from ..catalog import Catalog
from ..users import formulas as f
from ..users.components import SessionSummary
from ..users.model import build_user_model
from ..users.state import Draws, ItemView, UserState
from . import Outcome, Target
from ._run import scenario

HOUR, DAY = 3600.0, 86400.0
K = 5
#: sizes: (grid rows: random (user, item) pairs, clickbait draws)
_SIZES = {"fast": (2000, 20_000), "full": (20_000, 1_000_000)}
#: times away of the relaxation grid (seconds)
_AWAY = np.array([HOUR, 6 * HOUR, DAY, 3 * DAY, 10 * DAY, 60 * DAY])


def _model(**behaviour):
    return build_user_model(scenario({"name": "directions", "policies": ["random"], "behaviour": behaviour}))


def _unit_rows(v: np.ndarray) -> np.ndarray:
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def _catalog(topics, e, q, b, length) -> Catalog:
    n = topics.shape[0]
    return Catalog(topics=topics, cluster=np.zeros(n, dtype=np.int64), extremeness=e, quality=q, clickbait=b,
                   length=length, creator=np.zeros(n, dtype=np.int64), upload_time=np.zeros(n),
                   topics_obs=topics.copy(), classifier=e.copy())


def _users(rng: np.random.Generator, n: int) -> dict[str, np.ndarray]:
    """``n`` random user states of the default model (every field its components use)."""
    theta = _unit_rows(rng.normal(size=(n, K)))
    return {
        "theta": theta,
        "theta0": _unit_rows(rng.normal(size=(n, K))),
        "appetite": rng.uniform(0.01, 0.99, n),
        "appetite0": rng.uniform(0.01, 0.99, n),
        "satisfaction": rng.normal(0.0, 2.0, n),
        "susceptibility": np.where(rng.random(n) < 0.1, 4.0, np.exp(rng.normal(0.0, 0.2, n))),
        "habit": rng.uniform(0.1, 10.0, n),
        "habit_time": np.zeros(n),
        "fatigue": rng.uniform(0.0, 2.0, n),
        "impulse": rng.uniform(0.0, 2e-4, n),
        "slow": rng.uniform(0.0, 2e-6, n),
        "kernel_time": np.zeros(n),
        "ubar": rng.normal(0.3, 0.8, n),
    }


class _Tally:
    """Counts each direction's cases and whether all of them held."""

    def __init__(self) -> None:
        self.rows: list[tuple[str, int, int]] = []

    def check(self, what: str, holds: np.ndarray) -> None:
        holds = np.asarray(holds, dtype=bool)
        self.rows.append((what, int(holds.size), int(holds.sum())))

    @property
    def ok(self) -> bool:
        return all(n == good for _, n, good in self.rows)

    @property
    def cases(self) -> int:
        return sum(n for _, n, _ in self.rows)


def _watch(model, arrays, catalog, tau=None, value=None, susceptibility=None, seed=3):
    """One watch of item ``i`` by user ``i`` as the engine takes it: terms, watch time (drawn
    unless given), value (unless given), ``consume``; the draws keyed by ``seed`` (the same
    seed, the same noise). Returns (updates, terms, τ, V, view)."""
    if susceptibility is not None:
        arrays = {**arrays, "susceptibility": susceptibility}
    n = arrays["theta"].shape[0]
    users = np.arange(n)
    state = UserState(n, arrays)
    view = model.view(state, users)
    items = ItemView(catalog, users)
    terms = model.allure.score(view, items)
    if tau is None:
        tau = model.response.watch_time(view, items, terms, Draws.for_users(seed, model.response.streams, users))
    if value is None:
        value = model.value.value(view, items, terms, tau)
    now = arrays["habit_time"] + tau + 600.0  # the watch ends some minutes after the last habit update
    updates = model.transition.consume(view, items, terms, tau, value, now,
                                       Draws.for_users(seed, model.transition.streams, users))
    return updates, terms, tau, value, view


def _after_watch(tally: _Tally, model, rng, n: int) -> None:
    """Topic drift, the appetite ratchet, satisfaction/wellbeing, habit, fatigue."""
    arrays = _users(rng, n)
    topics = _unit_rows(rng.normal(size=(n, K)))
    catalog = _catalog(topics, rng.uniform(0, 1, n), rng.uniform(0, 1, n), rng.uniform(0, 1, n),
                       np.clip(240.0 * np.exp(0.7 * rng.normal(size=n)), 15.0, 3 * HOUR))
    out, terms, tau, V, view = _watch(model, arrays, catalog)
    r = terms["relevance"]
    users = np.arange(n)
    after = model.allure.score(model.view(UserState(n, {**arrays, **out}), users), ItemView(catalog, users))
    r_after = after["relevance"]
    tally.check("topic: a watch with r > 0 raises r = θ·x (θ pulled toward x)", r_after[r > 0] > r[r > 0])
    tally.check("topic: a watch with r < 0 lowers r (θ pushed away from x)", r_after[r < 0] < r[r < 0])
    s = arrays["susceptibility"]
    more_s, *_ = _watch(model, arrays, catalog, tau=tau, value=V, susceptibility=2 * s)
    less_frac, *_ = _watch(model, arrays, catalog, tau=tau / 2, value=V)
    move = np.abs(r_after - r)
    move_s = np.abs(np.sum(more_s["theta"] * topics, axis=1) - r)
    move_f = np.abs(np.sum(less_frac["theta"] * topics, axis=1) - r)
    tally.check("topic: the move grows with susceptibility (2s)", move_s > move)
    tally.check("topic: the move grows with the watch fraction (τ/2 moves less)", move_f < move)
    a, e = arrays["appetite"], catalog.extremeness
    tally.check("appetite: an item more extreme than the appetite raises it", out["appetite"][e > a] > a[e > a])
    tally.check("appetite: a milder item lowers it", out["appetite"][e < a] < a[e < a])
    up = e > a
    up_s, *_ = _watch(model, arrays, catalog, tau=tau, value=V, susceptibility=2 * s)
    tally.check("appetite: the step up grows with susceptibility; the step down does not",
                np.where(up, up_s["appetite"] > out["appetite"], up_s["appetite"] == out["appetite"]))
    equal = _catalog(topics, a.copy(), catalog.quality, catalog.clickbait, catalog.length)
    same, *_ = _watch(model, arrays, equal)
    tally.check("appetite: an item at the appetite leaves it", same["appetite"] == a)
    # satisfaction: the same call and noise with V = 0 is the carry-over γS + ε; S' − that = V
    zero, *_ = _watch(model, arrays, catalog, tau=tau, value=np.zeros(n))
    S1, S0 = out["satisfaction"], zero["satisfaction"]
    tally.check("satisfaction: a positive-value watch raises S (vs the same watch at V = 0, same noise), a "
                "negative one lowers it", np.where(V > 0, S1 > S0, S1 < S0))
    W = model.wellbeing
    w1 = W(model.view(UserState(n, {**arrays, "satisfaction": S1}), users))
    w0 = W(model.view(UserState(n, {**arrays, "satisfaction": S0}), users))
    tally.check("wellbeing W = sigmoid(κS) moves with S", np.where(V > 0, w1 > w0, w1 < w0))
    # habit: consume's ψ minus the habit decayed to the same time (BetweenSessions.relax, dt = 0) is A
    now = arrays["habit_time"] + tau + 600.0
    decayed = model.relaxation.relax(view, np.zeros(n), now)["habit"]
    A = terms["allure"]
    tally.check("habit: an item with allure A > 0 raises ψ above its decayed value, A < 0 lowers it",
                np.where(A > 0, out["habit"] > decayed, out["habit"] < decayed))
    tally.check("habit: ψ decays with the time since its last update (ψ > 0)", decayed < arrays["habit"])
    tally.check("fatigue: a watch adds its hours", out["fatigue"] > arrays["fatigue"])


def _between_sessions(tally: _Tally, model, rng, n: int) -> None:
    arrays = _users(rng, n)
    users = np.arange(n)
    view = model.view(UserState(n, arrays), users)
    dt = _AWAY[np.arange(n) % _AWAY.size]
    now = arrays["habit_time"] + dt
    out = model.relaxation.relax(view, dt, now)
    longer = model.relaxation.relax(view, 2 * dt, arrays["habit_time"] + 2 * dt)
    gap = np.linalg.norm(arrays["theta"] - arrays["theta0"], axis=1)
    gap1 = np.linalg.norm(out["theta"] - arrays["theta0"], axis=1)
    gap2 = np.linalg.norm(longer["theta"] - arrays["theta0"], axis=1)
    tally.check("relaxation: θ moves toward θ₀, the more the longer away", (gap1 < gap) & (gap2 < gap1))
    a, a0, a1 = arrays["appetite"], arrays["appetite0"], out["appetite"]
    tally.check("relaxation: a moves toward a₀ without overshooting",
                (np.abs(a1 - a0) < np.abs(a - a0)) & (np.sign(a1 - a0) == np.sign(a - a0)))
    S, S1 = arrays["satisfaction"], out["satisfaction"]
    tally.check("relaxation: S decays toward 0 (W toward ½) without changing sign",
                (np.abs(S1) < np.abs(S)) & (np.sign(S1) == np.sign(S)))
    tally.check("relaxation: habit decays", out["habit"] < arrays["habit"])
    tally.check("relaxation: fatigue is gone after time away", (out["fatigue"] == 0) & (arrays["fatigue"] > 0))


def _session_end(tally: _Tally, model, rng, n: int) -> None:
    arrays = _users(rng, n)
    users = np.arange(n)
    view = model.view(UserState(n, arrays), users)
    now = rng.uniform(HOUR, 10 * DAY, n)
    mean_allure, mean_value = rng.normal(1.0, 2.0, n), rng.normal(0.0, 1.0, n)

    def ended(allure, value):
        summary = SessionSummary(np.full(n, 3), np.full(n, 900.0), value, allure)
        return model.returns.end_session(view, summary, now), model.churn.end_session(view, summary)

    (ret, churn), (ret0, _) = ended(mean_allure, mean_value), ended(np.zeros(n), np.zeros(n))
    tally.check("returns: a session of mean allure Ā > 0 raises the impulse kernel (vs Ā = 0), Ā ≤ 0 adds nothing",
                np.where(mean_allure > 0, ret["impulse"] > ret0["impulse"], ret["impulse"] == ret0["impulse"]))
    tally.check("returns: a session of mean value V̄ > 0 raises the slow kernel, V̄ ≤ 0 adds nothing",
                np.where(mean_value > 0, ret["slow"] > ret0["slow"], ret["slow"] == ret0["slow"]))
    tally.check("returns: both kernels decay between session ends",
                (ret0["impulse"] < arrays["impulse"]) & (ret0["slow"] < arrays["slow"]))
    p, sat = model.returns.params, model.behaviour.satisfaction
    later = now + HOUR
    lam = f.return_intensity(later, now, arrays["satisfaction"], ret["impulse"], ret["slow"], p, sat.kappa, sat.relax)
    lam0 = f.return_intensity(later, now, arrays["satisfaction"], ret0["impulse"], ret0["slow"], p, sat.kappa,
                              sat.relax)
    fed = (mean_allure > 0) | (mean_value > 0)
    tally.check("returns: the intensity an hour later is higher after a session that fed a kernel",
                np.where(fed, lam > lam0, lam == lam0))
    ubar, u1 = arrays["ubar"], churn["ubar"]
    p0 = model.churn.probability(view)
    p1 = model.churn.probability(model.view(UserState(n, {**arrays, "ubar": u1}), users))
    tally.check("churn: Ū moves toward the session's mean value; churn probability falls when V̄ > Ū, rises when "
                "V̄ < Ū", np.where(mean_value > ubar, (u1 > ubar) & (p1 < p0), (u1 < ubar) & (p1 > p0)))


def _clickbait(model, n: int, seed: int = 9) -> tuple[float, float, float, float, dict]:
    """Mean paired difference of the satisfaction change S' − S for b = 0.9 vs b = 0.1 over
    ``n`` watches drawn by the response component; returns (mean, standard error, closed form,
    mean τ difference, the setting)."""
    x = np.array([1.0, 0.0, 0.0, 0.0, 0.0])
    theta = np.array([0.8, 0.6, 0.0, 0.0, 0.0])  # r = 0.8
    setting = {"r": 0.8, "e": 0.2, "q": 0.5, "L": 240.0, "a": 0.2, "S": 0.0}
    catalog = _catalog(np.repeat(x[None, :], 2, axis=0), np.full(2, 0.2), np.full(2, 0.5), np.array([0.1, 0.9]),
                       np.full(2, 240.0))
    arrays = {"theta": np.repeat(theta[None, :], n, axis=0), "appetite": np.full(n, 0.2),
              "satisfaction": np.zeros(n), "susceptibility": np.ones(n), "habit": np.zeros(n),
              "habit_time": np.zeros(n), "fatigue": np.zeros(n)}
    users = np.arange(n)
    state = UserState(n, arrays)
    change, taus = {}, {}
    for which in (0, 1):  # plain, clickbait: the same users, the same watch and satisfaction draws
        view = model.view(state, users)
        items = ItemView(catalog, np.full(n, which, dtype=np.int64))
        terms = model.allure.score(view, items)
        tau = model.response.watch_time(view, items, terms, Draws.for_users(seed, model.response.streams, users))
        V = model.value.value(view, items, terms, tau)
        out = model.transition.consume(view, items, terms, tau, V, tau,
                                       Draws.for_users(seed, model.transition.streams, users))
        change[which] = out["satisfaction"] - arrays["satisfaction"]
        taus[which] = tau
    d = change[1] - change[0]
    one = model.view(UserState(1, {k: v[:1] for k, v in arrays.items()}), np.arange(1))
    ids = np.array([[0, 1]])
    terms = model.allure.score(one, ItemView(catalog, ids))
    ew = model.response.expected_watch_time(one, ItemView(catalog, ids), terms)[0]
    closed = -model.value.params.c_tau * (ew[1] - ew[0]) / 60.0
    return float(d.mean()), float(d.std(ddof=1) / math.sqrt(n)), float(closed), float((taus[1] - taus[0]).mean()), setting


def _check(size: str) -> Outcome:
    rows, draws = _SIZES[size]
    model = _model()
    rng = np.random.default_rng(303)
    tally = _Tally()
    _after_watch(tally, model, rng, rows)
    _between_sessions(tally, model, rng, rows)
    _session_end(tally, model, rng, rows)
    mean, se, closed, dtau, setting = _clickbait(model, draws)
    costly = mean + 1.96 * se < 0
    agrees = abs(mean - closed) <= 4 * se
    # configurations in which clickbait has no satisfaction cost: measured, the same way
    free = {label: _clickbait(_model(**cfg), min(draws, 20_000))[0] for label, cfg in (
        ("c_τ = 0", {"value": {"c_tau": 0.0}}), ("w_c = 0", {"allure": {"w_c": 0.0}}),
        ("α_A = 0", {"watch": {"alpha_a": 0.0}}))}
    n_dirs = len(tally.rows) + 1
    ok = tally.ok and costly and agrees
    details = [f"{what}: {good}/{n} cases" for what, n, good in tally.rows]
    details.insert(0, f"{len(tally.rows)} directions over a grid of {rows} random (user, item) pairs per "
                      f"component (K = {K}, seed 303; relaxation over "
                      f"{', '.join(f'{t / HOUR:g} h' for t in _AWAY)} away): {sum(g for _, _, g in tally.rows)}/"
                      f"{tally.cases} cases hold (exact comparisons, paired draws)")
    details.append(
        f"clickbait: satisfaction change of a watch of b = 0.9 minus b = 0.1 (otherwise equal: r {setting['r']}, e "
        f"{setting['e']}, q {setting['q']}, L {setting['L']:g} s; user a {setting['a']}, S {setting['S']}, W ½), "
        f"watch times from LogNormalWatch.watch_time, {draws:,} paired draws: {mean:+.5f} ± {se:.5f} (SE; the "
        f"clickbait item is watched {dtau:+.1f} s longer on average), expected < 0 with the 95% interval below 0: "
        f"{'holds' if costly else 'fails'}; closed form −c_τ·ΔE[τ]/60 = {closed:+.5f}, within 4 SE: "
        f"{'holds' if agrees else 'fails'}")
    details.append(
        "clickbait has no satisfaction cost when watch time costs no value or clickbait does not lengthen the "
        "watch — the same difference with " + ", ".join(
            f"{label}: {'exactly 0' if d == 0 else f'{d:+.2e}'}" for label, d in free.items())
        + " — nor for a watch that reaches the item's end either way (τ = L): its only cost is the time watched")
    return Outcome(
        value=(f"{n_dirs} directions ({tally.cases:,} grid cases + {draws:,} clickbait draws), all hold; "
               f"clickbait ΔS {mean:+.5f} ± {se:.5f} (SE) per watch") if ok else
              f"{n_dirs} directions: {sum(1 for _, n, g in tally.rows if n != g) + (not costly)} fail",
        status="reproduced" if ok else "not reproduced",
        details=details,
    )


TARGET = Target(
    number=3,
    key="directions",
    title="Direction of every hidden-state update",
    source="docs/model.md §6–§7 (the model's documented directions); clickbait: §3, §5.4",
    expected="every update moves its state the documented way (θ toward watched relevant items, appetite up after "
             "more extreme items, S with V, habit with allure, relaxation toward θ₀, a₀, 0, kernels with Ā and V̄⁺, "
             "Ū toward V̄); a clickbait item lowers satisfaction vs an equal non-clickbait one",
    tolerance="exact comparisons (paired draws, no tolerance); clickbait: mean over ≥ 10⁵ paired draws with its "
              "95% interval below 0, and within 4 SE of the closed form",
    check=_check,
)
