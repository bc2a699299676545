"""Learned policies: what the engagement model learns, when it retrains, and the rabbit hole."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
from scipy.stats import spearmanr

from recsim.config import load_scenario, scenario_from_dict
from recsim.engine import simulate
from recsim.eventlog import EventLog
from recsim.experiment import make_tasks, partition, run_experiment, run_task
from recsim.oracle import OracleView
from recsim.policies.base import CandidateFeatures, History, Request
from recsim.world import build_world

LEARN = {
    "name": "learn",
    "seed": 3,
    "horizon": "2d",
    "warmup": "3d",
    "population": {"n_users": 80},
    "catalog": {"n_items": 1500},
    "recommender": {"slate_size": 10, "n_candidates": 100, "retrain_interval": "1d"},
    "policies": ["engagement"],
    "outputs": {"log_impressions": False},
}


@pytest.fixture(scope="module")
def trained():
    sc = scenario_from_dict(LEARN)
    world = build_world(sc, 0)
    result = simulate(world, sc.policies[0], EventLog(None))
    return sc, world, result.policy


def test_engagement_predictions_track_true_expected_watch_time(trained):
    """On held-out impressions (fresh random candidate sets for every user after the run),
    the model's predicted watch minutes per impression rank items like the true expected watch
    time per impression, P(click)·E[τ | click] from the hidden state. Measured with this seed:
    mean within-user Spearman 0.80, pooled Spearman 0.78 (pooled Pearson 0.77). The floors
    (0.6) sit below the measurement yet far above what a model that learned nothing would give
    (≈0); the model was trained on 3 warm-up days under random plus 2 days of its own serving."""
    sc, world, policy = trained
    catalog = world.catalog
    now = sc.horizon
    state = world.state.copy()  # the users' hidden state as the run left it, outside a session
    state.arrays["fatigue"][:] = 0.0
    items = catalog.observable()
    rng = np.random.default_rng(2024)
    per_user, pred_all, true_all = [], [], []
    for user in range(world.n_users):
        candidates = rng.choice(catalog.n_items, size=100, replace=False)
        request = Request(user, now, History(catalog.n_topics), candidates,
                          CandidateFeatures(items, candidates, now), 10)
        predicted = policy.predicted_watch_minutes(request)
        view = OracleView(world.model, state, np.array([user]), candidates, catalog)
        truth = view.click_probability * view.expected_watch_time / 60.0
        per_user.append(spearmanr(predicted, truth).statistic)
        pred_all.append(predicted)
        true_all.append(truth)
    assert np.mean(per_user) > 0.6, np.mean(per_user)
    assert spearmanr(np.concatenate(pred_all), np.concatenate(true_all)).statistic > 0.6


def test_engagement_learns_from_observable_features_only(trained):
    """The learned coefficients are finite and the model was fit on the schedule."""
    _, _, policy = trained
    assert policy.model_.fitted and np.isfinite(policy.model_.coef).all()
    assert policy.n_fits_ == 5  # 3 warm-up days + 2 horizon days, one fit a day


def test_retraining_happens_at_the_scheduled_times_in_the_log(tmp_path):
    data = {**LEARN, "population": {"n_users": 10}, "recommender": {**LEARN["recommender"], "retrain_interval": "6h"}}
    sc = scenario_from_dict(data)
    run_task(make_tasks(sc, tmp_path)[0])
    events = pq.read_table(partition(tmp_path, "events", "engagement", 0)).to_pandas()
    retrains = events[events.event == "retrain"]
    np.testing.assert_allclose(retrains["time"], np.arange(0, 2 * 86400 + 1, 6 * 3600))
    assert (retrains["user_id"] == -1).all()


SEEDS = 3


@pytest.fixture(scope="module")
def rabbit_hole_run(tmp_path_factory):
    sc = load_scenario(
        "scenarios/rabbit_hole.yaml",
        [
            "population.n_users=60",
            "horizon=10d",
            "warmup=5d",
            f"replications={SEEDS}",
            "policies=[chronological, engagement, {type: harm_penalized, params: {penalty: 20}}]",
        ],
    )
    path = run_experiment(sc, tmp_path_factory.mktemp("rabbit") / "run", workers=2)
    return {
        "replications": pd.read_csv(path / "replications.csv"),
        "metrics": pd.read_parquet(path / "metrics"),
        "users": pd.read_parquet(path / "users"),
    }


@pytest.fixture(scope="module")
def rabbit_hole_run_former_pull(tmp_path_factory):
    """The same, with extremeness pulling as hard as before its calibration (w_e = 1.5)."""
    sc = load_scenario(
        "scenarios/rabbit_hole.yaml",
        ["population.n_users=60", "horizon=10d", "warmup=5d", f"replications={SEEDS}",
         "behaviour.allure.w_e=1.5", "policies=[chronological, engagement]"],
    )
    path = run_experiment(sc, tmp_path_factory.mktemp("rabbit-former") / "run", workers=2)
    return {"metrics": pd.read_parquet(path / "metrics")}


def _slope(metrics, policy, rep, metric):
    d = metrics[(metrics.policy == policy) & (metrics.replication == rep) & (metrics.metric == metric)]
    (slope, _), cov = np.polyfit(d["end"].to_numpy() / 86400.0, d["value"].to_numpy(), 1, cov=True)
    return float(slope), float(np.sqrt(cov[0, 0]))


def test_learned_engagement_digs_a_rabbit_hole(rabbit_hole_run):
    """Per seed: more watch time than chronological, lower final wellbeing (by > 3 SE of the
    paired per-user difference), more extreme content watched than under chronological over
    the horizon (daily means, every day), and appetite climbing (daily slope > 3 SE of the
    fit). The climb of consumed extremeness itself is checked with the former pull
    (:func:`test_with_the_former_pull_the_learned_ranker_drives_consumed_extremeness_up`): at the
    calibrated w_e = 0.75 it is about 3 SE of the fit at this size, not reliably more."""
    reps = rabbit_hole_run["replications"].pivot(index="replication", columns="policy",
                                                 values="watch_minutes_per_user_day")
    assert (reps["engagement"] > 1.5 * reps["chronological"]).all(), reps
    users = rabbit_hole_run["users"]
    final = users[users.stage == "final"]
    for rep, g in final.groupby("replication"):
        w = g.pivot(index="user_id", columns="policy", values="wellbeing")
        diff = w["chronological"] - w["engagement"]
        assert diff.mean() > 3 * diff.std(ddof=1) / np.sqrt(len(diff)), (rep, diff.mean())
    metrics = rabbit_hole_run["metrics"]
    daily = metrics[metrics.metric == "consumed_extremeness"].pivot_table(
        index=["replication", "end"], columns="policy", values="value")
    assert (daily["engagement"] > daily["chronological"]).all(), daily
    for rep in range(SEEDS):
        slope, se = _slope(metrics, "engagement", rep, "mean_appetite")
        assert slope > 3 * se, (rep, "mean_appetite", slope, se)


def test_with_the_former_pull_the_learned_ranker_drives_consumed_extremeness_up(rabbit_hole_run_former_pull):
    """The rabbit hole's mechanism, where it is strong enough to resolve at this size: with
    w_e = 1.5 (the design's value, before validation target 13 halved it), per seed, the
    extremeness of what users watch under the learned ranker climbs (daily slope > 3 SE of the
    fit), and so does their appetite."""
    for rep in range(SEEDS):
        for metric in ("consumed_extremeness", "mean_appetite"):
            slope, se = _slope(rabbit_hole_run_former_pull["metrics"], "engagement", rep, metric)
            assert slope > 3 * se, (rep, metric, slope, se)


def test_harm_penalty_keeps_most_watch_time_without_the_drift(rabbit_hole_run):
    """Per seed: harm_penalized keeps ≥ 80% of the engagement ranker's watch time while its
    appetite rises less than half as much and final wellbeing is higher."""
    reps = rabbit_hole_run["replications"].set_index(["replication", "policy"])
    for rep in range(SEEDS):
        eng, alt = reps.loc[(rep, "engagement")], reps.loc[(rep, "harm_penalized")]
        assert alt["watch_minutes_per_user_day"] >= 0.8 * eng["watch_minutes_per_user_day"]
        assert alt["appetite_change"] < 0.5 * eng["appetite_change"], (rep, alt["appetite_change"], eng["appetite_change"])
        assert alt["final_wellbeing"] > eng["final_wellbeing"]
