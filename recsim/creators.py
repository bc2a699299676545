"""Creators who adapt what they upload to what the ranker rewards (docs/model.md §2.1).

Without ``catalog.creators`` the creator of an item is only a label. With it, creator ``c``
holds hidden *offsets* δ_c = (δ_e, δ_q, δ_b) added to the extremeness, quality and clickbait of
what it uploads (:func:`recsim.catalog.item_attributes`); all start at 0, so before the first
adaptation the catalog is the one without creators, draw for draw. Every ``period`` of the
horizon (at t = period, 2·period, …) each creator looks at how its items fared in the period
just ended and its rule moves its offsets; the items uploaded from then on are made with the
new offsets (their draws are fixed in advance, so common random numbers hold).

**What a creator learns from** (the *gap*): imitation of its own successes. With ``w_i`` the
item's impressions (``signal: impressions``) or seconds watched (``watch_time``) in the period
and ``r_i`` the attributes the item's own draws give it (its attributes at offset 0), over the
creator's items uploaded so far::

    gap_c = Σ w_i·r_i / Σ w_i − mean(r_i)          (0 when Σ w_i = 0)

— how much more extreme (or better, or more clickbaity) the items that earned exposure were by
the luck of their making than the creator's items on average: the creator's random variations
around its style, and which of them paid (an evolution-strategies estimate of how exposure
changes with each attribute). ``r_i`` leaves the offsets out so that a creator does not chase
its own past: a ranker that favours recent items (``chronological``) would otherwise reward
whatever direction the creator last moved in, and the clips at 0 and 1 would push offsets back.
So when exposure does not depend on the attributes the gap is 0 in expectation; when every item
earns the same, or nothing is shown, it is exactly 0. A creator imitates attributes, not
causes: if its more extreme items earned more, their lower quality (quality falls with
extremeness, §2) is imitated too.

**The built-in rules** (``catalog.creators.rule``):

============  ===================================================================================
``imitate``   δ ← clip((1 − κ)·δ + η·gap, −B, B): a step of size η (``rate``) toward what earned
              exposure, less the effort of holding a style away from one's own, κ
              (``effort_cost``); B is ``catalog.creators.max_offset``. It is a gradient step on
              the period's exposure less a quadratic effort cost (κ/2η)·|δ|² (Immorlica et al.,
              strategic content creators; Hron et al., exposure games: creators best-respond to
              the exposure a ranker gives).
``static``    δ stays 0: the creators' metrics without adaptation (a control).
``module:Class`` a :class:`CreatorRule` of your own.
============  ===================================================================================

The engine clips whatever a rule returns to ±``max_offset`` and keeps the attributes not listed
in ``catalog.creators.adapt`` at 0. Creator state is hidden: a non-oracle policy sees only the
observable features of uploaded items, as without creators.

This module is plain NumPy: :class:`CreatorPool` holds the state of one run, and the engine
(:mod:`recsim.engine.core`) feeds it impressions and watches and calls :meth:`CreatorPool.adapt`
at each adaptation point.
"""

from __future__ import annotations

import math
from typing import Annotated, Any, ClassVar

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, field_validator

from .catalog import ADAPTED, Catalog, item_attributes
from .config import CatalogConfig

__all__ = [
    "CreatorRule",
    "Imitate",
    "Static",
    "CREATOR_RULES",
    "CREATOR_METRICS",
    "TOP_CREATOR_SHARE",
    "resolve_creator_rule",
    "build_creator_rule",
    "imitation_gap",
    "CreatorPool",
]

#: the share of creators whose part of the exposure ``top_creator_share`` reports
TOP_CREATOR_SHARE = 0.1

#: flow metrics of a bucket with ``catalog.creators`` (in metrics.csv with the others)
CREATOR_METRICS = (
    "upload_extremeness",
    "upload_extremeness_sd",
    "upload_quality",
    "upload_quality_sd",
    "upload_clickbait",
    "upload_clickbait_sd",
    "creator_quality_clickbait_corr",
    "top_creator_share",
)


class _NoParams(BaseModel):
    model_config = ConfigDict(extra="forbid")


