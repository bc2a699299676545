"""Adapting creators (``catalog.creators``) in the analysis, the plots and the report: the
``creators`` table as :attr:`recsim.analysis.Run.creators` reads it, :func:`creator_curves`
against a direct computation from the metrics table, the "What creators upload" figure, and
the report's "Creators who adapt" section — present with creators, absent without."""

from __future__ import annotations

import copy
import html as htmlmod
import io
import math
import re
import warnings

import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from scipy import stats  # noqa: E402

from recsim import analysis, plots  # noqa: E402
from recsim.config import scenario_from_dict  # noqa: E402
from recsim.creators import CREATOR_METRICS  # noqa: E402
from recsim.experiment import run_experiment  # noqa: E402
from recsim.report import CREATORS_PLOT, REPORT_PLOTS, report_plots, write_report  # noqa: E402

DAY = 86400.0
POLICIES = ["chronological", "engagement"]
N_REPS = 2
N_CREATORS = 30
N_BUCKETS = 3  # 3 days in 1-day buckets
N_ADAPTATIONS = 2  # at 1d and 2d: every period strictly inside the horizon
SCENARIO = {
    "name": "creators_report_tiny",
    "seed": 11,
    "horizon": "3d",
    "warmup": "1d",
    "replications": N_REPS,
    "workers": 1,
    "population": {"n_users": 200},
    "catalog": {
        "n_items": 500,
        "n_creators": N_CREATORS,
        "creators": {"split": "zipf", "period": "1d"},
    },
    "recommender": {"slate_size": 5, "n_candidates": 40, "retrain_interval": "1d"},
    "policies": POLICIES,
    "outputs": {"metrics_interval": "1d", "log_impressions": False},
}
TABLE_COLUMNS = [
    "time",
    "creator",
    "impressions",
    "watch_seconds",
    "extremeness_offset",
    "quality_offset",
    "clickbait_offset",
    "style_extremeness",
    "style_quality",
    "style_clickbait",
    "oracle",
    "policy",
    "replication",
]
CURVE_COLUMNS = [
    "policy", "oracle", "metric", "kind", "start", "end", "time", "day",
    "n_replications", "mean", "ci_low", "ci_high",
]
PNG = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    """A run with adapting creators (runs once for the module)."""
    return run_experiment(
        scenario_from_dict(SCENARIO), tmp_path_factory.mktemp("creators") / "run", workers=1
    )


@pytest.fixture(scope="module")
def run(run_dir):
    return analysis.load_run(run_dir)


@pytest.fixture(scope="module")
def plain_dir(tmp_path_factory):
    """The same scenario without ``catalog.creators`` (one replication: the control)."""
    data = copy.deepcopy(SCENARIO)
    data["catalog"].pop("creators")
    data.update(name="no_creators_tiny", replications=1)
    return run_experiment(
        scenario_from_dict(data), tmp_path_factory.mktemp("plain") / "run", workers=1
    )


def _direct_creators(run_dir) -> pd.DataFrame:
    """The creators table read partition by partition with pandas (the independent reference):
    policy and replication from the folder names."""
    frames = []
    for part in sorted((run_dir / "creators").glob("policy=*/replication=*/*.parquet")):
        frame = pd.read_parquet(part)
        frame["policy"] = part.parent.parent.name.split("=", 1)[1]
        frame["replication"] = int(part.parent.name.split("=", 1)[1])
        frames.append(frame)
    return pd.concat(frames, ignore_index=True)


def _direct_curves(run_dir) -> pd.DataFrame:
    """Mean and Student-t 95% interval over replications of each creator metric per policy and
    bucket, from the metrics partitions read with pandas and scipy."""
    metrics = pd.read_parquet(run_dir / "metrics")
    metrics["policy"] = metrics["policy"].astype(str)
    metrics["metric"] = metrics["metric"].astype(str)
    metrics = metrics[metrics["metric"].isin(CREATOR_METRICS)]
    rows = []
    keys = ["policy", "metric", "start", "end"]
    for (policy, metric, start, end), group in metrics.groupby(keys):
        x = group["value"].dropna().to_numpy(dtype=float)
        if x.size == 0:  # no replication has a value: no mean, no interval
            rows.append({"policy": policy, "metric": metric, "start": start, "end": end,
                         "n": 0, "mu": math.nan, "low": math.nan, "high": math.nan})
            continue
        mean = x.mean()
        half = stats.t.ppf(0.975, x.size - 1) * x.std(ddof=1) / math.sqrt(x.size)
        rows.append({"policy": policy, "metric": metric, "start": start, "end": end,
                     "n": x.size, "mu": mean, "low": mean - half, "high": mean + half})
    return pd.DataFrame(rows)


