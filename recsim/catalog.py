"""The item catalog (docs/model.md §2): true attributes, observable features, uploads over time.

Items are stored as a struct of arrays, **sorted by upload time**, so "the items available at
time t" is the prefix ``[0, n_available(t))``. The whole catalog for a run (the backlog plus
every Poisson upload until the end of the horizon) is drawn up front from the ``catalog`` and
``uploads`` streams, so it is identical under every policy (common random numbers). With
adapting creators (``catalog.creators``, :mod:`recsim.creators`) the attributes of items not yet
uploaded are remade from the same draws at each adaptation (:meth:`Catalog.revise`).
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import numpy as np

from .config import CatalogConfig

__all__ = [
    "Catalog", "ObservableItems", "ItemDraws", "ADAPTED", "item_attributes", "creator_shares", "make_topic_centers",
    "generate_catalog", "unit_rows",
]


def unit_rows(x: np.ndarray) -> np.ndarray:
    """Rows of ``x`` scaled to unit L2 norm (shape kept)."""
    norms = np.linalg.norm(x, axis=-1, keepdims=True)
    return x / np.where(norms > 0, norms, 1.0)


@dataclass(frozen=True)
class ObservableItems:
    """What a platform knows about every item, indexed by item id; shapes ``(n,)`` or
    ``(n, K)``. Holds no hidden attribute, so it is safe to hand to any policy."""

    topics: np.ndarray  # noisy topic vectors, unit norm
    classifier: np.ndarray  # extremeness classifier score ê in [0, 1]
    length: np.ndarray  # seconds
    upload_time: np.ndarray  # seconds
    creator: np.ndarray

    @property
    def n_items(self) -> int:
        return int(self.length.shape[0])


@dataclass(frozen=True)
class ItemDraws:
    """The random draws behind each item's true attributes, shapes ``(n,)`` (hidden):
    extremeness ``e₀`` and clickbait ``b₀`` before their creator's offsets, the noise ``ε_q`` of
    quality and ``ε_ê`` of the classifier score. :func:`item_attributes` makes the attributes
    from them; adapting creators (§2.1) remake future items' attributes from the same draws, so
    common random numbers hold whatever the creators do."""

    extremeness: np.ndarray
    quality_noise: np.ndarray
    clickbait: np.ndarray
    classifier_noise: np.ndarray


@dataclass
class Catalog:
    """Items sorted by upload time. Shapes: ``(n,)`` unless noted; times in seconds.

    Hidden (never given to a non-oracle policy): ``topics``, ``extremeness``, ``quality``,
    ``clickbait``, ``cluster``. Observable: ``topics_obs`` (noisy, unit norm), ``classifier``
    (noisy extremeness score ê in [0, 1]), ``length``, ``creator``, ``upload_time``.
    """

    topics: np.ndarray  # (n, K) unit norm, true
    cluster: np.ndarray  # int, true home cluster of the item
    extremeness: np.ndarray
    quality: np.ndarray
    clickbait: np.ndarray
    length: np.ndarray  # seconds
    creator: np.ndarray  # int
    upload_time: np.ndarray  # seconds of simulated time (negative: before the run)
    topics_obs: np.ndarray  # (n, K)
    classifier: np.ndarray
    log_length: np.ndarray | None = None  # log of length (computed once)
    topics_by_topic: np.ndarray | None = None  # (K, n) the true topics, topic axis first
    draws: ItemDraws | None = None  # what the true attributes are made from (hidden)

    def __post_init__(self) -> None:
        if self.log_length is None:
            self.log_length = np.log(self.length)
        if self.topics_by_topic is None:
            # topic-major copy: relevance sums over topics term by term, fastest this way
            self.topics_by_topic = np.ascontiguousarray(self.topics.T)
        arrays = [getattr(self, f.name) for f in fields(self) if f.name != "draws"]
        if self.draws is not None:
            arrays += [getattr(self.draws, f.name) for f in fields(ItemDraws)]
        for array in arrays:  # shared with every policy and user: nobody writes into them
            array.flags.writeable = False

    def revise(self, first: int, attributes: dict[str, np.ndarray]) -> None:
        """Replace the attributes of items ``first, first + 1, …`` (not yet uploaded) with
        ``attributes`` (name: ``(n_items − first,)``; names of :data:`ADAPTED` and
        ``classifier``). Copy on write: arrays handed out before keep their values, so an
        :class:`ObservableItems` never changes; :meth:`observable` gives the revised view."""
        for name, values in attributes.items():
            new = getattr(self, name).copy()
            new[first:] = values
            new.flags.writeable = False
            setattr(self, name, new)

    @property
    def n_items(self) -> int:
        return int(self.length.shape[0])

    @property
    def n_topics(self) -> int:
        return int(self.topics.shape[1])

    def observable(self) -> ObservableItems:
        """The observable view (shares arrays; nothing hidden)."""
        return ObservableItems(
            topics=self.topics_obs,
            classifier=self.classifier,
            length=self.length,
            upload_time=self.upload_time,
            creator=self.creator,
        )

    def n_available(self, now: float) -> int:
        """Number of items uploaded at or before ``now`` (they are the prefix of the arrays)."""
        return int(np.searchsorted(self.upload_time, now, side="right"))


def make_topic_centers(cfg: CatalogConfig, rng: np.random.Generator) -> np.ndarray:
    """Unit-norm cluster centers, shape ``(n_clusters, K)``, drawn Dirichlet(concentration)."""
    alpha = np.full(cfg.n_topics, cfg.cluster_concentration)
    return unit_rows(rng.dirichlet(alpha, size=cfg.n_clusters))


def _draw_unit(dist, n: int, rng: np.random.Generator) -> np.ndarray:
    """``n`` draws of a Beta(a, b) pair or a :class:`recsim.config.DiscreteConfig`."""
    if isinstance(dist, tuple):
        return rng.beta(*dist, size=n)
    return np.asarray(dist.values, dtype=float)[rng.choice(len(dist.values), size=n, p=dist.probabilities())]


def _unit_mean(dist) -> float:
    return dist[0] / (dist[0] + dist[1]) if isinstance(dist, tuple) else dist.mean()


#: the true attributes a creator's offsets move (in this order in every ``(…, 3)`` array)
ADAPTED = ("extremeness", "quality", "clickbait")


def item_attributes(cfg: CatalogConfig, draws: ItemDraws, offsets: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """The true ``extremeness``, ``quality`` and ``clickbait`` and the observable
    ``classifier`` score of items from their draws (docs/model.md §2), shapes ``(n,)``::

        e = clip(e₀ + δ_e, 0, 1)
        q = clip(q₀ − q₁·(e − E[e]) + ε_q + δ_q, q_min, q_max)
        b = clip(b₀ + δ_b, 0, 1)
        ê = clip(e + ε_ê, 0, 1)

    ``offsets`` ``(n, 3)``: each item's creator offsets δ (extremeness, quality, clickbait) when
    it was made (§2.1); None (no adapting creators): δ = 0, and ``e = e₀``, ``b = b₀`` exactly.
    E[e] is the mean of ``catalog.extremeness`` for every item, those of clusters with their
    own distribution (``catalog.extremeness_by_cluster``) too: quality falls with e alike in
    every cluster."""
    q = cfg.quality
    mean_e = _unit_mean(cfg.extremeness)
    if offsets is None:
        e, b, dq = draws.extremeness, draws.clickbait, 0.0
    else:
        e = np.clip(draws.extremeness + offsets[:, 0], 0.0, 1.0)
        b = np.clip(draws.clickbait + offsets[:, 2], 0.0, 1.0)
        dq = offsets[:, 1]
    quality = q.base - q.slope * (e - mean_e) + draws.quality_noise
    if offsets is not None:
        quality = quality + dq
    return dict(
        extremeness=e,
        quality=np.clip(quality, q.min, q.max),
        clickbait=b,
        classifier=np.clip(e + draws.classifier_noise, 0.0, 1.0),
    )


def creator_shares(cfg: CatalogConfig) -> np.ndarray | None:
    """Each creator's share of uploads, ``(n_creators,)``; None for the uniform split."""
    creators = cfg.creators
    if creators is None or creators.split == "uniform":
        return None
    rank = np.arange(1, cfg.n_creators + 1, dtype=float)
    weights = rank ** -creators.zipf_exponent
    return weights / weights.sum()


