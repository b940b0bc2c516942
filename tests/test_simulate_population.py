"""The simulated rows and the model's answers: the vectorised demo model equals `CreditRiskModel.predict`, and a
user's CSV rows keep their own predictions, scores and labels."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest

from promml.demo import data
from promml.demo.model import CreditRiskModel
from promml.simulate.population import CsvPopulation, demo_population
from promml.simulate.scenario import ModelSpec, ScenarioError


def test_vectorised_scoring_equals_the_demo_model_row_by_row() -> None:
    population = demo_population()
    rows = population.draw(np.random.default_rng(5), 3000)
    predictions, scores = population.outputs(rows, rows.columns)
    records = [{"age": float(a), "income": float(i), "debt_ratio": float(d), "num_accounts": int(c),
                "region": str(r)} for a, i, d, c, r in zip(*(rows.columns[name] for name in data.FEATURES),
                                                           strict=True)]
    expected = CreditRiskModel().predict(records)
    assert predictions.tolist() == [row["prediction"] for row in expected]
    assert scores.tolist() == [row["score"] for row in expected]


def test_a_missing_number_is_scored_as_its_training_mean() -> None:
    population = demo_population()
    rows = population.draw(np.random.default_rng(6), 10)
    observed = dict(rows.columns, income=np.full(10, np.nan))
    mean = population.model.pipeline[1].mean_[population.model.pipeline[0].vocabulary_["income"]]
    imputed = dict(rows.columns, income=np.full(10, mean))
    assert population.probabilities(observed).tolist() == population.probabilities(imputed).tolist()


def test_demo_rows_follow_the_demo_generator() -> None:
    rows = demo_population().draw(np.random.default_rng(9), 50)
    columns, _ = data.generate_columns(50, np.random.default_rng(9))
    for name in data.FEATURES:
        assert rows.columns[name].tolist() == columns[name].tolist()


def write_csv(path: Path, rows: list[dict]) -> Path:
    with open(path, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return path


def test_csv_rows_bring_their_own_outputs_and_labels(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "rows.csv", [
        {"x": 1.5, "kind": "a", "prediction": 1, "score": 0.9, "label": 1},
        {"x": 2, "kind": "b", "prediction": 0, "score": 0.2, "label": 1},
        {"x": 3, "kind": "", "prediction": 0, "score": 0.1, "label": 0},
    ])
    population = CsvPopulation(path, ModelSpec(reference_csv=path))
    assert [(info.name, info.numeric) for info in population.features] == [("x", True), ("kind", False)]
    assert (population.model_name, population.model_version, population.accuracy) == ("my-model", "1", 2 / 3)
    rows = population.draw(np.random.default_rng(0), 200)
    predictions, scores = population.outputs(rows, rows.columns)
    source = rows.source_rows
    assert predictions.tolist() == [[1, 0, 0][i] for i in source]
    assert scores.tolist() == [[0.9, 0.2, 0.1][i] for i in source]
    assert rows.columns["kind"].tolist() == [["a", "b", None][i] for i in source]
    labels = population.true_labels(np.random.default_rng(1), rows, np.zeros(200))
    assert labels.tolist() == [[1, 1, 0][i] for i in source]


def test_csv_concept_drift_flips_the_share_that_costs_the_asked_accuracy(tmp_path: Path) -> None:
    rng = np.random.default_rng(2)
    truth = rng.integers(0, 2, 4000)
    predicted = np.where(rng.random(4000) < 0.9, truth, 1 - truth)
    path = write_csv(tmp_path / "rows.csv", [{"x": float(i), "prediction": int(p), "label": int(t)}
                                             for i, (p, t) in enumerate(zip(predicted, truth, strict=True))])
    population = CsvPopulation(path, ModelSpec(reference_csv=path))
    rows = population.draw(np.random.default_rng(3), 200_000)
    predictions, _ = population.outputs(rows, rows.columns)
    labels = population.true_labels(np.random.default_rng(4), rows, np.full(200_000, 0.1))
    base = np.mean(predictions == population.labels[rows.source_rows])
    assert base - np.mean(predictions == labels) == pytest.approx(0.1, abs=0.005)


def test_a_csv_without_a_prediction_column_is_refused(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "rows.csv", [{"x": 1, "label": 0}])
    with pytest.raises(ScenarioError, match=r"no 'prediction' column: a prediction log needs the model's "
                                            r"prediction of each row \(columns: x, label\)"):
        CsvPopulation(path, ModelSpec(reference_csv=path))
