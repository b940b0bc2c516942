"""The time-gated reader hands the exporter each line only once the simulated clock has reached its timestamp."""

from __future__ import annotations

import json
from pathlib import Path

from promml.backtest.clock import SimulatedClock
from promml.backtest.gated_follower import TimeGatedFollower, line_time, line_time_text
from promml.records import feedback_record, utc_timestamp

T0 = 1_764_547_200.0


def write(path: Path, times: list[float], tail: bytes = b"") -> list[bytes]:
    lines = [json.dumps(feedback_record(f"id-{i}", t, 1)).encode() for i, t in enumerate(times)]
    path.write_bytes(b"\n".join(lines) + b"\n" + tail)
    return lines


def test_a_poll_returns_the_lines_stamped_up_to_now_and_no_later(tmp_path: Path) -> None:
    lines = write(tmp_path / "a.jsonl", [T0 + s for s in (0, 1, 1.5, 2, 10, 11)])
    clock = SimulatedClock(T0 - 1)
    seen: list[bytes] = []
    follower = TimeGatedFollower([str(tmp_path / "*.jsonl")], clock, on_lines=seen.extend)
    assert follower.poll().lines == []
    clock.set(T0 + 1.5)
    assert follower.poll().lines == lines[:3]  # a line stamped exactly now is read
    clock.set(T0 + 9.999999)
    assert follower.poll().lines == lines[3:4]
    clock.set(T0 + 100)
    assert follower.poll().lines == lines[4:]
    assert follower.poll().lines == []
    assert seen == lines and follower.lines_out == 6
    follower.close()


def test_a_line_out_of_order_holds_back_the_lines_behind_it(tmp_path: Path) -> None:
    lines = write(tmp_path / "a.jsonl", [T0, T0 + 60, T0 + 1])
    clock = SimulatedClock(T0 + 30)
    follower = TimeGatedFollower([str(tmp_path / "a.jsonl")], clock)
    assert follower.poll().lines == lines[:1]
    clock.set(T0 + 60)
    assert follower.poll().lines == lines[1:]


def test_lines_without_a_timestamp_are_released_at_once_and_a_byte_budget_is_kept(tmp_path: Path) -> None:
    (tmp_path / "a.jsonl").write_bytes(b"not json\n" + json.dumps(feedback_record("x", T0 + 50, 1)).encode() + b"\n"
                                       + b"{\"timestamp\": \"2025-12-01T00:00:01+00:00\"}\n")
    follower = TimeGatedFollower([str(tmp_path / "a.jsonl")], SimulatedClock(T0))
    assert follower.poll().lines == [b"not json"]
    follower.clock = SimulatedClock(T0 + 60)  # type: ignore[assignment]
    result = follower.poll(max_bytes=10)
    assert len(result.lines) == 1 and result.more
    assert follower.poll().lines == [b"{\"timestamp\": \"2025-12-01T00:00:01+00:00\"}"]  # parsed: other form


def test_timestamps_are_read_in_both_forms() -> None:
    line = json.dumps(feedback_record("x", T0 + 0.25, 1)).encode()
    assert line_time_text(line) == utc_timestamp(T0 + 0.25).encode()
    assert line_time(line) == T0 + 0.25
    assert line_time_text(b'{"timestamp": "2025-12-01T00:00:00Z"}') is None
    assert line_time(b'{"timestamp": "2025-12-01T01:00:00+01:00"}') == T0
    assert line_time(b'{"label": 1}') is None
