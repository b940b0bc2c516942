"""Mergeable performance state: ROC AUC from score bins, merging, regression sums, against scikit-learn."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn import metrics

from promml.exporter.performance import LabelStats, ModelClasses, ScoreBins, window_performance

BINARY = ModelClasses(("0", "1"), "1")


def test_merged_states_give_the_metrics_of_all_rows():
    rng = np.random.default_rng(1)
    scores = rng.uniform(0, 1, 500)
    labels = (rng.uniform(0, 1, 500) < scores).astype(int)
    predicted = (scores > 0.5).astype(int)
    bins = ScoreBins.for_reference(rng.uniform(0, 1, 5000))
    halves = [LabelStats(), LabelStats()]
    for i, (p, y, s) in enumerate(zip(predicted.tolist(), labels.tolist(), scores.tolist(), strict=True)):
        halves[i % 2].add_classification(p, y, s, "1", bins)
    merged = LabelStats()
    for half in halves:
        merged.merge(half)
    result = window_performance(merged, "classification", BINARY)
    assert result["accuracy"] == pytest.approx(metrics.accuracy_score(labels, predicted), rel=1e-12)
    assert result["f1"] == pytest.approx(metrics.f1_score(labels, predicted), rel=1e-12)
    assert result["roc_auc"] == pytest.approx(metrics.roc_auc_score(labels, scores), abs=0.002)


def test_empty_and_one_class_states():
    assert window_performance(LabelStats(), "classification", BINARY) == {}
    assert window_performance(LabelStats(), "regression", BINARY) == {}
    only_positives = LabelStats()
    only_positives.add_classification(1, 1, 0.9, "1", ScoreBins.for_reference(None))
    assert window_performance(only_positives, "classification", BINARY) == {
        "accuracy": 1.0, "precision": 1.0, "recall": 1.0, "f1": 1.0}  # no ROC AUC without a negative


def _auc_of_window(labels: np.ndarray, scores: np.ndarray, reference_scores: np.ndarray | None) -> tuple[float, int]:
    state = LabelStats()
    bins = ScoreBins.for_reference(reference_scores)
    predicted = (scores > np.median(scores)).astype(int)
    for p, y, s in zip(predicted.tolist(), labels.tolist(), scores.tolist(), strict=True):
        state.add_classification(p, y, s, "1", bins)
    return window_performance(state, "classification", BINARY)["roc_auc"], state.scores_outside_unit


def rare_event(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Scores near 1e-4: log-normal, positives (1 in 50) shifted up by one log-std."""
    labels = (rng.uniform(size=n) < 0.02).astype(int)
    scores = 1e-4 * np.exp(rng.normal(size=n) + labels)
    return labels, scores


def test_roc_auc_of_a_rare_event_model_with_scores_near_1e_4_matches_scikit_learn():
    rng = np.random.default_rng(7)
    labels, scores = rare_event(rng, 20_000)
    _, reference = rare_event(rng, 5000)
    expected = metrics.roc_auc_score(labels, scores)
    auc, outside = _auc_of_window(labels, scores, reference)
    assert auc == pytest.approx(expected, abs=0.005)
    assert outside == 0
    # without a baseline score sample, the log-odds grid is fine near 0 as well
    assert _auc_of_window(labels, scores, None)[0] == pytest.approx(expected, abs=0.005)


def test_roc_auc_of_logits_is_ranked_as_they_are_and_the_scores_outside_0_1_are_counted():
    rng = np.random.default_rng(8)
    labels = (rng.uniform(size=10_000) < 0.3).astype(int)
    logits = rng.normal(size=10_000) * 2 + labels * 1.5
    reference = rng.normal(size=5000) * 2 + (rng.uniform(size=5000) < 0.3) * 1.5
    auc, outside = _auc_of_window(labels, logits, reference)
    assert auc == pytest.approx(metrics.roc_auc_score(labels, logits), abs=0.005)
    assert outside == int(np.count_nonzero((logits < 0) | (logits > 1)))


def test_regression_state_keeps_four_sums_whatever_the_rows():
    rng = np.random.default_rng(3)
    truth, predicted = rng.normal(size=2000), rng.normal(size=2000)
    state = LabelStats()
    for y, p in zip(truth.tolist(), predicted.tolist(), strict=True):
        state.add_regression(p, y)
    assert not state.confusion and state.positive_scores is None  # nothing per row
    result = window_performance(state, "regression", ModelClasses(None, "1"))
    assert result["mae"] == pytest.approx(metrics.mean_absolute_error(truth, predicted), rel=1e-12)
    assert result["rmse"] == pytest.approx(np.sqrt(metrics.mean_squared_error(truth, predicted)), rel=1e-12)
    assert result["mean_residual"] == pytest.approx(float(np.mean(truth - predicted)), rel=1e-12)


def test_state_round_trip_and_counts_out_of_range():
    import json

    from promml.exporter.state import InvalidState

    bins = ScoreBins.for_reference(None)
    stats = LabelStats()
    for prediction, label, score in [(1, 1, 0.9), (0, 1, 0.2), (1, 0, 0.7), (1, 1, 1.5)]:
        stats.add_classification(prediction, label, score, "1", bins)
    stats.residual_square_sum = float("inf")  # a sum that overflowed is kept as it is
    state = json.loads(json.dumps(stats.to_state()))
    restored = LabelStats.from_state(state, bins.size, "s")
    assert restored.confusion == stats.confusion and restored.residual_square_sum == float("inf")
    assert (restored.positive_scores == stats.positive_scores).all()
    assert (restored.negative_scores == stats.negative_scores).all()
    assert (restored.labeled, restored.correct, restored.scores_outside_unit) == (4, 2, 1)
    assert window_performance(restored, "classification", BINARY) == window_performance(stats, "classification",
                                                                                        BINARY)
    with pytest.raises(InvalidState, match=r"s\.correct: expected an integer from 0 to 4"):
        LabelStats.from_state({**state, "correct": 10**400}, bins.size, "s")
    with pytest.raises(InvalidState, match=r"s: counts do not add up"):
        LabelStats.from_state({**state, "correct": 3}, bins.size, "s")
    with pytest.raises(InvalidState, match=r"s\.labeled: expected an integer from 0 to 3"):
        LabelStats.from_state(state, bins.size, "s", max_rows=3)
    with pytest.raises(InvalidState, match=r"s\.positive_scores.size: expected 10"):
        LabelStats.from_state(state, 10, "s")  # saved for other score bins
