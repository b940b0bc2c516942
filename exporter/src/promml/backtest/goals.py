"""Detection goals: what the shipped rules must do on each scenario, judged from a backtest's JSON result.

Why here and not in a test: the same goals are judged by `make backtest` (the full table, a week at 50 predictions
per second, written to docs/detection-quality.md) and by the compressed run in `make test` (a day at a few
predictions per second), and a user can hold their own rules to them. A goal reads only the backtest's JSON (see
docs/backtest.md): episodes, notifications and the scenario's events, so it judges what a person would have been
sent, after Alertmanager's routing, grouping and inhibition.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

DRIFT_ALERTS = frozenset({"DataDriftDetected", "PredictionDrift", "DataDriftAnomalous", "DatasetDriftShareHigh"})
"""Alerts about inputs or outputs moving away from the baseline."""
ACCURACY_ALERTS = frozenset({"ModelAccuracyLow", "ModelAccuracyDrop", "EstimatedPerformanceDrop"})
"""Alerts about the model being wrong, from labels or estimated before them."""
OUTAGE_ALERTS = frozenset({"ModelServerDown", "PredictionVolumeAnomaly"})
"""Alerts about the model not serving."""
REPLICA_LABELS = frozenset({"instance", "replica", "pod"})
"""Labels that name one replica: an alert about the model must not be split by them."""


@dataclass(frozen=True)
class Verdict:
    """Whether a goal held, and what was measured, in words a table can show."""

    passed: bool
    measured: str


def _time(text: str) -> float:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def _incidents(result: Mapping[str, Any]) -> int:
    return int(result["summary"]["pagerduty_incidents"])


def _pages(result: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    """Page notifications that open or extend an incident (firing), in time order."""
    return sorted((n for n in result["notifications"] if n["route"] == "page" and n["status"] == "firing"),
                  key=lambda n: n["at"])


def _slack_warnings(result: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    """Firing Slack messages of the warning receiver (critical ones ride along with a page)."""
    return [n for n in result["notifications"]
            if n["route"] == "slack" and n["status"] == "firing" and "critical" not in n["receiver"]]


def _episodes(result: Mapping[str, Any], names: frozenset[str], route: str | None = None) -> list[Mapping[str, Any]]:
    return [e for e in result["episodes"] if e["alertname"] in names and (route is None or e["route"] == route)]


def _event(result: Mapping[str, Any], event_type: str) -> Mapping[str, Any]:
    for event in result["summary"].get("events", []):
        if event["type"] == event_type:
            return event
    raise ValueError(f"the scenario has no {event_type!r} event")


def _run_days(result: Mapping[str, Any]) -> float:
    summary = result["summary"]
    return max((_time(summary["end"]) - _time(summary["start"])) / 86_400, 1 / 24)


def quiet_week(result: Mapping[str, Any]) -> Verdict:
    """0 pages; at most 1 Slack warning a day (counted per calendar day of the run)."""
    per_day = Counter(n["at"][:10] for n in _slack_warnings(result))
    worst = max(per_day.values(), default=0)
    incidents = _incidents(result)
    return Verdict(incidents == 0 and worst <= 1,
                   f"{incidents} page(s); Slack warnings: {sum(per_day.values())} in {_run_days(result):.0f} "
                   f"day(s), at most {worst} a day")


def one_page_within(minutes: float) -> Callable[[Mapping[str, Any]], Verdict]:
    """1 PagerDuty incident, its first page within `minutes` of the scenario's first event."""

    def judge(result: Mapping[str, Any]) -> Verdict:
        events = result["summary"].get("events", [])
        pages = _pages(result)
        incidents = _incidents(result)
        if not events or not pages:
            return Verdict(False, f"{incidents} page(s)")
        delay = (_time(pages[0]["at"]) - _time(events[0]["start"])) / 60
        return Verdict(incidents == 1 and 0 <= delay <= minutes,
                       f"{incidents} page(s), first {delay:.0f} min after the change")

    return judge


def warned_before_accuracy_fell(points: float) -> Callable[[Mapping[str, Any]], Verdict]:
    """A warning (or page) of any kind before accuracy fell `points` points: the drop at the first notification is
    the concept-drift event's rate times the time since it began."""

    def judge(result: Mapping[str, Any]) -> Verdict:
        event = _event(result, "concept_drift")
        rate = float(event.get("params", {}).get("accuracy_drop_per_day", 0.01))
        notified = sorted(n["at"] for n in result["notifications"]
                          if n["status"] == "firing" and n["route"] in ("slack", "page")
                          and set(n.get("alertnames", [])) - {"Watchdog"})
        if not notified:
            return Verdict(False, "no warning")
        drop = max(0.0, (_time(notified[0]) - _time(event["start"])) / 86_400 * rate) * 100
        return Verdict(drop < points, f"first warning when accuracy had fallen {drop:.1f} points")

    return judge


