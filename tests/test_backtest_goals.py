"""The detection goals judge a backtest's JSON exactly: pages counted as PagerDuty incidents, delays from the
scenario's events, drift alerts split by replica found, accuracy alerts told apart from the rest."""

from __future__ import annotations

from typing import Any

import pytest

from promml.backtest.goals import (
    GOALS,
    exactly_one_page,
    no_accuracy_alert,
    no_drift_page,
    one_alert_per_feature,
    one_page_within,
    outage_paged_once_without_drift,
    quiet_week,
    warned_before_accuracy_fell,
)

START = "2026-01-05T00:00:00Z"


def result(*, incidents: int = 0, notifications: list[dict] = (), episodes: list[dict] = (),
           events: list[dict] = (), end: str = "2026-01-12T00:00:00Z") -> dict[str, Any]:
    return {"episodes": list(episodes), "notifications": list(notifications),
            "summary": {"start": START, "end": end, "pagerduty_incidents": incidents, "events": list(events)}}


def note(at: str, route: str, receiver: str, *names: str, status: str = "firing") -> dict[str, Any]:
    return {"at": at, "route": route, "receiver": receiver, "status": status, "alertnames": list(names)}


def episode(name: str, route: str = "slack", **labels: str) -> dict[str, Any]:
    return {"alertname": name, "severity": "warning", "route": route, "labels": {"alertname": name, **labels},
            "start": START, "end": None}


def test_a_quiet_week_allows_one_slack_warning_a_day_and_no_page():
    two_days = [note("2026-01-05T10:00:00Z", "slack", "slack-warning", "PredictionVolumeAnomaly"),
                note("2026-01-06T10:00:00Z", "slack", "slack-warning", "PredictionVolumeAnomaly"),
                note("2026-01-06T11:00:00Z", "slack", "slack-warning", "PredictionVolumeAnomaly", status="resolved"),
                note("2026-01-06T12:00:00Z", "slack", "slack-critical", "DataDriftDetected")]
    verdict = quiet_week(result(notifications=two_days))
    assert verdict.passed
    assert verdict.measured == "0 page(s); Slack warnings: 2 in 7 day(s), at most 1 a day"
    assert not quiet_week(result(notifications=[*two_days, two_days[0]])).passed
    assert not quiet_week(result(incidents=1)).passed


def test_one_page_within_measures_from_the_first_event():
    shift = [{"type": "covariate_shift", "start": "2026-01-05T12:00:00Z"}]
    page = note("2026-01-05T12:14:30Z", "page", "pagerduty-critical", "DataDriftDetected")
    verdict = one_page_within(15)(result(incidents=1, notifications=[page], events=shift))
    assert verdict.passed and verdict.measured == "1 page(s), first 14 min after the change"
    late = {**page, "at": "2026-01-05T12:50:30Z"}
    assert not one_page_within(15)(result(incidents=1, notifications=[late], events=shift)).passed
    assert not one_page_within(15)(result(incidents=2, notifications=[page, late], events=shift)).passed
    assert not one_page_within(15)(result(events=shift)).passed


def test_a_warning_counts_only_before_accuracy_fell_that_far():
    drift = [{"type": "concept_drift", "start": START, "params": {"accuracy_drop_per_day": 0.01}}]
    day_four = note("2026-01-09T00:00:00Z", "slack", "slack-warning", "ModelAccuracyDrop")
    verdict = warned_before_accuracy_fell(5)(result(notifications=[day_four], events=drift))
    assert verdict.passed and verdict.measured == "first warning when accuracy had fallen 4.0 points"
    day_six = {**day_four, "at": "2026-01-11T00:00:00Z"}
    assert not warned_before_accuracy_fell(5)(result(notifications=[day_six], events=drift)).passed
    watchdog = note("2026-01-05T00:01:00Z", "slack", "slack-warning", "Watchdog")
    assert not warned_before_accuracy_fell(5)(result(notifications=[watchdog], events=drift)).passed
    with pytest.raises(ValueError, match="no 'concept_drift' event"):
        warned_before_accuracy_fell(5)(result())


def test_exactly_one_page_names_what_rode_in_it():
    pages = [note("2026-01-05T12:10:00Z", "page", "pagerduty-critical", "DataDriftDetected", "PredictionDrift")]
    verdict = exactly_one_page(result(incidents=1, notifications=pages))
    assert verdict.passed and verdict.measured == "1 incident(s) (DataDriftDetected, PredictionDrift)"
    assert not exactly_one_page(result(incidents=3, notifications=pages)).passed


def test_accuracy_alerts_are_told_apart():
    assert no_accuracy_alert(result(episodes=[episode("DataDriftDetected")])).passed
    assert not no_accuracy_alert(result(episodes=[episode("ModelAccuracyLow")])).passed


def test_an_outage_pages_once_for_the_outage_and_never_for_drift():
    page = note("2026-01-05T12:02:00Z", "page", "pagerduty-critical", "ModelServerDown")
    assert outage_paged_once_without_drift(result(incidents=1, notifications=[page])).passed
    drift = episode("DataDriftDetected", feature_name="income")
    verdict = outage_paged_once_without_drift(result(incidents=1, notifications=[page], episodes=[drift]))
    assert not verdict.passed and verdict.measured == "1 page(s) (ModelServerDown); 1 drift alert episode(s)"
    other = note("2026-01-05T12:02:00Z", "page", "pagerduty-critical", "PromMLExporterDown")
    assert not outage_paged_once_without_drift(result(incidents=1, notifications=[other])).passed


def test_drift_pages_are_found_by_route():
    assert no_drift_page(result(episodes=[episode("DataDriftDetected", route="slack")])).passed
    assert not no_drift_page(result(episodes=[episode("DataDriftDetected", route="page")])).passed


def test_a_drift_alert_told_once_per_replica_is_split():
    fleet = [episode("DataDriftDetected", feature_name="income"), episode("DataDriftDetected", feature_name="debt")]
    verdict = one_alert_per_feature(result(episodes=fleet))
    assert verdict.passed and verdict.measured == "drift alerts for debt, income; 0 of them split by replica"
    per_replica = [episode("DataDriftDetected", feature_name="income", instance=f"replica-{i}:9102")
                   for i in range(2)]
    assert not one_alert_per_feature(result(episodes=per_replica)).passed
    assert not one_alert_per_feature(result()).passed  # drift on both replicas must be seen at all


def test_the_table_covers_every_goal_of_the_issue_once():
    assert [goal.scenario for goal in GOALS] == [
        "seasonal", "sudden-shift", "gradual-concept-drift", "incident", "delayed-labels", "traffic-outage",
        "low-traffic-night", "two-replicas-drift",
    ]
    for goal in GOALS:
        assert goal.compressed_hours <= 24 and goal.compressed_rps <= 5  # what make test can afford
