"""Decoding prediction log lines into records: a whole poll's lines in one call, validated in C by msgspec.

Why: decoding and validating each record in Python costs several times what parsing the JSON does. This is the
second of the exporter's three readers: it reads what the compiled scanner (`scan.py`) left (features the baseline
does not have, text in a numeric feature, escapes, another model), or everything when the scanner is not built.
Anything it cannot decide (a malformed line, NaN, a naive timestamp, an empty id, an escaped surrogate) is left to
`parse_line`, which gives the exact reason, so every path counts every line the same way.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

import msgspec

from ..records import MAX_PREDICTION_ID_LENGTH, SURROGATE_ESCAPE, Prediction

Int64 = Annotated[int, msgspec.Meta(ge=-(2**63), le=2**63 - 1)]
"""Larger integers are rare and may not fit a float: they take the exact path, which judges them."""
FeatureValue = Int64 | float | str | bool | None


class _PredictionRecord(msgspec.Struct):
    """The prediction record of docs/log-format.md; unknown fields are ignored, as `parse_prediction` does."""

    prediction_id: str
    timestamp: datetime
    model_name: str
    model_version: str
    features: dict[str, FeatureValue]
    prediction: FeatureValue
    score: float | None = None


_ONE = msgspec.json.Decoder(_PredictionRecord)

_MANY = msgspec.json.Decoder(list[_PredictionRecord])


def _prediction(record: _PredictionRecord) -> Prediction | None:
    """The record as a Prediction, or None when a check msgspec does not make fails.

    The decoded struct has every attribute of `Prediction`, so it is used as one (no copy) once its timestamp is
    turned into epoch seconds."""
    moment = record.timestamp
    if not record.prediction_id or len(record.prediction_id) > MAX_PREDICTION_ID_LENGTH or moment.tzinfo is None:
        return None
    record.timestamp = moment.timestamp()  # type: ignore[assignment]
    return record  # type: ignore[return-value]


def decode_predictions(lines: list[bytes]) -> list[Prediction | None]:
    """One entry per line: its Prediction, or None where the line needs `parse_line` to say what is wrong."""
    if not lines:
        return []
    batch = b"[" + b",".join(lines) + b"]"
    if SURROGATE_ESCAPE.search(batch) is not None:  # text that may have no UTF-8 form: parse_line judges it
        return [None if SURROGATE_ESCAPE.search(line) else result
                for line, result in zip(lines, decode_predictions_one_by_one(lines), strict=True)]
    try:
        records: list[_PredictionRecord | None] = list(_MANY.decode(batch))
    except msgspec.DecodeError:  # some line is bad (or two lines glued into one value): decide line by line
        records = []
        for line in lines:
            try:
                records.append(_ONE.decode(line))
            except msgspec.DecodeError:
                records.append(None)
    if len(records) != len(lines):  # a line holding "1,2" would shift the batch: never trust it then
        return decode_predictions_one_by_one(lines)
    return [None if record is None else _prediction(record) for record in records]


def decode_predictions_one_by_one(lines: list[bytes]) -> list[Prediction | None]:
    """The same, one line at a time (slower; for batches that cannot be decoded as one)."""
    results: list[Prediction | None] = []
    for line in lines:
        try:
            results.append(_prediction(_ONE.decode(line)))
        except msgspec.DecodeError:
            results.append(None)
    return results
