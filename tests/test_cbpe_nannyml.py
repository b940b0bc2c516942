"""promml's estimated performance against NannyML's CBPE, on NannyML's synthetic binary-classification dataset.

NannyML cannot be installed beside the project's dependencies (its pins clash), so `benchmarks/bench_cbpe.py
--write-fixture` stored what this test needs: the reference and the ten 5,000-row analysis chunks as counts of
(score, prediction, label) (the scores are given to 2 decimals, so the rows are stored losslessly) and NannyML
0.13.1's CBPE estimate of each chunk. `make bench` runs the full comparison with NannyML itself.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from sklearn import metrics

from promml.stats.calibration import fit_calibration
from promml.stats.estimation import estimate

FIXTURE = Path(__file__).parent / "data" / "cbpe_nannyml.json"
TOLERANCE = 0.01  # per chunk, against NannyML's estimate (issue target; benchmarks/bench_cbpe.py)
MAE_SLACK = 0.002  # promml's mean absolute error to the realized metric may exceed NannyML's by this


def expand(table):
    rows = np.asarray([row[3] for row in table], dtype=np.int64)
    return [np.repeat(np.asarray([row[i] for row in table]), rows) for i in range(3)]


@pytest.fixture(scope="module")
def chunks():
    fixture = json.loads(FIXTURE.read_text())
    scores, _, labels = expand(fixture["reference"])
    calibration = fit_calibration(scores.astype(float), labels.astype(int))
    found = []
    for chunk in fixture["chunks"]:
        scores, predicted, labels = expand(chunk["rows"])
        predicted = predicted.astype(int)
        bins = calibration.bin_index(scores)
        ours = estimate(calibration.probabilities, np.bincount(bins[predicted == 0], minlength=calibration.bins),
                        np.bincount(bins[predicted == 1], minlength=calibration.bins))[1]
        truth = {"accuracy": metrics.accuracy_score(labels, predicted), "f1": metrics.f1_score(labels, predicted),
                 "roc_auc": metrics.roc_auc_score(labels, scores)}
        found.append((ours, chunk["nannyml"], truth))
    return found


def test_the_fixture_is_the_whole_dataset_and_small():
    fixture = json.loads(FIXTURE.read_text())
    assert sum(row[3] for row in fixture["reference"]) == 50_000
    assert [sum(row[3] for row in chunk["rows"]) for chunk in fixture["chunks"]] == [5000] * 10
    assert FIXTURE.stat().st_size < 1_000_000


@pytest.mark.parametrize("metric", ["accuracy", "f1", "roc_auc"])
def test_every_chunk_is_within_tolerance_of_nannyml(chunks, metric):
    for ours, theirs, _ in chunks:
        assert ours[metric] == pytest.approx(theirs[metric], abs=TOLERANCE)


@pytest.mark.parametrize("metric", ["accuracy", "f1", "roc_auc"])
def test_the_error_to_the_realized_metric_is_no_worse_than_nannyml(chunks, metric):
    ours = np.mean([abs(o[metric] - r[metric]) for o, _, r in chunks])
    theirs = np.mean([abs(t[metric] - r[metric]) for _, t, r in chunks])
    assert ours <= theirs + MAE_SLACK
