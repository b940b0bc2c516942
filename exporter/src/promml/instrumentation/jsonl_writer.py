"""A JSON Lines appender that runs off the caller's thread through a bounded queue, with size-based rotation.

Why: a predict call must never wait on disk, and a slow or broken disk must never grow memory without bound.
`submit` appends a batch to a bounded deque (a single atomic append, far cheaper than `queue.Queue`'s lock and
condition) or refuses it and says so; one daemon thread takes everything queued, renders that drain at once
(`render_batches`), encodes it with one msgspec call, writes and flushes. Records may be any sequence, including a
lazy one that renders itself (a prediction batch), so the rendering cost also stays off the calling thread. The
thread sleeps between looks at the queue, and a submit that finds the queue filling wakes it (`WAKE_FRACTION`), so
that at saturation it does not sleep while the queue fills.

Durability: each drain of the queue is written and flushed to the OS before its rows are counted `written`, so the
count never runs ahead of the file; a crash of the process loses only what was still queued (at most about
`IDLE_POLL_SECONDS` of predictions when the disk keeps up). A process crash does not lose flushed lines; a machine
crash may lose what the OS had not yet synced. Rotation: when the file passes `max_bytes` it is renamed to
`<stem>.<UTC time>Z<suffix>` (still matched by the exporter's `<stem>*<suffix>` glob) and only the newest
`backup_count` rotated files are kept.
"""

from __future__ import annotations

import atexit
import contextlib
import logging
import os
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, BinaryIO

import msgspec
import numpy as np

from ..records import json_value

logger = logging.getLogger(__name__)

Outcome = Callable[[int], None]
"""Called with a row count when rows are written or fail to be written."""
Batch = tuple[Sequence[Any], "Outcome", "Outcome"]

IDLE_POLL_SECONDS = 0.01
"""How long the writer sleeps when there is nothing to write: the latency of a write, not of a predict call. Rows
that come while it sleeps are written together, so a moderate rate costs one wake-up per 10 ms, not one per call."""
WAKE_FRACTION = 0.25
"""A submit that finds the queue this full (a quarter of its bound) wakes a sleeping writer at once, instead of
waiting for the end of its sleep: at saturation a no-op model fills 10,000 calls in about 20 ms, and the writer, once
woken, may wait up to the interpreter's 5 ms switch interval for the lock, so sleeping out 10 ms filled the queue."""
FILE_MODE_ENV = "PROMML_LOG_FILE_MODE"
DEFAULT_FILE_MODE = 0o600
"""Permissions of a log file the writer creates (owner only): prediction logs hold model inputs, often personal data.
`$PROMML_LOG_FILE_MODE` (octal, e.g. `640`) or `file_mode=` gives others access; an existing file keeps its mode."""

MAX_BATCHES_PER_WRITE = 10_000
"""Batches rendered and written with one write and one flush: fewer system calls under load, bounded memory."""


def _encode_other(value: Any) -> Any:
    """What msgspec cannot encode by itself: numpy scalars and arrays become Python numbers and lists, pandas' NA
    and NaT null (`records.json_value`), anything else its text. NaN and infinities then become null, as msgspec
    writes every non-finite float."""
    if isinstance(value, np.generic):  # numpy's float64 subclasses float, yet msgspec asks about it
        return value.item()
    plain = json_value(value)
    return str(value) if plain is value else plain


_ENCODER = msgspec.json.Encoder(enc_hook=_encode_other)
"""msgspec writes JSON several times faster than the standard library, and writes NaN and ±inf as null, so a
line is always valid JSON (docs/log-format.md) whatever a model puts in its features, prediction or score."""


def encode_line(record: Any) -> str:
    """One record as a line of strict JSON (no newline): NaN, ±inf and pandas' NA/NaT become null."""
    return _ENCODER.encode(record).decode("utf-8")


Rendered = list[Any] | Exception
"""A batch's records ready for the encoder (dicts or msgspec structs), or why it could not be rendered."""


