"""The exporter's work loop on real log files and a fake clock: line statuses, the label join, publishing, health."""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import pytest

from promml.baseline import build_baseline, parse_baseline
from promml.exporter.config import ExporterConfig
from promml.exporter.service import ExporterService
from promml.records import feedback_record, prediction_record

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
        {"prediction_id": "p1", "timestamp": "2024-01-01T00:00:00Z", "label": None},
    )
    service.read_logs()
    assert dict(service.record_counts) == {
        ("predictions", "ok"): 2,
        ("predictions", "invalid_json"): 1,
        ("predictions", "invalid_record"): 1,
        ("predictions", "other_model"): 2,
        ("predictions", "oversized"): 1,
        ("feedback", "ok"): 2,
        ("feedback", "unknown_prediction_id"): 2,
        ("feedback", "invalid_json"): 1,
        ("feedback", "invalid_record"): 1,
        ("feedback", "oversized"): 0,
    }
    assert service.window.pending == 0


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
