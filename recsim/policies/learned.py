"""Policies that learn from the logs alone (README "Policies"): an engagement ranker in the style of
YouTube's (Covington et al., 2016), a linear bandit, and alternatives built on them.

Everything here sees only what a platform sees: the observable features of items
(:class:`recsim.catalog.ObservableItems`: noisy topics, the extremeness *classifier* score,
length, upload time) and the logged feedback. User features are recomputed from the logs at
each scheduled ``fit`` ("daily batch features"); the features a model is trained on are exactly
those it was served with, so there is no train/serve skew, and feedback reaches the model late.

Serving draws nothing at random: equal scores go to the candidate drawn first (see
:func:`~recsim.policies.base.top_k`), and candidates arrive in random order. Every policy here
also scores a whole :class:`~recsim.policies.base.RequestBatch` at once (``score_batch``), row
for row bit-identical to ``score``: the serving arithmetic is elementwise, and its dot products
are term-by-term sums (:func:`~recsim.policies.base.dot_last`) rather than BLAS products,
which round differently for a matrix and a stack of matrices.
"""

from __future__ import annotations

from typing import Optional

import numpy as np
from pydantic import BaseModel, ConfigDict, Field
from scipy.special import expit

from .. import kernels
from .. import rng as rngmod
from ..catalog import ObservableItems
from ..config import Duration
from .base import (
    BLOCK_ELEMENTS,
    CandidateFeatures,
    Feedback,
    Policy,
    PolicyContext,
    Request,
    RequestBatch,
    RequestRngs,
    ScoringPolicy,
    dot_last,
    gather_dot,
    row_blocks,
    sum_first,
    top_k,
    top_k_rows,
    uses_own,
    vector_norm,
)

__all__ = [
    "UserProfiles",
    "pair_features",
    "FEATURE_NAMES",
    "CLASSIFIER_FEATURES",
    "WeightedLogistic",
    "EngagementPolicy",
    "HarmPenalizedPolicy",
    "StatedPreferencePolicy",
    "BanditPolicy",
]

DAY = 86400.0

FEATURE_NAMES = (
    "relevance",  # cosine of the user's watch-time-weighted topic profile and the item's topics
    "relevance_sq",
    "classifier",  # ê, the extremeness classifier score
    "classifier_sq",
    "classifier_x_user_classifier",  # ê × the user's mean ê: lets the model find "a bit more"
    "user_classifier",
    "log_length",  # log(L / 4 min)
    "log_age_days",  # log(1 + age in days)
    "user_activity",  # log(1 + decayed minutes watched)
    "log_position",  # slate position bias; 0 (position 1) when serving
)

#: The features that involve the extremeness classifier score ê, alone or with the user's
#: history (the watch-time-weighted mean ê of what the user watched): ê, ê², ê × the user's
#: mean ê and the user's mean ê. Within one request only the first three change the ranking.
CLASSIFIER_FEATURES = (
    "classifier", "classifier_sq", "classifier_x_user_classifier", "user_classifier",
)


def _compact(ids: np.ndarray) -> np.ndarray:
    """Integer ids as int32 when they fit (half the memory, the same values)."""
    if ids.dtype != np.int32 and ids.shape[0] and -(2**31) <= ids.min() and ids.max() < 2**31:
        return ids.astype(np.int32)
    return ids


