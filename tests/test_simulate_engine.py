"""The simulation engine: deterministic per seed, read by the real exporter without a rejected line, and each event
has the effect it claims, measured with promml's own statistics on the written logs."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from promml.baseline import load_baseline
from promml.exporter.config import load_config
from promml.exporter.service import ExporterService
from promml.records import parse_feedback, parse_prediction, parse_timestamp
from promml.simulate import ScenarioError, load_scenario, simulate
from promml.simulate.engine import DEFAULT_START, parse_start
from promml.simulate.scenario import parse_scenario
from promml.stats.drift import psi

START = parse_start(DEFAULT_START)


def scenario_of(events: list[dict], **top: object):
    return parse_scenario({"description": "a test scenario", "events": events, **top}, "test", "test.yml")


def predictions_of(out: Path, name: str = "predictions.jsonl") -> list:
    return [parse_prediction(json.loads(line)) for line in (out / "logs" / name).read_text().splitlines()]


def feedback_of(out: Path, name: str = "feedback.jsonl") -> list:
    return [parse_feedback(json.loads(line)) for line in (out / "logs" / name).read_text().splitlines()]


def feature_psi(out: Path, rows: list, feature: str) -> float:
    """PSI of `feature` in `rows` against the run's baseline, binned as the exporter bins it."""
    reference = load_baseline(out / "baseline.json").numeric[feature]
    values = np.array([row.features[feature] for row in rows if row.features[feature] is not None], dtype=float)
    counts = np.bincount(reference.bin_index(values), minlength=reference.ref_ratios.size)
    return psi(reference.ref_ratios, counts)


def accuracy(rows: list, labels: list) -> float:
    truth = {label.prediction_id: label.label for label in labels}
    pairs = [(row.prediction, truth[row.prediction_id]) for row in rows if row.prediction_id in truth]
    return float(np.mean([prediction == label for prediction, label in pairs]))


def test_the_same_seed_writes_the_same_bytes_and_another_seed_does_not(tmp_path: Path) -> None:
    scenario = load_scenario("sudden-shift")
    outs = {}
    for name, seed in (("a", 7), ("b", 7), ("c", 8)):
        simulate(scenario, tmp_path / name, hours=0.5, rps=5, seed=seed)
        outs[name] = {path.name: path.read_bytes() for path in sorted((tmp_path / name).rglob("*")) if path.is_file()}
    assert outs["a"] == outs["b"]
    assert outs["a"]["predictions.jsonl"] != outs["c"]["predictions.jsonl"]
    assert set(outs["a"]) == {"predictions.jsonl", "feedback.jsonl", "baseline.json", "exporter.yml",
                              "scenario.json"}


def test_the_real_exporter_reads_every_line_and_no_line_is_rejected(tmp_path: Path) -> None:
    result = simulate(load_scenario("sudden-shift"), tmp_path, hours=1, rps=10, seed=1)
    config = load_config(tmp_path / "exporter.yml")
    now = parse_timestamp(result.document["end"]) - 1  # the window's oldest slot is then the run's first one
    service = ExporterService(config, load_baseline(config.baseline), clock=lambda: now)
    service.read_logs()
    counts = {key: count for key, count in service.record_counts.items() if count}
    assert counts == {("predictions", "ok"): result.predictions, ("feedback", "ok"): result.feedback}
    assert result.predictions == pytest.approx(36_000, rel=0.03)
    service.recompute()
    snapshot = service.published.snapshot
    assert snapshot.predictions == result.predictions
    assert snapshot.labeled == result.feedback


