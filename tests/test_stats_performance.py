"""One definition of every performance metric (promml.stats.performance), against scikit-learn on the same rows."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest
from sklearn import metrics

from promml.stats.performance import (
    class_key,
    classification_metrics,
    regression_metrics,
    residual_sums,
    roc_auc,
    unknown_class_rows,
)


def confusion(truth, predicted) -> Counter:
    return Counter(zip(map(class_key, truth), map(class_key, predicted), strict=True))


@pytest.mark.parametrize(("value", "key"), [(1, "1"), (1.0, "1"), (True, "1"), (False, "0"), ("1", "1"),
                                            ("1.0", "1.0"), (2.5, "2.5"), ("yes", "yes"), (np.int64(3), "3")])
def test_class_key(value, key):
    assert class_key(value) == key


def sklearn_binary(truth, predicted, positive):
    kwargs = {"pos_label": positive, "zero_division": 0}
    return {"accuracy": metrics.accuracy_score(truth, predicted),
            "precision": metrics.precision_score(truth, predicted, **kwargs),
            "recall": metrics.recall_score(truth, predicted, **kwargs),
            "f1": metrics.f1_score(truth, predicted, **kwargs)}


def test_a_window_with_only_negatives_has_precision_recall_and_f1_of_zero():
    truth, predicted = [0] * 100, [0] * 100
    result = classification_metrics(confusion(truth, predicted), ["0", "1"], "1")
    assert result == sklearn_binary(truth, predicted, 1) == {"accuracy": 1.0, "precision": 0.0, "recall": 0.0,
                                                             "f1": 0.0}


def test_a_stray_label_is_counted_and_keeps_the_binary_definition():
    rng = np.random.default_rng(4)
    truth = rng.integers(0, 2, 1000)
    predicted = np.where(rng.uniform(size=1000) < 0.9, truth, 1 - truth)
    truth[17] = 2
    table = confusion(truth.tolist(), predicted.tolist())
    result = classification_metrics(table, ["0", "1"], "1")
    # one class against the rest: the stray "2" is a negative
    assert result == pytest.approx(sklearn_binary(truth == 1, predicted == 1, True), rel=1e-12)
    assert result["accuracy"] == metrics.accuracy_score(truth, predicted)
    assert unknown_class_rows(table, ["0", "1"]) == 1


def test_a_text_positive_class():
    rng = np.random.default_rng(5)
    truth = rng.choice(["bad", "good"], 500).tolist()
    predicted = [t if rng.uniform() < 0.8 else ("good" if t == "bad" else "bad") for t in truth]
    for positive in ("bad", "good"):
        result = classification_metrics(confusion(truth, predicted), ["bad", "good"], positive)
        assert result == pytest.approx(sklearn_binary(truth, predicted, positive), rel=1e-12)


def test_multi_class_is_macro_over_the_model_classes_even_when_a_window_misses_one():
    rng = np.random.default_rng(6)
    truth = rng.integers(0, 3, 600)
    predicted = np.where(rng.uniform(size=600) < 0.7, truth, rng.integers(0, 3, 600))
    classes = ["0", "1", "2", "3"]  # class 3 is never seen here
    result = classification_metrics(confusion(truth.tolist(), predicted.tolist()), classes, "1")
    kwargs = {"labels": [0, 1, 2, 3], "average": "macro", "zero_division": 0}
    assert result == pytest.approx({
        "accuracy": metrics.accuracy_score(truth, predicted),
        "precision": metrics.precision_score(truth, predicted, **kwargs),
        "recall": metrics.recall_score(truth, predicted, **kwargs),
        "f1": metrics.f1_score(truth, predicted, **kwargs)}, rel=1e-12)


def test_roc_auc_is_exact():
    rng = np.random.default_rng(9)
    truth = rng.integers(0, 2, 300).astype(bool)
    scores = np.round(rng.uniform(size=300) + truth * 0.3, 2)  # with ties
    assert roc_auc(truth, scores) == pytest.approx(metrics.roc_auc_score(truth, scores), rel=1e-12)
    assert np.isnan(roc_auc(np.ones(3, dtype=bool), np.arange(3.0)))


def test_regression_residual_is_label_minus_prediction():
    rng = np.random.default_rng(10)
    truth, predicted = rng.normal(size=400), rng.normal(size=400) + 0.5
    result = regression_metrics(*residual_sums(truth, predicted))
    assert result == pytest.approx({"mae": metrics.mean_absolute_error(truth, predicted),
                                    "rmse": np.sqrt(metrics.mean_squared_error(truth, predicted)),
                                    "mean_residual": float(np.mean(truth - predicted))}, rel=1e-12)
    assert result["mean_residual"] < 0  # the model over-predicts by 0.5
    assert regression_metrics(0, 0.0, 0.0, 0.0) == {}
