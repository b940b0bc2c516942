"""The exporter's work loop on real log files and a fake clock: line statuses, the label join, publishing, health."""

from __future__ import annotations

import copy
import dataclasses
import json
import logging
import os
import time
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from prometheus_client import CollectorRegistry, generate_latest

import promml
from promml.baseline import build_baseline, parse_baseline
from promml.exporter import scan
from promml.exporter.checkpoint import load_checkpoint
from promml.exporter.collector import ExporterCollector
from promml.exporter.config import ExporterConfig
from promml.exporter.service import ExporterService, parse_line
from promml.instrumentation.jsonl_writer import JsonlWriter, shared_writer
from promml.records import (
    FEEDBACK_FIELDS,
    PREDICTION_FIELDS,
    feedback_record,
    parse_feedback,
    parse_prediction,
    prediction_record,
)

START = 1_700_000_000.0


class FakeClock:
    def __init__(self, now: float) -> None:
        self.now = now
        self.broken = False

    def __call__(self) -> float:
        if self.broken:
            raise OSError("clock unavailable")
        return self.now


def wait_until(condition, timeout: float = 1.5) -> bool:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True


@pytest.fixture(scope="module")
def baseline():
    rng = np.random.default_rng(0)
    columns = {"x": rng.normal(0.0, 1.0, 1000).tolist(), "region": rng.choice(["a", "b"], size=1000).tolist()}
    return parse_baseline(build_baseline(columns, categorical=["region"]))


def make_config(tmp_path: Path, **overrides) -> ExporterConfig:
    settings = {
        "model_name": "m",
        "model_version": "1",
        "baseline": tmp_path / "baseline.json",
        "prediction_logs": (str(tmp_path / "predictions*.jsonl"),),
        "feedback_logs": (str(tmp_path / "feedback*.jsonl"),),
        "window_seconds": 60.0,
        "slot_seconds": 10.0,
        **overrides,
    }
    return ExporterConfig(**settings)


def append(path: Path, *lines: str | dict) -> None:
    with open(path, "a", encoding="utf-8") as handle:
        for line in lines:
            handle.write((line if isinstance(line, str) else json.dumps(line)) + "\n")


def predicted(pid: str, at: float, x: float = 0.0, prediction: int = 1, model: tuple[str, str] = ("m", "1")) -> dict:
    return prediction_record(pid, at, *model, {"x": x, "region": "a"}, prediction, 0.9)


def test_reads_lines_and_counts_every_status(tmp_path, baseline):
    clock = FakeClock(START)
    service = ExporterService(make_config(tmp_path), baseline, clock=clock)
    append(
        tmp_path / "predictions.jsonl",
        predicted("p1", START - 1),
        predicted("p2", START - 1, prediction=0),
        "{not json",
        {"prediction_id": "p3"},  # fields missing
        predicted("p4", START - 1, model=("other", "1")),
        predicted("p5", START - 1, model=("m", "2")),
        "x" * ((1 << 20) + 1),  # longer than the follower's line limit
    )
    append(
        tmp_path / "feedback.jsonl",
        feedback_record("p1", START, 1),
        feedback_record("p2", START, 1),
        feedback_record("p4", START, 1),  # its prediction was another model's, so it is unknown here
        feedback_record("nobody", START, 0),
        "[1,",
        {"prediction_id": "p1", "timestamp": "2024-01-01T00:00:00Z", "label": None},  # null is no label
    )
    service.read_logs()
    assert service.early_labels == 2  # p4's and nobody's labels wait a while for their prediction
    clock.now = START + 30
    service.read_logs()
    assert dict(service.record_counts) == {
        ("predictions", "ok"): 2,
        ("predictions", "invalid_json"): 1,
        ("predictions", "missing_field"): 1,
        ("predictions", "other_model"): 2,
        ("predictions", "oversized"): 1,
        ("feedback", "ok"): 2,
        ("feedback", "unknown_prediction_id"): 2,
        ("feedback", "invalid_json"): 1,
        ("feedback", "invalid_type"): 1,
        ("feedback", "oversized"): 0,
    }
    assert service.window.pending == 0 and service.early_labels == 0


def test_a_label_read_before_its_prediction_waits_for_it(tmp_path, baseline):
    clock = FakeClock(START)
    service = ExporterService(make_config(tmp_path, early_label_grace_seconds=10.0), baseline, clock=clock)
    append(tmp_path / "feedback.jsonl", feedback_record("early", START, 0), feedback_record("never", START, 1))
    service.read_logs()  # the prediction log's writer has not flushed yet
    assert service.record_counts[("feedback", "unknown_prediction_id")] == 0 and service.early_labels == 2
    clock.now = START + 5
    append(tmp_path / "predictions.jsonl", predicted("early", START - 0.5, prediction=1))
    service.read_logs()
    assert service.record_counts[("feedback", "ok")] == 1 and service.early_labels == 1
    service.recompute()
    assert (service.published.snapshot.labeled, service.published.snapshot.correct) == (1, 0)
    assert service.window.outcome_totals == {"incorrect": 1}
    clock.now = START + 10  # the grace period is over: the other label is unknown after all
    service.read_logs()
    counts = {status: n for (log, status), n in service.record_counts.items() if log == "feedback" and n}
    assert counts == {"ok": 1, "unknown_prediction_id": 1} and service.early_labels == 0


