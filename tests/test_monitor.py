import asyncio
import json
import os
import threading
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import promml
from promml.instrumentation.jsonl_writer import shared_writer
from promml.records import parse_prediction

LABELS = {"model_name": "m", "model_version": "1"}


def sample(registry, name, **labels):
    return registry.get_sample_value(name, {**LABELS, **labels})


def read_log(log_dir):
    shared_writer(log_dir / "predictions.jsonl").flush()
    return [parse_prediction(json.loads(line)) for line in (log_dir / "predictions.jsonl").read_text().splitlines()]


def test_single_row_counts_scores_times_and_logs(tmp_path, registry):
    @promml.monitor(model_name="m", model_version="1", log_dir=tmp_path, registry=registry)
    def predict(row):
        return {"prediction": 1, "score": 0.75}

    assert predict({"age": 41}) == {"prediction": 1, "score": 0.75}
    [prediction_id] = promml.last_prediction_ids()
    assert sample(registry, "ml_predictions_total") == 1
    assert sample(registry, "ml_prediction_latency_seconds_count") == 1
    assert sample(registry, "ml_prediction_score_bucket", le="0.7") == 0
    assert sample(registry, "ml_prediction_score_bucket", le="0.8") == 1
    [record] = read_log(tmp_path)
    assert (record.prediction_id, record.features, record.prediction, record.score) == (
        prediction_id, {"age": 41}, 1, 0.75,
    )
    assert (record.model_name, record.model_version) == ("m", "1")
    assert sample(registry, "ml_prediction_log_records_total", outcome="written") == 1


def test_batch_counts_every_row_and_one_latency_observation(tmp_path, registry):
    @promml.monitor(model_name="m", model_version="1", log_dir=tmp_path, registry=registry)
    def predict(rows):
        return [{"prediction": i % 2, "score": i / 10} for i in range(len(rows))]

    predict([{"x": i} for i in range(10)])
    assert sample(registry, "ml_predictions_total") == 10
    assert sample(registry, "ml_prediction_latency_seconds_count") == 1
    assert sample(registry, "ml_prediction_score_count") == 10
    assert sample(registry, "ml_prediction_score_sum") == pytest.approx(4.5)
    ids = promml.last_prediction_ids()
    assert len(set(ids)) == 10
    assert [r.prediction_id for r in read_log(tmp_path)] == list(ids)


def test_dataframe_batch(registry):
    @promml.monitor(model_name="m", model_version="1", registry=registry)
    def predict(frame):
        return [0] * len(frame)

    predict(pd.DataFrame({"a": [1, 2, 3]}))
    assert sample(registry, "ml_predictions_total") == 3
    assert sample(registry, "ml_prediction_score_count") == 0


def test_async_function(registry):
    @promml.monitor(model_name="m", model_version="1", registry=registry)
    async def predict(row):
        await asyncio.sleep(0.01)
        return {"prediction": 0, "score": 0.1}

    async def call():
        result = await predict({"a": 1})
        return result, promml.last_prediction_ids()

    result, ids = asyncio.run(call())
    assert result == {"prediction": 0, "score": 0.1}
    assert len(ids) == 1
    assert sample(registry, "ml_predictions_total") == 1
    assert sample(registry, "ml_prediction_latency_seconds_sum") >= 0.01  # the await is timed, not skipped


def test_method_skips_self(registry):
    class Model:
        @promml.monitor(model_name="m", model_version="1", registry=registry)
        def predict(self, rows):
            return [1] * len(rows)

    assert Model().predict([{"a": 1}, {"a": 2}]) == [1, 1]
    assert sample(registry, "ml_predictions_total") == 2


def test_errors_are_counted_by_class_and_reraised_unchanged(registry):
    class ModelFailure(RuntimeError):
        pass

    failure = ModelFailure("boom")

    @promml.monitor(model_name="m", model_version="1", registry=registry)
    def predict(row):
        raise failure

    with pytest.raises(ModelFailure) as raised:
        predict({"a": 1})
    assert raised.value is failure
    assert sample(registry, "ml_prediction_errors_total", error_type="ModelFailure") == 1
    assert sample(registry, "ml_prediction_latency_seconds_count") == 1
    assert sample(registry, "ml_predictions_total") == 0


