"""The writer: log lines are what the library's own record builders and encoder make, timestamps are
`utc_timestamp`'s, and the exporter configuration waits as long as the labels take."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from promml.exporter.config import ConfigError, parse_config
from promml.instrumentation.jsonl_writer import encode_line
from promml.records import feedback_record, prediction_record, utc_timestamp
from promml.simulate.writer import LogWriter, exporter_config, log_names, utc_timestamps, write_exporter_config


def test_timestamps_equal_utc_timestamp_including_rounding_at_the_microsecond() -> None:
    rng = np.random.default_rng(0)
    times = 1.767e9 + rng.random(50_000) * 1e7
    whole = np.floor(times[:500])
    times = np.concatenate([times, whole + 0.5e-6, whole + 0.9999995, whole + 1.5e-6, whole])
    assert utc_timestamps(times) == [utc_timestamp(moment) for moment in times.tolist()]


def test_lines_are_the_library_records_encoded_by_the_log_writer(tmp_path: Path) -> None:
    writer = LogWriter(tmp_path, "logs/p.jsonl", "logs/f.jsonl", ("m", "2"), "abc")
    times = np.array([1.767e9 + 0.25, 1.767e9 + 1.5])
    features = {"x": np.array([1.0, np.nan]), "n": np.array([3.0, 4.0]), "c": np.array(["a", None], dtype=object)}
    writer.write_predictions(np.array([0, 1]), times, features, {"x": False, "n": True, "c": False},
                             np.array([1, 0]), np.array([0.75, np.nan]))
    writer.write_feedback(np.array([1]), np.array([1.767e9 + 60.0]), np.array([1]))
    writer.close()
    expected = [
        encode_line(prediction_record("abc-0", times[0], "m", "2", {"x": 1.0, "n": 3, "c": "a"}, 1, 0.75)),
        encode_line(prediction_record("abc-1", times[1], "m", "2", {"x": None, "n": 4, "c": None}, 0, None)),
    ]
    assert (tmp_path / "logs" / "p.jsonl").read_text().splitlines() == expected
    assert json.loads(expected[1]) == {"prediction_id": "abc-1", "timestamp": utc_timestamp(times[1]),
                                       "model_name": "m", "model_version": "2",
                                       "features": {"x": None, "n": 4, "c": None}, "prediction": 0}
    assert (tmp_path / "logs" / "f.jsonl").read_text().splitlines() == [
        encode_line(feedback_record("abc-1", 1.767e9 + 60.0, 1))]


def test_log_names_per_replica() -> None:
    assert log_names(1) == {"predictions": ["logs/predictions.jsonl"], "feedback": ["logs/feedback.jsonl"]}
    assert log_names(2)["feedback"] == ["logs/feedback-replica-0.jsonl", "logs/feedback-replica-1.jsonl"]


def test_the_exporter_keeps_predictions_as_long_as_their_labels_take() -> None:
    quick = exporter_config(("m", "1"), ["p"], ["f"], label_wait_seconds=1800, rps=50, segments=(), listen_port=1,
                            overrides={})
    assert quick["windows"] == [{"name": "1h", "seconds": 3600}, {"name": "10m", "seconds": 600}]
    assert "window_seconds" not in quick
    slow = exporter_config(("m", "1"), ["p"], ["f"], label_wait_seconds=6.5 * 3600, rps=50, segments=["region"],
                           listen_port=1, overrides={})
    assert slow["windows"] == [{"name": "1h", "seconds": 3600}, {"name": "10m", "seconds": 600},
                               {"name": "7h", "seconds": 7 * 3600}]
    assert slow["max_pending_predictions"] == 50 * 7 * 3600 * 1.2 and slow["segments"] == ["region"]
    assert parse_config(slow).label_ttl == 7 * 3600
    mine = exporter_config(("m", "1"), ["p"], ["f"], label_wait_seconds=6.5 * 3600, rps=50, segments=(),
                           listen_port=1, overrides={"window_seconds": 300, "slot_seconds": 10})
    assert (mine["window_seconds"], mine["slot_seconds"], "windows" in mine) == (300, 10, False)


def test_a_bad_override_is_refused_with_the_exporter_s_own_message(tmp_path: Path) -> None:
    config = exporter_config(("m", "1"), ["p"], ["f"], label_wait_seconds=60, rps=1, segments=(), listen_port=1,
                             overrides={"window_secs": 300})
    with pytest.raises(ConfigError, match=r"unknown key 'window_secs'; did you mean 'window_seconds'\?"):
        write_exporter_config(tmp_path / "exporter.yml", config, "header")
    assert not (tmp_path / "exporter.yml").exists()
