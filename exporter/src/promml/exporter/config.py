"""The exporter's YAML configuration, validated at start with errors that name the key and what it expects."""

from __future__ import annotations

import difflib
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from .segments import DEFAULT_MAX_SEGMENT_VALUES, DEFAULT_MIN_SEGMENT_ROWS, MAX_SEGMENT_FEATURES


class ConfigError(ValueError):
    """A configuration that cannot be used; the message names the key and says what is expected."""


MAX_SLOTS = 20_000
"""Most time slots the window may hold, (longest window + max_future_seconds) / slot_seconds (about 25 KiB each with
20 features): 7 days of 1-minute slots fit. A config needing more is refused, so no setting and no clock can grow
the slot table without bound (records stamped further ahead are placed at read time, see max_future_seconds)."""

DEFAULT_MAX_FUTURE_SECONDS = 300.0
"""How far ahead of the exporter's clock a record may be stamped and still be used at its own time: clocks of
well-run hosts differ by far less. A record stamped later is used as if stamped when read, and counted."""


def window_name(seconds: float) -> str:
    """A window's default name, its length as a Prometheus-style duration: 300 → "5m", 86400 → "24h", 90 → "90s"."""
    if seconds >= 1 and float(seconds).is_integer():
        whole = int(seconds)
        for unit, size in (("h", 3600), ("m", 60)):
            if whole % size == 0:
                return f"{whole // size}{unit}"
        return f"{whole}s"
    return f"{seconds:g}s"


@dataclass(frozen=True)
class WindowSpec:
    """One sliding window: its `window` label value and its length in seconds."""

    name: str
    seconds: float


@dataclass(frozen=True)
class ExporterConfig:
    """Every setting of the exporter; docs/exporter.md documents each key.

    `windows` lists every sliding window, the first being the primary one (the unlabelled contract metrics);
    left empty, it is the single window `window_seconds` long. `window_seconds` is always the primary window's
    length.
    """

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
    max_pending_predictions: int = 200_000
    checkpoint_path: Path | None = None
    checkpoint_interval_seconds: float = 60.0
    windows: tuple[WindowSpec, ...] = ()
    label_ttl_seconds: float | None = None
    early_label_grace_seconds: float = 30.0
    max_future_seconds: float = DEFAULT_MAX_FUTURE_SECONDS
    follow_symlinks_out_of_log_dir: bool = False
    sample_size: int = 1000
    positive_class: str | int | float | bool | None = None
    """None: the baseline's positive class (format 3), else 1."""
    segments: tuple[str, ...] = ()
    max_segment_values: int = DEFAULT_MAX_SEGMENT_VALUES
    min_segment_rows: int = DEFAULT_MIN_SEGMENT_ROWS

    def __post_init__(self) -> None:
        if not self.windows:
            object.__setattr__(self, "windows", (WindowSpec(window_name(self.window_seconds), self.window_seconds),))
        object.__setattr__(self, "window_seconds", self.windows[0].seconds)

    @property
    def longest_window_seconds(self) -> float:
        return max(spec.seconds for spec in self.windows)

    @property
    def label_ttl(self) -> float:
        """How long a prediction waits for its label: `label_ttl_seconds`, by default the longest window."""
        return self.longest_window_seconds if self.label_ttl_seconds is None else self.label_ttl_seconds


_REQUIRED = ("model_name", "model_version", "baseline", "prediction_logs")
_OPTIONAL = (
    "feedback_logs",
    "listen",
    "window_seconds",
    "windows",
    "slot_seconds",
    "recompute_interval_seconds",
    "poll_interval_seconds",
    "max_pending_predictions",
    "label_ttl_seconds",
    "early_label_grace_seconds",
    "max_future_seconds",
    "follow_symlinks_out_of_log_dir",
    "sample_size",
    "positive_class",
    "segments",
    "max_segment_values",
    "min_segment_rows",
    "checkpoint_path",
    "checkpoint_interval_seconds",
)
_KNOWN = _REQUIRED + _OPTIONAL
_EXAMPLE_WINDOWS = "[{name: 1h, seconds: 3600}, {name: 24h, seconds: 86400}]"


def _unknown_key_message(key: Any, known: tuple[str, ...], where: str = "") -> str:
    close = difflib.get_close_matches(str(key), known, n=1, cutoff=0.6)
    hint = f"; did you mean {close[0]!r}?" if close else f"; known keys: {', '.join(known)}"
    return f"{where}unknown key {key!r}{hint}"


