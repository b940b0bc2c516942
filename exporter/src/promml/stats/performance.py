"""Model performance from counts: one definition of every metric, for the baseline builder and the exporter alike.

Classification metrics come from a confusion table, (label class, predicted class) → rows, and the model's classes,
which are a property of the model (recorded in the baseline), never of the rows at hand:

- **binary** (the model has at most two classes): precision, recall and F1 of the one positive class, one class
  against every other, as scikit-learn's `precision_score(y == positive, p == positive)`, so a window without a
  positive label or prediction reports 0 (zero_division=0), not 1, and a stray third label is a negative;
- **multi-class**: unweighted (macro) means over the model's classes, as scikit-learn's
  `precision_score(..., labels=classes, average="macro", zero_division=0)`.

A label or prediction outside the model's classes (`unknown_class_rows`) is counted, never allowed to switch the
definition. Regression metrics come from sums of the residual, defined once: **residual = label − prediction**
(observed minus predicted, the textbook residual): `mean_residual` is positive when the model under-predicts.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np
from scipy.stats import rankdata

Confusion = Mapping[tuple[str, str], int]
"""(label class, predicted class) → rows, classes as `class_key` text."""


def class_key(value: Any) -> str:
    """The class a prediction or label stands for: numbers by value (1, 1.0 and True are "1"), anything else by its
    text, so the label "1" matches the prediction 1."""
    if isinstance(value, int | float | np.integer | np.floating | np.bool_):
        number = float(value)
        return str(int(number)) if number.is_integer() else repr(number)
    return str(value)


def zero_division_ratio(numerator: float, denominator: float) -> float:
    """scikit-learn's zero_division=0: an undefined precision or recall (nothing predicted or present) is 0."""
    return float(numerator / denominator) if denominator else 0.0


def _f1(true_positives: int, false_positives: int, false_negatives: int) -> float:
    """F1 as 2·TP / (2·TP + FP + FN), scikit-learn's form (0 when all three are 0)."""
    return zero_division_ratio(2 * true_positives, 2 * true_positives + false_positives + false_negatives)


def binary_outcomes(confusion: Confusion, positive_class: str) -> dict[str, int]:
    """tp, fp, tn, fn with `positive_class` against every other class."""
    outcomes = {"tp": 0, "fp": 0, "tn": 0, "fn": 0}
    for (label, predicted), rows in confusion.items():
        said = predicted == positive_class
        actual = label == positive_class
        outcomes[("t" if said == actual else "f") + ("p" if said else "n")] += rows
    return outcomes


def unknown_class_rows(confusion: Confusion, classes: Iterable[str]) -> int:
    """Rows whose label or prediction is not one of the model's classes."""
    known = set(classes)
    return sum(rows for (label, predicted), rows in confusion.items() if label not in known or predicted not in known)


def classification_metrics(confusion: Confusion, classes: Sequence[str], positive_class: str) -> dict[str, float]:
    """accuracy, precision, recall and f1 of the rows in `confusion` (empty without rows).

    Binary when `classes` (the model's classes) has at most two entries: the metrics of `positive_class` against
    the rest. Otherwise macro means over `classes`. Accuracy is over every row, unknown classes included.
    """
    total = sum(confusion.values())
    if total == 0:
        return {}
    metrics = {"accuracy": sum(rows for (label, predicted), rows in confusion.items() if label == predicted) / total}
    if len(classes) <= 2:
        outcomes = binary_outcomes(confusion, positive_class)
        tp, fp, fn = outcomes["tp"], outcomes["fp"], outcomes["fn"]
        return metrics | {"precision": zero_division_ratio(tp, tp + fp), "recall": zero_division_ratio(tp, tp + fn),
                          "f1": _f1(tp, fp, fn)}
    predicted: Counter[str] = Counter()
    actual: Counter[str] = Counter()
    for (label, prediction), rows in confusion.items():
        predicted[prediction] += rows
        actual[label] += rows
    per_class = []
    for c in classes:
        tp = confusion.get((c, c), 0)
        fp, fn = predicted[c] - tp, actual[c] - tp
        per_class.append((zero_division_ratio(tp, tp + fp), zero_division_ratio(tp, tp + fn), _f1(tp, fp, fn)))
    precision, recall, f1 = np.mean(per_class, axis=0).tolist()
    return metrics | {"precision": precision, "recall": recall, "f1": f1}


def one_vs_rest_auc_of_predictions(confusion: Confusion, classes: Sequence[str]) -> float:
    """Macro one-vs-rest ROC AUC of the predicted class itself (one score per row ranks nothing for the other
    classes): per class present among the labels and absent from some, (TPR + TNR) / 2, which is scikit-learn's
    `roc_auc_score` of the one-hot labels against the one-hot predictions. NaN with fewer than two such classes."""
    total = sum(confusion.values())
    predicted: Counter[str] = Counter()
    actual: Counter[str] = Counter()
    for (label, prediction), rows in confusion.items():
        predicted[prediction] += rows
        actual[label] += rows
    aucs = []
    for c in classes:
        negatives = total - actual[c]
        if actual[c] and negatives:
            tp = confusion.get((c, c), 0)
            true_negatives = negatives - (predicted[c] - tp)
            aucs.append((tp / actual[c] + true_negatives / negatives) / 2)
    return float(np.mean(aucs)) if len(aucs) >= 2 else math.nan


def roc_auc(positive: np.ndarray, scores: np.ndarray) -> float:
    """Exact area under the ROC curve as the Mann-Whitney statistic (ties in the score count one half); NaN without
    a positive or without a negative row."""
    positive = np.asarray(positive, dtype=bool)
    n_positive = int(positive.sum())
    n_negative = positive.size - n_positive
    if n_positive == 0 or n_negative == 0:
        return math.nan
    ranks = rankdata(scores)
    return float((ranks[positive].sum() - n_positive * (n_positive + 1) / 2) / (n_positive * n_negative))


def roc_auc_from_histograms(positive: np.ndarray, negative: np.ndarray) -> float:
    """P(score of a positive > score of a negative) + ½ P(same bin), from histograms of the scores of positive and
    negative rows over the same ordered bins (the Mann-Whitney form of the area under the ROC curve). NaN without a
    positive or without a negative."""
    positives, negatives = int(positive.sum()), int(negative.sum())
    if positives == 0 or negatives == 0:
        return math.nan
    negatives_below = np.concatenate([[0], np.cumsum(negative)[:-1]])
    wins = float(np.dot(positive, negatives_below)) + 0.5 * float(np.dot(positive, negative))
    return wins / (positives * negatives)


def residual_sums(labels: np.ndarray, predictions: np.ndarray) -> tuple[int, float, float, float]:
    """(rows, Σ residual, Σ |residual|, Σ residual²) with residual = label − prediction."""
    residual = np.asarray(labels, dtype=float) - np.asarray(predictions, dtype=float)
    return residual.size, float(residual.sum()), float(np.abs(residual).sum()), float(np.dot(residual, residual))


def regression_metrics(rows: int, residual_sum: float, abs_sum: float, square_sum: float) -> dict[str, float]:
    """mae, rmse and mean_residual (mean of label − prediction) from residual sums; empty without rows."""
    if rows == 0:
        return {}
    return {"mae": abs_sum / rows, "rmse": math.sqrt(square_sum / rows), "mean_residual": residual_sum / rows}
