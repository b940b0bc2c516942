"""Sliding windows kept as per-time-slot state, so memory and recompute cost do not grow with their rows.

Every window (say 1h and 24h) is read from one series of `slot_seconds` slots, kept as long as the longest window
needs them. A slot holds, per feature, the rows in each baseline bin, missing / out-of-range / wrong-type counts and
a bounded reservoir of each numeric feature's values; the score's and the predicted class's bin counts, and the
scored rows per calibration bin (`estimated`, for the estimated performance); and the performance state of its
labelled rows (`performance.LabelStats`); and per segment feature and value, the rows, positive predictions,
labelled and right rows (`segments.SegmentTable`). All of it adds up, so a window's state is the sum of its slots'.
Rows arrive as columns (`columns.PredictionColumns`) and are binned in bulk with numpy, per slot, as they arrive: no
row is kept.

Predictions wait in a bounded table for their label (joined by `prediction_id`) for at most `label_ttl_seconds`,
itself at most the longest window: a label for a prediction that has left every window can change nothing.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from itertools import islice, takewhile
from typing import Any

import numpy as np

from ..baseline import Baseline, CategoricalReference, NumericReference
from ..records import Feedback, Prediction
from ..stats.drift import (
    chi_square_test,
    dataset_drift_share,
    jensen_shannon_distance,
    ks_and_wasserstein,
    ks_pvalues,
    ks_statistic,
    psi,
)
from . import state as st
from .checkpoint import LabelTotals
from .columns import MISSING_FEATURE, UNKNOWN_FEATURE, WRONG_TYPE, PredictionColumns, columns_of
from .config import ConfigError, WindowSpec
from .estimated import estimator_for
from .performance import LabelStats, ModelClasses, ScoreBins, class_key, unknown_rows, window_performance
from .reservoir import Reservoir
from .sampling import merged_sample, slot_capacity
from .segments import (
    DEFAULT_MAX_SEGMENT_VALUES,
    DEFAULT_MIN_SEGMENT_ROWS,
    MAX_VALUE_LENGTH,
    SLOT_VALUES_PER_REPORTED,
    SegmentTable,
    SegmentValue,
    parity_ratio,
    segment_values,
    window_values,
)

logger = logging.getLogger(__name__)

DATASET_DRIFT_PSI_THRESHOLD = 0.1
"""`ml_dataset_drift_share` is the share of features whose PSI is over this: the end of PSI's "no change" band
(< 0.1), the same level as the DataDriftDetected warning."""

MAX_UNKNOWN_FEATURES = 20
"""Unknown feature names reported per window (and kept per slot); the rest, and names over `MAX_VALUE_LENGTH`
characters, are counted under `OTHER_FEATURE`, so a client sending arbitrary keys cannot create unbounded series."""
OTHER_FEATURE = "__other__"

LABEL_DELAY_BUCKETS = (1.0, 5.0, 15.0, 60.0, 300.0, 900.0, 3600.0, 14400.0, 43200.0, 86400.0, 259200.0, 604800.0)
"""Upper bounds of `ml_label_delay_seconds`: one second to one week."""

SAMPLE_SEED = 0
"""Seeds the reservoirs and the merged samples, so the same rows give the same KS and Wasserstein values."""


def same_label(prediction: Any, label: Any) -> bool:
    """Two numbers compare by value (1 == 1.0 == True); otherwise by text, so a label "1" matches a prediction 1."""
    return class_key(prediction) == class_key(label)


VIOLATION_REASONS = (MISSING_FEATURE, WRONG_TYPE, UNKNOWN_FEATURE)

MAX_SAVED_SLOTS = 100_000
"""Slots a checkpoint may hold at most (a 24-hour window of 1-minute slots has 1,441)."""


@dataclass(frozen=True)
class SlotLayout:
    """What a slot's saved state must fit: the baseline's features and their bins, which numeric features keep a
    reservoir and of what capacity at most, the prediction references' bins and the calibration bins (both in
    `prediction_bins`), the ROC AUC score bins, the segment features and how many values a slot keeps of each."""

    bins: dict[str, int]
    numeric: frozenset[str]
    sampled: frozenset[str]
    capacity: int
    prediction_bins: dict[str, int]
    score_bins: int
    segments: tuple[str, ...]
    max_segment_values: int


@dataclass
class _Slot:
    predictions: int = 0
    counts: dict[str, np.ndarray] = field(default_factory=dict)
    missing: Counter[str] = field(default_factory=Counter)
    out_of_range: Counter[str] = field(default_factory=Counter)
    violations: Counter[tuple[str, str]] = field(default_factory=Counter)
    reservoirs: dict[str, Reservoir] = field(default_factory=dict)
    prediction_counts: dict[str, np.ndarray] = field(default_factory=dict)
    labels: LabelStats = field(default_factory=LabelStats)
    segments: dict[str, SegmentTable] = field(default_factory=dict)

    def to_state(self) -> dict[str, Any]:
        """Everything the slot holds, as JSON values (zero counts left out), for the checkpoint."""
        return {
            "predictions": self.predictions,
            "counts": {name: st.counts_to_state(counts) for name, counts in self.counts.items()},
            "missing": {name: n for name, n in self.missing.items() if n},
            "out_of_range": {name: n for name, n in self.out_of_range.items() if n},
            "violations": [[name, reason, n] for (name, reason), n in self.violations.items() if n],
            "reservoirs": {name: reservoir.to_state() for name, reservoir in self.reservoirs.items()},
            "prediction_counts": {name: st.counts_to_state(counts) for name, counts in self.prediction_counts.items()},
            "labels": self.labels.to_state(),
            "segments": {name: table.to_state() for name, table in self.segments.items()},
        }

    @classmethod
    def from_state(cls, state: Any, layout: SlotLayout, where: str) -> _Slot:
        """A slot as saved by `to_state`; InvalidState when it does not fit `layout` or a count is out of range
        (no part of a slot counts more rows than the slot has)."""
        rows = st.count(st.field(state, "predictions", where), f"{where}.predictions")
        slot = cls(predictions=rows)

        def known(name: Any, names: Any, at: str) -> str:
            if name not in names:
                raise st.InvalidState(f"{at}: {st.text(name, at)[:40]!r} is not a feature of this window")
            return str(name)

        counts = st.mapping(st.field(state, "counts", where), f"{where}.counts", len(layout.bins))
        for name, raw in counts.items():
            at = f"{where}.counts.{name}"
            slot.counts[known(name, layout.bins, at)] = st.counts_from_state(raw, at, layout.bins[name], rows)
            if int(slot.counts[name].sum()) > rows:
                raise st.InvalidState(f"{at}: more binned values than rows")
        for kind, names in (("missing", layout.bins), ("out_of_range", layout.numeric)):
            target = getattr(slot, kind)
            for name, n in st.mapping(st.field(state, kind, where), f"{where}.{kind}", len(names)).items():
                target[known(name, names, f"{where}.{kind}")] = st.count(n, f"{where}.{kind}.{name}", rows)
        violations = st.sequence(st.field(state, "violations", where), f"{where}.violations",
                                 2 * len(layout.bins) + MAX_UNKNOWN_FEATURES + 1)
        for index, entry in enumerate(violations):
            at = f"{where}.violations[{index}]"
            if not isinstance(entry, list) or len(entry) != 3 or entry[1] not in VIOLATION_REASONS:
                raise st.InvalidState(f"{at}: expected [feature, reason, rows] with a reason of "
                                      f"{', '.join(VIOLATION_REASONS)}")
            name = st.text(entry[0], at) if entry[1] == UNKNOWN_FEATURE else known(entry[0], layout.bins, at)
            slot.violations[(name, entry[1])] = st.count(entry[2], at, rows)
        if sum(reason == UNKNOWN_FEATURE for _, reason in slot.violations) > MAX_UNKNOWN_FEATURES + 1:
            raise st.InvalidState(f"{where}.violations: more than {MAX_UNKNOWN_FEATURES} unknown feature names")
        reservoirs = st.mapping(st.field(state, "reservoirs", where), f"{where}.reservoirs", len(layout.sampled))
        for name, raw in reservoirs.items():
            at = f"{where}.reservoirs.{name}"
            slot.reservoirs[known(name, layout.sampled, at)] = Reservoir.from_state(raw, layout.capacity, at, rows)
        predicted = st.mapping(st.field(state, "prediction_counts", where), f"{where}.prediction_counts",
                               len(layout.prediction_bins))
        for name, raw in predicted.items():
            at = f"{where}.prediction_counts.{name}"
            size = layout.prediction_bins[known(name, layout.prediction_bins, at)]
            slot.prediction_counts[name] = st.counts_from_state(raw, at, size, rows)
            if int(slot.prediction_counts[name].sum()) > rows:
                raise st.InvalidState(f"{at}: more binned values than rows")
        slot.labels = LabelStats.from_state(st.field(state, "labels", where), layout.score_bins, f"{where}.labels",
                                            rows)
        segments = st.mapping(st.field(state, "segments", where), f"{where}.segments", len(layout.segments))
        for name, raw in segments.items():
            at = f"{where}.segments.{name}"
            slot.segments[known(name, layout.segments, at)] = SegmentTable.from_state(
                raw, layout.max_segment_values, at, rows)
        return slot


@dataclass(frozen=True)
class WindowSnapshot:
    """One window's statistics at one moment. Per-feature dicts are keyed by feature name; NaN means no data."""

    name: str
    seconds: float
    task: str
    predictions: int
    labeled: int
    correct: int
    feature_counts: dict[str, np.ndarray]
    drift: dict[str, float]  # PSI
    js_distance: dict[str, float] = field(default_factory=dict)
    ks: dict[str, tuple[float, float]] = field(default_factory=dict)  # numeric: (D, p-value)
    chi2_pvalue: dict[str, float] = field(default_factory=dict)  # categorical
    wasserstein: dict[str, float] = field(default_factory=dict)  # numeric, in reference stds
    sample_sizes: dict[str, int] = field(default_factory=dict)  # numeric: values behind KS and Wasserstein
    prediction_counts: dict[str, np.ndarray] = field(default_factory=dict)  # "score", "class"
    prediction_psi: dict[str, float] = field(default_factory=dict)
    prediction_js_distance: dict[str, float] = field(default_factory=dict)
    dataset_drift_share: float = math.nan
    missing_ratio: dict[str, float] = field(default_factory=dict)
    out_of_range_ratio: dict[str, float] = field(default_factory=dict)
    unseen_ratio: dict[str, float] = field(default_factory=dict)
    schema_violations: dict[tuple[str, str], int] = field(default_factory=dict)  # (feature, reason) → rows
    performance: dict[str, float] = field(default_factory=dict)
    estimated_outcomes: dict[str, float] = field(default_factory=dict)  # expected tp, fp, tn, fn (or correct, ...)
    estimated_performance: dict[str, float] = field(default_factory=dict)  # from the scores alone (CBPE)
    binary_outcomes: dict[str, int] | None = None
    unknown_class_rows: int | None = None  # labelled rows with a label or prediction outside the model's classes
    scores_outside_unit: int = 0  # labelled rows whose score is outside [0, 1]
    segments: dict[str, dict[str, SegmentValue]] = field(default_factory=dict)  # feature → value → counts
    parity_ratio: dict[str, float] = field(default_factory=dict)  # feature → demographic parity ratio
    segment_overflow: dict[str, int] = field(default_factory=dict)  # feature → rows a full slot counted as other

    @property
    def accuracy(self) -> float | None:
        if self.task != "classification" or not self.labeled:
            return None
        return self.correct / self.labeled


