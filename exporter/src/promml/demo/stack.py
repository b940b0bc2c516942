"""`promml demo`: the whole stack as local processes, from the repository's own config files.

The shipped `prometheus/` and `alertmanager/` configs are rendered into a work directory with only what must
change outside Docker substituted: addresses (service names become 127.0.0.1 ports), secret-file paths, the
PagerDuty URL (pointed at the local receiver) and the base of the links in notifications (the local receiver,
which serves the runbooks and, as no Grafana runs here, each dashboard's queries opened in Prometheus). Tests use
the same code with shorter timings (`Timings.fast()`).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from .. import baseline as baseline_builder
from . import data, training_data

DEMO_PAGERDUTY_KEY = "demo0000000000000000000000000000"
LINKS_BASE = re.compile(r'(\{\{ define "promml\.links\.base" \}\})[^{]*(\{\{ end \}\})')
"""The one setting of alertmanager/templates/promml.tmpl that holds where notification links point."""
SCRAPE_JOBS = ("prometheus", "alertmanager", "model-server", "promml-exporter")


class StackError(RuntimeError):
    """The stack could not start; the message says which part and where its log is."""


def free_port() -> int:
    """A currently free TCP port on 127.0.0.1."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass(frozen=True)
class Ports:
    prometheus: int = 9090
    alertmanager: int = 9093
    model_server: int = 8000
    exporter: int = 9102
    receiver: int = 9096
    more_replicas: tuple[tuple[int, int], ...] = ()
    """(model server, exporter) ports of each replica after the first, whose ports are the two above."""

    @classmethod
    def free(cls, replicas: int = 1) -> Ports:
        """Distinct free ports: every socket stays bound until all are chosen, so none is handed out twice."""
        with contextlib.ExitStack() as held:
            sockets = [held.enter_context(socket.socket()) for _ in range(5 + 2 * (replicas - 1))]
            for sock in sockets:
                sock.bind(("127.0.0.1", 0))
            ports = [int(sock.getsockname()[1]) for sock in sockets]
        more = tuple((ports[i], ports[i + 1]) for i in range(5, len(ports), 2))
        return cls(*ports[:5], more_replicas=more)

    def replicas(self) -> list[tuple[int, int]]:
        """(model server, exporter) ports of every replica, the first one first."""
        return [(self.model_server, self.exporter), *self.more_replicas]


@dataclass(frozen=True)
class Timings:
    """Intervals of the rendered stack. The shipped values stay in the config files; tests shorten them."""

    scrape_interval: str | None = None
    evaluation_interval: str | None = None
    alert_for: str | None = None
    resend_delay: str = "1m"
    group_wait: str | None = None
    group_interval: str | None = None
    repeat_interval: str | None = None
    window_seconds: float = 300
    slot_seconds: float = 10
    recompute_interval_seconds: float = 10
    poll_interval_seconds: float = 1

    @classmethod
    def fast(cls) -> Timings:
        """Seconds instead of minutes, for the end-to-end test."""
        return cls(
            scrape_interval="1s", evaluation_interval="1s", alert_for="3s", resend_delay="1s",
            group_wait="1s", group_interval="2s", repeat_interval="1h",
            window_seconds=12, slot_seconds=1, recompute_interval_seconds=0.5, poll_interval_seconds=0.2,
        )


@dataclass
class StackConfig:
    repo_root: Path
    workdir: Path
    ports: Ports = field(default_factory=Ports)
    timings: Timings = field(default_factory=Timings)

    def url(self, port: int) -> str:
        return f"http://127.0.0.1:{port}"


