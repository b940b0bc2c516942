"""alertmanager/: the config and its templates, checked by amtool and by a real Alertmanager.

amtool validates the config, resolves routes and renders the templates; the last tests run Alertmanager itself
against a local HTTP server standing in for Slack and PagerDuty, to see the notifications as they would be sent,
inside business hours and outside them. `warning_hours_open` tells whether the shipped business hours are open at
a given moment (the end-to-end test uses it to know what to expect).
"""

from __future__ import annotations

import contextlib
import http.server
import json
import re
import shutil
import subprocess
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import yaml
from conftest import REPO_ROOT, wait_for

from promml.demo.stack import free_port

SECRETS_DIR = "/etc/alertmanager/secrets"
DEMO_SLACK_URL = "http://receiver:9096/slack/demo"
DEMO_ROUTING_KEY = "demo0000000000000000000000000000"
LINKS_BASE = "http://127.0.0.1:9096"  # promml.links.base: the demo receiver
DRIFT_RUNBOOK_PATH = "docs/runbooks/DataDriftDetected.md"  # the alert's runbook_url annotation
DRIFT_RUNBOOK = f"{LINKS_BASE}/{DRIFT_RUNBOOK_PATH}"
DASHBOARD = f"{LINKS_BASE}/d/promml-model-overview"
RECEIVERS_BY_SEVERITY = {
    "critical": "pagerduty-critical,slack-critical", "warning": "slack-warning", "info": "null", "none": "null",
}
BUSINESS_HOURS = [{
    "weekdays": ["monday:friday"], "times": [{"start_time": "09:00", "end_time": "18:00"}],
    "location": "Europe/Berlin",
}]
WEEKDAYS = ("sunday", "monday", "tuesday", "wednesday", "thursday", "friday", "saturday")  # Alertmanager: sunday = 0


def require(binary: str) -> str:
    path = shutil.which(binary)
    if path is None:
        pytest.fail(f"{binary} is not installed: run `make install-system` (Debian package prometheus-alertmanager)")
    return path


@pytest.fixture(scope="module")
def amtool() -> str:
    return require("amtool")