def test_async_errors_are_counted(registry):
    @promml.monitor(model_name="m", model_version="1", registry=registry)
    async def predict(row):
        raise KeyError("x")

    with pytest.raises(KeyError):
        asyncio.run(predict({"a": 1}))
    assert sample(registry, "ml_prediction_errors_total", error_type="KeyError") == 1


def test_unreadable_shapes_never_break_predict(registry, caplog):
    @promml.monitor(model_name="m", model_version="1", registry=registry)
    def predict(data):
        return "fine"

    for _ in range(3):
        assert predict("not rows") == "fine"
    assert sample(registry, "ml_monitoring_errors_total", stage="inputs") == 3
    assert len([r for r in caplog.records if "inputs failed" in r.getMessage()]) == 1


def test_custom_inputs_and_outputs(registry):
    @promml.monitor(
        model_name="m", model_version="1", registry=registry,
        inputs=lambda args, kwargs: [dict(zip(["a", "b"], row, strict=True)) for row in kwargs["matrix"]],
        outputs=lambda result, n: (list(result["classes"]), list(result["probabilities"])),
    )
    def predict(*, matrix):
        return {"classes": [1, 0], "probabilities": [0.9, 0.2]}

    predict(matrix=[[1, 2], [3, 4]])
    assert sample(registry, "ml_predictions_total") == 2
    assert sample(registry, "ml_prediction_score_sum") == pytest.approx(1.1)


def test_two_models_share_a_registry(registry):
    first = promml.monitor(model_name="a", model_version="1", registry=registry)(lambda row: 1)
    second = promml.monitor(model_name="b", model_version="2", registry=registry)(lambda row: 1)
    first({"x": 1})
    second({"x": 1})
    second({"x": 1})
    assert registry.get_sample_value("ml_predictions_total", {"model_name": "a", "model_version": "1"}) == 1
    assert registry.get_sample_value("ml_predictions_total", {"model_name": "b", "model_version": "2"}) == 2


def test_concurrent_calls_are_counted_exactly_with_unique_ids(tmp_path, registry):
    @promml.monitor(model_name="m", model_version="1", log_dir=tmp_path, registry=registry)
    def predict(row):
        return {"prediction": 1, "score": 0.5}

    ids: list[str] = []
    lock = threading.Lock()

    def worker():
        mine = []
        for _ in range(10_000):
            predict({"a": 1})
            mine.extend(promml.last_prediction_ids())
        with lock:
            ids.extend(mine)

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sample(registry, "ml_predictions_total") == 80_000
    assert sample(registry, "ml_prediction_latency_seconds_count") == 80_000
    assert sample(registry, "ml_prediction_score_count") == 80_000
    assert sample(registry, "ml_predicted_class_total", **{"class": "1"}) == 80_000
    assert sample(registry, "ml_predictions_in_flight") == 0
    assert len(set(ids)) == 80_000
    records = read_log(tmp_path)
    written = sample(registry, "ml_prediction_log_records_total", outcome="written")
    dropped = sample(registry, "ml_prediction_log_records_total", outcome="dropped") or 0
    assert written + dropped == 80_000
    assert len(records) == written


def test_log_dir_from_environment(tmp_path, registry, monkeypatch):
    monkeypatch.setenv("PROMML_LOG_DIR", str(tmp_path))
    predict = promml.monitor(model_name="m", model_version="1", registry=registry)(lambda row: 7)
    predict({"a": 1})
    assert [r.prediction for r in read_log(tmp_path)] == [7]


def test_in_flight_batch_size_classes_and_info(registry):
    seen_in_flight = []

    @promml.monitor(model_name="m", model_version="1", registry=registry)
    def predict(rows):
        seen_in_flight.append(sample(registry, "ml_predictions_in_flight"))
        return ["yes" if row["x"] > 1 else "no" for row in rows]

    predict([{"x": 1}, {"x": 2}, {"x": 3}])
    predict([{"x": 0}])
    assert seen_in_flight == [1, 1]
    assert sample(registry, "ml_predictions_in_flight") == 0
    assert sample(registry, "ml_prediction_batch_size_rows_bucket", le="1.0") == 1
    assert sample(registry, "ml_prediction_batch_size_rows_bucket", le="5.0") == 2
    assert sample(registry, "ml_prediction_batch_size_rows_sum") == 4
    assert sample(registry, "ml_predicted_class_total", **{"class": "yes"}) == 2
    assert sample(registry, "ml_predicted_class_total", **{"class": "no"}) == 2
    assert sample(registry, "ml_model_info", promml_version=promml.__version__) == 1


