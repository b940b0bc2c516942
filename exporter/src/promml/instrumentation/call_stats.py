"""The per-call metrics of a monitored function, updated under one lock and exposed by a custom collector.

Why not prometheus_client's own metric objects: each of them takes a lock per operation (a counter increment one,
a histogram observation two, after a linear scan of the buckets), so recording what promml records per call
(in-flight, latency, rows, batch size, score, predicted class) costs about ten lock round trips. Here a call
costs one: `CallStats.finish_row` / `finish_batch` update plain Python numbers under a single lock, buckets are
found by bisection, and `CallStatsCollector.collect` yields the same families, names, labels and values that the
prometheus_client objects would (checked sample by sample in tests/test_call_stats.py).

In-flight calls are counted without a lock at all: `itertools.count` is advanced atomically by the interpreter when
a call starts, and the finishing side counts under the lock it takes anyway; in-flight = started - finished.

This path is for single-process servers. Under a pre-fork server (`PROMETHEUS_MULTIPROC_DIR`), every value must
live in prometheus_client's memory-mapped files so that a scrape can merge the workers; `ClientCallStats` then
records the same calls through prometheus_client's objects (see `metrics.bind_call_stats`).
"""

from __future__ import annotations

import itertools
import math
import threading
import time
from bisect import bisect_left
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

import numpy as np
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.samples import Sample
from prometheus_client.utils import floatToGoString

MAX_CLASS_LABELS = 20
"""Distinct predicted classes exported per model; more become `class="other"` so a regression model mistaken for
a classifier, or free-text outputs, cannot explode the number of series."""
OTHER_CLASS = "other"
MODEL_LABELS = ("model_name", "model_version")

PREDICTIONS = ("ml_predictions", "Rows predicted (a batch of N rows counts N).")
LATENCY = ("ml_prediction_latency_seconds", "Wall time of one predict call, whatever its batch size.")
SCORE = ("ml_prediction_score", "Score of each predicted row.")
BATCH_SIZE = ("ml_prediction_batch_size_rows", "Rows per predict call.")
IN_FLIGHT = ("ml_predictions_in_flight", "Predict calls running now.")
CLASSES = ("ml_predicted_class", f"Rows predicted per class (at most {MAX_CLASS_LABELS} classes, then 'other').")
ERRORS = ("ml_prediction_errors", "Predict calls that raised, by exception class.")
"""(name, help) of every per-call family: one definition for both recording paths, so their expositions match."""


def class_label(prediction: Any) -> str:
    """The `class` label value of a prediction, as prometheus_client would render the label (str())."""
    return str(prediction)


class _Buckets:
    """Bucket counts (not cumulative) and the sum of one histogram; the owner's lock guards them."""

    __slots__ = ("bounds", "bounds_array", "counts", "total")

    def __init__(self, bounds: Sequence[float]) -> None:
        self.bounds = [float(bound) for bound in bounds]
        if not self.bounds or self.bounds[-1] != math.inf:
            self.bounds.append(math.inf)
        self.bounds_array = np.asarray(self.bounds)
        self.counts = [0] * len(self.bounds)
        self.total = 0.0

    def cumulative(self) -> list[tuple[str, float]]:
        return [(floatToGoString(bound), float(count))
                for bound, count in zip(self.bounds, itertools.accumulate(self.counts), strict=True)]


