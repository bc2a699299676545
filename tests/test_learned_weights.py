"""What the learner learned: Policy.learned() of the learned policies, the run folder's
``models`` table, analysis.learned_weights, plots.plot_learned_weights and the report."""

from __future__ import annotations

import io
import shutil
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import numpy as np
import pandas as pd
import pytest
from matplotlib.figure import Figure

from recsim import analysis, plots
from recsim.catalog import ObservableItems
from recsim.config import scenario_from_dict
from recsim.experiment import run_experiment
from recsim.policies.base import Feedback, PolicyContext
from recsim.policies.learned import (
    CLASSIFIER_FEATURES,
    FEATURE_NAMES,
    BanditPolicy,
    EngagementPolicy,
    HarmPenalizedPolicy,
    StatedPreferencePolicy,
)
from recsim.report import LEARNED_WEIGHTS_PLOT, REPORT_PLOTS, report_plots

DAY = 86400.0

SCENARIO = {
    "name": "learned_tiny",
    "seed": 4,
    "horizon": "1d",
    "warmup": "1d",
    "replications": 2,
    "workers": 1,
    "population": {"n_users": 10},
    "catalog": {"n_items": 400, "upload_rate": "100/d"},
    "recommender": {"slate_size": 5, "n_candidates": 40, "retrain_interval": "12h"},
    "policies": ["chronological", "engagement", "bandit"],
    "outputs": {"metrics_interval": "12h", "log_impressions": False},
}

CLICK = ["click_model.intercept", *(f"click_model.{n}" for n in FEATURE_NAMES)]
CLICK_STD = ["click_model_std.intercept", *(f"click_model_std.{n}" for n in FEATURE_NAMES)]
BANDIT = ["bandit.intercept", *(f"bandit.{n}" for n in FEATURE_NAMES)]
SURVEY = [
    "survey_model.intercept",
    "survey_model.relevance",
    "survey_model.classifier",
    "survey_model.classifier_sq",
    "survey_model.log_length",
]


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    return run_experiment(
        scenario_from_dict(SCENARIO), tmp_path_factory.mktemp("learned") / "run", workers=1
    )


@pytest.fixture(scope="module")
def run(run_dir):
    return analysis.load_run(run_dir)


# ----------------------------------------------------------------------------- synthetic logs
def _world(seed: int = 0, n_items: int = 300, n_users: int = 40, k: int = 4):
    rng = np.random.default_rng(seed)
    topics = rng.normal(size=(n_items, k))
    topics /= np.linalg.norm(topics, axis=1, keepdims=True)
    items = ObservableItems(
        topics=topics,
        classifier=rng.uniform(0.0, 1.0, n_items),
        length=rng.uniform(120.0, 900.0, n_items),
        upload_time=np.zeros(n_items),
        creator=np.zeros(n_items, dtype=np.int64),
    )
    context = PolicyContext(
        n_topics=k,
        slate_size=5,
        n_candidates=40,
        retrain_interval=DAY,
        items=items,
        n_users=n_users,
    )
    return items, context, rng