def test_in_flight_returns_to_zero_after_errors_and_cancellation(registry):
    @promml.monitor(model_name="m", model_version="1", registry=registry)
    async def predict(row):
        await asyncio.sleep(10)

    async def cancel_one():
        task = asyncio.create_task(predict({"a": 1}))
        await asyncio.sleep(0.01)
        assert sample(registry, "ml_predictions_in_flight") == 1
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(cancel_one())
    assert sample(registry, "ml_predictions_in_flight") == 0
    assert sample(registry, "ml_prediction_errors_total", error_type="CancelledError") is None


def test_regression_outputs_are_not_counted_as_classes(registry):
    predict = promml.monitor(model_name="m", model_version="1", registry=registry)(lambda rows: [0.5, 1.5])
    predict([{"a": 1}, {"a": 2}])
    assert registry.get_sample_value("ml_predicted_class_total", {**LABELS, "class": "0.5"}) is None
    assert sample(registry, "ml_predictions_total") == 2


def test_numpy_batch_with_feature_names_is_observed_and_logged(tmp_path, registry):
    @promml.monitor(model_name="m", model_version="1", registry=registry, log_dir=tmp_path,
                    feature_names=["a", "b"], outputs=lambda result, n: (result[0], result[1]))
    def predict(matrix):
        return np.array([0, 1, 1]), np.array([0.15, 0.85, 0.95])

    predict(np.array([[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]]))
    assert sample(registry, "ml_predictions_total") == 3
    assert sample(registry, "ml_prediction_score_bucket", le="0.2") == 1
    assert sample(registry, "ml_prediction_score_sum") == pytest.approx(1.95)
    assert sample(registry, "ml_predicted_class_total", **{"class": "1"}) == 2
    records = read_log(tmp_path)
    assert [(r.features, r.prediction, r.score) for r in records] == [
        ({"a": 1.0, "b": 2.0}, 0, 0.15), ({"a": 3.0, "b": 4.0}, 1, 0.85), ({"a": 5.0, "b": 6.0}, 1, 0.95),
    ]


def test_sampling_accounts_for_every_row_exactly(tmp_path, registry):
    predict = promml.monitor(model_name="m", model_version="1", registry=registry, log_dir=tmp_path,
                             sample_rate=0.25)(lambda rows: [1] * len(rows))
    for _ in range(200):
        predict([{"a": 1}] * 5)
    records = read_log(tmp_path)
    outcomes = {o: sample(registry, "ml_prediction_log_records_total", outcome=o) or 0
                for o in ("written", "dropped", "sampled_out", "failed")}
    assert sum(outcomes.values()) == 1000 == sample(registry, "ml_predictions_total")
    assert outcomes["written"] == len(records)
    assert 150 < len(records) < 350  # 250 expected; the bounds are over 6 standard deviations wide
    assert len({r.prediction_id for r in records}) == len(records)
    with pytest.raises(ValueError, match="sample_rate"):
        promml.monitor(model_name="m", model_version="1", sample_rate=1.5)


@pytest.mark.parametrize("kind", ["missing", "read-only"])
def test_an_unwritable_log_dir_never_breaks_predict(kind, tmp_path, registry, caplog):
    if kind == "missing":  # cannot be created: a file stands where the directory should be
        blocker = tmp_path / "file"
        blocker.write_text("a file where the log directory should be")
        log_dir = blocker / "logs"
    else:  # sysfs refuses new files even to root
        log_dir = Path("/sys")
    predict = promml.monitor(model_name="m", model_version="1", registry=registry, log_dir=log_dir)(lambda row: 1)
    for _ in range(50):
        assert predict({"a": 1}) == 1
    shared_writer(log_dir / "predictions.jsonl").flush()
    assert sample(registry, "ml_predictions_total") == 50
    assert sample(registry, "ml_prediction_log_records_total", outcome="failed") == 50
    assert len([r for r in caplog.records if "cannot write" in r.getMessage()]) == 1


