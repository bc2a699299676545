"""The run report: every plot of :mod:`recsim.plots` as a PNG, and one self-contained
``report.html`` (the scenario, the summary and comparison tables, every plot) that works
offline: each image is embedded as a base64 data URI and links to its PNG beside it.

>>> from recsim.report import write_report
>>> write_report(Path("runs/rabbit_hole-20261127-101500"))   # → .../report/report.html
"""

from __future__ import annotations

import base64
import html
import math
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pandas as pd
import yaml
from matplotlib.figure import Figure

from . import analysis, plots
from .analysis import Run
from .creators import TOP_CREATOR_SHARE

__all__ = [
    "ReportPlot",
    "REPORT_PLOTS",
    "LEARNED_WEIGHTS_PLOT",
    "CREATORS_PLOT",
    "report_plots",
    "write_report",
]


@dataclass(frozen=True)
class ReportPlot:
    """One figure of the report: its PNG file stem, heading, caption and how to draw it."""

    name: str
    title: str
    caption: str
    draw: Callable[[Run], Figure]


def _trajectory_user(run: Run) -> tuple[int, str]:
    """The user to follow: in replication 0, the one whose appetite rose most under the
    non-oracle policy with the largest mean appetite change (the clearest rabbit hole)."""
    outcomes = analysis.user_outcomes(run)
    outcomes = outcomes[outcomes["replication"] == outcomes["replication"].min()]
    candidates = outcomes[~outcomes["oracle"].astype(bool)]
    if candidates.empty:
        candidates = outcomes
    by_policy = candidates.groupby("policy", sort=False)["appetite_change"].mean()
    policy = str(by_policy.idxmax())
    sub = candidates[candidates["policy"] == policy]
    user = int(sub.loc[sub["appetite_change"].idxmax(), "user_id"])
    return user, policy


def _draw_trajectory(run: Run) -> Figure:
    user, _ = _trajectory_user(run)
    return plots.plot_user_trajectory(analysis.user_trajectory(run, user, replication=0))


