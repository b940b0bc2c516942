"""Mergeable performance state: class keys, ROC AUC from score histograms, merging, against scikit-learn."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn import metrics

from promml.exporter.performance import LabelStats, class_key, classification_metrics, regression_metrics


@pytest.mark.parametrize(("value", "key"), [(1, "1"), (1.0, "1"), (True, "1"), (False, "0"), ("1", "1"),
                                            ("1.0", "1.0"), (2.5, "2.5"), ("yes", "yes")])
def test_class_key(value, key):
    assert class_key(value) == key


def test_merged_states_give_the_metrics_of_all_rows():
    rng = np.random.default_rng(1)
    scores = np.round(rng.uniform(0, 1, 500), 3)
    labels = (rng.uniform(0, 1, 500) < scores).astype(int)
    predicted = (scores > 0.5).astype(int)
    halves = [LabelStats(), LabelStats()]
    for i, (p, y, s) in enumerate(zip(predicted.tolist(), labels.tolist(), scores.tolist(), strict=True)):
        halves[i % 2].add(p, y, s, "1")
    merged = LabelStats()
    for half in halves:
        merged.merge(half)
    result = classification_metrics(merged, "1")
    assert result["accuracy"] == pytest.approx(metrics.accuracy_score(labels, predicted), rel=1e-12)
    assert result["f1"] == pytest.approx(metrics.f1_score(labels, predicted), rel=1e-12)
    assert result["roc_auc"] == pytest.approx(metrics.roc_auc_score(labels, scores), rel=1e-12)


def test_empty_and_one_class_states():
    assert classification_metrics(LabelStats(), "1") == {}
    assert regression_metrics(LabelStats()) == {}
    only_positives = LabelStats()
    only_positives.add(1, 1, 0.9, "1")
    assert classification_metrics(only_positives, "1") == {"accuracy": 1.0, "precision": 1.0, "recall": 1.0,
                                                           "f1": 1.0}  # no ROC AUC without a negative
