"""Arrival rates: the seasonal cycle keeps the weekly mean, quiet hours and outages set the rate, failed calls thin
the log, and arrivals are a Poisson process of that rate."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from promml.simulate.engine import DEFAULT_START, parse_start
from promml.simulate.scenario import parse_scenario
from promml.simulate.timeline import resolve
from promml.simulate.traffic import WEEK, arrivals, call_rate, in_hours, is_weekend, logged_rate

START = parse_start(DEFAULT_START)  # a Monday, 00:00 UTC


def events_of(*events: dict, hours: float = 168):
    scenario = parse_scenario({"description": "t", "events": list(events)}, "t", "t.yml")
    return resolve(scenario, hours * 3600)[0]


def test_the_seasonal_rate_peaks_at_its_hour_dips_at_weekends_and_keeps_the_weekly_mean() -> None:
    events = events_of({"type": "seasonal", "name": "s", "params": {"daily_amplitude": 0.5, "peak_hour": 14,
                                                                    "weekend_factor": 0.5}})
    offsets = np.arange(WEEK)
    rate = call_rate(START, offsets, events, 0, 1, 10.0)
    assert rate.mean() == pytest.approx(10.0)
    weekday_scale = 7 / (5 + 2 * 0.5)
    assert rate[14 * 3600] == pytest.approx(10 * 1.5 * weekday_scale)
    assert rate[2 * 3600] == pytest.approx(10 * 0.5 * weekday_scale)
    assert rate[5 * 86400 + 14 * 3600] == pytest.approx(10 * 1.5 * 0.5 * weekday_scale)  # Saturday
    assert is_weekend(START + np.array([0.0, 5 * 86400, 6 * 86400 + 86399])).tolist() == [False, True, True]


def test_quiet_hours_outages_replicas_and_failed_calls() -> None:
    events = events_of({"type": "low_traffic", "name": "night", "params": {"rps": 0.2, "from_hour": 22,
                                                                            "to_hour": 6}},
                       {"type": "traffic_outage", "name": "down", "start": "12h", "end": "12h30m"},
                       {"type": "error_burst", "name": "e", "start": "8h", "end": "9h", "params": {"error_rate": 0.5}},
                       hours=24)
    hours = np.array([1, 7, 8.5, 12.25, 12.5, 23]) * 3600
    assert call_rate(START, hours, events, 0, 2, 50.0).tolist() == [0.1, 25.0, 25.0, 0.0, 25.0, 0.1]
    logged = logged_rate(START, hours, events, 0, 1, 50.0, 0.01)
    assert logged.tolist() == pytest.approx([0.2 * 0.99, 49.5, 25.0, 0.0, 49.5, 0.2 * 0.99])
    assert in_hours(START + hours, 22, 6).tolist() == [True, False, False, False, False, True]


def test_arrivals_are_poisson_counts_spread_uniformly_within_each_second() -> None:
    seconds = np.arange(20_000, dtype=float)
    times = arrivals(np.random.default_rng(0), seconds, np.full(seconds.size, 3.0))
    assert np.all(np.diff(times) >= 0)
    counts = np.bincount(np.floor(times).astype(int), minlength=seconds.size)
    assert counts.mean() == pytest.approx(3.0, abs=0.05) and counts.var() == pytest.approx(3.0, abs=0.15)
    assert stats.kstest(times % 1.0, "uniform").pvalue > 0.001
