"""Two replicas, each with its own exporter: the fleet-wide recording rules equal the statistics of both logs together.

Replica 1 serves normal traffic and replica 2 drifted traffic, so each replica's own PSI is far from the fleet's:
only summing the replicas' bin counts (what the recording rules do) gives the PSI of all the predictions. The
expected values are computed here independently, from the two prediction logs and the baseline file, with
`promml.stats.drift.psi`. The fleet's estimated performance (CBPE, from the replicas' summed expected outcomes) is
what one exporter reading both logs estimates.
"""

from __future__ import annotations

import dataclasses
import json
import math
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from promml.baseline import load_baseline
from promml.demo.data import generate
from promml.demo.stack import Ports, Stack, StackConfig, Timings
from promml.exporter.config import ExporterConfig
from promml.exporter.service import ExporterService
from promml.stats.drift import psi

pytestmark = pytest.mark.e2e

ROWS_PER_REPLICA = 600
BATCH = 100
FLEET_PSI = "model_window_feature:ml_window_feature_bin_rows:psi"
FLEET_ACCURACY = "model_window:ml_window_correct_rows:ratio"
FLEET_ESTIMATE = "model_window:ml_window_estimated_performance:fleet"


def post(url: str, body: Any) -> Any:
    request = urllib.request.Request(url, json.dumps(body).encode(), {"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.loads(response.read())


@pytest.fixture(scope="module")
def fleet(tmp_path_factory: pytest.TempPathFactory, repo_root: Path) -> Iterator[Stack]:
    # A window longer than the test, so every row sent stays in it: the expected values are then all the rows.
    timings = dataclasses.replace(Timings.fast(), window_seconds=600, slot_seconds=5)
    config = StackConfig(repo_root=repo_root, workdir=tmp_path_factory.mktemp("fleet"), ports=Ports.free(replicas=2),
                         timings=timings)
    with Stack(config) as running:
        yield running


def query(stack: Stack, promql: str) -> list[dict[str, Any]]:
    url = f"http://127.0.0.1:{stack.config.ports.prometheus}/api/v1/query?" + urllib.parse.urlencode({"query": promql})
    with urllib.request.urlopen(url, timeout=10) as response:
        answer = json.loads(response.read())
    assert answer["status"] == "success", answer
    return answer["data"]["result"]


def predict(stack: Stack) -> dict[str, tuple[int, int]]:
    """Normal rows to replica 1, drifted rows to replica 2: (model server port, true label) by prediction id."""
    truth_of: dict[str, tuple[int, int]] = {}
    for replica, ((model_port, _), drift) in enumerate(zip(stack.config.ports.replicas(), (False, True),
                                                           strict=True)):
        rows, truth = generate(ROWS_PER_REPLICA, seed=11 + replica, drift=drift)
        for start in range(0, ROWS_PER_REPLICA, BATCH):
            answer = post(f"http://127.0.0.1:{model_port}/predict", {"instances": rows[start:start + BATCH]})
            for prediction, label in zip(answer["predictions"], truth[start:start + BATCH], strict=True):
                truth_of[prediction["prediction_id"]] = (model_port, label)
    return truth_of


def label(truth_of: dict[str, tuple[int, int]]) -> dict[str, int]:
    """Post every ground-truth label to the replica that made the prediction; the labels by prediction id."""
    for prediction_id, (model_port, truth) in truth_of.items():
        post(f"http://127.0.0.1:{model_port}/feedback", {"prediction_id": prediction_id, "label": truth})
    return {prediction_id: truth for prediction_id, (_, truth) in truth_of.items()}


def expected_from_logs(stack: Stack, labels: dict[str, int]) -> tuple[dict[str, float], float]:
    """PSI per feature and accuracy of both replicas' logged predictions together, computed from the files."""
    records = [json.loads(line) for log_dir in stack.log_dirs for path in sorted(log_dir.glob("predictions*.jsonl"))
               for line in path.read_text().splitlines()]
    assert len(records) == 2 * ROWS_PER_REPLICA
    baseline = load_baseline(stack.config.workdir / "data" / "baseline.json")
    expected = {}
    for name, ref in baseline.numeric.items():
        values = np.array([r["features"][name] for r in records], dtype=float)
        expected[name] = psi(ref.ref_ratios, np.bincount(ref.bin_index(values), minlength=ref.ref_ratios.size))
    for name, ref in baseline.categorical.items():
        values = [str(r["features"][name]) for r in records]
        expected[name] = psi(ref.ref_ratios, np.bincount(ref.bin_index(values), minlength=ref.ref_ratios.size))
    correct = sum(r["prediction"] == labels[r["prediction_id"]] for r in records)
    return expected, correct / len(records)


def wait_for(condition: Any, timeout: float) -> Any:
    import time

    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(0.5)


def single_exporter_estimate(stack: Stack) -> dict[str, float]:
    """The estimated performance of one exporter (in this process) reading both replicas' logs, same window."""
    import time

    timings = stack.config.timings
    config = ExporterConfig(
        model_name="credit-risk", model_version="1.0.0", baseline=stack.config.workdir / "data" / "baseline.json",
        prediction_logs=tuple(str(log_dir / "predictions*.jsonl") for log_dir in stack.log_dirs), feedback_logs=(),
        window_seconds=timings.window_seconds, slot_seconds=timings.slot_seconds,
    )
    service = ExporterService(config, load_baseline(config.baseline), clock=time.time)
    service.read_logs()
    service.recompute()
    snapshot = service.published.snapshot
    assert snapshot.predictions == 2 * ROWS_PER_REPLICA
    return snapshot.estimated_performance


def test_fleet_psi_accuracy_and_estimate_equal_both_logs_together(fleet: Stack) -> None:
    truth_of = predict(fleet)
    # Labels come after their predictions, as in production: wait until both exporters have read every prediction.
    every_prediction = f"ml_window_predictions == {ROWS_PER_REPLICA}"
    assert wait_for(lambda: len(query(fleet, every_prediction)) == 2, 60), query(fleet, "ml_window_predictions")
    labels = label(truth_of)
    every_row = f"ml_window_labeled_predictions == {ROWS_PER_REPLICA}"
    assert wait_for(lambda: len(query(fleet, every_row)) == 2, 60), (
        f"both exporters should hold every labelled row: {query(fleet, 'ml_window_labeled_predictions')}"
    )
    expected_psi, expected_accuracy = expected_from_logs(fleet, labels)

    def fleet_values() -> tuple[dict[str, float], list[float]]:
        psi_rows = query(fleet, FLEET_PSI)
        accuracy = [float(r["value"][1]) for r in query(fleet, FLEET_ACCURACY)]
        return {r["metric"]["feature_name"]: float(r["value"][1]) for r in psi_rows}, accuracy

    def matches() -> bool:
        got_psi, got_accuracy = fleet_values()
        return (got_psi.keys() == expected_psi.keys()
                and all(math.isclose(got_psi[k], expected_psi[k], rel_tol=1e-9) for k in expected_psi)
                and len(got_accuracy) == 1 and math.isclose(got_accuracy[0], expected_accuracy, rel_tol=1e-9))

    assert wait_for(matches, 30), f"fleet {fleet_values()} != logs {expected_psi}, accuracy {expected_accuracy}"

    # Estimated performance: the fleet rule over two exporters equals one exporter over both logs (ROC AUC, which
    # the confusion matrix cannot give, is left out of the fleet rule).
    single = single_exporter_estimate(fleet)
    assert set(single) == {"accuracy", "precision", "recall", "f1", "roc_auc"}
    estimated = {r["metric"]["metric"]: float(r["value"][1]) for r in query(fleet, FLEET_ESTIMATE)}
    assert estimated.keys() == {"accuracy", "precision", "recall", "f1"}
    assert all(math.isclose(estimated[k], single[k], rel_tol=1e-12) for k in estimated), (estimated, single)
    replicas = [float(r["value"][1]) for r in query(fleet, 'ml_window_estimated_performance{metric="accuracy"}')]
    assert len(replicas) == 2 and abs(replicas[0] - replicas[1]) > 1e-6  # each replica saw other rows

    # Each replica alone sees another distribution: neither its PSI nor their average is the fleet's.
    per_replica: dict[str, list[float]] = {}
    for row in query(fleet, "ml_drift_score"):
        per_replica.setdefault(row["metric"]["feature_name"], []).append(float(row["value"][1]))
    assert all(len(values) == 2 for values in per_replica.values())
    assert abs(float(np.mean(per_replica["income"])) - expected_psi["income"]) > 0.01
    assert min(per_replica["income"]) < expected_psi["income"] < max(per_replica["income"])
