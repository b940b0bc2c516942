"""PredictionBatch renders exactly the records the log format documents, lazily, and encodes them as strict JSON."""

from __future__ import annotations

import json

import msgspec
import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from promml.instrumentation.jsonl_writer import _encode_other
from promml.instrumentation.prediction_ids import format_ids
from promml.instrumentation.prediction_log import PredictionBatch
from promml.instrumentation.rows import RowShapeError
from promml.records import parse_prediction, utc_timestamp

EPOCH = 1_790_000_000.25
SECRET = bytes(32)
CALL_7, CALL_2 = format_ids((SECRET, 7, 1))[0], format_ids((SECRET, 2, 1))[0]


def test_renders_one_record_per_row_with_ids_in_order() -> None:
    batch = PredictionBatch((SECRET, 7, 2), EPOCH, ("m", "1"), [{"a": 1}, {"a": 2}], [0, 1], [0.1, None])
    assert len(batch) == 2
    records = list(batch)
    assert records == [
        {"prediction_id": f"{CALL_7}-0", "timestamp": utc_timestamp(EPOCH), "model_name": "m", "model_version": "1",
         "features": {"a": 1}, "prediction": 0, "score": 0.1},
        {"prediction_id": f"{CALL_7}-1", "timestamp": utc_timestamp(EPOCH), "model_name": "m", "model_version": "1",
         "features": {"a": 2}, "prediction": 1},
    ]
    for record in records:
        parse_prediction(json.loads(json.dumps(record)))  # valid against the documented format


def test_numpy_outputs_and_array_inputs_become_plain_json() -> None:
    batch = PredictionBatch((SECRET, 1, 2), EPOCH, ("m", "1"), np.array([[1.5, 2], [3, 4]]),
                            np.array([1, 0]), np.array([0.9, 0.2]), feature_names=["x", "y"])
    records = list(batch)
    assert [r["features"] for r in records] == [{"x": 1.5, "y": 2.0}, {"x": 3.0, "y": 4.0}]
    assert json.loads(json.dumps(records))[0]["prediction"] == 1  # an int, not the text "1"
    assert [type(r["prediction"]) for r in records] == [int, int]


def test_dataframe_inputs_and_sampled_rows() -> None:
    frame = pd.DataFrame({"x": [1, 2, 3], "region": ["a", "b", "c"]})
    batch = PredictionBatch((SECRET, 2, 3), EPOCH, ("m", "1"), frame, [0, 1, 0], None, keep=[0, 2])
    assert len(batch) == 2
    assert [(r["prediction_id"], r["features"]) for r in batch] == [
        (f"{CALL_2}-0", {"x": 1, "region": "a"}), (f"{CALL_2}-2", {"x": 3, "region": "c"}),
    ]


def test_rows_that_do_not_match_the_predictions_raise() -> None:
    with pytest.raises(ValueError, match="1 feature rows for 2 predictions"):
        list(PredictionBatch((SECRET, 1, 2), EPOCH, ("m", "1"), [{"a": 1}], [0, 1], None))
    with pytest.raises(RowShapeError, match="feature_names"):
        list(PredictionBatch((SECRET, 1, 1), EPOCH, ("m", "1"), np.array([1.0, 2.0]), [0], None))


def strict_lines(data: bytes) -> list[dict]:
    """Parse JSON Lines with a parser that refuses the NaN/Infinity tokens the JSON standard does not have."""
    def refuse(token: str) -> None:
        raise ValueError(f"{token} is not JSON")

    assert data.endswith(b"\n")  # split on the newline byte only, as the exporter does (str.splitlines also
    return [json.loads(line.decode("utf-8"), parse_constant=refuse)  # splits on U+0085 and U+2028)
            for line in data.split(b"\n")[:-1]]


def expected_lines(batch: PredictionBatch) -> list[dict]:
    """What the documented records of `iter(batch)` say, with non-finite numbers as null."""
    def finite(value):
        if isinstance(value, float) and not np.isfinite(value):
            return None
        return value

    return [{key: ({k: finite(v) for k, v in value.items()} if key == "features" else finite(value))
             for key, value in record.items()} for record in batch]


ENCODER = msgspec.json.Encoder(enc_hook=_encode_other)


