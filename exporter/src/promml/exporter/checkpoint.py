"""The exporter's checkpoint: read positions, line counters and the window's state, saved atomically.

Positions and counts are saved together, from the same moment of the work loop, so a restarted exporter neither
counts again a line it counted before nor misses one: the counters go on from the saved values and reading goes on
from the saved positions. The window's state (every slot, the predictions waiting for a label, the labels waiting
for their prediction) is saved with them, so a restart needs no log line read before the saved positions: the
window survives logs that were rotated away or deleted, and a restart costs the same whatever the logs hold.

The file is written to a temporary file created exclusively next to it (no symlink followed), fsynced and renamed
over the old one, so a kill at any moment leaves either the old or the new checkpoint, never a mix. Everything read
back is validated (types, ranges, sizes) before it is used. Format: docs/exporter.md.
"""

from __future__ import annotations

import contextlib
import os
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import msgspec
import numpy as np

from ..records import Feedback
from . import state as st
from .log_follower import FINGERPRINT_BYTES, READ_ELSEWHERE, FilePosition, Fingerprint

CHECKPOINT_FORMAT = "promml-exporter-checkpoint"
CHECKPOINT_VERSION = 2
"""2 adds the window's state; a checkpoint of version 1 is still used (the window is then rebuilt from the logs)."""
READABLE_VERSIONS = (1, 2)

FILE_MODE = 0o600
"""The checkpoint holds prediction ids and log paths: readable by its owner only, unless configured otherwise."""

MAX_CHECKPOINT_BYTES = 1 << 30
"""A larger file is not read (a 24-hour window at 100 predictions/s saves a few MB: docs/benchmarks.md)."""
MAX_FILES_PER_LOG = 10_000
MAX_MARKS = 1_000
MAX_STATUSES = 1_000
MAX_EARLY_LABELS = 1_000_000
MAX_LABELED_IDS = 10_000_000
MAX_OFFSET = 2**63 - 1
"""Largest file offset (off_t); a larger one cannot be a position the exporter saved."""
MAX_DEVICE = 2**64 - 1


class CheckpointError(st.InvalidState):
    """A checkpoint file that cannot be used; the message says why."""


@dataclass(frozen=True)
class LabelTotals:
    """The label counters that run since the first start: joined labels by outcome, and the label delay histogram
    (rows per bucket, the last above every bound, not cumulative) with its sum."""

    outcomes: Mapping[str, int]
    delay_counts: tuple[int, ...]
    delay_sum: float


@dataclass(frozen=True)
class Checkpoint:
    """Everything a restarted exporter resumes from."""

    model_name: str
    model_version: str
    saved_at: float
    record_counts: Mapping[tuple[str, str], int]
    positions: Mapping[str, list[FilePosition]]  # log name ("predictions", "feedback") -> its files
    labels: LabelTotals | None = None  # absent from older checkpoints: the label counters then start from zero
    early_labels: tuple[tuple[Feedback, float], ...] = ()  # labels read but held for their prediction, read at
    window: Mapping[str, Any] | None = None  # the window's state (validated by the window); None: version 1
    labeled: tuple[tuple[str, float], ...] = ()  # ids labelled lately, oldest first, with their label times
    newest_records: Mapping[str, float] | None = None  # log -> newest record timestamp read


def _position_to_dict(position: FilePosition) -> dict[str, Any]:
    return {
        "dev": position.dev,
        "inode": position.inode,
        "path": position.path,
        "offset": position.offset,
        "oversized_line_counted": position.oversized_line_counted,
        "fingerprint": {"length": position.fingerprint.length, "sha256": position.fingerprint.sha256},
        "marks": [[time, offset] for time, offset in position.marks],
        "copy_of": None if position.copy_of is None else list(position.copy_of),
    }


