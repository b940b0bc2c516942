"""SIGKILL the real exporter mid-stream and start it again: no record is lost and none is counted twice.

The exporter runs as `python -m promml.cli exporter` with a checkpoint; a writer thread keeps appending
predictions and labels (valid, broken, of another model, duplicate and unknown labels, lines cut in two writes) and
rotates the logs by rename and by copy-truncate while the exporter runs, and by copy-truncate while it is dead. The
counters scraped from its /metrics must end equal to what was written, line for line, and the rebuilt window must
hold every prediction and label.
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
from prometheus_client.parser import text_string_to_metric_families

from promml.baseline import build_baseline, save_baseline
from promml.demo.stack import free_port
from promml.exporter.checkpoint import load_checkpoint
from promml.records import feedback_record, prediction_record

wait_for = functools.partial(_wait_for, interval=0.02)

MODEL = {"model_name": "m", "model_version": "1"}
LABEL_DELAY_SECONDS = 0.5  # a label is written this long after its prediction, as in production: later, not before


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
        if self.batches % 45 == 0:  # logrotate `copytruncate`: copied aside, emptied in place
            self.finish(self.feedback)
            shutil.copyfile(self.feedback, self.feedback.with_name(f"feedback-c{self.batches}.jsonl"))
            os.truncate(self.feedback, 0)

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

        wait_for("the writer to near a copy-truncate", lambda: writer.batches % 45 > 40, 10)
        wait_for("a copy-truncate while the exporter is dead", lambda: writer.batches % 45 < 3, 10)
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
