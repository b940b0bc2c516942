"""The Prometheus side of the config a backtest reads: rule files, scrape and evaluation intervals.

Rules are only read here (names, expressions, intervals, `for`, labels), never evaluated: Prometheus evaluates
them (`tsdb.py`). A recording rule that reads another recording rule can only be backfilled once that one has
been, so `recording_levels` orders them by what they read.
"""

from __future__ import annotations

import glob
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

_DURATION = re.compile(r"^(?:(\d+)y)?(?:(\d+)w)?(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?(?:(\d+)ms)?$")
_UNITS = (365 * 86400, 7 * 86400, 86400, 3600, 60, 1, 0.001)

DEFAULT_EVALUATION_INTERVAL = 60.0
DEFAULT_SCRAPE_INTERVAL = 60.0
"""Prometheus's own defaults, used when prometheus.yml leaves the global interval out."""


class RulesError(ValueError):
    """A rule file or prometheus.yml cannot be used; the message says which file and why."""


def parse_duration(text: Any, where: str = "duration") -> float:
    """Seconds of a Prometheus duration such as `5m`, `1h30m` or `7d`."""
    match = _DURATION.match(str(text).strip()) if text not in (None, "") else None
    if match is None or not any(match.groups()):
        raise RulesError(f"{where}: {text!r} is not a Prometheus duration (e.g. 30s, 5m, 1h)")
    return float(sum(int(value) * unit for value, unit in zip(match.groups(), _UNITS, strict=True) if value))


@dataclass(frozen=True)
class Rule:
    group: str
    interval: float
    expr: str
    record: str | None = None
    alert: str | None = None
    for_seconds: float = 0.0
    keep_firing_for_seconds: float = 0.0
    labels: dict[str, str] = field(default_factory=dict)
    raw: dict[str, Any] = field(default_factory=dict)

    @property
    def severity(self) -> str:
        return self.labels.get("severity", "")


@dataclass(frozen=True)
class PrometheusSettings:
    scrape_interval: float = DEFAULT_SCRAPE_INTERVAL
    evaluation_interval: float = DEFAULT_EVALUATION_INTERVAL
    external_labels: dict[str, str] = field(default_factory=dict)


def load_prometheus_settings(path: str | Path | None) -> PrometheusSettings:
    """The global scrape and evaluation intervals and external labels of a prometheus.yml (defaults without one)."""
    if path is None:
        return PrometheusSettings()
    try:
        raw = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as error:
        raise RulesError(f"cannot read {path}: {error}") from None
    settings = raw.get("global") or {}
    return PrometheusSettings(
        scrape_interval=parse_duration(settings.get("scrape_interval", "1m"), f"{path}: scrape_interval"),
        evaluation_interval=parse_duration(settings.get("evaluation_interval", "1m"), f"{path}: evaluation_interval"),
        external_labels={str(k): str(v) for k, v in (settings.get("external_labels") or {}).items()},
    )


def rule_paths(patterns: list[str]) -> list[Path]:
    """The files a list of paths and globs names; a pattern matching nothing is an error."""
    found: list[Path] = []
    for pattern in patterns:
        matched = sorted(glob.glob(pattern))
        if not matched:
            raise RulesError(f"no rule file matches {pattern}")
        found.extend(Path(p) for p in matched)
    return found


def load_rules(paths: list[Path], evaluation_interval: float) -> list[Rule]:
    """Every rule of every group, in file and group order."""
    rules: list[Rule] = []
    for path in paths:
        try:
            raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        except (OSError, yaml.YAMLError) as error:
            raise RulesError(f"cannot read rule file {path}: {error}") from None
        for group in raw.get("groups") or []:
            name = str(group.get("name"))
            interval = parse_duration(group["interval"], f"{path}: group {name} interval") if "interval" in group \
                else evaluation_interval
            for item in group.get("rules") or []:
                where = f"{path}: group {name}"
                rules.append(Rule(
                    group=name, interval=interval, expr=str(item["expr"]), record=item.get("record"),
                    alert=item.get("alert"),
                    for_seconds=parse_duration(item["for"], f"{where} for") if item.get("for") else 0.0,
                    keep_firing_for_seconds=parse_duration(item["keep_firing_for"], f"{where} keep_firing_for")
                    if item.get("keep_firing_for") else 0.0,
                    labels={str(k): str(v) for k, v in (item.get("labels") or {}).items()},
                    raw=dict(item),
                ))
    return rules


def _reads(expr: str, name: str) -> bool:
    return re.search(rf"(?<![\w:]){re.escape(name)}(?![\w:])", expr) is not None


def recording_levels(rules: list[Rule]) -> list[list[Rule]]:
    """Recording rules in levels: each reads only raw series and the rules of earlier levels."""
    pending = [rule for rule in rules if rule.record]
    done: set[str] = set()
    levels: list[list[Rule]] = []
    while pending:
        names = {rule.record for rule in pending}
        level = [rule for rule in pending if not any(_reads(rule.expr, n) for n in names if n != rule.record)]
        if not level:
            raise RulesError("recording rules read each other in a cycle: "
                             + ", ".join(sorted(str(n) for n in names)))
        levels.append(level)
        done.update(str(rule.record) for rule in level)
        pending = [rule for rule in pending if rule not in level]
    return levels


def rules_file(rules: list[Rule]) -> dict[str, Any]:
    """A rule file holding `rules`, one group per (group, interval) in their order."""
    groups: dict[tuple[str, float], list[dict[str, Any]]] = {}
    for rule in rules:
        groups.setdefault((rule.group, rule.interval), []).append(rule.raw)
    return {"groups": [{"name": name, "interval": f"{interval:g}s", "rules": items}
                       for (name, interval), items in groups.items()]}
