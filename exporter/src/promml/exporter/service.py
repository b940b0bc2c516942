"""The exporter's work loop: read new log lines, update the window, recompute the statistics, save a checkpoint.

Reading and recomputing run on one background thread; scrapes only read the last finished snapshot, so a scrape
never waits for a recompute and never sees a half-updated one.

Restart: the checkpoint holds the followers' positions, the line counters and the window's state, saved together
every `checkpoint_interval_seconds` (after a recompute) and at shutdown. A restarted exporter goes on counting from
the saved counters, reading from the saved positions and summing from the saved window, so every line is counted
once however it was stopped, and the window survives logs deleted since. A checkpoint of version 1 has no window:
then the lines that may hold records still inside it are read again and added to the window without being counted
(docs/exporter.md).
"""

from __future__ import annotations

import fnmatch
import glob
import json
import logging
import math
import os
import threading
import time
from collections import Counter, OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import numpy as np

from ..baseline import Baseline
from ..records import (
    FEEDBACK_FIELDS,
    MAX_LABEL_LENGTH,
    MAX_PREDICTION_ID_LENGTH,
    PREDICTION_FIELDS,
    Feedback,
    InvalidRecord,
    Prediction,
    has_unencodable_text,
    parse_feedback,
    parse_prediction,
    parse_timestamp,
)
from .checkpoint import Checkpoint, CheckpointError, encode_checkpoint, load_checkpoint, save_checkpoint
from .columns import MISSING_FEATURE, UNKNOWN_FEATURE, PredictionColumns, columns_of
from .config import ExporterConfig
from .decode import decode_predictions
from .early_labels import UNKNOWN as UNKNOWN_PREDICTION_ID
from .early_labels import EarlyLabels
from .estimated import missing_reason
from .log_follower import FilePosition, LogFollower, ReadResult
from .misconfiguration import (
    FEATURES_MISMATCH,
    OTHER_MODEL_ONLY,
    REPORT_AGAIN_SECONDS,
    features_message,
    log_path_problems,
    other_model_message,
)
from .scan import scan_predictions
from .window import SlidingWindow, WindowSnapshot

logger = logging.getLogger(__name__)

PREDICTIONS_LOG = "predictions"
FEEDBACK_LOG = "feedback"

REPLAY_MARGIN_SECONDS = 300.0
"""After a restart, lines read up to this long before the window's start are read again too: an allowance for the
writer's clock running ahead of the exporter's, and for records stamped before they were queued for writing."""

MAX_OTHER_MODELS = 20
"""Other models' (name, version) pairs remembered between recomputes, to name them in the configuration check."""
MAX_UNKNOWN_NAMES = 100
"""Unknown feature names remembered between recomputes, to suggest the closest baseline names."""

MARKS_PER_WINDOW = 32
"""Read positions remembered per file per window length: a restart reads again at most 1/32 of a window more than
it needs to."""


FollowerFactory = Callable[[tuple[str, ...]], LogFollower]
"""Makes the reader of one log's files from their patterns: `LogFollower`, or one that stops at a simulated time."""


@dataclass(frozen=True)
class Published:
    """What a scrape sees: the last snapshots (`snapshot` is the primary window's) and when they were computed.

    `log_lag_seconds` is, per log, the time from the newest record timestamp read so far to `computed_at` (absent
    before a first record); `unread_bytes` the bytes of the followed files not read yet; `logs_readable` whether
    at least one prediction log exists and every matched log file can be opened for reading."""

    snapshot: WindowSnapshot | None
    computed_at: float | None
    windows: tuple[WindowSnapshot, ...] = ()
    log_lag_seconds: dict[str, float] = field(default_factory=dict)
    unread_bytes: dict[str, int] = field(default_factory=dict)
    logs_readable: bool = False
    baseline_age_seconds: float | None = None
    problems: dict[str, str] = field(default_factory=dict)
    """Why the exporter measures nothing, by reason (see misconfiguration.py); empty when it measures."""


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
    """Why a decoded line is not a valid record: `missing_field`, `too_long` (a `prediction_id` or a text label over
    its limit, see records.py), `non_finite` (NaN, an infinity or a number too large for a float where a number is
    used), or `invalid_type` (anything else: not an object, a field of the
    wrong type or form)."""
    if not isinstance(decoded, dict):
        return "invalid_type"
    if any(name not in decoded for name in fields):
        return "missing_field"
    identifier, label = decoded.get("prediction_id"), decoded.get("label") if "label" in fields else None
    if (isinstance(identifier, str) and len(identifier) > MAX_PREDICTION_ID_LENGTH) or (
            isinstance(label, str) and len(label) > MAX_LABEL_LENGTH):
        return "too_long"
    used = [decoded.get(name) for name in ("score", "prediction", "label")]
    features = decoded.get("features")
    if isinstance(features, dict):
        used.extend(features.values())
    return "invalid_type" if all(_finite(value) for value in used) else "non_finite"


