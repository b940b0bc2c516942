"""`@promml.monitor`: metrics and a prediction log around any predict function, sync or async.

The wrapper times the call, counts rows, observes scores and hands the rows to a background log writer. Nothing
it does may change what predict returns or raises: failures of the monitoring are counted in
`ml_monitoring_errors_total{stage}` and logged once per stage, never propagated.
"""

from __future__ import annotations

import functools
import inspect
import logging
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from prometheus_client import REGISTRY, CollectorRegistry

from .instrument_metrics import BoundMetrics, bind_metrics
from .jsonl_writer import JsonlWriter, shared_writer
from .prediction_ids import new_prediction_ids
from .records import prediction_record
from .rows import feature_rows, predictions_and_scores

logger = logging.getLogger(__name__)

F = TypeVar("F", bound=Callable[..., Any])
InputsReader = Callable[[tuple[Any, ...], dict[str, Any]], list[dict[str, Any]]]
OutputsReader = Callable[[Any, int], tuple[list[Any], list[float | None]]]

LOG_DIR_ENV = "PROMML_LOG_DIR"
PREDICTIONS_FILE = "predictions.jsonl"


def _default_inputs(skip_self: bool) -> InputsReader:
    index = 1 if skip_self else 0

    def read(args: tuple[Any, ...], kwargs: dict[str, Any]) -> list[dict[str, Any]]:
        if len(args) > index:
            return feature_rows(args[index])
        if len(kwargs) == 1:
            return feature_rows(next(iter(kwargs.values())))
        raise ValueError("cannot tell which argument holds the features; pass inputs= to monitor()")

    return read


class _Monitor:
    """What one decorated function records after each call."""

    def __init__(
        self,
        metrics: BoundMetrics,
        writer: JsonlWriter | None,
        read_inputs: InputsReader,
        read_outputs: OutputsReader,
    ) -> None:
        self.metrics = metrics
        self.writer = writer
        self.read_inputs = read_inputs
        self.read_outputs = read_outputs
        self._reported_stages: set[str] = set()
        self._count_written = metrics.log_written.inc
        self._count_failed = metrics.log_failed.inc

    def failed(self, started: float, error: BaseException) -> None:
        self.metrics.latency.observe(time.perf_counter() - started)
        self.metrics.error(type(error).__name__)

    def succeeded(self, started: float, args: tuple[Any, ...], kwargs: dict[str, Any], result: Any) -> None:
        self.metrics.latency.observe(time.perf_counter() - started)
        stage = "inputs"
        try:
            rows = self.read_inputs(args, kwargs)
            stage = "outputs"
            predictions, scores = self.read_outputs(result, len(rows))
            stage = "metrics"
            self.metrics.predictions.inc(len(rows))
            observe = self.metrics.score.observe
            for score in scores:
                if score is not None:
                    observe(score)
            ids = new_prediction_ids(len(rows))
            if self.writer is not None:
                stage = "log"
                self._log(ids, rows, predictions, scores)
        except Exception as error:  # monitoring must never break the model it watches
            self.metrics.monitoring_error(stage)
            if stage not in self._reported_stages:
                self._reported_stages.add(stage)
                logger.warning("promml: %s failed for model %s: %s", stage, self.metrics.labels[0], error)

    def _log(self, ids: tuple[str, ...], rows: list[dict[str, Any]], predictions: list[Any], scores: list[Any]) -> None:
        now = time.time()
        model_name, model_version = self.metrics.labels
        records = [
            prediction_record(pid, now, model_name, model_version, row, prediction, score)
            for pid, row, prediction, score in zip(ids, rows, predictions, scores, strict=True)
        ]
        assert self.writer is not None
        if not self.writer.submit(records, self._count_written, self._count_failed):
            self.metrics.log_dropped.inc(len(records))


def monitor(
    func: F | None = None,
    *,
    model_name: str,
    model_version: str,
    log_dir: str | os.PathLike[str] | None = None,
    inputs: InputsReader | None = None,
    outputs: OutputsReader | None = None,
    registry: CollectorRegistry = REGISTRY,
) -> Any:
    """Instrument a predict function (sync or async, function or method).

    - `model_name`, `model_version`: the label values of every metric and log record.
    - `log_dir`: where `predictions.jsonl` is appended; defaults to `$PROMML_LOG_DIR`; no directory, no log.
    - `inputs(args, kwargs) -> list of feature dicts`: defaults to the first argument after `self`, read as a
      dict (one row), a list of dicts or a pandas DataFrame (a batch).
    - `outputs(result, n_rows) -> (predictions, scores)`: defaults to reading `{"prediction", "score"}` dicts,
      a list of them, or plain predictions without scores.
    The ids given to the rows are available after the call from `promml.last_prediction_ids()`.
    """

    def decorate(target: F) -> F:
        directory = log_dir if log_dir is not None else os.environ.get(LOG_DIR_ENV)
        writer = shared_writer(Path(directory) / PREDICTIONS_FILE) if directory else None
        parameters = list(inspect.signature(target).parameters)
        skip_self = bool(parameters) and parameters[0] in ("self", "cls")
        state = _Monitor(
            bind_metrics(model_name, model_version, registry),
            writer,
            inputs or _default_inputs(skip_self),
            outputs or predictions_and_scores,
        )

        if inspect.iscoroutinefunction(target):

            @functools.wraps(target)
            async def monitored_async(*args: Any, **kwargs: Any) -> Any:
                started = time.perf_counter()
                try:
                    result = await target(*args, **kwargs)
                except Exception as error:
                    state.failed(started, error)
                    raise
                state.succeeded(started, args, kwargs, result)
                return result

            return monitored_async  # type: ignore[return-value]

        @functools.wraps(target)
        def monitored(*args: Any, **kwargs: Any) -> Any:
            started = time.perf_counter()
            try:
                result = target(*args, **kwargs)
            except Exception as error:
                state.failed(started, error)
                raise
            state.succeeded(started, args, kwargs, result)
            return result

        return monitored  # type: ignore[return-value]

    return decorate(func) if func is not None else decorate
