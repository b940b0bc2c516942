"""A JSON Lines appender that runs off the caller's thread through a bounded queue.

Why: a predict call must never wait on disk and a slow or broken disk must never grow memory without bound.
`submit` only puts a batch on a bounded queue (or drops it and says so); one daemon thread serialises, writes and
flushes. Durability: records reach the OS every `flush_interval` seconds and at interpreter exit; a hard crash
may lose what was queued or buffered in that interval.
"""

from __future__ import annotations

import atexit
import contextlib
import json
import logging
import os
import queue
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TextIO

logger = logging.getLogger(__name__)

Outcome = Callable[[int], None]
"""Called with a row count when rows are written or fail to be written."""


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
        flush_interval: float = 0.5,
        reopen_interval: float = 5.0,
    ) -> None:
        self.path = Path(path)
        self.flush_interval = flush_interval
        self.reopen_interval = reopen_interval
        self._queue: queue.Queue[tuple[Sequence[dict[str, Any]], Outcome, Outcome] | None] = queue.Queue(
            maxsize=max_queue_batches
        )
        self._file: TextIO | None = None
        self._next_open_attempt = 0.0
        self._failing = False
        self._closed = False
        self._thread = threading.Thread(target=self._run, name=f"promml-writer:{self.path.name}", daemon=True)
        self._thread.start()
        atexit.register(self.close)

    def submit(
        self, records: Sequence[dict[str, Any]], written: Outcome = _ignore, failed: Outcome = _ignore
    ) -> bool:
        """Queue records for writing without blocking; False means the queue was full and nothing was queued."""
        if self._closed:
            return False
        try:
            self._queue.put_nowait((records, written, failed))
        except queue.Full:
            return False
        return True

    def close(self, timeout: float = 5.0) -> None:
        """Write what is queued, flush and stop the thread; later submits are refused."""
        if self._closed:
            return
        self._closed = True
        try:
            self._queue.put(None, timeout=timeout)
        except queue.Full:
            logger.warning("promml: prediction log queue still full at exit; unwritten rows are lost")
            return
        self._thread.join(timeout)

    def flush(self, timeout: float = 5.0) -> None:
        """Block until everything submitted so far is written and flushed (for tests and orderly shutdown)."""
        done = threading.Event()
        self._queue.put(([], lambda _: done.set(), lambda _: done.set()), timeout=timeout)
        done.wait(timeout)

    def _run(self) -> None:
        last_flush = time.monotonic()
        while True:
            try:
                item = self._queue.get(timeout=self.flush_interval)
            except queue.Empty:
                item = ()
            if item is None:
                self._flush_file()
                self._close_file()
                return
            if item:
                records, written, failed = item
                self._write(records, written, failed)
            if time.monotonic() - last_flush >= self.flush_interval:
                self._flush_file()
                last_flush = time.monotonic()

    def _write(self, records: Sequence[dict[str, Any]], written: Outcome, failed: Outcome) -> None:
        count = len(records)
        try:
            lines = "".join(json.dumps(record, separators=(",", ":"), default=str) + "\n" for record in records)
            handle = self._open()
            if handle is None:
                failed(count)
                return
            handle.write(lines)
            if not records:
                handle.flush()
        except (OSError, ValueError, TypeError) as error:
            self._report_failure(error)
            self._close_file()
            failed(count)
            return
        self._failing = False
        written(count)

    def _open(self) -> TextIO | None:
        if self._file is not None:
            return self._file
        now = time.monotonic()
        if now < self._next_open_attempt:
            return None
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._file = open(self.path, "a", encoding="utf-8")  # noqa: SIM115 - kept open on purpose
        except OSError as error:
            self._next_open_attempt = now + self.reopen_interval
            self._report_failure(error)
            return None
        return self._file

    def _flush_file(self) -> None:
        if self._file is None:
            return
        try:
            self._file.flush()
        except OSError as error:
            self._report_failure(error)
            self._close_file()

    def _close_file(self) -> None:
        if self._file is not None:
            with contextlib.suppress(OSError):
                self._file.close()
            self._file = None

    def _report_failure(self, error: BaseException) -> None:
        if not self._failing:
            logger.warning("promml: cannot write %s (%s); rows are counted as failed until it works", self.path, error)
        self._failing = True


_writers: dict[Path, JsonlWriter] = {}
_writers_lock = threading.Lock()


def shared_writer(path: str | os.PathLike[str]) -> JsonlWriter:
    """One writer per file in the process, so every decorated function logging there shares a thread."""
    key = Path(path).absolute()
    with _writers_lock:
        writer = _writers.get(key)
        if writer is None or writer._closed:
            writer = _writers[key] = JsonlWriter(key)
        return writer