def test_without_a_grace_period_an_early_label_is_unknown_at_once(tmp_path, baseline):
    service = ExporterService(make_config(tmp_path, early_label_grace_seconds=0.0), baseline, clock=FakeClock(START))
    append(tmp_path / "feedback.jsonl", feedback_record("early", START, 0))
    service.read_logs()
    append(tmp_path / "predictions.jsonl", predicted("early", START))
    service.read_logs()
    assert service.record_counts[("feedback", "unknown_prediction_id")] == 1
    assert service.record_counts[("feedback", "ok")] == 0 and service.window.pending == 1


def test_a_held_label_survives_a_kill_and_is_counted_once(tmp_path, baseline):
    clock = FakeClock(START)
    config = checkpointed_config(tmp_path)
    first = ExporterService(config, baseline, clock=clock)
    append(tmp_path / "predictions.jsonl", predicted("p1", START - 2, prediction=1))
    append(tmp_path / "feedback.jsonl", feedback_record("p1", START - 1, 1), feedback_record("p2", START - 1, 1))
    first.step()  # p2's label is held, and saved with the checkpoint; then the process is killed
    assert first.early_labels == 1

    clock.now = START + 3
    second = ExporterService(config, baseline, clock=clock)
    append(tmp_path / "predictions.jsonl", predicted("p2", START - 1.5, prediction=0))
    second.read_logs()  # p1's label is read again uncounted; the held p2 label is joined, and counted, once
    counts = {status: n for (log, status), n in second.record_counts.items() if log == "feedback" and n}
    assert counts == {"ok": 2} and second.early_labels == 0
    assert second.window.outcome_totals == {"correct": 1, "incorrect": 1}
    second.recompute()
    assert (second.published.snapshot.labeled, second.published.snapshot.correct) == (2, 1)


def test_later_lines_are_read_once(tmp_path, baseline):
    service = ExporterService(make_config(tmp_path), baseline, clock=FakeClock(START))
    append(tmp_path / "predictions.jsonl", predicted("p1", START))
    service.read_logs()
    append(tmp_path / "predictions-2.jsonl", predicted("p2", START))  # a new file matching the glob
    append(tmp_path / "feedback.jsonl", feedback_record("p1", START, 1))
    service.read_logs()
    service.read_logs()
    assert service.record_counts[("predictions", "ok")] == 2
    assert service.record_counts[("feedback", "ok")] == 1
    assert service.window.pending == 1


def test_recompute_publishes_a_snapshot_at_the_clock_time(tmp_path, baseline):
    clock = FakeClock(START)
    service = ExporterService(make_config(tmp_path), baseline, clock=clock)
    assert (service.published.snapshot, service.published.computed_at) == (None, None)
    append(tmp_path / "predictions.jsonl", predicted("p1", START, prediction=1), predicted("p2", START, prediction=0))
    append(tmp_path / "feedback.jsonl", feedback_record("p1", START, 1), feedback_record("p2", START, 1))
    service.step()  # first round: reads and recomputes
    published = service.published
    assert published.computed_at == START
    assert (published.snapshot.predictions, published.snapshot.labeled, published.snapshot.accuracy) == (2, 2, 0.5)
    assert set(published.snapshot.drift) == {"x", "region"}

    clock.now = START + 65  # the window has moved past both rows
    service.step()  # within the recompute interval: nothing is recomputed
    assert service.published is published
    service.recompute()
    assert service.published.computed_at == START + 65
    assert (service.published.snapshot.predictions, service.published.snapshot.accuracy) == (0, None)


def test_health_follows_the_work_loop(tmp_path, baseline, caplog):
    config = make_config(tmp_path, poll_interval_seconds=0.01, recompute_interval_seconds=0.05)
    clock = FakeClock(START)
    service = ExporterService(config, baseline, clock=clock)
    assert service.is_healthy() is False  # not started
    service.start()
    try:
        assert wait_until(lambda: service.published.computed_at is not None)
        assert service.published.computed_at == START
        assert service.is_healthy() is True

        clock.broken = True  # from now on every round fails, and the loop survives it
        assert wait_until(lambda: any("round failed" in record.getMessage() for record in caplog.records))
        assert service.is_healthy() is True  # the last recompute is still recent
        service._last_recompute -= 3 * config.recompute_interval_seconds + 1.5  # as if rounds had failed for long
        assert service._thread.is_alive()
        assert service.is_healthy() is False
    finally:
        service.stop()
    assert service.is_healthy() is False  # stopped


VALID = json.dumps(predicted("v", START))