def render_batches(batches: Sequence[Sequence[Any]]) -> list[Rendered]:
    """Each batch's records as a list for the encoder, or the error that fails that batch alone.

    A batch whose class has a `render_many(batches)` static method (a prediction batch) is rendered together with
    every other batch of its class, so work that is per call (ids, timestamps) is done once per drain; any other
    sequence (feedback, tests) is taken record by record.
    """
    kinds = {type(records) for records in batches}
    if len(kinds) == 1:  # the usual drain: one kind of batch, rendered together without grouping
        render_many = getattr(kinds.pop(), "render_many", None)
        if render_many is not None:
            try:
                return render_many(list(batches))
            except Exception as error:
                return [error] * len(batches)
    rendered: list[Rendered | None] = [None] * len(batches)
    groups: dict[Callable[[list[Any]], list[Rendered]], list[int]] = {}
    for index, records in enumerate(batches):
        render_many = getattr(type(records), "render_many", None)
        if render_many is not None:
            groups.setdefault(render_many, []).append(index)
            continue
        try:
            rendered[index] = list(records)
        except Exception as error:
            rendered[index] = error
    for render_many, indices in groups.items():
        try:
            results = render_many([batches[index] for index in indices])
        except Exception as error:
            results = [error] * len(indices)
        for index, result in zip(indices, results, strict=True):
            rendered[index] = result
    return rendered  # type: ignore[return-value]


def encode_lines(records: Sequence[Any]) -> bytes:
    """A batch of records as JSON Lines, rendered as the writer renders it (`render_batches`)."""
    (rendered,) = render_batches([records])
    if isinstance(rendered, Exception):
        raise rendered
    return _ENCODER.encode_lines(rendered)


def _ignore(_: int) -> None:
    pass


