"""The sliding window's slot counts, expiry, label join and PSI, against numpy binning and scipy's rel_entr."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.special import rel_entr

from promml.baseline import build_baseline, parse_baseline
from promml.drift import PSI_EPSILON
from promml.exporter.window import SlidingWindow, same_label
from promml.records import Feedback, Prediction

REGIONS = ["north", "south", "east", "west"]


@pytest.fixture(scope="module")
def baseline():
    rng = np.random.default_rng(0)
    columns = {
        "x": rng.normal(0.0, 1.0, 2000).tolist(),
        "region": rng.choice(REGIONS, size=2000, p=[0.4, 0.3, 0.2, 0.1]).tolist(),
    }
    return parse_baseline(build_baseline(columns, categorical=["region"], n_bins=10))


def prediction(pid: str, timestamp: float, features: dict, predicted=1) -> Prediction:
    return Prediction(pid, timestamp, "m", "1", features, predicted, None)


def numeric_counts(values: list, edges: np.ndarray) -> np.ndarray:
    """Bins with left-closed intervals [e(i-1), e(i)) and open outer bins, via np.histogram."""
    finite = np.asarray([v for v in values if type(v) in (int, float) and math.isfinite(v)], dtype=float)
    counts, _ = np.histogram(finite, bins=np.concatenate([[-np.inf], edges, [np.inf]]))
    return counts


def categorical_counts(values: list, categories: tuple[str, ...]) -> np.ndarray:
    counts = np.zeros(len(categories) + 1, dtype=np.int64)
    for value in values:
        if value is not None and value != "":
            counts[categories.index(value) if value in categories else len(categories)] += 1
    return counts


def reference_psi(ratios: np.ndarray, counts: np.ndarray) -> float:
    """PSI as symmetric KL divergence on the shares clipped to PSI_EPSILON."""
    p = np.clip(counts / counts.sum(), PSI_EPSILON, None)
    q = np.clip(np.asarray(ratios), PSI_EPSILON, None)
    return float(np.sum(rel_entr(p, q) + rel_entr(q, p)))


def test_counts_per_slot_and_expiry(baseline):
    window = SlidingWindow(baseline, window_seconds=60, slot_seconds=10)
    first = [prediction(f"a{i}", t, {"x": 0.0}) for i, t in enumerate((0.0, 4.5, 9.99))]
    second = [prediction(f"b{i}", 15.0, {"x": 0.0}) for i in range(2)]
    assert window.add_predictions(first + second, now=20) == 5
    assert window.snapshot(now=20).predictions == 5
    assert window.snapshot(now=59.999).predictions == 5  # slot [0, 10) lives until its start is 60 s old
    assert window.snapshot(now=60).predictions == 2
    assert window.snapshot(now=70).predictions == 0


def test_predictions_older_than_the_window_are_not_added(baseline):
    window = SlidingWindow(baseline, window_seconds=60, slot_seconds=10)
    rows = [prediction("old", 30.0, {"x": 0.0}), prediction("new", 45.0, {"x": 0.0})]
    # now=95: the oldest kept slot is floor((95 - 60) / 10) + 1 = 4, i.e. [40, 50); 30 is in slot 3
    assert window.add_predictions(rows, now=95) == 1
    assert window.pending == 1
    assert window.add_feedback(Feedback("old", 96.0, 1)) is False


def test_feature_counts_and_psi_match_numpy_binning(baseline):
    rng = np.random.default_rng(1)
    x = rng.normal(0.7, 1.3, 500).tolist()
    regions = rng.choice([*REGIONS, "mars"], size=500, p=[0.1, 0.2, 0.3, 0.3, 0.1]).tolist()
    x[:5] = [None, "12", True, math.inf, -math.inf]  # not finite numbers: not binned
    regions[5:8] = [None, "", None]  # missing: not binned
    x[10] = 3  # an int is a number
    rows = [prediction(f"p{i}", float(i % 30), {"x": x[i], "region": regions[i]}) for i in range(500)]
    window = SlidingWindow(baseline, window_seconds=60, slot_seconds=10)
    window.add_predictions(rows[:250], now=30)
    early = window.snapshot(now=30)  # bins the first half; the second half lands in the same slots, binned on top
    window.add_predictions(rows[250:], now=30)
    snapshot = window.snapshot(now=30)

    numeric = baseline.numeric["x"]
    categorical = baseline.categorical["region"]
    expected_x = numeric_counts(x, numeric.edges)
    expected_region = categorical_counts(regions, categorical.categories)
    assert expected_x.sum() == 495 and expected_region.sum() == 497
    assert early.predictions == 250
    assert snapshot.predictions == 500
    np.testing.assert_array_equal(snapshot.feature_counts["x"], expected_x)
    np.testing.assert_array_equal(snapshot.feature_counts["region"], expected_region)
    assert snapshot.drift["x"] == pytest.approx(reference_psi(numeric.ref_ratios, expected_x), rel=1e-12)
    assert snapshot.drift["region"] == pytest.approx(
        reference_psi(categorical.ref_ratios, expected_region), rel=1e-12
    )
    assert snapshot.drift["x"] > 0.1  # the shift is visible


def test_unseen_category_lands_in_the_unseen_bucket(baseline):
    categorical = baseline.categorical["region"]
    window = SlidingWindow(baseline, window_seconds=60, slot_seconds=10)
    window.add_predictions([prediction(f"p{i}", 1.0, {"x": 0.0, "region": "mars"}) for i in range(8)], now=1)
    snapshot = window.snapshot(now=1)
    np.testing.assert_array_equal(snapshot.feature_counts["region"], [0, 0, 0, 0, 8])
    # every training category is empty (share ε) and the unseen bucket holds everything (reference share ε)
    expected = sum((PSI_EPSILON - q) * math.log(PSI_EPSILON / q) for q in categorical.ref_ratios[:-1])
    expected += (1 - PSI_EPSILON) * math.log(1 / PSI_EPSILON)
    assert snapshot.drift["region"] == pytest.approx(expected, rel=1e-12)


def test_empty_window_has_nan_drift_and_no_accuracy(baseline):
    snapshot = SlidingWindow(baseline, window_seconds=60, slot_seconds=10).snapshot(now=0)
    assert (snapshot.predictions, snapshot.labeled, snapshot.correct, snapshot.accuracy) == (0, 0, 0, None)
    assert set(snapshot.drift) == {"x", "region"}
    assert all(math.isnan(value) for value in snapshot.drift.values())


def test_accuracy_from_feedback_joined_by_id(baseline):
    window = SlidingWindow(baseline, window_seconds=60, slot_seconds=10)
    predicted = {"a": 1, "b": 0, "c": 1, "d": "yes", "e": 0}
    window.add_predictions([prediction(pid, 5.0, {"x": 0.0}, value) for pid, value in predicted.items()], now=5)
    assert window.pending == 5
    labels = {"a": 1.0, "b": 1, "c": True, "d": "yes"}  # correct, wrong, correct (True == 1), correct
    assert all(window.add_feedback(Feedback(pid, 6.0, label)) for pid, label in labels.items())
    assert window.add_feedback(Feedback("a", 7.0, 0)) is False  # already labelled
    assert window.add_feedback(Feedback("nobody", 7.0, 1)) is False
    assert window.pending == 1
    snapshot = window.snapshot(now=10)
    assert (snapshot.predictions, snapshot.labeled, snapshot.correct) == (5, 4, 3)
    assert snapshot.accuracy == 0.75


def test_labels_leave_the_window_with_their_slot(baseline):
    window = SlidingWindow(baseline, window_seconds=60, slot_seconds=10)
    window.add_predictions([prediction("a", 5.0, {"x": 0.0}), prediction("b", 25.0, {"x": 0.0})], now=25)
    assert window.add_feedback(Feedback("a", 26.0, 1)) is True
    assert window.add_feedback(Feedback("b", 26.0, 0)) is True
    assert window.snapshot(now=30).accuracy == 0.5
    assert window.snapshot(now=60).accuracy == 0.0  # slot [0, 10) with the correct one expired


@pytest.mark.parametrize(
    ("prediction_value", "label", "same"),
    [
        (1, 1.0, True), (1, True, True), (0, False, True), (1, 0, False),  # numbers by value
        ("1", 1, True), ("1.0", 1, False), ("a", "a", True), ("a", "b", False),  # anything else by its text
    ],
)
def test_same_label(prediction_value, label, same):
    assert same_label(prediction_value, label) is same


def test_pending_is_bounded_and_evictions_counted(baseline):
    window = SlidingWindow(baseline, window_seconds=60, slot_seconds=10, max_pending=3)
    window.add_predictions([prediction(f"p{i}", 1.0, {"x": 0.0}) for i in range(5)], now=1)
    assert (window.pending, window.evicted_pending) == (3, 2)
    assert window.add_feedback(Feedback("p0", 2.0, 1)) is False  # the oldest were forgotten
    assert window.add_feedback(Feedback("p1", 2.0, 1)) is False
    assert window.add_feedback(Feedback("p4", 2.0, 1)) is True
    assert window.snapshot(now=2).predictions == 5  # counts stay: only the wait for a label is bounded


def test_pending_predictions_expire_with_the_window(baseline):
    window = SlidingWindow(baseline, window_seconds=60, slot_seconds=10)
    window.add_predictions([prediction("a", 5.0, {"x": 0.0}), prediction("b", 35.0, {"x": 0.0})], now=35)
    window.snapshot(now=60)
    assert (window.pending, window.evicted_pending) == (1, 1)
    assert window.add_feedback(Feedback("a", 61.0, 1)) is False
    assert window.add_feedback(Feedback("b", 61.0, 1)) is True
