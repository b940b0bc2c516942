"""The demo classifier: its outputs agree with the fitted pipeline, it is accurate on normal data and not on drift."""

from __future__ import annotations

import math

import numpy as np
import pytest

from promml.demo import data
from promml.demo.model import CreditRiskModel, ImpossibleInput


@pytest.fixture(scope="module")
def model() -> CreditRiskModel:
    return CreditRiskModel(seed=42)


def accuracy(model: CreditRiskModel, rows: list[dict], labels: list[int]) -> float:
    predictions = [result["prediction"] for result in model.predict(rows)]
    return float(np.mean(np.asarray(predictions) == np.asarray(labels)))


def test_outputs_are_classes_and_the_pipelines_probabilities(model):
    rows, _ = data.generate(300, seed=7)
    results = model.predict(rows)
    probabilities = model.pipeline.predict_proba(rows)[:, 1]
    assert len(results) == 300
    assert {result["prediction"] for result in results} == {0, 1}
    for result, probability in zip(results, probabilities, strict=True):
        assert set(result) == {"prediction", "score"}
        assert 0.0 <= result["score"] <= 1.0
        assert result["score"] == round(float(probability), 6)
        assert result["prediction"] == int(probability >= 0.5)
    assert [r["prediction"] for r in results] == model.pipeline.predict(rows).tolist()


def test_accurate_on_fresh_normal_data(model):
    rows, labels = data.generate(2000, seed=123)
    assert accuracy(model, rows, labels) >= 0.8


def test_inaccurate_on_drifted_data(model):
    rows, labels = data.generate(2000, seed=123, drift=True)
    assert accuracy(model, rows, labels) <= 0.75


def test_training_is_deterministic_for_a_seed(model):
    rows, _ = data.generate(50, seed=9)
    assert CreditRiskModel(seed=42).predict(rows) == model.predict(rows)


@pytest.mark.parametrize("income", [-1.0, -0.01, math.inf, math.nan])
def test_impossible_income_is_refused(model, income):
    row = {"age": 30.0, "income": income, "debt_ratio": 0.2, "num_accounts": 2, "region": "north"}
    with pytest.raises(ImpossibleInput, match="income must be a finite number >= 0"):
        model.predict([{**row, "income": 50_000.0}, row])


def test_zero_income_is_possible(model):
    row = {"age": 30.0, "income": 0.0, "debt_ratio": 0.2, "num_accounts": 2, "region": "north"}
    [result] = model.predict([row])
    assert result["score"] == round(float(model.pipeline.predict_proba([row])[0, 1]), 6)
