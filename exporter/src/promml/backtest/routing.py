"""Alertmanager's routing tree, time intervals, inhibition and grouping, played over a backtest's episodes.

Read from the same alertmanager.yml Alertmanager loads, and following Alertmanager 0.25: an alert goes down the
tree to every matching route (`continue` goes on to the next sibling); each route groups alerts by its
`group_by` labels; a group is first flushed `group_wait` after its first alert and then every `group_interval`;
a flush notifies when the group holds a firing alert not notified before, when some resolved (`send_resolved`),
or when `repeat_interval` has passed since the last notification. Inhibited alerts are left out of a flush; a
route outside its `active_time_intervals` (or inside its `mute_time_intervals`) sends nothing at that flush. A
PagerDuty incident opens with a group's first firing notification and closes with its all-resolved one.

What is not played: Prometheus's resend delay and Alertmanager's 30 s clean-up of empty groups (an alert within
30 s of a group emptying would join its schedule here a new group starts), silences, and delivery failures.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml

from .alert_state import Episode
from .rules import parse_duration

DEFAULTS = {"group_wait": 30.0, "group_interval": 300.0, "repeat_interval": 4 * 3600.0}
"""Alertmanager's defaults for a root route that leaves them out."""

SEND_RESOLVED_DEFAULT = {"pagerduty_configs": True, "webhook_configs": True, "opsgenie_configs": True,
                         "victorops_configs": True, "slack_configs": False, "email_configs": False}

PAGE_INTEGRATIONS = ("pagerduty_configs", "opsgenie_configs", "victorops_configs")
"""Integrations that page a person (PagerDuty and its kind); any other integration counts as a Slack-like message."""

WEEKDAYS = ("sunday", "monday", "tuesday", "wednesday", "thursday", "friday", "saturday")
MONTHS = ("january", "february", "march", "april", "may", "june", "july", "august", "september", "october",
          "november", "december")

_MATCHER = re.compile(r'^\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*(=~|!~|!=|=)\s*(.*?)\s*$')


class RoutingError(ValueError):
    """alertmanager.yml cannot be used; the message says where."""


@dataclass(frozen=True)
class Matcher:
    name: str
    op: str
    value: str

    def matches(self, labels: dict[str, str]) -> bool:
        actual = labels.get(self.name, "")
        if self.op == "=":
            return actual == self.value
        if self.op == "!=":
            return actual != self.value
        found = re.fullmatch(self.value, actual) is not None
        return found if self.op == "=~" else not found


def parse_matcher(text: str) -> Matcher:
    match = _MATCHER.match(text)
    if match is None:
        raise RoutingError(f"matcher {text!r}: expected name=\"value\" (or !=, =~, !~)")
    name, op, value = match.groups()
    if len(value) >= 2 and value[0] == value[-1] == '"':
        value = bytes(value[1:-1], "utf-8").decode("unicode_escape")
    return Matcher(name, op, value)


def _matchers(raw: dict[str, Any], prefix: str = "") -> list[Matcher]:
    found = [parse_matcher(str(m)) for m in raw.get(f"{prefix}matchers") or []]
    found += [Matcher(str(k), "=", str(v)) for k, v in (raw.get(f"{prefix}match") or {}).items()]
    found += [Matcher(str(k), "=~", str(v)) for k, v in (raw.get(f"{prefix}match_re") or {}).items()]
    return found


@dataclass
class Route:
    receiver: str
    group_by: tuple[str, ...] | None  # None: group by every label (`...`)
    group_wait: float
    group_interval: float
    repeat_interval: float
    matchers: list[Matcher] = field(default_factory=list)
    cont: bool = False
    routes: list[Route] = field(default_factory=list)
    active_time_intervals: tuple[str, ...] = ()
    mute_time_intervals: tuple[str, ...] = ()
    path: str = "root"

    def match(self, labels: dict[str, str]) -> list[Route]:
        """Every route an alert with these labels is sent to, as Alertmanager's Route.Match."""
        if not all(m.matches(labels) for m in self.matchers):
            return []
        found: list[Route] = []
        for child in self.routes:
            matched = child.match(labels)
            found.extend(matched)
            if matched and not child.cont:
                break
        return found or [self]

    def group_key(self, labels: dict[str, str]) -> tuple[str, tuple[tuple[str, str], ...]]:
        names = sorted(labels) if self.group_by is None else self.group_by
        return self.path, tuple((name, labels.get(name, "")) for name in names)


