"""Scenario files: a description, traffic, labels and model-side defaults, and a timeline of events.

Shipped scenarios live in `promml/simulate/scenarios/` (package data, so an installed promml has them) and are
named after what they simulate; `--scenario` takes one of their names or the path of a YAML file of one's own.
Every key is checked when the file is loaded, and an error names the file, the event (index, name and type) and
the key. The format is documented in docs/backtest.md ("Scenario format").
"""

from __future__ import annotations

import difflib
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from .durations import DurationError, Offset, parse_duration, parse_offset
from .events import EVENT_TYPES, ParamError
from .labels import DEFAULT_LABELS, LabelSpec, LabelSpecError, parse_labels

SCENARIO_FOLDER = "scenarios"
"""Shipped scenarios: package data of promml.simulate."""
DEFAULT_HOURS = 24.0
DEFAULT_RPS = 50.0
DEFAULT_LATENCY = {"median_seconds": 0.02, "p95_seconds": 0.06}
"""A fast model: 20 ms median, 60 ms at p95, far below the 200 ms warning and the 500 ms page."""
DEFAULT_ERROR_RATE = 0.001
"""One call in a thousand fails (bad inputs), far below the 5% warning."""
MAX_REPLICAS = 64

_TOP_KEYS = ("description", "hours", "rps", "replicas", "model", "labels", "model_side", "exporter", "reference",
             "events")
_EVENT_KEYS = ("type", "name", "start", "end", "params", "replicas")
_MODEL_KEYS = ("reference_csv", "baseline", "name", "version", "target", "prediction", "score")
_REFERENCE_KEYS = ("rows", "validation_rows")


class ScenarioError(ValueError):
    """A scenario that cannot be used; the message names the file, the event and the key."""


@dataclass(frozen=True)
class EventSpec:
    """One event as written in the scenario: offsets are resolved against the run's length later."""

    index: int
    type: str
    name: str
    start: Offset
    end: Offset | None
    params: dict[str, Any]
    replicas: tuple[int, ...] | None = None


@dataclass(frozen=True)
class ModelSpec:
    """The demo model (`reference_csv` None) or a user's reference rows, and optionally their baseline."""

    reference_csv: Path | None = None
    baseline: Path | None = None
    name: str | None = None
    version: str | None = None
    target: str = "label"
    prediction: str = "prediction"
    score: str = "score"

    @property
    def is_demo(self) -> bool:
        return self.reference_csv is None


@dataclass(frozen=True)
class ModelSide:
    """What the prediction log cannot hold: the call latency (lognormal) and the share of calls that fail."""

    median_seconds: float = DEFAULT_LATENCY["median_seconds"]
    p95_seconds: float = DEFAULT_LATENCY["p95_seconds"]
    error_rate: float = DEFAULT_ERROR_RATE

    def to_json(self) -> dict[str, Any]:
        return {"latency": {"median_seconds": self.median_seconds, "p95_seconds": self.p95_seconds},
                "error_rate": self.error_rate, "batch_size_rows": 1}


@dataclass(frozen=True)
class Scenario:
    """A validated scenario file."""

    name: str
    source: str
    description: str
    hours: float = DEFAULT_HOURS
    rps: float = DEFAULT_RPS
    replicas: int = 1
    model: ModelSpec = field(default_factory=ModelSpec)
    labels: LabelSpec = DEFAULT_LABELS
    model_side: ModelSide = field(default_factory=ModelSide)
    exporter: dict[str, Any] = field(default_factory=dict)
    reference_rows: int = 20_000
    validation_rows: int = 5_000
    events: tuple[EventSpec, ...] = ()


def shipped_scenarios() -> dict[str, str]:
    """Name → description of every scenario shipped with promml, sorted by name."""
    folder = resources.files(__package__) / SCENARIO_FOLDER
    found = {}
    for entry in sorted(folder.iterdir(), key=lambda item: item.name):
        if entry.name.endswith(".yml"):
            raw = yaml.safe_load(entry.read_text(encoding="utf-8"))
            found[entry.name[: -len(".yml")]] = str(raw.get("description", "")).strip()
    return found


