"""Model performance from labelled predictions, kept as mergeable counts so a window's metrics come from its slots.

The metrics themselves are defined once, in `promml.stats.performance`, for the baseline and the exporter alike.
Classification keeps a confusion table (label class, predicted class) → rows and, for ROC AUC, histograms of the
scores of rows whose label is the positive class and of the others over one fixed set of score bins
(`ScoreBins`), plus the count of scores outside [0, 1]. Regression keeps four sums: rows, Σ residual, Σ |residual|
and Σ residual² (residual = label − prediction), so a slot's state has the same size whatever its labelled rows.
Adding two states gives the state of the union of their rows.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy.special import expit

from ..stats.performance import (
    binary_outcomes,
    class_key,
    classification_metrics,
    one_vs_rest_auc_of_predictions,
    regression_metrics,
    roc_auc_from_histograms,
    unknown_class_rows,
)
from . import state as st

__all__ = ["AUC_LOGIT_EDGES", "AUC_QUANTILE_EDGES", "LabelStats", "ModelClasses", "ScoreBins", "class_key",
           "window_performance"]

AUC_QUANTILE_EDGES = 512
"""Score bins cut at this many quantiles of the baseline's score sample, so the bins follow the model's own score
distribution (a rare-event model whose scores sit near 1e-4, or logits): two rows count as a tie only when they
share one of about 500 equal-mass bins, which keeps ROC AUC within about 0.001 of the exact value."""
AUC_LOGIT_EDGES = 511
"""And cut at this many points evenly spaced in log-odds from −12 to 12 (scores from 6e-6 to 1 − 6e-6), fine near
0 and 1, for scores the baseline's sample does not cover (or no baseline score at all)."""
AUC_LOGIT_RANGE = 12.0


@dataclass(frozen=True, eq=False)
class ScoreBins:
    """Ordered score bins for ROC AUC: bin i holds edges[i-1] <= score < edges[i], the outer bins are open, so any
    finite score (a logit too) lands in a bin and nothing is clipped."""

    edges: np.ndarray

    @classmethod
    def for_reference(cls, reference_scores: np.ndarray | None) -> ScoreBins:
        logit_grid = expit(np.linspace(-AUC_LOGIT_RANGE, AUC_LOGIT_RANGE, AUC_LOGIT_EDGES))
        pieces = [logit_grid]
        if reference_scores is not None and np.size(reference_scores):
            quantiles = np.linspace(0.0, 1.0, AUC_QUANTILE_EDGES + 2)[1:-1]
            pieces.append(np.quantile(np.asarray(reference_scores, dtype=float), quantiles))
        return cls(np.unique(np.concatenate(pieces)))

    @property
    def size(self) -> int:
        return self.edges.size + 1

    def index(self, score: float) -> int:
        return int(np.searchsorted(self.edges, score, side="right"))


@dataclass(frozen=True)
class ModelClasses:
    """What the model's classes are: `classes` (None when the baseline does not say; then binary is assumed) and
    the one positive class."""

    classes: tuple[str, ...] | None
    positive_class: str

    @property
    def binary(self) -> bool:
        return self.classes is None or len(self.classes) <= 2

    def metric_classes(self) -> Sequence[str]:
        """The classes the metrics are defined over (binary: the positive class and the rest)."""
        return self.classes if self.classes is not None else (self.positive_class,)


