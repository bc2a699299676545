"""Target 16: session mechanics — a constant per-item leave probability gives geometric sessions;
a patience stock bounds sessions from below and never ends a satisfying one.

Sources: a constant leave probability p after each item makes the number of items in a session
geometric, P(L = k) = (1 − p)^{k−1}·p, mean 1/p (p = 0.01: mean 100); KuaiSim's leave model
(Zhao et al. 2023): a patience ("temper") stock that each response lowers, the user leaving
when it is used up. Here the stock starts at 10 and each item lowers it by at most 2, so no
session is shorter than 5 items, and responses that score ≥ 2 lower it by nothing, so nobody
leaves.

How recsim expresses them: the session rule's ``after_watch`` decides after each watched item
whether the user asks for another slate (``recsim.engine.core.Simulation`` calls
``model.session.after_watch`` once per watch). The default rule
(``recsim.users.default.Continuation``, docs/model.md §5.6) continues with probability
sigmoid(c₀ + c_A·A + c_ψ·ψ − c_F·F), one uniform of the ``continue`` stream; c_A = c_ψ = c_F = 0
and c₀ = ln 99 make it the constant 0.99. The ``patience`` rule (``recsim.users.peers.Patience``)
holds a stock P reset to ``initial`` at each session start and lowered by ``cost``·[V < threshold]
after each watch (``formulas.lose_patience``): initial 10, threshold 2, cost 2 (recsim's
patience loses a fixed ``cost`` per unsatisfying item rather than an amount that grows with
how bad the response was; "at most 2" holds either way).

Checks (each through the component, then through the engine on
``scenarios/validation/session_mechanics.yaml``, where every slate holds one item that the
user always clicks, so no slate goes unclicked and sessions end only through ``after_watch``):

1. geometric sessions: the session-length distribution against Geometric(0.01), Pearson
   chi-square (``scipy.stats.chisquare``) over bins of about equal expected count, p > 0.001
   (0.1% false failures); the details give the test's power against a leave probability of
   0.011 (mean 91) and the mean with its standard error √(1 − p)/p/√N;
2. patience with mixed responses: no session shorter than 5 items, every stock decrement is 0
   or 2, and — as an exact closed form — the length is 5 + a negative binomial number of
   satisfying items, P(L = 5 + j) = C(4 + j, j)·q⁵·(1 − q)^j with q = P(V < 2); chi-square,
   p > 0.001. Component: V ~ Uniform(−4, 6) (q = 0.6); engine: the ``random`` feed, V = −1 for
   the catalog's share q of extremeness-1 items and 3 otherwise;
3. patience when every response scores ≥ 2: no departure at all (component: values in
   [2, 10], some exactly 2; engine: the ``good_only`` feed, V = 3 for every item).

Sessions the horizon cuts are excluded from the engine's distributions only when they start in
the last 2 hours (a session of 3600 items, 2 s each, has probability 0.99³⁶⁰⁰ ≈ 2·10⁻¹⁶), and
every session that started earlier must have ended.
"""

from __future__ import annotations

import math

import numpy as np
from scipy import special, stats

from ..config import ContinuationConfig
from ..users.default import Continuation
from ..users.peers import Patience
from ..users.state import Draws, StateView
from . import Outcome, Target, status_of
from ._run import scenario, simulate

HOUR = 3600.0
P_LEAVE = 0.01
P_MIN = 1e-3
PATIENCE = {"initial": 10.0, "threshold": 2.0, "cost": 2.0}
PATIENCE_SET = "user_model.session={type: patience, params: {initial: 10, threshold: 2, cost: 2}}"
MIN_ITEMS = math.ceil(PATIENCE["initial"] / PATIENCE["cost"])  # 5

#: sizes: sessions driven through each component; (users, horizon) of the engine runs
_SIZES = {
    "fast": {"component": 20_000, "engine": (500, "1d")},
    "full": {"component": 100_000, "engine": (2_500, "1d")},
}