def _route(raw: dict[str, Any], parent: Route | None, path: str) -> Route:
    def inherited(key: str) -> float:
        if key in raw:
            return parse_duration(raw[key], f"route {path} {key}")
        return getattr(parent, key) if parent is not None else DEFAULTS[key]

    group_by: tuple[str, ...] | None
    if "group_by" in raw:
        names = [str(n) for n in raw["group_by"] or []]
        group_by = None if "..." in names else tuple(names)
    else:
        group_by = parent.group_by if parent is not None else ()
    receiver = raw.get("receiver") or (parent.receiver if parent is not None else None)
    if receiver is None:
        raise RoutingError("the root route has no receiver")
    route = Route(
        receiver=str(receiver), group_by=group_by, group_wait=inherited("group_wait"),
        group_interval=inherited("group_interval"), repeat_interval=inherited("repeat_interval"),
        matchers=_matchers(raw), cont=bool(raw.get("continue", False)),
        active_time_intervals=tuple(raw.get("active_time_intervals") or ()),
        mute_time_intervals=tuple(raw.get("mute_time_intervals") or ()), path=path,
    )
    route.routes = [_route(child, route, f"{path}.{i}") for i, child in enumerate(raw.get("routes") or [])]
    return route


def _ranges(items: list[Any], names: tuple[str, ...] = ()) -> list[tuple[int, int]]:
    def number(text: str) -> int:
        text = text.strip().lower()
        return names.index(text) if text in names else int(text)

    found = []
    for item in items:
        low, _, high = str(item).partition(":")
        found.append((number(low), number(high or low)))
    return found


@dataclass
class TimeInterval:
    """One entry of a `time_intervals` list: every field given must match (a missing one matches anything)."""

    times: list[tuple[int, int]] | None
    weekdays: list[tuple[int, int]] | None
    days_of_month: list[tuple[int, int]] | None
    months: list[tuple[int, int]] | None
    years: list[tuple[int, int]] | None
    zone: ZoneInfo

    def contains(self, at: float) -> bool:
        moment = datetime.fromtimestamp(at, self.zone)
        if self.times is not None:
            minute = moment.hour * 60 + moment.minute
            if not any(start <= minute < end for start, end in self.times):
                return False
        if self.weekdays is not None:
            day = (moment.weekday() + 1) % 7  # Sunday is 0, as in the config's names
            if not any(low <= day <= high for low, high in self.weekdays):
                return False
        if self.days_of_month is not None:
            import calendar

            days = calendar.monthrange(moment.year, moment.month)[1]
            if not any((low if low > 0 else days + low + 1) <= moment.day <= (high if high > 0 else days + high + 1)
                       for low, high in self.days_of_month):
                return False
        if self.months is not None and not any(low <= moment.month <= high for low, high in self.months):
            return False
        return self.years is None or any(low <= moment.year <= high for low, high in self.years)


def _clock_minutes(text: str) -> int:
    hours, _, minutes = str(text).partition(":")
    return int(hours) * 60 + int(minutes)


