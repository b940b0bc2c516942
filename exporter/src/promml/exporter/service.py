"""The exporter's work loop: read new log lines, update the window, recompute the statistics.

Reading and recomputing run on one background thread; scrapes only read the last finished snapshot, so a scrape
never waits for a recompute and never sees a half-updated one.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass

from ..baseline import Baseline
from ..records import InvalidRecord, parse_feedback, parse_prediction
from .config import ExporterConfig
from .log_follower import LogFollower
from .window import SlidingWindow, WindowSnapshot

logger = logging.getLogger(__name__)

PREDICTIONS_LOG = "predictions"
FEEDBACK_LOG = "feedback"


@dataclass(frozen=True)
class Published:
    """What a scrape sees: the last snapshot and when it was computed."""

    snapshot: WindowSnapshot | None
    computed_at: float | None


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
        self.published = Published(None, None)
        self._last_recompute = float("-inf")
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def read_logs(self) -> None:
        """Ingest everything appended since the last call: predictions first, so their labels can join."""
        now = self.clock()
        predictions = []
        result = self._predictions.poll()
        self.record_counts[(PREDICTIONS_LOG, "oversized")] += result.oversized
        for line in result.lines:
            status, prediction = self._parse(line, parse_prediction)
            if prediction is not None and (
                prediction.model_name != self.config.model_name
                or prediction.model_version != self.config.model_version
            ):
                status, prediction = "other_model", None
            if prediction is not None:
                predictions.append(prediction)
            self.record_counts[(PREDICTIONS_LOG, status)] += 1
        self.window.add_predictions(predictions, now)
        result = self._feedback.poll()
        self.record_counts[(FEEDBACK_LOG, "oversized")] += result.oversized
        for line in result.lines:
            status, feedback = self._parse(line, parse_feedback)
            if feedback is not None and not self.window.add_feedback(feedback):
                status = "unknown_prediction_id"
            self.record_counts[(FEEDBACK_LOG, status)] += 1

    @staticmethod
    def _parse(line: bytes, parse: Callable):  # type: ignore[type-arg]
        try:
            decoded = json.loads(line)
        except ValueError:
            return "invalid_json", None
        try:
            return "ok", parse(decoded)
        except InvalidRecord:
            return "invalid_record", None

    def recompute(self) -> None:
        now = self.clock()
        self.published = Published(self.window.snapshot(now), now)
        self._last_recompute = time.monotonic()

    def step(self) -> None:
        """One round: read the logs; recompute when the interval has passed."""
        self.read_logs()
        if time.monotonic() - self._last_recompute >= self.config.recompute_interval_seconds:
            self.recompute()

    def start(self) -> None:
        """Run `step()` every poll interval on a daemon thread until `stop()`."""
        self._thread = threading.Thread(target=self._run, name="promml-exporter", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
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
