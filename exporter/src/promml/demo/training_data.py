"""`promml demo-data`: the demo's training data as CSV, optionally with the demo model's answer on each row.

A module of its own because it needs both the data and the model, and the model is trained on the data: here
the dependency runs one way only.
"""

from __future__ import annotations

import argparse
import csv
import os
from typing import Any

from . import data


def write_csv(
    path: str | os.PathLike[str], n: int, seed: int, *, drift: bool = False, with_predictions: bool = False
) -> None:
    """Training data as CSV with a header: the features, then `label` (and `prediction`, `score` when asked)."""
    rows, labels = data.generate(n, seed=seed, drift=drift)
    outputs: list[dict[str, Any]] = [{} for _ in rows]
    if with_predictions:
        from .model import CreditRiskModel  # only here: the model needs scikit-learn, the plain data does not

        outputs = CreditRiskModel().predict(rows)
    with open(path, "w", newline="") as handle:
        columns = [*data.FEATURES, data.TARGET, *((data.PREDICTION, data.SCORE) if with_predictions else ())]
        writer = csv.DictWriter(handle, fieldnames=columns)
        writer.writeheader()
        for row, label, output in zip(rows, labels, outputs, strict=True):
            writer.writerow({**row, data.TARGET: label, **output})


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", required=True, metavar="CSV", help="where to write the data")
    parser.add_argument("--rows", type=int, default=5000, help="number of rows (default 5000)")
    parser.add_argument("--seed", type=int, default=42, help="random seed (default 42)")
    parser.add_argument("--drift", action="store_true", help="generate the drifted world instead of the normal one")
    parser.add_argument("--with-predictions", action="store_true",
                        help="add the demo model's `prediction` and `score` of each row (as the demo server answers)")


def run(args: argparse.Namespace) -> int:
    write_csv(args.out, args.rows, args.seed, drift=args.drift, with_predictions=args.with_predictions)
    print(f"wrote {args.rows} rows to {args.out}")
    return 0
