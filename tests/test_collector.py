"""What a scrape of the exporter's collector yields, sample by sample, before and after a recompute."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
from prometheus_client import CollectorRegistry

from promml.baseline import build_baseline, parse_baseline
from promml.exporter.collector import ExporterCollector
from promml.exporter.config import ExporterConfig, WindowSpec
from promml.exporter.service import ExporterService
from promml.records import feedback_record, prediction_record
from promml.stats.drift import PSI_EPSILON, psi

START = 1_700_000_000.0
MODEL = {"model_name": "credit-risk", "model_version": "1.0.0"}


@pytest.fixture(scope="module")
def baseline():
    rng = np.random.default_rng(3)
    columns = {"x": rng.uniform(0, 1, 1000).tolist(), "region": rng.choice(["a", "b"], size=1000).tolist()}
    return parse_baseline(build_baseline(columns, categorical=["region"], n_bins=4))


@pytest.fixture
def service(tmp_path, baseline):
    config = ExporterConfig(
        model_name="credit-risk",
        model_version="1.0.0",
        baseline=tmp_path / "baseline.json",
        prediction_logs=(str(tmp_path / "predictions.jsonl"),),
        feedback_logs=(str(tmp_path / "feedback.jsonl"),),
        window_seconds=120.0,
        slot_seconds=10.0,
        max_pending_predictions=2,
    )
    return ExporterService(config, baseline, clock=lambda: START)


@pytest.fixture
def registry(service):
    registry = CollectorRegistry()
    registry.register(ExporterCollector(service))
    return registry


def write(path: Path, records: list) -> None:
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in records), encoding="utf-8")


def sample(registry, name, **labels):
    return registry.get_sample_value(name, {**MODEL, **labels})


def test_before_any_recompute_only_the_exporter_state_is_exported(registry):
    assert sample(registry, "ml_window_seconds") == 120.0
    assert sample(registry, "ml_exporter_pending_predictions") == 0
    assert sample(registry, "ml_exporter_pending_evictions_total") == 0
    for name in ("ml_window_predictions", "ml_model_accuracy", "ml_exporter_last_recompute_timestamp_seconds"):
        assert sample(registry, name) is None
    assert sample(registry, "ml_drift_score", feature_name="x") is None


def test_after_a_recompute(tmp_path, service, registry, baseline):
    xs = [0.05, 0.1, 0.95]
    write(
        tmp_path / "predictions.jsonl",
        [prediction_record(f"p{i}", START - 5, "credit-risk", "1.0.0", {"x": x, "region": "c"}, i % 2, 0.5)
         for i, x in enumerate(xs)]
        + ["oops", prediction_record("q", START, "other", "1.0.0", {"x": 0.5}, 1, None)],
    )
    write(tmp_path / "feedback.jsonl", [feedback_record("p1", START, 1), feedback_record("p2", START, 1),
                                        feedback_record("p0", START, 0)])
    service.read_logs()
    service.recompute()

    assert sample(registry, "ml_exporter_last_recompute_timestamp_seconds") == START
    assert sample(registry, "ml_window_predictions") == 3
    assert sample(registry, "ml_window_labeled_predictions") == 2  # p0 was evicted: at most 2 pending
    assert sample(registry, "ml_model_accuracy") == 0.5  # p1 predicted 1 (right), p2 predicted 0 (wrong)
    assert sample(registry, "ml_exporter_pending_predictions") == 0
    assert sample(registry, "ml_exporter_pending_evictions_total") == 1
    records = {
        ("predictions", "ok"): 3, ("predictions", "invalid_json"): 1, ("predictions", "other_model"): 1,
        ("predictions", "oversized"): 0, ("feedback", "ok"): 2, ("feedback", "unknown_prediction_id"): 0,
        ("feedback", "oversized"): 0,
    }
    assert sample(registry, "ml_exporter_early_labels") == 1  # p0's label: unknown only after its grace period
    for (log, status), count in records.items():
        assert sample(registry, "ml_exporter_records_total", log=log, status=status) == count
    assert sample(registry, "ml_exporter_records_total", log="feedback", status="invalid_json") is None

    x_ref = baseline.numeric["x"]
    expected_x = psi(x_ref.ref_ratios, np.bincount(np.digitize(xs, x_ref.edges), minlength=x_ref.ref_ratios.size))
    assert sample(registry, "ml_drift_score", feature_name="x") == pytest.approx(expected_x, rel=1e-12)
    # every region is unseen ("c"): the window's share is all in the bucket whose reference share is 0
    region_ref = baseline.categorical["region"]
    expected_region = psi(region_ref.ref_ratios, [0, 0, 3])
    assert sample(registry, "ml_drift_score", feature_name="region") == pytest.approx(expected_region, rel=1e-12)


def test_empty_window_exports_no_drift_and_no_accuracy(service, registry):
    service.recompute()
    assert sample(registry, "ml_window_predictions") == 0
    assert sample(registry, "ml_window_labeled_predictions") == 0
    assert sample(registry, "ml_model_accuracy") is None
    drift = [s for metric in registry.collect() if metric.name == "ml_drift_score" for s in metric.samples]
    assert drift == []
    assert all(not math.isnan(s.value) for metric in registry.collect() for s in metric.samples)


def test_metric_types(service, registry):
    service.recompute()
    types = {metric.name: metric.type for metric in registry.collect()}
    assert types == {
        "ml_exporter_records": "counter",
        "ml_exporter_pending_predictions": "gauge",
        "ml_exporter_early_labels": "gauge",
        "ml_exporter_pending_evictions": "counter",
        "ml_window_score_outside_unit_rows": "gauge",
        "ml_exporter_checkpoint_rejected": "counter",
        "ml_exporter_checkpoint_save_failures": "counter",
        "ml_window_seconds": "gauge",
        "ml_window_length_seconds": "gauge",
        "ml_labeled_predictions": "counter",
        "ml_label_delay_seconds": "histogram",
        "ml_feature_bin_reference_ratio": "gauge",
        "ml_exporter_last_recompute_timestamp_seconds": "gauge",
        "ml_exporter_misconfiguration": "gauge",
        "ml_exporter_unread_bytes": "gauge",
        "ml_window_predictions": "gauge",
        "ml_window_labeled_predictions": "gauge",
        "ml_window_prediction_rows": "gauge",
        "ml_window_labeled_rows": "gauge",
        "ml_window_correct_rows": "gauge",
        "ml_window_feature_bin_rows": "gauge",
        "ml_drift_sample_rows": "gauge",
        "ml_baseline_age_seconds": "gauge",
    }  # an empty window has no drift, no accuracy and no performance: NaN is left out


def multi_window_service(tmp_path, baseline, rows: list, name: str) -> ExporterService:
    folder = tmp_path / name
    folder.mkdir()
    write(folder / "predictions.jsonl", rows)
    config = ExporterConfig(
        model_name="credit-risk", model_version="1.0.0", baseline=folder / "baseline.json",
        prediction_logs=(str(folder / "predictions.jsonl"),), feedback_logs=(),
        windows=(WindowSpec("short", 60.0), WindowSpec("long", 120.0)), slot_seconds=10.0,
    )
    return ExporterService(config, baseline, clock=lambda: START)


def fleet_psi(registries: list, baseline, feature: str, window: str) -> float:
    """PSI from the bin rows summed across replicas and the reference ratios, as the documented PromQL does."""
    n_bins = {**baseline.numeric, **baseline.categorical}[feature].ref_ratios.size
    counts = np.array([sum(r.get_sample_value("ml_window_feature_bin_rows", {
        **MODEL, "window": window, "feature_name": feature, "bin": str(i)}) for r in registries)
        for i in range(n_bins)])
    ratios = np.array([registries[0].get_sample_value("ml_feature_bin_reference_ratio", {
        **MODEL, "feature_name": feature, "bin": str(i)}) for i in range(n_bins)])
    p, q = np.clip(counts / counts.sum(), PSI_EPSILON, None), np.clip(ratios, PSI_EPSILON, None)
    return float(np.sum((p - q) * np.log(p / q)))


def test_windows_are_labelled_and_replicas_merge_to_the_psi_of_all_rows(tmp_path, baseline):
    rng = np.random.default_rng(8)
    rows = [prediction_record(f"p{i}", START - float(rng.uniform(0, 110)), "credit-risk", "1.0.0",
                              {"x": float(rng.uniform(0.2, 1.4)), "region": str(rng.choice(["a", "b", "c"]))}, 1, 0.5)
            for i in range(400)]
    services = [multi_window_service(tmp_path, baseline, part, name)
                for part, name in ((rows[::2], "one"), (rows[1::2], "two"), (rows, "all"))]
    registries = []
    for service in services:
        service.read_logs()
        service.recompute()
        registry = CollectorRegistry()
        registry.register(ExporterCollector(service))
        registries.append(registry)
    replicas, single = registries[:2], registries[2]
    for window in ("short", "long"):
        rows_in = sample(single, "ml_window_prediction_rows", window=window)
        assert rows_in == sum(sample(r, "ml_window_prediction_rows", window=window) for r in replicas)
        for feature in ("x", "region"):
            assert fleet_psi(replicas, baseline, feature, window) == pytest.approx(
                sample(single, "ml_drift_psi", window=window, feature_name=feature), rel=1e-12)
    assert sample(single, "ml_window_prediction_rows", window="long") == 400
    # the contract metrics describe the first window, without a window label
    assert sample(single, "ml_window_predictions") == sample(single, "ml_window_prediction_rows", window="short")
    assert sample(single, "ml_drift_score", feature_name="x") == sample(single, "ml_drift_psi", window="short",
                                                                         feature_name="x")
    assert sample(single, "ml_window_length_seconds", window="long") == 120.0
    assert sample(single, "ml_window_seconds") == 60.0


def segment_service(tmp_path, baseline, rows: list, feedback: list, name: str) -> ExporterService:
    folder = tmp_path / name
    folder.mkdir()
    write(folder / "predictions.jsonl", rows)
    write(folder / "feedback.jsonl", feedback)
    config = ExporterConfig(
        model_name="credit-risk", model_version="1.0.0", baseline=folder / "baseline.json",
        prediction_logs=(str(folder / "predictions.jsonl"),), feedback_logs=(str(folder / "feedback.jsonl"),),
        windows=(WindowSpec("short", 60.0), WindowSpec("long", 120.0)), slot_seconds=10.0, segments=("region",),
        min_segment_rows=10,
    )
    service = ExporterService(config, baseline, clock=lambda: START)
    service.read_logs()
    service.recompute()
    return service


def test_segment_metrics_per_window_and_replicas_sum_to_the_fleet(tmp_path, baseline):
    rng = np.random.default_rng(9)
    rows, feedback, truth = [], {}, []
    for i in range(300):
        region = str(rng.choice(["a", "b", "c"], p=[0.5, 0.4, 0.1]))
        predicted = int(rng.uniform() < {"a": 0.6, "b": 0.3, "c": 0.5}[region])
        age = float(rng.uniform(0, 110))
        rows.append(prediction_record(f"p{i}", START - age, "credit-risk", "1.0.0",
                                      {"x": float(rng.uniform()), "region": region}, predicted, 0.5))
        label = int(rng.uniform() < 0.5)
        if i % 3:  # two rows in three get a label
            feedback[i] = feedback_record(f"p{i}", START, label)
        truth.append((region, age, predicted, label if i % 3 else None))
    registries = []
    for part, name in ((slice(0, None, 2), "one"), (slice(1, None, 2), "two"), (slice(None), "all")):
        labels = [feedback[i] for i in range(300)[part] if i in feedback]
        service = segment_service(tmp_path, baseline, rows[part], labels, name)
        registry = CollectorRegistry()
        registry.register(ExporterCollector(service))
        registries.append(registry)
    replicas, single = registries[:2], registries[2]

    for window, seconds in (("short", 60.0), ("long", 120.0)):
        # the window keeps slots from floor((START - seconds) / 10) + 1 on: rows at most `seconds` - 10 s old
        kept = [t for t in truth if math.floor((START - t[1]) / 10) >= math.floor((START - seconds) / 10) + 1]
        rates = {}
        for region in ("a", "b", "c"):
            mine = [t for t in kept if t[0] == region]
            labelled = [t for t in mine if t[3] is not None]
            expected = {
                "ml_segment_rows": len(mine),
                "ml_segment_positive_predictions": sum(t[2] for t in mine),
                "ml_segment_labeled_rows": len(labelled),
                "ml_segment_correct_rows": sum(t[2] == t[3] for t in labelled),
            }
            labels = {"window": window, "segment": "region", "segment_value": region}
            for metric, value in expected.items():
                assert sample(single, metric, **labels) == value, (metric, labels)
                assert sum(sample(r, metric, **labels) for r in replicas) == value, (metric, labels)
            assert sample(single, "ml_segment_positive_rate", **labels) == expected[
                "ml_segment_positive_predictions"] / len(mine)
            assert sample(single, "ml_segment_accuracy", **labels) == expected["ml_segment_correct_rows"] / len(
                labelled)
            if len(mine) >= 10:
                rates[region] = expected["ml_segment_positive_predictions"] / len(mine)
        assert sample(single, "ml_demographic_parity_ratio", window=window, segment="region") == min(
            rates.values()) / max(rates.values())
    types = {metric.name: metric.type for metric in single.collect() if metric.name.startswith(("ml_segment",
                                                                                                 "ml_demographic"))}
    assert types == {name: "gauge" for name in (
        "ml_segment_rows", "ml_segment_labeled_rows", "ml_segment_positive_predictions", "ml_segment_correct_rows",
        "ml_segment_positive_rate", "ml_segment_accuracy", "ml_segment_overflow_rows",
        "ml_demographic_parity_ratio")}


def test_label_delay_buckets_write_le_as_floats(service, registry):
    """Prometheus 3 normalises `le="1"` to `le="1.0"`: the exporter writes the normalised form already."""
    les = [s.labels["le"] for metric in registry.collect() if metric.name == "ml_label_delay_seconds"
           for s in metric.samples if s.name == "ml_label_delay_seconds_bucket"]
    assert les == ["1.0", "5.0", "15.0", "60.0", "300.0", "900.0", "3600.0", "14400.0", "43200.0", "86400.0",
                   "259200.0", "604800.0", "+Inf"]
    assert sample(registry, "ml_label_delay_seconds_bucket", le="1.0") == 0
