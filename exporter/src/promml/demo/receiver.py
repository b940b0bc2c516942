"""`promml demo-receiver`: a local stand-in for Slack and PagerDuty, so the demo's alerts can be seen and tested.

It accepts what Alertmanager sends to a Slack incoming webhook (`POST /slack/<hook>`) and to the PagerDuty
Events API v2 (`POST /pagerduty/v2/enqueue`), validates each the way the real service would (a malformed
message gets the real service's error status, so a broken template fails here as it would in production), and
keeps the last messages in memory for `GET /api/messages` and the page at `/`. It also serves what the links in
those messages open, the runbooks and the dashboards (links.py).
"""

from __future__ import annotations

import argparse
import html
import json
import threading
import time
from collections import deque
from pathlib import Path
from typing import Any

from flask import Flask, Response, jsonify, request

from ..http_server import BadJson, limit_body, read_json, serve
from .links import RUNBOOKS_PATH, LinkTargets, blueprint

MAX_MESSAGES = 1000
"""Messages kept; older ones are dropped, so a long-running demo holds bounded memory."""
PAGERDUTY_ACTIONS = ("trigger", "acknowledge", "resolve")
PAGERDUTY_SEVERITIES = ("critical", "error", "warning", "info")
PAGERDUTY_SUMMARY_MAX = 1024
PAGERDUTY_ROUTING_KEY_LENGTH = 32


def slack_errors(body: Any) -> list[str]:
    """Why Slack would reject this webhook body (empty when it is fine)."""
    if not isinstance(body, dict):
        return ["invalid_payload"]
    if not any(body.get(key) for key in ("text", "attachments", "blocks")):
        return ["no_text"]
    return []


def pagerduty_errors(event: Any) -> list[str]:
    """Why the Events API v2 would reject this event (empty when it is fine)."""
    if not isinstance(event, dict):
        return ["Event object must be a JSON object."]
    errors = []
    routing_key = event.get("routing_key")
    if not isinstance(routing_key, str) or len(routing_key) != PAGERDUTY_ROUTING_KEY_LENGTH:
        errors.append(f"'routing_key' must be a {PAGERDUTY_ROUTING_KEY_LENGTH}-character string.")
    action = event.get("event_action")
    if action not in PAGERDUTY_ACTIONS:
        errors.append(f"'event_action' must be one of {', '.join(PAGERDUTY_ACTIONS)}.")
    if action in ("acknowledge", "resolve") and not event.get("dedup_key"):
        errors.append("'dedup_key' is required for acknowledge and resolve events.")
    if action == "trigger":
        payload = event.get("payload")
        if not isinstance(payload, dict):
            errors.append("'payload' is required for trigger events.")
        else:
            summary = payload.get("summary")
            if not isinstance(summary, str) or not summary:
                errors.append("'payload.summary' is missing or blank.")
            elif len(summary) > PAGERDUTY_SUMMARY_MAX:
                errors.append(f"'payload.summary' is longer than {PAGERDUTY_SUMMARY_MAX} characters.")
            if not isinstance(payload.get("source"), str) or not payload.get("source"):
                errors.append("'payload.source' is missing or blank.")
            if payload.get("severity") not in PAGERDUTY_SEVERITIES:
                errors.append(f"'payload.severity' must be one of {', '.join(PAGERDUTY_SEVERITIES)}.")
    return errors


class MessageStore:
    """The last `MAX_MESSAGES` messages, thread-safe (the server handles requests on several threads)."""

    def __init__(self, capacity: int = MAX_MESSAGES) -> None:
        self._messages: deque[dict[str, Any]] = deque(maxlen=capacity)
        self._lock = threading.Lock()

    def add(self, kind: str, path: str, body: Any) -> None:
        with self._lock:
            self._messages.append({"kind": kind, "path": path, "received_at": time.time(), "body": body})

    def list(self, kind: str | None = None) -> list[dict[str, Any]]:
        with self._lock:
            return [m for m in self._messages if kind is None or m["kind"] == kind]


def create_app(store: MessageStore | None = None, links: LinkTargets | None = None) -> Flask:
    store = store if store is not None else MessageStore()
    app = limit_body(Flask("promml.demo.receiver"))
    app.register_blueprint(blueprint(links or LinkTargets()))

    def json_or_none() -> Any:
        """The body as JSON, or None for a body that is not (judged as the real service judges a non-object)."""
        try:
            return read_json(request)
        except BadJson:
            return None

    @app.post("/slack/<path:hook>")
    def slack(hook: str) -> Any:
        body = json_or_none()
        errors = slack_errors(body)
        if errors:
            return Response(errors[0], status=400, mimetype="text/plain")
        store.add("slack", request.path, body)
        return Response("ok", mimetype="text/plain")

    @app.post("/pagerduty/v2/enqueue")
    def pagerduty() -> Any:
        event = json_or_none()
        errors = pagerduty_errors(event)
        if errors:
            return jsonify(status="invalid event", message="Event object is invalid", errors=errors), 400
        store.add("pagerduty", request.path, event)
        dedup_key = event.get("dedup_key") or f"demo-{time.time_ns()}"
        return jsonify(status="success", message="Event processed", dedup_key=dedup_key), 202

    @app.get("/api/messages")
    def messages() -> Any:
        kind = request.args.get("kind")
        if kind not in (None, "slack", "pagerduty"):
            return jsonify(error="kind must be slack or pagerduty"), 400
        return jsonify(messages=store.list(kind))

    @app.get("/")
    def index() -> Response:
        items = "".join(
            f"<li><b>{html.escape(m['kind'])}</b> {time.strftime('%H:%M:%S', time.localtime(m['received_at']))}"
            f"<pre>{html.escape(json.dumps(m['body'], indent=2))}</pre></li>"
            for m in reversed(store.list())
        )
        page = ("<!doctype html><title>promml demo receiver</title><h1>What Slack and PagerDuty were sent</h1>"
                f'<p><a href="{RUNBOOKS_PATH}/">Runbooks</a></p>'
                f"<ol>{items or '<li>nothing yet</li>'}</ol>")
        return Response(page, mimetype="text/html")

    @app.get("/healthz")
    def healthz() -> Any:
        return jsonify(status="ok")

    return app


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=9096)
    parser.add_argument("--runbooks-dir", type=Path, default=None,
                        help=f"serve these Markdown runbooks as HTML at {RUNBOOKS_PATH}/<name>.md (docs/runbooks)")
    parser.add_argument("--grafana-url", default=None,
                        help="send dashboard links (/d/<uid>) on to this Grafana, as users reach it")
    parser.add_argument("--dashboards-dir", type=Path, default=None,
                        help="without --grafana-url: show these dashboards' queries (grafana/dashboards)")
    parser.add_argument("--prometheus-url", default=None,
                        help="with --dashboards-dir: the Prometheus the queries open in, as users reach it")


def run(args: argparse.Namespace) -> int:
    links = LinkTargets(runbooks_dir=args.runbooks_dir, grafana_url=args.grafana_url,
                        dashboards_dir=args.dashboards_dir, prometheus_url=args.prometheus_url)
    serve(create_app(links=links), args.host, args.port, f"promml demo receiver on http://{args.host}:{{port}}")
    return 0