#: The report's figures, in order. ``transition_matrix`` and ``reach_top`` use at most the
#: first 20 000 users (ids are a random sample) to bound the work on very large runs.
REPORT_PLOTS: tuple[ReportPlot, ...] = (
    ReportPlot(
        "tradeoff",
        "Engagement against wellbeing",
        "Each point is a policy: mean watch minutes per user-day (x) against the change of mean "
        "hidden wellbeing W over the horizon (y), with 95% confidence intervals over "
        "replications. Far right and low is the Goodhart pattern: the proxy went up, the "
        "thing it stands for went down.",
        lambda run: plots.plot_tradeoff(analysis.tradeoff(run)),
    ),
    ReportPlot(
        "goodhart_gap",
        "The Goodhart gap",
        "Paired differences against the reference policy (same users, same random draws in "
        "every replication), as in comparison.csv: relative watch-time gain, difference in "
        "final mean wellbeing and in consumed extremeness, with 95% intervals over "
        "replications: Fieller's for the relative gain, paired t for the differences (none "
        "with one replication, very wide with two).",
        lambda run: plots.plot_goodhart_gap(analysis.goodhart_gap(run)),
    ),
    ReportPlot(
        "drift",
        "Drift over time",
        "Watch-time-weighted mean true extremeness of what users watched (per bucket), mean "
        "hidden appetite a and mean topic drift ‖θ − θ₀‖ (snapshots), per policy; bands are "
        "95% confidence intervals over replications.",
        lambda run: plots.plot_drift(analysis.drift_curves(run)),
    ),
    ReportPlot(
        "proxy_validity",
        "Proxy validity",
        "Left: in each day, the Spearman correlation, at each active user's hidden state, "
        "between the proxy (expected watch time of an impression) and the true value of an "
        "item before the cost of watching it, on a panel of random items no policy chose. "
        "Right: the value per slot lost by filling a slate by the proxy instead of by value. "
        "Goodhart's law predicts validity falls and the loss grows under optimization.",
        lambda run: plots.plot_proxy_validity(analysis.proxy_validity(run)),
    ),
    ReportPlot(
        "transition_matrix",
        "Rabbit-hole transitions",
        "Markov transition matrix between extremeness bins of successive items a user "
        "watched (pooled over users and replications); the last bin is the extreme content "
        "of the extreme-share metric. Mass above the diagonal is escalation.",
        lambda run: plots.plot_transition_matrix(analysis.transition_matrix(run, max_users=20_000)),
    ),
    ReportPlot(
        "reach_top",
        "Reaching extreme content",
        "Under each policy's transition matrix: the probability of watching an extreme item "
        "within 20 items from each starting bin (left, 95% CI over replications) and, from "
        "the mildest bin, as a function of the number of items (right).",
        lambda run: plots.plot_reach_probability(
            analysis.reach_top_probability(
                analysis.transition_matrix(run, by_replication=True, max_users=20_000), n_items=20
            )
        ),
    ),
    ReportPlot(
        "survival",
        "Retention",
        "Share of users who have not churned (churn is permanent) and share active per "
        "metrics bucket, with 95% bands over replications.",
        lambda run: plots.plot_survival(analysis.survival_curves(run)),
    ),
    ReportPlot(
        "wellbeing_change",
        "Distribution of wellbeing change",
        "Final minus initial hidden wellbeing W of every user (pooled over replications); "
        "vulnerable users (fast drifters) in red.",
        lambda run: plots.plot_wellbeing_change(analysis.user_outcomes(run)),
    ),
    ReportPlot(
        "who_drifts",
        "Who falls in",
        "Change of hidden appetite against each user's natural appetite a₀, per policy; red "
        "dots are vulnerable users, dot size is susceptibility.",
        lambda run: plots.plot_who_drifts(analysis.user_outcomes(run)),
    ),
    ReportPlot(
        "user_trajectory",
        "One user's path",
        "The user whose appetite rose most under the most drifting non-oracle policy "
        "(replication 0), followed under every policy: the true extremeness of each item "
        "watched (dots; line = rolling mean of 10 items), cumulative watch time (what the "
        "platform sees) and cumulative true value (what the user gets).",
        _draw_trajectory,
    ),
)


#: The figure of what the learned rankers learned, drawn (after ``drift``) only for runs with a
#: ``models`` table: a learned policy's coefficients after every retrain.
LEARNED_WEIGHTS_PLOT = ReportPlot(
    "learned_weights",
    "What the learner learned",
    "The weights each learned ranker's model put on the extremeness classifier score ê after "
    "every retrain (negative days: retrains on the warm-up's logs): the click model's "
    "log-odds weights on the raw features ê, ê² and ê × the user's mean ê (its interaction "
    "with the user's history), and the survey model's or the bandit's where the run has "
    "them; a line per policy with 95% bands over replications. With a negative weight on ê², "
    "the click model's predicted watch time peaks at ê* = −(w_ê + w_ê×u·u) / (2·w_ê²) for a "
    "user whose history has mean ê = u: an ê* above u is a learned pull toward items a little "
    "more extreme than what the user has been watching. The ranker of harm_penalized learns "
    "the same model and subtracts its penalty from the score.",
    lambda run: plots.plot_learned_weights(analysis.learned_weights(run)),
)


#: The section on adapting creators (``catalog.creators``), drawn (after ``drift`` and what the
#: learner learned) only for runs with creator metrics; :func:`write_report` puts a table of the
#: last bucket's figures above it.
CREATORS_PLOT = ReportPlot(
    "creators",
    "Creators who adapt",
    "What creators upload as they adapt (catalog.creators): in each metrics bucket, the mean "
    "true extremeness, quality and clickbait of the items uploaded in it, and the share of its "
    f"impressions that went to the top {TOP_CREATOR_SHARE:.0%} of creators; a line per policy "
    "with 95% bands over replications. Every period each creator's rule moves the hidden "
    "offsets of its next uploads (imitate, the default: toward the attributes of its own items "
    "that earned the most exposure in the period), so the catalog drifts toward what the ranker "
    "rewards; uploads before the first adaptation are the same under every policy (common "
    "random numbers).",
    lambda run: plots.plot_creators(analysis.creator_curves(run)),
)