def exactly_one_page(result: Mapping[str, Any]) -> Verdict:
    """Exactly 1 PagerDuty incident: the related alerts ride along in it or are inhibited."""
    incidents = _incidents(result)
    names = sorted({name for n in _pages(result) for name in n.get("alertnames", [])})
    return Verdict(incidents == 1, f"{incidents} incident(s) ({', '.join(names) or 'none'})")


def no_accuracy_alert(result: Mapping[str, Any]) -> Verdict:
    """No accuracy alert at all (partial labels must not look like a wrong model)."""
    episodes = _episodes(result, ACCURACY_ALERTS)
    return Verdict(not episodes, f"{len(episodes)} accuracy alert episode(s)")


def outage_paged_once_without_drift(result: Mapping[str, Any]) -> Verdict:
    """1 page for the outage; no drift alert from the empty windows."""
    incidents = _incidents(result)
    outage = {name for n in _pages(result) for name in n.get("alertnames", [])} & OUTAGE_ALERTS
    drift = _episodes(result, DRIFT_ALERTS)
    return Verdict(incidents == 1 and bool(outage) and not drift,
                   f"{incidents} page(s) ({', '.join(sorted(outage)) or 'none for the outage'}); "
                   f"{len(drift)} drift alert episode(s)")


def no_drift_page(result: Mapping[str, Any]) -> Verdict:
    """No drift page (small windows at night must not page)."""
    drift_pages = _episodes(result, DRIFT_ALERTS, route="page")
    return Verdict(not drift_pages, f"{len(drift_pages)} drift page(s); {_incidents(result)} page(s) in all")


def one_alert_per_feature(result: Mapping[str, Any]) -> Verdict:
    """One drift alert per feature for the model, not one per replica: episodes of the same alert that differ only
    by a label naming a replica are the same problem told twice."""
    replicas_of: dict[tuple[Any, ...], set[tuple[Any, ...]]] = defaultdict(set)
    for episode in _episodes(result, DRIFT_ALERTS):
        labels = episode["labels"]
        model_labels = tuple(sorted((k, v) for k, v in labels.items() if k not in REPLICA_LABELS))
        replicas_of[model_labels].add(tuple(sorted((k, v) for k, v in labels.items() if k in REPLICA_LABELS)))
    split = [labels for labels, replicas in replicas_of.items() if len(replicas) > 1]
    features = sorted({dict(labels).get("feature_name", dict(labels).get("target", "?")) for labels in replicas_of})
    return Verdict(bool(features) and not split,
                   f"drift alerts for {', '.join(features) or 'nothing'}; {len(split)} of them split by replica")


@dataclass(frozen=True)
class Goal:
    """One row of the goals table: a shipped scenario, how it is run in full and compressed, and its judge."""

    scenario: str
    goal: str
    judge: Callable[[Mapping[str, Any]], Verdict]
    hours: float
    rps: float
    compressed_hours: float = 24
    compressed_rps: float = 2
    compressed_params: Mapping[str, Mapping[str, Any]] | None = None
    """Event name -> params replaced in the compressed run (e.g. a faster drift, so that it shows within a day)."""


GOALS: tuple[Goal, ...] = (
    Goal("seasonal", "0 pages; at most 1 Slack warning a day", quiet_week, hours=168, rps=50),
    Goal("sudden-shift", "1 page within 15 minutes of the change", one_page_within(15), hours=24, rps=50),
    Goal("gradual-concept-drift", "a warning before accuracy has fallen 5 points below the baseline's",
         warned_before_accuracy_fell(5), hours=168, rps=50,
         compressed_params={"relationship-drift": {"accuracy_drop_per_day": 0.07}}),
    Goal("incident", "exactly 1 page; the related alerts ride along in it or are inhibited", exactly_one_page,
         hours=24, rps=50),
    Goal("delayed-labels", "no accuracy alert from the partial labels", no_accuracy_alert, hours=24, rps=50),
    Goal("traffic-outage", "1 page for the outage; no drift alert from the empty windows",
         outage_paged_once_without_drift, hours=24, rps=50),
    Goal("low-traffic-night", "no drift page from small windows", no_drift_page, hours=48, rps=5,
         compressed_rps=1),
    Goal("two-replicas-drift", "one alert per feature for the model, not one per replica", one_alert_per_feature,
         hours=24, rps=50),
)
"""The table of docs/detection-quality.md, in its order."""
