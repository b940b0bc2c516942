"""The demo model server through Flask's test client: answers, metrics in a fresh registry, and the logs it writes."""

from __future__ import annotations

import json
from collections import Counter

import pytest

from promml.demo.auth import feedback_token_from_env
from promml.demo.model import CreditRiskModel
from promml.demo.server import MAX_BATCH_ROWS, create_app
from promml.http_server import DEFAULT_LIMITS
from promml.instrumentation.jsonl_writer import shared_writer
from promml.records import parse_feedback, parse_prediction

MODEL = {"model_name": "credit-risk", "model_version": "1.0.0"}
ROW = {"age": 41.0, "income": 52_000.0, "debt_ratio": 0.3, "num_accounts": 3, "region": "north"}


@pytest.fixture(scope="module")
def model() -> CreditRiskModel:
    return CreditRiskModel(seed=42)


@pytest.fixture
def client(tmp_path, model, registry):
    return create_app(str(tmp_path), model=model, registry=registry).test_client()


def sample(registry, name, **labels):
    return registry.get_sample_value(name, {**MODEL, **labels})


def read_log(path) -> list[dict]:
    shared_writer(path).flush()
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def test_single_prediction(client, model, registry, tmp_path):
    response = client.post("/predict", json=ROW)
    assert response.status_code == 200
    answer = response.get_json()
    assert {key: answer[key] for key in ("prediction", "score")} == model.predict([ROW])[0]
    assert isinstance(answer["prediction_id"], str) and answer["prediction_id"]
    assert sample(registry, "ml_predictions_total") == 1
    assert sample(registry, "ml_prediction_latency_seconds_count") == 1
    assert sample(registry, "ml_prediction_score_count") == 1
    assert sample(registry, "ml_prediction_score_sum") == answer["score"]
    [record] = [parse_prediction(r) for r in read_log(tmp_path / "predictions.jsonl")]
    assert (record.prediction_id, record.features, record.prediction, record.score) == (
        answer["prediction_id"], ROW, answer["prediction"], answer["score"],
    )
    assert (record.model_name, record.model_version) == ("credit-risk", "1.0.0")
    assert sample(registry, "ml_prediction_log_records_total", outcome="written") == 1


def test_batch_prediction(client, model, registry, tmp_path):
    rows = [ROW, {**ROW, "debt_ratio": 0.9, "income": 9_000.0}, {**ROW, "region": "south", "num_accounts": 0}]
    response = client.post("/predict", json={"instances": rows})
    assert response.status_code == 200
    answers = response.get_json()["predictions"]
    assert [{"prediction": a["prediction"], "score": a["score"]} for a in answers] == model.predict(rows)
    ids = [a["prediction_id"] for a in answers]
    assert len(set(ids)) == 3
    assert sample(registry, "ml_predictions_total") == 3
    assert sample(registry, "ml_prediction_latency_seconds_count") == 1
    assert sample(registry, "ml_prediction_score_count") == 3
    logged = [parse_prediction(r) for r in read_log(tmp_path / "predictions.jsonl")]
    assert [(r.prediction_id, r.features) for r in logged] == list(zip(ids, rows, strict=True))


BAD_REQUESTS = [
    ("invalid_json", "not json", "the request body must be JSON"),
    ("invalid_json", "null", "the request body must be JSON, not null"),
    ("invalid_json", "", "the request body must be JSON, and it is empty"),
    ("invalid_json", "[" * 100_000 + "]" * 100_000, "the request body must be JSON nested less deeply"),
    ("invalid_json", '{"instances": ' + "[" * 5000 + "]" * 5000 + "}", "the request body must be JSON nested less"),
    ("invalid_json", b'{"age": "\xff"}', "the request body must be UTF-8 JSON: invalid byte at offset 9"),
    ("missing_feature", {"age": 30}, "missing feature(s): income, debt_ratio, num_accounts, region"),
    ("unknown_feature", {**ROW, "zip": "123", "colour": "red"}, "unknown feature(s): colour, zip"),
    ("invalid_type", {**ROW, "age": "41"}, "feature 'age' must be a finite number, got '41'"),
    ("invalid_type", {**ROW, "num_accounts": True}, "feature 'num_accounts' must be a finite number, got True"),
    ("invalid_type", '{"age": NaN, "income": 1, "debt_ratio": 0.1, "num_accounts": 2, "region": "north"}',
     "feature 'age' must be a finite number, got nan"),
    ("invalid_type", {**ROW, "region": 3}, "feature 'region' must be a string, got 3"),
    ("invalid_type", [ROW], "expected a JSON object of feature name to value"),
    ("invalid_type", {"instances": []}, "instances must be a non-empty list of feature objects"),
    ("invalid_type", {"instances": [ROW, "row"]}, "instance 1: expected a JSON object of feature name to value"),
    ("missing_feature", {"instances": [ROW, {"age": 3}]}, "instance 1: missing feature(s)"),
    ("batch_too_large", {"instances": [ROW] * (MAX_BATCH_ROWS + 1)}, f"at most {MAX_BATCH_ROWS} instances"),
]


@pytest.mark.parametrize(("reason", "body", "message"), BAD_REQUESTS)
def test_bad_predict_requests_are_400_and_counted(client, registry, reason, body, message):
    kwargs = {"data": body} if isinstance(body, str | bytes) else {"json": body}
    response = client.post("/predict", **kwargs)
    assert response.status_code == 400
    answer = response.get_json()
    assert answer["reason"] == reason
    assert answer["error"].startswith(message)
    assert sample(registry, "ml_invalid_requests_total", reason=reason) == 1
    assert sample(registry, "ml_predictions_total") == 0
    assert sample(registry, "ml_prediction_latency_seconds_count") == 0  # the model was never called


