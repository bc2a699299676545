"""Collaborative filtering by matrix factorization of implicit feedback (README "Policies").

:class:`MatrixFactorizationPolicy` (``matrix_factorization``) learns a latent factor for every
user and every item from the watches in its logs alone — who watched what, no item features —
and ranks a user's candidates by the dot product of the two factors: "users who watched what
you watched also watched this". It is the collaborative-filtering recommender of the
algorithmic-confounding literature (Chaney, Stewart & Engelhardt, RecSys 2018; Ribeiro,
Veselovsky & West, ICWSM 2023).

**The model** (Hu, Koren & Volinsky, "Collaborative filtering for implicit feedback
datasets", ICDM 2008). With ``r_ui`` the user's watches of the item in the training data
(their number, or minutes watched with ``signal: minutes``), preference ``p_ui = [r_ui > 0]``
and confidence ``c_ui = 1 + α·r_ui``, the factors ``x_u``, ``y_i`` (``factors`` numbers each)
minimize

    Σ_{u,i} c_ui·(p_ui − x_u·y_i)² + λ·(Σ_u ‖x_u‖² + Σ_i ‖y_i‖²)

over every user and item of the matrix (unwatched pairs count with ``p = 0, c = 1``). The
factorization is not written here: it is the ``implicit`` package's alternating least squares
(``implicit.cpu.als.AlternatingLeastSquares``, conjugate-gradient solver; Takács, Pilászy &
Tikk, RecSys 2011), in float64, single-threaded (``num_threads=1``, BLAS limited to one
thread), from initial factors drawn with ``random_state`` = a number of
``SeedSequence([seed, k])`` for the k-th fit (``fit`` is given no generator, so the seed is a
parameter, as for ``engagement``): a fit is a pure function of the data and the seed, bit for
bit the same on every run and in both engines. ``implicit`` is an optional
dependency (``pip install 'recsim-engagement[mf]'``); without it the policy's parameters fail
to validate, with a one-line message naming the extra.

**Training** happens on the retrain schedule (``fit``, every ``recommender.retrain_interval``):
each call adds the watches of its feedback (the clicked impressions; skipped impressions are
not used: implicit feedback) to the training data, and every ``refit_every``-th call fits the
factorization afresh on the watches of the last ``window`` (all of them by default, as in
Chaney et al.'s repeated training). Feedback reaches the model late, as for every learned
policy here.

**Serving.** ``score`` = ``x_u·y_i`` for the request's user and each candidate, summed term by
term (:func:`~recsim.arrays.gather_dot`: the same bits for one request and a batch). An item
with no watch in the training data — never watched, or uploaded since the last fit — has
``y_i = 0`` (what ALS gives an item without a watch) and scores 0; a user with no watch in
the training data gets the mean factor of the users who have some (a population-average
taste: items many users like rank first). Before the first fit every score is 0 and the slate
is the first candidates in their (random) draw order. ``recommend`` serves the top ``k`` by
score, then explores: each slot, with probability ``explore``, holds instead a candidate drawn
uniformly from the *cold* candidates (no watch in the training data) not already in the slate,
so that new uploads can be watched and enter the next fit. Its only randomness is that
exploration, drawn from the request's ``rng`` (one uniform per slot, then the picks), so the
policy is deterministic given ``rng``.
"""

from __future__ import annotations

import importlib.util
from typing import Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, model_validator

from ..arrays import gather_dot
from ..config import Duration
from .base import (
    Feedback,
    PolicyContext,
    Request,
    RequestBatch,
    RequestRngs,
    ScoringPolicy,
    top_k,
    top_k_rows,
    uses_own,
)

__all__ = ["MISSING_IMPLICIT", "MatrixFactorizationParams", "MatrixFactorizationPolicy", "implicit_available"]

#: The message given when the ``implicit`` package is not installed.
MISSING_IMPLICIT = (
    "the matrix_factorization policy needs the 'implicit' package, an optional dependency: "
    "pip install 'recsim-engagement[mf]' (or pip install implicit)"
)


