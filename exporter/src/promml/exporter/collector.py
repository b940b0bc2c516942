"""Turns the exporter's published state into metric families at scrape time (no global gauges to keep in sync).

The contract metrics (`ml_drift_score`, `ml_model_accuracy`, `ml_window_predictions`,
`ml_window_labeled_predictions`, `ml_window_seconds`) describe the primary window, the first configured, and have
no `window` label, so queries and alerts written for one window keep one series per feature. Every window,
the primary one included, is also exported with a `window` label in the other `ml_drift_*`, `ml_window_*`,
`ml_feature_*`, `ml_prediction_drift_*` and `ml_segment_*` families. NaN (no data) is left out rather than
exported.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator, Sequence

import numpy as np
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector
from prometheus_client.utils import floatToGoString

from .misconfiguration import REASONS
from .service import ExporterService
from .window import LABEL_DELAY_BUCKETS, WindowSnapshot

MODEL_LABELS = ("model_name", "model_version")


def _gauge(name: str, documentation: str, labels: Sequence[str], samples: Iterable[tuple[Sequence[str], float]],
           model: list[str]) -> GaugeMetricFamily | None:
    """A gauge family of the finite samples given, or None when there is none."""
    family = GaugeMetricFamily(name, documentation, labels=[*MODEL_LABELS, *labels])
    for label_values, value in samples:
        if value is not None and not math.isnan(value):
            family.add_metric([*model, *label_values], float(value))
    return family if family.samples else None


def _per_feature(windows: Sequence[WindowSnapshot], attribute: str) -> Iterator[tuple[list[str], float]]:
    for snapshot in windows:
        for feature, value in sorted(getattr(snapshot, attribute).items()):
            yield [snapshot.name, feature], value


class ExporterCollector(Collector):
    """Yields the metrics listed in docs/metrics.md from the service's last published snapshots."""

    def __init__(self, service: ExporterService) -> None:
        self.service = service

    def collect(self) -> Iterator[Metric]:
        for family in self._families():
            if family is not None:
                yield family

    def _families(self) -> Iterator[Metric | None]:
        service = self.service
        config = service.config
        model = [config.model_name, config.model_version]
        published = service.published
        window = service.window

        records = CounterMetricFamily(
            "ml_exporter_records", "Log lines read, by log and status (ok, or why the line was skipped).",
            labels=[*MODEL_LABELS, "log", "status"],
        )
        for (log, status), count in sorted(service.record_counts.items()):
            records.add_metric([*model, log, status], count)
        yield records
        yield _gauge("ml_exporter_pending_predictions", "Predictions held in memory waiting for a label.", (),
                     [((), window.pending)], model)
        yield _gauge("ml_exporter_early_labels", "Labels read before their prediction, held a while for it.", (),
                     [((), service.early_labels)], model)
        evicted = CounterMetricFamily(
            "ml_exporter_pending_evictions", "Predictions forgotten before a label came (older than the label "
            "time-to-live, or over max_pending_predictions).", labels=list(MODEL_LABELS),
        )
        evicted.add_metric(model, window.evicted_pending)
        yield evicted
        rejected = CounterMetricFamily(
            "ml_exporter_checkpoint_rejected", "Checkpoints not used at start because they were invalid or of "
            "another model, by part: checkpoint (all of it: logs read from the start) or window (rebuilt from the "
            "logs).", labels=[*MODEL_LABELS, "part"],
        )
        for part in ("checkpoint", "window"):
            rejected.add_metric([*model, part], service.checkpoint_rejections[part])
        yield rejected
        failures = CounterMetricFamily(
            "ml_exporter_checkpoint_save_failures", "Checkpoint saves that failed (disk full, permissions...).",
            labels=list(MODEL_LABELS),
        )
        failures.add_metric(model, service.checkpoint_save_failures)
        yield failures
        yield _gauge("ml_window_seconds", "Length of the primary sliding window.", (), [((), config.window_seconds)],
                     model)
        yield _gauge("ml_window_length_seconds", "Length of each sliding window.", ("window",),
                     [([spec.name], spec.seconds) for spec in config.windows], model)
        yield from self._label_totals(model)
        yield from self._references(model)
        if published.snapshot is None or published.computed_at is None:
            return
        yield _gauge("ml_exporter_misconfiguration", "1 while the exporter measures nothing for this reason (no log "
                     "file, a directory as the log, only other models' lines, features other than the baseline's), "
                     "else 0; /readyz and the log say what to change.", ("reason",),
                     [([reason], float(reason in published.problems)) for reason in REASONS], model)
        yield _gauge("ml_exporter_last_recompute_timestamp_seconds", "Unix time of the last successful recompute.",
                     (), [((), published.computed_at)], model)
        yield _gauge("ml_exporter_log_lag_seconds", "Seconds from the newest record timestamp read to the last "
                     "recompute, per log.", ("log",), sorted(([log], lag) for log, lag in
                                                             published.log_lag_seconds.items()), model)
        yield _gauge("ml_exporter_unread_bytes", "Bytes of the followed log files not read yet, per log.", ("log",),
                     sorted(([log], n) for log, n in published.unread_bytes.items()), model)
        yield _gauge("ml_baseline_age_seconds", "Seconds from the baseline's creation to the last recompute.", (),
                     [((), published.baseline_age_seconds)], model)
        yield from self._contract(published.snapshot, model)
        windows = published.windows or (published.snapshot,)
        yield from self._windows(windows, model)
        yield from self._drift(windows, model)
        yield from self._quality(windows, model)
        yield from self._performance(windows, model)
        yield from self._segments(windows, model)

    def _label_totals(self, model: list[str]) -> Iterator[Metric | None]:
        window = self.service.window
        if window.task == "classification":
            outcomes = CounterMetricFamily(
                "ml_labeled_predictions", "Labels joined to their prediction, by outcome "
                "(correct, incorrect).", labels=[*MODEL_LABELS, "outcome"],
            )
            for outcome in ("correct", "incorrect"):
                outcomes.add_metric([*model, outcome], window.outcome_totals[outcome])
            yield outcomes
        cumulative = np.cumsum(window.label_delay_counts)
        # `le` as prometheus_client writes it for its own histograms ("1.0", not "1"): what Prometheus 3 normalises
        # every `le` to, so a query on a bucket means the same on 2.x and 3.x.
        buckets = [(floatToGoString(bound), float(n))
                   for bound, n in zip(LABEL_DELAY_BUCKETS, cumulative, strict=False)]
        buckets.append(("+Inf", float(cumulative[-1])))
        delay = HistogramMetricFamily(
            "ml_label_delay_seconds", "Label time minus prediction time of the labels joined "
            "(0 for a label stamped before its prediction).", labels=list(MODEL_LABELS),
        )
        delay.add_metric(model, buckets, window.label_delay_sum)
        yield delay

    def _references(self, model: list[str]) -> Iterator[Metric | None]:
        baseline = self.service.baseline
        references = {**baseline.numeric, **baseline.categorical}
        yield _gauge(
            "ml_feature_bin_reference_ratio", "The baseline's share of each bin of each feature.",
            ("feature_name", "bin"),
            [([name, str(i)], ratio) for name, ref in sorted(references.items()) for i, ratio in
             enumerate(ref.ref_ratios)],
            model,
        )
        performance = getattr(baseline, "performance", None) or {}
        yield _gauge("ml_baseline_performance", "The model's performance on the baseline's reference data.",
                     ("metric",), sorted(([metric], value) for metric, value in performance.items()), model)

    @staticmethod
    def _contract(snapshot: WindowSnapshot, model: list[str]) -> Iterator[Metric | None]:
        yield _gauge("ml_window_predictions", "Prediction rows in the primary window.", (),
                     [((), snapshot.predictions)], model)
        yield _gauge("ml_window_labeled_predictions", "Prediction rows in the primary window that have a label.", (),
                     [((), snapshot.labeled)], model)
        yield _gauge("ml_model_accuracy", "Accuracy of the primary window's labelled predictions.", (),
                     [((), snapshot.accuracy)], model)
        yield _gauge("ml_drift_score", "PSI of the feature's distribution in the primary window against the baseline.",
                     ("feature_name",), sorted(([name], value) for name, value in snapshot.drift.items()), model)

    @staticmethod
    def _windows(windows: Sequence[WindowSnapshot], model: list[str]) -> Iterator[Metric | None]:
        yield _gauge("ml_window_prediction_rows", "Prediction rows in each window.", ("window",),
                     [([s.name], s.predictions) for s in windows], model)
        yield _gauge("ml_window_labeled_rows", "Prediction rows in each window that have a label.", ("window",),
                     [([s.name], s.labeled) for s in windows], model)
        yield _gauge("ml_window_correct_rows", "Labelled rows in each window whose prediction was right.", ("window",),
                     [([s.name], s.correct) for s in windows if s.task == "classification"], model)
        yield _gauge("ml_window_binary_outcomes", "Labelled rows in each window by outcome with the positive class.",
                     ("window", "outcome"),
                     [([s.name, outcome], n) for s in windows if s.binary_outcomes
                      for outcome, n in s.binary_outcomes.items()], model)
        yield _gauge("ml_window_unknown_class_rows", "Labelled rows in each window whose label or prediction is not "
                     "one of the model's classes in the baseline.", ("window",),
                     [([s.name], s.unknown_class_rows) for s in windows if s.unknown_class_rows is not None], model)
        yield _gauge("ml_window_score_outside_unit_rows", "Labelled rows in each window whose score is outside "
                     "[0, 1] (ranked for ROC AUC as they are, not clipped).", ("window",),
                     [([s.name], s.scores_outside_unit) for s in windows if s.task == "classification"], model)
        yield _gauge(
            "ml_window_feature_bin_rows", "Rows of each window in each baseline bin of each feature (sum these "
            "across replicas for fleet-wide PSI).", ("window", "feature_name", "bin"),
            [([s.name, name, str(i)], n) for s in windows for name, counts in sorted(s.feature_counts.items())
             for i, n in enumerate(counts.tolist())], model,
        )

    @staticmethod
    def _drift(windows: Sequence[WindowSnapshot], model: list[str]) -> Iterator[Metric | None]:
        labels = ("window", "feature_name")
        yield _gauge("ml_drift_psi", "Population Stability Index of each feature against the baseline.", labels,
                     _per_feature(windows, "drift"), model)
        yield _gauge("ml_drift_js_distance", "Jensen-Shannon distance (base 2) of each feature's bin shares against "
                     "the baseline's.", labels, _per_feature(windows, "js_distance"), model)
        yield _gauge("ml_drift_ks_statistic", "Kolmogorov-Smirnov D of each numeric feature's window sample against "
                     "the baseline sample.", labels,
                     [([w, f], d) for (w, f), (d, _) in _per_feature(windows, "ks")], model)
        yield _gauge("ml_drift_ks_pvalue", "Kolmogorov-Smirnov p-value (asymptotic) of each numeric feature.", labels,
                     [([w, f], p) for (w, f), (_, p) in _per_feature(windows, "ks")], model)
        yield _gauge("ml_drift_sample_rows", "Values in each numeric feature's window sample (behind KS and "
                     "Wasserstein).", labels, _per_feature(windows, "sample_sizes"), model)
        yield _gauge("ml_drift_chi2_pvalue", "Chi-square p-value of each categorical feature's known categories.",
                     labels, _per_feature(windows, "chi2_pvalue"), model)
        yield _gauge("ml_drift_wasserstein_normalised", "Wasserstein distance of each numeric feature, in baseline "
                     "standard deviations.", labels, _per_feature(windows, "wasserstein"), model)
        target = ("window", "target")
        yield _gauge("ml_prediction_drift_psi", "PSI of the score and of the predicted class against the baseline.",
                     target, _per_feature(windows, "prediction_psi"), model)
        yield _gauge("ml_prediction_drift_js_distance", "Jensen-Shannon distance of the score and of the predicted "
                     "class against the baseline.", target, _per_feature(windows, "prediction_js_distance"), model)
        yield _gauge("ml_dataset_drift_share", "Share of features whose PSI is over 0.1.", ("window",),
                     [([s.name], s.dataset_drift_share) for s in windows], model)

    @staticmethod
    def _quality(windows: Sequence[WindowSnapshot], model: list[str]) -> Iterator[Metric | None]:
        labels = ("window", "feature_name")
        yield _gauge("ml_feature_missing_ratio", "Share of each window's rows with the feature missing (absent, null "
                     "or empty).", labels, _per_feature(windows, "missing_ratio"), model)
        yield _gauge("ml_feature_out_of_range_ratio", "Share of a numeric feature's values outside the baseline's "
                     "minimum..maximum.", labels, _per_feature(windows, "out_of_range_ratio"), model)
        yield _gauge("ml_feature_unseen_category_ratio", "Share of a categorical feature's values in no training "
                     "category.", labels, _per_feature(windows, "unseen_ratio"), model)
        yield _gauge(
            "ml_feature_schema_violations", "Rows of each window breaking the baseline's schema, per feature and "
            "reason (unknown_feature, missing_feature, wrong_type).", ("window", "feature_name", "reason"),
            [([s.name, feature, reason], n) for s in windows
             for (feature, reason), n in sorted(s.schema_violations.items())], model,
        )

    @staticmethod
    def _performance(windows: Sequence[WindowSnapshot], model: list[str]) -> Iterator[Metric | None]:
        yield _gauge("ml_window_performance", "Model performance on each window's labelled predictions.",
                     ("window", "metric"), _per_feature(windows, "performance"), model)
        yield _gauge("ml_window_estimated_performance", "Model performance on each window's scored predictions "
                     "estimated from the scores alone (CBPE with the baseline's calibration map), before labels.",
                     ("window", "metric"), _per_feature(windows, "estimated_performance"), model)
        yield _gauge("ml_window_estimated_outcomes", "Expected rows of each window per outcome (tp, fp, tn, fn; "
                     "correct, incorrect for a multi-class model) from the calibrated scores; sum across replicas "
                     "for the fleet's estimate.", ("window", "outcome"),
                     _per_feature(windows, "estimated_outcomes"), model)

    @staticmethod
    def _segments(windows: Sequence[WindowSnapshot], model: list[str]) -> Iterator[Metric | None]:
        labels = ("window", "segment", "segment_value")
        values = [([s.name, segment, value], stats, s.task == "classification") for s in windows
                  for segment, by_value in s.segments.items() for value, stats in by_value.items()]
        yield _gauge("ml_segment_rows", "Rows of each window per segment feature and value (sum across replicas).",
                     labels, [(key, stats.rows) for key, stats, _ in values], model)
        yield _gauge("ml_segment_labeled_rows", "Rows of each window per segment value that have a label.", labels,
                     [(key, stats.labeled) for key, stats, _ in values], model)
        classification = [(key, stats) for key, stats, is_classification in values if is_classification]
        yield _gauge("ml_segment_positive_predictions", "Rows of each window per segment value predicted as the "
                     "positive class.", labels, [(key, stats.positive) for key, stats in classification], model)
        yield _gauge("ml_segment_correct_rows", "Labelled rows of each window per segment value whose prediction "
                     "was right.", labels, [(key, stats.correct) for key, stats in classification], model)
        yield _gauge("ml_segment_positive_rate", "Share of each segment value's rows predicted as the positive "
                     "class.", labels, [(key, stats.positive_rate) for key, stats in classification], model)
        yield _gauge("ml_segment_accuracy", "Accuracy of each segment value's labelled rows.", labels,
                     [(key, stats.accuracy) for key, stats in classification], model)
        yield _gauge("ml_segment_overflow_rows", "Rows of each window counted under __other__ by a time slot that "
                     "already held its cap of distinct values (0: every reported count is exact).",
                     ("window", "segment"), _per_feature(windows, "segment_overflow"), model)
        yield _gauge("ml_demographic_parity_ratio", "Lowest over highest positive rate among each segment "
                     "feature's values with enough rows.", ("window", "segment"),
                     _per_feature(windows, "parity_ratio"), model)
