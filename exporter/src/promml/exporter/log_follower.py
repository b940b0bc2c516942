"""Follow JSON Lines files the way `tail -F` does, returning only complete lines.

Why not just read to the end: writers append in chunks, so the last line may be partial; log rotation replaces a
file by rename (a new inode at the same path) or empties it in place (copy-truncate); globs pick up files that
appear later. Lines longer than `max_line_bytes` are skipped and counted instead of growing memory.
"""

from __future__ import annotations

import glob
import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import BinaryIO

READ_CHUNK_BYTES = 1 << 20


@dataclass
class _FollowedFile:
    path: str
    handle: BinaryIO
    key: tuple[int, int]
    offset: int = 0
    partial: bytes = b""
    skipping_oversized: bool = False


@dataclass
class ReadResult:
    """Complete lines read in one poll, and how many oversized lines were skipped."""

    lines: list[bytes] = field(default_factory=list)
    oversized: int = 0


class LogFollower:
    """Reads new complete lines from every file matching `patterns`, from the start of each file.

    Files are tracked by inode, not by name: a file renamed to another matching name is followed on from where
    it was; a file renamed away or deleted is read to its end first; a file that shrank was truncated and is read
    again from the start.
    """

    def __init__(self, patterns: Iterable[str], *, max_line_bytes: int = 1 << 20) -> None:
        self.patterns = tuple(patterns)
        self.max_line_bytes = max_line_bytes
        self._files: dict[tuple[int, int], _FollowedFile] = {}

    def poll(self, max_bytes: int = 64 << 20) -> ReadResult:
        """Read what was appended since the last poll, up to about `max_bytes` in all."""
        result = ReadResult()
        current: dict[tuple[int, int], _FollowedFile] = {}
        for path, stat in self._matching_files():
            key = (stat.st_dev, stat.st_ino)
            followed = self._files.pop(key, None)
            if followed is None:
                followed = self._open(path, key)
                if followed is None:
                    continue
            elif stat.st_size < followed.offset:
                self._restart(followed)
            followed.path = path
            current[key] = followed
        for gone in self._files.values():  # renamed out of the patterns or deleted: finish it, then let go
            self._read(gone, result, 1 << 62)
            gone.handle.close()
        self._files = current
        budget = max_bytes
        for followed in current.values():
            budget -= self._read(followed, result, budget)
            if budget <= 0:
                break
        return result

    def close(self) -> None:
        for followed in self._files.values():
            followed.handle.close()
        self._files.clear()

    def _matching_files(self) -> list[tuple[str, os.stat_result]]:
        paths: set[str] = set()
        for pattern in self.patterns:
            paths.update(glob.glob(pattern))
        found = []
        for path in sorted(paths):
            try:
                found.append((path, os.stat(path)))
            except OSError:
                continue  # vanished between glob and stat
        return found

    @staticmethod
    def _open(path: str, key: tuple[int, int]) -> _FollowedFile | None:
        try:
            handle = open(path, "rb")  # noqa: SIM115 - kept open across polls
        except OSError:
            return None
        stat = os.fstat(handle.fileno())
        if (stat.st_dev, stat.st_ino) != key:  # replaced between stat and open: pick it up next poll
            handle.close()
            return None
        return _FollowedFile(path, handle, key)

    @staticmethod
    def _restart(followed: _FollowedFile) -> None:
        followed.handle.seek(0)
        followed.offset = 0
        followed.partial = b""
        followed.skipping_oversized = False

    def _read(self, followed: _FollowedFile, result: ReadResult, budget: int) -> int:
        consumed = 0
        while consumed < budget:
            chunk = followed.handle.read(min(READ_CHUNK_BYTES, budget - consumed))
            if not chunk:
                break
            consumed += len(chunk)
            followed.offset += len(chunk)
            self._split(followed, chunk, result)
        return consumed

    def _split(self, followed: _FollowedFile, chunk: bytes, result: ReadResult) -> None:
        lines = (followed.partial + chunk).split(b"\n")
        followed.partial = lines.pop()
        if followed.skipping_oversized and lines:
            lines.pop(0)  # the tail of an oversized line
            followed.skipping_oversized = False
        for line in lines:
            if len(line) > self.max_line_bytes:
                result.oversized += 1
            elif line.strip():
                result.lines.append(line)
        if len(followed.partial) > self.max_line_bytes:
            if not followed.skipping_oversized:
                result.oversized += 1
            followed.partial = b""
            followed.skipping_oversized = True
