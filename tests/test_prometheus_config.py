"""prometheus/: the scrape config, the rules and their unit tests, checked by promtool itself.

Alert behaviour (thresholds, `for`, labels, rendered annotations) is asserted by the promtool unit tests in
prometheus/tests/; this module runs them and checks what promtool cannot: that every alert is tested both firing
and silent, and that every alert carries the labels and annotations notifications rely on.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

RUNBOOK_URL = "docs/runbooks/{}.md"  # a path under the links base (alertmanager/templates/promml.tmpl)
EXPECTED_ALERTS = {  # (name, severity, for); a two-level alert is two rules sharing one name
    ("PredictionVolumeAnomaly", "warning", "30m"),
    ("DataDriftAnomalous", "warning", "30m"),
    ("DataDriftDetected", "critical", "3m"),
    ("DataDriftDetected", "warning", "15m"),
    ("ModelAccuracyLow", "warning", "10m"),
    ("HighPredictionLatency", "critical", "5m"),
    ("HighPredictionLatency", "warning", "10m"),
    ("PredictionErrorRateHigh", "critical", "5m"),
    ("PredictionErrorRateHigh", "warning", "10m"),
    ("PromMLExporterDown", "critical", "5m"),
    ("ModelServerDown", "critical", "2m"),
    ("PredictionLogStale", "warning", "5m"),
    ("PredictionLogDropping", "warning", "10m"),
    ("ExporterReadErrors", "warning", "15m"),
    ("ExporterRecomputeStale", "warning", "5m"),
    ("ExporterMisconfigured", "warning", "10m"),
    ("LabelsNotArriving", "warning", "15m"),
    ("MonitoringErrors", "warning", "5m"),
    ("ModelAccuracyDrop", "critical", "10m"),
    ("ModelAccuracyDrop", "warning", "30m"),
    ("EstimatedPerformanceDrop", "warning", "30m"),
    ("PredictionDrift", "critical", "5m"),
    ("PredictionDrift", "warning", "15m"),
    ("DatasetDriftShareHigh", "warning", "15m"),
    ("FeatureMissingValuesHigh", "warning", "15m"),
    ("FeatureOutOfRangeHigh", "warning", "15m"),
    ("SchemaViolations", "warning", "5m"),
    ("BaselineTooOld", "warning", "1h"),
    ("FairnessParityLow", "warning", "30m"),
    ("Watchdog", "none", None),
}
RECORDING_RULES = {
    "model_window_feature_bin:ml_window_feature_bin_rows:share",
    "model_window_feature:ml_window_feature_bin_rows:psi",
    "model_window:ml_window_correct_rows:ratio",
    "model_window_outcome:ml_window_estimated_outcomes:sum",
    "model_window:ml_window_estimated_outcomes:rows",
    "model_window:ml_window_estimated_performance:fleet",
    "model_window:ml_window_labeled_rows:sum",
    "model_window_feature:ml_window_feature_bin_rows:sum",
    "model_window:ml_window_prediction_rows:count",
    "model:ml_predictions:rate1h",
    "model_name:ml_predictions:rate1h",
    "model_feature:ml_drift_score:avg_over_time7d",
    "model_feature:ml_drift_score:stddev_over_time7d",
    "model:ml_predictions:rate5m",
    "model:ml_prediction_latency_seconds_count:rate5m",
    "model:ml_prediction_errors:rate5m",
    "model:ml_prediction_errors_per_calls:ratio_rate5m",
    "model:ml_prediction_latency_seconds:p50_5m",
    "model:ml_prediction_latency_seconds:p95_5m",
    "model:ml_prediction_latency_seconds:p99_5m",
    "model_log:ml_exporter_read_errors_per_records:ratio_rate5m",
    "model_window:ml_window_prediction_rows:primary",
    "model_feature:ml_window_feature_bin_rows:avg_primary",
    "model_window_segment_value:ml_segment_positive_predictions:ratio",
    "model_window_segment_value:ml_segment_correct_rows:ratio",
    "model_window_segment:ml_segment_positive_predictions:parity_ratio",
    "model_window:ml_window_prediction_rows:sum",
    "model_window_feature:ml_window_feature_bin_rows:avg",
    "model_window:ml_window_length_seconds:max",
    "model_window:ml_window_length_seconds:primary",
    "model_window:ml_window_length_seconds:shortest",
    "model_window_feature:ml_window_feature_bin_rows:psi_shortest",
    "model_window_feature:ml_window_feature_bin_rows:psi_primary",
    "model_window:ml_window_feature_bin_rows:drift_share_primary",
    "model_window:ml_prediction_drift_psi:max",
    "model_window:ml_window_prediction_rows:min_primary",
}
PRIMARY_WINDOW_JOIN = (
    "and on (instance, model_name, model_version, window) model_window:ml_window_prediction_rows:primary"
)


@pytest.fixture(scope="module")
def promtool() -> str:
    path = shutil.which("promtool")
    if path is None:
        pytest.fail("promtool is not installed: run `make install-system` (Debian package prometheus)")
    return path


def run(command: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(command, cwd=cwd, capture_output=True, text=True, timeout=60, check=False)


def rule_files(repo_root: Path) -> list[Path]:
    return sorted((repo_root / "prometheus" / "rules").glob("*.yml"))


def unit_test_files(repo_root: Path) -> list[Path]:
    return sorted((repo_root / "prometheus" / "tests").glob("*.yml"))


def alert_rules(repo_root: Path) -> list[dict[str, Any]]:
    rules = []
    for path in rule_files(repo_root):
        for group in yaml.safe_load(path.read_text())["groups"]:
            rules.extend(rule for rule in group["rules"] if "alert" in rule)
    return rules


def test_promtool_accepts_the_config_and_finds_every_rule_file(promtool: str, repo_root: Path) -> None:
    result = run([promtool, "check", "config", "prometheus/prometheus.yml"], repo_root)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {len(rule_files(repo_root))} rule files found" in result.stdout


def test_scrape_jobs_and_alerting_target(repo_root: Path) -> None:
    config = yaml.safe_load((repo_root / "prometheus" / "prometheus.yml").read_text())
    assert config["global"]["scrape_interval"] == "15s"
    assert config["global"]["evaluation_interval"] == "15s"
    assert config["rule_files"] == ["rules/*.yml"]
    targets = {job["job_name"]: [target for static in job["static_configs"] for target in static["targets"]]
               for job in config["scrape_configs"]}
    assert targets == {
        "prometheus": ["localhost:9090"],
        "alertmanager": ["alertmanager:9093"],
        "model-server": ["model-server-a:8000", "model-server-b:8000"],
        "promml-exporter": ["exporter-a:9102", "exporter-b:9102"],
    }
    # Each model server and its sidecar exporter share a `replica` label (PredictionLogStale pairs them by it).
    replicas = {job["job_name"]: {static["targets"][0]: static.get("labels", {}).get("replica")
                                  for static in job["static_configs"]}
                for job in config["scrape_configs"] if job["job_name"] in ("model-server", "promml-exporter")}
    assert replicas == {"model-server": {"model-server-a:8000": "a", "model-server-b:8000": "b"},
                        "promml-exporter": {"exporter-a:9102": "a", "exporter-b:9102": "b"}}
    assert config["alerting"]["alertmanagers"] == [{"static_configs": [{"targets": ["alertmanager:9093"]}]}]


def test_the_promml_jobs_have_scrape_limits(repo_root: Path) -> None:
    """Their label values partly come from model inputs: a target over a limit fails its scrape instead of filling
    the TSDB (promtool, above, checks that this Prometheus knows each setting)."""
    jobs = {job["job_name"]: job for job in
            yaml.safe_load((repo_root / "prometheus" / "prometheus.yml").read_text())["scrape_configs"]}
    keys = ("sample_limit", "label_value_length_limit", "body_size_limit")
    limits = {name: {key: jobs[name].get(key) for key in keys} for name in ("model-server", "promml-exporter")}
    assert limits == {
        "model-server": {"sample_limit": 20000, "label_value_length_limit": 1024, "body_size_limit": "16MB"},
        "promml-exporter": {"sample_limit": 50000, "label_value_length_limit": 1024, "body_size_limit": "16MB"},
    }


def test_rule_files_pass_promtool_lint(promtool: str, repo_root: Path) -> None:
    paths = rule_files(repo_root)
    assert [path.name for path in paths] == ["alerts.yml", "recording.yml"]
    for path in paths:
        result = run([promtool, "check", "rules", "--lint-fatal", str(path)], repo_root)
        assert result.returncode == 0, f"{path.name}:\n{result.stdout}{result.stderr}"


def test_promtool_unit_tests_pass(promtool: str, repo_root: Path) -> None:
    paths = unit_test_files(repo_root)
    assert paths
    for path in paths:
        result = run([promtool, "test", "rules", str(path)], repo_root)
        assert result.returncode == 0, f"{path.name}:\n{result.stdout}{result.stderr}"


def test_promtool_unit_tests_catch_a_wrong_expectation(promtool: str, repo_root: Path, tmp_path: Path) -> None:
    """The unit tests compare rendered annotations exactly: a copy expecting another PSI value must fail."""
    source = repo_root / "prometheus" / "tests" / "drift.yml"
    text = source.read_text().replace("PSI 0.60", "PSI 0.61")
    assert "PSI 0.61" in text
    copy = tmp_path / "tests" / "drift.yml"
    copy.parent.mkdir()
    copy.write_text(text)
    shutil.copytree(repo_root / "prometheus" / "rules", tmp_path / "rules")
    result = run([promtool, "test", "rules", str(copy)], tmp_path)
    assert result.returncode == 1
    assert "PSI 0.60" in result.stdout + result.stderr


def test_the_expected_alerts_with_their_severity_and_for(repo_root: Path) -> None:
    found = [(rule["alert"], rule["labels"]["severity"], rule.get("for")) for rule in alert_rules(repo_root)]
    assert len(found) == len(set(found))
    assert set(found) == EXPECTED_ALERTS


def threshold_table(repo_root: Path) -> set[tuple[str, str | None, str | None, str]]:
    """(alert, for, keep_firing_for, severity) of every row of the table at the top of alerts.yml with a severity.

    A row with an empty alert column continues the alert above it (its second level, or a wrapped reason).
    """
    rows = set()
    alert = ""
    for line in (repo_root / "prometheus" / "rules" / "alerts.yml").read_text().splitlines():
        if not line.startswith("# |") or line.startswith("# |--"):
            continue
        cells = [cell.strip() for cell in line[2:].strip().strip("|").split("|")]
        if cells[0] == "alert":
            continue
        alert = cells[0] or alert
        duration, keep, severity = cells[2], cells[3], cells[4]
        if severity:
            rows.add((alert, duration or None, keep or None, severity))
    return rows


def test_the_threshold_table_lists_every_rule_with_its_for_and_severity(repo_root: Path) -> None:
    """The table at the top of alerts.yml is the one documented place for thresholds: it must match the rules."""
    rules = {
        (rule["alert"], rule.get("for"), rule.get("keep_firing_for"), rule["labels"]["severity"])
        for rule in alert_rules(repo_root)
    }
    assert threshold_table(repo_root) == rules


def test_every_page_keeps_firing_through_a_failed_scrape(repo_root: Path) -> None:
    """A stale marker (one failed scrape, an exporter restart) must not resolve a page and open a second one:
    every critical rule keeps firing 10m after its condition last held (prometheus/tests/drift.yml shows it)."""
    for rule in alert_rules(repo_root):
        expected = "10m" if rule["labels"]["severity"] == "critical" else None
        assert rule.get("keep_firing_for") == expected, rule["alert"]


def test_latency_thresholds_are_bucket_boundaries(repo_root: Path) -> None:
    """Between boundaries histogram_quantile interpolates: a threshold there fires on the interpolation alone."""
    from promml.instrumentation.metrics import LATENCY_BUCKETS

    thresholds = [
        float(re.search(r"p95_5m > ([0-9.]+)", rule["expr"]).group(1))
        for rule in alert_rules(repo_root) if rule["alert"] == "HighPredictionLatency"
    ]
    assert sorted(thresholds) == [0.25, 0.5]
    assert set(thresholds) <= set(LATENCY_BUCKETS)


def test_every_alert_has_severity_summary_description_and_a_runbook(repo_root: Path) -> None:
    for rule in alert_rules(repo_root):
        name, annotations = rule["alert"], rule["annotations"]
        assert rule["labels"]["severity"] in {"critical", "warning", "none"}, name
        assert annotations["summary"] and "{{" not in annotations["summary"], f"{name}: summary must be static"
        assert annotations["description"], name
        assert annotations["runbook_url"] == RUNBOOK_URL.format(name)
        assert (repo_root / "docs" / "runbooks" / f"{name}.md").is_file(), f"no runbook for {name}"


def test_drift_description_names_the_feature_and_the_value(repo_root: Path) -> None:
    drifts = [rule for rule in alert_rules(repo_root) if rule["alert"] == "DataDriftDetected"]
    assert len(drifts) == 2
    for drift in drifts:
        assert "{{ $labels.feature_name }}" in drift["annotations"]["description"]
        assert '{{ printf "%.2f" $value }}' in drift["annotations"]["description"]


def test_two_level_alerts_differ_only_in_thresholds_and_for(repo_root: Path) -> None:
    """Both levels must carry the same labels, or the inhibit rule (equal on alertname, model, feature) misses."""
    by_name: dict[str, dict[str, dict[str, Any]]] = {}
    for rule in alert_rules(repo_root):
        by_name.setdefault(rule["alert"], {})[rule["labels"]["severity"]] = rule
    two_level = {name: levels for name, levels in by_name.items() if len(levels) > 1}
    assert sorted(two_level) == [
        "DataDriftDetected", "HighPredictionLatency", "ModelAccuracyDrop", "PredictionDrift", "PredictionErrorRateHigh",
    ]
    clauses = re.compile(r"\b(?:by|on|ignoring)\s*\([^()]*\)")
    for name, levels in two_level.items():
        assert set(levels) == {"critical", "warning"}, name
        critical, warning = levels["critical"], levels["warning"]
        # The levels may judge other windows or sample sizes (DataDriftDetected: the shortest window pages, the
        # primary warns; ModelAccuracyDrop warns at smaller drops on more labels), but group and join on the same
        # labels, so their alerts carry the same label names.
        assert set(clauses.findall(critical["expr"])) == set(clauses.findall(warning["expr"])), name
        assert {**critical["labels"], "severity": None} == {**warning["labels"], "severity": None}, name
        assert critical["annotations"]["runbook_url"] == warning["annotations"]["runbook_url"], name


def window_labelled_metrics(repo_root: Path) -> set[str]:
    """Exporter metrics that carry a `window` label, as docs/metrics.md lists them (one series per window)."""
    rows = re.findall(r"^\| `(ml_\w+)` \| \w+ \| ([^|]*) \|", (repo_root / "docs" / "metrics.md").read_text(), re.M)
    return {name for name, labels in rows if re.search(r"`window`", labels)}


def test_window_labelled_alerts_judge_the_primary_window_only(repo_root: Path) -> None:
    """An alert on a `window`-labelled family joins the primary window's rows, so several windows fire it once."""
    windowed = window_labelled_metrics(repo_root)
    assert {"ml_prediction_drift_psi", "ml_feature_missing_ratio", "ml_feature_schema_violations"} <= windowed
    checked = []
    for rule in alert_rules(repo_root):
        expr = " ".join(rule["expr"].split())
        raw = re.sub(r"\w+:\w+:\w+", "", expr)  # recording rules do their own window selection
        if set(re.findall(r"\bml_\w+", raw)) & windowed:
            checked.append(rule["alert"])
            assert PRIMARY_WINDOW_JOIN in expr, rule["alert"]
    assert set(checked) == {
        "FeatureMissingValuesHigh", "FeatureOutOfRangeHigh", "SchemaViolations", "FairnessParityLow",
    }
    # The fleet-wide drift alerts read recording rules that select their window by name (`window` label).
    fleet = {rule["alert"]: " ".join(rule["expr"].split()) for rule in alert_rules(repo_root)
             if rule["alert"] in ("PredictionDrift", "DatasetDriftShareHigh", "DataDriftDetected")}
    assert all(re.search(r":\w*(primary|shortest)\b", expr) for expr in fleet.values()), fleet


