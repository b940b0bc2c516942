"""The one-lock recorder against prometheus_client's own objects: the same calls give the same exposition, sample
by sample; and it stays exact under threads."""

from __future__ import annotations

import asyncio
import math
import threading
from typing import Any

import numpy as np
import pandas as pd
import pytest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

import promml
from promml.instrumentation import monitor as monitor_module
from promml.instrumentation.call_stats import MAX_CLASS_LABELS, CallStats
from promml.instrumentation.metrics import bind_metrics

LABELS = {"model_name": "m", "model_version": "1"}


def exposition(registry: CollectorRegistry) -> dict[tuple[str, str, tuple], float]:
    """Every sample of the text exposition (what Prometheus reads), keyed by family, name and labels.

    `_created` samples are kept with the value 0: both paths must expose them, at times that naturally differ."""
    samples = {}
    for family in text_string_to_metric_families(generate_latest(registry).decode()):
        for sample in family.samples:
            key = (family.name, sample.name, tuple(sorted(sample.labels.items())))
            assert key not in samples, f"duplicate sample {key}"
            samples[key] = 0.0 if sample.name.endswith("_created") else sample.value
    return samples


def help_and_types(registry: CollectorRegistry) -> dict[str, tuple[str, str]]:
    return {family.name: (family.documentation, family.type)
            for family in text_string_to_metric_families(generate_latest(registry).decode())}


