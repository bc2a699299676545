"""Kernels of the default user model's heaviest terms, for a batch of users each facing ``c``
items: what :class:`recsim.users.default.Allure` and
:meth:`recsim.users.default.LogNormalWatch.expected_watch_time` compute with
:mod:`recsim.users.formulas`, fused so that no ``(K, B, c)`` gather of topic vectors is made.

Each kernel takes the catalog's own arrays and the item ids, and repeats the formulas'
operations in their order (see each formula's docstring for the equation and its source in
``docs/model.md``); ``tests/test_kernels.py`` checks them bit for bit against the formulas.
"""

from __future__ import annotations

import math

import numpy as np

from . import jit
from .special import ndtr


@jit
def relevance_allure(theta, appetite, topics, extremeness, clickbait, ids, w_r, w_e, w_c, delta, omega):
    """Relevance r = θ·x and allure A = w_r·r + w_e·g(e; a) + w_c·b of every item of every row.

    ``theta`` ``(B, K)`` and ``appetite`` ``(B,)``: the rows' users; ``topics`` ``(n_items,
    K)``, ``extremeness`` and ``clickbait`` ``(n_items,)``: the catalog's true attributes;
    ``ids`` ``(B, c)`` item ids. Returns ``(r, A)``, both ``(B, c)``. r is summed term by term
    in topic order, as :func:`recsim.users.formulas.relevance` sums it (four items at a time,
    so that their chains of additions, which must not be reordered, overlap);
    g(e; a) = exp(−(e − a − δ)² / (2ω²)) (:func:`recsim.users.formulas.grip`)."""
    B, c = ids.shape
    r = np.empty((B, c))
    A = np.empty((B, c))
    spread = 2.0 * omega * omega
    for b in range(B):
        _relevances(topics, ids[b], c, theta[b], r[b])
        a = appetite[b]
        for j in range(c):
            item = ids[b, j]
            d = extremeness[item] - a - delta
            g = math.exp(-(d * d) / spread)
            A[b, j] = w_r * r[b, j] + w_e * g + w_c * clickbait[item]
    return r, A


@jit
def _relevances(table, items, count, vector, out):
    """``out[j] = Σ_t table[items[j], t]·vector[t]`` for the first ``count`` items, each summed
    term by term in topic order (the benchmark's compiled ceiling runs this loop too)."""
    K = vector.shape[0]
    j = 0
    while j + 4 <= count:
        c0, c1, c2, c3 = items[j], items[j + 1], items[j + 2], items[j + 3]
        v = vector[0]
        r0 = table[c0, 0] * v
        r1 = table[c1, 0] * v
        r2 = table[c2, 0] * v
        r3 = table[c3, 0] * v
        for t in range(1, K):
            v = vector[t]
            r0 += table[c0, t] * v
            r1 += table[c1, t] * v
            r2 += table[c2, t] * v
            r3 += table[c3, t] * v
        out[j] = r0
        out[j + 1] = r1
        out[j + 2] = r2
        out[j + 3] = r3
        j += 4
    while j < count:
        item = items[j]
        total = table[item, 0] * vector[0]
        for t in range(1, K):
            total += table[item, t] * vector[t]
        out[j] = total
        j += 1


@jit
def expected_watch_time(length, log_length, ids, A, W, mu, alpha_a, alpha_w, sigma):
    """E[min(L, T)] for log T ~ N(m, σ²), m = log L + μ_τ + α_A·A + α_W·(W − ½), of every item
    of every row, in seconds (:func:`recsim.users.formulas.expected_watch_time` and
    :func:`~recsim.users.formulas.capped_lognormal_mean`: exp(m + σ²/2)·Φ((log L − m − σ²)/σ)
    + L·Φ((m − log L)/σ), min(L, e^m) at σ = 0).

    ``length``, ``log_length`` ``(n_items,)``: the catalog's; ``ids`` ``(B, c)``; ``A``
    ``(B, c)`` the items' allure; ``W`` ``(B,)`` the users' wellbeing."""
    B, c = ids.shape
    out = np.empty((B, c))
    ss = sigma * sigma
    half = 0.5 * sigma * sigma
    for b in range(B):
        tilt = alpha_w * (W[b] - 0.5)
        for j in range(c):
            item = ids[b, j]
            log_cap = log_length[item]
            m = log_cap + mu + alpha_a * A[b, j] + tilt
            if sigma == 0.0:
                out[b, j] = min(length[item], math.exp(m))
            else:
                below = ndtr((log_cap - m - ss) / sigma) * math.exp(m + half)
                out[b, j] = ndtr((m - log_cap) / sigma) * length[item] + below
    return out
