"""When predictions arrive: a Poisson process whose rate follows the scenario, drawn a second at a time.

The rate of each replica, per second of simulated time, starts at its share of `rps` and is shaped by the traffic
events: `seasonal` (a daily cosine and a weekend factor, scaled so the mean over a week stays `rps`),
`low_traffic` (a fixed rate in the quiet hours), `traffic_outage` (nothing) and the share of calls that fail
(`error_burst`, else the model's usual error rate), since a failed call writes no prediction record.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from .timeline import TimedEvent

DAY = 86_400.0
WEEK = 7 * DAY
EPOCH_WEEKDAY = 3
"""1970-01-01 was a Thursday (Monday = 0)."""


def hour_of_day(epoch_seconds: np.ndarray) -> np.ndarray:
    """UTC hour of day, fractional (14.5 = 14:30)."""
    return np.mod(epoch_seconds, DAY) / 3600.0


def is_weekend(epoch_seconds: np.ndarray) -> np.ndarray:
    """Saturday or Sunday (UTC)."""
    weekday = np.mod(np.floor(epoch_seconds / DAY) + EPOCH_WEEKDAY, 7)
    return weekday >= 5


def daily_cycle(epoch_seconds: np.ndarray, peak_hour: float) -> np.ndarray:
    """cos of the hour's angle from the peak: 1 at peak_hour, -1 twelve hours later."""
    return np.cos(2 * np.pi * (hour_of_day(epoch_seconds) - peak_hour) / 24.0)


def seasonal_factor(epoch_seconds: np.ndarray, params: dict) -> np.ndarray:
    """The `seasonal` event's traffic multiplier; its mean over a whole week is 1."""
    weekend = float(params["weekend_factor"])
    weekly = np.where(is_weekend(epoch_seconds), weekend, 1.0) / ((5 + 2 * weekend) / 7)
    return (1 + params["daily_amplitude"] * daily_cycle(epoch_seconds, params["peak_hour"])) * weekly


def in_hours(epoch_seconds: np.ndarray, from_hour: float, to_hour: float) -> np.ndarray:
    """Inside the daily hours [from_hour, to_hour) (UTC), which may span midnight."""
    hour = hour_of_day(epoch_seconds)
    if from_hour < to_hour:
        return (hour >= from_hour) & (hour < to_hour)
    return (hour >= from_hour) | (hour < to_hour)


def error_rate(offsets: np.ndarray, events: Sequence[TimedEvent], replica: int, usual: float) -> np.ndarray:
    """The share of predict calls that fail at each offset: an `error_burst`'s rate inside it, else `usual`."""
    rate = np.full(offsets.shape, usual)
    for event in events:
        if event.type == "error_burst" and event.applies_to(replica):
            rate = np.where(event.active(offsets), event.params["error_rate"], rate)
    return rate


def call_rate(start_epoch: float, offsets: np.ndarray, events: Sequence[TimedEvent], replica: int,
              replicas: int, rps: float) -> np.ndarray:
    """Predict calls per second reaching `replica` at each offset (seconds from the run's start)."""
    epoch = start_epoch + offsets
    rate = np.full(offsets.shape, rps / replicas)
    for event in events:
        if event.type == "seasonal" and event.applies_to(replica):
            rate = np.where(event.active(offsets), rate * seasonal_factor(epoch, event.params), rate)
    for event in events:
        if event.type == "low_traffic" and event.applies_to(replica):
            quiet = event.active(offsets) & in_hours(epoch, event.params["from_hour"], event.params["to_hour"])
            rate = np.where(quiet, event.params["rps"] / replicas, rate)
    for event in events:
        if event.type == "traffic_outage" and event.applies_to(replica):
            rate = np.where(event.active(offsets), 0.0, rate)
    return rate


def logged_rate(start_epoch: float, offsets: np.ndarray, events: Sequence[TimedEvent], replica: int,
                replicas: int, rps: float, usual_error_rate: float) -> np.ndarray:
    """Rows written to `replica`'s prediction log per second: the calls that did not fail."""
    calls = call_rate(start_epoch, offsets, events, replica, replicas, rps)
    return calls * (1 - error_rate(offsets, events, replica, usual_error_rate))


def arrivals(rng: np.random.Generator, second_offsets: np.ndarray, rate: np.ndarray) -> np.ndarray:
    """Sorted arrival offsets of a Poisson process with `rate` per second over the seconds starting at
    `second_offsets`."""
    counts = rng.poisson(rate)
    seconds = np.repeat(second_offsets, counts)
    return np.sort(seconds + rng.random(seconds.size))
