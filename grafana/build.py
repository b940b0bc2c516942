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
PRIMARY = ("and on (instance, model_name, model_version, window) "
           f"model_window:ml_window_prediction_rows:primary{{{MODEL}}}")
"""Appended to a `window`-labelled selector: keeps each exporter's primary window only, as the alerts judge it
(recording.yml), so a panel draws one line per feature and exporter however many windows are configured."""
FLEET_PRIMARY = ("and on (model_name, model_version, window) "
                 f"model_window:ml_window_prediction_rows:primary{{{MODEL}}}")
"""The same for the fleet-wide recording rules, which have no `instance`: the window that is primary."""
ACCURACY_DROP = (f"1 - ml_model_accuracy{{{MODEL}}} / ignoring (metric) "
                 f'ml_baseline_performance{{{MODEL}, metric="accuracy"}}')
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
              "(replicas summed before the quantile). HighPredictionLatency watches the p95: warning above 0.25 s, "
              "critical above 0.5 s, both from 100 calls in 5 minutes.", "s",
              [(latency.format(q=q), q) for q in ("p50", "p95", "p99")],
              thresholds=[("orange", 0.25), ("red", 0.5)], minimum=0),
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
        Panel("Exporter measuring nothing", "1 (red) for each reason an exporter reports that it measures nothing "
              "for the model (ml_exporter_misconfiguration): no_log_files, log_path_is_directory, other_model_only, "
              "features_mismatch; 0 when it measures. For 10 minutes, ExporterMisconfigured warns; the exporter's "
              "/readyz body and log say what to change.", "short",
              [(f"ml_exporter_misconfiguration{{{MODEL}}}", "{{instance}} {{reason}}")], kind="stat",
              thresholds=[("red", 1)], minimum=0, maximum=1, width=24, height=5),
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
        Panel("Volume against the same hour yesterday", "Rows/s of the model, all versions, over the last hour "
              "divided by the same hour a day before (model_name:ml_predictions:rate1h). PredictionVolumeAnomaly "
              "fires when this and the same ratio to a week before are both below 0.5 or both "
              "above 2 (yesterday alone while there is no week of history) for 30m, when yesterday had at least "
              "0.1 rows/s. Empty until a day of history exists.", "short",
              [('model_name:ml_predictions:rate1h{model_name="$model"} / '
                '(model_name:ml_predictions:rate1h{model_name="$model"} offset 1d)', "today / yesterday")],
              thresholds=[("green", 0.5), ("red", 2)], base_color="red", minimum=0),
    ])


