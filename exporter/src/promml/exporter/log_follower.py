"""Follow JSON Lines files the way `tail -F` does, returning only complete lines, and resume after a restart.

Why not just read to the end: writers append in chunks, so the last line may be partial; log rotation replaces a
file by rename (a new inode at the same path) or copies it aside and empties it in place (copy-truncate); globs
pick up files that appear later. Lines longer than `max_line_bytes` are skipped and counted instead of growing
memory.

A file is known by its (device, inode) and by a fingerprint of its first bytes. The fingerprint tells an emptied
and rewritten file from one that only grew, a reused inode from the file a checkpoint remembers, and a copy from a
new file: a file that appears with the same first bytes as a followed one is that file's copy (logrotate's
`copytruncate`). A copy is not read while its original is intact (every line is read from the original); when the
original is truncated or disappears, the copy takes over from the original's position, so the lines written before
the truncate that were not yet read are read from the copy, once.

After a restart (`restore`), each file is read again from a position early enough to hold every record still in
the sliding window (a "mark": the read position at some past time), so the window can be rebuilt; lines before the
checkpointed position come back as `replayed` (for the window only, already counted), later ones as `lines`.

Only regular files are read: a FIFO or a device matching the glob (or a symlink to one) is refused, and files are
opened non-blocking, so an open can never wait for a writer. A symlink whose target lies outside the directory of
the matched path is refused unless `follow_symlinks_out` is set (it could expose any file the exporter may read).
A file renamed out of the patterns is read to its end within the poll's byte budget, over as many polls as it takes.
"""

from __future__ import annotations

import glob
import hashlib
import logging
import os
import stat as stat_mode
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from typing import BinaryIO

logger = logging.getLogger(__name__)

READ_CHUNK_BYTES = 1 << 20
"""Bytes read from a file at a time."""

MAX_LINE_BYTES = 1 << 20
"""Longest line used; longer ones are skipped and counted as `oversized`, so a runaway writer cannot grow memory."""

POLL_BUDGET_BYTES = 4 << 20
"""Bytes read in one poll at most (about 6,000 records of 20 features): the decoded records of one poll are what
the exporter holds in memory at once, so this bounds its peak; a backlog is read in several polls."""

FINGERPRINT_BYTES = 256
"""How many first bytes identify a file's content. A record's `prediction_id` lies within them, so two different
logs never share them; an emptied and rewritten file is told from one that grew by a change in them."""

FileKey = tuple[int, int]
"""(st_dev, st_ino): a file's identity while it exists."""


@dataclass(frozen=True)
class Fingerprint:
    """SHA-256 of a file's first `length` bytes (at most FINGERPRINT_BYTES); length 0 matches nothing."""

    length: int
    sha256: str

    @classmethod
    def of(cls, data: bytes) -> Fingerprint:
        return cls(len(data), hashlib.sha256(data).hexdigest())

    def matches(self, handle: BinaryIO) -> bool:
        """Does the open file start with the bytes this fingerprint was taken from?"""
        if self.length == 0:
            return False
        head = os.pread(handle.fileno(), self.length, 0)
        return len(head) == self.length and hashlib.sha256(head).hexdigest() == self.sha256


NO_FINGERPRINT = Fingerprint.of(b"")

READ_ELSEWHERE: FileKey = (-1, -1)
"""`copy_of` of a copy whose content was read from its original, or from another copy: it is never read."""


@dataclass(frozen=True)
class FilePosition:
    """What a checkpoint keeps of one followed file.

    `offset` is where the first line not yet used begins; every line before it was counted. When that line is an
    oversized one already counted, `oversized_line_counted` says so. `marks` are (time, offset) pairs: the file
    was read up to `offset` at `time`, so records stamped after `time` lie after `offset`. `copy_of` names the
    original of a copy that is not read while the original is intact.
    """

    dev: int
    inode: int
    path: str
    offset: int
    oversized_line_counted: bool
    fingerprint: Fingerprint
    marks: tuple[tuple[float, int], ...] = ()
    copy_of: FileKey | None = None


@dataclass
class ReadResult:
    """Complete lines read in one poll: new ones, ones read again to rebuild the window, and oversized ones."""

    lines: list[bytes] = field(default_factory=list)
    replayed: list[bytes] = field(default_factory=list)
    oversized: int = 0
    more: bool = False  # the poll stopped at its byte budget: more may be waiting


