"""What a backtest found, for a person (terminal) and for a program (`--json`): per alert, its episodes, pages,
Slack messages and time firing; each episode; and, with a scenario, how long after each event the alerts came."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from ..records import utc_timestamp
from .run import BacktestResult


def rfc3339(seconds: float | None) -> str | None:
    """RFC 3339 UTC to the second (`2026-12-01T10:00:00Z`), or None."""
    return None if seconds is None else utc_timestamp(seconds)[:19] + "Z"


def duration(seconds: float) -> str:
    seconds = round(seconds)
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    parts = [f"{days}d" if days else "", f"{hours}h" if hours else "", f"{minutes}m" if minutes else "",
             f"{secs}s" if secs or not (days or hours or minutes) else ""]
    return "".join(parts)


def per_alert(result: BacktestResult) -> dict[str, dict[str, Any]]:
    """alertname -> episodes, pages (PagerDuty notifications naming it), Slack messages naming it, firing seconds."""
    table: dict[str, dict[str, Any]] = defaultdict(lambda: {"episodes": 0, "pages": 0, "slack_messages": 0,
                                                           "firing_seconds": 0.0})
    for episode in result.episodes:
        row = table[episode.alertname]
        row["episodes"] += 1
        row["firing_seconds"] += (episode.end if episode.end is not None else result.end) - episode.start
    for notification in result.notifications:
        for name in notification.alertnames:
            if notification.route == "page" and notification.firing:
                table[name]["pages"] += 1
            elif notification.route == "slack":
                table[name]["slack_messages"] += 1
    return dict(sorted(table.items()))


def detections(result: BacktestResult, grace_seconds: float = 3600.0) -> list[dict[str, Any]]:
    """Per scenario event, the first episode of each alert that began during it (or within `grace_seconds` after
    it ended), with its delay from the event's start."""
    found = []
    for event in result.scenario.events:
        first: dict[tuple[str, str], Any] = {}
        for episode in result.episodes:
            if event.start <= episode.start <= event.end + grace_seconds:
                key = (episode.alertname, episode.severity)
                if key not in first:
                    first[key] = episode
        found.append({
            "type": event.type, "name": event.name, "start": rfc3339(event.start), "end": rfc3339(event.end),
            "params": dict(event.params), "affects": list(event.affects),
            "detections": [{"alertname": e.alertname, "severity": e.severity, "start": rfc3339(e.start),
                            "delay_seconds": e.start - event.start, "route": e.route}
                           for e in sorted(first.values(), key=lambda e: e.start)],
        })
    return found


def to_json(result: BacktestResult) -> dict[str, Any]:
    replayed = result.replay
    return {
        "episodes": [{
            "alertname": e.alertname, "severity": e.severity, "labels": e.labels, "start": rfc3339(e.start),
            "end": rfc3339(e.end), "route": e.route, "pending_since": rfc3339(e.active_at),
            "receivers": e.receivers,
        } for e in result.episodes],
        "notifications": [{
            "at": rfc3339(n.at), "receiver": n.receiver, "route": n.route, "status": n.status, "group": n.group,
            "firing": n.firing, "resolved": n.resolved, "alertnames": n.alertnames,
        } for n in result.notifications],
        "summary": {
            "scenario": result.scenario.name, "start": rfc3339(result.start), "end": rfc3339(result.end),
            "scrapes": replayed.steps, "predictions": replayed.rows,
            "pagerduty_incidents": result.incidents,
            "pages": sum(1 for n in result.notifications if n.route == "page" and n.firing),
            "slack_messages": sum(1 for n in result.notifications if n.route == "slack"),
            "notifications": len(result.notifications),
            "alerts": per_alert(result),
            "events": detections(result),
            "seconds": result.seconds,
        },
    }


def _labels_text(labels: dict[str, str]) -> str:
    shown = {k: v for k, v in labels.items() if k not in ("alertname", "severity", "model_name", "model_version")}
    return "{" + ", ".join(f'{k}="{v}"' for k, v in sorted(shown.items())) + "}"


def to_text(result: BacktestResult) -> str:
    replayed = result.replay
    lines = [f"promml backtest: {result.scenario.name}, {rfc3339(result.start)} .. {rfc3339(result.end)} "
             f"({duration(result.end - result.start)}, {replayed.steps} scrapes, {replayed.rows} predictions)", ""]
    table = per_alert(result)
    summary = to_json(result)["summary"]
    lines.append(f"{'alert':<26}{'episodes':>9}{'pages':>7}{'slack':>7}  time firing")
    for name, row in table.items():
        lines.append(f"{name:<26}{row['episodes']:>9}{row['pages']:>7}{row['slack_messages']:>7}  "
                     f"{duration(row['firing_seconds'])}")
    if not table:
        lines.append("(no alert fired)")
    lines += ["", f"PagerDuty incidents: {result.incidents}; page notifications: {summary['pages']}; "
              f"Slack messages: {summary['slack_messages']}", ""]
    if result.episodes:
        lines.append("Episodes:")
    for e in result.episodes:
        end = rfc3339(e.end) if e.end is not None else "still firing"
        lines.append(f"  {rfc3339(e.start)} .. {end}  {e.alertname} {e.severity or '-'} -> {e.route}  "
                     f"{_labels_text(e.labels)}")
    events = detections(result)
    if events:
        lines += ["", "Scenario events (detection delay from the event's start):"]
    for event in events:
        lines.append(f"  {event['type']} \"{event['name']}\" {event['start']} .. {event['end']}")
        for found in event["detections"]:
            lines.append(f"    {found['alertname']} {found['severity']} after {duration(found['delay_seconds'])} "
                         f"-> {found['route']}")
        if not event["detections"]:
            lines.append("    no alert")
    return "\n".join(lines) + "\n"
