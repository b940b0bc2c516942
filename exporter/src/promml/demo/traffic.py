"""`promml demo-traffic`: normal traffic, then a drift scenario, with ground truth posted after a delay.

It plays a client of the demo model server: each request is one applicant, and the true outcome (`label`) is
learned later, as it would be in production, then posted to `/feedback` with the prediction's id. Only the
standard library is used, so the generator runs anywhere the package does.
"""

from __future__ import annotations

import argparse
import json
import logging
import time
import urllib.error
import urllib.request
from collections import deque
from dataclasses import dataclass
from typing import Any

import numpy as np

from . import data
from .auth import feedback_token_from_env

log = logging.getLogger(__name__)
REQUEST_TIMEOUT_SECONDS = 5.0


@dataclass
class PhaseStats:
    """What one phase sent and how the server answered."""

    predictions_ok: int = 0
    predictions_failed: int = 0
    feedback_ok: int = 0
    feedback_failed: int = 0


class TrafficGenerator:
    """Sends one row per request at `rps`, remembers each true label, and posts it `label_delay_seconds` later."""

    def __init__(self, base_url: str, *, rps: float = 10.0, label_delay_seconds: float = 30.0,
                 seed: int | None = None) -> None:
        if rps <= 0:
            raise ValueError(f"rps must be > 0, got {rps}")
        self.base_url = base_url.rstrip("/")
        self.rps = rps
        self.label_delay_seconds = label_delay_seconds
        self.rng = np.random.default_rng(seed)
        self._labels_due: deque[tuple[float, str, int]] = deque()

    def _post(self, path: str, body: dict[str, Any]) -> dict[str, Any] | None:
        """The JSON answer, or None when the server is down or rejects the request (logged, never raised)."""
        headers = {"Content-Type": "application/json"}
        token = feedback_token_from_env()
        if token is not None:
            headers["Authorization"] = f"Bearer {token}"
        request = urllib.request.Request(self.base_url + path, data=json.dumps(body).encode(), headers=headers)
        try:
            with urllib.request.urlopen(request, timeout=REQUEST_TIMEOUT_SECONDS) as response:
                return json.loads(response.read())
        except (urllib.error.URLError, OSError, ValueError) as error:
            log.warning("POST %s failed: %s", path, error)
            return None

    def _send_due_feedback(self, stats: PhaseStats, now: float) -> None:
        while self._labels_due and self._labels_due[0][0] <= now:
            _, prediction_id, label = self._labels_due.popleft()
            if self._post("/feedback", {"prediction_id": prediction_id, "label": label}) is None:
                stats.feedback_failed += 1
            else:
                stats.feedback_ok += 1

    def run_phase(self, *, drift: bool, duration_seconds: float) -> PhaseStats:
        """Send traffic from the normal or the drifted world for `duration_seconds`, paced at `rps`."""
        stats = PhaseStats()
        start = time.monotonic()
        sent = 0
        while (now := time.monotonic()) - start < duration_seconds:
            self._send_due_feedback(stats, now)
            next_send = start + sent / self.rps
            if now < next_send:
                time.sleep(min(next_send - now, 0.05))
                continue
            rows, labels = data.generate(1, drift=drift, rng=self.rng)
            answer = self._post("/predict", rows[0])
            sent += 1
            if answer is None or "prediction_id" not in answer:
                stats.predictions_failed += 1
                continue
            stats.predictions_ok += 1
            self._labels_due.append((time.monotonic() + self.label_delay_seconds, answer["prediction_id"], labels[0]))
        return stats

    def flush_feedback(self) -> PhaseStats:
        """Post every label still waiting, without waiting for its delay."""
        stats = PhaseStats()
        self._send_due_feedback(stats, float("inf"))
        return stats


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--url", default="http://127.0.0.1:8000", help="the model server")
    parser.add_argument("--rps", type=float, default=10.0, help="requests per second (default 10)")
    parser.add_argument("--normal-seconds", type=float, default=300.0,
                        help="length of each normal phase (default 300: a full window of normal traffic first)")
    parser.add_argument("--drift-seconds", type=float, default=900.0,
                        help="length of each drift phase (default 900: long enough to page, then resolve after)")
    parser.add_argument("--label-delay-seconds", type=float, default=30.0, help="how late ground truth arrives")
    parser.add_argument("--cycles", type=int, default=0, help="normal+drift cycles to run; 0 = forever")
    parser.add_argument("--seed", type=int, default=None)


def run(args: argparse.Namespace) -> int:
    generator = TrafficGenerator(args.url, rps=args.rps, label_delay_seconds=args.label_delay_seconds, seed=args.seed)
    cycle = 0
    try:
        while args.cycles == 0 or cycle < args.cycles:
            for drift, seconds in ((False, args.normal_seconds), (True, args.drift_seconds)):
                log.info("%s traffic for %.0fs", "drifted" if drift else "normal", seconds)
                stats = generator.run_phase(drift=drift, duration_seconds=seconds)
                log.info("phase done: %s", stats)
            cycle += 1
    except KeyboardInterrupt:
        pass
    generator.flush_feedback()
    return 0
