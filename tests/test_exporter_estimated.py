"""The exporter's estimated performance: a window's per-bin counts give the row-level CBPE estimate (numpy on the
same rows, with scikit-learn's isotonic map), replicas' counts sum to the estimate of all rows, and the counts
survive the checkpoint; a baseline without calibration estimates nothing and /readyz says why."""

from __future__ import annotations

import json

import numpy as np
import pytest
from prometheus_client import CollectorRegistry
from sklearn.isotonic import IsotonicRegression

from promml.baseline import Baseline, build_baseline, parse_baseline
from promml.exporter.collector import ExporterCollector
from promml.exporter.config import ExporterConfig, WindowSpec
from promml.exporter.estimated import CALIBRATION_NEGATIVE, CALIBRATION_POSITIVE, estimator_for, missing_reason
from promml.exporter.service import ExporterService
from promml.exporter.state import InvalidState
from promml.exporter.window import SlidingWindow
from promml.records import Feedback, Prediction, prediction_record

START = 1_700_000_000.0
WINDOWS = [WindowSpec("1m", 60), WindowSpec("2m", 120)]


def reference(seed: int, n: int = 3000) -> dict[str, list]:
    """A binary model whose score leans to the truth: y ~ Bernoulli(s²), predicted 1 above 0.5."""
    rng = np.random.default_rng(seed)
    score = rng.random(n)
    return {"x": rng.normal(size=n).tolist(), "y": (rng.random(n) < score ** 2).astype(int).tolist(),
            "p": (score >= 0.5).astype(int).tolist(), "s": score.tolist()}


@pytest.fixture(scope="module")
def data() -> dict[str, list]:
    return reference(1)


@pytest.fixture(scope="module")
def calibrated(data) -> Baseline:
    return parse_baseline(build_baseline(data, target="y", prediction="p", score="s"))


def rows(n: int, seed: int, start: float = 0.0, spread: float = 100.0) -> list[Prediction]:
    """Scored rows with a few without a score or a prediction (not counted)."""
    rng = np.random.default_rng(seed)
    scores = rng.beta(2.0, 1.5, n)
    out = [Prediction(f"r{seed}-{i}", start + float(rng.uniform(0, spread)), "m", "1", {"x": 0.0},
                      int(score >= 0.5), float(score)) for i, score in enumerate(scores)]
    out[0] = Prediction(out[0].prediction_id, out[0].timestamp, "m", "1", {"x": 0.0}, 1, None)
    out[1] = Prediction(out[1].prediction_id, out[1].timestamp, "m", "1", {"x": 0.0}, None, 0.7)
    return out


def row_level(data: dict[str, list], window_rows: list[Prediction]) -> dict[str, float]:
    """The expected confusion matrix row by row, with scikit-learn's isotonic fit of the reference rows."""
    iso = IsotonicRegression(out_of_bounds="clip", y_min=0.0, y_max=1.0).fit(data["s"], data["y"])
    scored = [row for row in window_rows if row.score is not None and row.prediction is not None]
    p = iso.predict([row.score for row in scored])
    predicted = np.array([row.prediction for row in scored])
    return {"tp": p[predicted == 1].sum(), "fp": (1 - p[predicted == 1]).sum(),
            "tn": (1 - p[predicted == 0]).sum(), "fn": p[predicted == 0].sum()}


def binned(baseline: Baseline, window_rows: list[Prediction]) -> dict[str, float]:
    """The expected confusion matrix row by row, with the baseline's bins."""
    scored = [row for row in window_rows if row.score is not None and row.prediction is not None]
    p = baseline.calibration.calibrate(np.array([row.score for row in scored]))
    predicted = np.array([row.prediction for row in scored])
    return {"tp": p[predicted == 1].sum(), "fp": (1 - p[predicted == 1]).sum(),
            "tn": (1 - p[predicted == 0]).sum(), "fn": p[predicted == 0].sum()}


def window_of(baseline: Baseline, predictions: list[Prediction], now: float = 100.0) -> SlidingWindow:
    window = SlidingWindow(baseline, windows=WINDOWS, slot_seconds=10)
    window.add_predictions(predictions, now=now)
    return window


def test_a_windows_counts_give_the_row_level_expected_confusion_matrix_and_metrics(data, calibrated):
    predictions = rows(1500, seed=2)
    short, long = window_of(calibrated, predictions).snapshots(100)
    inside = [row for row in predictions if row.timestamp >= 50]  # the 1m window's slots: 50 s and later
    assert short.estimated_outcomes == pytest.approx(binned(calibrated, inside), rel=1e-12)
    assert long.estimated_outcomes == pytest.approx(binned(calibrated, predictions), rel=1e-12)
    # the isotonic map is scikit-learn's at every reference score; window scores between two of them differ by
    # at most the step inside that gap, so the sums agree to well under a row (0.1 of 1,498 here)
    assert short.estimated_outcomes == pytest.approx(row_level(data, inside), abs=0.5)
    assert long.estimated_outcomes == pytest.approx(row_level(data, predictions), abs=0.5)
    assert sum(long.estimated_outcomes.values()) == 1498  # two rows without a score or a prediction
    tp, fp, tn, fn = (long.estimated_outcomes[k] for k in ("tp", "fp", "tn", "fn"))
    assert long.estimated_performance["accuracy"] == pytest.approx((tp + tn) / 1498, rel=1e-12)
    assert long.estimated_performance["f1"] == pytest.approx(tp / (tp + (fp + fn) / 2), rel=1e-12)
    assert set(long.estimated_performance) == {"accuracy", "precision", "recall", "f1", "roc_auc"}