class UserProfiles:
    """Per-user features recomputed from feedback at each fit: exponentially decayed sums of
    watch time, watch-time-weighted observable topics and classifier scores.

    Arrays grow to fit the largest user id seen. ``half_life`` in seconds.
    """

    def __init__(self, n_users: int, n_topics: int, half_life: float):
        self.half_life = half_life
        self.n_topics = n_topics
        self.topic = np.zeros((n_users, n_topics))
        self.classifier = np.zeros(n_users)
        self.watch = np.zeros(n_users)
        self.time = 0.0
        self._one: dict[int, tuple[np.ndarray, float, float]] = {}  # of(user) since the last update
        self._per_user: tuple[np.ndarray, ...] | None = None  # _derived() since the last update
        self._pending: list[tuple[np.ndarray, ...]] = []  # watches observed since the last update

    def _grow(self, n: int) -> None:
        if n <= self.watch.shape[0]:
            return
        extra = n - self.watch.shape[0]
        self.topic = np.vstack([self.topic, np.zeros((extra, self.n_topics))])
        self.classifier = np.concatenate([self.classifier, np.zeros(extra)])
        self.watch = np.concatenate([self.watch, np.zeros(extra)])

    def _derived(self) -> tuple[np.ndarray, ...]:
        """Per user, as of the last update, what :meth:`of` reads: whether the user is known
        (watch time above 0), the norm to divide the topic sums by (1.0 for an unknown user or
        a zero norm), the mean classifier score and the activity (0 for an unknown user); each
        ``(n_users,)``, computed once per update with :meth:`of`'s operations."""
        if self._per_user is None:
            known = self.watch > 0
            norm = vector_norm(self.topic)  # row by row: the bits of each row alone
            norm = np.where(known & (norm > 0), norm, 1.0)
            watch = np.where(known, self.watch, 1.0)
            mean_cls = np.where(known, self.classifier / watch, 0.0)
            activity = np.where(known, np.log1p(watch / 60.0), 0.0)
            self._per_user = (known, norm, mean_cls, activity)
        return self._per_user

    def _of_one(self, user: int) -> tuple[np.ndarray, float, float]:
        # read from _derived(), as the array path of :meth:`of`: the same bits
        if user >= self.watch.shape[0] or self.watch[user] <= 0:
            return np.zeros(self.n_topics), 0.0, 0.0
        _, norm, mean_cls, activity = self._derived()
        return self.topic[user] / norm[user], float(mean_cls[user]), float(activity[user])

    def observe(self, feedback: Feedback) -> None:
        """Keep the watches (clicked rows) of ``feedback`` for the next :meth:`update`: the
        user, item, watch time and time of each, in the order given. Calls in time order
        keep each user's watches in time order, as one call with all of them would."""
        clicked = feedback.clicked
        if clicked.any():
            self._pending.append((_compact(feedback.user_id[clicked]), _compact(feedback.item_id[clicked]),
                                  feedback.watch_time[clicked], feedback.time[clicked]))

    def update(self, feedback: Feedback | None, items: ObservableItems, now: float) -> None:
        """Decay to ``now`` and add the watches observed since the last update and those in
        ``feedback`` (None: none more)."""
        if feedback is not None:
            self.observe(feedback)
        self._one, self._per_user = {}, None
        decay = 0.5 ** ((now - self.time) / self.half_life) if self.time else 1.0
        self.topic *= decay
        self.classifier *= decay
        self.watch *= decay
        self.time = now
        pending, self._pending = self._pending, []
        if not pending:
            return
        users, item, watch_time, time = (np.concatenate(a) for a in zip(*pending))
        # each watch decayed from its own time; a user's watches are added in time order
        tau = watch_time * 0.5 ** ((now - time) / self.half_life)
        self._grow(int(users.max()) + 1)
        # the (watches, K) products a block of rows at a time (the same sums in the same
        # order: a temporary of ~16 MB, not of gigabytes at a million users)
        step = max(1, (1 << 21) // max(self.n_topics, 1))
        for lo in range(0, users.shape[0], step):
            rows = slice(lo, lo + step)
            np.add.at(self.topic, users[rows], tau[rows, None] * items.topics[item[rows]])
        np.add.at(self.classifier, users, tau * items.classifier[item])
        np.add.at(self.watch, users, tau)

    def of(self, users: np.ndarray | int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(unit topic profile ``(…, K)``, mean classifier score, activity) of ``users``.

        For one user (the per-request path) the result is kept until the next :meth:`update`;
        do not modify the returned array. For an array of users, element ``i`` is bit for bit
        what ``of(int(users[i]))`` gives.
        """
        if isinstance(users, (int, np.integer)):  # one user: the per-request path
            known = self._one.get(users)
            if known is None:
                known = self._one[int(users)] = self._of_one(users)
            return known
        users = np.asarray(users)
        known, norm, mean_cls, activity = self._derived()
        inside = users < self.watch.shape[0]
        if inside.all():
            safe = users
            known = known[safe]
        else:
            safe = np.where(inside, users, 0)
            known = inside & known[safe]
        # users never seen (or fully decayed), or beyond the arrays, get zeros, as in _of_one
        topic = self.topic[safe]
        if not known.all():
            topic[~known] = 0.0
        topic /= np.where(known, norm[safe], 1.0)[..., None]
        return topic, np.where(known, mean_cls[safe], 0.0), np.where(known, activity[safe], 0.0)


def pair_features(
    topic: np.ndarray,
    user_classifier: np.ndarray | float,
    activity: np.ndarray | float,
    item_topics: np.ndarray,
    item_classifier: np.ndarray,
    item_length: np.ndarray,
    item_age: np.ndarray,
    position: np.ndarray | float = 1.0,
) -> np.ndarray:
    """User × item feature matrix, shape ``(n, len(FEATURE_NAMES))``.

    ``topic`` is ``(K,)`` for one user scored against ``n`` items, or ``(n, K)`` row-aligned
    with the items; lengths and ages in seconds; ``position`` 1-based. More generally the
    arguments broadcast (``topic`` ``(B, 1, K)`` against ``item_topics`` ``(B, c, K)``, the
    user scalars as ``(B, 1)``, the item arrays ``(B, c)``) to a ``(…, n, F)`` result whose
    every row is what the same user and item give alone: the arithmetic is elementwise, and
    the relevance a term-by-term sum (:func:`~recsim.policies.base.dot_last`; a BLAS product
    rounds differently for different shapes).
    """
    rel = dot_last(item_topics, topic)
    e = item_classifier
    out = np.empty(rel.shape + (len(FEATURE_NAMES),))
    out[..., 0] = rel
    out[..., 1] = rel * rel
    out[..., 2] = e
    out[..., 3] = e * e
    out[..., 4] = e * user_classifier
    out[..., 5] = user_classifier
    out[..., 6] = np.log(item_length / 240.0)
    out[..., 7] = np.log1p(np.maximum(item_age, 0.0) / DAY)
    out[..., 8] = activity
    out[..., 9] = np.log(position)
    return out


def _fill_serving(X: np.ndarray, rel: np.ndarray, mean_cls, age: np.ndarray, activity) -> np.ndarray:
    """Fill the user-dependent columns of serving features ``X`` (``(…, c, F)``, the item
    columns of :func:`_item_features` gathered) as :func:`pair_features` computes them, with
    ``position = 1``; the user scalars broadcast (floats, or ``(B, 1)`` for a batch)."""
    X[..., 0] = rel
    np.multiply(rel, rel, out=X[..., 1])
    np.multiply(X[..., 2], mean_cls, out=X[..., 4])
    X[..., 5] = mean_cls
    age = np.maximum(age, 0.0)
    age /= DAY
    X[..., 7] = np.log1p(age)
    X[..., 8] = activity
    return X


def _item_features(items: ObservableItems) -> np.ndarray:
    """Rows of :func:`pair_features` for every item, shape ``(n_items, len(FEATURE_NAMES))``,
    with the columns that depend on the item alone filled (position 1) and zeros elsewhere;
    the values are those pair_features computes, since its operations are elementwise."""
    X = np.zeros((items.n_items, len(FEATURE_NAMES)))
    e = items.classifier
    X[:, 2] = e
    X[:, 3] = e * e
    X[:, 6] = np.log(items.length / 240.0)
    X[:, 9] = np.log(1.0)
    return X


#: columns per block of :func:`_weighted_gram`: 11 rows × 16,384 float64 = 1.4 MB, a weighted
#: copy the cache holds
_GRAM_BLOCK = 16_384


def _weighted_gram(Zt: np.ndarray, p: np.ndarray, out: np.ndarray) -> np.ndarray:
    """``out + Σ_i p_i·z_i·z_iᵀ`` over the columns ``z_i`` of ``Zt`` ``(m, n)``, weights ``p``
    ``(n,)``, into ``out`` ``(m, m)`` (returned): IRLS's Hessian ``Zᵀ·diag(p)·Z``
    (:meth:`WeightedLogistic.fit`), summed over blocks of :data:`_GRAM_BLOCK` columns, so the
    block's weighted copy stays in the cache and no ``(m, n)`` temporary is made. With one
    block the bits are those of ``out + (Zt * p) @ Zt.T``."""
    for lo in range(0, Zt.shape[1], _GRAM_BLOCK):
        block = Zt[:, lo: lo + _GRAM_BLOCK]
        out += (block * p[lo: lo + _GRAM_BLOCK]) @ block.T
    return out


def _softplus(z: np.ndarray) -> np.ndarray:
    """``log(1 + e^z)`` elementwise, as ``max(z, 0) + log1p(e^−|z|)`` (no overflow)."""
    out = np.abs(z)
    np.negative(out, out=out)
    np.exp(out, out=out)
    np.log1p(out, out=out)
    out += np.maximum(z, 0.0)
    return out


class WeightedLogistic:
    """Watch-time-weighted logistic regression (Covington et al., 2016).

    Clicked impressions are positives weighted by their watch time (minutes), the others
    negatives of weight 1; the learned odds exp(w·x) then estimate the expected watch time per
    impression. Features are standardized; L2 penalty ``l2`` on all but the intercept.
    """

    def __init__(self, l2: float = 1.0, max_iter: int = 25, tol: float = 1e-9):
        self.l2 = l2
        self.max_iter = max_iter
        self.tol = tol
        self.coef: np.ndarray | None = None
        self.mean: np.ndarray | None = None
        self.scale: np.ndarray | None = None

    def fit(self, X: np.ndarray, clicked: np.ndarray, weight: np.ndarray) -> "WeightedLogistic":
        """Fit to rows ``X`` ``(n, F)`` (any float dtype; computed in float64), labels
        ``clicked`` ``(n,)`` and weights ``(n,)``, by Newton's method (IRLS) from the previous
        solution, each step shortened by backtracking until the loss does not rise; stops when
        a step lowers the loss by less than ``tol``, or after ``max_iter`` steps.

        The standardized features are held one row per feature (``(F + 1, n)``, a row of
        ones first), so every pass over them reads contiguous memory and the products are
        matrix-vector products."""
        n, F = X.shape
        Zt = np.empty((F + 1, n))
        Zt[0] = 1.0
        Zt[1:] = X.T
        features = Zt[1:]
        self.mean = features.mean(axis=1)
        features -= self.mean[:, None]
        scale = np.sqrt(np.einsum("ij,ij->i", features, features) / n)  # the standard deviations
        self.scale = np.where(scale > 1e-9, scale, 1.0)
        features /= self.scale[:, None]
        w = weight / weight.sum() * n
        wy = w * clicked  # w·y: labels 0/1 (booleans), or fractional
        penalty = np.full(F + 1, self.l2)
        penalty[0] = 0.0

        def loss(z: np.ndarray, beta: np.ndarray) -> float:
            # the weighted negative log-likelihood Σ w·[log(1 + e^z) − y·z], plus the ridge term
            return (w @ _softplus(z) - wy @ z + 0.5 * (penalty * beta * beta).sum()) / n

        beta = self.coef if self.coef is not None and self.coef.shape[0] == F + 1 else np.zeros(F + 1)
        z = beta @ Zt
        current = loss(z, beta)
        for _ in range(self.max_iter):
            p = expit(z)
            grad = Zt @ (w * p - wy) + penalty * beta
            p *= 1.0 - p
            p *= w  # the IRLS weights w·p·(1 − p)
            hess = _weighted_gram(Zt, p, np.diag(penalty + 1e-9))
            step = np.linalg.solve(hess, grad)
            size = 1.0
            while True:  # backtracking keeps every step a descent step
                candidate = beta - size * step
                z_new = candidate @ Zt
                value = loss(z_new, candidate)
                if value <= current or size < 1e-4:
                    break
                size *= 0.5
            converged = current - value < self.tol
            beta, current, z = candidate, min(value, current), z_new
            if converged:
                break
        self.coef = beta
        return self

    @property
    def fitted(self) -> bool:
        return self.coef is not None

    def log_odds(self, X: np.ndarray) -> np.ndarray:
        """The log-odds of the rows of ``X`` (``(…, F)``), without BLAS: a row gives the same
        bits alone or inside a batch."""
        Z = X - self.mean
        Z /= self.scale
        return self.coef[0] + dot_last(Z, self.coef[1:])

    def linear(self) -> tuple[np.ndarray, float]:
        """``(w, b)`` with log-odds ``b + w·x`` of the raw features ``x``: the standardization
        folded into the coefficients (the same function; rounding may differ in the last
        bits from :meth:`log_odds`)."""
        w = self.coef[1:] / self.scale
        return w, float(self.coef[0] - dot_last(self.mean, w))


def row_uniforms(key: int, user_id: np.ndarray, time: np.ndarray, position: np.ndarray,
                 clicked: np.ndarray) -> np.ndarray:
    """A uniform in (0, 1) for each feedback row ``(n,)``, a function of ``key`` and of the
    row alone (its user, time, position and whether it was clicked, which together tell the
    rows of a run apart): the same for a row whatever other rows come with it, so a sample
    taken by these uniforms does not depend on how the feedback is split into calls or
    ordered. Counter-based (:func:`recsim.rng.uniforms`), no generator state."""
    with np.errstate(over="ignore"):
        bits = np.ascontiguousarray(time, dtype=np.float64).view(np.uint64)
        counters = rngmod.splitmix64_array(bits) ^ (
            np.asarray(position, dtype=np.uint64) * np.uint64(2) + np.asarray(clicked, dtype=np.uint64))
    return rngmod.uniforms(rngmod.user_keys(key, user_id), counters)


class _TrainingWindow:
    """Training rows of the last ``window`` seconds, batch by batch (float32 to save memory),
    at most ``max_rows`` of them (None: all).

    Rows arrive through :meth:`observe`, as the feedback is logged, into the batch of the next
    fit; :meth:`close` ends that batch at the fit. Every row carries a uniform key that is a
    function of the row alone (:func:`row_uniforms`). While the window holds more than
    ``max_rows`` rows, each batch keeps only its rows whose key is below a threshold τ (the
    ``max_rows`` smallest keys at the time); a batch's τ only falls, so the rows it keeps are
    an independent Bernoulli(τ) sample of its rows, and each counts with weight 1/τ
    (Horvitz–Thompson): weighted sums over the kept rows — the fit's log-likelihood, gradient
    and Hessian — are unbiased for the sums over every row of the window. Below ``max_rows``
    nothing is dropped and τ = 1: the rows and weights are exactly the window's.

    The batch being filled is thinned the same way while it grows (to ``max_rows`` rows once
    it holds twice as many), so memory is bounded by about ``3·max_rows`` rows whatever the
    number of users, the window's length and the time between fits; and since the keys are
    the rows' own and a closed batch is sorted (by time, non-clicked first, position), the
    rows kept, their order and so the fit do not depend on how the feedback was split into
    calls of :meth:`observe`."""

    def __init__(self, window: float, max_rows: int | None = None):
        self.window = window
        self.max_rows = max_rows
        # [time, X (float32), clicked, weight, keys, tau]
        self.batches: list[list] = []
        # the batch being filled: chunks of [X (float32), clicked, weight, keys, time, position]
        self.pending: list[list[np.ndarray]] = []
        self.n_pending = 0
        self.tau = 1.0  # the threshold of the batch being filled: later rows need a key below it

    def observe(self, X: np.ndarray, clicked: np.ndarray, weight: np.ndarray, keys: np.ndarray,
                time: np.ndarray, position: np.ndarray) -> None:
        """Add rows to the batch being filled: features ``(n, F)``, clicked, weights, keys
        (:func:`row_uniforms`), and the time and position that order a closed batch. Rows
        whose key is not below :attr:`tau` are left out (a caller may leave them out before
        computing their features)."""
        keep = keys < self.tau
        if not keep.all():
            X, clicked, weight, keys, time, position = (a[keep] for a in (X, clicked, weight, keys, time, position))
        if keys.shape[0] == 0:
            return
        self.pending.append([X.astype(np.float32), clicked, weight, keys, time, position])
        self.n_pending += keys.shape[0]
        if self.max_rows is not None and self.n_pending > 2 * self.max_rows:
            self._thin_pending()

    def _thin_pending(self) -> None:
        """Keep the ``max_rows`` rows of the batch being filled with the smallest keys."""
        if self.max_rows is None or self.n_pending <= self.max_rows:
            return
        cols = [np.concatenate(c) for c in zip(*self.pending)]
        tau = float(np.partition(cols[3], self.max_rows)[self.max_rows])
        keep = cols[3] < tau
        self.pending = [[c[keep] for c in cols]]
        self.n_pending = int(keep.sum())
        self.tau = tau

    def close(self, now: float) -> None:
        """End the batch being filled (the fit at ``now``): its rows, sorted by time, then
        non-clicked first, then position, join the window; batches older than the window are
        dropped and the window is thinned to ``max_rows`` rows."""
        self._thin_pending()
        if self.pending:
            X, clicked, weight, keys, time, position = (np.concatenate(c) for c in zip(*self.pending))
            order = np.lexsort((position, clicked, time))
            self.batches.append([now, X[order], clicked[order], weight[order], keys[order], self.tau])
        self.pending, self.n_pending, self.tau = [], 0, 1.0
        self.batches = [b for b in self.batches if b[0] > now - self.window]
        total = sum(b[1].shape[0] for b in self.batches)
        if self.max_rows is None or total <= self.max_rows:
            return
        tau = float(np.partition(np.concatenate([b[4] for b in self.batches]), self.max_rows)[self.max_rows])
        for b in self.batches:
            if tau < b[5]:
                keep = b[4] < tau
                b[1], b[2], b[3], b[4], b[5] = b[1][keep], b[2][keep], b[3][keep], b[4][keep], tau

    def rows(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The window's rows: features (float32, as held), clicked, weights (each divided by
        its batch's τ)."""
        if not self.batches:
            return np.empty((0, len(FEATURE_NAMES)), np.float32), np.empty(0, bool), np.empty(0)
        X = np.vstack([b[1] for b in self.batches])
        weight = np.concatenate([b[3] if b[5] == 1.0 else b[3] / b[5] for b in self.batches])
        return X, np.concatenate([b[2] for b in self.batches]), weight


class EngagementParams(BaseModel):
    model_config = ConfigDict(extra="forbid")
    window: Duration = Field(7 * DAY, description="train on the feedback of this last period")
    negative_rate: float = Field(
        0.2, gt=0.0, le=1.0, description="share of non-clicked impressions kept (reweighted)"
    )
    l2: float = Field(1.0, ge=0.0, description="L2 penalty on standardized coefficients")
    profile_half_life: Duration = Field(3 * DAY, description="half-life of the user profile sums")
    min_clicks: int = Field(20, ge=1, description="clicks needed before the first model is used")
    max_rows: Optional[int] = Field(
        1_000_000, ge=1000,
        description="train on at most this many rows of the window: beyond it, a uniform sample "
                    "reweighted to stand for every row (null: all rows; memory then grows with "
                    "users × window)")
    seed: int = Field(0, ge=0, description="seed of the negative subsampling")


class EngagementPolicy(ScoringPolicy):
    """Learned engagement optimizer: ranks by predicted watch time per impression from a
    watch-time-weighted logistic regression over user-history × item features, refit from the
    logs on the retrain schedule. Observable data only. Draws nothing from ``rng``: before its
    first fit every score is 0 and it serves the candidates in their (random) draw order, and
    equal scores later also go to the candidate drawn first."""

    draws_nothing = True

    Params = EngagementParams

    def reset(self, context: PolicyContext) -> None:
        p = self.params
        self.context_ = context
        self.profiles_ = UserProfiles(context.n_users, context.n_topics, p.profile_half_life)
        self.window_ = _TrainingWindow(p.window, p.max_rows)
        self.model_ = WeightedLogistic(p.l2)
        # the row keys of the negative subsample and of the training window's sample
        self.sample_keys_ = (rngmod.stream_key(p.seed, 0, "learned:negatives"),
                             rngmod.stream_key(p.seed, 0, "learned:window"))
        self.n_fits_ = 0
        # serving caches, rebuilt on demand: the log-odds terms of the current model
        # (_linear) and the item columns of the feature matrix (features)
        self.linear_ = None
        self.static_features_ = None
        self.oldest_upload_ = None

    # ---- training
    def _training_rows(self, feedback: Feedback) -> tuple[np.ndarray, ...]:
        """The training rows of ``feedback`` for the window (:meth:`_TrainingWindow.observe`):
        features as served (user profiles as of the previous fit), labels, weights, keys,
        times and positions. Every click, and the non-clicked impressions whose own uniform
        (:func:`row_uniforms`) falls below ``negative_rate``; only the rows whose window key
        is below the window's threshold get their features computed."""
        neg_key, window_key = self.sample_keys_
        user, time, position, clicked = feedback.user_id, feedback.time, feedback.position, feedback.clicked
        keep = clicked | (row_uniforms(neg_key, user, time, position, clicked) < self.params.negative_rate)
        keep = np.flatnonzero(keep)
        keys = row_uniforms(window_key, user[keep], time[keep], position[keep], clicked[keep])
        if self.window_.tau < 1.0:  # the batch is already thinned: features for a sample only
            keep, keys = keep[keys < self.window_.tau], keys[keys < self.window_.tau]
        users = user[keep]
        item = feedback.item_id[keep]
        clicked = clicked[keep]
        served = feedback.served_at[keep] if feedback.served_at is not None else time[keep]
        items = self.context_.items
        topic, mean_cls, activity = self.profiles_.of(users)
        X = pair_features(
            topic, mean_cls, activity, items.topics[item], items.classifier[item],
            items.length[item], served - items.upload_time[item], position[keep],
        )
        minutes = feedback.watch_time[keep] / 60.0
        weight = np.where(clicked, minutes, 1.0 / self.params.negative_rate)
        return X, clicked, weight, keys, time[keep], position[keep]

    def observe(self, feedback: Feedback) -> None:
        """Take the feedback logged since the previous call (or fit) into the batch of the
        next fit: its training rows (a sample, :meth:`_training_rows`) and its watches for
        the user profiles. The engines call it as the feedback is logged, so that it is not
        kept until the retrain; what the next fit learns does not depend on how the feedback
        was split into calls (the samples are by the rows' own keys, a closed batch is
        sorted, and each user's watches arrive in time order)."""
        if len(feedback):
            self.window_.observe(*self._training_rows(feedback))
            self.profiles_.observe(feedback)

    def fit(self, feedback: Feedback, now: float) -> None:
        self.observe(feedback)
        self.window_.close(now)
        X, clicked, weight = self.window_.rows()
        if clicked.sum() >= self.params.min_clicks and (~clicked).any():
            self.model_.fit(X, clicked, weight)
        # user features for the next period, as the platform's daily batch job would
        self.profiles_.update(None, self.context_.items, now)
        self.n_fits_ += 1

    def learned(self) -> dict[str, float]:
        """The click model's coefficients, ``{}`` before the first fit that yields one.

        - ``click_model.intercept`` and ``click_model.<feature>`` for every name of
          :data:`FEATURE_NAMES`: the log-odds ``b + w·x`` on the *raw* features (the
          standardization folded in, :meth:`WeightedLogistic.linear`). The odds estimate
          the watch minutes per impression, so a weight is the change of log(predicted
          watch minutes) per unit of its feature. The weights on the classifier are
          ``click_model.classifier`` (ê), ``click_model.classifier_sq`` (ê²),
          ``click_model.classifier_x_user_classifier`` (ê × the user's mean ê: with it the
          preferred ê can follow the user's history) and ``click_model.user_classifier``
          (the user's mean ê alone, which shifts every candidate of a user alike). With a
          negative weight on ê² the predicted watch time peaks at
          ``ê* = −(w_ê + w_{ê×u}·u) / (2·w_ê²)`` for a user whose mean ê is ``u``.
        - ``click_model_std.intercept`` and ``click_model_std.<feature>``: the coefficients
          as fitted, per standard deviation of each feature in the training window.
        """
        model = self.model_
        if not model.fitted:
            return {}
        w, b = model.linear()
        out = {"click_model.intercept": b}
        out.update({f"click_model.{n}": float(v) for n, v in zip(FEATURE_NAMES, w)})
        out["click_model_std.intercept"] = float(model.coef[0])
        std = zip(FEATURE_NAMES, model.coef[1:])
        out.update({f"click_model_std.{n}": float(v) for n, v in std})
        return out

    # ---- serving
    #
    # Serving computes the log-odds b + w·x of the serving features x (position 1) from the
    # observable item arrays directly: the standardization folded into w, and the terms that
    # depend on the item alone summed once per fit for every item (:func:`_item_part`). The
    # operations are elementwise, the same for one request (user values as floats) and for a
    # block of rows of a batch (user values as ``(rows, 1)`` columns), so a row has the same
    # bits either way. ``features(request)`` gives the feature matrix itself; a subclass that
    # overrides it is served through it (``log_odds(features(request))``).

    def features(self, request: Request) -> np.ndarray:
        """The serving features of the request's candidates, ``(c, len(FEATURE_NAMES))``."""
        topic, mean_cls, activity = self.profiles_.of(request.user_id)
        f = request.features
        items = self.context_.items
        if type(f) is CandidateFeatures and f._items is items and items is not None:
            return self._serving_features(request, topic, mean_cls, activity)
        return pair_features(topic, mean_cls, activity, f.topics, f.classifier, f.length, f.age, 1.0)

    def _serving_features(self, request: Request, topic: np.ndarray, mean_cls: float, activity: float) -> np.ndarray:
        """``pair_features(..., position=1)`` for the request's candidates, bit for bit: the
        columns that depend on the item alone are computed once per catalog and gathered."""
        items = self.context_.items
        static = getattr(self, "static_features_", None)
        if static is None or static[0] is not items:
            static = self.static_features_ = (items, _item_features(items))
        f = request.features
        X = static[1].take(request.candidates, axis=0)
        _fill_serving(X, dot_last(f.topics, topic), mean_cls, f.age, activity)
        return X

    def _own_features(self) -> bool:
        return uses_own(self, EngagementPolicy, "features", "_serving_features")

    def _linear(self, items: ObservableItems | None) -> tuple[np.ndarray, float, np.ndarray | None]:
        """``(w, b, part)`` of the current model: log-odds ``b + w·x``, and ``part`` the
        :func:`_item_part` of every item of ``items`` if they are the context's (kept until the
        next fit), else None."""
        coef = self.model_.coef
        cached = getattr(self, "linear_", None)
        known = self.context_.items  # replaced when creators remake future uploads
        if cached is None or cached[0] is not coef or cached[1] is not known:
            w, b = self.model_.linear()
            part = None if known is None else _item_part(w, b, known.classifier, known.length)
            cached = self.linear_ = (coef, known, w, b, part)
        _, _, w, b, part = cached
        return w, b, (part if items is known else None)

    def _log_odds(self, request: Request) -> tuple[np.ndarray, np.ndarray]:
        """(log-odds, relevance) of the request's candidates (a fitted model)."""
        topic, mean_cls, activity = self.profiles_.of(request.user_id)
        f = request.features
        w, b, part = self._linear(f._items if type(f) is CandidateFeatures else None)
        candidates = request.candidates
        if part is not None and f._candidates is candidates and _kernel_ready(f._items, candidates, 1):
            from ..kernels import ranking

            items = f._items  # the compiled kernel: the same numbers without temporaries
            lo, rel = np.empty(candidates.shape[0]), np.empty(candidates.shape[0])
            if ranking.learned_row(items.topics, items.classifier, items.upload_time, part, candidates, topic,
                                   float(mean_cls), float(activity), float(f._now), w, False, lo, rel):
                return lo, rel
        e = f.classifier
        part = part.take(request.candidates) if part is not None else _item_part(w, b, e, f.length)
        rel = dot_last(f.topics, topic)
        return _log_odds(w, part, rel, e, f.age, mean_cls, activity), rel

    def _log_odds_blocks(self, batch: RequestBatch):
        """``(rows, candidates, log-odds, relevance)`` for blocks of rows of ``batch`` (a
        fitted model): row ``j`` of a block is bit for bit :meth:`_log_odds` of request
        ``rows.start + j``."""
        items = batch.items
        topic, mean_cls, activity = self.profiles_.of(batch.user_ids)
        mean_cls, activity, now = mean_cls[:, None], activity[:, None], batch.now[:, None]
        w, b, part = self._linear(items)
        candidates = batch.candidates
        if part is not None and _kernel_ready(items, candidates, 2):
            from ..kernels import ranking

            # the compiled kernel: no (rows, c, K) temporary, so blocks of about
            # BLOCK_ELEMENTS scores (the caller's temporaries)
            now_rows = np.ascontiguousarray(batch.now, dtype=float)
            for rows in row_blocks(len(batch), candidates.shape[1]):
                idx = candidates[rows]
                lo, rel = np.empty(idx.shape), np.empty(idx.shape)
                if ranking.learned_rows(items.topics, items.classifier, items.upload_time, part, idx, topic[rows],
                                        mean_cls[rows, 0], activity[rows, 0], now_rows[rows], w, False, lo, rel):
                    yield rows, idx, lo, rel
                else:  # an item id out of range: NumPy's take raises its error
                    yield next(self._numpy_blocks(batch, w, b, part, topic, mean_cls, activity, now, rows))
            return
        yield from self._numpy_blocks(batch, w, b, part, topic, mean_cls, activity, now,
                                      *row_blocks(len(batch), candidates.shape[1] * items.topics.shape[1]))

    @staticmethod
    def _numpy_blocks(batch: RequestBatch, w, b, part, topic, mean_cls, activity, now, *blocks: slice):
        """:meth:`_log_odds_blocks` of the rows ``blocks`` in NumPy (the definition)."""
        items, candidates = batch.items, batch.candidates
        for rows in blocks:
            idx = candidates[rows]
            e = items.classifier.take(idx)
            item = part.take(idx) if part is not None else _item_part(w, b, e, items.length.take(idx))
            rel = gather_dot(items.topics, idx, topic[rows])
            age = now[rows] - items.upload_time.take(idx)
            yield rows, idx, _log_odds(w, item, rel, e, age, mean_cls[rows], activity[rows]), rel

    def predicted_watch_minutes(self, request: Request) -> np.ndarray:
        """Predicted watch minutes per impression of each candidate (odds of the model)."""
        if not self.model_.fitted:
            return np.zeros(request.candidates.shape[0])
        if self._own_features():
            lo = self._log_odds(request)[0]
        else:
            lo = self.model_.log_odds(self.features(request))
        return np.exp(np.minimum(lo, 30.0, out=lo), out=lo)

    def _predicted_rows(self, batch: RequestBatch) -> np.ndarray:
        """:meth:`predicted_watch_minutes` of every row of ``batch``, ``(B, c)``."""
        out = np.zeros(batch.candidates.shape)
        if not self.model_.fitted:
            return out
        items, candidates = batch.items, batch.candidates
        w, _, part = self._linear(items)
        if part is not None and _kernel_ready(items, candidates, 2):
            from ..kernels import ranking

            topic, mean_cls, activity = self.profiles_.of(batch.user_ids)
            now = np.ascontiguousarray(batch.now, dtype=float)
            if ranking.learned_rows(items.topics, items.classifier, items.upload_time, part, candidates, topic,
                                    mean_cls, activity, now, w, True, out, np.empty((len(batch), 0))):
                return out
        for rows, _, lo, _ in self._log_odds_blocks(batch):
            out[rows] = np.exp(np.minimum(lo, 30.0, out=lo), out=lo)
        return out

    def _vectorized(self, owner: type) -> bool:
        """Whether ``score_batch`` may run vectorized: the serving methods are ``owner``'s."""
        return uses_own(self, owner, "score", "features", "predicted_watch_minutes", "_serving_features")

    def score(self, request: Request, rng: np.random.Generator) -> np.ndarray:
        # equal scores (no model yet, or identical items) go to the candidate drawn first
        return self.predicted_watch_minutes(request)

    def score_batch(self, batch: RequestBatch, rngs: RequestRngs) -> np.ndarray:
        if not self._vectorized(EngagementPolicy):
            return super().score_batch(batch, rngs)
        return self._predicted_rows(batch)

    # Serving a slate ranks by the predicted watch minutes (``score``); with the compiled
    # kernels on, a fitted model's slates come from :func:`recsim.kernels.ranking.learned_top_k_rows`,
    # which gives top_k of those scores without computing the scores that cannot make the
    # slate. A subclass that changes the scores is served from its own ``score``/``score_batch``.

    def recommend(self, request: Request, rng: np.random.Generator) -> np.ndarray:
        f = request.features
        if (type(f) is CandidateFeatures and f._candidates is request.candidates
                and self._fused(f._items, request.candidates, 1, "score")):
            topic, mean_cls, activity = self.profiles_.of(request.user_id)  # kept until the next fit
            slates = self._fused_top_k(request.candidates[None], f._items, topic[None], np.array([mean_cls]),
                                       np.array([activity]), np.array([f._now], dtype=float), request.slate_size)
            if slates is not None:
                return slates[0]
        return top_k(request.candidates, self.score(request, rng), request.slate_size)

    def recommend_batch(self, batch: RequestBatch, rngs: RequestRngs) -> np.ndarray | list[np.ndarray]:
        if not uses_own(self, EngagementPolicy, "recommend"):  # recommend overridden: row by row
            return Policy.recommend_batch(self, batch, rngs)
        if self._fused(batch.items, batch.candidates, 2, "score_batch"):
            slates = self._fused_top_k(batch.candidates, batch.items, *self.profiles_.of(batch.user_ids),
                                       np.ascontiguousarray(batch.now, dtype=float), batch.slate_size)
            if slates is not None:
                return slates
        return top_k_rows(batch.candidates, self.score_batch(batch, rngs), batch.slate_size)

    def _fused(self, items: ObservableItems, candidates: np.ndarray, ndim: int, method: str) -> bool:
        """Whether slates may come from the fused kernel: a fitted model, this class's scores
        (``method`` and what it calls not overridden), and arrays the kernel reads."""
        return (self.model_.fitted and candidates.shape[-1] > 0 and uses_own(self, EngagementPolicy, method)
                and self._vectorized(EngagementPolicy) and items is self.context_.items
                and _kernel_ready(items, candidates, ndim))

    def _oldest_upload(self, items: ObservableItems) -> float:
        """The earliest upload time of ``items`` (NaN skipped; inf if none), kept per catalog
        (the context's items are replaced, not changed, when creators remake uploads)."""
        cached = getattr(self, "oldest_upload_", None)
        if cached is None or cached[0] is not items:
            known = items.upload_time[~np.isnan(items.upload_time)]
            cached = self.oldest_upload_ = (items, float(known.min()) if known.shape[0] else np.inf)
        return cached[1]

    def _fused_top_k(self, candidates: np.ndarray, items: ObservableItems, topic: np.ndarray,
                     mean_cls: np.ndarray, activity: np.ndarray, now: np.ndarray, k: int) -> np.ndarray | None:
        """``top_k_rows(candidates, predicted watch minutes, k)`` of rows ``(B, c)`` whose users
        have the profiles ``topic`` ``(B, K)``, ``mean_cls`` and ``activity`` ``(B,)``, served
        at ``now`` ``(B,)`` seconds, through the fused kernel (the rows it leaves, NaN scores
        inside the top k, by the NumPy code); None if ``k < 1`` or an item id is out of range
        (the caller's path then raises NumPy's error)."""
        from ..kernels import ranking

        if k < 1:
            return None
        w, _, part = self._linear(items)
        B, c = candidates.shape
        out = np.empty((B, min(k, c)), dtype=candidates.dtype)
        left, scored = np.zeros(B, dtype=bool), np.empty(B, dtype=np.int64)
        if not ranking.learned_top_k_rows(items.topics, items.classifier, items.upload_time, part, candidates,
                                          topic, mean_cls, activity, now, w, self._oldest_upload(items), out,
                                          left, scored):
            return None
        if left.any():
            rows = np.flatnonzero(left)
            predicted = np.empty((rows.shape[0], c))
            ranking.learned_rows(items.topics, items.classifier, items.upload_time, part, candidates[rows],
                                 topic[rows], mean_cls[rows], activity[rows], now[rows], w, True, predicted,
                                 np.empty((rows.shape[0], 0)))
            out[rows] = top_k_rows(candidates[rows], predicted, k)
        return out


def _kernel_ready(items: ObservableItems, candidates: np.ndarray, ndim: int) -> bool:
    """Whether the compiled serving kernel (:mod:`recsim.kernels.ranking`) may score
    ``candidates`` (``ndim`` dimensions) of ``items``: kernels on, and arrays it reads as
    they are (float64 item arrays, signed integer ids)."""
    return (kernels.enabled() and type(candidates) is np.ndarray and candidates.ndim == ndim
            and candidates.dtype.kind == "i" and candidates.dtype.isnative
            and _float_array(items.topics, 2) and _float_array(items.classifier, 1)
            and _float_array(items.upload_time, 1))


def _float_array(x, ndim: int) -> bool:
    return type(x) is np.ndarray and x.ndim == ndim and x.dtype == np.float64


def _item_part(w: np.ndarray, b: float, classifier: np.ndarray, length: np.ndarray) -> np.ndarray:
    """``b`` plus the log-odds terms of the serving features that depend on the item alone
    (ê, ê², log(L / 4 min); log position 1 = 0), elementwise over the items given."""
    part = w[2] * classifier
    part += w[3] * (classifier * classifier)
    part += w[6] * np.log(length / 240.0)
    part += b
    return part


def _log_odds(w, item_part, rel, classifier, age, mean_cls, activity) -> np.ndarray:
    """``b + w·x`` of serving features from their parts: ``item_part`` (:func:`_item_part`),
    relevance, ê and age (seconds) of the candidates; the user's mean ê and activity (floats,
    or ``(rows, 1)`` columns of a batch). Elementwise: the same bits for one request and a
    batch."""
    lo = w[1] * rel
    lo += w[0]
    lo *= rel  # w0·rel + w1·rel²
    lo += item_part
    lo += classifier * (w[4] * mean_cls)
    lo += w[5] * mean_cls + w[8] * activity
    days = np.maximum(age, 0.0)
    days /= DAY
    np.log1p(days, out=days)
    days *= w[7]
    lo += days
    return lo


class HarmPenalizedParams(EngagementParams):
    penalty: float = Field(
        20.0, ge=0.0, description="λ: predicted watch minutes given up per unit classifier score"
    )
    demote_above: Optional[float] = Field(
        None, ge=0.0, le=1.0, description="borderline demotion: items with ê above this go last"
    )


class HarmPenalizedPolicy(EngagementPolicy):
    """The engagement ranker with a harm penalty: score = predicted watch minutes − λ·ê
    (ê = the extremeness classifier score), optionally demoting items above a threshold."""

    draws_nothing = True

    Params = HarmPenalizedParams

    def score(self, request: Request, rng: np.random.Generator) -> np.ndarray:
        return self._penalized(super().score(request, rng), request.features.classifier)

    def score_batch(self, batch: RequestBatch, rngs: RequestRngs) -> np.ndarray:
        if not self._vectorized(HarmPenalizedPolicy):
            return ScoringPolicy.score_batch(self, batch, rngs)
        return self._penalized(self._predicted_rows(batch), batch.features.classifier)

    def learned(self) -> dict[str, float]:
        """The click model's coefficients as :meth:`EngagementPolicy.learned` names them, and
        (once there is a model) the penalty the score subtracts: ``penalty.classifier`` = λ,
        predicted watch minutes per unit ê, and ``penalty.demote_above`` if it is set. The
        ranking's weight on ê is then that of the click model minus λ on the minutes scale."""
        out = super().learned()
        if out:
            out["penalty.classifier"] = float(self.params.penalty)
            if self.params.demote_above is not None:
                out["penalty.demote_above"] = float(self.params.demote_above)
        return out

    def _penalized(self, scores: np.ndarray, classifier: np.ndarray) -> np.ndarray:
        scores = scores - self.params.penalty * classifier
        if self.params.demote_above is not None:
            scores = np.where(classifier > self.params.demote_above, scores - 1e6, scores)
        return scores


class StatedPreferenceParams(EngagementParams):
    weight: float = Field(
        0.3, ge=0.0, le=1.0, description="blend: 0 = engagement only, 1 = stated preference only"
    )
    survey_l2: float = Field(1.0, ge=0.0, description="ridge penalty of the survey model")
    min_surveys: int = Field(20, ge=1, description="surveys needed before the survey model is used")


_SURVEY_FEATURES = (0, 2, 3, 6)  # relevance, ê, ê², log length: what an item contributes
_SURVEY_NAMES = tuple(FEATURE_NAMES[i] for i in _SURVEY_FEATURES)


class StatedPreferencePolicy(EngagementPolicy):
    """Learns what users *say* they value from survey answers and blends it with engagement.

    Each survey (a 1–5 answer after a session) is regressed (ridge) on the mean observable
    features of the items watched in that session; the fitted map scores candidates by their
    predicted contribution to stated satisfaction. The ranking blends the z-scores of that and
    of the engagement prediction with ``weight``.
    """

    draws_nothing = True

    Params = StatedPreferenceParams

    def reset(self, context: PolicyContext) -> None:
        super().reset(context)
        self.sessions_: dict[tuple[int, int], list] = {}  # (user, session) -> [Σ x, n]
        self.survey_X_: list[np.ndarray] = []
        self.survey_y_: list[float] = []
        self.survey_coef_: np.ndarray | None = None
        self.survey_terms_ = None

    def fit(self, feedback: Feedback, now: float) -> None:
        if len(feedback) and feedback.session is not None:
            clicked = feedback.clicked
            users, sessions = feedback.user_id[clicked], feedback.session[clicked]
            items = self.context_.items
            topic, mean_cls, activity = self.profiles_.of(users)
            item = feedback.item_id[clicked]
            X = pair_features(
                topic, mean_cls, activity, items.topics[item], items.classifier[item],
                items.length[item], feedback.served_at[clicked] - items.upload_time[item],
            )[:, _SURVEY_FEATURES]
            for key, row in zip(zip(users.tolist(), sessions.tolist()), X):
                entry = self.sessions_.setdefault(key, [np.zeros(len(_SURVEY_FEATURES)), 0])
                entry[0] += row
                entry[1] += 1
        surveys = feedback.surveys or {}
        for user, session, score in zip(
            surveys.get("user_id", []), surveys.get("session", []), surveys.get("score", [])
        ):
            entry = self.sessions_.pop((int(user), int(session)), None)
            if entry is not None and entry[1] > 0:
                self.survey_X_.append(entry[0] / entry[1])
                self.survey_y_.append(float(score))
        # forget sessions that ended long ago without a survey
        if len(self.sessions_) > 50_000:
            self.sessions_ = dict(list(self.sessions_.items())[-25_000:])
        if len(self.survey_y_) >= self.params.min_surveys:
            X = np.asarray(self.survey_X_)
            y = np.asarray(self.survey_y_)
            Z = np.hstack([np.ones((X.shape[0], 1)), X])
            penalty = np.eye(Z.shape[1]) * self.params.survey_l2
            penalty[0, 0] = 0.0
            self.survey_coef_ = np.linalg.solve(Z.T @ Z + penalty, Z.T @ y)
        super().fit(feedback, now)

    def learned(self) -> dict[str, float]:
        """The click model's coefficients as :meth:`EngagementPolicy.learned` names them (once
        fitted), and the survey model's once it is: ``survey_model.intercept`` and
        ``survey_model.relevance``, ``survey_model.classifier`` (ê),
        ``survey_model.classifier_sq`` (ê²), ``survey_model.log_length`` — survey answer
        points (1–5) per unit of the session's mean feature — with ``blend.survey_weight``,
        the share of the ranking given to it. ``{}`` while neither model exists."""
        out = super().learned()
        coef = self.survey_coef_
        if coef is not None:
            out["survey_model.intercept"] = float(coef[0])
            out.update({f"survey_model.{n}": float(v) for n, v in zip(_SURVEY_NAMES, coef[1:])})
            out["blend.survey_weight"] = float(self.params.weight)
        return out

    def score(self, request: Request, rng: np.random.Generator) -> np.ndarray:
        if self.survey_coef_ is None or not self.model_.fitted:
            return super().score(request, rng)
        if not self._own_features():
            X = self.features(request)
            stated = dot_last(X[..., _SURVEY_FEATURES], self.survey_coef_[1:])
            return self._blend(self.model_.log_odds(X), stated)
        lo, rel = self._log_odds(request)
        f = request.features
        s, part = self._survey_terms(f._items if type(f) is CandidateFeatures else None)
        part = part.take(request.candidates) if part is not None else _survey_part(s, f.classifier, f.length)
        return self._blend(lo, _stated(s, part, rel))

    def score_batch(self, batch: RequestBatch, rngs: RequestRngs) -> np.ndarray:
        if not self._vectorized(StatedPreferencePolicy):
            return ScoringPolicy.score_batch(self, batch, rngs)
        if self.survey_coef_ is None or not self.model_.fitted:
            return self._predicted_rows(batch)
        items = batch.items
        s, part = self._survey_terms(items)
        out = np.empty(batch.candidates.shape)
        for rows, idx, lo, rel in self._log_odds_blocks(batch):
            if part is not None:
                item = part.take(idx)
            else:
                item = _survey_part(s, items.classifier.take(idx), items.length.take(idx))
            out[rows] = self._blend(lo, _stated(s, item, rel))
        return out

    def _survey_terms(self, items: ObservableItems | None) -> tuple[np.ndarray, np.ndarray | None]:
        """``(s, part)``: the survey model's coefficients of (relevance, ê, ê², log length),
        and :func:`_survey_part` of every item if ``items`` are the context's (else None)."""
        coef = self.survey_coef_
        cached = getattr(self, "survey_terms_", None)
        known = self.context_.items  # replaced when creators remake future uploads
        if cached is None or cached[0] is not coef or cached[1] is not known:
            s = coef[1:]
            part = None if known is None else _survey_part(s, known.classifier, known.length)
            cached = self.survey_terms_ = (coef, known, s, part)
        _, _, s, part = cached
        return s, (part if items is known else None)

    def _blend(self, log_odds: np.ndarray, stated: np.ndarray) -> np.ndarray:
        """The blended score (z-scores over the last, candidate axis)."""
        w = self.params.weight
        # blend on the log-odds scale, where the engagement model is linear like the survey model
        return (1 - w) * _z(log_odds) + w * _z(stated)


def _survey_part(s: np.ndarray, classifier: np.ndarray, length: np.ndarray) -> np.ndarray:
    """The survey model's terms that depend on the item alone (ê, ê², log(L / 4 min))."""
    part = s[1] * classifier
    part += s[2] * (classifier * classifier)
    part += s[3] * np.log(length / 240.0)
    return part


def _stated(s: np.ndarray, part: np.ndarray, rel: np.ndarray) -> np.ndarray:
    """Predicted stated satisfaction (without intercept) from the item part and relevance."""
    stated = s[0] * rel
    stated += part
    return stated


def _z(x: np.ndarray) -> np.ndarray:
    """z-scores along the last axis (zeros where all values are equal). Sums along the last,
    contiguous axis round alike for one row and for many."""
    x = np.ascontiguousarray(x)
    sd = x.std(axis=-1, keepdims=True)
    centered = x - x.mean(axis=-1, keepdims=True)
    return np.divide(centered, sd, out=np.zeros_like(centered), where=sd > 0)


class BanditParams(BaseModel):
    model_config = ConfigDict(extra="forbid")
    alpha: float = Field(0.5, ge=0.0, description="width of the upper confidence bonus")
    ridge: float = Field(1.0, gt=0.0, description="prior precision (ridge) of the linear model")
    profile_half_life: Duration = Field(3 * DAY, description="half-life of the user profile sums")


class BanditPolicy(ScoringPolicy):
    """LinUCB (Li et al., 2010) on watch minutes per impression with the same user × item
    features, one shared linear model; its statistics are updated from the logs on the retrain
    schedule (a delayed, batched bandit): score = θ·x + α·sqrt(xᵀA⁻¹x)."""

    Params = BanditParams

    def reset(self, context: PolicyContext) -> None:
        d = len(FEATURE_NAMES) + 1
        self.context_ = context
        self.profiles_ = UserProfiles(context.n_users, context.n_topics, self.params.profile_half_life)
        self.A_ = np.eye(d) * self.params.ridge
        self.b_ = np.zeros(d)
        self.A_inv_ = np.linalg.inv(self.A_)
        self.theta_ = np.zeros(d)

    def _design(self, X: np.ndarray) -> np.ndarray:
        """``[1, x]`` for the rows of ``X`` (``(…, F)`` → ``(…, F + 1)``)."""
        return np.concatenate([np.ones(X.shape[:-1] + (1,)), X], axis=-1)

    def fit(self, feedback: Feedback, now: float) -> None:
        if len(feedback):
            items = self.context_.items
            item = feedback.item_id
            served = feedback.served_at if feedback.served_at is not None else feedback.time
            topic, mean_cls, activity = self.profiles_.of(feedback.user_id)
            X = self._design(pair_features(
                topic, mean_cls, activity, items.topics[item], items.classifier[item],
                items.length[item], served - items.upload_time[item], feedback.position,
            ))
            self.A_ += X.T @ X
            self.b_ += X.T @ (feedback.watch_time / 60.0)
            self.A_inv_ = np.linalg.inv(self.A_)
            self.theta_ = self.A_inv_ @ self.b_
        self.profiles_.update(feedback, self.context_.items, now)

    def learned(self) -> dict[str, float]:
        """The mean of the linear model, ``{}`` before any feedback reached it:
        ``bandit.intercept`` and ``bandit.<feature>`` for every name of
        :data:`FEATURE_NAMES` (θ, on the raw features; predicted watch minutes per impression
        per unit of the feature). The classifier features are ``bandit.classifier`` (ê),
        ``bandit.classifier_sq`` (ê²), ``bandit.classifier_x_user_classifier`` (ê × the
        user's mean ê) and ``bandit.user_classifier``. The confidence bonus is not included."""
        if not self.A_[0, 0] > self.params.ridge:  # no row added yet (A = ridge·I + Σ x xᵀ)
            return {}
        theta = self.theta_
        out = {"bandit.intercept": float(theta[0])}
        out.update({f"bandit.{n}": float(v) for n, v in zip(FEATURE_NAMES, theta[1:])})
        return out

    def score(self, request: Request, rng: np.random.Generator) -> np.ndarray:
        # equal scores go to the candidate drawn first (candidates arrive in random order)
        topic, mean_cls, activity = self.profiles_.of(request.user_id)
        f = request.features
        return self._ucb(pair_features(topic, mean_cls, activity, f.topics, f.classifier, f.length, f.age, 1.0))

    def score_batch(self, batch: RequestBatch, rngs: RequestRngs) -> np.ndarray:
        if not uses_own(self, BanditPolicy, "score", "_ucb"):
            return super().score_batch(batch, rngs)
        items = batch.items
        topic, mean_cls, activity = self.profiles_.of(batch.user_ids)
        mean_cls, activity, now = mean_cls[:, None], activity[:, None], batch.now[:, None]
        candidates = batch.candidates
        d = self.A_inv_.shape[0]
        out = np.empty(candidates.shape)
        for rows in row_blocks(len(batch), candidates.shape[1] * d * d, 4 * BLOCK_ELEMENTS):
            idx = candidates[rows]
            X = pair_features(
                topic[rows, None, :], mean_cls[rows], activity[rows], items.topics.take(idx, axis=0),
                items.classifier.take(idx), items.length.take(idx), now[rows] - items.upload_time.take(idx), 1.0,
            )
            out[rows] = self._ucb(X)
        return out

    def _ucb(self, X: np.ndarray) -> np.ndarray:
        """θ·x + α·sqrt(xᵀA⁻¹x) for the design rows x = [1, X[..., :]] (``X`` ``(…, F)``),
        summed term by term over a leading feature axis (:func:`sum_first`): the same bits for
        one request and for a batch, without BLAS."""
        d = X.shape[-1] + 1
        unit = (1,) * (X.ndim - 1)
        x = np.empty((d,) + X.shape[:-1])  # feature-major design rows
        x[0] = 1.0
        x[1:] = np.moveaxis(X, -1, 0)
        mean = sum_first(x * self.theta_.reshape((d,) + unit))
        # (A⁻¹x)_i = Σ_j A⁻¹[i, j]·x_j: the terms laid out (j, i, …) and summed over j
        a_t = np.ascontiguousarray(self.A_inv_.T).reshape((d, d) + unit)
        quad = sum_first(a_t * x[:, None])
        quad *= x
        bonus = np.sqrt(sum_first(quad))
        return mean + self.params.alpha * bonus