def run(command: list[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(command, capture_output=True, text=True, timeout=60, check=False)


def shipped(repo_root: Path) -> dict[str, Any]:
    return yaml.safe_load((repo_root / "alertmanager" / "alertmanager.yml").read_text())


def local_copy(repo_root: Path, directory: Path, config: dict[str, Any] | None = None) -> Path:
    """The config with its templates read from the repository instead of /etc/alertmanager/templates."""
    config = config or shipped(repo_root)
    config["templates"] = [str(repo_root / "alertmanager" / "templates" / "*.tmpl")]
    path = directory / "alertmanager.yml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


def walk(node: Any) -> Iterator[tuple[str, Any]]:
    """Every (key, value) pair of a parsed YAML document, at any depth."""
    if isinstance(node, dict):
        for key, value in node.items():
            yield key, value
            yield from walk(value)
    elif isinstance(node, list):
        for item in node:
            yield from walk(item)


def test_amtool_accepts_the_config_and_parses_the_templates(amtool: str, repo_root: Path, tmp_path: Path) -> None:
    assert sorted(p.name for p in (repo_root / "alertmanager" / "templates").glob("*.tmpl")) == ["promml.tmpl"]
    result = run([amtool, "check-config", str(local_copy(repo_root, tmp_path))])
    assert result.returncode == 0, result.stdout + result.stderr
    assert " - 4 receivers" in result.stdout and " - 3 inhibit rules" in result.stdout


def test_amtool_rejects_a_broken_template(amtool: str, repo_root: Path, tmp_path: Path) -> None:
    """The check above really parses the templates: an unclosed action in a copy of them fails it."""
    templates = tmp_path / "templates"
    templates.mkdir()
    text = (repo_root / "alertmanager" / "templates" / "promml.tmpl").read_text()
    (templates / "promml.tmpl").write_text(text + '{{ define "broken" }}{{ .Status \n')
    config = {**shipped(repo_root), "templates": [str(templates / "*.tmpl")]}
    path = tmp_path / "alertmanager.yml"
    path.write_text(yaml.safe_dump(config))
    result = run([amtool, "check-config", str(path)])
    assert result.returncode == 1
    assert "unclosed action" in result.stdout + result.stderr


def test_global_block_comes_first_and_takes_the_demo_pagerduty_url(
    amtool: str, repo_root: Path, tmp_path: Path
) -> None:
    """docker-compose's demo inserts `pagerduty_url` after the `global:` line with sed; the result must stay valid."""
    lines = (repo_root / "alertmanager" / "alertmanager.yml").read_text().splitlines(keepends=True)
    assert lines[0] == "global:\n"
    patched = [lines[0], "  pagerduty_url: http://receiver:9096/pagerduty/v2/\n", *lines[1:]]
    config = yaml.safe_load("".join(patched))
    assert config["global"] == {"resolve_timeout": "5m", "pagerduty_url": "http://receiver:9096/pagerduty/v2/"}
    result = run([amtool, "check-config", str(local_copy(repo_root, tmp_path, config))])
    assert result.returncode == 0, result.stdout + result.stderr


def test_secrets_and_templates_are_read_from_the_mounted_files(repo_root: Path) -> None:
    config = shipped(repo_root)
    assert config["templates"] == ["/etc/alertmanager/templates/*.tmpl"]
    files = [value for key, value in walk(config) if key.endswith("_file")]
    assert sorted(files) == [
        f"{SECRETS_DIR}/pagerduty_routing_key", f"{SECRETS_DIR}/slack_webhook_url", f"{SECRETS_DIR}/slack_webhook_url",
    ]
    for path in files:  # the demo mounts demo-secrets/ at /etc/alertmanager/secrets
        assert (repo_root / "alertmanager" / "demo-secrets" / Path(path).name).is_file()


def test_no_secret_value_is_written_in_the_config(repo_root: Path) -> None:
    keys = {key for key, _ in walk(shipped(repo_root))}
    assert keys & {"api_url", "routing_key", "service_key", "auth_password", "bearer_token"} == set()
    text = (repo_root / "alertmanager" / "alertmanager.yml").read_text()
    assert "hooks.slack.com" not in text and "events.pagerduty.com" not in text


def test_demo_secrets_are_the_demo_values(repo_root: Path) -> None:
    demo = repo_root / "alertmanager" / "demo-secrets"
    assert (demo / "slack_webhook_url").read_text().strip() == DEMO_SLACK_URL
    key = (demo / "pagerduty_routing_key").read_text().strip()
    assert key == DEMO_ROUTING_KEY and len(key) == 32
    assert "demo values" in (demo / "README.md").read_text()


def test_real_secrets_directory_is_ignored_by_git(repo_root: Path) -> None:
    git = shutil.which("git")
    if git is None:
        pytest.fail("git is not installed")
    ignored = run([git, "-C", str(repo_root), "check-ignore", "-q", "alertmanager/secrets/pagerduty_routing_key"])
    kept = run([git, "-C", str(repo_root), "check-ignore", "-q", "alertmanager/secrets/.gitignore"])
    assert (ignored.returncode, kept.returncode) == (0, 1)


def test_route_tree(repo_root: Path) -> None:
    route = shipped(repo_root)["route"]
    assert {key: route[key] for key in route if key != "routes"} == {
        "receiver": "slack-warning", "group_by": ["alertname", "model_name", "model_version"],
        "group_wait": "30s", "group_interval": "5m", "repeat_interval": "4h",
    }
    assert route["routes"] == [
        {"matchers": ['severity="none"'], "receiver": "null"},
        {"matchers": ['severity="info"'], "receiver": "null"},
        {"matchers": ['severity="critical"'], "receiver": "pagerduty-critical",
         "group_by": ["model_name", "model_version"], "continue": True},
        {"matchers": ['severity="critical"'], "receiver": "slack-critical",
         "group_by": ["model_name", "model_version"]},
        {"matchers": ['severity="warning"'], "receiver": "slack-warning",
         "active_time_intervals": ["business-hours"], "repeat_interval": "24h"},
    ]


def test_warnings_are_limited_to_business_hours(repo_root: Path) -> None:
    """Monday to Friday, 09:00 to 18:00 in a named zone; only the warning route uses it, every name it uses exists."""
    config = shipped(repo_root)
    assert config["time_intervals"] == [{"name": "business-hours", "time_intervals": BUSINESS_HOURS}]
    ZoneInfo(BUSINESS_HOURS[0]["location"])  # a real IANA zone (raises otherwise)
    timed = [(route["matchers"], route.get("active_time_intervals"), route.get("mute_time_intervals"))
             for route in config["route"]["routes"]
             if "active_time_intervals" in route or "mute_time_intervals" in route]
    assert timed == [(['severity="warning"'], ["business-hours"], None)]
    assert "active_time_intervals" not in config["route"] and "mute_time_intervals" not in config["route"]


def test_critical_inhibits_warning_and_info_and_warning_inhibits_info(repo_root: Path) -> None:
    assert shipped(repo_root)["inhibit_rules"] == [
        {"source_matchers": ['severity="critical"'], "target_matchers": ['severity="warning"'],
         "equal": ["alertname", "model_name", "model_version", "feature_name"]},
        {"source_matchers": ['severity=~"critical|warning"'], "target_matchers": ['severity="info"'],
         "equal": ["alertname", "model_name", "model_version", "feature_name"]},
        {"source_matchers": ['alertname="ModelAccuracyDrop"', 'severity="critical"'],
         "target_matchers": ['alertname="EstimatedPerformanceDrop"'], "equal": ["model_name", "model_version"]},
    ]


def test_the_accuracy_page_holds_back_the_estimated_drop_of_its_model_version_only(repo_root: Path) -> None:
    rules = shipped(repo_root)["inhibit_rules"]
    estimate = {"alertname": "EstimatedPerformanceDrop", "severity": "warning", "model_name": "credit-risk",
                "model_version": "1.0.0", "window": "1h", "metric": "accuracy"}
    page = {"alertname": "ModelAccuracyDrop", "severity": "critical", "model_name": "credit-risk",
            "model_version": "1.0.0", "instance": "exporter-a:9102"}
    assert inhibits(page, estimate, rules)
    assert not inhibits({**page, "severity": "warning"}, estimate, rules)
    assert not inhibits({**page, "model_version": "2.0.0"}, estimate, rules)
    # a drift page is another fact: the estimate still reaches Slack beside it
    assert not inhibits({**page, "alertname": "PredictionDrift"}, estimate, rules)


def alert_rules(repo_root: Path) -> list[dict[str, Any]]:
    return [
        rule
        for group in yaml.safe_load((repo_root / "prometheus" / "rules" / "alerts.yml").read_text())["groups"]
        for rule in group["rules"]
        if "alert" in rule
    ]


def matches(matcher: str, labels: dict[str, str]) -> bool:
    """Alertmanager's matcher semantics for `name="v"`, `!=`, `=~` and `!~` (regexes anchored, missing label = "")."""
    parsed = re.fullmatch(r'\s*(\w+)\s*(=~|!~|!=|=)\s*"(.*)"\s*', matcher)
    assert parsed, f"unsupported matcher {matcher!r}"
    name, operator, value = parsed.groups()
    actual = labels.get(name, "")
    if operator in ("=~", "!~"):
        found = re.fullmatch(value, actual) is not None
        return found if operator == "=~" else not found
    return (actual == value) if operator == "=" else (actual != value)


def test_every_two_level_alert_is_covered_by_an_inhibit_rule(repo_root: Path) -> None:
    """For each alert with a critical and a warning rule, some inhibit rule takes the critical one as source and the
    warning as target, and compares labels both levels carry alike (the rules are checked to share their label
    set in test_prometheus_config.py): checked on the config, without Alertmanager."""
    levels: dict[str, dict[str, dict[str, str]]] = {}
    for rule in alert_rules(repo_root):
        labels = {"alertname": rule["alert"], **rule["labels"]}
        levels.setdefault(rule["alert"], {})[rule["labels"]["severity"]] = labels
    two_level = {name: found for name, found in levels.items() if {"critical", "warning"} <= set(found)}
    assert sorted(two_level) == [
        "DataDriftDetected", "HighPredictionLatency", "ModelAccuracyDrop", "PredictionDrift", "PredictionErrorRateHigh",
    ]
    inhibit_rules = shipped(repo_root)["inhibit_rules"]
    for name, by_severity in two_level.items():
        critical, warning = by_severity["critical"], by_severity["warning"]
        covering = [
            rule for rule in inhibit_rules
            if all(matches(m, critical) for m in rule["source_matchers"])
            and all(matches(m, warning) for m in rule["target_matchers"])
            and "alertname" in rule["equal"]
        ]
        assert covering, f"no inhibit rule silences the warning {name} while its critical one fires"
        # The warning must not inhibit the critical one in return.
        assert not [
            rule for rule in inhibit_rules
            if all(matches(m, warning) for m in rule["source_matchers"])
            and all(matches(m, critical) for m in rule["target_matchers"])
        ], name


def test_matches() -> None:
    labels = {"severity": "critical", "alertname": "DataDriftDetected"}
    assert matches('severity="critical"', labels) and not matches('severity="warning"', labels)
    assert matches('severity!="warning"', labels) and matches('feature_name=""', labels)
    assert matches('alertname=~"Data.*"', labels) and not matches('alertname=~"Drift"', labels)
    assert matches('alertname!~"Model.*"', labels)


def inhibits(source: dict[str, str], target: dict[str, str], inhibit_rules: list[dict[str, Any]]) -> bool:
    """Whether a firing `source` alert holds back `target` under these rules (labels in `equal` compared as
    Alertmanager does, a missing label being the empty string)."""
    return any(
        all(matches(m, source) for m in rule["source_matchers"])
        and all(matches(m, target) for m in rule["target_matchers"])
        and all(source.get(name, "") == target.get(name, "") for name in rule["equal"])
        for rule in inhibit_rules
    )


@pytest.mark.parametrize(
    ("source", "target", "inhibited"),
    [
        ("critical", "warning", True), ("critical", "info", True), ("warning", "info", True),
        ("warning", "critical", False), ("info", "warning", False), ("info", "critical", False),
        ("critical", "critical", False), ("warning", "warning", False), ("none", "info", False),
    ],
)
def test_a_higher_severity_inhibits_the_lower_ones(
    repo_root: Path, source: str, target: str, inhibited: bool
) -> None:
    rules = shipped(repo_root)["inhibit_rules"]
    labels = {"alertname": "DataDriftDetected", "model_name": "credit-risk", "feature_name": "income"}
    assert inhibits({**labels, "severity": source}, {**labels, "severity": target}, rules) is inhibited
    # Another feature, model or alert is a different problem and is never held back.
    for other in ({"feature_name": "age"}, {"model_name": "churn"}, {"alertname": "ModelAccuracyLow"}):
        assert not inhibits({**labels, "severity": source}, {**labels, **other, "severity": target}, rules)


def weekday_number(name: str) -> int:
    return WEEKDAYS.index(name)


def in_interval(spec: dict[str, Any], when: datetime) -> bool:
    """Alertmanager's time_interval semantics for `weekdays`, `times` and `location` (the keys promml uses; any
    other key fails, so this is never silently wrong): weekday ranges inclusive, clock times [start, end)."""
    unsupported = set(spec) - {"weekdays", "times", "location"}
    assert not unsupported, f"time_interval keys not evaluated here: {sorted(unsupported)}"
    local = when.astimezone(ZoneInfo(spec.get("location", "UTC")))
    if "weekdays" in spec:
        day = local.isoweekday() % 7
        ranges = [[weekday_number(part) for part in item.split(":")] for item in spec["weekdays"]]
        if not any(bounds[0] <= day <= bounds[-1] for bounds in ranges):
            return False
    if "times" in spec:
        minute = local.hour * 60 + local.minute

        def minutes(clock: str) -> int:
            hours, mins = clock.split(":")
            return int(hours) * 60 + int(mins)

        if not any(minutes(t["start_time"]) <= minute < minutes(t["end_time"]) for t in spec["times"]):
            return False
    return True


def warning_hours_open(config: dict[str, Any], when: datetime) -> bool:
    """Whether the warning route of an Alertmanager config notifies at `when` (an aware datetime): true when it
    names no active time interval, else when any spec of any interval it names contains `when`."""
    (route,) = [r for r in config["route"]["routes"] if r["matchers"] == ['severity="warning"']]
    names = route.get("active_time_intervals", [])
    if not names:
        return True
    intervals = {interval["name"]: interval["time_intervals"] for interval in config.get("time_intervals", [])}
    return any(in_interval(spec, when) for name in names for spec in intervals[name])


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=timezone.utc)


@pytest.mark.parametrize(
    ("when", "open_"),
    [
        # Winter (CET = UTC+1): Monday 2024-01-15.
        (utc(2024, 1, 15, 7, 59), False), (utc(2024, 1, 15, 8, 0), True),     # 08:59 / 09:00 Berlin
        (utc(2024, 1, 15, 16, 59), True), (utc(2024, 1, 15, 17, 0), False),   # 17:59 / 18:00 Berlin
        # Summer (CEST = UTC+2): Friday 2024-07-12 and the Saturday after.
        (utc(2024, 7, 12, 6, 59), False), (utc(2024, 7, 12, 7, 0), True),     # 08:59 / 09:00 Berlin
        (utc(2024, 7, 12, 15, 59), True), (utc(2024, 7, 12, 16, 0), False),   # 17:59 / 18:00 Berlin
        (utc(2024, 7, 13, 10, 0), False),                                     # Saturday noon
        # Sunday 23:30 UTC is already Monday 00:30 in Berlin: a weekday, but before 09:00.
        (utc(2024, 1, 14, 23, 30), False),
    ],
)
def test_warning_hours_follow_the_business_hours_in_their_zone(repo_root: Path, when: datetime, open_: bool) -> None:
    assert warning_hours_open(shipped(repo_root), when) is open_


def test_warning_hours_without_an_interval_are_always_open(repo_root: Path) -> None:
    config = shipped(repo_root)
    for route in config["route"]["routes"]:
        route.pop("active_time_intervals", None)
    assert warning_hours_open(config, utc(2024, 7, 13, 3, 0))


def test_every_severity_of_the_rules_has_a_tier(repo_root: Path) -> None:
    severities = {rule["labels"]["severity"] for rule in alert_rules(repo_root)}
    assert severities <= set(RECEIVERS_BY_SEVERITY), severities - set(RECEIVERS_BY_SEVERITY)


@pytest.mark.parametrize("severity", sorted({rule["labels"]["severity"] for rule in alert_rules(REPO_ROOT)}))
def test_amtool_routes_every_alert_of_a_severity(amtool: str, repo_root: Path, severity: str) -> None:
    """Each alert rule's own labels, as Prometheus sends them, reach the receivers of its severity (a tier that no
    rule uses yet is covered by test_amtool_routes below)."""
    config = repo_root / "alertmanager" / "alertmanager.yml"
    receivers = RECEIVERS_BY_SEVERITY[severity]
    rules = [rule for rule in alert_rules(repo_root) if rule["labels"]["severity"] == severity]
    assert rules
    for rule in rules:
        labels = [f"alertname={rule['alert']}", *(f"{key}={value}" for key, value in rule["labels"].items()),
                  "model_name=credit-risk"]
        result = run([amtool, "config", "routes", "test", f"--config.file={config}",
                      f"--verify.receivers={receivers}", *labels])
        assert result.returncode == 0, f"{rule['alert']}: {result.stdout}{result.stderr}"
        assert result.stdout.strip() == receivers, rule["alert"]


@pytest.mark.parametrize(
    ("labels", "receivers"),
    [
        (["severity=critical"], "pagerduty-critical,slack-critical"),
        (["alertname=DataDriftDetected", "severity=critical", "model_name=credit-risk", "feature_name=income"],
         "pagerduty-critical,slack-critical"),
        (["severity=warning"], "slack-warning"),
        (["alertname=Watchdog", "severity=none"], "null"),
        (["severity=none"], "null"),
        (["severity=info"], "null"),
        (["alertname=DataDriftDetected", "severity=info", "model_name=credit-risk", "feature_name=income"], "null"),
        (["alertname=SomethingElse"], "slack-warning"),  # no severity: a human still sees it
        (["severity=page"], "slack-warning"),  # an unknown severity as well
    ],
)
def test_amtool_routes(amtool: str, repo_root: Path, labels: list[str], receivers: str) -> None:
    config = repo_root / "alertmanager" / "alertmanager.yml"
    result = run([amtool, "config", "routes", "test", f"--config.file={config}", f"--verify.receivers={receivers}",
                  *labels])
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.strip() == receivers


def template_data() -> dict[str, Any]:
    """A page's group: drift on income reported by two replicas, still firing, and on debt_ratio, resolved, in
    Alertmanager's template data layout."""
    def alert(status: str, feature: str, psi: str) -> dict[str, Any]:
        return {
            "status": status,
            "labels": {"alertname": "DataDriftDetected", "severity": "critical", "model_name": "credit-risk",
                       "model_version": "1.0.0", "feature_name": feature},
            "annotations": {
                "summary": "A feature's distribution has moved away from the training data.",
                "description": f"Feature {feature} of model credit-risk 1.0.0 has PSI {psi} against its training "
                               "baseline (threshold 0.25).",
                "runbook_url": DRIFT_RUNBOOK_PATH,
            },
        }
    return {
        "receiver": "slack-critical", "status": "firing", "externalURL": "http://127.0.0.1:9093",
        "alerts": [alert("firing", "income", "0.41"), alert("firing", "income", "0.38"),
                   alert("resolved", "debt_ratio", "0.33")],
        "groupLabels": {"model_name": "credit-risk", "model_version": "1.0.0"},
        "commonLabels": {"alertname": "DataDriftDetected", "severity": "critical", "model_name": "credit-risk",
                         "model_version": "1.0.0"},
        "commonAnnotations": {"runbook_url": DRIFT_RUNBOOK_PATH},
    }


@pytest.mark.parametrize(
    ("template", "expected"),
    [
        ("promml.slack.title", "[FIRING:2] DataDriftDetected on credit-risk 1.0.0 (income)"),
        ("promml.pagerduty.description", "[FIRING:2] DataDriftDetected on credit-risk 1.0.0 (income)"),
        ("promml.features", "income"),
        ("promml.alertnames", "DataDriftDetected"),
        ("promml.slack.text",
         "*DataDriftDetected* (critical) Status: firing\n"
         "Model: credit-risk 1.0.0, feature: income\n"
         "Feature income of model credit-risk 1.0.0 has PSI 0.41 against its training baseline (threshold 0.25).\n"
         f"Runbook: {DRIFT_RUNBOOK}\n"
         f"Dashboard: {DASHBOARD}?var-model=credit-risk&var-version=1.0.0\n"
         "\n"
         "*DataDriftDetected* (critical) Status: firing\n"
         "Model: credit-risk 1.0.0, feature: income\n"
         "Feature income of model credit-risk 1.0.0 has PSI 0.38 against its training baseline (threshold 0.25).\n"
         f"Runbook: {DRIFT_RUNBOOK}\n"
         f"Dashboard: {DASHBOARD}?var-model=credit-risk&var-version=1.0.0\n"
         "\n"
         "Resolved: DataDriftDetected (debt_ratio)"),
        ("promml.dashboard.url", f"{DASHBOARD}?var-model=credit-risk&var-version=1.0.0"),
        ("promml.descriptions",
         "firing: Feature income of model credit-risk 1.0.0 has PSI 0.41 against its training baseline (threshold "
         "0.25).\nfiring: Feature income of model credit-risk 1.0.0 has PSI 0.38 against its training baseline "
         "(threshold 0.25)."),
    ],
)
def test_amtool_renders_the_templates(
    amtool: str, repo_root: Path, tmp_path: Path, template: str, expected: str
) -> None:
    data = tmp_path / "data.json"
    data.write_text(json.dumps(template_data()))
    result = run([
        amtool, "template", "render", f"--template.glob={repo_root / 'alertmanager' / 'templates' / '*.tmpl'}",
        f"--template.data={data}", f'--template.text={{{{ template "{template}" . }}}}',
    ])
    assert result.returncode == 0, result.stderr
    assert result.stdout == expected


def render(amtool: str, repo_root: Path, tmp_path: Path, data: dict[str, Any], text: str) -> str:
    path = tmp_path / "data.json"
    path.write_text(json.dumps(data))
    result = run([
        amtool, "template", "render", f"--template.glob={repo_root / 'alertmanager' / 'templates' / '*.tmpl'}",
        f"--template.data={path}", f"--template.text={text}",
    ])
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_dashboard_links_prefer_the_alerts_annotation_and_escape_the_model(
    amtool: str, repo_root: Path, tmp_path: Path
) -> None:
    """An alert's `dashboard_url` annotation wins; without one the overview opens on the alert's model (escaped for
    a URL), or with the dashboard's own defaults when the alert names no model (a scrape target down)."""
    data = template_data()
    data["alerts"] = [data["alerts"][0], data["alerts"][2]]
    data["alerts"][0]["annotations"]["dashboard_url"] = "https://grafana.example.com/d/drift?var-feature=income"
    data["alerts"][1]["labels"] = {"alertname": "ModelServerDown", "severity": "critical"}
    data["alerts"].append({**data["alerts"][0], "annotations": {},
                           "labels": {"model_name": "risk & fraud", "model_version": "2.0.0+b1"}})
    each = '{{ range .Alerts }}{{ template "promml.alert.dashboard.url" . }}\n{{ end }}'
    assert render(amtool, repo_root, tmp_path, data, each).splitlines() == [
        "https://grafana.example.com/d/drift?var-feature=income",
        DASHBOARD,
        f"{DASHBOARD}?var-model=risk+%26+fraud&var-version=2.0.0%2Bb1",
    ]
    data["commonAnnotations"] = {"dashboard_url": "https://grafana.example.com/d/x"}
    assert render(amtool, repo_root, tmp_path, data, '{{ template "promml.dashboard.url" . }}') == (
        "https://grafana.example.com/d/x")
    data["commonAnnotations"], data["commonLabels"] = {}, {"alertname": "ModelServerDown"}
    assert render(amtool, repo_root, tmp_path, data, '{{ template "promml.dashboard.url" . }}') == DASHBOARD


def test_runbook_links_take_the_links_base_unless_a_full_url(amtool: str, repo_root: Path, tmp_path: Path) -> None:
    """A runbook_url annotation that is a path opens under the links base; a full URL (a runbook kept elsewhere)
    is used as it is; no annotation gives no link rather than the bare base."""
    data = template_data()
    first = data["alerts"][0]
    data["alerts"] = [first, {**first, "annotations": {"runbook_url": "https://wiki.example.com/runbooks/drift"}},
                      {**first, "annotations": {}}]
    each = '{{ range .Alerts }}{{ template "promml.runbook.link" .Annotations.runbook_url }}\n{{ end }}'
    assert render(amtool, repo_root, tmp_path, data, each).splitlines() == [
        DRIFT_RUNBOOK, "https://wiki.example.com/runbooks/drift", "",
    ]


def test_the_links_base_is_defined_once_and_every_link_uses_it(repo_root: Path) -> None:
    templates = "".join(path.read_text() for path in (repo_root / "alertmanager" / "templates").glob("*.tmpl"))
    assert re.findall(r'\{\{ define "promml\.links\.base" \}\}([^{]*)\{\{ end \}\}', templates) == [LINKS_BASE]
    assert "http" not in re.sub(r"#.*", "", (repo_root / "alertmanager" / "alertmanager.yml").read_text())
    rules = (repo_root / "prometheus" / "rules" / "alerts.yml").read_text()
    assert "http" not in rules


def test_slack_text_names_the_segment_of_a_fairness_alert(amtool: str, repo_root: Path, tmp_path: Path) -> None:
    data = template_data()
    data["alerts"] = [{**data["alerts"][0], "labels": {
        "alertname": "FairnessParityLow", "severity": "warning", "model_name": "credit-risk", "model_version": "1.0.0",
        "segment": "region", "window": "1h"}}]
    text = render(amtool, repo_root, tmp_path, data, '{{ template "promml.slack.text" . }}')
    assert text.splitlines()[1] == "Model: credit-risk 1.0.0, segment: region"


class Inbox(http.server.ThreadingHTTPServer):
    """Records every POST as (path, JSON body): stands in for both Slack and PagerDuty."""

    def __init__(self) -> None:
        self.messages: list[tuple[str, dict[str, Any]]] = []
        super().__init__(("127.0.0.1", 0), InboxHandler)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"

    def bodies(self, path: str, *words: str) -> list[dict[str, Any]]:
        return [body for p, body in list(self.messages) if p == path and all(w in json.dumps(body) for w in words)]


class InboxHandler(http.server.BaseHTTPRequestHandler):
    server: Inbox

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        self.server.messages.append((self.path, json.loads(body)))
        self.send_response(202)
        self.end_headers()
        self.wfile.write(b"{}")

    def log_message(self, *_: object) -> None:
        pass


def fast_route(route: dict[str, Any]) -> None:
    route.update(group_wait="1s", group_interval="1s", repeat_interval="1h")
    for child in route.get("routes", []):
        fast_route(child)


ALWAYS_OPEN = [{"times": [{"start_time": "00:00", "end_time": "24:00"}]}]


def closed_now() -> list[dict[str, Any]]:
    """Business hours that hold no moment of the next hours: one hour, twelve hours away, in the shipped zone."""
    zone = BUSINESS_HOURS[0]["location"]
    start = (datetime.now(ZoneInfo(zone)).hour + 12) % 24
    return [{"times": [{"start_time": f"{start:02d}:00", "end_time": f"{start + 1:02d}:00"}], "location": zone}]


def with_business_hours(config: dict[str, Any], specs: list[dict[str, Any]]) -> dict[str, Any]:
    """The config with only the times of its `business-hours` interval replaced."""
    (interval,) = [item for item in config["time_intervals"] if item["name"] == "business-hours"]
    interval["time_intervals"] = specs
    return config


@contextlib.contextmanager
def running_alertmanager(
    repo_root: Path, tmp_path: Path, business_hours: list[dict[str, Any]]
) -> Iterator[tuple[str, Inbox, Path]]:
    """Alertmanager from the shipped config with the given business hours; secret files in tmp_path and both
    notifiers sent to an Inbox. Yields its URL, the Inbox and its log (debug level)."""
    binary = require("prometheus-alertmanager")
    inbox = Inbox()
    threading.Thread(target=inbox.serve_forever, daemon=True).start()
    (tmp_path / "slack_webhook_url").write_text(f"{inbox.url}/slack\n")
    (tmp_path / "pagerduty_routing_key").write_text(f"{DEMO_ROUTING_KEY}\n")
    config = with_business_hours(shipped(repo_root), business_hours)
    for receiver in config["receivers"]:
        for slack in receiver.get("slack_configs", []):
            slack["api_url_file"] = str(tmp_path / "slack_webhook_url")
        for pagerduty in receiver.get("pagerduty_configs", []):
            pagerduty["routing_key_file"] = str(tmp_path / "pagerduty_routing_key")
            pagerduty["url"] = f"{inbox.url}/pagerduty"
    fast_route(config["route"])
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log_path = tmp_path / "alertmanager.log"
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            [binary, f"--config.file={local_copy(repo_root, tmp_path, config)}", f"--storage.path={tmp_path / 'data'}",
             f"--web.listen-address=127.0.0.1:{port}", "--cluster.listen-address=", "--log.level=debug"],
            stdout=log, stderr=subprocess.STDOUT,
        )
    try:
        wait_for("Alertmanager to be ready", lambda: process.poll() is None and ready(url))
        yield url, inbox, log_path
    finally:
        process.terminate()
        process.wait(timeout=10)
        inbox.shutdown()
        inbox.server_close()