def _read(reference: str) -> tuple[str, str, str]:
    """(name, source for messages, YAML text) of a shipped scenario's name or a file's path."""
    candidate = Path(reference)
    if reference.endswith((".yml", ".yaml")) or candidate.parent != Path("."):
        try:
            return candidate.stem, str(candidate), candidate.read_text(encoding="utf-8")
        except OSError as error:
            raise ScenarioError(f"cannot read scenario file {reference}: {error.strerror or error}") from None
    shipped = resources.files(__package__) / SCENARIO_FOLDER / f"{reference}.yml"
    if not shipped.is_file():
        names = list(shipped_scenarios())
        close = difflib.get_close_matches(reference, names, n=1, cutoff=0.5)
        hint = f"did you mean {close[0]!r}? " if close else ""
        raise ScenarioError(f"unknown scenario {reference!r}: {hint}shipped scenarios are {', '.join(names)}; "
                            f"or give the path of a .yml file")
    return reference, f"{reference}.yml (shipped)", shipped.read_text(encoding="utf-8")


def _positive(source: str, key: str, value: Any, *, integer: bool = False, maximum: float | None = None) -> float:
    kind = int if integer else int | float
    if isinstance(value, bool) or not isinstance(value, kind) or not math.isfinite(value) or value <= 0 or (
            maximum is not None and value > maximum):
        limit = f" up to {maximum:g}" if maximum is not None else ""
        what = "a positive integer" if integer else "a positive number"
        raise ScenarioError(f"{source}: {key}: expected {what}{limit}, got {value!r}")
    return value


def _unknown(source: str, where: str, key: Any, known: tuple[str, ...]) -> ScenarioError:
    close = difflib.get_close_matches(str(key), known, n=1, cutoff=0.6)
    hint = f"did you mean {close[0]!r}?" if close else f"known keys: {', '.join(known)}"
    return ScenarioError(f"{source}: {where}unknown key {key!r}; {hint}")


def _model(source: str, raw: Any, base: Path | None) -> ModelSpec:
    if raw is None or raw == "demo":
        return ModelSpec()
    if not isinstance(raw, Mapping):
        raise ScenarioError(f"{source}: model: expected `demo` or a mapping with reference_csv (and baseline), "
                            f"got {raw!r}")
    for key in raw:
        if key not in _MODEL_KEYS:
            raise _unknown(source, "model: ", key, _MODEL_KEYS)
    for key, value in raw.items():
        if not isinstance(value, str | int | float) or isinstance(value, bool) or value == "":
            raise ScenarioError(f"{source}: model.{key}: expected a non-empty string, got {value!r}")
    if "reference_csv" not in raw:
        raise ScenarioError(f"{source}: model.reference_csv: missing; a model of your own is given by a CSV of "
                            f"reference rows (and optionally its baseline)")

    def path(key: str) -> Path | None:
        if key not in raw:
            return None
        given = Path(str(raw[key]))
        return given if given.is_absolute() or base is None else base / given

    texts = {key: str(raw[key]) for key in ("name", "version", "target", "prediction", "score") if key in raw}
    return ModelSpec(reference_csv=path("reference_csv"), baseline=path("baseline"), **texts)


