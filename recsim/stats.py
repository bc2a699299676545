"""Statistics across replications."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
from scipy import stats

from .metrics import HEADLINE

__all__ = ["mean_ci", "summarize"]


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
