"""RecSim's environments as recsim scenarios, checked against their closed forms on real runs.

Every number measured here comes from the event log of an engine run of a shipped scenario
(``scenarios/recsim_long_term_satisfaction.yaml``, ``scenarios/recsim_interest_evolution.yaml``,
resized or specialized with the same ``--set``-style overrides a user would write); the
expected numbers are computed from the closed forms of the README's section "RecSim's
environments as recsim scenarios":

* long-term satisfaction: the steady-state mean engagement exp(μ_c·sigmoid(κN*) + σ_c²/2),
  N* = −2(c − ½)/(1 − γ), of an always-choc (c = 1) and an always-kale (c = 0) feed at
  κ = 0.01 and κ = 0.08, and the sign flip of kale − choc between them;
* interest evolution: sessions of constant-quality 4-minute videos with forced clicks end
  after ⌈B/(L(1 − α_b·q))⌉ clicks for q ≤ 0; for q > 0 RecSim's rule never ends them
  (239 full watches, then partial ones whose total tends to B/(1 − α_b·q) = 971.4 minutes at
  q = 3) and ``min_budget`` does;
* the patience session: ⌈initial/cost⌉ items when every item is unsatisfying;
* both shipped scenarios give identical event logs under the reference and batched engines.
"""

from __future__ import annotations

import math
from fractions import Fraction
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from recsim.config import load_scenario
from recsim.engine.batched import simulate_batched
from recsim.engine.reference import simulate
from recsim.eventlog import EventLog
from recsim.users.model import build_user_model
from recsim.users.peers import Patience, TimeBudget, TimeBudgetParams
from recsim.users.state import Draws, StateView
from recsim.world import build_world

SCENARIOS = Path(__file__).resolve().parent.parent / "scenarios"
LTS = SCENARIOS / "recsim_long_term_satisfaction.yaml"
IE = SCENARIOS / "recsim_interest_evolution.yaml"


def _run(scenario, policy: str, tmp_path: Path, engine=simulate_batched):
    """One engine run of ``policy`` on replication 0: (world, result, event log)."""
    world = build_world(scenario, 0)
    spec = next(spec for spec in scenario.policies if spec.name == policy)
    path = tmp_path / f"{scenario.name}-{policy}-{engine.__name__}.parquet"
    result = engine(world, spec, EventLog(path, log_impressions=scenario.outputs.log_impressions))
    events = pq.read_table(path).to_pandas() if path.exists() else pd.DataFrame()
    if len(events):
        events["event"] = events["event"].astype(str)
    return world, result, events


def _session_watches(events: pd.DataFrame, session: int = 1) -> dict[int, np.ndarray]:
    """Watch times (seconds, in order) of each user's ``session``-th session."""
    w = events[(events["event"] == "watch") & (events["session"] == session)]
    return {int(u): g["watch_time"].to_numpy() for u, g in w.groupby("user_id", sort=True)}


def _ended(events: pd.DataFrame, session: int = 1) -> set[int]:
    ends = events[(events["event"] == "session_end") & (events["session"] == session)]
    return set(ends["user_id"].astype(int))


# ============================================================================ long-term satisfaction
#: watches of each user dropped as burn-in: every user starts at NPE = 0, and E[NPE] − N*
#: shrinks by γ = 0.7 per item, so after 30 items it is 0.7³⁰·|N*| ≈ 8·10⁻⁵ (SAT off by < 2·10⁻⁶)
BURN_IN = 30
#: the closed form is checked to 1%; the number of watches is chosen below so that this is at
#: least 3 standard errors of the sample mean
TOLERANCE = 0.01
#: 450 users over 2 days at 4 sessions of 60 items a day: ≈ 2·10⁵ watches per run
LTS_SIZE = ["population.n_users=450", "horizon=2d", "replications=1"]


def _sigmoid(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-x))


def _lts_params(scenario, c: float):
    """(μ_c, σ_c, γ, κ, σ_I) of the scenario's components for clickbait c."""
    model = build_user_model(scenario)
    rs, tr = model.response.params, model.transition.params
    mu = c * rs.choc_mean + (1 - c) * rs.kale_mean
    sd = c * rs.choc_stddev + (1 - c) * rs.kale_stddev
    return mu, sd, tr.memory_discount, tr.sensitivity, tr.innovation_stddev


