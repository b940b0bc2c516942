"""The simulation: a scenario run hour by hour of simulated time, as fast as numpy and the disk allow.

Each hour of each replica is drawn from its own random generator, seeded by (seed, hour, replica), so a run is
the same for a seed whatever else happens. An hour's rows are drawn, changed by the events, scored, labelled and
written before the next; labels wait in a buffer until the hour they arrive in, so the feedback log is in time
order too, and a label due after the run's end is not written. Memory stays bounded by an hour of rows plus the
labels still on their way.
"""

from __future__ import annotations

import dataclasses
import math
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

from ..baseline import BaselineError, load_baseline
from ..baseline.builder import build_baseline, save_baseline
from ..exporter.config import ConfigError
from .inputs import apply_inputs, check_features, observed_columns
from .labels import LabelSpec
from .population import CsvPopulation, Population, Rows, demo_population
from .scenario import Scenario, ScenarioError
from .timeline import TimedEvent, resolve
from .traffic import WEEK, arrivals, logged_rate, seasonal_factor
from .writer import (
    BASELINE_FILE,
    EXPORTER_FILE,
    LABEL_TTL_QUANTILE,
    LOGS_DIR,
    SCENARIO_FILE,
    LogWriter,
    exporter_config,
    log_names,
    replica_names,
    rfc3339,
    write_exporter_config,
    write_json,
)

CHUNK_SECONDS = 3600
"""Rows are drawn and written an hour of simulated time at a time; the random streams are per hour, so changing
this changes every run's rows."""
DEFAULT_START = "2026-01-05T00:00:00Z"
"""A Monday at midnight UTC: a run of a week covers each weekday once, from the start of its first day."""
DAY = 86_400.0
REFERENCE_STREAM, ID_STREAM = 1_000_003, 1_000_033
"""Stream numbers of the reference rows and the prediction id prefixes, apart from any hour's number."""
EXPORTER_PORT = 9102


@dataclass
class SimulationResult:
    """What a run wrote: the output folder, `scenario.json`'s document, counts and wall time."""

    out: Path
    document: dict[str, Any]
    predictions: int
    feedback: int
    seconds: float
    notes: list[str] = field(default_factory=list)


def parse_start(text: str) -> float:
    """Seconds since the epoch of an RFC 3339 time with a zone (`2026-01-05T00:00:00Z`)."""
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00") if text.endswith("Z") else text)
    except ValueError:
        raise ScenarioError(f"--start: expected an RFC 3339 time such as {DEFAULT_START}, got {text!r}") from None
    if moment.tzinfo is None:
        raise ScenarioError(f"--start: {text!r} has no UTC offset; write it as {DEFAULT_START}")
    return moment.astimezone(timezone.utc).timestamp()


def _population(scenario: Scenario, reference_csv: Path | None, baseline: Path | None) -> Population:
    spec = scenario.model
    if reference_csv is not None or baseline is not None:
        spec = dataclasses.replace(spec, reference_csv=reference_csv or spec.reference_csv,
                                   baseline=baseline or spec.baseline)
    if spec.reference_csv is None:
        if spec.baseline is not None:
            raise ScenarioError("a baseline of your own needs the reference rows it was built from "
                                "(--reference-csv or model.reference_csv)")
        return demo_population()
    model: tuple[str | None, str | None] = (None, None)
    if spec.baseline is not None:
        try:
            own = load_baseline(spec.baseline)
        except (BaselineError, OSError) as error:
            raise ScenarioError(f"model.baseline {spec.baseline}: {error}") from None
        model = (own.model_name, own.model_version)
    return CsvPopulation(spec.reference_csv, spec, model)


def _prepare_out(out: Path, replicas: int, overwrite: bool) -> None:
    """The output folder, refusing to mix a new run's logs with an old run's (the exporter would read both)."""
    logs = out / LOGS_DIR
    old = sorted(logs.glob("*.jsonl")) if logs.is_dir() else []
    if old and not overwrite:
        raise ScenarioError(f"{logs} already holds logs ({old[0].name}, ...): an exporter would read them with the "
                            f"new ones; choose an empty folder or pass --force to replace them")
    if old:
        shutil.rmtree(logs)
    logs.mkdir(parents=True, exist_ok=True)
    for stale in out.glob("exporter-replica-*.yml"):
        stale.unlink()