@pytest.fixture
def alertmanager(repo_root: Path, tmp_path: Path) -> Iterator[tuple[str, Inbox]]:
    """Alertmanager inside business hours: its interval replaced by one that holds every moment."""
    assert in_interval(ALWAYS_OPEN[0], datetime.now(timezone.utc))
    with running_alertmanager(repo_root, tmp_path, ALWAYS_OPEN) as (url, inbox, _):
        yield url, inbox


@pytest.fixture
def alertmanager_after_hours(repo_root: Path, tmp_path: Path) -> Iterator[tuple[str, Inbox, Path]]:
    """Alertmanager outside business hours: its interval replaced by one hour far from now."""
    closed = closed_now()
    now = datetime.now(timezone.utc)
    assert not any(in_interval(closed[0], now + timedelta(minutes=m)) for m in range(0, 60, 5))
    with running_alertmanager(repo_root, tmp_path, closed) as running:
        yield running


def ready(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/-/ready", timeout=1) as response:
            return bool(response.status == 200)
    except (urllib.error.URLError, OSError):
        return False


def post_alerts(url: str, alerts: list[dict[str, Any]]) -> None:
    request = urllib.request.Request(f"{url}/api/v2/alerts", data=json.dumps(alerts).encode(),
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=5) as response:
        assert response.status == 200


def get_alerts(url: str, *matchers: str) -> list[dict[str, Any]]:
    query = urllib.parse.urlencode([("filter", matcher) for matcher in matchers])
    with urllib.request.urlopen(f"{url}/api/v2/alerts?{query}", timeout=5) as response:
        return list(json.loads(response.read()))


def alert(name: str, severity: str, ends_at: str | None = None, **labels: str) -> dict[str, Any]:
    body: dict[str, Any] = {
        "labels": {"alertname": name, "severity": severity, "model_name": "credit-risk", "model_version": "1.0.0",
                   **labels},
        "annotations": {"description": f"{name} ({severity}) on {labels.get('feature_name', 'the model')}",
                        "runbook_url": f"docs/runbooks/{name}.md"},
    }
    if ends_at:
        body["endsAt"] = ends_at
    return body


def test_alertmanager_pages_and_posts_as_routed(alertmanager: tuple[str, Inbox]) -> None:
    """Inside business hours: critical pages and posts, warning posts, info and none notify nobody."""
    url, inbox = alertmanager
    drift = alert("DataDriftDetected", "critical", feature_name="income")
    post_alerts(url, [
        drift,
        alert("DataDriftDetected", "warning", feature_name="income"),  # inhibited by the critical one
        alert("DataDriftDetected", "info", feature_name="income"),  # inhibited as well
        alert("ModelAccuracyLow", "warning"),
        alert("ModelAccuracyLow", "info"),  # inhibited by the warning
        alert("PredictionVolumeShift", "info"),  # routed nowhere
        alert("Watchdog", "none"),
        # A two-level alert without feature_name: the label is missing on both, which counts as equal. (Another
        # model: pages group by model and version, and this test looks at one alert per page.)
        alert("HighPredictionLatency", "critical", model_name="churn"),
        alert("HighPredictionLatency", "warning", model_name="churn"),
    ])
    (page,) = wait_for("a PagerDuty trigger", lambda: inbox.bodies("/pagerduty", "DataDriftDetected"))
    assert page["routing_key"] == DEMO_ROUTING_KEY  # read from the file, whitespace stripped
    assert page["event_action"] == "trigger"
    assert page["payload"]["severity"] == "critical"
    assert page["payload"]["summary"] == "[FIRING:1] DataDriftDetected on credit-risk 1.0.0 (income)"
    details = page["payload"]["custom_details"]
    assert {key: details[key] for key in ("model_name", "model_version", "feature_name", "runbook_url")} == {
        "model_name": "credit-risk", "model_version": "1.0.0", "feature_name": "income", "runbook_url": DRIFT_RUNBOOK,
    }
    assert details["description"] == "firing: DataDriftDetected (critical) on income"
    dashboard = f"{DASHBOARD}?var-model=credit-risk&var-version=1.0.0"
    assert details["dashboard_url"] == dashboard
    assert page["links"] == [{"href": DRIFT_RUNBOOK, "text": "Runbook"}, {"href": dashboard, "text": "Dashboard"}]

    (slack,) = wait_for("a Slack post", lambda: inbox.bodies("/slack", "DataDriftDetected"))
    assert slack["channel"] == "#ml-alerts"
    (attachment,) = slack["attachments"]
    assert attachment["title"] == "[FIRING:1] DataDriftDetected on credit-risk 1.0.0 (income)"
    assert attachment["text"] == (
        "*DataDriftDetected* (critical) Status: firing\nModel: credit-risk 1.0.0, feature: income\n"
        f"DataDriftDetected (critical) on income\nRunbook: {DRIFT_RUNBOOK}\nDashboard: {dashboard}"
    )
    wait_for("the warning in Slack", lambda: inbox.bodies("/slack", "ModelAccuracyLow"))
    twin = get_alerts(url, 'alertname="DataDriftDetected"', 'severity="warning"')
    assert [item["status"]["state"] for item in twin] == ["suppressed"]
    assert inbox.bodies("/slack", "DataDriftDetected", "(warning) Status") == []  # inhibited by the critical one
    wait_for("the latency page", lambda: inbox.bodies("/pagerduty", "HighPredictionLatency"))
    latency_warning = get_alerts(url, 'alertname="HighPredictionLatency"', 'severity="warning"')
    assert [item["status"]["state"] for item in latency_warning] == ["suppressed"]
    assert inbox.bodies("/slack", "HighPredictionLatency", "(warning) Status") == []

    ended = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() - 1))
    post_alerts(url, [{**drift, "endsAt": ended}])
    (resolve,) = wait_for("a PagerDuty resolve", lambda: [
        body for body in inbox.bodies("/pagerduty", "DataDriftDetected") if body["event_action"] == "resolve"
    ])
    assert resolve["dedup_key"] == page["dedup_key"]
    wait_for("a resolved Slack post", lambda: inbox.bodies("/slack", "DataDriftDetected", "Status: resolved"))

    assert inbox.bodies("/pagerduty", "ModelAccuracyLow") == []  # warnings never page
    assert inbox.bodies("/pagerduty", "Watchdog") == inbox.bodies("/slack", "Watchdog") == []
    # Info notifies nobody; the info twins of a firing warning or critical alert are inhibited as well.
    assert [item["status"]["state"] for item in get_alerts(url, 'alertname="PredictionVolumeShift"')] == ["active"]
    assert [item["status"]["state"] for item in get_alerts(url, 'alertname="ModelAccuracyLow"', 'severity="info"')] == [
        "suppressed"]
    assert [item["status"]["state"] for item in get_alerts(url, 'feature_name="income"', 'severity="info"')] == [
        "suppressed"]
    assert [body for _, body in inbox.messages if "(info)" in json.dumps(body)] == []
    # The critical alert is gone, so its warning twin is no longer inhibited.
    wait_for("the uninhibited warning", lambda: inbox.bodies("/slack", "DataDriftDetected", "(warning) Status"))