def _lts_closed_form(scenario, c: float) -> float:
    """exp(μ_c·sigmoid(κN*) + σ_c²/2) with N* = −2(c − ½)/(1 − γ), in units of engagement."""
    mu, sd, gamma, kappa, _ = _lts_params(scenario, c)
    n_star = -2.0 * (c - 0.5) / (1.0 - gamma)
    return math.exp(mu * _sigmoid(kappa * n_star) + sd * sd / 2.0)


def _lts_with_innovation(scenario, c: float) -> float:
    """The exact stationary mean with the innovation noise: NPE is then exactly normal,
    N(N*, σ_I²/(1 − γ²)) (a linear AR(1) with Gaussian noise), so the mean engagement is
    E[exp(μ_c·sigmoid(κN))]·exp(σ_c²/2), computed by Gauss–Hermite quadrature."""
    mu, sd, gamma, kappa, innovation = _lts_params(scenario, c)
    n_star = -2.0 * (c - 0.5) / (1.0 - gamma)
    npe_sd = innovation / math.sqrt(1.0 - gamma * gamma)
    x, w = np.polynomial.hermite_e.hermegauss(40)  # ∫ f(x) e^{−x²/2} dx
    sat = 1.0 / (1.0 + np.exp(-kappa * (n_star + npe_sd * x)))
    return float((w * np.exp(mu * sat)).sum() / math.sqrt(2 * math.pi)) * math.exp(sd * sd / 2.0)


@pytest.fixture(scope="module")
def lts_runs(tmp_path_factory):
    """Mean engagement (after burn-in), its standard error, the number of watches and the
    longest watch relative to its item's length, per (κ, policy)."""
    tmp = tmp_path_factory.mktemp("lts")
    out = {}
    for kappa in (0.01, 0.08):
        scenario = load_scenario(LTS, [*LTS_SIZE, f"user_model.transition.params.sensitivity={kappa}"])
        unit = build_user_model(scenario).response.params.unit  # seconds per unit of engagement
        for policy, c in (("always_choc", 1.0), ("always_kale", 0.0)):
            world, _, events = _run(scenario, policy, tmp)
            watches = events[events["event"] == "watch"]
            clickbait = world.catalog.clickbait[watches["item_id"].to_numpy()]
            assert (clickbait == c).all(), "the feed is pure choc / pure kale"
            rank = watches.groupby("user_id").cumcount()
            kept = watches[rank.to_numpy() >= BURN_IN]
            engagement = kept["watch_time"].to_numpy() / float(unit)
            capped = (watches["watch_time"] / world.catalog.length[watches["item_id"].to_numpy()]).max()
            out[kappa, policy] = dict(
                scenario=scenario, c=c, mean=engagement.mean(), n=engagement.shape[0],
                se=engagement.std(ddof=1) / math.sqrt(engagement.shape[0]), capped=capped,
            )
    return out


@pytest.mark.parametrize("kappa", [0.01, 0.08])
@pytest.mark.parametrize("policy", ["always_choc", "always_kale"])
def test_lts_steady_state_engagement_matches_the_closed_form(lts_runs, kappa, policy):
    run = lts_runs[kappa, policy]
    scenario = run["scenario"]
    expected = _lts_closed_form(scenario, run["c"])
    # Sample size: engagement is log-normal with σ = 1, so its coefficient of variation is
    # √(e^{σ²} − 1) ≈ 1.31 and the standard error of a mean of n watches is 1.31/√n of the
    # mean (the watches are independent but for NPE, whose stationary sd 0.07 moves the log
    # mean by < 0.01 against the noise's sd of 1: correlations < 10⁻⁴); 1% ≥ 3 SE needs
    # n ≥ (3·1.31/0.01)² ≈ 1.55·10⁵ watches after burn-in. (The runs share their per-user
    # random streams — common random numbers — so their errors are correlated.)
    _, sigma, _, _, _ = _lts_params(scenario, run["c"])
    cv = math.sqrt(math.expm1(sigma * sigma))
    needed = math.ceil((3.0 * cv / TOLERANCE) ** 2)
    assert run["n"] >= needed, (run["n"], needed)
    assert 3.0 * run["se"] <= TOLERANCE * expected  # the same, from the sample's own spread
    # The innovation noise (RecSim's σ_I = 0.05) moves the exact stationary mean away from the
    # closed form (which puts NPE at N* exactly) by a factor ≈ 1 + ½(μκ·s(1 − s))²·σ_I²/(1 − γ²)
    # — at most 3·10⁻⁵ here, far inside the tolerance, so the test keeps RecSim's noise.
    assert abs(_lts_with_innovation(scenario, run["c"]) / expected - 1.0) < 1e-3
    # items are long enough that min(L, e^X) never binds: L = 1 day sits ≥ 8.4 sd above the
    # mean log engagement (≤ 3), P(e^X > L) < 10⁻¹⁶ per watch; the longest of the ≈ 2·10⁵
    # watches (≈ 4.5 sd up) is still under a tenth of its item
    assert run["capped"] < 0.1
    assert abs(run["mean"] / expected - 1.0) < TOLERANCE, (run["mean"], expected)


