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

__all__ = ["learned_row", "learned_rows", "learned_top_k_rows", "top_k_rows"]

DAY = 86400.0

# Bounds of log1p(x) from the bits of y = 1 + x (y = 2^e·(1 + m), 0 ≤ m < 1): with b the top
# eight bits of m, log1p(x) lies in [e·ln 2 + log1p(b/256), e·ln 2 + log1p((b+1)/256)]. Each
# bound is widened by 1e-9, far more than the rounding of 1 + x, of the table and of libm's
# log1p (about 1e-13 at most below x = 1e300), so the computed log1p(x) lies inside.
_LOG_BITS = 8
_LOG1P_LOWER = np.log1p(np.arange(1 << _LOG_BITS) / (1 << _LOG_BITS)) - 1e-9
_LOG1P_UPPER = np.log1p(np.arange(1, (1 << _LOG_BITS) + 1) / (1 << _LOG_BITS)) + 1e-9
_LN2 = math.log(2.0)



@jit
def _enter(top_s, top_j, top_lo, filled, s, j, lo):
    """Put candidate ``j`` of score ``s`` (and log-odds ``lo``) into the best-first buffer
    ``top_s``/``top_j``/``top_lo`` holding ``filled`` of its ``kk`` places: behind the entries
    whose score is not below ``s`` (an equal score stays behind the earlier column), the last
    entry dropped when the buffer is full. Returns the number of places filled."""
    kk = top_s.shape[0]
    if filled == kk:
        p = kk - 1
    else:
        p = filled
        filled += 1
    while p > 0 and top_s[p - 1] < s:
        top_s[p] = top_s[p - 1]
        top_j[p] = top_j[p - 1]
        top_lo[p] = top_lo[p - 1]
        p -= 1
    top_s[p] = s
    top_j[p] = j
    top_lo[p] = lo
    return filled


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
            if filled == kk and not s > top_s[kk - 1]:
                continue
            filled = _enter(top_s, top_j, top_s, filled, s, j, s)
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
def _item_ids(candidates, n, ids):
    """The item ids ``candidates`` ``(c,)`` into ``ids`` as ``np.take`` reads them (-1 the last
    of the ``n`` items); False if one is out of range."""
    for j in range(candidates.shape[0]):
        item = candidates[j]
        if item < 0:
            item += n
        if item < 0 or item >= n:
            return False
        ids[j] = item
    return True


@jit
def _age_days(now, upload_time):
    """The age feature before its logarithm, as :func:`recsim.policies.learned._log_odds`
    computes it: ``np.maximum(now - upload_time, 0.0) / DAY`` (NaN stays, -0.0 gives 0.0)."""
    days = now - upload_time
    if not (days > 0.0 or math.isnan(days)):
        days = 0.0
    return days / DAY


@jit
def _log_odds_before_age(r, w0, w1, item_part, classifier, cls_weight, user_part):
    """The log-odds of :func:`recsim.policies.learned._log_odds` up to its last term (the
    age's), in its order: ``(w1·r + w0)·r + item_part + ê·cls_weight + user_part``."""
    lo = w1 * r
    lo += w0
    lo *= r
    lo += item_part
    lo += classifier * cls_weight
    lo += user_part
    return lo


@jit
def _log1p_bounds(days, y, y_bits):
    """Bounds ``(lower, upper)`` of ``log1p(days)`` for ``0 ≤ days < 1e300``, from the
    exponent and the top mantissa bits of ``1 + days`` and the tables ``_LOG1P_LOWER`` /
    ``_UPPER`` (a few additions, no logarithm); ``y`` and ``y_bits`` are one float64 and its
    int64 view, scratch."""
    y[0] = 1.0 + days
    e = (y_bits[0] >> 52) - 1023
    b = (y_bits[0] >> (52 - _LOG_BITS)) & ((1 << _LOG_BITS) - 1)
    return e * _LN2 + _LOG1P_LOWER[b], e * _LN2 + _LOG1P_UPPER[b]


