"""Population Stability Index (PSI): how far a window's distribution over the baseline's bins moved from training.

With `p` the window's shares and `q` the baseline's, PSI = Σ (pᵢ − qᵢ) · ln(pᵢ / qᵢ), which equals the symmetric
Kullback-Leibler divergence KL(p‖q) + KL(q‖p). Pure functions: counts in, numbers out.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

PSI_EPSILON = 1e-4
"""Shares are clipped to at least this before the logarithm, so an empty bin (in the window or in the baseline,
such as the "unseen category" bucket) gives a large but finite PSI instead of infinity. It lives here rather than
with the alert thresholds because it is part of the statistic's definition, not a policy: changing it changes every
PSI value. 1e-4 caps one empty bin's contribution near (share) · ln(share / 1e-4), about 0.7 for a 10 % bin."""

ArrayLike = np.ndarray | Sequence[float]


def _checked_vector(values: ArrayLike, name: str) -> np.ndarray:
    array = np.asarray(values, dtype=float)
    if array.ndim != 1 or array.size == 0:
        raise ValueError(f"{name} must be a non-empty 1-D array, got shape {array.shape}")
    if not np.all(np.isfinite(array)) or np.any(array < 0):
        raise ValueError(f"{name} must hold finite, non-negative numbers")
    return array


def _checked_epsilon(epsilon: float) -> float:
    if not epsilon > 0:
        raise ValueError(f"epsilon must be positive, got {epsilon!r}")
    return float(epsilon)


def psi(reference_ratios: ArrayLike, current_counts: ArrayLike, epsilon: float = PSI_EPSILON) -> float:
    """PSI of `current_counts` (rows per bin) against `reference_ratios` (the baseline's share per bin).

    Both shares are clipped to at least `epsilon`. Returns NaN when `current_counts` is all zeros: with no rows
    there is no distribution to compare, and NaN keeps the exporter from publishing a misleading 0.
    """
    eps = _checked_epsilon(epsilon)
    q = _checked_vector(reference_ratios, "reference_ratios")
    counts = _checked_vector(current_counts, "current_counts")
    if q.shape != counts.shape:
        raise ValueError(f"reference_ratios has {q.size} bins but current_counts has {counts.size}")
    total = counts.sum()
    if total == 0:
        return float("nan")
    p = np.clip(counts / total, eps, None)
    q = np.clip(q, eps, None)
    return float(np.sum((p - q) * np.log(p / q)))


def _padded_matrix(rows: np.ndarray | Sequence[ArrayLike], name: str) -> tuple[np.ndarray, list[int]]:
    """A features × bins matrix and each row's own length; shorter rows are padded with zeros."""
    if isinstance(rows, np.ndarray) and rows.ndim != 2:
        raise ValueError(f"{name} must be a 2-D array or a sequence of 1-D arrays, got shape {rows.shape}")
    vectors = [_checked_vector(row, f"{name}[{i}]") for i, row in enumerate(rows)]
    lengths = [vector.size for vector in vectors]
    matrix = np.zeros((len(vectors), max(lengths, default=0)))
    for i, vector in enumerate(vectors):
        matrix[i, : vector.size] = vector
    return matrix, lengths


def psi_many(
    reference_ratios: np.ndarray | Sequence[ArrayLike],
    current_counts: np.ndarray | Sequence[ArrayLike],
    epsilon: float = PSI_EPSILON,
) -> np.ndarray:
    """PSI of many features at once: row i of each argument is feature i; returns one PSI per row.

    Accepts features × bins matrices, or sequences of 1-D arrays when features have different numbers of bins
    (row i of both arguments must have the same length). Short rows are padded with zero bins, which contribute
    exactly nothing: both shares clip to `epsilon`, and (ε − ε) · ln(ε / ε) = 0. Rows whose counts are all zero
    give NaN, as in `psi`.
    """
    eps = _checked_epsilon(epsilon)
    q, reference_lengths = _padded_matrix(reference_ratios, "reference_ratios")
    counts, current_lengths = _padded_matrix(current_counts, "current_counts")
    if len(reference_lengths) != len(current_lengths):
        raise ValueError(
            f"reference_ratios has {len(reference_lengths)} features but current_counts has {len(current_lengths)}"
        )
    for i, (expected, got) in enumerate(zip(reference_lengths, current_lengths, strict=True)):
        if expected != got:
            raise ValueError(f"feature {i}: reference_ratios has {expected} bins but current_counts has {got}")
    totals = counts.sum(axis=1)
    empty = totals == 0
    p = np.clip(counts / np.where(empty, 1.0, totals)[:, None], eps, None)
    q = np.clip(q, eps, None)
    result = np.sum((p - q) * np.log(p / q), axis=1)
    result[empty] = np.nan
    return result
