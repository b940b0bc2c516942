"""The sliding windows' slot counts, expiry, label join, drift statistics, data quality and performance, against
numpy binning, scipy and scikit-learn on the same rows."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from scipy.spatial.distance import jensenshannon
from scipy.special import rel_entr
from sklearn import metrics
from sklearn.preprocessing import label_binarize

from promml.baseline import (
    Baseline,
    CategoricalReference,
    NumericReference,
    NumericSummary,
    build_baseline,
    parse_baseline,
)
from promml.exporter.config import ConfigError, WindowSpec
from promml.exporter.sampling import merged_sample
from promml.exporter.segments import SLOT_VALUES_PER_REPORTED
from promml.exporter.window import LABEL_DELAY_BUCKETS, SlidingWindow, same_label
from promml.records import Feedback, Prediction
from promml.stats.drift import PSI_EPSILON

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


# --- Several windows, drift statistics, data quality and performance, against scipy / numpy / scikit-learn ------


def numeric_reference(values: np.ndarray, n_bins: int = 10) -> NumericReference:
    """Quantile bins, ratios, summary and sample of `values`, built with numpy here rather than by promml."""
    edges = np.unique(np.quantile(values, np.arange(1, n_bins) / n_bins))
    ratios = np.bincount(np.searchsorted(edges, values, side="right"), minlength=edges.size + 1) / values.size
    summary = NumericSummary(int(values.size), 0.0, float(values.mean()), float(values.std()), float(values.min()),
                             float(values.max()), {})
    return NumericReference(edges, ratios, summary=summary, sample=np.sort(values))


def categorical_reference(shares: dict[str, float]) -> CategoricalReference:
    return CategoricalReference(tuple(shares), np.array([*shares.values(), 0.0]))


@pytest.fixture(scope="module")
def rich_baseline() -> Baseline:
    rng = np.random.default_rng(5)
    return Baseline(
        model_name="m", model_version="1", target="y", n_rows=3000, created_at="2024-01-01T00:00:00Z",
        numeric={"x": numeric_reference(rng.normal(0, 1, 3000)), "z": numeric_reference(rng.uniform(0, 10, 3000))},
        categorical={"region": categorical_reference({"north": 0.5, "south": 0.3, "east": 0.2})},
        score=numeric_reference(rng.uniform(0, 1, 3000)),
        predicted_class=categorical_reference({"0": 0.6, "1": 0.4}),
        task="classification",
    )


def drifted_rows(n: int, seed: int, start: float = 0.0, spread: float = 50.0) -> list[Prediction]:
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(n):
        features = {"x": float(rng.normal(0.4, 1.2)), "z": float(rng.uniform(-1, 12)),
                    "region": str(rng.choice(["north", "south", "east", "mars"], p=[0.3, 0.3, 0.3, 0.1]))}
        score = round(float(rng.uniform(0, 1)), 3)
        rows.append(Prediction(f"s{seed}-{i}", start + float(rng.uniform(0, spread)), "m", "1", features,
                               int(score > 0.5), score))
    return rows


def test_every_drift_statistic_equals_scipy_on_the_same_rows(rich_baseline):
    rows = drifted_rows(400, seed=1)
    rows[0].features["x"] = None  # missing
    del rows[1].features["z"]  # absent
    window = SlidingWindow(rich_baseline, windows=[WindowSpec("1m", 60)], slot_seconds=10)
    window.add_predictions(rows, now=50)
    snapshot = window.snapshot(now=50)

    for name in ("x", "z"):
        ref = rich_baseline.numeric[name]
        values = np.array([r.features[name] for r in rows if isinstance(r.features.get(name), float)])
        counts = numeric_counts(values.tolist(), ref.edges)
        assert snapshot.drift[name] == pytest.approx(reference_psi(ref.ref_ratios, counts), rel=1e-12)
        q = ref.ref_ratios
        assert snapshot.js_distance[name] == pytest.approx(jensenshannon(counts / counts.sum(), q, base=2), rel=1e-9)
        assert snapshot.sample_sizes[name] == values.size  # every value fits in the sample: it is the whole window
        expected = stats.ks_2samp(ref.sample, values, method="asymp")
        assert snapshot.ks[name][0] == pytest.approx(expected.statistic, rel=1e-12)
        assert snapshot.ks[name][1] == pytest.approx(expected.pvalue, rel=1e-9)
        assert snapshot.wasserstein[name] == pytest.approx(
            stats.wasserstein_distance(ref.sample, values) / ref.sample.std(), rel=1e-9
        )
    region = rich_baseline.categorical["region"]
    observed = categorical_counts([r.features["region"] for r in rows], region.categories)
    np.testing.assert_array_equal(snapshot.feature_counts["region"], observed)
    known = observed[:-1]
    expected_p = stats.chisquare(known, region.ref_ratios[:-1] * known.sum()).pvalue
    assert snapshot.chi2_pvalue["region"] == pytest.approx(expected_p, rel=1e-9)
    assert snapshot.unseen_ratio["region"] == observed[-1] / observed.sum()

    scores = [r.score for r in rows]
    score_counts = numeric_counts(scores, rich_baseline.score.edges)
    assert snapshot.prediction_psi["score"] == pytest.approx(
        reference_psi(rich_baseline.score.ref_ratios, score_counts), rel=1e-12)
    class_counts = categorical_counts([str(r.prediction) for r in rows], rich_baseline.predicted_class.categories)
    assert snapshot.prediction_js_distance["class"] == pytest.approx(
        jensenshannon(class_counts / class_counts.sum(), rich_baseline.predicted_class.ref_ratios, base=2), rel=1e-9)
    psis = np.array([snapshot.drift[name] for name in ("x", "z", "region")])
    assert snapshot.dataset_drift_share == np.count_nonzero(psis > 0.1) / 3


def test_data_quality_ratios_and_schema_violations(rich_baseline):
    features = [
        {"x": 0.0, "z": 5.0, "region": "north"},
        {"x": None, "z": 11.0, "region": "mars"},  # x missing, z above the training maximum, region unseen
        {"x": "12", "z": -1.0, "region": ""},  # x of the wrong type, z below the minimum, region missing
        {"z": 5.0, "region": "south", "extra": 1},  # x absent, an unknown feature
        {"x": True, "z": 5.0, "region": 3, "extra": 2, "other": 0},  # a boolean is not a number
        {"x": 0.0, "z": 5.0, "region": "north", "n" * 257: 1},  # a name too long to be a label of its own
    ]
    window = SlidingWindow(rich_baseline, windows=[WindowSpec("1m", 60)], slot_seconds=10)
    window.add_predictions([prediction(f"q{i}", 1.0, f) for i, f in enumerate(features)], now=1)
    snapshot = window.snapshot(now=1)
    assert snapshot.missing_ratio == {"x": 2 / 6, "z": 0.0, "region": 1 / 6}
    z = rich_baseline.numeric["z"].summary
    assert z.minimum > -1.0 and z.maximum < 11.0
    assert snapshot.out_of_range_ratio == {"x": 0.0, "z": 2 / 6}
    assert snapshot.unseen_ratio == {"region": 2 / 5}  # "mars" and 3 ("3" is no training category)
    assert snapshot.schema_violations == {
        ("x", "missing_feature"): 1, ("x", "wrong_type"): 2, ("extra", "unknown_feature"): 2,
        ("other", "unknown_feature"): 1, ("__other__", "unknown_feature"): 1,
    }


def test_several_windows_from_the_same_slots_expire_in_turn(rich_baseline):
    window = SlidingWindow(rich_baseline, windows=[WindowSpec("short", 60), WindowSpec("long", 180)], slot_seconds=10)
    window.add_predictions([prediction("a", 5.0, {"x": 0.0}), prediction("b", 105.0, {"x": 0.0}),
                            prediction("c", 150.0, {"x": 0.0})], now=150)
    assert [(s.name, s.predictions) for s in window.snapshots(now=150)] == [("short", 2), ("long", 3)]
    assert [s.predictions for s in window.snapshots(now=170)] == [1, 3]  # short: slots from [120, 130) on
    assert [s.predictions for s in window.snapshots(now=180)] == [1, 2]  # long: slot [0, 10) is 180 s old
    assert [s.predictions for s in window.snapshots(now=340)] == [0, 0]


def test_summed_bin_counts_of_two_halves_give_the_psi_of_the_whole(rich_baseline):
    rows = drifted_rows(600, seed=2)
    halves = [SlidingWindow(rich_baseline, windows=[WindowSpec("1m", 60)], slot_seconds=10) for _ in range(2)]
    halves[0].add_predictions(rows[::2], now=50)
    halves[1].add_predictions(rows[1::2], now=50)
    whole = SlidingWindow(rich_baseline, windows=[WindowSpec("1m", 60)], slot_seconds=10)
    whole.add_predictions(rows, now=50)
    parts = [half.snapshot(now=50) for half in halves]
    everything = whole.snapshot(now=50)
    for name, ref in {**rich_baseline.numeric, **rich_baseline.categorical}.items():
        summed = parts[0].feature_counts[name] + parts[1].feature_counts[name]
        np.testing.assert_array_equal(summed, everything.feature_counts[name])
        assert reference_psi(ref.ref_ratios, summed) == pytest.approx(everything.drift[name], rel=1e-12)


def test_window_sample_takes_each_slot_in_proportion_to_its_rows(rich_baseline):
    window = SlidingWindow(rich_baseline, windows=[WindowSpec("1m", 60)], slot_seconds=10, sample_size=50)
    busy = [prediction(f"b{i}", 1.0, {"x": 100.0 + i}) for i in range(300)]  # slot 0: 300 rows
    quiet = [prediction(f"q{i}", 11.0, {"x": -100.0 - i}) for i in range(100)]  # slot 1: 100 rows
    window.add_predictions(busy + quiet, now=20)
    assert window.snapshot(now=20).sample_sizes["x"] == 50  # always sample_size when the window has that many
    # the busy slot's share of a 50-value sample: hypergeometric(400, 300, 50), mean 37.5 (chi-square, scipy)
    from_busy = []
    for seed in range(40):
        parts = [(slot.reservoirs["x"].seen, slot.reservoirs["x"].values())
                 for _, slot in sorted(window._slots.items())]
        sample = merged_sample(parts, 50, np.random.default_rng(seed))
        from_busy.append(int(np.count_nonzero(sample > 0)))
    assert stats.ttest_1samp(from_busy, 37.5).pvalue > 0.01


def _minute_rows(minutes: int, per_minute: int, seed: int, shift_from: int | None = None) -> list[Prediction]:
    """`per_minute` rows of x ~ N(0, 1) in each minute; from minute `shift_from` on, x ~ N(1, 1)."""
    rng = np.random.default_rng(seed)
    rows = []
    for minute in range(minutes):
        mean = 1.0 if shift_from is not None and minute >= shift_from else 0.0
        for j, x in enumerate(rng.normal(mean, 1.0, per_minute).tolist()):
            rows.append(prediction(f"m{minute}-{j}", minute * 60 + 30.0, {"x": x}))
    return rows


def day_window(baseline, rows, sample_size=1000) -> SlidingWindow:
    window = SlidingWindow(baseline, windows=[WindowSpec("24h", 86400)], slot_seconds=60, sample_size=sample_size)
    for start in range(0, len(rows), 600):  # polls as they come, with a recompute now and then
        batch = rows[start:start + 600]
        window.add_predictions(batch, now=batch[-1].timestamp)
        window.snapshots(now=batch[-1].timestamp)
    return window


def test_a_day_window_samples_every_minute_alike(baseline):
    """1,440 one-minute slots of 10 rows, sample_size 1000: values are drawn uniformly over the day (chi-square
    over the 24 hours, scipy), not all from the oldest 1,000 minutes."""
    rows = _minute_rows(1440, 10, seed=16)
    window = day_window(baseline, rows)
    hour_of = {x: int(row.timestamp // 3600) for row in rows for x in [row.features["x"]]}
    per_hour = np.zeros(24)
    for seed in range(20):
        parts = [(slot.reservoirs["x"].seen, slot.reservoirs["x"].values())
                 for _, slot in sorted(window._slots.items())]
        for x in merged_sample(parts, 1000, np.random.default_rng(seed)).tolist():
            per_hour[hour_of[x]] += 1
    assert per_hour.sum() == 20 * 1000
    assert stats.chisquare(per_hour).pvalue > 0.01
    assert window.snapshot(now=86399).sample_sizes["x"] == 1000


def test_drift_in_the_last_six_hours_of_a_day_reads_as_in_all_rows(baseline):
    rows = _minute_rows(1440, 10, seed=17, shift_from=1080)
    window = day_window(baseline, rows)
    d, p = window.snapshot(now=86399).ks["x"]
    all_rows = np.array([row.features["x"] for row in rows])
    d_all = stats.ks_2samp(baseline.numeric["x"].sample, all_rows).statistic
    assert d_all > 0.07
    assert abs(d - d_all) < 0.03  # sampling noise of a 1,000-value sample (it read 0.029 against 0.091 before)
    assert p < 0.01


def test_a_burst_in_one_slot_keeps_the_sample_at_sample_size(baseline):
    """10,000 rows in one 60 s slot of a 1-hour window, plus 20 rows in each of 59 others: the sample holds 1,000
    values, and with no drift the normalised Wasserstein stays small."""
    rng = np.random.default_rng(18)
    rows = [prediction(f"q{m}-{j}", m * 60 + 5.0, {"x": float(x)}) for m in range(59)
            for j, x in enumerate(rng.normal(size=20))]
    rows += [prediction(f"b{j}", 59 * 60 + 5.0, {"x": float(x)}) for j, x in enumerate(rng.normal(size=10_000))]
    window = SlidingWindow(baseline, windows=[WindowSpec("1h", 3600)], slot_seconds=60, sample_size=1000)
    window.add_predictions(rows, now=3590)
    snapshot = window.snapshot(now=3590)
    assert snapshot.sample_sizes["x"] == 1000
    assert snapshot.wasserstein["x"] < 0.1


def label_rows(window: SlidingWindow, rows: list[Prediction], labels: list, now: float) -> None:
    window.add_predictions(rows, now=now)
    for row, label in zip(rows, labels, strict=True):
        assert window.add_feedback(Feedback(row.prediction_id, row.timestamp + 30, label))


def test_binary_classification_metrics_equal_scikit_learn(rich_baseline):
    rng = np.random.default_rng(9)
    rows = drifted_rows(300, seed=3)
    labels = [int(rng.uniform() < (0.8 if row.score > 0.5 else 0.3)) for row in rows]
    window = SlidingWindow(rich_baseline, windows=[WindowSpec("1m", 60)], slot_seconds=10)
    label_rows(window, rows, labels, now=50)
    performance = window.snapshot(now=50).performance
    predicted = [row.prediction for row in rows]
    assert performance["accuracy"] == pytest.approx(metrics.accuracy_score(labels, predicted), rel=1e-12)
    assert performance["precision"] == pytest.approx(metrics.precision_score(labels, predicted), rel=1e-12)
    assert performance["recall"] == pytest.approx(metrics.recall_score(labels, predicted), rel=1e-12)
    assert performance["f1"] == pytest.approx(metrics.f1_score(labels, predicted), rel=1e-12)
    assert performance["roc_auc"] == pytest.approx(
        metrics.roc_auc_score(labels, [row.score for row in rows]), abs=0.005)
    tn, fp, fn, tp = metrics.confusion_matrix(labels, predicted).ravel()
    assert window.snapshot(now=50).binary_outcomes == {"tp": tp, "fp": fp, "tn": tn, "fn": fn}


def test_multiclass_metrics_are_macro_averages_as_in_scikit_learn(rich_baseline):
    rng = np.random.default_rng(4)
    classes = ["cat", "dog", "owl"]
    predicted = rng.choice(classes, 200).tolist()
    labels = [p if rng.uniform() < 0.6 else str(rng.choice(classes)) for p in predicted]
    rows = [Prediction(f"m{i}", 5.0, "m", "1", {"x": 0.0}, p, 0.9) for i, p in enumerate(predicted)]
    animals = dataclasses.replace(rich_baseline, predicted_class=categorical_reference(
        {"cat": 0.4, "dog": 0.3, "owl": 0.3}))
    window = SlidingWindow(animals, windows=[WindowSpec("1m", 60)], slot_seconds=10)
    label_rows(window, rows, labels, now=10)
    snapshot = window.snapshot(now=10)
    performance = snapshot.performance
    for name, function in (("precision", metrics.precision_score), ("recall", metrics.recall_score),
                           ("f1", metrics.f1_score)):
        assert performance[name] == pytest.approx(function(labels, predicted, average="macro"), rel=1e-12)
    one_hot = label_binarize(predicted, classes=classes)
    assert performance["roc_auc"] == pytest.approx(
        metrics.roc_auc_score(label_binarize(labels, classes=classes), one_hot, average="macro"), rel=1e-12)
    assert snapshot.binary_outcomes is None


def test_regression_metrics_equal_scikit_learn(rich_baseline):
    rng = np.random.default_rng(6)
    regression = dataclasses.replace(rich_baseline, task="regression")
    predicted = rng.normal(10, 3, 250)
    labels = predicted + rng.normal(0.5, 2, 250)
    rows = [Prediction(f"r{i}", 5.0, "m", "1", {"x": 0.0}, float(p), None) for i, p in enumerate(predicted)]
    window = SlidingWindow(regression, windows=[WindowSpec("1m", 60)], slot_seconds=10)
    label_rows(window, rows, labels.tolist(), now=10)
    snapshot = window.snapshot(now=10)
    assert snapshot.performance["mae"] == pytest.approx(metrics.mean_absolute_error(labels, predicted), rel=1e-9)
    assert snapshot.performance["rmse"] == pytest.approx(
        math.sqrt(metrics.mean_squared_error(labels, predicted)), rel=1e-9)
    assert snapshot.performance["mean_residual"] == pytest.approx(float(np.mean(labels - predicted)), rel=1e-9)
    assert snapshot.accuracy is None  # no accuracy for a regression model
    assert window.outcome_totals == {}


def test_label_ttl_shorter_than_the_window(rich_baseline):
    window = SlidingWindow(rich_baseline, windows=[WindowSpec("1m", 60)], slot_seconds=10, label_ttl_seconds=20)
    window.add_predictions([prediction("a", 5.0, {"x": 0.0}), prediction("b", 25.0, {"x": 0.0})], now=25)
    window.snapshot(now=30)  # the oldest slot waiting for labels: floor((30 - 20) / 10) + 1 = 2, i.e. [20, 30)
    assert (window.pending, window.evicted_pending) == (1, 1)
    assert window.add_feedback(Feedback("a", 31.0, 1)) is False
    assert window.add_feedback(Feedback("b", 31.0, 1)) is True
    assert window.snapshot(now=31).predictions == 2  # the rows stay in the window


def test_label_delays_and_outcome_totals_leave_out_feedback_read_again(rich_baseline):
    window = SlidingWindow(rich_baseline, windows=[WindowSpec("1m", 60)], slot_seconds=10)
    window.add_predictions([prediction(pid, 10.0, {"x": 0.0}, predicted=1) for pid in "abcd"], now=10)
    assert window.add_feedback(Feedback("a", 10.5, 1))  # 0.5 s
    assert window.add_feedback(Feedback("b", 40.0, 0))  # 30 s
    assert window.add_feedback(Feedback("c", 9.0, 1))  # stamped before its prediction: 0
    assert window.add_feedback(Feedback("d", 20.0, 1), counted=False)  # read again after a restart
    assert window.outcome_totals == {"correct": 2, "incorrect": 1}
    expected_counts = np.histogram([0.5, 30.0, 0.0], bins=[-np.inf, *LABEL_DELAY_BUCKETS, np.inf])[0]
    np.testing.assert_array_equal(window.label_delay_counts, expected_counts)
    assert window.label_delay_sum == 30.5
    assert window.snapshot(now=20).labeled == 4  # the window has every label


# --- Segments: per value counts and the demographic parity ratio, against pandas on the same rows ----------------


def segment_rows(n: int, seed: int, start: float = 0.0) -> tuple[list[Prediction], list[int]]:
    """Rows whose positive rate depends on the region (north predicts 1 most, east least), and their labels."""
    rng = np.random.default_rng(seed)
    rates = {"north": 0.6, "south": 0.45, "east": 0.3, "mars": 0.5}
    rows, labels = [], []
    for i in range(n):
        region = str(rng.choice(list(rates), p=[0.4, 0.3, 0.25, 0.05]))
        predicted = int(rng.uniform() < rates[region])
        features = {"x": float(rng.normal()), "z": float(rng.uniform(0, 10)), "region": region}
        rows.append(Prediction(f"g{seed}-{i}", start + float(rng.uniform(0, 50)), "m", "1", features, predicted,
                               0.5))
        labels.append(predicted if rng.uniform() < 0.8 else 1 - predicted)
    return rows, labels


def pandas_segments(rows: list[Prediction], labels: dict[str, int], feature: str) -> pd.DataFrame:
    frame = pd.DataFrame({
        "value": [row.features.get(feature) for row in rows],
        "positive": [row.prediction == 1 for row in rows],
        "labeled": [row.prediction_id in labels for row in rows],
        "correct": [labels.get(row.prediction_id) == row.prediction for row in rows],
    }).dropna(subset=["value"])
    return frame.groupby("value").agg(rows=("positive", "size"), positive=("positive", "sum"),
                                      labeled=("labeled", "sum"), correct=("correct", "sum"))


def test_segment_counts_rates_accuracy_and_parity_equal_pandas(rich_baseline):
    rows, labels = segment_rows(600, seed=11)
    rows[3].features["region"] = None  # missing: in no segment
    labelled = {row.prediction_id: label for row, label in zip(rows[::2], labels[::2], strict=True)}
    window = SlidingWindow(rich_baseline, windows=[WindowSpec("1m", 60)], slot_seconds=10, segments=["region"],
                           min_segment_rows=40)
    window.add_predictions(rows, now=50)
    for pid, label in labelled.items():
        assert window.add_feedback(Feedback(pid, 55.0, label))
    snapshot = window.snapshot(now=55)

    expected = pandas_segments(rows, labelled, "region")
    assert sorted(snapshot.segments["region"]) == sorted(expected.index) == ["east", "mars", "north", "south"]
    for value, counts in snapshot.segments["region"].items():
        row = expected.loc[value]
        assert (counts.rows, counts.positive, counts.labeled, counts.correct) == (
            row["rows"], row["positive"], row["labeled"], row["correct"])
        assert counts.positive_rate == row["positive"] / row["rows"]
        assert counts.accuracy == row["correct"] / row["labeled"]
    rates = (expected["positive"] / expected["rows"])[expected["rows"] >= 40]
    assert "mars" not in rates.index  # 5% of 600 rows: under min_segment_rows, left out of the ratio
    assert snapshot.parity_ratio == {"region": rates.min() / rates.max()}
    assert snapshot.parity_ratio["region"] < 0.8


def test_numeric_segment_feature_is_split_by_its_baseline_bins(rich_baseline):
    rows, _ = segment_rows(300, seed=12)
    window = SlidingWindow(rich_baseline, windows=[WindowSpec("1m", 60)], slot_seconds=10, segments=["z"])
    window.add_predictions(rows, now=50)
    snapshot = window.snapshot(now=50)
    edges = rich_baseline.numeric["z"].edges
    z = np.array([row.features["z"] for row in rows])
    counts = numeric_counts(z.tolist(), edges)
    bounds = ["-inf", *(f"{edge:g}" for edge in edges), "+inf"]
    names = [f"({bounds[0]}, {bounds[1]})", *(f"[{bounds[i]}, {bounds[i + 1]})" for i in range(1, len(bounds) - 1))]
    assert {value: per_value.rows for value, per_value in snapshot.segments["z"].items()} == {
        name: int(n) for name, n in zip(names, counts, strict=True) if n}


def test_segment_values_are_chosen_per_window_and_capped_per_slot_beyond_their_headroom(rich_baseline):
    def row(i: int, region: str, timestamp: float) -> Prediction:
        return prediction(f"c{i}-{region}", timestamp, {"x": 0.0, "region": region}, predicted=i % 2)

    window = SlidingWindow(rich_baseline, windows=[WindowSpec("1m", 60)], slot_seconds=10, segments=["region"],
                           max_segment_values=2)
    assert SLOT_VALUES_PER_REPORTED == 4
    # slot 0: a (3 rows), b (2), c (1): a slot counts up to 2 × 4 values exactly
    window.add_predictions([row(i, r, 1.0) for i, r in enumerate("aaabbc")], now=20)
    # slot 1: d (4 rows), c (1)
    window.add_predictions([row(i, r, 11.0) for i, r in enumerate("ddddc")], now=20)
    slot_values = [sorted(slot.segments["region"].counts) for _, slot in sorted(window._slots.items())]
    assert slot_values == [["a", "b", "c"], ["c", "d"]]
    # the window reports its 2 values with the most rows (d 4, a 3); b (2) and c (1 + 1) are summed into other
    values = window.snapshot(now=20).segments["region"]
    assert {value: per_value.rows for value, per_value in values.items()} == {"d": 4, "a": 3, "__other__": 4}
    assert values["__other__"].positive == 2  # b: rows 3 and 4 (predicted 1, 0); c: row 5 (1) and row 4 (0)
    # slot 2: ten values, more than its 8: the two last new ones (one row each, by name) are counted as other
    window.add_predictions([row(i, r, 21.0) for i, r in enumerate("abcdefghij")], now=25)
    snapshot = window.snapshot(now=25)
    assert snapshot.segment_overflow == {"region": 2}
    assert snapshot.segments["region"]["__other__"].rows == 4 + 8 - 2 + 2


def test_segments_expire_with_their_slots_and_labels_join_their_value(rich_baseline):
    window = SlidingWindow(rich_baseline, windows=[WindowSpec("1m", 60)], slot_seconds=10, segments=["region"],
                           min_segment_rows=1)
    window.add_predictions([prediction("n", 5.0, {"x": 0.0, "region": "north"}, predicted=1),
                            prediction("s", 25.0, {"x": 0.0, "region": "south"}, predicted=0)], now=25)
    assert window.add_feedback(Feedback("n", 26.0, 0))  # wrong
    assert window.add_feedback(Feedback("s", 26.0, 0))  # right
    values = window.snapshot(now=30).segments["region"]
    assert [(v, s.rows, s.positive, s.labeled, s.correct) for v, s in values.items()] == [
        ("north", 1, 1, 1, 0), ("south", 1, 0, 1, 1)]
    assert window.snapshot(now=30).parity_ratio == {"region": 0.0}
    later = window.snapshot(now=60)  # slot [0, 10) left the window with north
    assert list(later.segments["region"]) == ["south"]
    assert math.isnan(later.parity_ratio["region"])  # one value: no ratio
    assert window.snapshot(now=90).segments == {"region": {}}


def test_segment_counts_of_two_halves_add_up_to_the_whole(rich_baseline):
    rows, labels = segment_rows(500, seed=13)
    def run(part: slice) -> SlidingWindow:
        window = SlidingWindow(rich_baseline, windows=[WindowSpec("1m", 60)], slot_seconds=10, segments=["region"])
        window.add_predictions(rows[part], now=50)
        for row, label in zip(rows[part], labels[part], strict=True):
            window.add_feedback(Feedback(row.prediction_id, 52.0, label))
        return window

    halves = [run(slice(0, None, 2)).snapshot(now=55), run(slice(1, None, 2)).snapshot(now=55)]
    whole = run(slice(None)).snapshot(now=55)
    for value, counts in whole.segments["region"].items():
        parts = [half.segments["region"][value] for half in halves]
        assert dataclasses.astuple(counts) == tuple(map(sum, zip(*map(dataclasses.astuple, parts), strict=True)))
    # the fleet's ratio from the summed counts equals the ratio of all rows
    summed = {value: [sum(getattr(half.segments["region"][value], f) for half in halves) for f in ("rows", "positive")]
              for value in whole.segments["region"]}
    rates = [positive / rows_in for rows_in, positive in summed.values() if rows_in >= 30]
    assert min(rates) / max(rates) == pytest.approx(whole.parity_ratio["region"], rel=1e-12)


def test_segments_must_be_baseline_features(rich_baseline):
    with pytest.raises(ConfigError, match="segments: 'colour' is not a feature of the baseline; expected one of "
                                          "region, x, z"):
        SlidingWindow(rich_baseline, windows=[WindowSpec("1m", 60)], slot_seconds=10, segments=["colour"])


def test_regression_segments_count_rows_and_labels_without_positive_rates(rich_baseline):
    regression = dataclasses.replace(rich_baseline, task="regression")
    window = SlidingWindow(regression, windows=[WindowSpec("1m", 60)], slot_seconds=10, segments=["region"])
    window.add_predictions([Prediction("r", 5.0, "m", "1", {"region": "north"}, 1.0, None)], now=5)
    assert window.add_feedback(Feedback("r", 6.0, 2.0))
    snapshot = window.snapshot(now=6)
    assert (snapshot.segments["region"]["north"].rows, snapshot.segments["region"]["north"].labeled) == (1, 1)
    assert snapshot.parity_ratio == {}


def test_label_totals_are_restored_only_with_the_same_delay_buckets(baseline):
    window = SlidingWindow(baseline, window_seconds=60, slot_seconds=10)
    window.add_predictions([prediction("a", 5.0, {"x": 0.0}, predicted=1)], now=5)
    window.add_feedback(Feedback("a", 9.0, 0))
    saved = window.label_totals()
    assert (saved.outcomes, saved.delay_sum) == ({"incorrect": 1}, 4.0)
    restarted = SlidingWindow(baseline, window_seconds=60, slot_seconds=10)
    assert restarted.restore_label_totals(saved)
    assert restarted.label_totals() == saved
    other = dataclasses.replace(saved, delay_counts=(1, 2))
    assert not restarted.restore_label_totals(other) and restarted.label_totals() == saved


def test_rows_of_one_batch_in_several_slots_wait_for_labels_in_the_order_they_came(baseline):
    """The last line of a repeated id is the one a label joins, and eviction goes by arrival, as one by one."""
    window = SlidingWindow(baseline, window_seconds=60, slot_seconds=10)
    window.add_predictions([prediction("a", 55.0, {"x": 0.0}, predicted=1),
                            prediction("a", 15.0, {"x": 0.0}, predicted=0)], now=60)
    window.add_feedback(Feedback("a", 70.0, 0))
    assert (window.outcome_totals, window.label_delay_sum) == ({"correct": 1}, 55.0)

    window = SlidingWindow(baseline, window_seconds=60, slot_seconds=10, label_ttl_seconds=30)
    window.add_predictions([prediction("new", 95.0, {"x": 0.0}), prediction("late", 65.0, {"x": 0.0})], now=100)
    assert window.evicted_pending == 0 and window.add_feedback(Feedback("late", 100.0, 1))  # behind a fresh one

    window = SlidingWindow(baseline, window_seconds=60, slot_seconds=10, max_pending=1)
    window.add_predictions([prediction("first", 35.0, {"x": 0.0}), prediction("second", 15.0, {"x": 0.0})], now=40)
    assert window.evicted_pending == 1 and window.add_feedback(Feedback("second", 40.0, 1))


def test_a_sparse_feature_drifts_when_its_share_of_zeros_falls():
    """95 % zeros in training, 50 % in the window: PSI is the two-bin formula over {0} and (0, +inf), and the
    feature counts in the dataset drift share."""
    rest = np.linspace(1.0, 2.0, 50)
    training = parse_baseline(build_baseline({"x": np.concatenate([np.zeros(950), rest]).tolist()}, n_bins=10))
    window = SlidingWindow(training, window_seconds=600, slot_seconds=60)
    values = np.concatenate([np.zeros(500), np.tile(rest, 10)])
    window.add_predictions([prediction(f"p{i}", 10.0, {"x": float(v)}) for i, v in enumerate(values)], now=20)
    snapshot = window.snapshot(now=20)
    p, q = np.array([0.5, 0.5]), np.array([0.95, 0.05])
    assert snapshot.drift["x"] == pytest.approx(float(np.sum((p - q) * np.log(p / q))), rel=1e-12)
    assert snapshot.drift["x"] > 0.1
    assert snapshot.dataset_drift_share == 1.0
    js = jensenshannon(p, q, base=2)
    assert snapshot.js_distance["x"] == pytest.approx(js, rel=1e-9)


def labelled_window(baseline, predicted, labels, scores=None, **kwargs) -> SlidingWindow:
    window = SlidingWindow(baseline, windows=[WindowSpec("1h", 3600)], slot_seconds=60, **kwargs)
    scores = [None] * len(predicted) if scores is None else scores
    rows = [Prediction(f"r{i}", 10.0, "m", "1", {"x": 0.0}, p, s)
            for i, (p, s) in enumerate(zip(predicted, scores, strict=True))]
    label_rows(window, rows, labels, now=100)
    return window


def classifier_baseline(truth, predicted, **kwargs) -> Baseline:
    rng = np.random.default_rng(0)
    columns = {"x": rng.normal(size=len(truth)).tolist(), "y": truth, "p": predicted}
    return parse_baseline(build_baseline(columns, target="y", prediction="p", **kwargs))


def test_the_baseline_and_the_window_use_one_positive_class():
    rng = np.random.default_rng(11)
    truth = rng.choice(["bad", "good"], 800, p=[0.3, 0.7]).tolist()
    predicted = [t if rng.uniform() < 0.8 else ("good" if t == "bad" else "bad") for t in truth]
    baseline = classifier_baseline(truth, predicted, positive_class="bad")
    assert baseline.positive_class == "bad" and baseline.classes == ("bad", "good")
    expected = {"precision": metrics.precision_score(truth, predicted, pos_label="bad"),
                "recall": metrics.recall_score(truth, predicted, pos_label="bad"),
                "f1": metrics.f1_score(truth, predicted, pos_label="bad")}
    window = labelled_window(baseline, predicted, truth)  # no positive_class in the config: the baseline's
    performance = window.snapshot(now=100).performance
    for name, value in expected.items():
        assert baseline.performance[name] == pytest.approx(value, rel=1e-12)
        assert performance[name] == pytest.approx(value, rel=1e-12)


def test_a_configured_positive_class_that_differs_from_the_baseline_stops_the_exporter():
    truth = ["bad", "good"] * 50
    baseline = classifier_baseline(truth, truth)  # the larger label, "good", by default
    assert baseline.positive_class == "good"
    with pytest.raises(ConfigError, match="positive_class: the config says 'bad' but the baseline's positive class "
                                          "is 'good'"):
        SlidingWindow(baseline, window_seconds=60, slot_seconds=10, positive_class="bad")
    with pytest.raises(ConfigError, match="positive_class: '1' is not one of the model's classes"):
        SlidingWindow(dataclasses.replace(baseline, positive_class=None), window_seconds=60, slot_seconds=10,
                      positive_class=1)


def test_a_window_with_only_negatives_has_zero_precision_recall_and_f1():
    baseline = classifier_baseline([0, 1] * 100, [0, 1] * 100)
    performance = labelled_window(baseline, [0] * 50, [0] * 50).snapshot(now=100).performance
    expected = metrics.precision_recall_fscore_support([0] * 50, [0] * 50, pos_label=1, average="binary",
                                                       zero_division=0)[:3]
    assert (performance["precision"], performance["recall"], performance["f1"]) == expected == (0.0, 0.0, 0.0)


def test_a_stray_label_is_counted_and_does_not_switch_to_macro_averages():
    rng = np.random.default_rng(12)
    baseline = classifier_baseline([0, 1] * 100, [0, 1] * 100)
    truth = rng.integers(0, 2, 1000)
    predicted = np.where(rng.uniform(size=1000) < 0.9, truth, 1 - truth)
    truth[500] = 2
    snapshot = labelled_window(baseline, predicted.tolist(), truth.tolist()).snapshot(now=100)
    assert snapshot.performance["f1"] == pytest.approx(metrics.f1_score(truth == 1, predicted == 1), rel=1e-12)
    assert snapshot.performance["precision"] == pytest.approx(
        metrics.precision_score(truth == 1, predicted == 1), rel=1e-12)
    assert snapshot.unknown_class_rows == 1
    assert sum(snapshot.binary_outcomes.values()) == 1000


def test_mean_residual_has_one_sign_in_the_baseline_and_the_window():
    rng = np.random.default_rng(13)
    truth = rng.normal(10, 2, 500)
    predicted = truth + rng.normal(0.5, 1, 500)  # over-predicts
    baseline = parse_baseline(build_baseline({"x": rng.normal(size=500), "y": truth, "p": predicted},
                                             target="y", prediction="p"))
    window = labelled_window(baseline, predicted.tolist(), truth.tolist())
    expected = float(np.mean(truth - predicted))
    assert expected < 0
    assert baseline.performance["mean_residual"] == pytest.approx(expected, rel=1e-12)
    assert window.snapshot(now=100).performance["mean_residual"] == pytest.approx(expected, rel=1e-12)


def test_a_regression_slot_keeps_sums_not_rows():
    rng = np.random.default_rng(14)
    truth = rng.normal(size=2000)
    baseline = parse_baseline(build_baseline({"x": rng.normal(size=2000), "y": truth, "p": truth + 0.1},
                                             target="y", prediction="p"))
    window = labelled_window(baseline, (truth + 0.1).tolist(), truth.tolist())
    (slot,) = window._slots.values()
    assert slot.labels.residual_rows == 2000
    assert len(slot.labels.confusion) == 0 and slot.labels.positive_scores is None


def test_segment_counts_are_exact_for_the_values_reported_whatever_the_polls():
    """40 values, max_segment_values 20, polls of 10 rows: the window reports the true top 20 by rows (ties by
    name), each with its exact rows and positive predictions (numpy on the same rows), and the rest as other."""
    rng = np.random.default_rng(15)
    names = [f"v{i:02d}" for i in range(40)]
    shares = 1 / np.arange(1, 41) ** 0.8
    n = 6000
    values = rng.choice(names, n, p=shares / shares.sum())
    predicted = rng.integers(0, 2, n)
    timestamps = np.sort(rng.uniform(60, 3600, n))
    baseline = dataclasses.replace(classifier_baseline([0, 1] * 50, [0, 1] * 50), categorical={
        "group": categorical_reference({name: 1 / 40 for name in names})})
    window = SlidingWindow(baseline, windows=[WindowSpec("1h", 3600)], slot_seconds=60, segments=["group"],
                           max_segment_values=20)
    for start in range(0, n, 10):
        window.add_predictions([Prediction(f"g{i}", float(timestamps[i]), "m", "1", {"group": str(values[i])},
                                           int(predicted[i]), None) for i in range(start, min(start + 10, n))],
                               now=float(timestamps[min(start + 9, n - 1)]))
    reported = window.snapshot(now=3600).segments["group"]
    distinct, rows = np.unique(values, return_counts=True)
    ranked = sorted(zip(distinct.tolist(), rows.tolist(), strict=True), key=lambda item: (-item[1], item[0]))
    top = {name for name, _ in ranked[:20]}
    assert set(reported) == top | {"__other__"}
    for name in top:
        assert reported[name].rows == int(np.count_nonzero(values == name))
        assert reported[name].positive == int(np.count_nonzero((values == name) & (predicted == 1)))
    others = ~np.isin(values, list(top))
    assert reported["__other__"].rows == int(np.count_nonzero(others))
    assert reported["__other__"].positive == int(np.count_nonzero(others & (predicted == 1)))
    assert window.snapshot(now=3600).segment_overflow == {"group": 0}


def test_a_score_outside_0_1_is_counted_and_logged_once(caplog):
    baseline = classifier_baseline([0, 1] * 50, [0, 1] * 50)
    with caplog.at_level("WARNING", logger="promml.exporter.window"):
        window = labelled_window(baseline, [1, 0, 1], [1, 0, 0], scores=[2.5, -1.0, 0.7])
    assert window.snapshot(now=100).scores_outside_unit == 2
    assert [record.getMessage()[:50] for record in caplog.records] == [
        "promml exporter: score 2.5 of prediction 'r0' is o"]


def saved_window(baseline: Baseline) -> SlidingWindow:
    window = SlidingWindow(baseline, windows=[WindowSpec("1m", 60), WindowSpec("2m", 120)], slot_seconds=10,
                           segments=["region"], sample_size=40)
    rows = drifted_rows(300, seed=2, spread=100)
    rows[0].features["x"] = "text"  # a wrong type
    rows[1].features["extra"] = 1.0  # an unknown feature
    window.add_predictions(rows, now=100)
    for row in rows[::3]:
        window.add_feedback(Feedback(row.prediction_id, row.timestamp + 5, int(row.timestamp) % 2))
    return window


def snapshots_equal(left: list, right: list) -> bool:
    import json

    def plain(value):
        if isinstance(value, np.ndarray):
            return value.tolist()
        if isinstance(value, dict):
            return {str(k): plain(v) for k, v in value.items()}
        if dataclasses.is_dataclass(value):
            return plain(dataclasses.asdict(value))
        return value

    return json.dumps([plain(s) for s in left], sort_keys=True) == json.dumps([plain(s) for s in right], sort_keys=True)


def test_state_round_trip_gives_the_same_windows_and_goes_on_the_same(rich_baseline):
    import json

    window = saved_window(rich_baseline)
    state = json.loads(json.dumps(window.to_state()))
    restored = SlidingWindow(rich_baseline, windows=[WindowSpec("1m", 60), WindowSpec("2m", 120)], slot_seconds=10,
                             segments=["region"], sample_size=40)
    restored.restore_state(state)
    assert restored.pending == window.pending == 200 and restored.evicted_pending == window.evicted_pending
    assert snapshots_equal(restored.snapshots(110), window.snapshots(110))
    later = drifted_rows(200, seed=3, start=100, spread=30)  # new rows and labels land the same in both
    for target in (window, restored):
        target.add_predictions(later, now=130)
        for row in later[::2]:
            target.add_feedback(Feedback(row.prediction_id, 131, 1))
    assert snapshots_equal(restored.snapshots(135), window.snapshots(135))


def crafted(state: dict, path: list, value) -> dict:
    import copy

    changed = copy.deepcopy(state)
    target = changed
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    return changed


@pytest.mark.parametrize(
    ("path", "value", "message"),
    [
        (["slots", 0, 1, "predictions"], 10**400, r"slots\[0\]\[1\].predictions: expected an integer"),
        (["slots", 0, 1, "predictions"], 1, r"slots\[0\]\[1\].counts.x\[0\]: expected an integer from 0 to 1"),
        (["slots", 0, 1, "missing"], {"nope": 1}, r"missing: 'nope' is not a feature of this window"),
        (["slots", 0, 1, "violations"], [["x", "bad_reason", 1]], r"violations\[0\]: expected \[feature, reason"),
        (["slots", 0, 1, "labels", "labeled"], -1, r"labels.labeled: expected an integer"),
        (["slots", 0, 0], 2**70, r"slots\[0\]\[0\]: expected an integer"),
        (["pending", "ids"], [1] * 200, r"pending.ids\[0\]: expected a string"),
        (["pending", "predictions"], [10**6] * 200, r"pending.predictions\[0\]: expected an integer from 0"),
        (["pending", "timestamps"], "AAAAAAAA8H8=", r"pending.timestamps: values must be finite"),  # infinity
        (["pending", "timestamps"], "AAAAAAAAAAA=", r"pending: columns of different lengths"),
        (["evicted_pending"], 10**400, r"evicted_pending: expected an integer"),
        (["layout"], "0" * 64, r"checkpoint.window: saved for other slots"),
        (["slots"], [[1, {}]] * 2, r"slots\[0\]\[1\].predictions: missing"),
    ],
)
def test_crafted_window_states_are_refused_and_nothing_changes(rich_baseline, path, value, message):
    from promml.exporter.state import InvalidState

    state = saved_window(rich_baseline).to_state()
    window = SlidingWindow(rich_baseline, windows=[WindowSpec("1m", 60), WindowSpec("2m", 120)], slot_seconds=10,
                           segments=["region"], sample_size=40)
    with pytest.raises(InvalidState, match=message):
        window.restore_state(crafted(state, path, value))
    assert window.pending == 0 and window.snapshots(110)[0].predictions == 0
