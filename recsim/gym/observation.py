"""What a reinforcement-learning agent observes, and how its action becomes a slate.

Written once, used by the environments (:mod:`recsim.gym.env`) and by the adapter that runs a
trained agent as a scenario policy (:class:`recsim.gym.adapters.AgentPolicy`), so an agent sees
the same numbers in training and in a run. Plain NumPy: importing this module does not need
Gymnasium.

An observation is a flat dict of arrays (one decision; the vector environment adds a leading
axis of ``num_envs``), holding only what the platform observes:

================================  =============  ==================================================
key                               shape, dtype   meaning
================================  =============  ==================================================
``user``                          (12,) float32  the user's observable history, :data:`USER_FEATURES`
``user_topics``                   (K,) float32   watch-time-weighted topic profile of what the user
                                                 watched (observable topic vectors), unit norm;
                                                 zeros before the first watch
``candidate_topics``              (c, K) float32 observable topic vector of each candidate
``candidate_classifier``          (c,) float32   extremeness-classifier score ê of each candidate
``candidate_length``              (c,) float32   item length, seconds
``candidate_age``                 (c,) float32   seconds since upload
``candidate_mask``                (c,) int8      1 for a candidate, 0 for padding (a pool with
                                                 fewer than ``c`` unwatched items)
================================  =============  ==================================================

``c`` is ``recommender.n_candidates`` and ``K`` the number of topics. Padding rows are zeros.
"""

from __future__ import annotations

import numpy as np

from ..policies.base import HistoryTable, top_k_rows

__all__ = ["USER_FEATURES", "check_actions", "observe", "slates_from_indices",
           "slates_from_scores"]

#: The entries of ``observation["user"]``, in order (seconds for times):
#: ``time`` (simulated seconds since the horizon started), ``n_sessions``, ``n_impressions``,
#: ``n_clicks``, ``watch_seconds`` (all watching so far, warm-up included),
#: ``mean_watch_fraction`` (mean share of an item watched per click), ``mean_classifier``
#: (watch-time-weighted mean ê of what was watched), ``session_items`` and
#: ``session_watch_seconds`` (the session so far), ``since_last_session`` (seconds since the
#: previous session ended; 0 before one has), ``n_surveys``, ``mean_survey`` (mean survey
#: score 1–5; 0 before the first answer).
USER_FEATURES = (
    "time", "n_sessions", "n_impressions", "n_clicks", "watch_seconds", "mean_watch_fraction",
    "mean_classifier", "session_items", "session_watch_seconds", "since_last_session", "n_surveys",
    "mean_survey",
)