def implicit_available() -> bool:
    """True if the ``implicit`` package can be imported (without importing it)."""
    return importlib.util.find_spec("implicit") is not None


class MatrixFactorizationParams(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)
    factors: int = Field(16, ge=1, description="latent factors per user and per item")
    regularization: float = Field(10.0, ge=0.0, description="λ: L2 penalty on the factors")
    iterations: int = Field(15, ge=1, description="alternating-least-squares sweeps per fit")
    alpha: float = Field(1.0, ge=0.0, description="α: confidence c = 1 + α·r of a watched pair")
    signal: Literal["watches", "minutes"] = Field(
        "watches", description="r: the number of watches of the pair, or the minutes watched")
    window: Duration | None = Field(
        None, description="fit on the watches of this last period (default: every watch logged)")
    refit_every: int = Field(
        1, ge=1, description="refit the factors at every n-th scheduled retrain (the data is kept at each)")
    explore: float = Field(
        0.1, ge=0.0, le=1.0, description="probability that a slot holds a random cold (unwatched, e.g. new) candidate")
    seed: int = Field(0, ge=0, description="seed of the initial factors (with the fit's number)")

    @model_validator(mode="after")
    def _needs_implicit(self) -> MatrixFactorizationParams:
        if not implicit_available():
            raise ValueError(MISSING_IMPLICIT)
        return self


