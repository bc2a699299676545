"""Array arithmetic whose result for a row does not depend on the batch the row is in.

Both engines must compute a user's numbers with the same bits whether the user is served alone
(the reference engine) or inside a batch (the batched engine). Elementwise NumPy ufuncs round
every element the same whatever the array's shape; BLAS products (``@``, ``np.dot``,
``einsum``, ``np.linalg.norm`` of a vector) and pairwise reductions along a short last axis do
not promise that, and are slow on small axes besides. The helpers below compute dot products as
a sum over the *first* axis of a C-contiguous ``(K, ...)`` array of products — each output
element accumulated term by term in index order, an elementwise operation.
"""

from __future__ import annotations

import numpy as np

__all__ = ["BLOCK_ELEMENTS", "row_blocks", "sum_first", "dot_last", "gather_dot", "vector_norm", "column_max", "column_sum"]

#: Rows of a batch are processed in blocks of about this many elements (≈ 1 MB of float64),
#: so temporaries stay in cache and never span the whole batch.
BLOCK_ELEMENTS = 1 << 17


def row_blocks(n_rows: int, row_elements: int, block_elements: int = BLOCK_ELEMENTS) -> list[slice]:
    """Slices covering ``range(n_rows)`` in blocks of about ``block_elements`` elements, for
    rows of ``row_elements`` elements each (at least one row per block)."""
    step = max(1, block_elements // max(1, row_elements))
    return [slice(start, min(start + step, n_rows)) for start in range(0, n_rows, step)]


def sum_first(x: np.ndarray) -> np.ndarray:
    """``((x[0] + x[1]) + ...) + x[n-1]``, in that order, elementwise over the other axes: the
    same bits for any shape of the other axes.

    NumPy reduces the first axis of a C-contiguous array so (term by term, the other axes
    inner), except when the other axes hold a single element: it then sums pairwise, as along
    a contiguous axis. That case is summed here explicitly.
    """
    if not x.flags.c_contiguous:
        x = np.ascontiguousarray(x)
    n = x.shape[0]
    if n == 0:
        return np.zeros(x.shape[1:], dtype=x.dtype)
    if x.ndim > 1 and x[0].size != 1:
        return np.add.reduce(x, axis=0)
    if x.dtype == np.float64:  # Python floats add as float64 does, with less overhead
        values = x.reshape(n).tolist()
        total = values[0]
        for value in values[1:]:
            total += value
        return np.full(x.shape[1:], total)
    total = x[0].copy()
    for term in x[1:]:
        total += term
    return total


def dot_last(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``Σ_k a[..., k] · b[..., k]`` (the arguments broadcast), without BLAS: the products
    are laid out ``(K, ...)`` and summed term by term in ``k`` order (:func:`sum_first`), so
    every element has the same bits whatever the other axes' shapes — one request's
    ``(c, K)`` and ``(K,)``, or a batch's ``(B, c, K)`` and ``(B, 1, K)``."""
    a, b = np.asarray(a), np.asarray(b)
    if a.ndim == 2 and b.ndim == 1 and a.shape[0] > 1 and a.dtype == b.dtype == np.float64:
        # one request's (c, K) · (K,): what the general path below computes, minus its overhead
        products = np.empty((a.shape[1], a.shape[0]))
        np.multiply(a.T, b[:, None], out=products)
        return np.add.reduce(products, axis=0)
    nd = max(a.ndim, b.ndim)
    if a.ndim < nd:
        a = a[(None,) * (nd - a.ndim)]
    if b.ndim < nd:
        b = b[(None,) * (nd - b.ndim)]
    axes = (nd - 1, *range(nd - 1))  # the summed axis first
    a, b = a.transpose(axes), b.transpose(axes)
    shape = tuple(x if y == 1 else y for x, y in zip(a.shape, b.shape))
    dtype = a.dtype if a.dtype == b.dtype else np.promote_types(a.dtype, b.dtype)
    products = np.empty(shape, dtype=dtype)
    np.multiply(a, b, out=products)
    return sum_first(products)


def gather_dot(table: np.ndarray, index: np.ndarray, vectors: np.ndarray) -> np.ndarray:
    """Row ``j`` of ``table`` (``(n, K)``) dotted with a vector, for every id ``j`` of
    ``index`` (:func:`dot_last`).

    One request: ``index`` ``(c,)`` and ``vectors`` ``(K,)`` give shape ``(c,)``. A batch:
    ``index`` ``(B, c)`` and ``vectors`` ``(B, K)`` (row ``i``'s ids and vector) give
    ``(B, c)``, row for row bit-identical to the single-request values, computed in blocks of
    rows rather than through a ``(B, c, K)`` temporary.
    """
    if index.ndim == 1:
        return dot_last(table.take(index, axis=0), vectors)
    n_rows, c = index.shape
    out = np.empty((n_rows, c), dtype=np.result_type(table, vectors))
    for rows in row_blocks(n_rows, c * table.shape[-1]):
        out[rows] = dot_last(table.take(index[rows], axis=0), vectors[rows, None, :])
    return out


def vector_norm(x: np.ndarray) -> np.ndarray:
    """L2 norm along the last axis, summed term by term (:func:`sum_first`): the same bits for
    one vector as for the same vector inside a matrix (``np.linalg.norm`` of a 1-D vector uses
    a BLAS dot product, which rounds differently)."""
    return np.sqrt(dot_last(x, x))


def column_max(x: np.ndarray) -> np.ndarray:
    """The maximum of each row of ``(B, n)`` ``x``, taken column by column (elementwise: the
    same bits for a row in any batch, and fast for short rows)."""
    out = x[:, 0].copy()
    for j in range(1, x.shape[1]):
        np.maximum(out, x[:, j], out=out)
    return out


def column_sum(x: np.ndarray) -> np.ndarray:
    """The sum of each row of ``(B, n)`` ``x``, added column by column in order:
    ``((x0 + x1) + x2) + ...`` (the same bits for a row in any batch; fast for short rows)."""
    out = x[:, 0].copy()
    for j in range(1, x.shape[1]):
        out += x[:, j]
    return out

