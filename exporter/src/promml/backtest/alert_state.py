"""Prometheus's alert states over a range: the expression's answers in, pending and firing alerts out.

The same state machine as Prometheus 2.42's alerting rule (rules/alerting.go): a series that appears starts a
pending alert; it fires once it has been present for `for`; when it disappears a pending alert is dropped and a
firing one resolves, unless `keep_firing_for` keeps it firing that long after. A test compares every evaluation
with `promtool test rules` on the same series. Times are whole milliseconds, as in Prometheus, so no float error
decides a `for`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .rules import Rule
from .tsdb import Series

PENDING, FIRING, INACTIVE = "pending", "firing", "inactive"

RESOLVED_RETENTION_MS = 15 * 60 * 1000
"""How long Prometheus keeps a resolved alert (to keep telling Alertmanager it resolved)."""


def to_ms(seconds: float) -> int:
    return round(seconds * 1000)


@dataclass
class _Alert:
    labels: dict[str, str]
    active_at: int
    state: str = PENDING
    fired_at: int | None = None
    resolved_at: int | None = None
    keep_firing_since: int | None = None


@dataclass
class Episode:
    """One firing period of one alert (an alert name and label set): from firing to resolved."""

    alertname: str
    severity: str
    labels: dict[str, str]
    active_at: float
    start: float
    end: float | None  # None: still firing at the end of the range
    values: list[tuple[float, float]] = field(default_factory=list)
    route: str = "none"
    receivers: list[str] = field(default_factory=list)

    @property
    def key(self) -> tuple[tuple[str, str], ...]:
        return tuple(sorted(self.labels.items()))


def alert_labels(rule: Rule, series_labels: dict[str, str]) -> dict[str, str]:
    """What Prometheus labels an alert with: the series' labels without its name, the rule's labels, alertname."""
    labels = {k: v for k, v in series_labels.items() if k != "__name__"}
    labels.update(rule.labels)
    labels["alertname"] = str(rule.alert)
    return labels


def evaluate(rule: Rule, series: list[Series], times: list[float]) -> tuple[list[Episode], dict[int, list[dict]]]:
    """The episodes of one alerting rule, and the firing alerts' labels at each evaluation time (in ms)."""
    present: dict[int, dict[tuple, tuple[dict[str, str], float]]] = {}
    for item in series:
        labels = alert_labels(rule, item.labels)
        key = tuple(sorted(labels.items()))
        for at, value in item.points:
            present.setdefault(to_ms(at), {})[key] = (labels, value)
    hold, keep_for = to_ms(rule.for_seconds), to_ms(rule.keep_firing_for_seconds)
    active: dict[tuple, _Alert] = {}
    open_episodes: dict[tuple, Episode] = {}
    episodes: list[Episode] = []
    firing_at: dict[int, list[dict]] = {}
    for seconds in times:
        now = to_ms(seconds)
        results = present.get(now, {})
        for key, (labels, _) in results.items():
            alert = active.get(key)
            if alert is None or alert.state == INACTIVE:
                active[key] = _Alert(labels, active_at=now)
        for key, alert in list(active.items()):
            if key not in results:
                keep = False
                if alert.state == FIRING and keep_for > 0:
                    if alert.keep_firing_since is None:
                        alert.keep_firing_since = now
                    keep = now - alert.keep_firing_since < keep_for
                if alert.state == PENDING or (alert.resolved_at is not None
                                              and now - alert.resolved_at > RESOLVED_RETENTION_MS):
                    del active[key]
                if alert.state != INACTIVE and not keep:
                    if alert.state == FIRING:
                        open_episodes.pop(key).end = now / 1000
                    alert.state, alert.resolved_at = INACTIVE, now
                if not keep:
                    continue
            else:
                alert.keep_firing_since = None
            if alert.state == PENDING and now - alert.active_at >= hold:
                alert.state, alert.fired_at = FIRING, now
                episode = Episode(str(rule.alert), rule.severity, alert.labels, alert.active_at / 1000, now / 1000,
                                  None)
                open_episodes[key] = episode
                episodes.append(episode)
        firing = []
        for key, alert in active.items():
            if alert.state == FIRING:
                firing.append(alert.labels)
                if key in results:
                    open_episodes[key].values.append((now / 1000, results[key][1]))
        firing_at[now] = firing
    return episodes, firing_at
