"""Generated writes, rotations and garbage: every line is read once, and every line read is counted once.

The first property drives the follower alone through random appends (cut anywhere, even inside a line), polls and
logrotate-style rotations (rename, copy, copytruncate, with a poll possibly between the copy and the truncate) and
restarts from the checkpoint, and compares what it returns with the lines written. The second throws generated
garbage mixed with valid records at the exporter's parse path and checks that nothing raises and that the counters
add up to the lines seen.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from promml.baseline import build_baseline, parse_baseline
from promml.exporter.checkpoint import Checkpoint, checkpoint_from_dict, checkpoint_to_dict
from promml.exporter.config import ExporterConfig
from promml.exporter.log_follower import MAX_LINE_BYTES, LogFollower
from promml.exporter.service import ExporterService
from promml.records import feedback_record, prediction_record

START = 1_700_000_000.0
SMALL_LIMIT = 40

# --- the follower under writes, polls and rotations -------------------------------------------------------------

line_bodies = st.one_of(
    st.binary(max_size=20).map(lambda b: b.replace(b"\n", b" ")),
    st.integers(SMALL_LIMIT - 10, SMALL_LIMIT + 30).map(lambda n: b"y" * n),  # around the length limit
)
actions = st.lists(
    st.one_of(
        st.tuples(st.just("write"), line_bodies, st.integers(0, 60)),  # a line, cut after that many bytes
        st.tuples(st.just("poll"), st.integers(1, 200)),  # a poll with that byte budget
        st.just(("rename",)),
        st.just(("copy",)),
        st.just(("truncate",)),
        st.just(("restart",)),  # the follower is replaced by one restored from its checkpointed positions
    ),
    max_size=40,
)


class Writer:
    """Writes numbered lines to p.jsonl and rotates it like logrotate; knows what each reader must see."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.log = folder / "p.jsonl"
        self.log.touch()
        self.expected: list[bytes] = []
        self.oversized = 0
        self.number = 0
        self.pending_tail = b""  # the rest of a line cut by the last write
        self.copied = False
        self.rotations = 0

    def write(self, body: bytes, cut: int) -> None:
        self.finish_line()
        line = f"{self.number}:".encode() + body  # numbered: no two files ever start with the same bytes
        self.number += 1
        if len(line) > SMALL_LIMIT:
            self.oversized += 1
        else:
            self.expected.append(line)
        data = line + b"\n"
        self._append(data[:cut])
        self.pending_tail = data[cut:]

    def finish_line(self) -> None:
        self._append(self.pending_tail)
        self.pending_tail = b""

    def rename(self) -> None:
        self.finish_line()
        self.rotations += 1
        os.rename(self.log, self.folder / f"p.jsonl.r{self.rotations}")
        self.log.touch()

    def copy(self) -> None:
        self.finish_line()
        self.rotations += 1
        shutil.copyfile(self.log, self.folder / f"p.jsonl.c{self.rotations}")
        self.copied = True

    def truncate(self) -> None:
        if self.copied:  # copytruncate: nothing is written between the copy and the truncate
            os.truncate(self.log, 0)
            self.copied = False

    def _append(self, data: bytes) -> None:
        if data:
            if self.copied:
                self.truncate()
            with open(self.log, "ab") as handle:
                handle.write(data)


def restarted(follower: LogFollower, patterns: list[str]) -> LogFollower:
    """A follower resumed from `follower`'s positions after a trip through the checkpoint's JSON form."""
    checkpoint = Checkpoint("m", "1", 0.0, {}, {"predictions": follower.positions()})
    document = json.loads(json.dumps(checkpoint_to_dict(checkpoint)))
    follower.close()
    fresh = LogFollower(patterns, max_line_bytes=SMALL_LIMIT)
    fresh.restore(checkpoint_from_dict(document).positions["predictions"], replay_since=0.0)
    return fresh


