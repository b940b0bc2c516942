"""Grafana dashboard queries as plain PromQL, so tests can check them offline and run them against a Prometheus.

Grafana substitutes its variables (`$model`, `${version}`, `$__rate_interval`, ...) before a query reaches
Prometheus; `render_query` does the same with fixed values, and fails on a variable it does not know rather
than sending `$typo` to Prometheus, where it would only show up as a parse error.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

_VARIABLE = re.compile(r"\$\{(?P<braced>\w+)(?::(?P<format>\w+))?\}|\[\[(?P<old>\w+)\]\]|\$(?P<plain>\w+)")
_DURATION = re.compile(r"(?P<value>\d+(?:\.\d+)?)(?P<unit>ms|s|m|h|d|w|y)")
_SECONDS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800, "y": 31536000}

# Tokens that look like metric names but are not: PromQL keywords and set/grouping modifiers.
_KEYWORDS = frozenset({
    "and", "or", "unless", "by", "without", "on", "ignoring", "group_left", "group_right", "bool", "offset",
    "inf", "nan",
})
_STRING = re.compile(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'|`[^`]*`')
_MATCHERS = re.compile(r"\{[^{}]*\}")
_RANGE = re.compile(r"\[[^\[\]]*\]")
_GROUPING = re.compile(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^()]*\)")
_IDENTIFIER = re.compile(r"(?<![\w.:])[a-zA-Z_:][a-zA-Z0-9_:]*")


def iter_panels(panels: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    """Every panel, including those nested in (collapsed) rows, in dashboard order."""
    for panel in panels:
        yield panel
        yield from iter_panels(panel.get("panels", []))


def dashboard_queries(dashboard: dict[str, Any]) -> list[tuple[str, str]]:
    """(panel title, expr) for every target of every panel that has a PromQL `expr`, hidden targets included."""
    return [
        (panel.get("title", ""), target["expr"])
        for panel in iter_panels(dashboard.get("panels", []))
        for target in panel.get("targets", [])
        if target.get("expr")
    ]


def duration_seconds(duration: str) -> float:
    """Seconds in a Prometheus duration such as `1m`, `90s` or `1h30m`."""
    parts = list(_DURATION.finditer(duration))
    if not parts or "".join(part.group(0) for part in parts) != duration:
        raise ValueError(f"not a Prometheus duration: {duration!r}")
    return sum(float(part["value"]) * _SECONDS[part["unit"]] for part in parts)


_OFFSET = re.compile(r"\boffset\s+(?P<duration>(?:\d+(?:ms|[smhdwy]))+)")


def shorten_offsets(expr: str, factor: float) -> str:
    """`expr` with every `offset <duration>` divided by `factor` (e.g. 3600 turns `offset 1d` into `offset 24s`).

    For tests on a freshly started Prometheus: a comparison with "the same time yesterday" can only be run against
    minutes of history by moving "yesterday" that much closer. Range selectors are left as they are: they return
    whatever history there is.
    """

    def shorter(match: re.Match[str]) -> str:
        return f"offset {max(1, round(duration_seconds(match['duration']) / factor))}s"

    return _OFFSET.sub(shorter, expr)


def render_query(
    expr: str, *, model: str, version: str, rate_interval: str, interval: str | None = None, time_range: str = "1h"
) -> str:
    """`expr` with Grafana's variables replaced, as Grafana would send it for one model and version.

    `$__interval` defaults to `rate_interval` (Grafana's is the step, never longer than the rate interval);
    `time_range` stands for the dashboard's time range (`$__range`).
    """
    interval = interval or rate_interval
    values = {
        "model": model,
        "version": version,
        "__rate_interval": rate_interval,
        "__interval": interval,
        "__range": time_range,
        "__rate_interval_ms": f"{duration_seconds(rate_interval) * 1000:.0f}",
        "__interval_ms": f"{duration_seconds(interval) * 1000:.0f}",
        "__range_s": f"{duration_seconds(time_range):.0f}",
        "__range_ms": f"{duration_seconds(time_range) * 1000:.0f}",
    }

    def substitute(match: re.Match[str]) -> str:
        name = match["braced"] or match["old"] or match["plain"]
        if name not in values:
            raise ValueError(f"unknown dashboard variable ${name} in {expr!r}")
        return values[name]

    return _VARIABLE.sub(substitute, expr)


def metric_names(expr: str) -> set[str]:
    """Metric names an expression selects (functions, keywords, label names and strings are not names)."""
    text = _STRING.sub('""', expr)
    text = _MATCHERS.sub("", text)
    text = _RANGE.sub("", text)
    text = _GROUPING.sub("", text)
    names = set()
    for match in _IDENTIFIER.finditer(text):
        following = text[match.end():].lstrip()
        if following.startswith("("):
            continue  # a function or an aggregation
        if match.group(0).lower() in _KEYWORDS:
            continue
        names.add(match.group(0))
    return names
