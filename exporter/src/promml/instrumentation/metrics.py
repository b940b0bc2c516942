"""The model-side metrics (`ml_predictions_total` and friends), created once per registry.

Several decorated functions may share a registry, and prometheus_client refuses to register a name twice, so the
metric objects live here and each decorated function binds its own label children once, at decoration time:
binding per call would cost more than the rest of the instrumentation together.
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Sequence

from prometheus_client import REGISTRY, CollectorRegistry, Counter, Gauge, Histogram

from .._version import __version__
from .fast_histogram import FastHistogram

SCORE_BUCKETS = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0)
"""Scores are probabilities in 0..1; ten equal buckets make the score distribution readable as a heatmap."""

LATENCY_BUCKETS = Histogram.DEFAULT_BUCKETS
"""prometheus_client's defaults (5 ms to 10 s) cover typical model latencies and the 200/500 ms alert thresholds."""

BATCH_SIZE_BUCKETS = (1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10000)
"""Rows per call, from single-row online serving to large offline batches."""

MAX_CLASS_LABELS = 20
"""Distinct predicted classes exported per model; more become `class="other"` so a regression model mistaken for
a classifier, or free-text outputs, cannot explode the number of series."""

OTHER_CLASS = "other"
MODEL_LABELS = ("model_name", "model_version")


class InstrumentMetrics:
    """The metric families of one registry."""

    def __init__(self, registry: CollectorRegistry, latency_buckets: Sequence[float],
                 score_buckets: Sequence[float]) -> None:
        self.latency_buckets = tuple(float(b) for b in latency_buckets)
        self.score_buckets = tuple(float(b) for b in score_buckets)
        self.predictions = Counter(
            "ml_predictions", "Rows predicted (a batch of N rows counts N).", MODEL_LABELS, registry=registry
        )
        self.latency = Histogram(
            "ml_prediction_latency_seconds", "Wall time of one predict call, whatever its batch size.",
            MODEL_LABELS, buckets=self.latency_buckets, registry=registry,
        )
        self.score = Histogram(
            "ml_prediction_score", "Score of each predicted row.", MODEL_LABELS, buckets=self.score_buckets,
            registry=registry,
        )
        self.batch_size = Histogram(
            "ml_prediction_batch_size_rows", "Rows per predict call.", MODEL_LABELS, buckets=BATCH_SIZE_BUCKETS,
            registry=registry,
        )
        self.in_flight = Gauge(
            "ml_predictions_in_flight", "Predict calls running now.", MODEL_LABELS, registry=registry,
            multiprocess_mode="livesum",
        )
        self.classes = Counter(
            "ml_predicted_class", f"Rows predicted per class (at most {MAX_CLASS_LABELS} classes, then 'other').",
            (*MODEL_LABELS, "class"), registry=registry,
        )
        self.errors = Counter(
            "ml_prediction_errors", "Predict calls that raised, by exception class.", (*MODEL_LABELS, "error_type"),
            registry=registry,
        )
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


class BoundMetrics:
    """The label children of one model name and version, bound once."""

    __slots__ = (
        "_class_children", "_class_lock", "batch_size", "families", "in_flight", "labels", "latency", "log_dropped",
        "log_failed", "log_sampled_out", "log_written", "predictions", "score",
    )

    def __init__(self, families: InstrumentMetrics, model_name: str, model_version: str) -> None:
        self.families = families
        self.labels = (model_name, model_version)
        self.predictions = families.predictions.labels(*self.labels)
        self.latency = FastHistogram(families.latency.labels(*self.labels))
        self.score = FastHistogram(families.score.labels(*self.labels))
        self.batch_size = FastHistogram(families.batch_size.labels(*self.labels))
        self.in_flight = families.in_flight.labels(*self.labels)
        self.log_written = families.log_records.labels(*self.labels, "written")
        self.log_dropped = families.log_records.labels(*self.labels, "dropped")
        self.log_sampled_out = families.log_records.labels(*self.labels, "sampled_out")
        self.log_failed = families.log_records.labels(*self.labels, "failed")
        self._class_children: dict[object, Counter] = {}
        self._class_lock = threading.Lock()
        families.info.labels(*self.labels, __version__).set(1)

    def predicted_class(self, label: object) -> Counter:
        """The counter child of a predicted class, binding at most MAX_CLASS_LABELS classes."""
        child = self._class_children.get(label)
        if child is None:
            with self._class_lock:
                child = self._class_children.get(label)
                if child is None:
                    named = len(self._class_children) < MAX_CLASS_LABELS
                    child = self.families.classes.labels(*self.labels, str(label) if named else OTHER_CLASS)
                    if named:
                        self._class_children[label] = child
        return child

    def error(self, error_type: str) -> None:
        self.families.errors.labels(*self.labels, error_type).inc()

    def monitoring_error(self, stage: str) -> None:
        self.families.monitoring_errors.labels(*self.labels, stage).inc()


_families: weakref.WeakKeyDictionary[CollectorRegistry, InstrumentMetrics] = weakref.WeakKeyDictionary()
_families_lock = threading.Lock()


def bind_metrics(
    model_name: str, model_version: str, registry: CollectorRegistry = REGISTRY, *,
    latency_buckets: Sequence[float] = LATENCY_BUCKETS, score_buckets: Sequence[float] = SCORE_BUCKETS,
) -> BoundMetrics:
    """The bound metrics of a model in a registry, creating the families on first use.

    Buckets are per registry: a second model asking for different buckets in the same registry is an error.
    """
    with _families_lock:
        families = _families.get(registry)
        if families is None:
            families = _families[registry] = InstrumentMetrics(registry, latency_buckets, score_buckets)
    wanted = (tuple(float(b) for b in latency_buckets), tuple(float(b) for b in score_buckets))
    if wanted != (families.latency_buckets, families.score_buckets):
        raise ValueError("this registry's ml_prediction_* histograms already have other buckets; use the same "
                         "latency_buckets/score_buckets for every model in one registry")
    return BoundMetrics(families, model_name, model_version)
