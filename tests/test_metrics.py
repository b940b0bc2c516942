"""The model-side metric families: one set per registry, bound per model, with bounded class labels, on both
recorders (one lock per call by default, prometheus_client's objects under a multiprocess server)."""

from __future__ import annotations

import pytest
from prometheus_client import CollectorRegistry

from promml.instrumentation.call_stats import CallStats
from promml.instrumentation.metrics import (
    MAX_CLASS_LABELS,
    OTHER_CLASS,
    ClientCallStats,
    bind_metrics,
    multiprocess_mode,
)

A = {"model_name": "a", "model_version": "1"}


@pytest.fixture(params=[False, True], ids=["one-lock", "prometheus-client"])
def per_call_client(request: pytest.FixtureRequest) -> bool:
    return request.param


def test_the_default_recorder_is_the_one_lock_path_in_one_process(registry):
    assert not multiprocess_mode()
    assert isinstance(bind_metrics("a", "1", registry).calls, CallStats)
    assert isinstance(bind_metrics("a", "1", CollectorRegistry(), per_call_client=True).calls, ClientCallStats)


def test_two_models_share_the_families_of_a_registry(registry, per_call_client):
    first = bind_metrics("a", "1", registry, per_call_client=per_call_client)
    second = bind_metrics("b", "2", registry)
    assert first.families is second.families
    assert type(first.calls) is type(second.calls)  # the registry keeps the recorder it was first bound with
    first.calls.start()
    first.calls.finish_batch(0.01, 3, None, [])
    second.calls.start()
    second.calls.finish_row(0.01, None, 1, True)
    assert registry.get_sample_value("ml_predictions_total", A) == 3
    assert registry.get_sample_value("ml_predictions_total", {"model_name": "b", "model_version": "2"}) == 1


def test_custom_buckets_and_a_conflict_is_an_error(registry, per_call_client):
    metrics = bind_metrics("a", "1", registry, latency_buckets=(0.01, 0.1), score_buckets=(0.5, 1.0),
                           per_call_client=per_call_client)
    metrics.calls.start()
    metrics.calls.finish_latency(0.05)
    assert registry.get_sample_value("ml_prediction_latency_seconds_bucket", {**A, "le": "0.01"}) == 0
    assert registry.get_sample_value("ml_prediction_latency_seconds_bucket", {**A, "le": "0.1"}) == 1
    with pytest.raises(ValueError, match="other buckets"):
        bind_metrics("b", "1", registry)
    assert bind_metrics("b", "1", registry, latency_buckets=[0.01, 0.1], score_buckets=[0.5, 1]) is not None


def test_class_labels_are_capped(registry, per_call_client):
    metrics = bind_metrics("a", "1", registry, per_call_client=per_call_client)
    for label in range(MAX_CLASS_LABELS + 5):
        metrics.calls.start()
        metrics.calls.finish_row(0.001, None, label, True)
    metrics.calls.start()
    metrics.calls.finish_batch(0.001, 3, None, [(0, 1), (MAX_CLASS_LABELS + 7, 2)])
    counts = {
        s.labels["class"]: s.value
        for family in registry.collect() if family.name == "ml_predicted_class" for s in family.samples
        if s.name.endswith("_total")
    }
    assert len(counts) == MAX_CLASS_LABELS + 1
    assert counts["0"] == 2
    assert counts[OTHER_CLASS] == 5 + 2


def test_info_metric_names_the_model(registry, per_call_client):
    bind_metrics("a", "1", registry, per_call_client=per_call_client)
    assert registry.get_sample_value("ml_model_info", {**A, "promml_version": "0.1.0"}) == 1


def test_monitoring_errors_are_counted_by_stage(registry, per_call_client):
    metrics = bind_metrics("a", "1", registry, per_call_client=per_call_client)
    metrics.monitoring_error("outputs")
    metrics.monitoring_error("outputs")
    assert registry.get_sample_value("ml_monitoring_errors_total", {**A, "stage": "outputs"}) == 2