def _has_creators(run: Run) -> bool:
    """Whether the run has creator metrics (a scenario with ``catalog.creators``)."""
    try:
        metrics = run.metrics
    except Exception:  # noqa: BLE001 — the figures that need the table say what is wrong
        return False
    return "metric" in metrics and bool(metrics["metric"].isin(analysis.CREATOR_METRICS).any())


def report_plots(run: Run) -> list[ReportPlot]:
    """The report's figures for ``run``: :data:`REPORT_PLOTS`, with
    :data:`LEARNED_WEIGHTS_PLOT` after ``drift`` when the run folder has a ``models`` table, and
    :data:`CREATORS_PLOT` after them when the run has creator metrics (``catalog.creators``)."""
    figures = list(REPORT_PLOTS)
    names = [p.name for p in figures]
    at = names.index("drift") + 1 if "drift" in names else len(figures)
    models = run.path / "models"
    if models.is_dir() and any(models.rglob("*.parquet")):
        figures.insert(at, LEARNED_WEIGHTS_PLOT)
        at += 1
    if _has_creators(run):
        figures.insert(at, CREATORS_PLOT)
    return figures


# ----------------------------------------------------------------------------- HTML pieces
_CSS = """
body { font-family: system-ui, -apple-system, Segoe UI, Roboto, sans-serif; margin: 2rem auto;
       max-width: 1200px; padding: 0 1rem; color: #222; line-height: 1.45; }
h1 { margin-bottom: .2rem; }
h2 { border-bottom: 1px solid #ddd; padding-bottom: .2rem; margin-top: 2.2rem; }
.meta { color: #555; } table { border-collapse: collapse; font-size: .88rem; margin: .6rem 0; }
th, td { border: 1px solid #ddd; padding: .25rem .5rem; text-align: right; white-space: nowrap; }
th:first-child, td:first-child { text-align: left; } thead th { background: #f4f4f4; }
.scroll { overflow-x: auto; } figure { margin: 1rem 0 2rem; } img { max-width: 100%; height: auto; }
figcaption { color: #444; font-size: .92rem; max-width: 60rem; } pre { background: #f7f7f7;
  padding: .8rem; overflow-x: auto; font-size: .82rem; } .oracle { color: #8a4baf; }
.error { color: #b00; } nav a { margin-right: .8rem; }
"""


def _fmt(value: object, digits: int = 4) -> str:
    if isinstance(value, (bool, np.bool_)):
        return "yes" if value else ""
    if isinstance(value, (int, np.integer)):
        return str(int(value))
    if isinstance(value, (float, np.floating)):
        if not math.isfinite(value):
            return "–"
        return f"{value:.{digits}g}"
    return html.escape(str(value))


def _table(frame: pd.DataFrame, index: bool = False) -> str:
    """A plain HTML table of ``frame``'s cells (numbers to 4 significant digits)."""
    cols = ([frame.index.name or ""] if index else []) + [str(c) for c in frame.columns]
    out = ['<div class="scroll"><table><thead><tr>']
    out += [f"<th>{html.escape(c)}</th>" for c in cols]
    out.append("</tr></thead><tbody>")
    for key, row in frame.iterrows():
        cells = ([html.escape(str(key))] if index else []) + [_fmt(v) for v in row.tolist()]
        out.append("<tr>" + "".join(f"<td>{c}</td>" for c in cells) + "</tr>")
    out.append("</tbody></table></div>")
    return "".join(out)


def _finite(value: object) -> bool:
    try:
        return math.isfinite(float(value))  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return False