def test_replicas_counts_add_up_to_the_estimate_of_all_rows(calibrated):
    predictions = rows(1200, seed=3)
    single = window_of(calibrated, predictions).snapshots(100)[1]
    halves = [window_of(calibrated, part).snapshots(100)[1] for part in (predictions[::2], predictions[1::2])]
    for outcome in ("tp", "fp", "tn", "fn"):
        assert sum(half.estimated_outcomes[outcome] for half in halves) == pytest.approx(
            single.estimated_outcomes[outcome], rel=1e-12)


def test_the_counts_survive_the_checkpoint_and_go_on_the_same(calibrated):
    window = window_of(calibrated, rows(600, seed=4))
    for row in rows(600, seed=4)[::3]:
        window.add_feedback(Feedback(row.prediction_id, row.timestamp + 5, 1))
    state = json.loads(json.dumps(window.to_state()))
    assert {CALIBRATION_NEGATIVE, CALIBRATION_POSITIVE} <= set(state["slots"][0][1]["prediction_counts"])
    restored = SlidingWindow(calibrated, windows=WINDOWS, slot_seconds=10)
    restored.restore_state(state)
    assert [s.estimated_outcomes for s in restored.snapshots(100)] == [s.estimated_outcomes
                                                                       for s in window.snapshots(100)]
    later = rows(300, seed=5, start=100, spread=30)
    for target in (window, restored):
        target.add_predictions(later, now=130)
    assert [s.estimated_performance for s in restored.snapshots(135)] == [s.estimated_performance
                                                                          for s in window.snapshots(135)]


def test_crafted_calibration_counts_are_refused(calibrated):
    state = window_of(calibrated, rows(300, seed=6)).to_state()
    slot = state["slots"][0][1]
    bins = calibrated.calibration.bins
    slot["prediction_counts"][CALIBRATION_POSITIVE] = [slot["predictions"] + 1] + [0] * (bins - 1)
    with pytest.raises(InvalidState, match=r"prediction_counts.calibration_positive"):
        SlidingWindow(calibrated, windows=WINDOWS, slot_seconds=10).restore_state(state)


def test_a_state_saved_with_another_calibration_map_is_not_restored(calibrated):
    other = parse_baseline(build_baseline(reference(9), target="y", prediction="p", score="s"))
    state = window_of(calibrated, rows(100, seed=7)).to_state()
    with pytest.raises(InvalidState, match="saved for other slots"):
        SlidingWindow(other, windows=WINDOWS, slot_seconds=10).restore_state(state)


def test_a_multiclass_model_gets_estimated_accuracy_from_its_top_score():
    rng = np.random.default_rng(8)
    label = rng.integers(0, 3, 3000)
    top = rng.uniform(0.34, 1.0, 3000)
    right = rng.random(3000) < top
    predicted = np.where(right, label, (label + 1) % 3)
    baseline = parse_baseline(build_baseline({"x": rng.normal(size=3000), "y": label, "p": predicted, "s": top},
                                             target="y", prediction="p", score="s"))
    iso = IsotonicRegression(out_of_bounds="clip", y_min=0.0, y_max=1.0).fit(top, right)
    scores = rng.uniform(0.34, 1.0, 800)
    window = window_of(baseline, [Prediction(f"q{i}", 50.0, "m", "1", {"x": 0.0}, int(i % 3), float(s))
                                  for i, s in enumerate(scores)])
    snapshot = window.snapshots(100)[1]
    assert set(snapshot.estimated_outcomes) == {"correct", "incorrect"}
    assert snapshot.estimated_performance == pytest.approx({"accuracy": iso.predict(scores).mean()}, abs=1e-3)


def test_without_calibration_nothing_is_estimated_and_the_reason_is_given(data):
    plain = parse_baseline(build_baseline(data, target="y", prediction="p"))
    assert estimator_for(plain, SlidingWindow(plain, windows=WINDOWS, slot_seconds=10).model) is None
    snapshot = window_of(plain, rows(100, seed=8)).snapshots(100)[0]
    assert snapshot.estimated_outcomes == {} and snapshot.estimated_performance == {}
    assert missing_reason(plain).startswith("not exported: the baseline has no calibration map")


def service_for(tmp_path, baseline: Baseline, records: list[dict]) -> ExporterService:
    (tmp_path / "predictions.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    config = ExporterConfig(model_name="m", model_version="1", baseline=tmp_path / "baseline.json",
                            prediction_logs=(str(tmp_path / "predictions.jsonl"),), feedback_logs=(),
                            windows=(WindowSpec("1m", 60.0),), slot_seconds=10.0)
    service = ExporterService(config, baseline, clock=lambda: START)
    service.read_logs()
    service.recompute()
    return service


def test_the_collector_exports_the_estimate_next_to_the_realized_performance(tmp_path, calibrated):
    records = [prediction_record(row.prediction_id, START - 30, "m", "1", {"x": 0.0}, row.prediction, row.score)
               for row in rows(200, seed=9)[2:]]
    service = service_for(tmp_path, calibrated, records)
    registry = CollectorRegistry()
    registry.register(ExporterCollector(service))
    snapshot = service.published.snapshot
    model = {"model_name": "m", "model_version": "1", "window": "1m"}
    for metric, value in snapshot.estimated_performance.items():
        assert registry.get_sample_value("ml_window_estimated_performance", {**model, "metric": metric}) == value
    outcomes = {outcome: registry.get_sample_value("ml_window_estimated_outcomes", {**model, "outcome": outcome})
                for outcome in ("tp", "fp", "tn", "fn")}
    assert outcomes == snapshot.estimated_outcomes and sum(outcomes.values()) == pytest.approx(198, rel=1e-12)
    assert service.estimated_performance_note == "exported"
