"""Plots of run analyses (seaborn): one function per view of :mod:`recsim.analysis`.

Every function takes the tidy DataFrame its analysis counterpart returns and gives back a
``matplotlib.figure.Figure`` (built without pyplot, so figures never pile up in global state:
in Jupyter run ``%matplotlib inline`` once and leave the figure as a cell's value to display
it; elsewhere ``fig.savefig("x.png")``). Where a view has
several replications, lines carry a band: the Student-t 95% confidence interval of the mean
over replications (the same interval as ``summary.csv``). Oracle policies, which read hidden
state and are upper bounds only, are labelled "(oracle)" and drawn dashed.

>>> from recsim import analysis, plots
>>> run = analysis.load_run("runs/rabbit_hole-20261127-101500")
>>> plots.plot_drift(analysis.drift_curves(run)).savefig("drift.png")
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from .creators import TOP_CREATOR_SHARE
from .stats import mean_ci

__all__ = [
    "LABELS",
    "label",
    "plot_metric_curves",
    "plot_drift",
    "plot_tradeoff",
    "plot_goodhart_gap",
    "plot_proxy_validity",
    "plot_transition_matrix",
    "plot_reach_probability",
    "plot_survival",
    "plot_user_trajectory",
    "plot_wellbeing_change",
    "plot_who_drifts",
    "plot_sweep_heatmap",
    "LEARNED_WEIGHTS",
    "plot_learned_weights",
    "CREATOR_PANELS",
    "plot_creators",
]

#: Axis labels with units, by metric or column name.
LABELS: dict[str, str] = {
    "day": "time since the end of the warm-up (days)",
    "watch_minutes_per_user_day": "watch time (min per user-day)",
    "sessions_per_user_day": "sessions per user-day",
    "clicks_per_user_day": "clicks per user-day",
    "value_per_user_day": "value (Σ true V per user-day)",
    "cumulative_value_per_user": "cumulative value (Σ true V per user)",
    "regret_minutes_per_user_day": "regret (min on items with V < 0, per user-day)",
    "final_wellbeing": "final mean wellbeing W (0–1)",
    "mean_wellbeing": "mean wellbeing W (0–1)",
    "wellbeing_change": "wellbeing change (final − initial W)",
    "consumed_extremeness": "consumed extremeness (mean e, 0–1)",
    "consumed_extremeness_change": "change in consumed extremeness (last − first bucket)",
    "extreme_share": "share of watch time on extreme items",
    "mean_appetite": "mean appetite a (0–1)",
    "final_appetite": "final mean appetite a (0–1)",
    "appetite_change": "appetite change (final − initial a)",
    "appetite0": "natural appetite a₀ (0–1)",
    "susceptibility": "susceptibility s (drift speed multiplier)",
    "topic_drift": "topic drift (mean ‖θ − θ₀‖)",
    "topic_entropy": "topic entropy (nats)",
    "proxy_validity": "proxy validity (Spearman ρ: expected watch time vs value)",
    "proxy_regret": "value lost per slot (proxy vs value ranking)",
    "watch_value_correlation": "Spearman ρ: watch time vs value of watched items",
    "coverage_shown": "share of available items shown",
    "coverage_watched": "share of available items watched",
    "exposure_gini": "Gini of impressions over items",
    "homogenization": "Jaccard similarity of users' watched sets",
    "survey_mean": "mean survey answer (1–5)",
    "churn_rate": "share of users churned",
    "active_users": "active users",
    "mean_habit": "mean habit stock ψ",
    "retained_users": "users not churned",
    "survival": "share of users not churned",
    "active_share": "share of users active per bucket",
    "goodhart_watch_gain": "watch-time gain vs reference (%)",
    "goodhart_wellbeing_change": "final wellbeing W − reference",
    "goodhart_extremeness_change": "consumed extremeness − reference",
    "upload_extremeness": "true extremeness of new uploads (mean e, 0–1)",
    "upload_extremeness_sd": "SD of the true extremeness of new uploads",
    "upload_quality": "true quality of new uploads (mean q)",
    "upload_quality_sd": "SD of the true quality of new uploads",
    "upload_clickbait": "clickbait of new uploads (mean b, 0–1)",
    "upload_clickbait_sd": "SD of the clickbait of new uploads",
    "creator_quality_clickbait_corr": "correlation of creators' quality and clickbait",
    "top_creator_share": f"share of impressions to the top {TOP_CREATOR_SHARE:.0%} of creators",
}


def label(name: str) -> str:
    """Readable axis label (with units) for a metric or column name."""
    return LABELS.get(name, name.replace("_", " "))


# ----------------------------------------------------------------------------- helpers
def _t_band(values) -> tuple[float, float]:
    """Student-t 95% interval of the mean over replications (a point without spread)."""
    x = np.asarray(values, dtype=float)
    x = x[~np.isnan(x)]
    if x.size == 0:
        return (math.nan, math.nan)
    if x.size < 2:
        return (float(x[0]), float(x[0]))
    _, low, high = mean_ci(x)
    return (low, high)


#: Ranges the bands are clipped to (a share cannot leave [0, 1], nor a correlation [-1, 1]).
_BOUNDS: dict[str, tuple[float, float]] = {
    "consumed_extremeness": (0.0, 1.0),
    "extreme_share": (0.0, 1.0),
    "mean_appetite": (0.0, 1.0),
    "mean_wellbeing": (0.0, 1.0),
    "churn_rate": (0.0, 1.0),
    "survival": (0.0, 1.0),
    "active_share": (0.0, 1.0),
    "proxy_validity": (-1.0, 1.0),
    "probability": (0.0, 1.0),
    "topic_drift": (0.0, 2.0),
    "upload_extremeness": (0.0, 1.0),
    "upload_clickbait": (0.0, 1.0),
    "creator_quality_clickbait_corr": (-1.0, 1.0),
    "top_creator_share": (0.0, 1.0),
}


def _band(bounds: tuple[float, float] | None):
    if bounds is None:
        return _t_band
    lo, hi = bounds
    return lambda values: tuple(float(np.clip(v, lo, hi)) for v in _t_band(values))


def _figure(
    n_panels: int, ncols: int | None = None, panel: tuple[float, float] = (5.0, 3.8), **kw
) -> tuple[Figure, list]:
    ncols = ncols or n_panels
    nrows = math.ceil(n_panels / ncols)
    with sns.axes_style("whitegrid"):
        fig = Figure(figsize=(panel[0] * ncols, panel[1] * nrows), layout="constrained")
        axes = fig.subplots(nrows, ncols, squeeze=False, **kw).ravel().tolist()
    for ax in axes[n_panels:]:
        ax.set_visible(False)
    return fig, axes[:n_panels]


def _labelled(frame: pd.DataFrame) -> pd.DataFrame:
    """Adds ``label``: the policy name, with " (oracle)" for oracles."""
    frame = frame.copy()
    policy = frame["policy"].astype(str)
    if "oracle" in frame:
        policy = policy.where(~frame["oracle"].astype(bool), policy + " (oracle)")
    frame["label"] = policy
    return frame


def _palette(frame: pd.DataFrame) -> tuple[list[str], dict[str, tuple]]:
    order = list(dict.fromkeys(frame["label"]))
    colors = sns.color_palette("tab10", len(order)) if order else []
    return order, dict(zip(order, colors, strict=True))


def _dashes(order: Sequence[str]) -> dict[str, tuple]:
    return {name: (4, 2) if name.endswith("(oracle)") else "" for name in order}


def _lines(
    ax,
    frame: pd.DataFrame,
    x: str,
    y: str,
    order,
    palette,
    *,
    legend: bool,
    bounds: tuple[float, float] | None = None,
    **kw,
) -> None:
    if frame.empty:
        ax.text(0.5, 0.5, "no data", ha="center", va="center", transform=ax.transAxes)
        return
    sns.lineplot(
        data=frame,
        x=x,
        y=y,
        hue="label",
        hue_order=order,
        palette=palette,
        style="label",
        style_order=order,
        dashes=_dashes(order),
        errorbar=_band(bounds),
        ax=ax,
        legend=legend,
        **kw,
    )
    if legend and ax.get_legend() is not None:
        ax.get_legend().set_title("policy")


def _shared_legend(fig: Figure, axes: list, title: str | None = "policy") -> None:
    """One legend for the figure, taken from the first panel that has one."""
    for ax in axes:
        legend = ax.get_legend()
        if legend is not None:
            handles, labels = ax.get_legend_handles_labels()
            legend.remove()
            fig.legend(handles, labels, title=title, loc="outside right upper")
            return


# ----------------------------------------------------------------------------- curves
def plot_metric_curves(
    curves: pd.DataFrame, metrics: Sequence[str] | None = None, title: str | None = None
) -> Figure:
    """One panel per metric over time (days), a line per policy with a 95% band over
    replications. ``curves``: :func:`recsim.analysis.metric_curves` output."""
    metrics = list(metrics or dict.fromkeys(curves["metric"]))
    frame = _labelled(curves)
    order, palette = _palette(frame)
    fig, axes = _figure(len(metrics), ncols=min(len(metrics), 3))
    for i, (ax, metric) in enumerate(zip(axes, metrics, strict=True)):
        sub = frame[frame["metric"] == metric]
        _lines(
            ax,
            sub,
            "day",
            "value",
            order,
            palette,
            legend=i == 0,
            bounds=_BOUNDS.get(metric),
            marker="o",
            markersize=3,
        )
        ax.set_xlabel(label("day"))
        ax.set_ylabel(label(metric))
    _shared_legend(fig, axes)
    if title:
        fig.suptitle(title)
    return fig


def plot_drift(drift: pd.DataFrame) -> Figure:
    """Drift over time: consumed extremeness, appetite and topic drift per policy (95% bands
    over replications). ``drift``: :func:`recsim.analysis.drift_curves` output."""
    return plot_metric_curves(drift, title="Drift toward extreme content over the horizon")


def plot_proxy_validity(validity: pd.DataFrame) -> Figure:
    """Does the proxy still rank items by what they are worth? Left: proxy validity (Spearman
    ρ between expected watch time and value on a panel no policy chose; the dotted line is 0,
    a proxy that says nothing about value); right: the value per slot lost by ranking by the
    proxy. Per policy, 95% bands over replications. ``validity``:
    :func:`recsim.analysis.proxy_validity` output."""
    frame = _labelled(validity)
    order, palette = _palette(frame)
    fig, (left, right) = _figure(2, panel=(6.0, 4.2))
    _lines(left, frame, "day", "validity", order, palette, legend=True, bounds=(-1.0, 1.0), marker="o", markersize=3)
    left.axhline(0.0, color="0.4", lw=0.8, ls=":")
    left.set_xlabel(label("day"))
    left.set_ylabel("Spearman ρ, proxy vs value")
    left.set_title("Proxy validity")
    _lines(right, frame, "day", "regret", order, palette, legend=False, marker="o", markersize=3)
    right.set_xlabel(label("day"))
    right.set_ylabel("value lost per slot")
    right.set_title("Value lost by ranking by the proxy")
    _shared_legend(fig, [left, right])
    return fig


def plot_survival(survival: pd.DataFrame) -> Figure:
    """Retention: share of users not churned (left) and share active per bucket (right),
    per policy with 95% bands. ``survival``: :func:`recsim.analysis.survival_curves` output."""
    frame = _labelled(survival)
    order, palette = _palette(frame)
    fig, axes = _figure(2)
    _lines(
        axes[0],
        frame[frame["metric"] == "survival"],
        "day",
        "value",
        order,
        palette,
        legend=True,
        bounds=(0.0, 1.0),
        drawstyle="steps-post",
    )
    _lines(
        axes[1],
        frame[frame["metric"] == "active_share"],
        "day",
        "value",
        order,
        palette,
        legend=False,
        bounds=(0.0, 1.0),
        marker="o",
        markersize=3,
    )
    for ax, metric in zip(axes, ("survival", "active_share"), strict=True):
        ax.set_xlabel(label("day"))
        ax.set_ylabel(label(metric))
    axes[0].set_title("Survival (churn is permanent)")
    axes[1].set_title("Activity per metrics bucket")
    _shared_legend(fig, axes)
    return fig


# ----------------------------------------------------------------------------- trade-off
def plot_tradeoff(tradeoff: pd.DataFrame, reference: str | None = None) -> Figure:
    """Engagement (x) against wellbeing (y), one point per policy with 95% CI error bars in
    both directions. ``tradeoff``: :func:`recsim.analysis.tradeoff` output. A policy to the
    right and below another bought watch time with wellbeing: the Goodhart pattern."""
    frame = _labelled(tradeoff)
    order, palette = _palette(frame)
    fig, (ax,) = _figure(1, panel=(7.5, 5.0))
    for _, row in frame.iterrows():
        x, y = row["engagement"], row["wellbeing"]
        xerr = [[x - row["engagement_ci_low"]], [row["engagement_ci_high"] - x]]
        yerr = [[y - row["wellbeing_ci_low"]], [row["wellbeing_ci_high"] - y]]
        xerr = None if np.isnan(xerr).any() else xerr
        yerr = None if np.isnan(yerr).any() else yerr
        marker = "D" if row["oracle"] else "o"
        ax.errorbar(
            x,
            y,
            xerr=xerr,
            yerr=yerr,
            fmt=marker,
            ms=8,
            capsize=3,
            color=palette[row["label"]],
            label=row["label"],
        )
        ax.annotate(row["label"], (x, y), xytext=(6, 6), textcoords="offset points", fontsize=9)
    if frame["wellbeing_metric"].iloc[0].endswith("change"):
        ax.axhline(0.0, color="0.4", lw=0.8, ls=":")
    ax.set_xlabel(label(frame["engagement_metric"].iloc[0]))
    ax.set_ylabel(label(frame["wellbeing_metric"].iloc[0]))
    ax.set_title("Engagement against wellbeing (mean ± 95% CI over replications)")
    ax.margins(0.15)
    return fig


def plot_goodhart_gap(gap: pd.DataFrame) -> Figure:
    """The Goodhart gap against the reference policy, per policy: relative watch-time gain
    (%), difference in final wellbeing and difference in consumed extremeness, with paired
    95% intervals where there are enough replications (bars without whiskers otherwise).
    ``gap``: :func:`recsim.analysis.goodhart_gap` output."""
    if gap.empty:
        fig, (ax,) = _figure(1, panel=(6.0, 2.5))
        ax.text(
            0.5,
            0.5,
            "no policy to compare with the reference",
            ha="center",
            va="center",
            transform=ax.transAxes,
        )
        ax.set_axis_off()
        return fig
    frame = _labelled(gap)
    order = list(dict.fromkeys(frame["label"]))
    reference = str(gap["reference"].iloc[0]) if len(gap) else "?"
    # the reference takes its colour in the other plots (its place in the scenario's order is
    # not known here; neutral references usually come first)
    _, palette = _palette(pd.DataFrame({"label": [reference, *order]}))
    quantities = list(dict.fromkeys(frame["quantity"]))
    fig, axes = _figure(len(quantities), panel=(4.6, max(2.5, 0.6 * len(order) + 1.2)), sharey=True)
    for ax, quantity in zip(axes, quantities, strict=True):
        sub = frame[frame["quantity"] == quantity].set_index("label").reindex(order)
        scale = 100.0 if quantity == "goodhart_watch_gain" else 1.0
        mean = sub["mean"].to_numpy(dtype=float) * scale
        low = sub["ci_low"].to_numpy(dtype=float) * scale
        high = sub["ci_high"].to_numpy(dtype=float) * scale
        err = np.vstack([mean - low, high - mean])
        err = np.where(np.isnan(err), 0.0, err)
        y = np.arange(len(order))
        ax.barh(y, np.nan_to_num(mean), xerr=err, capsize=3, color=[palette[n] for n in order])
        ax.set_yticks(y, order)
        ax.axvline(0.0, color="0.3", lw=0.8)
        ax.set_xlabel(label(quantity))
    if axes:
        axes[0].invert_yaxis()  # shared y: once
        axes[0].set_ylabel("policy")
    fig.suptitle(f"Goodhart gap against {reference} (paired over replications; 95% CI: Fieller's for the "
                 "watch-time gain, paired t otherwise)")
    return fig


# ----------------------------------------------------------------------------- rabbit holes
def plot_transition_matrix(transitions: pd.DataFrame, ncols: int = 3) -> Figure:
    """Transition probabilities between extremeness bins of successive watched items, one
    heat map per policy (row = bin of the item watched, column = bin of the next one; rows
    sum to 1). ``transitions``: :func:`recsim.analysis.transition_matrix` output (counts are
    pooled over replications if it has them)."""
    frame = _labelled(transitions)
    keys = ["label", "from_bin", "to_bin", "from_label", "to_label"]
    pooled = frame.groupby(keys, sort=False, as_index=False)["count"].sum()
    totals = pooled.groupby(["label", "from_bin"])["count"].transform("sum")
    pooled["probability"] = pooled["count"] / totals.where(totals > 0)
    order = list(dict.fromkeys(pooled["label"]))
    fig, axes = _figure(len(order), ncols=min(ncols, len(order)), panel=(4.6, 4.0))
    for i, (ax, name) in enumerate(zip(axes, order, strict=True)):
        sub = pooled[pooled["label"] == name]
        table = sub.pivot(
            index=["from_bin", "from_label"], columns=["to_bin", "to_label"], values="probability"
        )
        table.index = table.index.get_level_values(1)
        table.columns = table.columns.get_level_values(1)
        sns.heatmap(
            table,
            vmin=0,
            vmax=1,
            cmap="rocket_r",
            annot=True,
            fmt=".2f",
            annot_kws={"fontsize": 7},
            cbar=i == len(order) - 1,
            square=True,
            ax=ax,
            cbar_kws={"label": "P(next bin | this bin)"},
        )
        n = int(sub["count"].sum())
        ax.set_title(f"{name}  (n = {n:,} transitions)", fontsize=10)
        ax.set_xlabel("extremeness e of the next item watched")
        ax.set_ylabel("extremeness e of the item watched")
        ax.tick_params(axis="x", labelrotation=45)
    fig.suptitle("Rabbit-hole transitions between extremeness bins")
    return fig


def plot_reach_probability(reach: pd.DataFrame, n_items: int | None = None) -> Figure:
    """Chance of reaching the top (extreme) bin: left, within ``n_items`` items (default the
    largest computed) from each starting bin, per policy; right, from the mildest bin as a
    function of the number of items. ``reach``: :func:`recsim.analysis.reach_top_probability`
    output (bars show 95% CIs over replications if it has them)."""
    frame = _labelled(reach)
    order, palette = _palette(frame)
    n_items = int(n_items or frame["n_items"].max())
    fig, axes = _figure(2, panel=(6.0, 4.2))
    at_n = frame[frame["n_items"] == n_items]
    sns.barplot(
        data=at_n,
        x="start_label",
        y="probability",
        hue="label",
        hue_order=order,
        palette=palette,
        errorbar=_band((0.0, 1.0)) if "replication" in at_n else None,
        ax=axes[0],
    )
    axes[0].set_xlabel("extremeness bin of the starting item")
    axes[0].set_ylabel(f"P(extreme item within {n_items} items)")
    axes[0].set_ylim(0, 1)
    axes[0].tick_params(axis="x", labelrotation=30)
    mild = frame[frame["start_bin"] == frame["start_bin"].min()]
    _lines(axes[1], mild, "n_items", "probability", order, palette, legend=True, bounds=(0.0, 1.0))
    axes[1].set_xlabel("items watched from a mild start")
    axes[1].set_ylabel("P(extreme item reached)")
    axes[1].set_ylim(0, 1)
    if axes[0].get_legend() is not None:
        axes[0].get_legend().remove()
    _shared_legend(fig, [axes[1]])
    fig.suptitle("How fast do users reach extreme content? (Markov chain of watched items)")
    return fig


# ----------------------------------------------------------------------------- users
def plot_user_trajectory(trajectory: pd.DataFrame) -> Figure:
    """One user's path under each policy: the true extremeness of every item watched (dots)
    and its rolling mean (line), with the user's appetite at t = 0 (dotted); cumulative watch
    minutes (the proxy) and cumulative true value (hidden) over time.
    ``trajectory``: :func:`recsim.analysis.user_trajectory` output."""
    frame = _labelled(trajectory)
    order, palette = _palette(frame)
    fig, axes = _figure(3, panel=(5.0, 3.8))
    if frame.empty:
        for ax in axes:
            ax.text(
                0.5,
                0.5,
                "this user watched nothing",
                ha="center",
                va="center",
                transform=ax.transAxes,
            )
        return fig
    sns.scatterplot(
        data=frame,
        x="day",
        y="true_extremeness",
        hue="label",
        hue_order=order,
        palette=palette,
        s=10,
        alpha=0.35,
        legend=False,
        ax=axes[0],
    )
    for name, sub in frame.groupby("label", sort=False):
        dashes = (4, 2) if name.endswith("(oracle)") else (None, None)
        axes[0].plot(
            sub["day"], sub["rolling_extremeness"], color=palette[name], lw=1.6, dashes=dashes
        )
        axes[1].plot(
            sub["day"],
            sub["cumulative_watch_minutes"],
            color=palette[name],
            lw=1.6,
            dashes=dashes,
            label=name,
        )
        axes[2].plot(
            sub["day"], sub["cumulative_value"], color=palette[name], lw=1.6, dashes=dashes
        )
    initial = frame["initial_appetite"].dropna()
    if len(initial):
        axes[0].axhline(float(initial.iloc[0]), color="0.3", ls=":", lw=1)
        axes[0].annotate(
            "appetite at t = 0",
            (0.01, float(initial.iloc[0])),
            fontsize=8,
            xycoords=("axes fraction", "data"),
            xytext=(0, 3),
            textcoords="offset points",
        )
    axes[0].set_ylabel("true extremeness e of watched item (0–1)")
    axes[1].set_ylabel("cumulative watch time (min)")
    axes[2].set_ylabel("cumulative true value (Σ V)")
    axes[2].axhline(0.0, color="0.4", lw=0.8, ls=":")
    for ax in axes:
        ax.set_xlabel(label("day"))
    handles, labels = axes[1].get_legend_handles_labels()
    fig.legend(handles, labels, title="policy", loc="outside right upper")
    user = int(frame["user_id"].iloc[0])
    fig.suptitle(
        f"User {user}, replication {int(frame['replication'].iloc[0])}: "
        "what the proxy sees vs what the user gets"
    )
    return fig


def plot_wellbeing_change(outcomes: pd.DataFrame) -> Figure:
    """Distribution over users of final − initial wellbeing W, per policy: a violin (dashed
    lines: quartiles) with every user as a dot (vulnerable users in red), pooled over
    replications.
    ``outcomes``: :func:`recsim.analysis.user_outcomes` output."""
    frame = _labelled(outcomes)
    order, palette = _palette(frame)
    fig, (ax,) = _figure(1, panel=(max(6.0, 1.5 * len(order) + 2), 4.5))
    # violins rather than boxes: seaborn's boxplot uses a matplotlib argument deprecated in 3.11
    sns.violinplot(
        data=frame,
        x="label",
        y="wellbeing_change",
        order=order,
        hue="label",
        hue_order=order,
        palette=palette,
        inner="quart",
        cut=0,
        density_norm="width",
        width=0.75,
        alpha=0.45,
        linewidth=0.8,
        ax=ax,
        legend=False,
    )
    frame["group"] = np.where(frame["vulnerable"].astype(bool), "vulnerable", "others")
    sns.stripplot(
        data=frame,
        x="label",
        y="wellbeing_change",
        order=order,
        hue="group",
        hue_order=["others", "vulnerable"],
        palette={"others": "0.35", "vulnerable": "tab:red"},
        size=2.5,
        alpha=0.6,
        jitter=0.25,
        ax=ax,
    )
    ax.axhline(0.0, color="0.4", lw=0.8, ls=":")
    ax.set_xlabel("policy")
    ax.set_ylabel(label("wellbeing_change") + " per user")
    ax.tick_params(axis="x", labelrotation=20)
    if ax.get_legend() is not None:
        ax.get_legend().set_title("users")
    ax.set_title("Who ends up worse off: final − initial wellbeing, one dot per user")
    return fig


def plot_who_drifts(outcomes: pd.DataFrame, y: str = "appetite_change", ncols: int = 3) -> Figure:
    """Which users drift: ``y`` (default the change of hidden appetite) against the natural
    appetite a₀, one panel per policy, vulnerable users in red, dot size by susceptibility.
    ``outcomes``: :func:`recsim.analysis.user_outcomes` output."""
    frame = _labelled(outcomes)
    frame["group"] = np.where(frame["vulnerable"].astype(bool), "vulnerable", "others")
    order = list(dict.fromkeys(frame["label"]))
    fig, axes = _figure(
        len(order), ncols=min(ncols, len(order)), panel=(4.6, 3.8), sharex=True, sharey=True
    )
    for i, (ax, name) in enumerate(zip(axes, order, strict=True)):
        sns.scatterplot(
            data=frame[frame["label"] == name],
            x="appetite0",
            y=y,
            hue="group",
            hue_order=["others", "vulnerable"],
            palette={"others": "0.4", "vulnerable": "tab:red"},
            size="susceptibility",
            sizes=(8, 60),
            alpha=0.6,
            ax=ax,
            legend=i == 0,
        )
        ax.axhline(0.0, color="0.4", lw=0.8, ls=":")
        ax.set_title(name, fontsize=10)
        ax.set_xlabel(label("appetite0"))
        ax.set_ylabel(label(y))
    _shared_legend(fig, axes, title=None)
    fig.suptitle("Who falls in: drift by natural appetite and susceptibility")
    return fig


# ----------------------------------------------------------------------------- sweeps
def plot_sweep_heatmap(
    table: pd.DataFrame,
    title: str | None = None,
    value_label: str | None = None,
    center: float | None = None,
    fmt: str = ".3g",
) -> Figure:
    """A heat map over two swept parameters. ``table``: :func:`recsim.analysis.sweep_table`
    output (rows: the y parameter, columns: the x parameter). ``center`` (e.g. 0 for
    differences) switches to a diverging palette."""
    fig, (ax,) = _figure(
        1, panel=(1.3 * max(3, table.shape[1]) + 2.5, 0.9 * max(3, table.shape[0]) + 1.5)
    )
    limits = {}
    if center is not None:  # symmetric limits rather than seaborn's `center` (which warns)
        spread = (
            float(np.nanmax(np.abs(table.to_numpy(dtype=float) - center))) if table.size else 0.0
        )
        spread = spread if np.isfinite(spread) and spread > 0 else 1.0
        limits = {"vmin": center - spread, "vmax": center + spread}
    cmap = "vlag" if center is not None else "rocket_r"
    sns.heatmap(
        table,
        annot=True,
        fmt=fmt,
        cmap=cmap,
        ax=ax,
        cbar_kws={"label": value_label or "value"},
        **limits,
    )
    ax.set_xlabel(str(table.columns.name))
    ax.set_ylabel(str(table.index.name))
    if title:
        ax.set_title(title)
    return fig


# ----------------------------------------------------------------------------- learned models
#: The coefficients :func:`plot_learned_weights` shows by default (those the frame has): the
#: weights of each learned model on the extremeness-classifier score ê — ê, ê² and ê × the
#: user's mean ê (its interaction with the user's history); names as in
#: ``recsim.policies.learned`` (``learned()`` of each policy).
LEARNED_WEIGHTS: tuple[str, ...] = (
    "click_model.classifier",
    "click_model.classifier_sq",
    "click_model.classifier_x_user_classifier",
    "survey_model.classifier",
    "survey_model.classifier_sq",
    "bandit.classifier",
    "bandit.classifier_sq",
    "bandit.classifier_x_user_classifier",
)

_MODEL_UNITS = {
    "click_model": "click model weight (log-odds per unit)",
    "click_model_std": "click model weight (log-odds per SD)",
    "survey_model": "survey model weight (answer points per unit)",
    "bandit": "bandit weight (watch min per impression per unit)",
    "penalty": "penalty (watch min per unit)",
    "blend": "blend weight",
}
_FEATURE_TEXT = {
    "intercept": "intercept",
    "relevance": "topic relevance",
    "relevance_sq": "relevance²",
    "classifier": "classifier score ê",
    "classifier_sq": "ê²",
    "classifier_x_user_classifier": "ê × user's mean ê",
    "user_classifier": "user's mean ê",
    "log_length": "log length",
    "log_age_days": "log(1 + age in days)",
    "user_activity": "user activity",
    "log_position": "log slate position",
}


def _weight_label(name: str) -> tuple[str, str]:
    """(panel title, y label) of a coefficient name such as ``click_model.classifier``."""
    model, _, feature = name.partition(".")
    if not feature:
        return name, "value"
    title = f"{model.replace('_', ' ')}: {_FEATURE_TEXT.get(feature, feature.replace('_', ' '))}"
    return title, _MODEL_UNITS.get(model, f"{model.replace('_', ' ')} weight")


def plot_learned_weights(
    weights: pd.DataFrame, names: Sequence[str] | None = None, ncols: int = 3
) -> Figure:
    """What the learned rankers learned: one panel per coefficient over retrain time (days;
    warm-up retrains at negative days, the dotted line at 0 is the end of the warm-up), a line
    per policy with a 95% band over replications where there are several; the grey line is 0.
    ``weights``: :func:`recsim.analysis.learned_weights` output. ``names`` default to the
    weights on the extremeness classifier and its interaction with the user's history
    (:data:`LEARNED_WEIGHTS`) that the frame has; a positive weight on ê (for a given
    history) means the model predicts more watch time from more extreme-looking items."""
    present = list(dict.fromkeys(weights["name"])) if "name" in weights else []
    if names is None:
        names = [n for n in LEARNED_WEIGHTS if n in present]
    names = list(names)
    if not names:
        fig, (ax,) = _figure(1, panel=(6.0, 2.5))
        ax.text(
            0.5,
            0.5,
            "no learned policy reported its weights in this run",
            ha="center",
            va="center",
            transform=ax.transAxes,
        )
        ax.set_xlabel(label("day"))
        ax.set_ylabel("weight")
        return fig
    frame = _labelled(weights[weights["name"].isin(names)])
    order, palette = _palette(frame)
    fig, axes = _figure(len(names), ncols=min(ncols, len(names)), panel=(4.8, 3.6), sharex=True)
    for ax, name in zip(axes, names, strict=True):
        sub = frame[frame["name"] == name]
        _lines(ax, sub, "day", "value", order, palette, legend=False, marker="o", markersize=3)
        ax.axhline(0.0, color="0.4", lw=0.8)
        if len(sub) and float(sub["day"].min()) < 0:
            ax.axvline(0.0, color="0.4", lw=0.8, ls=":")
        title, ylabel = _weight_label(name)
        ax.set_title(title, fontsize=10)
        ax.set_xlabel(label("day"))
        ax.set_ylabel(ylabel)
        ax.tick_params(axis="x", labelbottom=True)
    # one legend for every policy of any panel (a policy may have only some of the weights)
    handles = [
        Line2D(
            [], [], color=palette[n], marker="o", markersize=3,
            dashes=_dashes(order)[n] or (None, None),
        )
        for n in order
    ]
    if handles:
        fig.legend(handles, order, title="policy", loc="outside right upper")
    default = all(n in LEARNED_WEIGHTS for n in names)
    fig.suptitle(
        "What the learner learned: weights on the extremeness classifier across retrains"
        if default
        else "What the learner learned: weights across retrains"
    )
    return fig


# ----------------------------------------------------------------------------- creators
#: The panels of :func:`plot_creators`: the mean true extremeness, quality and clickbait of the
#: items uploaded in each bucket, and the share of its impressions that went to the top 10% of
#: creators.
CREATOR_PANELS: tuple[str, ...] = (
    "upload_extremeness",
    "upload_quality",
    "upload_clickbait",
    "top_creator_share",
)

_CREATOR_TITLES = {
    "upload_extremeness": "Extremeness of new uploads",
    "upload_quality": "Quality of new uploads",
    "upload_clickbait": "Clickbait of new uploads",
    "top_creator_share": "Exposure concentration",
}


def plot_creators(
    curves: pd.DataFrame, metrics: Sequence[str] = CREATOR_PANELS, ncols: int = 2
) -> Figure:
    """What creators upload: one panel per creator metric over time (days since the end of the
    warm-up, a point per metrics bucket at its midpoint), a line per policy — by default the
    mean true extremeness, quality and clickbait of the items uploaded in each bucket and the
    share of its impressions that went to the top 10% of creators (:data:`CREATOR_PANELS`) —
    with the 95% band over replications where there are several (oracles dashed).
    ``curves``: :func:`recsim.analysis.creator_curves` output (means and intervals already
    taken). Panels of metrics the frame lacks say "no data"."""
    metrics = list(metrics)
    frame = _labelled(curves)
    order, palette = _palette(frame)
    dashes = _dashes(order)
    fig, axes = _figure(len(metrics), ncols=min(ncols, len(metrics)), panel=(5.0, 3.6), sharex=True)
    for ax, metric in zip(axes, metrics, strict=True):
        sub = frame[frame["metric"] == metric]
        if sub.empty:
            ax.text(0.5, 0.5, "no data", ha="center", va="center", transform=ax.transAxes)
        lo, hi = _BOUNDS.get(metric, (-math.inf, math.inf))
        for name in order:
            line = sub[sub["label"] == name].sort_values("day")
            if line.empty:
                continue
            ax.plot(
                line["day"],
                line["mean"],
                color=palette[name],
                marker="o",
                markersize=3,
                dashes=dashes[name] or (None, None),
                label=name,
            )
            low = np.clip(line["ci_low"].to_numpy(dtype=float), lo, hi)
            high = np.clip(line["ci_high"].to_numpy(dtype=float), lo, hi)
            ok = np.isfinite(low) & np.isfinite(high)
            if ok.any():
                ax.fill_between(
                    line["day"].to_numpy(dtype=float), low, high, where=ok,
                    color=palette[name], alpha=0.2, linewidth=0,
                )
        ax.set_title(_CREATOR_TITLES.get(metric, label(metric)), fontsize=10)
        ax.set_xlabel(label("day"))
        ax.set_ylabel(label(metric))
        ax.tick_params(axis="x", labelbottom=True)
    handles = [
        Line2D([], [], color=palette[n], marker="o", markersize=3, dashes=dashes[n] or (None, None))
        for n in order
    ]
    if handles:
        fig.legend(handles, order, title="policy", loc="outside right upper")
    fig.suptitle("What creators upload, as they adapt to what the ranker rewards")
    return fig
