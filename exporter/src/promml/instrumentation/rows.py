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


PROBABILITY_SUM_TOLERANCE = 1e-3
"""A row of class probabilities sums to 1 within this (float32 models round); anything else is not one."""


def class_scores(probabilities: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(predicted class index, score) per row of an (n_rows, n_classes) probability matrix.

    The prediction is the argmax (the column of the highest probability; ties go to the first, as numpy's argmax
    does). The score is the probability of the positive class (column 1) for two classes, and of the predicted
    (top) class otherwise, so the score histogram reads the same as `promml.monitor_estimator`'s.
    """
    top = probabilities.argmax(axis=1)
    if probabilities.shape[1] == 2:
        return top, probabilities[:, 1]
    return top, probabilities[np.arange(len(probabilities)), top]


def _probability_matrix(values: Any, n_rows: int, what: str) -> np.ndarray:
    """`values` as an (n_rows, n_classes) float matrix of per-row class probabilities, or RowShapeError."""
    try:
        matrix = np.asarray(values, dtype=float)
    except (TypeError, ValueError):
        raise RowShapeError(f"{what} holds rows promml cannot read as numbers; pass outputs= to monitor()") from None
    if matrix.ndim != 2 or matrix.shape[0] != n_rows or matrix.shape[1] < 2:
        raise RowShapeError(f"{what} has shape {matrix.shape} for {n_rows} input row(s); per-row class "
                            "probabilities need shape (rows, classes); pass outputs= to monitor() for other shapes")
    finite = matrix[np.isfinite(matrix).all(axis=1)]
    if ((finite < 0) | (finite > 1)).any() or (np.abs(finite.sum(axis=1) - 1) > PROBABILITY_SUM_TOLERANCE).any():
        raise RowShapeError(f"{what} has rows of several numbers that are not class probabilities (each in 0..1, "
                            "summing to 1); return one prediction per row, or pass outputs= to monitor()")
    return matrix


def _frame_outputs(frame: Any, n_rows: int) -> tuple[list[Any], list[float | None]]:
    """A DataFrame result: `prediction` (and `score`) columns, or one probability column per class."""
    if len(frame) != n_rows:
        raise RowShapeError(f"predict returned {len(frame)} row(s) for {n_rows} input row(s)")
    if "prediction" in frame.columns:
        predictions = [_plain(value) for value in frame["prediction"].tolist()]
        if "score" not in frame.columns:
            return predictions, [None] * n_rows
        return predictions, [None if value is None else float(value) for value in frame["score"].tolist()]
    top, scores = class_scores(_probability_matrix(frame.to_numpy(), n_rows, "the DataFrame predict returned"))
    return np.asarray(frame.columns)[top].tolist(), scores.tolist()


def _scalar(value: Any, where: str) -> Any:
    """A plain prediction (number, text, boolean or None), or RowShapeError naming what it is instead."""
    value = _plain(value)
    if value is None or isinstance(value, int | float | str | bool):
        return value
    raise RowShapeError(f"{where} is a {type(value).__name__}, not a prediction (a number, text or boolean); return "
                        "one per row, dicts with 'prediction' and 'score', or pass outputs= to monitor()")


def _one_per_row(values: Any, n_rows: int, what: str) -> list[Any]:
    items = values.tolist() if isinstance(values, np.ndarray) else list(values)
    if len(items) != n_rows:
        raise RowShapeError(f"{what} has {len(items)} value(s) for {n_rows} input row(s); return one per row, or "
                            "pass outputs= to monitor()")
    return items


def _pair(result: tuple[Any, Any], n_rows: int) -> tuple[Any, Any]:
    """A `(predictions, scores)` tuple: one of each per row, or one prediction and its score for one row. Scores
    may be per-row class probabilities, reduced as `class_scores` does."""
    predictions, scores = result
    if n_rows == 1 and not _is_many(predictions):
        return [_scalar(predictions, "the prediction")], [None if scores is None else _score(scores)]
    plain = [_scalar(value, "a prediction") for value in _one_per_row(predictions, n_rows, "the predictions")]
    if scores is None:
        return plain, [None] * n_rows
    if getattr(scores, "ndim", None) == 2 or (_is_many(scores) and len(scores) and _is_many(scores[0])):
        return plain, class_scores(_probability_matrix(scores, n_rows, "the scores"))[1]
    return plain, [None if score is None else _score(score) for score in _one_per_row(scores, n_rows, "the scores")]


def _score(value: Any) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        raise RowShapeError(f"a score is a {type(value).__name__}, not a number; pass outputs= to monitor()") from None


def _is_many(value: Any) -> bool:
    """A sequence or an array of at least one dimension (text is one value)."""
    if isinstance(value, np.ndarray) or (hasattr(value, "tolist") and getattr(value, "ndim", 0) >= 1):
        return getattr(value, "ndim", 0) >= 1
    return isinstance(value, Sequence) and not isinstance(value, str | bytes)


def predictions_and_scores(result: Any, n_rows: int) -> tuple[Any, Any]:
    """Per-row predictions and scores from a predict result (sequences or numpy arrays of n_rows).

    Understood shapes (docs/instrumentation.md): a dict with `prediction` (and optional `score`) for one row; a
    sequence of such dicts; a sequence, 1-D array or pandas Series of plain predictions; a single plain prediction
    for one row; per-row class probabilities (a 2-D array, a list of lists, `predict_proba`'s output), read by
    `class_scores`; a `(predictions, scores)` tuple; a DataFrame with `prediction` (and `score`) columns or one
    probability column per class. Anything else raises RowShapeError saying what to return or pass instead.
    Scores are None when the result carries none.
    """
    if n_rows == 1 and (type(result) is dict or isinstance(result, Mapping)):  # the common one-row case, kept short
        if "prediction" not in result:
            raise RowShapeError("a result dict must have a 'prediction' key (and may have 'score')")
        score = result.get("score")
        prediction = result["prediction"]
        if type(prediction) not in _PLAIN_TYPES:
            prediction = _scalar(prediction, "the 'prediction' of the result dict")
        return [prediction], [None if score is None else _score(score)]
    if isinstance(result, tuple) and len(result) == 2 and not (n_rows == 2 and not any(map(_is_many, result))):
        return _pair(result, n_rows)
    if _is_frame(result):
        return _frame_outputs(result, n_rows)
    if isinstance(result, np.ndarray) and result.ndim == 2 and result.shape[1] > 1:
        top, scores = class_scores(_probability_matrix(result, n_rows, "the array predict returned"))
        return (top.tolist(), scores.tolist()) if n_rows == 1 else (top, scores)
    if isinstance(result, Mapping):
        items: list[Any] = [result]
    elif isinstance(result, Sequence) and not isinstance(result, str | bytes):
        items = list(result)
    elif hasattr(result, "tolist") and getattr(result, "ndim", 0) >= 1:  # a numpy array or a pandas Series
        items = result.tolist()
        if getattr(result, "ndim", 0) == 2:  # one column: one value per row
            items = [row[0] for row in items]
    else:
        items = [result]
    if len(items) != n_rows:
        raise RowShapeError(f"predict returned {len(items)} result(s) for {n_rows} input row(s); return one per "
                            "row, or pass outputs= to monitor()")
    if items and isinstance(items[0], list | tuple | np.ndarray):  # per-row vectors: class probabilities
        top, scores = class_scores(_probability_matrix(items, n_rows, "the rows predict returned"))
        return top.tolist(), scores.tolist()
    predictions: list[Any] = []
    scores: list[float | None] = []
    for item in items:
        if isinstance(item, Mapping):
            if "prediction" not in item:
                raise RowShapeError("a result dict must have a 'prediction' key (and may have 'score')")
            predictions.append(_scalar(item["prediction"], "the 'prediction' of a result dict"))
            score = item.get("score")
            scores.append(None if score is None else _score(score))
        else:
            predictions.append(_scalar(item, "a prediction"))
            scores.append(None)
    return predictions, scores