def test_every_alert_is_tested_firing_and_not_firing(repo_root: Path) -> None:
    """Every rule (each level of a two-level alert) fires in some case; every alert stays silent in another."""
    firing: set[tuple[str, str]] = set()
    silent: set[str] = set()
    for path in unit_test_files(repo_root):
        for case in yaml.safe_load(path.read_text())["tests"]:
            for check in case.get("alert_rule_test", []):
                if not check.get("exp_alerts"):
                    silent.add(check["alertname"])
                for alert in check.get("exp_alerts") or []:
                    firing.add((check["alertname"], alert["exp_labels"]["severity"]))
    rules = {(rule["alert"], rule["labels"]["severity"]) for rule in alert_rules(repo_root)}
    assert rules - firing == set(), "alert rules never expected to fire in prometheus/tests/"
    # Watchdog always fires: there is no case where it stays silent.
    assert {name for name, _ in rules} - silent == {"Watchdog"}, "alerts never expected to stay silent"


def test_every_unit_test_group_has_a_unique_descriptive_name(repo_root: Path) -> None:
    for path in unit_test_files(repo_root):
        names = [case.get("name", "") for case in yaml.safe_load(path.read_text())["tests"]]
        assert all(len(name.split()) >= 3 for name in names), f"{path.name}: {names}"
        assert len(set(names)) == len(names), path.name