def with_field(key: str, value) -> bytes:
    record = json.loads(VALID)
    record[key] = value
    return json.dumps(record).encode()


@pytest.mark.parametrize(
    ("line", "status"),
    [
        (VALID.encode(), "ok"),
        (b"{not json", "invalid_json"),
        (b"\xff\xfe{}", "invalid_json"),  # not UTF-8
        (b"[" * 100_000, "invalid_json"),  # nested deeper than the decoder can go
        (b"[1, 2]", "invalid_type"),  # JSON, but not an object
        (b'{"prediction_id": "p"}', "missing_field"),
        (with_field("prediction_id", 7), "invalid_type"),
        (with_field("timestamp", "yesterday"), "invalid_type"),
        (with_field("timestamp", "2024-01-01T00:00:00"), "invalid_type"),  # no UTC offset
        (with_field("features", [1, 2]), "invalid_type"),
        (with_field("features", {"x": {"nested": 1}}), "invalid_type"),
        (with_field("score", "high"), "invalid_type"),
        (with_field("model_name", None), "invalid_type"),
        (VALID.replace('"x": 0.0', '"x": NaN').encode(), "non_finite"),
        (VALID.replace('"x": 0.0', '"x": -Infinity').encode(), "non_finite"),
        (VALID.replace('"score": 0.9', '"score": 1e999').encode(), "non_finite"),  # parses as inf
        (VALID.replace('"x": 0.0', '"x": 1' + "0" * 400).encode(), "non_finite"),  # no float holds it
        (VALID.replace('"prediction": 1', '"prediction": NaN').encode(), "non_finite"),
        (with_field("features", {"x": "\ud800"}), "invalid_text"),  # a lone surrogate: no UTF-8 form
        (with_field("features", {"\udc00": 1}), "invalid_text"),
        (with_field("prediction_id", "\ud800"), "invalid_text"),
        (with_field("prediction_id", "i" * 129), "too_long"),
        (with_field("features", {"x": "\ud83d\ude00"}), "ok"),  # a valid pair is one character
        (with_field("features", {"x": "\\ud800"}), "ok"),  # an escaped backslash, then text
    ],
)
def test_each_bad_line_has_its_reason(line, status):
    assert parse_line(line, parse_prediction, PREDICTION_FIELDS)[0] == status


def test_labels_with_huge_ids_or_labels_are_rejected_not_held(tmp_path, baseline):
    """Labels for unknown ids are held a while for their prediction: 1 MiB ids would hold 1 MiB each."""
    service = ExporterService(make_config(tmp_path), baseline, clock=FakeClock(START))
    append(tmp_path / "feedback.jsonl", *(feedback_record(f"{i}" + "i" * (64 << 10), START, 1) for i in range(50)),
           feedback_record("held", START, "l" * 257), feedback_record("i" * 128, START, "l" * 256))
    service.read_logs()
    assert service.record_counts[("feedback", "too_long")] == 51
    assert service.early_labels == 1  # the one within both limits


def test_a_label_with_no_utf8_form_is_invalid_text():
    line = json.dumps(feedback_record("\udbff", START, "\ud800")).encode()
    assert parse_line(line, parse_feedback, FEEDBACK_FIELDS) == ("invalid_text", None)


def test_a_second_label_for_the_same_prediction_is_a_duplicate(tmp_path, baseline):
    service = ExporterService(make_config(tmp_path, early_label_grace_seconds=0.0), baseline, clock=FakeClock(START))
    append(tmp_path / "predictions.jsonl", predicted("p1", START, prediction=1))
    append(tmp_path / "feedback.jsonl", feedback_record("p1", START, 1), feedback_record("p1", START + 1, 0))
    service.read_logs()
    append(tmp_path / "feedback.jsonl", feedback_record("p1", START + 2, 0), feedback_record("p2", START, 0))
    service.read_logs()
    counts = {status: n for (log, status), n in service.record_counts.items() if log == "feedback" and n}
    assert counts == {"ok": 1, "duplicate_feedback": 2, "unknown_prediction_id": 1}
    service.recompute()
    assert (service.published.snapshot.labeled, service.published.snapshot.accuracy) == (1, 1.0)  # the first label


def test_a_label_for_an_expired_prediction_is_unknown_even_when_no_prediction_came_since(tmp_path, baseline):
    clock = FakeClock(START)
    service = ExporterService(make_config(tmp_path, early_label_grace_seconds=0.0), baseline, clock=clock)
    append(tmp_path / "predictions.jsonl", predicted("p1", START))
    service.read_logs()
    clock.now = START + 200  # past the window and the label time-to-live; no recompute, no new prediction
    append(tmp_path / "feedback.jsonl", feedback_record("p1", START + 200, 1))
    service.read_logs()
    assert service.record_counts[("feedback", "unknown_prediction_id")] == 1
    assert (service.window.evicted_pending, service.window.outcome_totals) == (1, {})


