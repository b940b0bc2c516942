"""`@promml.monitor`: metrics and a prediction log around any predict function, sync or async.

The wrapper times the call, counts rows, observes scores and hands the call's rows to a background log writer.
Only counting and observing happen on the calling thread; records are built on the writer's thread. Nothing it
does may change what predict returns or raises: failures of the monitoring are counted in
`ml_monitoring_errors_total{stage}` and logged once per stage, never propagated.
"""

from __future__ import annotations

import functools
import inspect
import logging
import os
import random
import time
from collections import Counter
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
from prometheus_client import REGISTRY, CollectorRegistry

from .jsonl_writer import JsonlWriter, shared_writer
from .metrics import LATENCY_BUCKETS, SCORE_BUCKETS, BoundMetrics, bind_metrics
from .prediction_ids import CallIds, next_call_ids
from .prediction_log import PredictionBatch
from .rows import predictions_and_scores, row_count, snapshot_rows

logger = logging.getLogger(__name__)

F = TypeVar("F", bound=Callable[..., Any])
InputsReader = Callable[[tuple[Any, ...], dict[str, Any]], Any]
OutputsReader = Callable[[Any, int], tuple[Any, Any]]
"""(result, n_rows) -> (predictions, scores): sequences or numpy arrays of n_rows; scores may be None."""

LOG_DIR_ENV = "PROMML_LOG_DIR"
MULTIPROCESS_ENV = "PROMETHEUS_MULTIPROC_DIR"
PREDICTIONS_FILE = "predictions.jsonl"
SCORE_RANGE_STAGE = "score_range"
"""The `stage` of `ml_monitoring_errors_total` that counts calls of a classifier with a score outside 0..1."""
CLASS_TYPES = (int, str, bool)
"""Predictions of these types are classes and counted in `ml_predicted_class_total`; floats are regression."""


def predictions_file(directory: str | os.PathLike[str]) -> Path:
    """The prediction log of this process: one file per worker under a multiprocess server, so lines never mix."""
    if os.environ.get(MULTIPROCESS_ENV):
        return Path(directory) / f"predictions-{os.getpid()}.jsonl"
    return Path(directory) / PREDICTIONS_FILE