def _draw_items(
    cfg: CatalogConfig, centers: np.ndarray, n: int, rng: np.random.Generator
) -> tuple[dict[str, np.ndarray], ItemDraws]:
    k = cfg.n_topics
    cluster = rng.integers(0, cfg.n_clusters, size=n)
    topics = unit_rows(centers[cluster] + rng.normal(0.0, cfg.item_noise, size=(n, k)))
    e = _draw_unit(cfg.extremeness, n, rng)
    quality_noise = rng.normal(0.0, cfg.quality.noise, size=n)
    clickbait = _draw_unit(cfg.clickbait, n, rng)
    ln = cfg.length
    length = np.clip(ln.median * np.exp(ln.log_sd * rng.standard_normal(n)), ln.min, ln.max)
    shares = creator_shares(cfg)
    creator = (rng.integers(0, cfg.n_creators, size=n) if shares is None
               else rng.choice(cfg.n_creators, size=n, p=shares))
    topics_obs = unit_rows(topics + rng.normal(0.0, cfg.topic_noise, size=(n, k)))
    classifier_noise = rng.normal(0.0, cfg.classifier_noise, size=n)
    # Clusters with their own extremeness distribution (catalog.extremeness_by_cluster) redraw
    # their items' e₀ after every other draw, cluster by cluster in index order: without the
    # option the draws are exactly those above, and with it every other attribute, and the e₀
    # of every item of the other clusters, stay what they are without it.
    for index, dist in sorted((cfg.extremeness_by_cluster or {}).items()):
        mine = np.flatnonzero(cluster == index)
        e[mine] = _draw_unit(dist, mine.size, rng)
    draws = ItemDraws(extremeness=e, quality_noise=quality_noise, clickbait=clickbait,
                      classifier_noise=classifier_noise)
    return dict(
        topics=topics, cluster=cluster, length=length, creator=creator, topics_obs=topics_obs,
        **item_attributes(cfg, draws),
    ), draws


