"""Kernels of the user model: its special functions, its counter-based draws and its heaviest
terms, operation for operation what recsim's NumPy code computes.

* Cephes' ``ndtr`` and ``ndtri`` (as ``scipy.special`` has them) and ``expit``;
* splitmix64 and the counter-based uniforms of :mod:`recsim.rng`, and the next draws of a
  batch of users (:meth:`recsim.users.state.Draws.uniform` and ``normal``);
* NumPy's pairwise summation along a contiguous axis;
* the default model's relevance and allure, and its expected watch time (what
  :class:`recsim.users.default.Allure` and
  :meth:`recsim.users.default.LogNormalWatch.expected_watch_time` compute with
  :mod:`recsim.users.formulas`), fused so that no ``(K, B, c)`` gather of topic vectors is made;
* its probability of clicking an item shown alone in position 1
  (:meth:`recsim.users.default.LogitChoice.click_probability_alone`), without repeating the
  users' outside option ``c`` times;
* its next return by thinning (:meth:`recsim.users.default.HawkesReturns.next_return`), the
  whole rejection loop of each user in one call (the NumPy loop pays a dozen array operations
  per round, which at a handful of users per step cost more than the arithmetic).

They are one file because numba's cache checks only the file a function is defined in: a
kernel that called another file's kernel could keep a stale copy of it.

Sources: S. L. Moshier, *Cephes Math Library* 2.1 (1989; ``ndtri``) and 2.2 (1992; ``ndtr``,
``erf``, ``erfc``); S. Vigna's splitmix64 finalizer; NumPy's ``pairwise_sum``
(``numpy/_core/src/umath/loops_utils.h.src``); the model's equations in ``docs/model.md``.
``tests/test_kernels.py`` checks each against the function it stands in for, bit for bit.
"""


from __future__ import annotations

import math

import numpy as np

from . import jit as _njit

__all__ = ["click_probability_alone", "engagement_top_k_rows", "expected_watch_time", "expit", "hawkes_next_returns", "ndtr", "ndtri",
           "next_uniforms",
           "relevance_allure", "row_sum", "splitmix64", "uniform"]

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)
_ONE = np.uint64(1)
_S12, _S27, _S30, _S31 = (np.uint64(s) for s in (12, 27, 30, 31))
_TO_UNIT = 2.0**-52

# Cephes' rational approximation of the inverse normal CDF (S. L. Moshier, Cephes Math Library
# 2.1, 1989; what scipy.special.ndtri computes): w + w³·R(w²)/S(w²) in the middle,
# z − log(z)/z − P(1/z)/(z·Q(1/z)) with z = sqrt(−2 log y) in the tails.
_NDTRI_P0 = np.array([-5.99633501014107895267e1, 9.80010754185999661536e1, -5.66762857469070293439e1,
                      1.39312609387279679503e1, -1.23916583867381258016e0])
_NDTRI_Q0 = np.array([1.95448858338141759834e0, 4.67627912898881538453e0, 8.63602421390890590575e1,
                      -2.25462687854119370527e2, 2.00260212380060660359e2, -8.20372256168333339912e1,
                      1.59056225126211695515e1, -1.18331621121330003142e0])
_NDTRI_P1 = np.array([4.05544892305962419923e0, 3.15251094599893866154e1, 5.71628192246421288162e1,
                      4.40805073893200834700e1, 1.46849561928858024014e1, 2.18663306850790267539e0,
                      -1.40256079171354495875e-1, -3.50424626827848203418e-2, -8.57456785154685413611e-4])
_NDTRI_Q1 = np.array([1.57799883256466749731e1, 4.53907635128879210584e1, 4.13172038254672030440e1,
                      1.50425385692907503408e1, 2.50464946208309415979e0, -1.42182922854787788574e-1,
                      -3.80806407691578277194e-2, -9.33259480895457427372e-4])
_NDTRI_P2 = np.array([3.23774891776946035970e0, 6.91522889068984211695e0, 3.93881025292474443415e0,
                      1.33303460815807542389e0, 2.01485389549179081538e-1, 1.23716634817820021358e-2,
                      3.01581553508235416007e-4, 2.65806974686737550832e-6, 6.23974539184983293730e-9])