class MatrixFactorizationPolicy(ScoringPolicy):
    """Collaborative filtering: implicit-feedback matrix factorization (Hu, Koren & Volinsky
    2008) of the logged watches by alternating least squares (the ``implicit`` package), refit
    on the retrain schedule; ranks by the user's and the item's latent factors, x_u·y_i, and
    gives a share ``explore`` of the slots to items without watches (new uploads). Observable
    data only (who watched what); see :mod:`recsim.policies.factorization`."""

    Params = MatrixFactorizationParams

    def reset(self, context: PolicyContext) -> None:
        self.context_ = context
        # training data: (fit time, users, items, r) per fit, aggregated by (user, item)
        self.batches_: list[tuple[float, np.ndarray, np.ndarray, np.ndarray]] = []
        self.n_calls_ = 0
        self.n_fits_ = 0
        # the fitted model: item factors with one extra zero row (ids past the table read it),
        # user factors, which users and items had watches, the mean factor of those users
        self.item_factors_: np.ndarray | None = None
        self.item_known_: np.ndarray | None = None
        self.user_factors_: np.ndarray | None = None
        self.user_known_: np.ndarray | None = None
        self.mean_user_: np.ndarray | None = None
        self.stats_: dict[str, float] = {}

    # ---- training
    def _n_items(self) -> int:
        items = self.context_.items
        return int(items.n_items) if items is not None else 0

    def fit(self, feedback: Feedback, now: float) -> None:
        """Add the watches of ``feedback`` to the training data; refit the factors at every
        ``refit_every``-th call. ``now`` in seconds. Raises ImportError without ``implicit``."""
        p = self.params
        watched = np.asarray(feedback.clicked, dtype=bool)
        if watched.any():
            users = np.asarray(feedback.user_id)[watched].astype(np.int64)
            items = np.asarray(feedback.item_id)[watched].astype(np.int64)
            r = np.ones(users.shape[0]) if p.signal == "watches" else np.asarray(feedback.watch_time)[watched] / 60.0
            self.batches_.append((float(now),) + _aggregate(users, items, r))
        if p.window is not None:
            self.batches_ = [b for b in self.batches_ if b[0] > now - p.window]
        self.n_calls_ += 1
        if (self.n_calls_ - 1) % p.refit_every == 0:
            self._refit()

    def _refit(self) -> None:
        if not self.batches_:
            return
        from scipy import sparse

        users, items, r = _aggregate(
            np.concatenate([b[1] for b in self.batches_]),
            np.concatenate([b[2] for b in self.batches_]),
            np.concatenate([b[3] for b in self.batches_]),
        )
        if users.shape[0] == 0:
            return
        n_users = max(int(self.context_.n_users), int(users.max()) + 1)
        n_items = max(self._n_items(), int(items.max()) + 1)
        p = self.params
        confidence = 1.0 + p.alpha * r
        matrix = sparse.csr_matrix((confidence, (users, items)), shape=(n_users, n_items))
        seed = int(np.random.SeedSequence([p.seed, self.n_fits_]).generate_state(1)[0])
        user_factors, item_factors = _als(matrix, p.factors, p.regularization, p.iterations, seed)
        self.n_fits_ += 1
        user_known = np.zeros(n_users, dtype=bool)
        user_known[users] = True
        item_known = np.zeros(n_items + 1, dtype=bool)
        item_known[items] = True
        table = np.zeros((n_items + 1, p.factors))
        table[:n_items] = item_factors
        table[~item_known] = 0.0  # an item without a watch: exactly what ALS converges to
        self.item_factors_ = table
        self.item_known_ = item_known
        self.user_factors_ = np.asarray(user_factors, dtype=float)
        self.user_known_ = user_known
        self.mean_user_ = self.user_factors_[user_known].mean(axis=0)
        self.stats_ = {
            "matrix_factorization.users": float(user_known.sum()),
            "matrix_factorization.items": float(item_known.sum()),
            "matrix_factorization.pairs": float(users.shape[0]),
            "matrix_factorization.mean_user_norm": float(np.sqrt((self.user_factors_[user_known] ** 2).sum(axis=1)).mean()),
            "matrix_factorization.mean_item_norm": float(np.sqrt((item_factors[item_known[:n_items]] ** 2).sum(axis=1)).mean()),
        }

    def learned(self) -> dict[str, float]:
        """After each refit: ``matrix_factorization.users`` and ``.items`` (with watches in
        the training data), ``.pairs`` (distinct watched user–item pairs) and the mean norm of
        their factors (``.mean_user_norm``, ``.mean_item_norm``). ``{}`` before the first."""
        return dict(self.stats_)

    # ---- serving
    @property
    def fitted(self) -> bool:
        return self.item_factors_ is not None

    def _user_vectors(self, users: np.ndarray) -> np.ndarray:
        """Each user's factor, ``(B, f)``: the fitted one, or the mean of the users with
        watches for a user without any."""
        known = self.user_known_
        inside = users < known.shape[0]
        safe = np.where(inside, users, 0)
        warm = inside & known[safe]
        return np.where(warm[:, None], self.user_factors_[safe], self.mean_user_[None, :])

    def _ids(self, candidates: np.ndarray) -> np.ndarray:
        """Candidate ids as rows of the item table (ids past it read its last, zero row)."""
        return np.minimum(candidates, self.item_factors_.shape[0] - 1)

    def _cold(self, candidates: np.ndarray) -> np.ndarray:
        """Which candidates (any shape) have no watch in the training data."""
        if not self.fitted:
            return np.ones(candidates.shape, dtype=bool)
        return ~self.item_known_[self._ids(candidates)]

    def score(self, request: Request, rng: np.random.Generator) -> np.ndarray:
        """x_u·y_i of each candidate, ``(c,)`` (0 before the first fit). Draws nothing."""
        if not self.fitted:
            return np.zeros(request.candidates.shape[0])
        vector = self._user_vectors(np.array([request.user_id], dtype=np.int64))[0]
        return gather_dot(self.item_factors_, self._ids(request.candidates), vector)

    def score_batch(self, batch: RequestBatch, rngs: RequestRngs) -> np.ndarray:
        if not uses_own(self, MatrixFactorizationPolicy, "score", "_user_vectors", "_ids"):
            return super().score_batch(batch, rngs)
        if not self.fitted:
            return np.zeros(batch.candidates.shape)
        vectors = self._user_vectors(np.asarray(batch.user_ids, dtype=np.int64))
        return gather_dot(self.item_factors_, self._ids(batch.candidates), vectors)

    def recommend(self, request: Request, rng: np.random.Generator) -> np.ndarray:
        slate = top_k(request.candidates, self.score(request, rng), request.slate_size)
        return self._explore(slate, request.candidates, self._cold(request.candidates), rng)

    def recommend_batch(self, batch: RequestBatch, rngs: RequestRngs) -> np.ndarray | list[np.ndarray]:
        if not uses_own(self, MatrixFactorizationPolicy, "recommend", "score", "_explore", "_cold"):
            return super().recommend_batch(batch, rngs)
        slates = top_k_rows(batch.candidates, self.score_batch(batch, rngs), batch.slate_size)
        if self.params.explore <= 0.0 or slates.shape[1] == 0:
            return slates
        cold = self._cold(batch.candidates)
        return [self._explore(slates[i], batch.candidates[i], cold[i], rngs[i]) for i in range(len(batch))]

    def _explore(self, slate: np.ndarray, candidates: np.ndarray, cold: np.ndarray,
                 rng: np.random.Generator) -> np.ndarray:
        """Each slot of ``slate``, with probability ``explore``, holds a cold candidate (drawn
        uniformly without replacement among those not in ``slate``: the first of a random
        permutation of them); the other slots keep the slate's items in order. Draws
        ``len(slate)`` uniforms, then (if a slot explores) the permutation."""
        n = slate.shape[0]
        epsilon = self.params.explore
        if n == 0 or epsilon <= 0.0:
            return slate
        explore = rng.random(n) < epsilon
        m = int(explore.sum())
        if m == 0:
            return slate
        in_slate = np.zeros(int(candidates.max()) + 1, dtype=bool)  # candidates ⊇ slate: O(c + k)
        in_slate[slate] = True
        pool = candidates[cold & ~in_slate[candidates]]
        if pool.shape[0] == 0:
            return slate
        m = min(m, pool.shape[0])
        picks = pool[rng.permutation(pool.shape[0])[:m]]
        slots = np.flatnonzero(explore)[:m]
        out = np.empty(n, dtype=np.int64)
        keep = np.ones(n, dtype=bool)
        keep[slots] = False
        out[slots] = picks
        out[keep] = slate[: n - m]
        return out