def exercise(registry: CollectorRegistry, per_call_client: bool) -> None:
    """The same mix of calls on either recorder: rows, batches of every output shape, errors, unreadable outputs,
    NaN and out-of-range scores, regression outputs, more classes than the cap, two models, a cancelled call."""
    bind_metrics("m", "1", registry, per_call_client=per_call_client)
    options = {"model_name": "m", "model_version": "1", "registry": registry}

    @promml.monitor(**options)
    def one(row: dict) -> dict:
        return {"prediction": row["label"], "score": row["score"]}

    @promml.monitor(**options)
    def batch(rows: list[dict]) -> list[dict]:
        return [{"prediction": row["label"], "score": row["score"]} for row in rows]

    @promml.monitor(**options, outputs=lambda result, n: (result[0], result[1]))
    def numpy_batch(frame: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
        return frame["label"].to_numpy(), frame["score"].to_numpy()

    @promml.monitor(model_name="other", model_version="2", registry=registry)
    def regression(rows: list[dict]) -> list[float]:
        return [row["x"] * 0.5 for row in rows]

    @promml.monitor(**options)
    def failing(row: dict) -> dict:
        raise KeyError(row["missing"]) if "missing" in row else ValueError("no")

    @promml.monitor(**options)
    def unreadable(row: dict) -> dict:
        return {"no prediction": 1}

    @promml.monitor(**options)
    async def cancelled(row: dict) -> dict:
        raise asyncio.CancelledError

    rng = np.random.default_rng(7)
    for index in range(300):
        one({"label": int(rng.integers(0, 3)), "score": float(rng.random())})
        if index % 7 == 0:
            batch([{"label": f"c{int(k)}", "score": float(s)} for k, s in
                   zip(rng.integers(0, 30, size=12), rng.random(12), strict=True)])
        if index % 50 == 0:
            frame = pd.DataFrame({"label": rng.integers(0, 2, size=2000), "score": rng.random(2000)})
            frame.loc[frame.index[:5], "score"] = np.nan
            numpy_batch(frame)
            regression([{"x": float(x)} for x in rng.normal(size=5)])
    one({"label": 1, "score": math.nan})
    one({"label": True, "score": 1.7})
    one({"label": 2.5, "score": None})
    for row in ({"missing": "k"}, {"x": 1}, {"x": 2}):
        with pytest.raises((KeyError, ValueError)):
            failing(row)
    unreadable({"x": 1})
    with pytest.raises(asyncio.CancelledError):
        asyncio.run(cancelled({"x": 1}))


class SteppingClock:
    """A stand-in for the `time` module inside the decorator: each call lasts the next of a fixed cycle of
    latencies, bucket boundaries included, so both recorders see identical latencies."""

    LATENCIES = (0.003, 0.005, 0.1, 0.2, 0.25, 0.7, 12.0)

    def __init__(self) -> None:
        self.calls = 0
        self.now = 0.0

    def perf_counter(self) -> float:
        self.calls += 1
        if self.calls % 2 == 0:  # the second reading of a call: its end
            self.now += self.LATENCIES[(self.calls // 2) % len(self.LATENCIES)]
        return self.now

    @staticmethod
    def time() -> float:
        return 1_700_000_000.0


def test_both_recorders_expose_the_same_families_names_labels_and_values(monkeypatch):
    fast, client = CollectorRegistry(), CollectorRegistry()
    monkeypatch.setattr(monitor_module, "time", SteppingClock())
    exercise(fast, per_call_client=False)
    monkeypatch.setattr(monitor_module, "time", SteppingClock())
    exercise(client, per_call_client=True)
    assert isinstance(bind_metrics("m", "1", fast).calls, CallStats)
    fast_samples, client_samples = exposition(fast), exposition(client)
    assert fast_samples.keys() == client_samples.keys()
    for key, value in client_samples.items():
        assert fast_samples[key] == pytest.approx(value, rel=1e-12, abs=1e-12), key
    assert help_and_types(fast) == help_and_types(client)
    # the mix really reached every family and the class cap
    assert fast_samples[("ml_predicted_class", "ml_predicted_class_total",
                         (("class", "other"), ("model_name", "m"), ("model_version", "1")))] > 0
    classes = {dict(key[2])["class"] for key in fast_samples if key[1] == "ml_predicted_class_total"}
    assert len(classes) == MAX_CLASS_LABELS + 1
    assert fast_samples[("ml_prediction_errors", "ml_prediction_errors_total",
                         (("error_type", "ValueError"), ("model_name", "m"), ("model_version", "1")))] == 2
    assert fast_samples[("ml_predictions_in_flight", "ml_predictions_in_flight",
                         (("model_name", "m"), ("model_version", "1")))] == 0


def test_threads_are_counted_exactly():
    registry = CollectorRegistry()

    @promml.monitor(model_name="m", model_version="1", registry=registry)
    def predict(row: dict) -> dict:
        return {"prediction": row["i"] % 2, "score": 0.05 + (row["i"] % 10) / 10}

    def work() -> None:
        for index in range(10_000):
            predict({"i": index})

    threads = [threading.Thread(target=work) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    def value(name: str, **labels: Any) -> float | None:
        return registry.get_sample_value(name, {**LABELS, **labels})

    assert value("ml_predictions_total") == 80_000
    assert value("ml_prediction_latency_seconds_count") == 80_000
    assert value("ml_prediction_batch_size_rows_bucket", le="1.0") == 80_000
    assert value("ml_prediction_score_count") == 80_000
    assert value("ml_prediction_score_bucket", le="0.5") == 8 * 10_000 * 5 / 10  # scores 0.05 .. 0.45
    assert value("ml_prediction_score_sum") == pytest.approx(8 * 1_000 * sum(0.05 + k / 10 for k in range(10)))
    assert value("ml_predicted_class_total", **{"class": "0"}) == value("ml_predicted_class_total", **{"class": "1"})
    assert value("ml_predicted_class_total", **{"class": "1"}) == 40_000
    assert value("ml_predictions_in_flight") == 0


def test_in_flight_counts_calls_started_and_not_finished():
    stats = CallStats(("m", "1"), (0.1, 1.0), (0.5, 1.0), (1, 10))
    for _ in range(3):
        stats.start()
    stats.finish_row(0.05, 0.7, 1, True)
    assert stats.snapshot()["in_flight"] == 2
    stats.finish_abandoned()
    stats.finish_failed(2.0, "TimeoutError")
    snapshot = stats.snapshot()
    assert snapshot["in_flight"] == 0
    assert snapshot["latency"] == ([("0.1", 1.0), ("1.0", 1.0), ("+Inf", 2.0)], 2.05)
    assert snapshot["errors"] == {"TimeoutError": 1.0}