class CreatorRule:
    """The interface of a creator adaptation rule.

    Subclass it, give it a pydantic ``Params`` model, and implement :meth:`adapt`."""

    Params: ClassVar[type[BaseModel]] = _NoParams

    def __init__(self, params: BaseModel | None = None, /, **kwargs: Any):
        self.params = params if params is not None else self.Params(**kwargs)

    def adapt(self, offsets: np.ndarray, gap: np.ndarray, exposure: np.ndarray) -> np.ndarray:
        """Every creator's next offsets, ``(C, 3)`` (extremeness, quality, clickbait; attribute
        units).

        ``offsets`` ``(C, 3)`` the current ones; ``gap`` ``(C, 3)`` :func:`imitation_gap` of the
        period just ended; ``exposure`` ``(C,)`` each creator's signal in it (impressions or
        seconds watched). The arrays are read-only; the engine clips the result to
        ``±max_offset``."""
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.params!r})"


_Share = Annotated[float, Field(ge=0.0, le=1.0, allow_inf_nan=False)]


class _EffortCosts(BaseModel):
    model_config = ConfigDict(extra="forbid")
    extremeness: _Share = 0.05
    quality: _Share = 0.05
    clickbait: _Share = 0.05


class _ImitateParams(BaseModel):
    model_config = ConfigDict(extra="forbid")
    rate: float = Field(0.5, ge=0.0, allow_inf_nan=False, description="η, the step toward what earned exposure")
    effort_cost: _EffortCosts = Field(
        default_factory=_EffortCosts,
        description="κ, the share of its offset a creator gives up each period: one number in [0, 1], or one "
        "per attribute ({extremeness, quality, clickbait}; e.g. cheap clickbait, costly quality)")

    @field_validator("effort_cost", mode="before")
    @classmethod
    def _one_for_all(cls, value: Any) -> Any:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            if not 0.0 <= value <= 1.0:
                raise ValueError("must be in [0, 1] (or one per attribute: {extremeness, quality, clickbait})")
            return {name: value for name in ADAPTED}
        return value

    def costs(self) -> np.ndarray:
        """κ per attribute, ``(3,)`` in the order extremeness, quality, clickbait."""
        cost = self.effort_cost
        return np.array([cost.extremeness, cost.quality, cost.clickbait])


class Imitate(CreatorRule):
    """δ ← (1 − κ)·δ + η·gap (κ per attribute; the engine clips to ±max_offset)."""

    Params = _ImitateParams

    def adapt(self, offsets: np.ndarray, gap: np.ndarray, exposure: np.ndarray) -> np.ndarray:
        return (1.0 - self.params.costs()) * offsets + self.params.rate * gap


class Static(CreatorRule):
    """Creators never adapt: offsets stay as they are (0)."""

    def adapt(self, offsets: np.ndarray, gap: np.ndarray, exposure: np.ndarray) -> np.ndarray:
        return np.array(offsets, dtype=float)


#: the built-in rules by name
CREATOR_RULES: dict[str, type[CreatorRule]] = {"imitate": Imitate, "static": Static}


def resolve_creator_rule(name: str) -> type[CreatorRule]:
    """The class of a rule: a built-in name or ``"module:Class"``.

    Raises LookupError (unknown name, or not a :class:`CreatorRule`) or ImportError."""
    if ":" not in name:
        try:
            return CREATOR_RULES[name]
        except KeyError:
            raise LookupError(
                f"unknown creator rule {name!r}; built-ins are {', '.join(CREATOR_RULES)}, or give "
                "\"module:Class\" (a subclass of recsim.creators.CreatorRule)"
            ) from None
    from .plugins import import_object

    cls = import_object(name, f"creator rule {name!r}")
    if not (isinstance(cls, type) and issubclass(cls, CreatorRule)):
        raise LookupError(f"{name!r} is not a subclass of recsim.creators.CreatorRule")
    return cls


def build_creator_rule(name: str, params: dict[str, Any] | None = None) -> CreatorRule:
    """The rule ``name`` with ``params`` (validated by its ``Params``: pydantic's
    ValidationError on a bad one)."""
    cls = resolve_creator_rule(name)
    return cls(cls.Params(**(params or {})))


