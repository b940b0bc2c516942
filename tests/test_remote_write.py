"""prometheus/remote-write/: Prometheus writing to VictoriaMetrics, both run as real processes.

Two model-server replicas are served from this test as prometheus_client registries whose counters grow at
exact, known rates (the value is computed from the clock at scrape time), so every fleet-wide rate and quantile
has an exact expected value worked out by hand from Prometheus' documented bucket interpolation. Prometheus runs
the shipped rules on them and writes everything to VictoriaMetrics through the shipped `remote_write` block; the
same queries then give the same answers on both.
"""

from __future__ import annotations

import functools
import json
import math
import socket
import subprocess
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import yaml
from conftest import require_binary
from conftest import wait_for as _wait_for
from prometheus_client import CollectorRegistry, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.exposition import MetricsHandler
from prometheus_client.utils import floatToGoString

MODEL = ("credit-risk", "1.0.0")
# Each rate is judged over this window: it holds about 10 scrapes at 1 s, and the data (about 15 s of it) covers it.
WINDOW = "10s"
# Scrape timestamps and the moment the value is computed differ by milliseconds: 1 % covers that jitter on a
# 10-second rate with room to spare. Series that VictoriaMetrics stores as written must match to 1e-9 (it prints
# 12 significant digits).
RATE_TOLERANCE = 0.01
STORED_TOLERANCE = 1e-9
EXTERNAL_LABELS = {"monitor": "promml"}


@dataclass(frozen=True)
class Replica:
    """One model server: `rows_per_second` rows predicted by `calls_per_second` predict calls, each call taking
    `latency` seconds, since `started` (Unix time). Its exporter's window holds `bin_rows` rows of `income` in the
    baseline's three bins, and `correct` of its `labeled` rows were right."""

    rows_per_second: float
    calls_per_second: float
    latency: float
    started: float
    bin_rows: tuple[int, int, int] = (0, 0, 0)
    correct: int = 0
    labeled: int = 0


# Replica a is fast and busy, b slow and quieter: a fleet quantile is not the mean of theirs.
REPLICAS = (
    Replica(rows_per_second=12.0, calls_per_second=10.0, latency=0.03, started=time.time() - 3600,
            bin_rows=(30, 50, 20), correct=90, labeled=100),
    Replica(rows_per_second=8.0, calls_per_second=5.0, latency=0.3, started=time.time() - 3600,
            bin_rows=(10, 30, 60), correct=10, labeled=20),
)
REFERENCE_RATIOS = (0.3, 0.4, 0.3)
# The fleet's window: 40 / 80 / 80 rows against 0.3 / 0.4 / 0.3, so PSI = 0.1 ln 1.5 + 0 + 0.1 ln(4/3) = 0.1 ln 2
# (promml.stats.drift.psi gives the same); accuracy 100 right of 120 labelled. Each replica alone: PSI 0.063 and 0.456.
FLEET_EXPECTED = {
    "model_window_feature:ml_window_feature_bin_rows:psi": 0.1 * math.log(2),
    "model_window:ml_window_correct_rows:ratio": 100 / 120,
}
# Exact fleet-wide answers. Rows: 12 + 8. Calls: 10 + 5. Quantiles from the summed bucket rates, interpolated
# linearly inside a bucket as histogram_quantile does: the 10 fast calls/s sit in (0.025, 0.05], the 5 slow ones
# in (0.25, 0.5]. p50: rank 0.5 * 15 = 7.5 of 10 in the first, 0.025 + 0.025 * 7.5 / 10 = 0.04375.
# p95: rank 14.25, 4.25 of 5 into the second, 0.25 + 0.25 * 4.25 / 5 = 0.4625. p99: rank 14.85, 0.25 + 0.25 * 4.85 / 5.
EXPECTED = {
    "model:ml_predictions:rate5m": 20.0,
    "model:ml_prediction_latency_seconds_count:rate5m": 15.0,
    "model:ml_prediction_errors_per_calls:ratio_rate5m": 0.0,
    "model:ml_prediction_latency_seconds:p50_5m": 0.04375,
    "model:ml_prediction_latency_seconds:p95_5m": 0.4625,
    "model:ml_prediction_latency_seconds:p99_5m": 0.4925,
}
# No replica has failed a call nor runs an exporter: these rules give nothing, on both sides.
EMPTY = {"model:ml_prediction_errors:rate5m", "model_log:ml_exporter_read_errors_per_records:ratio_rate5m"}


