"""The learned rankers' training window (``recsim.policies.learned._TrainingWindow``) and how
the rankers take their feedback as it is logged (``observe``): at most ``max_rows`` rows, a
reweighted uniform sample of the window beyond that, the window itself below it; samples by
the rows' own keys, so that what a fit learns does not depend on how the feedback was split.

The statistical checks use fixed seeds and tolerances derived from the sampling error of the
quantity checked, stated at each assertion.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest
from scipy.special import expit

from recsim.policies.base import Feedback, Policy, observe_unused, observes_feedback
from recsim.policies.learned import (
    FEATURE_NAMES,
    EngagementPolicy,
    HarmPenalizedPolicy,
    StatedPreferencePolicy,
    WeightedLogistic,
    _TrainingWindow,
    _weighted_gram,
    row_uniforms,
)

F = len(FEATURE_NAMES)


def _batch(rng, n, t0=0.0):
    X = rng.normal(size=(n, F))
    clicked = rng.random(n) < 0.3
    weight = np.where(clicked, rng.exponential(3.0, n), 5.0)
    time = np.sort(rng.uniform(t0, t0 + 1.0, n))
    position = rng.integers(1, 11, n)
    keys = row_uniforms(99, rng.integers(0, 1000, n), time, position, clicked)
    return X, clicked, weight, keys, time, position


def _day(window, batch, day):
    window.observe(*batch)
    window.close(float(day))


def test_below_the_cap_the_rows_are_the_windows_exactly():
    rng = np.random.default_rng(1)
    capped, uncapped = _TrainingWindow(7.0, max_rows=10_000), _TrainingWindow(7.0, max_rows=None)
    for day in range(1, 10):  # batches expire after 7 days
        batch = _batch(rng, 800, day - 1.0)
        for window in (capped, uncapped):
            _day(window, batch, day)
            assert window.batches[-1][5] == 1.0
        for a, b in zip(capped.rows(), uncapped.rows()):
            assert np.array_equal(a, b)
    assert capped.rows()[0].shape[0] == 7 * 800
    # a closed batch is the day's rows sorted by time, non-clicked first, position
    X, clicked, weight, _, time, position = batch
    order = np.lexsort((position, clicked, time))
    assert np.array_equal(capped.batches[-1][1], X[order].astype(np.float32))
    assert np.array_equal(capped.batches[-1][3], weight[order])


def test_the_window_never_holds_more_than_max_rows():
    rng = np.random.default_rng(2)
    window = _TrainingWindow(3.0, max_rows=1_000)
    for day in range(1, 12):
        for part in range(int(rng.integers(1, 6))):  # observed in parts, some alone over the cap
            window.observe(*_batch(rng, int(rng.integers(100, 1_500)), day - 1.0 + part / 10))
            assert window.n_pending <= 2 * 1_000 + 1_500  # the batch being filled stays bounded
        window.close(float(day))
        X_all, _, _ = window.rows()
        assert X_all.shape[0] <= 1_000
        assert window.pending == [] and window.tau == 1.0
        assert all(b[0] > day - 3.0 for b in window.batches)  # old batches expired
        assert all(b[4].max(initial=0.0) < b[5] for b in window.batches)  # kept keys below τ


def test_how_the_rows_are_split_into_calls_changes_nothing():
    """The same rows observed in one call, or in many (some of which make the batch being
    filled thin itself), give the same window, bit for bit, with and without the cap."""
    rng = np.random.default_rng(5)
    days = [_batch(rng, int(rng.integers(1_500, 4_000)), d) for d in range(6)]
    for max_rows in (None, 10_000, 1_000):
        whole, parts = _TrainingWindow(3.0, max_rows), _TrainingWindow(3.0, max_rows)
        for day, batch in enumerate(days, start=1):
            _day(whole, batch, day)
            cuts = np.sort(rng.choice(batch[0].shape[0], 6, replace=False))
            for piece in np.split(np.arange(batch[0].shape[0]), cuts):
                parts.observe(*(a[piece] for a in batch))
            parts.close(float(day))
            for a, b in zip(whole.rows(), parts.rows()):
                assert np.array_equal(a, b), max_rows
            assert [b[5] for b in whole.batches] == [b[5] for b in parts.batches]


def test_reweighted_sums_are_unbiased_for_the_windows_sums():
    """Horvitz–Thompson: Σ kept w/τ estimates Σ all w. With one τ for every batch the
    estimate's standard deviation is sqrt(Σ w²·(1 − τ)/τ) (independent Bernoulli(τ) keeps);
    the check allows 4 of them (false alarm < 1e-4 for a normal estimate)."""
    rng = np.random.default_rng(3)
    window = _TrainingWindow(100.0, max_rows=5_000)
    every = []
    for day in range(1, 6):
        batch = _batch(rng, 20_000, day - 1.0)
        every.append(batch[2])
        _day(window, batch, day)
    taus = {b[5] for b in window.batches}
    assert len(taus) == 1  # nothing expired: one threshold for the whole window
    tau = taus.pop()
    weights = np.concatenate(every)
    total = weights.sum()
    estimate = window.rows()[2].sum()
    sd = np.sqrt((weights**2).sum() * (1 - tau) / tau)
    assert window.rows()[0].shape[0] == 5_000
    assert abs(estimate - total) < 4 * sd, (estimate, total, sd)


def test_a_capped_fit_recovers_the_true_coefficients_within_their_standard_errors():
    """Logistic data with known coefficients, 200k rows over 5 batches, a 20k-row window: the
    fit on the reweighted sample (τ is the same for every row, so the weights are equal)
    must give each coefficient within 4 standard errors (from the inverse Fisher information
    of the kept rows) of the truth."""
    rng = np.random.default_rng(4)
    beta = np.array([-0.5, 0.8, -0.4, 0.3, 0.0, 0.2, -0.6, 0.1, 0.5, -0.2, 0.4])
    window = _TrainingWindow(100.0, max_rows=20_000)
    for day in range(1, 6):
        X = rng.normal(size=(40_000, F))
        clicked = rng.random(40_000) < expit(beta[0] + X @ beta[1:])
        time = np.sort(rng.uniform(day - 1.0, day, 40_000))
        position = rng.integers(1, 11, 40_000)
        keys = row_uniforms(7, rng.integers(0, 5_000, 40_000), time, position, clicked)
        _day(window, (X, clicked, np.ones(40_000), keys, time, position), day)
    X, clicked, weight = window.rows()
    assert X.shape[0] == 20_000
    model = WeightedLogistic(l2=0.0, max_iter=50).fit(X, clicked, weight)
    w, b = model.linear()
    estimate = np.concatenate([[b], w])
    Z = np.hstack([np.ones((X.shape[0], 1)), X])
    p = expit(Z @ estimate)
    fisher = (Z * (p * (1 - p))[:, None]).T @ Z
    se = np.sqrt(np.diag(np.linalg.inv(fisher)))
    assert np.all(np.abs(estimate - beta) < 4 * se), np.abs(estimate - beta) / se


def test_row_keys_are_the_rows_own_and_uniform():
    """A row's key depends on the row alone: permuted rows get permuted keys, and a row
    changed in its user, time, position or click gets another key. Over 200k rows the mean
    is within 4 standard errors (sqrt(1/12/n)) of 1/2 and each tenth of (0, 1) holds its
    share within 4 binomial standard deviations."""
    rng = np.random.default_rng(6)
    n = 200_000
    user, time = rng.integers(0, 10_000, n), rng.uniform(-86400.0, 7 * 86400.0, n)
    position, clicked = rng.integers(1, 11, n), rng.random(n) < 0.1
    keys = row_uniforms(12345, user, time, position, clicked)
    perm = rng.permutation(n)
    assert np.array_equal(row_uniforms(12345, user[perm], time[perm], position[perm], clicked[perm]), keys[perm])
    for changed in ((user + 1, time, position, clicked), (user, np.nextafter(time, np.inf), position, clicked),
                    (user, time, position + 1, clicked), (user, time, position, ~clicked)):
        assert (row_uniforms(12345, *changed) != keys).mean() > 0.999999
    assert not np.array_equal(row_uniforms(54321, user, time, position, clicked), keys)
    assert ((keys > 0) & (keys < 1)).all()
    assert abs(keys.mean() - 0.5) < 4 * np.sqrt(1 / 12 / n)
    counts = np.histogram(keys, bins=10, range=(0, 1))[0]
    assert np.all(np.abs(counts - n / 10) < 4 * np.sqrt(n * 0.1 * 0.9)), counts


def test_max_rows_is_a_policy_parameter_with_a_floor():
    from pydantic import ValidationError

    from recsim.policies.learned import EngagementParams

    assert EngagementParams().max_rows == 1_000_000
    assert EngagementParams(max_rows=None).max_rows is None
    with pytest.raises(ValidationError, match="max_rows"):
        EngagementParams(max_rows=10)


def test_a_learned_policy_fits_on_at_most_max_rows(monkeypatch):
    """The engagement ranker with ``max_rows: 1000`` given two days of 6,000 impressions each
    (about 2,000 training rows a day at the default negative rate): every fit sees at most
    1,000 rows, and the policy still learns a model."""
    from test_policy_batch import DAY, World, make_policy

    from recsim.policies import learned

    world = World()
    seen = []
    fit = learned.WeightedLogistic.fit

    def counting(self, X, clicked, weight):
        seen.append(X.shape[0])
        return fit(self, X, clicked, weight)

    monkeypatch.setattr(learned.WeightedLogistic, "fit", counting)
    feedbacks = (world.feedback(0.0, DAY, 6000), world.feedback(DAY, 2 * DAY, 6000))
    policy = make_policy(world, "engagement", {"max_rows": 1000, "min_clicks": 5}, feedbacks)
    assert seen and max(seen) <= 1000
    assert policy.model_.fitted and sum(b[1].shape[0] for b in policy.window_.batches) <= 1000
    uncapped = make_policy(world, "engagement", {"max_rows": None, "min_clicks": 5}, feedbacks)
    assert sum(b[1].shape[0] for b in uncapped.window_.batches) > 1000  # the cap did bind


def test_the_negative_sample_keeps_its_rate():
    """Every click is kept, and each non-clicked impression with probability
    ``negative_rate`` (0.2): over 30,000 impressions the kept share of the non-clicked ones
    is within 4 binomial standard deviations of 0.2."""
    from test_policy_batch import DAY, World, make_policy

    world = World()
    fb = world.feedback(0.0, DAY, 30_000)
    policy = make_policy(world, "engagement", {"max_rows": None, "min_clicks": 5}, [fb])
    batch = policy.window_.batches[0]
    n_neg = int((~fb.clicked).sum())
    assert int(batch[2].sum()) == int(fb.clicked.sum())
    kept = int((~batch[2]).sum())
    assert abs(kept - 0.2 * n_neg) < 4 * np.sqrt(n_neg * 0.2 * 0.8), (kept, n_neg)


def _split_as_logged(fb: Feedback, cuts) -> list[Feedback]:
    """``fb`` in the pieces an engine hands over: the rows emitted before each cut (a click
    when its watch ends, an impression not clicked a scan time after it was shown), each
    piece in the canonical order; the surveys by their time."""
    emit = np.where(fb.clicked, fb.time, fb.time + 3.0)
    pieces, lo = [], -np.inf
    for hi in list(cuts) + [np.inf]:
        rows = np.flatnonzero((emit >= lo) & (emit < hi))
        rows = rows[np.lexsort((fb.position[rows], fb.clicked[rows], fb.time[rows]))]
        sv = (fb.surveys["time"] >= lo) & (fb.surveys["time"] < hi)
        pieces.append(dataclasses.replace(
            fb, **{f.name: getattr(fb, f.name)[rows] for f in dataclasses.fields(fb)
                   if f.name != "surveys" and getattr(fb, f.name) is not None},
            surveys={k: v[sv] for k, v in fb.surveys.items()}))
        lo = hi
    return pieces


@pytest.mark.parametrize("name, params", [
    ("engagement", {"min_clicks": 5}),
    ("engagement", {"min_clicks": 5, "max_rows": 1000}),  # the batch being filled thins itself
    ("harm_penalized", {"min_clicks": 5, "penalty": 5.0}),
])
def test_a_learned_ranker_learns_the_same_whether_it_observes_in_pieces_or_fits_at_once(name, params):
    """Two days of feedback given to ``fit`` whole, or observed in the pieces an engine hands
    over (then ``fit`` with what is left): the same model, profiles and window, bit for bit."""
    from test_policy_batch import DAY, World, make_policy

    world = World()
    days = (world.feedback(0.0, DAY, 6000), world.feedback(DAY, 2 * DAY, 6000))
    whole = make_policy(world, name, params, days)
    pieces = make_policy(world, name, params)
    for i, fb in enumerate(days):
        *head, last = _split_as_logged(fb, np.linspace(i * DAY, (i + 1) * DAY, 9)[1:-1])
        for piece in head:
            pieces.observe(piece)
        pieces.fit(last, (i + 1) * DAY)
    assert whole.model_.fitted
    assert np.array_equal(whole.model_.coef, pieces.model_.coef)
    for a, b in zip(whole.window_.rows(), pieces.window_.rows()):
        assert np.array_equal(a, b)
    for attr in ("topic", "classifier", "watch"):
        assert np.array_equal(getattr(whole.profiles_, attr), getattr(pieces.profiles_, attr))
    assert whole.learned() == pieces.learned()


def test_which_policies_observe_feedback():
    """A policy observes feedback as it is logged when it defines ``observe`` and its ``fit``
    comes from that class or above: a subclass overriding ``fit`` alone (the stated-preference
    ranker reads every clicked row of a retrain's feedback in its fit) gets it all at the
    retrain, as before."""
    class OwnFit(EngagementPolicy):
        def fit(self, feedback, now):
            super().fit(feedback, now)

    class OwnObserve(EngagementPolicy):
        def observe(self, feedback):
            super().observe(feedback)

    class Plain(Policy):
        def recommend(self, request, rng):
            return request.candidates[: request.slate_size]

    class SurveysObserved(StatedPreferencePolicy):  # its fit (stated_preference's) wants it all
        def observe(self, feedback):
            super().observe(feedback)

    assert observes_feedback(EngagementPolicy()) and observes_feedback(HarmPenalizedPolicy())
    assert observes_feedback(OwnObserve())
    assert not observes_feedback(SurveysObserved())
    assert "StatedPreferencePolicy" in observe_unused(SurveysObserved())
    assert observe_unused(EngagementPolicy()) is None and observe_unused(StatedPreferencePolicy()) is None
    assert not observes_feedback(StatedPreferencePolicy()) and not observes_feedback(OwnFit())
    assert not observes_feedback(Plain())
    patched = EngagementPolicy()
    patched.fit = lambda feedback, now: None  # replaced on the instance: all at the retrain
    assert not observes_feedback(patched)


def test_the_engine_keeps_feedback_only_between_hand_overs(tmp_path):
    """A run of the engagement ranker on the batched engine hands feedback to ``observe``
    many times between retrains, and the retrain's ``fit`` is given only what came since the
    last hand-over (nothing: a retrain is itself a hand-over point); after the last retrain
    nothing is handed over. The same run on the reference engine hands it over at other
    points: the outputs are the same."""
    from recsim.config import load_scenario
    from recsim.experiment import make_tasks, run_task

    calls = []
    observe, fit = EngagementPolicy.observe, EngagementPolicy.fit

    def observing(self, feedback):
        calls.append(("observe", len(feedback)))
        return observe(self, feedback)

    def fitting(self, feedback, now):
        calls.append(("fit", len(feedback)))
        return fit(self, feedback, now)

    mp = pytest.MonkeyPatch()
    outs = {}
    try:
        mp.setattr(EngagementPolicy, "observe", observing)
        mp.setattr(EngagementPolicy, "fit", fitting)
        for engine in ("batched", "reference"):
            calls.clear()
            sc = load_scenario("benchmarks/reference.yaml", [
                "population.n_users=300", "horizon=2d", "recommender.retrain_interval=10h",
                "catalog.n_items=400", f"engine={engine}", "outputs.log_impressions=false"])
            task = make_tasks(sc, tmp_path / engine)[0]
            result = run_task(task)
            files = {str(f.relative_to(tmp_path / engine)): pd.read_parquet(f)
                     for f in sorted((tmp_path / engine).rglob("*.parquet"))}
            outs[engine] = (result.headline, result.n_events, files)
            # after the last retrain (at 40 h of 48) nothing is handed over: no fit would read
            # it (the fit's own observe of what it is given is the only call after it)
            last_fit = max(i for i, (kind, _) in enumerate(calls) if kind == "fit")
            assert calls[last_fit + 1:] == [("observe", 0)], calls[last_fit - 1:]
            if engine == "batched":
                fits = [n for kind, n in calls if kind == "fit"]
                observed = [n for kind, n in calls if kind == "observe"]
                assert len(fits) == len(result.retrain_times) >= 3 and set(fits) == {0}, fits
                assert len(observed) > 2 * len(fits) and sum(observed) > 0
    finally:
        mp.undo()
    (h_b, n_b, files_b), (h_r, n_r, files_r) = outs["batched"], outs["reference"]
    assert h_b == h_r and n_b == n_r and files_b.keys() == files_r.keys() and any("models" in k for k in files_b)
    for name, frame in files_b.items():
        pd.testing.assert_frame_equal(frame, files_r[name], check_exact=True, obj=name)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_the_fit_is_the_minimum_of_its_stated_objective(dtype):
    """WeightedLogistic.fit minimizes Σ w_i·[log(1 + e^{z_i}) − y_i·z_i] / n + (l2/2n)·|β₁..|²
    on standardized features (weights scaled to mean 1): checked against the objective written
    out directly here and minimized by SciPy's BFGS from zero; rows of float32 (as the
    training window holds them) or float64; unequal weights, a constant column (its scale
    left at 1), l2 = 3."""
    from scipy.optimize import minimize

    rng = np.random.default_rng(12)
    n = 5_000
    X = rng.normal(size=(n, 4)) * [1.0, 2.0, 0.5, 3.0] + [0.0, 1.0, -2.0, 5.0]
    X = np.hstack([X, np.full((n, 1), 7.0)]).astype(dtype)
    clicked = rng.random(n) < expit(0.3 + X[:, :4].astype(float) @ [0.5, -0.25, 1.0, 0.1])
    weight = np.where(clicked, rng.exponential(3.0, n), 1.0)
    model = WeightedLogistic(l2=3.0).fit(X, clicked, weight)

    Xf = X.astype(float)
    mean, sd = Xf.mean(axis=0), Xf.std(axis=0)
    sd[sd < 1e-9] = 1.0
    Z = np.hstack([np.ones((n, 1)), (Xf - mean) / sd])
    w = weight / weight.mean()
    y = clicked.astype(float)

    def objective(beta):
        z = Z @ beta
        return (w * (np.logaddexp(0.0, z) - y * z)).sum() / n + 1.5 * (beta[1:] ** 2).sum() / n

    def gradient(beta):
        g = Z.T @ (w * (expit(Z @ beta) - y)) / n
        g[1:] += 3.0 * beta[1:] / n
        return g

    direct = minimize(objective, np.zeros(Z.shape[1]), jac=gradient, method="BFGS", options={"gtol": 1e-10})
    assert np.allclose(model.mean, mean, rtol=1e-12, atol=1e-12)
    assert np.abs(gradient(model.coef)).max() < 1e-8  # a minimum: the gradient vanishes
    assert objective(model.coef) <= direct.fun + 1e-12
    assert np.allclose(model.coef, direct.x, atol=1e-5), (model.coef, direct.x)


@pytest.mark.parametrize("n", [1, 1_000, 16_384, 16_385, 50_000])
def test_the_hessians_blocked_sum_is_the_weighted_gram_matrix(n):
    """_weighted_gram (the Hessian WeightedLogistic.fit solves with) is out + Σ p_i·z_i·z_iᵀ:
    against one product of the whole matrix, which differs only in the order of its additions
    (each entry a sum of n terms: the two may differ by about n·ε·Σ|terms|, below 1e-12·Σ|terms|
    for n ≤ 50,000, ε = 2.2e-16); on one block (n ≤ 16,384) the bits are that product's; a
    partial last block is summed too (n = 16,385 and 50,000: a block dropped moves an entry
    by a whole column's share, far beyond that bound)."""
    rng = np.random.default_rng(n)
    Zt = rng.normal(size=(11, n))
    p = rng.uniform(0.01, 0.25, n)
    start = np.diag(rng.uniform(0.0, 3.0, 11))
    got = _weighted_gram(Zt, p, start.copy())
    direct = start + (Zt * p) @ Zt.T
    if n <= 16_384:
        assert np.array_equal(got, direct)
    magnitude = start + (np.abs(Zt) * p) @ np.abs(Zt).T  # Σ |terms| of each entry
    assert np.all(np.abs(got - direct) <= 1e-12 * magnitude)
