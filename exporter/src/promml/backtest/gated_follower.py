"""Reads finished log files as if they were being written: a poll returns only the lines stamped up to now.

A simulated log is written ahead of time, whole; the exporter under test must see each line only once the
simulated clock has reached its timestamp, as it would have live. Each file is read in order and a poll stops at
the first line stamped after now (a line out of order holds back the lines behind it, as a slow writer would).
Timestamps in promml's own form (`2026-11-22T14:03:02.123456Z`) are compared as text, which orders them as time;
any other form is parsed. A line without a readable timestamp is released at once, so the exporter counts it as
bad, as it would live.
"""

from __future__ import annotations

import glob
import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import BinaryIO

from ..exporter.log_follower import MAX_LINE_BYTES, POLL_BUDGET_BYTES, FilePosition, ReadResult
from ..records import InvalidRecord, parse_timestamp, utc_timestamp

READ_CHUNK_BYTES = 4 << 20
"""Bytes read from a file at a time."""

_KEY = b'"timestamp"'
_PROMML_FORM = 27  # len("2026-11-22T14:03:02.123456Z")


def line_time_text(line: bytes) -> bytes | None:
    """The timestamp of a record line as promml writes it (27 bytes, comparable as text), or None when the line
    has no timestamp in that form."""
    at = line.find(_KEY)
    if at < 0:
        return None
    start = line.find(b'"', at + len(_KEY))
    if start < 0:
        return None
    text = line[start + 1:start + 1 + _PROMML_FORM]
    if len(text) == _PROMML_FORM and text[26:27] == b"Z" and text[19:20] == b".":
        return text
    return None


def line_time(line: bytes) -> float | None:
    """Seconds since the epoch of a line's timestamp in any RFC 3339 form, or None when there is none."""
    at = line.find(_KEY)
    if at < 0:
        return None
    start = line.find(b'"', at + len(_KEY))
    end = line.find(b'"', start + 1)
    if start < 0 or end < 0:
        return None
    try:
        return parse_timestamp(line[start + 1:end].decode("utf-8"))
    except (InvalidRecord, UnicodeDecodeError):
        return None


@dataclass
class _File:
    path: str
    handle: BinaryIO
    lines: list[bytes] = field(default_factory=list)
    next_line: int = 0
    partial: bytes = b""
    at_end: bool = False
    size: int = 0


class TimeGatedFollower:
    """Stands in for `LogFollower` in a backtest: the same `poll()`, over files that already hold every line.

    The files matching `patterns` are found once, at the start (a simulated log is complete before the run).
    `on_lines`, when given, sees every line handed out, in order: the model-side series are counted from them.
    """

    def __init__(self, patterns: Iterable[str], clock: Callable[[], float], *,
                 on_lines: Callable[[list[bytes]], None] | None = None, max_line_bytes: int = MAX_LINE_BYTES) -> None:
        self.patterns = tuple(patterns)
        self.clock = clock
        self.on_lines = on_lines
        self.max_line_bytes = max_line_bytes
        paths = sorted({path for pattern in self.patterns for path in glob.glob(pattern)})
        self._files = [_File(path, open(path, "rb"), size=os.path.getsize(path)) for path in paths]  # noqa: SIM115
        self.bytes_read = 0
        self.lines_out = 0

    @property
    def paths(self) -> list[str]:
        return [f.path for f in self._files]

    @property
    def total_bytes(self) -> int:
        return sum(f.size for f in self._files)

    @property
    def replaying(self) -> bool:
        return False

    def poll(self, max_bytes: int = POLL_BUDGET_BYTES) -> ReadResult:
        """The lines stamped up to now that were not handed out yet, about `max_bytes` at most."""
        now = self.clock()
        now_text = utc_timestamp(now).encode()
        result = ReadResult()
        budget = max_bytes
        for followed in self._files:
            budget -= self._take(followed, now, now_text, result, budget)
            if budget <= 0:
                result.more = True
                break
        self.lines_out += len(result.lines)
        if self.on_lines is not None and result.lines:
            self.on_lines(result.lines)
        return result

    def _take(self, followed: _File, now: float, now_text: bytes, result: ReadResult, budget: int) -> int:
        taken = 0
        out = result.lines
        while taken < budget:
            if followed.next_line >= len(followed.lines) and not self._fill(followed):
                break
            lines, index = followed.lines, followed.next_line
            stop = len(lines)
            while index < stop and taken < budget:
                line = lines[index]
                stamp = line_time_text(line)
                if stamp is not None:
                    if stamp > now_text:
                        followed.next_line = index
                        return taken
                else:
                    seconds = line_time(line)
                    if seconds is not None and seconds > now:
                        followed.next_line = index
                        return taken
                if len(line) > self.max_line_bytes:
                    result.oversized += 1
                elif line.strip():
                    out.append(line)
                taken += len(line) + 1
                index += 1
            followed.next_line = index
        return taken

    def _fill(self, followed: _File) -> bool:
        """Read the next chunk of complete lines; False at the end of the file."""
        if followed.at_end:
            return False
        chunk = followed.handle.read(READ_CHUNK_BYTES)
        self.bytes_read += len(chunk)
        if not chunk:
            followed.at_end = True
            if followed.partial.strip():  # a last line without its newline: a live follower would wait for it
                followed.partial = b""
            return False
        lines = (followed.partial + chunk).split(b"\n")
        followed.partial = lines.pop()
        followed.lines, followed.next_line = lines, 0
        return True

    def positions(self) -> list[FilePosition]:
        """None: a backtest keeps no checkpoint (and reports no unread bytes, as an exporter keeping up would)."""
        return []

    def restore(self, positions: Iterable[FilePosition], replay_since: float) -> None:
        raise NotImplementedError("a backtest starts from the beginning of its logs; it has no checkpoint")

    def mark(self, now: float, keep_since: float, min_spacing: float) -> None:
        return None

    def close(self) -> None:
        for followed in self._files:
            followed.handle.close()
