"""`promml demo-server`: a Flask model server around the demo classifier, instrumented with `promml.monitor`.

It shows the intended use of the library: the predict function is decorated, the ids come back to the client,
and ground truth is posted later to `/feedback`, which takes labels only from callers that show the token of
`$PROMML_FEEDBACK_TOKEN` (or of the file named by `$PROMML_FEEDBACK_TOKEN_FILE`) when one is set: one way to make
sure that only the systems that know the truth can label predictions (docs/instrumentation.md, Security). Bad
requests get a 400 that names the problem and are counted in `ml_invalid_requests_total{reason}`; errors raised by
the model itself are counted by the decorator and answered with a 422.
"""

from __future__ import annotations

import argparse
import math
from typing import Any

from flask import Flask, Response, jsonify, request
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry, Counter, generate_latest

import promml

from ..http_server import BadJson, limit_body, read_json, serve
from ..instrumentation.exposition import metrics_registry
from . import data
from .auth import FEEDBACK_TOKEN_ENV, FEEDBACK_TOKEN_FILE_ENV, bearer_matches, feedback_token_from_env
from .model import MODEL_NAME, MODEL_VERSION, CreditRiskModel, ImpossibleInput

MAX_BATCH_ROWS = 1000


class BadRequest(ValueError):
    """A request the server rejects; `reason` is the metric label, the message goes back to the client."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


def _finite_number(value: Any) -> bool:
    """A JSON number the model can use; an integer too large for a float is not one."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return False
    try:
        return math.isfinite(value)
    except OverflowError:
        return False


def validate_row(row: Any, index: int | None = None) -> dict[str, Any]:
    """Check one row against the model's features: all present, none unknown, each of the right type."""
    where = "" if index is None else f"instance {index}: "
    if not isinstance(row, dict):
        raise BadRequest("invalid_type", f"{where}expected a JSON object of feature name to value")
    missing = [name for name in data.FEATURES if name not in row]
    if missing:
        raise BadRequest("missing_feature", f"{where}missing feature(s): {', '.join(missing)}")
    unknown = sorted(set(row) - set(data.FEATURES))
    if unknown:
        raise BadRequest("unknown_feature", f"{where}unknown feature(s): {', '.join(unknown)}")
    for name in data.NUMERIC_FEATURES:
        value = row[name]
        if not _finite_number(value):
            raise BadRequest("invalid_type", f"{where}feature {name!r} must be a finite number, got {value!r}")
    for name in data.CATEGORICAL_FEATURES:
        if not isinstance(row[name], str):
            raise BadRequest("invalid_type", f"{where}feature {name!r} must be a string, got {row[name]!r}")
    return row


def parse_predict_body(body: Any) -> tuple[list[dict[str, Any]], bool]:
    """The rows of a /predict body and whether it was a batch (`{"instances": [...]}`)."""
    if isinstance(body, dict) and "instances" in body:
        instances = body["instances"]
        if not isinstance(instances, list) or not instances:
            raise BadRequest("invalid_type", "instances must be a non-empty list of feature objects")
        if len(instances) > MAX_BATCH_ROWS:
            raise BadRequest("batch_too_large", f"at most {MAX_BATCH_ROWS} instances per request")
        return [validate_row(row, index) for index, row in enumerate(instances)], True
    return [validate_row(body)], False


def create_app(
    log_dir: str | None, *, model: CreditRiskModel | None = None, registry: CollectorRegistry = REGISTRY,
    feedback_token: str | None = None,
) -> Flask:
    """The demo model server; `log_dir=None` serves without a prediction log; with a `feedback_token`, `/feedback`
    answers 401 unless the request carries `Authorization: Bearer <feedback_token>`."""
    model = model or CreditRiskModel()
    predict = promml.monitor(
        model_name=MODEL_NAME, model_version=MODEL_VERSION, log_dir=log_dir, registry=registry
    )(model.predict)
    invalid_requests = Counter(
        "ml_invalid_requests", "Requests rejected with a 400, by reason.",
        ["model_name", "model_version", "reason"], registry=registry,
    )
    app = limit_body(Flask("promml.demo"))

    def reject(reason: str, message: str) -> tuple[Response, int]:
        invalid_requests.labels(MODEL_NAME, MODEL_VERSION, reason).inc()
        return jsonify(error=message, reason=reason), 400

    def json_body() -> Any:
        try:
            body = read_json(request)
        except BadJson as error:
            raise BadRequest(error.reason, str(error)) from None
        if body is None:
            raise BadRequest("invalid_json", "the request body must be JSON, not null")
        return body

    @app.errorhandler(413)
    def too_large(_error: Exception) -> tuple[Response, int]:
        limit = app.config["MAX_CONTENT_LENGTH"]
        return jsonify(error=f"the request body is over the limit of {limit} bytes", reason="too_large"), 413

    @app.post("/predict")
    def predict_endpoint() -> Any:
        try:
            rows, batch = parse_predict_body(json_body())
        except BadRequest as error:
            return reject(error.reason, str(error))
        try:
            results = predict(rows)
        except ImpossibleInput as error:
            return jsonify(error=str(error), reason="model_error"), 422
        ids = promml.last_prediction_ids()
        answers = [{**result, "prediction_id": pid} for result, pid in zip(results, ids, strict=True)]
        return jsonify(predictions=answers) if batch else jsonify(answers[0])

    @app.post("/feedback")
    def feedback_endpoint() -> Any:
        if feedback_token is not None and not bearer_matches(request.headers.get("Authorization", ""), feedback_token):
            return (jsonify(error="labels need the header Authorization: Bearer <token>", reason="unauthorized"),
                    401, {"WWW-Authenticate": "Bearer"})
        try:
            body = json_body()
            prediction_id = body.get("prediction_id") if isinstance(body, dict) else None
            if not isinstance(prediction_id, str) or not prediction_id:
                raise BadRequest("invalid_feedback", "expected {\"prediction_id\": string, \"label\": 0 or 1}")
            label = body.get("label")
            if isinstance(label, bool) or label not in (0, 1):
                raise BadRequest("invalid_feedback", f"label must be 0 or 1, got {label!r}")
        except BadRequest as error:
            return reject(error.reason, str(error))
        if log_dir is None:
            return jsonify(error="this server keeps no logs, so it cannot record feedback"), 503
        if not promml.record_feedback(prediction_id, label, log_dir=log_dir):
            return jsonify(error="feedback queue full, try again"), 503
        return jsonify(status="recorded")

    @app.get("/metrics")
    def metrics() -> Response:
        return Response(generate_latest(metrics_registry(registry)), mimetype=CONTENT_TYPE_LATEST)

    @app.get("/healthz")
    def healthz() -> Any:
        return jsonify(status="ok", model_name=MODEL_NAME, model_version=MODEL_VERSION)

    return app


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--log-dir", default=None, help="where predictions.jsonl and feedback.jsonl are written")
    parser.add_argument("--seed", type=int, default=42, help="seed of the training data")


def run(args: argparse.Namespace) -> int:
    """Train the model, then serve until SIGTERM or SIGINT."""
    token = feedback_token_from_env()
    if token is None:
        print(f"promml demo model server: POST /feedback accepts labels from anyone; set {FEEDBACK_TOKEN_ENV} or "
              f"{FEEDBACK_TOKEN_FILE_ENV} to require a token", flush=True)
    app = create_app(args.log_dir, model=CreditRiskModel(seed=args.seed), feedback_token=token)
    serve(app, args.host, args.port, f"promml demo model server on http://{args.host}:{{port}}")
    return 0