def _label_spec_at(offsets: np.ndarray, events: list[TimedEvent], replica: int, default: LabelSpec
                   ) -> tuple[np.ndarray, list[tuple[np.ndarray, LabelSpec]]]:
    """The labelled fraction per row and, per delay distribution in use, the rows it applies to."""
    fraction = np.full(offsets.shape, default.fraction)
    delay_of = np.zeros(offsets.shape, dtype=int)  # 0: the default's, i + 1: events[i]'s
    specs = [default]
    for event in events:
        if event.type != "label_delay" or not event.applies_to(replica):
            continue
        active = event.active(offsets)
        if "fraction" in event.params:
            fraction = np.where(active, event.params["fraction"], fraction)
        if "delay" in event.params:
            specs.append(LabelSpec(default.fraction, event.params["delay"]))
            delay_of = np.where(active, len(specs) - 1, delay_of)
    return fraction, [(delay_of == index, spec) for index, spec in enumerate(specs)]


def _concept_drop(offsets: np.ndarray, events: list[TimedEvent], replica: int) -> np.ndarray:
    drop = np.zeros(offsets.shape)
    for event in events:
        if event.type == "concept_drift" and event.applies_to(replica):
            grown = np.minimum(event.params["accuracy_drop_per_day"] * (offsets - event.start) / DAY,
                               event.params["max_drop"])
            drop = drop + np.where(event.active(offsets), grown, 0.0)
    return drop


