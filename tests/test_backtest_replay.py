"""The replay: at each scrape every exporter has read exactly the lines stamped up to then, and every replica's
exporter and model server are scraped under their own `job` and `instance`."""

from __future__ import annotations

import re
from pathlib import Path

from backtest_logs import START, write_scenario

from promml.backtest.replay import Replica, replay
from promml.backtest.scenario import Event, Scenario
from promml.baseline import load_baseline
from promml.exporter.config import load_config

SAMPLE = re.compile(r'^(\w+)\{(.*)\} (\S+) (\S+)$')


def samples(path: Path) -> list[tuple[str, dict[str, str], float, float]]:
    found = []
    for line in path.read_text().splitlines():
        match = SAMPLE.match(line)
        if match:
            labels = dict(re.findall(r'(\w+)="([^"]*)"', match.group(2)))
            found.append((match.group(1), labels, float(match.group(3)), float(match.group(4))))
    return found


def test_two_replicas_read_their_own_lines_up_to_each_scrape(tmp_path: Path) -> None:
    replicas = []
    for name, rps in (("a", 1.0), ("b", 2.0)):
        config = load_config(write_scenario(tmp_path / name, hours=0.1, rps=rps, shift_at=None))
        replicas.append(Replica(name, config, load_baseline(config.baseline)))
    outage = Event("traffic_outage", "down", START + 120, START + 180, {"server_down": True}, replicas=("b",))
    result = replay(replicas, Scenario(events=(outage,)), tmp_path / "samples.om", start=START, end=START + 300,
                    scrape_interval=15)
    assert result.steps == 21
    found = samples(tmp_path / "samples.om")
    read = {(labels["instance"], at): value for name, labels, value, at in found
            if name == "ml_exporter_records_total" and labels["log"] == "predictions" and labels["status"] == "ok"}
    for at in (START, START + 15, START + 150, START + 300):
        # lines are 1/rps apart from START: those stamped at or before `at`
        assert read[("a-exporter:9102", at)] == int(at - START) * 1 + 1
        assert read[("b-exporter:9102", at)] == int(at - START) * 2 + 1
    predicted = {(labels["instance"], at): value for name, labels, value, at in found
                 if name == "ml_predictions_total"}
    assert predicted[("a:8000", START + 300)] == 301
    up = {(labels["job"], labels["instance"], at): value for name, labels, value, at in found if name == "up"}
    assert up[("model-server", "b:8000", START + 150)] == 0.0  # b's server is down from 120 s to 180 s
    assert up[("model-server", "a:8000", START + 150)] == 1.0
    assert up[("promml-exporter", "b-exporter:9102", START + 150)] == 1.0
    assert ("b:8000", START + 150) not in predicted  # a target that is down has no other sample
    assert {labels["job"] for name, labels, _, _ in found} == {"promml-exporter", "model-server"}
