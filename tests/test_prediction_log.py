"""PredictionBatch renders exactly the records the log format documents, lazily."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from promml.instrumentation.prediction_log import PredictionBatch
from promml.instrumentation.rows import RowShapeError
from promml.records import parse_prediction, utc_timestamp

EPOCH = 1_790_000_000.25


def test_renders_one_record_per_row_with_ids_in_order() -> None:
    batch = PredictionBatch(("pfx", 7, 2), EPOCH, ("m", "1"), [{"a": 1}, {"a": 2}], [0, 1], [0.1, None])
    assert len(batch) == 2
    records = list(batch)
    assert records == [
        {"prediction_id": "pfx-7-0", "timestamp": utc_timestamp(EPOCH), "model_name": "m", "model_version": "1",
         "features": {"a": 1}, "prediction": 0, "score": 0.1},
        {"prediction_id": "pfx-7-1", "timestamp": utc_timestamp(EPOCH), "model_name": "m", "model_version": "1",
         "features": {"a": 2}, "prediction": 1},
    ]
    for record in records:
        parse_prediction(json.loads(json.dumps(record)))  # valid against the documented format


def test_numpy_outputs_and_array_inputs_become_plain_json() -> None:
    batch = PredictionBatch(("p", 1, 2), EPOCH, ("m", "1"), np.array([[1.5, 2], [3, 4]]),
                            np.array([1, 0]), np.array([0.9, 0.2]), feature_names=["x", "y"])
    records = list(batch)
    assert [r["features"] for r in records] == [{"x": 1.5, "y": 2.0}, {"x": 3.0, "y": 4.0}]
    assert json.loads(json.dumps(records))[0]["prediction"] == 1  # an int, not the text "1"
    assert [type(r["prediction"]) for r in records] == [int, int]


def test_dataframe_inputs_and_sampled_rows() -> None:
    frame = pd.DataFrame({"x": [1, 2, 3], "region": ["a", "b", "c"]})
    batch = PredictionBatch(("p", 2, 3), EPOCH, ("m", "1"), frame, [0, 1, 0], None, keep=[0, 2])
    assert len(batch) == 2
    assert [(r["prediction_id"], r["features"]) for r in batch] == [
        ("p-2-0", {"x": 1, "region": "a"}), ("p-2-2", {"x": 3, "region": "c"}),
    ]


def test_rows_that_do_not_match_the_predictions_raise() -> None:
    with pytest.raises(ValueError, match="1 feature rows for 2 predictions"):
        list(PredictionBatch(("p", 1, 2), EPOCH, ("m", "1"), [{"a": 1}], [0, 1], None))
    with pytest.raises(RowShapeError, match="feature_names"):
        list(PredictionBatch(("p", 1, 1), EPOCH, ("m", "1"), np.array([1.0, 2.0]), [0], None))