_NDTRI_Q2 = np.array([6.02427039364742014255e0, 3.67983563856160859403e0, 1.37702099489081330271e0,
                      2.16236993594496635890e-1, 1.34204006088543189037e-2, 3.28014464682127739104e-4,
                      2.89247864745380683936e-6, 6.79019408009981274425e-9])
_S2PI = 2.50662827463100050242e0
_EXP_M2 = 0.13533528323661269189  # exp(-2)
_SQRT1_2 = 0.70710678118654752440
# Cephes' erf (x·T(x²)/U(x²), |x| ≤ 1) and erfc (e^(−x²)·P(x)/Q(x) below 8, R/S above; Cephes
# Math Library 2.2, 1992), for ndtr
_ERFC_P = np.array([2.46196981473530512524e-10, 5.64189564831068821977e-1, 7.46321056442269912687e0,
                    4.86371970985681366614e1, 1.96520832956077098242e2, 5.26445194995477358631e2,
                    9.34528527171957607540e2, 1.02755188689515710272e3, 5.57535335369399327526e2])
_ERFC_Q = np.array([1.32281951154744992508e1, 8.67072140885989742329e1, 3.54937778887819891062e2,
                    9.75708501743205489753e2, 1.82390916687909736289e3, 2.24633760818710981792e3,
                    1.65666309194161350182e3, 5.57535340817727675546e2])
_ERFC_R = np.array([5.64189583547755073984e-1, 1.27536670759978104416e0, 5.01905042251180477414e0,
                    6.16021097993053585195e0, 7.40974269950448939160e0, 2.97886665372100240670e0])
_ERFC_S = np.array([2.26052863220117276590e0, 9.39603524938001434673e0, 1.20489539808096656605e1,
                    1.70814450747565897222e1, 9.60896809063285878198e0, 3.36907645100081516050e0])
_ERF_T = np.array([9.60497373987051638749e0, 9.00260197203842689217e1, 2.23200534594684319226e3,
                   7.00332514112805075473e3, 5.55923013010394962768e4])
_ERF_U = np.array([3.35617141647503099647e1, 5.21357949780152679795e2, 4.59432382970980127987e3,
                   2.26290000613890934246e4, 4.92673942608635921086e4])
_MAXLOG = 7.09782712893383996843e2  # log(largest double)


@_njit
def _polevl(x, coef):
    """coef[0]·xⁿ + … + coef[n] by Horner's rule (Cephes' polevl)."""
    ans = coef[0]
    for i in range(1, coef.shape[0]):
        ans = ans * x + coef[i]
    return ans


@_njit
def _p1evl(x, coef):
    """xⁿ + coef[0]·xⁿ⁻¹ + … + coef[n−1]: a leading coefficient of 1 (Cephes' p1evl)."""
    ans = x + coef[0]
    for i in range(1, coef.shape[0]):
        ans = ans * x + coef[i]
    return ans


@_njit
def ndtri(y0):
    """The standard normal quantile of ``y0`` in (0, 1): Cephes' ndtri, operation for
    operation (libm's log and sqrt), the algorithm scipy.special.ndtri uses."""
    if y0 <= 0.0:
        return -np.inf
    if y0 >= 1.0:
        return np.inf
    negate = True
    y = y0
    if y > 1.0 - _EXP_M2:
        y = 1.0 - y
        negate = False
    if y > _EXP_M2:
        y = y - 0.5
        y2 = y * y
        x = y + y * (y2 * _polevl(y2, _NDTRI_P0) / _p1evl(y2, _NDTRI_Q0))
        return x * _S2PI
    x = math.sqrt(-2.0 * math.log(y))
    x0 = x - math.log(x) / x
    z = 1.0 / x
    if x < 8.0:
        x1 = z * _polevl(z, _NDTRI_P1) / _p1evl(z, _NDTRI_Q1)
    else:
        x1 = z * _polevl(z, _NDTRI_P2) / _p1evl(z, _NDTRI_Q2)
    x = x0 - x1
    return -x if negate else x