def _interval(mean: float, low: float, high: float, scale: float = 1.0, digits: int = 4) -> str:
    """``mean [low, high]``; ``–`` for an undefined mean (missing, NaN or infinite)."""
    if not _finite(mean):
        return "–"
    text = f"{mean * scale:.{digits}g}"
    if _finite(low) and _finite(high):
        text += f" [{low * scale:.{digits}g}, {high * scale:.{digits}g}]"
    return text


def _summary_table(run: Run) -> str:
    """Metrics as rows, policies as columns: ``mean [95% CI]``."""
    summary = run.summary
    metrics = [
        c
        for c in summary.columns
        if f"{c}_ci_low" in summary.columns and not c.endswith(("_ci_low", "_ci_high"))
    ]
    columns = {}
    for _, row in summary.iterrows():
        name = str(row["policy"]) + (" (oracle)" if bool(row.get("oracle", False)) else "")
        cells = {
            "type": str(row.get("type", "")),
            "replications": str(row.get("n_replications", "")),
        }
        for m in metrics:
            cells[m] = _interval(
                float(row[m]), float(row[f"{m}_ci_low"]), float(row[f"{m}_ci_high"])
            )
        columns[name] = cells
    frame = pd.DataFrame(columns)
    frame.index.name = "metric"
    return _table(frame, index=True)


def _groups_table(groups: pd.DataFrame) -> str:
    """Rows policy × group, a column per metric of :func:`recsim.analysis.group_summary`."""
    rows = []
    for (policy, group), sub in groups.groupby(["policy", "group"], sort=False):
        row = {"policy": str(policy), "group": str(group)}
        for _, q in sub.iterrows():
            row[str(q["metric"]).replace("_", " ")] = _interval(q["mean"], q["ci_low"], q["ci_high"], 1.0, 3)
        rows.append(row)
    return _table(pd.DataFrame(rows))


#: the columns of the creators' table: metric → header
_CREATOR_COLUMNS = {
    "upload_extremeness": "upload extremeness",
    "upload_quality": "upload quality",
    "upload_clickbait": "upload clickbait",
    "top_creator_share": f"top {TOP_CREATOR_SHARE:.0%} creators' share of impressions",
}


def _creators_table(run: Run) -> str:
    """The last metrics bucket's creator figures per policy (rows), ``mean [95% CI]``."""
    curves = analysis.creator_curves(run, list(_CREATOR_COLUMNS))
    if curves.empty:
        return "<p>No creator metrics in this run.</p>"
    last = curves[curves["end"] == curves["end"].max()]
    start, end = float(last["start"].iloc[0]), float(last["end"].iloc[0])
    rows = []
    for policy, sub in last.groupby("policy", sort=False):
        row = {"policy": str(policy) + (" (oracle)" if bool(sub["oracle"].iloc[0]) else "")}
        for _, q in sub.iterrows():
            header = _CREATOR_COLUMNS[q["metric"]]
            row[header] = _interval(q["mean"], q["ci_low"], q["ci_high"], 1.0, 3)
        rows.append(row)
    n = int(last["n_replications"].max())
    text = (
        f"<p>The last metrics bucket (days {start / analysis.DAY:.3g}–{end / analysis.DAY:.3g}): "
        "the mean true extremeness, quality and clickbait of the items uploaded in it, and the "
        f"share of its impressions that went to the top {TOP_CREATOR_SHARE:.0%} of creators, "
        "per policy: mean "
        f"[Student-t 95% interval] over {n} replication{'s' if n != 1 else ''} (no interval "
        "with one). Each creator's offsets after every adaptation are in the run folder's "
        "<code>creators</code> table (<code>analysis.load_run(...).creators</code>).</p>"
    )
    return text + _table(pd.DataFrame(rows))


#: tables shown above a figure, by the figure's name
_SECTION_TABLES: dict[str, Callable[[Run], str]] = {CREATORS_PLOT.name: _creators_table}