def test_a_held_label_and_an_earlier_label_read_again_after_a_restart_settle_as_without_it(tmp_path, baseline):
    """The first label stands: after a restart the lines read again are joined before held labels are tried."""

    def run(restart: bool) -> tuple:
        folder = tmp_path / str(restart)
        folder.mkdir()
        config = checkpointed_config(folder, window_seconds=600.0)
        clock = FakeClock(START)
        service = ExporterService(config, baseline, clock=clock)
        append(folder / "predictions.jsonl", predicted("p1", START, prediction=1))
        append(folder / "feedback.jsonl", feedback_record("p1", START - 1000, 1))  # stamped long before: forgotten
        service.read_logs()
        clock.now += 1
        append(folder / "feedback.jsonl", feedback_record("p1", START + 1, 0))  # a second label: held
        service.step()
        if restart:
            service = ExporterService(config, baseline, clock=clock)
        clock.now += 60
        service.read_logs()
        counts = {status: n for (log, status), n in service.record_counts.items() if log == "feedback" and n}
        return counts, service.window.outcome_totals

    assert run(restart=True) == run(restart=False) == ({"ok": 1, "unknown_prediction_id": 1}, {"correct": 1})


def test_a_label_for_a_prediction_that_left_the_window_is_unknown_not_duplicate(tmp_path, baseline):
    clock = FakeClock(START)
    service = ExporterService(make_config(tmp_path, early_label_grace_seconds=0.0), baseline, clock=clock)
    append(tmp_path / "predictions.jsonl", predicted("p1", START))
    append(tmp_path / "feedback.jsonl", feedback_record("p1", START, 1))
    service.read_logs()
    clock.now = START + 200  # window 60 s: p1 and its label are forgotten
    append(tmp_path / "feedback.jsonl", feedback_record("p1", START + 200, 1))
    service.read_logs()
    assert service.record_counts[("feedback", "unknown_prediction_id")] == 1
    assert service.record_counts[("feedback", "duplicate_feedback")] == 0


def checkpointed_config(tmp_path: Path, **overrides) -> ExporterConfig:
    return make_config(tmp_path, checkpoint_path=tmp_path / "state" / "checkpoint.json", **overrides)


def test_a_killed_exporter_resumes_without_losing_or_double_counting(tmp_path, baseline):
    """Lines read after the last checkpoint are read again after a kill, and counted once in all."""
    clock = FakeClock(START)
    config = checkpointed_config(tmp_path)
    first = ExporterService(config, baseline, clock=clock)
    append(tmp_path / "predictions.jsonl", predicted("p1", START - 1, prediction=1), "{bad",
           predicted("p2", START - 1, prediction=0))
    append(tmp_path / "feedback.jsonl", feedback_record("p1", START, 1))
    first.step()  # reads, recomputes and saves the checkpoint
    assert load_checkpoint(config.checkpoint_path).record_counts[("predictions", "ok")] == 2
    append(tmp_path / "predictions.jsonl", predicted("p3", START, prediction=1))
    append(tmp_path / "feedback.jsonl", feedback_record("p2", START, 1), feedback_record("p1", START, 0))
    first.read_logs()  # counted in memory only: then the process is killed (no stop, no save)
    assert first.record_counts[("predictions", "ok")] == 3

    clock.now = START + 5
    second = ExporterService(config, baseline, clock=clock)
    append(tmp_path / "predictions.jsonl", predicted("p4", START + 4, prediction=0))
    append(tmp_path / "feedback.jsonl", feedback_record("p4", START + 5, 0))
    second.read_logs()
    second.recompute()
    assert {key: n for key, n in second.record_counts.items() if n} == {
        ("predictions", "ok"): 4,
        ("predictions", "invalid_json"): 1,
        ("feedback", "ok"): 3,
        ("feedback", "duplicate_feedback"): 1,
    }
    snapshot = second.published.snapshot
    assert (snapshot.predictions, snapshot.labeled, snapshot.correct) == (4, 3, 2)  # the window was rebuilt
    assert second.window.pending == 1  # p3 still waits for its label
    # the label counters go on from the checkpoint too: p1 (before it), p2 and p4 (after it), each once
    assert second.window.outcome_totals == {"correct": 2, "incorrect": 1}
    assert second.window.label_delay_counts.sum() == 3
    assert second.window.label_delay_sum == pytest.approx(1 + 1 + 1)


def test_stop_saves_a_checkpoint_that_a_restart_goes_on_from(tmp_path, baseline):
    config = checkpointed_config(tmp_path)
    first = ExporterService(config, baseline, clock=FakeClock(START))
    append(tmp_path / "predictions.jsonl", predicted("p1", START), predicted("p2", START))
    first.read_logs()
    first.stop()
    saved = load_checkpoint(config.checkpoint_path)
    assert saved.record_counts[("predictions", "ok")] == 2
    assert [p.offset for p in saved.positions["predictions"]] == [os.path.getsize(tmp_path / "predictions.jsonl")]
    second = ExporterService(config, baseline, clock=FakeClock(START))
    second.read_logs()
    second.recompute()
    assert second.record_counts[("predictions", "ok")] == 2
    assert second.published.snapshot.predictions == 2


