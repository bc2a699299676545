"""recsim.plots (one figure per analysis view) and recsim.report (PNGs, report.html), tiny runs."""

from __future__ import annotations

import html as htmlmod
import io
import re
import shutil
import warnings

import matplotlib

matplotlib.use("Agg")

import pandas as pd  # noqa: E402
import pytest  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from recsim import analysis, plots  # noqa: E402
from recsim.config import scenario_from_dict  # noqa: E402
from recsim.experiment import run_experiment  # noqa: E402
from recsim.report import REPORT_PLOTS, write_report  # noqa: E402

SCENARIO = {
    "name": "plots_tiny",
    "seed": 5,
    "horizon": "2d",
    "warmup": "1d",
    "replications": 3,
    "workers": 1,
    "population": {"n_users": 12},
    "catalog": {"n_items": 400, "upload_rate": "100/d"},
    "recommender": {"slate_size": 5, "n_candidates": 40, "retrain_interval": "12h"},
    "behaviour": {"churn": {"zeta0": -2.5}},
    "policies": ["random", "chronological", "engagement_oracle", "wellbeing_oracle"],
    "outputs": {"metrics_interval": "12h", "log_impressions": False},
}
PNG = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="session")
def run_dir(tmp_path_factory):
    return run_experiment(
        scenario_from_dict(SCENARIO), tmp_path_factory.mktemp("plots") / "run", workers=1
    )


@pytest.fixture(scope="session")
def run(run_dir):
    return analysis.load_run(run_dir)


def _check(fig: Figure) -> None:
    """A real figure: visible axes with labels, and it renders to PNG."""
    assert isinstance(fig, Figure)
    axes = [ax for ax in fig.axes if ax.get_visible() and ax.get_label() != "<colorbar>"]
    assert axes
    labelled = [ax for ax in axes if ax.get_xlabel() and ax.get_ylabel()]
    assert labelled, "axes need readable labels"
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=40)
    assert buffer.getvalue().startswith(PNG)


def _views(run):
    outcomes = analysis.user_outcomes(run)
    user = int(outcomes.loc[outcomes["watch_minutes"].idxmax(), "user_id"])
    return {
        "drift": (plots.plot_drift, analysis.drift_curves(run)),
        "tradeoff": (plots.plot_tradeoff, analysis.tradeoff(run)),
        "goodhart_gap": (plots.plot_goodhart_gap, analysis.goodhart_gap(run)),
        "proxy_validity": (plots.plot_proxy_validity, analysis.proxy_validity(run)),
        "transitions": (plots.plot_transition_matrix, analysis.transition_matrix(run)),
        "reach": (
            plots.plot_reach_probability,
            analysis.reach_top_probability(
                analysis.transition_matrix(run, by_replication=True), 10
            ),
        ),
        "survival": (plots.plot_survival, analysis.survival_curves(run)),
        "trajectory": (plots.plot_user_trajectory, analysis.user_trajectory(run, user)),
        "wellbeing_change": (plots.plot_wellbeing_change, outcomes),
        "who_drifts": (plots.plot_who_drifts, outcomes),
    }


def test_every_view_has_a_figure(run):
    views = _views(run)
    for draw, frame in views.values():
        fig = draw(frame)
        _check(fig)
    # units in the labels
    fig = plots.plot_drift(views["drift"][1])
    assert all("days" in ax.get_xlabel() for ax in fig.axes if ax.get_xlabel())
    fig = plots.plot_tradeoff(views["tradeoff"][1])
    assert "min per user-day" in fig.axes[0].get_xlabel()
    # one heat map per policy
    heatmaps = plots.plot_transition_matrix(views["transitions"][1])
    assert sum(ax.get_title() != "" for ax in heatmaps.axes) >= len(run.policies)