def _feedback(items, rng, start: float, n: int, slope: float, n_users: int = 40) -> Feedback:
    """``n`` impressions of random items: a click a third of the time, and a watch time that
    grows like exp(slope·ê) with the item's classifier score ê (falls for a negative slope);
    one session per user and hour, with a survey after each."""
    served = np.sort(rng.uniform(start, start + DAY, n))
    users = rng.integers(0, n_users, n)
    item = rng.integers(0, items.n_items, n)
    clicked = rng.random(n) < 1 / 3
    e = items.classifier[item]
    watch = np.where(clicked, 60.0 * np.exp(slope * e) * rng.lognormal(0.0, 0.3, n), 0.0)
    session = (served // 3600).astype(np.int64)
    keys = np.unique(np.stack([users[clicked], session[clicked]], axis=1), axis=0)
    return Feedback(
        time=served + watch,
        user_id=users,
        item_id=item,
        position=rng.integers(1, 6, n),
        clicked=clicked,
        watch_time=watch,
        served_at=served,
        session=session,
        surveys={
            "time": np.full(len(keys), start + DAY),
            "user_id": keys[:, 0],
            "session": keys[:, 1],
            "score": rng.integers(1, 6, len(keys)).astype(float),
        },
    )


def _fitted(policy, slope: float = 1.5, days: int = 2, seed: int = 0):
    items, context, rng = _world(seed)
    policy.reset(context)
    for day in range(days):
        policy.fit(_feedback(items, rng, day * DAY, 4000, slope), (day + 1) * DAY)
    return policy


# ----------------------------------------------------------------------------- learned()
def test_nothing_learned_before_a_model_exists():
    items, context, rng = _world()
    for policy in (
        EngagementPolicy(),
        HarmPenalizedPolicy(),
        StatedPreferencePolicy(),
        BanditPolicy(),
    ):
        policy.reset(context)
        assert policy.learned() == {}, type(policy).__name__
        empty = Feedback(
            *(np.zeros(0, t) for t in (float, np.int64, np.int64, np.int64, bool, float))
        )
        policy.fit(empty, DAY)
        assert policy.learned() == {}, type(policy).__name__
    # too few clicks for a first model (min_clicks)
    policy = EngagementPolicy(min_clicks=10_000)
    policy.reset(context)
    policy.fit(_feedback(items, rng, 0.0, 300, 1.0), DAY)
    assert policy.learned() == {}


def test_names_are_the_documented_ones():
    engagement = _fitted(EngagementPolicy())
    assert list(engagement.learned()) == [*CLICK, *CLICK_STD]
    harm = _fitted(HarmPenalizedPolicy(penalty=12.0, demote_above=0.9))
    learned = harm.learned()
    assert list(learned) == [*CLICK, *CLICK_STD, "penalty.classifier", "penalty.demote_above"]
    assert learned["penalty.classifier"] == 12.0 and learned["penalty.demote_above"] == 0.9
    assert "penalty.demote_above" not in _fitted(HarmPenalizedPolicy()).learned()
    stated = _fitted(StatedPreferencePolicy(weight=0.4, min_surveys=5))
    learned = stated.learned()
    assert stated.survey_coef_ is not None
    assert list(learned) == [*CLICK, *CLICK_STD, *SURVEY, "blend.survey_weight"]
    np.testing.assert_array_equal([learned[n] for n in SURVEY], stated.survey_coef_)
    bandit = _fitted(BanditPolicy())
    learned = bandit.learned()
    assert list(learned) == BANDIT
    np.testing.assert_array_equal(list(learned.values()), bandit.theta_)
    for policy in (engagement, harm, stated, bandit):
        assert all(isinstance(v, float) and np.isfinite(v) for v in policy.learned().values())
    # the docstrings list the classifier features, which are those pair_features computes
    assert set(CLASSIFIER_FEATURES) <= set(FEATURE_NAMES)
    for cls, prefix in ((EngagementPolicy, "click_model"), (BanditPolicy, "bandit")):
        for feature in CLASSIFIER_FEATURES:
            assert f"{prefix}.{feature}" in cls.learned.__doc__, (cls, feature)
    for name in SURVEY[1:]:
        assert name in StatedPreferencePolicy.learned.__doc__
    # the plot's default weights are names some policy reports
    reported = {*CLICK, *SURVEY, *BANDIT}
    assert set(plots.LEARNED_WEIGHTS) <= reported


def test_raw_weights_are_the_standardized_ones_unfolded():
    policy = _fitted(EngagementPolicy())
    learned = policy.learned()
    model = policy.model_
    std = np.array([learned[n] for n in CLICK_STD])
    np.testing.assert_array_equal(std, model.coef)
    w = np.array([learned[n] for n in CLICK[1:]])
    np.testing.assert_allclose(w * model.scale, model.coef[1:], rtol=1e-12, atol=1e-12)
    # the raw weights give the model's own log-odds
    _, _, rng = _world(seed=5)
    X = np.column_stack([rng.normal(size=50) * s + m for m, s in zip(model.mean, model.scale)])
    np.testing.assert_allclose(
        learned["click_model.intercept"] + X @ w, model.log_odds(X), rtol=1e-9, atol=1e-9
    )


@pytest.mark.parametrize("slope", [1.5, -1.5])
def test_known_answer_the_classifier_weight_follows_the_watch_time(slope):
    """Watch time rising with the classifier score gives a positive weight on ê (and a
    learned log-odds that rises over ê ∈ [0, 1]); falling watch time, a negative one. The
    engagement model and the bandit (on minutes) alike."""
    for seed in (0, 1):
        learned = _fitted(EngagementPolicy(), slope, seed=seed).learned()
        w_e, w_e2 = learned["click_model.classifier"], learned["click_model.classifier_sq"]
        assert np.sign(w_e) == np.sign(slope), (seed, w_e, w_e2)
        rise = w_e * (0.9 - 0.1) + w_e2 * (0.9**2 - 0.1**2)  # log-odds from ê = 0.1 to 0.9
        assert np.sign(rise) == np.sign(slope) and abs(rise) > 0.5 * abs(slope), rise
        bandit = _fitted(BanditPolicy(), slope, seed=seed).learned()
        rise = bandit["bandit.classifier"] * 0.8 + bandit["bandit.classifier_sq"] * 0.8
        assert np.sign(rise) == np.sign(slope), rise


# ----------------------------------------------------------------------------- the run folder
def test_models_table_for_learned_policies_only(run_dir):
    models = run_dir / "models"
    for rep in range(2):
        for policy in ("engagement", "bandit"):
            assert (models / f"policy={policy}" / f"replication={rep}" / "part-0.parquet").exists()
        assert not (models / "policy=chronological").exists()
    frame = pd.read_parquet(models / "policy=engagement" / "replication=0" / "part-0.parquet")
    assert list(frame.columns) == ["time", "name", "value", "oracle"]
    # one set of weights per retrain (every 12 h from the start of the warm-up) once there is
    # a model: the first retrain of the warm-up may have had too few clicks
    times = frame["time"].unique()
    assert {0.0, DAY / 2} <= set(times) and set(times) <= {-DAY / 2, 0.0, DAY / 2, DAY}
    per_retrain = frame.groupby("time")["name"].agg(list)
    assert all(names == [*CLICK, *CLICK_STD] for names in per_retrain)


def test_learned_weights_matches_the_parquet_files(run, run_dir):
    weights = analysis.learned_weights(run)
    assert list(weights.columns) == [
        "policy",
        "replication",
        "oracle",
        "time",
        "day",
        "name",
        "value",
    ]
    direct = []
    for path in sorted((run_dir / "models").glob("policy=*/replication=*/part-0.parquet")):
        part = pd.read_parquet(path)
        part["policy"] = path.parent.parent.name.split("=", 1)[1]
        part["replication"] = int(path.parent.name.split("=", 1)[1])
        direct.append(part)
    direct = pd.concat(direct, ignore_index=True)
    assert len(weights) == len(direct)
    keys = ["policy", "replication", "time", "name"]
    merged = weights.merge(direct, on=keys, suffixes=("", "_file"), validate="one_to_one")
    assert len(merged) == len(direct)
    np.testing.assert_array_equal(merged["value"], merged["value_file"])
    assert not weights["oracle"].any()
    np.testing.assert_allclose(weights["day"], weights["time"] / DAY)
    # scenario policy order, then replication and time; names in the policy's order
    assert list(dict.fromkeys(weights["policy"])) == ["engagement", "bandit"]
    one = weights[(weights["policy"] == "bandit") & (weights["replication"] == 1)]
    assert one["time"].is_monotonic_increasing
    assert list(one[one["time"] == 0.0]["name"]) == BANDIT
    # names=
    picked = analysis.learned_weights(
        run_dir, names=["click_model.classifier_sq", "click_model.classifier"]
    )
    assert set(picked["policy"]) == {"engagement"}
    assert list(picked["name"].iloc[:2]) == ["click_model.classifier_sq", "click_model.classifier"]
    assert (
        len(picked)
        == direct["name"].isin(["click_model.classifier", "click_model.classifier_sq"]).sum()
    )
    assert (
        analysis.learned_weights(run, names="bandit.classifier")["name"]
        .eq("bandit.classifier")
        .all()
    )


def test_learned_weights_without_a_models_table(run_dir, tmp_path):
    """A run of non-learned policies, or a run folder older than the models table."""
    old = tmp_path / "old"
    old.mkdir()
    for name in ("manifest.json", "scenario.yaml"):
        shutil.copy(run_dir / name, old / name)
    weights = analysis.learned_weights(analysis.load_run(old))
    assert weights.empty
    assert list(weights.columns) == [
        "policy",
        "replication",
        "oracle",
        "time",
        "day",
        "name",
        "value",
    ]
    free = report_plots(analysis.load_run(old))
    assert LEARNED_WEIGHTS_PLOT not in free and free == list(REPORT_PLOTS)
    _check(plots.plot_learned_weights(weights))


# ----------------------------------------------------------------------------- plot, report
def _check(fig: Figure) -> None:
    assert isinstance(fig, Figure)
    axes = [ax for ax in fig.axes if ax.get_visible()]
    assert axes and all(ax.get_xlabel() and ax.get_ylabel() for ax in axes)
    fig.savefig(io.BytesIO(), format="png", dpi=30)


def test_plot_learned_weights(run):
    weights = analysis.learned_weights(run)
    fig = plots.plot_learned_weights(weights)
    _check(fig)
    titles = [ax.get_title() for ax in fig.axes if ax.get_visible()]
    present = [n for n in plots.LEARNED_WEIGHTS if n in set(weights["name"])]
    assert len(titles) == len(present) == 6  # ê, ê², ê × history of the click model and the bandit
    assert all("days" in ax.get_xlabel() for ax in fig.axes if ax.get_visible())
    # bands over the two replications
    assert any(ax.collections for ax in fig.axes)
    legend = fig.legends[0]
    assert [t.get_text() for t in legend.get_texts()] == ["engagement", "bandit"]
    one = plots.plot_learned_weights(
        weights[weights["replication"] == 0], names=["click_model.intercept"]
    )
    _check(one)
    assert len([ax for ax in one.axes if ax.get_visible()]) == 1


def test_report_shows_what_the_learner_learned(run):
    figures = report_plots(run)
    names = [p.name for p in figures]
    assert "learned_weights" in names and names.index("learned_weights") == names.index("drift") + 1
    _check(LEARNED_WEIGHTS_PLOT.draw(run))


def test_the_notebook_section_runs_on_a_run_with_learned_policies(run):
    """tests/test_notebooks.py runs 02_rabbit_holes against a run without learned policies;
    here the cells of its "What the learner learned" section run against one that has them."""
    import nbformat

    path = Path(__file__).resolve().parents[1] / "notebooks" / "02_rabbit_holes.ipynb"
    cells = nbformat.read(path, as_version=4).cells
    start = next(
        i for i, c in enumerate(cells) if c.source.startswith("## What the learner learned")
    )
    end = next(i for i in range(start + 1, len(cells)) if cells[i].source.startswith("## "))
    code = [c.source for c in cells[start:end] if c.cell_type == "code"]
    assert len(code) == 2 and "learned_weights" in code[0]
    shown = []
    namespace = {
        "run": run,
        "analysis": analysis,
        "plots": plots,
        "pd": pd,
        "display": shown.append,
    }
    exec(code[0], namespace)  # noqa: S102 — the notebook's own cells
    assert isinstance(namespace["plots"].plot_learned_weights(namespace["weights"]), Figure)
    exec(code[1], namespace)  # noqa: S102
    (summary,) = shown  # the click model's weights at the end of the warm-up and at the end
    assert list(summary.index.get_level_values("policy").unique()) == ["engagement"]
    assert {"w_ê", "w_ê²", "w_ê×u", "dê*/du"} <= set(summary.columns)
