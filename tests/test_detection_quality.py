"""The shipped rules hold the detection goals on the compressed runs: every scenario of the goals table, one
simulated day at a few predictions per second, replayed through the real exporter, the shipped Prometheus rules
(evaluated by Prometheus itself) and the shipped Alertmanager routing. `make backtest` runs the full table.

The runs take a few minutes, so they run once for the module (two at a time, one per core) and each goal is then
judged in a test of its own: a failure names the scenario and says what was measured.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import yaml

from promml.backtest.goals import GOALS, Goal

pytestmark = pytest.mark.e2e

SCRIPT = Path(__file__).resolve().parent.parent / "benchmarks" / "detection_quality.py"


def load_script() -> ModuleType:
    """benchmarks/ is not a package: load the script the way `make backtest` runs it, as a module of its own."""
    spec = importlib.util.spec_from_file_location("detection_quality", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up by name
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def outcomes(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    script = load_script()
    runs = script.run_goals(list(GOALS), compressed=True, workdir=tmp_path_factory.mktemp("detection"), plot=False,
                            jobs=2)
    print("\n" + script.table(runs, compressed=True))
    return {outcome.goal.scenario: outcome for outcome in runs}


@pytest.mark.parametrize("goal", GOALS, ids=[goal.scenario for goal in GOALS])
def test_the_shipped_rules_hold_the_goal_on_the_compressed_run(goal: Goal, outcomes: dict[str, Any]) -> None:
    outcome = outcomes[goal.scenario]
    assert outcome.verdict.passed, f"{goal.scenario}: goal {goal.goal!r}; measured {outcome.verdict.measured}"


def test_a_compressed_run_only_coarsens_the_intervals(tmp_path: Path) -> None:
    """Compressed runs read the shipped prometheus.yml, with 60 s for its two intervals and nothing else changed."""
    script = load_script()
    shipped = yaml.safe_load(script.SHIPPED_PROMETHEUS.read_text())
    compressed = yaml.safe_load(script.compressed_prometheus_config(tmp_path).read_text())
    assert compressed["global"]["scrape_interval"] == compressed["global"]["evaluation_interval"] == "60s"
    for document in (shipped, compressed):
        del document["global"]["scrape_interval"], document["global"]["evaluation_interval"]
    assert compressed == shipped