def _model_side(source: str, raw: Any) -> ModelSide:
    if raw is None:
        return ModelSide()
    if not isinstance(raw, Mapping):
        raise ScenarioError(f"{source}: model_side: expected a mapping with latency and error_rate, got {raw!r}")
    for key in raw:
        if key not in ("latency", "error_rate"):
            raise _unknown(source, "model_side: ", key, ("latency", "error_rate"))
    latency = raw.get("latency", {})
    if not isinstance(latency, Mapping):
        raise ScenarioError(f"{source}: model_side.latency: expected a mapping with median_seconds and p95_seconds, "
                            f"got {latency!r}")
    for key in latency:
        if key not in DEFAULT_LATENCY:
            raise _unknown(source, "model_side.latency: ", key, tuple(DEFAULT_LATENCY))
    median = _positive(source, "model_side.latency.median_seconds",
                       latency.get("median_seconds", DEFAULT_LATENCY["median_seconds"]))
    p95 = _positive(source, "model_side.latency.p95_seconds",
                    latency.get("p95_seconds", DEFAULT_LATENCY["p95_seconds"]))
    if median > p95:
        raise ScenarioError(f"{source}: model_side.latency: median_seconds ({median:g}) must not be above "
                            f"p95_seconds ({p95:g})")
    error_rate = raw.get("error_rate", DEFAULT_ERROR_RATE)
    if isinstance(error_rate, bool) or not isinstance(error_rate, int | float) or not 0 <= error_rate < 1:
        raise ScenarioError(f"{source}: model_side.error_rate: expected a share of calls from 0 to below 1, got "
                            f"{error_rate!r}")
    return ModelSide(float(median), float(p95), float(error_rate))


def _replicas(source: str, where: str, raw: Any, count: int) -> tuple[int, ...]:
    """Replica indexes from a list of indexes (0, 1) or names (replica-0); each at most once."""
    if not isinstance(raw, list) or not raw:
        raise ScenarioError(f"{source}: {where}replicas: expected a list of replicas such as [replica-0], got {raw!r}")
    chosen: list[int] = []
    for item in raw:
        index = item if isinstance(item, int) and not isinstance(item, bool) else None
        if isinstance(item, str) and item.startswith("replica-") and item[len("replica-"):].isdigit():
            index = int(item[len("replica-"):])
        if index is None:
            raise ScenarioError(f"{source}: {where}replicas: expected replica names such as replica-0, got {item!r}")
        if index in chosen:
            raise ScenarioError(f"{source}: {where}replicas: replica-{index} is listed twice; replicas overlap")
        chosen.append(index)
    return tuple(chosen)


def _event(source: str, index: int, raw: Any) -> EventSpec:
    where = f"events[{index}]"
    if not isinstance(raw, Mapping):
        raise ScenarioError(f"{source}: {where}: expected a mapping with type, name, start, end and params, got "
                            f"{raw!r}")
    kind = raw.get("type")
    name = raw.get("name", kind)
    where = f"events[{index}] ({name!r}, type {kind!r})"
    if kind not in EVENT_TYPES:
        close = difflib.get_close_matches(str(kind), list(EVENT_TYPES), n=1, cutoff=0.5)
        hint = f"did you mean {close[0]!r}? " if close else ""
        raise ScenarioError(f"{source}: events[{index}] ({name!r}): unknown event type {kind!r}; {hint}known types: "
                            f"{', '.join(EVENT_TYPES)}")
    for key in raw:
        if key not in _EVENT_KEYS:
            raise _unknown(source, f"{where}: ", key, _EVENT_KEYS)
    if not isinstance(name, str) or not name:
        raise ScenarioError(f"{source}: {where}: name: expected a non-empty string, got {name!r}")
    event_type = EVENT_TYPES[kind]
    if "start" not in raw and not event_type.whole_run:
        raise ScenarioError(f"{source}: {where}: start: missing; expected an offset such as 6h or 50%")
    offsets: dict[str, Offset | None] = {}
    for key in ("start", "end"):
        value = raw.get(key)
        try:
            offsets[key] = None if value is None else parse_offset(value)
        except DurationError as error:
            raise ScenarioError(f"{source}: {where}: {key}: {error}") from None
    try:
        params = event_type.read_params(raw.get("params"))
    except ParamError as error:
        raise ScenarioError(f"{source}: {where}: params.{error.key}: {error}") from None
    replicas = None if raw.get("replicas") is None else _replicas(source, f"{where}: ", raw["replicas"], 0)
    return EventSpec(index, kind, name, offsets["start"] or Offset(seconds=0.0), offsets["end"], params, replicas)