def checkpoint_to_dict(checkpoint: Checkpoint) -> dict[str, Any]:
    """The JSON document of a checkpoint."""
    document = {
        "format": CHECKPOINT_FORMAT,
        "version": CHECKPOINT_VERSION,
        "model_name": checkpoint.model_name,
        "model_version": checkpoint.model_version,
        "saved_at": checkpoint.saved_at,
        "record_counts": [
            {"log": log, "status": status, "count": count}
            for (log, status), count in sorted(checkpoint.record_counts.items())
        ],
        "logs": {log: [_position_to_dict(p) for p in positions] for log, positions in checkpoint.positions.items()},
        "early_labels": [
            [feedback.prediction_id, feedback.timestamp, feedback.label, read_at]
            for feedback, read_at in checkpoint.early_labels
        ],
    }
    if checkpoint.labels is not None:
        document["labels"] = {
            "outcomes": dict(sorted(checkpoint.labels.outcomes.items())),
            "delay_counts": list(checkpoint.labels.delay_counts),
            "delay_sum": checkpoint.labels.delay_sum,
        }
    if checkpoint.window is not None:
        document["window"] = checkpoint.window
        document["labeled"] = {"ids": [prediction_id for prediction_id, _ in checkpoint.labeled],
                               "times": st.floats_to_state(_floats([time for _, time in checkpoint.labeled]))}
    if checkpoint.newest_records is not None:
        document["newest_records"] = dict(checkpoint.newest_records)
    return document


def _floats(values: list[float]) -> np.ndarray:
    return np.asarray(values, dtype=float)


def _position_from_dict(raw: Any, where: str) -> FilePosition:
    fingerprint = st.field(raw, "fingerprint", where)
    sha256 = st.text(st.field(fingerprint, "sha256", f"{where}.fingerprint"), f"{where}.fingerprint.sha256", 64)
    offset = st.count(st.field(raw, "offset", where), f"{where}.offset", MAX_OFFSET)
    marks = []
    for index, mark in enumerate(st.sequence(st.field(raw, "marks", where), f"{where}.marks", MAX_MARKS)):
        at = f"{where}.marks[{index}]"
        if not isinstance(mark, list) or len(mark) != 2:
            raise CheckpointError(f"{at}: expected [time, offset]")
        marks.append((st.number(mark[0], at), st.count(mark[1], at, MAX_OFFSET)))
    copy_of = st.field(raw, "copy_of", where)
    if copy_of is not None:
        if not isinstance(copy_of, list) or len(copy_of) != 2:
            raise CheckpointError(f"{where}.copy_of: expected null or [dev, inode]")
        if list(copy_of) != list(READ_ELSEWHERE):
            copy_of = [st.count(n, f"{where}.copy_of", MAX_DEVICE) for n in copy_of]
        if offset or marks:  # a copy is never read while it is one: it stands at its start
            raise CheckpointError(f"{where}: a copy (copy_of set) with an offset or marks")
    oversized = st.field(raw, "oversized_line_counted", where)
    if type(oversized) is not bool:
        raise CheckpointError(f"{where}.oversized_line_counted: expected true or false")
    if len(sha256) != 64 or any(c not in "0123456789abcdef" for c in sha256):
        raise CheckpointError(f"{where}.fingerprint.sha256: expected 64 hexadecimal digits")
    return FilePosition(
        dev=st.count(st.field(raw, "dev", where), f"{where}.dev", MAX_DEVICE),
        inode=st.count(st.field(raw, "inode", where), f"{where}.inode", MAX_DEVICE),
        path=st.text(st.field(raw, "path", where), f"{where}.path"),
        offset=offset,
        oversized_line_counted=oversized,
        fingerprint=Fingerprint(st.count(st.field(fingerprint, "length", f"{where}.fingerprint"),
                                         f"{where}.fingerprint.length", FINGERPRINT_BYTES), sha256),
        marks=tuple(marks),
        copy_of=None if copy_of is None else (copy_of[0], copy_of[1]),
    )


