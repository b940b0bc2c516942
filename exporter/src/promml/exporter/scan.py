"""The fast path from prediction log lines to columns: the compiled scanner `_fastscan`, when it is built.

Why: it reads the lines the instrumentation writes several times faster than decoding them into objects (see
`_fastscan.c`, and docs/benchmarks.md). It takes only lines whose reading is certain and hands back the positions
of the others, which the exact decoder (`decode.py`, then `service.parse_line`) reads and judges. Without a C
compiler at install time the scanner is absent and every line takes the exact path: the same results, slower.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ..records import MAX_PREDICTION_ID_LENGTH
from .columns import PredictionColumns

try:
    from ._fastscan import scan as _scan
except ImportError:  # installed without a C compiler
    _scan = None

FAST_SCANNER_BUILT = _scan is not None


def scan_predictions(
    lines: list[bytes], model_name: str, model_version: str, numeric: Sequence[str], categorical: Sequence[str]
) -> tuple[PredictionColumns, list[int]]:
    """The lines of this model whose features are exactly the baseline's, as columns, and the positions of the
    lines left to the exact decoder (all of them when the scanner is not built)."""
    if _scan is None:
        return PredictionColumns.empty(len(numeric), len(categorical)), list(range(len(lines)))
    try:
        slow, ids, timestamps, predictions, scores, matrix, categories = _scan(
            lines, model_name, model_version, tuple(numeric), tuple(categorical)
        )
    except ValueError:  # a name with no UTF-8 form (a lone surrogate): only the exact path can compare it
        return PredictionColumns.empty(len(numeric), len(categorical)), list(range(len(lines)))
    if ids and max(map(len, ids)) > MAX_PREDICTION_ID_LENGTH:  # rare: the exact path rejects and counts it
        return PredictionColumns.empty(len(numeric), len(categorical)), list(range(len(lines)))
    columns = PredictionColumns(
        ids=ids,
        timestamps=np.frombuffer(timestamps),
        predictions=predictions,
        scores=scores,
        numeric=np.frombuffer(matrix).reshape(len(ids), len(numeric)),
        categorical=categories,
    )
    return columns, slow
