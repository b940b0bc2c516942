"""The series the instrumented model server would have exposed, rebuilt from the prediction log and the scenario.

Rows, scores, classes and batch sizes come from the log lines as the exporter reads them (a prediction is logged
when its call returns, so the counters at a scrape hold every line stamped up to it). What the log cannot tell,
latency, failed calls and whether the server answered scrapes, comes from the scenario (`scenario.py`): latency is
drawn from a log-normal distribution with the scenario's median and p95, failed calls at its error rate. Names,
labels and buckets are the instrumentation's own (`promml.instrument_metrics`), so the recording rules read these
series exactly as they read a live model's.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterator
from typing import Any

import msgspec
import numpy as np
from prometheus_client.utils import floatToGoString

from .._version import __version__
from ..instrumentation.call_stats import class_label
from ..instrumentation.metrics import BATCH_SIZE_BUCKETS, LATENCY_BUCKETS, MAX_CLASS_LABELS, OTHER_CLASS, SCORE_BUCKETS
from .scenario import Scenario

Z95 = 1.6448536269514722
"""The standard normal's 95th percentile: a log-normal's p95 is median * exp(Z95 * sigma)."""

ERROR_TYPE = "RuntimeError"
"""The `error_type` label of the simulated failed calls."""

Sample = tuple[str, dict[str, str], float]


class _Line(msgspec.Struct):
    prediction_id: Any = None
    model_name: Any = None
    model_version: Any = None
    prediction: Any = None
    score: Any = None


_decode_line = msgspec.json.Decoder(_Line).decode


def _finite_bounds(buckets: tuple[float, ...]) -> np.ndarray:
    return np.array([b for b in buckets if math.isfinite(b)], dtype=float)


class _Histogram:
    """Cumulative bucket counts and sum, as `ml_*_bucket`, `_count` and `_sum` samples."""

    def __init__(self, buckets: tuple[float, ...]) -> None:
        self.bounds = _finite_bounds(buckets)
        self.counts = np.zeros(len(self.bounds) + 1, dtype=np.int64)  # the last one is +Inf's own
        self.sum = 0.0
        self.les = [floatToGoString(b) for b in self.bounds] + ["+Inf"]

    def observe(self, values: np.ndarray) -> None:
        if len(values):
            self.counts += np.bincount(np.searchsorted(self.bounds, values, side="left"),
                                       minlength=len(self.counts))
            self.sum += float(values.sum())

    def samples(self, name: str, labels: dict[str, str]) -> Iterator[Sample]:
        cumulative = np.cumsum(self.counts)
        for le, count in zip(self.les, cumulative.tolist(), strict=True):
            yield f"{name}_bucket", {**labels, "le": le}, float(count)
        yield f"{name}_count", labels, float(cumulative[-1])
        yield f"{name}_sum", labels, self.sum


def _call_of(prediction_id: str) -> str:
    """The call a row belongs to, from its id: promml gives a one-row call `<24 hex digits>` and row i of a batch
    `<24 hex digits>-<i>` (promml.instrumentation.prediction_ids; logs of older versions: `<process>-<seq>` and
    `<process>-<seq>-<i>`); any other id counts as a call of its own."""
    call, dash, _ = prediction_id.rpartition("-")
    if dash and (prediction_id.count("-") == 2 or (len(call) == 24 and "-" not in call)):
        return call
    return prediction_id


class ModelSide:
    """One model server replica: fed the prediction lines, asked for its samples at each scrape."""

    def __init__(self, model_name: str, model_version: str, scenario: Scenario, seed: int = 0,
                 replica: str | None = None) -> None:
        self.labels = {"model_name": model_name, "model_version": model_version}
        self.scenario = scenario
        self.replica = replica
        self.rng = np.random.default_rng(seed)
        self.rows = 0
        self.calls_since_scrape = 0
        self.failed = 0
        self.classes: Counter[str] = Counter()
        self.latency = _Histogram(tuple(LATENCY_BUCKETS))
        self.score = _Histogram(SCORE_BUCKETS)
        self.batch = _Histogram(tuple(float(b) for b in BATCH_SIZE_BUCKETS))
        self._batch_sizes: list[int] = []
        self._last_call: str | None = None
        self._error_carry = 0.0
        self.other_model = 0

    def feed(self, lines: list[bytes]) -> None:
        """Count the rows, scores, classes and calls of some prediction lines (other models' lines are not ours)."""
        name, version = self.labels["model_name"], self.labels["model_version"]
        scores: list[float] = []
        sizes = self._batch_sizes
        fixed = self.scenario.batch_size_rows
        for raw in lines:
            try:
                line = _decode_line(raw)
            except (msgspec.DecodeError, msgspec.ValidationError):
                continue
            if line.model_name != name or str(line.model_version) != version:
                self.other_model += 1
                continue
            self.rows += 1
            if isinstance(line.score, int | float) and not isinstance(line.score, bool):
                scores.append(float(line.score))
            self._count_class(line.prediction)
            call = _call_of(str(line.prediction_id))
            if fixed is not None:
                if sizes and sizes[-1] < fixed:
                    sizes[-1] += 1
                else:
                    sizes.append(1)
            elif call is not None and call == self._last_call and sizes:
                sizes[-1] += 1
            else:
                sizes.append(1)
            self._last_call = call
        self.score.observe(np.array(scores, dtype=float))

    def _count_class(self, prediction: Any) -> None:
        label = class_label(prediction)
        if label in self.classes or len(self.classes) < MAX_CLASS_LABELS:
            self.classes[label] += 1
        else:
            self.classes[OTHER_CLASS] += 1

    def _close_calls(self, now: float) -> None:
        """Turn the calls since the last scrape into batch sizes, latencies and failed calls."""
        sizes = np.array(self._batch_sizes, dtype=float)
        self._batch_sizes = []
        self.batch.observe(sizes)
        rate = min(max(self.scenario.error_rate_at(now, self.replica), 0.0), 0.999)
        failed_expected = len(sizes) * rate / (1.0 - rate) + self._error_carry
        failed = int(failed_expected)
        self._error_carry = failed_expected - failed
        self.failed += failed
        median, p95 = self.scenario.latency_at(now, self.replica)
        sigma = math.log(p95 / median) / Z95 if p95 > median > 0 else 0.0
        calls = len(sizes) + failed
        if calls:
            self.latency.observe(median * np.exp(sigma * self.rng.standard_normal(calls)))

    def samples(self, now: float) -> Iterator[Sample]:
        """Everything a scrape of the model server at `now` returns, `up` aside."""
        self._close_calls(now)
        labels = self.labels
        yield "ml_predictions_total", labels, float(self.rows)
        yield from self.latency.samples("ml_prediction_latency_seconds", labels)
        yield from self.score.samples("ml_prediction_score", labels)
        yield from self.batch.samples("ml_prediction_batch_size_rows", labels)
        yield "ml_predictions_in_flight", labels, 0.0
        for label, count in sorted(self.classes.items()):
            yield "ml_predicted_class_total", {**labels, "class": label}, float(count)
        if self.failed:  # the counter child is created by the first failure, as in the instrumentation
            yield "ml_prediction_errors_total", {**labels, "error_type": ERROR_TYPE}, float(self.failed)
        yield "ml_prediction_log_records_total", {**labels, "outcome": "written"}, float(self.rows)
        for outcome in ("dropped", "sampled_out", "failed"):
            yield "ml_prediction_log_records_total", {**labels, "outcome": outcome}, 0.0
        yield "ml_model_info", {**labels, "promml_version": __version__}, 1.0
