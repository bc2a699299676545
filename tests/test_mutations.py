"""Mutation check: a bug in any one formula of the model makes a fast test fail.

Each mutation below replaces one function of :mod:`recsim.users.formulas` — the only place the
model's arithmetic is written, which both engines, the oracles and the metrics call — with a
plausible slip (a unit, a sign, a missing term). The pinned-output check of
``tests/test_engine_golden.py`` must then fail. Before the model was written once, a fatigue
counted in minutes instead of hours cut the oracle's watch time six-fold while every fast test
passed; this file keeps that from happening again.
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy.special import expit
from test_engine_golden import SCENARIOS, check_case

from recsim.users import formulas

MUTATIONS = {
    "fatigue counted in minutes": ("add_fatigue", lambda F, tau: F + tau / 60.0),
    "appetite ratchet runs backwards": (
        "update_appetite",
        lambda a, e, frac, s, cfg: np.clip(
            a - cfg.eta_up * s * frac * np.maximum(e - a, 0.0) + cfg.eta_down * np.maximum(a - e, 0.0), 0.0, 1.0),
    ),
    "value without the extremeness penalty": (
        "value", lambda r, q, e, tau, cfg: cfg.v_r * r + cfg.v_q * q - cfg.c_tau * (tau / 60.0),
    ),
    "watch time cost per second, not per minute": (
        "value", lambda r, q, e, tau, cfg: cfg.v_r * r + cfg.v_q * q - cfg.v_h * e * e - cfg.c_tau * tau,
    ),
    "habit never decays": ("update_habit", lambda psi, A, dt, tau: psi + A),
    "topic never relaxes toward its natural value": ("relax_topic", lambda theta, theta0, dt, tau: theta),
    "position term favours the bottom of the slate": (
        "position_term", lambda n, p: p * np.log(np.arange(1, n + 1, dtype=float)),
    ),
    "satisfaction ignores the item's value": (
        "update_satisfaction", lambda S, V, z, gamma, noise: gamma * S + noise * z,
    ),
    "wellbeing without kappa": ("wellbeing", lambda S, kappa: expit(np.asarray(S, dtype=float))),
    "churn more likely after good sessions": (
        "churn_probability", lambda ubar, cfg: expit(cfg.zeta0 + cfg.zeta1 * (np.asarray(ubar) - cfg.u_out)),
    ),
    "return kernels never decay": (
        "decay_and_add", lambda kernel, dt, tau, alpha, mark: kernel + alpha * np.maximum(mark, 0.0),
    ),
    "grip peaks at the appetite, not past it": (
        "grip", lambda e, a, delta, omega: np.exp(-((e - a) ** 2) / (2.0 * omega * omega)),
    ),
    "continuation ignores fatigue": (
        "continue_probability", lambda A, psi, F, cfg: expit(cfg.c0 + cfg.c_a * A + cfg.c_psi * psi),
    ),
    "survey answers the opposite": (
        "survey_score",
        lambda v, z, cfg: np.minimum(5.0, np.maximum(1.0, np.round(cfg.intercept - cfg.slope * v + cfg.noise * z))),
    ),
}


def test_the_unmutated_model_passes(tmp_path, monkeypatch):
    monkeypatch.syspath_prepend(str(SCENARIOS))
    check_case("a-2", tmp_path)


@pytest.mark.parametrize("mutation", list(MUTATIONS))
def test_a_single_formula_bug_fails_a_fast_test(mutation, tmp_path, monkeypatch):
    name, buggy = MUTATIONS[mutation]
    assert callable(getattr(formulas, name)), f"formulas.{name} no longer exists: update the mutation"
    monkeypatch.setattr(formulas, name, buggy)
    monkeypatch.syspath_prepend(str(SCENARIOS))
    with pytest.raises(AssertionError, match="outputs changed"):
        check_case("a-2", tmp_path)  # engagement_oracle: every formula is on its path
