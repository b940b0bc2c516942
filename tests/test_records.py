import json
import math
from datetime import datetime, timezone

import pytest

from promml.records import (
    InvalidRecord,
    feedback_record,
    parse_feedback,
    parse_prediction,
    parse_timestamp,
    prediction_record,
    utc_timestamp,
    utc_timestamps,
)

EPOCH = datetime(2026, 11, 22, 14, 3, 2, 123456, tzinfo=timezone.utc).timestamp()


def test_timestamp_is_rfc3339_utc_with_microseconds():
    assert utc_timestamp(EPOCH) == "2026-11-22T14:03:02.123456Z"
    assert parse_timestamp("2026-11-22T14:03:02.123456Z") == EPOCH
    assert parse_timestamp("2026-11-22T15:03:02.123456+01:00") == EPOCH


@pytest.mark.parametrize("text", ["2026-11-22T14:03:02", "yesterday", 17, None])
def test_timestamps_without_zone_or_not_text_are_rejected(text):
    with pytest.raises(InvalidRecord, match="timestamp"):
        parse_timestamp(text)


def test_prediction_record_round_trips_through_json():
    record = prediction_record("id-1", EPOCH, "m", "1", {"age": 41, "region": "north"}, 1, 0.83)
    assert list(record) == [
        "prediction_id", "timestamp", "model_name", "model_version", "features", "prediction", "score",
    ]
    parsed = parse_prediction(json.loads(json.dumps(record)))
    assert parsed.prediction_id == "id-1"
    assert parsed.timestamp == EPOCH
    assert parsed.features == {"age": 41, "region": "north"}
    assert (parsed.prediction, parsed.score) == (1, 0.83)


def test_score_is_optional():
    record = prediction_record("id-1", EPOCH, "m", "1", {}, "cat", None)
    assert "score" not in record
    assert parse_prediction(record).score is None


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"features": [1, 2]}, "features must be a JSON object"),
        ({"features": {"x": math.nan}}, "feature 'x'"),
        ({"features": {"x": [1]}}, "feature 'x'"),
        ({"score": "high"}, "score must be a finite number"),
        ({"score": math.inf}, "score must be a finite number"),
        ({"prediction_id": ""}, "prediction_id"),
        ({"model_name": 3}, "model_name must be a string"),
        ({"timestamp": "nope"}, "timestamp"),
    ],
)
def test_invalid_predictions_name_the_field(change, message):
    record = {**prediction_record("id", EPOCH, "m", "1", {"x": 1.0}, 0, 0.5), **change}
    with pytest.raises(InvalidRecord, match=message):
        parse_prediction(record)


def test_ids_and_text_labels_over_their_length_are_rejected():
    record = prediction_record("i" * 128, EPOCH, "m", "1", {"x": 1.0}, 0, 0.5)
    assert parse_prediction(record).prediction_id == "i" * 128
    with pytest.raises(InvalidRecord, match="prediction_id must be at most 128 characters"):
        parse_prediction({**record, "prediction_id": "i" * 129})
    assert parse_feedback(feedback_record("id", EPOCH, "l" * 256)).label == "l" * 256
    with pytest.raises(InvalidRecord, match="label must be at most 256 characters"):
        parse_feedback(feedback_record("id", EPOCH, "l" * 257))
    with pytest.raises(InvalidRecord, match="prediction_id must be at most 128"):
        parse_feedback(feedback_record("i" * 129, EPOCH, 1))


def test_missing_fields_are_listed():
    with pytest.raises(InvalidRecord, match="missing field\\(s\\): timestamp, features"):
        parse_prediction({"prediction_id": "a", "model_name": "m", "model_version": "1", "prediction": 1})
    with pytest.raises(InvalidRecord, match="must be a JSON object"):
        parse_prediction([1, 2])


def test_feedback_round_trip_and_validation():
    parsed = parse_feedback(feedback_record("id-1", EPOCH, 1))
    assert (parsed.prediction_id, parsed.timestamp, parsed.label) == ("id-1", EPOCH, 1)
    with pytest.raises(InvalidRecord, match="label"):
        parse_feedback({"prediction_id": "id-1", "timestamp": utc_timestamp(EPOCH), "label": None})
    with pytest.raises(InvalidRecord, match="missing field\\(s\\): label"):
        parse_feedback({"prediction_id": "id-1", "timestamp": utc_timestamp(EPOCH)})


def test_utc_timestamp_equals_datetime_formatting():
    import random
    from datetime import datetime, timezone

    rng = random.Random(5)
    moments = [0.0, 0.9999995, 1.0000005, 1_790_000_000.0, 1_790_000_000.9999999, 1_790_000_000.0000005]
    moments += [rng.uniform(0, 4_000_000_000) for _ in range(20_000)]
    moments += [1_790_000_000 + rng.random() for _ in range(20_000)]  # many within one second: the cached path
    for moment in moments:
        expected = datetime.fromtimestamp(moment, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        assert utc_timestamp(moment) == expected, moment


def test_utc_timestamps_equal_utc_timestamp_one_by_one():
    import random

    import numpy as np

    rng = random.Random(11)
    moments = [0.0, 0.9999995, 1.0000005, -0.5, -1.0000005, 1_790_000_000.0, 1_790_000_000.9999999,
               1_790_000_000.0005, 1_790_000_000.0015, 1_790_000_000.0000005, 1_790_000_000.0000015]
    moments += [rng.uniform(0, 4_000_000_000) for _ in range(20_000)]
    moments += sorted(1_790_000_000 + rng.random() * 0.01 for _ in range(20_000))  # many rows per millisecond
    assert utc_timestamps(moments) == [utc_timestamp(moment) for moment in moments]
    assert utc_timestamps(np.array(moments[:50])) == [utc_timestamp(moment) for moment in moments[:50]]
    assert utc_timestamps([]) == []


def test_parse_timestamp_equals_datetime_for_the_written_form_and_others():
    import random
    from datetime import datetime

    rng = random.Random(7)
    texts = [utc_timestamp(rng.uniform(0, 4_000_000_000)) for _ in range(20_000)]
    texts += [utc_timestamp(1_790_000_000 + rng.random()) for _ in range(5_000)]  # the cached second
    texts += ["2026-11-22T14:03:02Z", "2026-11-22T15:03:02.5+01:00", "2026-11-22T14:03:02.123456+00:00"]
    for text in texts:
        assert parse_timestamp(text) == datetime.fromisoformat(text).timestamp(), text
    for bad in ["2026-13-22T14:03:02.123456Z", "2026-11-22T14:03:02.12345aZ", "2026-11-22 14:03:02"]:
        with pytest.raises(InvalidRecord):
            parse_timestamp(bad)


def test_json_value_makes_every_non_finite_or_missing_value_null():
    import numpy as np
    import pandas as pd

    from promml.records import json_value

    value = {"a": [1.5, float("nan"), (float("inf"), -float("inf"))], "b": np.float32("nan"), "c": np.int64(3),
             "d": pd.NA, "e": pd.NaT, "f": np.array([1.0, np.inf]), "g": "NaN", "h": True, "i": None}
    assert json_value(value) == {"a": [1.5, None, [None, None]], "b": None, "c": 3, "d": None, "e": None,
                                 "f": [1.0, None], "g": "NaN", "h": True, "i": None}
    assert type(json_value(value)["c"]) is int
