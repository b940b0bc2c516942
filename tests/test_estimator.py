"""A scikit-learn estimator monitored as a whole: scores from predict_proba, names from the fitted frame."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression

import promml
from promml.instrumentation.jsonl_writer import shared_writer
from promml.instrumentation.monitor import predictions_file

LABELS = {"model_name": "m", "model_version": "1"}


def value(registry, name, **labels):
    return registry.get_sample_value(name, {**LABELS, **labels})


@pytest.fixture(scope="module")
def binary() -> tuple[LogisticRegression, pd.DataFrame]:
    rng = np.random.default_rng(0)
    frame = pd.DataFrame(rng.normal(size=(300, 3)), columns=["a", "b", "c"])
    return LogisticRegression().fit(frame, (frame["a"] + frame["b"] > 0).astype(int)), frame


def test_binary_scores_are_the_positive_class_probability(binary, registry, tmp_path):
    model, frame = binary
    monitored = promml.monitor_estimator(model, model_name="m", model_version="1", registry=registry, log_dir=tmp_path)
    probabilities = monitored.predict_proba(frame)
    np.testing.assert_array_equal(probabilities, model.predict_proba(frame))  # results are untouched
    expected_scores = model.predict_proba(frame)[:, 1]
    assert value(registry, "ml_predictions_total") == 300
    assert value(registry, "ml_prediction_score_sum") == pytest.approx(expected_scores.sum())
    assert value(registry, "ml_prediction_score_bucket", le="0.5") == (expected_scores <= 0.5).sum()
    predicted = model.predict(frame)
    assert value(registry, "ml_predicted_class_total", **{"class": "1"}) == (predicted == 1).sum()
    shared_writer(predictions_file(tmp_path)).flush()
    records = [json.loads(line) for line in (tmp_path / "predictions.jsonl").read_text().splitlines()]
    assert [r["features"] for r in records[:2]] == frame.iloc[:2].to_dict("records")
    assert [r["prediction"] for r in records] == predicted.tolist()
    assert [r["score"] for r in records] == pytest.approx(expected_scores.tolist())


def test_predict_counts_classes_without_scores(binary, registry):
    model, frame = binary
    monitored = promml.monitor_estimator(model, model_name="m", model_version="1", registry=registry)
    np.testing.assert_array_equal(monitored.predict(frame), model.predict(frame))
    assert value(registry, "ml_predictions_total") == 300
    assert value(registry, "ml_prediction_score_count") == 0
    assert value(registry, "ml_predicted_class_total", **{"class": "0"}) == (model.predict(frame) == 0).sum()


def test_multiclass_score_is_the_top_class_probability(registry):
    features, target = load_iris(return_X_y=True)
    model = LogisticRegression(max_iter=1000).fit(features, target)
    monitored = promml.monitor_estimator(model, model_name="m", model_version="1", registry=registry,
                                         feature_names=["sl", "sw", "pl", "pw"])
    monitored.predict_proba(features)
    assert value(registry, "ml_prediction_score_sum") == pytest.approx(model.predict_proba(features).max(axis=1).sum())
    for label in (0, 1, 2):
        assert value(registry, "ml_predicted_class_total", **{"class": str(label)}) == (
            model.predict(features) == label).sum()


def test_other_attributes_are_the_estimator_s(binary, registry):
    model, frame = binary
    monitored = promml.monitor_estimator(model, model_name="m", model_version="1", registry=registry)
    assert monitored.classes_.tolist() == [0, 1]
    assert monitored.score(frame, model.predict(frame)) == 1.0
    assert monitored.estimator is model


def read_records(log_dir) -> list[dict]:
    shared_writer(predictions_file(log_dir)).flush()
    path = log_dir / "predictions.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def test_predict_proba_then_predict_on_the_same_rows_logs_each_row_once(binary, registry, tmp_path):
    model, frame = binary
    monitored = promml.monitor_estimator(model, model_name="m", model_version="1", registry=registry, log_dir=tmp_path)
    monitored.predict_proba(frame.iloc[:10])
    np.testing.assert_array_equal(monitored.predict(frame.iloc[:10]), model.predict(frame.iloc[:10]))  # equal rows
    assert value(registry, "ml_predictions_total") == 10
    records = read_records(tmp_path)
    assert len(records) == 10 and all("score" in record for record in records)
    monitored.predict(frame.iloc[:10])  # a second predict is a new prediction
    monitored.predict(frame.iloc[10:20])
    monitored.predict_proba(frame.iloc[10:20])  # the other order: the first call (predict) was the one logged
    assert value(registry, "ml_predictions_total") == 30
    assert len(read_records(tmp_path)) == 30


def test_a_model_fitted_without_feature_names_is_refused_at_wrap_time(registry):
    features, target = load_iris(return_X_y=True)
    model = LogisticRegression(max_iter=1000).fit(features, target)
    with pytest.raises(ValueError, match=r"LogisticRegression was fitted without feature names .* pass "
                                         r"feature_names=\[\.\.\.\]"):
        promml.monitor_estimator(model, model_name="m", model_version="1", registry=registry)


def test_the_monitored_estimator_survives_a_joblib_round_trip(binary, tmp_path):
    import joblib
    from prometheus_client import REGISTRY

    model, frame = binary
    monitored = promml.monitor_estimator(model, model_name="pickled", model_version="1", log_dir=tmp_path)
    joblib.dump(monitored, tmp_path / "model.joblib")
    loaded = joblib.load(tmp_path / "model.joblib")
    before = REGISTRY.get_sample_value("ml_predictions_total", {"model_name": "pickled", "model_version": "1"}) or 0
    np.testing.assert_array_equal(loaded.predict_proba(frame.iloc[:5]), model.predict_proba(frame.iloc[:5]))
    assert REGISTRY.get_sample_value("ml_predictions_total",
                                     {"model_name": "pickled", "model_version": "1"}) == before + 5
    assert [record["model_name"] for record in read_records(tmp_path)] == ["pickled"] * 5
    assert loaded.classes_.tolist() == [0, 1] and not hasattr(loaded, "decision_path")