@jit
def _relevance_row(topics, ids, c, profile, rel):
    """``rel[j] = Σ_k topics[ids[j], k]·profile[k]`` for the first ``c`` ids, each summed term
    by term in topic order (:func:`recsim.arrays.dot_last`'s sums), eight candidates at a time:
    independent sums, so their gathers and additions overlap."""
    K = topics.shape[1]
    if K == 0:
        rel[:c] = 0.0
        return
    j = 0
    while j + 8 <= c:
        a0, a1, a2, a3 = ids[j], ids[j + 1], ids[j + 2], ids[j + 3]
        a4, a5, a6, a7 = ids[j + 4], ids[j + 5], ids[j + 6], ids[j + 7]
        p = profile[0]
        r0, r1, r2, r3 = topics[a0, 0] * p, topics[a1, 0] * p, topics[a2, 0] * p, topics[a3, 0] * p
        r4, r5, r6, r7 = topics[a4, 0] * p, topics[a5, 0] * p, topics[a6, 0] * p, topics[a7, 0] * p
        for k in range(1, K):
            p = profile[k]
            r0 += topics[a0, k] * p
            r1 += topics[a1, k] * p
            r2 += topics[a2, k] * p
            r3 += topics[a3, k] * p
            r4 += topics[a4, k] * p
            r5 += topics[a5, k] * p
            r6 += topics[a6, k] * p
            r7 += topics[a7, k] * p
        rel[j], rel[j + 1], rel[j + 2], rel[j + 3] = r0, r1, r2, r3
        rel[j + 4], rel[j + 5], rel[j + 6], rel[j + 7] = r4, r5, r6, r7
        j += 8
    for rest in range(j, c):
        item = ids[rest]
        r = topics[item, 0] * profile[0]
        for k in range(1, K):
            r += topics[item, k] * profile[k]
        rel[rest] = r


@jit
def _learned_row(topics, classifier, upload_time, item_part, candidates, profile, mean_cls, activity,
                 now, w, predicted, lo_out, rel, ids):
    """One row of :func:`learned_rows`, its relevance into ``rel`` ``(c,)``; ``ids`` ``(c,)`` is
    scratch. False (and the row unfinished) if an item id is out of range."""
    c = candidates.shape[0]
    if not _item_ids(candidates, topics.shape[0], ids):
        return False
    _relevance_row(topics, ids, c, profile, rel)
    # the log-odds (_log_odds), term by term in its order
    cls_weight = w[4] * mean_cls
    user_part = w[5] * mean_cls + w[8] * activity
    w0, w1, w7 = w[0], w[1], w[7]
    for j in range(c):
        item = ids[j]
        lo = _log_odds_before_age(rel[j], w0, w1, item_part[item], classifier[item], cls_weight, user_part)
        days = math.log1p(_age_days(now, upload_time[item]))
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


