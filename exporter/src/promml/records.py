"""The prediction and feedback log records: one place that builds and parses the contract in docs/log-format.md.

The instrumented model writes these records and the exporter reads them, so both sides import this module and
cannot drift apart.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

import msgspec
import numpy as np

PREDICTION_FIELDS = ("prediction_id", "timestamp", "model_name", "model_version", "features", "prediction")
FEEDBACK_FIELDS = ("prediction_id", "timestamp", "label")


class InvalidRecord(ValueError):
    """A log record that does not follow the format; the message says which field and why."""


MAX_PREDICTION_ID_LENGTH = 128
"""Longest `prediction_id`, in characters (promml's own are 24 to about 30; a UUID is 36). The exporter holds ids in
memory (predictions waiting for a label, labelled ids, labels read early) and in its checkpoint, so a longer id is
rejected rather than held: 400 labels with 1 MiB ids would otherwise hold 400 MiB."""

MAX_LABEL_LENGTH = 256
"""Longest text label (a class name), in characters: a label read before its prediction is held for a while."""


SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F]", re.ASCII)
"""A JSON escape of a UTF-16 surrogate (`\\ud800`..`\\udfff`). Raw bytes of a line are UTF-8 checked when decoded,
so an escape is the only way text with no UTF-8 form (a lone surrogate) gets in; lines without one need no check."""


def has_unencodable_text(line: bytes, decoded: Any) -> bool:
    """Does a decoded line hold a string (a key or a value) with no UTF-8 form, such as a lone surrogate?

    Why: JSON accepts `"\\ud800"`, but such text cannot be written as a metric label (every scrape would fail) nor
    saved to a UTF-8 file. A valid surrogate pair (`"\\ud83d\\ude00"`) decodes to one character and passes."""
    if SURROGATE_ESCAPE.search(line) is None:
        return False
    try:
        json.dumps(decoded, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


_last_second: tuple[int, str] = (-1, "")


def utc_timestamp(epoch_seconds: float) -> str:
    """RFC 3339 UTC with microseconds, the timestamp format of every record.

    Equal to `datetime.fromtimestamp(epoch_seconds, timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")` (rounded half
    to even, as datetime does), but the date part is formatted once per second: the log writer calls this per row.
    """
    global _last_second
    fraction, whole = math.modf(epoch_seconds)
    seconds, micros = int(whole), round(fraction * 1e6)
    if micros < 0:
        seconds, micros = seconds - 1, micros + 1_000_000
    elif micros >= 1_000_000:
        seconds, micros = seconds + 1, micros - 1_000_000
    cached_second, prefix = _last_second
    if cached_second != seconds:
        prefix = datetime.fromtimestamp(seconds, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%S")
        _last_second = (seconds, prefix)
    return f"{prefix}.{micros:06d}Z"


_THREE_DIGITS = [f"{value:03d}" for value in range(1000)]


def utc_timestamps(epoch_seconds: Iterable[float] | np.ndarray) -> list[str]:
    """`utc_timestamp` of many times at once, with the same rounding (half to even, on the same float product).

    Why: the log writer formats a timestamp per row, and one by one that was a fifth of its time. Here the date and
    time of day are formatted once per second (shared with `utc_timestamp`), and the microseconds are two look-ups
    in a table of three-digit strings, with no call per row. Plain Python, not numpy: numpy lets go of the
    interpreter lock in its loops over large arrays, and each time the log writer lets go it may wait the
    interpreter's whole switch interval (5 ms) to get the lock back from a busy caller.
    """
    global _last_second
    times = epoch_seconds.tolist() if isinstance(epoch_seconds, np.ndarray) else epoch_seconds
    digits = _THREE_DIGITS
    floor = math.floor
    texts = []
    cached_second, prefix = _last_second
    for moment in times:
        whole = floor(moment)
        micros = round((moment - whole) * 1e6)
        if micros == 1_000_000:
            whole, micros = whole + 1, 0
        if whole != cached_second:
            prefix = datetime.fromtimestamp(whole, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%S")
            cached_second = whole
        milli, micro = divmod(micros, 1000)
        texts.append(f"{prefix}.{digits[milli]}{digits[micro]}Z")
    _last_second = (cached_second, prefix)
    return texts


_last_parsed_second: tuple[str, int] = ("", 0)


def parse_timestamp(text: Any) -> float:
    """Seconds since the epoch from an RFC 3339 timestamp; naive timestamps are rejected, not guessed.

    The form promml writes (`2026-11-22T14:03:02.123456Z`) takes a shortcut: the date and time up to the second
    are parsed once per second and the microseconds added, with the same arithmetic as `datetime.timestamp()`.
    """
    if not isinstance(text, str):
        raise InvalidRecord(f"timestamp must be an RFC 3339 string, got {type(text).__name__}")
    global _last_parsed_second
    if len(text) == 27 and text[19] == "." and text[26] == "Z" and text[20:26].isdigit():
        second_text, whole_seconds = _last_parsed_second
        if text[:19] != second_text:
            try:
                moment = datetime.fromisoformat(text[:19] + "+00:00")
            except ValueError:
                raise InvalidRecord(f"timestamp {text!r} is not RFC 3339") from None
            whole_seconds = int(moment.timestamp())
            _last_parsed_second = (text[:19], whole_seconds)
        return (whole_seconds * 10**6 + int(text[20:26])) / 10**6
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise InvalidRecord(f"timestamp {text!r} is not RFC 3339") from None
    if moment.tzinfo is None:
        raise InvalidRecord(f"timestamp {text!r} has no UTC offset")
    return moment.timestamp()


def prediction_record(
    prediction_id: str,
    epoch_seconds: float,
    model_name: str,
    model_version: str,
    features: dict[str, Any],
    prediction: Any,
    score: float | None,
    *,
    timestamp: str | None = None,
) -> dict[str, Any]:
    """One prediction log record; `score` is left out when the model gives none.

    `timestamp`, when given, is `utc_timestamp(epoch_seconds)` already formatted (a batch formats it once).
    """
    record = {
        "prediction_id": prediction_id,
        "timestamp": timestamp or utc_timestamp(epoch_seconds),
        "model_name": model_name,
        "model_version": model_version,
        "features": features,
        "prediction": prediction,
    }
    if score is not None:
        record["score"] = score
    return record


def json_value(value: Any) -> Any:
    """`value` with every NaN and infinity (Python's, numpy's) and pandas' NA/NaT replaced by None, recursively.

    Why: JSON has no NaN or Infinity; a writer that emitted the bare tokens would break the format for every strict
    reader, and the exporter would have to drop the whole row for one missing value. A missing value is `null`,
    which the exporter counts as missing for that feature only (docs/log-format.md). Only records that hold such a
    value pay for this walk: the writer tries a strict encoding first.
    """
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {key: json_value(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [json_value(item) for item in value]
    if value is None or isinstance(value, str | int):
        return value
    ndim = getattr(value, "ndim", None)
    if ndim == 0 and hasattr(value, "item"):  # a numpy scalar
        return json_value(value.item())
    if ndim and hasattr(value, "tolist"):  # a numpy array
        return json_value(value.tolist())
    if type(value).__name__ in ("NAType", "NaTType"):  # pandas' missing values, recognised without pandas
        return None
    return value


class PredictionLine(msgspec.Struct, omit_defaults=True, gc=False):
    """A prediction record as the log writer encodes it: the fields of `prediction_record`, in its order, with
    `score` left out when None. A struct is cheaper to build than a dict, and msgspec encodes it as the same object.
    Untracked by the garbage collector (`gc=False`): it lives for one encode, cannot be part of a reference cycle
    (nothing refers back to it), and tracking it made the collector a third of the writer's cost.
    """

    prediction_id: str
    timestamp: str
    model_name: str
    model_version: str
    features: dict[str, Any]
    prediction: Any
    score: Any = None


def feedback_record(prediction_id: str, epoch_seconds: float, label: Any, *, timestamp: str | None = None
                    ) -> dict[str, Any]:
    """One feedback (ground truth) log record; `timestamp`, when given, is `utc_timestamp(epoch_seconds)` already
    formatted (a writer of many records formats them at once)."""
    return {"prediction_id": prediction_id, "timestamp": timestamp or utc_timestamp(epoch_seconds), "label": label}


@dataclass(slots=True)
class Prediction:
    """A validated prediction record, as the exporter uses it."""

    prediction_id: str
    timestamp: float
    model_name: str
    model_version: str
    features: dict[str, Any]
    prediction: Any
    score: float | None


@dataclass(frozen=True, slots=True)
class Feedback:
    """A validated feedback record."""

    prediction_id: str
    timestamp: float
    label: Any


def _require(record: Any, fields: tuple[str, ...]) -> dict[str, Any]:
    if not isinstance(record, dict):
        raise InvalidRecord(f"record must be a JSON object, got {type(record).__name__}")
    if not record.keys() >= set(fields):
        missing = [name for name in fields if name not in record]
        raise InvalidRecord(f"missing field(s): {', '.join(missing)}")
    if not isinstance(record["prediction_id"], str) or not record["prediction_id"]:
        raise InvalidRecord("prediction_id must be a non-empty string")
    if len(record["prediction_id"]) > MAX_PREDICTION_ID_LENGTH:
        raise InvalidRecord(f"prediction_id must be at most {MAX_PREDICTION_ID_LENGTH} characters")
    return record


def _is_plain_value(value: Any) -> bool:
    """JSON scalars the statistics can use; NaN and infinities are not values."""
    if value is None or isinstance(value, str | bool):
        return True
    if isinstance(value, int | float):
        return math.isfinite(value)
    return False


def parse_prediction(record: Any) -> Prediction:
    """Validate a decoded prediction record, raising InvalidRecord that names the bad field."""
    record = _require(record, PREDICTION_FIELDS)
    features = record["features"]
    if not isinstance(features, dict):
        raise InvalidRecord("features must be a JSON object of name -> value")
    for name, value in features.items():
        if not _is_plain_value(value):
            raise InvalidRecord(f"feature {name!r} must be a finite number, string, boolean or null")
    for name in ("model_name", "model_version"):
        if not isinstance(record[name], str):
            raise InvalidRecord(f"{name} must be a string")
    score = record.get("score")
    if score is not None and (
        isinstance(score, bool) or not isinstance(score, int | float) or not math.isfinite(score)
    ):
        raise InvalidRecord("score must be a finite number")
    if not _is_plain_value(record["prediction"]):
        raise InvalidRecord("prediction must be a finite number, string, boolean or null")
    return Prediction(
        prediction_id=record["prediction_id"],
        timestamp=parse_timestamp(record["timestamp"]),
        model_name=record["model_name"],
        model_version=record["model_version"],
        features=features,
        prediction=record["prediction"],
        score=None if score is None else float(score),
    )


def parse_feedback(record: Any) -> Feedback:
    """Validate a decoded feedback record, raising InvalidRecord that names the bad field."""
    record = _require(record, FEEDBACK_FIELDS)
    if not _is_plain_value(record["label"]) or record["label"] is None:
        raise InvalidRecord("label must be a finite number, string or boolean")
    if isinstance(record["label"], str) and len(record["label"]) > MAX_LABEL_LENGTH:
        raise InvalidRecord(f"label must be at most {MAX_LABEL_LENGTH} characters")
    return Feedback(
        prediction_id=record["prediction_id"],
        timestamp=parse_timestamp(record["timestamp"]),
        label=record["label"],
    )
