"""A sliding window kept as per-time-slot counts, so memory and recompute cost do not grow with its rows.

Each slot holds, per feature, the counts of rows in each baseline bin, plus prediction and outcome counts.
Rows are buffered raw within their slot and binned in bulk with numpy at the next snapshot. Predictions wait in a
bounded table for their label (joined by `prediction_id`) for at most the window's length: a label for a
prediction that has left the window can no longer change the window's accuracy.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..baseline import Baseline
from ..drift import psi
from ..records import Feedback, Prediction


@dataclass
class _Slot:
    predictions: int = 0
    labeled: int = 0
    correct: int = 0
    counts: dict[str, np.ndarray] = field(default_factory=dict)
    unbinned: list[dict[str, Any]] = field(default_factory=list)


@dataclass(frozen=True)
class WindowSnapshot:
    """The window's statistics at one moment."""

    predictions: int
    labeled: int
    correct: int
    feature_counts: dict[str, np.ndarray]
    drift: dict[str, float]

    @property
    def accuracy(self) -> float | None:
        return self.correct / self.labeled if self.labeled else None


def same_label(prediction: Any, label: Any) -> bool:
    """Two numbers compare by value (1 == 1.0 == True); otherwise by text, so a label "1" matches a prediction 1."""
    numbers = (int, float)
    if isinstance(prediction, numbers) and isinstance(label, numbers):
        return float(prediction) == float(label)
    return str(prediction) == str(label)


def _numeric_column(rows: list[dict[str, Any]], name: str) -> np.ndarray:
    """The feature's finite numeric values; missing and non-numeric values are not binned."""
    values = [row.get(name) for row in rows]
    numbers = [v for v in values if isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)]
    return np.asarray(numbers, dtype=float)


def _categorical_column(rows: list[dict[str, Any]], name: str) -> np.ndarray:
    values = [row.get(name) for row in rows]
    return np.asarray([str(v) for v in values if v is not None and v != ""], dtype=object)


class SlidingWindow:
    """Counts of the last `window_seconds` of predictions (by their timestamp), in `slot_seconds` slots."""

    def __init__(
        self,
        baseline: Baseline,
        *,
        window_seconds: float,
        slot_seconds: float,
        max_pending: int = 1_000_000,
    ) -> None:
        self.baseline = baseline
        self.window_seconds = window_seconds
        self.slot_seconds = slot_seconds
        self.max_pending = max_pending
        self._slots: dict[int, _Slot] = {}
        self._pending: dict[str, tuple[int, Any]] = {}
        self.evicted_pending = 0

    @property
    def pending(self) -> int:
        """Predictions still waiting for a label."""
        return len(self._pending)

    def _oldest_slot(self, now: float) -> int:
        return math.floor((now - self.window_seconds) / self.slot_seconds) + 1

    def add_predictions(self, predictions: Iterable[Prediction], now: float) -> int:
        """Add predictions; returns how many fell inside the window (older ones are not counted)."""
        oldest = self._oldest_slot(now)
        added = 0
        for prediction in predictions:
            key = math.floor(prediction.timestamp / self.slot_seconds)
            if key < oldest:
                continue
            slot = self._slots.get(key)
            if slot is None:
                slot = self._slots[key] = _Slot()
            slot.predictions += 1
            slot.unbinned.append(prediction.features)
            self._pending[prediction.prediction_id] = (key, prediction.prediction)
            added += 1
        self._evict_pending(oldest)
        return added

    def add_feedback(self, feedback: Feedback) -> bool:
        """Join a label to its prediction; False when the prediction is unknown, already labelled or evicted."""
        entry = self._pending.pop(feedback.prediction_id, None)
        if entry is None:
            return False
        key, prediction = entry
        slot = self._slots.get(key)
        if slot is not None:
            slot.labeled += 1
            slot.correct += same_label(prediction, feedback.label)
        return True

    def snapshot(self, now: float) -> WindowSnapshot:
        """Drop expired slots, bin buffered rows and compute the window's counts and PSI per feature."""
        oldest = self._oldest_slot(now)
        for key in [key for key in self._slots if key < oldest]:
            del self._slots[key]
        self._evict_pending(oldest)
        totals = {name: np.zeros(len(ref.ref_ratios), dtype=np.int64) for name, ref in self._references()}
        predictions = labeled = correct = 0
        for slot in self._slots.values():
            self._bin(slot)
            predictions += slot.predictions
            labeled += slot.labeled
            correct += slot.correct
            for name, counts in slot.counts.items():
                totals[name] += counts
        drift = {name: psi(ref.ref_ratios, totals[name]) for name, ref in self._references()}
        return WindowSnapshot(predictions, labeled, correct, totals, drift)

    def _references(self) -> list[tuple[str, Any]]:
        return [*self.baseline.numeric.items(), *self.baseline.categorical.items()]

    def _bin(self, slot: _Slot) -> None:
        if not slot.unbinned:
            return
        rows, slot.unbinned = slot.unbinned, []
        for name, ref in self.baseline.numeric.items():
            self._add_counts(slot, name, ref.bin_index(_numeric_column(rows, name)), len(ref.ref_ratios))
        for name, ref in self.baseline.categorical.items():
            self._add_counts(slot, name, ref.bin_index(_categorical_column(rows, name)), len(ref.ref_ratios))

    @staticmethod
    def _add_counts(slot: _Slot, name: str, bins: np.ndarray, n_bins: int) -> None:
        counts = np.bincount(np.asarray(bins, dtype=np.int64), minlength=n_bins)
        if name in slot.counts:
            slot.counts[name] += counts
        else:
            slot.counts[name] = counts

    def _evict_pending(self, oldest: int) -> None:
        """Forget predictions that left the window, and the oldest ones beyond `max_pending`."""
        pending = self._pending
        while pending:
            prediction_id = next(iter(pending))
            key, _ = pending[prediction_id]
            if key >= oldest and len(pending) <= self.max_pending:
                break
            del pending[prediction_id]
            self.evicted_pending += 1