def _positions_from_list(log: str, raw: Any) -> list[FilePosition]:
    where = f"checkpoint.logs.{log}"
    positions = [_position_from_dict(entry, f"{where}[{index}]")
                 for index, entry in enumerate(st.sequence(raw, where, MAX_FILES_PER_LOG))]
    keys = [(p.dev, p.inode) for p in positions]
    if len(set(keys)) != len(keys):
        raise CheckpointError(f"{where}: a file appears twice")
    originals = {(p.dev, p.inode) for p in positions if p.copy_of is None}
    for index, position in enumerate(positions):
        if position.copy_of not in (None, READ_ELSEWHERE) and position.copy_of not in originals:
            raise CheckpointError(f"{where}[{index}].copy_of: names no original file of this log")
    return positions


def _labels_from_dict(raw: Any) -> LabelTotals | None:
    if raw is None:
        return None
    where = "checkpoint.labels"
    outcomes = st.mapping(st.field(raw, "outcomes", where), f"{where}.outcomes", 2)
    return LabelTotals(
        outcomes={st.text(name, f"{where}.outcomes", 16): st.count(n, f"{where}.outcomes.{name}")
                  for name, n in outcomes.items()},
        delay_counts=tuple(st.count(n, f"{where}.delay_counts")
                           for n in st.sequence(st.field(raw, "delay_counts", where), f"{where}.delay_counts", 100)),
        delay_sum=st.number(st.field(raw, "delay_sum", where), f"{where}.delay_sum", 0.0, st.MAX_FLOAT_SUM),
    )


def _early_labels_from_list(raw: Any) -> tuple[tuple[Feedback, float], ...]:
    entries = []
    for index, entry in enumerate(st.sequence(raw, "checkpoint.early_labels", MAX_EARLY_LABELS)):
        where = f"checkpoint.early_labels[{index}]"
        if not (isinstance(entry, list) and len(entry) == 4):
            raise CheckpointError(f"{where}: expected [prediction_id, timestamp, label, read_at]")
        label = st.scalar(entry[2], f"{where}[2]")
        if label is None:
            raise CheckpointError(f"{where}[2]: a label is never null")
        entries.append((Feedback(st.text(entry[0], f"{where}[0]"), st.number(entry[1], f"{where}[1]"), label),
                        st.number(entry[3], f"{where}[3]")))
    return tuple(entries)


def _labeled_from_dict(raw: Any) -> tuple[tuple[str, float], ...]:
    where = "checkpoint.labeled"
    ids = st.sequence(st.field(raw, "ids", where), f"{where}.ids", MAX_LABELED_IDS)
    times = st.floats_from_state(st.field(raw, "times", where), f"{where}.times", len(ids))
    if len(times) != len(ids) or (times.size and abs(times).max() > st.MAX_TIME):
        raise CheckpointError(f"{where}: expected as many times in range as ids")
    return tuple((st.text(prediction_id, f"{where}.ids[{i}]"), float(time))
                 for i, (prediction_id, time) in enumerate(zip(ids, times.tolist(), strict=True)))


