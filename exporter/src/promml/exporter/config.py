"""The exporter's YAML configuration, validated at start with errors that name the key and what it expects."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml


class ConfigError(ValueError):
    """A configuration that cannot be used; the message names the key and says what is expected."""


@dataclass(frozen=True)
class ExporterConfig:
    """Every setting of the exporter; docs/exporter.md documents each key."""

    model_name: str
    model_version: str
    baseline: Path
    prediction_logs: tuple[str, ...]
    feedback_logs: tuple[str, ...]
    listen_host: str = "0.0.0.0"
    listen_port: int = 9102
    window_seconds: float = 3600.0
    slot_seconds: float = 60.0
    recompute_interval_seconds: float = 15.0
    poll_interval_seconds: float = 1.0
    max_pending_predictions: int = 1_000_000
    checkpoint_path: Path | None = None


_REQUIRED = ("model_name", "model_version", "baseline", "prediction_logs")
_OPTIONAL = (
    "feedback_logs",
    "listen",
    "window_seconds",
    "slot_seconds",
    "recompute_interval_seconds",
    "poll_interval_seconds",
    "max_pending_predictions",
    "checkpoint_path",
)


def _string(raw: dict[str, Any], key: str) -> str:
    value = raw[key]
    if isinstance(value, int | float) and not isinstance(value, bool):
        value = str(value)  # `model_version: 1` in YAML is a number; the label is its text
    if not isinstance(value, str) or not value:
        raise ConfigError(f"{key}: expected a non-empty string, got {value!r}")
    return value


def _patterns(raw: dict[str, Any], key: str) -> tuple[str, ...]:
    value = raw.get(key, [])
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(item, str) and item for item in value):
        raise ConfigError(f"{key}: expected a path or glob, or a list of them, got {value!r}")
    return tuple(value)


def _positive(raw: dict[str, Any], key: str, default: float) -> float:
    value = raw.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
        raise ConfigError(f"{key}: expected a positive number of seconds, got {value!r}")
    return float(value)


def _listen(raw: dict[str, Any]) -> tuple[str, int]:
    value = raw.get("listen", "0.0.0.0:9102")
    host, _, port = str(value).rpartition(":")
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ConfigError(f"listen: expected HOST:PORT such as 0.0.0.0:9102, got {value!r}")
    return host.strip("[]"), int(port)


def parse_config(raw: Any, base_dir: Path = Path(".")) -> ExporterConfig:
    """Validate a decoded YAML document; relative paths are resolved against `base_dir` (the file's folder)."""
    if not isinstance(raw, dict):
        raise ConfigError("the configuration must be a YAML mapping of key: value")
    unknown = sorted(set(raw) - set(_REQUIRED) - set(_OPTIONAL))
    if unknown:
        raise ConfigError(f"unknown key(s): {', '.join(unknown)}; known keys: {', '.join(_REQUIRED + _OPTIONAL)}")
    missing = [key for key in _REQUIRED if key not in raw]
    if missing:
        raise ConfigError(f"missing required key(s): {', '.join(missing)}")
    prediction_logs = _patterns(raw, "prediction_logs")
    if not prediction_logs:
        raise ConfigError("prediction_logs: expected at least one path or glob")
    window = _positive(raw, "window_seconds", ExporterConfig.window_seconds)
    slot = _positive(raw, "slot_seconds", ExporterConfig.slot_seconds)
    if slot > window:
        raise ConfigError(f"slot_seconds: expected at most window_seconds ({window}), got {slot}")
    max_pending = raw.get("max_pending_predictions", ExporterConfig.max_pending_predictions)
    if isinstance(max_pending, bool) or not isinstance(max_pending, int) or max_pending < 1:
        raise ConfigError(f"max_pending_predictions: expected a positive integer, got {max_pending!r}")
    host, port = _listen(raw)

    def resolve(pattern: str) -> str:
        return str(base_dir / pattern) if not Path(pattern).is_absolute() else pattern

    checkpoint_path = None
    if raw.get("checkpoint_path") is not None:
        checkpoint_path = Path(resolve(_string(raw, "checkpoint_path")))

    return ExporterConfig(
        model_name=_string(raw, "model_name"),
        model_version=_string(raw, "model_version"),
        baseline=Path(resolve(_string(raw, "baseline"))),
        prediction_logs=tuple(resolve(p) for p in prediction_logs),
        feedback_logs=tuple(resolve(p) for p in _patterns(raw, "feedback_logs")),
        listen_host=host,
        listen_port=port,
        window_seconds=window,
        slot_seconds=slot,
        recompute_interval_seconds=_positive(
            raw, "recompute_interval_seconds", ExporterConfig.recompute_interval_seconds
        ),
        poll_interval_seconds=_positive(raw, "poll_interval_seconds", ExporterConfig.poll_interval_seconds),
        max_pending_predictions=max_pending,
        checkpoint_path=checkpoint_path,
    )


def load_config(path: str | Path) -> ExporterConfig:
    """Read and validate the YAML file at `path`."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as error:
        raise ConfigError(f"cannot read {path}: {error.strerror or error}") from None
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as error:
        raise ConfigError(f"{path} is not valid YAML: {error}") from None
    return parse_config(raw, path.parent)
