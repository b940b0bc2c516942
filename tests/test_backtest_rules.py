"""What the backtest reads of the Prometheus config: durations, intervals, rules and their backfill order."""

from __future__ import annotations

from pathlib import Path

import pytest

from promml.backtest.rules import (
    RulesError,
    load_prometheus_settings,
    load_rules,
    parse_duration,
    recording_levels,
    rule_paths,
)


def test_durations_read_as_prometheus_writes_them() -> None:
    assert parse_duration("15s") == 15
    assert parse_duration("1h30m") == 5400
    assert parse_duration("7d") == 7 * 86400
    assert parse_duration("1w") == 7 * 86400
    assert parse_duration("250ms") == 0.25
    with pytest.raises(RulesError, match="not a Prometheus duration"):
        parse_duration("5 minutes")


def test_the_shipped_config_and_rules(repo_root: Path) -> None:
    settings = load_prometheus_settings(repo_root / "prometheus" / "prometheus.yml")
    assert (settings.scrape_interval, settings.evaluation_interval) == (15, 15)
    assert settings.external_labels == {"monitor": "promml"}
    rules = load_rules(rule_paths([str(repo_root / "prometheus" / "rules" / "*.yml")]), settings.evaluation_interval)
    levels = recording_levels(rules)
    recorded = [str(rule.record) for level in levels for rule in level]
    assert sorted(recorded) == sorted(str(rule.record) for rule in rules if rule.record)
    position = {name: index for index, level in enumerate(levels) for name in (str(r.record) for r in level)}
    for level in levels:  # every rule reads only raw series and rules of earlier levels
        for rule in level:
            for name, index in position.items():
                if name != rule.record and name in rule.expr.replace(f"{rule.record}", ""):
                    assert index < position[str(rule.record)], (rule.record, name)
    assert position["model:ml_prediction_errors_per_calls:ratio_rate5m"] > \
        position["model:ml_prediction_errors:rate5m"]
    assert any(rule.alert == "Watchdog" for rule in rules)


def test_a_missing_rule_file_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(RulesError, match="no rule file matches"):
        rule_paths([str(tmp_path / "*.yml")])