def _default_inputs(skip_self: bool) -> InputsReader:
    index = 1 if skip_self else 0

    def read(args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        if len(args) > index:
            return args[index]
        if len(kwargs) == 1:
            return next(iter(kwargs.values()))
        raise ValueError("cannot tell which argument holds the features; pass inputs= to monitor()")

    return read


def _batch_observations(predictions: Any, scores: Any) -> tuple[np.ndarray | None, list[tuple[Any, int]]]:
    """A batch's scores as one float array and its predicted classes counted: numpy arrays stay in numpy, so a
    10,000-row batch costs well under a millisecond."""
    if isinstance(scores, np.ndarray):
        score_array: np.ndarray | None = np.asarray(scores, dtype=float).ravel()
    elif scores is not None:
        score_array = np.asarray([score for score in scores if score is not None], dtype=float)
    else:
        score_array = None
    if isinstance(predictions, np.ndarray) and predictions.dtype.kind in "iubU":
        labels, counts = np.unique(predictions, return_counts=True)
        return score_array, list(zip(labels.tolist(), counts.tolist(), strict=True))
    if isinstance(predictions, np.ndarray) and predictions.dtype.kind == "f":
        return score_array, []  # regression: no classes
    return score_array, list(Counter(p for p in predictions if isinstance(p, CLASS_TYPES)).items())


class _Monitor:
    """What one decorated function records after each call."""

    def __init__(
        self, metrics: BoundMetrics, writer: JsonlWriter | None, read_inputs: InputsReader,
        read_outputs: OutputsReader, *, feature_names: Sequence[str] | None, sample_rate: float,
    ) -> None:
        self.metrics = metrics
        self.calls = metrics.calls
        self.writer = writer
        self.read_inputs = read_inputs
        self.read_outputs = read_outputs
        self.feature_names = feature_names
        self.sample_rate = sample_rate
        self._reported_stages: set[str] = set()
        self._count_written = metrics.log_written.inc
        self._count_failed = metrics.log_failed.inc

    def failed(self, started: float, error: BaseException) -> None:
        self.calls.finish_failed(time.perf_counter() - started, type(error).__name__)

    def succeeded(self, started: float, args: tuple[Any, ...], kwargs: dict[str, Any], result: Any) -> None:
        """Read the call's rows, then record everything about it at once (one lock on the default recorder)."""
        latency = time.perf_counter() - started
        metrics = self.metrics
        stage = "inputs"
        recorded = False
        try:
            data = self.read_inputs(args, kwargs)
            rows = row_count(data)
            stage = "outputs"
            predictions, scores = self.read_outputs(result, rows)
            stage = "metrics"
            if rows == 1:
                prediction = predictions[0]
                score = None if scores is None else scores[0]
                is_class = isinstance(prediction, CLASS_TYPES)
                recorded = True
                self.calls.finish_row(latency, score, prediction, is_class)
                if is_class and score is not None and (score < 0.0 or score > 1.0):
                    self._score_out_of_range(score)
            else:
                score_array, class_counts = _batch_observations(predictions, scores)
                recorded = True
                self.calls.finish_batch(latency, rows, score_array, class_counts)
                if class_counts and score_array is not None and score_array.size:
                    outside = score_array[(score_array < 0.0) | (score_array > 1.0)]
                    if outside.size:
                        self._score_out_of_range(float(outside[0]))
            call = next_call_ids(rows)
            if self.writer is not None:
                stage = "log"
                self._log(call, data, predictions, scores)
        except Exception as error:  # monitoring must never break the model it watches
            if not recorded:
                self.calls.finish_latency(latency)
            metrics.monitoring_error(stage)
            if stage not in self._reported_stages:
                self._reported_stages.add(stage)
                logger.warning("promml: %s failed for model %s: %s", stage, metrics.labels[0], error)

    def _score_out_of_range(self, score: float) -> None:
        """A classifier's score outside 0..1 is kept (and logged) but counted, and warned about once: the score
        histogram's buckets, the baseline's score bins and ROC AUC all read scores as probabilities."""
        self.metrics.monitoring_error(SCORE_RANGE_STAGE)
        if SCORE_RANGE_STAGE not in self._reported_stages:
            self._reported_stages.add(SCORE_RANGE_STAGE)
            logger.warning("promml: model %s returned the score %r for a class, outside 0..1; a score is the "
                           "probability of the positive (or predicted) class: return predict_proba's column, not a "
                           "decision function or a logit", self.metrics.labels[0], score)

    def _log(self, call: CallIds, data: Any, predictions: Any, scores: Any) -> None:
        rows = call[2]
        keep = None
        if self.sample_rate < 1.0:
            keep = [index for index in range(rows) if random.random() < self.sample_rate]
            if rows - len(keep):
                self.metrics.log_sampled_out.inc(rows - len(keep))
            if not keep:
                return
        batch = PredictionBatch(call, time.time(), self.metrics.labels, snapshot_rows(data), predictions, scores,
                                feature_names=self.feature_names, keep=keep)
        assert self.writer is not None
        if not self.writer.submit(batch, self._count_written, self._count_failed):
            self.metrics.log_dropped.inc(len(batch))


def monitor(
    func: F | None = None,
    *,
    model_name: str,
    model_version: str,
    log_dir: str | os.PathLike[str] | None = None,
    inputs: InputsReader | None = None,
    outputs: OutputsReader | None = None,
    feature_names: Sequence[str] | None = None,
    sample_rate: float = 1.0,
    max_log_bytes: int | None = 100 * 2**20,
    log_backups: int = 5,
    log_file_mode: int | None = None,
    latency_buckets: Sequence[float] = LATENCY_BUCKETS,
    score_buckets: Sequence[float] = SCORE_BUCKETS,
    registry: CollectorRegistry = REGISTRY,
) -> Any:
    """Instrument a predict function (sync or async, function or method).

    - `model_name`, `model_version`: the label values of every metric and log record.
    - `log_dir`: where `predictions.jsonl` is appended; defaults to `$PROMML_LOG_DIR`; no directory, no log.
    - `inputs(args, kwargs)`: returns the call's features (a dict, a list of dicts, a DataFrame or an array);
      defaults to the first argument after `self`.
    - `outputs(result, n_rows) -> (predictions, scores)`: defaults to reading `{"prediction", "score"}` dicts,
      a list of them, or plain predictions without scores.
    - `feature_names`: column names of numpy-array inputs.
    - `sample_rate`: share of rows written to the log (metrics always see every row).
    - `max_log_bytes`, `log_backups`: size-based rotation of the log, and how many rotated files to keep.
    - `log_file_mode`: permissions of a log file created (default 0o600, or `$PROMML_LOG_FILE_MODE`).
    - `latency_buckets`, `score_buckets`: histogram buckets, the same for every model of a registry.
    The ids given to the rows are available after the call from `promml.last_prediction_ids()`.
    """
    if not 0.0 <= sample_rate <= 1.0:
        raise ValueError(f"sample_rate must be within 0..1, got {sample_rate}")

    def decorate(target: F) -> F:
        directory = log_dir if log_dir is not None else os.environ.get(LOG_DIR_ENV)
        writer = (
            shared_writer(predictions_file(directory), max_bytes=max_log_bytes, backup_count=log_backups,
                          file_mode=log_file_mode)
            if directory else None
        )
        parameters = list(inspect.signature(target).parameters)
        skip_self = bool(parameters) and parameters[0] in ("self", "cls")
        metrics = bind_metrics(model_name, model_version, registry, latency_buckets=latency_buckets,
                               score_buckets=score_buckets)
        state = _Monitor(
            metrics, writer, inputs or _default_inputs(skip_self), outputs or predictions_and_scores,
            feature_names=feature_names, sample_rate=sample_rate,
        )
        call_started = metrics.calls.start
        abandoned = metrics.calls.finish_abandoned

        if inspect.iscoroutinefunction(target):

            @functools.wraps(target)
            async def monitored_async(*args: Any, **kwargs: Any) -> Any:
                call_started()
                started = time.perf_counter()
                try:
                    result = await target(*args, **kwargs)
                except Exception as error:
                    state.failed(started, error)
                    raise
                except BaseException:  # cancelled or interrupted: no longer in flight, neither failed nor served
                    abandoned()
                    raise
                state.succeeded(started, args, kwargs, result)
                return result

            return monitored_async  # type: ignore[return-value]

        @functools.wraps(target)
        def monitored(*args: Any, **kwargs: Any) -> Any:
            call_started()
            started = time.perf_counter()
            try:
                result = target(*args, **kwargs)
            except Exception as error:
                state.failed(started, error)
                raise
            except BaseException:  # interrupted: no longer in flight, neither failed nor served
                abandoned()
                raise
            state.succeeded(started, args, kwargs, result)
            return result

        return monitored  # type: ignore[return-value]

    return decorate(func) if func is not None else decorate
