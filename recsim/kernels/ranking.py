"""Kernels of the built-in policies' ranking: the top ``k`` of every row of scores
(:func:`recsim.policies.base.top_k_rows`) and the learned engagement ranker's serving scores
(:meth:`recsim.policies.learned.EngagementPolicy._log_odds` and ``_predicted_rows``).

Each kernel repeats the NumPy code's operations in its order, a row at a time, without its
``(B, c)`` and ``(B, c, K)`` temporaries; ``tests/test_kernels_ranking.py`` checks them bit for
bit (and slate for slate) against that code, which stays the definition and the fallback.
"""

from __future__ import annotations

import math

import numpy as np

from . import jit

__all__ = ["learned_row", "learned_rows", "top_k_rows"]

DAY = 86400.0


@jit
def top_k_rows(candidates, scores, out):
    """The ``kk = out.shape[1]`` best candidates of every row, best first, into ``out``
    ``(B, kk)``: what :func:`recsim.policies.base.top_k_rows` returns for ``k`` with
    ``kk = min(k, c)``, i.e. ``candidates[argsort(-scores, stable)[:kk]]`` — the highest
    scores first, ties to the lower column, NaN scores after every other (in column order).

    One pass per row keeps the best ``kk`` in a sorted buffer (a new score enters if it is
    strictly above the buffer's last; equal scores stay behind the earlier columns).

    Returns a boolean ``(B,)``: the rows left to the NumPy code, those whose top ``kk``
    (``kk < c``) must take some of their NaN scores — which of them NumPy's
    ``argpartition`` keeps is its own business, so those rows are not filled here."""
    B, n = scores.shape
    kk = out.shape[1]
    top_s = np.empty(kk)
    top_j = np.empty(kk, np.int64)
    left = np.zeros(B, np.bool_)
    for i in range(B):
        filled = 0
        for j in range(n):
            s = scores[i, j]
            if math.isnan(s):  # NaN: after everything else
                continue
            if filled == kk:
                if not s > top_s[kk - 1]:
                    continue
                p = kk - 1
            else:
                p = filled
                filled += 1
            while p > 0 and top_s[p - 1] < s:
                top_s[p] = top_s[p - 1]
                top_j[p] = top_j[p - 1]
                p -= 1
            top_s[p] = s
            top_j[p] = j
        if filled < kk:  # fewer real scores than places: NaN scores fill the rest
            if kk < n:
                left[i] = True
                continue
            for j in range(n):  # every candidate is served: the NaNs last, in column order
                if filled == kk:
                    break
                s = scores[i, j]
                if math.isnan(s):
                    top_j[filled] = j
                    filled += 1
        for p in range(kk):
            out[i, p] = candidates[i, top_j[p]]
    return left


