"""Turn a predict call's input and output into a row count, per-row features, predictions and scores.

The hot path only needs the row count and the scores; feature dicts are built later, on the log writer's thread,
from a cheap snapshot taken during the call (`snapshot_rows`). Anything these defaults cannot read is handled by
passing `inputs=` / `outputs=` callables to `promml.monitor` (see docs/instrumentation.md). Errors are raised as
RowShapeError and counted by the decorator: they never reach the caller of predict.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np


class RowShapeError(ValueError):
    """The call's input or output has a shape promml cannot read without an `inputs=`/`outputs=` callable."""


_PLAIN_TYPES = frozenset({int, float, str, bool, type(None)})
"""Types that need no conversion: checked first, since `_plain`'s attribute probes cost more than the check."""


def _plain(value: Any) -> Any:
    """numpy scalars become Python scalars so records serialise as JSON numbers."""
    item = getattr(value, "item", None)
    if item is not None and getattr(value, "ndim", None) == 0:
        return item()
    return value


def _is_frame(data: Any) -> bool:
    """A pandas DataFrame, recognised without importing pandas."""
    return hasattr(data, "to_dict") and hasattr(data, "columns")


def row_count(data: Any) -> int:
    """Rows in one row (a mapping), a batch (a sequence of mappings), a DataFrame, or a 1-D/2-D numpy array."""
    if type(data) is dict:  # the online-serving case, before the slower abstract-class checks
        return 1
    if isinstance(data, Mapping):
        return 1
    if isinstance(data, np.ndarray):
        if data.ndim == 1:
            return 1
        if data.ndim == 2:
            return int(data.shape[0])
        raise RowShapeError(f"cannot read rows from a {data.ndim}-D array; pass a 1-D row or a 2-D batch")
    if _is_frame(data):
        return len(data)
    if isinstance(data, Sequence) and not isinstance(data, str | bytes):
        return len(data)
    raise RowShapeError(
        f"cannot read feature rows from a {type(data).__name__}; pass a dict, a list of dicts, a DataFrame or a "
        "numpy array, or pass inputs= to monitor()"
    )


def snapshot_rows(data: Any) -> Any:
    """A copy cheap enough for the calling thread, so later changes by the caller do not leak into the log.

    A dict is copied, a list is copied shallowly (the row dicts inside are shared), a DataFrame gets a shallow
    copy (columns the caller adds later stay out), an array is copied.
    """
    if isinstance(data, dict):
        return dict(data)
    if isinstance(data, list):
        return list(data)
    if isinstance(data, np.ndarray):
        return data.copy()
    if _is_frame(data):
        return data.copy(deep=False)
    return data


def feature_rows(data: Any, feature_names: Sequence[str] | None = None) -> list[dict[str, Any]]:
    """Feature dicts from one row, a batch, a DataFrame or an array (whose columns are named by `feature_names`)."""
    if isinstance(data, Mapping):
        return [{name: _plain(value) for name, value in data.items()}]
    if isinstance(data, np.ndarray):
        matrix = data.reshape(1, -1) if data.ndim == 1 else data
        if feature_names is None:
            raise RowShapeError("a numpy array has no feature names; pass feature_names= to monitor()")
        if matrix.ndim != 2 or matrix.shape[1] != len(feature_names):
            raise RowShapeError(f"array of shape {data.shape} does not match {len(feature_names)} feature names")
        return [dict(zip(feature_names, row, strict=True)) for row in matrix.tolist()]
    if _is_frame(data):
        return [{name: _plain(value) for name, value in row.items()} for row in data.to_dict("records")]
    if isinstance(data, Sequence) and not isinstance(data, str | bytes):
        rows = []
        for index, row in enumerate(data):
            if not isinstance(row, Mapping):
                raise RowShapeError(
                    f"row {index} of the batch is a {type(row).__name__}, not a mapping of feature name to value;"
                    " pass inputs= to monitor() to read this shape"
                )
            rows.append({name: _plain(value) for name, value in row.items()})
        return rows
    raise RowShapeError(
        f"cannot read feature rows from a {type(data).__name__}; pass a dict, a list of dicts, a DataFrame or a "
        "numpy array, or pass inputs= to monitor()"
    )


def predictions_and_scores(result: Any, n_rows: int) -> tuple[list[Any], list[float | None]]:
    """Per-row predictions and scores from a predict result.

    Understood shapes: a dict with `prediction` (and optional `score`) for one row; a sequence of such dicts; a
    sequence or 1-D array of plain predictions; a single plain prediction for one row. Scores are None when the
    result carries none.
    """
    if n_rows == 1 and (type(result) is dict or isinstance(result, Mapping)):  # the common one-row case, kept short
        if "prediction" not in result:
            raise RowShapeError("a result dict must have a 'prediction' key (and may have 'score')")
        score = result.get("score")
        prediction = result["prediction"]
        if type(prediction) not in _PLAIN_TYPES:
            prediction = _plain(prediction)
        return [prediction], [None if score is None else float(score)]
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
