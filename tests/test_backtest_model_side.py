"""The model-side series of a backtest: the instrumentation's own names, labels and buckets, and exact counts."""

from __future__ import annotations

import json

import numpy as np
from prometheus_client import CollectorRegistry

from promml.backtest.model_side import ModelSide, _call_of
from promml.backtest.scenario import Event, Scenario
from promml.instrumentation.metrics import bind_metrics
from promml.instrumentation.prediction_ids import format_ids
from promml.records import prediction_record

T0 = 1_764_547_200.0


def line(i: int, score: float, prediction: int = 1, call: str | None = None, model: str = "m") -> bytes:
    pid = f"p-{call}-{i}" if call else f"p-{i}"  # promml's forms: a batch's row, a one-row call
    return json.dumps(prediction_record(pid, T0 + i, model, "1", {"x": 1.0}, prediction, score)).encode()


def shape(samples) -> set[tuple]:
    return {(name, tuple(sorted(labels.items()))) for name, labels, _ in samples}


def test_names_labels_and_buckets_are_the_instrumentations(registry: CollectorRegistry) -> None:
    bound = bind_metrics("m", "1", registry)
    bound.calls.start()
    bound.calls.finish_row(0.01, 0.3, 1, True)
    bound.calls.start()
    bound.calls.finish_failed(0.01, "RuntimeError")
    theirs = {(s.name, tuple(sorted(s.labels.items()))) for family in registry.collect() for s in family.samples
              if not s.name.endswith("_created") and not s.name.startswith("ml_monitoring_errors")}
    side = ModelSide("m", "1", Scenario(error_rate=0.5))
    side.feed([line(0, 0.3)])
    ours = shape(side.samples(T0 + 15))
    assert ours == theirs


def test_counts_come_from_the_lines_and_failed_calls_from_the_error_rate() -> None:
    side = ModelSide("m", "1", Scenario(error_rate=0.2))
    side.feed([line(0, 0.05, 0, call="a"), line(1, 0.35, 1, call="a"), line(2, 0.95, 1, call="b"),
               line(3, 0.5, 1, model="other")])
    values = {(name, labels.get("le") or labels.get("class") or labels.get("outcome", "")): value
              for name, labels, value in side.samples(T0 + 15)}
    assert values[("ml_predictions_total", "")] == 3
    assert values[("ml_prediction_score_bucket", "0.1")] == 1
    assert values[("ml_prediction_score_bucket", "0.4")] == 2
    assert values[("ml_prediction_score_bucket", "+Inf")] == 3
    assert values[("ml_prediction_score_sum", "")] == 0.05 + 0.35 + 0.95
    assert values[("ml_prediction_batch_size_rows_bucket", "1.0")] == 1  # call b
    assert values[("ml_prediction_batch_size_rows_bucket", "2.0")] == 2  # and call a, of two rows
    assert values[("ml_predicted_class_total", "0")] == 1 and values[("ml_predicted_class_total", "1")] == 2
    assert values[("ml_prediction_log_records_total", "written")] == 3
    # two calls succeeded at a 20% error rate: 2 * 0.2 / 0.8 = 0.5 failed call, carried to the next scrape
    assert ("ml_prediction_errors_total", "") not in values
    assert values[("ml_prediction_latency_seconds_count", "")] == 2
    assert side.other_model == 1
    side.feed([line(4, 0.5, call="c"), line(5, 0.5, call="d")])
    values = {(name, labels.get("le", "")): value for name, labels, value in side.samples(T0 + 30)}
    assert values[("ml_prediction_errors_total", "")] == 1  # 0.5 carried + 0.5
    assert values[("ml_prediction_latency_seconds_count", "")] == 2 + 2 + 1


def test_calls_are_told_from_promml_ids_of_either_form() -> None:
    one, batch = format_ids((bytes(32), 1, 1))[0], format_ids((bytes(32), 2, 3))
    assert _call_of(one) == one
    assert {_call_of(pid) for pid in batch} == {format_ids((bytes(32), 2, 1))[0]}
    assert (_call_of("p-7"), _call_of("p-7-2")) == ("p-7", "p-7")  # the older form
    uuid = "123e4567-e89b-12d3-a456-426614174000"
    assert _call_of(uuid) == uuid


def test_latency_follows_the_scenario_and_its_regression() -> None:
    regression = Event("latency_regression", "slow", T0 + 1000, T0 + 2000, {"p95_seconds": 0.8})
    scenario = Scenario(latency_median_seconds=0.02, latency_p95_seconds=0.05, events=(regression,))
    assert scenario.latency_at(T0) == (0.02, 0.05)
    assert scenario.latency_at(T0 + 1500) == (0.02 * 0.8 / 0.05, 0.8)
    side = ModelSide("m", "1", scenario, seed=3)
    side.feed([line(i, 0.5) for i in range(20000)])
    values = {(name, labels.get("le", "")): value for name, labels, value in side.samples(T0 + 1500)}
    # the share of calls at most 1 s: the log-normal's CDF there, within sampling error
    sigma = np.log(0.8 / 0.32) / 1.6448536269514722
    from scipy.stats import lognorm

    expected = lognorm(sigma, scale=0.32).cdf(1.0)
    assert abs(values[("ml_prediction_latency_seconds_bucket", "1.0")] / 20000 - expected) < 0.01
