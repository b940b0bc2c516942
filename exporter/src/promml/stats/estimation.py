"""Confidence-based performance estimation (CBPE): a binary classifier's expected performance from calibrated
probabilities alone, before the labels come. Pure functions, numbers in, numbers out.

A row predicted positive with calibrated probability p is a true positive with probability p and a false positive
with probability 1 − p; a row predicted negative is a false negative with probability p and a true negative with
1 − p. Summing over the window's rows gives the **expected confusion matrix**:

    TP = Σ_{pred=1} p    FP = Σ_{pred=1} (1 − p)    FN = Σ_{pred=0} p    TN = Σ_{pred=0} (1 − p)

and from it accuracy, precision, recall and F1 = TP / (TP + ½(FP + FN)), as NannyML's CBPE estimates them.
The exporter needs no row: p is constant within a calibration bin (promml.stats.calibration), so per-bin row counts
split by predicted class give the same sums, and counts add exactly across replicas and slots.

ROC AUC follows NannyML's `estimate_roc_auc`: rows sorted by score, descending, with cumulative Σp as expected true
positives and Σ(1 − p) as expected false positives, and the trapezoid under (FPR, TPR). Within a bin p is constant,
so that curve is a straight segment across the bin's rows, whatever their order inside it: the trapezoid over bins
is the row-level area exactly.

A multi-class model logs only its top class's score, calibrated instead to the probability that the predicted class
is right (`correct_prediction`): the expected right rows are Σ p and estimated accuracy Σ p / rows; precision, recall,
F1 and ROC AUC per class would need every class's score.
"""

from __future__ import annotations

import math

import numpy as np

from promml.stats.performance import zero_division_ratio

OUTCOMES = ("tp", "fp", "tn", "fn")
CORRECTNESS_OUTCOMES = ("correct", "incorrect")
ESTIMATED_METRICS = ("accuracy", "precision", "recall", "f1", "roc_auc")


def expected_outcomes(probabilities: np.ndarray, predicted_negative: np.ndarray,
                      predicted_positive: np.ndarray) -> dict[str, float]:
    """Expected tp, fp, tn, fn from the calibrated probability of each bin and the window's rows per bin that the
    model predicted negative and positive."""
    p = np.asarray(probabilities, dtype=float)
    negative = np.asarray(predicted_negative, dtype=float)
    positive = np.asarray(predicted_positive, dtype=float)
    return {"tp": float(np.dot(positive, p)), "fp": float(np.dot(positive, 1 - p)),
            "tn": float(np.dot(negative, 1 - p)), "fn": float(np.dot(negative, p))}


def metrics_from_outcomes(outcomes: dict[str, float]) -> dict[str, float]:
    """accuracy, precision, recall and f1 from (expected) outcome counts; empty without rows. An undefined
    precision or recall is 0, as for the realized metrics (scikit-learn's zero_division=0)."""
    tp, fp, tn, fn = (outcomes[k] for k in OUTCOMES)
    total = tp + fp + tn + fn
    if total <= 0:
        return {}
    return {"accuracy": (tp + tn) / total, "precision": zero_division_ratio(tp, tp + fp),
            "recall": zero_division_ratio(tp, tp + fn), "f1": zero_division_ratio(tp, tp + (fp + fn) / 2)}


def estimated_roc_auc(probabilities: np.ndarray, rows: np.ndarray) -> float:
    """Expected ROC AUC from the calibrated probability and the window's rows of each bin (bins in ascending score
    order). NaN when the window has no expected positive or no expected negative."""
    p = np.asarray(probabilities, dtype=float)
    n = np.asarray(rows, dtype=float)
    positives, negatives = n * p, n * (1 - p)
    total_positive, total_negative = float(positives.sum()), float(negatives.sum())
    if total_positive <= 0 or total_negative <= 0:
        return math.nan
    # from the highest bin down: each bin adds a segment of width N_b/N at mean height (TP above + P_b/2)/P
    positives_above = np.concatenate([np.cumsum(positives[::-1])[::-1][1:], [0.0]])
    area = float(np.dot(negatives, positives_above + positives / 2))
    return area / (total_positive * total_negative)


def estimate(probabilities: np.ndarray, predicted_negative: np.ndarray,
             predicted_positive: np.ndarray) -> tuple[dict[str, float], dict[str, float]]:
    """(expected outcomes, estimated metrics) of one window; metrics empty without rows, roc_auc left out when
    it is undefined."""
    outcomes = expected_outcomes(probabilities, predicted_negative, predicted_positive)
    metrics = metrics_from_outcomes(outcomes)
    if metrics:
        auc = estimated_roc_auc(probabilities, np.asarray(predicted_negative) + np.asarray(predicted_positive))
        if not math.isnan(auc):
            metrics["roc_auc"] = auc
    return outcomes, metrics


def estimate_correct(probabilities: np.ndarray, rows: np.ndarray) -> tuple[dict[str, float], dict[str, float]]:
    """(expected correct and incorrect rows, estimated accuracy) of one window of a multi-class model, from the
    probability that the prediction is right in each bin and the window's rows per bin; accuracy left out without
    rows."""
    p = np.asarray(probabilities, dtype=float)
    n = np.asarray(rows, dtype=float)
    correct = float(np.dot(n, p))
    total = float(n.sum())
    outcomes = {"correct": correct, "incorrect": float(np.dot(n, 1 - p))}
    return outcomes, ({"accuracy": correct / total} if total > 0 else {})