def test_a_body_over_the_limit_is_413_before_it_is_read(client, registry):
    limit = DEFAULT_LIMITS.max_body_bytes
    response = client.post("/predict", data=b" " * (limit + 1))
    assert response.status_code == 413
    assert response.get_json() == {"error": f"the request body is over the limit of {limit} bytes",
                                   "reason": "too_large"}
    assert sample(registry, "ml_prediction_latency_seconds_count") == 0
    assert client.post("/predict", data=json.dumps(ROW) + " " * (limit - len(json.dumps(ROW)))).status_code == 200


def test_integer_too_large_for_a_float_is_an_invalid_type(client, registry):
    body = json.dumps(ROW).replace('"age": 41.0', '"age": 1' + "0" * 400)
    response = client.post("/predict", data=body)
    assert response.status_code == 400
    assert response.get_json()["reason"] == "invalid_type"
    assert sample(registry, "ml_invalid_requests_total", reason="invalid_type") == 1


def test_every_rejection_counts_under_its_own_reason(client, registry):
    for _, body, _ in BAD_REQUESTS:
        client.post("/predict", **({"data": body} if isinstance(body, str | bytes) else {"json": body}))
    expected = Counter(reason for reason, _, _ in BAD_REQUESTS)
    counted = {reason: sample(registry, "ml_invalid_requests_total", reason=reason) for reason in expected}
    assert counted == expected


def test_negative_income_is_a_model_error(client, registry, tmp_path):
    response = client.post("/predict", json={"instances": [ROW, {**ROW, "income": -5.0}]})
    assert response.status_code == 422
    assert response.get_json() == {"error": "income must be a finite number >= 0, got -5.0", "reason": "model_error"}
    assert sample(registry, "ml_prediction_errors_total", error_type="ImpossibleInput") == 1
    assert sample(registry, "ml_prediction_latency_seconds_count") == 1
    assert sample(registry, "ml_predictions_total") == 0
    assert sample(registry, "ml_invalid_requests_total", reason="invalid_type") is None
    assert read_log(tmp_path / "predictions.jsonl") == []


def test_feedback_is_recorded(client, tmp_path):
    prediction_id = client.post("/predict", json=ROW).get_json()["prediction_id"]
    for label in (1, 0, 1.0):
        response = client.post("/feedback", json={"prediction_id": prediction_id, "label": label})
        assert response.status_code == 200
        assert response.get_json() == {"status": "recorded"}
    records = [parse_feedback(r) for r in read_log(tmp_path / "feedback.jsonl")]
    assert [(r.prediction_id, r.label) for r in records] == [(prediction_id, label) for label in (1, 0, 1.0)]


@pytest.mark.parametrize(
    "body",
    [
        {"label": 1},
        {"prediction_id": "", "label": 1},
        {"prediction_id": 7, "label": 1},
        {"prediction_id": "p", "label": 2},
        {"prediction_id": "p", "label": True},
        {"prediction_id": "p", "label": "1"},
        {"prediction_id": "p"},
        ["p", 1],
    ],
)
def test_invalid_feedback_is_400_and_counted(client, registry, tmp_path, body):
    response = client.post("/feedback", json=body)
    assert response.status_code == 400
    assert response.get_json()["reason"] == "invalid_feedback"
    assert sample(registry, "ml_invalid_requests_total", reason="invalid_feedback") == 1
    assert read_log(tmp_path / "feedback.jsonl") == []


def test_feedback_that_is_not_json(client, registry):
    response = client.post("/feedback", data="{")
    assert (response.status_code, response.get_json()["reason"]) == (400, "invalid_json")
    assert sample(registry, "ml_invalid_requests_total", reason="invalid_json") == 1


def test_without_a_log_dir_feedback_is_503(model, registry):
    client = create_app(None, model=model, registry=registry).test_client()
    assert client.post("/predict", json=ROW).status_code == 200
    response = client.post("/feedback", json={"prediction_id": "p", "label": 1})
    assert response.status_code == 503
    assert sample(registry, "ml_prediction_log_records_total", outcome="written") == 0  # nothing is logged


def test_health_and_metrics_endpoints(client):
    assert client.get("/healthz").get_json() == {"status": "ok", **MODEL}
    client.post("/predict", json=ROW)
    client.post("/predict", json={"age": 1})
    text = client.get("/metrics").get_data(as_text=True)
    assert 'ml_predictions_total{model_name="credit-risk",model_version="1.0.0"} 1.0' in text
    assert ('ml_invalid_requests_total{model_name="credit-risk",model_version="1.0.0",reason="missing_feature"} 1.0'
            in text)


def test_with_a_token_feedback_needs_it(model, registry, tmp_path, monkeypatch):
    """Ids are unguessable, but only authentication stops a caller from labelling predictions it did not make."""
    token_file = tmp_path / "token"
    token_file.write_text("s3cret\n")
    monkeypatch.setenv("PROMML_FEEDBACK_TOKEN_FILE", str(token_file))
    assert feedback_token_from_env() == "s3cret"
    client = create_app(str(tmp_path), model=model, registry=registry,
                        feedback_token=feedback_token_from_env()).test_client()
    prediction_id = client.post("/predict", json=ROW).get_json()["prediction_id"]
    body = {"prediction_id": prediction_id, "label": 1}
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": "s3cret"}):
        response = client.post("/feedback", json=body, headers=headers)
        assert (response.status_code, response.headers["WWW-Authenticate"]) == (401, "Bearer")
        assert response.get_json()["reason"] == "unauthorized"
    assert read_log(tmp_path / "feedback.jsonl") == []
    assert client.post("/feedback", json=body, headers={"Authorization": "Bearer s3cret"}).status_code == 200
    assert [record["prediction_id"] for record in read_log(tmp_path / "feedback.jsonl")] == [prediction_id]

