"""Statistics across replications."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
from scipy import stats

from .metrics import HEADLINE

__all__ = ["mean_ci", "summarize", "bootstrap_ci", "compare", "GOODHART"]


def mean_ci(values: np.ndarray, level: float = 0.95) -> tuple[float, float, float]:
    """Mean and Student-t confidence interval of independent replications (NaNs dropped);
    the interval is NaN with fewer than two values."""
    x = np.asarray(values, dtype=float)
    x = x[~np.isnan(x)]
    if x.size == 0:
        return math.nan, math.nan, math.nan
    mean = float(x.mean())
    if x.size < 2:
        return mean, math.nan, math.nan
    half = float(stats.t.ppf(0.5 + level / 2, x.size - 1) * x.std(ddof=1) / math.sqrt(x.size))
    return mean, mean - half, mean + half


def summarize(replications: pd.DataFrame, order: list[str], metrics=HEADLINE) -> pd.DataFrame:
    """One row per policy: ``<metric>``, ``<metric>_ci_low``, ``<metric>_ci_high`` for each
    headline metric, plus ``n_replications``."""
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


# ----------------------------------------------------------------------------- paired comparisons
#: Metrics of the Goodhart gap against the reference policy (see :func:`compare`).
GOODHART = ("goodhart_watch_gain", "goodhart_wellbeing_change", "goodhart_extremeness_change")


def bootstrap_ci(
    samples: tuple[np.ndarray, ...],
    statistic,
    level: float = 0.95,
    seed: int = 0,
    n_resamples: int = 9999,
) -> tuple[float, float]:
    """BCa bootstrap interval (``scipy.stats.bootstrap``, paired resampling) of
    ``statistic(*samples)``; NaN with fewer than 3 replications, the point itself when every
    resample gives the same value. Deterministic for a given ``seed``."""
    n = len(samples[0])
    if n < 3:
        return math.nan, math.nan
    point = float(statistic(*samples, axis=-1))
    if not np.isfinite(point):
        return math.nan, math.nan
    if all(np.all(s == s[0]) for s in samples):
        return point, point
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # degenerate jackknife warnings at tiny n: NaN below
        result = stats.bootstrap(
            samples, statistic, paired=True, vectorized=True, method="BCa",
            confidence_level=level, n_resamples=n_resamples, rng=np.random.default_rng(seed),
        )
    low, high = float(result.confidence_interval.low), float(result.confidence_interval.high)
    if not (np.isfinite(low) and np.isfinite(high)):
        return math.nan, math.nan
    return low, high


def _mean_difference(a, b, axis=-1):
    return np.mean(a - b, axis=axis)


def _relative_gain(a, b, axis=-1):
    return np.mean(a, axis=axis) / np.mean(b, axis=axis) - 1.0


def compare(
    replications: pd.DataFrame,
    reference: str,
    metrics=HEADLINE,
    level: float = 0.95,
    seed: int = 0,
) -> pd.DataFrame:
    """Paired comparison of every policy with ``reference`` under common random numbers.

    For each policy and metric: the per-replication differences (policy − reference), their
    mean and a BCa bootstrap interval, and the variance of the paired differences next to the
    variance the difference would have with independent seeds (var(policy) + var(reference));
    their ratio shows what common random numbers buy. The Goodhart gap adds three rows per
    policy: ``goodhart_watch_gain`` (relative watch-time gain, mean(policy)/mean(ref) − 1),
    ``goodhart_wellbeing_change`` (difference in final wellbeing) and
    ``goodhart_extremeness_change`` (difference in mean consumed extremeness).
    """
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
        wanted = [(m, m, _mean_difference) for m in metrics if m in pol]
        wanted += [
            ("goodhart_watch_gain", "watch_minutes_per_user_day", _relative_gain),
            ("goodhart_wellbeing_change", "final_wellbeing", _mean_difference),
            ("goodhart_extremeness_change", "consumed_extremeness", _mean_difference),
        ]
        for name, column, statistic in wanted:
            a = pol.loc[common, column].to_numpy(dtype=float)
            b = ref.loc[common, column].to_numpy(dtype=float)
            ok = ~(np.isnan(a) | np.isnan(b))
            a, b = a[ok], b[ok]
            n = len(a)
            estimate = float(statistic(a, b)) if n else math.nan
            low, high = bootstrap_ci((a, b), statistic, level, seed) if n else (math.nan, math.nan)
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
                }
            )
    return pd.DataFrame(rows)
