"""The exporter's work loop: read new log lines, update the window, recompute the statistics, save a checkpoint.

Reading and recomputing run on one background thread; scrapes only read the last finished snapshot, so a scrape
never waits for a recompute and never sees a half-updated one.

Restart: the checkpoint holds the followers' positions and the line counters, saved together after every
recompute and at shutdown. A restarted exporter goes on counting from the saved counters and reading from the
saved positions, so every line is counted once however it was stopped. The window is not saved: the lines that may
hold records still inside it are read again and added to the window without being counted (docs/exporter.md).
"""

from __future__ import annotations

import json
import logging
import math
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from ..baseline import Baseline
from ..records import FEEDBACK_FIELDS, PREDICTION_FIELDS, Feedback, Prediction, parse_feedback, parse_prediction
from .checkpoint import Checkpoint, CheckpointError, load_checkpoint, save_checkpoint
from .config import ExporterConfig
from .log_follower import LogFollower
from .window import SlidingWindow, WindowSnapshot

logger = logging.getLogger(__name__)

PREDICTIONS_LOG = "predictions"
FEEDBACK_LOG = "feedback"

REPLAY_MARGIN_SECONDS = 300.0
"""After a restart, lines read up to this long before the window's start are read again too: an allowance for the
writer's clock running ahead of the exporter's, and for records stamped before they were queued for writing."""

MARKS_PER_WINDOW = 32
"""Read positions remembered per file per window length: a restart reads again at most 1/32 of a window more than
it needs to."""


@dataclass(frozen=True)
class Published:
    """What a scrape sees: the last snapshot and when it was computed."""

    snapshot: WindowSnapshot | None
    computed_at: float | None


def _finite(value: Any) -> bool:
    if isinstance(value, float):
        return math.isfinite(value)
    if isinstance(value, int) and not isinstance(value, bool):
        try:
            float(value)
        except OverflowError:
            return False
    return True


def invalid_reason(decoded: Any, fields: tuple[str, ...]) -> str:
    """Why a decoded line is not a valid record: `missing_field`, `non_finite` (NaN, an infinity or a number too
    large for a float where a number is used), or `invalid_type` (anything else: not an object, a field of the
    wrong type or form)."""
    if not isinstance(decoded, dict):
        return "invalid_type"
    if any(name not in decoded for name in fields):
        return "missing_field"
    used = [decoded.get(name) for name in ("score", "prediction", "label")]
    features = decoded.get("features")
    if isinstance(features, dict):
        used.extend(features.values())
    return "invalid_type" if all(_finite(value) for value in used) else "non_finite"


def parse_line(line: bytes, parse: Callable[[Any], Any], fields: tuple[str, ...]) -> tuple[str, Any]:
    """(status, record): `ok` and the parsed record, or the reason the line is skipped and None. Never raises for
    any input: a bad line is a counted reason, not an error."""
    try:
        decoded = json.loads(line)
    except (ValueError, RecursionError):  # not UTF-8, not JSON, or nested too deep to decode
        return "invalid_json", None
    try:
        return "ok", parse(decoded)
    except (ValueError, TypeError, OverflowError):  # InvalidRecord, or a value the parser could not even judge
        return invalid_reason(decoded, fields), None