rotations_and_restarts = st.lists(  # fewer writes: backup copies, copy-truncates and restarts close together
    st.one_of(
        st.tuples(st.just("write"), line_bodies, st.integers(0, 60)),
        st.tuples(st.just("poll"), st.integers(1, 200)),
        st.sampled_from([("copy",), ("copy",), ("truncate",), ("restart",), ("restart",), ("rename",)]),
    ),
    max_size=30,
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow], database=None)
@given(st.one_of(actions, rotations_and_restarts))
def test_every_line_is_read_once_through_cuts_polls_and_rotations(steps):
    with tempfile.TemporaryDirectory() as folder:
        writer = Writer(Path(folder))
        follower = LogFollower([str(Path(folder) / "p.jsonl*")], max_line_bytes=SMALL_LIMIT)
        lines: list[bytes] = []
        oversized = 0
        for step in steps:
            if step[0] == "write":
                writer.write(step[1], step[2])
            elif step[0] == "poll":
                result = follower.poll(max_bytes=step[1])
                lines += result.lines
                oversized += result.oversized
                assert set(result.replayed) <= set(lines)
            elif step[0] == "restart":
                follower = restarted(follower, [str(Path(folder) / "p.jsonl*")])
            else:
                getattr(writer, step[0])()
        writer.finish_line()
        writer.truncate()
        while True:
            result = follower.poll()
            if not result.lines and not result.oversized and not result.replayed:
                break
            lines += result.lines
            oversized += result.oversized
        follower.close()
    assert sorted(lines) == sorted(writer.expected)  # each once (which of two files is read first is not fixed)
    assert oversized == writer.oversized


# --- the exporter's parse path under garbage --------------------------------------------------------------------

BASELINE = parse_baseline(
    build_baseline(
        {"x": np.random.default_rng(1).normal(0, 1, 500).tolist(), "region": ["a", "b"] * 250},
        categorical=["region"],
    )
)


def valid_prediction(index: int) -> bytes:
    record = prediction_record(f"p{index}", START - index, "m", "1", {"x": index / 10, "region": "a"}, index % 2, 0.5)
    return json.dumps(record).encode()


def broken(key: str, value) -> bytes:
    """A valid prediction record with one field set to a value of the wrong type or form."""
    record = json.loads(valid_prediction(10**6))
    record[key] = value
    return json.dumps(record).encode()


not_a_string = st.none() | st.booleans() | st.integers() | st.floats() | st.lists(st.integers(), max_size=2)
not_finite = st.sampled_from([float("nan"), float("inf"), float("-inf")])
wrong_fields = st.one_of(
    st.builds(broken, st.sampled_from(["prediction_id", "timestamp", "model_name", "model_version"]), not_a_string),
    st.builds(broken, st.just("timestamp"), st.text(max_size=8)),  # not RFC 3339
    st.builds(broken, st.just("features"), st.integers() | st.text(max_size=3) | st.lists(st.integers(), max_size=2)),
    st.builds(broken, st.just("features"), st.dictionaries(st.text(max_size=3), not_finite, min_size=1)),
    st.builds(broken, st.just("score"), not_finite | st.booleans() | st.text(max_size=3)),
    st.builds(broken, st.just("prediction"), not_finite | st.lists(st.integers(), max_size=2)),
    st.builds(broken, st.just("features"), st.just({"x": 10**400})),  # an integer no float can hold
)
garbage = st.one_of(
    st.binary(max_size=60),
    st.integers(0, len(valid_prediction(10**6)) - 1).map(lambda n: valid_prediction(10**6)[:n]),  # cut short
    st.integers(1, 3).map(lambda n: b"[" * (10**5 * n)),  # nesting deeper than the decoder's recursion limit
    st.integers(MAX_LINE_BYTES + 1, MAX_LINE_BYTES + 100).map(lambda n: b'{"x": "' + b"z" * n + b'"}'),
    wrong_fields,
    st.sampled_from([b'{"x": NaN}', b"Infinity", b'{"features": {"x": -Infinity}}', b"1e999", b"\xff\xfe", b"{}"]),
)


