"""`scenario.json`: what `promml simulate` wrote next to the logs, read here to measure detection delay and to
give the model-side series (latency, errors, the server being down) the scenario's facts.

A backtest of a user's own logs has no scenario: every field then has a neutral default (no events, a healthy
model server).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..records import InvalidRecord, parse_timestamp

DEFAULT_LATENCY_MEDIAN_SECONDS = 0.02
DEFAULT_LATENCY_P95_SECONDS = 0.05
"""Latency of a healthy model when the scenario says nothing: well under the 200 ms warning threshold."""


class ScenarioError(ValueError):
    """scenario.json is missing a field or has one of the wrong type; the message says which."""


@dataclass(frozen=True)
class Event:
    type: str
    name: str
    start: float
    end: float
    params: dict[str, Any] = field(default_factory=dict)
    affects: tuple[str, ...] = ()
    replicas: tuple[str, ...] = ()  # empty: every replica

    def active(self, at: float, replica: str | None = None) -> bool:
        """Whether the event covers a time (and, when it is limited to some replicas, this replica)."""
        in_replica = not self.replicas or replica is None or replica in self.replicas
        return in_replica and self.start <= at < self.end


@dataclass(frozen=True)
class Scenario:
    name: str = "logs"
    seed: int = 0
    start: float | None = None
    end: float | None = None
    model_name: str | None = None
    model_version: str | None = None
    replicas: tuple[str, ...] = ()
    events: tuple[Event, ...] = ()
    latency_median_seconds: float = DEFAULT_LATENCY_MEDIAN_SECONDS
    latency_p95_seconds: float = DEFAULT_LATENCY_P95_SECONDS
    error_rate: float = 0.0
    batch_size_rows: int | None = None  # None: told by the prediction ids (promml's are <call>-<row>)
    exporter_config: str | None = None
    replica_exporter_configs: dict[str, str] = field(default_factory=dict)

    def latency_at(self, at: float, replica: str | None = None) -> tuple[float, float]:
        """(median, p95) of predict latency at a time: a `latency_regression` event sets the p95, and the median
        (given, or the usual one scaled as the p95)."""
        median, p95 = self.latency_median_seconds, self.latency_p95_seconds
        for event in self.events:
            if event.type == "latency_regression" and event.active(at, replica) and "p95_seconds" in event.params:
                p95 = float(event.params["p95_seconds"])
                median = float(event.params.get("median_seconds") or
                               self.latency_median_seconds * p95 / self.latency_p95_seconds)
        return median, p95

    def error_rate_at(self, at: float, replica: str | None = None) -> float:
        """Share of predict calls that fail at a time: an `error_burst` event sets it."""
        rate = self.error_rate
        for event in self.events:
            if event.type == "error_burst" and event.active(at, replica) and "error_rate" in event.params:
                rate = float(event.params["error_rate"])
        return rate

    def server_down_at(self, at: float, replica: str | None = None) -> bool:
        """Whether the model server answers no scrape at a time (a `traffic_outage` with `server_down`)."""
        return any(event.type == "traffic_outage" and event.active(at, replica)
                   and bool(event.params.get("server_down", True)) for event in self.events)


def _time(raw: dict[str, Any], key: str, where: str) -> float:
    try:
        return parse_timestamp(raw[key])
    except KeyError:
        raise ScenarioError(f"{where}: missing {key!r} (an RFC 3339 time)") from None
    except InvalidRecord as error:
        raise ScenarioError(f"{where}.{key}: {error}") from None


def _event(raw: Any, index: int) -> Event:
    where = f"events[{index}]"
    if not isinstance(raw, dict):
        raise ScenarioError(f"{where}: expected a mapping, got {raw!r}")
    for key in ("type", "start", "end"):
        if key not in raw:
            raise ScenarioError(f"{where}: missing {key!r}")
    params = raw.get("params") or {}
    if not isinstance(params, dict):
        raise ScenarioError(f"{where}.params: expected a mapping, got {params!r}")
    return Event(
        type=str(raw["type"]), name=str(raw.get("name", raw["type"])), start=_time(raw, "start", where),
        end=_time(raw, "end", where), params=params, affects=tuple(str(a) for a in raw.get("affects") or ()),
        replicas=tuple(str(r) for r in raw.get("replicas") or ()),
    )


def parse_scenario(raw: Any) -> Scenario:
    if not isinstance(raw, dict):
        raise ScenarioError("scenario.json must hold a JSON object")
    events = raw.get("events") or []
    if not isinstance(events, list):
        raise ScenarioError(f"events: expected a list, got {events!r}")
    model_side = raw.get("model_side") or {}
    latency = model_side.get("latency") or {}
    try:
        median = float(latency.get("median_seconds", DEFAULT_LATENCY_MEDIAN_SECONDS))
        p95 = float(latency.get("p95_seconds", DEFAULT_LATENCY_P95_SECONDS))
        error_rate = float(model_side.get("error_rate", 0.0))
        seed = int(raw.get("seed", 0))
        batch = model_side.get("batch_size_rows")
        batch_size_rows = None if batch is None else int(batch)
    except (TypeError, ValueError) as error:
        raise ScenarioError(f"model_side: expected numbers ({error})") from None
    return Scenario(
        name=str(raw.get("scenario", "scenario")),
        seed=seed,
        start=_time(raw, "start", "scenario") if "start" in raw else None,
        end=_time(raw, "end", "scenario") if "end" in raw else None,
        model_name=raw.get("model_name"),
        model_version=None if raw.get("model_version") is None else str(raw["model_version"]),
        replicas=tuple(str(r) for r in raw.get("replicas") or ()),
        events=tuple(_event(event, i) for i, event in enumerate(events)),
        latency_median_seconds=median,
        latency_p95_seconds=p95,
        error_rate=error_rate,
        batch_size_rows=batch_size_rows,
        exporter_config=None if raw.get("exporter_config") is None else str(raw["exporter_config"]),
        replica_exporter_configs={str(k): str(v) for k, v in (raw.get("replica_exporter_configs") or {}).items()},
    )


def load_scenario(path: str | Path) -> Scenario:
    path = Path(path)
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except OSError as error:
        raise ScenarioError(f"cannot read {path}: {error.strerror or error}") from None
    except ValueError as error:
        raise ScenarioError(f"{path} is not valid JSON: {error}") from None
    return parse_scenario(raw)