def imitation_gap(creator: np.ndarray, weight: np.ndarray, residual: np.ndarray,
                  n_creators: int) -> tuple[np.ndarray, np.ndarray]:
    """``(gap, exposure)``: per creator, the weighted mean of the items' residuals less their
    plain mean, ``(C, 3)`` (0 for a creator whose items earned nothing), and the total weight,
    ``(C,)``.

    ``creator`` ``(n,)`` the creator of each item so far; ``weight`` ``(n,)`` what each earned
    in the period (≥ 0); ``residual`` ``(n, 3)`` each item's attributes at offset 0."""
    exposure = np.bincount(creator, weights=weight, minlength=n_creators)
    count = np.bincount(creator, minlength=n_creators)
    gap = np.zeros((n_creators, residual.shape[1]))
    earned = exposure > 0
    for j in range(residual.shape[1]):
        weighted = np.bincount(creator, weights=weight * residual[:, j], minlength=n_creators)
        plain = np.bincount(creator, weights=residual[:, j], minlength=n_creators)
        gap[earned, j] = weighted[earned] / exposure[earned] - plain[earned] / count[earned]
    return gap, exposure


def _readonly(x: np.ndarray) -> np.ndarray:
    x = x.view()
    x.flags.writeable = False
    return x


class CreatorPool:
    """The creators of one run: their hidden offsets, what their items earn, the adaptation.

    ``catalog`` is revised in place (:meth:`Catalog.revise`) at each :meth:`adapt`. Times in
    seconds. Deterministic given the calls: impressions are counted (integers) and watches
    added in the order given, which the engine makes the time order."""

    #: items whose draws give a creator's *style* (the expected attributes of its next upload)
    STYLE_SAMPLE = 500

    def __init__(self, cfg: CatalogConfig, catalog: Catalog, rule: CreatorRule | None = None):
        creators = cfg.creators
        if creators is None:
            raise ValueError("catalog.creators is not set")
        if catalog.draws is None:
            raise ValueError("the catalog keeps no draws to remake items from")
        self.cfg, self.creators, self.catalog = cfg, creators, catalog
        self.rule = rule if rule is not None else build_creator_rule(creators.rule, creators.params)
        self.n_creators = cfg.n_creators
        self.offsets = np.zeros((self.n_creators, 3))  # δ per creator (hidden)
        self.item_offsets = np.zeros((catalog.n_items, 3))  # δ each item was made with
        # each item's attributes at offset 0 (its draws alone): the catalog as generated
        self.base = np.stack([getattr(catalog, name) for name in ADAPTED], axis=1)
        self.mask = np.array([name in creators.adapt for name in ADAPTED], dtype=float)
        n = catalog.n_items
        self.period_impressions = np.zeros(n, dtype=np.int64)
        self.period_watch = np.zeros(n)
        self.bucket_impressions = np.zeros(n, dtype=np.int64)
        self.period_start = 0.0
        #: one row per creator per adaptation: (time, creator, impressions, watch seconds,
        #: offsets ×3, style ×3)
        self.rows: list[np.ndarray] = []
        m = min(self.STYLE_SAMPLE, catalog.n_items)
        self._style_draws = type(catalog.draws)(**{
            name: getattr(catalog.draws, name)[:m] for name in vars(catalog.draws)})

    # ------------------------------------------------------------------ what items earn
    def on_impressions(self, slates: np.ndarray) -> None:
        """Slates ``(B, k)`` shown in the horizon (item ids)."""
        counts = np.bincount(slates.ravel(), minlength=self.catalog.n_items)
        self.period_impressions += counts
        self.bucket_impressions += counts

    def on_watches(self, items: np.ndarray, seconds: np.ndarray) -> None:
        """Watches in the horizon, in time order: item ids ``(n,)``, seconds watched ``(n,)``."""
        np.add.at(self.period_watch, items, seconds)

    # ------------------------------------------------------------------ adaptation
    def adapt(self, now: float) -> None:
        """The adaptation at ``now``: the gap of the period just ended (over the items uploaded
        before ``now``), the rule, the bounds; the items uploaded from ``now`` on are remade
        with the new offsets. Raises ValueError if the rule returns an array of the wrong shape
        or non-finite values."""
        cat = self.catalog
        first = n_available = int(np.searchsorted(cat.upload_time, now, side="left"))
        weight = (self.period_impressions[:n_available].astype(float) if self.creators.signal == "impressions"
                  else self.period_watch[:n_available])
        gap, exposure = imitation_gap(cat.creator[:n_available], weight, self.base[:n_available],
                                      self.n_creators)
        gap *= self.mask
        proposed = self.rule.adapt(_readonly(self.offsets.copy()), _readonly(gap), _readonly(exposure))
        proposed = np.asarray(proposed, dtype=float)
        if proposed.shape != self.offsets.shape:
            raise ValueError(f"creator rule {self.rule!r} (catalog.creators.rule) returned offsets of shape {proposed.shape}; "
                             f"expected {self.offsets.shape} (creators × extremeness, quality, clickbait)")
        if not np.isfinite(proposed).all():
            raise ValueError(f"creator rule {self.rule!r} (catalog.creators.rule) returned offsets that are not finite")
        bound = self.creators.max_offset
        self.offsets = np.clip(proposed, -bound, bound) * self.mask
        if first < cat.n_items:
            offsets = self.offsets[cat.creator[first:]]
            self.item_offsets[first:] = offsets
            draws = type(cat.draws)(**{name: values[first:] for name, values in vars(cat.draws).items()})
            cat.revise(first, item_attributes(self.cfg, draws, offsets))
        self.rows.append(self._table_rows(now, weight))
        self.period_impressions[:] = 0
        self.period_watch[:] = 0.0
        self.period_start = now

    def style(self) -> np.ndarray:
        """Each creator's expected attributes of its next upload, ``(C, 3)``: the mean over
        :attr:`STYLE_SAMPLE` fixed draws of the attributes its offsets give."""
        draws = self._style_draws
        m, c = draws.extremeness.shape[0], self.n_creators
        tiled = type(draws)(**{name: np.tile(values, c) for name, values in vars(draws).items()})
        made = item_attributes(self.cfg, tiled, np.repeat(self.offsets, m, axis=0))  # creator-major
        return np.stack([made[name].reshape(c, m).mean(axis=1) for name in ADAPTED], axis=1)

    def _table_rows(self, now: float, weight: np.ndarray) -> np.ndarray:
        n = weight.shape[0]
        creator = self.catalog.creator[:n]
        impressions = np.bincount(creator, weights=self.period_impressions[:n].astype(float), minlength=self.n_creators)
        watch = np.bincount(creator, weights=self.period_watch[:n], minlength=self.n_creators)
        return np.column_stack([
            np.full(self.n_creators, now), np.arange(self.n_creators), impressions, watch, self.offsets, self.style(),
        ])

    def table(self) -> dict[str, np.ndarray]:
        """The creators table: one row per creator per adaptation (time in seconds)."""
        names = ["time", "creator", "impressions", "watch_seconds",
                 *(f"{name}_offset" for name in ADAPTED), *(f"style_{name}" for name in ADAPTED)]
        rows = np.concatenate(self.rows) if self.rows else np.empty((0, len(names)))
        out = {name: rows[:, j] for j, name in enumerate(names)}
        out["creator"] = out["creator"].astype(np.int64)
        out["impressions"] = out["impressions"].astype(np.int64)
        return out

    # ------------------------------------------------------------------ metrics
    def bucket_metrics(self, start: float, end: float) -> dict[str, float]:
        """The :data:`CREATOR_METRICS` of the bucket ``[start, end)`` (seconds): the true
        attributes of the items uploaded in it (mean, sd), the correlation across creators of
        the quality and clickbait of their style in effect at the end of the bucket (the engine
        closes a bucket before an adaptation at the same time; NaN while the offsets do not
        vary), and the share of the bucket's impressions (every user's, scripted ones included)
        that went to the top :data:`TOP_CREATOR_SHARE` of creators."""
        cat = self.catalog
        lo, hi = np.searchsorted(cat.upload_time, [start, end], side="left")
        out: dict[str, float] = {}
        for name in ADAPTED:
            values = getattr(cat, name)[lo:hi]
            out[f"upload_{name}"] = float(values.mean()) if values.shape[0] else math.nan
            out[f"upload_{name}_sd"] = float(values.std(ddof=1)) if values.shape[0] > 1 else math.nan
        style = self.style()
        # a creator's style quality moves with its extremeness and quality offsets, its
        # clickbait with the clickbait offset: no correlation while either does not vary
        varies = (np.unique(self.offsets[:, :2], axis=0).shape[0] > 1
                  and np.unique(self.offsets[:, 2]).shape[0] > 1)
        out["creator_quality_clickbait_corr"] = (float(np.corrcoef(style[:, 1], style[:, 2])[0, 1]) if varies
                                                 else math.nan)
        per_creator = np.bincount(cat.creator, weights=self.bucket_impressions.astype(float),
                                  minlength=self.n_creators)
        total = per_creator.sum()
        top = max(1, math.ceil(TOP_CREATOR_SHARE * self.n_creators))
        out["top_creator_share"] = float(np.sort(per_creator)[::-1][:top].sum() / total) if total > 0 else math.nan
        self.bucket_impressions[:] = 0
        return out
