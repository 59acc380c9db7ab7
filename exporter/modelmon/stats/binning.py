"""Bucket edges from training data, and values into bucket counts.

Pure numpy. Edges follow Prometheus' ``le`` convention: a value ``x`` falls in
bucket ``i`` when ``edges[i-1] < x <= edges[i]``; bucket ``len(edges)`` is the
open ``+Inf`` bucket. So ``len(counts) == len(edges) + 1``.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

__all__ = ["round_significant", "quantile_edges", "bucket_index", "bucket_counts"]


def round_significant(x: npt.ArrayLike, digits: int = 6) -> npt.NDArray[np.float64]:
    """Round to at most ``digits`` significant digits, elementwise.

    Parameters
    ----------
    x : array_like
        Finite values.
    digits : int
        Significant digits to keep (default 6), so that ``le`` labels stay readable.

    Returns
    -------
    ndarray of float64

    Examples
    --------
    >>> round_significant([123456789.0, 0.000123456789, -2.0 / 3.0, 0.0]).tolist()
    [123457000.0, 0.000123457, -0.666667, 0.0]
    """
    a = np.asarray(x, dtype=np.float64)
    out = np.zeros_like(a)
    nz = a != 0
    mag = np.floor(np.log10(np.abs(a[nz])))
    scale = 10.0 ** (digits - 1 - mag)
    # Round in the scaled domain, then divide; formatting through repr keeps the
    # shortest float that prints with the intended digits.
    out[nz] = np.round(a[nz] * scale) / scale
    out[nz] = [float(f"{v:.{digits}g}") for v in out[nz]]
    return out


def quantile_edges(
    values: npt.ArrayLike, bins: int = 20, *, digits: int = 6
) -> npt.NDArray[np.float64]:
    """Bucket upper bounds at the training quantiles.

    The ``bins - 1`` inner quantiles ``1/bins, 2/bins, …`` become the finite
    ``le`` bounds, so each of the ``bins`` buckets (the last one ``+Inf``)
    holds about ``1/bins`` of the training rows. Bounds are rounded to
    ``digits`` significant digits and de-duplicated. A column with at most
    ``bins`` distinct values gets one bound per value instead, so each value
    has a bucket of its own.

    Parameters
    ----------
    values : array_like
        Finite training values (drop missing values first). Must not be empty.
    bins : int
        Target number of buckets, at least 2.
    digits : int
        Significant digits of each bound.

    Returns
    -------
    ndarray of float64
        Strictly increasing finite bounds; at least one.

    Examples
    --------
    >>> quantile_edges(np.arange(1, 101), bins=4).tolist()
    [25.75, 50.5, 75.25]
    >>> quantile_edges([0, 0, 0, 1, 1], bins=20).tolist()
    [0.0, 1.0]
    >>> quantile_edges([7.0, 7.0, 7.0]).tolist()
    [7.0]
    """
    v = np.asarray(values, dtype=np.float64)
    if v.size == 0:
        raise ValueError("quantile_edges needs at least one value")
    if not np.all(np.isfinite(v)):
        raise ValueError("quantile_edges needs finite values; drop missing values first")
    if bins < 2:
        raise ValueError(f"bins must be at least 2, got {bins}")
    uniq = np.unique(v)
    if uniq.size <= bins:
        # Low cardinality (flags, counts, ratings): one bucket per value, so
        # interpolated quantiles never split a bucket between two values.
        return np.unique(round_significant(uniq, digits))
    q = np.quantile(v, np.arange(1, bins) / bins, method="linear")
    edges = np.unique(round_significant(q, digits))
    return edges


def bucket_index(edges: npt.ArrayLike, values: npt.ArrayLike) -> npt.NDArray[np.intp]:
    """Bucket of each value under the ``le`` convention.

    Examples
    --------
    >>> bucket_index([0.0, 1.0], [-5, 0, 0.5, 1, 2]).tolist()
    [0, 0, 1, 1, 2]
    """
    return np.searchsorted(np.asarray(edges, dtype=np.float64),
                           np.asarray(values, dtype=np.float64), side="left")


def bucket_counts(edges: npt.ArrayLike, values: npt.ArrayLike) -> npt.NDArray[np.int64]:
    """Counts per bucket, ``len(edges) + 1`` of them.

    Examples
    --------
    >>> bucket_counts([0.0, 1.0], [-5, 0, 0.5, 1, 2]).tolist()
    [2, 2, 1]
    """
    e = np.asarray(edges, dtype=np.float64)
    return np.bincount(bucket_index(e, values), minlength=e.size + 1).astype(np.int64)
