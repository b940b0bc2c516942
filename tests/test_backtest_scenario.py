"""scenario.json as `promml simulate` writes it: events, model-side facts, and clear errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from promml.backtest.cli import per_replica_configs
from promml.backtest.scenario import ScenarioError, load_scenario, parse_scenario
from promml.records import parse_timestamp

DOCUMENT = {
    "scenario": "incident", "seed": 7, "rps": 50.0, "start": "2026-01-05T00:00:00Z", "end": "2026-01-06T00:00:00Z",
    "model_name": "credit-risk", "model_version": "1.0.0", "replicas": ["replica-0", "replica-1"],
    "log_files": {"predictions": ["logs/predictions-replica-0.jsonl"], "feedback": []},
    "exporter_config": "exporter.yml",
    "replica_exporter_configs": {"replica-0": "exporter-replica-0.yml", "replica-1": "exporter-replica-1.yml"},
    "events": [
        {"type": "latency_regression", "name": "slow", "start": "2026-01-05T10:00:00Z",
         "end": "2026-01-05T11:00:00Z", "params": {"p95_seconds": 0.9, "median_seconds": 0.3},
         "affects": ["latency"]},
        {"type": "error_burst", "name": "errors", "start": "2026-01-05T12:00:00Z", "end": "2026-01-05T12:30:00Z",
         "params": {"error_rate": 0.25}, "affects": ["errors"], "replicas": ["replica-1"]},
        {"type": "traffic_outage", "name": "down", "start": "2026-01-05T14:00:00Z", "end": "2026-01-05T14:30:00Z",
         "params": {"server_down": True}, "affects": ["traffic", "server"]},
        {"type": "traffic_outage", "name": "quiet", "start": "2026-01-05T16:00:00Z", "end": "2026-01-05T16:30:00Z",
         "params": {"server_down": False}, "affects": ["traffic"]},
    ],
    "model_side": {"latency": {"median_seconds": 0.02, "p95_seconds": 0.06}, "error_rate": 0.001,
                   "batch_size_rows": 1},
}


def at(text: str) -> float:
    return parse_timestamp(f"2026-01-05T{text}Z")


def test_model_side_facts_follow_the_events() -> None:
    scenario = parse_scenario(DOCUMENT)
    assert (scenario.name, scenario.seed, scenario.batch_size_rows) == ("incident", 7, 1)
    assert scenario.latency_at(at("09:59:59")) == (0.02, 0.06)
    assert scenario.latency_at(at("10:00:00")) == (0.3, 0.9)
    assert scenario.latency_at(at("11:00:00")) == (0.02, 0.06)  # the end is excluded
    assert scenario.error_rate_at(at("12:10:00"), "replica-1") == 0.25
    assert scenario.error_rate_at(at("12:10:00"), "replica-0") == 0.001  # the burst is replica-1's only
    assert scenario.server_down_at(at("14:00:00"), "replica-0")
    assert not scenario.server_down_at(at("16:10:00"), "replica-0")  # no traffic, server up
    assert [e.name for e in scenario.events] == ["slow", "errors", "down", "quiet"]


def test_one_exporter_per_replica_when_given_the_config_that_reads_every_log(tmp_path: Path) -> None:
    scenario = parse_scenario(DOCUMENT)
    assert per_replica_configs([str(tmp_path / "exporter.yml")], scenario, tmp_path) == [
        str(tmp_path / "exporter-replica-0.yml"), str(tmp_path / "exporter-replica-1.yml")]
    assert per_replica_configs([str(tmp_path / "mine.yml")], scenario, tmp_path) == [str(tmp_path / "mine.yml")]


@pytest.mark.parametrize(("change", "message"), [
    ({"events": [{"type": "error_burst", "start": "2026-01-05T12:00:00Z"}]}, "events[0]: missing 'end'"),
    ({"events": [{"type": "x", "start": "noon", "end": "2026-01-05T12:00:00Z"}]},
     "events[0].start: timestamp 'noon' is not RFC 3339"),
    ({"events": "none"}, "events: expected a list"),
    ({"model_side": {"error_rate": "high"}}, "model_side: expected numbers"),
])
def test_bad_scenarios_say_what_is_wrong(change: dict, message: str) -> None:
    with pytest.raises(ScenarioError, match=message.replace("[", r"\[").replace("]", r"\]")):
        parse_scenario({**DOCUMENT, **change})


def test_an_unreadable_file_is_a_scenario_error(tmp_path: Path) -> None:
    (tmp_path / "scenario.json").write_text("{not json")
    with pytest.raises(ScenarioError, match="is not valid JSON"):
        load_scenario(tmp_path / "scenario.json")
    (tmp_path / "ok.json").write_text(json.dumps({}))
    assert load_scenario(tmp_path / "ok.json").events == ()