def as_version_1(path: Path) -> None:
    """Rewrite a checkpoint as an older promml wrote it: no window, no labelled ids, no newest record times."""
    document = json.loads(path.read_text())
    for key in ("window", "labeled", "newest_records"):
        del document[key]
    document["version"] = 1
    path.write_text(json.dumps(document))


def test_records_older_than_the_window_are_not_read_again_after_a_restart(tmp_path, baseline):
    """The checkpoint's marks let a restart skip what can no longer be in the window."""
    clock = FakeClock(START)
    config = checkpointed_config(tmp_path, window_seconds=60.0, slot_seconds=10.0)
    first = ExporterService(config, baseline, clock=clock)
    append(tmp_path / "predictions.jsonl", predicted("old", START))
    first.read_logs()
    first.save_checkpoint()  # marks: the file was read up to here at START
    clock.now = START + 1000
    append(tmp_path / "predictions.jsonl", predicted("new", START + 1000))
    first.read_logs()
    first.save_checkpoint()
    (position,) = load_checkpoint(config.checkpoint_path).positions["predictions"]
    size_after_old = len(json.dumps(predicted("old", START))) + 1
    assert position.marks == ((START, size_after_old), (START + 1000, os.path.getsize(tmp_path / "predictions.jsonl")))
    as_version_1(config.checkpoint_path)  # without the window saved, a restart reads again what it may hold
    second = ExporterService(config, baseline, clock=clock)
    result = second._predictions.poll()
    assert [json.loads(line)["prediction_id"] for line in result.replayed] == ["new"]


def test_an_unusable_checkpoint_is_ignored_with_a_warning(tmp_path, baseline, caplog):
    config = checkpointed_config(tmp_path)
    config.checkpoint_path.parent.mkdir()
    append(tmp_path / "predictions.jsonl", predicted("p1", START))
    for content in ("{broken", json.dumps({"format": "something else"})):
        config.checkpoint_path.write_text(content)
        with caplog.at_level(logging.WARNING):
            service = ExporterService(config, baseline, clock=FakeClock(START))
        assert "ignoring checkpoint" in caplog.text
        service.read_logs()
        assert service.record_counts[("predictions", "ok")] == 1  # read from the start, counted from zero


def test_a_checkpoint_of_another_model_is_not_used(tmp_path, baseline, caplog):
    append(tmp_path / "predictions.jsonl", predicted("p1", START))
    other = ExporterService(checkpointed_config(tmp_path, model_version="0"), baseline, clock=FakeClock(START))
    other.read_logs()
    other.stop()
    with caplog.at_level(logging.WARNING):
        service = ExporterService(checkpointed_config(tmp_path), baseline, clock=FakeClock(START))
    assert "another model" in caplog.text
    service.read_logs()
    assert service.record_counts[("predictions", "ok")] == 1


def test_log_lag_unread_bytes_and_baseline_age(tmp_path, baseline):
    clock = FakeClock(START)
    dated = dataclasses.replace(baseline, created_at="2023-11-14T22:00:00Z")  # START is 22:13:20 UTC
    service = ExporterService(make_config(tmp_path), dated, clock=clock)
    append(tmp_path / "predictions.jsonl", predicted("p1", START - 30), predicted("p2", START - 12))
    append(tmp_path / "feedback.jsonl", feedback_record("p1", START - 5, 1))
    service.read_logs()
    append(tmp_path / "predictions.jsonl", predicted("p3", START))  # written, not read yet
    clock.now = START + 3
    service.recompute()
    published = service.published
    assert published.log_lag_seconds == {"predictions": 15.0, "feedback": 8.0}
    assert published.unread_bytes == {"predictions": len(json.dumps(predicted("p3", START))) + 1, "feedback": 0}
    assert published.baseline_age_seconds == START + 3 - 1_699_999_200.0
    assert published.logs_readable is True