def generate_catalog(
    cfg: CatalogConfig,
    centers: np.ndarray,
    start: float,
    end: float,
    catalog_rng: np.random.Generator,
    uploads_rng: np.random.Generator,
) -> Catalog:
    """Draw the backlog (uploaded uniformly over ``[start - backlog, start)``) and the Poisson
    uploads in ``[start, end)``; return the catalog sorted by upload time."""
    backlog_times = np.sort(catalog_rng.uniform(start - cfg.backlog, start, size=cfg.n_items))
    n_new = int(uploads_rng.poisson(cfg.upload_rate * max(end - start, 0.0)))
    # Given their count, Poisson arrival times are uniform order statistics.
    new_times = np.sort(uploads_rng.uniform(start, end, size=n_new))
    backlog, backlog_draws = _draw_items(cfg, centers, cfg.n_items, catalog_rng)
    fresh, fresh_draws = _draw_items(cfg, centers, n_new, uploads_rng)
    columns = {key: np.concatenate([backlog[key], fresh[key]]) for key in backlog}
    columns["upload_time"] = np.concatenate([backlog_times, new_times])
    draws = ItemDraws(**{f.name: np.concatenate([getattr(backlog_draws, f.name), getattr(fresh_draws, f.name)])
                         for f in fields(ItemDraws)})
    return Catalog(**columns, draws=draws)
