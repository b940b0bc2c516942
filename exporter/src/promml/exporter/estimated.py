"""A window's estimated performance before its labels come (CBPE), from the rows it holds per calibration bin.

Per time slot, the rows with a score are counted per bin of the baseline's calibration map
(`promml.stats.calibration`): a binary model's rows split by predicted class (`calibration_negative`,
`calibration_positive`), a multi-class model's rows in one array (`calibration`, the top class's score being
calibrated to the probability that the prediction is right). The counts sit with the slot's other prediction
counts, so they add up across slots into a window, survive the checkpoint like them, and add up across replicas:
the fleet's expected confusion matrix is the sum of the replicas' (prometheus/rules/recording.yml).

Rows without a prediction or a finite score are not counted: the estimate is of the scored rows.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..baseline import Baseline
from ..stats.calibration import Calibration
from ..stats.estimation import estimate, estimate_correct
from .performance import ModelClasses, class_key

CALIBRATION_NEGATIVE = "calibration_negative"
CALIBRATION_POSITIVE = "calibration_positive"
CALIBRATION_ROWS = "calibration"


@dataclass(frozen=True)
class Estimator:
    """How a slot's rows are counted per calibration bin and how a window's counts become its estimate."""

    calibration: Calibration
    binary: bool
    positive_class: str

    @property
    def count_names(self) -> tuple[str, ...]:
        """The slot's prediction-count arrays this estimator keeps, each of `calibration.bins` counts."""
        return (CALIBRATION_NEGATIVE, CALIBRATION_POSITIVE) if self.binary else (CALIBRATION_ROWS,)

    def describe(self) -> list[Any]:
        """What the saved counts mean (for the window's layout digest): the bin edges and the kind of map."""
        return [self.binary, [float(edge) for edge in self.calibration.edges]]

    def count(self, predictions: Sequence[Any], scores: Sequence[float | None]) -> dict[str, np.ndarray]:
        """Rows per bin of one batch of rows (one slot's), by count name. Each distinct prediction's class is looked
        up once per batch (a model has few), not once per row."""
        score = np.array([math.nan if value is None else value for value in scores], dtype=float)
        classes = {value: self._class_of(value) for value in set(predictions)}
        klass = np.array([classes[value] for value in predictions], dtype=np.int8).reshape(-1)
        scored = np.isfinite(score) & (klass >= 0)
        size = self.calibration.bins
        bins = self.calibration.bin_index(score[scored])
        if not self.binary:
            return {CALIBRATION_ROWS: np.bincount(bins, minlength=size)}
        positive = klass[scored] == 1
        return {CALIBRATION_NEGATIVE: np.bincount(bins[~positive], minlength=size),
                CALIBRATION_POSITIVE: np.bincount(bins[positive], minlength=size)}

    def _class_of(self, prediction: Any) -> int:
        """-1 without a prediction, 1 for the positive class, else 0."""
        if prediction is None:
            return -1
        return int(class_key(prediction) == self.positive_class)

    def estimate(self, counts: dict[str, np.ndarray]) -> tuple[dict[str, float], dict[str, float]]:
        """(expected outcomes, estimated metrics) of a window's summed counts: tp, fp, tn, fn and accuracy,
        precision, recall, f1, roc_auc for a binary model; correct, incorrect and accuracy for a multi-class one."""
        probabilities = self.calibration.probabilities
        if not self.binary:
            return estimate_correct(probabilities, counts[CALIBRATION_ROWS])
        return estimate(probabilities, counts[CALIBRATION_NEGATIVE], counts[CALIBRATION_POSITIVE])


def estimator_for(baseline: Baseline, model: ModelClasses) -> Estimator | None:
    """The estimator of a classifier whose baseline has a calibration map; None otherwise (`missing_reason`)."""
    calibration = getattr(baseline, "calibration", None)
    if calibration is None or getattr(baseline, "task", None) != "classification":
        return None
    binary = getattr(baseline, "calibration_kind", None) != "correct_prediction"
    return Estimator(calibration, binary, model.positive_class)


def missing_reason(baseline: Baseline) -> str | None:
    """Why a baseline gives no estimated performance, as `/readyz` says it; None when it gives one."""
    if getattr(baseline, "task", None) != "classification":
        return "not exported: the baseline is not of a classifier (no target and prediction of classes)"
    if getattr(baseline, "calibration", None) is None:
        return ("not exported: the baseline has no calibration map (format 3 or older, or built without --score); "
                "rebuild it with promml baseline --score")
    return None