@pytest.mark.parametrize("scanner", [True, False], ids=["compiled scanner", "exact decoder"])
def test_null_is_missing_for_its_feature_and_the_row_is_kept(tmp_path, baseline, monkeypatch, scanner):
    """A null counts as missing for its own feature only; the row, its prediction and its label are kept.

    Lines of the baseline's exact features go to the compiled scanner; one with an extra feature goes to the exact
    decoder, so both readers see nulls here (and, without the scanner, the decoder sees every line)."""
    if not scanner:
        monkeypatch.setattr(scan, "_scan", None)
    service = ExporterService(make_config(tmp_path), baseline, clock=FakeClock(START))
    rows = [({"x": None, "region": "a"}, 1), ({"x": 0.5, "region": None}, 1), ({"x": None, "region": None}, 0),
            ({"x": 0.1, "region": "b"}, 1), ({"x": None, "region": "a", "extra": None}, 1)]
    append(tmp_path / "predictions.jsonl",
           *(prediction_record(f"p{i}", START - 1, "m", "1", features, label, None)
             for i, (features, label) in enumerate(rows)))
    append(tmp_path / "feedback.jsonl", *(feedback_record(f"p{i}", START, 1) for i in range(len(rows))))
    service.read_logs()
    service.recompute()
    snapshot = service.published.snapshot
    assert dict(service.record_counts) == {("predictions", "ok"): 5, ("predictions", "oversized"): 0,
                                           ("feedback", "ok"): 5, ("feedback", "oversized"): 0}
    assert snapshot.predictions == 5 and snapshot.labeled == 5 and snapshot.correct == 4
    assert snapshot.missing_ratio == {"x": 3 / 5, "region": 2 / 5}
    assert snapshot.schema_violations == {("extra", "unknown_feature"): 1}


def test_a_monitored_model_with_missing_inputs_keeps_every_row(tmp_path, baseline):
    """NaN, None and infinities in a model's inputs reach the exporter as missing values, not as dropped rows."""
    @promml.monitor(model_name="m", model_version="1", log_dir=tmp_path, registry=CollectorRegistry())
    def predict(rows):
        return [{"prediction": 1, "score": 0.5} for _ in rows]

    predict([{"x": float("nan"), "region": "a"}, {"x": 1.0, "region": None}, {"x": float("inf"), "region": "b"},
             {"x": -float("inf"), "region": "a"}, {"x": 0.0, "region": "b"}])
    predict([{"x": np.float64("nan"), "region": "a"}])
    shared_writer(tmp_path / "predictions.jsonl").flush()
    service = ExporterService(make_config(tmp_path), baseline, clock=FakeClock(time.time() + 1))
    service.read_logs()
    service.recompute()
    assert dict(service.record_counts)[("predictions", "ok")] == 6
    assert service.published.snapshot.missing_ratio == {"x": 4 / 6, "region": 1 / 6}


def test_a_directory_given_as_the_log_is_reported_not_read_as_ready(tmp_path, baseline, caplog):
    (tmp_path / "logs").mkdir()
    service = ExporterService(make_config(tmp_path, prediction_logs=(str(tmp_path / "logs"),)), baseline,
                              clock=FakeClock(START))
    with caplog.at_level(logging.WARNING):
        service.step()
    assert set(service.published.problems) == {"log_path_is_directory"}
    assert service.readiness() == {"baseline_loaded": True, "logs_readable": False, "first_recompute_done": True,
                                   "measuring": False}
    assert [record.getMessage() for record in caplog.records] == [
        f"promml exporter: measuring nothing for m 1 (log_path_is_directory): "
        f"{service.published.problems['log_path_is_directory']}"]


def test_only_other_models_lines_are_reported_until_a_line_of_this_model_comes(tmp_path, baseline, caplog):
    service = ExporterService(make_config(tmp_path, model_version="1.10"), baseline, clock=FakeClock(START))
    append(tmp_path / "predictions.jsonl", *(predicted(f"p{i}", START - 1, model=("m", "1.1")) for i in range(3)))
    with caplog.at_level(logging.INFO):
        service.read_logs()
        service.recompute()
        assert service.published.problems == {"other_model_only": (
            "every prediction line read is for another model or version ('m 1.1'), none for the configured m 1.10: "
            "set model_name and model_version to what the model logs (as quoted strings)")}
        service.recompute()  # no new line: the problem holds, and is not logged again
        assert set(service.published.problems) == {"other_model_only"}
        assert len(caplog.records) == 1
        append(tmp_path / "predictions.jsonl", predicted("q", START - 1, model=("m", "1.10")),
               predicted("r", START - 1, model=("m", "1.1")))
        service.read_logs()
        service.recompute()
    assert service.published.problems == {}
    assert service.readiness()["measuring"] is True
    assert caplog.records[-1].getMessage() == "promml exporter: configuration problems resolved; measuring m 1.10"


@pytest.mark.parametrize("scanner", [True, False], ids=["compiled scanner", "exact decoder"])
def test_features_other_than_the_baselines_are_reported_with_the_closest_names(tmp_path, baseline, monkeypatch,
                                                                                scanner):
    if not scanner:
        monkeypatch.setattr(scan, "_scan", None)
    service = ExporterService(make_config(tmp_path), baseline, clock=FakeClock(START))
    append(tmp_path / "predictions.jsonl", *(
        prediction_record(f"p{i}", START - 1, "m", "1", {"X": 0.1, "Region": "a"}, 1, 0.5) for i in range(4)))
    service.read_logs()
    service.recompute()
    assert dict(service.record_counts)[("predictions", "ok")] == 4
    assert service.published.problems == {"features_mismatch": (
        "baseline feature(s) 'x', 'region' are absent from every prediction line read; the lines have 'Region' "
        "(closest baseline name: 'region'), 'X' instead: log the features under the baseline's names, or rebuild "
        "the baseline from the same columns")}
    # rows of the baseline's features (read by the scanner when it is built) clear it at the next recompute
    append(tmp_path / "predictions.jsonl", predicted("q", START - 1))
    service.read_logs()
    service.recompute()
    assert service.published.problems == {}


