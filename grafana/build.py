"""Generates the promml dashboards that are written as code: `python grafana/build.py` rewrites their JSON.

Why code: seven dashboards share variables, datasource, layout and panel conventions; writing each panel as a few
lines keeps them consistent (every panel has a description, a unit, and thresholds where an alert watches the
signal). The generated JSON is committed, because Grafana provisions files; `tests/test_grafana_build.py` fails
when the committed JSON differs from what this script generates.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

SCHEMA_VERSION = 40
"""What Grafana 11.3 (the version pinned in docker-compose.yml) writes."""
DASHBOARDS_DIR = Path(__file__).resolve().parent / "dashboards"
DATASOURCE = {"type": "prometheus", "uid": "${datasource}"}
MODEL = 'model_name="$model", model_version="$version"'
WIDTH = 24


@dataclass
class Panel:
    """One panel: the fields every panel needs, and the few that vary."""

    title: str
    description: str
    unit: str
    queries: list[tuple[str, str]]  # (expr, legend)
    kind: str = "timeseries"
    width: int = 12
    height: int = 8
    thresholds: list[tuple[str, float]] = field(default_factory=list)  # (colour, from value), after the base
    base_color: str = "green"
    minimum: float | None = None
    maximum: float | None = None
    stack: bool = False
    bars: bool = False
    instant: bool = False
    interval: str | None = None


@dataclass
class Row:
    title: str


def _thresholds(steps: list[tuple[str, float]], base_color: str = "green") -> dict[str, Any]:
    return {"mode": "absolute", "steps": [{"color": base_color, "value": None}]
            + [{"color": colour, "value": value} for colour, value in steps]}


def _targets(panel: Panel) -> list[dict[str, Any]]:
    targets = []
    for index, (expr, legend) in enumerate(panel.queries):
        target: dict[str, Any] = {
            "datasource": DATASOURCE, "editorMode": "code", "expr": expr, "legendFormat": legend,
            "refId": chr(ord("A") + index),
        }
        if panel.kind == "heatmap":
            target["format"] = "heatmap"
        if panel.instant:
            target["instant"] = True
        else:
            target["range"] = True
        if panel.interval:
            target["interval"] = panel.interval
        targets.append(target)
    return targets


def _panel_json(panel: Panel, panel_id: int, x: int, y: int) -> dict[str, Any]:
    defaults: dict[str, Any] = {"unit": panel.unit, "thresholds": _thresholds(panel.thresholds, panel.base_color),
                               "mappings": []}
    if panel.minimum is not None:
        defaults["min"] = panel.minimum
    if panel.maximum is not None:
        defaults["max"] = panel.maximum
    options: dict[str, Any]
    if panel.kind == "timeseries":
        defaults["color"] = {"mode": "palette-classic"}
        defaults["custom"] = {
            "drawStyle": "bars" if panel.bars else "line", "fillOpacity": 60 if panel.bars else 10,
            "lineWidth": 1, "showPoints": "never", "spanNulls": False,
            "stacking": {"group": "A", "mode": "normal" if panel.stack else "none"},
            "thresholdsStyle": {"mode": "dashed" if panel.thresholds else "off"},
        }
        options = {"legend": {"displayMode": "list", "placement": "bottom", "showLegend": True, "calcs": []},
                   "tooltip": {"mode": "multi", "sort": "desc"}}
    elif panel.kind == "heatmap":
        options = {"calculate": False, "cellGap": 1, "color": {"mode": "scheme", "scheme": "Oranges", "steps": 64},
                   "yAxis": {"axisPlacement": "left", "unit": panel.unit}, "tooltip": {"mode": "single"},
                   "legend": {"show": True}}
    elif panel.kind == "stat":
        defaults["color"] = {"mode": "thresholds"}
        options = {"colorMode": "background", "graphMode": "area", "reduceOptions": {
            "calcs": ["lastNotNull"], "fields": "", "values": False}, "textMode": "value_and_name"}
    elif panel.kind == "bargauge":
        defaults["color"] = {"mode": "thresholds"}
        options = {"displayMode": "gradient", "orientation": "horizontal", "showUnfilled": True,
                   "reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False}}
    else:
        raise ValueError(f"unknown panel kind {panel.kind}")
    return {
        "datasource": DATASOURCE, "description": panel.description, "fieldConfig": {"defaults": defaults,
                                                                                    "overrides": []},
        "gridPos": {"h": panel.height, "w": panel.width, "x": x, "y": y}, "id": panel_id, "options": options,
        "targets": _targets(panel), "title": panel.title, "type": panel.kind,
    }


def _variables() -> list[dict[str, Any]]:
    def query(name: str, label: str, definition: str) -> dict[str, Any]:
        return {"current": {}, "datasource": DATASOURCE, "definition": definition, "hide": 0, "includeAll": False,
                "label": label, "multi": False, "name": name, "options": [], "query": definition, "refresh": 2,
                "regex": "", "sort": 1, "type": "query"}

    return [
        {"current": {}, "hide": 0, "includeAll": False, "label": "Data source", "multi": False,
         "name": "datasource", "options": [], "query": "prometheus", "refresh": 1, "regex": "", "type": "datasource"},
        query("model", "Model", "label_values(ml_predictions_total, model_name)"),
        query("version", "Version", 'label_values(ml_predictions_total{model_name="$model"}, model_version)'),
    ]


def dashboard(uid: str, title: str, description: str, items: list[Panel | Row]) -> dict[str, Any]:
    """Lays the panels out left to right, top to bottom; a Row starts a new line."""
    panels, x, y, line_height, panel_id = [], 0, 0, 0, 1
    for item in items:
        if isinstance(item, Row):
            y += line_height
            panels.append({"collapsed": False, "gridPos": {"h": 1, "w": WIDTH, "x": 0, "y": y}, "id": panel_id,
                           "panels": [], "title": item.title, "type": "row"})
            x, y, line_height, panel_id = 0, y + 1, 0, panel_id + 1
            continue
        if x + item.width > WIDTH:
            x, y, line_height = 0, y + line_height, 0
        panels.append(_panel_json(item, panel_id, x, y))
        x, line_height, panel_id = x + item.width, max(line_height, item.height), panel_id + 1
    return {
        "annotations": {"list": [{"builtIn": 1, "datasource": {"type": "grafana", "uid": "-- Grafana --"},
                                  "enable": True, "hide": True, "iconColor": "rgba(0, 211, 255, 1)",
                                  "name": "Annotations & Alerts", "type": "dashboard"}]},
        "description": description, "editable": False, "fiscalYearStartMonth": 0, "graphTooltip": 1, "id": None,
        "links": [{"asDropdown": True, "includeVars": True, "keepTime": True, "tags": ["promml"],
                   "title": "promml dashboards", "type": "dashboards"}],
        "panels": panels, "refresh": "30s", "schemaVersion": SCHEMA_VERSION, "tags": ["promml", "ml-monitoring"],
        "templating": {"list": _variables()}, "time": {"from": "now-6h", "to": "now"}, "timepicker": {},
        "timezone": "browser", "title": title, "uid": uid, "version": 1, "weekStart": "",
    }


def system_health() -> dict[str, Any]:
    latency = "model:ml_prediction_latency_seconds:{q}_5m{{" + MODEL + "}}"
    return dashboard("promml-system-health", "System health",
                     "Is the model service healthy as a service: throughput, latency, errors, concurrency, and the "
                     "CPU and memory of the model server and the exporter.", [
        Row("Traffic and latency"),
        Panel("Throughput", "Rows predicted per second and predict calls per second (a batch is one call, N rows).",
              "reqps", [(f"sum(rate(ml_predictions_total{{{MODEL}}}[$__rate_interval]))", "rows/s"),
                        (f"sum(rate(ml_prediction_latency_seconds_count{{{MODEL}}}[$__rate_interval]))",
                         "calls/s")], minimum=0),
        Panel("Latency p50 / p95 / p99 (5m)", "Wall time of one predict call, from the latency recording rules "
              "(replicas summed before the quantile). HighPredictionLatency watches the p95: warning above 0.2 s, "
              "critical above 0.5 s.", "s",
              [(latency.format(q=q), q) for q in ("p50", "p95", "p99")],
              thresholds=[("orange", 0.2), ("red", 0.5)], minimum=0),
        Panel("Failed predict calls (share, 5m)", "Share of predict calls that raised, from "
              "model:ml_prediction_errors_per_calls:ratio_rate5m. PredictionErrorRateHigh: warning above 5%, "
              "critical above 20%.", "percentunit",
              [(f"model:ml_prediction_errors_per_calls:ratio_rate5m{{{MODEL}}}", "failed share")],
              thresholds=[("orange", 0.05), ("red", 0.2)], minimum=0, maximum=1),
        Panel("Errors by type", "Predict calls that raised per second, by exception class (0 when none failed).",
              "reqps", [(f"sum by (error_type) (rate(ml_prediction_errors_total{{{MODEL}}}[$__rate_interval])) "
                         f'or on () label_replace(vector(0), "error_type", "none", "", "")', "{{error_type}}")],
              minimum=0),
        Row("Concurrency and batches"),
        Panel("Calls in flight", "Predict calls running right now, summed over replicas and workers.", "short",
              [(f"sum(ml_predictions_in_flight{{{MODEL}}})", "in flight")], minimum=0),
        Panel("Batch size p50 / p95", "Rows per predict call.", "short",
              [(f"histogram_quantile({q}, sum by (le) (rate(ml_prediction_batch_size_rows_bucket{{{MODEL}}}"
                f"[$__rate_interval])))", f"p{int(q * 100)}") for q in (0.5, 0.95)], minimum=0),
        Row("Processes"),
        Panel("CPU", "CPU seconds per second used by each scraped model server and exporter process "
              "(prometheus_client's process collector).", "percentunit",
              [('sum by (job, instance) (rate(process_cpu_seconds_total{job=~"model-server|promml-exporter"}'
                "[$__rate_interval]))", "{{job}} {{instance}}")], minimum=0),
        Panel("Resident memory", "Resident memory of each model server and exporter process: it should stay flat "
              "(the prediction log and the exporter's window are bounded).", "bytes",
              [('sum by (job, instance) (process_resident_memory_bytes{job=~"model-server|promml-exporter"})',
                "{{job}} {{instance}}")], minimum=0),
        Panel("Scrape targets up", "1 when Prometheus scraped the target at its last attempt. ModelServerDown and "
              "PromMLExporterDown fire on 0 (or on no target at all).", "short",
              [('up{job=~"model-server|promml-exporter"}', "{{job}} {{instance}}")], kind="stat",
              thresholds=[("red", 0), ("green", 1)], minimum=0, maximum=1, width=24, height=5),
    ])


def prediction_analysis() -> dict[str, Any]:
    classes = f"sum by (class) (rate(ml_predicted_class_total{{{MODEL}}}[$__rate_interval]))"
    return dashboard("promml-prediction-analysis", "Prediction analysis",
                     "What the model answers: the score distribution over time, the predicted classes, and the "
                     "volume of predictions by hour.", [
        Row("Scores"),
        Panel("Score distribution over time", "Rows per score bucket per interval (ml_prediction_score): a band "
              "that moves up or down is the model's output drifting.", "short",
              [(f"sum by (le) (increase(ml_prediction_score_bucket{{{MODEL}}}[$__rate_interval]))", "{{le}}")],
              kind="heatmap", width=24),
        Panel("Mean score", "Average score of the rows predicted in each interval.", "percentunit",
              [(f"sum(rate(ml_prediction_score_sum{{{MODEL}}}[$__rate_interval])) / "
                f"sum(rate(ml_prediction_score_count{{{MODEL}}}[$__rate_interval]))", "mean score")],
              minimum=0, maximum=1),
        Panel("Score quantiles", "Median and 90th percentile score (interpolated within the 0.1-wide buckets).",
              "percentunit",
              [(f"histogram_quantile({q}, sum by (le) (rate(ml_prediction_score_bucket{{{MODEL}}}"
                f"[$__rate_interval])))", f"p{int(q * 100)}") for q in (0.5, 0.9)], minimum=0, maximum=1),
        Row("Classes"),
        Panel("Predicted classes per second", "Rows predicted per second by class (at most 20 classes per model, "
              "the rest as 'other').", "reqps", [(classes, "{{class}}")], stack=True, minimum=0),
        Panel("Class share", "Share of each predicted class among the rows of the interval: a class that grows or "
              "shrinks is prediction drift.", "percentunit",
              [(f"{classes} / ignoring (class) group_left sum(rate(ml_predicted_class_total{{{MODEL}}}"
                "[$__rate_interval]))", "{{class}}")], stack=True, minimum=0, maximum=1),
        Row("Volume"),
        Panel("Predictions per hour", "Rows predicted in each hour: compare with the same hours on other days to "
              "spot volume anomalies.", "short",
              [(f"sum(increase(ml_predictions_total{{{MODEL}}}[1h]))", "rows per hour")], bars=True,
              interval="1h", minimum=0),
        Panel("Volume against the same hour yesterday", "Rows/s over the last hour divided by the same hour a day "
              "before (model:ml_predictions:rate1h). PredictionVolumeAnomaly fires below 0.5 or above 2 for 30m, "
              "when yesterday had at least 0.1 rows/s. Empty until a day of history exists.", "short",
              [(f"model:ml_predictions:rate1h{{{MODEL}}} / (model:ml_predictions:rate1h{{{MODEL}}} offset 1d)",
                "today / yesterday")], thresholds=[("green", 0.5), ("red", 2)], base_color="red", minimum=0),
    ])


def drift() -> dict[str, Any]:
    psi = f"ml_drift_score{{{MODEL}}}"
    return dashboard("promml-drift", "Drift",
                     "Which inputs moved away from the training data, since when, and whether that is unusual for "
                     "the feature: PSI per feature now, over time, and against its own 7-day history.", [
        Row("Now"),
        Panel("PSI per feature", "Population Stability Index of each feature's window distribution against the "
              "training baseline. DataDriftDetected: warning above 0.1 (with at least 400 window rows), critical "
              "above 0.25 (at least 100 rows).", "short", [(psi, "{{feature_name}}")], kind="bargauge",
              thresholds=[("yellow", 0.1), ("red", 0.25)], minimum=0, instant=True),
        Panel("Window sample size", "Rows in the exporter's window: the sample PSI is computed on. Below 100 no "
              "drift alert judges; below 400 only the critical one does.", "short",
              [(f"ml_window_predictions{{{MODEL}}}", "{{instance}}")], kind="stat",
              thresholds=[("yellow", 100), ("green", 400)], base_color="red", minimum=0),
        Row("History"),
        Panel("PSI per feature over time", "PSI of every feature over the dashboard's time range, with the "
              "warning (0.1) and critical (0.25) lines.", "short", [(psi, "{{feature_name}} {{instance}}")],
              thresholds=[("yellow", 0.1), ("red", 0.25)], minimum=0, width=24),
        Panel("PSI against its own 7-day range", "Each feature's PSI next to its 7-day mean plus 3 standard "
              "deviations (the recording rules model_feature:ml_drift_score:*_over_time7d). DataDriftAnomalous "
              "fires when PSI stays above that band, and above the 0.05 floor, for 30m.", "short",
              [(psi, "{{feature_name}} PSI"),
               (f"model_feature:ml_drift_score:avg_over_time7d{{{MODEL}}} + 3 * "
                f"model_feature:ml_drift_score:stddev_over_time7d{{{MODEL}}}", "{{feature_name}} mean + 3 sd (7d)")],
              thresholds=[("yellow", 0.05)], minimum=0, width=24),
    ])


DASHBOARDS = {
    "system-health.json": system_health,
    "prediction-analysis.json": prediction_analysis,
    "drift.json": drift,
}


def render(build: Any) -> str:
    return json.dumps(build(), indent=2) + "\n"


def main() -> int:
    for name, build in DASHBOARDS.items():
        (DASHBOARDS_DIR / name).write_text(render(build))
        print(f"wrote {DASHBOARDS_DIR / name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
