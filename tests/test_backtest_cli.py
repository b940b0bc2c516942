"""`promml backtest` end to end on small simulated logs whose alerts are known, and its errors on bad input."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from backtest_logs import START, write_scenario
from scipy.stats import norm

from promml.backtest.report import rfc3339
from promml.baseline import load_baseline
from promml.cli import main
from promml.stats.drift import PSI_EPSILON

SHIFT_AT = 1800.0
SHIFT = 3.0
EVAL_INTERVAL = 15.0  # prometheus/prometheus.yml
DRIFT_FOR = 180.0  # DataDriftDetected critical: PSI > 0.25 for 3m
WINDOW = 300.0  # the scenario's exporter window


@pytest.fixture(scope="module")
def shifted(tmp_path_factory) -> tuple[Path, dict]:
    out = tmp_path_factory.mktemp("shift")
    config = write_scenario(out, hours=1.0, rps=2.0, shift_at=SHIFT_AT, shift=SHIFT)
    assert main(["backtest", str(config), "--json", str(out / "out.json"), "--plot", str(out / "out.png"),
                 "--quiet"]) == 0
    return out, json.loads((out / "out.json").read_text())


def psi_crossing_seconds(baseline_path: Path, threshold: float = 0.25) -> float:
    """Seconds after the shift at which the window's PSI passes the threshold: the shifted share of the window
    grows by 1/WINDOW a second, and its bins mix the baseline's shares with the shifted normal's (exact)."""
    reference = load_baseline(baseline_path).numeric["x"]
    edges = np.concatenate([[-np.inf], reference.edges, [np.inf]])
    q = np.clip(np.asarray(reference.ref_ratios), PSI_EPSILON, None)
    shifted = np.diff(norm.cdf(edges - SHIFT))
    for second in range(int(WINDOW) + 1):
        share = second / WINDOW
        p = np.clip((1 - share) * np.asarray(reference.ref_ratios) + share * shifted, PSI_EPSILON, None)
        if np.sum((p - q) * np.log(p / q)) > threshold:
            return float(second)
    raise AssertionError("never crosses")


def test_the_critical_drift_alert_fires_at_shift_plus_window_effect_plus_for(shifted) -> None:
    out, report = shifted
    drift = [e for e in report["episodes"] if e["alertname"] == "DataDriftDetected" and e["severity"] == "critical"]
    assert len(drift) == 1
    assert drift[0]["labels"]["feature_name"] == "x"
    expected = START + SHIFT_AT + psi_crossing_seconds(out / "baseline.json") + DRIFT_FOR
    from promml.records import parse_timestamp

    # The page reads the fleet PSI, recorded through three levels of rules (bin shares, PSI, the shortest window's)
    # that the backtest backfills level by level, one evaluation each, on top of the exporter's recompute phase:
    # measured 38 to 53 s after the exporter's own PSI would have fired it.
    assert -EVAL_INTERVAL <= parse_timestamp(drift[0]["start"]) - expected <= 5 * EVAL_INTERVAL
    assert drift[0]["end"] is None and drift[0]["route"] == "page"


def test_nothing_but_the_watchdog_fires_before_the_shift(shifted) -> None:
    _, report = shifted
    early = [e["alertname"] for e in report["episodes"] if e["start"] < rfc3339(START + SHIFT_AT)]
    assert early == ["Watchdog"]


def test_one_incident_pages_and_the_night_warnings_wait(shifted) -> None:
    _, report = shifted
    summary = report["summary"]
    assert summary["pagerduty_incidents"] == 1
    routes = {(e["alertname"], e["severity"]): e["route"] for e in report["episodes"]}
    assert routes[("DataDriftDetected", "critical")] == "page"
    # 00:30-01:00 UTC on a Monday is night in Berlin: warnings are held, and the run ends before 09:00
    assert {route for (name, severity), route in routes.items() if severity == "warning"} == {"none"}
    assert routes[("Watchdog", "none")] == "none"
    assert [n["receiver"] for n in report["notifications"]] == ["pagerduty-critical", "slack-critical"]
    event = summary["events"][0]
    assert event["params"] == {"feature": "x", "shift": SHIFT}  # what a goal reads (e.g. a drift's rate)
    assert event["detections"][0]["alertname"] == "DataDriftDetected"
    assert event["detections"][0]["delay_seconds"] > DRIFT_FOR


def test_the_plot_is_a_png(shifted) -> None:
    out, _ = shifted
    assert (out / "out.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_a_missing_config_is_a_clear_error(tmp_path: Path, capsys) -> None:
    assert main(["backtest", str(tmp_path / "nope.yml"), "--quiet"]) == 2
    assert "nope.yml: no such exporter config" in capsys.readouterr().err


def test_missing_logs_are_a_clear_error(tmp_path: Path, capsys) -> None:
    config = write_scenario(tmp_path, hours=0.05, rps=1.0, shift_at=None)
    for log in (tmp_path / "logs").iterdir():
        log.unlink()
    assert main(["backtest", str(config), "--quiet"]) == 2
    assert "no prediction log line" in capsys.readouterr().err


def test_logs_of_another_model_are_a_clear_error(tmp_path: Path, capsys) -> None:
    config = write_scenario(tmp_path, hours=0.05, rps=1.0, shift_at=None, model=("fraud", "2"))
    text = config.read_text().replace("model_name: fraud", "model_name: credit-risk")
    config.write_text(text.replace('model_version: "2"', 'model_version: "1.0.0"'))
    (tmp_path / "scenario.json").unlink()
    assert main(["backtest", str(config), "--quiet"]) == 2
    assert "hold model(s) fraud 2, not credit-risk 1.0.0" in capsys.readouterr().err


@pytest.mark.parametrize("bounds", [("2025-12-01T00:02:00Z", "2025-12-01T00:01:00Z"),
                                    ("2025-12-02T00:00:00Z", "2025-12-02T01:00:00Z")])
def test_an_empty_range_is_a_clear_error(tmp_path: Path, capsys, bounds) -> None:
    config = write_scenario(tmp_path, hours=0.05, rps=1.0, shift_at=None)
    assert main(["backtest", str(config), "--from", bounds[0], "--to", bounds[1], "--quiet"]) == 2
    assert "empty range" in capsys.readouterr().err


def test_a_bad_time_is_a_clear_error(tmp_path: Path, capsys) -> None:
    config = write_scenario(tmp_path, hours=0.05, rps=1.0, shift_at=None)
    assert main(["backtest", str(config), "--from", "yesterday", "--quiet"]) == 2
    assert "--from: timestamp 'yesterday' is not RFC 3339" in capsys.readouterr().err