@dataclass
class _FollowedFile:
    path: str
    key: FileKey
    handle: BinaryIO | None = None  # None: restored from a checkpoint, opened at the next poll
    offset: int = 0  # bytes read from the file
    line_start: int = 0  # where the line being read begins
    partial: bytes = b""
    skipping: bool = False  # inside an oversized line, dropping bytes until its end
    fingerprint: Fingerprint = NO_FINGERPRINT
    count_from: int = 0  # lines beginning before it were counted before a restart: they are replayed
    oversized_counted_at: int = -1  # an oversized line beginning here was counted before a restart
    marks: list[tuple[float, int]] = field(default_factory=list)
    copy_of: FileKey | None = None
    # Adopted while empty: it may be a copy `cp` has created but not filled yet. Once it holds bytes, it is judged
    # a copy or not against these files, which held bytes when it appeared (so not against files that came after).
    undecided_against: frozenset[FileKey] | None = None
    departed: bool = False  # renamed out of the patterns or deleted: read to its end (within budgets), then let go


def _inside_own_directory(path: str) -> bool:
    """Does the symlink at `path` resolve to a file under the directory that holds it?"""
    directory = os.path.realpath(os.path.dirname(path) or ".")
    target = os.path.realpath(path)
    return os.path.commonpath([directory, target]) == directory


def _replay_start(marks: Iterable[tuple[float, int]], since: float) -> int:
    """The offset of the latest mark taken at or before `since`: records stamped later lie after it."""
    start = 0
    for time, offset in marks:
        if time <= since:
            start = offset
    return start