def _ratio(numerator: float, denominator: float) -> float:
    return numerator / denominator if denominator else math.nan


def _split_categorical(values: Iterable[Any]) -> tuple[list[str], int]:
    """(present values as text, missing values: null, empty text, or absent)."""
    present: list[str] = []
    missing = 0
    for value in values:
        if value is None or value == "":
            missing += 1
        else:
            present.append(str(value))
    return present, missing


class SlidingWindow:
    """Per-slot state of the last predictions (by their timestamp) and the windows computed from it."""

    def __init__(
        self,
        baseline: Baseline,
        *,
        windows: Sequence[WindowSpec] | None = None,
        window_seconds: float | None = None,
        slot_seconds: float,
        max_pending: int = 200_000,
        label_ttl_seconds: float | None = None,
        sample_size: int = 1000,
        positive_class: Any = None,
        segments: Sequence[str] = (),
        max_segment_values: int = DEFAULT_MAX_SEGMENT_VALUES,
        min_segment_rows: int = DEFAULT_MIN_SEGMENT_ROWS,
    ) -> None:
        if windows is None:
            if window_seconds is None:
                raise ValueError("give windows or window_seconds")
            windows = [WindowSpec(f"{window_seconds:g}s", window_seconds)]
        self.baseline = baseline
        self.windows = tuple(windows)
        self.window_seconds = self.windows[0].seconds
        self.longest_seconds = max(spec.seconds for spec in self.windows)
        self.slot_seconds = slot_seconds
        self.max_pending = max_pending
        self.label_ttl_seconds = self.longest_seconds if label_ttl_seconds is None else label_ttl_seconds
        self.sample_size = sample_size
        self.task = getattr(baseline, "task", None) or "classification"
        self.model = resolve_model_classes(baseline, positive_class)
        self.positive_class = self.model.positive_class
        self.estimator = estimator_for(baseline, self.model)
        score_reference = getattr(baseline, "score", None)
        self.score_bins = ScoreBins.for_reference(None if score_reference is None else score_reference.sample)
        self._numeric = tuple(baseline.numeric)
        self._categorical = tuple(baseline.categorical)
        self._feature_names = frozenset([*self._numeric, *self._categorical])
        for name in segments:
            if name not in self._feature_names:
                raise ConfigError(f"segments: {name!r} is not a feature of the baseline; expected one of "
                                  f"{', '.join(sorted(self._feature_names))}")
        self.segments = tuple(segments)
        self.max_segment_values = max_segment_values
        self.min_segment_rows = min_segment_rows
        self._slots: dict[int, _Slot] = {}
        # prediction_id → (slot, prediction, score, timestamp[, the values its segments counted it under]), in the
        # order they arrived (see _evict_pending)
        self._pending: dict[str, tuple[Any, ...]] = {}
        self._seeds = np.random.default_rng(SAMPLE_SEED)
        self.evicted_pending = 0
        self._warned_score_range = False  # a score outside [0, 1] is logged once
        self.outcome_totals: Counter[str] = Counter()  # labels joined from new lines: correct / incorrect
        self.label_delay_counts = np.zeros(len(LABEL_DELAY_BUCKETS) + 1, dtype=np.int64)  # last: above every bound
        self.label_delay_sum = 0.0

    @property
    def pending(self) -> int:
        """Predictions still waiting for a label."""
        return len(self._pending)

    def _oldest_slot(self, now: float, seconds: float) -> int:
        return math.floor((now - seconds) / self.slot_seconds) + 1

    def add_predictions(self, predictions: Iterable[Prediction], now: float) -> int:
        """Add decoded records (see `add_columns`)."""
        return self.add_columns(columns_of(predictions, self._numeric, self._categorical), now)

    def add_columns(self, rows: PredictionColumns, now: float) -> int:
        """Bin rows into their slots and let them wait for their labels; returns how many fell inside the longest
        window (older ones are not counted)."""
        added = 0
        if len(rows):
            keys = np.floor(rows.timestamps / self.slot_seconds)  # as _oldest_slot does: `//` can differ by one
            inside = keys >= self._oldest_slot(now, self.longest_seconds)
            added = int(np.count_nonzero(inside))
            distinct = [int(key) for key in np.unique(keys[inside]).tolist()]
            if added == len(rows) and len(distinct) == 1:  # the usual case: a poll's rows in one slot
                self._pending.update(zip(rows.ids, self._bin(self._slot(distinct[0]), distinct[0], rows), strict=True))
            elif distinct:  # binned slot by slot; waiting for labels in the order they came, as one slot's rows do
                waiting: list[tuple[Any, ...] | None] = [None] * len(rows)
                for key in distinct:
                    positions = np.flatnonzero(keys == key)
                    entries = self._bin(self._slot(key), key, rows.take(positions))
                    for position, entry in zip(positions.tolist(), entries, strict=True):
                        waiting[position] = entry
                self._pending.update((rows.ids[row], waiting[row]) for row in np.flatnonzero(inside).tolist())
        self._evict_pending(now)
        return added

    def _slot(self, key: int) -> _Slot:
        slot = self._slots.get(key)
        if slot is None:
            slot = self._slots[key] = _Slot()
        return slot

    def add_feedback(self, feedback: Feedback, counted: bool = True) -> bool:
        """Join a label to its prediction; False when the prediction is unknown, already labelled or evicted.

        `counted` is False for feedback read again after a restart: it rebuilds the windows but is left out of the
        cumulative outcome counters and the label delay histogram, which counted it before."""
        entry = self._pending.pop(feedback.prediction_id, None)
        if entry is None:
            return False
        key, prediction, score, predicted_at, *segment_entry = entry  # segment values: see _count_segments
        slot = self._slots.get(key)
        right = same_label(prediction, feedback.label)
        if slot is not None:
            if self.task == "classification":
                slot.labels.add_classification(prediction, feedback.label, score, self.positive_class, self.score_bins)
                if score is not None and not 0.0 <= score <= 1.0 and not self._warned_score_range:
                    self._warned_score_range = True
                    logger.warning("promml exporter: score %r of prediction %r is outside [0, 1]; ROC AUC ranks "
                                   "scores as they are, and ml_window_score_outside_unit_rows counts them (log "
                                   "the positive class's probability to compare it with a baseline of "
                                   "probabilities)", score, feedback.prediction_id)
            else:
                slot.labels.add_regression(prediction, feedback.label)
            if segment_entry:
                for name, value in zip(self.segments, segment_entry[0], strict=True):
                    if value is not None:
                        slot.segments[name].add_label(value, right)
        if counted:
            if self.task == "classification":
                self.outcome_totals["correct" if right else "incorrect"] += 1
            delay = max(feedback.timestamp - predicted_at, 0.0)
            self.label_delay_counts[np.searchsorted(LABEL_DELAY_BUCKETS, delay, side="left")] += 1
            self.label_delay_sum += delay
        return True

    def label_totals(self) -> LabelTotals:
        """The cumulative label counters, for the checkpoint."""
        return LabelTotals(dict(self.outcome_totals), tuple(self.label_delay_counts.tolist()), self.label_delay_sum)

    def restore_label_totals(self, totals: LabelTotals) -> bool:
        """Go on from saved label counters; False (nothing restored) when they have other delay buckets."""
        if len(totals.delay_counts) != self.label_delay_counts.size:
            return False
        self.outcome_totals = Counter(totals.outcomes)
        self.label_delay_counts = np.array(totals.delay_counts, dtype=np.int64)
        self.label_delay_sum = totals.delay_sum
        return True

    # --- Checkpoint ------------------------------------------------------------------------------------------------

    def slot_layout(self) -> SlotLayout:
        baseline = self.baseline
        sampled = frozenset(name for name, ref in baseline.numeric.items() if getattr(ref, "sample", None) is not None)
        prediction_refs = (("score", getattr(baseline, "score", None)), ("class", getattr(baseline, "predicted_class",
                                                                                               None)))
        prediction_bins = {target: ref.ref_ratios.size for target, ref in prediction_refs if ref is not None}
        if self.estimator is not None:
            prediction_bins.update(dict.fromkeys(self.estimator.count_names, self.estimator.calibration.bins))
        return SlotLayout(
            bins={name: ref.ref_ratios.size for name, ref in {**baseline.numeric, **baseline.categorical}.items()},
            numeric=frozenset(baseline.numeric), sampled=sampled, capacity=self.sample_size,
            prediction_bins=prediction_bins,
            score_bins=self.score_bins.size, segments=self.segments,
            max_segment_values=self.max_segment_values * SLOT_VALUES_PER_REPORTED,
        )

    def layout_digest(self) -> str:
        """SHA-256 of everything the meaning of saved slots depends on: slot length, sample size, task, classes and
        positive class, segments, every bin of the baseline, the ROC AUC score bins and the calibration bins (only
        when there are some, so a baseline without calibration keeps the digest it had before them). Saved state
        with another digest is not restored."""
        baseline = self.baseline
        references = {**baseline.numeric, **baseline.categorical, "\0score": getattr(baseline, "score", None),
                      "\0class": getattr(baseline, "predicted_class", None)}
        bins = {name: None if ref is None else (
            [float(edge) for edge in ref.edges] if isinstance(ref, NumericReference) else list(ref.categories))
            for name, ref in references.items()}
        model_classes = None if self.model.classes is None else list(self.model.classes)
        described = [self.slot_seconds, self.sample_size, self.task, self.positive_class, model_classes,
                     list(self.segments), self.max_segment_values, sorted(self.slot_layout().sampled), bins,
                     self.score_bins.edges.tolist()]
        if self.estimator is not None:
            described.append(self.estimator.describe())
        return hashlib.sha256(json.dumps(described, sort_keys=True).encode()).hexdigest()

    def to_state(self) -> dict[str, Any]:
        """The window's state for the checkpoint: every slot, the predictions waiting for a label (in arrival
        order, so they are evicted in the same order), the pending evictions counter and the reservoir seeds.
        The pending table is columns: ids, times and scores (base64 float64, NaN for no score), and each
        prediction and segment value as an index into a table of the distinct ones."""
        ids, timestamps, scores, codes = [], [], [], []
        values: dict[tuple[str, Any], int] = {}
        segment_values: list[dict[Any, int]] = [{} for _ in self.segments]
        segment_codes: list[list[int]] = [[] for _ in self.segments]
        for prediction_id, (_, prediction, score, timestamp, *segment_entry) in self._pending.items():
            ids.append(prediction_id)
            timestamps.append(timestamp)
            scores.append(math.nan if score is None else score)
            codes.append(values.setdefault((type(prediction).__name__, prediction), len(values)))
            for feature, value in enumerate(segment_entry[0] if segment_entry else [None] * len(self.segments)):
                segment_codes[feature].append(-1 if value is None else
                                              segment_values[feature].setdefault(value, len(segment_values[feature])))
        return {
            "layout": self.layout_digest(),
            "slots": [[key, slot.to_state()] for key, slot in sorted(self._slots.items())],
            "pending": {
                "ids": ids,
                "timestamps": st.floats_to_state(np.asarray(timestamps, dtype=float)),
                "scores": st.floats_to_state(np.asarray(scores, dtype=float)),
                "values": [value for _, value in values],
                "predictions": codes,
                "segments": [[list(table), column] for table, column in zip(segment_values, segment_codes,
                                                                              strict=True)],
            },
            "evicted_pending": self.evicted_pending,
            "seeds": st.rng_to_state(self._seeds),
        }

    def restore_state(self, state: Any) -> None:
        """Take the state saved by `to_state`: InvalidState (and nothing changed) when it was saved for another
        layout or is not valid."""
        where = "checkpoint.window"
        if st.field(state, "layout", where) != self.layout_digest():
            raise st.InvalidState(f"{where}: saved for other slots, bins, segments or sample size")
        layout = self.slot_layout()
        slots: dict[int, _Slot] = {}
        limit = int(st.MAX_TIME // self.slot_seconds)
        for index, entry in enumerate(st.sequence(st.field(state, "slots", where), f"{where}.slots",
                                                  MAX_SAVED_SLOTS)):
            at = f"{where}.slots[{index}]"
            if not isinstance(entry, list) or len(entry) != 2:
                raise st.InvalidState(f"{at}: expected [slot, state]")
            key = st.integer(entry[0], f"{at}[0]", -limit, limit)
            if key in slots:
                raise st.InvalidState(f"{at}: slot {key} appears twice")
            slots[key] = _Slot.from_state(entry[1], layout, f"{at}[1]")
        pending = self._pending_from_state(st.field(state, "pending", where), f"{where}.pending")
        evicted = st.count(st.field(state, "evicted_pending", where), f"{where}.evicted_pending")
        seeds = st.rng_from_state(st.field(state, "seeds", where), f"{where}.seeds")
        self._slots, self._pending, self.evicted_pending, self._seeds = slots, pending, evicted, seeds

    def _pending_from_state(self, state: Any, where: str) -> dict[str, tuple[Any, ...]]:
        ids = st.sequence(st.field(state, "ids", where), f"{where}.ids", self.max_pending)
        rows = len(ids)
        timestamps = st.floats_from_state(st.field(state, "timestamps", where), f"{where}.timestamps", rows)
        scores = st.floats_from_state(st.field(state, "scores", where), f"{where}.scores", rows, finite=False)
        values = [st.scalar(value, f"{where}.values[{i}]")
                  for i, value in enumerate(st.sequence(st.field(state, "values", where), f"{where}.values", rows))]
        codes = st.sequence(st.field(state, "predictions", where), f"{where}.predictions", rows)
        segments = st.sequence(st.field(state, "segments", where), f"{where}.segments", len(self.segments))
        if timestamps.size != rows or scores.size != rows or len(codes) != rows or len(segments) != len(self.segments):
            raise st.InvalidState(f"{where}: columns of different lengths")
        if np.abs(timestamps).max(initial=0.0) > st.MAX_TIME or np.isinf(scores).any():
            raise st.InvalidState(f"{where}: a time or score out of range")
        segment_columns = []
        for feature, entry in enumerate(segments):
            at = f"{where}.segments[{feature}]"
            if not isinstance(entry, list) or len(entry) != 2:
                raise st.InvalidState(f"{at}: expected [values, codes]")
            table = [st.text(v, at) for v in st.sequence(entry[0], f"{at}[0]", rows)]
            column = st.sequence(entry[1], f"{at}[1]", rows)
            if len(column) != rows:
                raise st.InvalidState(f"{at}: columns of different lengths")
            if not all(type(code) is int and -1 <= code < len(table) for code in column):
                for code in column:
                    st.integer(code, at, -1, len(table) - 1)
            segment_columns.append([None if code == -1 else table[code] for code in column])
        st.texts(ids, f"{where}.ids")
        if len(set(ids)) != rows:
            raise st.InvalidState(f"{where}.ids: an id appears twice")
        if not all(type(code) is int and 0 <= code < len(values) for code in codes):
            for row, code in enumerate(codes):
                st.integer(code, f"{where}.predictions[{row}]", 0, len(values) - 1)
        keys = np.floor(timestamps / self.slot_seconds).astype(np.int64).tolist()
        predictions = [values[code] for code in codes]
        score_list = [None if math.isnan(score) else score for score in scores.tolist()]
        entries = zip(keys, predictions, score_list, timestamps.tolist(), strict=True)
        if self.segments:
            entries = ((*entry, counted_as) for entry, counted_as in zip(entries, zip(*segment_columns, strict=True),
                                                                           strict=True))
        return dict(zip(ids, entries, strict=True))

    def snapshots(self, now: float) -> list[WindowSnapshot]:
        """Drop expired slots and compute every window, the primary one first."""
        oldest = self._oldest_slot(now, self.longest_seconds)
        for key in [key for key in self._slots if key < oldest]:
            del self._slots[key]
        self._shrink_reservoirs()
        self._evict_pending(now)
        return [self._window(spec, now) for spec in self.windows]

    def snapshot(self, now: float) -> WindowSnapshot:
        """The primary window's snapshot (see `snapshots`)."""
        return self.snapshots(now)[0]

    def _shrink_reservoirs(self) -> None:
        """Let each slot's reservoirs keep only what a window's sample may draw from them (`sampling.slot_capacity`).

        A slot's reservoir starts with room for `sample_size` values (a burst in one slot can fill a whole window's
        sample). Every window holding a slot holds every later slot too, so once later slots have seen rows the
        slot's share of any sample is at most sample_size × its rows / the rows from it to now, and it keeps that
        (plus 4 standard deviations). With steady traffic over k slots this is about sample_size × ln k values in
        all, per numeric feature, instead of sample_size per slot."""
        keys = sorted(self._slots, reverse=True)
        for name in self._numeric:
            since = 0
            for key in keys:
                reservoir = self._slots[key].reservoirs.get(name)
                if reservoir is not None:
                    since += reservoir.seen
                    reservoir.shrink(slot_capacity(reservoir.seen, since, self.sample_size))

    # --- Binning -----------------------------------------------------------------------------------------------

    def _bin(self, slot: _Slot, key: int, rows: PredictionColumns) -> Iterable[tuple[Any, ...]]:
        """Count rows of one slot; each row's entry in the table of predictions waiting for a label: (slot,
        prediction, score, timestamp[, the segment values it was counted under])."""
        slot.predictions += len(rows)
        issues = Counter((name, reason) for _, name, reason in rows.issues)
        if issues:
            self._count_unknown(slot, rows.issues)
        for column, (name, ref) in enumerate(self.baseline.numeric.items()):
            values = rows.numeric[:, column]
            finite = np.isfinite(values)
            absent, wrong = issues[(name, MISSING_FEATURE)], issues[(name, WRONG_TYPE)]
            missing = values.size - int(np.count_nonzero(finite)) - absent - wrong
            self._bin_numeric(slot, name, ref, values[finite], missing, absent, wrong)
        for column, (name, ref) in enumerate(self.baseline.categorical.items()):
            present, missing = _split_categorical(rows.categorical[column])
            self._add_counts(slot.counts, name, ref.bin_index(present), ref.ref_ratios.size)
            slot.missing[name] += missing
            slot.violations[(name, MISSING_FEATURE)] += issues[(name, MISSING_FEATURE)]
        score_ref: NumericReference | None = getattr(self.baseline, "score", None)
        if score_ref is not None:
            scores = np.asarray([score for score in rows.scores if score is not None], dtype=float)
            self._add_counts(slot.prediction_counts, "score", score_ref.bin_index(scores), score_ref.ref_ratios.size)
        class_ref: CategoricalReference | None = getattr(self.baseline, "predicted_class", None)
        if class_ref is not None:
            classes = [value for value in rows.predictions if value is not None]
            self._add_counts(slot.prediction_counts, "class", class_ref.bin_index(classes), class_ref.ref_ratios.size)
        if self.estimator is not None:
            for name, binned in self.estimator.count(rows.predictions, rows.scores).items():
                if name in slot.prediction_counts:
                    slot.prediction_counts[name] += binned
                else:
                    slot.prediction_counts[name] = binned
        waiting = zip([key] * len(rows), rows.predictions, rows.scores, rows.timestamps.tolist(), strict=True)
        if not self.segments:
            return waiting
        segment_values_of_rows = self._count_segments(slot, rows)
        return ((*entry, values) for entry, values in zip(waiting, segment_values_of_rows, strict=True))

    def _bin_numeric(
        self, slot: _Slot, name: str, ref: NumericReference, numbers: np.ndarray, missing: int, absent: int, wrong: int
    ) -> None:
        """Count one slot's finite values of a numeric feature, and its missing, absent and wrong-typed ones."""
        self._add_counts(slot.counts, name, ref.bin_index(numbers), ref.ref_ratios.size)
        slot.missing[name] += missing + absent
        slot.violations[(name, "missing_feature")] += absent
        slot.violations[(name, "wrong_type")] += wrong
        summary = getattr(ref, "summary", None)
        if summary is not None and numbers.size:
            slot.out_of_range[name] += int(np.count_nonzero((numbers < summary.minimum) | (numbers > summary.maximum)))
        if getattr(ref, "sample", None) is not None:
            reservoir = slot.reservoirs.get(name)
            if reservoir is None:
                seed = int(self._seeds.integers(2**63))
                reservoir = slot.reservoirs[name] = Reservoir(self.sample_size, seed=seed)
            reservoir.add_many(numbers)

    def _count_segments(self, slot: _Slot, rows: PredictionColumns) -> Iterable[tuple[str | None, ...]]:
        """Count rows per segment value; each row's values (in `self.segments` order), for its label to count."""
        positive_class = self.positive_class
        if self.task == "classification":
            positive = np.fromiter((class_key(value) == positive_class for value in rows.predictions), dtype=bool,
                                   count=len(rows))
        else:
            positive = np.zeros(len(rows), dtype=bool)
        counted_as = []
        for name in self.segments:
            table = slot.segments.get(name)
            if table is None:
                table = slot.segments[name] = SegmentTable(self.max_segment_values * SLOT_VALUES_PER_REPORTED)
            if name in self._numeric:
                reference, raw = self.baseline.numeric[name], rows.numeric[:, self._numeric.index(name)].tolist()
            else:
                reference, raw = self.baseline.categorical[name], rows.categorical[self._categorical.index(name)]
            counted_as.append(table.add_rows(segment_values(reference, raw), positive))
        return zip(*counted_as, strict=True)

    def _count_unknown(self, slot: _Slot, issues: list[tuple[int, str, str]]) -> None:
        """Unknown feature names, at most MAX_UNKNOWN_FEATURES per slot (the first seen); the rest as other."""
        for _, name, reason in issues:
            if reason != UNKNOWN_FEATURE:
                continue
            kept = (name, UNKNOWN_FEATURE) in slot.violations
            crowded = sum(why == UNKNOWN_FEATURE for _, why in slot.violations) >= MAX_UNKNOWN_FEATURES
            fits = len(name) <= MAX_VALUE_LENGTH
            slot.violations[(name if kept or (fits and not crowded) else OTHER_FEATURE, UNKNOWN_FEATURE)] += 1

    @staticmethod
    def _add_counts(counts: dict[str, np.ndarray], name: str, bins: np.ndarray, n_bins: int) -> None:
        binned = np.bincount(np.asarray(bins, dtype=np.int64), minlength=n_bins)
        if name in counts:
            counts[name] += binned
        else:
            counts[name] = binned

    # --- Windows -----------------------------------------------------------------------------------------------

    def _window(self, spec: WindowSpec, now: float) -> WindowSnapshot:
        oldest = self._oldest_slot(now, spec.seconds)
        slots = [slot for key, slot in sorted(self._slots.items()) if key >= oldest]
        baseline = self.baseline
        references = {**baseline.numeric, **baseline.categorical}
        counts = {name: np.zeros(ref.ref_ratios.size, dtype=np.int64) for name, ref in references.items()}
        prediction_refs = {
            target: ref for target, ref in (("score", getattr(baseline, "score", None)),
                                            ("class", getattr(baseline, "predicted_class", None)))
            if ref is not None
        }
        prediction_counts = {t: np.zeros(ref.ref_ratios.size, dtype=np.int64) for t, ref in prediction_refs.items()}
        estimator = self.estimator
        calibration_counts = {} if estimator is None else {
            name: np.zeros(estimator.calibration.bins, dtype=np.int64) for name in estimator.count_names}
        missing: Counter[str] = Counter()
        out_of_range: Counter[str] = Counter()
        violations: Counter[tuple[str, str]] = Counter()
        labels = LabelStats()
        predictions = 0
        for slot in slots:
            predictions += slot.predictions
            for name, slot_counts in slot.counts.items():
                counts[name] += slot_counts
            for target, slot_counts in slot.prediction_counts.items():
                (prediction_counts if target in prediction_counts else calibration_counts)[target] += slot_counts
            missing.update(slot.missing)
            out_of_range.update(slot.out_of_range)
            violations.update(slot.violations)
            labels.merge(slot.labels)

        drift = {name: psi(ref.ref_ratios, counts[name]) for name, ref in references.items()}
        js = {name: jensen_shannon_distance(ref.ref_ratios, counts[name]) for name, ref in references.items()}
        chi2 = {name: chi_square_test(ref.ref_ratios, counts[name])[1] for name, ref in baseline.categorical.items()}
        ks_statistics: dict[str, tuple[float, int]] = {}
        distances: dict[str, float] = {}
        sample_sizes: dict[str, int] = {}
        rng = np.random.default_rng(SAMPLE_SEED)
        for name, ref in baseline.numeric.items():
            reference_sample = getattr(ref, "sample", None)
            if reference_sample is None or reference_sample.size == 0:
                continue
            parts = [(r.seen, r.values()) for r in (slot.reservoirs.get(name) for slot in slots) if r is not None]
            sample = np.sort(merged_sample(parts, self.sample_size, rng))
            sample_sizes[name] = int(sample.size)
            summary = getattr(ref, "summary", None)
            if summary is None:
                ks_statistics[name] = ks_statistic(reference_sample, sample)
            else:
                statistic, effective_n, distances[name] = ks_and_wasserstein(reference_sample, sample, summary.std)
                ks_statistics[name] = (statistic, effective_n)

        pvalues = ks_pvalues([d for d, _ in ks_statistics.values()], [n for _, n in ks_statistics.values()])
        ks = {name: (d, float(p)) for (name, (d, _)), p in zip(ks_statistics.items(), pvalues, strict=True)}
        summaries = {name: getattr(ref, "summary", None) for name, ref in baseline.numeric.items()}
        performance = window_performance(labels, self.task, self.model)
        estimated_outcomes, estimated_performance = ({}, {}) if estimator is None else \
            estimator.estimate(calibration_counts)
        classification = self.task == "classification"
        binary = None
        if classification and labels.labeled and self.model.binary:
            binary = labels.binary_outcomes(self.positive_class)
        segment_totals = {
            name: window_values((slot.segments[name] for slot in slots if name in slot.segments),
                                self.max_segment_values)
            for name in self.segments
        }
        segments = {name: values for name, (values, _) in segment_totals.items()}
        parity = (
            {name: parity_ratio(values, self.min_segment_rows) for name, values in segments.items()}
            if self.task == "classification" else {}
        )
        return WindowSnapshot(
            name=spec.name,
            seconds=spec.seconds,
            task=self.task,
            predictions=predictions,
            labeled=labels.labeled,
            correct=labels.correct,
            feature_counts=counts,
            drift=drift,
            js_distance=js,
            ks=ks,
            chi2_pvalue=chi2,
            wasserstein=distances,
            sample_sizes=sample_sizes,
            prediction_counts=prediction_counts,
            prediction_psi={t: psi(ref.ref_ratios, prediction_counts[t]) for t, ref in prediction_refs.items()},
            prediction_js_distance={
                t: jensen_shannon_distance(ref.ref_ratios, prediction_counts[t]) for t, ref in prediction_refs.items()
            },
            dataset_drift_share=dataset_drift_share(drift, DATASET_DRIFT_PSI_THRESHOLD),
            missing_ratio={name: _ratio(missing[name], predictions) for name in references},
            out_of_range_ratio={
                name: _ratio(out_of_range[name], counts[name].sum())
                for name, summary in summaries.items() if summary is not None
            },
            unseen_ratio={
                name: _ratio(counts[name][ref.unseen_index], counts[name].sum())
                for name, ref in baseline.categorical.items()
            },
            schema_violations=_capped_violations(violations),
            performance=performance,
            estimated_outcomes=estimated_outcomes,
            estimated_performance=estimated_performance,
            binary_outcomes=binary,
            unknown_class_rows=unknown_rows(labels, self.model) if classification else None,
            scores_outside_unit=labels.scores_outside_unit,
            segments=segments,
            segment_overflow={name: overflow for name, (_, overflow) in segment_totals.items()},
            parity_ratio=parity,
        )

    def _evict_pending(self, now: float) -> None:
        """Forget the oldest predictions beyond `max_pending`, and those older than the label time-to-live.

        The ids to forget are found in one pass from the front (insertion order, oldest first) and then removed:
        a dict walks over the holes its removals leave at the front on every new pass, until it is resized, so
        looking up the front entry once per removal would be quadratic."""
        oldest = self._oldest_slot(now, self.label_ttl_seconds)
        pending = self._pending
        excess = len(pending) - self.max_pending
        doomed = list(islice(pending, excess)) if excess > 0 else []
        expired = takewhile(lambda item: item[1][0] < oldest, islice(pending.items(), len(doomed), None))
        doomed.extend(prediction_id for prediction_id, _ in expired)
        for prediction_id in doomed:
            del pending[prediction_id]
        self.evicted_pending += len(doomed)


def _class_of_category(category: str) -> str:
    """A format-2 baseline's predicted-class category (`str()` of the value) as a class key: "1.0" is "1"."""
    try:
        return class_key(float(category))
    except ValueError:
        return category


def resolve_model_classes(baseline: Baseline, configured: Any) -> ModelClasses:
    """The model's classes and its one positive class, from the baseline and the config's `positive_class`.

    Format 3 records both. An older baseline's classes are its predicted-class categories when it has them (the
    positive class of two being the larger, as its builder took it), else unknown (binary assumed). A configured
    positive class that differs from the baseline's, or that is not one of its classes, is a ConfigError: the
    baseline's reference metrics and the windows' would be of different classes.
    """
    classes = getattr(baseline, "classes", None)
    recorded = getattr(baseline, "positive_class", None)
    predicted = getattr(baseline, "predicted_class", None)
    if classes is None and predicted is not None and getattr(baseline, "task", None) == "classification":
        classes = tuple(_class_of_category(category) for category in predicted.categories)
        if len(classes) == 2 and recorded is None:
            recorded = _larger(classes)
    wanted = None if configured is None else class_key(configured)
    if wanted is not None and recorded is not None and wanted != recorded:
        raise ConfigError(f"positive_class: the config says {wanted!r} but the baseline's positive class is "
                          f"{recorded!r}; set positive_class: {recorded} or rebuild the baseline with "
                          f"--positive-class {wanted}")
    positive = wanted or recorded or class_key(1)
    if classes is not None and len(classes) <= 2 and positive not in classes:
        raise ConfigError(f"positive_class: {positive!r} is not one of the model's classes in the baseline "
                          f"({', '.join(map(repr, classes))}); set positive_class to one of them")
    return ModelClasses(None if classes is None else tuple(classes), positive)


def _larger(classes: Sequence[str]) -> str:
    try:
        return max(classes, key=float)
    except ValueError:
        return max(classes)


def _capped_violations(violations: Counter[tuple[str, str]]) -> dict[tuple[str, str], int]:
    """Non-zero counts, with at most MAX_UNKNOWN_FEATURES unknown names (the most frequent), the rest as other."""
    kept = {key: n for key, n in violations.items() if n and key[1] != "unknown_feature"}
    unknown = sorted(
        ((n, name) for (name, reason), n in violations.items() if n and reason == "unknown_feature"
         and name != OTHER_FEATURE),
        key=lambda item: (-item[0], item[1]),
    )
    other = violations.get((OTHER_FEATURE, "unknown_feature"), 0) + sum(n for n, _ in unknown[MAX_UNKNOWN_FEATURES:])
    for n, name in unknown[:MAX_UNKNOWN_FEATURES]:
        kept[(name, "unknown_feature")] = n
    if other:
        kept[(OTHER_FEATURE, "unknown_feature")] = other
    return kept
