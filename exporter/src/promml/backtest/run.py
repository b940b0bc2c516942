"""One backtest from end to end: replay the logs, let Prometheus evaluate the rules, play the alerts' states and
Alertmanager's routing. `cli.py` is its command line; the steps live in their own modules."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from pathlib import Path

from .alert_state import Episode, evaluate
from .replay import BacktestError, Progress, ReplayResult, Replica, replay
from .routing import AlertmanagerConfig, Notification, route_episodes
from .rules import PrometheusSettings, Rule
from .scenario import Scenario
from .tsdb import PrometheusEngine, Series, create_blocks


@dataclass
class Signal:
    """What an alert watches, for the plot: the series of the expression's left side, and the threshold."""

    alertname: str
    expr: str
    threshold: float | None
    severity: str
    series: list[Series] = field(default_factory=list)


@dataclass
class BacktestResult:
    start: float
    end: float
    replay: ReplayResult
    episodes: list[Episode]
    notifications: list[Notification]
    incidents: int
    scenario: Scenario
    alert_rules: list[Rule]
    signals: list[Signal] = field(default_factory=list)
    volume: list[Series] = field(default_factory=list)
    seconds: dict[str, float] = field(default_factory=dict)
    """Wall time of each stage: replay, blocks, backfill, alerts, routing."""


def _aligned(at: float, interval: float) -> float:
    return math.ceil(at / interval) * interval


def _split_signal(expr: str) -> tuple[str, float] | None:
    """The left side and threshold of an expression `SIGNAL > NUMBER [and|unless|or ...]` (the shipped form); None
    for any other shape. Only cuts text: Prometheus evaluates the left side."""
    import re

    head = re.split(r"\s(?:and|unless|or)\s", " ".join(expr.split()), maxsplit=1)[0]
    match = re.fullmatch(r"(.+?)\s*(?:>|<|>=|<=)\s*(-?[0-9.]+(?:e-?[0-9]+)?)", head.strip())
    if match is None or match.group(1).count("(") != match.group(1).count(")"):
        return None
    return match.group(1), float(match.group(2))


def run_backtest(replicas: list[Replica], scenario: Scenario, rules: list[Rule], settings: PrometheusSettings,
                 alertmanager: AlertmanagerConfig, work_dir: Path, *, start: float, end: float,
                 warmup_seconds: float = 0.0, recompute_interval: float | None = None,
                 progress: Progress | None = None) -> BacktestResult:
    """Replay from `start - warmup_seconds` (the windows fill), judge the alerts from `start` to `end`."""
    if end <= start:
        raise BacktestError(f"empty range: --from must be before --to (got {end - start:g}s)")
    interval = settings.scrape_interval
    replay_start = _aligned(start - warmup_seconds, interval)
    seconds: dict[str, float] = {}
    clock = time.monotonic()

    def lap(stage: str) -> None:
        nonlocal clock
        now = time.monotonic()
        seconds[stage] = round(now - clock, 3)
        clock = now

    samples = work_dir / "samples.om"
    replayed = replay(replicas, scenario, samples, start=replay_start, end=end, scrape_interval=interval,
                      recompute_interval=recompute_interval, progress=progress)
    if replayed.rows == 0:
        model = replicas[0].config
        raise BacktestError(f"no prediction of model {model.model_name} {model.model_version} in the logs between "
                            "the start and the end of the range: check --from/--to and the logs' model_name and "
                            "model_version")
    lap("replay")
    data = work_dir / "data"
    data.mkdir(exist_ok=True)
    _say(progress, f"TSDB blocks from {replayed.samples} samples of {replayed.series} series")
    create_blocks(samples, data)
    lap("blocks")
    episodes: list[Episode] = []
    alert_rules = [rule for rule in rules if rule.alert]
    signals: list[Signal] = []
    with PrometheusEngine(data, work_dir) as engine:
        _say(progress, "backfilling the recording rules")
        engine.backfill(rules, replay_start, end)
        lap("backfill")
        _say(progress, f"evaluating {len(alert_rules)} alerting rules")
        for rule in alert_rules:
            first = _aligned(start, rule.interval)
            times = [first + i * rule.interval for i in range(int((end - first) // rule.interval) + 1)]
            found, _ = evaluate(rule, engine.query_range(rule.expr, first, end, rule.interval), times)
            episodes.extend(found)
        lap("alerts")
        fired = {episode.alertname for episode in episodes if episode.severity in ("critical", "warning")}
        for rule in alert_rules:
            split = _split_signal(rule.expr) if rule.alert in fired else None
            if split is not None:
                step = max(rule.interval, (end - start) / 2000)
                signals.append(Signal(str(rule.alert), split[0], split[1], rule.severity,
                                      engine.query_range(split[0], start, end, step)))
        volume = engine.query_range("sum by (model_name, model_version) (rate(ml_predictions_total[5m]))", start,
                                    end, max(interval, (end - start) / 2000))
        lap("plot_queries")
    notifications, incidents = route_episodes(alertmanager, episodes, end, settings.external_labels)
    episodes.sort(key=lambda e: (e.start, e.alertname))
    lap("routing")
    return BacktestResult(start, end, replayed, episodes, notifications, incidents, scenario, alert_rules, signals,
                          volume, seconds)


def _say(progress: Progress | None, text: str) -> None:
    if progress is not None and progress.stream is not None:
        progress.stream.write(f"promml backtest: {text}\n")
        progress.stream.flush()