def test_sudden_shift_moves_only_its_feature_past_psi_0_25(tmp_path: Path) -> None:
    simulate(load_scenario("sudden-shift"), tmp_path, hours=2, rps=2, seed=3)
    rows = predictions_of(tmp_path)
    change = START + 3600
    before = [row for row in rows if row.timestamp < change]
    after = [row for row in rows if row.timestamp >= change]
    assert feature_psi(tmp_path, before, "income") < 0.05
    assert feature_psi(tmp_path, after, "income") >= 0.25
    for control in ("age", "debt_ratio"):
        assert feature_psi(tmp_path, after, control) < 0.05
    scores_before = np.mean([row.score for row in before])
    scores_after = np.mean([row.score for row in after])
    assert scores_after > scores_before + 0.03  # lower incomes: the model sees more risk


def test_an_outage_writes_no_row_in_its_interval_and_rows_on_both_sides(tmp_path: Path) -> None:
    scenario = scenario_of([{"type": "traffic_outage", "name": "down", "start": "20m", "end": "50m"}])
    result = simulate(scenario, tmp_path, hours=1, rps=5, seed=2)
    times = np.array([row.timestamp for row in predictions_of(tmp_path)]) - START
    assert not np.any((times >= 1200) & (times < 3000))
    assert np.sum(times < 1200) == pytest.approx(6000, rel=0.05)
    assert np.sum(times >= 3000) == pytest.approx(3000, rel=0.06)
    [event] = result.document["events"]
    assert (event["start"], event["end"]) == ("2026-01-05T00:20:00Z", "2026-01-05T00:50:00Z")
    assert event["params"] == {"server_down": True} and event["affects"] == ["traffic", "server"]


def test_label_delays_follow_the_distribution_and_the_fraction(tmp_path: Path) -> None:
    from scipy import stats

    scenario = scenario_of([], labels={"fraction": 0.5, "delay": {"distribution": "lognormal", "median": "2m",
                                                                  "sigma": 0.5}})
    simulate(scenario, tmp_path, hours=1, rps=5, seed=4)
    rows = {row.prediction_id: row.timestamp for row in predictions_of(tmp_path)}
    labels = feedback_of(tmp_path)
    delays = np.array([label.timestamp - rows[label.prediction_id] for label in labels])
    assert len(labels) / len(rows) == pytest.approx(0.5, abs=0.02)  # a few labels due after the end are not written
    result = stats.kstest(delays, stats.lognorm(s=0.5, scale=120).cdf)
    assert result.pvalue > 0.001
    times = [label.timestamp for label in labels]
    assert times == sorted(times) and max(times) < START + 3600


def test_an_error_burst_thins_the_log_by_its_error_rate(tmp_path: Path) -> None:
    scenario = scenario_of([{"type": "error_burst", "name": "errors", "start": "30m",
                             "params": {"error_rate": 0.4}}])
    result = simulate(scenario, tmp_path, hours=1, rps=10, seed=5)
    times = np.array([row.timestamp for row in predictions_of(tmp_path)]) - START
    assert np.sum(times < 1800) == pytest.approx(18_000 * 0.999, rel=0.03)
    assert np.sum(times >= 1800) == pytest.approx(18_000 * 0.6, rel=0.03)
    assert result.document["events"][0]["params"] == {"error_rate": 0.4}


def test_a_replica_that_does_not_exist_is_refused(tmp_path: Path) -> None:
    scenario = scenario_of([{"type": "traffic_outage", "name": "one-down", "start": 0, "replicas": ["replica-1"]}],
                           replicas=2)
    with pytest.raises(ScenarioError, match=r"replica-1 does not exist in a run of 1 replica"):
        simulate(scenario, tmp_path, hours=0.1, rps=1, replicas=1)


def test_old_logs_are_not_mixed_with_new_ones(tmp_path: Path) -> None:
    scenario = scenario_of([])
    simulate(scenario, tmp_path, hours=0.1, rps=1)
    with pytest.raises(ScenarioError, match=r"already holds logs.*--force"):
        simulate(scenario, tmp_path, hours=0.1, rps=1)
    simulate(scenario, tmp_path, hours=0.1, rps=1, seed=3, overwrite=True)
    assert json.loads((tmp_path / "scenario.json").read_text())["seed"] == 3