def _ratio(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    return np.divide(num, den, out=np.zeros(num.shape, dtype=float), where=den > 0)


def observe(histories: HistoryTable, users: np.ndarray, now: np.ndarray, candidates: np.ndarray,
            count: np.ndarray, items) -> dict[str, np.ndarray]:
    """The observations of ``B`` pending decisions: ``users`` ``(B,)`` index ``histories``,
    ``now`` ``(B,)`` seconds, ``candidates`` ``(B, c)`` item ids padded with -1 beyond each
    row's ``count``; ``items`` the catalog's :class:`~recsim.catalog.ObservableItems`. Returns
    the keys of the module docstring, each with a leading ``B`` axis."""
    users = np.asarray(users, dtype=np.int64)
    now = np.asarray(now, dtype=float)
    h = histories
    watch = h.watch_seconds[users]
    last = h.last_session_end[users]
    since = np.where(np.isfinite(last), now - last, 0.0)
    user = np.stack([
        now, h.n_sessions[users], h.n_impressions[users], h.n_clicks[users], watch,
        _ratio(h.watch_fraction_sum[users], h.n_clicks[users].astype(float)),
        _ratio(h.classifier_seconds[users], watch),
        h.session_items[users], h.session_watch_seconds[users], since, h.n_surveys[users],
        _ratio(h.survey_sum[users], h.n_surveys[users].astype(float)),
    ], axis=1).astype(np.float32)
    mix = h.topic_mix[users]
    norm = np.linalg.norm(mix, axis=1, keepdims=True)
    profile = np.divide(mix, norm, out=np.zeros_like(mix), where=norm > 0).astype(np.float32)
    c = candidates.shape[1]
    mask = np.arange(c)[None, :] < np.asarray(count)[:, None]
    ids = np.where(mask, candidates, 0)
    zero = ~mask

    def column(values: np.ndarray) -> np.ndarray:
        out = values[ids].astype(np.float32)
        out[zero] = 0.0
        return out

    topics = items.topics[ids].astype(np.float32)
    topics[zero] = 0.0
    return {
        "user": user,
        "user_topics": profile,
        "candidate_topics": topics,
        "candidate_classifier": column(items.classifier),
        "candidate_length": column(items.length),
        "candidate_age": np.where(mask, now[:, None] - items.upload_time[ids], 0.0).astype(np.float32),
        "candidate_mask": mask.astype(np.int8),
    }


def check_actions(actions, kind: str, B: int, k: int, c: int) -> np.ndarray:
    """``actions`` of ``B`` decisions as an array, or ``ValueError`` saying what is wrong:
    for ``kind`` ``"slate"`` a ``(B, k)`` integer array of indices in ``[0, c)``; for
    ``"scores"`` a ``(B, c)`` real array (NaN allowed: the lowest score)."""
    a = np.asarray(actions)
    if kind == "slate":
        if a.shape != (B, k) or a.dtype.kind not in "iu":
            raise ValueError(f"a slate action is {k} integer indices into the {c} candidates per decision "
                             f"({B} decision(s)); got an array of shape {a.shape} and type {a.dtype}")
        if ((a < 0) | (a >= c)).any():
            bad = a[(a < 0) | (a >= c)]
            raise ValueError(f"slate indices must be in [0, {c}); got {bad[:5].tolist()}")
        return a
    if a.shape != (B, c) or a.dtype.kind not in "iuf":
        raise ValueError(f"a scores action is {c} real scores (one per candidate) per decision ({B} decision(s)); "
                         f"got an array of shape {a.shape} and type {a.dtype}")
    return a


def slates_from_indices(actions: np.ndarray, candidates: np.ndarray, count: np.ndarray,
                        k: int | None = None) -> list[np.ndarray]:
    """The slates of ``B`` actions ``(B, k')`` of indices into each row's candidates
    ``(B, c)`` (``count`` ``(B,)`` real ones), each of ``min(k, count)`` items (``k``:
    ``k'`` if None): the action's valid indices (in ``[0, count)``, first occurrences) in
    order, best first, then — where repeats or padding indices left places empty — the
    first candidates not yet in the slate, in candidate order. Returns ``B`` arrays of item
    ids."""
    a = np.asarray(actions, dtype=np.int64)
    if a.ndim == 1:
        a = a[None, :]
    B, width = a.shape
    k = width if k is None else int(k)
    count = np.asarray(count)
    valid = (a >= 0) & (a < count[:, None])
    earlier = np.tril(np.ones((width, width), dtype=bool), -1)  # [j, i]: i before j
    repeat = ((a[:, :, None] == a[:, None, :]) & earlier[None] & valid[:, None, :]).any(axis=2)
    keep = valid & ~repeat
    out = []
    for row in range(B):
        n = min(k, int(count[row]))
        chosen = a[row][keep[row]][:n]
        if chosen.shape[0] < n:  # fill from the candidates not chosen, in order
            free = np.ones(int(count[row]), dtype=bool)
            free[chosen] = False
            chosen = np.concatenate([chosen, np.flatnonzero(free)[: n - chosen.shape[0]]])
        out.append(candidates[row, chosen])
    return out


def slates_from_scores(scores: np.ndarray, candidates: np.ndarray, count: np.ndarray, k: int) -> list[np.ndarray]:
    """The slates of ``B`` actions given as scores ``(B, c)``, one per candidate (higher is
    better): each row's ``min(k, count)`` best real candidates, best first, ties to the lower
    index (:func:`recsim.policies.base.top_k_rows`). NaN scores count as the lowest."""
    s = np.asarray(scores, dtype=float)
    if s.ndim == 1:
        s = s[None, :]
    count = np.asarray(count)
    s = np.where(np.isnan(s), -np.inf, s)
    out: list[np.ndarray] = [None] * s.shape[0]  # type: ignore[list-item]
    for n in np.unique(count).tolist():
        rows = np.flatnonzero(count == n)
        top = top_k_rows(candidates[rows, :n], s[rows, :n], k)
        for i, row in enumerate(rows.tolist()):
            out[row] = top[i]
    return out
