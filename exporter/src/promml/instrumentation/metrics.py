"""The model-side metrics (`ml_predictions_total` and friends), created once per registry.

Several decorated functions may share a registry, and prometheus_client refuses to register a name twice, so the
families live here, one set per registry, and each decorated function binds its own state once, at decoration
time: binding per call would cost more than the rest of the instrumentation together.

What a call records (rows, latency, score, batch size, class, in-flight, errors) goes through one of two
interchangeable recorders with the same methods (see `call_stats`):
- `CallStats`, one lock per call, exposed by a custom collector: the default in a single process;
- `ClientCallStats`, prometheus_client's own metric objects: under a pre-fork server (`PROMETHEUS_MULTIPROC_DIR`),
  where values must live in its memory-mapped files so that a scrape merges the workers.
The per-call families' names and help texts are defined once in `call_stats`, so both expose the same samples.
Rarer events (log outcomes, monitoring failures, the info gauge) use prometheus_client's objects on both paths.
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
from prometheus_client import REGISTRY, CollectorRegistry, Counter, Gauge, Histogram, values

from .._version import __version__
from .call_stats import (
    BATCH_SIZE,
    CLASSES,
    ERRORS,
    IN_FLIGHT,
    LATENCY,
    MAX_CLASS_LABELS,
    MODEL_LABELS,
    OTHER_CLASS,
    PREDICTIONS,
    SCORE,
    CallStats,
    CallStatsCollector,
    class_label,
)
from .fast_histogram import FastHistogram

__all__ = [
    "BATCH_SIZE_BUCKETS", "LATENCY_BUCKETS", "MAX_CLASS_LABELS", "OTHER_CLASS", "SCORE_BUCKETS", "BoundMetrics",
    "ClientCallStats", "bind_metrics", "multiprocess_mode",
]

SCORE_BUCKETS = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0)
"""Scores are probabilities in 0..1; ten equal buckets make the score distribution readable as a heatmap."""

LATENCY_BUCKETS = Histogram.DEFAULT_BUCKETS
"""prometheus_client's defaults (5 ms to 10 s) cover typical model latencies; the 250/500 ms alert thresholds are two of
its boundaries, so the alerts read exact shares of calls, not interpolation (tests/test_prometheus_config.py)."""

BATCH_SIZE_BUCKETS = (1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10000)
"""Rows per call, from single-row online serving to large offline batches."""



def multiprocess_mode() -> bool:
    """True when prometheus_client keeps values in per-process files (it decides once, when it is imported)."""
    return values.ValueClass is not values.MutexValue


class InstrumentMetrics:
    """The metric families of one registry.

    `per_call_client` chooses the recorder of the per-call families: prometheus_client's objects (True) or one
    `CallStatsCollector` (False); a registry holds one kind, since both would register the same names.
    """

    def __init__(self, registry: CollectorRegistry, latency_buckets: Sequence[float],
                 score_buckets: Sequence[float], per_call_client: bool) -> None:
        self.latency_buckets = tuple(float(b) for b in latency_buckets)
        self.score_buckets = tuple(float(b) for b in score_buckets)
        self.per_call_client = per_call_client
        self.call_collector: CallStatsCollector | None = None
        self._client_stats: dict[tuple[str, str], ClientCallStats] = {}
        self._client_stats_lock = threading.Lock()
        if per_call_client:
            self.predictions = Counter(*PREDICTIONS, MODEL_LABELS, registry=registry)
            self.latency = Histogram(*LATENCY, MODEL_LABELS, buckets=self.latency_buckets, registry=registry)
            self.score = Histogram(*SCORE, MODEL_LABELS, buckets=self.score_buckets, registry=registry)
            self.batch_size = Histogram(*BATCH_SIZE, MODEL_LABELS, buckets=BATCH_SIZE_BUCKETS, registry=registry)
            self.in_flight = Gauge(*IN_FLIGHT, MODEL_LABELS, registry=registry, multiprocess_mode="livesum")
            self.classes = Counter(*CLASSES, (*MODEL_LABELS, "class"), registry=registry)
            self.errors = Counter(*ERRORS, (*MODEL_LABELS, "error_type"), registry=registry)
        else:
            self.call_collector = CallStatsCollector(self.latency_buckets, self.score_buckets, BATCH_SIZE_BUCKETS)
            registry.register(self.call_collector)
        self.log_records = Counter(
            "ml_prediction_log_records",
            "Rows handed to the prediction log, by outcome (written, dropped when the queue is full, sampled_out, "
            "failed).",
            (*MODEL_LABELS, "outcome"), registry=registry,
        )
        self.monitoring_errors = Counter(
            "ml_monitoring_errors", "Failures inside the instrumentation itself, by stage; the predict call is never "
            "affected.", (*MODEL_LABELS, "stage"), registry=registry,
        )
        self.info = Gauge(
            "ml_model_info", "Always 1: the models this process serves, and the promml version instrumenting them.",
            (*MODEL_LABELS, "promml_version"), registry=registry, multiprocess_mode="max",
        )


    def client_stats(self, labels: tuple[str, str]) -> ClientCallStats:
        """One recorder per model name and version, so the class cap counts per model on both paths."""
        with self._client_stats_lock:
            stats = self._client_stats.get(labels)
            if stats is None:
                stats = self._client_stats[labels] = ClientCallStats(self, labels)
            return stats


class ClientCallStats:
    """The `CallStats` methods on prometheus_client's objects: exact under a multiprocess server, slower."""

    __slots__ = ("_class_children", "_class_lock", "batch_size", "families", "in_flight", "labels", "latency",
                 "predictions", "score")

    def __init__(self, families: InstrumentMetrics, labels: tuple[str, str]) -> None:
        self.families = families
        self.labels = labels
        self.predictions = families.predictions.labels(*labels)
        self.latency = FastHistogram(families.latency.labels(*labels))
        self.score = FastHistogram(families.score.labels(*labels))
        self.batch_size = FastHistogram(families.batch_size.labels(*labels))
        self.in_flight = families.in_flight.labels(*labels)
        self._class_children: dict[object, Counter] = {}
        self._class_lock = threading.Lock()

    def start(self) -> None:
        self.in_flight.inc()

    def finish_abandoned(self) -> None:
        self.in_flight.dec()

    def finish_failed(self, latency: float, error_type: str) -> None:
        self.in_flight.dec()
        self.latency.observe(latency)
        self.families.errors.labels(*self.labels, error_type).inc()

    def finish_latency(self, latency: float) -> None:
        self.in_flight.dec()
        self.latency.observe(latency)

    def finish_row(self, latency: float, score: float | None, prediction: Any, is_class: bool) -> None:
        self.finish_latency(latency)
        self.predictions.inc()
        self.batch_size.observe(1)
        if score is not None:
            self.score.observe(score)
        if is_class:
            self._class(prediction).inc()

    def finish_batch(self, latency: float, rows: int, scores: np.ndarray | None,
                     class_counts: Iterable[tuple[Any, int]]) -> None:
        self.finish_latency(latency)
        self.predictions.inc(rows)
        self.batch_size.observe(rows)
        if scores is not None:
            self.score.observe_many(scores)
        for label, count in class_counts:
            self._class(label).inc(count)

    def _class(self, label: object) -> Counter:
        """The counter child of a predicted class, binding at most MAX_CLASS_LABELS classes."""
        child = self._class_children.get(label)
        if child is None:
            with self._class_lock:
                child = self._class_children.get(label)
                if child is None:
                    named = len(self._class_children) < MAX_CLASS_LABELS
                    child = self.families.classes.labels(*self.labels, class_label(label) if named else OTHER_CLASS)
                    if named:
                        self._class_children[label] = child
        return child


