"""The promml dashboards as code: `python grafana/generate.py` rewrites grafana/dashboards/*.json.

Each dashboard is a function returning a grafana-foundation-sdk builder, written with the shared conventions of
grafana/panels.py. The generated JSON is committed, because Grafana provisions files; tests/test_grafana_build.py
fails when the committed JSON differs from what this script generates, and loads every file back through the
SDK's models.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path

from grafana_foundation_sdk.builders import common as common_builders
from grafana_foundation_sdk.builders import table
from grafana_foundation_sdk.builders.dashboard import Dashboard
from grafana_foundation_sdk.models import common
from grafana_foundation_sdk.models import dashboard as models
from grafana_foundation_sdk.models import prometheus as prometheus_models
from panels import DATASOURCE, FLEET_PRIMARY, MODEL, PRIMARY, Custom, Panel, Row, dashboard, query, render, thresholds

DASHBOARDS_DIR = Path(__file__).resolve().parent / "dashboards"

ACCURACY_DROP = (f"1 - ml_model_accuracy{{{MODEL}}} / ignoring (metric) "
                 f'ml_baseline_performance{{{MODEL}, metric="accuracy"}}')
ESTIMATED = f"model_window:ml_window_estimated_performance:fleet{{{MODEL}}}"
ESTIMATED_DROP = (f'1 - {ESTIMATED[:-1]}, metric="accuracy"}} / ignoring (window) group_left '
                  f'max by (model_name, model_version, metric) (ml_baseline_performance{{{MODEL}, metric="accuracy"}}) '
                  f"{FLEET_PRIMARY}")


def system_health() -> Dashboard:
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


def prediction_analysis() -> Dashboard:
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


def drift() -> Dashboard:
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
        Panel("Present values per bin", "Each feature's values per window, summed over the replicas, over its "
              "number of bins (rows missing the feature are in none; recording rule "
              "model_window_feature:ml_window_feature_bin_rows:avg): the sample its fleet PSI rests on. "
              "DataDriftDetected pages on the shortest window from 20 per bin and warns on the primary window "
              "from 50.", "short",
              [(f"model_window_feature:ml_window_feature_bin_rows:avg{{{MODEL}}}", "{{feature_name}} ({{window}})")],
              kind="bargauge", thresholds=[("yellow", 20), ("green", 50)], base_color="red", minimum=0,
              instant=True),
        Panel("Fleet PSI per feature and window", "PSI of the whole fleet: the replicas' bin counts summed, then "
              "the exporter's formula (recording rule model_window_feature:ml_window_feature_bin_rows:psi), per "
              "configured window. With one replica it equals the exporter's own. DataDriftDetected judges these: "
              "critical above 0.25 in the shortest window, warning above 0.1 in the primary one.", "short",
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
              "primary window, per replica. PredictionDrift watches the score's largest PSI of the replicas: "
              "warning above 0.1 (each replica with at least 400 rows), critical above 0.25 (at least 100 rows).",
              "short",
              [(f"ml_prediction_drift_psi{{{MODEL}}} {PRIMARY}", "{{target}} {{instance}}")],
              thresholds=[("yellow", 0.1), ("red", 0.25)], minimum=0, width=10),
        Panel("Dataset drift share", "Share of the features whose fleet PSI is above 0.1, primary window, the "
              "replicas together (recording rule model_window:ml_window_feature_bin_rows:drift_share_primary). "
              "DatasetDriftShareHigh warns above one half (at least 400 rows of the fleet) for 15m.", "percentunit",
              [(f"model_window:ml_window_feature_bin_rows:drift_share_primary{{{MODEL}}}", "{{window}}")],
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


def performance() -> Dashboard:
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
        Panel("Estimated vs realized performance over time", "Accuracy and F1 of the primary window estimated from "
              "the scores alone (CBPE, fleet-wide from the replicas' summed expected outcomes: every scored row, "
              "labelled or not) against the realized fleet accuracy of its labelled rows and the reference values. "
              "The estimate comes before the labels; a gap that opens between the two, the estimate staying while "
              "the realized falls, is concept drift, which the estimate cannot see (docs/estimation.md).",
              "percentunit",
              [(f'{ESTIMATED[:-1]}, metric=~"accuracy|f1"}} {FLEET_PRIMARY}', "{{metric}} estimated"),
               (f"model_window:ml_window_correct_rows:ratio{{{MODEL}}} {FLEET_PRIMARY}", "accuracy realized"),
               (f'max by (metric) (ml_baseline_performance{{{MODEL}, metric=~"accuracy|f1"}})',
                "{{metric}} reference")], minimum=0, maximum=1, width=12),
        Panel("Estimated accuracy drop from the baseline", "1 - the fleet's estimated accuracy / the reference "
              "accuracy, beside the realized drop of each exporter. EstimatedPerformanceDrop warns above 5% for "
              "30m, on at least 400 scored rows, while the window has fewer than 200 labelled rows (from there "
              "ModelAccuracyDrop judges the labels).", "percentunit",
              [(ESTIMATED_DROP, "estimated"), (ACCURACY_DROP, "realized {{instance}}")],
              thresholds=[("orange", 0.05)], width=12),
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


def data_quality() -> Dashboard:
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


def segments() -> Dashboard:
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


def or_none(label: str) -> str:
    """Appended to a `sum by (label)`: a single series labelled "none" at 0 while nothing is counted, so the panel
    shows 0 rather than no data."""
    return f'or on () label_replace(vector(0), "{label}", "none", "", "")'


LABELLED_ROWS_THRESHOLDS = {"mode": "absolute",
                            "steps": [{"color": "red", "value": None}, {"color": "green", "value": 50}]}
"""Labelled rows: red below 50, the fewest ModelAccuracyLow judges on."""


def firing_alerts() -> Custom:
    """A table of the firing alerts, most useful columns first; every model's, not only the selected one."""
    description = ("Alerts firing right now, from Prometheus' ALERTS series: one row per alert and label set (a "
                   "drift alert has one row per drifted feature). Watchdog always fires: if it is missing, rule "
                   "evaluation is broken and no other alert can fire either. Alerts of every model are listed, not "
                   "only the selected one.")
    organize = {"excludeByName": {"Time": True, "Value": True, "__name__": True, "alertstate": True},
                "includeByName": {}, "indexByName": {"alertname": 0, "severity": 1, "model_name": 2,
                                                     "model_version": 3, "feature_name": 4}, "renameByName": {}}
    builder = (
        table.Panel().title("Firing alerts").description(description).datasource(DATASOURCE).unit("none")
        .thresholds(thresholds([])).mappings([]).cell_height(common.TableCellHeight.SM).show_header(True)
        .align(common.FieldTextAlignment.AUTO).cell_options(common.TableAutoCellOptions()).inspect(False)
        .sort_by([common_builders.TableSortByFieldState().display_name("severity").desc(False)])
        .footer(common_builders.TableFooterOptions().show(False).reducer(["sum"]).count_rows(False).fields(""))
        .with_transformation(models.DataTransformerConfig(id_val="organize", options=organize))
        .targets([query('ALERTS{alertstate="firing"}', "__auto", "A", instant=True,
                        format_val=prometheus_models.PromQueryFormat.TABLE)])
    )
    return Custom(builder, width=8, height=8)