def test_lts_kale_beats_choc_only_when_satisfaction_is_sensitive(lts_runs):
    """RecSim's point: with κ = 0.01 always-choc engages more than always-kale; with κ = 0.08
    the long-run loss of satisfaction outweighs choc's higher mean and the order flips."""
    gaps = {}
    for kappa in (0.01, 0.08):
        choc, kale = lts_runs[kappa, "always_choc"], lts_runs[kappa, "always_kale"]
        expected_gap = _lts_closed_form(kale["scenario"], 0.0) - _lts_closed_form(choc["scenario"], 1.0)
        gap, se = kale["mean"] - choc["mean"], math.hypot(kale["se"], choc["se"])
        assert abs(gap) > 5.0 * se  # the sign is measured, not noise
        assert np.sign(gap) == np.sign(expected_gap)
        gaps[kappa] = gap
    assert gaps[0.01] < 0.0 < gaps[0.08]


# ============================================================================ interest evolution
#: every user's first session is checked: users come back at 100/d so it starts within
#: minutes of the start; the horizon leaves it ≥ 2 h after the ≈ 16.5 h of full watches
IE_SIZE = ["population.n_users=2", "catalog.n_items=20", "user_model.returns.params.rate=100/d",
           "policies=[random]", "horizon=20h"]
#: the per-session quantities are sums of a few hundred to a few thousand floating-point terms
IE_RTOL = 1e-9


def _ie_scenario(q: float, min_budget: str):
    """The shipped scenario with forced clicks (position 1) on 4-minute items of quality q.
    The length is pinned by min = max = 4m: with log_sd 0 alone it is exp(log 240 s), which
    is not 240 s in floating point: at q = 0 a 51st click of 6·10⁻¹⁴ s would follow)."""
    return load_scenario(IE, [
        *IE_SIZE,
        "user_model.choice=first_item",
        f"catalog.quality={{base: {q}, slope: 0, noise: 0, min: -10, max: 10}}",
        "catalog.length={median: 4m, log_sd: 0, min: 4m, max: 4m}",
        f"user_model.session.params.min_budget={min_budget}",
    ])


def _ie_constants(scenario):
    """(B, L, α_b) in seconds, from the scenario's own model; α_b as the exact fraction 9/34
    (RecSim's 0.9/3.4) for the counts, whose formulas sit on integer boundaries."""
    session = build_user_model(scenario).session.params
    assert session.extension == 0.9 / 3.4  # RecSim's alpha·utility_range
    length = scenario.catalog.length.median
    return Fraction(session.budget), Fraction(length), Fraction(9, 34)


@pytest.mark.parametrize("q", [-3.0, 0.0])
def test_ie_session_of_bad_items_ends_after_the_closed_form_number_of_clicks(q, tmp_path):
    scenario = _ie_scenario(q, "0s")
    B, L, alpha = _ie_constants(scenario)
    cost = L * (1 - alpha * Fraction(q))  # budget used by a full watch
    clicks = math.ceil(B / cost)  # ⌈B / (L(1 − α_b·q))⌉
    last = min(L, B - (clicks - 1) * cost)  # the last watch is full unless the budget is short
    total = (clicks - 1) * L + last
    if q == -3.0:
        assert (clicks, total / 60) == (28, 112)
    if q == 0.0:
        assert (clicks, total / 60) == (50, 200)
    _, _, events = _run(scenario, "random", tmp_path)
    sessions = _session_watches(events)
    assert set(sessions) == {0, 1} and _ended(events) == {0, 1}
    for tau in sessions.values():
        assert tau.shape[0] == clicks
        assert tau.sum() == pytest.approx(float(total), rel=IE_RTOL)


