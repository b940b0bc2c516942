"""The exporter's HTTP face (/metrics, /healthz) and its command's exit codes for unusable input."""

from __future__ import annotations

import argparse
import contextlib
import time

import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from promml.baseline import build_baseline, load_baseline, parse_baseline, save_baseline
from promml.exporter.app import add_arguments, create_app, run
from promml.exporter.config import ExporterConfig, load_config
from promml.exporter.service import ExporterService

START = 1_700_000_000.0


@pytest.fixture
def service(tmp_path):
    baseline = parse_baseline(build_baseline({"x": [float(i) for i in range(100)]}))
    config = ExporterConfig(
        model_name="m",
        model_version="1",
        baseline=tmp_path / "baseline.json",
        prediction_logs=(str(tmp_path / "predictions.jsonl"),),
        feedback_logs=(),
        window_seconds=300.0,
        slot_seconds=10.0,
        poll_interval_seconds=0.01,
        recompute_interval_seconds=0.05,
    )
    service = ExporterService(config, baseline, clock=lambda: START)
    yield service
    service.stop()


def scrape(client) -> dict[tuple[str, tuple], float]:
    response = client.get("/metrics")
    assert response.status_code == 200
    assert response.mimetype == "text/plain"
    samples = {}
    for family in text_string_to_metric_families(response.get_data(as_text=True)):
        for s in family.samples:
            samples[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return samples


def test_metrics_serves_the_collector(service):
    client = create_app(service).test_client()
    model = (("model_name", "m"), ("model_version", "1"))
    before = scrape(client)
    assert before[("ml_window_seconds", model)] == 300.0
    assert ("ml_window_predictions", model) not in before
    service.recompute()
    after = scrape(client)
    assert after[("ml_window_predictions", model)] == 0.0
    assert after[("ml_exporter_last_recompute_timestamp_seconds", model)] == START


def test_healthz_is_503_until_the_loop_runs_then_200(service):
    client = create_app(service).test_client()
    response = client.get("/healthz")
    assert response.status_code == 503
    assert response.get_json() == {"status": "unhealthy", "last_recompute": None}

    service.start()
    deadline = time.monotonic() + 1.5
    while service.published.computed_at is None and time.monotonic() < deadline:
        time.sleep(0.01)
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.get_json() == {"status": "ok", "last_recompute": START}

    service.stop()
    assert client.get("/healthz").status_code == 503


def test_readyz_needs_logs_and_a_first_recompute(service, tmp_path):
    client = create_app(service).test_client()
    response = client.get("/readyz")
    assert response.status_code == 503
    assert response.get_json()["checks"] == {
        "baseline_loaded": True, "logs_readable": False, "first_recompute_done": False, "measuring": True,
    }
    service.recompute()
    body = client.get("/readyz").get_json()
    assert body["checks"]["logs_readable"] is False and body["checks"]["measuring"] is False  # no prediction log yet
    assert body["problems"] == {"no_log_files": (
        f"no file matches prediction_logs {str(tmp_path / 'predictions.jsonl')!r}: check the path (the model writes "
        "<log_dir>/predictions.jsonl, or predictions-<pid>.jsonl under a multiprocess server, at its first "
        "prediction)")}
    (tmp_path / "predictions.jsonl").write_text("")
    service.recompute()
    response = client.get("/readyz")
    assert response.status_code == 200
    assert response.get_json() == {"status": "ready", "checks": {
        "baseline_loaded": True, "logs_readable": True, "first_recompute_done": True, "measuring": True},
        "problems": {}, "estimated_performance":
        "not exported: the baseline is not of a classifier (no target and prediction of classes)"}


def parse_args(config_path) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    return parser.parse_args(["--config", str(config_path)])


def write_config(tmp_path, baseline_name: str):
    path = tmp_path / "exporter.yml"
    path.write_text(yaml.safe_dump({
        "model_name": "m", "model_version": "1", "baseline": baseline_name,
        "prediction_logs": ["predictions.jsonl"], "listen": "127.0.0.1:9102",
    }))
    return path


def test_run_returns_2_for_a_missing_config(tmp_path, capsys):
    assert run(parse_args(tmp_path / "absent.yml")) == 2
    err = capsys.readouterr().err
    assert err.startswith("promml exporter: cannot read ") and "absent.yml" in err


def test_run_returns_2_for_an_invalid_config(tmp_path, capsys):
    path = tmp_path / "exporter.yml"
    path.write_text("model_name: m\n")
    assert run(parse_args(path)) == 2
    assert "missing required key(s): model_version, baseline, prediction_logs" in capsys.readouterr().err


def test_run_returns_2_for_a_missing_baseline(tmp_path, capsys):
    assert run(parse_args(write_config(tmp_path, "absent.json"))) == 2
    err = capsys.readouterr().err
    assert err.startswith("promml exporter: [Errno 2] No such file or directory") and "absent.json" in err


@pytest.mark.parametrize(
    ("content", "message"),
    [("{not json", "not valid JSON"), ('{"format_version": 1, "features": {}}', "'features' must be a non-empty")],
)
def test_run_returns_2_for_a_bad_baseline(tmp_path, capsys, content, message):
    (tmp_path / "baseline.json").write_text(content)
    assert run(parse_args(write_config(tmp_path, "baseline.json"))) == 2
    assert message in capsys.readouterr().err


def test_a_valid_baseline_file_passes_the_same_checks(tmp_path):
    """The bad-baseline cases above fail for their content, not for the config around them."""
    save_baseline(build_baseline({"x": [1.0, 2.0, 3.0]}), tmp_path / "baseline.json")
    loaded = load_config(write_config(tmp_path, "baseline.json"))
    assert loaded.baseline == tmp_path / "baseline.json"
    assert list(load_baseline(loaded.baseline).numeric) == ["x"]


def _record(prediction_id: str, features: str) -> bytes:
    return (f'{{"prediction_id":"{prediction_id}","timestamp":"2023-11-14T22:13:10.000000Z","model_name":"m",'
            f'"model_version":"1","features":{features},"prediction":1}}\n').encode()


def test_a_lone_surrogate_in_a_record_is_rejected_and_metrics_stay_served(tmp_path):
    """`"region": "\\ud800"` is valid JSON but has no UTF-8 form: as a segment label or an unknown feature name it
    would make every scrape fail. The line is rejected and counted; /metrics serves the rest."""
    baseline = parse_baseline(build_baseline({"x": [float(i) for i in range(100)],
                                              "region": ["north", "south"] * 50}))
    log = tmp_path / "predictions.jsonl"
    log.write_bytes(_record("a", '{"x":1.0,"region":"\\ud800"}') + _record("b", '{"x":1.0,"\\udfff":2}')
                    + _record("c", '{"x":1.0,"region":"north"}') + _record("d", '{"x":1.0,"region":"\\ud83d\\ude00"}'))
    config = ExporterConfig(model_name="m", model_version="1", baseline=tmp_path / "baseline.json",
                            prediction_logs=(str(log),), feedback_logs=(), window_seconds=300.0, slot_seconds=10.0,
                            segments=("region",))
    service = ExporterService(config, baseline, clock=lambda: START)
    service.read_logs()
    service.recompute()
    samples = scrape(create_app(service).test_client())
    model = (("model_name", "m"), ("model_version", "1"))
    assert samples[("ml_exporter_records_total", (("log", "predictions"), *model, ("status", "invalid_text")))] == 2
    assert samples[("ml_exporter_records_total", (("log", "predictions"), *model, ("status", "ok")))] == 2
    assert samples[("ml_window_predictions", model)] == 2.0  # the emoji (a valid surrogate pair) is kept


def test_a_family_that_cannot_be_written_is_dropped_and_counted(service):
    service.recompute()
    snapshot = service.published.snapshot
    snapshot.drift["\ud800"] = 0.5  # a name with no UTF-8 form, however it got there
    client = create_app(service).test_client()
    for expected in (1.0, 2.0):
        samples = scrape(client)
        model = (("model_name", "m"), ("model_version", "1"))
        assert samples[("ml_exporter_exposition_errors_total", (("family", "ml_drift_score"), *model))] == expected
        assert samples[("ml_window_predictions", model)] == 0.0
        assert not any(name == "ml_drift_score" for name, _ in samples)


def test_misconfiguration_gauge_has_every_reason(service, tmp_path):
    client = create_app(service).test_client()
    service.recompute()
    model = (("model_name", "m"), ("model_version", "1"))
    values = {dict(labels)["reason"]: value for (name, labels), value in scrape(client).items()
              if name == "ml_exporter_misconfiguration"}
    assert values == {"no_log_files": 1.0, "log_path_is_directory": 0.0, "other_model_only": 0.0,
                      "features_mismatch": 0.0}
    (tmp_path / "predictions.jsonl").write_text("")
    service.recompute()
    assert scrape(client)[("ml_exporter_misconfiguration", (*model, ("reason", "no_log_files")))] == 0.0


def test_scrapes_write_no_log_lines_at_the_default_level(tmp_path):
    """At the default INFO level the exporter says what it serves once, and nothing per scrape or per request."""
    import os
    import signal
    import subprocess
    import sys
    import urllib.request

    from conftest import wait_for

    from promml.demo.stack import free_port

    save_baseline(build_baseline({"x": [float(i) for i in range(100)]}), tmp_path / "baseline.json")
    (tmp_path / "predictions.jsonl").write_text("")
    port = free_port()
    (tmp_path / "exporter.yml").write_text(yaml.safe_dump({
        "model_name": "m", "model_version": "1", "baseline": "baseline.json", "prediction_logs": "predictions.jsonl",
        "listen": f"127.0.0.1:{port}"}))
    config = str(tmp_path / "exporter.yml")
    process = subprocess.Popen([sys.executable, "-m", "promml.cli", "exporter", "--config", config],
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)

    def scrape_ok() -> bool:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2) as response:
                return response.status == 200
        except OSError:
            return False

    try:
        wait_for("the exporter to answer", scrape_ok)
        for path in ("/metrics", "/metrics", "/healthz", "/readyz"):
            with contextlib.suppress(OSError):
                urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=2).close()
    finally:
        os.kill(process.pid, signal.SIGTERM)
        output, _ = process.communicate(timeout=20)
    assert output.splitlines() == [f"promml exporter for m 1 on http://127.0.0.1:{port}"]
