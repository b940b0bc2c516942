"""The fast prediction decoder agrees with the exact parser on every line it accepts, and passes on the rest."""

from __future__ import annotations

import json

import pytest

from promml.exporter.decode import decode_predictions, decode_predictions_one_by_one
from promml.exporter.service import parse_line
from promml.records import PREDICTION_FIELDS, parse_prediction, prediction_record

EPOCH = 1_790_000_000.123456


def line(**change: object) -> bytes:
    record = prediction_record("id-1", EPOCH, "m", "1", {"age": 41, "income": 5.5, "region": "north", "x": None},
                               1, 0.83)
    record.update(change)
    return json.dumps({k: v for k, v in record.items() if v is not ...}).encode()


GOOD = [line(), line(prediction_id="id-2", score=...), line(prediction="cat", score=1), line(features={})]
UNDECIDED = [
    b"not json", b"[1, 2]", line(prediction_id=""), line(timestamp="2026-11-22T14:03:02"), line(timestamp=5),
    line(features={"a": [1]}), line(score=True), line(model_name=3), line(features=...),
    b'{"prediction_id": "a", "timestamp": "2026-11-22T14:03:02.000000Z", "model_name": "m", "model_version": "1",'
    b' "features": {"a": NaN}, "prediction": 1}',
    line(features={"a": 10**400}), line(features={"a": 2**70}),
    line(features={"region": "\ud800"}), line(features={"\udfff": 1.0}), line(prediction_id="\ud800"),
    line(prediction_id="i" * 129),
]


def as_tuple(prediction: object) -> tuple:
    return tuple(getattr(prediction, name) for name in
                 ("prediction_id", "timestamp", "model_name", "model_version", "features", "prediction", "score"))


@pytest.mark.parametrize("decode", [decode_predictions, decode_predictions_one_by_one])
def test_accepted_lines_equal_the_exact_parser(decode) -> None:
    decoded = decode(GOOD)
    for text, prediction in zip(GOOD, decoded, strict=True):
        status, expected = parse_line(text, parse_prediction, PREDICTION_FIELDS)
        assert status == "ok"
        assert as_tuple(prediction) == as_tuple(expected)


@pytest.mark.parametrize("decode", [decode_predictions, decode_predictions_one_by_one])
def test_anything_doubtful_is_left_to_the_exact_parser(decode) -> None:
    assert decode(UNDECIDED) == [None] * len(UNDECIDED)
    mixed = [GOOD[0], *UNDECIDED, GOOD[1]]
    results = decode(mixed)
    assert results[1:-1] == [None] * len(UNDECIDED)
    assert results[0] is not None and results[-1] is not None


def test_a_line_holding_two_values_cannot_shift_the_batch() -> None:
    glued = GOOD[0] + b"," + GOOD[1]
    assert decode_predictions([glued, GOOD[2]])[0] is None
    assert decode_predictions([]) == []