class CallStats:
    """Everything recorded per call of one model name and version, in one process."""

    __slots__ = (
        "_batch",
        "_class_keys",
        "_class_lock",
        "_classes",
        "_errors",
        "_finished",
        "_latency",
        "_lock",
        "_one_row_bucket",
        "_rows",
        "_score",
        "_started",
        "created",
        "labels",
    )

    def __init__(self, labels: tuple[str, str], latency_buckets: Sequence[float], score_buckets: Sequence[float],
                 batch_buckets: Sequence[float]) -> None:
        self.labels = labels
        self.created = time.time()
        self._lock = threading.Lock()
        self._class_lock = threading.Lock()
        self._started = itertools.count()
        self._finished = 0
        self._rows = 0.0
        self._latency = _Buckets(latency_buckets)
        self._score = _Buckets(score_buckets)
        self._batch = _Buckets(batch_buckets)
        self._one_row_bucket = bisect_left(self._batch.bounds, 1.0)
        self._classes: dict[Any, float] = {}
        self._class_keys: dict[Any, str] = {}
        self._errors: dict[str, float] = {}

    # --- recording (the calling thread) ------------------------------------------------------------------------

    def start(self) -> None:
        """A call began: lock-free (the interpreter advances a C-level counter atomically)."""
        next(self._started)

    def finish_abandoned(self) -> None:
        """The call ended by a BaseException that is not an Exception (cancelled, interrupted): in-flight only."""
        with self._lock:
            self._finished += 1

    def finish_failed(self, latency: float, error_type: str) -> None:
        latency_buckets = self._latency
        with self._lock:
            self._finished += 1
            latency_buckets.counts[bisect_left(latency_buckets.bounds, latency)] += 1
            latency_buckets.total += latency
            self._errors[error_type] = self._errors.get(error_type, 0.0) + 1.0

    def finish_latency(self, latency: float) -> None:
        """The call succeeded but its rows could not be read (counted elsewhere as a monitoring error)."""
        latency_buckets = self._latency
        with self._lock:
            self._finished += 1
            latency_buckets.counts[bisect_left(latency_buckets.bounds, latency)] += 1
            latency_buckets.total += latency

    def finish_row(self, latency: float, score: float | None, prediction: Any, is_class: bool) -> None:
        """One row predicted: the common online-serving call.

        Everything that can raise (the score's conversion, the class's label) happens before the lock is taken, so
        the locked part is plain arithmetic; the lock is taken with acquire/release rather than `with`, which costs
        twice as much on CPython 3.11 at this scale (try/finally still releases it whatever happens)."""
        latency_buckets, batch = self._latency, self._batch
        score_index = -1
        if score is not None:
            score = float(score)
            if score == score:  # NaN would poison the sum, as in FastHistogram
                score_index = bisect_left(self._score.bounds, score)
        key = None
        if is_class:
            key = self._class_keys.get(prediction)
            if key is None:
                key = self._new_class_key(prediction)
        latency_index = bisect_left(latency_buckets.bounds, latency)
        lock = self._lock
        lock.acquire()
        try:
            self._finished += 1
            latency_buckets.counts[latency_index] += 1
            latency_buckets.total += latency
            self._rows += 1
            batch.counts[self._one_row_bucket] += 1
            batch.total += 1.0
            if score_index >= 0:
                scores = self._score
                scores.counts[score_index] += 1
                scores.total += score  # type: ignore[operator]
            if key is not None:
                classes = self._classes
                classes[key] = classes.get(key, 0.0) + 1.0
        finally:
            lock.release()

    def finish_batch(self, latency: float, rows: int, scores: np.ndarray | None,
                     class_counts: Iterable[tuple[Any, int]]) -> None:
        """A batch: buckets are found with numpy before the lock is taken, so it is held for a few adds."""
        score_counts, score_sum = None, 0.0
        if scores is not None:
            scores = scores[~np.isnan(scores)]
            if scores.size:
                score_counts = np.bincount(np.searchsorted(self._score.bounds_array, scores, side="left"),
                                           minlength=len(self._score.bounds)).tolist()
                score_sum = float(scores.sum())
        classes = [(self._class_keys.get(label) or self._new_class_key(label), float(count))
                   for label, count in class_counts]
        latency_buckets, batch = self._latency, self._batch
        latency_index, batch_index = bisect_left(latency_buckets.bounds, latency), bisect_left(batch.bounds, rows)
        with self._lock:
            self._finished += 1
            latency_buckets.counts[latency_index] += 1
            latency_buckets.total += latency
            self._rows += rows
            batch.counts[batch_index] += 1
            batch.total += rows
            if score_counts is not None:
                counts = self._score.counts
                for index, count in enumerate(score_counts):
                    counts[index] += count
                self._score.total += score_sum
            totals = self._classes
            for key, count in classes:
                totals[key] = totals.get(key, 0.0) + count

    def _new_class_key(self, label: Any) -> str:
        """The first MAX_CLASS_LABELS distinct predictions are named, later ones count as `other`. Under its own
        lock, so two threads seeing a new class at once cannot both take the last named place."""
        with self._class_lock:
            key = self._class_keys.get(label)
            if key is not None:
                return key
            if len(self._class_keys) < MAX_CLASS_LABELS:
                key = class_label(label)
                self._class_keys[label] = key
                return key
            return OTHER_CLASS

    # --- reading (the scraping thread) -------------------------------------------------------------------------

    def snapshot(self) -> dict[str, Any]:
        """A consistent copy of every value, taken under the lock."""
        with self._lock:
            started = self._started.__reduce__()[1][0]  # the next value count() would return: calls started
            return {
                "in_flight": float(started - self._finished),
                "rows": self._rows,
                "latency": (self._latency.cumulative(), self._latency.total),
                "score": (self._score.cumulative(), self._score.total),
                "batch": (self._batch.cumulative(), self._batch.total),
                "classes": dict(self._classes),
                "errors": dict(self._errors),
            }


