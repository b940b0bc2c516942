"""The demo's model: a scikit-learn classifier trained at start on the locally generated credit-risk data."""

from __future__ import annotations

import math
from typing import Any

from sklearn.feature_extraction import DictVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import StandardScaler

from . import data

MODEL_NAME = "credit-risk"
MODEL_VERSION = "1.0.0"
TRAINING_ROWS = 5000


class ImpossibleInput(ValueError):
    """A row the model refuses (e.g. negative income): raised inside predict, so it counts as a model error."""


class CreditRiskModel:
    """Logistic regression over one-hot regions and scaled numbers; returns the default-risk class and score."""

    def __init__(self, seed: int = 42) -> None:
        rows, labels = data.generate(TRAINING_ROWS, seed=seed)
        self.pipeline: Pipeline = make_pipeline(
            DictVectorizer(sparse=False), StandardScaler(), LogisticRegression(max_iter=1000)
        )
        self.pipeline.fit(rows, labels)

    def predict(self, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """`{"prediction": 0 or 1, "score": probability of class 1}` per row."""
        for row in rows:
            income = row.get("income")
            if isinstance(income, int | float) and (income < 0 or not math.isfinite(income)):
                raise ImpossibleInput(f"income must be a finite number >= 0, got {income}")
        probabilities = self.pipeline.predict_proba(rows)[:, 1]
        return [{"prediction": int(p >= 0.5), "score": round(float(p), 6)} for p in probabilities]