def model_overview() -> Dashboard:
    return dashboard("promml-model-overview", "Model overview",
                     "One ML model at a glance: traffic, latency, errors, scores, drift (PSI) per feature, accuracy "
                     "from delayed labels, the health of the monitoring pipeline, and the alerts firing on them.", [
        Row("Now"),
        firing_alerts(),
        Panel("Accuracy against baseline",
              "Share of the window's predictions whose label has come back that were right (ml_model_accuracy), "
              "next to the same model's accuracy on its reference data when the baseline was built "
              "(ml_baseline_performance). Red below 0.8, the ModelAccuracyLow threshold; ModelAccuracyDrop "
              "compares the two (a warning beyond a 5% relative drop, a page beyond 10%). No value while no "
              "prediction in the window has a label.",
              "percentunit", [(f"ml_model_accuracy{{{MODEL}}}", "accuracy"),
               (f"ml_baseline_performance{{{MODEL}, metric=\"accuracy\"}}", "baseline")],
              kind="stat", width=4, height=8, thresholds=[("green", 0.8)], base_color="red", minimum=0, maximum=1,
              decimals=1),
        Panel("Predictions today",
              "Rows predicted since midnight (dashboard time zone), summed over every replica: the panel's time "
              "range is 'today so far' whatever the dashboard's range.",
              "short", [(f"sum(increase(ml_predictions_total{{{MODEL}}}[$__range]))", "rows today")],
              kind="stat", width=4, height=8, base_color="blue", decimals=0, instant=True, graph_mode="area",
              time_from="now/d",
              overrides=[("B", [("thresholds", LABELLED_ROWS_THRESHOLDS)])]),
        Panel("PSI per feature",
              "PSI of each feature's distribution in the exporter's window against the training baseline "
              "(ml_drift_score). Below 0.1: no shift; 0.1-0.25 (yellow): moderate, DataDriftDetected warns once "
              "the window holds 400 rows; above 0.25 (red): significant, DataDriftDetected pages once the window "
              "holds 100 rows.",
              "none", [(f"ml_drift_score{{{MODEL}}}", "{{feature_name}}")],
              kind="bargauge", width=5, height=8, thresholds=[("yellow", 0.1), ("red", 0.25)], minimum=0, decimals=3,
              instant=True),
        Panel("Window sample size",
              "Prediction rows in the exporter's window (ml_window_predictions), the sample behind PSI, those with a "
              "label (ml_window_labeled_predictions), the sample behind accuracy, and the labels joined in the last "
              "hour to any prediction, in the window or not (ml_label_delay_seconds_count): none for an hour is "
              "LabelsNotArriving. Rows: red below 100 (PredictionDrift and the data-quality alerts do not judge), "
              "yellow below 400 (PredictionDrift can page but not warn), green from 400; DataDriftDetected judges "
              "each feature on its own present values per bin (Drift dashboard). Labelled: red below 50, what "
              "ModelAccuracyLow needs; 0 labelled rows for an hour with at least 100 rows is LabelsNotArriving.",
              "short",
              [(f"ml_window_predictions{{{MODEL}}}", "rows"),
               (f"ml_window_labeled_predictions{{{MODEL}}}", "labelled"),
               (f"sum(increase(ml_label_delay_seconds_count{{{MODEL}}}[1h]))", "labels joined (1h)")],
              kind="stat", width=3, height=8, thresholds=[("yellow", 100), ("green", 400)], base_color="red",
              decimals=0,
              overrides=[("B", [("thresholds", LABELLED_ROWS_THRESHOLDS)])]),
        Row("Serving"),
        Panel("Predictions per second",
              "Rows predicted per second by the selected model and version (ml_predictions_total; a batch of N "
              "rows counts N). Zero while the model is up means no traffic; no data means the model server is not "
              "scraped.",
              "ops", [(f"sum(rate(ml_predictions_total{{{MODEL}}}[$__rate_interval]))", "rows/s")],
              width=8, height=8, minimum=0),
        Panel("p95 latency",
              "95th percentile wall time of one predict call (ml_prediction_latency_seconds), over the dashboard's "
              "rate interval and over 5 minutes, the recording rule HighPredictionLatency reads: a warning when it "
              "stays above 0.25 s (dashed orange line) for 10 minutes, a page above 0.5 s (dashed red line) for 5 "
              "minutes, both from 100 calls in 5 minutes.",
              "s", [(f"histogram_quantile(0.95, sum by (le) (rate(ml_prediction_latency_seconds_bucket{{{MODEL}}}"
                     "[$__rate_interval])))", "p95"),
               (f"model:ml_prediction_latency_seconds:p95_5m{{{MODEL}}}", "p95 over 5m (alert input)")],
              width=8, height=8, thresholds=[("orange", 0.25), ("red", 0.5)], minimum=0),
        Panel("Score distribution",
              "Rows per second in each score bucket (ml_prediction_score, buckets of 0.1). A shift of the scores "
              "is often the first visible effect of input drift, before labels come back.",
              "ops", [(f"sum by (le) (rate(ml_prediction_score_bucket{{{MODEL}}}[$__rate_interval]))", "{{le}}")],
              kind="heatmap", width=8, height=8, y_axis=("score", "none")),
        Panel("Latency p50 / p95 / p99 (5m)",
              "Median, 95th and 99th percentile wall time of one predict call over 5 minutes, from the recording "
              "rules model:ml_prediction_latency_seconds:p50_5m, p95_5m and p99_5m (summed over replicas before the "
              "quantile). HighPredictionLatency reads the p95: a warning above 0.25 s for 10 minutes, a page above "
              "0.5 s for 5 minutes, both from 100 calls in 5 minutes.",
              "s", [(f"model:ml_prediction_latency_seconds:p50_5m{{{MODEL}}}", "p50"),
               (f"model:ml_prediction_latency_seconds:p95_5m{{{MODEL}}}", "p95"),
               (f"model:ml_prediction_latency_seconds:p99_5m{{{MODEL}}}", "p99")],
              width=12, height=8, thresholds=[("orange", 0.25), ("red", 0.5)], minimum=0),
        Panel("Scrape targets up",
              "Whether Prometheus' last scrape of each model server and promml exporter succeeded (up): 1 up, 0 "
              "down. A job with no target at all shows a single 0, as the alerts count it. Down for 2 minutes "
              "pages as ModelServerDown, for 5 minutes as PromMLExporterDown. Targets carry no model label, so "
              "this shows every model's.",
              "bool_on_off",
              [(f'up{{job="{job}"}} or on () label_replace(vector(0), "job", "{job}", "", "")', "{{job}} {{instance}}")
                              for job in ("model-server", "promml-exporter")],
              kind="stat", width=12, height=8, thresholds=[("green", 1)], base_color="red", decimals=0,
              graph_mode="none", mappings={"0": "down", "1": "up"}),
        Row("Drift and accuracy"),
        Panel("PSI per feature over time",
              "PSI of each feature against the training baseline (ml_drift_score), recomputed by the exporter over "
              "its sliding window. Bands: below 0.1 no shift, 0.1-0.25 moderate, above 0.25 significant. "
              "DataDriftDetected warns for a feature above 0.1 for 15 minutes with at least 400 rows in the "
              "window, and pages above 0.25 for 5 minutes with at least 100 rows.",
              "none", [(f"ml_drift_score{{{MODEL}}}", "{{feature_name}}")],
              width=12, height=9, thresholds=[("yellow", 0.1), ("red", 0.25)], minimum=0, decimals=3,
              thresholds_style="line+area", legend_calcs=["lastNotNull", "max"], legend_table=True),
        Panel("Accuracy over time",
              "Accuracy of the window's labelled predictions (ml_model_accuracy, left axis) and how many labelled "
              "rows it rests on (ml_window_labeled_predictions, right axis). ModelAccuracyLow fires when accuracy "
              "stays below 0.8 (red band) for 10 minutes with at least 50 labelled rows. Labels arrive late, so "
              "this trails the traffic.",
              "percentunit", [(f"ml_model_accuracy{{{MODEL}}}", "accuracy"),
               (f"ml_window_labeled_predictions{{{MODEL}}}", "labelled rows")],
              width=12, height=9, thresholds=[("green", 0.8)], base_color="red", minimum=0,
              thresholds_style="line+area",
              overrides=[("A", [("max", 1)]),
                         ("B", [("unit", "short"), ("decimals", 0), ("custom.axisPlacement", "right"),
                                ("custom.thresholdsStyle", {"mode": "off"}),
                                ("custom.lineStyle", {"dash": [10, 10], "fill": "dash"})])]),
        Row("Errors and inputs"),
        Panel("Prediction errors by type",
              "Predict calls per second that raised, by exception class (ml_prediction_errors_total). A single "
              "'none' series at 0 means no call has failed since the model server started. Failed predict calls "
              "(share, 5m) shows the same as a share of all calls, which PredictionErrorRateHigh reads.",
              "ops", [(f"sum by (error_type) (rate(ml_prediction_errors_total{{{MODEL}}}[$__rate_interval])) "
                       f"{or_none('error_type')}", "{{error_type}}")],
              width=12, height=8, minimum=0),
        Panel("Rejected requests by reason",
              "Requests per second the model server refused with a 400 before they reached the model, by reason "
              "(ml_invalid_requests_total): clients sending garbage, or a schema change on one side. A single "
              "'none' series at 0 means nothing was rejected since the model server started.",
              "reqps", [(f"sum by (reason) (rate(ml_invalid_requests_total{{{MODEL}}}[$__rate_interval])) "
                         f"{or_none('reason')}", "{{reason}}")],
              width=12, height=8, minimum=0),
        Panel("Failed predict calls (share, 5m)",
              "Share of predict calls that raised over 5 minutes, all replicas together "
              "(model:ml_prediction_errors_per_calls:ratio_rate5m); 0 when calls were made and none failed. With "
              "at least 100 calls in those 5 minutes, PredictionErrorRateHigh warns above 5% (dashed orange line) "
              "for 10 minutes and pages above 20% (dashed red line) for 5 minutes.",
              "percentunit", [(f"model:ml_prediction_errors_per_calls:ratio_rate5m{{{MODEL}}}", "failed share")],
              width=12, height=8, thresholds=[("orange", 0.05), ("red", 0.2)], minimum=0, maximum=1),
        Panel("Instrumentation failures by stage",
              "Failures per second inside the instrumentation itself (ml_monitoring_errors_total), by stage (inputs, "
              "outputs, metrics, log), and the model servers Prometheus could not scrape (up): after a gap a counter "
              "reappears, which MonitoringErrors does not take for a new failure. The predict call still succeeds, "
              "but the row is missing from the log or the metrics; any failure in the last 10 minutes is "
              "MonitoringErrors. A single 'none' series at 0 means nothing has failed since the model server "
              "started.",
              "ops",
              [(f"sum by (stage) (rate(ml_monitoring_errors_total{{{MODEL}}}[$__rate_interval])) or on () "
                f"label_replace(vector(0), \"stage\", \"none\", \"\", \"\")", "{{stage}}"),
               ("sum(1 - up{job=\"model-server\"})", "model servers not scraped")],
              width=12, height=8, minimum=0),
        Row("Monitoring pipeline", collapsed=[
            Panel("Prediction log outcomes",
                  "Rows per second handed to the prediction log, by outcome (ml_prediction_log_records_total): "
                  "written, dropped (queue full) or failed (write error). Dropped or failed rows never reach the "
                  "exporter, so drift and accuracy miss them; any in every 5 minutes for 10 minutes is "
                  "PredictionLogDropping.",
                  "cps", [(f"sum by (outcome) (rate(ml_prediction_log_records_total{{{MODEL}}}[$__rate_interval]))",
                           "{{outcome}}")],
                  width=8, height=8, minimum=0),
            Panel("Exporter records by status",
                  "Log lines per second the exporter read, by log and status (ml_exporter_records_total): ok, or "
                  "why a line was skipped.",
                  "cps", [(f"sum by (log, status) (rate(ml_exporter_records_total{{{MODEL}}}[$__rate_interval]))",
                           "{{log}} {{status}}")],
                  width=8, height=8, minimum=0),
            Panel("Since last recompute", "Seconds since the exporter last recomputed drift and accuracy (time() - "
                  "ml_exporter_last_recompute_timestamp_seconds). It should stay near the configured recompute "
                  "interval; above 300 s (dashed red line) for 5 minutes, ExporterRecomputeStale warns: the "
                  "exporter is stuck and its numbers are frozen.",
                  "s", [(f"time() - ml_exporter_last_recompute_timestamp_seconds{{{MODEL}}}", "age")],
                  width=8, height=8, thresholds=[("red", 300)], minimum=0),
            Panel("Rows predicted and read by the exporter",
                  "Rows the model predicted per second (ml_predictions_total) and prediction lines the exporter read "
                  "successfully per second (ml_exporter_records_total, log predictions, status ok). Per replica (the "
                  "`replica` label of prometheus.yml) and per exporter, an exporter that has read nothing yet at 0: "
                  "each exporter's line should follow its replica's; an exporter at 0 for 5 minutes while its "
                  "replica predicts is PredictionLogStale: its drift and accuracy are blind.",
                  "cps",
                  [(f"sum by (replica) (rate(ml_predictions_total{{{MODEL}}}[$__rate_interval]))",
                    "predicted {{replica}}"),
                   (f"sum by (instance, replica) (rate(ml_exporter_records_total{{log=\"predictions\", "
                    f"status=\"ok\", {MODEL}}}[$__rate_interval])) or sum by (instance, replica) (0 * "
                    f"ml_window_seconds{{{MODEL}}}) or on () vector(0)", "read by {{instance}}")],
                  width=12, height=8, minimum=0),
            Panel("Exporter read-error share (5m)",
                  "Per log, the share of lines the exporter read over 5 minutes that it could not use: broken "
                  "lines (invalid_json, invalid_record, oversized) and labels for predictions it does not hold "
                  "(unknown_prediction_id); lines of other models are left out "
                  "(model_log:ml_exporter_read_errors_per_records:ratio_rate5m). Above 1% (dashed red line) for 15 "
                  "minutes is ExporterReadErrors.",
                  "percentunit",
                  [(f"model_log:ml_exporter_read_errors_per_records:ratio_rate5m{{{MODEL}}}", "{{log}}")],
                  width=12, height=8, thresholds=[("red", 0.01)], minimum=0),
        ]),
    ], time_from="now-1h", links=False)

DASHBOARDS: dict[str, Callable[[], Dashboard]] = {
    "model-overview.json": model_overview,
    "system-health.json": system_health,
    "prediction-analysis.json": prediction_analysis,
    "drift.json": drift,
    "performance.json": performance,
    "data-quality.json": data_quality,
    "segments.json": segments,
}


def main() -> int:
    for name, build in DASHBOARDS.items():
        (DASHBOARDS_DIR / name).write_text(render(build()))
        print(f"wrote {DASHBOARDS_DIR / name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