def test_recording_rules_are_documented_and_tested(repo_root: Path) -> None:
    recorded = {
        rule["record"]
        for group in yaml.safe_load((repo_root / "prometheus" / "rules" / "recording.yml").read_text())["groups"]
        for rule in group["rules"]
    }
    assert recorded == RECORDING_RULES
    for name in recorded:
        assert re.fullmatch(r"[a-z_]+:[a-z0-9_]+:[a-z0-9_]+", name), f"{name} is not level:metric:operations"
    documented = set(re.findall(r"^\| `(\w+:[^`]+)` \|", (repo_root / "docs" / "metrics.md").read_text(), re.M))
    assert recorded <= documented
    tested = {
        check["expr"].split("{")[0].strip()
        for path in unit_test_files(repo_root)
        for case in yaml.safe_load(path.read_text())["tests"]
        for check in case.get("promql_expr_test", [])
    }
    assert recorded <= tested


def test_alerting_doc_lists_every_alert(repo_root: Path) -> None:
    doc = (repo_root / "docs" / "alerting.md").read_text()
    for rule in alert_rules(repo_root):
        assert f"`{rule['alert']}`" in doc


def test_fleet_psi_rule_equals_the_exporters_formula(repo_root: Path) -> None:
    """The PSI the fleet rule is tested to give (prometheus/tests/fleet.yml) is drift.psi of the summed counts."""
    from promml.stats.drift import psi

    cases = yaml.safe_load((repo_root / "prometheus" / "tests" / "fleet.yml").read_text())["tests"]
    [expected] = [
        sample["value"]
        for case in cases for check in case["promql_expr_test"]
        if check["expr"] == "model_window_feature:ml_window_feature_bin_rows:psi" for sample in check["exp_samples"]
    ]
    assert psi([0.3, 0.4, 0.3], [30 + 10, 50 + 30, 20 + 60]) == expected