@dataclass
class _Pending:
    """Labels drawn but not yet written: prediction sequence numbers, arrival times, values."""

    sequences: list[np.ndarray] = field(default_factory=list)
    times: list[np.ndarray] = field(default_factory=list)
    labels: list[np.ndarray] = field(default_factory=list)

    def add(self, sequences: np.ndarray, times: np.ndarray, labels: np.ndarray) -> None:
        self.sequences.append(sequences)
        self.times.append(times)
        self.labels.append(labels)

    def take_before(self, moment: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The labels arriving before `moment`, in time order; the rest stay."""
        if not self.times:
            empty = np.array([])
            return empty.astype(np.int64), empty, empty
        sequences, times = np.concatenate(self.sequences), np.concatenate(self.times)
        labels = np.concatenate(self.labels)
        order = np.argsort(times, kind="stable")
        sequences, times, labels = sequences[order], times[order], labels[order]
        cut = int(np.searchsorted(times, moment, side="left"))
        self.sequences, self.times, self.labels = [sequences[cut:]], [times[cut:]], [labels[cut:]]
        return sequences[:cut], times[:cut], labels[:cut]


class _Run:
    """One simulation run's state."""

    def __init__(self, scenario: Scenario, population: Population, events: list[TimedEvent], *, seed: int,
                 start: float, run_seconds: float, rps: float, replicas: int) -> None:
        self.scenario, self.population, self.events = scenario, population, events
        self.seed, self.start, self.run_seconds, self.rps, self.replicas = seed, start, run_seconds, rps, replicas
        self.integer = {info.name: info.integer for info in population.features}

    def rng(self, *stream: int) -> np.random.Generator:
        return np.random.default_rng([self.seed, *stream])

    def chunk(self, index: int, replica: int, writer: LogWriter, pending: _Pending, next_sequence: int) -> int:
        """Draw, change, score, label and write one hour of one replica; the next free sequence number."""
        rng = self.rng(index, replica)
        first = index * CHUNK_SECONDS
        last = min(first + CHUNK_SECONDS, self.run_seconds)
        seconds = np.arange(first, math.ceil(last), dtype=float)
        rate = logged_rate(self.start, seconds, self.events, replica, self.replicas, self.rps,
                           self.scenario.model_side.error_rate)
        offsets = arrivals(rng, seconds, rate)
        offsets = offsets[offsets < last]
        epoch = self.start + offsets
        n = offsets.size
        sequences = np.arange(next_sequence, next_sequence + n, dtype=np.int64)
        population = self.population
        rows = population.draw(rng, n)
        apply_inputs(rng, rows, offsets, epoch, self.events, replica, population)
        labels = population.true_labels(rng, rows, _concept_drop(offsets, self.events, replica)) \
            if population.has_labels else None
        observed = observed_columns(rng, rows, offsets, self.events, replica, population)
        predictions, scores = population.outputs(rows, observed)
        writer.write_predictions(sequences, epoch, observed, self.integer, predictions, scores)
        if labels is not None:
            self._draw_labels(rng, offsets, epoch, sequences, labels, replica, pending)
        arrived = pending.take_before(self.start + last)
        writer.write_feedback(*arrived)
        return next_sequence + n

    def _draw_labels(self, rng: np.random.Generator, offsets: np.ndarray, epoch: np.ndarray, sequences: np.ndarray,
                     labels: np.ndarray, replica: int, pending: _Pending) -> None:
        fraction, delays = _label_spec_at(offsets, self.events, replica, self.scenario.labels)
        chosen = rng.random(offsets.size) < fraction
        if labels.dtype == object:
            chosen &= np.array([label is not None for label in labels.tolist()], dtype=bool)
        for rows_of_spec, spec in delays:
            picked = np.flatnonzero(chosen & rows_of_spec)
            if picked.size == 0:
                continue
            arrival = epoch[picked] + spec.delay.sample(rng, picked.size)
            due = arrival < self.start + self.run_seconds
            pending.add(sequences[picked][due], arrival[due], labels[picked][due])

    def reference(self) -> tuple[Rows, np.ndarray]:
        """Reference rows for the baseline, with their labels: the stationary world plus the seasonal cycle, at
        times spread over a whole week as the traffic is, so the baseline covers every hour and weekday."""
        n = self.scenario.reference_rows + self.scenario.validation_rows
        rng = self.rng(REFERENCE_STREAM)
        seasonal = [dataclasses.replace(event, start=0.0, end=math.inf) for event in self.events
                    if event.type == "seasonal"]
        if seasonal:
            week = np.arange(int(WEEK), dtype=float)
            weight = seasonal_factor(self.start + week, seasonal[0].params)
            offsets = rng.choice(week, size=n, p=weight / weight.sum()) + rng.random(n)
        else:
            offsets = np.zeros(n)
        rows = self.population.draw(rng, n)
        apply_inputs(rng, rows, offsets, self.start + offsets, seasonal, 0, self.population)
        labels = self.population.true_labels(rng, rows, np.zeros(n))
        return rows, labels


def _baseline_columns(run: _Run) -> dict[str, Any]:
    """The baseline document: training rows with their labels, held-out rows with the model's predictions and
    scores too, so the reference prediction and score distributions and the reference accuracy are out of sample."""
    population = run.population
    rows, labels = run.reference()
    cut = run.scenario.reference_rows
    predictions, scores = population.reference_outputs(rows)

    def feature_columns(part: slice) -> dict[str, Any]:
        columns: dict[str, Any] = {}
        for info in population.features:
            values = rows.columns[info.name][part]
            columns[info.name] = values.astype(np.int64) if info.integer and not np.isnan(values).any() else values
        return columns

    training = {**feature_columns(slice(0, cut)), "label": labels[:cut]}
    validation = {**feature_columns(slice(cut, None)), "label": labels[cut:], "prediction": predictions[cut:]}
    if scores is not None:
        validation["score"] = scores[cut:]
    categorical = [info.name for info in population.features if not info.numeric]
    baseline = build_baseline(training, categorical=categorical, target="label", prediction="prediction",
                              score="score" if scores is not None else None, validation=validation,
                              model_name=population.model_name, model_version=population.model_version)
    baseline["created_at"] = rfc3339(run.start)
    return baseline


def _csv_baseline(population: CsvPopulation, seed: int, created_at: str) -> dict[str, Any]:
    """A baseline from the user's CSV itself: a shuffled 80% as training rows, the rest held out for the
    prediction and score distributions and the reference performance."""
    spec, table = population.spec, population.table
    order = np.random.default_rng([seed, REFERENCE_STREAM]).permutation(population.n_rows)
    cut = max(1, int(population.n_rows * 0.8)) if population.n_rows > 1 else population.n_rows
    outputs = {spec.prediction, spec.score}
    training = {name: [values[i] for i in order[:cut]] for name, values in table.items() if name not in outputs}
    held = order[cut:] if cut < population.n_rows else order
    validation = {name: [values[i] for i in held] for name, values in table.items()}
    has_target = spec.target in table
    try:
        baseline = build_baseline(
            training, target=spec.target if has_target else None, prediction=spec.prediction,
            score=spec.score if spec.score in table else None, validation=validation if has_target else None,
            model_name=population.model_name, model_version=population.model_version,
            categorical=[info.name for info in population.features if not info.numeric],
        ) if has_target else build_baseline(
            {name: [values[i] for i in order] for name, values in table.items()}, prediction=spec.prediction,
            score=spec.score if spec.score in table else None, model_name=population.model_name,
            model_version=population.model_version,
            categorical=[info.name for info in population.features if not info.numeric],
        )
    except BaselineError as error:
        raise ScenarioError(f"model.reference_csv {population.path}: cannot build a baseline: {error}") from None
    baseline["created_at"] = created_at
    return baseline


def _event_json(event: TimedEvent, run: _Run) -> dict[str, Any]:
    params: dict[str, Any] = {}
    for key, value in event.params.items():
        if key == "ramp":
            params["ramp_seconds"] = value
        elif hasattr(value, "to_json"):
            params[key] = value.to_json()
        elif isinstance(value, tuple):
            params[key] = list(value)
        else:
            params[key] = value
    if event.type == "latency_regression" and "median_seconds" not in params:
        side = run.scenario.model_side
        params["median_seconds"] = side.median_seconds * params["p95_seconds"] / side.p95_seconds
    document = {
        "type": event.type,
        "name": event.name,
        "start": rfc3339(run.start + event.start),
        "end": rfc3339(run.start + event.end),
        "params": params,
        "affects": event.affects(run.population.scored),
    }
    if event.spec.replicas is not None:
        document["replicas"] = [f"replica-{index}" for index in event.spec.replicas]
    return document


def _label_wait(scenario: Scenario, events: list[TimedEvent]) -> float:
    """How long a prediction should wait for its label: the slowest delay distribution's 99th percentile."""
    delays = [scenario.labels.delay] + [event.params["delay"] for event in events
                                        if event.type == "label_delay" and "delay" in event.params]
    return max(delay.quantile(LABEL_TTL_QUANTILE) for delay in delays)


def simulate(scenario: Scenario, out: str | Path, *, hours: float | None = None, rps: float | None = None,
             seed: int = 0, start: str = DEFAULT_START, replicas: int | None = None,
             reference_csv: Path | None = None, baseline: Path | None = None, overwrite: bool = False,
             progress: Callable[[str], None] | None = None) -> SimulationResult:
    """Run `scenario` and write its logs, baseline, exporter.yml and scenario.json under `out`."""
    began = time.perf_counter()
    hours = scenario.hours if hours is None else hours
    rps = scenario.rps if rps is None else rps
    replicas = scenario.replicas if replicas is None else replicas
    if not (isinstance(seed, int) and seed >= 0):
        raise ScenarioError(f"--seed: expected an integer of 0 or more, got {seed!r}")
    if not (hours > 0 and math.isfinite(hours)):
        raise ScenarioError(f"--hours: expected a positive number, got {hours!r}")
    if not (rps > 0 and math.isfinite(rps)):
        raise ScenarioError(f"--rps: expected a positive number of predictions per second, got {rps!r}")
    if not 1 <= replicas <= 64:
        raise ScenarioError(f"--replicas: expected 1 to 64, got {replicas!r}")
    for event in scenario.events:
        if event.replicas is not None and max(event.replicas) >= replicas:
            raise ScenarioError(f"{scenario.source}: events[{event.index}] ({event.name!r}, type {event.type!r}): "
                                f"replicas: replica-{max(event.replicas)} does not exist in a run of {replicas} "
                                f"replica(s)")
    start_epoch = parse_start(start)
    run_seconds = hours * 3600
    population = _population(scenario, reference_csv, baseline)
    events, notes = resolve(scenario, run_seconds)
    check_features(events, population, scenario.source)
    out = Path(out)
    _prepare_out(out, replicas, overwrite)
    run = _Run(scenario, population, events, seed=seed, start=start_epoch, run_seconds=run_seconds, rps=rps,
               replicas=replicas)

    if isinstance(population, CsvPopulation) and population.spec.baseline is not None:
        shutil.copyfile(population.spec.baseline, out / BASELINE_FILE)
    elif isinstance(population, CsvPopulation):
        save_baseline(_csv_baseline(population, seed, rfc3339(start_epoch)), out / BASELINE_FILE)
    else:
        save_baseline(_baseline_columns(run), out / BASELINE_FILE)

    names = replica_names(replicas)
    logs = log_names(replicas)
    writers = [
        LogWriter(out, logs["predictions"][r], logs["feedback"][r], (population.model_name, population.model_version),
                  run.rng(ID_STREAM, r).bytes(8).hex())
        for r in range(replicas)
    ]
    pendings = [_Pending() for _ in range(replicas)]
    sequences = [0] * replicas
    chunks = math.ceil(run_seconds / CHUNK_SECONDS)
    try:
        for index in range(chunks):
            for replica in range(replicas):
                sequences[replica] = run.chunk(index, replica, writers[replica], pendings[replica], sequences[replica])
            if progress is not None and ((index + 1) % 6 == 0 or index + 1 == chunks):
                written = sum(writer.predictions_written for writer in writers)
                progress(f"{min((index + 1) * CHUNK_SECONDS / 3600, hours):g}h of {hours:g}h simulated, {written} "
                         f"predictions written ({time.perf_counter() - began:.1f}s)")
    finally:
        for writer in writers:
            writer.close()

    model = (population.model_name, population.model_version)
    segments = getattr(population, "segments", ())
    wait = _label_wait(scenario, events)
    header = (f"Exporter configuration written by `promml simulate` for scenario {scenario.name!r} (seed {seed}).\n"
              f"Every key: docs/exporter.md. Paths are relative to this file.")
    try:
        config = exporter_config(model, [pattern(path) for path in logs["predictions"]] if replicas == 1 else
                                 [f"{LOGS_DIR}/predictions*.jsonl"],
                                 [pattern(path) for path in logs["feedback"]] if replicas == 1 else
                                 [f"{LOGS_DIR}/feedback*.jsonl"],
                                 label_wait_seconds=wait, rps=rps, segments=segments, listen_port=EXPORTER_PORT,
                                 overrides=scenario.exporter)
        write_exporter_config(out / EXPORTER_FILE, config, header)
        replica_configs = {}
        if replicas > 1:
            for r, name in enumerate(names):
                config = exporter_config(model, [logs["predictions"][r]], [logs["feedback"][r]],
                                         label_wait_seconds=wait, rps=rps / replicas, segments=segments,
                                         listen_port=EXPORTER_PORT + 1 + r, overrides=scenario.exporter)
                replica_configs[name] = f"exporter-{name}.yml"
                write_exporter_config(out / replica_configs[name], config, header + f"\nReplica {name} only.")
    except ConfigError as error:
        raise ScenarioError(f"{scenario.source}: exporter: {error}") from None

    document: dict[str, Any] = {
        "scenario": scenario.name,
        "description": scenario.description,
        "seed": seed,
        "rps": rps,
        "hours": hours,
        "start": rfc3339(start_epoch),
        "end": rfc3339(start_epoch + run_seconds),
        "model_name": population.model_name,
        "model_version": population.model_version,
        "replicas": names,
        "log_files": logs,
        "baseline": BASELINE_FILE,
        "exporter_config": EXPORTER_FILE,
        "replica_exporter_configs": replica_configs,
        "events": [_event_json(event, run) for event in events],
        "model_side": scenario.model_side.to_json(),
        "labels": scenario.labels.to_json(),
        "written": {
            "predictions": {name: writer.predictions_written for name, writer in zip(names, writers, strict=True)},
            "feedback": {name: writer.feedback_written for name, writer in zip(names, writers, strict=True)},
        },
        "notes": notes,
    }
    write_json(out / SCENARIO_FILE, document)
    return SimulationResult(out, document, sum(w.predictions_written for w in writers),
                            sum(w.feedback_written for w in writers), time.perf_counter() - began, notes)


def pattern(path: str) -> str:
    """The glob the exporter follows for a log file, so rotated copies (`predictions.<time>Z.jsonl`) match."""
    stem, dot, suffix = path.rpartition(".")
    return f"{stem}*.{suffix}" if dot else path
