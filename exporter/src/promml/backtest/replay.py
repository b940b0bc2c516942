"""Runs the real exporter over finished logs in simulated time and records every scrape as OpenMetrics.

At each scrape step the simulated clock moves on, every exporter reads the lines stamped up to then (through
`TimeGatedFollower`), recomputes when its interval has passed, and is scraped: every family its collector yields,
under the names and labels of `/metrics`, plus the `job` and `instance` labels Prometheus attaches and `up`. The
model server of the same replica is scraped too (`model_side.py`).
"""

from __future__ import annotations

import dataclasses
import os
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

from ..baseline import Baseline
from ..exporter.collector import ExporterCollector
from ..exporter.config import ExporterConfig
from ..exporter.service import ExporterService
from .clock import SimulatedClock
from .gated_follower import TimeGatedFollower, line_time
from .model_side import ModelSide, Sample
from .openmetrics import OpenMetricsWriter
from .scenario import Scenario

EXPORTER_JOB = "promml-exporter"
MODEL_JOB = "model-server"
"""The scrape jobs of prometheus/prometheus.yml whose targets a backtest stands in for."""

MODEL_SERVER_PORT = 8000


class BacktestError(RuntimeError):
    """The backtest cannot run on this input; the message says what to fix."""


@dataclass(frozen=True)
class Replica:
    """One replica: its exporter's config and baseline, and the name its two scrape targets carry."""

    name: str
    config: ExporterConfig
    baseline: Baseline

    @property
    def exporter_instance(self) -> str:
        return f"{self.name}-exporter:{self.config.listen_port}"

    @property
    def model_instance(self) -> str:
        return f"{self.name}:{MODEL_SERVER_PORT}"


@dataclass(frozen=True)
class ReplayResult:
    start: float
    end: float
    steps: int
    lines: int
    bytes_read: int
    samples: int
    series: int
    seconds: float
    rows: int


def _with_job(samples: Iterator[Sample], job: str, instance: str) -> Iterator[Sample]:
    for name, labels, value in samples:
        yield name, {**labels, "job": job, "instance": instance}, value


def _exporter_samples(collector: ExporterCollector) -> Iterator[Sample]:
    for family in collector.collect():
        for sample in family.samples:
            yield sample.name, sample.labels, sample.value


def log_span(patterns: tuple[str, ...]) -> tuple[float, float] | None:
    """(first, last) timestamp of the lines of the files matching `patterns` (their first and last lines with a
    readable timestamp), or None when there is no such line."""
    import glob

    first: float | None = None
    last: float | None = None
    for path in sorted({p for pattern in patterns for p in glob.glob(pattern)}):
        with open(path, "rb") as file:
            for line in file:
                stamp = line_time(line)
                if stamp is not None:
                    first = stamp if first is None else min(first, stamp)
                    break
            size = file.seek(0, os.SEEK_END)
            file.seek(max(size - (1 << 20), 0))
            for line in reversed(file.read().split(b"\n")):
                stamp = line_time(line)
                if stamp is not None:
                    last = stamp if last is None else max(last, stamp)
                    break
    return None if first is None or last is None else (first, last)


class Progress:
    """One line on stderr every few seconds of a long run: simulated time reached, share done, lines read."""

    def __init__(self, total_steps: int, stream: TextIO | None = sys.stderr, every_seconds: float = 5.0) -> None:
        self.total = total_steps
        self.stream = stream
        self.every = every_seconds
        self.started = self.last = time.monotonic()

    def update(self, step: int, at: float, lines: Callable[[], int]) -> None:
        now = time.monotonic()
        if self.stream is None or (now - self.last < self.every and step < self.total):
            return
        self.last = now
        stamp = time.strftime("%Y-%m-%d %H:%M", time.gmtime(at))
        self.stream.write(f"promml backtest: {stamp} UTC, step {step}/{self.total} "
                          f"({100 * step / max(self.total, 1):.0f}%), {lines()} lines read, "
                          f"{now - self.started:.0f}s\n")
        self.stream.flush()


def replay(replicas: list[Replica], scenario: Scenario, out: Path, *, start: float, end: float,
           scrape_interval: float, recompute_interval: float | None = None,
           progress: Progress | None = None, clock_factory: Callable[[float], SimulatedClock] = SimulatedClock,
           ) -> ReplayResult:
    """Step every replica's exporter from `start` to `end` at `scrape_interval`, writing every scrape to `out`.

    `recompute_interval` overrides the configs' (it is at least the scrape interval: recomputing more often than
    scrapes changes nothing a scrape sees)."""
    began = time.monotonic()
    clock = clock_factory(start)
    writer = OpenMetricsWriter(out)
    services: list[tuple[Replica, ExporterService, ExporterCollector, ModelSide, list[TimeGatedFollower]]] = []
    for index, replica in enumerate(replicas):
        interval = max(recompute_interval or replica.config.recompute_interval_seconds, scrape_interval)
        config = dataclasses.replace(replica.config, checkpoint_path=None, recompute_interval_seconds=interval)
        model = ModelSide(config.model_name, config.model_version, scenario, seed=scenario.seed + index,
                          replica=replica.name)
        followers: list[TimeGatedFollower] = []

        def follower(patterns: tuple[str, ...], config: ExporterConfig = config, model: ModelSide = model,
                     followers: list[TimeGatedFollower] = followers) -> TimeGatedFollower:
            feed = model.feed if patterns == config.prediction_logs and not followers else None
            made = TimeGatedFollower(patterns, clock, on_lines=feed)
            followers.append(made)
            return made

        service = ExporterService(config, replica.baseline, clock, monotonic=clock, follower=follower)
        services.append((replica, service, ExporterCollector(service), model, followers))
    steps = int((end - start) // scrape_interval) + 1
    progress = progress or Progress(steps, stream=None)
    try:
        for step in range(steps):
            at = start + step * scrape_interval
            clock.set(at)
            for replica, service, collector, model, _ in services:
                service.step()
                writer.write(at, _with_job(_exporter_samples(collector), EXPORTER_JOB, replica.exporter_instance))
                writer.write(at, [("up", {"job": EXPORTER_JOB, "instance": replica.exporter_instance}, 1.0)])
                down = scenario.server_down_at(at, replica.name)
                model_samples = [] if down else list(model.samples(at))
                writer.write(at, _with_job(iter(model_samples), MODEL_JOB, replica.model_instance))
                writer.write(at, [("up", {"job": MODEL_JOB, "instance": replica.model_instance}, 0.0 if down else 1.0)])
            progress.update(step + 1, at, lambda: sum(f.lines_out for *_, followers in services for f in followers))
    finally:
        writer.close()
        for _, service, _, _, _ in services:
            service.stop()
    bytes_read = sum(f.bytes_read for *_, followers in services for f in followers)
    lines = sum(f.lines_out for *_, followers in services for f in followers)
    rows = sum(model.rows for _, _, _, model, _ in services)
    return ReplayResult(start=start, end=start + (steps - 1) * scrape_interval, steps=steps, lines=lines,
                        bytes_read=bytes_read, samples=writer.samples, series=writer.series,
                        seconds=time.monotonic() - began, rows=rows)