def parse_line(line: bytes, parse: Callable[[Any], Any], fields: tuple[str, ...]) -> tuple[str, Any]:
    """(status, record): `ok` and the parsed record, or the reason the line is skipped and None (`invalid_text`
    for text with no UTF-8 form). Never raises for any input: a bad line is a counted reason, not an error.
    (Prediction lines go through `decode_predictions` first; this is the exact, slower path for what it cannot
    decide, and for feedback.)"""
    try:
        decoded = json.loads(line)
    except (ValueError, RecursionError):  # not UTF-8, not JSON, or nested too deep to decode
        return "invalid_json", None
    if has_unencodable_text(line, decoded):  # would poison every scrape as a label (a lone surrogate escape)
        return "invalid_text", None
    try:
        return "ok", parse(decoded)
    except (ValueError, TypeError, OverflowError):  # InvalidRecord, or a value the parser could not even judge
        return invalid_reason(decoded, fields), None


class ExporterService:
    """Owns the followers, the window and the record counters; `step()` does one round of work."""

    def __init__(
        self, config: ExporterConfig, baseline: Baseline, clock: Callable[[], float] = time.time, *,
        monotonic: Callable[[], float] = time.monotonic, follower: FollowerFactory | None = None,
    ) -> None:
        """`clock` stamps the windows and the metrics; `monotonic` paces recomputes and health. A backtest passes
        a simulated time for both, and a `follower` that reads only the lines stamped up to that time."""
        self.config = config
        self.baseline = baseline
        self.clock = clock
        self.monotonic = monotonic
        self.window = SlidingWindow(
            baseline,
            windows=config.windows,
            slot_seconds=config.slot_seconds,
            max_pending=config.max_pending_predictions,
            label_ttl_seconds=config.label_ttl,
            sample_size=config.sample_size,
            positive_class=config.positive_class,
            segments=config.segments,
            max_segment_values=config.max_segment_values,
            min_segment_rows=config.min_segment_rows,
        )
        # what /readyz says of ml_window_estimated_*: exported, or why not (no calibration map, not a classifier)
        self.estimated_performance_note = missing_reason(baseline) or "exported"
        self.baseline_created_at = _epoch_or_none(getattr(baseline, "created_at", None))
        self.newest_record: dict[str, float] = {}  # log -> newest record timestamp read
        if follower is None:
            follower = partial(LogFollower, follow_symlinks_out=config.follow_symlinks_out_of_log_dir)
        self._predictions = follower(config.prediction_logs)
        self._feedback = follower(config.feedback_logs)
        self.record_counts: Counter[tuple[str, str]] = Counter()
        # prediction_id -> label time, to tell a duplicate label from an unknown one; oldest first (see window.py
        # on why an OrderedDict)
        self._labeled: OrderedDict[str, float] = OrderedDict()
        self._early_labels = EarlyLabels(config.early_label_grace_seconds)
        self.published = Published(None, None)
        # checkpoints not used at start, by part: "checkpoint" (all of it: read from the start, counted from zero)
        # or "window" (its window: rebuilt from the logs)
        self.checkpoint_rejections: Counter[str] = Counter()
        self.checkpoint_save_failures = 0
        self.restored_window = False
        self._last_recompute = float("-inf")
        # what the lines read since the last recompute say about the configuration (see misconfiguration.py)
        self._seen_statuses: Counter[str] = Counter()
        self._seen_models: Counter[tuple[str, str]] = Counter()
        self._seen_rows = 0
        self._seen_absent: Counter[str] = Counter()
        self._seen_unknown: set[str] = set()
        self._line_problems: dict[str, str] = {}
        self._reported: tuple[frozenset[tuple[str, str]], float] = (frozenset(), float("-inf"))
        self._last_save = float("-inf")
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._resume()

    def _replay_since(self, now: float) -> float:
        return now - self.config.longest_window_seconds - self.config.slot_seconds - REPLAY_MARGIN_SECONDS

    def _resume(self) -> None:
        """Go on from the checkpoint, if there is a usable one; otherwise read every log from its start."""
        path = self.config.checkpoint_path
        if path is None:
            return
        try:
            checkpoint = load_checkpoint(path)
            if checkpoint is not None:
                self._check_paths(checkpoint.positions)
        except Exception as error:  # CheckpointError, or a case validation missed: never a crash loop at start
            logger.warning("promml exporter: ignoring checkpoint %s (%s); reading the logs from the start", path, error)
            self.checkpoint_rejections["checkpoint"] += 1
            return
        if checkpoint is None:
            return
        model = (self.config.model_name, self.config.model_version)
        if (checkpoint.model_name, checkpoint.model_version) != model:
            logger.warning("promml exporter: checkpoint %s is for another model; reading the logs from the start", path)
            self.checkpoint_rejections["checkpoint"] += 1
            return
        self.record_counts.update(checkpoint.record_counts)
        if checkpoint.labels is not None and not self.window.restore_label_totals(checkpoint.labels):
            logger.warning("promml exporter: checkpoint %s has other label delay buckets; the label counters start "
                           "from zero", path)
        self._early_labels.restore(checkpoint.early_labels)
        if checkpoint.window is not None:
            try:
                self.window.restore_state(checkpoint.window)  # changes nothing unless it succeeds
            except Exception as error:  # InvalidState, or a case validation missed: rebuilt from the logs instead
                logger.warning("promml exporter: the window saved in checkpoint %s is not used (%s); rebuilding it "
                               "from the logs", path, error)
                self.checkpoint_rejections["window"] += 1
            else:
                self.restored_window = True
                self._labeled = OrderedDict(checkpoint.labeled)
                self.newest_record.update(checkpoint.newest_records or {})
                self._predictions.restore(checkpoint.positions.get(PREDICTIONS_LOG, []), None)
                self._feedback.restore(checkpoint.positions.get(FEEDBACK_LOG, []), None)
                return
        since = self._replay_since(self.clock())
        self._predictions.restore(checkpoint.positions.get(PREDICTIONS_LOG, []), since)
        self._feedback.restore(checkpoint.positions.get(FEEDBACK_LOG, []), since)

    def _check_paths(self, positions: dict[str, list[FilePosition]] | Any) -> None:
        """Every saved file must be one the configured patterns match: the checkpoint names the files it reads."""
        patterns = {PREDICTIONS_LOG: self.config.prediction_logs, FEEDBACK_LOG: self.config.feedback_logs}
        for log, files in positions.items():
            if log not in patterns:
                raise CheckpointError(f"checkpoint.logs: unknown log {log[:40]!r}")
            for position in files:
                if not any(_glob_matches(position.path, pattern) for pattern in patterns[log]):
                    raise CheckpointError(f"checkpoint.logs.{log}: {position.path[:200]!r} is not matched by "
                                          f"{', '.join(patterns[log])}")

    def save_checkpoint(self) -> None:
        """Save positions, counters and the window together (no-op without `checkpoint_path`); a failure is logged
        and counted, and the next save tries again."""
        path = self.config.checkpoint_path
        if path is None:
            return
        now = self.clock()
        since, spacing = self._replay_since(now), self.config.longest_window_seconds / MARKS_PER_WINDOW
        for follower in (self._predictions, self._feedback):
            follower.mark(now, since, spacing)
        checkpoint = Checkpoint(
            model_name=self.config.model_name,
            model_version=self.config.model_version,
            saved_at=now,
            record_counts=dict(self.record_counts),
            positions={PREDICTIONS_LOG: self._predictions.positions(), FEEDBACK_LOG: self._feedback.positions()},
            labels=self.window.label_totals(),
            early_labels=tuple(self._early_labels.entries()),
            window=self.window.to_state(),
            labeled=tuple(self._labeled.items()),
            newest_records=dict(self.newest_record),
        )
        try:
            save_checkpoint(encode_checkpoint(checkpoint), path)
        except OSError as error:
            self.checkpoint_save_failures += 1
            logger.warning("promml exporter: cannot save checkpoint %s: %s", path, error)
        self._last_save = time.monotonic()

    def read_logs(self) -> None:
        """Ingest everything appended since the last call, one bounded poll at a time: predictions first, so their
        labels can join."""
        now = self.clock()
        while True:
            result = self._predictions.poll()
            self._ingest_predictions(result, now)
            if not result.more:
                break
        if self._predictions.replaying:
            return  # labels wait until the predictions they may join are back in the window
        held, retried = self._early_labels.labels(), False
        while True:
            result = self._feedback.poll()
            self.record_counts[(FEEDBACK_LOG, "oversized")] += result.oversized
            for line in result.replayed:  # counted before a restart; a label held then is joined (and counted) below
                feedback = self._feedback_of(line, now)[1]
                if feedback is not None and held[feedback]:
                    held[feedback] -= 1
                elif feedback is not None:
                    self._join(feedback, counted=False)
            if result.lines and not retried:  # held labels come before the new lines, after those read again
                self._retry_early_labels(now)
                retried = True
            for line in result.lines:
                status, feedback = self._feedback_of(line, now)
                if feedback is not None:
                    joined = self._join(feedback)
                    status = status if joined == "ok" else joined  # ok, or future_timestamp: joined, placed
                    if status == UNKNOWN_PREDICTION_ID and self.config.early_label_grace_seconds > 0:
                        given_up = self._early_labels.hold(feedback, now)
                        self.record_counts[(FEEDBACK_LOG, UNKNOWN_PREDICTION_ID)] += len(given_up)
                        continue
                self.record_counts[(FEEDBACK_LOG, status)] += 1
            if not result.more:
                break
        if not retried:
            self._retry_early_labels(now)

    def _retry_early_labels(self, now: float) -> None:
        """Forget labelled ids that are too old (also those the lines read again after a restart brought back),
        then try the held labels again: before any new line, so the first label stands."""
        self._forget_labels(now)
        for status in self._early_labels.retry(self._join, now):
            self.record_counts[(FEEDBACK_LOG, status)] += 1

    def _ingest_predictions(self, result: ReadResult, now: float) -> None:
        self.record_counts[(PREDICTIONS_LOG, "oversized")] += result.oversized
        replayed, _ = self._predictions_of(result.replayed)
        fresh, statuses = self._predictions_of(result.lines)
        self._place_future(replayed, now)
        placed = self._place_future(fresh, now)
        if placed:
            statuses["ok"] -= placed
            statuses["future_timestamp"] += placed
        for status, count in statuses.items():
            self.record_counts[(PREDICTIONS_LOG, status)] += count
        self._seen_statuses.update(statuses)
        self._note_features(fresh)
        rows = PredictionColumns.concat([replayed, fresh])  # in file order: the order labels and evictions see
        if len(rows):
            newest = float(rows.timestamps.max())
            self.newest_record[PREDICTIONS_LOG] = max(newest, self.newest_record.get(PREDICTIONS_LOG, newest))
        self.window.add_columns(rows, now)  # with no rows too: it forgets expired predictions before labels join

    def _place_future(self, rows: PredictionColumns, now: float) -> int:
        """Rows stamped more than `max_future_seconds` after `now` are placed at `now`; how many were.

        Why: a record stamped 30 days ahead (a wrong clock, or a crafted line) would stay in every window for 30
        days plus a window, hold a slot of its own, make the log lag negative and stop the pending table's
        expiry; placed at read time it leaves the window with the records read with it."""
        if not len(rows):
            return 0
        future = rows.timestamps > now + self.config.max_future_seconds
        placed = int(np.count_nonzero(future))
        if placed:
            rows.timestamps = np.where(future, now, rows.timestamps)  # a copy: the scanner's array is read-only
        return placed

    def _predictions_of(self, lines: list[bytes]) -> tuple[PredictionColumns, Counter[str]]:
        """The usable predictions of some lines, as columns in line order, and how many lines had each status.

        The fast scanner reads what it can be sure of; the exact decoder reads the rest and says what is wrong with
        a bad line (see `scan.py`)."""
        name, version = self.config.model_name, self.config.model_version
        numeric, categorical = tuple(self.baseline.numeric), tuple(self.baseline.categorical)
        scanned, rest = scan_predictions(lines, name, version, numeric, categorical)
        statuses: Counter[str] = Counter()
        if len(scanned):
            statuses["ok"] += len(scanned)
        rest_lines = [lines[index] for index in rest]
        predictions: list[Prediction] = []
        positions: list[int] = []  # the line of each of them
        for index, line, prediction in zip(rest, rest_lines, decode_predictions(rest_lines), strict=True):
            if prediction is None:
                status, prediction = parse_line(line, parse_prediction, PREDICTION_FIELDS)
                if prediction is None:
                    statuses[status] += 1
                    continue
            if prediction.model_name != name or prediction.model_version != version:
                statuses["other_model"] += 1
                if len(self._seen_models) < MAX_OTHER_MODELS or (prediction.model_name, prediction.model_version) \
                        in self._seen_models:
                    self._seen_models[(prediction.model_name, prediction.model_version)] += 1
                continue
            predictions.append(prediction)
            positions.append(index)
        if not predictions:
            return scanned, statuses
        statuses["ok"] += len(predictions)
        decoded = columns_of(predictions, numeric, categorical)
        if not len(scanned):
            return decoded, statuses
        left = set(rest)
        scanned_positions = [index for index in range(len(lines)) if index not in left]
        order = np.argsort(scanned_positions + positions, kind="stable")
        return PredictionColumns.concat([scanned, decoded]).take(order), statuses

    def _note_features(self, rows: PredictionColumns) -> None:
        """Tally, for the configuration check, which baseline features the rows lacked and which they had instead
        (only rows read by the exact decoder have issues: the scanner takes only rows of the baseline's features)."""
        self._seen_rows += len(rows)
        for _, feature, reason in rows.issues:
            if reason == MISSING_FEATURE:
                self._seen_absent[feature] += 1
            elif reason == UNKNOWN_FEATURE and len(self._seen_unknown) < MAX_UNKNOWN_NAMES:
                self._seen_unknown.add(feature)

    def _judge_lines(self) -> None:
        """Update the line-based problems from the lines read since the last recompute, then start a new tally.

        With no line read, each stays as it was: a problem holds until lines show otherwise."""
        statuses = self._seen_statuses
        if statuses["ok"] or statuses["future_timestamp"]:  # lines of this model (some placed at read time)
            self._line_problems.pop(OTHER_MODEL_ONLY, None)
        elif statuses["other_model"]:
            self._line_problems[OTHER_MODEL_ONLY] = other_model_message(
                (self.config.model_name, self.config.model_version), self._seen_models)
        if self._seen_rows:
            absent = [name for name in (*self.baseline.numeric, *self.baseline.categorical)
                      if self._seen_absent[name] == self._seen_rows]
            if absent:
                self._line_problems[FEATURES_MISMATCH] = features_message(
                    absent, self._seen_unknown, [*self.baseline.numeric, *self.baseline.categorical])
            else:
                self._line_problems.pop(FEATURES_MISMATCH, None)
        self._seen_statuses, self._seen_models, self._seen_rows = Counter(), Counter(), 0
        self._seen_absent, self._seen_unknown = Counter(), set()

    def _report(self, problems: dict[str, str], now: float) -> None:
        """Log the problems when they change, and again every REPORT_AGAIN_SECONDS while they last."""
        current = frozenset(problems.items())
        reported, at = self._reported
        if current == reported and (not current or now - at < REPORT_AGAIN_SECONDS):
            return
        for reason, message in sorted(problems.items()):
            logger.warning("promml exporter: measuring nothing for %s %s (%s): %s", self.config.model_name,
                           self.config.model_version, reason, message)
        if not current and reported:
            logger.info("promml exporter: configuration problems resolved; measuring %s %s",
                        self.config.model_name, self.config.model_version)
        self._reported = (current, now)

    @property
    def early_labels(self) -> int:
        """Labels read before their prediction, waiting for it (see early_labels.py)."""
        return len(self._early_labels)

    def _feedback_of(self, line: bytes, now: float) -> tuple[str, Feedback | None]:
        """(status, the label) of a feedback line; the label is None when the line is bad (the status says why).
        A label stamped more than `max_future_seconds` after `now` is placed at `now` (`future_timestamp`)."""
        status, feedback = parse_line(line, parse_feedback, FEEDBACK_FIELDS)
        if not isinstance(feedback, Feedback):
            return status, None
        if feedback.timestamp > now + self.config.max_future_seconds:
            status, feedback = "future_timestamp", Feedback(feedback.prediction_id, now, feedback.label)
        newest = self.newest_record.get(FEEDBACK_LOG, feedback.timestamp)
        self.newest_record[FEEDBACK_LOG] = max(newest, feedback.timestamp)
        return status, feedback

    def _join(self, feedback: Feedback, counted: bool = True) -> str:
        """Join a label to its prediction; its status. `counted` is False for a line read again after a restart
        (see `SlidingWindow.add_feedback`)."""
        if self.window.add_feedback(feedback, counted):
            self._labeled[feedback.prediction_id] = feedback.timestamp
            return "ok"
        return "duplicate_feedback" if feedback.prediction_id in self._labeled else UNKNOWN_PREDICTION_ID

    def _forget_labels(self, now: float) -> None:
        """Labelled ids are kept as long as their predictions can be in the window, and at most as many as
        predictions may wait for a label; a label for a forgotten one is `unknown_prediction_id`."""
        oldest = now - self.config.label_ttl - self.config.slot_seconds
        labeled = self._labeled
        while labeled:
            prediction_id = next(iter(labeled))
            if labeled[prediction_id] >= oldest and len(labeled) <= self.config.max_pending_predictions:
                break
            del labeled[prediction_id]

    def recompute(self) -> None:
        now = self.clock()
        snapshots = tuple(self.window.snapshots(now))
        self._judge_lines()
        problems = {**log_path_problems(self.config.prediction_logs), **self._line_problems}
        self._report(problems, time.monotonic())
        self.published = Published(
            snapshot=snapshots[0],
            computed_at=now,
            windows=snapshots,
            log_lag_seconds={log: max(now - newest, 0.0) for log, newest in self.newest_record.items()},
            unread_bytes={
                PREDICTIONS_LOG: _unread_bytes(self._predictions), FEEDBACK_LOG: _unread_bytes(self._feedback),
            },
            logs_readable=_readable(self.config.prediction_logs, self.config.feedback_logs),
            baseline_age_seconds=None if self.baseline_created_at is None else now - self.baseline_created_at,
            problems=problems,
        )
        self._last_recompute = self.monotonic()

    def step(self) -> None:
        """One round: read the logs; recompute and save the checkpoint when the interval has passed."""
        self.read_logs()
        if self.monotonic() - self._last_recompute >= self.config.recompute_interval_seconds:
            self.recompute()
            if time.monotonic() - self._last_save >= self.config.checkpoint_interval_seconds:
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

    def readiness(self) -> dict[str, bool]:
        """What `/readyz` checks: the baseline is loaded (it is, once the service exists), the logs are readable
        (at the last recompute), a first recompute has published metrics, and nothing says the exporter measures
        nothing (`published.problems`, which `/readyz` quotes)."""
        published = self.published
        return {
            "baseline_loaded": self.baseline is not None,
            "logs_readable": published.logs_readable,
            "first_recompute_done": published.computed_at is not None,
            "measuring": not published.problems,
        }

    def is_healthy(self) -> bool:
        """Alive and recomputing: the loop runs and the last recompute is at most three intervals old."""
        if self._thread is None or not self._thread.is_alive():
            return False
        return self.monotonic() - self._last_recompute <= 3 * self.config.recompute_interval_seconds + 1


