"""`promml exporter`: the HTTP face of the exporter (Flask) and its command-line entry point.

`/metrics` serves the Prometheus text format; `/healthz` answers 200 while the work loop runs and recomputes
on time, 503 otherwise, so an orchestrator restarts an exporter that is stuck rather than one that is slow.
`/readyz` answers 200 once the exporter has something true to serve (baseline loaded, logs readable, a first
recompute done), 503 with the failing checks otherwise: a reason to wait or look, not to restart. Its body also
says whether the estimated performance (`ml_window_estimated_*`) is exported, or why not: no readiness depends on
it.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from flask import Flask, Response, jsonify
from prometheus_client import CONTENT_TYPE_LATEST

from ..baseline import load_baseline
from ..http_server import limit_body, serve
from .collector import MODEL_LABELS, ExporterCollector
from .config import ConfigError, load_config
from .safe_exposition import SafeExposition
from .service import ExporterService


def create_app(service: ExporterService) -> Flask:
    """The Flask app serving one exporter service's metrics and health."""
    exposition = SafeExposition(ExporterCollector(service), MODEL_LABELS,
                                (service.config.model_name, service.config.model_version))
    app = limit_body(Flask("promml.exporter"))

    @app.get("/metrics")
    def metrics() -> Response:
        return Response(exposition.render(), mimetype=CONTENT_TYPE_LATEST)

    @app.get("/healthz")
    def healthz() -> Any:
        healthy = service.is_healthy()
        body = {"status": "ok" if healthy else "unhealthy", "last_recompute": service.published.computed_at}
        return jsonify(body), 200 if healthy else 503

    @app.get("/readyz")
    def readyz() -> Any:
        checks = service.readiness()
        ready = all(checks.values())
        body = {"status": "ready" if ready else "not ready", "checks": checks,
                "problems": service.published.problems,
                "estimated_performance": service.estimated_performance_note}
        return jsonify(body), 200 if ready else 503

    return app


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", required=True, help="exporter YAML configuration (see docs/exporter.md)")


def run(args: argparse.Namespace) -> int:
    """Load the config and baseline, start the work loop and serve until SIGTERM or SIGINT."""
    try:
        config = load_config(args.config)
        baseline = load_baseline(config.baseline)
        service = ExporterService(config, baseline)  # checks the config against the baseline (segments)
    except (ConfigError, ValueError, OSError) as error:
        print(f"promml exporter: {error}", file=sys.stderr)
        return 2
    service.start()
    banner = f"promml exporter for {config.model_name} {config.model_version} on http://{config.listen_host}:{{port}}"
    try:
        serve(create_app(service), config.listen_host, config.listen_port, banner)
    finally:
        service.stop()
    return 0