def test_fleet_estimate_rules_equal_one_exporters_estimate_over_every_replicas_rows(repo_root: Path) -> None:
    """estimated_performance.yml: the replicas' series are the exporter's expected outcomes of their per-bin counts,
    and the fleet values the rules are tested to give are the estimate of the summed counts."""
    import numpy as np

    from promml.stats.estimation import estimate

    probabilities = np.array([0.125, 0.5, 0.875])
    replicas = {"a": (np.array([30, 10, 0]), np.array([0, 10, 50])), "b": (np.array([20, 6, 2]), np.array([1, 5, 30]))}
    [case] = [case for case in yaml.safe_load((repo_root / "prometheus" / "tests" / "estimated_performance.yml")
                                              .read_text())["tests"] if case["name"].startswith("the fleet estimate")]
    exported: dict[str, dict[str, float]] = {}
    for series in case["input_series"]:
        labels = dict(re.findall(r'(\w+)="([^"]*)"', series["series"]))
        if series["series"].startswith("ml_window_estimated_outcomes"):
            replica = labels["instance"].split(":")[0].removeprefix("exporter-")
            exported.setdefault(replica, {})[labels["outcome"]] = float(series["values"].split("x")[0])
    for replica, counts in replicas.items():
        assert exported[replica] == estimate(probabilities, *counts)[0]
    outcomes, metrics = estimate(probabilities, *(a + b for a, b in zip(*replicas.values(), strict=True)))
    expected = {
        re.search(r'metric="(\w+)"', sample["labels"]).group(1): sample["value"]
        for check in case["promql_expr_test"] if check["expr"] == "model_window:ml_window_estimated_performance:fleet"
        for sample in check["exp_samples"]
    }
    assert expected == {name: metrics[name] for name in ("accuracy", "precision", "recall", "f1")}
    [rows] = [check["exp_samples"][0]["value"] for check in case["promql_expr_test"]
              if check["expr"] == "model_window:ml_window_estimated_outcomes:rows"]
    assert rows == sum(outcomes.values())