@_njit
def ndtr(a):
    """The standard normal CDF: Cephes' ndtr with Cephes' own erf and erfc, operation for
    operation (libm's exp), what scipy.special.ndtr computes (libm's erf and erfc are a little
    faster but differ from it in the last bit)."""
    x = a * _SQRT1_2
    z = abs(x)
    if z < _SQRT1_2:  # 0.5 + 0.5·erf(x), erf(x) = x·T(x²)/U(x²) for |x| ≤ 1
        z2 = x * x
        return 0.5 + 0.5 * (x * _polevl(z2, _ERF_T) / _p1evl(z2, _ERF_U))
    if z < 1.0:  # erfc(z) = 1 − erf(z)
        z2 = z * z
        y = 1.0 - z * _polevl(z2, _ERF_T) / _p1evl(z2, _ERF_U)
    else:  # erfc(z) = e^(−z²)·P(z)/Q(z) (R/S beyond 8)
        e = -z * z
        if e < -_MAXLOG:
            y = 0.0
        else:
            e = math.exp(e)
            if z < 8.0:
                y = (e * _polevl(z, _ERFC_P)) / _p1evl(z, _ERFC_Q)
            else:
                y = (e * _polevl(z, _ERFC_R)) / _p1evl(z, _ERFC_S)
    y = 0.5 * y
    return 1.0 - y if x > 0.0 else y


@_njit
def expit(x):
    """1 / (1 + e^−x) (scipy.special.expit)."""
    return 1.0 / (1.0 + math.exp(-x))


@_njit
def splitmix64(z):
    z = z ^ (z >> _S30)
    z = z * _M1
    z = z ^ (z >> _S27)
    z = z * _M2
    return z ^ (z >> _S31)


@_njit
def uniform(key, counter):
    """Draw ``counter`` (0-based) of the stream whose user key is ``key``: recsim.rng.uniforms."""
    z = key + (np.uint64(counter) + _ONE) * _GOLDEN
    return (np.float64(splitmix64(z) >> _S12) + 0.5) * _TO_UNIT


@_njit
def row_sum(z, n):
    """The sum of ``z[:n]`` as NumPy's ``add.reduce`` along a contiguous axis adds it
    (pairwise summation: 8 partial sums for 8 ≤ n ≤ 128), so that the choice probabilities
    are the bits formulas.logit_probabilities computes."""
    if n < 8:
        total = 0.0
        for i in range(n):
            total += z[i]
        return total
    r0, r1, r2, r3, r4, r5, r6, r7 = z[0], z[1], z[2], z[3], z[4], z[5], z[6], z[7]
    i = 8
    while i < n - n % 8:
        r0 += z[i]
        r1 += z[i + 1]
        r2 += z[i + 2]
        r3 += z[i + 3]
        r4 += z[i + 4]
        r5 += z[i + 5]
        r6 += z[i + 6]
        r7 += z[i + 7]
        i += 8
    total = ((r0 + r1) + (r2 + r3)) + ((r4 + r5) + (r6 + r7))
    while i < n:
        total += z[i]
        i += 1
    return total




@_njit
def next_uniforms(keys, counters, users, normal):
    """The next draw of one stream for each of ``users`` ``(B,)``, as
    :meth:`recsim.users.state.Draws.uniform` takes it: ``uniform(keys[u], counters[u])``,
    then every user's counter advanced by one (all read before any is written, as NumPy's
    fancy assignment does). ``normal``: the standard normal quantile of each uniform instead
    (:meth:`~recsim.users.state.Draws.normal`). ``keys`` uint64 and ``counters`` int64, one
    per user of the engine; returns ``(B,)`` floats."""
    B = users.shape[0]
    out = np.empty(B)
    taken = np.empty(B, dtype=np.int64)
    for i in range(B):
        taken[i] = counters[users[i]]
    for i in range(B):
        counters[users[i]] = taken[i] + 1
    for i in range(B):
        x = uniform(keys[users[i]], taken[i])
        out[i] = ndtri(x) if normal else x
    return out