class ReplicaCollector:
    """The replica's `ml_predictions_total` and `ml_prediction_latency_seconds` as linear functions of time."""

    def __init__(self, replica: Replica) -> None:
        self.replica = replica

    def collect(self) -> Iterator[Metric]:
        replica = self.replica
        elapsed = time.time() - replica.started
        rows = CounterMetricFamily("ml_predictions", "Rows predicted.", labels=["model_name", "model_version"])
        rows.add_metric(MODEL, replica.rows_per_second * elapsed)
        yield rows
        calls = replica.calls_per_second * elapsed
        latency = HistogramMetricFamily("ml_prediction_latency_seconds", "Predict call latency.",
                                        labels=["model_name", "model_version"])
        # prometheus_client's default buckets, which the instrumentation uses for latency.
        buckets = [(floatToGoString(le), calls if replica.latency <= le else 0.0) for le in Histogram.DEFAULT_BUCKETS]
        latency.add_metric(MODEL, buckets=buckets, sum_value=calls * replica.latency)
        yield latency
        # What this replica's exporter publishes about its window (gauges; see docs/exporter.md).
        window = ["model_name", "model_version", "window"]
        bins = GaugeMetricFamily("ml_window_feature_bin_rows", "Rows per bin.", labels=[*window, "feature_name", "bin"])
        reference = GaugeMetricFamily("ml_feature_bin_reference_ratio", "Baseline share per bin.",
                                      labels=["model_name", "model_version", "feature_name", "bin"])
        for index, (rows, ratio) in enumerate(zip(replica.bin_rows, REFERENCE_RATIOS, strict=True)):
            bins.add_metric([*MODEL, "1h", "income", str(index)], rows)
            reference.add_metric([*MODEL, "income", str(index)], ratio)
        yield bins
        yield reference
        for name, value in (("ml_window_correct_rows", replica.correct), ("ml_window_labeled_rows", replica.labeled)):
            gauge = GaugeMetricFamily(name, "Labelled rows of the window.", labels=window)
            gauge.add_metric([*MODEL, "1h"], value)
            yield gauge


wait_for = functools.partial(_wait_for, interval=0.25)


def serve(registry: CollectorRegistry) -> ThreadingHTTPServer:
    server = ThreadingHTTPServer(("127.0.0.1", 0), MetricsHandler.factory(registry))
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def free_ports(count: int) -> list[int]:
    """Distinct free ports: every socket stays bound until all are chosen."""
    sockets = [socket.socket() for _ in range(count)]
    try:
        for sock in sockets:
            sock.bind(("127.0.0.1", 0))
        return [int(sock.getsockname()[1]) for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


def get_json(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=10) as response:
        return json.loads(response.read())


def responding(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=1) as response:
            return bool(response.status == 200)
    except (urllib.error.URLError, OSError):
        return False


def shipped_remote_write(repo_root: Path) -> list[dict[str, Any]]:
    snippet = yaml.safe_load((repo_root / "prometheus" / "remote-write" / "victoria-metrics.yml").read_text())
    assert list(snippet) == ["remote_write"]
    return list(snippet["remote_write"])


def render_prometheus(repo_root: Path, directory: Path, targets: list[str], victoria_metrics: str) -> Path:
    """The shipped prometheus.yml and rules with the shipped remote_write block merged in; substituted: the
    addresses, 1-second scrape and evaluation intervals and a 1-second batch deadline. Only the model-server job is
    kept (the others' targets are not running here) and no Alertmanager is needed."""
    config = yaml.safe_load((repo_root / "prometheus" / "prometheus.yml").read_text())
    assert config["global"]["external_labels"] == EXTERNAL_LABELS
    config["global"].update(scrape_interval="1s", evaluation_interval="1s")
    config["rule_files"] = [str(repo_root / "prometheus" / "rules" / "*.yml")]
    del config["alerting"]
    (job,) = [job for job in config["scrape_configs"] if job["job_name"] == "model-server"]
    config["scrape_configs"] = [{**job, "static_configs": [{"targets": targets}]}]
    remote_write = shipped_remote_write(repo_root)
    for target in remote_write:
        url = urllib.parse.urlsplit(target["url"])
        target["url"] = urllib.parse.urlunsplit(url._replace(netloc=victoria_metrics))
        target["queue_config"]["batch_send_deadline"] = "1s"
    config["remote_write"] = remote_write
    path = directory / "prometheus.yml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


def test_shipped_block_targets_victoria_metrics_and_passes_promtool(repo_root: Path, tmp_path: Path) -> None:
    (target,) = shipped_remote_write(repo_root)
    assert target["url"] == "http://victoria-metrics:8428/api/v1/write"
    assert target["name"] == "victoria-metrics"
    promtool = require_binary("promtool")
    config = yaml.safe_load((repo_root / "prometheus" / "prometheus.yml").read_text())
    config["rule_files"] = [str(repo_root / "prometheus" / "rules" / "*.yml")]
    config["remote_write"] = shipped_remote_write(repo_root)
    path = tmp_path / "prometheus.yml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    result = subprocess.run([promtool, "check", "config", str(path)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr


@dataclass
class Backends:
    prometheus: str
    victoria_metrics: str
    at: float  # the moment every comparison is made: both hold ten seconds of data before it

    def query(self, base: str, promql: str) -> list[dict[str, Any]]:
        answer = get_json(f"{base}/api/v1/query?" + urllib.parse.urlencode({"query": promql, "time": f"{self.at:.3f}"}))
        assert answer["status"] == "success", answer
        return list(answer["data"]["result"])


def by_labels(result: list[dict[str, Any]], *, external: bool) -> dict[tuple[tuple[str, str], ...], float]:
    """Each series' value keyed by its labels but its name; `external` strips the external labels VictoriaMetrics
    stores with every series Prometheus wrote."""
    values = {}
    for series in result:
        labels = {name: value for name, value in series["metric"].items() if name != "__name__"}
        if external:
            for name, value in EXTERNAL_LABELS.items():
                assert labels.pop(name) == value, series
        values[tuple(sorted(labels.items()))] = float(series["value"][1])
    return values


def start(command: list[str], log: Path) -> subprocess.Popen[bytes]:
    with open(log, "wb") as out:
        return subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT)


def stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.terminate()
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


@pytest.fixture(scope="module")
def backends(repo_root: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Backends]:
    """VictoriaMetrics, then Prometheus scraping both replicas and writing to it; ready once VictoriaMetrics holds
    the raw and the recorded series up to a moment preceded by ten seconds of scrapes."""
    victoria_binary, prometheus_binary = require_binary("victoria-metrics"), require_binary("prometheus")
    workdir = tmp_path_factory.mktemp("remote-write")
    replicas = []
    for replica in REPLICAS:
        registry = CollectorRegistry()
        registry.register(ReplicaCollector(replica))
        replicas.append(serve(registry))
    vm_port, prometheus_port = free_ports(2)
    victoria_metrics = f"http://127.0.0.1:{vm_port}"
    prometheus = f"http://127.0.0.1:{prometheus_port}"
    processes = []
    try:
        # Data shows in queries as soon as it is written (no 30 s latency offset), and no answer is cached.
        processes.append(start([
            victoria_binary, f"-httpListenAddr=127.0.0.1:{vm_port}", f"-storageDataPath={workdir / 'vm-data'}",
            "-search.latencyOffset=0s", "-search.disableCache",
        ], workdir / "victoria-metrics.log"))
        wait_for("VictoriaMetrics to answer", lambda: responding(f"{victoria_metrics}/health"), 30)
        config = render_prometheus(repo_root, workdir, [f"127.0.0.1:{server.server_address[1]}" for server in replicas],
                                   f"127.0.0.1:{vm_port}")
        processes.append(start([
            prometheus_binary, f"--config.file={config}", f"--storage.tsdb.path={workdir / 'prometheus-data'}",
            f"--web.listen-address=127.0.0.1:{prometheus_port}",
        ], workdir / "prometheus.log"))
        wait_for("Prometheus to be ready", lambda: responding(f"{prometheus}/-/ready"), 30)

        def covered() -> bool:
            """Whether both replicas' last 12 s hold 12 scrapes in Prometheus: a 10 s window before now is full."""
            answer = get_json(f"{prometheus}/api/v1/query?" + urllib.parse.urlencode(
                {"query": "count_over_time(ml_predictions_total[12s])"}))
            counts = [float(series["value"][1]) for series in answer["data"]["result"]]
            return len(counts) == len(REPLICAS) and min(counts) >= 12

        wait_for("a full window of scrapes in Prometheus", covered, 45)
        at = time.time()

        def written_up_to_the_moment() -> bool:
            newest = get_json(f"{victoria_metrics}/api/v1/query?" + urllib.parse.urlencode(
                {"query": "min(timestamp({__name__=~'ml_predictions_total|model:ml_predictions:rate5m'}))"}))
            result = newest["data"]["result"]
            return bool(result) and float(result[0]["value"][1]) >= at

        wait_for("VictoriaMetrics to hold the series up to the moment compared", written_up_to_the_moment, 30)
        yield Backends(prometheus=prometheus, victoria_metrics=victoria_metrics, at=at)
    finally:
        for process in reversed(processes):
            stop(process)
        for server in replicas:
            server.shutdown()
            server.server_close()


def recording_rules(repo_root: Path) -> dict[str, str]:
    groups = yaml.safe_load((repo_root / "prometheus" / "rules" / "recording.yml").read_text())["groups"]
    return {rule["record"]: rule["expr"] for group in groups for rule in group["rules"] if "record" in rule}