def _gap_table(run: Run) -> str:
    gap = analysis.goodhart_gap(run)
    if gap.empty:
        return "<p>Only one policy: no gap to show.</p>"
    methods = gap.attrs.get("interval", {})
    n = int(gap.attrs.get("n_replications", 0))
    headers = {
        "goodhart_watch_gain": ("watch-time gain, % [95% CI, Fieller]", 100.0),
        "goodhart_wellbeing_change": ("final wellbeing difference [95% CI, paired t]", 1.0),
        "goodhart_extremeness_change": ("consumed extremeness difference [95% CI, paired t]", 1.0),
    }
    rows = []
    for policy, sub in gap.groupby("policy", sort=False):
        row = {"policy": str(policy) + (" (oracle)" if bool(sub["oracle"].iloc[0]) else "")}
        for _, q in sub.iterrows():
            header, scale = headers.get(q["quantity"], (q["quantity"], 1.0))
            cell = _interval(q["mean"], q["ci_low"], q["ci_high"], scale, 3)
            if n >= 2 and cell != "–" and not _finite(q["ci_low"]):
                cell += " [unbounded]"  # Fieller's, when the reference mean is ≈ 0
            row[header] = cell
        rows.append(row)
    reference = html.escape(str(gap["reference"].iloc[0]))
    described = "; ".join(
        f"{html.escape(q)}: {html.escape(m)}" for q, m in methods.items() if q in set(gap["quantity"])
    )
    text = (
        f"<p>Against <b>{reference}</b>, paired over {n} replication{'s' if n != 1 else ''} "
        "(common random numbers). Intervals — "
        f"{described or 'as in comparison.csv'} — are exact for normal replications; their "
        "coverage is measured in <code>tests/test_stats.py</code> (README \"Comparing policies, "
        "with uncertainty\").</p>"
    )
    note = gap.attrs.get("note", "")
    if note:
        text += f"<p class='error'>{html.escape(note)}.</p>"
    return text + _table(pd.DataFrame(rows))


def _image(path: Path) -> str:
    data = base64.b64encode(path.read_bytes()).decode("ascii")
    return (
        f'<a href="{html.escape(path.name)}"><img src="data:image/png;base64,{data}" '
        f'alt="{html.escape(path.stem)}"></a>'
    )


def _meta(run: Run) -> str:
    m, sc = run.manifest, run.scenario
    oracles = [p for p in run.policies if run.oracle[p]]
    items = [
        ("status", m.get("status")),
        ("seed", m.get("seed", sc.get("seed"))),
        ("population", f"{run.n_users} users"),
        (
            "horizon",
            f"{sc.get('horizon')} after a {sc.get('warmup')} warm-up under "
            f"{sc.get('warmup_policy', 'random')}",
        ),
        ("replications", run.n_replications),
        ("policies", ", ".join(run.policies)),
        ("oracles (upper bounds, read hidden state)", ", ".join(oracles) or "none"),
        ("times (UTC)", f"started {m.get('started_at', '?')}, results complete {m.get('finished_at', '?')}"),
        (
            "wall time",
            f"{m.get('wall_seconds', '?')} s on {m.get('workers', '?')} worker(s)"
            + (" (this attempt, which resumed an interrupted one)" if m.get("resumed") else ""),
        ),
        ("command", " ".join(map(str, m.get("command", [])))),
        ("versions", ", ".join(f"{k} {v}" for k, v in m.get("versions", {}).items())),
    ]
    cell = "<td style='text-align:left;white-space:normal'>"
    return (
        "<table>"
        + "".join(
            f"<tr><th>{html.escape(k)}</th>{cell}{html.escape(str(v))}</td></tr>" for k, v in items
        )
        + "</table>"
    )