# ----------------------------------------------------------------------------- the model's terms
@_njit
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


@_njit
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


@_njit
def expected_watch_time(length, log_length, ids, A, W, mu, alpha_a, alpha_w, sigma):
    """E[min(L, T)] for log T ~ N(m, σ²), m = log L + μ_τ + α_A·A + α_W·(W − ½), of every item
    of every row, in seconds (:func:`recsim.users.formulas.expected_watch_time` and
    :func:`~recsim.users.formulas.capped_lognormal_mean`: exp(m + σ²/2)·Φ((log L − m − σ²)/σ)
    + L·Φ((m − log L)/σ), min(L, e^m) at σ = 0).

    ``length``, ``log_length`` ``(n_items,)``: the catalog's; ``ids`` ``(B, c)``; ``A``
    ``(B, c)`` the items' allure; ``W`` ``(B,)`` the users' wellbeing.

    A row is computed in two passes — the arguments of Φ and exp(m + σ²/2) of every item,
    then the two Φ of every item — the same operations on the same numbers, but loops short
    enough for the processor to overlap the items' long chains (about a fifth faster)."""
    B, c = ids.shape
    out = np.empty((B, c))
    ss = sigma * sigma
    half = 0.5 * sigma * sigma
    lower = np.empty(c)
    upper = np.empty(c)
    for b in range(B):
        tilt = alpha_w * (W[b] - 0.5)
        row = out[b]
        if sigma == 0.0:
            for j in range(c):
                item = ids[b, j]
                m = log_length[item] + mu + alpha_a * A[b, j] + tilt
                row[j] = min(length[item], math.exp(m))
            continue
        for j in range(c):
            log_cap = log_length[ids[b, j]]
            m = log_cap + mu + alpha_a * A[b, j] + tilt
            lower[j] = (log_cap - m - ss) / sigma
            upper[j] = (m - log_cap) / sigma
            row[j] = math.exp(m + half)
        for j in range(c):
            below = ndtr(lower[j]) * row[j]
            row[j] = ndtr(upper[j]) * length[ids[b, j]] + below
    return out


@_njit
def click_probability_alone(A, l1, F, u0, phi_f, beta):
    """P(click) of each item of every row if shown alone in position 1: the multinomial logit
    with an outside option on a slate of one item, in its logistic form
    σ(β·((A + ℓ₁) − (u₀ + φ_F·F))) (:func:`recsim.users.formulas.logit_probabilities` for
    ``n = 1``, with :func:`~recsim.users.formulas.position_term` and
    :func:`~recsim.users.formulas.outside_utility`; docs/model.md, "Choice").

    ``A`` ``(B, c)`` the items' allure; ``l1`` the position term of position 1 (log 1^−p,
    a signed zero); ``F`` ``(B,)`` the users' fatigue in hours; ``u0``, ``phi_f``, ``beta``
    the choice parameters. Returns ``(B, c)`` probabilities."""
    B, c = A.shape
    out = np.empty((B, c))
    for b in range(B):
        outside = u0 + phi_f * F[b]
        for j in range(c):
            out[b, j] = expit(beta * ((A[b, j] + l1) - outside))
    return out



#: below this, e^x is finite (log of the largest double is 709.78...)
_LOG_FINITE = 709.0


@_njit
def _better(top_s, top_j, filled, s, j):
    """Put candidate ``j`` of score ``s`` into the best-first buffer ``top_s``/``top_j``
    holding ``filled`` of its places: behind every entry whose score is not below ``s`` (an
    equal score stays behind the earlier column), the last entry dropped when the buffer is
    full. Returns the number of places filled. (The rule of
    :func:`recsim.kernels.ranking.top_k_rows`, which a kernel here may not call.)"""
    kk = top_s.shape[0]
    if filled == kk:
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
    return filled


