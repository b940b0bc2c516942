"""Rendering the stack's configs for local processes, on a small synthetic checkout (not the shipped configs).

The rendered files are also checked by promtool and amtool, the validators of the versions that will load them.
"""

from __future__ import annotations

import socket
import stat
import subprocess
from pathlib import Path

import pytest
import yaml
from conftest import require_binary as installed

from promml.demo.stack import (
    DEMO_PAGERDUTY_KEY,
    Ports,
    StackConfig,
    StackError,
    Timings,
    _override_route_timing,
    render_alertmanager,
    render_exporter,
    render_prometheus,
    render_replica_exporter,
    require_binary,
)
from promml.exporter.config import ExporterConfig, load_config

PROMETHEUS_YML = """\
global:
  scrape_interval: 15s
  evaluation_interval: 30s
  external_labels:
    monitor: test
rule_files:
  - rules/*.yml
alerting:
  alertmanagers:
    - static_configs:
        - targets: ["alertmanager:9093"]
scrape_configs:
  - job_name: prometheus
    static_configs: [{targets: ["localhost:9090"]}]
  - job_name: alertmanager
    static_configs: [{targets: ["alertmanager:9093"]}]
  - job_name: model-server
    static_configs: [{targets: ["model-server:8000"]}]
  - job_name: promml-exporter
    scrape_interval: 10s
    static_configs: [{targets: ["exporter:9102"]}]
"""

RULES_YML = """\
groups:
  - name: test-alerts
    rules:
      - alert: Drift
        expr: ml_drift_score > 0.25
        for: 5m
        keep_firing_for: 10m
        labels: {severity: critical}
      - alert: Always
        expr: vector(1)
        labels: {severity: none}
      - record: model:ml_predictions:rate5m
        expr: sum by (model_name) (rate(ml_predictions_total[5m]))
"""

ALERTMANAGER_YML = """\
route:
  receiver: slack
  group_by: [alertname]
  routes:
    - matchers: ['severity="critical"']
      receiver: pagerduty
      continue: true
      group_wait: 45s
    - matchers: ['severity=~"critical|warning"']
      receiver: slack
      routes:
        - matchers: ['team="ml"']
          receiver: slack
receivers:
  - name: slack
    slack_configs:
      - api_url_file: /etc/alertmanager/secrets/slack_webhook_url
        channel: "#alerts"
        title: '{{ template "test.title" . }}'
  - name: pagerduty
    pagerduty_configs:
      - routing_key_file: /etc/alertmanager/secrets/pagerduty_routing_key
templates:
  - /etc/alertmanager/templates/*.tmpl
"""

TEMPLATE = ('{{ define "test.title" }}[{{ .Status }}] {{ .CommonLabels.alertname }}{{ end }}\n'
            '{{ define "promml.links.base" }}http://links.example:9096{{ end }}\n')

PORTS = Ports(prometheus=19090, alertmanager=19093, model_server=18000, exporter=19102, receiver=19096)


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    root = tmp_path / "repo"
    (root / "prometheus" / "rules").mkdir(parents=True)
    (root / "prometheus" / "prometheus.yml").write_text(PROMETHEUS_YML)
    (root / "prometheus" / "rules" / "alerts.yml").write_text(RULES_YML)
    (root / "prometheus" / "rules" / "notes.md").write_text("not a rule file\n")
    (root / "alertmanager" / "templates").mkdir(parents=True)
    (root / "alertmanager" / "alertmanager.yml").write_text(ALERTMANAGER_YML)
    (root / "alertmanager" / "templates" / "test.tmpl").write_text(TEMPLATE)
    return root


def stack_config(repo: Path, tmp_path: Path, timings: Timings | None = None) -> StackConfig:
    return StackConfig(repo_root=repo, workdir=tmp_path / "work", ports=PORTS, timings=timings or Timings())


def targets(job: dict) -> list[str]:
    return [target for group in job["static_configs"] for target in group["targets"]]


def test_render_prometheus_points_every_job_at_loopback(repo, tmp_path):
    config = stack_config(repo, tmp_path)
    path = render_prometheus(config)
    assert path == tmp_path / "work" / "prometheus" / "prometheus.yml"
    rendered = yaml.safe_load(path.read_text())
    jobs = {job["job_name"]: job for job in rendered["scrape_configs"]}
    assert {name: targets(job) for name, job in jobs.items()} == {
        "prometheus": ["127.0.0.1:19090"],
        "alertmanager": ["127.0.0.1:19093"],
        "model-server": ["127.0.0.1:18000"],
        "promml-exporter": ["127.0.0.1:19102"],
    }
    assert jobs["promml-exporter"]["scrape_interval"] == "10s"  # everything else is kept as written
    assert rendered["alerting"]["alertmanagers"] == [{"static_configs": [{"targets": ["127.0.0.1:19093"]}]}]
    assert rendered["global"] == {"scrape_interval": "15s", "evaluation_interval": "30s",
                                  "external_labels": {"monitor": "test"}}
    rules_dir = tmp_path / "work" / "prometheus" / "rules"
    assert rendered["rule_files"] == [str(rules_dir / "*.yml")]
    assert sorted(p.name for p in rules_dir.iterdir()) == ["alerts.yml"]
    assert yaml.safe_load((rules_dir / "alerts.yml").read_text()) == yaml.safe_load(RULES_YML)