# ----------------------------------------------------------------------------- Run.creators
def test_run_creators_is_every_partition_of_the_creators_table(run, run_dir):
    table = run.creators
    assert table is not None
    assert list(table.columns) == TABLE_COLUMNS
    assert table["policy"].map(type).eq(str).all()
    assert pd.api.types.is_integer_dtype(table["replication"])
    # creators × adaptations × policies × replications, each exactly once
    assert len(table) == N_CREATORS * N_ADAPTATIONS * len(POLICIES) * N_REPS
    keys = table[["policy", "replication", "time", "creator"]]
    assert not keys.duplicated().any()
    assert sorted(table["time"].unique()) == [DAY * k for k in range(1, N_ADAPTATIONS + 1)]
    assert sorted(table["creator"].unique()) == list(range(N_CREATORS))
    assert set(map(tuple, table[["policy", "replication"]].drop_duplicates().to_numpy())) == {
        (p, r) for p in POLICIES for r in range(N_REPS)
    }
    # rows in scenario policy order, then replication, time and creator
    assert list(dict.fromkeys(table["policy"])) == POLICIES
    ordered = table.sort_values(["replication", "time", "creator"], kind="stable")
    ordered = ordered.sort_values("policy", key=lambda s: s.map(POLICIES.index), kind="stable")
    assert ordered.index.tolist() == list(range(len(table)))
    # value for value what the parquet partitions hold
    direct = _direct_creators(run_dir)[TABLE_COLUMNS]
    by = ["policy", "replication", "time", "creator"]
    pd.testing.assert_frame_equal(
        table.sort_values(by).reset_index(drop=True),
        direct.sort_values(by).reset_index(drop=True),
        check_dtype=False,
    )
    # the creators adapted: some offsets moved, all within the default bound
    offsets = table[["extremeness_offset", "quality_offset", "clickbait_offset"]].to_numpy()
    assert np.abs(offsets).max() > 0 and np.abs(offsets).max() <= 0.3 + 1e-12
    assert not table["oracle"].any()


def test_a_run_without_creators_has_no_creators_table_and_no_curves(plain_dir):
    plain = analysis.load_run(plain_dir)
    assert plain.creators is None
    curves = analysis.creator_curves(plain)
    assert curves.empty
    assert list(curves.columns) == CURVE_COLUMNS