class ExporterService:
    """Owns the followers, the window and the record counters; `step()` does one round of work."""

    def __init__(self, config: ExporterConfig, baseline: Baseline, clock: Callable[[], float] = time.time) -> None:
        self.config = config
        self.baseline = baseline
        self.clock = clock
        self.window = SlidingWindow(
            baseline,
            window_seconds=config.window_seconds,
            slot_seconds=config.slot_seconds,
            max_pending=config.max_pending_predictions,
        )
        self._predictions = LogFollower(config.prediction_logs)
        self._feedback = LogFollower(config.feedback_logs)
        self.record_counts: Counter[tuple[str, str]] = Counter()
        self._labeled: dict[str, float] = {}  # prediction_id -> label time, to tell a duplicate label from an unknown
        self.published = Published(None, None)
        self._last_recompute = float("-inf")
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._resume()

    def _replay_since(self, now: float) -> float:
        return now - self.config.window_seconds - self.config.slot_seconds - REPLAY_MARGIN_SECONDS

    def _resume(self) -> None:
        """Go on from the checkpoint, if there is a usable one; otherwise read every log from its start."""
        path = self.config.checkpoint_path
        if path is None:
            return
        try:
            checkpoint = load_checkpoint(path)
        except CheckpointError as error:
            logger.warning("promml exporter: ignoring checkpoint %s (%s); reading the logs from the start", path, error)
            return
        if checkpoint is None:
            return
        model = (self.config.model_name, self.config.model_version)
        if (checkpoint.model_name, checkpoint.model_version) != model:
            logger.warning("promml exporter: checkpoint %s is for another model; reading the logs from the start", path)
            return
        self.record_counts.update(checkpoint.record_counts)
        since = self._replay_since(self.clock())
        self._predictions.restore(checkpoint.positions.get(PREDICTIONS_LOG, []), since)
        self._feedback.restore(checkpoint.positions.get(FEEDBACK_LOG, []), since)

    def save_checkpoint(self) -> None:
        """Save positions and counters together (no-op without `checkpoint_path`); a failure is logged, and the
        next save tries again."""
        path = self.config.checkpoint_path
        if path is None:
            return
        now = self.clock()
        since, spacing = self._replay_since(now), self.config.window_seconds / MARKS_PER_WINDOW
        for follower in (self._predictions, self._feedback):
            follower.mark(now, since, spacing)
        checkpoint = Checkpoint(
            model_name=self.config.model_name,
            model_version=self.config.model_version,
            saved_at=now,
            record_counts=dict(self.record_counts),
            positions={PREDICTIONS_LOG: self._predictions.positions(), FEEDBACK_LOG: self._feedback.positions()},
        )
        try:
            save_checkpoint(checkpoint, path)
        except OSError as error:
            logger.warning("promml exporter: cannot save checkpoint %s: %s", path, error)

    def read_logs(self) -> None:
        """Ingest everything appended since the last call: predictions first, so their labels can join."""
        now = self.clock()
        result = self._predictions.poll()
        self.record_counts[(PREDICTIONS_LOG, "oversized")] += result.oversized
        predictions = [p for _, p in self._predictions_of(result.replayed) if p is not None]
        for status, prediction in self._predictions_of(result.lines):
            if prediction is not None:
                predictions.append(prediction)
            self.record_counts[(PREDICTIONS_LOG, status)] += 1
        self.window.add_predictions(predictions, now)
        self._forget_labels(now)
        if self._predictions.replaying:
            return  # labels wait until the predictions they may join are back in the window
        result = self._feedback.poll()
        self.record_counts[(FEEDBACK_LOG, "oversized")] += result.oversized
        for line in result.replayed:
            self._join(line)
        for line in result.lines:
            self.record_counts[(FEEDBACK_LOG, self._join(line))] += 1

    def _predictions_of(self, lines: Iterable[bytes]) -> Iterable[tuple[str, Prediction | None]]:
        model = (self.config.model_name, self.config.model_version)
        for line in lines:
            status, prediction = parse_line(line, parse_prediction, PREDICTION_FIELDS)
            if prediction is not None and (prediction.model_name, prediction.model_version) != model:
                status, prediction = "other_model", None
            yield status, prediction

    def _join(self, line: bytes) -> str:
        """Join one feedback line to its prediction; its status."""
        status, feedback = parse_line(line, parse_feedback, FEEDBACK_FIELDS)
        if not isinstance(feedback, Feedback):
            return status
        if self.window.add_feedback(feedback):
            self._labeled[feedback.prediction_id] = feedback.timestamp
            return "ok"
        return "duplicate_feedback" if feedback.prediction_id in self._labeled else "unknown_prediction_id"

    def _forget_labels(self, now: float) -> None:
        """Labelled ids are kept as long as their predictions can be in the window, and at most as many as
        predictions may wait for a label; a label for a forgotten one is `unknown_prediction_id`."""
        oldest = now - self.config.window_seconds - self.config.slot_seconds
        labeled = self._labeled
        while labeled:
            prediction_id = next(iter(labeled))
            if labeled[prediction_id] >= oldest and len(labeled) <= self.config.max_pending_predictions:
                break
            del labeled[prediction_id]

    def recompute(self) -> None:
        now = self.clock()
        self.published = Published(self.window.snapshot(now), now)
        self._last_recompute = time.monotonic()

    def step(self) -> None:
        """One round: read the logs; recompute and save the checkpoint when the interval has passed."""
        self.read_logs()
        if time.monotonic() - self._last_recompute >= self.config.recompute_interval_seconds:
            self.recompute()
            self.save_checkpoint()

    def start(self) -> None:
        """Run `step()` every poll interval on a daemon thread until `stop()`."""
        self._thread = threading.Thread(target=self._run, name="promml-exporter", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop the loop, save a last checkpoint (only when the loop has really ended) and close the logs."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
        if self._thread is None or not self._thread.is_alive():
            self.save_checkpoint()
        self._predictions.close()
        self._feedback.close()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.step()
            except Exception:  # a bug in one round must not end the exporter; the stale snapshot shows it
                logger.exception("promml exporter: round failed")
            self._stop.wait(self.config.poll_interval_seconds)

    def is_healthy(self) -> bool:
        """Alive and recomputing: the loop runs and the last recompute is at most three intervals old."""
        if self._thread is None or not self._thread.is_alive():
            return False
        return time.monotonic() - self._last_recompute <= 3 * self.config.recompute_interval_seconds + 1
