"""The learned rankers' training window (``recsim.policies.learned._TrainingWindow``): at most
``max_rows`` rows, a reweighted uniform sample of the window beyond that, the window itself
below it.

The statistical checks use fixed seeds and tolerances derived from the sampling error of the
quantity checked, stated at each assertion.
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy.special import expit

from recsim.policies.learned import FEATURE_NAMES, WeightedLogistic, _TrainingWindow

F = len(FEATURE_NAMES)


def _batch(rng, n):
    X = rng.normal(size=(n, F))
    clicked = rng.random(n) < 0.3
    weight = np.where(clicked, rng.exponential(3.0, n), 5.0)
    return X, clicked, weight


def test_below_the_cap_the_rows_are_the_windows_exactly():
    rng = np.random.default_rng(1)
    capped, uncapped = _TrainingWindow(7.0, max_rows=10_000), _TrainingWindow(7.0, max_rows=None)
    for day in range(1, 10):  # batches expire after 7 days
        X, clicked, weight = _batch(rng, 800)
        for window in (capped, uncapped):
            keys, tau = window.keys(X.shape[0])
            assert tau == 1.0
            window.add(float(day), X, clicked, weight, keys, tau)
        for a, b in zip(capped.rows(), uncapped.rows()):
            assert np.array_equal(a, b)
    assert capped.rows()[0].shape[0] == 7 * 800


def test_the_window_never_holds_more_than_max_rows():
    rng = np.random.default_rng(2)
    window = _TrainingWindow(3.0, max_rows=1_000)
    for day in range(1, 12):
        n = int(rng.integers(200, 3_000))  # some batches alone exceed the cap
        X, clicked, weight = _batch(rng, n)
        keys, tau = window.keys(n)
        kept = keys < tau
        window.add(float(day), X[kept], clicked[kept], weight[kept], keys[kept], tau)
        X_all, _, _ = window.rows()
        assert X_all.shape[0] <= 1_000
        assert all(b[0] > day - 3.0 for b in window.batches)  # old batches expired
        assert all(b[4].max(initial=0.0) < b[5] for b in window.batches)  # kept keys below τ


def test_reweighted_sums_are_unbiased_for_the_windows_sums():
    """Horvitz–Thompson: Σ kept w/τ estimates Σ all w. With one τ for every batch the
    estimate's standard deviation is sqrt(Σ w²·(1 − τ)/τ) (independent Bernoulli(τ) keeps);
    the check allows 4 of them (false alarm < 1e-4 for a normal estimate)."""
    rng = np.random.default_rng(3)
    window = _TrainingWindow(100.0, max_rows=5_000)
    every = []
    for day in range(1, 6):
        X, clicked, weight = _batch(rng, 20_000)
        every.append(weight)
        keys, tau = window.keys(X.shape[0])
        kept = keys < tau
        window.add(float(day), X[kept], clicked[kept], weight[kept], keys[kept], tau)
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
        keys, tau = window.keys(40_000)
        kept = keys < tau
        window.add(float(day), X[kept], clicked[kept], np.ones(int(kept.sum())), keys[kept], tau)
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