def drift() -> dict[str, Any]:
    psi = f"ml_drift_score{{{MODEL}}}"
    return dashboard("promml-drift", "Drift",
                     "Which inputs moved away from the training data, since when, and whether that is unusual for "
                     "the feature: PSI per feature now, over time, and against its own 7-day history.", [
        Row("Now"),
        Panel("PSI per feature", "Population Stability Index of each feature's window distribution against the "
              "training baseline. DataDriftDetected: warning above 0.1 (with at least 50 present values per bin "
              "of the feature), critical above 0.25 (at least 20 per bin).", "short", [(psi, "{{feature_name}}")],
              kind="bargauge",
              thresholds=[("yellow", 0.1), ("red", 0.25)], minimum=0, instant=True),
        Panel("Present values per bin", "Each feature's values in the primary window over its number of bins "
              "(rows missing the feature are in none; recording rule "
              "model_feature:ml_window_feature_bin_rows:avg_primary): the sample its PSI rests on. Below 20 no "
              "drift alert judges the feature; below 50 only the critical one does.", "short",
              [(f"model_feature:ml_window_feature_bin_rows:avg_primary{{{MODEL}}}", "{{feature_name}}")],
              kind="bargauge", thresholds=[("yellow", 20), ("green", 50)], base_color="red", minimum=0,
              instant=True),
        Panel("Fleet PSI per feature and window", "PSI of the whole fleet: the replicas' bin counts summed, then "
              "the exporter's formula (recording rule model_window_feature:ml_window_feature_bin_rows:psi), per "
              "configured window. With one replica it equals the PSI above.", "short",
              [(f"model_window_feature:ml_window_feature_bin_rows:psi{{{MODEL}}}", "{{feature_name}} ({{window}})")],
              kind="bargauge", thresholds=[("yellow", 0.1), ("red", 0.25)], minimum=0, instant=True),
        Panel("Fleet sample size", "Beside the fleet PSI: each feature's present values summed over the replicas "
              "(model_window_feature:ml_window_feature_bin_rows:sum), per window, and how many exporters report "
              "the window (model_window:ml_window_prediction_rows:count): a replica not scraped drops out of the "
              "fleet values, and of this count.", "short",
              [(f"model_window_feature:ml_window_feature_bin_rows:sum{{{MODEL}}}", "{{feature_name}} ({{window}})"),
               (f"model_window:ml_window_prediction_rows:count{{{MODEL}}}", "exporters ({{window}})")],
              kind="bargauge", minimum=0, instant=True),
        Panel("Fleet accuracy per window", "Right labelled rows over labelled rows, summed over every replica "
              "(recording rule model_window:ml_window_correct_rows:ratio).", "percentunit",
              [(f"model_window:ml_window_correct_rows:ratio{{{MODEL}}}", "{{window}}")], kind="stat",
              thresholds=[("green", 0.8)], base_color="red", minimum=0, maximum=1),
        Row("History"),
        Panel("PSI per feature over time", "PSI of every feature over the dashboard's time range, with the "
              "warning (0.1) and critical (0.25) lines.", "short", [(psi, "{{feature_name}} {{instance}}")],
              thresholds=[("yellow", 0.1), ("red", 0.25)], minimum=0, width=24),
        Panel("PSI against its own 7-day range", "Each feature's PSI next to the mean plus 3 standard deviations "
              "of its 7 days that ended a day ago (the recording rules model_feature:ml_drift_score:*_over_time7d, "
              "a day ago). DataDriftAnomalous fires when PSI stays above that band, and above the 0.05 floor, for "
              "30m; a lasting shift enters the band a day after it began.", "short",
              [(psi, "{{feature_name}} PSI"),
               (f"(model_feature:ml_drift_score:avg_over_time7d{{{MODEL}}} offset 1d) + 3 * "
                f"(model_feature:ml_drift_score:stddev_over_time7d{{{MODEL}}} offset 1d)",
                "{{feature_name}} mean + 3 sd (7d, a day ago)")],
              thresholds=[("yellow", 0.05)], minimum=0, width=24),
        Row("Output and dataset"),
        Panel("Prediction drift (score and class PSI)", "PSI of the model's score distribution (target=score, in the "
              "baseline's score deciles) and of its predicted classes (target=class) against the reference data, "
              "primary window. PredictionDrift watches the score: warning above 0.1 (at least 400 rows), critical "
              "above 0.25 (at least 100 rows).", "short",
              [(f"ml_prediction_drift_psi{{{MODEL}}} {PRIMARY}", "{{target}} {{instance}}")],
              thresholds=[("yellow", 0.1), ("red", 0.25)], minimum=0, width=10),
        Panel("Dataset drift share", "Share of the features whose PSI is above 0.1, primary window. "
              "DatasetDriftShareHigh warns above one half (at least 400 rows) for 15m.", "percentunit",
              [(f"ml_dataset_drift_share{{{MODEL}}} {PRIMARY}", "{{instance}}")],
              thresholds=[("orange", 0.5)], minimum=0, maximum=1, width=9),
        Panel("Baseline age", "Time since the baseline drift is measured against was built. BaselineTooOld warns "
              "after 90 days: retrain, or rebuild the baseline.", "s",
              [(f"ml_baseline_age_seconds{{{MODEL}}}", "{{instance}}")], kind="stat",
              thresholds=[("orange", 7776000)], minimum=0, width=5),
        Row("Distributions"),
        Panel("Reference against current distribution per bin", "Share of rows in each baseline bin of each "
              "feature: the baseline's (reference) next to the primary window's, summed over replicas (current). "
              "Bins are the baseline's deciles for numeric features (bin 0 and the last are open-ended), its "
              "categories plus one for unseen values for categorical ones. A feature whose current bars lean to one "
              "end has moved that way; equal bars are no drift.", "percentunit",
              [(f"max by (feature_name, bin) (ml_feature_bin_reference_ratio{{{MODEL}}})",
                "{{feature_name}} bin {{bin}} reference"),
               (f"sum by (feature_name, bin) (ml_window_feature_bin_rows{{{MODEL}}} {PRIMARY}) "
                f"/ ignoring (bin) group_left "
                f"sum by (feature_name) (ml_window_feature_bin_rows{{{MODEL}}} {PRIMARY})",
                "{{feature_name}} bin {{bin}} current")],
              kind="bargauge", minimum=0, maximum=1, instant=True, width=24, height=24),
    ])