def lines_seen(data: bytes) -> int:
    """Complete lines that are not blank (a blank line is no record) or are over the length limit."""
    return sum(1 for line in data.split(b"\n")[:-1] if len(line) > MAX_LINE_BYTES or line.strip())


def write_in_chunks(path: Path, data: bytes, cuts: list[int], service: ExporterService) -> None:
    """Append `data` cut at `cuts` (fractions of its length in thousandths), reading the logs after each piece."""
    positions = sorted({len(data) * cut // 1000 for cut in cuts} | {len(data)})
    done = 0
    for position in positions:
        with open(path, "ab") as handle:
            handle.write(data[done:position])
        done = position
        service.read_logs()


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow], database=None)
@given(
    items=st.lists(st.one_of(st.tuples(st.just("valid"), st.none()), st.tuples(st.just("garbage"), garbage)),
                   max_size=25),
    labels=st.lists(st.sampled_from(["first", "again", "unknown", "garbage"]), max_size=15),
    label_garbage=st.lists(garbage, max_size=5),
    cuts=st.lists(st.integers(0, 1000), max_size=6),
)
def test_garbage_never_raises_and_every_line_is_counted_once(items, labels, label_garbage, cuts):
    with tempfile.TemporaryDirectory() as folder:
        folder = Path(folder)
        config = ExporterConfig(
            model_name="m", model_version="1", baseline=folder / "baseline.json",
            prediction_logs=(str(folder / "predictions.jsonl"),), feedback_logs=(str(folder / "feedback.jsonl"),),
            window_seconds=3600.0, slot_seconds=60.0, early_label_grace_seconds=0.0,  # unknown labels judged at once
        )
        service = ExporterService(config, BASELINE, clock=lambda: START)
        valid = [index for index, (kind, _) in enumerate(items) if kind == "valid"]
        predictions = b"".join(
            (valid_prediction(index) if kind == "valid" else value) + b"\n" for index, (kind, value) in enumerate(items)
        )
        write_in_chunks(folder / "predictions.jsonl", predictions, cuts, service)

        feedback_lines, expected = [], {"ok": 0, "duplicate_feedback": 0, "unknown_prediction_id": 0}
        unlabeled, labeled = list(valid), []
        garbage_lines = iter(label_garbage)
        for kind in labels:
            if kind == "first" and unlabeled:
                labeled.append(unlabeled.pop())
                feedback_lines.append(json.dumps(feedback_record(f"p{labeled[-1]}", START, 1)).encode())
                expected["ok"] += 1
            elif kind == "again" and labeled:
                feedback_lines.append(json.dumps(feedback_record(f"p{labeled[0]}", START, 0)).encode())
                expected["duplicate_feedback"] += 1
            elif kind == "unknown":
                feedback_lines.append(json.dumps(feedback_record("nobody", START, 1)).encode())
                expected["unknown_prediction_id"] += 1
            else:
                feedback_lines.append(next(garbage_lines, b"not json"))
        feedback = b"".join(line + b"\n" for line in feedback_lines)
        write_in_chunks(folder / "feedback.jsonl", feedback, cuts, service)
        service.recompute()

    counts = service.record_counts
    predictions_counted = {status: n for (log, status), n in counts.items() if log == "predictions"}
    feedback_counted = {status: n for (log, status), n in counts.items() if log == "feedback"}
    assert sum(predictions_counted.values()) == lines_seen(predictions)
    assert predictions_counted.get("ok", 0) == len(valid)
    assert service.published.snapshot.predictions == len(valid)
    assert sum(feedback_counted.values()) == lines_seen(feedback)
    for status, count in expected.items():
        assert feedback_counted.get(status, 0) == count, status
    assert service.published.snapshot.labeled == expected["ok"]