def test_recorded_fleet_series_arrive_unchanged(backends: Backends, repo_root: Path) -> None:
    """What Prometheus recorded is what VictoriaMetrics stores: same series, same values, at the same moment."""
    rules = recording_rules(repo_root)
    assert set(EXPECTED) | EMPTY <= set(rules)
    model = (("model_name", MODEL[0]), ("model_version", MODEL[1]))
    for record in rules:
        in_prometheus = by_labels(backends.query(backends.prometheus, record), external=False)
        in_victoria_metrics = by_labels(backends.query(backends.victoria_metrics, record), external=True)
        assert list(in_prometheus) == list(in_victoria_metrics), record
        if record in EXPECTED:
            assert list(in_prometheus) == [model], record
        if record in EMPTY:
            assert in_prometheus == {}, record
        for labels, value in in_prometheus.items():
            if math.isnan(value):
                assert math.isnan(in_victoria_metrics[labels]), record
            else:
                assert in_victoria_metrics[labels] == pytest.approx(value, rel=STORED_TOLERANCE), record


def test_raw_series_add_up_the_same(backends: Backends) -> None:
    """The replicas' own series, summed by each engine: the same last sample of each, the same total."""
    promql = "sum by (model_name) (ml_predictions_total)"
    in_prometheus = by_labels(backends.query(backends.prometheus, promql), external=False)
    in_victoria_metrics = by_labels(backends.query(backends.victoria_metrics, promql), external=False)
    assert list(in_prometheus) == list(in_victoria_metrics) == [(("model_name", MODEL[0]),)]
    total = in_prometheus[(("model_name", MODEL[0]),)]
    assert in_victoria_metrics[(("model_name", MODEL[0]),)] == pytest.approx(total, rel=STORED_TOLERANCE)
    # Both replicas are in it: each counter as of its last scrape, at most a scrape interval (1 s, give or take
    # the scrape's own duration) before the moment compared.
    at_the_moment = sum(replica.rows_per_second * (backends.at - replica.started) for replica in REPLICAS)
    fleet_rate = sum(replica.rows_per_second for replica in REPLICAS)
    assert at_the_moment - 1.5 * fleet_rate <= total <= at_the_moment
    counts = backends.query(backends.victoria_metrics, "count by (model_name) (ml_predictions_total)")
    assert [int(series["value"][1]) for series in counts] == [len(REPLICAS)]


@pytest.mark.parametrize("record", sorted(EXPECTED))
def test_each_engine_computes_the_fleet_wide_rules_alike(backends: Backends, repo_root: Path, record: str) -> None:
    """Every recording rule's own expression, over a window the data covers, evaluated by Prometheus and by
    VictoriaMetrics from the raw series: both give the exact fleet-wide value, within RATE_TOLERANCE.

    Over the shipped 5 minutes the two differ while less than 5 minutes of data exist (Prometheus extrapolates a
    rate to the whole window, VictoriaMetrics divides by the time its samples cover), so the window is shortened."""
    promql = recording_rules(repo_root)[record].replace("[5m]", f"[{WINDOW}]")
    model = (("model_name", MODEL[0]), ("model_version", MODEL[1]))
    in_prometheus = by_labels(backends.query(backends.prometheus, promql), external=False)
    # A rule reading another recorded series reads the copy VictoriaMetrics stores, with its external labels.
    in_victoria_metrics = by_labels(backends.query(backends.victoria_metrics, promql), external="model:" in promql)
    assert list(in_prometheus) == list(in_victoria_metrics) == [model], promql
    expected = EXPECTED[record]
    for engine, value in (("Prometheus", in_prometheus[model]), ("VictoriaMetrics", in_victoria_metrics[model])):
        assert not math.isnan(value), engine
        assert value == pytest.approx(expected, rel=RATE_TOLERANCE, abs=1e-12), f"{engine}: {promql} = {value}"


@pytest.mark.parametrize("record", sorted(FLEET_EXPECTED))
def test_fleet_psi_and_accuracy_are_the_same_in_both(backends: Backends, repo_root: Path, record: str) -> None:
    """Fleet-wide PSI and accuracy from two replicas' window gauges: what Prometheus recorded, what
    VictoriaMetrics stores, and the rule's expression evaluated by VictoriaMetrics itself all give the fleet's value
    (the summed counts' statistic, not the mean of the replicas')."""
    recorded = by_labels(backends.query(backends.prometheus, record), external=False)
    stored = by_labels(backends.query(backends.victoria_metrics, record), external=True)
    evaluated = by_labels(backends.query(backends.victoria_metrics, recording_rules(repo_root)[record]), external=False)
    assert len(recorded) == len(stored) == len(evaluated) == 1, (recorded, stored, evaluated)
    for where, values in (("Prometheus", recorded), ("VictoriaMetrics", stored), ("VictoriaMetrics' own", evaluated)):
        [value] = values.values()
        assert value == pytest.approx(FLEET_EXPECTED[record], rel=STORED_TOLERANCE), where
