"""Turns the exporter's published state into metric families at scrape time (no global gauges to keep in sync)."""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from .service import ExporterService

MODEL_LABELS = ("model_name", "model_version")


class ExporterCollector(Collector):
    """Yields `ml_drift_score`, `ml_model_accuracy`, window sizes and the exporter's own health counters."""

    def __init__(self, service: ExporterService) -> None:
        self.service = service

    def collect(self) -> Iterator[Metric]:
        service = self.service
        config = service.config
        model = [config.model_name, config.model_version]
        published = service.published

        records = CounterMetricFamily(
            "ml_exporter_records", "Log lines read, by log and status (ok, or why the line was skipped).",
            labels=[*MODEL_LABELS, "log", "status"],
        )
        for (log, status), count in sorted(service.record_counts.items()):
            records.add_metric([*model, log, status], count)
        yield records
        yield self._gauge(
            "ml_exporter_pending_predictions", "Predictions held in memory waiting for a label.", model,
            service.window.pending,
        )
        evicted = CounterMetricFamily(
            "ml_exporter_pending_evictions", "Predictions forgotten before a label came (left the window, or over "
            "max_pending_predictions).", labels=list(MODEL_LABELS),
        )
        evicted.add_metric(model, service.window.evicted_pending)
        yield evicted
        yield self._gauge("ml_window_seconds", "Length of the sliding window.", model, config.window_seconds)
        if published.snapshot is None or published.computed_at is None:
            return
        snapshot = published.snapshot
        yield self._gauge(
            "ml_exporter_last_recompute_timestamp_seconds", "Unix time of the last successful recompute.", model,
            published.computed_at,
        )
        yield self._gauge("ml_window_predictions", "Prediction rows in the window.", model, snapshot.predictions)
        yield self._gauge(
            "ml_window_labeled_predictions", "Prediction rows in the window that have a label.", model,
            snapshot.labeled,
        )
        if snapshot.accuracy is not None:
            yield self._gauge(
                "ml_model_accuracy", "Accuracy of the window's labelled predictions.", model, snapshot.accuracy,
            )
        drift = GaugeMetricFamily(
            "ml_drift_score", "PSI of the feature's window distribution against the baseline.",
            labels=[*MODEL_LABELS, "feature_name"],
        )
        for feature, value in sorted(snapshot.drift.items()):
            if value == value:  # NaN (an empty window) is left out rather than exported
                drift.add_metric([*model, feature], value)
        yield drift

    @staticmethod
    def _gauge(name: str, documentation: str, model: list[str], value: float) -> GaugeMetricFamily:
        gauge = GaugeMetricFamily(name, documentation, labels=list(MODEL_LABELS))
        gauge.add_metric(model, value)
        return gauge