# ----------------------------------------------------------------------------- creator_curves
def test_creator_curves_agree_with_a_direct_computation(run, run_dir):
    curves = analysis.creator_curves(run)
    assert list(curves.columns) == CURVE_COLUMNS
    assert len(curves) == len(POLICIES) * len(CREATOR_METRICS) * N_BUCKETS
    assert curves.attrs["interval"] == "95% Student t over replications"
    # order: policy (scenario), metric (CREATOR_METRICS), time
    assert list(dict.fromkeys(curves["policy"])) == POLICIES
    for _, sub in curves.groupby("policy", sort=False):
        assert list(dict.fromkeys(sub["metric"])) == list(CREATOR_METRICS)
        for _, line in sub.groupby("metric", sort=False):
            assert line["time"].is_monotonic_increasing
    # flow metrics: a point at each bucket's midpoint, in seconds and days
    assert (curves["kind"] == "flow").all()
    np.testing.assert_allclose(curves["time"], (curves["start"] + curves["end"]) / 2)
    np.testing.assert_allclose(curves["day"], curves["time"] / DAY)
    assert sorted(curves["day"].unique()) == [0.5, 1.5, 2.5]

    direct = _direct_curves(run_dir)
    merged = curves.merge(direct, on=["policy", "metric", "start", "end"], how="outer",
                          validate="one_to_one", indicator=True)
    assert (merged["_merge"] == "both").all(), merged[merged["_merge"] != "both"]
    assert (merged["n_replications"] == merged["n"]).all()
    # every replication has every value, except the style correlation in the first bucket:
    # the creators have not adapted yet, their styles do not vary (NaN)
    first_corr = (merged["metric"] == "creator_quality_clickbait_corr") & (merged["start"] == 0)
    assert (merged.loc[first_corr, "n_replications"] == 0).all() and first_corr.sum() == len(POLICIES)
    assert (merged.loc[~first_corr, "n_replications"] == N_REPS).all()
    np.testing.assert_allclose(merged["mean"], merged["mu"], rtol=1e-12)
    np.testing.assert_allclose(merged["ci_low"], merged["low"], rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(merged["ci_high"], merged["high"], rtol=1e-10, atol=1e-12)


def test_creator_curves_of_a_metrics_frame_are_those_of_the_run(run):
    from_run = analysis.creator_curves(run)
    from_frame = analysis.creator_curves(run.metrics)
    pd.testing.assert_frame_equal(from_run, from_frame)
    # raw partitions (policy and replication as categories): same rows, in the frame's order
    raw = pd.read_parquet(run.path / "metrics")
    by = ["policy", "metric", "start"]
    pd.testing.assert_frame_equal(
        analysis.creator_curves(raw).sort_values(by).reset_index(drop=True),
        from_run.sort_values(by).reset_index(drop=True),
    )
    # one replication: the means are that replication's values, no interval
    one = analysis.creator_curves(run.metrics[run.metrics["replication"] == 1], ["upload_quality"])
    m = run.metrics
    values = m[(m["replication"] == 1) & (m["metric"] == "upload_quality")]
    np.testing.assert_allclose(one["mean"], values["value"])
    assert (one["n_replications"] == 1).all()
    assert one["ci_low"].isna().all() and one["ci_high"].isna().all()


# ----------------------------------------------------------------------------- plot
def test_the_creators_plot_has_a_panel_per_upload_attribute_and_the_exposure_share(run):
    fig = plots.plot_creators(analysis.creator_curves(run))
    assert isinstance(fig, Figure)
    axes = [ax for ax in fig.axes if ax.get_visible()]
    assert [ax.get_ylabel() for ax in axes] == [plots.label(m) for m in plots.CREATOR_PANELS]
    assert all("days" in ax.get_xlabel() for ax in axes)
    # a line per policy in each panel, and a 95% band with two replications
    assert all(len(ax.get_lines()) == len(POLICIES) for ax in axes)
    assert all(ax.collections for ax in axes)
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=40)
    assert buffer.getvalue().startswith(PNG)


# ----------------------------------------------------------------------------- report
def test_the_report_of_a_run_with_creators_has_the_section_its_plot_and_table(run_dir):
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)  # a figure or table that fails warns
        html = write_report(run_dir).read_text(encoding="utf-8")
    run = analysis.load_run(run_dir)
    assert CREATORS_PLOT in report_plots(run)
    png = run_dir / "report" / "creators.png"
    assert png.exists() and png.read_bytes().startswith(PNG)
    assert "<h2 id='creators'>Creators who adapt</h2>" in html
    assert 'href="creators.png"' in html and "href='#creators'" in html
    assert len(re.findall(r'src="data:image/png;base64,', html)) == len(report_plots(run))
    # the table: the last bucket's means [95% CI] of each policy, as computed directly
    section = html.split("<h2 id='creators'>", 1)[1].split("<h2 ", 1)[0]
    assert "days 2–3" in section
    direct = _direct_curves(run_dir)
    last = direct[direct["end"] == direct["end"].max()]
    for policy in POLICIES:
        assert f"<td>{htmlmod.escape(policy)}</td>" in section
        for metric in plots.CREATOR_PANELS:
            q = last[(last["policy"] == policy) & (last["metric"] == metric)].iloc[0]
            cell = f"<td>{q['mu']:.3g} [{q['low']:.3g}, {q['high']:.3g}]</td>"
            assert cell in section, (policy, metric, cell)


def test_the_report_of_a_run_without_creators_has_no_creators_section(plain_dir):
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        html = write_report(plain_dir).read_text(encoding="utf-8")
    plain = analysis.load_run(plain_dir)
    figures = report_plots(plain)
    assert CREATORS_PLOT not in figures
    # what it was before creators existed: the standard figures and the learned weights
    names = [p.name for p in figures if p.name != "learned_weights"]
    assert names == [p.name for p in REPORT_PLOTS]
    assert not (plain_dir / "report" / "creators.png").exists()
    assert "Creators who adapt" not in html and "id='creators'" not in html
    assert "creators.png" not in html
    assert len(re.findall(r'src="data:image/png;base64,', html)) == len(figures)
