"""The model-side metric families: one set per registry, bound per model, with bounded class labels."""

from __future__ import annotations

import pytest

from promml.instrumentation.metrics import MAX_CLASS_LABELS, OTHER_CLASS, bind_metrics


def test_two_models_share_the_families_of_a_registry(registry):
    first = bind_metrics("a", "1", registry)
    second = bind_metrics("b", "2", registry)
    assert first.families is second.families
    first.predictions.inc(3)
    second.predictions.inc()
    assert registry.get_sample_value("ml_predictions_total", {"model_name": "a", "model_version": "1"}) == 3
    assert registry.get_sample_value("ml_predictions_total", {"model_name": "b", "model_version": "2"}) == 1


def test_custom_buckets_and_a_conflict_is_an_error(registry):
    metrics = bind_metrics("a", "1", registry, latency_buckets=(0.01, 0.1), score_buckets=(0.5, 1.0))
    metrics.latency.observe(0.05)
    assert registry.get_sample_value(
        "ml_prediction_latency_seconds_bucket", {"model_name": "a", "model_version": "1", "le": "0.1"}) == 1
    with pytest.raises(ValueError, match="other buckets"):
        bind_metrics("b", "1", registry)
    assert bind_metrics("b", "1", registry, latency_buckets=[0.01, 0.1], score_buckets=[0.5, 1]) is not None


def test_class_labels_are_capped(registry):
    metrics = bind_metrics("a", "1", registry)
    for label in range(MAX_CLASS_LABELS + 5):
        metrics.predicted_class(label).inc()
    metrics.predicted_class(0).inc()
    counts = {
        s.labels["class"]: s.value
        for family in registry.collect() if family.name == "ml_predicted_class" for s in family.samples
        if s.name.endswith("_total")
    }
    assert len(counts) == MAX_CLASS_LABELS + 1
    assert counts["0"] == 2
    assert counts[OTHER_CLASS] == 5


def test_info_metric_names_the_model(registry):
    bind_metrics("a", "1", registry)
    assert registry.get_sample_value(
        "ml_model_info", {"model_name": "a", "model_version": "1", "promml_version": "0.1.0"}) == 1
