"""Model performance from labelled predictions, kept as mergeable counts so a window's metrics come from its slots.

Classification keeps a confusion table (label class, predicted class) → rows and, for ROC AUC, histograms of the
score of rows whose label is the positive class and of the others, on a grid of 1/`SCORE_GRID`. Regression keeps
the sums of the residuals (label − prediction), of their absolute values and of their squares. Adding two of these
states gives the state of the union of their rows, so a window's metrics cost the same whatever its rows.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import numpy as np

SCORE_GRID = 1000
"""ROC AUC ranks scores rounded to 1/1000 (scores are clipped to [0, 1]). Scores with at most three decimals give
exactly scikit-learn's `roc_auc_score`; finer ones differ only by pairs of rows whose scores round to the same
step, counted as ties."""


def class_key(value: Any) -> str:
    """The class a prediction or label stands for: numbers by value (1, 1.0 and True are "1"), anything else by its
    text, so the label "1" matches the prediction 1."""
    if isinstance(value, int | float):
        number = float(value)
        return str(int(number)) if number.is_integer() else repr(number)
    return str(value)


def _number(value: Any) -> float | None:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    return None


@dataclass
class LabelStats:
    """Mergeable performance state of some labelled predictions."""

    labeled: int = 0
    correct: int = 0
    confusion: Counter[tuple[str, str]] = field(default_factory=Counter)  # (label class, predicted class) → rows
    positive_scores: np.ndarray = field(default_factory=lambda: np.zeros(SCORE_GRID + 1, dtype=np.int64))
    negative_scores: np.ndarray = field(default_factory=lambda: np.zeros(SCORE_GRID + 1, dtype=np.int64))
    residual_rows: int = 0
    residual_sum: float = 0.0
    residual_abs_sum: float = 0.0
    residual_square_sum: float = 0.0

    def add(self, prediction: Any, label: Any, score: float | None, positive_class: str) -> bool:
        """Count one labelled prediction; True when it was right (same class)."""
        label_class, predicted_class = class_key(label), class_key(prediction)
        right = label_class == predicted_class
        self.labeled += 1
        self.correct += right
        self.confusion[(label_class, predicted_class)] += 1
        if score is not None:
            step = round(min(max(score, 0.0), 1.0) * SCORE_GRID)
            (self.positive_scores if label_class == positive_class else self.negative_scores)[step] += 1
        predicted, actual = _number(prediction), _number(label)
        if predicted is not None and actual is not None:
            residual = actual - predicted
            self.residual_rows += 1
            self.residual_sum += residual
            self.residual_abs_sum += abs(residual)
            self.residual_square_sum += residual * residual
        return right

    def merge(self, other: LabelStats) -> None:
        self.labeled += other.labeled
        self.correct += other.correct
        self.confusion.update(other.confusion)
        self.positive_scores += other.positive_scores
        self.negative_scores += other.negative_scores
        self.residual_rows += other.residual_rows
        self.residual_sum += other.residual_sum
        self.residual_abs_sum += other.residual_abs_sum
        self.residual_square_sum += other.residual_square_sum

    def classes(self) -> list[str]:
        """Every class seen as a label or a prediction, sorted."""
        return sorted({c for pair in self.confusion for c in pair})

    def is_binary(self, positive_class: str) -> bool:
        """Binary when at most two classes were seen and one of them is the positive class."""
        classes = self.classes()
        return len(classes) <= 2 and positive_class in classes

    def binary_outcomes(self, positive_class: str) -> dict[str, int]:
        """tp, fp, tn, fn with `positive_class` as the positive class."""
        outcomes = {"tp": 0, "fp": 0, "tn": 0, "fn": 0}
        for (label, predicted), rows in self.confusion.items():
            key = ("t" if label == predicted else "f") + ("p" if predicted == positive_class else "n")
            outcomes[key] += rows
        return outcomes


def _ratio(numerator: float, denominator: float) -> float:
    """scikit-learn's zero_division=0: an empty denominator gives 0."""
    return numerator / denominator if denominator else 0.0


def _f1(precision: float, recall: float) -> float:
    return _ratio(2 * precision * recall, precision + recall)


def roc_auc_from_histograms(positive: np.ndarray, negative: np.ndarray) -> float:
    """P(score of a positive > score of a negative) + ½ P(equal), from score histograms on one grid (the
    Mann-Whitney form of the area under the ROC curve). NaN without a positive or without a negative."""
    positives, negatives = int(positive.sum()), int(negative.sum())
    if positives == 0 or negatives == 0:
        return float("nan")
    negatives_below = np.concatenate([[0], np.cumsum(negative)[:-1]])
    wins = float(np.dot(positive, negatives_below)) + 0.5 * float(np.dot(positive, negative))
    return wins / (positives * negatives)


def classification_metrics(stats: LabelStats, positive_class: str) -> dict[str, float]:
    """accuracy, precision, recall, f1 and roc_auc of the labelled rows (empty without any).

    Binary (see `LabelStats.is_binary`): precision, recall and F1 of the positive class, ROC AUC of the score as the
    positive class's probability. Otherwise macro averages over every class seen as a label or a prediction, and
    ROC AUC as the macro one-vs-rest AUC of the predicted class itself (a single score per row ranks nothing for
    the other classes): per class present among the labels, (TPR + TNR) / 2.
    """
    if stats.labeled == 0:
        return {}
    metrics = {"accuracy": stats.correct / stats.labeled}
    confusion = stats.confusion
    if stats.is_binary(positive_class):
        outcomes = stats.binary_outcomes(positive_class)
        precision = _ratio(outcomes["tp"], outcomes["tp"] + outcomes["fp"])
        recall = _ratio(outcomes["tp"], outcomes["tp"] + outcomes["fn"])
        metrics.update(precision=precision, recall=recall, f1=_f1(precision, recall))
        metrics["roc_auc"] = roc_auc_from_histograms(stats.positive_scores, stats.negative_scores)
    else:
        classes = stats.classes()
        true_positives = {c: confusion.get((c, c), 0) for c in classes}
        predicted = Counter[str]()
        actual = Counter[str]()
        for (label, prediction), rows in confusion.items():
            predicted[prediction] += rows
            actual[label] += rows
        precisions = [_ratio(true_positives[c], predicted[c]) for c in classes]
        recalls = [_ratio(true_positives[c], actual[c]) for c in classes]
        metrics["precision"] = float(np.mean(precisions))
        metrics["recall"] = float(np.mean(recalls))
        metrics["f1"] = float(np.mean([_f1(p, r) for p, r in zip(precisions, recalls, strict=True)]))
        aucs = []
        for c in classes:
            negatives = stats.labeled - actual[c]
            if actual[c] and negatives:
                true_negatives = negatives - (predicted[c] - true_positives[c])
                aucs.append((true_positives[c] / actual[c] + true_negatives / negatives) / 2)
        metrics["roc_auc"] = float(np.mean(aucs)) if len(aucs) >= 2 else float("nan")
    return {name: value for name, value in metrics.items() if not math.isnan(value)}


def regression_metrics(stats: LabelStats) -> dict[str, float]:
    """mae, rmse and mean_residual (mean of label − prediction) of the rows whose prediction and label are numbers."""
    rows = stats.residual_rows
    if rows == 0:
        return {}
    return {
        "mae": stats.residual_abs_sum / rows,
        "rmse": math.sqrt(stats.residual_square_sum / rows),
        "mean_residual": stats.residual_sum / rows,
    }