def _epoch_or_none(text: str | None) -> float | None:
    """Seconds since the epoch of an RFC 3339 time, or None when absent or unreadable."""
    if text is None:
        return None
    try:
        return parse_timestamp(text)
    except InvalidRecord:
        return None


def _glob_matches(path: str, pattern: str) -> bool:
    """Would `glob.glob(pattern)` list `path`? As glob does, `*` and `?` stay within one path component."""
    if not glob.has_magic(pattern):
        return path == pattern
    if path.count(os.sep) != pattern.count(os.sep):
        return False
    return all(fnmatch.fnmatchcase(part, wanted)
               for part, wanted in zip(path.split(os.sep), pattern.split(os.sep), strict=True))


def _unread_bytes(follower: LogFollower) -> int:
    """Bytes between each followed file's read position and its end (copies that are not read left out)."""
    unread = 0
    for position in follower.positions():
        if position.copy_of is not None:
            continue
        try:
            unread += max(os.stat(position.path).st_size - position.offset, 0)
        except OSError:
            continue
    return unread


def _readable(prediction_patterns: Iterable[str], feedback_patterns: Iterable[str]) -> bool:
    """At least one prediction log exists, and every file the patterns match is a file that can be opened for
    reading (a directory cannot be read as a log)."""
    predictions = [path for pattern in prediction_patterns for path in glob.glob(pattern)]
    feedback = [path for pattern in feedback_patterns for path in glob.glob(pattern)]
    return bool(predictions) and all(os.path.isfile(path) and os.access(path, os.R_OK)
                                     for path in predictions + feedback)