def test_fleet_parity_rule_equals_the_exporters_formula(repo_root: Path) -> None:
    """The fleet parity ratio fairness.yml expects is segments.parity_ratio of the replicas' summed counts."""
    from promml.exporter.segments import DEFAULT_MIN_SEGMENT_ROWS, SegmentValue, parity_ratio

    cases = yaml.safe_load((repo_root / "prometheus" / "tests" / "fairness.yml").read_text())["tests"]
    [case] = [case for case in cases if case.get("promql_expr_test")]
    summed: dict[str, dict[str, int]] = {}
    for series in case["input_series"]:
        name, labels = re.fullmatch(r"(\w+)\{(.*)\}", series["series"]).groups()
        label = dict(re.findall(r'(\w+)="([^"]*)"', labels))
        if label["segment"] == "region":
            by_metric = summed.setdefault(label["segment_value"], {})
            by_metric[name] = by_metric.get(name, 0) + int(series["values"].split("x")[0])
    values = {value: SegmentValue(m["ml_segment_rows"], m["ml_segment_positive_predictions"],
                                  m["ml_segment_labeled_rows"], m["ml_segment_correct_rows"])
              for value, m in summed.items()}
    [expected] = [
        sample["value"] for check in case["promql_expr_test"]
        if check["expr"] == "model_window_segment:ml_segment_positive_predictions:parity_ratio"
        for sample in check["exp_samples"]
    ]
    assert parity_ratio(values, DEFAULT_MIN_SEGMENT_ROWS) == expected


def test_no_rule_test_or_dashboard_matches_an_integer_le(repo_root: Path) -> None:
    """Prometheus 3 writes every `le` as a float (`le="1.0"`): a match on `le="1"` would find nothing there."""
    paths = [*unit_test_files(repo_root), *rule_files(repo_root),
             *sorted((repo_root / "grafana" / "dashboards").glob("*.json"))]
    for path in paths:
        assert not re.search(r'le\\?="[0-9]+"', path.read_text()), path.name