def test_bands_over_replications_and_a_single_replication(run):
    drift = analysis.drift_curves(run)
    fig = plots.plot_drift(drift)
    # seaborn draws a confidence band as a filled polygon per line
    assert any(ax.collections for ax in fig.axes)
    one = drift[drift["replication"] == 0]
    _check(plots.plot_drift(one))
    _check(plots.plot_survival(analysis.survival_curves(run).query("replication == 1")))
    trade = analysis.tradeoff(run)
    _check(
        plots.plot_tradeoff(
            trade.assign(engagement_ci_low=float("nan"), engagement_ci_high=float("nan"))
        )
    )


def test_metric_curves_and_sweep_heatmap(run):
    curves = analysis.metric_curves(run, ["watch_minutes_per_user_day", "mean_wellbeing"])
    fig = plots.plot_metric_curves(curves)
    _check(fig)
    assert [ax.get_ylabel() for ax in fig.axes[:2]] == [
        plots.label("watch_minutes_per_user_day"),
        plots.label("mean_wellbeing"),
    ]
    table = pd.DataFrame(
        [[0.1, -0.2], [0.3, 0.0]],
        index=pd.Index([2, 1], name="y.param"),
        columns=pd.Index([0.5, 1.5], name="x.param"),
    )
    fig = plots.plot_sweep_heatmap(table, title="t", value_label="v", center=0.0)
    _check(fig)
    assert fig.axes[0].get_xlabel() == "x.param"


def test_report_writes_every_png_and_an_html_that_references_them(run_dir, tmp_path):
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)  # a figure that cannot be drawn warns
        html_path = write_report(run_dir)
    assert html_path == run_dir / "report" / "report.html"
    html = html_path.read_text(encoding="utf-8")
    for plot in REPORT_PLOTS:
        png = run_dir / "report" / f"{plot.name}.png"
        assert png.exists() and png.read_bytes().startswith(PNG), plot.name
        assert f'href="{plot.name}.png"' in html
        assert htmlmod.escape(plot.title) in html
    # self-contained: every figure is also embedded
    assert len(re.findall(r'src="data:image/png;base64,', html)) == len(REPORT_PLOTS)
    assert "plots_tiny" in html and "scenario.yaml" in html and "seed: 5" in html
    assert "watch_minutes_per_user_day" in html  # the summary table
    assert "Goodhart gap" in html
    if (run_dir / "comparison.csv").exists():
        assert "id='comparison'" in html and "goodhart_watch_gain" in html


def test_report_with_and_without_comparison_csv(run_dir, tmp_path):
    copy = tmp_path / "run"
    shutil.copytree(run_dir, copy, ignore=shutil.ignore_patterns("report"))
    (copy / "comparison.csv").unlink(missing_ok=True)
    out = tmp_path / "elsewhere"
    html = write_report(copy, out=out).read_text(encoding="utf-8")
    assert (out / "report.html").exists() and not (copy / "report").exists()
    assert "id='comparison'" not in html

    pd.DataFrame(
        {
            "policy": ["engagement_oracle"],
            "reference": ["random"],
            "metric": ["final_wellbeing"],
            "mean_difference": [-0.05],
            "ci_low": [-0.08],
            "ci_high": [-0.02],
            "some_new_column": ["kept"],
        }
    ).to_csv(copy / "comparison.csv", index=False)
    html = write_report(copy, out=out).read_text(encoding="utf-8")
    assert "id='comparison'" in html and "some_new_column" in html and "kept" in html


def test_report_of_a_run_with_one_policy_and_one_replication(tmp_path):
    data = {
        **SCENARIO,
        "name": "single",
        "replications": 1,
        "policies": ["engagement_oracle"],
        "population": {"n_users": 6},
        "horizon": "1d",
    }
    run_dir = run_experiment(scenario_from_dict(data), tmp_path / "run", workers=1)
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        html = write_report(run_dir).read_text(encoding="utf-8")
    for plot in REPORT_PLOTS:
        assert (run_dir / "report" / f"{plot.name}.png").exists()
    assert "Only one policy" in html or "no policy" in html.lower()
