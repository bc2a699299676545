"""Statistics across replications: the intervals every table of a run reports.

Which interval each table shows (README "Comparing policies, with uncertainty"); the coverage
of every one of them is measured by simulation in ``tests/test_stats.py``:

- ``summary.csv``, :func:`recsim.analysis.tradeoff`, the bands of the plots and a sweep's
  ``summary.csv``: the Student-t interval of one policy's mean over its replications
  (:func:`mean_ci`, :data:`T_INTERVAL`);
- ``comparison.csv`` (every difference) and :func:`recsim.analysis.paired_differences`: the
  paired t interval of the mean per-replication difference (:func:`paired_t_ci`,
  :data:`PAIRED_T`);
- ``goodhart_watch_gain`` (relative gain of the means) and ``paired_differences(...,
  relative=True)``: Fieller's interval for the ratio of two paired means (:func:`ratio_ci`,
  :data:`FIELLER`) — the set of ratios the paired t-test does not reject;
- :func:`recsim.analysis.paired_user_differences`: per-user paired differences with a
  replication-clustered (CR2) standard error and t with G − 1 degrees of freedom
  (:func:`clustered_mean_ci`, :data:`CLUSTERED`).

Each is exact for normal data and needs at least two replications; with two it has one
degree of freedom and is very wide (±12.7 standard errors) — :func:`interval_note` says so.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
from scipy import stats

from .metrics import HEADLINE

__all__ = [
    "CLUSTERED",
    "FIELLER",
    "GOODHART",
    "PAIRED_T",
    "T_INTERVAL",
    "clustered_mean_ci",
    "compare",
    "interval_note",
    "mean_ci",
    "paired_t_ci",
    "ratio_ci",
    "summarize",
    "t_interval",
]

#: Names of the intervals, as written in the ``interval`` column of ``comparison.csv`` and in
#: table titles.
T_INTERVAL = "Student t over replications"
PAIRED_T = "paired t over replications"
FIELLER = "Fieller (paired t) over replications"
CLUSTERED = "per-user paired, replication-clustered CR2 t(G-1)"


def _t_quantile(level: float, df):
    df = np.asarray(df, dtype=float)
    with np.errstate(invalid="ignore"):
        return stats.t.ppf(0.5 + level / 2, np.where(df >= 1, df, np.nan))


# ----------------------------------------------------------------------------- one policy
def t_interval(x, level: float = 0.95, axis: int = -1):
    """Mean and Student-t interval of independent values along ``axis`` (vectorized; no NaN
    handling): ``(mean, low, high)`` arrays, the bounds NaN with fewer than two values."""
    x = np.moveaxis(np.asarray(x, dtype=float), axis, -1)
    n = x.shape[-1]
    if n == 0:
        nan = np.full(x.shape[:-1], np.nan)
        return nan, nan.copy(), nan.copy()
    with np.errstate(invalid="ignore", over="ignore"):  # inf values: NaN bounds, no warning
        mean = x.mean(axis=-1)
        if n < 2:
            nan = np.full(mean.shape, np.nan)
            return mean, nan, nan.copy()
        half = _t_quantile(level, n - 1) * x.std(axis=-1, ddof=1) / math.sqrt(n)
        return mean, mean - half, mean + half


def mean_ci(values: np.ndarray, level: float = 0.95) -> tuple[float, float, float]:
    """Mean and Student-t confidence interval of independent replications (NaNs dropped);
    the interval is NaN with fewer than two values."""
    x = np.asarray(values, dtype=float)
    x = x[~np.isnan(x)]
    if x.size == 0:
        return math.nan, math.nan, math.nan
    mean, low, high = t_interval(x, level)
    return float(mean), float(low), float(high)


def summarize(replications: pd.DataFrame, order: list[str], metrics=HEADLINE) -> pd.DataFrame:
    """One row per policy: ``<metric>``, ``<metric>_ci_low``, ``<metric>_ci_high`` for each
    headline metric (mean and Student-t 95% interval over replications, :func:`mean_ci`), plus
    ``n_replications``."""
    rows = []
    for policy in order:
        group = replications[replications["policy"] == policy]
        row: dict[str, object] = {"policy": policy, "n_replications": len(group)}
        for metric in metrics:
            if metric not in group:
                continue
            mean, low, high = mean_ci(group[metric].to_numpy())
            row[metric] = mean
            row[f"{metric}_ci_low"] = low
            row[f"{metric}_ci_high"] = high
        rows.append(row)
    return pd.DataFrame(rows)


# ----------------------------------------------------------------------------- paired intervals
def paired_t_ci(a, b, level: float = 0.95, axis: int = -1):
    """Mean paired difference ``a − b`` and its paired t interval along ``axis`` (vectorized;
    no NaN handling): ``(difference, low, high)``, bounds NaN with fewer than two pairs."""
    return t_interval(np.asarray(a, dtype=float) - np.asarray(b, dtype=float), level, axis)


def ratio_ci(a, b, level: float = 0.95, axis: int = -1):
    """Relative difference of two paired means, ``mean(a) / mean(b) − 1``, with Fieller's
    interval along ``axis`` (vectorized; no NaN handling): ``(gain, low, high)``.

    The interval is every ``θ`` for which the paired t-test of ``mean(a − θ·b) = 0`` does not
    reject, so it is exact for normal replications at any n ≥ 2 (the delta method is not). It
    is unbounded — NaN here — when ``mean(b)`` itself is not distinguishable from 0
    (``mean(b)² ≤ t²·var(b)/n``), as it can be with two replications of a noisy metric.
    """
    a = np.moveaxis(np.asarray(a, dtype=float), axis, -1)
    b = np.moveaxis(np.asarray(b, dtype=float), axis, -1)
    n = a.shape[-1]
    if n == 0:
        nan = np.full(a.shape[:-1], np.nan)
        return nan, nan.copy(), nan.copy()
    with np.errstate(divide="ignore", invalid="ignore"):
        ma, mb = a.mean(axis=-1), b.mean(axis=-1)
        gain = ma / mb - 1.0
        if n < 2:
            nan = np.full(np.shape(gain), np.nan)
            return gain, nan, nan.copy()
        q = _t_quantile(level, n - 1) ** 2 / n
        da, db = a - ma[..., None], b - mb[..., None]
        saa = (da * da).sum(axis=-1) / (n - 1)
        sbb = (db * db).sum(axis=-1) / (n - 1)
        sab = (da * db).sum(axis=-1) / (n - 1)
        qa = mb * mb - q * sbb
        qb = ma * mb - q * sab
        qc = ma * ma - q * saa
        root = np.sqrt(np.maximum(qb * qb - qa * qc, 0.0))
        bounded = qa > 0
        low = np.where(bounded, (qb - root) / qa - 1.0, np.nan)
        high = np.where(bounded, (qb + root) / qa - 1.0, np.nan)
    return gain, low, high


def clustered_mean_ci(sums, counts, level: float = 0.95, axis: int = -1):
    """Mean of values grouped in clusters (replications), with a cluster-robust interval.

    ``sums`` and ``counts`` hold, along ``axis``, each cluster's sum and number of values (a
    cluster with count 0 is left out). The estimate is the pooled mean ``Σ sums / Σ counts``;
    its variance the CR2 (Bell–McCaffrey) cluster-robust one, ``Σ_g r_g² / (1 − n_g/N) / N²``
    with ``r_g`` the cluster's residual total, and the interval uses t with G − 1 degrees of
    freedom. With equal cluster sizes this is exactly the t interval of the cluster means, so
    per-unit values buy no narrower interval than one mean per cluster. Returns
    ``(mean, low, high, standard_error, n_clusters)``; bounds NaN with fewer than two
    clusters.
    """
    s = np.moveaxis(np.asarray(sums, dtype=float), axis, -1)
    m = np.moveaxis(np.asarray(counts, dtype=float), axis, -1)
    with np.errstate(divide="ignore", invalid="ignore"):
        n_total = m.sum(axis=-1)
        g = (m > 0).sum(axis=-1)
        mean = s.sum(axis=-1) / n_total
        resid = s - m * mean[..., None]
        share = np.where(m > 0, m / n_total[..., None], 0.0)
        var = np.where(m > 0, resid**2 / (1.0 - share), 0.0).sum(axis=-1) / n_total**2
        se = np.sqrt(var)
        half = _t_quantile(level, g - 1) * se
    return mean, mean - half, mean + half, se, g


# ----------------------------------------------------------------------------- notes
def interval_note(n: int, low: float = 0.0, high: float = 0.0) -> str:
    """What a reader must know about an interval from ``n`` replications (empty if nothing):
    none with fewer than two, very wide with two, unbounded when the bounds are NaN."""
    if n == 0:
        return "no replications: no estimate"
    if n == 1:
        return "1 replication: no interval"
    if not (np.isfinite(low) and np.isfinite(high)):
        return "unbounded: the reference mean is not distinguishable from 0"
    if n == 2:
        return "2 replications: t with 1 degree of freedom, very wide (±12.7 standard errors)"
    return ""


# ----------------------------------------------------------------------------- comparison.csv
#: Metrics of the Goodhart gap against the reference policy (see :func:`compare`).
GOODHART = ("goodhart_watch_gain", "goodhart_wellbeing_change", "goodhart_extremeness_change")


def compare(
    replications: pd.DataFrame,
    reference: str,
    metrics=HEADLINE,
    level: float = 0.95,
    seed: int | None = None,
) -> pd.DataFrame:
    """Paired comparison of every policy with ``reference`` under common random numbers.

    For each policy and metric: the per-replication differences (policy − reference), their
    mean and its paired t interval (:func:`paired_t_ci`), and the variance of the paired
    differences next to the variance the difference would have with independent seeds
    (var(policy) + var(reference)); their ratio shows what common random numbers buy. The
    Goodhart gap adds three rows per policy: ``goodhart_watch_gain`` (relative watch-time
    gain, mean(policy)/mean(ref) − 1, with Fieller's interval, :func:`ratio_ci`),
    ``goodhart_wellbeing_change`` (difference in final wellbeing) and
    ``goodhart_extremeness_change`` (difference in mean consumed extremeness).

    Columns: ``policy, oracle, reference, metric, n_replications, policy_mean,
    reference_mean, difference, ci_low, ci_high, var_paired, var_independent,
    crn_variance_ratio`` and ``level``, ``interval`` (the method's name) and ``interval_note``
    (:func:`interval_note`: no interval with one replication, a very wide one with two).
    ``seed`` is accepted for compatibility and unused: no interval is random.
    """
    del seed
    policies = list(dict.fromkeys(replications["policy"]))
    if reference not in policies:
        raise ValueError(f"reference policy {reference!r} is not in this run ({', '.join(policies)})")
    ref = replications[replications["policy"] == reference].set_index("replication")
    rows = []
    for policy in policies:
        if policy == reference:
            continue
        pol = replications[replications["policy"] == policy].set_index("replication")
        common = pol.index.intersection(ref.index)
        oracle = bool(pol["oracle"].iloc[0]) if "oracle" in pol else False
        wanted = [(m, m, False) for m in metrics if m in pol]
        wanted += [
            ("goodhart_watch_gain", "watch_minutes_per_user_day", True),
            ("goodhart_wellbeing_change", "final_wellbeing", False),
            ("goodhart_extremeness_change", "consumed_extremeness", False),
        ]
        for name, column, relative in wanted:
            a = pol.loc[common, column].to_numpy(dtype=float)
            b = ref.loc[common, column].to_numpy(dtype=float)
            ok = ~(np.isnan(a) | np.isnan(b))
            a, b = a[ok], b[ok]
            n = len(a)
            estimate, low, high = (ratio_ci if relative else paired_t_ci)(a, b, level)
            estimate, low, high = float(estimate), float(low), float(high)
            with np.errstate(invalid="ignore", over="ignore"):  # inf values give NaN, quietly
                var_paired = float(np.var(a - b, ddof=1)) if n >= 2 else math.nan
                var_indep = float(np.var(a, ddof=1) + np.var(b, ddof=1)) if n >= 2 else math.nan
            rows.append(
                {
                    "policy": policy,
                    "oracle": oracle,
                    "reference": reference,
                    "metric": name,
                    "n_replications": n,
                    "policy_mean": float(a.mean()) if n else math.nan,
                    "reference_mean": float(b.mean()) if n else math.nan,
                    "difference": estimate,
                    "ci_low": low,
                    "ci_high": high,
                    "var_paired": var_paired,
                    "var_independent": var_indep,
                    "crn_variance_ratio": var_paired / var_indep if var_indep and var_indep > 0 else math.nan,
                    "level": level,
                    "interval": FIELLER if relative else PAIRED_T,
                    "interval_note": interval_note(n, low, high),
                }
            )
    return pd.DataFrame(rows)