def _time_interval(raw: dict[str, Any]) -> TimeInterval:
    try:
        zone = ZoneInfo(str(raw.get("location", "UTC")))
    except ZoneInfoNotFoundError:
        raise RoutingError(f"time interval location {raw.get('location')!r}: unknown time zone") from None
    months = [(_month(low), _month(high or low)) for low, _, high in (str(m).partition(":") for m in raw["months"])] \
        if raw.get("months") else None
    return TimeInterval(
        times=[(_clock_minutes(t["start_time"]), _clock_minutes(t["end_time"])) for t in raw["times"]]
        if raw.get("times") else None,
        weekdays=_ranges(raw["weekdays"], WEEKDAYS) if raw.get("weekdays") else None,
        days_of_month=_ranges(raw["days_of_month"]) if raw.get("days_of_month") else None,
        months=months,
        years=_ranges(raw["years"]) if raw.get("years") else None,
        zone=zone,
    )


def _month(text: str) -> int:
    text = text.strip().lower()
    return MONTHS.index(text) + 1 if text in MONTHS else int(text)


@dataclass(frozen=True)
class InhibitRule:
    source: list[Matcher]
    target: list[Matcher]
    equal: tuple[str, ...]

    def inhibits(self, source: dict[str, str], target: dict[str, str]) -> bool:
        return (all(m.matches(source) for m in self.source) and all(m.matches(target) for m in self.target)
                and all(source.get(n, "") == target.get(n, "") for n in self.equal))


@dataclass
class AlertmanagerConfig:
    route: Route
    receivers: dict[str, dict[str, Any]]
    time_intervals: dict[str, list[TimeInterval]]
    inhibit_rules: list[InhibitRule]

    def kind(self, receiver: str) -> str:
        """`page` for a receiver with a paging integration, `slack` for any other integration, `none` without."""
        integrations = [k for k, v in self.receivers.get(receiver, {}).items() if k.endswith("_configs") and v]
        if any(k in PAGE_INTEGRATIONS for k in integrations):
            return "page"
        return "slack" if integrations else "none"

    def send_resolved(self, receiver: str) -> bool:
        configs = [(k, c) for k, v in self.receivers.get(receiver, {}).items() if k.endswith("_configs")
                   for c in v or []]
        return any(c.get("send_resolved", SEND_RESOLVED_DEFAULT.get(k, True)) for k, c in configs)

    def in_intervals(self, names: tuple[str, ...], at: float) -> bool:
        return any(interval.contains(at) for name in names for interval in self.time_intervals.get(name, []))


def load_alertmanager_config(path: str | Path) -> AlertmanagerConfig:
    try:
        raw = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as error:
        raise RoutingError(f"cannot read {path}: {error}") from None
    if "route" not in raw:
        raise RoutingError(f"{path}: no route")
    intervals: dict[str, list[TimeInterval]] = {}
    for item in (raw.get("time_intervals") or []) + (raw.get("mute_time_intervals") or []):
        intervals[str(item["name"])] = [_time_interval(t) for t in item.get("time_intervals") or []]
    receivers = {str(r["name"]): r for r in raw.get("receivers") or []}
    route = _route(raw["route"], None, "root")
    inhibit = [InhibitRule(_matchers(r, "source_"), _matchers(r, "target_"), tuple(r.get("equal") or ()))
               for r in raw.get("inhibit_rules") or []]
    config = AlertmanagerConfig(route, receivers, intervals, inhibit)
    for name in _receivers_used(route):
        if name not in receivers:
            raise RoutingError(f"{path}: route sends to receiver {name!r}, which is not defined")
    return config


def _receivers_used(route: Route) -> set[str]:
    return {route.receiver}.union(*(_receivers_used(child) for child in route.routes))


@dataclass
class Notification:
    """One message Alertmanager would send: to which receiver, when, for which group, how many alerts."""

    receiver: str
    route: str  # page | slack | none
    at: float
    group: dict[str, str]
    firing: int
    resolved: int
    alertnames: list[str]

    @property
    def status(self) -> str:
        return "firing" if self.firing else "resolved"


@dataclass
class _Member:
    episode: Episode
    labels: dict[str, str]


def _firing(episode: Episode, at: float) -> bool:
    return episode.start <= at and (episode.end is None or at < episode.end)


