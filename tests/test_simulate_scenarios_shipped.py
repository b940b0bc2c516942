"""Every shipped scenario simulates, and its logs are read by the real exporter without a rejected line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from promml.baseline import load_baseline
from promml.exporter.config import load_config
from promml.exporter.service import ExporterService
from promml.records import parse_timestamp
from promml.simulate import load_scenario, shipped_scenarios, simulate

EXPECTED = {
    "stationary": [],
    "seasonal": [("seasonal", "2026-01-05T00:00:00Z", "2026-01-06T00:00:00Z", ["traffic", "feature:age",
                                                                              "feature:income",
                                                                              "feature:num_accounts", "scores"])],
    "sudden-shift": [("covariate_shift", "2026-01-05T12:00:00Z", "2026-01-06T00:00:00Z",
                      ["feature:income", "scores"])],
    "gradual-covariate-drift": [("covariate_drift", "2026-01-05T02:24:00Z", "2026-01-06T00:00:00Z",
                                 ["feature:debt_ratio", "scores"])],
    "gradual-concept-drift": [("concept_drift", "2026-01-05T00:00:00Z", "2026-01-06T00:00:00Z", ["accuracy"])],
    "missing-values-spike": [("missing_values", "2026-01-05T12:00:00Z", "2026-01-05T13:00:00Z",
                              ["feature:income"])],
    "traffic-outage": [("traffic_outage", "2026-01-05T12:00:00Z", "2026-01-05T12:30:00Z", ["traffic", "server"])],
    "low-traffic-night": [("low_traffic", "2026-01-05T00:00:00Z", "2026-01-06T00:00:00Z", ["traffic"])],
    "latency-regression": [("latency_regression", "2026-01-05T12:00:00Z", "2026-01-05T14:00:00Z", ["latency"])],
    "error-burst": [("error_burst", "2026-01-05T12:00:00Z", "2026-01-05T12:30:00Z", ["errors"])],
    "delayed-labels": [("label_delay", "2026-01-05T00:00:00Z", "2026-01-06T00:00:00Z", ["labels"])],
    "incident": [("incident", "2026-01-05T12:00:00Z", "2026-01-05T16:00:00Z",
                  ["feature:income", "feature:debt_ratio", "scores", "accuracy"])],
    "two-replicas-drift": [("covariate_shift", "2026-01-05T12:00:00Z", "2026-01-06T00:00:00Z",
                            ["feature:income", "scores"])],
}


def test_every_shipped_scenario_is_listed_here() -> None:
    assert set(shipped_scenarios()) == set(EXPECTED)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_a_shipped_scenario_simulates_a_day_and_the_exporter_reads_it_all(tmp_path: Path, name: str) -> None:
    result = simulate(load_scenario(name), tmp_path, hours=24, rps=0.05, seed=11)
    document = json.loads((tmp_path / "scenario.json").read_text())
    assert document == result.document
    assert [(event["type"], event["start"], event["end"], event["affects"]) for event in document["events"]] == [
        tuple(expected) for expected in EXPECTED[name]]
    configs = [document["exporter_config"], *document["replica_exporter_configs"].values()]
    assert len(document["replicas"]) == (2 if name == "two-replicas-drift" else 1)
    now = parse_timestamp(document["end"]) - 1
    for config_file in configs:
        config = load_config(tmp_path / config_file)
        service = ExporterService(config, load_baseline(config.baseline), clock=lambda: now)
        service.read_logs()
        statuses = {key for key, count in service.record_counts.items() if count}
        assert statuses <= {("predictions", "ok"), ("feedback", "ok"), ("feedback", "unknown_prediction_id")}
    written = document["written"]
    assert sum(written["predictions"].values()) == result.predictions > 0
    assert sum(written["feedback"].values()) == result.feedback