# ----------------------------------------------------------------------------- entry point
def write_report(run_dir: Path, *, out: Path | None = None, dpi: int = 100,
                 manifest: dict | None = None, folder: Path | None = None) -> Path:
    """Write the report of the run folder ``run_dir`` into ``out`` (default
    ``<run_dir>/report/``): one PNG per figure of :func:`report_plots` (:data:`REPORT_PLOTS`,
    what the learned rankers learned if the run has a ``models`` table, and the "Creators who
    adapt" section, with a table of the last bucket, if it has creator metrics) and ``report.html``,
    which embeds every PNG (base64) and links to the file beside it, so it works offline and
    can be moved alone. Returns the path of ``report.html``.

    A figure that cannot be drawn (e.g. an empty event log) is reported in the HTML and as a
    warning instead of stopping the report.

    For a sweep folder (``recsim sweep``: ``grid.csv`` and ``points/point=<i>/``) each grid
    point gets its report in ``points/point=<i>/report/`` and ``report.html`` (in ``out``)
    is an index of them: the grid and the sweep's summary, with a link to each point's.

    ``manifest`` (entries shown instead of the folder's own: status, times) and ``folder``
    (the run folder's path shown) are for a report written before the run is complete:
    ``recsim run`` writes it into the ``.partial`` folder and passes what the folder will say
    once renamed.
    """
    run_dir = Path(run_dir)
    if (run_dir / "grid.csv").exists() and (run_dir / "points").is_dir():
        return _write_sweep_report(run_dir, out=out, dpi=dpi)
    run = analysis.load_run(run_dir)
    if manifest is not None:
        run.manifest = {**run.manifest, **manifest}
    shown = Path(folder) if folder is not None else run.path
    out = Path(out) if out is not None else run.path / "report"
    out.mkdir(parents=True, exist_ok=True)

    figures = []
    for plot in report_plots(run):
        path = out / f"{plot.name}.png"
        try:
            fig = plot.draw(run)
            fig.savefig(path, dpi=dpi)
            figures.append((plot, path, None))
        except Exception as exc:  # noqa: BLE001 — one bad figure must not cost the report
            warnings.warn(f"report: cannot draw {plot.name}: {exc!r}", RuntimeWarning, stacklevel=2)
            figures.append((plot, None, f"{type(exc).__name__}: {exc}"))

    title = f"recsim report — {run.name}"
    description = str(run.scenario.get("description", "")).strip()
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>{html.escape(title)}</title><style>{_CSS}</style></head><body>",
        f"<h1>{html.escape(title)}</h1>",
        f'<p class="meta">Run folder <code>{html.escape(str(shown))}</code>; report written '
        f"{datetime.now(timezone.utc).isoformat(timespec='seconds')}.</p>",
    ]
    if description:
        parts.append(f"<p>{html.escape(description)}</p>")
    nav = ["<a href='#summary'>summary</a>", "<a href='#gap'>Goodhart gap</a>"]
    if run.comparison is not None:
        nav.append("<a href='#comparison'>comparison</a>")
    nav += [f"<a href='#{p.name}'>{html.escape(p.title.lower())}</a>" for p, _, _ in figures]
    nav.append("<a href='#scenario'>scenario</a>")
    parts.append("<nav>" + " ".join(nav) + "</nav>")
    parts.append("<h2>Run</h2>" + _meta(run))
    parts.append(
        "<h2 id='summary'>Summary</h2><p>Headline metrics over the horizon: mean "
        "[Student-t 95% confidence interval] over replications (no interval with one "
        "replication). Oracles read hidden state and are upper bounds, not rankers "
        "a platform could deploy.</p>" + _summary_table(run)
    )
    parts.append("<h2 id='gap'>Goodhart gap</h2>" + _gap_table(run))
    groups = analysis.group_summary(run)
    if groups is not None:
        parts.append(
            "<h2 id='groups'>Scripted users</h2><p>What the scripted users (sock puppets, "
            "<code>population.scripted</code>) got beside the modelled users, under each policy: "
            "mean [Student-t 95% interval] over replications. Every other figure of this report "
            "is the modelled users' only.</p>" + _groups_table(groups)
        )
    if run.comparison is not None:
        parts.append(
            "<h2 id='comparison'>Comparison</h2><p>From <code>comparison.csv</code>: "
            "paired differences of every headline metric against the reference "
            "policy.</p>" + _table(run.comparison)
        )
    for plot, path, error in figures:
        heading = f"<h2 id='{plot.name}'>{html.escape(plot.title)}</h2>"
        if plot.name in _SECTION_TABLES:  # a table above the figure (the creators' section)
            try:
                heading += _SECTION_TABLES[plot.name](run)
            except Exception as exc:  # noqa: BLE001 — nor one bad table
                warnings.warn(
                    f"report: cannot tabulate {plot.name}: {exc!r}", RuntimeWarning, stacklevel=2
                )
                reason = html.escape(f"{type(exc).__name__}: {exc}")
                heading += f"<p class='error'>This table could not be made: {reason}</p>"
        parts.append(heading + "<figure>")
        if path is not None:
            parts.append(_image(path))
        else:
            parts.append(
                f"<p class='error'>This figure could not be drawn: {html.escape(error or '')}</p>"
            )
        parts.append(f"<figcaption>{html.escape(plot.caption)}</figcaption></figure>")
    scenario_text = yaml.safe_dump(run.scenario, sort_keys=False, allow_unicode=True)
    parts.append(
        "<h2 id='scenario'>Scenario (resolved)</h2><details open><summary>scenario.yaml"
        f"</summary><pre>{html.escape(scenario_text)}</pre></details>"
    )
    parts.append("</body></html>")
    report = out / "report.html"
    report.write_text("\n".join(parts), encoding="utf-8")
    return report