@_njit
def engagement_top_k_rows(theta, appetite, W, F, topics, extremeness, clickbait, length, log_length, ids,
                          w_r, w_e, w_c, delta, omega, l1, u0, phi_f, beta, mu, alpha_a, alpha_w, sigma,
                          out, left, scored):
    """The engagement oracle's slates: the ``kk = out.shape[1]`` candidates of every row with
    the highest P(click alone)·E[τ | click], best first, ties to the earlier column, NaN
    scores after every other — what ``top_k_rows(ids, click_probability_alone(A, …) *
    expected_watch_time(…), kk)`` gives, with A from :func:`relevance_allure` (the same
    operations on the same numbers, so the same scores bit for bit).

    A candidate's score is computed only if it could enter the slate. With x = β·(A + ℓ₁ −
    U₀) and m the log-normal's location, log P(click) = −log(1 + e^−x) ≤ min(0, x) and
    E[min(L, T)] ≤ min(L, E[T]) = min(L, e^(m + σ²/2)) (Jensen), so log score ≤ min(0, x) +
    min(log L, m + σ²/2). Once the slate is full, a candidate whose bound is below the log
    of the slate's last score, less a margin of 1e-9·(1 + |log|) (far above the roundings
    of the scores' arithmetic, ~1e-13), cannot enter; its exp, expit and two normal CDFs
    are skipped. A candidate with m + σ²/2 ≥ 709 is always scored: there e^(m + σ²/2)
    overflows, and the computed E (Φ·inf) can be inf, above L. σ must be ≥ 0 (the bound
    is the log-normal's).

    ``theta`` ``(B, K)``, ``appetite``, ``W`` (wellbeing) and ``F`` (fatigue, hours)
    ``(B,)``: the rows' users; ``topics`` ``(n_items, K)``, ``extremeness``, ``clickbait``,
    ``length`` (seconds) and ``log_length`` ``(n_items,)``: the catalog's true attributes;
    ``ids`` ``(B, c)`` candidate ids; then the allure's, the choice's (ℓ₁ the position term
    of position 1) and the watch time's parameters. Writes ``out`` ``(B, kk)`` item ids,
    ``left`` ``(B,)`` (True: a row whose top ``kk`` must take NaN scores, left to the NumPy
    code, whose order of them is the definition) and
    ``scored`` ``(B,)`` (how many scores a row computed). Returns False, writing nothing
    further, at the first id outside the catalog."""
    B, c = ids.shape
    kk = out.shape[1]
    n_items = topics.shape[0]
    rel = np.empty(c)
    top_s = np.empty(kk)
    top_j = np.empty(kk, np.int64)
    spread = 2.0 * omega * omega
    ss = sigma * sigma
    half = 0.5 * sigma * sigma
    for b in range(B):
        for j in range(c):
            if ids[b, j] < 0 or ids[b, j] >= n_items:
                return False
        _relevances(topics, ids[b], c, theta[b], rel)
        a = appetite[b]
        tilt = alpha_w * (W[b] - 0.5)
        outside = u0 + phi_f * F[b]
        filled = 0
        n_scored = 0
        bar = -np.inf
        for j in range(c):
            item = ids[b, j]
            d = extremeness[item] - a - delta
            g = math.exp(-(d * d) / spread)
            A = w_r * rel[j] + w_e * g + w_c * clickbait[item]
            x = beta * ((A + l1) - outside)
            log_cap = log_length[item]
            m = log_cap + mu + alpha_a * A + tilt
            top = m + half
            if filled == kk and top < _LOG_FINITE:  # NaN bounds compare False: scored
                # (past _LOG_FINITE, e^(m + σ²/2) overflows and the computed E may be inf)
                if log_cap < top:  # noqa: PLR1730 - min() need not keep a NaN
                    top = log_cap
                if x < 0.0:
                    top += x
                if top < bar:
                    continue
            n_scored += 1
            p = expit(x)
            if sigma == 0.0:
                e = min(length[item], math.exp(m))
            else:
                lower = (log_cap - m - ss) / sigma
                upper = (m - log_cap) / sigma
                e = math.exp(m + half)
                below = ndtr(lower) * e
                e = ndtr(upper) * length[item] + below
            s = p * e
            if math.isnan(s):  # NaN: after everything else
                continue
            if filled == kk and not s > top_s[kk - 1]:
                continue
            filled = _better(top_s, top_j, filled, s, j)
            if filled == kk:
                last = top_s[kk - 1]
                if last > 0.0 and last < np.inf:
                    last = math.log(last)
                    bar = last - 1e-9 * (1.0 + abs(last))
        scored[b] = n_scored
        if filled < kk:  # NaN scores in the slate: the NumPy code's
            left[b] = True
            continue
        for q in range(kk):
            out[b, q] = ids[b, top_j[q]]
    return True