def test_alertmanager_holds_warnings_outside_business_hours(
    alertmanager_after_hours: tuple[str, Inbox, Path]
) -> None:
    """Outside business hours a critical alert still pages and posts; a warning is held: Alertmanager lists it as
    active, flushes its group (logged at debug level) and sends nothing."""
    url, inbox, log = alertmanager_after_hours
    post_alerts(url, [
        alert("ModelAccuracyLow", "warning"),
        alert("DataDriftDetected", "warning", feature_name="age"),  # another feature: not inhibited, but held
        alert("DataDriftDetected", "critical", feature_name="income"),
    ])
    wait_for("the page", lambda: inbox.bodies("/pagerduty", "DataDriftDetected"))
    wait_for("the critical Slack post", lambda: inbox.bodies("/slack", "DataDriftDetected", "(critical) Status"))

    def flushes_and_mutes() -> tuple[dict[str, int], int]:
        """Flushes of each warning group, and the notifications the time interval stopped (only the warning
        route has one, so every stop is a warning's)."""
        lines = log.read_text().splitlines()
        flushes = {name: sum('severity=\\"warning\\"' in line and f'alertname=\\"{name}\\"' in line
                             and "msg=flushing" in line for line in lines)
                   for name in ("ModelAccuracyLow", "DataDriftDetected")}
        return flushes, sum("route is not within active time" in line for line in lines)

    # Each warning group is flushed at least twice (group_interval 1s) and every one of those flushes is stopped.
    wait_for("two stopped flushes of each warning group", lambda: min(flushes_and_mutes()[0].values()) >= 2
             and flushes_and_mutes()[1] >= 4)
    for matchers in (['alertname="ModelAccuracyLow"'], ['alertname="DataDriftDetected"', 'severity="warning"']):
        (held,) = get_alerts(url, *matchers)
        assert held["status"]["state"] == "active"
        assert [receiver["name"] for receiver in held["receivers"]] == ["slack-warning"]
    assert inbox.bodies("/slack", "ModelAccuracyLow") == []
    assert inbox.bodies("/slack", "(warning) Status") == []
    assert inbox.bodies("/pagerduty", "ModelAccuracyLow") == []