class BoundMetrics:
    """What one model name and version records: its per-call recorder and its log and failure counters."""

    __slots__ = ("calls", "families", "labels", "log_dropped", "log_failed", "log_sampled_out", "log_written")

    def __init__(self, families: InstrumentMetrics, model_name: str, model_version: str) -> None:
        self.families = families
        self.labels = (model_name, model_version)
        self.calls: CallStats | ClientCallStats
        if families.call_collector is not None:
            self.calls = families.call_collector.stats(self.labels)
        else:
            self.calls = families.client_stats(self.labels)
        self.log_written = families.log_records.labels(*self.labels, "written")
        self.log_dropped = families.log_records.labels(*self.labels, "dropped")
        self.log_sampled_out = families.log_records.labels(*self.labels, "sampled_out")
        self.log_failed = families.log_records.labels(*self.labels, "failed")
        families.info.labels(*self.labels, __version__).set(1)

    def monitoring_error(self, stage: str) -> None:
        self.families.monitoring_errors.labels(*self.labels, stage).inc()


_families: weakref.WeakKeyDictionary[CollectorRegistry, InstrumentMetrics] = weakref.WeakKeyDictionary()
_families_lock = threading.Lock()


def bind_metrics(
    model_name: str, model_version: str, registry: CollectorRegistry = REGISTRY, *,
    latency_buckets: Sequence[float] = LATENCY_BUCKETS, score_buckets: Sequence[float] = SCORE_BUCKETS,
    per_call_client: bool | None = None,
) -> BoundMetrics:
    """The bound metrics of a model in a registry, creating the families on first use.

    Buckets are per registry: a second model asking for different buckets in the same registry is an error.
    `per_call_client` defaults to `multiprocess_mode()`; a registry keeps the recorder it was first bound with.
    """
    with _families_lock:
        families = _families.get(registry)
        if families is None:
            client = multiprocess_mode() if per_call_client is None else per_call_client
            families = _families[registry] = InstrumentMetrics(registry, latency_buckets, score_buckets, client)
    wanted = (tuple(float(b) for b in latency_buckets), tuple(float(b) for b in score_buckets))
    if wanted != (families.latency_buckets, families.score_buckets):
        raise ValueError("this registry's ml_prediction_* histograms already have other buckets; use the same "
                         "latency_buckets/score_buckets for every model in one registry")
    return BoundMetrics(families, model_name, model_version)
