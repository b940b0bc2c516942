"""promml's estimated performance (CBPE from per-bin counts) against NannyML's CBPE, on NannyML's own data.

NannyML's bundled synthetic binary-classification dataset (`load_synthetic_binary_classification_dataset`: a
50,000-row reference and a 50,000-row analysis period with targets), in chunks of 5,000 rows, as NannyML's docs use
it. promml fits its calibration map on the reference (`promml.stats.calibration`) and estimates each chunk from its
rows per calibration bin and predicted class (`promml.stats.estimation`), as the exporter does per window; NannyML's
`CBPE(chunk_size=5000)` does the same on the data frames. Targets, each chunk and each of accuracy, F1 and ROC AUC:

1. promml's estimate within 0.01 of NannyML's;
2. promml's mean absolute error to the realized metric (scikit-learn on the chunk's labels) no worse than NannyML's
   plus 0.002;

and the time per window side by side (promml: binning, counting and estimating one chunk; NannyML: its estimate of
all chunks divided by their number), with each one's fit on the reference.

NannyML pins dependencies that clash with the project's, so this runs in a virtualenv of its own (`make bench`
creates it). `--write-fixture PATH` also writes the data the unit test tests/test_cbpe_nannyml.py checks against
without NannyML: the scores are given to 2 decimals, so the reference and every chunk are stored losslessly as
counts of (score, prediction, label), with NannyML's per-chunk estimates. Exits non-zero when a target is missed.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

os.environ.setdefault("NML_DISABLE_USAGE_LOGGING", "1")  # NannyML would otherwise post usage statistics

import numpy as np
from sklearn import metrics

from promml.stats.calibration import fit_calibration
from promml.stats.estimation import estimate

CHUNK_ROWS = 5000
METRICS = ("accuracy", "f1", "roc_auc")
TOLERANCE = 0.01
"""Largest difference per chunk between promml's estimate and NannyML's."""
MAE_SLACK = 0.002
"""promml's mean absolute error to the realized metric may exceed NannyML's by at most this."""


def grouped(scores: np.ndarray, predicted: np.ndarray, labels: np.ndarray) -> list[list[float]]:
    """Rows as counts of distinct (score, prediction, label): [[score, prediction, label, rows], …]."""
    table, counts = np.unique(np.column_stack([scores, predicted, labels]), axis=0, return_counts=True)
    return [[float(s), int(p), int(y), int(n)] for (s, p, y), n in zip(table, counts, strict=True)]


def expand(table: list[list[float]]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(scores, predictions, labels) of the rows a `grouped` table counts."""
    rows = np.asarray([row[3] for row in table], dtype=np.int64)
    columns = [np.repeat(np.asarray([row[i] for row in table]), rows) for i in range(3)]
    return columns[0].astype(float), columns[1].astype(int), columns[2].astype(int)


def promml_estimate(calibration: Any, scores: np.ndarray, predicted: np.ndarray) -> dict[str, float]:
    """What the exporter does per window: rows per calibration bin and predicted class, then the estimate."""
    bins = calibration.bin_index(scores)
    negative = np.bincount(bins[predicted == 0], minlength=calibration.bins)
    positive = np.bincount(bins[predicted == 1], minlength=calibration.bins)
    return estimate(calibration.probabilities, negative, positive)[1]


def realized(labels: np.ndarray, predicted: np.ndarray, scores: np.ndarray) -> dict[str, float]:
    return {"accuracy": metrics.accuracy_score(labels, predicted), "f1": metrics.f1_score(labels, predicted),
            "roc_auc": metrics.roc_auc_score(labels, scores)}


