"""A scenario's events placed on one run: offsets resolved to seconds, and each event's strength at any time.

Strength is 0 outside an event's interval and 1 inside it, except where the event grows: a `ramp` makes it rise
linearly from the start, and a `covariate_drift` rises over its whole interval. An event that would start after
the run ends is left out (and said so); one that would end after it is cut at the run's end.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from .events import EVENT_TYPES
from .scenario import EventSpec, Scenario, ScenarioError


@dataclass(frozen=True)
class TimedEvent:
    """An event of one run: `start` and `end` in seconds from the run's start, parameters with defaults filled."""

    spec: EventSpec
    start: float
    end: float
    params: dict[str, Any]

    @property
    def type(self) -> str:
        return self.spec.type

    @property
    def name(self) -> str:
        return self.spec.name

    def applies_to(self, replica: int) -> bool:
        return self.spec.replicas is None or replica in self.spec.replicas

    def active(self, offsets: np.ndarray) -> np.ndarray:
        """Whether each offset (seconds from the run's start) is inside the event."""
        return (offsets >= self.start) & (offsets < self.end)

    def strength(self, offsets: np.ndarray) -> np.ndarray:
        """0..1 per offset: how much of the event's change is there at that time."""
        ramp = float(self.params.get("ramp", 0.0))
        if ramp <= 0:
            return self.active(offsets).astype(float)
        grown = np.clip((offsets - self.start) / ramp, 0.0, 1.0)
        return np.where(self.active(offsets), grown, 0.0)

    def affects(self, scored: bool) -> list[str]:
        return EVENT_TYPES[self.type].affects(self.params, scored)


def resolve(scenario: Scenario, run_seconds: float) -> tuple[list[TimedEvent], list[str]]:
    """The scenario's events on a run of `run_seconds`, and notes about events left out or cut."""
    events: list[TimedEvent] = []
    notes: list[str] = []
    for spec in scenario.events:
        where = f"{scenario.source}: events[{spec.index}] ({spec.name!r}, type {spec.type!r})"
        start = spec.start.resolve(run_seconds)
        end = run_seconds if spec.end is None else spec.end.resolve(run_seconds)
        if spec.end is not None and end <= start:
            raise ScenarioError(f"{where}: end ({spec.end}) must come after start ({spec.start})")
        if start >= run_seconds:
            notes.append(f"event {spec.name!r} starts at {start / 3600:g}h, after the run's {run_seconds / 3600:g}h: "
                         f"left out")
            continue
        if end > run_seconds:
            notes.append(f"event {spec.name!r} is cut at the run's end ({run_seconds / 3600:g}h)")
            end = run_seconds
        params = dict(spec.params)
        if spec.type == "covariate_drift":
            params["ramp"] = end - start
        events.append(TimedEvent(spec, start, end, params))
    return events, notes