def triggers(inbox: Inbox) -> list[dict[str, Any]]:
    return [body for body in inbox.bodies("/pagerduty") if body["event_action"] == "trigger"]


def test_one_incident_of_a_model_version_is_one_page(alertmanager: tuple[str, Inbox]) -> None:
    """Drift on two replicas, the score and the accuracy of one model version: one PagerDuty incident (one
    dedup key) whose summary names each alert and feature once; another version is another incident."""
    url, inbox = alertmanager
    replicas = [alert("DataDriftDetected", "critical", feature_name="income", instance=f"exporter-{r}:9102")
                for r in ("a", "b")]
    post_alerts(url, [
        *replicas,
        alert("PredictionDrift", "critical", window="1h"),
        alert("ModelAccuracyDrop", "critical"),
        {**alert("DataDriftDetected", "critical", feature_name="age"),
         "labels": {**alert("DataDriftDetected", "critical", feature_name="age")["labels"], "model_version": "2.0.0"}},
    ])
    wait_for("both versions paged", lambda: {body["payload"]["custom_details"]["model_version"]
                                             for body in triggers(inbox)} == {"1.0.0", "2.0.0"})
    time.sleep(3)  # group_interval is 1s: any further group would have been sent by now
    pages = {body["payload"]["custom_details"]["model_version"]: body for body in triggers(inbox)}
    assert len({body["dedup_key"] for body in triggers(inbox)}) == 2
    first = pages["1.0.0"]
    assert first["payload"]["summary"] == (
        "[FIRING:4] DataDriftDetected, ModelAccuracyDrop, PredictionDrift on credit-risk 1.0.0 (income)")
    assert first["payload"]["custom_details"]["feature_name"] == "income"
    # Several alerts have several runbooks: the page links the first one's (the Slack text links each).
    assert first["payload"]["custom_details"]["runbook_url"] == DRIFT_RUNBOOK
    assert first["links"][0] == {"href": DRIFT_RUNBOOK, "text": "Runbook"}
    assert pages["2.0.0"]["payload"]["summary"] == "[FIRING:1] DataDriftDetected on credit-risk 2.0.0 (age)"

    ended = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() - 1))
    post_alerts(url, [{**replica, "endsAt": ended} for replica in replicas])
    update = wait_for("the page updated without the resolved feature", lambda: [
        body for body in triggers(inbox) if body["payload"]["summary"].startswith("[FIRING:2]")])
    assert update[-1]["dedup_key"] == first["dedup_key"]
    assert update[-1]["payload"]["summary"] == "[FIRING:2] ModelAccuracyDrop, PredictionDrift on credit-risk 1.0.0"
    assert update[-1]["payload"]["custom_details"]["feature_name"] == ""


