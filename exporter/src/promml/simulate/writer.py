"""Everything `promml simulate` writes: the logs, the baseline, the exporter's configuration, `scenario.json`.

Log lines are built by `promml.records` (the record builders the instrumented model uses) and encoded by the log
writer's own `encode_lines`, so a simulated line is byte for byte what `promml.monitor` would have written for the
same row. The baseline comes from promml's baseline builder; the exporter configuration is checked by the
exporter's own parser before it is written.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np
import yaml

from ..exporter.config import ConfigError, parse_config
from ..instrumentation.jsonl_writer import encode_lines
from ..records import feedback_record, prediction_record, utc_timestamp, utc_timestamps

LOGS_DIR = "logs"
BASELINE_FILE = "baseline.json"
EXPORTER_FILE = "exporter.yml"
SCENARIO_FILE = "scenario.json"
DEFAULT_WINDOW_SECONDS = 3600.0
"""The exporter's own default window: an hour of traffic judges drift on thousands of rows at 1 prediction/s."""
SHORT_WINDOW_SECONDS = 600.0
"""A second, short window for the page on a sudden shift: DataDriftDetected's critical rule judges each model's
shortest window, and a shift fills ten minutes of rows six times sooner than an hour (docs/alerting.md)."""
DEFAULT_SLOT_SECONDS = 60.0
LABEL_TTL_QUANTILE = 0.99
"""Predictions wait for their label until this quantile of the delay: 1 label in 100 comes too late to join."""
PENDING_MARGIN = 1.2


def replica_names(replicas: int) -> list[str]:
    return [f"replica-{index}" for index in range(replicas)]


def log_names(replicas: int) -> dict[str, list[str]]:
    """Log files per kind, relative to the output folder: one pair, or one pair per replica."""
    if replicas == 1:
        return {"predictions": [f"{LOGS_DIR}/predictions.jsonl"], "feedback": [f"{LOGS_DIR}/feedback.jsonl"]}
    return {kind: [f"{LOGS_DIR}/{kind}-{name}.jsonl" for name in replica_names(replicas)]
            for kind in ("predictions", "feedback")}


def _json_list(values: np.ndarray, integer: bool) -> list[Any]:
    """JSON-ready values: NaN → None (a missing value is null in the log), integers as ints."""
    if values.dtype == object:
        return values.tolist()
    missing = np.isnan(values)
    plain = values.astype(np.int64).tolist() if integer and not missing.any() else values.tolist()
    if missing.any():
        plain = [None if gone else (int(value) if integer else value)
                 for value, gone in zip(plain, missing.tolist(), strict=True)]
    return plain


class LogWriter:
    """One replica's prediction and feedback logs, appended a batch at a time."""

    def __init__(self, out: Path, predictions: str, feedback: str, model: tuple[str, str], id_prefix: str) -> None:
        self.predictions_path, self.feedback_path = out / predictions, out / feedback
        self.predictions_path.parent.mkdir(parents=True, exist_ok=True)
        self._predictions: BinaryIO = open(self.predictions_path, "wb")  # noqa: SIM115
        self._feedback: BinaryIO = open(self.feedback_path, "wb")  # noqa: SIM115
        self.model_name, self.model_version = model
        self.id_prefix = id_prefix
        self.predictions_written = 0
        self.feedback_written = 0

    def prediction_id(self, sequence: int) -> str:
        return f"{self.id_prefix}-{sequence}"

    def write_predictions(self, sequences: np.ndarray, times: np.ndarray, features: Mapping[str, np.ndarray],
                          integer: Mapping[str, bool], predictions: np.ndarray, scores: np.ndarray | None) -> None:
        names = list(features)
        columns = [_json_list(features[name], integer[name]) for name in names]
        prediction_values = _json_list(predictions, True) if predictions.dtype != object else predictions.tolist()
        score_values = [None] * len(times) if scores is None else _json_list(scores, False)
        name, version, prefix = self.model_name, self.model_version, self.id_prefix
        records = [
            prediction_record(f"{prefix}-{sequence}", moment, name, version, dict(zip(names, row, strict=True)),
                              prediction, score, timestamp=stamp)
            for sequence, moment, stamp, row, prediction, score in zip(
                sequences.tolist(), times.tolist(), utc_timestamps(times), zip(*columns, strict=True),
                prediction_values, score_values, strict=True)
        ] if names else []
        if records:
            self._predictions.write(encode_lines(records))
        self.predictions_written += len(records)

    def write_feedback(self, sequences: np.ndarray, times: np.ndarray, labels: np.ndarray) -> None:
        values = labels.tolist()
        prefix = self.id_prefix
        records = [feedback_record(f"{prefix}-{sequence}", moment, label, timestamp=stamp)
                   for sequence, moment, stamp, label in zip(sequences.tolist(), times.tolist(), utc_timestamps(times),
                                                             values, strict=True)]
        if records:
            self._feedback.write(encode_lines(records))
        self.feedback_written += len(records)

    def close(self) -> None:
        self._predictions.close()
        self._feedback.close()