# ----------------------------------------------------------------------------- returns
_TWO_PI = 2.0 * np.pi  # daily_cycle's 2.0 * np.pi, the same Python float
_DAY = 86400.0


@_njit
def _return_terms(t, t_end, S, impulse, slow, kappa, tau_s, b_w, tau_i, tau_v):
    """The parts of λ and its bound at ``t`` that both share: the Hawkes kernels' sum
    I₁·e^{−dt/τ₁} + I₂·e^{−dt/τ₂} is added by the caller in that order; returns
    (b_W·(W(t) − ½), I₁·e^{−dt/τ₁}, I₂·e^{−dt/τ₂})."""
    dt = t - t_end
    w = expit(kappa * (0.0 + (S - 0.0) * math.exp(-dt / tau_s)))  # wellbeing(relax_toward(S, 0, dt, τ_S))
    return b_w * (w - 0.5), impulse * math.exp(-dt / tau_i), slow * math.exp(-dt / tau_v)


@_njit
def hawkes_next_returns(keys, counters, users, now, until, t_end, S, impulse, slow, base_rate, peak_rate,
                        amplitude, peak, b_w, tau_i, tau_v, kappa, tau_s):
    """The next return after ``now`` of every row by exact thinning: what
    :func:`recsim.users.formulas.thinning` computes with
    :func:`~recsim.users.formulas.return_intensity` and
    :func:`~recsim.users.formulas.return_intensity_bound` (the default model's
    :meth:`recsim.users.default.HawkesReturns.next_return`; docs/model.md, "Returns"), one row
    at a time: each candidate point takes the row's next two uniforms of its ``returns``
    stream (the exponential gap, then the acceptance), as the NumPy loop takes them.

    ``keys`` uint64 and ``counters`` int64 ``(n_users,)``: the stream's (the counters
    advance); ``users`` ``(B,)`` int64, distinct; ``now``, ``t_end`` (the kernels' time),
    ``S``, ``impulse``, ``slow`` ``(B,)`` floats; ``until`` and the parameters: floats, with
    ``peak_rate`` = λ₀·(1 + amplitude) as the bound computes it. Returns ``(B,)`` times in
    seconds, ``inf`` where no return falls by ``until``."""
    B = users.shape[0]
    out = np.full(B, np.inf)
    for i in range(B):
        u = users[i]
        key = keys[u]
        t = now[i]
        while True:
            tilt, k1, k2 = _return_terms(t, t_end[i], S[i], impulse[i], slow[i], kappa, tau_s, b_w, tau_i, tau_v)
            if not tilt > 0.0 and not math.isnan(tilt):  # np.maximum(tilt, 0.0): NaN stays
                tilt = 0.0
            lam = peak_rate * math.exp(tilt) + k1 + k2
            if not lam > 0.0:  # no intensity ahead: no return
                break
            c = counters[u]
            counters[u] = c + 1
            t = t + -math.log(uniform(key, c)) / lam
            if not t <= until:
                break
            tilt, k1, k2 = _return_terms(t, t_end[i], S[i], impulse[i], slow[i], kappa, tau_s, b_w, tau_i, tau_v)
            intensity = base_rate * (1.0 + amplitude * math.cos(_TWO_PI * (t - peak) / _DAY)) * math.exp(tilt)
            intensity = intensity + k1 + k2
            c = counters[u]
            counters[u] = c + 1
            if uniform(key, c) * lam <= intensity:
                out[i] = t
                break
    return out