def route_episodes(config: AlertmanagerConfig, episodes: list[Episode], end: float,
                   external_labels: dict[str, str] | None = None) -> tuple[list[Notification], int]:
    """Play the episodes through Alertmanager until `end`: the notifications it sends, and the PagerDuty
    incidents they open. Sets each episode's `route` (`page`, `slack` or `none`: what reached a person about it)
    and `receivers`."""
    external = external_labels or {}
    sent_labels = [{**external, **episode.labels} for episode in episodes]

    def inhibited(target: dict[str, str], at: float) -> bool:
        return any(rule.inhibits(sent_labels[i], target) for rule in config.inhibit_rules
                   for i, source in enumerate(episodes) if _firing(source, at) and sent_labels[i] is not target)

    groups: dict[tuple[str, tuple], list[_Member]] = {}
    routes: dict[str, Route] = {}
    for episode, labels in sorted(zip(episodes, sent_labels, strict=True), key=lambda pair: pair[0].start):
        for route in config.route.match(labels):
            routes[route.path] = route
            groups.setdefault(route.group_key(labels), []).append(_Member(episode, labels))
    notifications: list[Notification] = []
    incidents = 0
    reached: dict[int, set[str]] = {}
    for (path, key), members in groups.items():
        route = routes[path]
        kind, resolved_too = config.kind(route.receiver), config.send_resolved(route.receiver)
        pending = sorted(members, key=lambda m: m.episode.start)
        last: tuple[frozenset, frozenset, float] | None = None  # the notification log's entry
        incident_open = False
        while pending:
            group: list[_Member] = []
            flush = pending[0].episode.start + route.group_wait
            while True:
                group += [m for m in pending if m.episode.start <= flush and m not in group]
                pending = [m for m in pending if m not in group]
                if flush > end:
                    pending = []
                    break
                shown = [m for m in group if not inhibited(m.labels, flush)]
                firing = frozenset(m.episode.key for m in shown if _firing(m.episode, flush))
                resolved = frozenset(m.episode.key for m in shown if not _firing(m.episode, flush))
                active = (not route.active_time_intervals or config.in_intervals(route.active_time_intervals, flush))
                active = active and not config.in_intervals(route.mute_time_intervals, flush)
                if active and _needs_update(last, firing, resolved, resolved_too, route.repeat_interval, flush):
                    last = (firing, resolved, flush)
                    if kind != "none" and (firing or resolved_too):  # a receiver with no integration sends nothing
                        names = sorted({m.episode.alertname for m in shown})
                        notifications.append(Notification(route.receiver, kind, flush, dict(key), len(firing),
                                                          len(resolved), names))
                        for m in shown:
                            if m.episode.key in firing:
                                reached.setdefault(id(m.episode), set()).add(route.receiver)
                    if kind == "page":
                        if firing and not incident_open:
                            incidents += 1
                        incident_open = bool(firing)
                group = [m for m in group if _firing(m.episode, flush)]  # resolved alerts leave after a flush
                if not group:
                    break
                flush += route.group_interval
    for episode in episodes:
        receivers = sorted(reached.get(id(episode), set()))
        episode.receivers = receivers
        kinds = {config.kind(r) for r in receivers}
        episode.route = "page" if "page" in kinds else "slack" if "slack" in kinds else "none"
    notifications.sort(key=lambda n: (n.at, n.receiver))
    return notifications, incidents


def _needs_update(last: tuple[frozenset, frozenset, float] | None, firing: frozenset[int],
                  resolved: frozenset[int], send_resolved: bool, repeat: float, now: float) -> bool:
    """Alertmanager's DedupStage.needsUpdate."""
    if last is None:
        return bool(firing)
    last_firing, last_resolved, last_at = last
    if not firing <= last_firing:
        return True
    if not firing:
        return bool(last_firing)
    if send_resolved and not resolved <= last_resolved:
        return True
    return last_at < now - repeat