def _string(raw: dict[str, Any], key: str) -> str:
    value = raw[key]
    if isinstance(value, int | float) and not isinstance(value, bool):
        # YAML reads `model_version: 1.10` as the number 1.1: converting it back would silently name another
        # version than the one the model logs, so the only safe reading is the text the user meant to write.
        raise ConfigError(f"{key}: expected a string, but YAML read {value!r} as a number (`1.10` would become "
                          f'1.1): quote it exactly as the model logs it, e.g. {key}: "{value}"')
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


def _seconds(value: Any, key: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value) or value <= 0:
        raise ConfigError(f"{key}: expected a positive number of seconds, got {value!r}")
    return float(value)


def _positive(raw: dict[str, Any], key: str, default: float) -> float:
    return _seconds(raw.get(key, default), key)


def _non_negative(raw: dict[str, Any], key: str, default: float) -> float:
    value = raw.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value) or value < 0:
        raise ConfigError(f"{key}: expected a number of seconds, 0 or more, got {value!r}")
    return float(value)


def _positive_integer(raw: dict[str, Any], key: str, default: int) -> int:
    value = raw.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigError(f"{key}: expected a positive integer, got {value!r}")
    return value


def _boolean(raw: dict[str, Any], key: str, default: bool) -> bool:
    value = raw.get(key, default)
    if not isinstance(value, bool):
        raise ConfigError(f"{key}: expected true or false, got {value!r}")
    return value


def _listen(raw: dict[str, Any]) -> tuple[str, int]:
    value = raw.get("listen", "0.0.0.0:9102")
    host, _, port = str(value).rpartition(":")
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ConfigError(f"listen: expected HOST:PORT such as 0.0.0.0:9102, got {value!r}")
    return host.strip("[]"), int(port)


def _windows(raw: dict[str, Any]) -> tuple[WindowSpec, ...]:
    """`windows` (a list of {name, seconds}), or the single window of `window_seconds`; not both."""
    if "windows" not in raw:
        seconds = _positive(raw, "window_seconds", ExporterConfig.window_seconds)
        return (WindowSpec(window_name(seconds), seconds),)
    if "window_seconds" in raw:
        raise ConfigError("window_seconds: give either window_seconds or windows, not both")
    value = raw["windows"]
    if not isinstance(value, list) or not value:
        raise ConfigError(f"windows: expected a non-empty list such as {_EXAMPLE_WINDOWS}, got {value!r}")
    specs: list[WindowSpec] = []
    for index, item in enumerate(value):
        where = f"windows[{index}]"
        if not isinstance(item, dict):
            raise ConfigError(f"{where}: expected a mapping {{name: 1h, seconds: 3600}}, got {item!r}")
        for key in item:
            if key not in ("name", "seconds"):
                raise ConfigError(_unknown_key_message(key, ("name", "seconds"), f"{where}: "))
        if "seconds" not in item:
            raise ConfigError(f"{where}.seconds: missing; expected the window's length in seconds")
        seconds = _seconds(item["seconds"], f"{where}.seconds")
        name = item.get("name", window_name(seconds))
        if isinstance(name, int | float) and not isinstance(name, bool):
            name = str(name)
        if not isinstance(name, str) or not name:
            raise ConfigError(f"{where}.name: expected a non-empty string (the `window` label), got {name!r}")
        if any(spec.name == name for spec in specs):
            raise ConfigError(f"{where}.name: {name!r} names two windows; expected distinct names")
        # Two windows of one length would export the primary window twice under two names (every window alert,
        # joined to the primary window's length, would fire twice) and add nothing.
        same = [spec.name for spec in specs if spec.seconds == seconds]
        if same:
            raise ConfigError(f"{where}.seconds: {seconds:g} s is already the length of window {same[0]!r}; "
                              "expected distinct lengths")
        specs.append(WindowSpec(name, seconds))
    return tuple(specs)


def _positive_class(raw: dict[str, Any]) -> str | int | float | bool | None:
    value = raw.get("positive_class")
    if value is None:
        return None
    if not isinstance(value, str | int | float) or (isinstance(value, float) and not math.isfinite(value)):
        raise ConfigError(f"positive_class: expected a class as the model predicts it (e.g. 1 or \"yes\"), got "
                          f"{value!r}")
    return value


