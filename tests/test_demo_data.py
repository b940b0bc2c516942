"""The demo data: deterministic, in the server's request format, and drifting the way the scenario promises."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
from sklearn.feature_extraction import DictVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from promml import baseline as baseline_builder
from promml.demo import data, training_data
from promml.stats.drift import psi


def test_rows_have_every_feature_with_the_server_types() -> None:
    rows, labels = data.generate(200, seed=1)
    assert len(rows) == len(labels) == 200
    for row in rows:
        assert list(row) == list(data.FEATURES)
        assert all(isinstance(row[name], float | int) for name in data.NUMERIC_FEATURES)
        assert row["region"] in data.REGIONS
        assert row["income"] > 0 and 0 <= row["debt_ratio"] <= 1 and 18 <= row["age"] <= 90
    assert set(labels) == {0, 1}


def test_same_seed_same_data_and_zero_rows() -> None:
    assert data.generate(50, seed=3) == data.generate(50, seed=3)
    assert data.generate(50, seed=3) != data.generate(50, seed=4)
    assert data.generate(0, seed=1) == ([], [])
    with pytest.raises(ValueError, match="n must be >= 0"):
        data.generate(-1, seed=1)


def _psi_per_feature(reference_csv: Path, rows: list[dict]) -> dict[str, float]:
    reference = baseline_builder.parse_baseline(baseline_builder.build_baseline(
        baseline_builder.load_csv_columns(reference_csv), categorical=data.CATEGORICAL_FEATURES, target="label",
    ))
    result = {}
    for name, ref in {**reference.numeric, **reference.categorical}.items():
        kind = float if name in reference.numeric else object
        values = np.array([row[name] for row in rows], dtype=kind)
        result[name] = psi(ref.ref_ratios, np.bincount(ref.bin_index(values), minlength=len(ref.ref_ratios)))
    return result


def test_drift_moves_income_and_debt_ratio_only(tmp_path: Path) -> None:
    train = tmp_path / "train.csv"
    training_data.write_csv(train, 5000, 42)
    normal = _psi_per_feature(train, data.generate(2000, seed=5)[0])
    drifted = _psi_per_feature(train, data.generate(2000, seed=5, drift=True)[0])
    assert max(normal.values()) < 0.1, normal
    assert drifted["income"] > 0.25 and drifted["debt_ratio"] > 0.25, drifted
    assert all(drifted[name] < 0.1 for name in ("age", "num_accounts", "region")), drifted


def test_a_model_trained_on_normal_data_loses_accuracy_under_drift() -> None:
    rows, labels = data.generate(5000, seed=11)
    model = make_pipeline(DictVectorizer(sparse=False), StandardScaler(), LogisticRegression(max_iter=1000))
    model.fit(rows, labels)
    normal_rows, normal_labels = data.generate(3000, seed=12)
    drift_rows, drift_labels = data.generate(3000, seed=12, drift=True)
    assert model.score(normal_rows, normal_labels) >= 0.8
    assert model.score(drift_rows, drift_labels) <= 0.75


def test_write_csv_round_trips(tmp_path: Path) -> None:
    path = tmp_path / "train.csv"
    training_data.write_csv(path, 30, 9)
    with open(path, newline="") as handle:
        written = list(csv.DictReader(handle))
    rows, labels = data.generate(30, seed=9)
    assert [list(r) for r in written[:1]] == [[*data.FEATURES, "label"]]
    assert [int(r["label"]) for r in written] == labels
    assert [float(r["income"]) for r in written] == [r["income"] for r in rows]
    assert [r["region"] for r in written] == [r["region"] for r in rows]


def test_write_csv_with_predictions_adds_the_demo_models_answers(tmp_path: Path) -> None:
    """The prediction and score columns are what a pipeline fitted like the demo server's model answers."""
    path = tmp_path / "train.csv"
    training_data.write_csv(path, 40, 9, with_predictions=True)
    with open(path, newline="") as handle:
        written = list(csv.DictReader(handle))
    assert list(written[0]) == [*data.FEATURES, "label", "prediction", "score"]
    training_rows, training_labels = data.generate(5000, seed=42)
    reference = make_pipeline(DictVectorizer(sparse=False), StandardScaler(), LogisticRegression(max_iter=1000))
    reference.fit(training_rows, training_labels)
    expected = reference.predict_proba(data.generate(40, seed=9)[0])[:, 1]
    assert [float(r["score"]) for r in written] == pytest.approx(expected, abs=1e-6)
    assert [int(r["prediction"]) for r in written] == [int(p >= 0.5) for p in expected]