def rfc3339(epoch_seconds: float) -> str:
    """Whole-second RFC 3339 (UTC) for scenario.json, or with microseconds when the time has a fraction."""
    if float(epoch_seconds).is_integer():
        return utc_timestamp(epoch_seconds)[:19] + "Z"
    return utc_timestamp(epoch_seconds)


def exporter_config(model: tuple[str, str], predictions: Sequence[str], feedback: Sequence[str], *,
                    label_wait_seconds: float, rps: float, segments: Sequence[str], listen_port: int,
                    overrides: Mapping[str, Any]) -> dict[str, Any]:
    """exporter.yml's keys: an hour's window (the primary) and a ten-minute one (what the drift page judges); when
    labels come later than an hour, a third window long enough for them to join (the exporter keeps a prediction
    only as long as its longest window) and room for every prediction waiting meanwhile; then the scenario's own
    `exporter:` keys on top."""
    config: dict[str, Any] = {
        "model_name": model[0],
        "model_version": model[1],
        "baseline": BASELINE_FILE,
        "prediction_logs": list(predictions),
        "feedback_logs": list(feedback),
        "listen": f"127.0.0.1:{listen_port}",
    }
    wait = label_wait_seconds + DEFAULT_SLOT_SECONDS
    config["windows"] = [{"name": "1h", "seconds": DEFAULT_WINDOW_SECONDS},
                         {"name": "10m", "seconds": SHORT_WINDOW_SECONDS}]
    if wait > DEFAULT_WINDOW_SECONDS:
        hours = int(np.ceil(wait / 3600))
        config["windows"].append({"name": f"{hours}h", "seconds": hours * 3600})
        config["max_pending_predictions"] = max(200_000, int(np.ceil(rps * hours * 3600 * PENDING_MARGIN)))
    config["slot_seconds"] = DEFAULT_SLOT_SECONDS
    if segments:
        config["segments"] = list(segments)
    for key, value in overrides.items():
        if key == "windows":
            config.pop("window_seconds", None)
        if key == "window_seconds":
            config.pop("windows", None)
        config[key] = value
    return config


def write_exporter_config(path: Path, config: Mapping[str, Any], header: str) -> None:
    """Check `config` with the exporter's own parser, then write it (ConfigError names the bad key)."""
    parse_config(dict(config), path.parent)
    text = "".join(f"# {line}\n" for line in header.splitlines()) + yaml.safe_dump(dict(config), sort_keys=False)
    path.write_text(text, encoding="utf-8")


def write_json(path: Path, document: Mapping[str, Any]) -> None:
    partial = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    partial.write_text(json.dumps(document, indent=2, allow_nan=False) + "\n", encoding="utf-8")
    os.replace(partial, path)


__all__ = ["ConfigError", "LogWriter", "exporter_config", "log_names", "replica_names", "rfc3339",
           "write_exporter_config", "write_json"]