def compare(ours: list[dict[str, float]], theirs: list[dict[str, float]],
            truth: list[dict[str, float]]) -> dict[str, dict[str, float]]:
    """Per metric: the largest difference between the estimates, each one's mean absolute error to the realized
    metric, and whether both targets are met."""
    report = {}
    for name in METRICS:
        difference = max(abs(o[name] - t[name]) for o, t in zip(ours, theirs, strict=True))
        mae_ours = float(np.mean([abs(o[name] - r[name]) for o, r in zip(ours, truth, strict=True)]))
        mae_theirs = float(np.mean([abs(t[name] - r[name]) for t, r in zip(theirs, truth, strict=True)]))
        report[name] = {"max_difference": difference, "mae_promml": mae_ours, "mae_nannyml": mae_theirs,
                        "met": difference <= TOLERANCE and mae_ours <= mae_theirs + MAE_SLACK}
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--write-fixture", metavar="PATH", help="also write the unit test's fixture to PATH")
    args = parser.parse_args(argv)
    import nannyml

    reference, analysis, targets = nannyml.load_synthetic_binary_classification_dataset()
    analysis = analysis.merge(targets, on="id")
    target = "work_home_actual"

    started = time.perf_counter()
    estimator = nannyml.CBPE(y_pred_proba="y_pred_proba", y_pred="y_pred", y_true=target, metrics=list(METRICS),
                             chunk_size=CHUNK_ROWS, problem_type="classification_binary")
    estimator.fit(reference)
    nannyml_fit = time.perf_counter() - started
    started = time.perf_counter()
    result = estimator.estimate(analysis.drop(columns=[target])).to_df()
    nannyml_estimate = time.perf_counter() - started
    result = result[result[("chunk", "period")] == "analysis"]  # the reference's chunks come first
    theirs = [{name: float(result[(name, "value")].iloc[i]) for name in METRICS} for i in range(len(result))]

    started = time.perf_counter()
    calibration = fit_calibration(reference["y_pred_proba"].to_numpy(), reference[target].to_numpy())
    promml_fit = time.perf_counter() - started
    chunks = [analysis.iloc[i:i + CHUNK_ROWS] for i in range(0, len(analysis), CHUNK_ROWS)]
    ours, truth, chunk_seconds = [], [], []
    for chunk in chunks:
        scores, predicted = chunk["y_pred_proba"].to_numpy(dtype=float), chunk["y_pred"].to_numpy(dtype=int)
        started = time.perf_counter()
        ours.append(promml_estimate(calibration, scores, predicted))
        chunk_seconds.append(time.perf_counter() - started)
        truth.append(realized(chunk[target].to_numpy(), predicted, scores))
    if len(theirs) != len(ours):
        print(f"FAIL  NannyML made {len(theirs)} chunks, promml {len(ours)}")
        return 1

    report = compare(ours, theirs, truth)
    promml_window = float(np.median(chunk_seconds))
    nannyml_window = nannyml_estimate / len(theirs)
    print(f"# bench_cbpe: {datetime.now(timezone.utc):%Y-%m-%d}, {platform.processor() or platform.machine()}, "
          f"Python {platform.python_version()}, NannyML {nannyml.__version__}, {len(ours)} chunks of {CHUNK_ROWS}")
    print("| chunk | metric | promml | NannyML | realized |")
    print("|---|---|---|---|---|")
    for i, (o, t, r) in enumerate(zip(ours, theirs, truth, strict=True)):
        for name in METRICS:
            print(f"| {i} | {name} | {o[name]:.4f} | {t[name]:.4f} | {r[name]:.4f} |")
    print()
    print("| metric | largest difference | MAE promml | MAE NannyML |")
    print("|---|---|---|---|")
    for name, row in report.items():
        print(f"| {name} | {row['max_difference']:.1e} | {row['mae_promml']:.4f} | {row['mae_nannyml']:.4f} |")
    print()
    print("| | promml | NannyML | ratio |")
    print("|---|---|---|---|")
    print(f"| fit on 50,000 reference rows | {promml_fit * 1e3:.1f} ms | {nannyml_fit * 1e3:.1f} ms | "
          f"{nannyml_fit / promml_fit:.0f}× |")
    print(f"| estimate per 5,000-row window | {promml_window * 1e3:.2f} ms | {nannyml_window * 1e3:.1f} ms | "
          f"{nannyml_window / promml_window:.0f}× |")
    print()
    failed = False
    for name, row in report.items():
        ok = row["met"]
        failed |= not ok
        print(f"{'PASS' if ok else 'FAIL'}  {name}: within {TOLERANCE} of NannyML in every chunk, MAE no worse than "
              f"NannyML's + {MAE_SLACK}")

    if args.write_fixture:
        fixture = {
            "source": "nannyml.load_synthetic_binary_classification_dataset(), NannyML "
                      f"{nannyml.__version__} CBPE(chunk_size={CHUNK_ROWS}); benchmarks/bench_cbpe.py",
            "columns": ["score", "predicted", "label", "rows"],
            "reference": grouped(reference["y_pred_proba"].to_numpy(), reference["y_pred"].to_numpy(),
                                 reference[target].to_numpy()),
            "chunks": [{"rows": grouped(c["y_pred_proba"].to_numpy(), c["y_pred"].to_numpy(), c[target].to_numpy()),
                        "nannyml": t} for c, t in zip(chunks, theirs, strict=True)],
        }
        Path(args.write_fixture).write_text(json.dumps(fixture, separators=(",", ":")) + "\n", encoding="utf-8")
        print(f"wrote {args.write_fixture}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