def _aggregate(users: np.ndarray, items: np.ndarray, r: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Sum ``r`` over equal (user, item) pairs: ``(users, items, r)`` sorted by user, then item."""
    if users.shape[0] == 0:
        return users, items, r
    width = int(items.max()) + 1
    keys, inverse = np.unique(users * width + items, return_inverse=True)
    totals = np.bincount(inverse.ravel(), weights=r, minlength=keys.shape[0])
    return keys // width, keys % width, totals


_CONTROLLER: list = []


def _blas_controller():
    """threadpoolctl's controller of the loaded native thread pools (found once per process:
    the search reads every loaded library, a few milliseconds)."""
    if not _CONTROLLER:
        from threadpoolctl import ThreadpoolController

        _CONTROLLER.append(ThreadpoolController())
    return _CONTROLLER[0]


def _als(matrix, factors: int, regularization: float, iterations: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """``implicit``'s ALS of the ``(users, items)`` confidence matrix (CSR; entries c_ui, the
    library's own ``alpha`` left at 1), single-threaded and seeded: ``(user factors (users, f),
    item factors (items, f))``, float64. Raises ImportError (:data:`MISSING_IMPLICIT`)."""
    try:
        from implicit.cpu.als import AlternatingLeastSquares
    except ImportError as exc:
        raise ImportError(MISSING_IMPLICIT) from exc
    with _blas_controller().limit(limits=1, user_api="blas"):  # BLAS (YᵀY) single-threaded too
        model = AlternatingLeastSquares(
            factors=factors, regularization=regularization, alpha=1.0, dtype=np.float64,
            iterations=iterations, calculate_training_loss=False, num_threads=1, random_state=seed,
        )
        model.fit(matrix, show_progress=False)
    return np.asarray(model.user_factors, dtype=float), np.asarray(model.item_factors, dtype=float)