@dataclass
class LabelStats:
    """Mergeable performance state of some labelled predictions."""

    labeled: int = 0
    correct: int = 0
    confusion: Counter[tuple[str, str]] = field(default_factory=Counter)  # (label class, predicted class) → rows
    positive_scores: np.ndarray | None = None  # per ScoreBins bin; None until a scored label arrives
    negative_scores: np.ndarray | None = None
    scores_outside_unit: int = 0  # labelled rows whose score is outside [0, 1]
    residual_rows: int = 0
    residual_sum: float = 0.0
    residual_abs_sum: float = 0.0
    residual_square_sum: float = 0.0

    def add_classification(
        self, prediction: Any, label: Any, score: float | None, positive_class: str, bins: ScoreBins
    ) -> bool:
        """Count one labelled prediction of a classifier; True when it was right (same class)."""
        label_class, predicted_class = class_key(label), class_key(prediction)
        right = label_class == predicted_class
        self.labeled += 1
        self.correct += right
        self.confusion[(label_class, predicted_class)] += 1
        if score is not None and math.isfinite(score):
            if self.positive_scores is None or self.negative_scores is None:
                self.positive_scores = np.zeros(bins.size, dtype=np.int64)
                self.negative_scores = np.zeros(bins.size, dtype=np.int64)
            target = self.positive_scores if label_class == positive_class else self.negative_scores
            target[bins.index(score)] += 1
            self.scores_outside_unit += not 0.0 <= score <= 1.0
        return right

    def add_regression(self, prediction: Any, label: Any) -> bool:
        """Count one labelled prediction of a regression model when both are numbers; True when counted."""
        predicted, actual = _number(prediction), _number(label)
        self.labeled += 1
        if predicted is None or actual is None:
            return False
        residual = actual - predicted
        self.residual_rows += 1
        self.residual_sum += residual
        self.residual_abs_sum += abs(residual)
        self.residual_square_sum += residual * residual
        return True

    def merge(self, other: LabelStats) -> None:
        self.labeled += other.labeled
        self.correct += other.correct
        self.confusion.update(other.confusion)
        if other.positive_scores is not None and other.negative_scores is not None:
            if self.positive_scores is None or self.negative_scores is None:
                self.positive_scores = other.positive_scores.copy()
                self.negative_scores = other.negative_scores.copy()
            else:
                self.positive_scores += other.positive_scores
                self.negative_scores += other.negative_scores
        self.scores_outside_unit += other.scores_outside_unit
        self.residual_rows += other.residual_rows
        self.residual_sum += other.residual_sum
        self.residual_abs_sum += other.residual_abs_sum
        self.residual_square_sum += other.residual_square_sum

    def to_state(self) -> dict[str, Any]:
        """The state as JSON values, for the checkpoint: score histograms as their non-zero bins."""
        return {
            "labeled": self.labeled, "correct": self.correct,
            "confusion": [[label, predicted, rows] for (label, predicted), rows in sorted(self.confusion.items())],
            "positive_scores": None if self.positive_scores is None else st.counts_to_state(self.positive_scores),
            "negative_scores": None if self.negative_scores is None else st.counts_to_state(self.negative_scores),
            "scores_outside_unit": self.scores_outside_unit,
            "residuals": [self.residual_rows, st.float_to_state(self.residual_sum),
                          st.float_to_state(self.residual_abs_sum), st.float_to_state(self.residual_square_sum)],
        }

    @classmethod
    def from_state(cls, state: Any, score_bins: int, where: str, max_rows: int = st.MAX_COUNT) -> LabelStats:
        """A state as saved by `to_state` with histograms of `score_bins` bins; every count at most the labelled
        rows, and the right ones those on the confusion table's diagonal (InvalidState otherwise)."""
        labeled = st.count(st.field(state, "labeled", where), f"{where}.labeled", max_rows)
        stats = cls(labeled=labeled, correct=st.count(st.field(state, "correct", where), f"{where}.correct", labeled))
        confusion = st.sequence(st.field(state, "confusion", where), f"{where}.confusion", labeled)
        for index, entry in enumerate(confusion):
            at = f"{where}.confusion[{index}]"
            if not isinstance(entry, list) or len(entry) != 3:
                raise st.InvalidState(f"{at}: expected [label class, predicted class, rows]")
            stats.confusion[(st.text(entry[0], at), st.text(entry[1], at))] += st.count(entry[2], at, labeled)
        histograms = [st.field(state, name, where) for name in ("positive_scores", "negative_scores")]
        if (histograms[0] is None) != (histograms[1] is None):
            raise st.InvalidState(f"{where}: expected both score histograms or neither")
        if histograms[0] is not None:
            stats.positive_scores, stats.negative_scores = (
                st.counts_from_state(raw, f"{where}.{name}", score_bins, labeled)
                for raw, name in zip(histograms, ("positive_scores", "negative_scores"), strict=True))
        stats.scores_outside_unit = st.count(st.field(state, "scores_outside_unit", where),
                                             f"{where}.scores_outside_unit", labeled)
        residuals = st.sequence(st.field(state, "residuals", where), f"{where}.residuals", 4)
        if len(residuals) != 4:
            raise st.InvalidState(f"{where}.residuals: expected [rows, sum, absolute sum, square sum]")
        stats.residual_rows = st.count(residuals[0], f"{where}.residuals[0]", labeled)
        stats.residual_sum, stats.residual_abs_sum, stats.residual_square_sum = (
            st.float_from_state(value, f"{where}.residuals[{i}]") for i, value in enumerate(residuals[1:], 1)
        )
        scored = 0
        if stats.positive_scores is not None and stats.negative_scores is not None:
            scored = int(stats.positive_scores.sum() + stats.negative_scores.sum())
        diagonal = sum(rows for (label, predicted), rows in stats.confusion.items() if label == predicted)
        if sum(stats.confusion.values()) > labeled or scored > labeled or diagonal != stats.correct:
            raise st.InvalidState(f"{where}: counts do not add up to the labelled and right rows")
        return stats

    def binary_outcomes(self, positive_class: str) -> dict[str, int]:
        """tp, fp, tn, fn with `positive_class` against every other class."""
        return binary_outcomes(self.confusion, positive_class)


def _number(value: Any) -> float | None:
    if isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value):
        return float(value)
    return None


def window_performance(stats: LabelStats, task: str, model: ModelClasses) -> dict[str, float]:
    """The metrics of a window's labelled rows (see `promml.stats.performance`); NaN metrics left out.

    Classification, binary model: accuracy, precision, recall and F1 of the positive class against the rest, ROC
    AUC of the score as the positive class's probability. Multi-class: macro means over the model's classes (the
    classes seen in the rows when the baseline does not list them), ROC AUC the macro one-vs-rest AUC of the
    predicted class itself. Regression: mae, rmse, mean_residual (label − prediction).
    """
    if task != "classification":
        return regression_metrics(stats.residual_rows, stats.residual_sum, stats.residual_abs_sum,
                                  stats.residual_square_sum)
    if stats.labeled == 0:
        return {}
    if model.binary:
        metrics = classification_metrics(stats.confusion, model.metric_classes(), model.positive_class)
        if stats.positive_scores is not None and stats.negative_scores is not None:
            metrics["roc_auc"] = roc_auc_from_histograms(stats.positive_scores, stats.negative_scores)
    else:
        classes = model.metric_classes()
        metrics = classification_metrics(stats.confusion, classes, model.positive_class)
        metrics["roc_auc"] = one_vs_rest_auc_of_predictions(stats.confusion, classes)
    return {name: value for name, value in metrics.items() if not math.isnan(value)}


def unknown_rows(stats: LabelStats, model: ModelClasses) -> int | None:
    """Labelled rows whose label or prediction is not one of the model's classes; None when they are not known."""
    return None if model.classes is None else unknown_class_rows(stats.confusion, model.classes)