class LogFollower:
    """Reads new complete lines from every file matching `patterns`, from the start of each file.

    Files are tracked by inode, not by name: a file renamed to another matching name is followed on from where
    it was; a file renamed away or deleted is read to its end first; a file that shrank, or whose first bytes
    changed, was truncated and is read again from the start; a copy of a followed file (same first bytes) is
    read only from where its original stopped, once the original is truncated or gone.
    """

    def __init__(self, patterns: Iterable[str], *, max_line_bytes: int = MAX_LINE_BYTES,
                 follow_symlinks_out: bool = False) -> None:
        self.patterns = tuple(patterns)
        self.max_line_bytes = max_line_bytes
        self.follow_symlinks_out = follow_symlinks_out
        self.refused: dict[str, str] = {}
        """Paths matching the patterns that are not read, and why (logged once each)."""
        self._files: dict[FileKey, _FollowedFile] = {}

    @property
    def replaying(self) -> bool:
        """True while lines counted before a restart are still being read again (or not yet opened)."""
        return any(f.handle is None or f.line_start < f.count_from for f in self._files.values() if not f.copy_of)

    def poll(self, max_bytes: int = POLL_BUDGET_BYTES) -> ReadResult:
        """Read what was appended since the last poll, up to about `max_bytes` in all."""
        result = ReadResult()
        previous = self._files
        current: dict[FileKey, _FollowedFile] = {}
        ended: dict[FileKey, _FollowedFile] = {}  # originals whose content ended (truncated, or lost), as they were
        appeared: list[tuple[int, str, FileKey]] = []
        sizes: dict[FileKey, int] = {}
        for path, stat in self._matching_files():
            key = (stat.st_dev, stat.st_ino)
            sizes[key] = stat.st_size
            followed = previous.pop(key, None)
            if followed is None:
                appeared.append((stat.st_size, path, key))
                continue
            if followed.handle is None and not self._reopen(followed, path):
                previous[key] = followed  # vanished between stat and open
                continue
            followed.path = path
            followed.departed = False
            current[key] = followed
            if self._was_truncated(followed, stat.st_size):
                if followed.copy_of:  # it was the original, not the copy: its new content is read from the start
                    followed.copy_of = None
                else:
                    ended[key] = replace(followed)
                self._restart(followed)
        departing: dict[FileKey, _FollowedFile] = {}
        for key, gone in previous.items():  # renamed out of the patterns or deleted
            if gone.handle is None:
                ended[key] = gone  # known only from a checkpoint: what it held is now only in a copy, if any
            elif gone.copy_of:
                gone.handle.close()
            else:  # finished through the open handle, within the byte budget of this poll and the next ones
                gone.departed = True
                departing[key] = gone
        for copy in list(current.values()):  # an original emptied before much of it was read: its copy tells
            original = current.get(copy.copy_of) if copy.copy_of else None
            if original is not None and not original.copy_of and original.key not in ended:
                assert original.handle is not None
                if not copy.fingerprint.matches(original.handle):
                    ended[original.key] = replace(original)
                    self._restart(original)
        # copies of what an ended original held (its key may now name its new content)
        old_copies = {key: [f for f in current.values() if f.copy_of == key] for key in ended}
        for followed in list(current.values()):  # adopted empty, written since: a copy after all?
            if followed.undecided_against is not None and sizes.get(followed.key):
                against, followed.undecided_against = followed.undecided_against, None
                self._judge_copy(followed, {k: f for k, f in ended.items() if k in against},
                                 {k: f for k, f in current.items() if k in against and k not in ended}, old_copies)
        for size, path, key in sorted(appeared, key=lambda item: (-item[0], item[1])):  # a copy is never the larger
            followed = self._open(path, key)
            if followed is not None:
                if not size:
                    followed.undecided_against = frozenset(k for k in current if sizes.get(k) and k not in ended)
                else:
                    self._judge_copy(followed, ended, current, old_copies)
                current[key] = followed
        took_over: dict[FileKey, _FollowedFile] = {}
        for key, original in ended.items():
            copies = old_copies[key]
            if copies:
                copy = max(copies, key=self._size)  # the latest copy holds the most
                for other in copies:
                    other.copy_of = READ_ELSEWHERE
                self._take_over(copy, original)
                took_over[copy.key] = copy
        for followed in current.values():
            if followed.copy_of and followed.copy_of not in current:
                followed.copy_of = READ_ELSEWHERE  # its original was read in full, or another copy took over
        # files that left hold the oldest lines, then copies that took over: they are read first
        self._files = current = {**departing, **took_over, **current}
        budget = max_bytes
        for followed in list(current.values()):
            if followed.copy_of:
                continue
            consumed = self._read(followed, result, budget)
            budget -= consumed
            if followed.departed and budget > 0:  # read to its end: let go
                assert followed.handle is not None
                followed.handle.close()
                del current[followed.key]
            if budget <= 0:
                result.more = True
                break
        return result

    def positions(self) -> list[FilePosition]:
        """Where every followed file stands, for a checkpoint: consistent with the lines returned so far."""
        found = []
        for f in self._files.values():
            if f.line_start < f.count_from or f.handle is None:  # still replaying: the counted position stands
                offset, oversized = f.count_from, f.oversized_counted_at == f.count_from
            else:
                offset, oversized = f.line_start, f.skipping or f.oversized_counted_at == f.line_start
            found.append(
                FilePosition(
                    dev=f.key[0], inode=f.key[1], path=f.path, offset=offset, oversized_line_counted=oversized,
                    fingerprint=f.fingerprint, marks=tuple(f.marks), copy_of=f.copy_of,
                )
            )
        return found

    def restore(self, positions: Iterable[FilePosition], replay_since: float | None) -> None:
        """Resume from a checkpoint: lines before each position are read again only if they may hold records
        stamped after `replay_since` (they come back as `replayed`; None: none is read again); later lines are
        new."""
        self.close()
        for position in positions:
            start = position.offset if replay_since is None else min(_replay_start(position.marks, replay_since),
                                                                     position.offset)
            key = (position.dev, position.inode)
            self._files[key] = _FollowedFile(
                path=position.path, key=key, offset=start, line_start=start, fingerprint=position.fingerprint,
                count_from=position.offset,
                oversized_counted_at=position.offset if position.oversized_line_counted else -1,
                marks=list(position.marks), copy_of=position.copy_of,
            )

    def mark(self, now: float, keep_since: float, min_spacing: float) -> None:
        """Remember how far each file was read at `now` (at most one mark per `min_spacing` seconds); forget
        marks older than the one that a restart at `keep_since` would start from."""
        for f in self._files.values():
            if f.copy_of:
                continue
            if not f.marks or now - f.marks[-1][0] >= min_spacing:
                f.marks.append((now, f.line_start))
            first_kept = max((i for i, (time, _) in enumerate(f.marks) if time <= keep_since), default=0)
            del f.marks[:first_kept]

    def close(self) -> None:
        for followed in self._files.values():
            if followed.handle is not None:
                followed.handle.close()
        self._files.clear()

    def _matching_files(self) -> list[tuple[str, os.stat_result]]:
        """The regular files the patterns match (each once, by its first path), symlinks out of the log directory
        left out unless `follow_symlinks_out`."""
        paths: set[str] = set()
        for pattern in self.patterns:
            paths.update(glob.glob(pattern))
        found = []
        seen: set[FileKey] = set()
        for path in sorted(paths):
            try:
                if not self.follow_symlinks_out and os.path.islink(path) and not _inside_own_directory(path):
                    self._refuse(path, "a symlink out of the log directory")
                    continue
                stat = os.stat(path)
            except (OSError, ValueError):
                continue  # vanished between glob and stat
            if stat_mode.S_ISDIR(stat.st_mode):
                continue  # a configuration mistake, reported as such by the exporter (misconfiguration.py)
            if not stat_mode.S_ISREG(stat.st_mode):
                self._refuse(path, "not a regular file")
                continue
            key = (stat.st_dev, stat.st_ino)
            if key not in seen:
                seen.add(key)
                found.append((path, stat))
        return found

    def _refuse(self, path: str, reason: str) -> None:
        if self.refused.get(path) != reason:
            logger.warning("promml exporter: not reading %s: %s", path, reason)
            self.refused[path] = reason

    @staticmethod
    def _open_handle(path: str, key: FileKey) -> BinaryIO | None:
        """The file at `path` opened for reading, if it is still the regular file `key`.

        Non-blocking, so that a FIFO put in its place since it was stat'ed cannot block the open; the identity and
        type are checked on the open descriptor, which no later rename can change."""
        try:
            fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
        except OSError:
            return None
        stat = os.fstat(fd)
        if (stat.st_dev, stat.st_ino) != key or not stat_mode.S_ISREG(stat.st_mode):  # replaced: next poll
            os.close(fd)
            return None
        # unbuffered: a seek back after a truncate must never return stale buffered bytes
        return os.fdopen(fd, "rb", buffering=0)

    def _open(self, path: str, key: FileKey) -> _FollowedFile | None:
        handle = self._open_handle(path, key)
        return None if handle is None else _FollowedFile(path, key, handle)

    def _reopen(self, followed: _FollowedFile, path: str) -> bool:
        """Open a file known from a checkpoint; a different first content means the inode was reused."""
        handle = self._open_handle(path, followed.key)
        if handle is None:
            return False
        followed.handle = handle
        handle.seek(followed.offset)
        return True

    @staticmethod
    def _was_truncated(followed: _FollowedFile, size: int) -> bool:
        assert followed.handle is not None
        if size < max(followed.offset, followed.count_from):
            return True
        return followed.fingerprint.length > 0 and not followed.fingerprint.matches(followed.handle)

    @staticmethod
    def _restart(followed: _FollowedFile) -> None:
        assert followed.handle is not None
        followed.handle.seek(0)
        followed.offset = followed.line_start = followed.count_from = 0
        followed.partial = b""
        followed.skipping = False
        followed.fingerprint = NO_FINGERPRINT
        followed.oversized_counted_at = -1
        followed.marks = []

    def _judge_copy(
        self, followed: _FollowedFile, ended: dict[FileKey, _FollowedFile], intact: dict[FileKey, _FollowedFile],
        old_copies: dict[FileKey, list[_FollowedFile]],
    ) -> None:
        """Whether a new file is a copy: of an ended original (noted among its copies, one of which takes over
        from it) or of an intact one (not read while that original is intact)."""
        original = self._copy_of_ended(followed, ended, old_copies)
        if original is not None:
            old_copies[original].append(followed)
        followed.copy_of = original or self._copy_of_intact(followed, intact)

    @staticmethod
    def _copy_of_ended(
        followed: _FollowedFile, ended: dict[FileKey, _FollowedFile], old_copies: dict[FileKey, list[_FollowedFile]],
    ) -> FileKey | None:
        """The truncated or lost file this new one is a copy of: it starts with the bytes read from it, or with
        the first bytes of a copy of it (an original emptied before any of it was read has no fingerprint of its
        own, but its copies have theirs)."""
        assert followed.handle is not None
        for key, original in ended.items():
            if original.copy_of:
                continue
            if original.fingerprint.matches(followed.handle) or any(
                copy.fingerprint.matches(followed.handle) for copy in old_copies.get(key, ())
            ):
                followed.fingerprint = Fingerprint.of(os.pread(followed.handle.fileno(), FINGERPRINT_BYTES, 0))
                return key
        return None

    @staticmethod
    def _copy_of_intact(followed: _FollowedFile, intact: dict[FileKey, _FollowedFile]) -> FileKey | None:
        """The followed file this new one is a copy of: one that starts with the same first bytes now. The copy is
        fingerprinted, so that if it turns out to be the original (it is the one truncated), it is read again as
        a new file."""
        assert followed.handle is not None
        head = os.pread(followed.handle.fileno(), FINGERPRINT_BYTES, 0)
        for key, original in intact.items():
            if original.copy_of or original.handle is None:
                continue
            theirs = os.pread(original.handle.fileno(), len(head), 0)
            if theirs and theirs == head:  # an intact original only grows: it is at least as long as its copy
                followed.fingerprint = Fingerprint.of(head)
                return key
        return None

    @staticmethod
    def _size(followed: _FollowedFile) -> int:
        assert followed.handle is not None
        return os.fstat(followed.handle.fileno()).st_size

    @staticmethod
    def _take_over(copy: _FollowedFile, original: _FollowedFile) -> None:
        """The original's content ended (truncated or gone): its copy goes on from where it was."""
        assert copy.handle is not None
        copy.copy_of = None
        copy.offset, copy.line_start, copy.partial = original.offset, original.line_start, original.partial
        copy.skipping, copy.count_from = original.skipping, original.count_from
        copy.oversized_counted_at, copy.marks = original.oversized_counted_at, list(original.marks)
        size = os.fstat(copy.handle.fileno()).st_size
        if copy.offset > size:  # an older copy: everything it holds was read from the original
            copy.offset = copy.line_start = size
            copy.partial, copy.skipping = b"", False
        copy.count_from = min(copy.count_from, size)
        copy.handle.seek(copy.offset)

    def _read(self, followed: _FollowedFile, result: ReadResult, budget: int) -> int:
        assert followed.handle is not None
        consumed = 0
        while consumed < budget:
            chunk = followed.handle.read(min(READ_CHUNK_BYTES, budget - consumed))
            if not chunk:
                break
            consumed += len(chunk)
            self._split(followed, chunk, result)
        if followed.fingerprint.length < min(FINGERPRINT_BYTES, followed.offset):
            head = os.pread(followed.handle.fileno(), min(FINGERPRINT_BYTES, followed.offset), 0)
            followed.fingerprint = Fingerprint.of(head)
        return consumed

    def _split(self, followed: _FollowedFile, chunk: bytes, result: ReadResult) -> None:
        position = followed.offset - len(followed.partial)  # file offset of the first byte of partial + chunk
        followed.offset += len(chunk)
        lines = (followed.partial + chunk).split(b"\n")
        followed.partial = lines.pop()
        if lines:
            max_line, count_from = self.max_line_bytes, followed.count_from
            new, replayed = result.lines, result.replayed
            start = followed.line_start
            if followed.skipping:  # the tail of an oversized line, counted when it began
                position += len(lines[0]) + 1
                start = position
                lines = lines[1:]
                followed.skipping = False
            if start >= count_from and max(map(len, lines), default=0) <= max_line:  # the usual case, in C
                new.extend(filter(bytes.strip, lines))  # blank lines are no records
                position += sum(map(len, lines)) + len(lines)
            else:
                for line in lines:
                    position += len(line) + 1
                    if len(line) > max_line:
                        self._count_oversized(followed, start, result)
                    elif line.strip():
                        (new if start >= count_from else replayed).append(line)
                    start = position
            followed.line_start = position
        if len(followed.partial) > self.max_line_bytes:
            if not followed.skipping:
                self._count_oversized(followed, followed.line_start, result)
            followed.partial = b""
            followed.skipping = True

    @staticmethod
    def _count_oversized(followed: _FollowedFile, start: int, result: ReadResult) -> None:
        if start >= followed.count_from and start != followed.oversized_counted_at:
            result.oversized += 1
