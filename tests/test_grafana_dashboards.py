"""The Grafana dashboards and provisioning, checked offline; and the query helpers in grafana_queries.

Queries are parsed by promtool (the Prometheus parser itself) after the same variable substitution Grafana
does; the end-to-end test runs them against a live Prometheus.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml
from grafana_queries import (
    dashboard_queries,
    duration_seconds,
    iter_panels,
    metric_names,
    render_query,
    shorten_offsets,
)

REPO_ROOT = Path(__file__).resolve().parent.parent
DASHBOARD_FILES = sorted((REPO_ROOT / "grafana/dashboards").glob("*.json"))
PROVISIONING = REPO_ROOT / "grafana/provisioning"
DATASOURCE = {"type": "prometheus", "uid": "${datasource}"}
PANELS_WITHOUT_DATA = {"row", "text"}

RENDER = {"model": "credit-risk", "version": "1.0.0", "rate_interval": "1m"}


def load(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text())


def panels(dashboard: dict[str, Any]) -> list[dict[str, Any]]:
    return list(iter_panels(dashboard["panels"]))


def data_panels(dashboard: dict[str, Any]) -> list[dict[str, Any]]:
    return [panel for panel in panels(dashboard) if panel["type"] not in PANELS_WITHOUT_DATA]


def compose() -> dict[str, Any]:
    return yaml.safe_load((REPO_ROOT / "docker-compose.yml").read_text())


def grafana_mounts() -> dict[str, str]:
    """Repository path -> container path of the grafana service's bind mounts."""
    volumes = compose()["services"]["grafana"]["volumes"]
    return dict(entry.split(":")[:2] for entry in volumes if entry.startswith("."))


def recording_rules() -> dict[str, str]:
    rules = {}
    for path in sorted((REPO_ROOT / "prometheus/rules").glob("*.yml")):
        for group in yaml.safe_load(path.read_text()).get("groups", []):
            rules.update({rule["record"]: rule["expr"] for rule in group["rules"] if "record" in rule})
    return rules


def expanded_metric_names(expr: str, rules: dict[str, str]) -> set[str]:
    """Metric names of `expr`, with each recording rule also standing for the metrics it is computed from."""
    names = metric_names(expr)
    for name in list(names):
        if name in rules:
            names |= expanded_metric_names(rules[name], rules)
    return names


def documented_metrics() -> set[str]:
    text = (REPO_ROOT / "docs/metrics.md").read_text()
    return set(re.findall(r"^\| `([a-zA-Z_:][a-zA-Z0-9_:]*)` \|", text, flags=re.MULTILINE))


def alert_rules() -> list[dict[str, Any]]:
    """Every alerting rule of prometheus/rules/alerts.yml but Watchdog (always firing: shown by Firing alerts)."""
    return [
        rule
        for group in yaml.safe_load((REPO_ROOT / "prometheus/rules/alerts.yml").read_text())["groups"]
        for rule in group["rules"]
        if "alert" in rule and rule["alert"] != "Watchdog"
    ]


def alert_signal(expr: str) -> tuple[str, float]:
    """The comparison that fires an alert (its first operand of `and`/`or`/`unless`) and the threshold in it."""
    comparison = re.split(r"\b(?:and|or|unless)\b", expr)[0].strip()
    threshold = re.search(r"(?:[<>]=?|==|!=)\s*(-?\d+(?:\.\d+)?)$", comparison)
    assert threshold, f"no threshold comparison in {expr!r}"
    return comparison, float(threshold.group(1))


def raw_metrics(expr: str, rules: dict[str, str]) -> set[str]:
    """The scraped metrics behind `expr`, recording rules replaced by what they are computed from."""
    return expanded_metric_names(expr, rules) - set(rules)


def threshold_values(panel: dict[str, Any]) -> set[float]:
    steps = panel["fieldConfig"]["defaults"].get("thresholds", {}).get("steps", [])
    return {step["value"] for step in steps if step["value"] is not None}