def _write_sweep_report(sweep_dir: Path, *, out: Path | None, dpi: int) -> Path:
    """One report per grid point of a sweep folder, and an index ``report.html`` linking them."""
    import json
    import os

    out = Path(out) if out is not None else sweep_dir / "report"
    out.mkdir(parents=True, exist_ok=True)
    grid = pd.read_csv(sweep_dir / "grid.csv")
    links = []
    for point in grid["point"].tolist():
        folder = sweep_dir / "points" / f"point={int(point)}"
        if not folder.is_dir():
            links.append("(not run)")
            continue
        html_path = write_report(folder, dpi=dpi)
        target = os.path.relpath(html_path, out)
        links.append(f'<a href="{html.escape(target)}">point {int(point)}</a>')
    manifest = json.loads((sweep_dir / "manifest.json").read_text("utf-8"))
    title = f"recsim sweep report — {manifest.get('scenario', sweep_dir.name)}"
    rows = ['<div class="scroll"><table><thead><tr>']
    rows += [f"<th>{html.escape(str(c))}</th>" for c in [*grid.columns, "report"]]
    rows.append("</tr></thead><tbody>")
    for (_, row), link in zip(grid.iterrows(), links):
        cells = [_fmt(v) for v in row.tolist()] + [link]
        rows.append("<tr>" + "".join(f"<td>{c}</td>" for c in cells) + "</tr>")
    rows.append("</tbody></table></div>")
    summary = analysis.read_csv(sweep_dir / "summary.csv")
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>{html.escape(title)}</title><style>{_CSS}</style></head><body>",
        f"<h1>{html.escape(title)}</h1>",
        (
            f'<p class="meta">Sweep folder <code>{html.escape(str(sweep_dir))}</code>; report '
            f"written {datetime.now(timezone.utc).isoformat(timespec='seconds')}.</p>"
        ),
        "<h2>Grid points</h2><p>Each point's own report (plots and tables) is linked.</p>",
        "".join(rows),
        (
            "<h2>Summary</h2><p>Mean and 95% interval over replications, per point, policy and "
            "metric (<code>summary.csv</code>).</p>"
        )
        + _table(summary),
        "</body></html>",
    ]
    report = out / "report.html"
    report.write_text("\n".join(parts), encoding="utf-8")
    return report
