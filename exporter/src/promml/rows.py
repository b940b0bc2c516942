"""Turn a predict call's input and output into per-row features, predictions and scores.

The defaults cover the common shapes; anything else is handled by passing `inputs=` / `outputs=` callables to
`promml.monitor` (see docs/instrumentation.md). Errors here are raised as RowShapeError and counted by the
decorator: they never reach the caller of predict.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any


class RowShapeError(ValueError):
    """The call's input or output has a shape promml cannot read without an `inputs=`/`outputs=` callable."""


def _plain(value: Any) -> Any:
    """numpy scalars become Python scalars so records serialise as JSON numbers."""
    item = getattr(value, "item", None)
    if item is not None and getattr(value, "ndim", None) == 0:
        return item()
    return value


def feature_rows(data: Any) -> list[dict[str, Any]]:
    """Feature dicts from one row (a mapping), a batch (a sequence of mappings) or a pandas DataFrame."""
    if isinstance(data, Mapping):
        return [dict(data)]
    if hasattr(data, "to_dict") and hasattr(data, "columns"):  # a pandas DataFrame, without importing pandas
        return [{name: _plain(value) for name, value in row.items()} for row in data.to_dict("records")]
    if isinstance(data, Sequence) and not isinstance(data, str | bytes):
        rows = []
        for index, row in enumerate(data):
            if not isinstance(row, Mapping):
                raise RowShapeError(
                    f"row {index} of the batch is a {type(row).__name__}, not a mapping of feature name to value;"
                    " pass inputs= to monitor() to read this shape"
                )
            rows.append(dict(row))
        return rows
    raise RowShapeError(
        f"cannot read feature rows from a {type(data).__name__}; pass a dict, a list of dicts or a DataFrame,"
        " or pass inputs= to monitor()"
    )


def predictions_and_scores(result: Any, n_rows: int) -> tuple[list[Any], list[float | None]]:
    """Per-row predictions and scores from a predict result.

    Understood shapes: a dict with `prediction` (and optional `score`) for one row; a sequence of such dicts; a
    sequence or 1-D array of plain predictions; a single plain prediction for one row. Scores are None when the
    result carries none.
    """
    if isinstance(result, Mapping):
        items: list[Any] = [result]
    elif isinstance(result, Sequence) and not isinstance(result, str | bytes):
        items = list(result)
    elif hasattr(result, "tolist") and getattr(result, "ndim", 0) >= 1:  # numpy array
        items = result.tolist()
    else:
        items = [_plain(result)]
    if len(items) != n_rows:
        raise RowShapeError(f"predict returned {len(items)} result(s) for {n_rows} input row(s)")
    predictions: list[Any] = []
    scores: list[float | None] = []
    for item in items:
        if isinstance(item, Mapping):
            if "prediction" not in item:
                raise RowShapeError("a result dict must have a 'prediction' key (and may have 'score')")
            predictions.append(_plain(item["prediction"]))
            score = item.get("score")
            scores.append(None if score is None else float(score))
        else:
            predictions.append(_plain(item))
            scores.append(None)
    return predictions, scores
