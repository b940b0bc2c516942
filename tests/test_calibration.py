"""The calibration map (promml.stats.calibration) against scikit-learn's IsotonicRegression on the same rows."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.isotonic import IsotonicRegression

from promml.stats.calibration import Calibration, fit_calibration


def reference_rows(n: int = 3000, seed: int = 7) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    scores = rng.beta(2, 2, n)
    labels = (rng.random(n) < scores ** 1.5).astype(int)
    return scores, labels


def test_the_bins_give_scikit_learns_isotonic_fit_at_every_reference_score():
    scores, labels = reference_rows()
    calibration = fit_calibration(scores, labels)
    iso = IsotonicRegression(out_of_bounds="clip", y_min=0.0, y_max=1.0).fit(scores, labels)
    np.testing.assert_array_equal(calibration.calibrate(scores), iso.predict(scores))
    assert calibration.bins == np.unique(iso.y_thresholds_).size
    assert calibration.rows.sum() == scores.size


def test_scores_outside_the_reference_range_are_clipped_to_the_end_bins():
    scores, labels = reference_rows()
    calibration = fit_calibration(scores, labels)
    iso = IsotonicRegression(out_of_bounds="clip", y_min=0.0, y_max=1.0).fit(scores, labels)
    outside = np.array([-5.0, scores.min() - 1e-9, scores.max() + 1e-9, 7.0])
    np.testing.assert_array_equal(calibration.calibrate(outside), iso.predict(outside))


def test_merging_keeps_the_map_monotone_and_the_expected_positives_equal_to_the_labelled_ones():
    scores, labels = reference_rows()
    calibration = fit_calibration(scores, labels, max_bins=5)
    assert calibration.bins == 5
    assert np.all(np.diff(calibration.probabilities) >= 0)
    # isotonic regression preserves the sum of the labels, and a row-weighted mean of two bins keeps it
    assert float(np.dot(calibration.rows, calibration.probabilities)) == pytest.approx(labels.sum(), rel=1e-12)
    np.testing.assert_array_equal(np.bincount(calibration.bin_index(scores), minlength=5), calibration.rows)


def test_a_constant_score_has_one_bin_with_the_positive_share():
    calibration = fit_calibration(np.full(4, 0.3), np.array([1, 0, 0, 0]))
    assert calibration.edges.size == 0
    assert calibration.probabilities.tolist() == [0.25]


@pytest.mark.parametrize(("scores", "labels", "message"), [
    ([], [], "at least one"),
    ([0.1, np.nan], [0, 1], "finite"),
    ([0.1, 0.2], [0, 2], "0 or 1"),
    ([0.1, 0.2], [0], "as many labels"),
])
def test_bad_reference_rows_are_refused_with_the_reason(scores, labels, message):
    with pytest.raises(ValueError, match=message):
        fit_calibration(np.array(scores, dtype=float), np.array(labels))


def test_inconsistent_bins_are_refused():
    with pytest.raises(ValueError, match="n-1 edges"):
        Calibration(edges=np.array([0.5, 0.6]), probabilities=np.array([0.1, 0.9]), rows=np.array([1, 1]))
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        Calibration(edges=np.array([0.5]), probabilities=np.array([0.1, 1.5]), rows=np.array([1, 1]))
