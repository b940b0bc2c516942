"""The model-side metrics (`ml_predictions_total` and friends), created once per registry.

Several decorated functions may share a registry, and prometheus_client refuses to register a name twice, so the
metric objects live here and each decorated function binds its own label children once, at decoration time:
binding per call would cost more than the rest of the instrumentation together.
"""

from __future__ import annotations

import threading
import weakref

from prometheus_client import REGISTRY, CollectorRegistry, Counter, Histogram

SCORE_BUCKETS = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0)
"""Scores are probabilities in 0..1; ten equal buckets make the score distribution readable as a heatmap."""

LATENCY_BUCKETS = Histogram.DEFAULT_BUCKETS
"""prometheus_client's defaults (5 ms to 10 s) cover typical model latencies and the 200/500 ms alert thresholds."""

MODEL_LABELS = ("model_name", "model_version")


class InstrumentMetrics:
    """The metric families of one registry."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.predictions = Counter(
            "ml_predictions", "Rows predicted (a batch of N rows counts N).", MODEL_LABELS, registry=registry
        )
        self.latency = Histogram(
            "ml_prediction_latency_seconds",
            "Wall time of one predict call, whatever its batch size.",
            MODEL_LABELS,
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )
        self.score = Histogram(
            "ml_prediction_score", "Score of each predicted row.", MODEL_LABELS, buckets=SCORE_BUCKETS,
            registry=registry,
        )
        self.errors = Counter(
            "ml_prediction_errors",
            "Predict calls that raised, by exception class.",
            (*MODEL_LABELS, "error_type"),
            registry=registry,
        )
        self.log_records = Counter(
            "ml_prediction_log_records",
            "Rows handed to the prediction log, by outcome (written, dropped when the queue is full, failed).",
            (*MODEL_LABELS, "outcome"),
            registry=registry,
        )
        self.monitoring_errors = Counter(
            "ml_monitoring_errors",
            "Failures inside the instrumentation itself, by stage; the predict call is never affected.",
            (*MODEL_LABELS, "stage"),
            registry=registry,
        )


class BoundMetrics:
    """The label children of one model name and version, bound once."""

    __slots__ = (
        "families",
        "labels",
        "latency",
        "log_dropped",
        "log_failed",
        "log_written",
        "predictions",
        "score",
    )

    def __init__(self, families: InstrumentMetrics, model_name: str, model_version: str) -> None:
        self.families = families
        self.labels = (model_name, model_version)
        self.predictions = families.predictions.labels(*self.labels)
        self.latency = families.latency.labels(*self.labels)
        self.score = families.score.labels(*self.labels)
        self.log_written = families.log_records.labels(*self.labels, "written")
        self.log_dropped = families.log_records.labels(*self.labels, "dropped")
        self.log_failed = families.log_records.labels(*self.labels, "failed")

    def error(self, error_type: str) -> None:
        self.families.errors.labels(*self.labels, error_type).inc()

    def monitoring_error(self, stage: str) -> None:
        self.families.monitoring_errors.labels(*self.labels, stage).inc()


_families: weakref.WeakKeyDictionary[CollectorRegistry, InstrumentMetrics] = weakref.WeakKeyDictionary()
_families_lock = threading.Lock()


def bind_metrics(model_name: str, model_version: str, registry: CollectorRegistry = REGISTRY) -> BoundMetrics:
    """The bound metrics of a model in a registry, creating the families on first use."""
    with _families_lock:
        families = _families.get(registry)
        if families is None:
            families = _families[registry] = InstrumentMetrics(registry)
    return BoundMetrics(families, model_name, model_version)