def test_a_critical_alert_of_one_version_does_not_inhibit_another_versions_warning(
    alertmanager: tuple[str, Inbox]
) -> None:
    url, inbox = alertmanager
    critical = alert("DataDriftDetected", "critical", feature_name="income")
    critical["labels"]["model_version"] = "2.0.0"
    post_alerts(url, [critical, alert("DataDriftDetected", "warning", feature_name="income")])
    wait_for("the page of 2.0.0", lambda: triggers(inbox))
    wait_for("the warning of 1.0.0 in Slack", lambda: inbox.bodies("/slack", "(warning) Status", "1.0.0"))
    (warning,) = get_alerts(url, 'severity="warning"')
    assert warning["status"]["state"] == "active"


def test_label_text_from_clients_is_escaped_in_notifications(amtool: str, repo_root: Path, tmp_path: Path) -> None:
    """An unknown feature is named by whoever sent it: Slack's control syntax and line breaks stay plain text."""
    hostile = "<!channel> <https://evil.example|click> & co\nFAKE: resolved"
    escaped = "&lt;!channel&gt; &lt;https://evil.example|click&gt; &amp; co FAKE: resolved"
    data = template_data()
    data["alerts"] = [{**data["alerts"][0], "labels": {**data["alerts"][0]["labels"], "feature_name": hostile}}]
    annotations = data["alerts"][0]["annotations"]
    data["alerts"][0]["annotations"] = {**annotations, "description": f"Feature {hostile} drifted."}
    text = render(amtool, repo_root, tmp_path, data, '{{ template "promml.slack.text" . }}')
    assert text.splitlines()[1] == f"Model: credit-risk 1.0.0, feature: {escaped}"
    assert text.splitlines()[2] == f"Feature {escaped} drifted."
    for template in ("promml.slack.title", "promml.pagerduty.description"):
        assert render(amtool, repo_root, tmp_path, data, f'{{{{ template "{template}" . }}}}').endswith(f"({escaped})")


