"""Input events measured on simulated runs: missing values, categorical shares, the downturn incident, and the
seasonal mix, which the baseline covers as a whole while each hour differs."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from promml.baseline import load_baseline
from promml.records import parse_timestamp
from promml.simulate import ScenarioError, simulate
from promml.simulate.scenario import parse_scenario
from promml.stats.drift import psi


def scenario_of(*events: dict, name: str = "t"):
    return parse_scenario({"description": "t", "events": list(events)}, name, "t.yml")


def records(out: Path) -> list[dict]:
    return [json.loads(line) for line in (out / "logs" / "predictions.jsonl").read_text().splitlines()]


def test_missing_values_are_null_in_their_share_of_rows_only_inside_the_event(tmp_path: Path) -> None:
    scenario = scenario_of({"type": "missing_values", "name": "m", "start": "30m",
                            "params": {"features": ["income", "region"], "rate": 0.4}})
    result = simulate(scenario, tmp_path, hours=1, rps=4, seed=1)
    start = parse_timestamp(result.document["start"])
    rows = records(tmp_path)
    before = [row for row in rows if parse_timestamp(row["timestamp"]) < start + 1800]
    after = [row for row in rows if parse_timestamp(row["timestamp"]) >= start + 1800]
    assert all(row["features"]["income"] is not None for row in before)
    for name in ("income", "region"):
        share = np.mean([row["features"][name] is None for row in after])
        assert share == pytest.approx(0.4, abs=0.03)
    assert all(row["features"]["age"] is not None for row in after)


def test_categorical_shares_move_rows_to_the_asked_categories(tmp_path: Path) -> None:
    scenario = scenario_of({"type": "covariate_shift", "name": "r", "start": 0,
                            "params": {"feature": "region", "shares": {"north": 1, "west": 1}}})
    simulate(scenario, tmp_path, hours=0.5, rps=4, seed=2)
    regions = [row["features"]["region"] for row in records(tmp_path)]
    assert set(regions) == {"north", "west"}
    assert regions.count("north") / len(regions) == pytest.approx(0.5, abs=0.03)


def test_an_event_naming_an_unknown_feature_or_the_wrong_kind_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ScenarioError, match=r"events\[0\] \('x', type 'covariate_shift'\): params.feature: no "
                                            r"feature 'salary'; the model's features are age, income"):
        simulate(scenario_of({"type": "covariate_shift", "name": "x", "start": 0,
                              "params": {"feature": "salary", "scale": 2}}), tmp_path / "a", hours=0.1, rps=1)
    with pytest.raises(ScenarioError, match=r"params.scale: 'region' is categorical; use shares"):
        simulate(scenario_of({"type": "covariate_shift", "name": "x", "start": 0,
                              "params": {"feature": "region", "scale": 2}}), tmp_path / "b", hours=0.1, rps=1)


def test_the_incident_moves_income_debt_and_scores_and_lowers_accuracy(tmp_path: Path) -> None:
    result = simulate(scenario_of({"type": "incident", "name": "i", "start": "1h"}), tmp_path, hours=2, rps=2,
                      seed=3)
    start = parse_timestamp(result.document["start"])
    rows = records(tmp_path)
    labels = {json.loads(line)["prediction_id"]: json.loads(line)["label"]
              for line in (tmp_path / "logs" / "feedback.jsonl").read_text().splitlines()}
    baseline = load_baseline(tmp_path / "baseline.json")
    for inside in (False, True):
        part = [row for row in rows if (parse_timestamp(row["timestamp"]) >= start + 3600) == inside]
        drift = {}
        for name in ("income", "debt_ratio", "age"):
            reference = baseline.numeric[name]
            counts = np.bincount(reference.bin_index(np.array([row["features"][name] for row in part])),
                                 minlength=reference.ref_ratios.size)
            drift[name] = psi(reference.ref_ratios, counts)
        accuracy = np.mean([row["prediction"] == labels[row["prediction_id"]] for row in part
                            if row["prediction_id"] in labels])
        if inside:
            assert drift["income"] > 0.25 and drift["debt_ratio"] > 0.25 and drift["age"] < 0.05
            assert accuracy < 0.8
        else:
            assert max(drift.values()) < 0.05 and accuracy > 0.85


def test_the_seasonal_baseline_covers_the_whole_week_while_each_hour_differs(tmp_path: Path) -> None:
    scenario = scenario_of({"type": "seasonal", "name": "s", "params": {"feature_daily": {"income": 0.3}}})
    result = simulate(scenario, tmp_path, hours=168, rps=0.1, seed=4)
    start = parse_timestamp(result.document["start"])
    reference = load_baseline(tmp_path / "baseline.json").numeric["income"]
    rows = records(tmp_path)
    hours = np.array([(parse_timestamp(row["timestamp"]) - start) % 86400 // 3600 for row in rows])
    income = np.array([row["features"]["income"] for row in rows])

    def income_psi(values: np.ndarray) -> float:
        counts = np.bincount(reference.bin_index(values), minlength=reference.ref_ratios.size)
        return psi(reference.ref_ratios, counts)

    assert income_psi(income) < 0.01  # the whole week: the baseline's own mix
    peak, trough = income[(hours >= 12) & (hours < 16)], income[(hours >= 0) & (hours < 4)]
    assert np.median(peak) > np.median(trough) * 1.2
    assert income_psi(peak) > 0.03 and income_psi(trough) > 0.03
