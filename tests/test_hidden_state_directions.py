"""One direction test for every hidden-state update of the user model, each through the
component method the engine calls (see recsim/engine/core.py):

* ``Consumption.consume`` after a watch (value from ``Value.value``, watch time from
  ``LogNormalWatch.watch_time`` unless a test fixes it): topic drift, the appetite ratchet,
  satisfaction, habit, fatigue;
* ``BetweenSessions.relax`` at a return: θ → θ₀, a → a₀, S → 0, habit decays, fatigue gone;
* ``HawkesReturns.end_session`` at a session's end: the impulse and value kernels of the
  return intensity (and ``next_return``, which thins against it);
* ``ValueChurn.end_session``: the EMA of session value behind the churn probability;
* the peer components of ``recsim.users.peers``: ``NetPositiveExposure.consume``,
  ``TimeBudget.after_watch``, ``Patience.after_watch``.

Every assertion compares the component's output with its unchanged input (or with the same
call on an otherwise equal item or user), so a sign error or a missing update fails it. Draws
are counter-based per user: two calls with ``Draws.for_users`` of the same seed and users get
the same noise (common random numbers), which is how two items are compared noise for noise.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import integrate

from recsim.catalog import Catalog
from recsim.config import (
    AppetiteDynamicsConfig,
    BehaviourConfig,
    ReturnsConfig,
    SatisfactionConfig,
    Scenario,
)
from recsim.users import formulas as f
from recsim.users.components import SessionSummary
from recsim.users.default import Consumption, HawkesReturns, ValueChurn
from recsim.users.model import build_user_model
from recsim.users.peers import NetPositiveExposure, Patience, TimeBudget
from recsim.users.state import Draws, ItemView, StateView

BEHAVIOUR = BehaviourConfig()
MODEL = build_user_model(Scenario(name="t", policies=["random"]))
HOUR, DAY = 3600.0, 86400.0
K = 4
Z4 = 4.0  # z-tolerance: two-sided false-failure probability 6.3e-5 for a correct implementation


def _unit(v):
    v = np.asarray(v, dtype=float)
    return v / np.linalg.norm(v)


E1, E2, E3 = np.eye(K)[0], np.eye(K)[1], np.eye(K)[2]


def catalog(*items) -> Catalog:
    """Items given as dicts (topic, e, q, b, L); ids are their positions."""
    topics = np.array([_unit(it.get("topic", E1)) for it in items])
    col = lambda key, default: np.array([float(it.get(key, default)) for it in items])
    e = col("e", 0.2)
    n = len(items)
    return Catalog(
        topics=topics,
        cluster=np.zeros(n, dtype=np.int64),
        extremeness=e,
        quality=col("q", 0.5),
        clickbait=col("b", 0.3),
        length=col("L", 300.0),
        creator=np.zeros(n, dtype=np.int64),
        upload_time=np.zeros(n),
        topics_obs=topics.copy(),
        classifier=e.copy(),
    )


def user(n=1, **fields) -> dict[str, np.ndarray]:
    """``n`` users of the default model, all equal unless ``fields`` (scalars or rows) say
    otherwise."""
    base = {
        "theta": _unit([1.0, 0.4, 0.1, 0.0]),
        "theta0": _unit([0.2, 1.0, 0.0, 0.3]),
        "appetite": 0.3,
        "appetite0": 0.2,
        "satisfaction": 0.5,
        "susceptibility": 1.0,
        "habit": 2.0,
        "habit_time": 0.0,
        "fatigue": 0.2,
        "impulse": 0.0,
        "slow": 0.0,
        "kernel_time": 0.0,
        "ubar": 0.6,
    }
    base.update(fields)
    out = {}
    for name, value in base.items():
        value = np.asarray(value, dtype=float)
        row_shape = (K,) if name in ("theta", "theta0") else ()
        out[name] = np.array(np.broadcast_to(value, (n, *row_shape)))
    return out


def view(arrays, transition=None) -> StateView:
    wellbeing = (transition or MODEL.transition).wellbeing
    return StateView.of(arrays, {"wellbeing": wellbeing})


def watch(arrays, cat, ids, tau=None, now=None, transition=None, seed=0):
    """A watch as the engine takes it: terms (Allure.score), watch time
    (LogNormalWatch.watch_time) unless ``tau`` is given, value (Value.value), then
    ``transition.consume``. Returns (updates, value, watch time, terms)."""
    transition = transition or MODEL.transition
    state = view(arrays, transition)
    ids = np.asarray(ids, dtype=np.int64)
    n = ids.shape[0]
    users = np.arange(n)
    items = ItemView(cat, ids)
    terms = MODEL.allure.score(state, items)
    if tau is None:
        tau = MODEL.response.watch_time(
            state, items, terms, Draws.for_users(seed, ("watch",), users)
        )
    tau = np.broadcast_to(np.asarray(tau, dtype=float), (n,)).copy()
    now = (
        arrays["habit_time"] + tau
        if now is None
        else np.broadcast_to(np.asarray(now, dtype=float), (n,)).copy()
    )
    V = MODEL.value.value(state, items, terms, tau)
    updates = transition.consume(
        state, items, terms, tau, V, now, Draws.for_users(seed, transition.streams, users)
    )
    return updates, V, tau, terms


# =============================================================================== topic drift
def test_watched_relevant_item_raises_relevance_and_keeps_unit_norm():
    thetas = np.array(
        [_unit([1.0, 0.4, 0.1, 0.0]), _unit([0.5, 1.0, 0.0, 0.2]), _unit([0.3, 0.3, 1.0, 0.0])]
    )
    x = _unit([1.0, 0.5, 0.5, 0.0])
    cat = catalog({"topic": x, "L": 300.0})
    arrays = user(3, theta=thetas)
    r_before = thetas @ x
    assert np.all(r_before > 0)
    out, _, _, terms = watch(arrays, cat, [0, 0, 0], tau=240.0)
    np.testing.assert_allclose(terms["relevance"], r_before, rtol=1e-14)
    r_after = out["theta"] @ x
    assert np.all(r_after > r_before)
    np.testing.assert_allclose(np.linalg.norm(out["theta"], axis=1), 1.0, atol=1e-14)
    # the input is not mutated (the engine writes the returned values)
    np.testing.assert_array_equal(arrays["theta"], thetas)


def test_unwatched_item_does_not_move_theta():
    """An item shown but not watched (watch time 0: watch fraction 0) leaves θ where it was;
    the same item watched moves it (so the comparison can fail)."""
    cat = catalog({"topic": [1.0, 0.5, 0.5, 0.0]})
    arrays = user()
    still, _, _, _ = watch(arrays, cat, [0], tau=0.0)
    np.testing.assert_allclose(still["theta"], arrays["theta"], rtol=0, atol=1e-15)
    moved, _, _, _ = watch(arrays, cat, [0], tau=300.0)
    assert np.abs(moved["theta"] - arrays["theta"]).max() > 1e-4


def test_susceptibility_and_watch_fraction_scale_topic_drift():
    x = _unit([1.0, 1.0, 0.0, 0.0])
    cat = catalog({"topic": x, "L": 300.0})
    s = np.array([0.5, 1.0, 2.0, 4.0])
    arrays = user(4, theta=_unit([1.0, 0.0, 0.0, 0.0]), susceptibility=s)
    out, _, _, _ = watch(arrays, cat, [0] * 4, tau=300.0)
    gains = out["theta"] @ x - arrays["theta"] @ x
    assert np.all(gains > 0) and np.all(np.diff(gains) > 0)
    frac_out, _, _, _ = watch(
        user(3, theta=_unit([1.0, 0.0, 0.0, 0.0])), cat, [0] * 3, tau=[30.0, 150.0, 300.0]
    )
    assert np.all(np.diff(frac_out["theta"] @ x) > 0)


# =============================================================================== appetite ratchet
def test_item_above_the_appetite_raises_it_and_below_lowers_it():
    cat = catalog({"e": 0.6}, {"e": 0.1}, {"e": 0.3})
    arrays = user(3, appetite=0.3)
    out, _, _, _ = watch(arrays, cat, [0, 1, 2], tau=300.0)
    a = out["appetite"]
    assert a[0] > 0.3 and a[1] < 0.3 and a[2] == 0.3


def test_appetite_ratchet_goes_up_faster_than_down():
    cfg = BEHAVIOUR.appetite
    assert cfg.eta_up > cfg.eta_down
    a, d = 0.4, 0.2
    cat = catalog({"e": a + d}, {"e": a - d})
    out, _, _, _ = watch(user(2, appetite=a), cat, [0, 1], tau=300.0)  # full watch, s = 1
    up, down = out["appetite"][0] - a, a - out["appetite"][1]
    assert up == pytest.approx(cfg.eta_up * d, rel=1e-12)
    assert down == pytest.approx(cfg.eta_down * d, rel=1e-12)
    assert up > down


def test_appetite_is_clipped_to_the_unit_interval():
    transition = Consumption(
        BehaviourConfig(appetite=AppetiteDynamicsConfig(eta_up=5.0, eta_down=5.0))
    )
    cat = catalog({"e": 1.0}, {"e": 0.0})
    arrays = user(2, appetite=[0.9, 0.1], susceptibility=[4.0, 1.0])
    out, _, _, _ = watch(arrays, cat, [0, 1], tau=300.0, transition=transition)
    np.testing.assert_array_equal(out["appetite"], [1.0, 0.0])
    # unclipped, the same steps would leave [0, 1]: 0.9 + 5·4·0.1 and 0.1 − 5·0.1
    assert 0.9 + 5 * 4 * 0.1 > 1 and 0.1 - 5 * 0.1 < 0


def test_susceptibility_scales_the_upward_ratchet():
    cat = catalog({"e": 0.5}, {"e": 0.05})
    s = np.array([1.0, 2.0, 4.0])
    up, _, _, _ = watch(user(3, appetite=0.2, susceptibility=s), cat, [0, 0, 0], tau=300.0)
    steps = up["appetite"] - 0.2
    assert np.all(steps > 0)
    np.testing.assert_allclose(steps / steps[0], [1.0, 2.0, 4.0], rtol=1e-12)
    # the watch fraction scales it too
    part, _, _, _ = watch(user(3, appetite=0.2), cat, [0, 0, 0], tau=[75.0, 150.0, 300.0])
    assert np.all(np.diff(part["appetite"]) > 0)
    # the downward step carries neither the susceptibility nor the watch fraction
    down, _, _, _ = watch(
        user(3, appetite=0.2, susceptibility=s), cat, [1, 1, 1], tau=[75.0, 150.0, 300.0]
    )
    assert np.all(down["appetite"] < 0.2)
    assert np.all(down["appetite"] == down["appetite"][0])


# =============================================================================== satisfaction
def test_extreme_low_quality_item_lowers_satisfaction_and_wellbeing():
    cat = catalog({"topic": [0.2, 1.0, 0.0, 0.0], "e": 0.9, "q": 0.05, "b": 0.5, "L": 300.0})
    S = np.array([-1.0, 0.0, 0.5, 2.0])
    arrays = user(4, satisfaction=S, appetite=0.8)
    out, V, _, _ = watch(arrays, cat, [0] * 4, seed=1)
    assert np.all(V < -2)  # v_h·e² = 3.24 dominates
    assert np.all(out["satisfaction"] < S)
    before = MODEL.transition.wellbeing(view(arrays))
    after = MODEL.transition.wellbeing(view({**arrays, "satisfaction": out["satisfaction"]}))
    assert np.all(after < before)


def test_mild_relevant_quality_item_raises_satisfaction():
    cat = catalog({"topic": [1.0, 0.3, 0.0, 0.0], "e": 0.05, "q": 0.9, "b": 0.1, "L": 180.0})
    S = np.array([-1.0, 0.0, 0.5])
    arrays = user(3, satisfaction=S)
    out, V, _, terms = watch(arrays, cat, [0] * 3, seed=2)
    assert np.all(terms["relevance"] > 0.9)
    assert np.all(V > 0.8)
    assert np.all(out["satisfaction"] > S)


def test_satisfaction_update_is_noise_free_formula_without_noise():
    """With σ_S = 0 the update is exactly γ·S + V: the direction is V's sign (and S's decay)."""
    transition = Consumption(BehaviourConfig(satisfaction=SatisfactionConfig(noise=0.0)))
    cat = catalog({"e": 0.9, "q": 0.05}, {"topic": [1.0, 0.3, 0.0, 0.0], "e": 0.05, "q": 0.9})
    arrays = user(2, satisfaction=[0.0, 0.0])
    out, V, _, _ = watch(arrays, cat, [0, 1], transition=transition)
    np.testing.assert_array_equal(out["satisfaction"], V)
    assert out["satisfaction"][0] < 0 < out["satisfaction"][1]


def test_clickbait_lowers_satisfaction_through_longer_watching():
    """Two items equal but for clickbait: the clickbait one pulls more (allure), so the
    response model holds the user longer (same watch noise), watch time costs value
    (c_τ per minute), and satisfaction ends lower (same satisfaction noise)."""
    common = {"topic": [0.4, 1.0, 0.0, 0.0], "e": 0.6, "q": 0.5, "L": 1800.0}
    cat = catalog(dict(common, b=0.1), dict(common, b=0.9))
    arrays = user(1)
    plain, V_plain, tau_plain, terms_plain = watch(arrays, cat, [0], seed=5)
    bait, V_bait, tau_bait, terms_bait = watch(arrays, cat, [1], seed=5)
    assert terms_bait["allure"][0] > terms_plain["allure"][0]
    assert terms_bait["relevance"][0] == terms_plain["relevance"][0]
    assert tau_plain[0] < tau_bait[0] < 1800.0  # neither capped by the length
    assert V_bait[0] < V_plain[0]
    assert bait["satisfaction"][0] < plain["satisfaction"][0]
    # the clickbait itself costs nothing: at the same watch time the values are equal
    state = view(arrays)
    same = MODEL.value.value(state, ItemView(cat, np.array([1])), terms_bait, tau_plain)
    assert same[0] == pytest.approx(V_plain[0], rel=1e-12)
    # ... and in expectation too: longer expected watching, lower value at it
    ids = np.array([[0, 1]])
    terms = MODEL.allure.score(state, ItemView(cat, ids))
    ew = MODEL.response.expected_watch_time(state, ItemView(cat, ids), terms)[0]
    assert ew[1] > ew[0]
    v_exp = MODEL.value.value(state, ItemView(cat, ids), terms, ew[None, :])[0]
    assert v_exp[1] < v_exp[0]


# =============================================================================== habit
def test_habit_adds_the_items_allure():
    cat = catalog({"topic": [1.0, 0.3, 0.0, 0.0]})
    arrays = user(1, habit=2.0, habit_time=500.0)
    out, _, _, terms = watch(arrays, cat, [0], tau=60.0, now=500.0)  # no time since the last update
    A = terms["allure"][0]
    assert A > 0
    assert out["habit"][0] == 2.0 + A
    assert out["habit_time"][0] == 500.0


def test_habit_decays_with_time_since_its_last_update():
    tau_psi = BEHAVIOUR.habit.relax
    cat = catalog({})
    gaps = np.array([0.0, HOUR, tau_psi, 5 * tau_psi])
    arrays = user(4, habit=4.0, habit_time=100.0)
    out, _, _, terms = watch(arrays, cat, [0] * 4, tau=60.0, now=100.0 + gaps)
    A = terms["allure"][0]
    assert np.all(np.diff(out["habit"]) < 0)
    assert out["habit"][2] == pytest.approx(4.0 / math.e + A, rel=1e-12)
    np.testing.assert_array_equal(out["habit_time"], 100.0 + gaps)
    # between sessions too: BetweenSessions.relax decays it from its last update to `now`
    relaxed = MODEL.relaxation.relax(view(arrays), gaps, 100.0 + gaps)
    assert relaxed["habit"][0] == 4.0
    assert np.all(np.diff(relaxed["habit"]) < 0)
    assert relaxed["habit"][2] == pytest.approx(4.0 / math.e, rel=1e-12)


# =============================================================================== fatigue
def test_fatigue_adds_watch_hours_and_is_gone_after_time_away():
    cat = catalog({"L": 3600.0})
    arrays = user(2, fatigue=[0.0, 0.5])
    out, _, _, _ = watch(arrays, cat, [0, 0], tau=1800.0)
    np.testing.assert_allclose(out["fatigue"], [0.5, 1.0], rtol=1e-15)
    assert np.all(out["fatigue"] > arrays["fatigue"])
    # at a return after time away fatigue is reset; with no time away it stays
    tired = user(2, fatigue=1.0)
    relaxed = MODEL.relaxation.relax(view(tired), np.array([HOUR, 0.0]), np.array([HOUR, 0.0]))
    np.testing.assert_array_equal(relaxed["fatigue"], [0.0, 1.0])


# =============================================================================== relaxation
DTS = np.array([0.0, HOUR, DAY, 3 * DAY, 10 * DAY, 60 * DAY])


def test_relaxation_pulls_the_state_back_monotone_in_time_away():
    n = DTS.size
    arrays = user(
        n,
        theta=_unit([1.0, 0.0, 0.5, 0.0]),
        theta0=_unit([0.0, 1.0, 0.0, 0.5]),
        appetite=0.6,
        appetite0=0.2,
        satisfaction=-3.0,
        habit=5.0,
        habit_time=1000.0,
        fatigue=0.7,
    )
    out = MODEL.relaxation.relax(view(arrays), DTS, 1000.0 + DTS)
    drift = np.linalg.norm(out["theta"] - arrays["theta0"], axis=1)
    assert np.all(np.diff(drift) < 0)
    np.testing.assert_allclose(np.linalg.norm(out["theta"], axis=1), 1.0, atol=1e-14)
    assert np.all(np.diff(np.abs(out["appetite"] - 0.2)) < 0)
    assert np.all(out["appetite"] > 0.2)  # never overshoots
    assert np.all(np.diff(np.abs(out["satisfaction"])) < 0)
    assert np.all(out["satisfaction"] < 0)
    assert np.all(np.diff(out["habit"]) < 0)
    # after 60 days away the user is back at θ₀, a₀, S = 0
    assert (
        drift[-1] < 1e-6
        and abs(out["appetite"][-1] - 0.2) < 0.01
        and abs(out["satisfaction"][-1]) < 1e-6
    )
    # relaxation rates: one τ away moves each a share 1 − e^{-1} of the way
    b = BEHAVIOUR
    one = MODEL.relaxation.relax(
        view(user(1, appetite=0.6, appetite0=0.2, satisfaction=-3.0)),
        np.array([b.appetite.relax]),
        np.array([b.appetite.relax]),
    )
    assert one["appetite"][0] == pytest.approx(0.2 + 0.4 / math.e, rel=1e-12)


def test_nothing_changes_without_time_away():
    arrays = user(
        1, appetite=0.6, appetite0=0.2, satisfaction=-3.0, habit=5.0, habit_time=1000.0, fatigue=0.7
    )
    out = MODEL.relaxation.relax(view(arrays), np.zeros(1), np.full(1, 1000.0))
    for name in ("appetite", "satisfaction", "habit", "habit_time", "fatigue"):
        np.testing.assert_array_equal(out[name], arrays[name], err_msg=name)
    # θ is renormalized: equal up to rounding
    np.testing.assert_allclose(out["theta"], arrays["theta"], rtol=0, atol=1e-15)


def test_relaxation_in_two_steps_equals_one():
    """Relaxing over dt₁ then dt₂ equals relaxing over dt₁ + dt₂ (for the scalar fields):
    a time away split in two does not change where the user ends up."""
    arrays = user(1, appetite=0.6, appetite0=0.2, satisfaction=-3.0, habit=5.0, habit_time=0.0)
    relax = MODEL.relaxation.relax
    first = relax(view(arrays), np.array([5000.0]), np.array([5000.0]))
    second = relax(view({**arrays, **first}), np.array([7000.0]), np.array([12000.0]))
    whole = relax(view(arrays), np.array([12000.0]), np.array([12000.0]))
    for name in ("appetite", "satisfaction", "habit"):
        assert second[name][0] == pytest.approx(whole[name][0], rel=1e-12), name
        assert whole[name][0] != arrays[name][0], name
    np.testing.assert_allclose(second["theta"], whole["theta"], atol=1e-3)


# =============================================================================== return kernels
RETURNS = ReturnsConfig(cycle_amplitude=0.0)  # no cycle: the kernels' effect alone


def _intensity(state, t):
    sat = BEHAVIOUR.satisfaction
    return f.return_intensity(
        t,
        state["kernel_time"],
        state["satisfaction"],
        state["impulse"],
        state["slow"],
        RETURNS,
        sat.kappa,
        sat.relax,
    )


def _summary(mean_value, mean_allure):
    mean_value, mean_allure = (
        np.asarray(mean_value, dtype=float),
        np.asarray(mean_allure, dtype=float),
    )
    n = mean_value.shape[0]
    return SessionSummary(np.full(n, 3), np.full(n, 900.0), mean_value, mean_allure)


def test_session_with_higher_mean_allure_raises_the_return_intensity():
    returns = HawkesReturns(RETURNS).bind(BEHAVIOUR)
    arrays = user(3, satisfaction=0.0, kernel_time=0.0)
    now = np.full(3, HOUR)
    out = returns.end_session(view(arrays), _summary([0.0, 0.0, 0.0], [0.0, 1.0, 4.0]), now)
    assert out["impulse"][0] == 0.0 and 0.0 < out["impulse"][1] < out["impulse"][2]
    np.testing.assert_array_equal(out["slow"], 0.0)
    after = {**arrays, **out}
    lam = _intensity(after, now + HOUR)
    assert lam[0] < lam[1] < lam[2]
    # compared with the unchanged input (no session): only a session with allure raises it
    before = _intensity({**arrays, "kernel_time": now}, now + HOUR)
    assert lam[0] == before[0] and lam[2] > before[2]


def test_session_with_positive_mean_value_raises_the_return_intensity():
    returns = HawkesReturns(RETURNS).bind(BEHAVIOUR)
    arrays = user(3, satisfaction=0.0, slow=1e-6, kernel_time=0.0)
    now = np.full(3, HOUR)
    out = returns.end_session(view(arrays), _summary([-1.0, 0.0, 1.5], [0.0, 0.0, 0.0]), now)
    decayed = 1e-6 * math.exp(-HOUR / RETURNS.tau_value)
    # a negative session value adds nothing (the mark is clipped at 0), a positive one adds
    assert out["slow"][0] == pytest.approx(decayed, rel=1e-12)
    assert out["slow"][1] == pytest.approx(decayed, rel=1e-12)
    assert out["slow"][2] > decayed
    lam = _intensity({**arrays, **out}, now + DAY)
    assert lam[2] > lam[1]


def test_return_kernels_decay():
    returns = HawkesReturns(RETURNS).bind(BEHAVIOUR)
    arrays = user(2, satisfaction=0.0, impulse=2e-4, slow=3e-6, kernel_time=100.0)
    dt = np.array([RETURNS.tau_impulse, RETURNS.tau_value])
    out = returns.end_session(view(arrays), _summary([0.0, 0.0], [0.0, 0.0]), 100.0 + dt)
    np.testing.assert_allclose(out["impulse"], 2e-4 * np.exp(-dt / RETURNS.tau_impulse), rtol=1e-12)
    np.testing.assert_allclose(out["slow"], 3e-6 * np.exp(-dt / RETURNS.tau_value), rtol=1e-12)
    assert out["impulse"][0] == pytest.approx(2e-4 / math.e)
    # and the intensity after a session falls back toward the base rate
    t = 100.0 + np.array([0.0, HOUR, 6 * HOUR, 2 * DAY])
    lam = _intensity({k: np.repeat(v[:1], 4, axis=0) for k, v in arrays.items()}, t)
    assert np.all(np.diff(lam) < 0)
    assert lam[-1] == pytest.approx(RETURNS.base_rate, rel=0.35)


def test_a_session_with_higher_allure_brings_the_user_back_sooner():
    """Through next_return (what the engine calls): the share of users back within 6 h is
    1 − exp(−∫₀^{6h} λ) — binomial, tolerance 4 SE — and higher after a session of mean
    allure 4 than after one without a watched item."""
    returns = HawkesReturns(ReturnsConfig()).bind(BEHAVIOUR)
    n = 4000
    arrays = user(2 * n, satisfaction=0.0, kernel_time=0.0)
    summary = _summary(np.zeros(2 * n), np.r_[np.zeros(n), np.full(n, 4.0)])
    state = {**arrays, **returns.end_session(view(arrays), summary, np.zeros(2 * n))}
    t = returns.next_return(
        view(state),
        np.zeros(2 * n),
        6 * HOUR,
        Draws.for_users(4, returns.streams, np.arange(2 * n)),
    )
    back = np.isfinite(t)
    sat = BEHAVIOUR.satisfaction
    shares = []
    for rows in (slice(0, n), slice(n, 2 * n)):
        impulse, slow = state["impulse"][rows.start], state["slow"][rows.start]

        def lam(s, impulse=impulse, slow=slow):
            return float(
                f.return_intensity(s, 0.0, 0.0, impulse, slow, returns.params, sat.kappa, sat.relax)
            )

        Lam, _ = integrate.quad(lam, 0.0, 6 * HOUR, epsrel=1e-10)
        p = 1 - math.exp(-Lam)
        share = back[rows].mean()
        assert abs(share - p) < Z4 * math.sqrt(p * (1 - p) / n)
        shares.append(share)
    assert shares[1] > shares[0] + 0.1


# =============================================================================== churn EMA
def test_low_value_session_raises_the_churn_probability():
    churn = MODEL.churn
    assert isinstance(churn, ValueChurn)
    arrays = user(3, ubar=0.6)
    state = view(arrays)
    out = churn.end_session(state, _summary([-1.0, 0.6, 2.0], [1.0, 1.0, 1.0]))
    before = churn.probability(state)
    after = churn.probability(view({**arrays, **out}))
    assert out["ubar"][0] < 0.6 and out["ubar"][1] == 0.6 and out["ubar"][2] > 0.6
    assert after[0] > before[0]  # a low-value session raises it
    assert after[1] == before[1]
    assert after[2] < before[2]


# =============================================================================== peer components
def _items_view(cat, ids):
    return ItemView(cat, np.asarray(ids, dtype=np.int64))


def test_net_positive_exposure_clickbait_lowers_npe_and_wellbeing():
    cat = catalog({"b": 0.9}, {"b": 0.1})
    for transition in (NetPositiveExposure(), NetPositiveExposure(innovation_stddev=0.0)):
        state = StateView.of({"npe": np.zeros(1)})

        def consume(item, transition=transition, state=state):  # the same user and noise
            draws = Draws.for_users(3, transition.streams, np.array([0]))
            return transition.consume(
                state,
                _items_view(cat, [item]),
                {},
                np.full(1, 60.0),
                np.zeros(1),
                np.zeros(1),
                draws,
            )["npe"][0]

        out = {"npe": np.array([consume(0), consume(1)])}  # clickbait, then "kale"
        assert out["npe"][0] < out["npe"][1]
        assert out["npe"][0] < 0.0 < out["npe"][1]  # from 0: −2(c − ½) = ∓0.8, noise ≤ 0.05·|z|
        w_before = transition.wellbeing(state)[0]
        w_after = transition.wellbeing(StateView.of({"npe": out["npe"]}))
        assert w_after[0] < w_before < w_after[1]


def test_time_budget_quality_extends_it_and_watching_spends_it():
    rule = TimeBudget()
    cat = catalog({"q": 0.0}, {"q": 1.0})
    budget = np.full(2, 1000.0)
    goes_on, out = rule.after_watch(
        StateView.of({"budget": budget}),
        _items_view(cat, [0, 1]),
        {},
        np.full(2, 100.0),
        np.zeros(2),
        None,
    )
    assert out["budget"][0] == 900.0  # q = 0: the watch time is spent
    assert out["budget"][1] == pytest.approx(900.0 + rule.params.extension * 100.0)
    assert out["budget"][0] < out["budget"][1] < 1000.0  # quality extends, watching still spends
    assert goes_on.all()
    # a generous extension can more than pay for the watch
    rich = TimeBudget(extension=2.0)
    _, grown = rich.after_watch(
        StateView.of({"budget": budget[:1]}),
        _items_view(cat, [1]),
        {},
        np.full(1, 100.0),
        np.zeros(1),
        None,
    )
    assert grown["budget"][0] > 1000.0
    # a spent budget ends the session
    ends, spent = rule.after_watch(
        StateView.of({"budget": np.array([50.0])}),
        _items_view(cat, [0]),
        {},
        np.full(1, 100.0),
        np.zeros(1),
        None,
    )
    assert spent["budget"][0] < 50.0 and not ends[0]


def test_patience_unsatisfying_item_lowers_it():
    rule = Patience()
    cat = catalog(
        {"topic": [0.2, 1.0, 0.0, 0.0], "e": 0.9, "q": 0.05},
        {"topic": [1.0, 0.3, 0.0, 0.0], "e": 0.05, "q": 0.9},
    )
    arrays = user(2)
    state = view(arrays)
    items = _items_view(cat, [0, 1])
    terms = MODEL.allure.score(state, items)
    V = MODEL.value.value(state, items, terms, np.full(2, 120.0))
    assert V[0] < rule.params.threshold < V[1]
    patience = np.full(2, rule.params.initial)
    goes_on, out = rule.after_watch(
        StateView.of({"patience": patience}), items, terms, np.full(2, 120.0), V, None
    )
    assert out["patience"][0] == patience[0] - rule.params.cost
    assert out["patience"][1] == patience[1]
    assert goes_on.all()
    # the last bit of patience gone: the user leaves
    leaves, low = rule.after_watch(
        StateView.of({"patience": np.array([1.0])}),
        _items_view(cat, [0]),
        {k: v[:1] for k, v in terms.items()},
        np.full(1, 120.0),
        V[:1],
        None,
    )
    assert low["patience"][0] == 0.0 and not leaves[0]