def reload_with_business_hours(url: str, config_path: Path, specs: list[dict[str, Any]]) -> None:
    """Rewrites the running Alertmanager's business hours and reloads its config (its alerts are kept)."""
    config = with_business_hours(yaml.safe_load(config_path.read_text()), specs)
    config_path.write_text(yaml.safe_dump(config, sort_keys=False))
    request = urllib.request.Request(f"{url}/-/reload", data=b"", method="POST")
    with urllib.request.urlopen(request, timeout=10) as response:
        assert response.status == 200


def alert_groups(url: str, name: str) -> list[dict[str, Any]]:
    with urllib.request.urlopen(f"{url}/api/v2/alerts/groups", timeout=5) as response:
        groups = json.loads(response.read())
    return [group for group in groups if any(a["labels"]["alertname"] == name for a in group["alerts"])]


def test_a_warning_that_resolves_outside_business_hours_is_not_posted_resolved(
    repo_root: Path, tmp_path: Path
) -> None:
    """The documented decision (docs/alerting.md, Business hours): a warning posted in business hours whose
    resolution falls outside them gets no RESOLVED post. The flush that the time interval stops still drops the
    resolved alert from its group (the group disappears), so nothing is left to post when the hours open again.
    The warning's own text says so."""
    with running_alertmanager(repo_root, tmp_path, ALWAYS_OPEN) as (url, inbox, log):
        warning = alert("ModelAccuracyLow", "warning")
        post_alerts(url, [warning])
        (posted,) = wait_for("the warning in Slack", lambda: inbox.bodies("/slack", "ModelAccuracyLow"))
        assert posted["attachments"][0]["text"].endswith(
            "Resolutions outside business hours are not posted: the dashboard and Alertmanager show the current "
            "state.")

        reload_with_business_hours(url, tmp_path / "alertmanager.yml", closed_now())
        wait_for("a stopped flush of the warning", lambda: "route is not within active time" in log.read_text())
        assert alert_groups(url, "ModelAccuracyLow")  # held: still in its group
        ended = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() - 1))
        post_alerts(url, [{**warning, "endsAt": ended}])
        wait_for("the resolved warning dropped from its group", lambda: not alert_groups(url, "ModelAccuracyLow"))
        assert inbox.bodies("/slack", "ModelAccuracyLow", "resolved") == []
        assert len(inbox.bodies("/slack", "ModelAccuracyLow")) == 1
