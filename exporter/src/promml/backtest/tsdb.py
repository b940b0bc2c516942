"""Prometheus's own engine over the recorded history: blocks from OpenMetrics, recording rules backfilled, alert
expressions range-queried.

The steps (Prometheus 2.42): `promtool tsdb create-blocks-from openmetrics` turns the scrapes into blocks; a
Prometheus on loopback serves them; `promtool tsdb create-blocks-from rules` evaluates each level of recording
rules over the whole range (a rule reading another rule waits for the next level, after a restart loads the
blocks just written); then each alert expression is range-queried at its group's interval. Retention is set far
beyond the data's age so Prometheus does not delete old blocks at start-up.
"""

from __future__ import annotations

import json
import math
import shutil
import subprocess
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from .rules import Rule, recording_levels, rules_file

MAX_POINTS_PER_QUERY = 10_000
"""Prometheus refuses range queries of more than 11,000 points per series; longer ranges are asked in pieces."""

STARTUP_TIMEOUT_SECONDS = 60.0


class EngineError(RuntimeError):
    """promtool or Prometheus failed; the message holds their own words."""


def require(binary: str) -> str:
    path = shutil.which(binary)
    if path is None:
        raise EngineError(f"{binary} is not installed: install the Debian package prometheus (or put {binary} on "
                          "PATH); a backtest evaluates the rules with Prometheus's own engine")
    return path


def _run(args: list[str], what: str) -> str:
    done = subprocess.run(args, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise EngineError(f"{what} failed ({' '.join(args[:4])} ...): {done.stderr.strip() or done.stdout.strip()}")
    return done.stdout


def create_blocks(openmetrics: Path, data_dir: Path) -> None:
    """TSDB blocks of the OpenMetrics file, written into `data_dir`."""
    _run([require("promtool"), "tsdb", "create-blocks-from", "openmetrics", "-q", str(openmetrics), str(data_dir)],
         "promtool tsdb create-blocks-from openmetrics")


@dataclass
class Series:
    labels: dict[str, str]
    points: list[tuple[float, float]]


class PrometheusEngine:
    """A Prometheus on a free loopback port serving the blocks of `data_dir`; restartable to load new blocks."""

    def __init__(self, data_dir: Path, work_dir: Path) -> None:
        self.data_dir = data_dir
        self.work_dir = work_dir
        self.config = work_dir / "prometheus.yml"
        self.config.write_text("global: {}\n")
        self.port = 0
        self.process: subprocess.Popen[bytes] | None = None
        self.log = work_dir / "prometheus.log"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        from ..demo.stack import free_port  # here, not at import: `promml backtest --help` stays light

        self.port = free_port()
        self._log_file = open(self.log, "ab")  # noqa: SIM115
        self.process = subprocess.Popen(
            [require("prometheus"), f"--config.file={self.config}", f"--storage.tsdb.path={self.data_dir}",
             "--storage.tsdb.retention.time=100y", f"--web.listen-address=127.0.0.1:{self.port}",
             "--log.level=warn"],
            stdout=self._log_file, stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + STARTUP_TIMEOUT_SECONDS
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise EngineError(f"prometheus exited at start-up: {self.log.read_text()[-2000:]}")
            try:
                with urllib.request.urlopen(f"{self.url}/-/ready", timeout=2) as response:
                    if response.status == 200:
                        return
            except (urllib.error.URLError, OSError):
                pass
            time.sleep(0.1)
        raise EngineError(f"prometheus was not ready within {STARTUP_TIMEOUT_SECONDS:.0f}s: {self.log}")

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
            self.process = None
            self._log_file.close()

    def restart(self) -> None:
        self.stop()
        self.start()

    def __enter__(self) -> PrometheusEngine:
        self.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.stop()

    def backfill(self, rules: list[Rule], start: float, end: float) -> None:
        """Evaluate recording rules over [start, end], level by level, and load the blocks they make."""
        for index, level in enumerate(recording_levels(rules)):
            rules_path = self.work_dir / f"recording-level-{index}.yml"
            rules_path.write_text(yaml.safe_dump(rules_file(level), sort_keys=False))
            with tempfile.TemporaryDirectory(dir=self.work_dir) as out:
                _run([require("promtool"), "tsdb", "create-blocks-from", "rules", "-q", f"--url={self.url}",
                      f"--start={int(start)}", f"--end={math.ceil(end)}", f"--output-dir={out}",
                      str(rules_path)], f"promtool tsdb create-blocks-from rules (level {index})")
                for block in Path(out).iterdir():
                    if block.is_dir():
                        shutil.move(str(block), self.data_dir / block.name)
            self.restart()

    def query_range(self, expr: str, start: float, end: float, step: float) -> list[Series]:
        """Every series of `expr` evaluated at start, start + step, ... up to end (asked in pieces)."""
        merged: dict[tuple[tuple[str, str], ...], Series] = {}
        piece = step * (MAX_POINTS_PER_QUERY - 1)
        at = start
        while at <= end:
            until = min(at + piece, end)
            for item in self._get("query_range", {"query": expr, "start": f"{at:.3f}", "end": f"{until:.3f}",
                                                  "step": f"{step:g}"})["result"]:
                labels = dict(item["metric"])
                key = tuple(sorted(labels.items()))
                series = merged.setdefault(key, Series(labels, []))
                series.points.extend((float(t), float(v)) for t, v in item["values"])
            at = until + step
        return list(merged.values())

    def _get(self, endpoint: str, params: dict[str, str]) -> Any:
        url = f"{self.url}/api/v1/{endpoint}?{urllib.parse.urlencode(params)}"
        try:
            with urllib.request.urlopen(url, timeout=300) as response:
                body = json.load(response)
        except urllib.error.HTTPError as error:
            body = json.load(error)
            raise EngineError(f"query {params.get('query')!r}: {body.get('error', error)}") from None
        if body.get("status") != "success":
            raise EngineError(f"query {params.get('query')!r}: {body.get('error')}")
        return body["data"]
