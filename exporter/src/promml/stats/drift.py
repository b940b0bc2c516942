"""Drift statistics: how far a window's distribution moved from the training baseline. Pure functions, numbers out.

Over the baseline's bins (counts in): the Population Stability Index (PSI), the Jensen-Shannon distance and, for
categorical features, a chi-square test. On bounded samples of a numeric feature: the Kolmogorov-Smirnov test and
the Wasserstein distance in reference standard deviations. And the share of features over a threshold.

With `p` the window's shares and `q` the baseline's, PSI = Σ (pᵢ − qᵢ) · ln(pᵢ / qᵢ), which equals the symmetric
Kullback-Leibler divergence KL(p‖q) + KL(q‖p).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np
from scipy import stats

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


def _shares(reference_ratios: ArrayLike, current_counts: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    """Validated reference ratios and window counts over the same bins; the ratios must not be all zero."""
    q = _checked_vector(reference_ratios, "reference_ratios")
    counts = _checked_vector(current_counts, "current_counts")
    if q.shape != counts.shape:
        raise ValueError(f"reference_ratios has {q.size} bins but current_counts has {counts.size}")
    if q.sum() == 0:
        raise ValueError("reference_ratios must not be all zero")
    return q, counts


def jensen_shannon_distance(reference_ratios: ArrayLike, current_counts: ArrayLike) -> float:
    """Jensen-Shannon distance (base 2) between the window's shares and the reference's, over the PSI bins.

    With p the window's shares, q the reference's and m = (p + q) / 2, JSD = ½ KL(p‖m) + ½ KL(q‖m) in bits, and the
    distance is √JSD: 0 for identical distributions, 1 for disjoint ones. Unlike PSI it is bounded and symmetric and
    needs no epsilon, since m > 0 wherever p or q is (a term with a zero share contributes 0 · log 0 = 0), so it
    reads the same across features with different bins. Both arguments are normalised to sum to 1. NaN when the
    window has no rows.
    """
    q, counts = _shares(reference_ratios, current_counts)
    total = counts.sum()
    if total == 0:
        return float("nan")
    p = counts / total
    q = q / q.sum()
    m = (p + q) / 2
    divergence = 0.0
    for shares in (p, q):
        present = shares > 0
        divergence += float(np.sum(shares[present] * np.log2(shares[present] / m[present])))
    # Rounding can leave a sum a few ulps outside [0, 2] for (nearly) identical or disjoint distributions.
    return math.sqrt(min(max(divergence / 2, 0.0), 1.0))


def chi_square_test(reference_ratios: ArrayLike, current_counts: ArrayLike) -> tuple[float, float]:
    """Pearson's chi-square goodness of fit of a categorical feature's window counts to the reference ratios.

    Statistic X² = Σ (Oᵢ − Eᵢ)² / Eᵢ with Oᵢ the window's count in category i and Eᵢ = qᵢ · n its expected count;
    the p-value is the χ² survival function with (categories − 1) degrees of freedom.

    Bins whose reference ratio is 0 (the unseen-category bucket) are left out, and qᵢ and n are taken over the
    remaining, known categories. A zero expected count makes X² infinite at the first unseen value, and clipping it
    to a small share instead gives expected counts far below the ~5 the χ² approximation needs (and, once n · ε > 1,
    a statistic that shrinks as unseen values grow). So this answers one question only: did the mix of known
    categories change? The share of unseen values is its own signal, and it moves PSI and the Jensen-Shannon
    distance, whose bins include the bucket. Returns (NaN, NaN) when the window has no row in a known category, and
    (0.0, 1.0) when only one known category exists (there is no mix to change).
    """
    q, counts = _shares(reference_ratios, current_counts)
    known = q > 0
    observed = counts[known]
    total = observed.sum()
    if total == 0:
        return float("nan"), float("nan")
    if observed.size < 2:
        return 0.0, 1.0
    expected = q[known] / q[known].sum() * total
    statistic = float(np.sum((observed - expected) ** 2 / expected))
    return statistic, float(stats.chi2.sf(statistic, observed.size - 1))


def _checked_sample(values: ArrayLike, name: str) -> np.ndarray:
    array = np.asarray(values, dtype=float)
    if array.ndim != 1:
        raise ValueError(f"{name} must be a 1-D array, got shape {array.shape}")
    if not np.all(np.isfinite(array)):
        raise ValueError(f"{name} must hold finite numbers (drop missing values first)")
    return array


def _ascending(values: np.ndarray) -> np.ndarray:
    """`values` sorted; an already sorted array (a baseline's reference sample is stored sorted) costs one pass."""
    if values.size < 2 or bool(np.all(values[1:] >= values[:-1])):
        return values
    return np.sort(values)


def ks_statistic(reference_sample: ArrayLike, current_sample: ArrayLike) -> tuple[float, int]:
    """(D, effective n) of the two-sample KS test, without the p-value; see `ks_test`. D is NaN for an empty sample."""
    reference = _ascending(_checked_sample(reference_sample, "reference_sample"))
    current = _ascending(_checked_sample(current_sample, "current_sample"))
    if reference.size == 0 or current.size == 0:
        return float("nan"), 0
    points = np.concatenate([reference, current])
    gaps = (
        np.searchsorted(reference, points, side="right") / reference.size
        - np.searchsorted(current, points, side="right") / current.size
    )
    return float(np.max(np.abs(gaps))), int(np.round(reference.size * current.size / (reference.size + current.size)))


def ks_and_wasserstein(
    reference_sample: ArrayLike, current_sample: ArrayLike, reference_std: float
) -> tuple[float, int, float]:
    """(KS D, KS effective n, normalised Wasserstein) from one evaluation of both empirical CDFs.

    Both statistics are functions of the CDF gap F_ref(x) − F_cur(x) over the merged sorted samples: D is its
    largest absolute value, W₁ its integral (|gap| times each step's width). Computing the gap once halves the
    exporter's recompute; the results equal `ks_test` and `wasserstein_distance_normalised` (tests check both
    against scipy).
    """
    if not (math.isfinite(reference_std) and reference_std >= 0):
        raise ValueError(f"reference_std must be a finite, non-negative number, got {reference_std!r}")
    reference = _ascending(_checked_sample(reference_sample, "reference_sample"))
    current = _ascending(_checked_sample(current_sample, "current_sample"))
    if reference.size == 0 or current.size == 0:
        return float("nan"), 0, float("nan")
    merged = np.sort(np.concatenate([reference, current]), kind="mergesort")
    gaps = np.abs(
        np.searchsorted(reference, merged, side="right") / reference.size
        - np.searchsorted(current, merged, side="right") / current.size
    )
    statistic = float(np.max(gaps))
    effective_n = int(np.round(reference.size * current.size / (reference.size + current.size)))
    distance = float(np.dot(gaps[:-1], np.diff(merged)))
    if reference_std == 0:
        return statistic, effective_n, (0.0 if distance == 0 else math.inf)
    return statistic, effective_n, distance / reference_std


def ks_pvalues(statistics: ArrayLike, effective_ns: ArrayLike) -> np.ndarray:
    """Smirnov's asymptotic p-values of several KS statistics in one call (scipy's per-call overhead dominates a
    single small one). NaN where n is 0 or D is NaN."""
    d = np.asarray(statistics, dtype=float)
    n = np.asarray(effective_ns, dtype=float)
    result = np.full(d.shape, np.nan)
    valid = (n > 0) & ~np.isnan(d)
    if valid.any():
        result[valid] = np.clip(stats.kstwo.sf(d[valid], n[valid]), 0.0, 1.0)
    return result


def ks_test(reference_sample: ArrayLike, current_sample: ArrayLike) -> tuple[float, float]:
    """Two-sample Kolmogorov-Smirnov test: (D, p-value) of a numeric feature's window sample against the reference.

    D = maxₓ |F_ref(x) − F_cur(x)|, the largest gap between the two empirical CDFs, evaluated at every value of
    either sample with right-continuous CDFs (searchsorted, side="right"), so tied values step both CDFs at once
    exactly as in `scipy.stats.ks_2samp`. The p-value is Smirnov's asymptotic one, as in
    `ks_2samp(method="asymp")`: the survival function of the one-sample KS distribution (`scipy.stats.kstwo`) at D
    with n = round(n₁ · n₂ / (n₁ + n₂)). It needs no exact lattice-path counting, so it is cheap at any size.
    (When both samples hold one value, n rounds to 0 and the p-value is NaN, as in scipy.) Returns (NaN, NaN) when
    either sample is empty.
    """
    statistic, effective_n = ks_statistic(reference_sample, current_sample)
    return statistic, float(ks_pvalues([statistic], [effective_n])[0])


def wasserstein_distance_normalised(
    reference_sample: ArrayLike, current_sample: ArrayLike, reference_std: float
) -> float:
    """1-D Wasserstein (earth mover's) distance between the two samples, in units of the reference's std.

    W₁ = ∫ |F_ref(x) − F_cur(x)| dx: the average distance each unit of probability mass must move to turn one
    empirical distribution into the other. It is computed as the sum, over consecutive values of the merged sorted
    samples, of the CDF gap times the step width; for equal sizes this equals mean |ref₍ᵢ₎ − cur₍ᵢ₎| of the sorted
    samples, which is used as a faster path. Dividing by the reference std makes it unit-free: 0.1 means the
    distribution moved by a tenth of a training standard deviation, whatever the feature's scale.

    A reference std of 0 (a constant feature in training) gives 0.0 when the window is that same constant and +inf
    otherwise: any movement is infinitely many stds, and a `> threshold` alert fires. NaN when either sample is
    empty.
    """
    if not (math.isfinite(reference_std) and reference_std >= 0):
        raise ValueError(f"reference_std must be a finite, non-negative number, got {reference_std!r}")
    reference = _ascending(_checked_sample(reference_sample, "reference_sample"))
    current = _ascending(_checked_sample(current_sample, "current_sample"))
    if reference.size == 0 or current.size == 0:
        return float("nan")
    if reference.size == current.size:
        distance = float(np.mean(np.abs(reference - current)))
    else:
        merged = np.sort(np.concatenate([reference, current]))
        steps = merged[:-1]
        gaps = (
            np.searchsorted(reference, steps, side="right") / reference.size
            - np.searchsorted(current, steps, side="right") / current.size
        )
        distance = float(np.dot(np.abs(gaps), np.diff(merged)))
    if reference_std == 0:
        return 0.0 if distance == 0 else math.inf
    return distance / reference_std


def dataset_drift_share(scores: Mapping[str, float], threshold: float) -> float:
    """Share of features whose drift score is strictly over `threshold`, such as PSI over the warning level.

    One number for "how much of the input moved", so an alert can tell one noisy feature from a shifted dataset.
    Features whose score is NaN (no rows in the window) are left out of both counts; NaN when no feature has a
    score. Scores must grow with drift: pass effect sizes (PSI, Jensen-Shannon, normalised Wasserstein, KS D), not
    p-values.
    """
    values = np.array([float(score) for score in scores.values()], dtype=float)
    values = values[~np.isnan(values)]
    if values.size == 0:
        return float("nan")
    return float(np.count_nonzero(values > threshold) / values.size)
