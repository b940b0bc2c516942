"""A real gunicorn with several workers: scraped totals are exact sums, and each worker writes its own log."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from promml.demo.data import generate
from promml.demo.stack import free_port

WORKERS = 3
REQUESTS = 600
LABELS = {"model_name": "credit-risk", "model_version": "1.0.0"}


def post(url: str, body: object) -> int:
    request = urllib.request.Request(url, json.dumps(body).encode(), {"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=10) as response:
        return response.status


def scrape(url: str) -> dict[tuple[str, frozenset], float]:
    with urllib.request.urlopen(url, timeout=10) as response:
        text = response.read().decode()
    return {(s.name, frozenset(s.labels.items())): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def wait_until(condition, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.2)
    raise AssertionError("timed out")


@pytest.fixture
def gunicorn(tmp_path: Path, repo_root: Path):
    multiproc_dir, log_dir = tmp_path / "multiproc", tmp_path / "logs"
    multiproc_dir.mkdir()
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "-c", str(repo_root / "exporter/demo/gunicorn.conf.py"),
         "--workers", str(WORKERS), "--bind", f"127.0.0.1:{port}",
         f"promml.demo.server:create_app(log_dir={str(log_dir)!r})"],
        env={**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(multiproc_dir)},
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"

    def healthy() -> bool:
        try:
            return urllib.request.urlopen(f"{url}/healthz", timeout=2).status == 200
        except OSError:
            assert process.poll() is None, process.stdout.read().decode()
            return False

    wait_until(healthy, 60)
    yield url, log_dir
    process.send_signal(signal.SIGTERM)
    process.wait(timeout=30)


def test_totals_are_exact_sums_across_workers_and_logs_do_not_interleave(gunicorn) -> None:
    url, log_dir = gunicorn
    rows, _ = generate(REQUESTS, seed=3)
    with ThreadPoolExecutor(max_workers=12) as pool:
        statuses = list(pool.map(lambda row: post(f"{url}/predict", row), rows))
    assert statuses == [200] * REQUESTS

    samples = scrape(f"{url}/metrics")
    assert samples[("ml_predictions_total", frozenset(LABELS.items()))] == REQUESTS
    assert samples[("ml_prediction_latency_seconds_count", frozenset(LABELS.items()))] == REQUESTS
    assert samples[("ml_prediction_score_count", frozenset(LABELS.items()))] == REQUESTS
    assert samples[("ml_predictions_in_flight", frozenset(LABELS.items()))] == 0

    def logged_rows() -> int:
        return sum(len(path.read_text().splitlines()) for path in log_dir.glob("predictions*.jsonl"))

    wait_until(lambda: logged_rows() == REQUESTS, 30)
    files = sorted(log_dir.glob("predictions*.jsonl"))
    assert 1 < len(files) <= WORKERS  # the requests were spread over several workers
    assert all(path.name.startswith("predictions-") for path in files)
    records = [json.loads(line) for path in files for line in path.read_text().splitlines()]  # no torn lines
    assert len({record["prediction_id"] for record in records}) == REQUESTS
    written = ("ml_prediction_log_records_total", frozenset({**LABELS, "outcome": "written"}.items()))
    # rows are counted written just after the OS has them, so the count may trail the files by a moment
    wait_until(lambda: scrape(f"{url}/metrics").get(written) == REQUESTS, 10)
