"""Labels: delay distributions as scipy has them, the concept drift's calibration, and concept drift measured on a
simulated run: accuracy falls about a point a day while every feature's PSI stays small."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from scipy import stats

from promml.baseline import load_baseline
from promml.records import parse_timestamp
from promml.simulate import load_scenario, simulate
from promml.simulate.labels import (
    DEFAULT_LABELS,
    DelayDistribution,
    LabelSpecError,
    calibrate_blend,
    flip_probability,
    parse_delay,
    parse_labels,
)
from promml.stats.drift import psi


@pytest.mark.parametrize(("raw", "reference"), [
    ({"distribution": "lognormal", "median": "6h", "sigma": 0.2}, stats.lognorm(s=0.2, scale=21600)),
    ({"distribution": "exponential", "mean": "10m"}, stats.expon(scale=600)),
    ({"distribution": "uniform", "min": "1m", "max": "1h"}, stats.uniform(loc=60, scale=3540)),
])
def test_delays_are_drawn_from_the_named_distribution(raw: dict, reference: object) -> None:
    delay = parse_delay(raw, "delay")
    sample = delay.sample(np.random.default_rng(0), 20_000)
    assert stats.kstest(sample, reference.cdf).pvalue > 0.001
    assert delay.quantile(0.99) == pytest.approx(reference.ppf(0.99))


def test_a_fixed_delay_and_the_default_labels() -> None:
    fixed = parse_delay({"distribution": "fixed", "delay": "2h"}, "delay")
    assert fixed.sample(np.random.default_rng(0), 3).tolist() == [7200.0] * 3 and fixed.quantile(0.99) == 7200.0
    assert DEFAULT_LABELS.delay == DelayDistribution("lognormal", {"median": 300.0, "sigma": 0.8})
    assert parse_labels({"fraction": 0.3}, "labels").delay == DEFAULT_LABELS.delay
    with pytest.raises(LabelSpecError, match=r"labels.delay.median: expected a duration"):
        parse_labels({"delay": {"distribution": "lognormal", "median": "soon", "sigma": 1}}, "labels")
    with pytest.raises(LabelSpecError, match=r"labels.delay: max \('1m'\) must not be below min \('1h'\)"):
        parse_labels({"delay": {"distribution": "uniform", "min": "1h", "max": "1m"}}, "labels")


def test_the_blend_calibration_reads_back_the_accuracy_of_each_weight() -> None:
    rng = np.random.default_rng(1)
    normal, drifted, noise = rng.normal(size=50_000), rng.normal(size=50_000), rng.logistic(0, 0.3, 50_000)
    predictions = normal > 0
    calibration = calibrate_blend(normal, drifted, noise, predictions)
    for drop in (0.01, 0.05, 0.2):
        weight = float(calibration.weight_for(np.array(drop)))
        accuracy = np.mean((((1 - weight) * normal + weight * drifted + noise) > 0) == predictions)
        base = np.mean(((normal + noise) > 0) == predictions)
        assert base - accuracy == pytest.approx(drop, abs=0.002)


def test_flipping_labels_costs_exactly_the_asked_accuracy_on_average() -> None:
    assert flip_probability(np.array([0.0, 0.08, 0.9]), 0.9).tolist() == pytest.approx([0.0, 0.1, 1.0])
    assert flip_probability(np.array([0.1]), 0.5).tolist() == [0.0]


def test_concept_drift_lowers_accuracy_a_point_a_day_while_the_inputs_stay(tmp_path: Path) -> None:
    result = simulate(load_scenario("gradual-concept-drift"), tmp_path, hours=72, rps=0.4, seed=2)
    start = parse_timestamp(result.document["start"])
    predictions = {}
    features: dict[int, list[dict]] = {0: [], 2: []}
    for line in (tmp_path / "logs" / "predictions.jsonl").read_text().splitlines():
        record = json.loads(line)
        day = int((parse_timestamp(record["timestamp"]) - start) // 86400)
        predictions[record["prediction_id"]] = (day, record["prediction"])
        if day in features:
            features[day].append(record["features"])
    right: dict[int, list[bool]] = {0: [], 1: [], 2: []}
    for line in (tmp_path / "logs" / "feedback.jsonl").read_text().splitlines():
        record = json.loads(line)
        day, predicted = predictions[record["prediction_id"]]
        right[day].append(predicted == record["label"])
    accuracy = {day: np.mean(values) for day, values in right.items()}
    # the drop grows linearly: day d's mean drop is d + 0.5 points
    assert accuracy[0] - accuracy[2] == pytest.approx(0.02, abs=0.008)
    assert accuracy[0] - accuracy[1] == pytest.approx(0.01, abs=0.008)
    baseline = load_baseline(tmp_path / "baseline.json")
    for name, reference in baseline.numeric.items():
        values = np.array([row[name] for row in features[2]], dtype=float)
        counts = np.bincount(reference.bin_index(values), minlength=reference.ref_ratios.size)
        assert psi(reference.ref_ratios, counts) < 0.01, name