def performance() -> dict[str, Any]:
    performance_metrics = f'ml_window_performance{{{MODEL}, metric=~"accuracy|f1"}} {PRIMARY}'
    return dashboard("promml-performance", "Performance",
                     "Is the model still right, where labels have come back: accuracy and F1 against the baseline's "
                     "reference values, the confusion matrix, and how late and how many labels arrive.", [
        Row("Now"),
        Panel("Accuracy drop from the baseline", "1 - window accuracy / the baseline's reference accuracy (the "
              "model on its reference data). ModelAccuracyDrop: warning above 5% (at least 400 labelled rows, "
              "30m), critical above 10% (at least 200, 10m). Below 0 the model does better than on its reference.",
              "percentunit", [(ACCURACY_DROP, "{{instance}}")], kind="stat",
              thresholds=[("orange", 0.05), ("red", 0.1)], width=8, height=5),
        Panel("Labelled rows in the window", "Predictions of the primary window that have their label: the sample "
              "accuracy rests on. Below 50 no accuracy alert judges; ModelAccuracyDrop pages from 200 and warns "
              "from 400.", "short", [(f"ml_window_labeled_predictions{{{MODEL}}}", "{{instance}}")], kind="stat",
              thresholds=[("yellow", 50), ("green", 200)], base_color="red", minimum=0, width=8, height=5),
        Panel("Labels pending", "Predictions held by the exporters waiting for their label. It grows with traffic "
              "times label delay; a steady climb with no labels joined is a broken feedback path. Early labels: "
              "labels read before their prediction, waiting for it (early_label_grace_seconds); many of them for "
              "long are labels for predictions that never come.", "short",
              [(f"sum(ml_exporter_pending_predictions{{{MODEL}}})", "pending"),
               (f"sum(ml_exporter_early_labels{{{MODEL}}})", "early labels")], kind="stat", minimum=0, width=8,
              height=5),
        Row("Over time"),
        Panel("Accuracy and F1 against the baseline", "Accuracy and F1 of the primary window's labelled predictions "
              "per exporter, next to the same metrics on the baseline's reference data (flat lines). "
              "ModelAccuracyLow warns below 0.8.", "percentunit",
              [(performance_metrics, "{{metric}} {{instance}}"),
               (f'max by (metric) (ml_baseline_performance{{{MODEL}, metric=~"accuracy|f1"}})',
                "{{metric}} reference")],
              thresholds=[("green", 0.8)], base_color="red", minimum=0, maximum=1, width=12),
        Panel("Accuracy drop from the baseline over time", "The relative drop ModelAccuracyDrop reads, with its "
              "warning (5%) and critical (10%) lines.", "percentunit", [(ACCURACY_DROP, "{{instance}}")],
              thresholds=[("orange", 0.05), ("red", 0.1)], width=12),
        Panel("Precision, recall and ROC AUC", "The other classification metrics of the primary window's labelled "
              "predictions (binary: for the positive class), and their reference values.", "percentunit",
              [(f'ml_window_performance{{{MODEL}, metric=~"precision|recall|roc_auc"}} {PRIMARY}',
                "{{metric}} {{instance}}"),
               (f'max by (metric) (ml_baseline_performance{{{MODEL}, metric=~"precision|recall|roc_auc"}})',
                "{{metric}} reference")], minimum=0, maximum=1, width=12),
        Panel("Confusion matrix counts", "Labelled rows of the primary window by outcome with the positive class "
              "(tp, fp, tn, fn), summed over replicas. Which error grew says more than accuracy alone.", "short",
              [(f"sum by (outcome) (ml_window_binary_outcomes{{{MODEL}}} {PRIMARY})", "{{outcome}}")],
              kind="bargauge", minimum=0, instant=True, width=12),
        Row("Labels"),
        Panel("Label delay p50 / p90 / p99", "Time from a prediction to its label, for the labels joined in each "
              "interval (ml_label_delay_seconds, buckets 1 s to 1 week; interpolated within a bucket). Labels later "
              "than the label TTL are never joined: see forgotten predictions.", "s",
              [(f"histogram_quantile({q}, sum by (le) (rate(ml_label_delay_seconds_bucket{{{MODEL}}}"
                f"[$__rate_interval])))", f"p{int(q * 100)}") for q in (0.5, 0.9, 0.99)], minimum=0, width=8),
        Panel("Labels joined per second", "Labels joined to their prediction per second, correct and incorrect.",
              "reqps", [(f"sum by (outcome) (rate(ml_labeled_predictions_total{{{MODEL}}}[$__rate_interval]))",
                         "{{outcome}}")], stack=True, minimum=0, width=8),
        Panel("Predictions forgotten before their label", "Predictions per second dropped from the pending table "
              "(older than the label TTL, or the table full): their labels will count as unknown_prediction_id.",
              "reqps", [(f"sum(rate(ml_exporter_pending_evictions_total{{{MODEL}}}[$__rate_interval]))",
                         "forgotten/s")], minimum=0, width=8),
    ])