def test_each_worker_process_gets_its_own_log_file(tmp_path, monkeypatch):
    from promml.instrumentation.monitor import predictions_file

    assert predictions_file(tmp_path) == tmp_path / "predictions.jsonl"
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path))
    assert predictions_file(tmp_path) == tmp_path / f"predictions-{os.getpid()}.jsonl"


def test_predict_proba_output_is_logged_as_argmax_and_positive_class_score(tmp_path, registry):
    @promml.monitor(model_name="m", model_version="1", log_dir=tmp_path, registry=registry)
    def predict(rows):
        return np.array([[0.9, 0.1], [0.25, 0.75]])

    predict([{"x": 1}, {"x": 2}])
    assert [(r.prediction, r.score) for r in read_log(tmp_path)] == [(0, 0.1), (1, 0.75)]
    assert sample(registry, "ml_predicted_class_total", **{"class": "1"}) == 1
    assert sample(registry, "ml_prediction_score_sum") == pytest.approx(0.85)
    assert sample(registry, "ml_monitoring_errors_total", stage="outputs") is None


def test_a_predictions_and_scores_tuple_is_two_columns_not_two_rows(tmp_path, registry):
    @promml.monitor(model_name="m", model_version="1", log_dir=tmp_path, registry=registry)
    def predict(rows):
        return np.array([0, 1]), np.array([0.2, 0.9])

    predict([{"x": 1}, {"x": 2}])
    assert [(r.prediction, r.score) for r in read_log(tmp_path)] == [(0, 0.2), (1, 0.9)]


def test_an_output_promml_cannot_read_is_counted_and_warned_once_with_the_fix(tmp_path, registry, caplog):
    @promml.monitor(model_name="m", model_version="1", log_dir=tmp_path, registry=registry)
    def predict(rows):
        return [object() for _ in rows]

    predict([{"x": 1}])
    assert sample(registry, "ml_monitoring_errors_total", stage="outputs") == 1
    [warning] = [r.getMessage() for r in caplog.records if "outputs failed" in r.getMessage()]
    assert warning == ("promml: outputs failed for model m: a prediction is a object, not a prediction (a number, "
                       "text or boolean); return one per row, dicts with 'prediction' and 'score', or pass outputs= "
                       "to monitor()")
    predict([{"x": 1}])
    assert sample(registry, "ml_monitoring_errors_total", stage="outputs") == 2
    assert len([r for r in caplog.records if "outputs failed" in r.getMessage()]) == 1


def test_a_class_score_outside_0_1_is_kept_counted_and_warned_once(tmp_path, registry, caplog):
    @promml.monitor(model_name="m", model_version="1", log_dir=tmp_path, registry=registry)
    def predict(rows):
        return [{"prediction": 1, "score": 3.7} for _ in rows]

    predict({"x": 1})
    predict([{"x": 1}, {"x": 2}])
    predict({"x": 1})
    assert sample(registry, "ml_monitoring_errors_total", stage="score_range") == 3
    assert [r.score for r in read_log(tmp_path)] == [3.7] * 4
    warnings = [r.getMessage() for r in caplog.records if "outside 0..1" in r.getMessage()]
    assert warnings == ["promml: model m returned the score 3.7 for a class, outside 0..1; a score is the "
                        "probability of the positive (or predicted) class: return predict_proba's column, not a "
                        "decision function or a logit"]


def test_a_regression_value_or_a_nan_score_is_not_out_of_range(registry):
    @promml.monitor(model_name="m", model_version="1", registry=registry)
    def regress(rows):
        return [{"prediction": 3.5, "score": 7.0}, {"prediction": 2.5, "score": 7.0}]

    @promml.monitor(model_name="m", model_version="1", registry=registry)
    def classify(rows):
        return [{"prediction": 1, "score": float("nan")} for _ in rows]

    regress([{"x": 1}, {"x": 2}])
    classify([{"x": 1}, {"x": 2}])
    classify({"x": 1})
    assert sample(registry, "ml_monitoring_errors_total", stage="score_range") is None
