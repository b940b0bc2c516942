"""CBPE from per-bin counts (promml.stats.estimation) against the same estimate computed row by row with numpy and
scikit-learn, NannyML's definitions."""

from __future__ import annotations

import math

import numpy as np
import pytest
from sklearn import metrics

from promml.stats.calibration import fit_calibration
from promml.stats.estimation import (
    estimate,
    estimate_correct,
    estimated_roc_auc,
    expected_outcomes,
    metrics_from_outcomes,
)


def window(seed: int = 3, n: int = 2000):
    rng = np.random.default_rng(seed)
    reference = rng.beta(2, 2, 3000)
    calibration = fit_calibration(reference, (rng.random(3000) < reference).astype(int))
    scores = rng.beta(2.5, 2, n)
    predicted = (scores >= 0.5).astype(int)
    return calibration, scores, predicted


def per_bin_counts(calibration, scores, predicted):
    bins = calibration.bin_index(scores)
    return (np.bincount(bins[predicted == 0], minlength=calibration.bins),
            np.bincount(bins[predicted == 1], minlength=calibration.bins))


def row_level_roc_auc(p: np.ndarray, scores: np.ndarray) -> float:
    """NannyML's estimate_roc_auc without its rounding: rows by score descending, cumulative Σp and Σ(1 − p)."""
    order = np.argsort(scores)[::-1]
    tps = np.r_[0, np.cumsum(p[order])]
    fps = np.r_[0, np.cumsum(1 - p[order])]
    return metrics.auc(fps / fps[-1], tps / tps[-1])


def test_per_bin_counts_give_the_row_level_expected_confusion_matrix_and_metrics():
    calibration, scores, predicted = window()
    p = calibration.calibrate(scores)
    outcomes, estimated = estimate(calibration.probabilities, *per_bin_counts(calibration, scores, predicted))
    tp, fp = p[predicted == 1].sum(), (1 - p[predicted == 1]).sum()
    fn, tn = p[predicted == 0].sum(), (1 - p[predicted == 0]).sum()
    assert outcomes == pytest.approx({"tp": tp, "fp": fp, "tn": tn, "fn": fn}, rel=1e-12)
    assert estimated["accuracy"] == pytest.approx(np.mean(np.where(predicted == 1, p, 1 - p)), rel=1e-12)
    assert estimated["precision"] == pytest.approx(tp / (tp + fp), rel=1e-12)
    assert estimated["recall"] == pytest.approx(tp / p.sum(), rel=1e-12)
    assert estimated["f1"] == pytest.approx(tp / (tp + (fp + fn) / 2), rel=1e-12)
    assert estimated["roc_auc"] == pytest.approx(row_level_roc_auc(p, scores), rel=1e-12)


def test_certain_probabilities_give_scikit_learns_realized_metrics():
    rng = np.random.default_rng(5)
    labels = rng.integers(0, 2, 500)
    predicted = np.where(rng.random(500) < 0.8, labels, 1 - labels)
    probabilities = np.array([0.0, 1.0])  # bin 0 holds the negatives, bin 1 the positives
    negative = np.bincount(labels[predicted == 0], minlength=2)
    positive = np.bincount(labels[predicted == 1], minlength=2)
    outcomes, estimated = estimate(probabilities, negative, positive)
    assert outcomes == {
        "tp": float(np.sum((labels == 1) & (predicted == 1))), "fp": float(np.sum((labels == 0) & (predicted == 1))),
        "tn": float(np.sum((labels == 0) & (predicted == 0))), "fn": float(np.sum((labels == 1) & (predicted == 0)))}
    assert estimated["accuracy"] == pytest.approx(metrics.accuracy_score(labels, predicted), rel=1e-12)
    assert estimated["precision"] == pytest.approx(metrics.precision_score(labels, predicted), rel=1e-12)
    assert estimated["recall"] == pytest.approx(metrics.recall_score(labels, predicted), rel=1e-12)
    assert estimated["f1"] == pytest.approx(metrics.f1_score(labels, predicted), rel=1e-12)
    assert estimated["roc_auc"] == 1.0


def test_outcomes_of_replicas_add_up_to_the_outcomes_of_all_rows_together():
    calibration, scores, predicted = window(n=3000)
    first = expected_outcomes(calibration.probabilities, *per_bin_counts(calibration, scores[:1000], predicted[:1000]))
    second = expected_outcomes(calibration.probabilities, *per_bin_counts(calibration, scores[1000:], predicted[1000:]))
    together = expected_outcomes(calibration.probabilities, *per_bin_counts(calibration, scores, predicted))
    assert {k: first[k] + second[k] for k in first} == pytest.approx(together, rel=1e-12)
    assert metrics_from_outcomes({k: first[k] + second[k] for k in first}) == pytest.approx(
        metrics_from_outcomes(together), rel=1e-12)


def test_an_empty_window_has_no_estimate_and_a_certain_one_no_roc_auc():
    assert estimate(np.array([0.2, 0.8]), np.zeros(2), np.zeros(2))[1] == {}
    assert math.isnan(estimated_roc_auc(np.array([1.0, 1.0]), np.array([3, 4])))
    assert "roc_auc" not in estimate(np.array([1.0]), np.array([2]), np.array([3]))[1]


def test_no_predicted_positive_gives_precision_zero():
    assert metrics_from_outcomes({"tp": 0.0, "fp": 0.0, "tn": 3.0, "fn": 1.0})["precision"] == 0.0


def test_multiclass_estimated_accuracy_is_the_mean_probability_of_being_right_row_by_row():
    rng = np.random.default_rng(8)
    reference = rng.uniform(0.34, 1.0, 3000)  # a top-class score
    calibration = fit_calibration(reference, (rng.random(3000) < reference).astype(int))
    scores = rng.uniform(0.34, 1.0, 700)
    p = calibration.calibrate(scores)
    rows = np.bincount(calibration.bin_index(scores), minlength=calibration.bins)
    outcomes, estimated = estimate_correct(calibration.probabilities, rows)
    assert outcomes == pytest.approx({"correct": p.sum(), "incorrect": (1 - p).sum()}, rel=1e-12)
    assert estimated == pytest.approx({"accuracy": p.mean()}, rel=1e-12)
    assert estimate_correct(calibration.probabilities, np.zeros(calibration.bins)) == (
        {"correct": 0.0, "incorrect": 0.0}, {})