def parse_scenario(raw: Any, name: str, source: str, base: Path | None = None) -> Scenario:
    """A decoded scenario document, validated; `base` resolves the model's relative paths."""
    if not isinstance(raw, Mapping):
        raise ScenarioError(f"{source}: expected a YAML mapping with description and events, got {raw!r}")
    for key in raw:
        if key not in _TOP_KEYS:
            raise _unknown(source, "", key, _TOP_KEYS)
    description = raw.get("description")
    if not isinstance(description, str) or not description.strip():
        raise ScenarioError(f"{source}: description: expected a sentence saying what the scenario simulates")
    replicas = int(_positive(source, "replicas", raw.get("replicas", 1), integer=True, maximum=MAX_REPLICAS))
    try:
        labels = parse_labels(raw.get("labels"), "labels")
    except LabelSpecError as error:
        raise ScenarioError(f"{source}: {error}") from None
    exporter = raw.get("exporter", {})
    if not isinstance(exporter, Mapping):
        raise ScenarioError(f"{source}: exporter: expected a mapping of exporter.yml keys, got {exporter!r}")
    reference = raw.get("reference", {})
    if not isinstance(reference, Mapping):
        raise ScenarioError(f"{source}: reference: expected a mapping with rows and validation_rows, got "
                            f"{reference!r}")
    for key in reference:
        if key not in _REFERENCE_KEYS:
            raise _unknown(source, "reference: ", key, _REFERENCE_KEYS)
    events_raw = raw.get("events", [])
    if events_raw is None:
        events_raw = []
    if not isinstance(events_raw, list):
        raise ScenarioError(f"{source}: events: expected a list of events, got {events_raw!r}")
    events = tuple(_event(source, index, item) for index, item in enumerate(events_raw))
    names = [event.name for event in events]
    for event in events:
        if names.count(event.name) > 1:
            raise ScenarioError(f"{source}: events: the name {event.name!r} is used twice; expected distinct names")
        if event.replicas is not None:
            for replica in event.replicas:
                if replica >= replicas:
                    raise ScenarioError(f"{source}: events[{event.index}] ({event.name!r}, type {event.type!r}): "
                                        f"replicas: replica-{replica} does not exist; the scenario has {replicas} "
                                        f"replica(s), replica-0 to replica-{replicas - 1}")
    model = _model(source, raw.get("model"), base)
    if not model.is_demo:
        for event in events:
            if EVENT_TYPES[event.type].demo_only:
                raise ScenarioError(f"{source}: events[{event.index}] ({event.name!r}, type {event.type!r}): needs "
                                    f"the demo model and data, not model.reference_csv")
    return Scenario(
        name=name,
        source=source,
        description=description.strip(),
        hours=float(_positive(source, "hours", raw.get("hours", DEFAULT_HOURS))),
        rps=float(_positive(source, "rps", raw.get("rps", DEFAULT_RPS))),
        replicas=replicas,
        model=model,
        labels=labels,
        model_side=_model_side(source, raw.get("model_side")),
        exporter=dict(exporter),
        reference_rows=int(_positive(source, "reference.rows", reference.get("rows", 20_000), integer=True)),
        validation_rows=int(_positive(source, "reference.validation_rows", reference.get("validation_rows", 5_000),
                                      integer=True)),
        events=events,
    )


def load_scenario(reference: str) -> Scenario:
    """A shipped scenario by name (`sudden-shift`) or a YAML file by path; raises ScenarioError."""
    name, source, text = _read(reference)
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as error:
        raise ScenarioError(f"{source} is not valid YAML: {error}") from None
    base = Path(reference).parent if source != f"{reference}.yml (shipped)" else None
    return parse_scenario(raw, name, source, base)


def duration_hours(value: Any, source: str = "--hours") -> float:
    """A run length given as hours (a number) or a duration (`36h`, `2d`)."""
    try:
        hours = float(value)
    except (TypeError, ValueError):
        try:
            hours = parse_duration(value) / 3600
        except DurationError:
            raise ScenarioError(f"{source}: expected a number of hours or a duration such as 36h or 7d, got "
                                f"{value!r}") from None
    if not math.isfinite(hours) or hours <= 0:
        raise ScenarioError(f"{source}: expected a positive number of hours, got {value!r}")
    return hours