def test_ie_session_of_good_items_never_ends_under_recsims_rule(tmp_path):
    """q = +3: each full watch costs L(1 − α_b·q) = 0.82 min, so 239 watches are full; after
    them the budget b < L is watched whole and regenerated as α_b·q·b, forever. The total
    watch time tends to B/(1 − α_b·q) = 971.4 minutes (the budget B − (1 − α_b·q)·W → 0)."""
    q = 3.0
    scenario = _ie_scenario(q, "0s")
    B, L, alpha = _ie_constants(scenario)
    aq = alpha * Fraction(q)
    full = math.floor((B - L) / (L * (1 - aq))) + 1  # click k is full iff B − (k−1)·L(1−α_b q) ≥ L
    limit = B / (1 - aq)
    assert full == 239 and float(limit / 60) == pytest.approx(971.43, abs=0.005)
    _, _, events = _run(scenario, "random", tmp_path)
    sessions = _session_watches(events)
    assert set(sessions) == {0, 1}
    assert _ended(events) == set(), "RecSim's rule never ends the session"
    for tau in sessions.values():
        # a watch of L up to rounding (the budget before the 239th watch is L exactly in
        # exact arithmetic, give or take an ulp in floating point)
        assert int((tau >= float(L) * (1 - 1e-12)).sum()) == full
        assert (tau[:full] >= float(L) * (1 - 1e-12)).all()
        # ≥ 1000 partial watches: what is left of the geometric series, b·(α_b q)^1000 / (1 − α_b q),
        # is below 10⁻⁹⁰ s, so the total is the limit up to floating-point rounding
        assert tau.shape[0] - full >= 1000
        assert tau.sum() == pytest.approx(float(limit), rel=IE_RTOL)
        assert tau[-1] < 1e-90


def test_ie_min_budget_ends_the_session_of_good_items(tmp_path):
    q, min_budget = 3.0, Fraction(1)  # 1 s
    scenario = _ie_scenario(q, "1s")
    B, L, alpha = _ie_constants(scenario)
    aq = alpha * Fraction(q)
    full = math.floor((B - L) / (L * (1 - aq))) + 1
    left = B - full * L * (1 - aq)  # the budget after the last full watch, < L
    partial = 1  # partial watches until α_b q·b ≤ min_budget
    while left * aq ** partial > min_budget:
        partial += 1
    assert partial == math.ceil(math.log(left / min_budget) / math.log(1 / aq))
    total = (B - left * aq ** partial) / (1 - aq)  # B − (1 − α_b q)·W = the final budget
    _, _, events = _run(scenario, "random", tmp_path)
    sessions = _session_watches(events)
    assert set(sessions) == {0, 1} and _ended(events) == {0, 1}
    for tau in sessions.values():
        assert tau.shape[0] == full + partial == 262
        assert tau.sum() == pytest.approx(float(total), rel=IE_RTOL)
    # what min_budget cuts off RecSim's never-ending session: less than min_budget/(1 − α_b q)
    assert 0 < B / (1 - aq) - total <= min_budget / (1 - aq)


def test_shipped_interest_evolution_bounds_sessions():
    """The shipped scenario ends every session: min_budget > 0 ends the geometric tail of
    partial watches, and α_b·q ≤ α_b·q_max = 0.9 < 1 (quality clipped at 3.4) makes each
    watch use up at least a tenth of what it lasts, so a session watches at most
    B/(1 − α_b·q_max) = 2000 minutes."""
    scenario = load_scenario(IE)
    session = build_user_model(scenario).session.params
    assert session.min_budget > 0.0
    assert session.extension * scenario.catalog.quality.max == pytest.approx(0.9)
    with pytest.raises(ValueError, match="min_budget"):
        TimeBudgetParams(budget=10.0, min_budget=10.0)