class JsonlWriter:
    """Appends records to one file from a background thread.

    Each submitted batch carries callbacks that count its rows as written or failed, so the caller can keep
    `written + dropped + failed == submitted` exact. Write failures are logged once until the file works again.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        max_queue_batches: int = 10_000,
        reopen_interval: float = 5.0,
        max_bytes: int | None = None,
        backup_count: int = 5,
        file_mode: int | None = None,
    ) -> None:
        self.path = Path(path)
        self.file_mode = default_file_mode() if file_mode is None else file_mode
        self.reopen_interval = reopen_interval
        self.max_bytes = max_bytes
        self.backup_count = backup_count
        self._max_batches = max_queue_batches
        self._pending: deque[Batch | None] = deque()
        self._wake_at = int(max_queue_batches * WAKE_FRACTION)
        self._wake = threading.Lock()
        """Held while no wake-up is pending: the writer sleeps trying to take it, a wake-up releases it. A lock,
        unlike an Event, allocates nothing per wait, so an idle writer leaves memory as it is."""
        self._wake.acquire()
        self._asleep = False
        self._file: BinaryIO | None = None
        self._next_open_attempt = 0.0
        self._failing = False
        self._render_failing = False
        self._closed = False
        self._thread = threading.Thread(target=self._run, name=f"promml-writer:{self.path.name}", daemon=True)
        self._thread.start()
        atexit.register(self.close)

    def submit(self, records: Sequence[Any], written: Outcome = _ignore, failed: Outcome = _ignore) -> bool:
        """Queue records for writing without blocking; False means the queue was full and nothing was queued.

        Under concurrent submits the bound may be passed by at most one batch per submitting thread.
        """
        pending = self._pending
        queued = len(pending)
        if self._closed or queued >= self._max_batches:
            return False
        pending.append((records, written, failed))
        if queued >= self._wake_at and self._asleep:  # one attribute read per call; the wake-up only when needed
            self._asleep = False
            self._wake_up()
        return True

    def _wake_up(self) -> None:
        with contextlib.suppress(RuntimeError):  # already released: a wake-up is pending
            self._wake.release()

    def close(self, timeout: float = 5.0) -> None:
        """Write what is queued, flush and stop the thread; later submits are refused."""
        if self._closed:
            return
        self._closed = True
        self._pending.append(None)
        self._wake_up()
        self._thread.join(timeout)
        if self._thread.is_alive():
            logger.warning("promml: prediction log writer for %s did not finish in %.0fs", self.path, timeout)

    def flush(self, timeout: float = 5.0) -> None:
        """Block until everything submitted so far is written and flushed (for tests and orderly shutdown)."""
        if self._closed:
            self._thread.join(timeout)
            return
        done = threading.Event()
        self._pending.append(([], lambda _: done.set(), lambda _: done.set()))
        self._wake_up()
        done.wait(timeout)

    def _run(self) -> None:
        pending = self._pending
        popleft = pending.popleft  # only this thread takes from the queue, so `len` items are there to take
        while True:  # an idle round allocates nothing that outlives it (tests/test_jsonl_writer.py)
            drained: list[Any] = [popleft() for _ in range(min(len(pending), MAX_BATCHES_PER_WRITE))]
            stop = None in drained  # close() queued its end marker
            if stop:
                drained = drained[:drained.index(None)]
            if drained:
                self._write(drained)
            if stop:
                self._close_file()
                return
            if not drained:
                self._sleep()

    def _sleep(self) -> None:
        """Wait for IDLE_POLL_SECONDS, or until a submit finds the queue filling (`WAKE_FRACTION`) or a flush or a
        close comes. The flag is set before the queue is looked at again, so a submit either sees it or was seen."""
        self._asleep = True
        if not self._pending:
            self._wake.acquire(timeout=IDLE_POLL_SECONDS)  # taken back at once if a wake-up was pending
        else:
            self._wake.acquire(blocking=False)  # a wake-up that came while the writer was busy is spent
        self._asleep = False

    def _write(self, batches: list[Batch]) -> None:
        """Render, encode, write and flush several batches at once; each is counted written only once the OS has
        it. Consecutive batches with the same callback (a model's calls share its counter) are counted with one
        call: a counter's lock per row was a fifth of the writer's time."""
        failures: list[tuple[Outcome, int]] = []
        items: list[Any] = []
        kept: list[tuple[Batch, int]] = []  # each batch rendered and its number of lines in `items`
        for batch, rendered in zip(batches, render_batches([records for records, _, _ in batches]), strict=True):
            if isinstance(rendered, Exception):  # a record that cannot be rendered fails its batch, never the writer
                self._report_render_failure(rendered)
                failures.append((batch[2], len(batch[0])))
                continue
            kept.append((batch, len(rendered)))
            items += rendered
        data, kept = self._encode(items, kept, failures)
        try:
            handle = self._open()
            if handle is not None:
                handle.write(data)
                handle.flush()
        except (OSError, ValueError) as error:
            self._report_failure(error)
            self._close_file()
            handle = None
        _count(failures)
        if handle is None:
            _count([(failed, rows) for (_, _, failed), rows in kept])
            return
        _count([(written, rows) for (_, written, _), rows in kept])
        self._failing = False
        if self.max_bytes is not None and handle.tell() >= self.max_bytes:
            self._rotate()

    def _encode(self, items: list[Any], kept: list[tuple[Batch, int]], failures: list[tuple[Outcome, int]]
                ) -> tuple[bytes, list[tuple[Batch, int]]]:
        """All rendered batches with one msgspec call; if that fails, batch by batch, so that only a batch the
        encoder refuses fails (added to `failures`). Returns the bytes and the batches they hold."""
        try:
            return _ENCODER.encode_lines(items), kept
        except Exception:
            pass
        parts = []
        encoded = []
        start = 0
        for entry in kept:
            (_, _, failed), rows = entry
            lines, start = items[start:start + rows], start + rows
            try:
                parts.append(_ENCODER.encode_lines(lines))
            except Exception as error:
                self._report_render_failure(error)
                failures.append((failed, rows))
                continue
            encoded.append(entry)
        return b"".join(parts), encoded

    def _open(self) -> BinaryIO | None:
        if self._file is not None:
            return self._file
        now = time.monotonic()
        if now < self._next_open_attempt:
            return None
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._file = self._open_for_append()
        except OSError as error:
            self._next_open_attempt = now + self.reopen_interval
            self._report_failure(error)
            return None
        return self._file

    def _open_for_append(self) -> BinaryIO:
        """The log opened for appending, created with `file_mode`; when it does not end in a newline (a writer
        crashed mid-line), a newline first, so that partial line stays one bad line and the next record is kept."""
        fd = os.open(self.path, os.O_RDWR | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, self.file_mode)
        try:
            size = os.fstat(fd).st_size
            unfinished = size > 0 and os.pread(fd, 1, size - 1) != b"\n"
            handle = os.fdopen(fd, "ab")
        except BaseException:
            os.close(fd)
            raise
        if unfinished:
            handle.write(b"\n")
        return handle

    def rotated_files(self) -> list[Path]:
        """The rotated files of this log, oldest first (their names sort by time)."""
        return sorted(self.path.parent.glob(f"{self.path.stem}.*Z{self.path.suffix}"))

    def _rotate(self) -> None:
        """Rename the full file aside (the exporter follows it by inode) and drop the oldest beyond backup_count."""
        self._close_file()
        now_ns = time.time_ns()
        stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime(now_ns // 1_000_000_000)) + f".{now_ns % 10**9:09d}Z"
        os.replace(self.path, self.path.with_name(f"{self.path.stem}.{stamp}{self.path.suffix}"))
        for old in self.rotated_files()[: -self.backup_count or None] if self.backup_count else self.rotated_files():
            with contextlib.suppress(OSError):
                old.unlink()

    def _close_file(self) -> None:
        if self._file is not None:
            with contextlib.suppress(OSError):
                self._file.close()
            self._file = None

    def _report_render_failure(self, error: BaseException) -> None:
        if not self._render_failing:
            logger.warning("promml: cannot render prediction records for %s (%s); such rows are counted as failed",
                           self.path, error)
        self._render_failing = True

    def _report_failure(self, error: BaseException) -> None:
        if not self._failing:
            logger.warning("promml: cannot write %s (%s); rows are counted as failed until it works", self.path, error)
        self._failing = True


def _count(outcomes: list[tuple[Outcome, int]]) -> None:
    """Call each callback with its rows, in order, consecutive calls of the same callback merged into one."""
    current: Outcome | None = None
    total = 0
    for outcome, rows in outcomes:
        if outcome is current or outcome == current:
            total += rows
            continue
        if current is not None:
            current(total)
        current, total = outcome, rows
    if current is not None:
        current(total)


def default_file_mode() -> int:
    """`$PROMML_LOG_FILE_MODE` read as octal, or DEFAULT_FILE_MODE when unset or unreadable (logged)."""
    text = os.environ.get(FILE_MODE_ENV)
    if not text:
        return DEFAULT_FILE_MODE
    try:
        mode = int(text, 8)
    except ValueError:
        mode = -1
    if not 0 <= mode <= 0o777:
        logger.warning("promml: %s=%r is not an octal file mode such as 640; using %o", FILE_MODE_ENV, text,
                       DEFAULT_FILE_MODE)
        return DEFAULT_FILE_MODE
    return mode


_writers: dict[Path, JsonlWriter] = {}
_writers_lock = threading.Lock()


def shared_writer(path: str | os.PathLike[str], **options: Any) -> JsonlWriter:
    """One writer per file in the process, so every decorated function logging there shares a thread.

    `options` (see JsonlWriter) apply when the writer is created; later calls get the existing writer.
    """
    key = Path(path).absolute()
    with _writers_lock:
        writer = _writers.get(key)
        if writer is None or writer._closed:
            writer = _writers[key] = JsonlWriter(key, **options)
        return writer
