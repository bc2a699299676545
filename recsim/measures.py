"""Measures over arrays, each a plain function tested against a direct computation: rank
correlation row by row, top-k regret, the Gini coefficient, coverage, Jaccard similarity of
users' consumed sets. :mod:`recsim.metrics` applies them to a run's buckets."""

from __future__ import annotations

import numpy as np
from scipy.stats import rankdata

__all__ = ["spearman_rows", "topk_regret", "gini", "jaccard_pairs"]


def spearman_rows(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Spearman rank correlation of each row of ``x`` with the same row of ``y`` (``(B, m)``
    → ``(B,)``): the Pearson correlation of the rows' ranks, ties given their average rank;
    NaN for a row with fewer than 3 values or with a constant ``x`` or ``y``."""
    x = np.asarray(x, dtype=float)
    y = np.asarray(y, dtype=float)
    if x.shape != y.shape or x.ndim != 2:
        raise ValueError(f"expected two (B, m) arrays of one shape, got {x.shape} and {y.shape}")
    out = np.full(x.shape[0], np.nan)
    if x.shape[1] < 3 or x.shape[0] == 0:
        return out
    rx = rankdata(x, axis=1)
    ry = rankdata(y, axis=1)
    rx -= rx.mean(axis=1, keepdims=True)
    ry -= ry.mean(axis=1, keepdims=True)
    sxx = (rx * rx).sum(axis=1)
    syy = (ry * ry).sum(axis=1)
    ok = (sxx > 0) & (syy > 0)
    out[ok] = (rx * ry).sum(axis=1)[ok] / np.sqrt(sxx[ok] * syy[ok])
    return out


def topk_regret(proxy: np.ndarray, value: np.ndarray, k: int) -> np.ndarray:
    """What ranking by ``proxy`` instead of by ``value`` loses, per row of ``(B, m)`` arrays:
    the mean value of the ``k`` items of highest value minus the mean value of the ``k`` items
    of highest proxy (≥ 0; 0 when the proxy picks the same items). Ties go to the lower
    index, as in the policies' top-k."""
    proxy = np.asarray(proxy, dtype=float)
    value = np.asarray(value, dtype=float)
    k = min(int(k), value.shape[1])
    by_value = np.take_along_axis(value, np.argsort(-value, axis=1, kind="stable")[:, :k], axis=1)
    by_proxy = np.take_along_axis(value, np.argsort(-proxy, axis=1, kind="stable")[:, :k], axis=1)
    return by_value.mean(axis=1) - by_proxy.mean(axis=1)


def gini(counts: np.ndarray) -> float:
    """The Gini coefficient of non-negative ``counts`` (0: all equal; → 1: all on one), by
    the sorted formula G = Σ_i (2i − n − 1)·x_(i) / (n·Σx); NaN when all are 0."""
    x = np.sort(np.asarray(counts, dtype=float))
    n = x.shape[0]
    total = x.sum()
    if n == 0 or total <= 0:
        return float("nan")
    i = np.arange(1, n + 1)
    return float(((2 * i - n - 1) * x).sum() / (n * total))


def jaccard_pairs(users: np.ndarray, items: np.ndarray, pairs: np.ndarray) -> float:
    """Mean Jaccard similarity |A ∩ B| / |A ∪ B| of the item sets of the user pairs ``pairs``
    (``(P, 2)`` user ids), a user's set being the ``items`` of their entries in ``users``
    (equal-length arrays, repeats allowed); NaN without pairs. Chaney, Stewart & Engelhardt
    (2018) call the rise of this similarity between users homogenization."""
    if pairs.shape[0] == 0:
        return float("nan")
    users = np.asarray(users, dtype=np.int64).reshape(-1)
    items = np.asarray(items, dtype=np.int64).reshape(-1)
    pairs = np.asarray(pairs, dtype=np.int64)
    if users.shape[0] == 0:  # every set empty: every pair's share 0
        return 0.0
    a, b = pairs[:, 0], pairs[:, 1]
    # every (user, item) once, as one key sorted by user, then item: a user's set is a run
    shift, low = min(int(users.min()), int(pairs.min())), int(items.min())
    span = int(items.max()) - low + 1
    keys = np.sort((users - shift) * span + (items - low))
    keys = keys[np.concatenate(([True], keys[1:] != keys[:-1]))]  # np.unique's, by sorting
    owner = keys // span
    first_a, end_a = np.searchsorted(owner, a - shift), np.searchsorted(owner, a - shift, side="right")
    first_b, end_b = np.searchsorted(owner, b - shift), np.searchsorted(owner, b - shift, side="right")
    size_a, size_b = end_a - first_a, end_b - first_b
    # |A ∩ B|: each item of A looked up among B's keys
    pair = np.repeat(np.arange(pairs.shape[0]), size_a)
    at = np.repeat(first_a, size_a) + np.arange(pair.shape[0]) - np.repeat(np.cumsum(size_a) - size_a, size_a)
    wanted = (b[pair] - shift) * span + keys[at] % span
    found = np.searchsorted(keys, wanted)
    hit = found < keys.shape[0]
    hit[hit] = keys[found[hit]] == wanted[hit]
    common = np.bincount(pair[hit], minlength=pairs.shape[0])
    union = size_a + size_b - common
    # each pair's share, then added one after another in pair order (as a loop over the pairs
    # would: the same float sum)
    total = 0.0
    for share in np.where(union > 0, common / np.maximum(union, 1), 0.0).tolist():
        total += share
    return total / pairs.shape[0]