def test_time_budget_rule_by_hand():
    """The component the engines call: b − τ + α_b·τ·q after a watch, b − penalty after a
    slate without a click, on while b > min_budget."""
    rule = TimeBudget(budget=600.0, extension=0.5, no_click_penalty=30.0, min_budget=1.0)
    state = StateView.of({"budget": np.array([600.0, 240.0, 241.0, 31.0])})

    class Items:
        quality = np.array([1.0, -1.0, 0.0, 0.0])

    on, new = rule.after_watch(state, Items, {}, np.array([240.0, 240.0, 240.0, 30.0]), None, None)
    np.testing.assert_allclose(new["budget"], [480.0, -120.0, 1.0, 1.0])
    np.testing.assert_array_equal(on, [True, False, False, False])
    on, new = rule.after_no_click(state, None)
    np.testing.assert_allclose(new["budget"], [570.0, 210.0, 211.0, 1.0])
    np.testing.assert_array_equal(on, [True, True, True, False])
    np.testing.assert_array_equal(rule.start(state, None)["budget"], [600.0] * 4)


# ============================================================================ patience
@pytest.mark.parametrize("initial, cost", [(5, 2), (6, 2), (1, 0.1), (60, 1)])
def test_patience_session_of_unsatisfying_items_holds_ceil_initial_over_cost(initial, cost, tmp_path):
    """Every item's value (−2(c − ½) ≤ 1) is below the threshold 2: each costs ``cost``, so
    every session holds ⌈initial/cost⌉ items (in decimal arithmetic: 1/0.1 is 10 items,
    which repeated floating-point subtraction alone would make 11)."""
    scenario = load_scenario(LTS, [
        "population.n_users=10", "horizon=1d", "policies=[random]", "replications=1",
        f"user_model.session.params={{initial: {initial}, cost: {cost}, threshold: 2.0}}",
    ])
    expected = math.ceil(Fraction(str(initial)) / Fraction(str(cost)))
    _, _, events = _run(scenario, "random", tmp_path)
    ends = events[events["event"] == "session_end"][["user_id", "session"]]
    assert len(ends) >= 10
    watches = events[events["event"] == "watch"].groupby(["user_id", "session"]).size()
    per_session = watches.reindex(pd.MultiIndex.from_frame(ends), fill_value=0)
    assert (per_session == expected).all(), per_session.value_counts()


def test_patience_rule_by_hand():
    rule = Patience(initial=2.5, threshold=0.0, cost=1.0, no_click_cost=1.0)
    draws = Draws.for_users(0, (), np.arange(2))
    state = StateView.of(rule.initial_state(StateView.of({"x": np.zeros(2)}), 0.0))
    np.testing.assert_array_equal(state["patience"], [2.5, 2.5])
    # satisfying items (V ≥ threshold) cost nothing; unsatisfying ones cost 1
    on, new = rule.after_watch(state, None, {}, None, np.array([0.0, -0.1]), draws)
    np.testing.assert_array_equal(new["patience"], [2.5, 1.5])
    np.testing.assert_array_equal(on, [True, True])
    patience, log = np.array([2.5]), []
    for _ in range(3):  # slates without a click: 1.5, 0.5, −0.5
        on, new = rule.after_no_click(StateView.of({"patience": patience}), draws)
        patience = new["patience"]
        log.append(bool(on[0]))
    assert log == [True, True, False]


# ============================================================================ both engines
EQUIVALENCE = {
    LTS: ["population.n_users=6", "horizon=10h", "replications=1", "outputs.log_impressions=true",
          "user_model.returns.params.rate=12/d"],
    IE: ["population.n_users=6", "horizon=1d", "replications=1", "outputs.log_impressions=true",
         "user_model.returns.params.rate=3/d", "user_model.session.params.budget=40m"],
}


@pytest.mark.parametrize("path", [LTS, IE], ids=["long_term_satisfaction", "interest_evolution"])
def test_shipped_scenarios_give_identical_event_logs_under_both_engines(path, tmp_path):
    scenario = load_scenario(path, EQUIVALENCE[path])
    for spec in scenario.policies:
        _, ref, ref_events = _run(scenario, spec.name, tmp_path, simulate)
        _, bat, bat_events = _run(scenario, spec.name, tmp_path, simulate_batched)
        kinds = set(ref_events["event"])
        assert {"session_start", "impression", "click", "watch", "session_end"} <= kinds, kinds
        assert ref_events["session"].max() > 1  # users come back
        pd.testing.assert_frame_equal(bat_events, ref_events, check_exact=True)
        assert bat.n_events == ref.n_events and bat.n_decisions == ref.n_decisions
        for key, value in ref.headline.items():
            assert bat.headline[key] == value or (math.isnan(value) and math.isnan(bat.headline[key])), key
