"""The traffic generator drives a real demo server on loopback and posts each label after its delay."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry
from werkzeug.serving import make_server

from promml.demo.server import create_app
from promml.demo.traffic import TrafficGenerator
from promml.instrumentation import jsonl_writer


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, CollectorRegistry, Path]]:
    log_dir = tmp_path_factory.mktemp("logs")
    registry = CollectorRegistry()
    httpd = make_server("127.0.0.1", 0, create_app(str(log_dir), registry=registry), threaded=True)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_port}", registry, log_dir
    httpd.shutdown()


def test_phase_sends_predictions_and_delayed_labels(server: tuple[str, CollectorRegistry, Path]) -> None:
    url, registry, log_dir = server
    labels = {"model_name": "credit-risk", "model_version": "1.0.0"}
    before = registry.get_sample_value("ml_predictions_total", labels) or 0
    generator = TrafficGenerator(url, rps=50, label_delay_seconds=60, seed=1)
    stats = generator.run_phase(drift=False, duration_seconds=0.4)
    assert stats.predictions_failed == 0 and stats.predictions_ok > 0
    assert stats.feedback_ok == 0  # every label is still within its delay
    assert registry.get_sample_value("ml_predictions_total", labels) - before == stats.predictions_ok
    flushed = generator.flush_feedback()
    assert flushed.feedback_ok == stats.predictions_ok and flushed.feedback_failed == 0
    jsonl_writer.shared_writer(log_dir / "feedback.jsonl").flush()
    assert len((log_dir / "feedback.jsonl").read_text().splitlines()) >= flushed.feedback_ok


def test_zero_delay_labels_go_out_within_the_phase(server: tuple[str, CollectorRegistry, Path]) -> None:
    url, _, _ = server
    stats = TrafficGenerator(url, rps=50, label_delay_seconds=0, seed=2).run_phase(drift=True, duration_seconds=0.4)
    assert stats.predictions_ok > 0 and stats.feedback_ok >= stats.predictions_ok - 1


def test_an_unreachable_server_is_counted_not_raised() -> None:
    from promml.demo.stack import free_port

    generator = TrafficGenerator(f"http://127.0.0.1:{free_port()}", rps=20, label_delay_seconds=0, seed=3)
    stats = generator.run_phase(drift=False, duration_seconds=0.2)
    assert stats.predictions_ok == 0 and stats.predictions_failed > 0


def test_rps_must_be_positive() -> None:
    with pytest.raises(ValueError, match="rps must be > 0"):
        TrafficGenerator("http://127.0.0.1:1", rps=0)
