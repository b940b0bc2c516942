"""Restarts: the window survives them (even with its logs deleted), and no record is lost or counted twice.

First on the service with a simulated clock: an hour of predictions and labels, a checkpoint, every log deleted,
a restart: every metric is what it was, and lines written afterwards are counted once (as by an exporter that was
never restarted). A checkpoint of the older format (no window) still loads, and the window is read again from the
logs. Then on the real process (`python -m promml.cli exporter`): the same after a SIGKILL; and SIGKILL mid-stream
while a writer thread appends predictions and labels (valid, broken, of another model, duplicate and unknown
labels, lines cut in two writes) and rotates the logs by rename and by copy-truncate while the exporter runs, and by
copy-truncate while it is dead: the counters scraped from /metrics end equal to what was written, line for line.
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml
from conftest import wait_for as _wait_for
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from promml.baseline import build_baseline, parse_baseline, save_baseline
from promml.demo.stack import free_port
from promml.exporter.checkpoint import load_checkpoint
from promml.exporter.collector import ExporterCollector
from promml.exporter.config import ExporterConfig, WindowSpec
from promml.exporter.service import ExporterService
from promml.records import feedback_record, prediction_record

wait_for = functools.partial(_wait_for, interval=0.02)

MODEL = {"model_name": "m", "model_version": "1"}
LABEL_DELAY_SECONDS = 0.5  # a label is written this long after its prediction, as in production: later, not before


START = 1_700_000_000.0


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def hour_of_records(rng: np.random.Generator, start: float, seconds: int, prefix: str = "p") -> tuple[list, list]:
    """One prediction a second for `seconds` from `start`, and the labels for two in three of them 45 s later (with
    a duplicate and an unknown id now and then), as (time, line) pairs."""
    predictions, labels = [], []
    for second in range(seconds):
        at = start + second
        features = {"x": round(float(rng.normal(0.3, 1.0)), 3), "region": str(rng.choice(["a", "b", "c"]))}
        if second % 97 == 0:
            features["x"] = "text"  # a schema violation
        prediction = int(rng.integers(0, 2))
        score = round(float(rng.random()), 3)
        record = prediction_record(f"{prefix}{second}", at, "m", "1", features, prediction, score)
        predictions.append((at, json.dumps(record)))
        if second % 3:
            labels.append((at + 45, json.dumps(feedback_record(f"{prefix}{second}", at + 45, int(rng.integers(0, 2))))))
        if second % 50 == 0 and second:
            labels.append((at + 46, json.dumps(feedback_record(f"{prefix}{second - 1}", at + 46, 1))))  # a duplicate
        if second % 333 == 0:
            labels.append((at + 45, json.dumps(feedback_record(f"nobody{second}", at + 45, 1))))
    return predictions, sorted(labels)


def simulated_config(folder: Path, **overrides: Any) -> ExporterConfig:
    return ExporterConfig(
        model_name="m", model_version="1", baseline=folder / "baseline.json",
        prediction_logs=(str(folder / "predictions*.jsonl"),), feedback_logs=(str(folder / "feedback*.jsonl"),),
        windows=(WindowSpec("1h", 3600.0), WindowSpec("2h", 7200.0)), slot_seconds=60.0, sample_size=200,
        segments=("region",), early_label_grace_seconds=5.0, checkpoint_path=folder / "state" / "checkpoint.json",
        **overrides,
    )


@pytest.fixture(scope="module")
def simulated_baseline():
    rng = np.random.default_rng(3)
    score = rng.random(2000)
    columns = {"x": rng.normal(0, 1, 2000).tolist(), "region": rng.choice(["a", "b"], 2000).tolist(),
               "prediction": rng.integers(0, 2, 2000).tolist(), "score": score.tolist(),
               "label": (rng.random(2000) < score).astype(int).tolist()}  # a labelled score: a calibration map
    return parse_baseline(build_baseline(columns, categorical=["region"], target="label", prediction="prediction",
                                         score="score"))


ABOUT_THE_FILES_NOW = "ml_exporter_misconfiguration"
"""Says whether log files exist now (they were deleted): a fact about the files, not about the window."""


def metrics_text(service: ExporterService) -> str:
    """Every sample on /metrics but those about the files now."""
    registry = CollectorRegistry()
    registry.register(ExporterCollector(service))
    return "".join(line for line in generate_latest(registry).decode().splitlines(keepends=True)
                   if ABOUT_THE_FILES_NOW not in line)


def run_for(service: ExporterService, clock: Clock, folder: Path, predictions: list, labels: list, until: float,
            log_name: str = "") -> None:
    """Write the records stamped up to `until`, a minute at a time, reading the logs after each minute."""
    minute = clock.now
    while minute < until:
        minute = min(minute + 60, until)
        with open(folder / f"predictions{log_name}.jsonl", "a") as handle:
            handle.writelines(line + "\n" for at, line in predictions if minute - 60 <= at < minute)
        with open(folder / f"feedback{log_name}.jsonl", "a") as handle:
            handle.writelines(line + "\n" for at, line in labels if minute - 60 <= at < minute)
        clock.now = minute
        service.read_logs()


def test_the_window_survives_a_restart_with_every_log_deleted(tmp_path, simulated_baseline):
    rng = np.random.default_rng(5)
    predictions, labels = hour_of_records(rng, START, 3600)
    clock = Clock(START)
    config = simulated_config(tmp_path)
    first = ExporterService(config, simulated_baseline, clock=clock)
    run_for(first, clock, tmp_path, predictions, labels, START + 3600)
    first.recompute()
    first.save_checkpoint()
    before = metrics_text(first)
    assert 'ml_window_estimated_outcomes{model_name="m",model_version="1",outcome="tp",window="1h"}' in before
    assert first.window.pending > 0 and first.early_labels == 0 and first.published.snapshot.labeled > 2000
    for log in [*tmp_path.glob("predictions*.jsonl"), *tmp_path.glob("feedback*.jsonl")]:
        log.unlink()

    second = ExporterService(config, simulated_baseline, clock=clock)  # the first one was killed: no stop, no save
    second.recompute()
    assert second.restored_window
    assert metrics_text(second) == before  # every family, every sample: the same window, counters and gauges

    # lines written after the restart, to new files: counted once, as by the exporter that was never restarted
    more_predictions, more_labels = hour_of_records(rng, START + 3600, 300, prefix="q")
    late_labels = [(START + 3650, json.dumps(feedback_record(f"p{n}", START + 3650, 1))) for n in (3597, 3598, 3599)]
    duplicate = [(START + 3651, json.dumps(feedback_record("p3598", START + 3651, 0)))]
    for service in (first, second):
        clock.now = START + 3600
        run_for(service, clock, tmp_path, more_predictions, sorted(more_labels + late_labels + duplicate), START + 3900,
                log_name="-new" if service is first else "-newer")
        service.recompute()
    assert metrics_text(second) == metrics_text(first)
    written = [line for at, line in labels if at < START + 3600]
    written += [line for at, line in sorted(more_labels + late_labels + duplicate) if at < START + 3900]
    expected = expected_feedback(written, {f"p{n}" for n in range(3600)} | {f"q{n}" for n in range(300)})
    counts = second.record_counts
    assert counts[("predictions", "ok")] == 3900
    assert counts[("feedback", "ok")] == expected["ok"]
    assert counts[("feedback", "duplicate_feedback")] == expected["duplicate_feedback"] > 40
    assert counts[("feedback", "unknown_prediction_id")] + second.early_labels == expected["unknown_prediction_id"]


def expected_feedback(lines: list[str], known: set[str]) -> Counter[str]:
    """The status each label line must get: the first label of a known prediction is ok, a later one duplicate."""
    labelled: set[str] = set()
    statuses: Counter[str] = Counter()
    for line in lines:
        prediction_id = json.loads(line)["prediction_id"]
        status = ("unknown_prediction_id" if prediction_id not in known
                  else "duplicate_feedback" if prediction_id in labelled else "ok")
        labelled.add(prediction_id)
        statuses[status] += 1
    return statuses


def test_a_checkpoint_of_the_older_format_loads_and_the_window_is_read_again(tmp_path, simulated_baseline):
    predictions, labels = hour_of_records(np.random.default_rng(6), START, 3600)
    clock = Clock(START)
    config = simulated_config(tmp_path)
    first = ExporterService(config, simulated_baseline, clock=clock)
    run_for(first, clock, tmp_path, predictions, labels, START + 3600)
    first.recompute()
    first.save_checkpoint()
    document = json.loads(config.checkpoint_path.read_text())
    for key in ("window", "labeled", "newest_records"):
        del document[key]
    document["version"] = 1
    config.checkpoint_path.write_text(json.dumps(document))

    second = ExporterService(config, simulated_baseline, clock=clock)
    assert not second.restored_window and second.checkpoint_rejections == {}
    second.read_logs()
    second.recompute()
    for before, after in zip(first.published.windows, second.published.windows, strict=True):
        assert (after.predictions, after.labeled, after.correct) == (before.predictions, before.labeled, before.correct)
        assert after.feature_counts.keys() == before.feature_counts.keys()
        assert all((after.feature_counts[name] == counts).all() for name, counts in before.feature_counts.items())
        assert after.segments == before.segments and after.performance == before.performance
        assert after.schema_violations == before.schema_violations
    assert second.record_counts == first.record_counts  # read again, not counted again
    assert second.window.pending == first.window.pending


def test_a_window_saved_for_other_segments_is_rebuilt_from_the_logs(tmp_path, simulated_baseline):
    predictions, labels = hour_of_records(np.random.default_rng(7), START, 600)
    clock = Clock(START)
    first = ExporterService(simulated_config(tmp_path), simulated_baseline, clock=clock)
    run_for(first, clock, tmp_path, predictions, labels, START + 600)
    first.recompute()
    first.save_checkpoint()
    other = simulated_config(tmp_path, max_segment_values=5)  # the saved segment tables were bounded otherwise
    second = ExporterService(other, simulated_baseline, clock=clock)
    assert second.checkpoint_rejections == {"window": 1} and not second.restored_window
    second.read_logs()
    second.recompute()
    assert second.published.snapshot.predictions == first.published.snapshot.predictions == 600
    assert second.record_counts == first.record_counts


class LogWriter(threading.Thread):
    """Appends records until stopped and knows the status each line must get; rotates the logs as it goes."""

    def __init__(self, folder: Path) -> None:
        super().__init__(daemon=True)
        self.predictions = folder / "predictions.jsonl"
        self.feedback = folder / "feedback.jsonl"
        self.expected: Counter[tuple[str, str]] = Counter()
        self.stopping = threading.Event()
        self.rng = np.random.default_rng(11)
        self.written: list[tuple[float, str]] = []  # (when, prediction_id) of valid predictions, oldest first
        self.labeled: list[str] = []
        self.tails = {self.predictions: b"", self.feedback: b""}  # second halves of lines cut in two writes
        self.batches = 0
        self.copytruncate_now = threading.Event()  # set: copy-truncate the feedback log at the next batch

    def run(self) -> None:
        while not self.stopping.is_set():
            self.batch()
            time.sleep(0.005)
        for path in self.tails:
            self.finish(path)

    def batch(self) -> None:
        self.batches += 1
        now = time.time()
        lines = []
        for _ in range(5):
            index = len(self.written)
            self.written.append((time.monotonic(), f"p{index}"))
            features = {"x": float(self.rng.normal()), "region": str(self.rng.choice(["a", "b"]))}
            lines.append(json.dumps(prediction_record(f"p{index}", now, "m", "1", features, index % 2, 0.5)))
            self.expected[("predictions", "ok")] += 1
        if self.batches % 7 == 0:
            lines.append('{"prediction_id": "broken", "timesta')
            self.expected[("predictions", "invalid_json")] += 1
        if self.batches % 11 == 0:
            lines.append(json.dumps(prediction_record("o", now, "m", "2", {"x": 0.0}, 1, None)))
            self.expected[("predictions", "other_model")] += 1
        self.append(self.predictions, lines)

        labels = []
        due = [pid for when, pid in self.written[len(self.labeled):] if time.monotonic() - when >= LABEL_DELAY_SECONDS]
        for pid in due[:5]:
            labels.append(json.dumps(feedback_record(pid, now, int(pid[1:]) % 3 == 0)))
            self.labeled.append(pid)
            self.expected[("feedback", "ok")] += 1
        if self.labeled and self.batches % 5 == 0:
            labels.append(json.dumps(feedback_record(self.labeled[0], now, 1)))
            self.expected[("feedback", "duplicate_feedback")] += 1
        if self.batches % 9 == 0:
            labels.append(json.dumps(feedback_record(f"nobody-{self.batches}", now, 1)))
            self.expected[("feedback", "unknown_prediction_id")] += 1
        self.append(self.feedback, labels)

        if self.batches % 40 == 0:  # logrotate `create`: renamed aside, a new file at the same name
            self.finish(self.predictions)
            os.rename(self.predictions, self.predictions.with_name(f"predictions-r{self.batches}.jsonl"))
        if self.batches % 45 == 0 or self.copytruncate_now.is_set():  # logrotate `copytruncate`: copy, then empty
            self.finish(self.feedback)
            shutil.copyfile(self.feedback, self.feedback.with_name(f"feedback-c{self.batches}.jsonl"))
            os.truncate(self.feedback, 0)
            self.copytruncate_now.clear()

    def append(self, path: Path, lines: list[str]) -> None:
        data = self.tails[path] + "".join(line + "\n" for line in lines).encode()
        cut = len(data) - int(self.rng.integers(0, 30)) if self.batches % 3 == 0 else len(data)
        with open(path, "ab") as handle:  # a line cut in two writes: the exporter must wait for its end
            handle.write(data[:cut])
        self.tails[path] = data[cut:]

    def finish(self, path: Path) -> None:
        with open(path, "ab") as handle:
            handle.write(self.tails[path])
        self.tails[path] = b""


class Exporter:
    """One `promml exporter` process."""

    def __init__(self, config: Path, port: int, log: Path) -> None:
        self.port = port
        with open(log, "ab") as output:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "promml.cli", "exporter", "--config", str(config)],
                stdout=output, stderr=subprocess.STDOUT,
            )
        wait_for("the exporter to serve /metrics", self.scrape)

    def scrape(self) -> dict[str, Any] | None:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/metrics", timeout=5) as response:
                text = response.read().decode()
        except OSError:
            return None
        records: dict[tuple[str, str], float] = {}
        gauges: dict[str, float] = {}
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                if sample.name == "ml_exporter_records_total" and sample.value:
                    records[(sample.labels["log"], sample.labels["status"])] = sample.value
                elif not sample.name.endswith("_created"):
                    gauges[sample.name] = sample.value
        return {"records": records, "gauges": gauges}


@pytest.fixture
def setup(tmp_path: Path) -> tuple[Path, int]:
    rng = np.random.default_rng(0)
    columns = {"x": rng.normal(0, 1, 500).tolist(), "region": rng.choice(["a", "b"], 500).tolist()}
    save_baseline(build_baseline(columns, categorical=["region"]), tmp_path / "baseline.json")
    port = free_port()
    config = {
        **MODEL,
        "baseline": "baseline.json",
        "prediction_logs": "logs/predictions*.jsonl",
        "feedback_logs": "logs/feedback*.jsonl",
        "listen": f"127.0.0.1:{port}",
        "window_seconds": 3600,
        "slot_seconds": 60,
        "recompute_interval_seconds": 1,
        "checkpoint_interval_seconds": 1,
        "poll_interval_seconds": 0.02,
        "early_label_grace_seconds": 2,  # unknown labels are held that long, across the kill too
        "checkpoint_path": "state/checkpoint.json",
    }
    (tmp_path / "logs").mkdir()
    (tmp_path / "exporter.yml").write_text(yaml.safe_dump(config))
    return tmp_path, port


def test_sigkill_mid_stream_loses_nothing_and_counts_nothing_twice(setup):
    folder, port = setup
    config, checkpoint, output = folder / "exporter.yml", folder / "state" / "checkpoint.json", folder / "exporter.out"
    writer = LogWriter(folder / "logs")
    writer.start()
    try:
        first = Exporter(config, port, output)

        def counted_past_the_checkpoint() -> float | None:
            """Lines counted in memory that the last checkpoint does not hold yet: a kill now must not lose them
            nor count them again."""
            scraped = first.scrape()
            saved = load_checkpoint(checkpoint)
            if scraped is None or saved is None or writer.batches < 90:  # past a rotation of each kind
                return None
            in_memory = scraped["records"].get(("predictions", "ok"), 0)
            return in_memory if in_memory > saved.record_counts.get(("predictions", "ok"), 0) else None

        in_memory_at_kill = wait_for("lines counted since the last checkpoint", counted_past_the_checkpoint)
        first.process.send_signal(signal.SIGKILL)
        assert first.process.wait(timeout=10) == -signal.SIGKILL
        saved_at_kill = load_checkpoint(checkpoint).record_counts[("predictions", "ok")]
        assert saved_at_kill < in_memory_at_kill  # these lines are read again after the restart

        writer.copytruncate_now.set()
        wait_for("a copy-truncate while the exporter is dead", lambda: not writer.copytruncate_now.is_set(), 10)
        second = Exporter(config, port, output)
        time.sleep(1.0)  # the writer goes on while the restarted exporter catches up
    finally:
        writer.stopping.set()
        writer.join(timeout=10)

    expected = dict(writer.expected)
    try:
        with contextlib.suppress(AssertionError):  # on a timeout, the assertion below shows what differs
            wait_for("every line counted", lambda: (second.scrape() or {}).get("records") == expected)
        assert second.scrape()["records"] == expected
        first_recompute = second.scrape()["gauges"]["ml_exporter_last_recompute_timestamp_seconds"]
        wait_for(
            "two more recomputes",
            lambda: second.scrape()["gauges"]["ml_exporter_last_recompute_timestamp_seconds"] >= first_recompute + 1.5,
        )
        final = second.scrape()
        assert final["records"] == expected
        assert final["gauges"]["ml_window_predictions"] == expected[("predictions", "ok")]
        assert final["gauges"]["ml_window_labeled_predictions"] == expected[("feedback", "ok")]
        assert expected[("predictions", "ok")] > saved_at_kill
        assert len(list((folder / "logs").glob("predictions-r*.jsonl"))) >= 2
        assert len(list((folder / "logs").glob("feedback-c*.jsonl"))) >= 2
    finally:
        second.process.send_signal(signal.SIGTERM)
        assert second.process.wait(timeout=15) == 0, output.read_text()
    saved = load_checkpoint(checkpoint)  # a clean stop saves the final counts
    assert {key: count for key, count in saved.record_counts.items() if count} == expected


TIME_DEPENDENT = ("ml_exporter_last_recompute_timestamp_seconds", "ml_exporter_log_lag_seconds",
                  "ml_baseline_age_seconds")
"""Gauges that follow the clock, not the window: they move between any two scrapes."""


def every_sample(port: int) -> dict[tuple[str, tuple[tuple[str, str], ...]], float] | None:
    """Every sample on /metrics but those that follow the clock, by name and labels."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
            text = response.read().decode()
    except OSError:
        return None
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text) for sample in family.samples
        if sample.name not in TIME_DEPENDENT and sample.name != ABOUT_THE_FILES_NOW
    }


