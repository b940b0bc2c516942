"""The exporter's checkpoint: how far each log was read and how many lines were counted, saved atomically.

Positions and counts are saved together, from the same moment of the work loop, so a restarted exporter neither
counts again a line it counted before nor misses one: the counters go on from the saved values and reading goes on
from the saved positions. The file is written to a temporary name, fsynced and renamed over the old one, so a kill
at any moment leaves either the old or the new checkpoint, never a mix. Format: docs/exporter.md.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..records import Feedback
from .log_follower import FilePosition, Fingerprint

CHECKPOINT_FORMAT = "promml-exporter-checkpoint"
CHECKPOINT_VERSION = 1


class CheckpointError(ValueError):
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
    return {
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
        **({} if checkpoint.labels is None else {"labels": {
            "outcomes": dict(sorted(checkpoint.labels.outcomes.items())),
            "delay_counts": list(checkpoint.labels.delay_counts),
            "delay_sum": checkpoint.labels.delay_sum,
        }}),
    }


def _field(raw: Any, key: str, kind: Any, where: str) -> Any:
    value = raw.get(key) if isinstance(raw, Mapping) else None
    if not isinstance(value, kind) or (isinstance(value, bool) and kind is not bool):
        raise CheckpointError(f"{where}.{key}: missing or of the wrong type")
    return value


def _count(value: Any, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise CheckpointError(f"{where}: expected a non-negative integer, got {value!r}")
    return value


def _position_from_dict(raw: Any, where: str) -> FilePosition:
    if not isinstance(raw, Mapping):
        raise CheckpointError(f"{where}: expected an object")
    fingerprint = _field(raw, "fingerprint", Mapping, where)
    sha256 = _field(fingerprint, "sha256", str, f"{where}.fingerprint")
    marks = _field(raw, "marks", list, where)
    if not all(
        isinstance(m, list) and len(m) == 2 and isinstance(m[0], int | float) and not isinstance(m[0], bool)
        for m in marks
    ):
        raise CheckpointError(f"{where}.marks: expected [time, offset] pairs")
    copy_of = raw.get("copy_of")
    if copy_of is not None and not (
        isinstance(copy_of, list) and len(copy_of) == 2 and all(type(n) is int for n in copy_of)
    ):
        raise CheckpointError(f"{where}.copy_of: expected null or [dev, inode]")
    return FilePosition(
        dev=_count(raw.get("dev"), f"{where}.dev"),
        inode=_count(raw.get("inode"), f"{where}.inode"),
        path=_field(raw, "path", str, where),
        offset=_count(raw.get("offset"), f"{where}.offset"),
        oversized_line_counted=_field(raw, "oversized_line_counted", bool, where),
        fingerprint=Fingerprint(_count(fingerprint.get("length"), f"{where}.fingerprint.length"), sha256),
        marks=tuple((float(time), _count(offset, f"{where}.marks")) for time, offset in marks),
        copy_of=None if copy_of is None else (copy_of[0], copy_of[1]),
    )


def _labels_from_dict(raw: Any) -> LabelTotals | None:
    if raw is None:
        return None
    where = "checkpoint.labels"
    outcomes = _field(raw, "outcomes", Mapping, where)
    delay_sum = _field(raw, "delay_sum", int | float, where)
    if not math.isfinite(delay_sum) or delay_sum < 0:
        raise CheckpointError(f"{where}.delay_sum: expected a non-negative number, got {delay_sum!r}")
    return LabelTotals(
        outcomes={str(name): _count(n, f"{where}.outcomes.{name}") for name, n in outcomes.items()},
        delay_counts=tuple(_count(n, f"{where}.delay_counts") for n in _field(raw, "delay_counts", list, where)),
        delay_sum=float(delay_sum),
    )


def _early_labels_from_list(raw: Any) -> tuple[tuple[Feedback, float], ...]:
    if not isinstance(raw, list):
        raise CheckpointError("checkpoint.early_labels: expected a list")
    entries = []
    for index, entry in enumerate(raw):
        if not (isinstance(entry, list) and len(entry) == 4 and isinstance(entry[0], str)
                and all(isinstance(n, int | float) and not isinstance(n, bool) for n in (entry[1], entry[3]))):
            raise CheckpointError(f"checkpoint.early_labels[{index}]: expected [prediction_id, timestamp, label, "
                                  f"read_at], got {entry!r}")
        entries.append((Feedback(entry[0], float(entry[1]), entry[2]), float(entry[3])))
    return tuple(entries)


def checkpoint_from_dict(raw: Any) -> Checkpoint:
    """Validate a decoded checkpoint document."""
    if not isinstance(raw, Mapping) or raw.get("format") != CHECKPOINT_FORMAT:
        raise CheckpointError(f"not a promml exporter checkpoint (expected format {CHECKPOINT_FORMAT!r})")
    if raw.get("version") != CHECKPOINT_VERSION:
        raise CheckpointError(f"checkpoint version {raw.get('version')!r} is not {CHECKPOINT_VERSION}")
    counts: dict[tuple[str, str], int] = {}
    for index, entry in enumerate(_field(raw, "record_counts", list, "checkpoint")):
        where = f"checkpoint.record_counts[{index}]"
        key = (_field(entry, "log", str, where), _field(entry, "status", str, where))
        counts[key] = _count(entry.get("count"), f"{where}.count")
    logs = _field(raw, "logs", Mapping, "checkpoint")
    positions = {}
    for log, entries in logs.items():
        if not isinstance(entries, list):
            raise CheckpointError(f"checkpoint.logs.{log}: expected a list")
        positions[str(log)] = [_position_from_dict(e, f"checkpoint.logs.{log}[{i}]") for i, e in enumerate(entries)]
    saved_at = _field(raw, "saved_at", int | float, "checkpoint")
    return Checkpoint(
        model_name=_field(raw, "model_name", str, "checkpoint"),
        model_version=_field(raw, "model_version", str, "checkpoint"),
        saved_at=float(saved_at),
        record_counts=counts,
        positions=positions,
        labels=_labels_from_dict(raw.get("labels")),
        early_labels=_early_labels_from_list(raw.get("early_labels", [])),
    )


def save_checkpoint(checkpoint: Checkpoint, path: str | os.PathLike[str]) -> None:
    """Write atomically: a temporary file in the same folder, fsynced, renamed over `path`, then the folder
    fsynced so the rename itself survives a power cut."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    data = json.dumps(checkpoint_to_dict(checkpoint), separators=(",", ":")).encode()
    try:
        with open(temporary, "wb") as handle:
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
        text = Path(path).read_bytes()
    except FileNotFoundError:
        return None
    except OSError as error:
        raise CheckpointError(f"cannot read {path}: {error.strerror or error}") from None
    try:
        raw = json.loads(text)
    except ValueError as error:
        raise CheckpointError(f"{path} is not JSON: {error}") from None
    return checkpoint_from_dict(raw)