def test_a_feature_missing_from_some_rows_only_is_data_quality_not_misconfiguration(tmp_path, baseline):
    service = ExporterService(make_config(tmp_path), baseline, clock=FakeClock(START))
    append(tmp_path / "predictions.jsonl", prediction_record("p", START - 1, "m", "1", {"x": 0.1}, 1, 0.5),
           predicted("q", START - 1))
    service.read_logs()
    service.recompute()
    assert service.published.problems == {}
    assert service.published.snapshot.schema_violations == {("region", "missing_feature"): 1}


DAY = 86_400.0


def test_a_record_from_the_future_is_placed_at_read_time_and_counted(tmp_path, baseline):
    """30 days ahead, 50 records a minute apart ahead, and year 9999: each is used as if stamped when read, so it
    leaves the window with the records read with it and holds no slot of its own; the lag is never negative."""
    clock = FakeClock(START)
    service = ExporterService(make_config(tmp_path, max_future_seconds=120.0), baseline, clock=clock)
    year_9999 = json.dumps(predicted("y", START)).replace(
        '"timestamp": "2023-11-14T22:13:20.000000Z"', '"timestamp": "9999-12-31T23:59:59.999999Z"')
    assert "9999-12-31" in year_9999
    append(tmp_path / "predictions.jsonl", predicted("now", START - 5), predicted("soon", START + 119),
           predicted("month", START + 30 * DAY), *(predicted(f"f{i}", START + 3600 + 60 * i) for i in range(50)),
           year_9999)
    append(tmp_path / "feedback.jsonl", feedback_record("month", START + 30 * DAY, 1))
    service.read_logs()
    assert dict(service.record_counts) == {
        ("predictions", "ok"): 2, ("predictions", "future_timestamp"): 52, ("predictions", "oversized"): 0,
        ("feedback", "future_timestamp"): 1, ("feedback", "oversized"): 0,
    }
    assert sorted(service.window._slots) == [(START - 10) // 10, START // 10, (START + 110) // 10]
    service.recompute()
    assert service.published.snapshot.predictions == 54 and service.published.snapshot.labeled == 1
    assert service.published.log_lag_seconds == {"predictions": 0.0, "feedback": 0.0}  # "soon" is 119 s ahead
    assert service.window.label_delay_counts[0] == 1  # the label was placed too: no 30-day delay
    clock.now = START + 61
    service.read_logs()
    service.recompute()
    assert service.published.snapshot.predictions == 1  # only "soon", stamped within the tolerance, is left
    assert service.published.log_lag_seconds["predictions"] == 0.0


def test_a_future_record_at_the_head_of_the_pending_table_does_not_stop_expiry(tmp_path, baseline):
    clock = FakeClock(START)
    service = ExporterService(make_config(tmp_path), baseline, clock=clock)
    append(tmp_path / "predictions.jsonl", predicted("ahead", START + 30 * DAY),
           *(predicted(f"p{i}", START) for i in range(10)))
    service.read_logs()
    assert service.window.pending == 11
    clock.now = START + 61 + 10
    service.read_logs()
    assert service.window.pending == 0 and service.window.evicted_pending == 11


def test_a_log_symlinked_out_of_its_directory_is_read_only_when_configured(tmp_path, baseline):
    outside = tmp_path / "outside"
    outside.mkdir()
    append(outside / "elsewhere.jsonl", predicted("p1", START - 1))
    logs = tmp_path / "logs"
    logs.mkdir()
    os.symlink(outside / "elsewhere.jsonl", logs / "predictions.jsonl")
    for follow, read in ((False, 0), (True, 1)):
        config = make_config(logs, follow_symlinks_out_of_log_dir=follow)
        service = ExporterService(config, baseline, clock=FakeClock(START))
        service.read_logs()
        assert service.record_counts[("predictions", "ok")] == read


def test_a_crashed_writers_partial_line_is_one_bad_line_and_the_next_record_is_kept(tmp_path, baseline):
    log = tmp_path / "predictions.jsonl"
    append(log, predicted("p1", START - 1))
    with open(log, "a", encoding="utf-8") as handle:
        handle.write(json.dumps(predicted("p2", START - 1))[:40])  # the writer died mid-line
    writer = JsonlWriter(log)
    assert writer.submit([predicted("p3", START - 1)])
    writer.close()
    service = ExporterService(make_config(tmp_path), baseline, clock=FakeClock(START))
    service.read_logs()
    assert dict(service.record_counts) == {("predictions", "ok"): 2, ("predictions", "invalid_json"): 1,
                                           ("predictions", "oversized"): 0, ("feedback", "oversized"): 0}


def saved_service(tmp_path: Path, baseline) -> tuple[ExporterConfig, ExporterService]:
    config = checkpointed_config(tmp_path)
    service = ExporterService(config, baseline, clock=FakeClock(START))
    append(tmp_path / "predictions.jsonl", predicted("p1", START - 2), predicted("p2", START - 1))
    append(tmp_path / "feedback.jsonl", feedback_record("p1", START, 1))
    service.read_logs()
    service.save_checkpoint()
    return config, service


def edit_checkpoint(path: Path, change) -> None:
    document = json.loads(path.read_text())
    change(document)
    path.write_text(json.dumps(document))


def test_a_crafted_window_is_logged_counted_and_rebuilt_from_the_logs(tmp_path, baseline, caplog):
    config, first = saved_service(tmp_path, baseline)
    edit_checkpoint(config.checkpoint_path,
                    lambda document: document["window"]["slots"][0][1].update(predictions=10**400))
    with caplog.at_level(logging.WARNING):
        second = ExporterService(config, baseline, clock=FakeClock(START))
    assert "is not used" in caplog.text and "an integer of 1329 bits" in caplog.text
    assert second.checkpoint_rejections == {"window": 1} and not second.restored_window
    second.read_logs()
    second.recompute()
    assert (second.published.snapshot.predictions, second.published.snapshot.labeled) == (2, 1)  # read again
    assert second.record_counts == first.record_counts  # and not counted again
    second.save_checkpoint()  # the bad count is not saved back
    assert load_checkpoint(config.checkpoint_path).window["slots"][0][1]["predictions"] == 2


@pytest.mark.parametrize(
    "change",
    [
        lambda document: document["logs"]["predictions"][0].update(copy_of=[-1, -1]),  # would never read the log
        lambda document: document["logs"]["predictions"][0].update(offset=2**64),  # would read it again
        lambda document: document["logs"]["predictions"][0].update(path="/etc/passwd"),  # not a configured log
        lambda document: document.update(saved_at=10**400),
    ],
)
def test_a_crafted_checkpoint_is_logged_counted_and_the_logs_are_read_from_the_start(tmp_path, baseline, caplog,
                                                                                   change):
    config, _ = saved_service(tmp_path, baseline)
    edit_checkpoint(config.checkpoint_path, change)
    with caplog.at_level(logging.WARNING):
        second = ExporterService(config, baseline, clock=FakeClock(START))
    assert "ignoring checkpoint" in caplog.text
    assert second.checkpoint_rejections == {"checkpoint": 1}
    append(tmp_path / "predictions.jsonl", predicted("p3", START))
    second.read_logs()
    second.recompute()
    # counted from zero, each line once: no line skipped, none counted twice
    assert {key: n for key, n in second.record_counts.items() if n} == {("predictions", "ok"): 3,
                                                                       ("feedback", "ok"): 1}
    assert second.published.snapshot.predictions == 3


def value_paths(value, path=()):
    """Every path to a value inside a decoded JSON document."""
    yield path
    children = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else ()
    for key, child in children:
        yield from value_paths(child, (*path, key))


CRAFTED_VALUES = [10**400, -(2**64), 2**64, -1, 0, 1e308, -1e308, None, True, "", "\ud800", [], {}, [[[[[]]]]],
                  {"a": {"b": {}}}, "x" * 5000, [-1, -1]]


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture],
          database=None)
