"""The backtest's alert states equal `promtool test rules` on the same series, at every evaluation.

The series go the backtest's own way (OpenMetrics, promtool blocks, a Prometheus on them, range queries of the
alert expressions, `alert_state.evaluate`); the firing alerts it finds at each evaluation become the expected
alerts of a promtool unit test over the same values, which promtool must pass: `for`, `keep_firing_for`, a series
that flaps, one that comes back after resolving, and two series of one rule.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import yaml

from promml.backtest.alert_state import evaluate
from promml.backtest.openmetrics import OpenMetricsWriter
from promml.backtest.rules import load_rules
from promml.backtest.tsdb import PrometheusEngine, create_blocks

INTERVAL = 15
T0 = 1_764_547_200  # a multiple of the interval, so promtool's time 0 is our first evaluation
VALUES = {
    "a": [0, 0, 2, 2, 2, 2, 2, 0, 2, 2, 0, 0, 2, 2, 2, 2, 2, 2, 2, 2, 0, 0, 0, 0, 2, 0, 2, 0, 2, 2, 2, 2, 2, 0, 0, 0,
          0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2],
    "b": [2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 0, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 0, 0, 0, 0, 0, 0, 0, 2, 2, 2, 2,
          2, 2, 0, 2, 0, 2, 0, 2, 0, 2, 0, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 0, 0],
}
RULES = {"groups": [{"name": "cross-check", "interval": f"{INTERVAL}s", "rules": [
    {"alert": "HoldOneMinute", "expr": "x > 1", "for": "1m", "labels": {"severity": "warning"}},
    {"alert": "KeepOneMinute", "expr": "x > 1", "keep_firing_for": "1m", "labels": {"severity": "critical"}},
    {"alert": "HoldAndKeep", "expr": "x > 1", "for": "45s", "keep_firing_for": "30s"},
]}]}


def test_alert_states_equal_promtool_test_rules(tmp_path: Path) -> None:
    rules_path = tmp_path / "rules.yml"
    rules_path.write_text(yaml.safe_dump(RULES))
    rules = load_rules([rules_path], INTERVAL)
    steps = len(VALUES["a"])
    writer = OpenMetricsWriter(tmp_path / "samples.om")
    for i in range(steps):
        writer.write(T0 + i * INTERVAL,
                     [("x", {"instance": name}, float(values[i])) for name, values in VALUES.items()])
    writer.close()
    data = tmp_path / "data"
    create_blocks(tmp_path / "samples.om", data)
    times = [T0 + i * INTERVAL for i in range(steps)]
    tests = []
    fired = 0
    with PrometheusEngine(data, tmp_path) as engine:
        for rule in rules:
            _, firing_at = evaluate(rule, engine.query_range(rule.expr, times[0], times[-1], INTERVAL), times)
            for i, at in enumerate(times):
                alerts = [{"exp_labels": {k: v for k, v in labels.items() if k != "alertname"}}
                          for labels in sorted(firing_at[at * 1000], key=lambda labels: labels["instance"])]
                fired += len(alerts)
                tests.append({"eval_time": f"{i * INTERVAL}s", "alertname": rule.alert, "exp_alerts": alerts})
    assert fired > 50  # the series make every rule fire and resolve several times
    unit = {"rule_files": [str(rules_path)], "evaluation_interval": f"{INTERVAL}s", "tests": [{
        "interval": f"{INTERVAL}s",
        "input_series": [{"series": f'x{{instance="{name}"}}', "values": " ".join(str(v) for v in values)}
                         for name, values in VALUES.items()],
        "alert_rule_test": tests,
    }]}
    unit_path = tmp_path / "unit.yml"
    unit_path.write_text(yaml.safe_dump(unit))
    done = subprocess.run(["promtool", "test", "rules", str(unit_path)], capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr


def test_episodes_start_at_firing_and_end_at_the_first_evaluation_without_the_series() -> None:
    from promml.backtest.rules import Rule
    from promml.backtest.tsdb import Series

    rule = Rule(group="g", interval=15, expr="x > 1", alert="A", for_seconds=30, labels={"severity": "warning"})
    times = [T0 + i * 15 for i in range(10)]
    present = [times[i] for i in (1, 2, 3, 4, 5, 8)]
    episodes, _ = evaluate(rule, [Series({"__name__": "x", "instance": "a"}, [(t, 2.0) for t in present])], times)
    assert [(e.active_at, e.start, e.end) for e in episodes] == [(times[1], times[3], times[6])]
    assert episodes[0].labels == {"instance": "a", "severity": "warning", "alertname": "A"}