def data_quality() -> dict[str, Any]:
    return dashboard("promml-data-quality", "Data quality",
                     "Are the inputs well formed: missing values, values outside the training range, unseen "
                     "categories and schema violations per feature, in each exporter's primary window.", [
        Row("Values"),
        Panel("Missing values per feature", "Share of the primary window's rows with the feature absent, null or "
              "empty. FeatureMissingValuesHigh warns above 10% (at least 100 rows) for 15m.", "percentunit",
              [(f"ml_feature_missing_ratio{{{MODEL}}} {PRIMARY}", "{{feature_name}} {{instance}}")],
              thresholds=[("orange", 0.1)], minimum=0, maximum=1),
        Panel("Out-of-range values per feature", "Share of a numeric feature's values outside the baseline's "
              "minimum..maximum. FeatureOutOfRangeHigh warns above 5% (at least 100 rows) for 15m.", "percentunit",
              [(f"ml_feature_out_of_range_ratio{{{MODEL}}} {PRIMARY}", "{{feature_name}} {{instance}}")],
              thresholds=[("orange", 0.05)], minimum=0, maximum=1),
        Panel("Unseen categories per feature", "Share of a categorical feature's present values that are in no "
              "training category: they all land in PSI's unseen bucket.", "percentunit",
              [(f"ml_feature_unseen_category_ratio{{{MODEL}}} {PRIMARY}", "{{feature_name}} {{instance}}")],
              minimum=0, maximum=1),
        Panel("Rows in the primary window", "Rows the ratios are computed over. Below 100 no data-quality alert "
              "judges.", "short", [(f"model_window:ml_window_prediction_rows:primary{{{MODEL}}}",
                                    "{{window}} {{instance}}")], kind="stat",
              thresholds=[("green", 100)], base_color="red", minimum=0),
        Row("Schema"),
        Panel("Schema violations by feature and reason", "Rows of the primary window breaking the baseline's schema, "
              "by feature and reason (unknown_feature, missing_feature, wrong_type), summed over replicas. "
              "SchemaViolations warns on any for 5m. A single 'none' series at 0 means every row fits.", "short",
              [(f"sum by (feature_name, reason) (ml_feature_schema_violations{{{MODEL}}} {PRIMARY}) or on () "
                'label_replace(label_replace(vector(0), "feature_name", "none", "", ""), "reason", "none", "", "")',
                "{{feature_name}} {{reason}}")], stack=True, minimum=0, width=24),
    ])


