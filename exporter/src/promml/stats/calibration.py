"""The calibration map of a binary classifier: score → probability that the row is positive, stored as bins.

Confidence-based performance estimation (promml.stats.estimation) needs, for every row of a window, the probability
that the row is positive. A model's raw score is rarely that probability, so the map is learnt from labelled
reference rows with scikit-learn's `IsotonicRegression(out_of_bounds="clip")`, NannyML's calibrator for CBPE.

An isotonic fit is a step function: blocks of consecutive reference scores share one probability. promml keeps it
as **bins** so that the exporter only counts rows per bin (bounded memory, sums exact across replicas):

- a bin is `[edges[i-1], edges[i])`, as the baseline's numeric bins (`numpy.searchsorted(edges, s, "right")`),
  and `probabilities[i]` is its calibrated probability;
- the edge between two blocks is the midpoint of the last reference score of one and the first of the next.
  scikit-learn interpolates linearly in that gap, where no reference row lies; the step differs from it only
  for rows that fall strictly inside such a gap, and at every reference score the two agree exactly;
- scores below the lowest or above the highest reference score get the end blocks' probabilities ("clip").

Fitting needs scikit-learn (the baseline builder's dependency); applying the bins needs numpy alone.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

MAX_CALIBRATION_BINS = 200
"""At most this many bins: the exporter keeps bins × 2 counts per slot. An isotonic fit on 50,000 rows has tens
of blocks; when a fit has more, the two neighbouring blocks closest in probability are merged (their
row-weighted mean) until it fits, which keeps the map monotone."""


@dataclass(frozen=True)
class Calibration:
    """Calibrated probability of the positive class per score bin.

    `edges` (ascending, length n − 1) are the interior edges of n bins; `probabilities` (length n, non-decreasing,
    each in [0, 1]) the probability of bin i; `rows` the reference rows per bin (how the map was supported).
    """

    edges: np.ndarray
    probabilities: np.ndarray
    rows: np.ndarray

    def __post_init__(self) -> None:
        n = self.probabilities.size
        if n == 0 or self.edges.size != n - 1 or self.rows.size != n:
            raise ValueError(f"calibration needs n probabilities, n rows and n-1 edges, got {n}, "
                             f"{self.rows.size} and {self.edges.size}")
        if np.any(np.diff(self.edges) <= 0):
            raise ValueError("calibration edges must be strictly ascending")
        if np.any((self.probabilities < 0) | (self.probabilities > 1)) or not np.all(np.isfinite(self.probabilities)):
            raise ValueError("calibrated probabilities must lie in [0, 1]")

    @property
    def bins(self) -> int:
        """Number of bins."""
        return int(self.probabilities.size)

    def bin_index(self, scores: np.ndarray) -> np.ndarray:
        """The bin of each score (0 … bins − 1)."""
        return np.searchsorted(self.edges, np.asarray(scores, dtype=float), side="right")

    def calibrate(self, scores: np.ndarray) -> np.ndarray:
        """The calibrated probability of each score."""
        return self.probabilities[self.bin_index(scores)]


def _merge_closest(edges: np.ndarray, probabilities: np.ndarray, rows: np.ndarray,
                   max_bins: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Merge the neighbouring bins closest in probability until at most `max_bins` are left."""
    edges, probabilities, rows = list(edges), list(probabilities), list(rows)
    while len(probabilities) > max_bins:
        i = int(np.argmin(np.diff(probabilities)))
        total = rows[i] + rows[i + 1]
        merged = (rows[i] * probabilities[i] + rows[i + 1] * probabilities[i + 1]) / total if total else \
            (probabilities[i] + probabilities[i + 1]) / 2
        probabilities[i:i + 2] = [merged]
        rows[i:i + 2] = [total]
        del edges[i]
    return np.asarray(edges, dtype=float), np.asarray(probabilities, dtype=float), np.asarray(rows, dtype=np.int64)


def fit_calibration(scores: np.ndarray, labels: np.ndarray, max_bins: int = MAX_CALIBRATION_BINS) -> Calibration:
    """Fit the calibration map from reference scores (finite) and binary labels (0/1 or booleans, 1 = positive).

    Raises ValueError without rows, with a non-finite score, or with a label other than 0 or 1.
    """
    from sklearn.isotonic import IsotonicRegression

    scores = np.asarray(scores, dtype=float)
    labels = np.asarray(labels)
    if scores.size == 0 or scores.shape != labels.shape:
        raise ValueError(f"calibration needs as many labels as scores, at least one: {scores.size} and {labels.size}")
    if not np.all(np.isfinite(scores)):
        raise ValueError("calibration scores must be finite")
    positive = labels.astype(float)
    if not np.all((positive == 0) | (positive == 1)):
        raise ValueError("calibration labels must be 0 or 1 (1 = positive class)")
    iso = IsotonicRegression(out_of_bounds="clip", y_min=0.0, y_max=1.0).fit(scores, positive)
    x, y = np.asarray(iso.X_thresholds_, dtype=float), np.asarray(iso.y_thresholds_, dtype=float)
    # blocks: runs of thresholds with one probability; the edge between two runs is the middle of their gap
    starts = np.concatenate([[0], np.flatnonzero(np.diff(y) != 0) + 1])
    ends = np.concatenate([starts[1:] - 1, [y.size - 1]])
    edges = (x[ends[:-1]] + x[starts[1:]]) / 2
    probabilities = y[starts]
    rows = np.bincount(np.searchsorted(edges, scores, side="right"), minlength=probabilities.size)
    edges, probabilities, rows = _merge_closest(edges, probabilities, rows, max_bins)
    return Calibration(edges=edges, probabilities=probabilities, rows=rows)