def render_prometheus(config: StackConfig) -> Path:
    """prometheus.yml and its rules with loopback targets (and shorter timings, when asked)."""
    source = config.repo_root / "prometheus"
    target = config.workdir / "prometheus"
    rules_dir = target / "rules"
    rules_dir.mkdir(parents=True, exist_ok=True)
    for rule_file in sorted((source / "rules").glob("*.yml")):
        rules = yaml.safe_load(rule_file.read_text())
        if config.timings.evaluation_interval:  # a slower group (the 7-day scans) runs as often as the rest
            for group in rules.get("groups", []):
                if "interval" in group:
                    group["interval"] = config.timings.evaluation_interval
        if config.timings.alert_for:
            for group in rules.get("groups", []):
                for rule in group.get("rules", []):
                    if "alert" in rule and "for" in rule:
                        rule["for"] = config.timings.alert_for
                    if "alert" in rule and "keep_firing_for" in rule:  # a page's resolve waits as long as its `for`
                        rule["keep_firing_for"] = config.timings.alert_for
        (rules_dir / rule_file.name).write_text(yaml.safe_dump(rules, sort_keys=False))
    prometheus = yaml.safe_load((source / "prometheus.yml").read_text())
    timings = config.timings
    glob_config = prometheus.setdefault("global", {})
    if timings.scrape_interval:
        glob_config["scrape_interval"] = timings.scrape_interval
    if timings.evaluation_interval:
        glob_config["evaluation_interval"] = timings.evaluation_interval
    prometheus["rule_files"] = [str(rules_dir / "*.yml")]
    replicas = config.ports.replicas()
    ports = {
        "prometheus": [config.ports.prometheus], "alertmanager": [config.ports.alertmanager],
        "model-server": [model for model, _ in replicas], "promml-exporter": [exporter for _, exporter in replicas],
    }
    jobs = {job["job_name"]: job for job in prometheus["scrape_configs"]}
    missing = [job for job in SCRAPE_JOBS if job not in jobs]
    if missing:
        raise StackError(f"prometheus.yml has no scrape job(s) {', '.join(missing)}")
    for name, job_ports in ports.items():
        jobs[name]["static_configs"] = [{"targets": [f"127.0.0.1:{port}" for port in job_ports]}]
    for alertmanagers in prometheus["alerting"]["alertmanagers"]:
        alertmanagers["static_configs"] = [{"targets": [f"127.0.0.1:{config.ports.alertmanager}"]}]
    path = target / "prometheus.yml"
    path.write_text(yaml.safe_dump(prometheus, sort_keys=False))
    return path


def render_alertmanager(config: StackConfig) -> Path:
    """alertmanager.yml with secret files in the work dir and the receiver standing in for Slack and PagerDuty."""
    source = config.repo_root / "alertmanager"
    target = config.workdir / "alertmanager"
    secrets = target / "secrets"
    secrets.mkdir(parents=True, exist_ok=True)
    slack_url_file = secrets / "slack_webhook_url"
    slack_url_file.write_text(f"{config.url(config.ports.receiver)}/slack/demo\n")
    routing_key_file = secrets / "pagerduty_routing_key"
    routing_key_file.write_text(DEMO_PAGERDUTY_KEY + "\n")
    alertmanager = yaml.safe_load((source / "alertmanager.yml").read_text())
    alertmanager["templates"] = [str(render_templates(config) / "*.tmpl")]
    for receiver in alertmanager.get("receivers", []):
        for slack in receiver.get("slack_configs", []):
            slack["api_url_file"] = str(slack_url_file)
        for pagerduty in receiver.get("pagerduty_configs", []):
            pagerduty["routing_key_file"] = str(routing_key_file)
            pagerduty["url"] = f"{config.url(config.ports.receiver)}/pagerduty/v2/enqueue"
    route = alertmanager["route"]
    for key in ("group_wait", "group_interval", "repeat_interval"):
        value = getattr(config.timings, key)
        if value:
            _override_route_timing(route, key, value)
    path = target / "alertmanager.yml"
    path.write_text(yaml.safe_dump(alertmanager, sort_keys=False))
    return path


def render_templates(config: StackConfig) -> Path:
    """The notification templates, with the links base set to the local receiver."""
    target = config.workdir / "alertmanager" / "templates"
    target.mkdir(parents=True, exist_ok=True)
    found = 0
    for template in sorted((config.repo_root / "alertmanager" / "templates").glob("*.tmpl")):
        text, count = LINKS_BASE.subn(rf"\g<1>{config.url(config.ports.receiver)}\g<2>", template.read_text())
        found += count
        (target / template.name).write_text(text)
    if found != 1:
        raise StackError(f"alertmanager/templates defines promml.links.base {found} times, not once")
    return target


def _override_route_timing(route: dict[str, Any], key: str, value: str) -> None:
    """Set `key` on the route and on every route below it, so none keeps a shipped or Alertmanager default."""
    route[key] = value
    for child in route.get("routes", []):
        _override_route_timing(child, key, value)


def prepare_baseline(config: StackConfig) -> Path:
    """The demo's training data with the demo model's answers, and the baseline built from it (features, score
    and predicted-class distributions, reference performance)."""
    data_dir = config.workdir / "data"
    data_dir.mkdir(parents=True, exist_ok=True)
    csv_path = data_dir / "train.csv"
    training_data.write_csv(csv_path, 5000, 42, with_predictions=True)
    columns = baseline_builder.load_csv_columns(csv_path)
    reference = baseline_builder.build_baseline(
        columns, categorical=data.CATEGORICAL_FEATURES, target=data.TARGET, prediction=data.PREDICTION,
        score=data.SCORE, model_name="credit-risk", model_version="1.0.0",
    )
    path = data_dir / "baseline.json"
    baseline_builder.save_baseline(reference, path)
    return path