@jit
def _learned_row(topics, classifier, upload_time, item_part, candidates, profile, mean_cls, activity,
                 now, w, predicted, lo_out, rel, ids):
    """One row of :func:`learned_rows`, its relevance into ``rel`` ``(c,)``; ``ids`` ``(c,)`` is
    scratch. False (and the row unfinished) if an item id is out of range."""
    n = topics.shape[0]
    K = topics.shape[1]
    c = candidates.shape[0]
    for j in range(c):
        item = candidates[j]
        if item < 0:  # as np.take: -1 is the last item
            item += n
        if item < 0 or item >= n:
            return False
        ids[j] = item
    # relevance (dot_last): the products summed term by term in topic order, four candidates at
    # a time (independent sums, so their additions and their gathers overlap)
    j = 0
    if K == 0:
        rel[:] = 0.0
        j = c
    while j + 4 <= c:
        a0, a1, a2, a3 = ids[j], ids[j + 1], ids[j + 2], ids[j + 3]
        p = profile[0]
        r0 = topics[a0, 0] * p
        r1 = topics[a1, 0] * p
        r2 = topics[a2, 0] * p
        r3 = topics[a3, 0] * p
        for k in range(1, K):
            p = profile[k]
            r0 += topics[a0, k] * p
            r1 += topics[a1, k] * p
            r2 += topics[a2, k] * p
            r3 += topics[a3, k] * p
        rel[j] = r0
        rel[j + 1] = r1
        rel[j + 2] = r2
        rel[j + 3] = r3
        j += 4
    for rest in range(j, c):
        item = ids[rest]
        r = topics[item, 0] * profile[0]
        for k in range(1, K):
            r += topics[item, k] * profile[k]
        rel[rest] = r
    # the log-odds (_log_odds), term by term in its order
    cls_weight = w[4] * mean_cls
    user_part = w[5] * mean_cls + w[8] * activity
    w0, w1, w7 = w[0], w[1], w[7]
    for j in range(c):
        item = ids[j]
        r = rel[j]
        lo = w1 * r
        lo += w0
        lo *= r
        lo += item_part[item]
        lo += classifier[item] * cls_weight
        lo += user_part
        days = now - upload_time[item]
        if not (days > 0.0 or math.isnan(days)):  # np.maximum(age, 0.0): NaN stays, -0.0 -> 0.0
            days = 0.0
        days /= DAY
        days = math.log1p(days)
        days *= w7
        lo += days
        if predicted:  # exp(minimum(lo, 30)): NaN stays
            if lo > 30.0:  # noqa: PLR1730 - min() need not keep a NaN
                lo = 30.0
            lo = math.exp(lo)
        lo_out[j] = lo
    return True


@jit
def learned_rows(topics, classifier, upload_time, item_part, candidates, profile, mean_cls, activity,
                 now, w, predicted, lo_out, rel_out):
    """The learned engagement ranker's serving log-odds ``b + w·x`` (``predicted``: the
    predicted watch minutes ``exp(min(b + w·x, 30))``) of every row's candidates, into
    ``lo_out`` ``(B, c)``, and their relevance into ``rel_out`` (unless it has no columns).

    ``topics`` ``(n, K)``, ``classifier``, ``upload_time`` ``(n,)``: the observable items;
    ``item_part`` ``(n,)``: :func:`recsim.policies.learned._item_part` of every item;
    ``candidates`` ``(B, c)`` item ids; ``profile`` ``(B, K)``, ``mean_cls``, ``activity``,
    ``now`` ``(B,)``: the rows' users (:meth:`recsim.policies.learned.UserProfiles.of`) and
    times; ``w`` the model's raw weights (:meth:`~recsim.policies.learned.WeightedLogistic.linear`);
    ``rel_out`` ``(B, c)``, or ``(B, 0)`` when the relevance is not wanted. The operations are
    :func:`recsim.policies.learned._log_odds`'s, in its order, with the relevance summed term by
    term in topic order as :func:`recsim.arrays.dot_last` sums it (no fused multiply-adds).

    Returns False if an item id is out of range (the outputs then unfinished)."""
    c = candidates.shape[1]
    with_rel = rel_out.shape[1] > 0
    scratch = np.empty(c)
    ids = np.empty(c, np.int64)
    for i in range(candidates.shape[0]):
        rel = rel_out[i] if with_rel else scratch
        if not _learned_row(topics, classifier, upload_time, item_part, candidates[i], profile[i],
                            mean_cls[i], activity[i], now[i], w, predicted, lo_out[i], rel, ids):
            return False
    return True


@jit
def learned_row(topics, classifier, upload_time, item_part, candidates, profile, mean_cls, activity,
                now, w, predicted, lo_out, rel_out):
    """:func:`learned_rows` of one request: ``candidates`` ``(c,)``, ``profile`` ``(K,)``, the
    user's ``mean_cls``, ``activity`` and ``now`` numbers, outputs ``(c,)`` (``rel_out``
    ``(0,)`` when the relevance is not wanted)."""
    c = candidates.shape[0]
    rel = rel_out if rel_out.shape[0] > 0 else np.empty(c)
    return _learned_row(topics, classifier, upload_time, item_part, candidates, profile, mean_cls,
                        activity, now, w, predicted, lo_out, rel, np.empty(c, np.int64))