@given(data=st.data())
def test_any_crafted_value_anywhere_never_crashes_the_exporter(tmp_path_factory, baseline, data):
    tmp_path = tmp_path_factory.mktemp("crafted")
    config, _ = saved_service(tmp_path, baseline)
    document = json.loads(config.checkpoint_path.read_text())
    for _ in range(data.draw(st.integers(1, 3))):
        path = data.draw(st.sampled_from([path for path in value_paths(document) if path]))
        target = document
        for key in path[:-1]:
            target = target[key]
        target[path[-1]] = copy.deepcopy(data.draw(st.sampled_from(CRAFTED_VALUES)))
    config.checkpoint_path.write_text(json.dumps(document))
    second = ExporterService(config, baseline, clock=FakeClock(START))
    append(tmp_path / "predictions.jsonl", predicted("p3", START))
    second.read_logs()
    second.recompute()
    registry = CollectorRegistry()
    registry.register(ExporterCollector(second))
    assert generate_latest(registry)  # every metric can be written
    counted = {key: n for key, n in second.record_counts.items() if n}
    if second.checkpoint_rejections["checkpoint"]:  # started afresh: every line counted once, from zero
        assert counted == {("predictions", "ok"): 3, ("feedback", "ok"): 1}
        assert second.published.snapshot.predictions == 3
    elif second.checkpoint_rejections["window"]:  # the window read again from the logs, the counters go on
        assert second.published.snapshot.predictions == 3
    else:  # a change that is still a valid checkpoint (a count, a time, a name): used as it says
        assert second.restored_window