def render_exporter(config: StackConfig, baseline_path: Path, log_dir: Path) -> Path:
    timings = config.timings
    exporter = {
        "model_name": "credit-risk",
        "model_version": "1.0.0",
        "baseline": str(baseline_path),
        "prediction_logs": [str(log_dir / "predictions*.jsonl")],
        "feedback_logs": [str(log_dir / "feedback*.jsonl")],
        "listen": f"127.0.0.1:{config.ports.exporter}",
        "window_seconds": timings.window_seconds,
        "slot_seconds": timings.slot_seconds,
        "recompute_interval_seconds": timings.recompute_interval_seconds,
        "poll_interval_seconds": timings.poll_interval_seconds,
        "segments": ["region"],
    }
    path = config.workdir / "exporter.yml"
    path.write_text(yaml.safe_dump(exporter, sort_keys=False))
    return path


def render_replica_exporter(config: StackConfig, first: Path, replica: int, port: int, log_dir: Path) -> Path:
    """The exporter config of another replica: the first one's, with its own port and its own replica's logs."""
    exporter = yaml.safe_load(first.read_text())
    exporter["listen"] = f"127.0.0.1:{port}"
    exporter["prediction_logs"] = [str(log_dir / "predictions*.jsonl")]
    exporter["feedback_logs"] = [str(log_dir / "feedback*.jsonl")]
    path = config.workdir / f"exporter-{replica}.yml"
    path.write_text(yaml.safe_dump(exporter, sort_keys=False))
    return path