def require_promtool() -> str:
    binary = shutil.which("promtool")
    if binary is None:
        pytest.fail("promtool is not installed: run `make install-system`")
    return binary


# --- The dashboards --------------------------------------------------------------------------------------------


def test_dashboards_are_valid_json_with_unique_uids() -> None:
    assert DASHBOARD_FILES
    dashboards = [load(path) for path in DASHBOARD_FILES]
    uids = [dashboard["uid"] for dashboard in dashboards]
    assert len(set(uids)) == len(uids)
    assert all(dashboard["title"] and dashboard.get("id") is None for dashboard in dashboards)


def test_model_overview_identity() -> None:
    dashboard = load(REPO_ROOT / "grafana/dashboards/model-overview.json")
    assert (dashboard["title"], dashboard["uid"]) == ("Model overview", "promml-model-overview")


@pytest.mark.parametrize("path", DASHBOARD_FILES, ids=lambda path: path.name)
def test_panel_ids_are_unique(path: Path) -> None:
    ids = [panel["id"] for panel in panels(load(path))]
    assert len(set(ids)) == len(ids)


@pytest.mark.parametrize("path", DASHBOARD_FILES, ids=lambda path: path.name)
def test_every_query_uses_the_datasource_variable(path: Path) -> None:
    for panel in data_panels(load(path)):
        assert panel["datasource"] == DATASOURCE, panel["title"]
        assert panel["targets"], panel["title"]
        for target in panel["targets"]:
            assert target["datasource"] == DATASOURCE, panel["title"]


@pytest.mark.parametrize("path", DASHBOARD_FILES, ids=lambda path: path.name)
def test_every_panel_has_a_description_and_a_unit(path: Path) -> None:
    for panel in data_panels(load(path)):
        assert panel.get("description", "").strip(), panel["title"]
        assert panel["fieldConfig"]["defaults"].get("unit"), panel["title"]


@pytest.mark.parametrize("path", DASHBOARD_FILES, ids=lambda path: path.name)
def test_template_variables(path: Path) -> None:
    variables = {variable["name"]: variable for variable in load(path)["templating"]["list"]}
    assert (variables["datasource"]["type"], variables["datasource"]["query"]) == ("datasource", "prometheus")
    assert variables["model"]["query"] == "label_values(ml_predictions_total, model_name)"
    assert variables["version"]["query"] == 'label_values(ml_predictions_total{model_name="$model"}, model_version)'
    for name in ("model", "version"):
        assert variables[name]["type"] == "query"
        assert variables[name]["datasource"] == DATASOURCE
        assert variables[name]["includeAll"] is False and variables[name]["multi"] is False


