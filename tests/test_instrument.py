import asyncio
import json
import threading

import pandas as pd
import pytest

import promml
from promml.jsonl_writer import shared_writer
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
        for _ in range(2000):
            predict({"a": 1})
            mine.extend(promml.last_prediction_ids())
        with lock:
            ids.extend(mine)

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sample(registry, "ml_predictions_total") == 8000
    assert len(set(ids)) == 8000
    records = read_log(tmp_path)
    written = sample(registry, "ml_prediction_log_records_total", outcome="written")
    dropped = sample(registry, "ml_prediction_log_records_total", outcome="dropped") or 0
    assert written + dropped == 8000
    assert len(records) == written


def test_log_dir_from_environment(tmp_path, registry, monkeypatch):
    monkeypatch.setenv("PROMML_LOG_DIR", str(tmp_path))
    predict = promml.monitor(model_name="m", model_version="1", registry=registry)(lambda row: 7)
    predict({"a": 1})
    assert [r.prediction for r in read_log(tmp_path)] == [7]