def require_binary(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        raise StackError(f"{name} is not installed: run `make install-system` (apt-get install prometheus "
                         "prometheus-alertmanager)")
    return path


class Stack:
    """Starts and stops the stack's processes; each logs to `<workdir>/logs/<name>.log`."""

    def __init__(self, config: StackConfig, *, with_traffic: bool = False) -> None:
        self.config = config
        self.with_traffic = with_traffic
        self.processes: dict[str, subprocess.Popen[bytes]] = {}
        self.log_dir = config.workdir / "prediction-logs"
        self.log_dirs = [self.log_dir] + [
            config.workdir / f"prediction-logs-{replica}" for replica in range(2, len(config.ports.replicas()) + 1)
        ]
        """Each replica's prediction and feedback logs, the first replica's first."""

    def commands(self) -> dict[str, list[str]]:
        config, ports = self.config, self.config.ports
        workdir = config.workdir
        promml = [sys.executable, "-m", "promml.cli"]
        baseline_path = prepare_baseline(config)
        first_exporter = render_exporter(config, baseline_path, self.log_dir)
        commands = {
            "receiver": [*promml, "demo-receiver", "--host", "127.0.0.1", "--port", str(ports.receiver),
                         "--runbooks-dir", str(config.repo_root / "docs" / "runbooks"),
                         "--dashboards-dir", str(config.repo_root / "grafana" / "dashboards"),
                         "--prometheus-url", config.url(ports.prometheus)],
            "model-server": [*promml, "demo-server", "--host", "127.0.0.1", "--port", str(ports.model_server),
                             "--log-dir", str(self.log_dir)],
            "exporter": [*promml, "exporter", "--config", str(first_exporter)],
        }
        for replica, ((model_port, exporter_port), log_dir) in enumerate(
            zip(ports.more_replicas, self.log_dirs[1:], strict=True), start=2
        ):
            commands[f"model-server-{replica}"] = [
                *promml, "demo-server", "--host", "127.0.0.1", "--port", str(model_port), "--log-dir", str(log_dir),
            ]
            exporter_config = render_replica_exporter(config, first_exporter, replica, exporter_port, log_dir)
            commands[f"exporter-{replica}"] = [*promml, "exporter", "--config", str(exporter_config)]
        commands |= {
            "alertmanager": [
                require_binary("prometheus-alertmanager"), f"--config.file={render_alertmanager(config)}",
                f"--storage.path={workdir / 'alertmanager-data'}",
                f"--web.listen-address=127.0.0.1:{ports.alertmanager}",
                "--cluster.listen-address=", f"--web.external-url={config.url(ports.alertmanager)}",
            ],
            "prometheus": [
                require_binary("prometheus"), f"--config.file={render_prometheus(config)}",
                f"--storage.tsdb.path={workdir / 'prometheus-data'}",
                f"--web.listen-address=127.0.0.1:{ports.prometheus}",
                f"--rules.alert.resend-delay={config.timings.resend_delay}", "--web.enable-lifecycle",
                f"--web.external-url={config.url(ports.prometheus)}",
            ],
        }
        if self.with_traffic:
            commands["traffic"] = [*promml, "demo-traffic", "--url", config.url(ports.model_server)]
        return commands

    def health_urls(self) -> dict[str, str]:
        ports, url = self.config.ports, self.config.url
        urls = {
            "receiver": f"{url(ports.receiver)}/healthz",
            "model-server": f"{url(ports.model_server)}/healthz",
            "exporter": f"{url(ports.exporter)}/healthz",
            "alertmanager": f"{url(ports.alertmanager)}/-/ready",
            "prometheus": f"{url(ports.prometheus)}/-/ready",
        }
        for replica, (model_port, exporter_port) in enumerate(ports.more_replicas, start=2):
            urls[f"model-server-{replica}"] = f"{url(model_port)}/healthz"
            urls[f"exporter-{replica}"] = f"{url(exporter_port)}/healthz"
        return urls

    def start(self, timeout: float = 60) -> None:
        """Start every process (Alertmanager before Prometheus, so no alert is evaluated before it is known)."""
        self.config.workdir.mkdir(parents=True, exist_ok=True)
        logs = self.config.workdir / "logs"
        logs.mkdir(exist_ok=True)
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        try:
            for name, command in self.commands().items():
                with open(logs / f"{name}.log", "ab") as log:
                    self.processes[name] = subprocess.Popen(
                        command, stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True
                    )
                if name in self.health_urls():
                    self._wait_healthy(name, self.health_urls()[name], timeout)
        except BaseException:
            self.stop()
            raise

    def _wait_healthy(self, name: str, url: str, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            process = self.processes[name]
            if process.poll() is not None:
                log = self.config.workdir / "logs" / f"{name}.log"
                raise StackError(f"{name} exited with {process.returncode}; see {log}")
            try:
                with urllib.request.urlopen(url, timeout=2) as response:
                    if response.status == 200:
                        return
            except (urllib.error.URLError, OSError):
                pass
            time.sleep(0.2)
        raise StackError(f"{name} not healthy at {url} after {timeout:.0f}s; see {self.config.workdir}/logs/{name}.log")

    def stop(self) -> None:
        for process in reversed(list(self.processes.values())):
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process in self.processes.values():
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        self.processes.clear()

    def __enter__(self) -> Stack:
        self.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.stop()


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--repo-root", type=Path, default=Path("."), help="the promml checkout (default: .)")
    parser.add_argument("--workdir", type=Path, default=Path(".demo"), help="rendered configs, data, logs")
    parser.add_argument("--no-traffic", action="store_true", help="do not start the traffic generator")


def run(args: argparse.Namespace) -> int:
    """Start the stack with the shipped timings, print the URLs, and run until Ctrl-C."""
    config = StackConfig(repo_root=args.repo_root.resolve(), workdir=args.workdir.resolve())
    stack = Stack(config, with_traffic=not args.no_traffic)
    try:
        stack.start()
    except StackError as error:
        print(f"promml demo: {error}", file=sys.stderr)
        return 1
    ports = config.ports
    print(
        "promml demo is up (Ctrl-C to stop):\n"
        f"  model server   {config.url(ports.model_server)}  (POST /predict, POST /feedback)\n"
        f"  exporter       {config.url(ports.exporter)}/metrics\n"
        f"  Prometheus     {config.url(ports.prometheus)}/alerts\n"
        f"  Alertmanager   {config.url(ports.alertmanager)}\n"
        f"  notifications  {config.url(ports.receiver)}  (what Slack and PagerDuty would receive)\n"
        f"  runbooks       {config.url(ports.receiver)}/docs/runbooks/\n"
        f"  logs           {config.workdir / 'logs'}",
        flush=True,
    )
    stopping = threading.Event()
    signal.signal(signal.SIGINT, lambda *_: stopping.set())
    signal.signal(signal.SIGTERM, lambda *_: stopping.set())
    exit_code = 0
    try:
        while not stopping.wait(1):
            died = [name for name, process in stack.processes.items() if process.poll() is not None]
            if died:
                print(f"promml demo: {', '.join(died)} stopped; see {config.workdir / 'logs'}", file=sys.stderr)
                exit_code = 1
                break
    finally:
        stack.stop()
    return exit_code