def _segments(raw: dict[str, Any]) -> tuple[str, ...]:
    """Segment feature names: distinct, at most MAX_SEGMENT_FEATURES (whether the baseline has them is checked once
    it is loaded, by the window)."""
    value = raw.get("segments")
    if value is None:
        value = []
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(item, str) and item for item in value):
        raise ConfigError(f"segments: expected a list of feature names such as [region], got {value!r}")
    if len(value) > MAX_SEGMENT_FEATURES:
        raise ConfigError(f"segments: expected at most {MAX_SEGMENT_FEATURES} features, got {len(value)}")
    repeated = sorted({name for name in value if value.count(name) > 1})
    if repeated:
        raise ConfigError(f"segments: {repeated[0]!r} is listed twice; expected distinct feature names")
    return tuple(value)


def _check_text(value: Any, where: str) -> None:
    """Every key and string has a UTF-8 form. YAML's `"\\ud800"` escape gives a lone surrogate, which as a label
    (model_name, a window name) would make every scrape fail; PyYAML keeps even a pair as two lone halves."""
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            raise ConfigError(f"{where or 'the configuration'}: text {value!r} has no UTF-8 form (a surrogate "
                              f"escape); write the character itself") from None
    elif isinstance(value, dict):
        for key, item in value.items():
            _check_text(key, where)
            _check_text(item, f"{where}.{key}" if where else str(key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            _check_text(item, f"{where}[{index}]")


def parse_config(raw: Any, base_dir: Path = Path(".")) -> ExporterConfig:
    """Validate a decoded YAML document; relative paths are resolved against `base_dir` (the file's folder)."""
    if not isinstance(raw, dict):
        raise ConfigError("the configuration must be a YAML mapping of key: value")
    _check_text(raw, "")
    for key in raw:
        if key not in _KNOWN:
            raise ConfigError(_unknown_key_message(key, _KNOWN))
    missing = [key for key in _REQUIRED if key not in raw]
    if missing:
        raise ConfigError(f"missing required key(s): {', '.join(missing)}")
    prediction_logs = _patterns(raw, "prediction_logs")
    if not prediction_logs:
        raise ConfigError("prediction_logs: expected at least one path or glob")
    windows = _windows(raw)
    shortest = min(spec.seconds for spec in windows)
    longest = max(spec.seconds for spec in windows)
    slot = _positive(raw, "slot_seconds", ExporterConfig.slot_seconds)
    if slot > shortest:
        key = "window_seconds" if "windows" not in raw else "the shortest window"
        raise ConfigError(f"slot_seconds: expected at most {key} ({shortest:g}), got {slot:g}")
    label_ttl = None
    if raw.get("label_ttl_seconds") is not None:
        label_ttl = _positive(raw, "label_ttl_seconds", longest)
        if label_ttl > longest:
            raise ConfigError(f"label_ttl_seconds: expected at most the longest window ({longest:g} s): a label "
                              f"joined later could not change any window; got {label_ttl:g}")
    max_future = _non_negative(raw, "max_future_seconds", DEFAULT_MAX_FUTURE_SECONDS)
    if (longest + max_future) / slot + 2 > MAX_SLOTS:
        raise ConfigError(f"slot_seconds: the longest window ({longest:.0f} s) plus max_future_seconds "
                          f"({max_future:.0f}) would need more than {MAX_SLOTS} slots of {slot:g} s; expected a "
                          f"larger slot_seconds")
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
        window_seconds=windows[0].seconds,
        slot_seconds=slot,
        recompute_interval_seconds=_positive(
            raw, "recompute_interval_seconds", ExporterConfig.recompute_interval_seconds
        ),
        poll_interval_seconds=_positive(raw, "poll_interval_seconds", ExporterConfig.poll_interval_seconds),
        max_pending_predictions=_positive_integer(
            raw, "max_pending_predictions", ExporterConfig.max_pending_predictions
        ),
        checkpoint_path=checkpoint_path,
        checkpoint_interval_seconds=_positive(
            raw, "checkpoint_interval_seconds", ExporterConfig.checkpoint_interval_seconds
        ),
        windows=windows,
        label_ttl_seconds=label_ttl,
        early_label_grace_seconds=_non_negative(
            raw, "early_label_grace_seconds", ExporterConfig.early_label_grace_seconds
        ),
        max_future_seconds=max_future,
        follow_symlinks_out_of_log_dir=_boolean(raw, "follow_symlinks_out_of_log_dir", False),
        sample_size=_positive_integer(raw, "sample_size", ExporterConfig.sample_size),
        positive_class=_positive_class(raw),
        segments=_segments(raw),
        max_segment_values=_positive_integer(raw, "max_segment_values", ExporterConfig.max_segment_values),
        min_segment_rows=_positive_integer(raw, "min_segment_rows", ExporterConfig.min_segment_rows),
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