def segments() -> dict[str, Any]:
    parity = f"ml_demographic_parity_ratio{{{MODEL}}} {PRIMARY}"
    fleet_parity = f"model_window_segment:ml_segment_positive_predictions:parity_ratio{{{MODEL}}} {FLEET_PRIMARY}"
    return dashboard("promml-segments", "Segments and fairness",
                     "Is the model as good, and as generous, for every group: positive rate, accuracy and rows per "
                     "value of each segment feature (exporter config `segments`), and the demographic parity "
                     "ratio, in the primary window.", [
        Row("Fairness"),
        Panel("Demographic parity ratio per segment", "Lowest over highest positive rate among a segment "
              "feature's values with at least min_segment_rows rows, per exporter, primary window. "
              "FairnessParityLow warns below 0.8 (the four-fifths rule) for 30m, once the segment has at least "
              "1000 positive predictions in the window.", "percentunit",
              [(parity, "{{segment}} {{instance}}")], kind="bargauge", thresholds=[("green", 0.8)],
              base_color="red", minimum=0, maximum=1, instant=True, width=8),
        Panel("Demographic parity ratio over time", "The parity ratio of each exporter, and of the fleet (the "
              "replicas' counts summed first, values with at least 30 rows: recording rule "
              "model_window_segment:ml_segment_positive_predictions:parity_ratio), with the 0.8 line.",
              "percentunit", [(parity, "{{segment}} {{instance}}"), (fleet_parity, "{{segment}} fleet")],
              thresholds=[("green", 0.8)], base_color="red", minimum=0, maximum=1, width=16),
        Panel("Positive predictions per segment", "Rows of the primary window predicted as the positive class, all "
              "values of the segment together, per exporter: the ratio's noise shrinks as they grow. Below 1000 "
              "FairnessParityLow does not judge.", "short",
              [(f"sum by (instance, segment) (ml_segment_positive_predictions{{{MODEL}}} {PRIMARY})",
                "{{segment}} {{instance}}")], kind="stat", thresholds=[("green", 1000)], base_color="yellow",
              minimum=0, width=24, height=5),
        Row("Per segment value"),
        Panel("Positive rate per segment value", "Share of each value's rows predicted as the positive class, the "
              "replicas' counts summed (model_window_segment_value:ml_segment_positive_predictions:ratio), "
              "primary window. The parity ratio is the lowest of these lines over the highest (values with "
              "enough rows).", "percentunit",
              [(f"model_window_segment_value:ml_segment_positive_predictions:ratio{{{MODEL}}} {FLEET_PRIMARY}",
                "{{segment}}={{segment_value}}")], minimum=0, maximum=1),
        Panel("Accuracy per segment value", "Accuracy of each value's labelled rows, the replicas' counts summed "
              "(model_window_segment_value:ml_segment_correct_rows:ratio), primary window. A group the model "
              "serves worse than the others shows here before it moves the overall accuracy; red below 0.8, as "
              "ModelAccuracyLow.", "percentunit",
              [(f"model_window_segment_value:ml_segment_correct_rows:ratio{{{MODEL}}} {FLEET_PRIMARY}",
                "{{segment}}={{segment_value}}")], thresholds=[("green", 0.8)], base_color="red", minimum=0,
              maximum=1),
        Panel("Rows per segment value", "Rows of the primary window per value, summed over replicas; __other__ "
              "holds the values beyond max_segment_values. Values under min_segment_rows (default 30) are left out "
              "of the parity ratio.", "short",
              [(f"sum by (segment, segment_value) (ml_segment_rows{{{MODEL}}} {PRIMARY})",
                "{{segment}}={{segment_value}}")], stack=True, minimum=0),
        Panel("Labelled rows per segment value", "Rows of the primary window per value that have their label, "
              "summed over replicas: the sample each value's accuracy rests on.", "short",
              [(f"sum by (segment, segment_value) (ml_segment_labeled_rows{{{MODEL}}} {PRIMARY})",
                "{{segment}}={{segment_value}}")], stack=True, minimum=0),
    ])


DASHBOARDS = {
    "system-health.json": system_health,
    "prediction-analysis.json": prediction_analysis,
    "drift.json": drift,
    "performance.json": performance,
    "data-quality.json": data_quality,
    "segments.json": segments,
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
