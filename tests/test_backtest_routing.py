"""Alertmanager's routing played by the backtest: the tree agrees with `amtool config routes test` on the shipped
alertmanager.yml, and grouping, business hours, inhibition and repeats give the notifications Alertmanager would."""

from __future__ import annotations

import itertools
import subprocess
from pathlib import Path

import pytest

from promml.backtest.alert_state import Episode
from promml.backtest.routing import load_alertmanager_config, parse_matcher, route_episodes

MONDAY = 1_764_547_200.0  # 2025-12-01T00:00:00Z, a Monday: 01:00 in Berlin
HOUR = 3600.0


@pytest.fixture(scope="module")
def shipped(repo_root: Path):
    return load_alertmanager_config(repo_root / "alertmanager" / "alertmanager.yml")


def amtool_receivers(config: Path, labels: dict[str, str]) -> list[str]:
    done = subprocess.run(["amtool", "config", "routes", "test", f"--config.file={config}",
                           *(f"{k}={v}" for k, v in labels.items())], capture_output=True, text=True, check=True)
    return done.stdout.strip().split(",")


def test_the_tree_sends_every_label_set_where_amtool_does(repo_root: Path, shipped) -> None:
    config = repo_root / "alertmanager" / "alertmanager.yml"
    severities = ["critical", "warning", "info", "none", "page", None]
    names = ["DataDriftDetected", "Watchdog"]
    for severity, alertname in itertools.product(severities, names):
        labels = {"alertname": alertname, "model_name": "credit-risk"}
        if severity is not None:
            labels["severity"] = severity
        ours = [route.receiver for route in shipped.route.match(labels)]
        assert ours == amtool_receivers(config, labels), labels


def episode(name: str, severity: str, start: float, end: float | None, **labels: str) -> Episode:
    return Episode(name, severity, {"alertname": name, "severity": severity, "model_name": "m", **labels}, start,
                   start, end)


def test_a_critical_alert_pages_and_posts_after_group_wait_and_resolves(shipped) -> None:
    drift = episode("DataDriftDetected", "critical", MONDAY + HOUR, MONDAY + 2 * HOUR, feature_name="x")
    notifications, incidents = route_episodes(shipped, [drift], MONDAY + 3 * HOUR)
    assert [(n.receiver, n.at - MONDAY, n.status) for n in notifications] == [
        ("pagerduty-critical", HOUR + 30, "firing"), ("slack-critical", HOUR + 30, "firing"),
        ("pagerduty-critical", 2 * HOUR + 30, "resolved"), ("slack-critical", 2 * HOUR + 30, "resolved"),
    ]  # the group flushes every 5m from HOUR + 30 s: the first flush after the end is at 2h + 30 s
    assert incidents == 1
    assert drift.route == "page"


def test_two_features_of_one_alert_and_model_share_a_notification(shipped) -> None:
    first = episode("DataDriftDetected", "critical", MONDAY + HOUR, None, feature_name="x")
    second = episode("DataDriftDetected", "critical", MONDAY + HOUR + 10, None, feature_name="y")
    notifications, incidents = route_episodes(shipped, [first, second], MONDAY + HOUR + 60)
    assert [(n.receiver, n.firing) for n in notifications] == [("pagerduty-critical", 2), ("slack-critical", 2)]
    assert incidents == 1


def test_a_warning_at_night_waits_for_business_hours(shipped) -> None:
    # 01:00 Berlin on a Monday; business hours open at 09:00 Berlin = 08:00 UTC
    night = episode("ModelAccuracyLow", "warning", MONDAY + HOUR, None)
    notifications, _ = route_episodes(shipped, [night], MONDAY + 10 * HOUR)
    assert [(n.receiver, n.at) for n in notifications] == [("slack-warning", MONDAY + 8 * HOUR + 30)]
    assert night.route == "slack"


def test_a_warning_over_before_business_hours_reaches_nobody(shipped) -> None:
    night = episode("ModelAccuracyLow", "warning", MONDAY + HOUR, MONDAY + 2 * HOUR)
    notifications, _ = route_episodes(shipped, [night], MONDAY + 10 * HOUR)
    assert notifications == []
    assert night.route == "none"


def test_the_critical_alert_inhibits_its_warning_of_the_same_feature(shipped) -> None:
    at = MONDAY + 10 * HOUR  # business hours
    critical = episode("DataDriftDetected", "critical", at, None, feature_name="x")
    warning = episode("DataDriftDetected", "warning", at + 60, None, feature_name="x")
    other = episode("DataDriftDetected", "warning", at + 60, None, feature_name="y")
    notifications, _ = route_episodes(shipped, [critical, warning, other], at + HOUR)
    assert (critical.route, warning.route, other.route) == ("page", "none", "slack")
    assert [n.receiver for n in notifications] == ["pagerduty-critical", "slack-critical", "slack-warning"]


def test_an_open_page_repeats_every_repeat_interval(shipped) -> None:
    drift = episode("DataDriftDetected", "critical", MONDAY, None, feature_name="x")
    notifications, incidents = route_episodes(shipped, [drift], MONDAY + 9 * HOUR)
    pages = [n.at - MONDAY for n in notifications if n.receiver == "pagerduty-critical"]
    # repeat_interval 4h: the first flush after 4h has passed since the last notification
    assert pages == [30, 30 + 4 * HOUR + 300, 30 + 8 * HOUR + 600]
    assert incidents == 1


def test_matchers_parse_as_alertmanager_writes_them() -> None:
    assert parse_matcher('severity="critical"').matches({"severity": "critical"})
    assert parse_matcher('severity=~"critical|warning"').matches({"severity": "warning"})
    assert not parse_matcher('severity=~"crit"').matches({"severity": "critical"})  # anchored
    assert parse_matcher('team!="ml"').matches({})
