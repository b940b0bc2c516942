import json

import pytest

import promml
from promml.instrumentation.jsonl_writer import shared_writer
from promml.records import parse_feedback


def test_feedback_is_appended_as_a_record(tmp_path):
    assert promml.record_feedback("abc-1", 1, log_dir=tmp_path)
    assert promml.record_feedback("abc-2", "cat", log_dir=tmp_path)
    shared_writer(tmp_path / "feedback.jsonl").flush()
    records = [parse_feedback(json.loads(line)) for line in (tmp_path / "feedback.jsonl").read_text().splitlines()]
    assert [(r.prediction_id, r.label) for r in records] == [("abc-1", 1), ("abc-2", "cat")]


@pytest.mark.parametrize(
    ("prediction_id", "label", "message"),
    [("", 1, "prediction_id"), (None, 1, "prediction_id"), ("a", None, "label is required")],
)
def test_caller_mistakes_raise(tmp_path, prediction_id, label, message):
    with pytest.raises(promml.FeedbackError, match=message):
        promml.record_feedback(prediction_id, label, log_dir=tmp_path)


def test_no_log_directory_is_an_error(monkeypatch):
    monkeypatch.delenv("PROMML_LOG_DIR", raising=False)
    with pytest.raises(promml.FeedbackError, match="PROMML_LOG_DIR"):
        promml.record_feedback("a", 1)