# ----------------------------------------------------------------------------- statistics
def _bins(cdf: np.ndarray, n: int) -> np.ndarray:
    """Right edges (inclusive, as indices into ``cdf``) of bins of about equal probability:
    ``n/200`` bins (≥ 200 expected sessions each), at least 5 and at most 50 (fewer, fuller
    bins give the test more power against a shifted mean); the last bin is the open tail."""
    n_bins = int(min(50, max(5, n // 200)))
    edges = np.unique(np.searchsorted(cdf, np.arange(1, n_bins) / n_bins))
    return edges[edges < cdf.shape[0] - 1]


def _chi_square(lengths: np.ndarray, support: np.ndarray, pmf: np.ndarray, alt_pmf: np.ndarray | None = None):
    """Pearson chi-square of observed session ``lengths`` against ``pmf`` on ``support``
    (consecutive integers from the smallest possible length; the tail past it is folded into
    the last bin). Returns (p-value, statistic, dof, power of p < 0.001 against ``alt_pmf``)."""
    n = lengths.shape[0]
    cdf = np.cumsum(pmf)
    edges = _bins(cdf, n)
    probs = np.diff(np.r_[0.0, cdf[edges], 1.0])
    idx = np.searchsorted(support[edges], lengths, side="left")  # bin of each length
    observed = np.bincount(idx, minlength=probs.shape[0])
    expected = probs * n
    assert expected.min() >= 5 and observed.sum() == n
    res = stats.chisquare(observed, expected)
    dof = probs.shape[0] - 1
    power = math.nan
    if alt_pmf is not None:
        alt = np.diff(np.r_[0.0, np.cumsum(alt_pmf)[edges], 1.0])
        lam = n * float(((alt - probs) ** 2 / probs).sum())
        power = float(stats.ncx2.sf(stats.chi2.isf(P_MIN, dof), dof, lam))
    return float(res.pvalue), float(res.statistic), dof, power


def _geometric(support: np.ndarray, p: float) -> np.ndarray:
    return p * (1.0 - p) ** (support - 1)


def _negative_binomial(support: np.ndarray, q: float) -> np.ndarray:
    """P(L = 5 + j) = C(4 + j, j)·q⁵·(1 − q)^j: the 5th unsatisfying item (probability q each)
    ends the session."""
    j = support - MIN_ITEMS
    return special.comb(MIN_ITEMS - 1 + j, j) * q**MIN_ITEMS * (1.0 - q) ** j


def _geometric_line(where: str, lengths: np.ndarray) -> tuple[str, bool]:
    support = np.arange(1, 6_001)
    p, stat, dof, power = _chi_square(lengths, support, _geometric(support, P_LEAVE), _geometric(support, 0.011))
    n = lengths.shape[0]
    se = math.sqrt(1 - P_LEAVE) / P_LEAVE / math.sqrt(n)
    ok = p > P_MIN and lengths.min() >= 1
    return (f"geometric sessions through {where}: {n} sessions, mean {lengths.mean():.2f} items (expected 100, SE "
            f"{se:.2f}); chi-square vs Geometric(0.01) {stat:.1f} on {dof} dof, p = {p:.3g} (must be > {P_MIN:g}); "
            f"power against a leave probability 0.011 (mean 91): {power:.2f}"), ok


def _patience_line(where: str, lengths: np.ndarray, q: float, extra: str) -> tuple[str, bool]:
    support = np.arange(MIN_ITEMS, 400)
    pmf = _negative_binomial(support, q)
    p, stat, dof, _ = _chi_square(lengths, support, pmf)
    shortest = int(lengths.min())
    at_min = int((lengths == MIN_ITEMS).sum())
    ok = shortest >= MIN_ITEMS and p > P_MIN
    return (f"patience (start 10, cost 2 per item of V < 2) through {where}: {lengths.shape[0]} sessions, shortest "
            f"{shortest} items (must be ≥ 5; {at_min} sessions of exactly 5, expected "
            f"{lengths.shape[0] * q**5:.0f}){extra}; length vs 5 + NegBin(5, q = {q:.4f}): chi-square {stat:.1f} on "
            f"{dof} dof, p = {p:.3g} (must be > {P_MIN:g})"), ok


# ----------------------------------------------------------------------------- components
def _continuation_sessions(n: int, seed: int) -> np.ndarray:
    """Items per session for ``n`` sessions (one per user) under the default ``Continuation``
    with c_A = c_ψ = c_F = 0, c₀ = ln 99, called once per watched item with the user's next
    ``continue`` uniform; allure, habit and fatigue are random (they must not matter)."""
    rule = Continuation(ContinuationConfig(c0=math.log(99.0), c_a=0.0, c_psi=0.0, c_f=0.0))
    rng = np.random.default_rng(seed)
    draws = Draws.for_users(seed, rule.streams, np.arange(n))
    lengths = np.zeros(n, dtype=np.int64)
    active = np.arange(n)
    while active.size:
        k = active.shape[0]
        state = StateView.of({"habit": rng.uniform(0, 50, k), "fatigue": rng.uniform(0, 2, k)})
        goes_on, _ = rule.after_watch(state, None, {"allure": rng.normal(0, 2, k)}, rng.uniform(0, 600, k),
                                      rng.normal(0, 1, k), draws.subset(active))
        lengths[active] += 1
        active = active[goes_on]
    return lengths


def _patience_sessions(n: int, seed: int, low: float, high: float, max_items: int | None = None,
                       exact_two: bool = False) -> tuple[np.ndarray, set[float]]:
    """Items per session for ``n`` sessions under ``Patience`` (initial 10, threshold 2, cost 2),
    values V ~ Uniform(low, high) (a quarter exactly 2 with ``exact_two``), until each user
    leaves or watches ``max_items``. Returns (items per session, −1 for a user who never left;
    the set of stock decrements seen)."""
    rule = Patience(**PATIENCE)
    rng = np.random.default_rng(seed)
    draws = Draws.for_users(seed, rule.streams, np.arange(n))
    patience = rule.start(StateView.of({"x": np.zeros(n)}), draws)["patience"]
    lengths = np.zeros(n, dtype=np.int64)
    left = np.zeros(n, dtype=bool)
    decrements: set[float] = set()
    active = np.arange(n)
    while active.size and (max_items is None or lengths.max() < max_items):
        k = active.shape[0]
        values = rng.uniform(low, high, k)
        if exact_two:
            values[rng.random(k) < 0.25] = 2.0
        before = patience[active]
        goes_on, updates = rule.after_watch(StateView.of({"patience": before}), None, {}, None, values,
                                            draws.subset(active))
        decrements |= set(np.unique(before - updates["patience"]).tolist())
        patience[active] = updates["patience"]
        lengths[active] += 1
        left[active[~goes_on]] = True
        active = active[goes_on]
    return np.where(left, lengths, -1), decrements


# ----------------------------------------------------------------------------- engine
def _engine_sessions(overrides: list[str], policy: int, users: int, horizon: str):
    """Items watched per session in a run of the scenario, over the sessions that started at
    least 2 h before the horizon (all of which must have ended). Returns (lengths, number of
    such sessions that did not end, world, events)."""
    sc = scenario("session_mechanics", [f"population.n_users={users}", f"horizon={horizon}", *overrides])
    world, _, ev = simulate(sc, policy)
    keys = ["user_id", "session"]
    starts = ev[(ev["event"] == "session_start") & (ev["time"] <= world.end - 2 * HOUR)][keys]
    ended = ev[ev["event"] == "session_end"][keys].assign(ended=True)
    watches = ev[ev["event"] == "watch"].groupby(keys).size().rename("items").reset_index()
    table = starts.merge(ended, on=keys, how="left").merge(watches, on=keys, how="left")
    table["items"] = table["items"].fillna(0).astype(np.int64)
    unfinished = int(table["ended"].isna().sum())
    return table.loc[table["ended"].notna(), "items"].to_numpy(), unfinished, world, ev


def _check(size: str) -> Outcome:
    sz = _SIZES[size]
    n = sz["component"]
    users, horizon = sz["engine"]
    details, passed, values = [], [], []

    # 1. geometric sessions
    line, ok = _geometric_line("Continuation.after_watch (c₀ = ln 99, c_A = c_ψ = c_F = 0)",
                               _continuation_sessions(n, 161))
    details.append(line)
    passed.append(ok)
    lengths, unfinished, _, _ = _engine_sessions([], 0, users, horizon)
    line, ok = _geometric_line(f"the engine ({users} users × {horizon}, {unfinished} sessions started ≥ 2 h before "
                               "the horizon unfinished)", lengths)
    details.append(line)
    passed.append(ok and unfinished == 0)
    values.append(f"geometric sessions, mean {lengths.mean():.1f} items")

    # 2. patience, mixed responses
    comp, decrements = _patience_sessions(n, 162, -4.0, 6.0)
    line, ok = _patience_line("Patience.after_watch (V ~ Uniform(−4, 6))", comp, 0.6,
                              f"; stock decrements seen {sorted(decrements)} (must be within [0, 2])")
    details.append(line)
    passed.append(ok and (comp > 0).all() and max(decrements) <= 2.0 and min(decrements) >= 0.0)
    shortest = [int(comp.min())]
    lengths, unfinished, world, ev = _engine_sessions([PATIENCE_SET], 0, users, horizon)
    q = float((world.catalog.extremeness == 1.0).mean())  # the catalog's share of V = −1 items
    watched = ev.loc[ev["event"] == "watch", "true_value"]
    line, ok = _patience_line(f"the engine (feed random, {users} users × {horizon})", lengths, q,
                              f"; values seen {sorted(set(watched.round(12)))}")
    details.append(line)
    passed.append(ok and unfinished == 0)
    shortest.append(int(lengths.min()))

    # 3. patience, every response ≥ 2
    stay, decrements = _patience_sessions(1_000, 163, 2.0, 10.0, max_items=1_000, exact_two=True)
    ok = (stay == -1).all() and decrements == {0.0}
    details.append(f"patience with every response ≥ 2 through Patience.after_watch: 1000 users × 1000 items of "
                   f"V ~ Uniform(2, 10), a quarter exactly 2: {int((stay != -1).sum())} departures (must be 0), "
                   f"stock decrements {sorted(decrements)}")
    passed.append(ok)
    sc_h = "1h"
    _, _, ev = simulate(scenario("session_mechanics", [f"population.n_users={users}", f"horizon={sc_h}",
                                                      PATIENCE_SET]), 1)
    ends = int((ev["event"] == "session_end").sum())
    watched = ev.loc[ev["event"] == "watch", "true_value"]
    ok = ends == 0 and len(watched) > 0 and bool((watched >= 2.0).all())
    details.append(f"patience with every response ≥ 2 through the engine (feed good_only, {users} users × {sc_h}): "
                   f"{(ev['event'] == 'session_start').sum()} sessions, {len(watched)} items, all of value "
                   f"{sorted(set(watched.round(12)))}; {ends} departures (must be 0)")
    passed.append(ok)
    values.append(f"patience: shortest session {min(shortest)} items, {ends} departures when every V ≥ 2")

    status = status_of(passed)
    return Outcome(value="; ".join(values), status=status, details=details)


TARGET = Target(
    number=16,
    key="session_mechanics",
    title="Session mechanics",
    source="geometric session lengths under a constant leave probability; KuaiSim's patience (temper) leave "
           "model (Zhao et al. 2023)",
    expected="per-item leave probability 0.01: geometric sessions of mean 100; patience 10 lowered by at most 2 "
             "per item: no session shorter than 5 items, and no departures when every response scores ≥ 2",
    tolerance="chi-square p > 0.001 on the session-length distribution (component: 10⁵ sessions, fast 2·10⁴; "
              "engine: ≈10⁴ sessions, fast ≈2·10³; power against a leave probability 0.011 stated); the bounds "
              "are exact (no session < 5 items, 0 departures)",
    check=_check,
)