def sample_key(name: str, **labels: str) -> tuple[str, tuple[tuple[str, str], ...]]:
    return name, tuple(sorted({"model_name": "m", "model_version": "1", **labels}.items()))


def test_sigkill_after_every_log_was_deleted_keeps_the_window(setup):
    """The real process: an hour of records, a checkpoint, every log deleted, SIGKILL, restart: /metrics is the
    same, and lines written afterwards are counted once."""
    folder, port = setup
    config = yaml.safe_load((folder / "exporter.yml").read_text())
    config.update(window_seconds=7200, early_label_grace_seconds=0, checkpoint_interval_seconds=0.2,
                  recompute_interval_seconds=0.2, segments=["region"])  # the hour written stays in the window
    (folder / "exporter.yml").write_text(yaml.safe_dump(config))
    rng = np.random.default_rng(8)
    now = time.time()
    predictions, labels = hour_of_records(rng, now - 3600, 3600)
    (folder / "logs" / "predictions.jsonl").write_text("".join(line + "\n" for _, line in predictions))
    (folder / "logs" / "feedback.jsonl").write_text("".join(line + "\n" for at, line in labels if at < now))
    written = [line for at, line in labels if at < now]
    expected = expected_feedback(written, {f"p{n}" for n in range(3600)})
    checkpoint, output = folder / "state" / "checkpoint.json", folder / "exporter.out"
    first = Exporter(folder / "exporter.yml", port, output)
    try:
        def all_read_and_saved() -> dict | None:
            scraped = every_sample(port)
            saved = load_checkpoint(checkpoint)
            key = sample_key("ml_exporter_records_total", log="feedback", status="ok")
            if scraped is None or saved is None or scraped.get(key) != expected["ok"]:
                return None
            return scraped if saved.record_counts.get(("feedback", "ok")) == expected["ok"] else None

        before = wait_for("every line read and saved", all_read_and_saved, 60)
        for log in (folder / "logs").iterdir():
            log.unlink()
        time.sleep(0.5)  # more recomputes and saves, of the same window
        first.process.send_signal(signal.SIGKILL)
        assert first.process.wait(timeout=10) == -signal.SIGKILL
    finally:
        first.process.kill()
    second = Exporter(folder / "exporter.yml", port, output)
    try:
        after = wait_for("a first recompute", lambda: (lambda scraped: scraped if scraped and sample_key(
            "ml_window_predictions") in scraped else None)(every_sample(port)), 30)
        assert after == before
        assert before[sample_key("ml_window_predictions")] == 3600
        assert before[sample_key("ml_window_labeled_predictions")] == expected["ok"]

        more, _ = hour_of_records(rng, time.time(), 20, prefix="q")
        (folder / "logs" / "predictions-new.jsonl").write_text("".join(line + "\n" for _, line in more))
        (folder / "logs" / "feedback-new.jsonl").write_text(json.dumps(feedback_record("p3599", time.time(), 1)) + "\n")
        wait_for("the new lines", lambda: (every_sample(port) or {}).get(sample_key("ml_window_predictions")) == 3620,
                 30)
        time.sleep(0.5)  # read again and again: counted once
        final = every_sample(port)
        assert final[sample_key("ml_exporter_records_total", log="predictions", status="ok")] == 3620
        assert final[sample_key("ml_exporter_records_total", log="feedback", status="ok")] == expected["ok"] + 1
        assert final[sample_key("ml_window_labeled_predictions")] == expected["ok"] + 1
    finally:
        second.process.send_signal(signal.SIGTERM)
        assert second.process.wait(timeout=15) == 0, output.read_text()