@pytest.mark.parametrize("batch", [
    PredictionBatch((SECRET, 1, 1), EPOCH, ("m", "1"), {"a": 1.5, "b": "x", "c": None}, [1], [0.7]),
    PredictionBatch((SECRET, 1, 1), EPOCH, ("m", "1"), {"a": np.float32(0.5), "b": np.int64(3)}, [np.int64(1)], None),
    PredictionBatch((SECRET, 1, 2), EPOCH, ("m", "1"), [{"a": 1}, {"a": float("nan")}], ["yes", "no"], [0.1, None]),
    PredictionBatch((SECRET, 1, 2), EPOCH, ("m", "1"), np.array([[1.5, np.inf], [3, np.nan]]), np.array([1, 0]),
                    np.array([0.9, np.nan]), feature_names=["x", "y"]),
    PredictionBatch((SECRET, 2, 3), EPOCH, ("m", "1"), pd.DataFrame({"x": [1, 2, 3], "r": ["a", "b", None]}),
                    [0, 1, 0], None, keep=[0, 2]),
], ids=["one-row", "numpy-scalars", "list", "array-non-finite", "frame-sampled"])
def test_encoded_lines_are_the_records_as_strict_json(batch: PredictionBatch) -> None:
    lines = strict_lines(batch.encode_lines(ENCODER))
    assert lines == expected_lines(batch)
    for line in lines:
        parse_prediction(line)


FEATURE_VALUES = st.one_of(
    st.none(), st.booleans(), st.integers(-(2**62), 2**62), st.floats(allow_nan=True, allow_infinity=True),
    st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=12),
    st.floats(allow_nan=True, allow_infinity=True, width=32).map(np.float32),
    st.integers(-(2**31), 2**31).map(np.int64),
)


@settings(max_examples=200, deadline=None)
@given(
    rows=st.lists(st.dictionaries(st.text(min_size=1, max_size=8), FEATURE_VALUES, max_size=6), min_size=1,
                  max_size=5),
    scores=st.lists(st.one_of(st.none(), st.floats(allow_nan=True, allow_infinity=True)), min_size=5, max_size=5),
)
def test_the_log_is_valid_json_whatever_the_features(rows: list[dict], scores: list) -> None:
    """A property of the writer's encoding: every line parses with a strict JSON parser, one per row, with every
    finite value kept and NaN/±inf (numpy's included) as null; no row is dropped for one bad value."""
    batch = PredictionBatch((SECRET, 3, len(rows)), EPOCH, ("m", "1"), rows if len(rows) > 1 else rows[0],
                            list(range(len(rows))), scores[: len(rows)])
    lines = strict_lines(batch.encode_lines(ENCODER))
    assert len(lines) == len(rows)
    for line, row in zip(lines, rows, strict=True):
        assert line["features"].keys() == row.keys()
        for name, value in row.items():
            plain = value.item() if isinstance(value, np.generic) else value
            if isinstance(plain, float) and not np.isfinite(plain):
                assert line["features"][name] is None
            else:
                assert line["features"][name] == plain


def test_a_drain_renders_each_batch_as_it_renders_alone_and_a_bad_batch_fails_alone() -> None:
    """The writer renders all the calls of a drain at once (ids and timestamps per drain); that gives each batch
    exactly its own lines, and a batch that cannot be rendered fails without taking its neighbours along."""
    batches = [
        PredictionBatch((SECRET, 10 + index, 1), EPOCH + index * 1e-6, ("m", "1"), {"a": index}, [index], [0.5])
        for index in range(7)
    ]
    batches += [
        PredictionBatch((SECRET, 30, 2), EPOCH + 1, ("m", "1"), [{"a": 1}, {"a": 2}], [0, 1], [0.1, None]),
        PredictionBatch((SECRET, 31, 2), EPOCH + 1, ("m", "1"), [{"a": 1}], [0, 1], None),  # rows do not match
        PredictionBatch((SECRET, 32, 3), EPOCH + 2, ("m", "1"), pd.DataFrame({"x": [1, 2, 3]}), [0, 1, 0], None,
                        keep=[1]),
        PredictionBatch((SECRET, 33, 1), EPOCH + 3, ("m", "2"), {"a": 9}, ["yes"], None),
    ]
    rendered = PredictionBatch.render_many(batches)
    assert isinstance(rendered[8], ValueError)
    for index, (batch, lines) in enumerate(zip(batches, rendered, strict=True)):
        if index == 8:
            continue
        assert strict_lines(ENCODER.encode_lines(lines)) == expected_lines(batch)
        assert ENCODER.encode_lines(lines) == batch.encode_lines(ENCODER)