def checkpoint_from_dict(raw: Any) -> Checkpoint:
    """Validate a decoded checkpoint document (the window's state is validated by the window when restored)."""
    if not isinstance(raw, Mapping) or raw.get("format") != CHECKPOINT_FORMAT:
        raise CheckpointError(f"not a promml exporter checkpoint (expected format {CHECKPOINT_FORMAT!r})")
    version = raw.get("version")
    if type(version) is not int or version not in READABLE_VERSIONS:
        raise CheckpointError(f"checkpoint version {st._short(version)} is not one of "
                              f"{', '.join(map(str, READABLE_VERSIONS))}")
    try:
        counts: dict[tuple[str, str], int] = {}
        record_counts = st.sequence(st.field(raw, "record_counts", "checkpoint"), "checkpoint.record_counts",
                                    MAX_STATUSES)
        for index, entry in enumerate(record_counts):
            where = f"checkpoint.record_counts[{index}]"
            key = (st.text(st.field(entry, "log", where), f"{where}.log", 64),
                   st.text(st.field(entry, "status", where), f"{where}.status", 64))
            counts[key] = st.count(st.field(entry, "count", where), f"{where}.count")
        logs = st.mapping(st.field(raw, "logs", "checkpoint"), "checkpoint.logs", 16)
        positions = {st.text(log, "checkpoint.logs", 64): _positions_from_list(log, entries)
                     for log, entries in logs.items()}
        window = raw.get("window") if version >= 2 else None
        newest = raw.get("newest_records")
        return Checkpoint(
            model_name=st.text(st.field(raw, "model_name", "checkpoint"), "checkpoint.model_name"),
            model_version=st.text(st.field(raw, "model_version", "checkpoint"), "checkpoint.model_version"),
            saved_at=st.number(st.field(raw, "saved_at", "checkpoint"), "checkpoint.saved_at"),
            record_counts=counts,
            positions=positions,
            labels=_labels_from_dict(raw.get("labels")),
            early_labels=_early_labels_from_list(raw.get("early_labels", [])),
            window=None if window is None else st.mapping(window, "checkpoint.window", 16),
            labeled=_labeled_from_dict(raw["labeled"]) if window is not None and "labeled" in raw else (),
            newest_records=None if newest is None else {
                st.text(log, "checkpoint.newest_records", 64): st.number(time, f"checkpoint.newest_records.{log}")
                for log, time in st.mapping(newest, "checkpoint.newest_records", 16).items()
            },
        )
    except st.InvalidState as error:
        if isinstance(error, CheckpointError):
            raise
        raise CheckpointError(str(error)) from None


def encode_checkpoint(checkpoint: Checkpoint) -> bytes:
    """The checkpoint as compact JSON."""
    return msgspec.json.encode(checkpoint_to_dict(checkpoint))


def save_checkpoint(checkpoint: Checkpoint | bytes, path: str | os.PathLike[str], mode: int = FILE_MODE) -> None:
    """Write atomically: a temporary file created exclusively in the same folder (never through a symlink planted
    there: O_EXCL | O_NOFOLLOW), fsynced, renamed over `path`, then the folder fsynced so the rename itself
    survives a power cut."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    data = checkpoint if isinstance(checkpoint, bytes) else encode_checkpoint(checkpoint)
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0)
    for _ in range(100):
        temporary = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(8)}.tmp")
        try:
            descriptor = os.open(temporary, flags, mode)
            break
        except FileExistsError:  # someone else's file at that name (perhaps a symlink): try another name
            continue
    else:
        raise FileExistsError(f"cannot create a temporary file next to {path}")
    try:
        with open(descriptor, "wb", closefd=True) as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(OSError):
            temporary.unlink()
        raise
    directory = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(directory)
    finally:
        os.close(directory)


def load_checkpoint(path: str | os.PathLike[str]) -> Checkpoint | None:
    """The checkpoint at `path`, or None when there is none yet; CheckpointError when it cannot be used."""
    try:
        descriptor = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0))
    except FileNotFoundError:
        return None
    except OSError as error:
        raise CheckpointError(f"cannot read {path}: {error.strerror or error}") from None
    try:
        with open(descriptor, "rb") as handle:
            size = os.fstat(handle.fileno()).st_size
            if size > MAX_CHECKPOINT_BYTES:
                raise CheckpointError(f"{path} is {size} bytes, more than {MAX_CHECKPOINT_BYTES}")
            text = handle.read(MAX_CHECKPOINT_BYTES + 1)
    except OSError as error:
        raise CheckpointError(f"cannot read {path}: {error.strerror or error}") from None
    try:
        raw = msgspec.json.decode(text)
    except (msgspec.DecodeError, RecursionError) as error:
        raise CheckpointError(f"{path} is not JSON: {error}") from None
    return checkpoint_from_dict(raw)