def test_render_prometheus_with_fast_timings(repo, tmp_path):
    rendered = yaml.safe_load(render_prometheus(stack_config(repo, tmp_path, Timings.fast())).read_text())
    assert (rendered["global"]["scrape_interval"], rendered["global"]["evaluation_interval"]) == ("1s", "1s")
    rules = yaml.safe_load((tmp_path / "work" / "prometheus" / "rules" / "alerts.yml").read_text())
    drift, always, recording = rules["groups"][0]["rules"]
    assert drift["for"] == drift["keep_firing_for"] == "3s"
    assert "for" not in always  # an alert without `for` fires at once, and still does
    assert recording == {"record": "model:ml_predictions:rate5m",
                         "expr": "sum by (model_name) (rate(ml_predictions_total[5m]))"}


def test_rendered_prometheus_config_passes_promtool(repo, tmp_path):
    path = render_prometheus(stack_config(repo, tmp_path, Timings.fast()))
    result = subprocess.run(
        [installed("promtool"), "check", "config", str(path)], capture_output=True, text=True, timeout=30
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS: 1 rule files found" in result.stdout
    assert "SUCCESS: 3 rules found" in result.stdout


def test_render_prometheus_requires_every_job(repo, tmp_path):
    source = repo / "prometheus" / "prometheus.yml"
    prometheus = yaml.safe_load(source.read_text())
    prometheus["scrape_configs"] = [j for j in prometheus["scrape_configs"] if j["job_name"] != "model-server"]
    source.write_text(yaml.safe_dump(prometheus))
    with pytest.raises(StackError, match=r"^prometheus.yml has no scrape job\(s\) model-server$"):
        render_prometheus(stack_config(repo, tmp_path))


def test_render_alertmanager_substitutes_secrets_urls_and_templates(repo, tmp_path):
    path = render_alertmanager(stack_config(repo, tmp_path))
    secrets = tmp_path / "work" / "alertmanager" / "secrets"
    assert path == tmp_path / "work" / "alertmanager" / "alertmanager.yml"
    assert (secrets / "slack_webhook_url").read_text() == "http://127.0.0.1:19096/slack/demo\n"
    assert (secrets / "pagerduty_routing_key").read_text() == DEMO_PAGERDUTY_KEY + "\n"
    rendered = yaml.safe_load(path.read_text())
    templates = tmp_path / "work" / "alertmanager" / "templates"
    assert rendered["templates"] == [str(templates / "*.tmpl")]
    # the links in notifications open on the local receiver, which serves the runbooks and dashboards' queries
    assert (templates / "test.tmpl").read_text() == TEMPLATE.replace("http://links.example:9096",
                                                                     "http://127.0.0.1:19096")
    receivers = {receiver["name"]: receiver for receiver in rendered["receivers"]}
    assert receivers["slack"]["slack_configs"] == [{
        "api_url_file": str(secrets / "slack_webhook_url"), "channel": "#alerts",
        "title": '{{ template "test.title" . }}',
    }]
    assert receivers["pagerduty"]["pagerduty_configs"] == [{
        "routing_key_file": str(secrets / "pagerduty_routing_key"),
        "url": "http://127.0.0.1:19096/pagerduty/v2/enqueue",
    }]
    assert rendered["route"] == yaml.safe_load(ALERTMANAGER_YML)["route"]  # shipped timings are kept


@pytest.mark.parametrize("defines", [0, 2])
def test_render_alertmanager_needs_the_links_base_defined_once(repo, tmp_path, defines):
    base = '{{ define "promml.links.base" }}http://links.example:9096{{ end }}\n'
    (repo / "alertmanager" / "templates" / "test.tmpl").write_text(TEMPLATE.replace(base, "") + base * defines)
    with pytest.raises(StackError, match=f"defines promml.links.base {defines} times, not once"):
        render_alertmanager(stack_config(repo, tmp_path))


def test_render_alertmanager_with_fast_timings_sets_every_route(repo, tmp_path):
    rendered = yaml.safe_load(render_alertmanager(stack_config(repo, tmp_path, Timings.fast())).read_text())
    route = rendered["route"]
    every_route = [route, *route["routes"], *route["routes"][1]["routes"]]
    timings = {"group_wait": "1s", "group_interval": "2s", "repeat_interval": "1h"}
    for each in every_route:
        assert {key: each[key] for key in timings} == timings
    assert (route["receiver"], route["routes"][0]["continue"]) == ("slack", True)


def test_rendered_alertmanager_config_passes_amtool(repo, tmp_path):
    path = render_alertmanager(stack_config(repo, tmp_path, Timings.fast()))
    result = subprocess.run(
        [installed("amtool"), "check-config", str(path)], capture_output=True, text=True, timeout=30
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert " - 2 receivers" in result.stdout
    assert " - 1 templates" in result.stdout


def test_override_route_timing():
    route = {
        "receiver": "a",
        "routes": [
            {"receiver": "b", "group_wait": "30s"},
            {"receiver": "c", "routes": [{"receiver": "d"}, {"receiver": "e", "group_wait": "1m"}]},
        ],
    }
    _override_route_timing(route, "group_wait", "1s")
    assert route == {
        "receiver": "a",
        "group_wait": "1s",
        "routes": [
            {"receiver": "b", "group_wait": "1s"},
            {"receiver": "c", "group_wait": "1s",
             "routes": [{"receiver": "d", "group_wait": "1s"}, {"receiver": "e", "group_wait": "1s"}]},
        ],
    }


def test_render_exporter_is_a_valid_exporter_config(tmp_path):
    config = StackConfig(repo_root=tmp_path, workdir=tmp_path / "work", ports=PORTS, timings=Timings.fast())
    config.workdir.mkdir()
    path = render_exporter(config, tmp_path / "baseline.json", tmp_path / "logs")
    assert path == tmp_path / "work" / "exporter.yml"
    assert load_config(path) == ExporterConfig(
        model_name="credit-risk",
        model_version="1.0.0",
        baseline=tmp_path / "baseline.json",
        prediction_logs=(str(tmp_path / "logs" / "predictions*.jsonl"),),
        feedback_logs=(str(tmp_path / "logs" / "feedback*.jsonl"),),
        listen_host="127.0.0.1",
        listen_port=19102,
        window_seconds=12.0,
        slot_seconds=1.0,
        recompute_interval_seconds=0.5,
        poll_interval_seconds=0.2,
        segments=("region",),
    )


def test_timings():
    assert Timings.fast() == Timings(
        scrape_interval="1s", evaluation_interval="1s", alert_for="3s", resend_delay="1s",
        group_wait="1s", group_interval="2s", repeat_interval="1h",
        window_seconds=12, slot_seconds=1, recompute_interval_seconds=0.5, poll_interval_seconds=0.2,
    )
    shipped = Timings()  # None: keep what the config files say
    assert (shipped.scrape_interval, shipped.evaluation_interval, shipped.alert_for) == (None, None, None)
    assert (shipped.group_wait, shipped.group_interval, shipped.repeat_interval) == (None, None, None)


def test_free_ports_are_distinct_and_bindable():
    ports = Ports.free()
    values = [ports.prometheus, ports.alertmanager, ports.model_server, ports.exporter, ports.receiver]
    assert len(set(values)) == 5
    for port in values:
        assert 1024 <= port <= 65535
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", port))


def test_require_binary(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(StackError, match=r"^prometheus is not installed: run `make install-system`"):
        require_binary("prometheus")
    binary = tmp_path / "prometheus"
    binary.write_text("#!/bin/sh\n")
    binary.chmod(binary.stat().st_mode | stat.S_IXUSR)
    assert require_binary("prometheus") == str(binary)


def test_several_replicas_get_distinct_ports_targets_and_logs(repo, tmp_path):
    ports = Ports.free(replicas=3)
    every = [ports.prometheus, ports.alertmanager, ports.receiver, *(p for pair in ports.replicas() for p in pair)]
    assert len(ports.replicas()) == 3 and len(set(every)) == len(every) == 9
    config = StackConfig(repo_root=repo, workdir=tmp_path / "work", ports=ports, timings=Timings())
    rendered = yaml.safe_load(render_prometheus(config).read_text())
    jobs = {job["job_name"]: targets(job) for job in rendered["scrape_configs"]}
    assert jobs["model-server"] == [f"127.0.0.1:{model}" for model, _ in ports.replicas()]
    assert jobs["promml-exporter"] == [f"127.0.0.1:{exporter}" for _, exporter in ports.replicas()]

    first = render_exporter(config, tmp_path / "baseline.json", tmp_path / "logs")
    second = yaml.safe_load(render_replica_exporter(config, first, 2, 19999, tmp_path / "logs-2").read_text())
    assert second == {
        **yaml.safe_load(first.read_text()), "listen": "127.0.0.1:19999",
        "prediction_logs": [str(tmp_path / "logs-2" / "predictions*.jsonl")],
        "feedback_logs": [str(tmp_path / "logs-2" / "feedback*.jsonl")],
    }