@jit
def learned_top_k_rows(topics, classifier, upload_time, item_part, candidates, profile, mean_cls, activity,
                       now, w, oldest_upload, out, left, scored):
    """The learned engagement ranker's slates: for every row, the ``kk = out.shape[1]``
    candidates of highest predicted watch minutes ``exp(min(b + w·x, 30))``, best first, ties
    to the lower column — exactly :func:`top_k_rows` of :func:`learned_rows`'s ``predicted``
    scores, without computing the scores that cannot make the slate.

    The arguments are :func:`learned_rows`'s, and ``oldest_upload`` the earliest of
    ``upload_time`` (NaN skipped; inf if there is none), found once per catalog by the caller
    so that a call for one request does not read the whole catalog; ``left`` ``(B,)`` is set True for the rows left
    to the NumPy code (those :func:`top_k_rows` leaves: NaN scores inside the top ``kk``), and
    ``scored`` ``(B,)`` to the number of each row's candidates whose score was computed.

    The age term ``w₇·log1p(days)`` is the last of the log-odds' sums, and bounded twice
    without a logarithm. For the whole row: ages are at least 0, so the term is at most 0 when
    ``w₇ < 0``, and at most ``w₇·log1p(the oldest item's age)`` otherwise (``cap``, computed
    once per row and widened by 1e-9 relative, far more than libm's log1p may be out of
    order). For the candidate: ``log1p(days)`` lies within the bounds of
    :func:`_log1p_bounds`. Roundings to nearest are monotone, so the log-odds before that term
    plus either bound of it bounds the exact log-odds from above. A candidate whose bound is
    below a bar by more than 1e-9 (relative) has a smaller ``exp`` than ``kk`` others and
    cannot enter (an equal score would not either), so its ``log1p`` and ``exp`` are never
    computed (below a log-odds of -700, near where ``exp`` underflows, nothing is skipped).

    The bars: first, a pass over the row computes every log-odds before its age term and
    keeps the ``kk``-th largest lower bound of the final (clamped) log-odds — the age term is
    at least 0 when ``w₇ ≥ 0``, at least ``w₇·log1p(the oldest item's age)`` (widened as
    ``cap``) otherwise; a candidate whose age is NaN or infinite has no lower bound — so ``kk``
    log-odds are at least that bar. Then, as candidates enter the buffer, the buffer's last
    log-odds once it is full. The rest are scored exactly and enter as in
    :func:`top_k_rows`. On the benchmark's rows about 11 of 200 candidates are scored (40
    with the buffer's bar alone: a top ``kk`` kept as the candidates come takes about
    ``kk·(1 + ln(c/kk))``), and the row's bound stops nearly all the others; the candidate's
    stops them when the age term weighs more than the rest's differences.

    Returns False if an item id is out of range (the outputs then unfinished)."""
    B, c = candidates.shape
    kk = out.shape[1]
    ids = np.empty(c, np.int64)
    rel = np.empty(c)
    before_age = np.empty(c)
    ages = np.empty(c)
    nan_score = np.empty(c, np.bool_)
    top_s = np.empty(kk)
    top_lo = np.empty(kk)
    top_j = np.empty(kk, np.int64)
    low = np.empty(kk)
    low_j = np.empty(kk, np.int64)
    y = np.empty(1)
    y_bits = y.view(np.int64)
    w0, w1, w7 = w[0], w[1], w[7]
    age_bounded = math.isfinite(w7)  # else no age term has a lower bound
    for i in range(B):
        if not _item_ids(candidates[i], topics.shape[0], ids):
            return False
        _relevance_row(topics, ids, c, profile[i], rel)
        cls_weight = w[4] * mean_cls[i]
        user_part = w[5] * mean_cls[i] + w[8] * activity[i]
        oldest = math.log1p(_age_days(now[i], oldest_upload))
        oldest += 1e-9 * (1.0 + oldest)
        if w7 < 0.0:
            cap, floor = 0.0, oldest * w7
        else:  # cap NaN (no bound) if w7 is NaN, or 0 times an infinite age
            cap, floor = oldest * w7, 0.0
        # first pass: every log-odds before its age term and age in days (kept for the
        # second), and the kk-th largest lower bound of the final log-odds (``floor`` bounds
        # the age term from below)
        n_low = 0
        for j in range(c):
            item = ids[j]
            lo = _log_odds_before_age(rel[j], w0, w1, item_part[item], classifier[item], cls_weight, user_part)
            before_age[j] = lo
            ages[j] = _age_days(now[i], upload_time[item])
            if not (ages[j] < 1e300 and age_bounded):
                continue  # a NaN or infinite age term: no lower bound
            lo += floor
            if lo > 30.0:  # noqa: PLR1730 - the bound of the clamped log-odds
                lo = 30.0
            if math.isnan(lo) or (n_low == kk and not lo > low[kk - 1]):
                continue
            n_low = _enter(low, low_j, low, n_low, lo, j, lo)
        first_bar = -math.inf  # kk log-odds are at least low[kk - 1]: below it, none can enter
        if n_low == kk and low[kk - 1] > -700.0:
            first_bar = low[kk - 1] - 1e-9 * (1.0 + abs(low[kk - 1]))
        filled = 0
        n_scored = 0
        for j in range(c):
            lo = before_age[j]
            nan_score[j] = False
            if lo + cap < first_bar:  # below the first pass's bar
                continue
            pruning = filled == kk and top_lo[kk - 1] > -700.0
            bar = 0.0
            if pruning:
                last = top_lo[kk - 1]
                bar = last - 1e-9 * (1.0 + abs(last))
                if lo + cap < bar:  # stopped by the row's oldest item
                    continue
            days = ages[j]
            if pruning and days < 1e300:
                lower_log, upper_log = _log1p_bounds(days, y, y_bits)
                if lo + (upper_log if w7 >= 0.0 else lower_log) * w7 < bar:
                    continue
            n_scored += 1
            days = math.log1p(days)
            days *= w7
            lo += days
            if lo > 30.0:  # noqa: PLR1730 - min() need not keep a NaN
                lo = 30.0
            s = math.exp(lo)
            if math.isnan(s):  # NaN: after everything else
                nan_score[j] = True
                continue
            if filled == kk and not s > top_s[kk - 1]:
                continue
            filled = _enter(top_s, top_j, top_lo, filled, s, j, lo)
        scored[i] = n_scored
        if filled < kk:  # never full, so every score was computed: as top_k_rows
            if kk < c:
                left[i] = True
                continue
            for j in range(c):
                if filled == kk:
                    break
                if nan_score[j]:
                    top_j[filled] = j
                    filled += 1
        for p in range(kk):
            out[i, p] = candidates[i, top_j[p]]
    return True