class CallStatsCollector:
    """Yields the per-call families of every model recorded in one registry."""

    def __init__(self, latency_buckets: Sequence[float], score_buckets: Sequence[float],
                 batch_buckets: Sequence[float]) -> None:
        self._buckets = (latency_buckets, score_buckets, batch_buckets)
        self._stats: dict[tuple[str, str], CallStats] = {}
        self._lock = threading.Lock()

    def stats(self, labels: tuple[str, str]) -> CallStats:
        """The one recorder of a model name and version: functions monitored under the same labels share it, as
        prometheus_client's `.labels()` children would."""
        with self._lock:
            stats = self._stats.get(labels)
            if stats is None:
                stats = self._stats[labels] = CallStats(labels, *self._buckets)
            return stats

    def describe(self) -> list[Metric]:
        """Names only, so the registry can refuse a clash with another collector at registration time."""
        return [
            CounterMetricFamily(*PREDICTIONS, labels=MODEL_LABELS),
            HistogramMetricFamily(*LATENCY, labels=MODEL_LABELS),
            HistogramMetricFamily(*SCORE, labels=MODEL_LABELS),
            HistogramMetricFamily(*BATCH_SIZE, labels=MODEL_LABELS),
            GaugeMetricFamily(*IN_FLIGHT, labels=MODEL_LABELS),
            CounterMetricFamily(*CLASSES, labels=(*MODEL_LABELS, "class")),
            CounterMetricFamily(*ERRORS, labels=(*MODEL_LABELS, "error_type")),
        ]

    def collect(self) -> Iterator[Metric]:
        with self._lock:
            all_stats = list(self._stats.values())
        predictions = CounterMetricFamily(*PREDICTIONS, labels=MODEL_LABELS)
        histograms = {key: HistogramMetricFamily(name, help_text, labels=MODEL_LABELS)
                      for key, (name, help_text) in (("latency", LATENCY), ("score", SCORE), ("batch", BATCH_SIZE))}
        in_flight = GaugeMetricFamily(*IN_FLIGHT, labels=MODEL_LABELS)
        classes = CounterMetricFamily(*CLASSES, labels=(*MODEL_LABELS, "class"))
        errors = CounterMetricFamily(*ERRORS, labels=(*MODEL_LABELS, "error_type"))
        for stats in all_stats:
            snapshot = stats.snapshot()
            labels = list(stats.labels)
            predictions.add_metric(labels, snapshot["rows"], created=stats.created)
            for key, family in histograms.items():
                buckets, total = snapshot[key]
                family.add_metric(labels, buckets, total)
                _add_created(family, stats.labels, stats.created)
            in_flight.add_metric(labels, snapshot["in_flight"])
            for name, count in snapshot["classes"].items():
                classes.add_metric([*labels, name], count, created=stats.created)
            for error_type, count in snapshot["errors"].items():
                errors.add_metric([*labels, error_type], count, created=stats.created)
        yield predictions
        yield histograms["latency"]
        yield histograms["score"]
        yield histograms["batch"]
        yield in_flight
        yield classes
        yield errors


def _add_created(family: Metric, labels: tuple[str, str], created: float) -> None:
    """prometheus_client's histograms expose `<name>_created` per child; HistogramMetricFamily has no argument."""
    family.samples.append(Sample(f"{family.name}_created", dict(zip(MODEL_LABELS, labels, strict=True)), created))