def test_every_query_parses_as_promql(tmp_path: Path) -> None:
    promtool = require_promtool()
    exprs = [render_query(expr, **RENDER) for path in DASHBOARD_FILES for _, expr in dashboard_queries(load(path))]
    for path in DASHBOARD_FILES:  # the variables' selectors too
        for variable in load(path)["templating"]["list"]:
            selector = re.fullmatch(r"label_values\((.+),\s*\w+\)", str(variable.get("query", "")))
            if selector:
                exprs.append(render_query(selector.group(1), **RENDER))
    rules = {"groups": [{"name": "dashboards", "rules": [
        {"record": f"dashboard:query_{number}", "expr": expr} for number, expr in enumerate(exprs)
    ]}]}
    rule_file = tmp_path / "dashboard-queries.yml"
    rule_file.write_text(yaml.safe_dump(rules))
    result = subprocess.run([promtool, "check", "rules", str(rule_file)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {len(exprs)} rules found" in result.stdout


def test_every_query_uses_known_metrics() -> None:
    known = documented_metrics() | set(recording_rules()) | {"ALERTS", "up"}  # both written by Prometheus itself
    histograms = {f"{name}_{suffix}" for name in documented_metrics() for suffix in ("bucket", "sum", "count")}
    unknown = [
        f"{path.name}: {title}: {name}"
        for path in DASHBOARD_FILES
        for title, expr in dashboard_queries(load(path))
        for name in sorted(metric_names(expr))
        if name not in known | histograms
    ]
    assert unknown == []


ALERT_RULES = alert_rules()


@pytest.mark.parametrize(
    "rule", ALERT_RULES, ids=[f"{rule['alert']}-{rule['labels']['severity']}" for rule in ALERT_RULES]
)
def test_every_alert_has_a_panel_on_its_signal_and_threshold(rule: dict[str, Any]) -> None:
    """Each alert rule (each level of a two-level one) is visible on a dashboard, with its threshold drawn.

    An alert on `> 0` or `== 0` (any loss, any failure, a target down, no labels) has no line to draw: a Grafana
    threshold step at 0 would colour 0 itself. Its panel must instead show every metric the alert combines (rows
    predicted and rows read, for PredictionLogStale), so the condition can be read off the panel.
    """
    rules = recording_rules()
    comparison, threshold = alert_signal(rule["expr"])
    panels_on_dashboards = [panel for path in DASHBOARD_FILES for panel in data_panels(load(path))]
    if threshold == 0:
        needed = raw_metrics(rule["expr"], rules)
        assert needed
        showing = [
            panel["title"]
            for panel in panels_on_dashboards
            if needed <= set().union(*(raw_metrics(target["expr"], rules) for target in panel["targets"]))
        ]
        assert showing, f"no panel shows all of {sorted(needed)}"
        return
    signal = expanded_metric_names(comparison, rules)
    assert signal
    showing = [
        panel["title"]
        for panel in panels_on_dashboards
        if any(expanded_metric_names(target["expr"], rules) & signal for target in panel["targets"])
        and threshold in threshold_values(panel)
    ]
    assert showing, f"no panel shows {sorted(signal)} with a threshold at {threshold}"


def test_every_alert_rule_is_checked_for_a_panel() -> None:
    """The parametrization above covers every `- alert:` of the rule file except Watchdog."""
    text = (REPO_ROOT / "prometheus/rules/alerts.yml").read_text()
    assert len(ALERT_RULES) == len(re.findall(r"^\s+- alert: ", text, flags=re.MULTILINE)) - 1


def test_firing_alerts_are_listed() -> None:
    dashboard = load(REPO_ROOT / "grafana/dashboards/model-overview.json")
    assert ("Firing alerts", 'ALERTS{alertstate="firing"}') in dashboard_queries(dashboard)


# --- Provisioning ----------------------------------------------------------------------------------------------


def test_datasource_provisioning() -> None:
    provisioning = yaml.safe_load((PROVISIONING / "datasources/prometheus.yml").read_text())
    (datasource,) = provisioning["datasources"]
    assert provisioning["apiVersion"] == 1
    assert {key: datasource[key] for key in ("type", "uid", "url", "isDefault")} == {
        "type": "prometheus", "uid": "prometheus", "url": "http://prometheus:9090", "isDefault": True,
    }
    prometheus_service = compose()["services"]["prometheus"]
    assert urlsplit(datasource["url"]).port == int(prometheus_service["ports"][0].rsplit(":", 1)[1])
    prometheus = yaml.safe_load((REPO_ROOT / "prometheus/prometheus.yml").read_text())
    scrape_interval = prometheus.get("global", {}).get("scrape_interval", "1m")
    assert duration_seconds(datasource["jsonData"]["timeInterval"]) == duration_seconds(scrape_interval)


def test_dashboard_provisioning_points_at_the_mounted_dashboards() -> None:
    provisioning = yaml.safe_load((PROVISIONING / "dashboards/promml.yml").read_text())
    (provider,) = provisioning["providers"]
    assert provisioning["apiVersion"] == 1
    assert (provider["type"], provider["folder"]) == ("file", "promml")
    mounts = grafana_mounts()
    assert mounts["./grafana/provisioning"] == "/etc/grafana/provisioning"
    assert mounts["./grafana/dashboards"] == provider["options"]["path"] == "/var/lib/grafana/dashboards"
    home = compose()["services"]["grafana"]["environment"]["GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH"]
    assert Path(home).parent == Path(provider["options"]["path"])
    assert (REPO_ROOT / "grafana/dashboards" / Path(home).name).is_file()


# --- grafana_queries -------------------------------------------------------------------------------------------


def test_dashboard_queries_walks_rows_and_skips_targets_without_expr() -> None:
    dashboard = {"panels": [
        {"type": "row", "title": "open", "panels": []},
        {"type": "timeseries", "title": "a", "targets": [{"expr": "up"}, {"expr": ""}, {"refId": "B"}]},
        {"type": "text", "title": "notes"},
        {"type": "row", "title": "collapsed", "collapsed": True, "panels": [
            {"type": "stat", "title": "b", "targets": [{"expr": "x"}, {"expr": "y", "hide": True}]},
        ]},
    ]}
    assert dashboard_queries(dashboard) == [("a", "up"), ("b", "x"), ("b", "y")]
    assert dashboard_queries({}) == []


def test_render_query_substitutes_every_variable_form() -> None:
    expr = ('sum(rate(m{model_name="$model", model_version="${version}", x="[[model]]", f="${model:raw}"}'
            "[$__rate_interval])) + rate(m[${__interval}]) + increase(m[$__range]) + $__range_s + $__range_ms"
            " + $__rate_interval_ms + $__interval_ms")
    assert render_query(expr, model="credit-risk", version="1.0.0", rate_interval="1m", time_range="2h") == (
        'sum(rate(m{model_name="credit-risk", model_version="1.0.0", x="credit-risk", f="credit-risk"}'
        "[1m])) + rate(m[1m]) + increase(m[2h]) + 7200 + 7200000 + 60000 + 60000"
    )
    assert render_query("rate(m[$__interval])", model="a", version="b", rate_interval="1m", interval="15s") == (
        "rate(m[15s])"
    )


def test_render_query_rejects_unknown_variables() -> None:
    with pytest.raises(ValueError, match=r"unknown dashboard variable \$model_name"):
        render_query('m{model_name="$model_name"}', model="a", version="b", rate_interval="1m")
    with pytest.raises(ValueError, match="not a Prometheus duration"):
        render_query("m", model="a", version="b", rate_interval="1 minute")


def test_duration_seconds() -> None:
    assert [duration_seconds(text) for text in ("15s", "1m", "1h30m", "250ms", "2d", "1w")] == [
        15, 60, 5400, 0.25, 172800, 604800,
    ]
    for bad in ("", "5", "m", "1m 2s", "-1m"):
        with pytest.raises(ValueError):
            duration_seconds(bad)


@pytest.mark.parametrize(("expr", "names"), [
    ('sum(rate(ml_predictions_total{model_name="a"}[5m]))', {"ml_predictions_total"}),
    ("histogram_quantile(0.95, sum by (le) (rate(ml_prediction_latency_seconds_bucket[1m])))",
     {"ml_prediction_latency_seconds_bucket"}),
    ("ml_drift_score > 0.25 and on (model_name, model_version) ml_window_predictions >= 100",
     {"ml_drift_score", "ml_window_predictions"}),
    ('sum by (reason) (rate(x_total[1m])) or on () label_replace(vector(0), "reason", "none", "", "")',
     {"x_total"}),
    ("time() - last_ts offset 5m", {"last_ts"}),
    ("model:ml_prediction_latency_seconds:p95_5m > bool 1e-3", {"model:ml_prediction_latency_seconds:p95_5m"}),
    ('ALERTS{alertstate="firing", alertname=~"a|b"}', {"ALERTS"}),
    ("sum(rate(a[5m:1m])) without (instance) / ignoring (x) group_left (y) b", {"a", "b"}),
])
def test_metric_names(expr: str, names: set[str]) -> None:
    assert metric_names(expr) == names


def test_shorten_offsets() -> None:
    expr = "rate(x[1h]) / (rate(x[1h]) offset 1d) + y offset 1w + z offset 90s"
    assert shorten_offsets(expr, 3600) == "rate(x[1h]) / (rate(x[1h]) offset 24s) + y offset 168s + z offset 1s"
