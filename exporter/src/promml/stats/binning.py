"""Bin edges of a numeric column for PSI and the Jensen-Shannon distance: quantile bins, and a bin of its own for
every value that holds a large share of the rows. Pure functions, numbers in, numbers out.

Plain quantile cut points fail on sparse columns: when 90 % of the rows are 0, every decile is 0, the edges
collapse to `[0.0]`, and a window whose share of zeros falls from 90 % to 50 % keeps the same bin shares (PSI 0).
So a value holding at least `POINT_MASS_SHARE` of the rows (a *point mass*) gets a bin that holds it alone, the
other values share the quantile bins, and no bin is left with no training row because of ties.

A bin is `[edges[i-1], edges[i])` (see `promml.baseline.NumericReference.bin_index`), so the bin of a point mass
`v` is `[v, nextafter(v, +inf))`: it holds `v` and nothing else. The file format needs no new key for it.
"""

from __future__ import annotations

import numpy as np

POINT_MASS_SHARE = 0.1
"""A value holding at least this share of a column's finite training values gets a bin of its own. 0.1 is the
share of one bin at the default 10 bins: a value this common would otherwise swallow at least one quantile edge
and hide changes in its own share."""


def point_masses(values: np.ndarray, share: float = POINT_MASS_SHARE) -> np.ndarray:
    """The distinct values holding at least `share` of `values`, ascending."""
    distinct, counts = np.unique(values, return_counts=True)
    return distinct[counts >= share * values.size]


def _without_empty_bins(edges: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Remove edges until no bin is empty (or one edge is left): an empty bin merges with the bin below it, the
    bottom bin with the bin above it. A point mass's bin keeps only its own value from the training data."""
    edges = np.asarray(edges, dtype=float)
    while edges.size > 1:
        counts = np.bincount(np.searchsorted(edges, values, side="right"), minlength=edges.size + 1)
        empty = np.flatnonzero(counts == 0)
        if empty.size == 0:
            break
        first = int(empty[0])
        edges = np.delete(edges, 0 if first == 0 else first - 1)
    return edges


def numeric_bin_edges(values: np.ndarray, n_bins: int, share: float = POINT_MASS_SHARE) -> np.ndarray:
    """Interior bin edges of the finite `values` (non-empty): a bin per point mass, quantile bins for the rest.

    1. Point masses: each distinct value with at least `share` of the rows; each gets the edges `v` and
       `nextafter(v, +inf)`.
    2. The other values get `k` quantile bins, `k = max(1, round(n_bins × their share of the rows))`, so a bin
       holds about 1/`n_bins` of the rows as without point masses: cut points at the quantiles 1/k … (k−1)/k of
       those values alone (`numpy.quantile`, linear interpolation). With no point mass this is the plain
       quantile binning, the cut points at 1/n … (n−1)/n.
    3. The edges are merged, sorted and deduplicated, and an edge is removed while it leaves a bin with no
       training value (see `_without_empty_bins`): a point mass at the minimum therefore gets the bottom bin
       `(-inf, nextafter(v))` and one at the maximum the top bin `[v, +inf)`.

    A constant column keeps one edge, its value: bins `(-inf, v)` (empty) and `[v, +inf)`.
    """
    values = np.asarray(values, dtype=float)
    distinct = np.unique(values)
    if distinct.size == 1:
        return distinct
    masses = point_masses(values, share)
    if masses.size == 0:
        return _without_empty_bins(np.unique(np.quantile(values, np.arange(1, n_bins) / n_bins)), values)
    rest = values[~np.isin(values, masses)]
    pieces = [masses, np.nextafter(masses, np.inf)]
    if rest.size:
        k = max(1, round(n_bins * rest.size / values.size))
        pieces.append(np.quantile(rest, np.arange(1, k) / k))
    return _without_empty_bins(np.unique(np.concatenate(pieces)), values)
