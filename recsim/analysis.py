"""Analysis of run folders: plain functions over a loaded run, returning tidy DataFrames.

Load a run with :func:`load_run`; every other function takes the :class:`Run` it returns
(the small tables are read on first use, the event log only when a function needs it, and
then only the rows and columns it needs, through ``pyarrow.dataset``).

Views of a run (each has a ``recsim.plots.plot_*`` counterpart):

- :func:`drift_curves` — consumed extremeness, appetite and topic drift over time;
- :func:`creator_curves` — what adapting creators upload over time (``catalog.creators``:
  true extremeness, quality and clickbait of new uploads, exposure concentration), mean and 95%
  interval over replications; :attr:`Run.creators` is each creator's offsets after each
  adaptation;
- :func:`tradeoff` and :func:`goodhart_gap` — engagement against wellbeing per policy, and
  the paired gap against a reference policy (:func:`paired_differences` in general);
- :func:`learned_weights` — what the learned rankers learned: their coefficients after each
  retrain (the ``models`` table);
- :func:`proxy_validity` — does the proxy still rank items by their value? (validity and
  top-k regret on a panel no policy chose, over time); :func:`watch_value_correlation` — rank
  correlation of watch time and value over the watched items;
- :func:`transition_matrix` and :func:`reach_top_probability` — rabbit-hole transitions
  between extremeness bins of successive watched items;
- :func:`survival_curves` — share of users not churned, and share active, over time;
- :func:`user_trajectory` — what one user watched, item by item, under each policy;
- :func:`user_outcomes` — one row per user: the distribution of final wellbeing change and
  who drifted (initial appetite, susceptibility, vulnerability).

Sweeps (the folder ``recsim sweep`` writes, see :func:`load_sweep`) have :func:`sweep_table`.

Conventions: times are in **seconds** since the end of the warm-up (column ``time``, or
``start``/``end`` for buckets) with ``day = time / 86400`` added for plotting; ``policy`` is a
string and rows come in the scenario's policy order; ``replication`` is an int; every table
that has a policy has its ``oracle`` flag.

Reading the files without this module: the partitioned tables take ``policy`` and
``replication`` from the folder names, so give readers their types (:data:`PARTITIONING` for
pandas and pyarrow, ``hive_schema`` for polars, ``hive_types`` for duckdb; README "Outputs"),
and read the CSV files with :func:`read_csv` (policy names stay text: ``007``, ``None``).
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable, Sequence
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.dataset as ds
import yaml
from scipy import stats as sps

from .config import hive_ambiguous, sampled_users
from .creators import CREATOR_METRICS
from .metrics import HEADLINE, spearman
from .stats import mean_ci

__all__ = [
    "Run",
    "load_run",
    "read_csv",
    "write_csv",
    "PARTITION_SCHEMA",
    "PARTITIONING",
    "hive_ambiguous",
    "latest_run",
    "read_events",
    "default_reference",
    "metric_curves",
    "drift_curves",
    "DRIFT_METRICS",
    "creator_curves",
    "CREATOR_METRICS",
    "tradeoff",
    "paired_differences",
    "goodhart_gap",
    "proxy_validity",
    "watch_value_correlation",
    "extremeness_edges",
    "transition_matrix",
    "transition_array",
    "reach_top_probability",
    "survival_curves",
    "user_trajectory",
    "user_outcomes",
    "load_sweep",
    "sweep_table",
]

DAY = 86400.0

#: The drift views of :func:`drift_curves`: watch-time-weighted mean true extremeness of what
#: was watched (flow), mean appetite a (state), mean ‖θ − θ₀‖ (state).
DRIFT_METRICS = ("consumed_extremeness", "mean_appetite", "topic_drift")

#: Types of the partition fields of ``events``, ``metrics``, ``users`` and ``models``.
PARTITION_SCHEMA = pa.schema([("policy", pa.string()), ("replication", pa.int32())])
#: Hive partitioning with those types: ``pd.read_parquet(run / "metrics",
#: partitioning=PARTITIONING)`` reads ``policy`` as text and ``replication`` as an int (without
#: it pandas makes both categories, and a policy named ``007`` the number 7).
PARTITIONING = ds.partitioning(PARTITION_SCHEMA, flavor="hive")
_PARTITIONING = PARTITIONING

#: Text columns of recsim's CSV files (never numbers or missing values: a policy may be
#: named ``007`` or ``None``).
TEXT_COLUMNS = ("policy", "reference", "type", "metric", "quantity", "interval", "interval_note")



def read_csv(path: str | Path) -> pd.DataFrame:
    """Read one of recsim's CSV files (``summary.csv``, ``replications.csv``,
    ``comparison.csv``, a sweep's ``results.csv``...): names stay text (a policy named
    ``007`` is not the number 7, one named ``None`` is not missing) and only empty cells are
    missing values. An empty file gives an empty frame."""
    try:
        return pd.read_csv(
            path, dtype={c: str for c in TEXT_COLUMNS}, keep_default_na=False, na_values=[""]
        )
    except pd.errors.EmptyDataError:
        return pd.DataFrame()


def write_csv(frame: pd.DataFrame, path: str | Path) -> None:
    """Write ``frame`` to ``path`` as CSV atomically (a temporary file beside it, then a
    rename): an interrupted write never leaves a truncated or empty file in its place.
    Missing values are written as empty cells."""
    import os

    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        frame.to_csv(tmp, index=False)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


# ----------------------------------------------------------------------------- loading
class Run:
    """A run folder, loaded lazily.

    Attributes read at construction: ``path``, ``scenario`` (the resolved scenario as plain
    data), ``manifest``, ``policies`` (names in scenario order) and ``oracle`` (name → flag).
    Tables read on first access: ``metrics``, ``users``, ``summary``, ``replications`` and
    ``comparison`` (``None`` without ``comparison.csv``), and the optional ``models``,
    ``groups`` and ``creators`` (``None`` when the run has none). The event log is never held:
    read the part you need with :meth:`events`, or scan :attr:`events_dataset` yourself.
    """

    def __init__(self, path: str | Path):
        self.path = Path(path)
        #: the sweep grid point this folder is (``points/point=<i>/`` of a sweep), else None
        self.point: int | None = _sweep_point(self.path)
        root = self.path.parent.parent if self.point is not None else self.path
        if not (root / "manifest.json").exists():
            raise FileNotFoundError(f"{self.path} is not a run folder (no manifest.json)")
        self.manifest: dict[str, Any] = json.loads((root / "manifest.json").read_text("utf-8"))
        self.scenario: dict[str, Any] = yaml.safe_load((root / "scenario.yaml").read_text("utf-8"))
        if self.point is not None:
            self.scenario = _point_scenario(self.scenario, self.point)
        self.policies: list[str] = [
            str(p["name"]) if isinstance(p, dict) else str(p) for p in self.scenario["policies"]
        ]
        flags = {str(p["name"]): bool(p.get("oracle", False)) for p in self.manifest.get("policies", [])}
        self.oracle: dict[str, bool] = {name: flags.get(name, False) for name in self.policies}

    def __repr__(self) -> str:
        return f"Run({str(self.path)!r}: {self.name}, policies={self.policies})"

    # ---- scenario facts used by the analyses
    @property
    def name(self) -> str:
        return str(self.scenario.get("name", self.path.name))

    @property
    def n_users(self) -> int:
        """Modelled users (the behaviour model's); scripted users, if any, come after them."""
        return int(self.scenario["population"]["n_users"])

    @property
    def scripted_groups(self) -> list[str]:
        """Names of the scripted user groups (``population.scripted``), in order; [] without."""
        return [str(g["name"]) for g in (self.scenario.get("population", {}).get("scripted") or [])]

    @property
    def n_replications(self) -> int:
        return int(self.scenario.get("replications", 1))

    @property
    def horizon(self) -> float:
        """Measured period, seconds."""
        return _seconds(self.scenario["horizon"])

    @property
    def metrics_interval(self) -> float:
        """Width of a metrics bucket, seconds."""
        return _seconds(self.scenario.get("outputs", {}).get("metrics_interval", DAY))

    @property
    def extreme_threshold(self) -> float:
        """Extremeness above which content counts as extreme (``outputs.extreme_threshold``)."""
        return float(self.scenario.get("outputs", {}).get("extreme_threshold", 0.4))

    @property
    def event_sample(self) -> float:
        """Share of users whose events are in the event log (``outputs.event_sample``, 1.0 =
        everyone). Below 1, analyses that read the event log cover only the sampled users
        (ids below :attr:`event_users`); the metrics and users tables cover every user."""
        default = self.scenario.get("outputs", {}).get("event_sample", 1.0)
        return float(self.manifest.get("event_sample", default))

    @property
    def event_users(self) -> int:
        """How many users have their events logged: ids ``0 .. event_users - 1``."""
        return sampled_users(self.event_sample, self.n_users)

    # ---- tables
    @cached_property
    def models(self) -> pd.DataFrame | None:
        """What learned policies learned after each retrain (the ``models`` table: ``time,
        name, value, oracle, policy, replication``), or None without one."""
        path = self.path / "models"
        return _read_partitioned(self, "models") if path.is_dir() and any(path.rglob("*.parquet")) else None

    @cached_property
    def creators(self) -> pd.DataFrame | None:
        """Adapting creators (``catalog.creators``), or None without them: the ``creators``
        table, one row per creator per adaptation per policy × replication (so
        ``n_creators × adaptations × policies × replications`` rows; the adaptations are at
        ``period, 2·period, …`` before the end of the horizon).

        Columns: ``time`` (seconds since the end of the warm-up: when the creators adapted),
        ``creator`` (id, ``0 … n_creators − 1``), ``impressions`` and ``watch_seconds`` (what
        the creator's items earned in the period that ended at ``time``), ``extremeness_offset,
        quality_offset, clickbait_offset`` (its hidden offsets δ after the adaptation, in
        attribute units), ``style_extremeness, style_quality, style_clickbait`` (the expected
        true attributes of its next upload), ``oracle``, ``policy`` (text) and ``replication``
        (int). Rows by policy (scenario order), replication, time and creator."""
        path = self.path / "creators"
        if not (path.is_dir() and any(path.rglob("*.parquet"))):
            return None
        return _ordered(self, _read_partitioned(self, "creators"), "time", "creator")

    @cached_property
    def metrics(self) -> pd.DataFrame:
        """Tidy metrics of the modelled users: ``policy, replication, metric, kind, start, end,
        value, oracle`` (and ``group`` = ``modelled`` in a run with scripted users; every
        group's rows are in :attr:`group_metrics`)."""
        table = self.group_metrics
        if "group" in table:
            table = table[table["group"] == "modelled"].reset_index(drop=True)
        return table

    @cached_property
    def group_metrics(self) -> pd.DataFrame:
        """Tidy metrics of every user group (a ``group`` column with scripted users; else the
        same as :attr:`metrics`)."""
        return _read_partitioned(self, "metrics")

    @cached_property
    def users(self) -> pd.DataFrame:
        """Two rows per modelled user and task (``stage`` = initial | final), see README
        "Outputs"; scripted users are in :attr:`all_users`."""
        table = self.all_users
        if "group" in table:
            table = table[table["group"] == "modelled"].reset_index(drop=True)
        return table

    @cached_property
    def all_users(self) -> pd.DataFrame:
        """Two rows per user and task, scripted users included (a ``group`` column with them)."""
        return _read_partitioned(self, "users")

    @cached_property
    def groups(self) -> pd.DataFrame | None:
        """``groups.csv``: the headline figures of each scripted group per policy × replication
        (``policy, replication, group, metric, value``), or None without scripted users."""
        path = self.path / "groups.csv"
        return read_csv(path) if path.exists() else None

    @cached_property
    def summary(self) -> pd.DataFrame:
        """One row per policy: mean and 95% CI over replications of each headline metric."""
        return read_csv(self.path / "summary.csv")

    @cached_property
    def replications(self) -> pd.DataFrame:
        """One row per policy × replication: the headline metrics."""
        return read_csv(self.path / "replications.csv")

    @cached_property
    def comparison(self) -> pd.DataFrame | None:
        """``comparison.csv`` (paired differences against a reference policy) if the run has
        it (``None`` without one, or with an empty one: a run of one policy compares nothing)."""
        path = self.path / "comparison.csv"
        if not path.exists():
            return None
        table = read_csv(path)
        return None if table.empty or "policy" not in table else table

    @cached_property
    def events_dataset(self) -> ds.Dataset:
        """The event log as a ``pyarrow.dataset`` (nothing read yet), with ``policy`` (string)
        and ``replication`` (int32) partition fields."""
        return ds.dataset(self.path / "events", format="parquet", partitioning=_PARTITIONING)

    def events(self, columns: Sequence[str] | None = None, **filters: Any) -> pd.DataFrame:
        """Read part of the event log; see :func:`read_events` for the arguments."""
        return read_events(self, columns, **filters)


def load_run(path: str | Path) -> Run:
    """Open a run folder written by ``recsim run`` (or :func:`recsim.run_experiment`).

    Reads ``manifest.json`` and ``scenario.yaml`` now, every table on first use and the
    event log only through :meth:`Run.events`.
    """
    return Run(path)


def _sweep_point(path: Path) -> int | None:
    """``i`` if ``path`` is ``<sweep>/points/point=<i>`` of a sweep folder, else None."""
    match = re.fullmatch(r"point=([0-9]+)", path.name)
    if match is None or path.parent.name != "points" or (path / "manifest.json").exists():
        return None
    return int(match.group(1))


def _point_scenario(base: dict[str, Any], index: int) -> dict[str, Any]:
    """The scenario of grid point ``index`` of a sweep's resolved scenario (as plain data): the
    base with the point's swept values set (the grid is the product of the ``sweep`` values,
    in order, as :func:`recsim.sweep.grid_points` makes it)."""
    import copy
    import itertools

    from .config import set_path

    data = copy.deepcopy(base)
    sweep = data.pop("sweep", None) or {}
    combos = list(itertools.product(*sweep.values()))
    if not 0 <= index < len(combos):
        raise FileNotFoundError(f"the sweep has no grid point {index} ({len(combos)} points)")
    for path, value in zip(sweep, combos[index]):
        set_path(data, path, value, "scenario.yaml")
    return data


def latest_run(root: str | Path = "runs") -> Path:
    """The most recently modified complete run folder directly under ``root``."""
    root = Path(root)
    runs = [p for p in root.glob("*/manifest.json") if not p.parent.name.startswith(".")]
    runs = [p.parent for p in runs if json.loads(p.read_text("utf-8")).get("status") == "complete"]
    if not runs:
        raise FileNotFoundError(f"no complete run folder under {root.resolve()}")
    return max(runs, key=lambda p: p.stat().st_mtime)


def _seconds(value: Any) -> float:
    from .units import parse_duration

    return float(parse_duration(value))


def _read_partitioned(run: Run, table: str) -> pd.DataFrame:
    dataset = ds.dataset(run.path / table, format="parquet", partitioning=_PARTITIONING)
    return _ordered(run, dataset.to_table().to_pandas())


def _ordered(run: Run, frame: pd.DataFrame, *keys: str) -> pd.DataFrame:
    """Rows in scenario policy order, then by ``keys``; ``replication`` as int; fresh index."""
    if "replication" in frame:
        frame["replication"] = frame["replication"].astype(int)
    if "policy" not in frame:
        return frame.reset_index(drop=True)
    frame["policy"] = frame["policy"].astype(str)
    rank = {name: i for i, name in enumerate(run.policies)}
    order = frame["policy"].map(rank).fillna(len(rank))
    by = ["__order", *[k for k in ("replication", *keys) if k in frame]]
    frame = frame.assign(__order=order).sort_values(by, kind="stable").drop(columns="__order")
    return frame.reset_index(drop=True)


def read_events(
    run: Run | str | Path,
    columns: Sequence[str] | None = None,
    *,
    event: str | Iterable[str] | None = None,
    policy: str | Iterable[str] | None = None,
    replication: int | Iterable[int] | None = None,
    user_id: int | Iterable[int] | None = None,
    time: tuple[float, float] | None = None,
    filter: ds.Expression | None = None,
    scripted: bool = False,
) -> pd.DataFrame:
    """Read the rows and columns of the event log that are asked for, and nothing else.

    ``columns`` are event-log columns (``policy`` and ``replication`` are always added);
    ``event``, ``policy``, ``replication`` and ``user_id`` keep rows whose value is (one of)
    the given; ``time = (start, end)`` keeps ``start <= time < end`` (seconds); ``filter`` is
    any extra ``pyarrow.dataset`` expression. Filters are pushed down to the Parquet scan,
    so e.g. ``event="watch"`` never materializes the impression rows. Scripted users' rows
    (``population.scripted``, a ``group`` column names each row's group) are left out unless
    ``scripted``.
    """
    run = run if isinstance(run, Run) else load_run(run)
    dataset = run.events_dataset
    expr = filter
    if run.scripted_groups and not scripted:  # the modelled users only (ids below n_users)
        term = ds.field("user_id") < run.n_users
        expr = term if expr is None else expr & term
    for name, wanted in (
        ("event", event),
        ("policy", policy),
        ("replication", replication),
        ("user_id", user_id),
    ):
        if wanted is None:
            continue
        values = [wanted] if isinstance(wanted, (str, int, np.integer)) else list(wanted)
        term = ds.field(name).isin(values)
        expr = term if expr is None else expr & term
    if time is not None:
        term = (ds.field("time") >= time[0]) & (ds.field("time") < time[1])
        expr = term if expr is None else expr & term
    names = None
    if columns is not None:
        names = list(dict.fromkeys([*columns, "policy", "replication"]))
    # one fragment and batch at a time, no pre-buffering: memory stays at about one row group
    # whatever the size of the log (the defaults read several row groups of every column ahead)
    table = dataset.to_table(
        columns=names,
        filter=expr,
        fragment_readahead=1,
        batch_readahead=1,
        fragment_scan_options=ds.ParquetFragmentScanOptions(pre_buffer=False),
    )
    return _ordered(run, table.to_pandas())


def default_reference(run: Run) -> str:
    """The policy differences are taken against — the same rule as ``comparison.csv``: the
    scenario's ``reference``, else ``chronological`` if the run has it, else its first policy."""
    reference = run.scenario.get("reference")
    if reference:
        return str(reference)
    return "chronological" if "chronological" in run.policies else run.policies[0]


# ----------------------------------------------------------------------------- curves
def metric_curves(run: Run, metrics: Iterable[str]) -> pd.DataFrame:
    """Time series of metrics from the ``metrics`` table, tidy.

    Columns: ``policy, replication, oracle, metric, kind, start, end, time, day, value``.
    ``time`` (seconds) is the bucket midpoint for ``flow`` metrics and the snapshot time for
    ``state`` metrics; ``day = time / 86400``. One row per (policy, replication, metric, bucket).
    """
    metrics = list(metrics)
    frame = run.metrics
    frame = frame[frame["metric"].isin(metrics)].copy()
    frame["time"] = np.where(
        frame["kind"] == "flow", (frame["start"] + frame["end"]) / 2, frame["end"]
    )
    frame["day"] = frame["time"] / DAY
    cols = [
        "policy",
        "replication",
        "oracle",
        "metric",
        "kind",
        "start",
        "end",
        "time",
        "day",
        "value",
    ]
    rank = {m: i for i, m in enumerate(metrics)}
    frame = _ordered(
        run, frame[cols].assign(metric_rank=frame["metric"].map(rank)), "metric_rank", "time"
    )
    return frame.drop(columns="metric_rank")


def drift_curves(run: Run, metrics: Iterable[str] = DRIFT_METRICS) -> pd.DataFrame:
    """Drift over time per policy and replication: by default consumed extremeness (flow,
    watch-time-weighted mean true e of what was watched, 0–1), mean appetite a (state, 0–1)
    and topic drift (state, mean ‖θ − θ₀‖). Same columns as :func:`metric_curves`."""
    return metric_curves(run, metrics)


_CREATOR_CURVE_COLUMNS = [
    "policy",
    "oracle",
    "metric",
    "kind",
    "start",
    "end",
    "time",
    "day",
    "n_replications",
    "mean",
    "ci_low",
    "ci_high",
]


def creator_curves(
    run: Run | pd.DataFrame | str | Path,
    metrics: Iterable[str] = CREATOR_METRICS,
    level: float = 0.95,
) -> pd.DataFrame:
    """What adapting creators (``catalog.creators``) upload, over time, per policy: each
    metrics bucket's creator metrics (:data:`CREATOR_METRICS` by default: mean and SD of the
    true extremeness, quality and clickbait of the items uploaded in the bucket, the
    correlation across creators of the quality and clickbait of their styles, and the share of
    the bucket's impressions that went to the top 10% of creators), as the mean over
    replications with its Student-t interval (:func:`recsim.stats.mean_ci`: the interval of
    ``summary.csv`` and of the bands of :mod:`recsim.plots`; NaN with one replication).

    ``run``: a :class:`Run` (or its folder), or a tidy metrics table such as
    :attr:`Run.metrics` (``policy, replication, metric, kind, start, end, value`` and, if it
    has one, ``oracle``; policies then in the order they appear).

    Tidy, one row per (policy, metric, bucket): ``policy, oracle, metric, kind, start, end``
    (the bucket, seconds since the end of the warm-up), ``time`` (seconds: the bucket midpoint
    for ``flow`` metrics, its end for ``state`` ones, as :func:`metric_curves`), ``day`` (``time
    / 86400``), ``n_replications`` (replications with a value: an ``upload_*`` metric is NaN in
    a bucket without uploads), ``mean, ci_low, ci_high``. Rows by policy (scenario order),
    metric (the order of ``metrics``) and time; a run without creators gives an empty frame
    with these columns. ``frame.attrs["interval"]`` names the interval.
    """
    from .stats import T_INTERVAL

    if isinstance(run, pd.DataFrame):
        table = run
        policies = list(dict.fromkeys(table["policy"].astype(str)))
        flags = (
            table.groupby(table["policy"].astype(str), sort=False)["oracle"].first()
            if "oracle" in table
            else pd.Series(dtype=bool)
        )
        oracle = {p: bool(flags.get(p, False)) for p in policies}
    else:
        run = run if isinstance(run, Run) else load_run(run)
        table, policies, oracle = run.metrics, run.policies, run.oracle
    metrics = list(metrics)
    frame = table[table["metric"].astype(str).isin(metrics)]
    rows = []
    for (policy, metric, kind, start, end), group in frame.groupby(
        [frame["policy"].astype(str), frame["metric"].astype(str), frame["kind"].astype(str),
         "start", "end"],
        sort=False,
    ):
        values = group["value"].to_numpy(dtype=float)
        values = values[~np.isnan(values)]
        mean, low, high = mean_ci(values, level) if values.size else (math.nan, math.nan, math.nan)
        time = (start + end) / 2 if kind == "flow" else end
        rows.append(
            {
                "policy": policy,
                "oracle": bool(oracle.get(policy, False)),
                "metric": metric,
                "kind": kind,
                "start": float(start),
                "end": float(end),
                "time": float(time),
                "day": float(time) / DAY,
                "n_replications": int(values.size),
                "mean": mean,
                "ci_low": low,
                "ci_high": high,
            }
        )
    out = pd.DataFrame(rows, columns=_CREATOR_CURVE_COLUMNS)
    policy_rank = {p: i for i, p in enumerate(policies)}
    metric_rank = {m: i for i, m in enumerate(metrics)}
    out = (
        out.assign(
            policy_rank=out["policy"].map(policy_rank).fillna(len(policy_rank)),
            metric_rank=out["metric"].map(metric_rank),
        )
        .sort_values(["policy_rank", "metric_rank", "time"], kind="stable")
        .drop(columns=["policy_rank", "metric_rank"])
        .reset_index(drop=True)
    )
    out.attrs["interval"] = f"{level:.0%} {T_INTERVAL}"
    return out


# ----------------------------------------------------------------------------- trade-off
def tradeoff(
    run: Run,
    engagement: str = "watch_minutes_per_user_day",
    wellbeing: str = "wellbeing_change",
) -> pd.DataFrame:
    """Engagement against wellbeing, one row per policy (scenario order).

    Columns: ``policy, oracle, n_replications, engagement_metric, engagement,
    engagement_ci_low, engagement_ci_high, wellbeing_metric, wellbeing, wellbeing_ci_low,
    wellbeing_ci_high``: the mean over replications of the two headline metrics (names in
    ``*_metric``; by default watch minutes per user-day and final − initial mean W) with
    Student-t 95% intervals (NaN with one replication), as in ``summary.csv``.
    """
    reps = run.replications
    rows = []
    for policy in run.policies:
        group = reps[reps["policy"] == policy]
        row: dict[str, Any] = {
            "policy": policy,
            "oracle": run.oracle[policy],
            "n_replications": len(group),
        }
        for role, metric in (("engagement", engagement), ("wellbeing", wellbeing)):
            mean, low, high = mean_ci(group[metric].to_numpy())
            row.update(
                {
                    f"{role}_metric": metric,
                    role: mean,
                    f"{role}_ci_low": low,
                    f"{role}_ci_high": high,
                }
            )
        rows.append(row)
    return pd.DataFrame(rows)


def paired_differences(
    run: Run,
    reference: str | None = None,
    metrics: Iterable[str] = HEADLINE,
    *,
    relative: bool = False,
    level: float = 0.95,
) -> pd.DataFrame:
    """Per-replication differences of each policy against ``reference`` (paired: under
    common random numbers every policy of a replication meets the same users and draws).

    For each policy ≠ reference and metric, ``d_r = x_policy,r − x_reference,r``, then the
    mean of ``d`` with its paired t interval (:func:`recsim.stats.paired_t_ci`) and the
    two-sided paired t-test p-value (``scipy.stats``). With ``relative``, the relative
    difference of the means, ``mean(policy) / mean(reference) − 1``, with Fieller's interval
    (:func:`recsim.stats.ratio_ci`) — the same number and interval as ``comparison.csv``'s
    ``goodhart_watch_gain`` — and the same p-value (a ratio of 1 is a difference of 0).
    Intervals and p-values are NaN with fewer than 2 replications, and very wide with 2
    (t with 1 degree of freedom); coverage is measured in ``tests/test_stats.py``.
    Columns: ``policy, reference, oracle, metric, relative, n_replications, mean_difference,
    ci_low, ci_high, p_value``; one row per (policy, metric). ``frame.attrs["interval"]``
    names the interval.
    """
    from .stats import FIELLER, PAIRED_T, paired_t_ci, ratio_ci

    reference = reference or default_reference(run)
    if reference not in run.policies:
        raise ValueError(f"unknown reference policy {reference!r}; the run has {run.policies}")
    reps = run.replications
    base = reps[reps["policy"] == reference].set_index("replication")
    rows = []
    for policy in run.policies:
        if policy == reference:
            continue
        other = reps[reps["policy"] == policy].set_index("replication")
        shared = base.index.intersection(other.index)
        for metric in metrics:
            if metric not in reps:
                continue
            b = base.loc[shared, metric].to_numpy(dtype=float)
            a = other.loc[shared, metric].to_numpy(dtype=float)
            ok = np.isfinite(a) & np.isfinite(b)
            a, b = a[ok], b[ok]
            estimate, low, high = (ratio_ci if relative else paired_t_ci)(a, b, level)
            p = math.nan
            if a.size >= 2 and np.std(a - b) > 0:
                p = float(sps.ttest_1samp(a - b, 0.0).pvalue)
            rows.append(
                {
                    "policy": policy,
                    "reference": reference,
                    "oracle": run.oracle[policy],
                    "metric": metric,
                    "relative": relative,
                    "n_replications": int(a.size),
                    "mean_difference": float(estimate),
                    "ci_low": float(low),
                    "ci_high": float(high),
                    "p_value": p,
                }
            )
    frame = pd.DataFrame(
        rows,
        columns=[
            "policy",
            "reference",
            "oracle",
            "metric",
            "relative",
            "n_replications",
            "mean_difference",
            "ci_low",
            "ci_high",
            "p_value",
        ],
    )
    frame.attrs["interval"] = f"{level:.0%} {FIELLER if relative else PAIRED_T}"
    return frame


def goodhart_gap(run: Run, reference: str | None = None) -> pd.DataFrame:
    """The Goodhart gap of each policy against ``reference`` (README "Comparing policies"), as in
    ``comparison.csv`` (:func:`recsim.stats.compare`): ``goodhart_watch_gain`` — relative
    watch-time gain, mean(policy)/mean(reference) − 1 (0.5 = +50%), with Fieller's 95%
    interval; ``goodhart_wellbeing_change`` — difference of final mean wellbeing W, and
    ``goodhart_extremeness_change`` — difference of mean consumed extremeness, with paired t
    95% intervals over replications. No interval with one replication; with two, t has one
    degree of freedom and the intervals are very wide. Coverage of each is measured in
    ``tests/test_stats.py``.

    Read from the run's ``comparison.csv`` when it was made against ``reference`` by this
    version (it has an ``interval`` column; older files had bootstrap intervals that
    under-cover and are recomputed), computed from ``replications.csv`` otherwise (same
    function: same numbers). A policy with a large watch-time gain and a negative wellbeing
    change has optimized the proxy at the expense of what it stands for.

    Columns: ``policy, reference, oracle, quantity, mean, ci_low, ci_high``, three rows per
    policy other than the reference. ``frame.attrs["interval"]`` maps each quantity to the
    name of its interval, ``frame.attrs["n_replications"]`` is the smallest number of paired
    replications behind a row and ``frame.attrs["note"]`` what a reader must know about the
    intervals at that number (:func:`recsim.stats.interval_note`; empty when nothing).
    """
    from .stats import FIELLER, GOODHART, PAIRED_T, compare, interval_note

    reference = reference or default_reference(run)
    if reference not in run.policies:
        raise ValueError(f"unknown reference policy {reference!r}; the run has {run.policies}")
    table = run.comparison
    if (
        table is None
        or "interval" not in table
        or not (table["reference"] == reference).all()
        or not table["metric"].isin(GOODHART).any()
    ):
        reps = run.replications.copy()
        if "oracle" not in reps:
            reps["oracle"] = reps["policy"].map(run.oracle)
        table = compare(reps, reference, metrics=())
    columns = ["policy", "reference", "oracle", "quantity", "mean", "ci_low", "ci_high"]
    if not table.empty:
        table = table[table["metric"].isin(GOODHART)]
    n = int(table["n_replications"].min()) if len(table) else 0
    attrs = {
        "interval": {
            q: f"95% {FIELLER if q == 'goodhart_watch_gain' else PAIRED_T}" for q in GOODHART
        },
        "n_replications": n,
        "note": interval_note(n) if len(table) else "",
    }
    if table.empty:  # a run with one policy has nothing to compare
        frame = pd.DataFrame(columns=columns)
        frame.attrs.update(attrs)
        return frame
    frame = table.rename(columns={"metric": "quantity", "difference": "mean"})
    frame = frame.assign(oracle=frame["policy"].map(run.oracle))
    frame = frame[columns]
    rank = {q: i for i, q in enumerate(GOODHART)}
    frame = frame.assign(quantity_rank=frame["quantity"].map(rank))
    frame = _ordered(run, frame, "quantity_rank").drop(columns="quantity_rank")
    frame.attrs.update(attrs)
    return frame


#: Per-user columns of :func:`user_outcomes` that :func:`paired_user_differences` compares by
#: default.
USER_QUANTITIES = (
    "watch_minutes",
    "sessions",
    "value",
    "consumed_extremeness",
    "final_wellbeing",
    "wellbeing_change",
    "appetite_change",
    "topic_drift",
)


def paired_user_differences(
    run: Run,
    reference: str | None = None,
    columns: Iterable[str] = USER_QUANTITIES,
    *,
    where: Any = None,
    level: float = 0.95,
) -> pd.DataFrame:
    """Per-user paired differences of each policy against ``reference``, with an interval
    clustered by replication.

    Under common random numbers every user of a replication exists under every policy, so
    each user has a paired difference ``d = x_policy − x_reference`` of each per-user column
    of :func:`user_outcomes` (``watch_minutes``, ``sessions``, ``value`` are horizon totals;
    ``consumed_extremeness`` is the user's own watch-time-weighted mean, unweighted across
    users, so not the headline metric). The estimate is the mean of ``d`` over every user of
    every replication (pairs with a NaN dropped); the interval uses the replication-clustered
    CR2 standard error with t on G − 1 degrees of freedom (:func:`recsim.stats.clustered_mean_ci`)
    — users of one replication share a catalog and what the policies learned, so they are not
    independent. With every user present the interval is exactly the paired t interval of the
    per-replication means: per-user data give no narrower interval for the population mean
    than one number per replication (README "Comparing policies, with uncertainty"). What they
    add is subgroups: ``where`` is a function of the reference policy's :func:`user_outcomes`
    rows returning a boolean mask of the users to keep, e.g.
    ``where=lambda u: u["vulnerable"]`` (select on traits fixed before the horizon).

    Columns: ``policy, reference, oracle, quantity, n_replications`` (clusters with at least
    one user), ``n_users`` (pairs), ``mean_difference, ci_low, ci_high, level, interval``
    (the method's name), ``interval_note`` (:func:`recsim.stats.interval_note`) and
    ``design_effect`` — the clustered variance over the variance users
    would give if they were independent: how far off a per-user interval ignoring
    replications would be.
    """
    from .stats import CLUSTERED, clustered_mean_ci, interval_note

    reference = reference or default_reference(run)
    if reference not in run.policies:
        raise ValueError(f"unknown reference policy {reference!r}; the run has {run.policies}")
    columns = list(columns)
    outcomes = user_outcomes(run)
    keys = ["replication", "user_id"]
    base = outcomes[outcomes["policy"] == reference]
    if where is not None:
        base = base[np.asarray(where(base), dtype=bool)]
    base = base.set_index(keys)
    replications = sorted(outcomes["replication"].unique())
    rows = []
    for policy in run.policies:
        if policy == reference:
            continue
        other = outcomes[outcomes["policy"] == policy].set_index(keys)
        shared = base.index.intersection(other.index)
        for column in columns:
            if column not in outcomes:
                continue
            d = other.loc[shared, column].astype(float) - base.loc[shared, column].astype(float)
            d = d[np.isfinite(d.to_numpy())]
            by_rep = d.groupby(level="replication")
            sums = by_rep.sum().reindex(replications, fill_value=0.0).to_numpy(dtype=float)
            counts = by_rep.size().reindex(replications, fill_value=0).to_numpy(dtype=float)
            mean, low, high, se, g = clustered_mean_ci(sums, counts, level)
            n = len(d)
            iid_var = float(np.var(d.to_numpy(), ddof=1)) / n if n >= 2 else math.nan
            deff = float(se) ** 2 / iid_var if iid_var and iid_var > 0 else math.nan
            rows.append(
                {
                    "policy": policy,
                    "reference": reference,
                    "oracle": run.oracle[policy],
                    "quantity": column,
                    "n_replications": int(g),
                    "n_users": n,
                    "mean_difference": float(mean),
                    "ci_low": float(low),
                    "ci_high": float(high),
                    "level": level,
                    "interval": CLUSTERED,
                    "interval_note": interval_note(int(g), float(low), float(high)),
                    "design_effect": deff,
                }
            )
    return pd.DataFrame(
        rows,
        columns=[
            "policy",
            "reference",
            "oracle",
            "quantity",
            "n_replications",
            "n_users",
            "mean_difference",
            "ci_low",
            "ci_high",
            "level",
            "interval",
            "interval_note",
            "design_effect",
        ],
    )


__all__.append("paired_user_differences")


# ----------------------------------------------------------------------------- proxy validity
def proxy_validity(run: Run) -> pd.DataFrame:
    """How well the proxy ranks what it stands for, over time: the ``proxy_validity`` and
    ``proxy_regret`` metrics of each bucket, per policy and replication.

    In each bucket every active user is shown (in the simulation only) a panel of random
    available items no policy chose; ``validity`` is the Spearman correlation, at the user's
    hidden state, between the proxy the platform optimizes (expected watch time per
    impression) and the items' true value before the cost of watching them, averaged over
    users; ``regret`` is the value per slot lost by taking the top ``slate_size`` items by the
    proxy instead of by value. Goodhart's law predicts validity falls and regret grows as a
    policy optimizes the proxy. Columns: ``policy, replication, oracle, start, end, time``
    (bucket midpoint, s), ``day, validity, regret``."""
    metrics = run.metrics
    metrics = metrics[metrics["metric"].isin(["proxy_validity", "proxy_regret"])]
    columns = ["policy", "replication", "oracle", "start", "end", "time", "day", "validity", "regret"]
    if metrics.empty:
        return pd.DataFrame(columns=columns)
    wide = metrics.set_index(["policy", "replication", "start", "end", "metric"])["value"].unstack("metric")
    wide = wide.reindex(columns=["proxy_validity", "proxy_regret"]).reset_index()
    wide.columns.name = None
    wide = wide.rename(columns={"proxy_validity": "validity", "proxy_regret": "regret"})
    wide["oracle"] = wide["policy"].map(lambda p: run.oracle.get(p, False))
    wide["time"] = (wide["start"] + wide["end"]) / 2
    wide["day"] = wide["time"] / DAY
    wide["replication"] = wide["replication"].astype(int)
    return _ordered(run, wide[columns], "time")


def watch_value_correlation(run: Run, interval: float | None = None) -> pd.DataFrame:
    """Spearman rank correlation between watch time and true value V over the items watched
    in each time bucket, per policy and replication (the ``watch_value_correlation`` metric).

    Not a measure of the proxy's validity: V includes the cost of the time spent watching,
    and the watched items are the ones the policy chose. ``interval`` is the bucket width in
    seconds (default: the run's metrics interval, which reproduces the metric). Reads only the
    ``watch`` rows' ``time, watch_time, true_value``. Columns: ``policy, replication, oracle,
    start, end, time`` (bucket midpoint, s), ``day, n_watches, value`` (ρ, NaN with fewer than
    3 watches)."""
    interval = float(interval or run.metrics_interval)
    watches = run.events(["time", "watch_time", "true_value"], event="watch")
    n_buckets = max(1, math.ceil(run.horizon / interval - 1e-9))
    rows = []
    for (policy, rep), group in watches.groupby(["policy", "replication"], sort=False):
        bucket = np.minimum((group["time"].to_numpy() // interval).astype(int), n_buckets - 1)
        tau = group["watch_time"].to_numpy()
        value = group["true_value"].to_numpy()
        for b in range(n_buckets):
            mask = bucket == b
            start, end = b * interval, min((b + 1) * interval, run.horizon)
            rows.append(
                {
                    "policy": policy,
                    "replication": int(rep),
                    "oracle": run.oracle.get(policy, False),
                    "start": start,
                    "end": end,
                    "time": (start + end) / 2,
                    "day": (start + end) / 2 / DAY,
                    "n_watches": int(mask.sum()),
                    "value": spearman(tau[mask], value[mask]),
                }
            )
    frame = pd.DataFrame(
        rows, columns=["policy", "replication", "oracle", "start", "end", "time", "day", "n_watches", "value"],
    )
    return _ordered(run, frame, "time")


# ----------------------------------------------------------------------------- rabbit holes
def extremeness_edges(
    run: Run | None = None, n_bins: int = 5, threshold: float | None = None
) -> np.ndarray:
    """Bin edges on true extremeness e ∈ [0, 1], shape ``(n_bins + 1,)``: ``n_bins − 1``
    equal bins below the run's extreme threshold (0.4 by default) and one top bin
    ``[threshold, 1]`` — the "extreme" content of the ``extreme_share`` metric."""
    if n_bins < 2:
        raise ValueError("n_bins must be at least 2")
    if threshold is None:
        threshold = run.extreme_threshold if run is not None else 0.4
    return np.append(np.linspace(0.0, threshold, n_bins), 1.0)


def _bin_labels(edges: np.ndarray) -> list[str]:
    return [f"{lo:.2f}–{hi:.2f}" for lo, hi in zip(edges[:-1], edges[1:], strict=True)]


def _bin_of(e: np.ndarray, edges: np.ndarray) -> np.ndarray:
    return np.searchsorted(edges[1:-1], e, side="right")


def transition_matrix(
    run: Run,
    n_bins: int = 5,
    *,
    edges: Sequence[float] | None = None,
    by_replication: bool = False,
    within_session: bool = False,
    max_users: int | None = None,
) -> pd.DataFrame:
    """The Markov transition matrix between extremeness bins of successive items a user
    watches, per policy (pooled over users and replications unless ``by_replication``).

    From the ``watch`` rows (``time, user_id, session, true_extremeness``), each pair of
    consecutive watches of one user — within the horizon, across sessions unless
    ``within_session`` — counts one transition ``from_bin → to_bin``. Bins come from
    :func:`extremeness_edges` (or ``edges``). ``max_users`` keeps users with ids below it (a
    random sample, since ids carry no meaning) to bound the work on very large runs.

    Tidy, one row per (policy, [replication,] from_bin, to_bin), every pair present:
    ``policy, [replication,] oracle, from_bin, to_bin, from_label, to_label, count,
    probability`` where ``probability = count / Σ_to count`` (rows sum to 1; NaN for a bin
    never left). ``from_bin``/``to_bin`` are 0-based; the top bin is the last.
    """
    edges = np.asarray(edges if edges is not None else extremeness_edges(run, n_bins), dtype=float)
    n = len(edges) - 1
    labels = _bin_labels(edges)
    watches = run.events(
        ["time", "user_id", "session", "true_extremeness"],
        event="watch",
        filter=(ds.field("user_id") < max_users) if max_users is not None else None,
    )
    keys = ["policy", "replication", "user_id"] + (["session"] if within_session else [])
    watches = watches.sort_values([*keys, "time"], kind="stable")
    bins = _bin_of(watches["true_extremeness"].to_numpy(), edges)
    same = np.ones(len(watches) - 1 if len(watches) else 0, dtype=bool)
    for key in keys:
        col = watches[key].to_numpy()
        same &= col[1:] == col[:-1]
    group_keys = ["policy", "replication"] if by_replication else ["policy"]
    pairs = pd.DataFrame({k: watches[k].to_numpy()[:-1][same] for k in group_keys})
    pairs["from_bin"] = bins[:-1][same]
    pairs["to_bin"] = bins[1:][same]
    counts = pairs.groupby([*group_keys, "from_bin", "to_bin"]).size()

    groups = (
        [(p, r) for p in run.policies for r in range(run.n_replications)]
        if by_replication
        else [(p,) for p in run.policies]
    )
    index = pd.MultiIndex.from_tuples(
        [(*g, i, j) for g in groups for i in range(n) for j in range(n)],
        names=[*group_keys, "from_bin", "to_bin"],
    )
    frame = counts.reindex(index, fill_value=0).rename("count").reset_index()
    totals = frame.groupby([*group_keys, "from_bin"])["count"].transform("sum")
    frame["probability"] = np.where(
        totals > 0, frame["count"] / totals.where(totals > 0, 1), np.nan
    )
    frame["from_label"] = [labels[i] for i in frame["from_bin"]]
    frame["to_label"] = [labels[j] for j in frame["to_bin"]]
    frame["oracle"] = frame["policy"].map(run.oracle)
    frame["count"] = frame["count"].astype(int)
    cols = [
        *group_keys,
        "oracle",
        "from_bin",
        "to_bin",
        "from_label",
        "to_label",
        "count",
        "probability",
    ]
    return frame[cols]


def transition_array(
    transitions: pd.DataFrame, policy: str, value: str = "probability"
) -> pd.DataFrame:
    """One policy's transitions as a square table, rows ``from_label``, columns ``to_label``
    (``value`` = ``probability`` or ``count``; summed over replications for counts)."""
    sub = transitions[transitions["policy"] == policy]
    if sub.empty:
        raise ValueError(f"no transitions for policy {policy!r}")
    if "replication" in sub and value == "count":
        sub = sub.groupby(["from_bin", "to_bin", "from_label", "to_label"], as_index=False)[
            "count"
        ].sum()
    elif "replication" in sub:
        raise ValueError("pass transitions pooled over replications (by_replication=False)")
    table = sub.pivot(
        index=["from_bin", "from_label"], columns=["to_bin", "to_label"], values=value
    )
    table.index = table.index.get_level_values("from_label")
    table.columns = table.columns.get_level_values("to_label")
    table.index.name, table.columns.name = "from", "to"
    return table


def reach_top_probability(transitions: pd.DataFrame, n_items: int = 20) -> pd.DataFrame:
    """Probability of watching an item of the top (extreme) bin within the next ``k`` items,
    ``k = 1..n_items``, from each starting bin, under the fitted Markov chain.

    ``h_k(s) = P[s, top] + Σ_{j ≠ top} P[s, j]·h_{k−1}(j)`` with ``h_0 = 0`` (so from the top
    bin itself it is the chance of being back there within k items). A bin never left in the
    data has NaN as its own start and counts as never reaching the top from elsewhere.
    ``transitions`` is the output of :func:`transition_matrix` (pooled or by replication).

    Columns: ``policy, [replication,] oracle, start_bin, start_label, n_items, probability``.
    """
    group_keys = ["policy", "replication"] if "replication" in transitions else ["policy"]
    rows = []
    for key, sub in transitions.groupby(group_keys, sort=False):
        key = key if isinstance(key, tuple) else (key,)
        n = int(sub["from_bin"].max()) + 1
        p = np.zeros((n, n))
        p[sub["from_bin"].to_numpy(), sub["to_bin"].to_numpy()] = sub["probability"].to_numpy()
        known = ~np.isnan(p).any(axis=1)
        p = np.nan_to_num(p)
        top = n - 1
        labels = sub.drop_duplicates("from_bin").sort_values("from_bin")["from_label"].tolist()
        oracle = bool(sub["oracle"].iloc[0])
        h = np.zeros(n)
        for k in range(1, n_items + 1):
            rest = h.copy()
            rest[top] = 0.0
            h = p[:, top] + p @ rest
            for s in range(n):
                rows.append(
                    {
                        **dict(zip(group_keys, key, strict=True)),
                        "oracle": oracle,
                        "start_bin": s,
                        "start_label": labels[s],
                        "n_items": k,
                        "probability": h[s] if known[s] else math.nan,
                    }
                )
    frame = pd.DataFrame(
        rows, columns=[*group_keys, "oracle", "start_bin", "start_label", "n_items", "probability"]
    )
    rank = {
        p: i for i, p in enumerate(dict.fromkeys(transitions["policy"]))
    }  # keep the input's order
    frame = frame.assign(policy_rank=frame["policy"].map(rank))
    by = ["policy_rank", *group_keys[1:], "start_bin", "n_items"]
    return frame.sort_values(by, kind="stable").drop(columns="policy_rank").reset_index(drop=True)


# ----------------------------------------------------------------------------- retention
def survival_curves(run: Run, step: float = 3600.0) -> pd.DataFrame:
    """Retention over time per policy and replication, tidy.

    Two metrics: ``survival`` — share of the users alive at t = 0 who have not churned by
    ``time``, on a grid every ``step`` seconds from the exact ``churn`` event times (1 at
    t = 0); ``active_share`` — share of all users with at least one session in each metrics
    bucket (``time`` = bucket midpoint). Columns: ``policy, replication, oracle, metric,
    time, day, value``. With a sampled event log (``outputs.event_sample`` < 1), survival is
    that of the sampled users (the churn events known).
    """
    churns = run.events(["time"], event="churn")
    if run.event_users < run.n_users:  # churns of the sampled users only: count those alive
        users = run.users
        initial = users[(users["stage"] == "initial") & (users["user_id"] < run.event_users)]
        alive0 = (~initial["churned"].astype(bool)).groupby([initial["policy"], initial["replication"]]).sum()
    else:
        alive0 = run.metrics[(run.metrics["metric"] == "retained_users") & (run.metrics["end"] == 0)]
        alive0 = alive0.set_index(["policy", "replication"])["value"]
    grid = np.append(np.arange(0.0, run.horizon, step), run.horizon)
    frames = []
    for policy in run.policies:
        for rep in range(run.n_replications):
            times = np.sort(
                churns.loc[(churns["policy"] == policy) & (churns["replication"] == rep), "time"]
            )
            n0 = float(alive0.get((policy, rep), run.event_users))
            churned = np.searchsorted(times, grid, side="right")
            frames.append(
                pd.DataFrame(
                    {
                        "policy": policy,
                        "replication": rep,
                        "oracle": run.oracle[policy],
                        "metric": "survival",
                        "time": grid,
                        "value": 1.0 - churned / max(n0, 1.0),
                    }
                )
            )
    active = metric_curves(run, ["active_users"])
    active = active.assign(metric="active_share", value=active["value"] / run.n_users)
    frames.append(active[["policy", "replication", "oracle", "metric", "time", "value"]])
    frame = pd.concat(frames, ignore_index=True)
    frame["day"] = frame["time"] / DAY
    frame = frame[["policy", "replication", "oracle", "metric", "time", "day", "value"]]
    return _ordered(run, frame, "metric", "time")


# ----------------------------------------------------------------------------- users
def user_trajectory(
    run: Run,
    user_id: int,
    replication: int = 0,
    policies: Iterable[str] | None = None,
    window: int = 10,
) -> pd.DataFrame:
    """What one user watched, item by item, under each policy (same user, same world and
    same random draws in every policy of a replication: common random numbers).

    One row per watched item: ``policy, replication, oracle, user_id, time, day, session,
    item_index`` (1-based), ``item_id, watch_time`` (s), ``watch_fraction, true_extremeness,
    true_value, true_allure``, ``rolling_extremeness`` (mean e of the last ``window`` items),
    ``cumulative_watch_minutes, cumulative_value``, and the user's hidden appetite at the
    start and end of the horizon (``initial_appetite, final_appetite``) and natural
    appetite ``appetite0``.
    """
    frame = run.events(
        [
            "time",
            "user_id",
            "session",
            "item_id",
            "watch_time",
            "watch_fraction",
            "true_extremeness",
            "true_value",
            "true_allure",
        ],
        event="watch",
        user_id=int(user_id),
        replication=int(replication),
        policy=list(policies) if policies is not None else None,
    )
    frame = frame.sort_values(["policy", "time"], kind="stable")
    g = frame.groupby("policy", sort=False)
    frame["item_index"] = g.cumcount() + 1
    frame["rolling_extremeness"] = g["true_extremeness"].transform(
        lambda s: s.rolling(window, min_periods=1).mean()
    )
    frame["cumulative_watch_minutes"] = g["watch_time"].cumsum() / 60.0
    frame["cumulative_value"] = g["true_value"].cumsum()
    frame["day"] = frame["time"] / DAY
    frame["oracle"] = frame["policy"].map(run.oracle)
    users = run.users
    users = users[(users["user_id"] == user_id) & (users["replication"] == replication)]
    state = users.pivot_table(index="policy", columns="stage", values="appetite", observed=True)
    frame["initial_appetite"] = frame["policy"].map(state.get("initial", pd.Series(dtype=float)))
    frame["final_appetite"] = frame["policy"].map(state.get("final", pd.Series(dtype=float)))
    frame["appetite0"] = float(users["appetite0"].iloc[0]) if len(users) else math.nan
    cols = [
        "policy",
        "replication",
        "oracle",
        "user_id",
        "time",
        "day",
        "session",
        "item_index",
        "item_id",
        "watch_time",
        "watch_fraction",
        "true_extremeness",
        "true_value",
        "true_allure",
        "rolling_extremeness",
        "cumulative_watch_minutes",
        "cumulative_value",
        "initial_appetite",
        "final_appetite",
        "appetite0",
    ]
    return _ordered(run, frame[cols], "item_index")


def user_outcomes(run: Run) -> pd.DataFrame:
    """One row per (policy, replication, user): where each user started and ended.

    Columns: ``policy, replication, oracle, user_id, home_cluster, vulnerable,
    susceptibility, appetite0`` (static traits), ``initial_appetite, final_appetite,
    appetite_change, initial_wellbeing, final_wellbeing, wellbeing_change`` (W, 0–1),
    ``initial_satisfaction, final_satisfaction, topic_drift`` (final ‖θ − θ₀‖),
    ``churned`` (by the end of the horizon, warm-up included), ``churned_in_horizon`` (left
    during the horizon: what the run's ``churn_rate`` counts), and the horizon totals ``watch_minutes, sessions,
    value, consumed_extremeness`` (watch-time-weighted mean e; NaN if nothing watched).
    The ``wellbeing_change`` column is the distribution of final wellbeing change.
    """
    users = run.users
    keys = ["policy", "replication", "user_id"]
    initial = users[users["stage"] == "initial"].set_index(keys)
    final = users[users["stage"] == "final"].set_index(keys)
    out = final[["oracle", "home_cluster", "vulnerable", "susceptibility", "appetite0"]].copy()
    for name in ("appetite", "wellbeing", "satisfaction"):
        out[f"initial_{name}"] = initial[name]
        out[f"final_{name}"] = final[name]
    out["appetite_change"] = out["final_appetite"] - out["initial_appetite"]
    out["wellbeing_change"] = out["final_wellbeing"] - out["initial_wellbeing"]
    for name in (
        "topic_drift",
        "churned",
        "watch_minutes",
        "sessions",
        "value",
        "consumed_extremeness",
    ):
        out[name] = final[name]
    out["churned_in_horizon"] = final["churned"].astype(bool) & ~initial["churned"].astype(bool)
    cols = [
        "oracle",
        "home_cluster",
        "vulnerable",
        "susceptibility",
        "appetite0",
        "initial_appetite",
        "final_appetite",
        "appetite_change",
        "initial_wellbeing",
        "final_wellbeing",
        "wellbeing_change",
        "initial_satisfaction",
        "final_satisfaction",
        "topic_drift",
        "churned",
        "churned_in_horizon",
        "watch_minutes",
        "sessions",
        "value",
        "consumed_extremeness",
    ]
    return _ordered(run, out[cols].reset_index(), "user_id")


# ----------------------------------------------------------------------------- sweeps
def load_sweep(path: str | Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Read a sweep folder (written by ``recsim sweep`` / :func:`recsim.sweep.run_sweep`):
    ``(grid, results)``.

    ``grid.csv`` has one row per grid point: a ``point`` id and one column per swept
    parameter, named by its dotted scenario path (e.g. ``behaviour.appetite.eta_up``).
    ``results.csv`` is tidy: at least ``point, policy, replication, metric, value`` (the
    headline metrics of each point's ``replications.csv``; ``recsim sweep`` adds ``type``,
    ``oracle`` and the swept values).
    """
    path = Path(path)
    grid = pd.read_csv(path / "grid.csv")
    results = read_csv(path / "results.csv")
    return grid, results


def sweep_table(
    grid: pd.DataFrame,
    results: pd.DataFrame,
    metric: str,
    x: str,
    y: str | None,
    policy: str,
    reference: str | None = None,
) -> pd.DataFrame:
    """A heat-map table over two swept parameters: rows ``y`` values (descending), columns
    ``x`` values, cells the mean over replications (and over any other swept parameter) of
    ``metric`` under ``policy`` — or, with ``reference``, the mean paired difference
    ``policy − reference`` (same point, same replication). ``y=None`` gives one row (a
    one-parameter sweep)."""
    res = results[results["metric"] == metric]
    cur = res[res["policy"] == policy].set_index(["point", "replication"])["value"]
    if reference is not None:
        ref = res[res["policy"] == reference].set_index(["point", "replication"])["value"]
        cur = (cur - ref).dropna()
    if cur.empty:
        raise ValueError(f"no results for metric {metric!r} and policy {policy!r}")
    per_point = cur.groupby(level="point").mean().rename("value").reset_index()
    merged = per_point.merge(grid, on="point")
    if y is None:
        merged = merged.assign(**{metric: "all points"})
        y = metric
    return merged.pivot_table(index=y, columns=x, values="value", aggfunc="mean").sort_index(
        ascending=False
    )


# ----------------------------------------------------------------------------- learned models
_LEARNED_COLUMNS = ["policy", "replication", "oracle", "time", "day", "name", "value"]


def learned_weights(
    run: Run | str | Path, names: str | Iterable[str] | None = None
) -> pd.DataFrame:
    """What the learned policies learned, retrain by retrain: the ``models`` table of the run
    folder (written after every ``fit`` from ``Policy.learned()``), tidy.

    Columns: ``policy, replication, oracle, time`` (seconds since the end of the warm-up;
    negative for the retrains of the warm-up), ``day`` (``time / 86400``), ``name`` (e.g.
    ``click_model.classifier``, the click model's weight on the raw extremeness-classifier
    score; see ``learned()`` of :mod:`recsim.policies.learned` for the names) and ``value``.
    ``names`` keeps those names only (rows then in that order within a retrain, else in the
    order the policy reported them). Policies that learned nothing, or reported nothing, have
    no rows; a run without any (or a run folder older than the ``models`` table) gives an
    empty frame with these columns.
    """
    run = run if isinstance(run, Run) else load_run(run)
    wanted = None if names is None else ([names] if isinstance(names, str) else list(names))
    if not (run.path / "models").is_dir() or not any((run.path / "models").rglob("*.parquet")):
        return pd.DataFrame(
            {
                "policy": pd.Series(dtype=str),
                "replication": pd.Series(dtype=int),
                "oracle": pd.Series(dtype=bool),
                "time": pd.Series(dtype=float),
                "day": pd.Series(dtype=float),
                "name": pd.Series(dtype=str),
                "value": pd.Series(dtype=float),
            }
        )[_LEARNED_COLUMNS]
    frame = _read_partitioned(run, "models")
    frame["name"] = frame["name"].astype(str)
    if wanted is not None:
        frame = frame[frame["name"].isin(wanted)].copy()
    # stable sorts: within a retrain the names keep the policy's (or the caller's) order
    rank = (
        {n: i for i, n in enumerate(wanted)}
        if wanted is not None
        else {n: i for i, n in enumerate(dict.fromkeys(frame["name"]))}
    )
    frame = frame.assign(name_rank=frame["name"].map(rank))
    if "oracle" not in frame:
        frame["oracle"] = frame["policy"].map(run.oracle).fillna(False)
    frame["oracle"] = frame["oracle"].astype(bool)
    frame["time"] = frame["time"].astype(float)
    frame["day"] = frame["time"] / DAY
    frame = _ordered(run, frame, "time", "name_rank")
    return frame[_LEARNED_COLUMNS].reset_index(drop=True)


__all__.append("learned_weights")


# ----------------------------------------------------------------------------- scripted users
#: the figures :func:`group_summary` compares between modelled and scripted users
GROUP_METRICS = ("watch_minutes_per_user_day", "consumed_extremeness", "consumed_extremeness_change")


def group_summary(run: Run, metrics: Sequence[str] = GROUP_METRICS) -> pd.DataFrame | None:
    """What each user group got, per policy: the modelled users' headline figures beside each
    scripted group's (``population.scripted``), mean and Student-t 95% interval over
    replications — e.g. whether a sock-puppet audit's consumed extremeness over- or
    under-states the modelled users'. Columns ``policy, group, metric, mean, ci_low, ci_high,
    n_replications``; None for a run without scripted users."""
    from .stats import mean_ci

    if run.groups is None:
        return None
    modelled = run.replications.melt(id_vars=["policy", "replication"], value_vars=list(metrics),
                                     var_name="metric", value_name="value").assign(group="modelled")
    scripted = run.groups[run.groups["metric"].isin(metrics)]
    table = pd.concat([modelled, scripted], ignore_index=True)
    order = {"policy": run.policies, "group": ["modelled", *run.scripted_groups], "metric": list(metrics)}
    rows = []
    for policy in order["policy"]:
        for group in order["group"]:
            for metric in order["metric"]:
                values = table.loc[(table["policy"] == policy) & (table["group"] == group)
                                   & (table["metric"] == metric), "value"].to_numpy(dtype=float)
                values = values[~np.isnan(values)]
                mean, low, high = mean_ci(values) if values.shape[0] else (math.nan, math.nan, math.nan)
                rows.append({"policy": policy, "group": group, "metric": metric, "mean": mean,
                             "ci_low": low, "ci_high": high, "n_replications": int(values.shape[0])})
    return pd.DataFrame(rows)


__all__ += ["GROUP_METRICS", "group_summary"]
