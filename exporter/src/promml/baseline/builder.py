"""Building the baseline file (format 4) from training data, from Python or as `promml baseline`.

Every column is a feature except the target, the model's prediction and its score. Features are summarised as
bins, statistics and a bounded sample; the prediction and score columns (the model's outputs on the reference
data) as the distributions prediction drift is measured against; target and prediction together as the
reference performance. The layout is documented in docs/baseline.md; `promml.baseline` reads it back.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import json
import math
import os
import sys
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

from ..stats.binning import numeric_bin_edges
from ..stats.calibration import fit_calibration
from ..stats.performance import (
    class_key,
    classification_metrics,
    regression_metrics,
    residual_sums,
    roc_auc,
)
from .format import (
    CLASSIFICATION_MAX_LABELS,
    DEFAULT_BINS,
    DEFAULT_SAMPLE_SEED,
    DEFAULT_SAMPLE_SIZE,
    FORMAT_VERSION,
    QUANTILES,
    TASKS,
    BaselineError,
    is_missing,
    is_number,
)

Columns = Mapping[str, Any]
"""Column name → values (a list, a numpy array or a pandas Series); a pandas DataFrame is one too."""


# --- Columns --------------------------------------------------------------------------------------------------


@dataclass
class _Column:
    """One column's non-missing values and how many were missing."""

    present: list[Any] | np.ndarray
    missing: int
    all_numbers: bool


def _numpy_numbers(values: Any) -> np.ndarray | None:
    """The column as a numeric numpy array when it already is one (numpy or pandas), else None."""
    array = values.to_numpy() if hasattr(values, "to_numpy") else values
    if isinstance(array, np.ndarray) and array.ndim == 1 and array.dtype.kind in "iuf":
        return array
    return None


def _split_column(values: Any) -> _Column:
    """Separate missing values; numeric numpy (and pandas) columns take a fast path without Python objects."""
    array = _numpy_numbers(values)
    if array is not None:
        missing = np.isnan(array) if array.dtype.kind == "f" else np.zeros(array.shape, dtype=bool)
        return _Column(array[~missing], int(missing.sum()), True)  # ints keep their type: category "3", not "3.0"
    present = [value for value in values if not is_missing(value)]
    missing = len(values) - len(present)
    return _Column(present, missing, all(is_number(value) for value in present))


def _to_float(value: Any) -> float | None:
    """A value forced to a number: numbers and booleans (0/1) as they are, text parsed by float(); else None."""
    if is_number(value) or isinstance(value, bool | np.bool_):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return None
    return None


def _as_numbers(values: Any) -> tuple[np.ndarray, list[Any]]:
    """The column as floats (missing → NaN) and the values that are not numbers, which also become NaN."""
    array = _numpy_numbers(values)
    if array is not None:
        return array.astype(float), []
    numbers = np.full(len(values), np.nan)
    junk: list[Any] = []
    for i, value in enumerate(values):
        if is_missing(value):
            continue
        number = _to_float(value)
        if number is None:
            junk.append(value)
        else:
            numbers[i] = number
    return numbers, junk


def _strict_numbers(label: str, values: Any) -> np.ndarray:
    """A column that must hold numbers (a score, a regression target or prediction); missing → NaN."""
    array = _numpy_numbers(values)
    if array is not None:
        return array.astype(float)
    numbers = np.full(len(values), np.nan)
    for i, value in enumerate(values):
        if is_missing(value):
            continue
        if not is_number(value):
            raise BaselineError(f"{label} must hold numbers, found {value!r}")
        numbers[i] = float(value)
    return numbers


def _column_length(name: str, values: Any) -> int:
    try:
        return len(values)
    except TypeError:
        raise BaselineError(f"column {name!r} must be a sequence of values, got {type(values).__name__}") from None


def _row_count(data: Mapping[str, Any], what: str) -> int:
    lengths = {name: _column_length(name, values) for name, values in data.items()}
    n_rows = max(lengths.values(), default=0)
    short = [name for name, length in lengths.items() if length != n_rows]
    if short:
        raise BaselineError(f"{what}: columns differ in length: {', '.join(map(repr, short))} "
                            f"have fewer than {n_rows} rows")
    if n_rows == 0:
        raise BaselineError(f"{what} has no rows")
    return n_rows


# --- Per-column summaries -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _NumericOptions:
    n_bins: int
    sample_size: int
    seed: int


def _numeric_spec(label: str, values: np.ndarray, n_rows: int, options: _NumericOptions) -> dict[str, Any]:
    """Bins, statistics and sample of a numeric column given as floats; NaN and ±inf count as missing."""
    finite = values[np.isfinite(values)]  # ±inf cannot be binned by quantiles, and the exporter ignores them too
    if finite.size == 0:
        raise BaselineError(f"{label} has no finite values; drop the column or fill it")
    edges = numeric_bin_edges(finite, options.n_bins)
    counts = np.bincount(np.searchsorted(edges, finite, side="right"), minlength=edges.size + 1)
    if finite.size > options.sample_size:  # a fresh generator per column: the sample does not depend on column order
        sample = np.random.default_rng(options.seed).choice(finite, size=options.sample_size, replace=False)
    else:
        sample = finite
    return {
        "type": "numeric",
        "count": int(finite.size),
        "missing_ratio": (n_rows - finite.size) / n_rows,
        "mean": float(np.mean(finite)),
        "std": float(np.std(finite)),
        "min": float(np.min(finite)),
        "max": float(np.max(finite)),
        "quantiles": dict(zip(QUANTILES, np.quantile(finite, list(QUANTILES.values())).tolist(), strict=True)),
        "bin_edges": edges.tolist(),
        "ref_ratios": (counts / finite.size).tolist(),
        "sample": np.sort(sample).tolist(),
    }


def _categorical_spec(label: str, column: _Column, n_rows: int) -> dict[str, Any]:
    if len(column.present) == 0:
        raise BaselineError(f"{label} has no values; drop the column or fill it")
    counts = Counter(str(value) for value in column.present)
    total = len(column.present)
    ordered = sorted(counts.items(), key=lambda item: (-item[1], item[0]))  # most frequent first, then by name
    return {
        "type": "categorical",
        "count": total,
        "missing_ratio": column.missing / n_rows,
        "categories": {category: count / total for category, count in ordered},
    }


def _feature_spec(
    name: str, values: Any, n_rows: int, kind: str | None, options: _NumericOptions
) -> dict[str, Any]:
    """One feature; `kind` is the override ("categorical" or "numeric") or None to detect it."""
    label = f"feature {name!r}"
    if kind == "numeric":
        numbers, junk = _as_numbers(values)
        return {**_numeric_spec(label, numbers, n_rows, options), "non_numeric": len(junk)}
    column = _split_column(values)
    if kind == "categorical" or not column.all_numbers:
        return _categorical_spec(label, column, n_rows)
    return _numeric_spec(label, np.asarray(column.present, dtype=float), n_rows, options)


# --- Task and performance -------------------------------------------------------------------------------------


def detect_task(values: Any) -> str:
    """"classification" when the non-missing values are at most 20 distinct ints, strings or booleans."""
    column = _split_column(values)
    present = column.present
    if isinstance(present, np.ndarray):
        declared = getattr(getattr(values, "dtype", None), "kind", "")  # pandas' nullable Int64 reads as floats
        labels_like = present.dtype.kind in ("i", "u") or declared in ("i", "u")
        distinct = np.unique(present).size if labels_like else 0
    else:
        labels_like = all(isinstance(value, int | str | np.integer | np.bool_) for value in present)
        distinct = len(set(present)) if labels_like else 0
    return "classification" if labels_like and distinct <= CLASSIFICATION_MAX_LABELS else "regression"


def _class_keys(values: list[Any]) -> list[str]:
    """Each label as its class (`class_key`): numbers by value, so 1, 1.0 and True are one class "1"."""
    return [class_key(value) for value in values]


def default_positive_class(classes: list[str]) -> str:
    """The positive class of a binary model when none is given: the larger label, compared as numbers when every
    class is a number (so "10" > "9"), else as text."""
    try:
        return max(classes, key=float)
    except ValueError:
        return max(classes)


def model_classes(task: str | None, target: Any, prediction: Any, positive_class: Any = None) -> tuple[
    list[str] | None, str | None
]:
    """(classes, positive class) of a classifier: the classes of its reference target and prediction, sorted (as
    numbers when all are), and the positive class given or, for at most two classes, the larger one."""
    if task != "classification":
        if positive_class is not None:
            raise BaselineError(f"positive_class is for classification, and the task is {task or 'unknown'} "
                                "(give --task classification with a target or prediction)")
        return None, None
    keys: set[str] = set()
    for column in (target, prediction):
        if column is not None:
            keys.update(_class_keys([value for value in _values(column) if not is_missing(value)]))
    try:
        classes = sorted(keys, key=float)
    except ValueError:
        classes = sorted(keys)
    if positive_class is not None:
        wanted = class_key(positive_class)
        if classes and wanted not in classes:
            raise BaselineError(f"positive class {wanted!r} is not one of the classes of the target and prediction "
                                f"({', '.join(map(repr, classes))})")
        return classes or None, wanted
    if not classes:
        return None, None
    return classes, default_positive_class(classes) if len(classes) <= 2 else None


def reference_performance(
    task: str, target: Any, prediction: Any, score: Any = None, *, names: tuple[str, str, str | None] = ("", "", None),
    classes: list[str] | None = None, positive_class: str | None = None,
) -> tuple[int, dict[str, float]]:
    """The rows used and the metrics of `prediction` against `target` (`score` for ROC AUC, binary only), as
    `promml.stats.performance` defines them for the exporter too.

    Rows where the target, the prediction or (if given) the score is missing are left out. Classification:
    accuracy, precision, recall, F1 (binary: of `positive_class`, by default the larger label; more classes:
    macro means over `classes`, by default those of the target and prediction) and ROC AUC; regression: MAE, RMSE
    and the mean residual (label − prediction).
    """
    target_name, prediction_name, score_name = names
    regression = task == "regression"
    score_values = None if score is None else _strict_numbers(f"score column {score_name!r}", score)
    if regression:
        truth_all = _strict_numbers(f"target column {target_name!r} (regression)", target)
        predicted_all = _strict_numbers(f"prediction column {prediction_name!r} (regression)", prediction)
        keep = np.isfinite(truth_all) & np.isfinite(predicted_all)
    else:
        target_list, prediction_list = _values(target), _values(prediction)
        pairs = zip(target_list, prediction_list, strict=True)
        keep = np.array([not (is_missing(t) or is_missing(p)) for t, p in pairs], dtype=bool)
    if score_values is not None and not regression:
        keep &= np.isfinite(score_values)
    rows = int(keep.sum())
    if rows == 0:
        raise BaselineError(f"no row has both the target {target_name!r} and the prediction {prediction_name!r}"
                            + (f" and the score {score_name!r}" if score_values is not None and not regression else ""))
    if regression:
        return rows, regression_metrics(*residual_sums(truth_all[keep], predicted_all[keep]))
    indices = np.flatnonzero(keep)
    truth = _class_keys([target_list[i] for i in indices])
    predicted = _class_keys([prediction_list[i] for i in indices])
    if classes is None:
        classes, positive_class = model_classes(task, truth, predicted, positive_class)
    assert classes is not None  # the kept rows have classes
    positive = positive_class if positive_class is not None else default_positive_class(classes)
    metrics = classification_metrics(Counter(zip(truth, predicted, strict=True)), classes, positive)
    if score_values is not None and len(classes) <= 2:
        auc = roc_auc(np.array([label == positive for label in truth], dtype=bool), score_values[keep])
        if not math.isnan(auc):  # AUC needs both classes in the target
            metrics["roc_auc"] = auc
    return rows, metrics


def reference_calibration(
    target: Any, prediction: Any, score: Any, *, classes: list[str], positive_class: str | None,
    source: str, score_name: str = "",
) -> dict[str, Any] | None:
    """The calibration map of the score (`promml.stats.calibration`) fitted on the labelled rows, as stored in the
    file; None when no row has a target, a prediction and a finite score.

    Binary model (at most two classes): the probability that the row is of `positive_class`, from the score,
    which is then the positive class's score. Multi-class: the probability that the predicted class is right,
    from the score, which is then the top class's score (what the prediction log holds for such a model).
    """
    scores = _strict_numbers(f"score column {score_name!r}", score)
    target_list, prediction_list = _values(target), _values(prediction)
    keep = np.isfinite(scores) & np.array(
        [not (is_missing(t) or is_missing(p)) for t, p in zip(target_list, prediction_list, strict=True)], dtype=bool)
    indices = np.flatnonzero(keep)
    if indices.size == 0:
        return None
    truth = _class_keys([target_list[i] for i in indices])
    binary = len(classes) <= 2
    if binary:
        positive = positive_class if positive_class is not None else default_positive_class(classes)
        labels = np.array([label == positive for label in truth], dtype=int)
    else:
        predicted = _class_keys([prediction_list[i] for i in indices])
        labels = np.array([t == p for t, p in zip(truth, predicted, strict=True)], dtype=int)
    calibration = fit_calibration(scores[keep], labels)
    return {
        "kind": "positive_class" if binary else "correct_prediction",
        "method": "isotonic",
        "source": source,
        "n_rows": int(indices.size),
        "bin_edges": calibration.edges.tolist(),
        "probabilities": calibration.probabilities.tolist(),
        "rows": calibration.rows.tolist(),
    }


def _values(values: Any) -> list[Any]:
    return values.tolist() if hasattr(values, "tolist") else list(values)


# --- The baseline ---------------------------------------------------------------------------------------------


def _positive_int(name: str, value: Any, minimum: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise BaselineError(f"{name} must be an integer of at least {minimum}, got {value!r}")


def _check_columns(
    data: Mapping[str, Any], validation: Mapping[str, Any] | None, roles: dict[str, str],
    overrides: dict[str, set[str]],
) -> None:
    """Every named column exists, plays one role, and overrides name features only."""
    names = list(roles.values())
    for role, name in roles.items():
        if names.count(name) > 1:
            others = [other for other, column in roles.items() if column == name and other != role]
            raise BaselineError(f"the {role} and {others[0]} columns must differ, both are {name!r}")
        in_validation = validation is not None and name in validation
        if name not in data and (role == "target" or not in_validation):
            where = "the data" if validation is None or role == "target" else "the data or the validation data"
            raise BaselineError(f"{role} column {name!r} is not in {where} (columns: {', '.join(map(str, data))})")
    for option, columns in overrides.items():
        for name in sorted(columns):
            if name not in data:
                raise BaselineError(f"{option} column {name!r} is not in the data "
                                    f"(columns: {', '.join(map(str, data))})")
            role = next((role for role, column in roles.items() if column == name), None)
            if role is not None:
                raise BaselineError(f"{option} column {name!r} is the {role} column, not a feature")
    both = sorted(overrides["categorical"] & overrides["numeric"])
    if both:
        raise BaselineError(f"column {both[0]!r} cannot be both categorical and numeric")
    if validation is not None:
        for role in ("target", "prediction", "score"):
            if role in ("target", "prediction") and role not in roles:
                raise BaselineError(f"validation data needs a target and a prediction column; no {role} was given")
            if role in roles and roles[role] not in validation:
                raise BaselineError(f"{role} column {roles[role]!r} is not in the validation data "
                                    f"(columns: {', '.join(map(str, validation))})")


def build_baseline(
    columns: Columns,
    *,
    categorical: Iterable[str] = (),
    numeric: Iterable[str] = (),
    target: str | None = None,
    prediction: str | None = None,
    score: str | None = None,
    task: str | None = None,
    validation: Columns | None = None,
    n_bins: int = DEFAULT_BINS,
    sample_size: int = DEFAULT_SAMPLE_SIZE,
    seed: int = DEFAULT_SAMPLE_SEED,
    model_name: str | None = None,
    model_version: str | None = None,
    positive_class: Any = None,
) -> dict[str, Any]:
    """The baseline of the training data in `columns` (column name → values; a pandas DataFrame works too).

    Every column but `target`, `prediction` and `score` is a feature. A feature is categorical when listed in
    `categorical` or when any non-missing value is not a number (booleans count as categorical); listing it in
    `numeric` forces it numeric, values that are not numbers counting as missing. Numeric features get about
    `n_bins` quantile bins plus one bin of its own per point mass (`promml.stats.binning`), and a sample of at
    most `sample_size` values
    drawn with `seed`. `task` defaults to what the target (else the prediction) looks like. A classifier's
    classes are those of the target and prediction; `positive_class` defaults, for at most two classes, to the
    larger one, and is recorded for the exporter. Performance comes from
    `validation` (same column names) when given, else from the training data's target and prediction; so does the
    score's calibration map for estimated performance (`reference_calibration`), when `score` is given too.
    Raises BaselineError for unusable input.
    """
    _positive_int("n_bins", n_bins, 2)
    _positive_int("sample_size", sample_size, 1)
    _positive_int("seed", seed, 0)
    if task is not None and task not in TASKS:
        raise BaselineError(f"task must be one of {', '.join(TASKS)}, got {task!r}")
    data = dict(columns.items())
    checks = None if validation is None else dict(validation.items())
    roles = {role: name for role, name in (("target", target), ("prediction", prediction), ("score", score))
             if name is not None}
    overrides = {"categorical": set(categorical), "numeric": set(numeric)}
    _check_columns(data, checks, roles, overrides)
    feature_names = [name for name in data if name not in roles.values()]
    if not feature_names:
        raise BaselineError("the data has no feature columns")
    n_rows = _row_count(data, "the data")
    validation_rows = None if checks is None else _row_count(checks, "the validation data")
    options = _NumericOptions(n_bins, sample_size, seed)
    features = {}
    for name in feature_names:
        kind = next((option for option, names in overrides.items() if name in names), None)
        features[str(name)] = _feature_spec(name, data[name], n_rows, kind, options)

    def source_of(column: str) -> tuple[str, Mapping[str, Any], int]:
        if column in data:
            return "training", data, n_rows
        assert checks is not None and validation_rows is not None  # _check_columns: then it is in the validation data
        return "validation", checks, validation_rows

    if task is None and (target is not None or prediction is not None):
        task = detect_task(data[target] if target is not None else source_of(prediction)[1][prediction])
    predicted_class_spec = score_spec = performance = calibration = None
    classes, positive = model_classes(
        task, None if target is None else source_of(target)[1][target],
        None if prediction is None else source_of(prediction)[1][prediction], positive_class,
    )
    if prediction is not None and task == "classification":
        origin, table, rows = source_of(prediction)
        spec = _categorical_spec(f"prediction column {prediction!r}", _split_column(table[prediction]), rows)
        predicted_class_spec = {"column": prediction, "source": origin, **spec}
    score_column = score if score is not None else prediction if task == "regression" else None
    if score_column is not None:
        origin, table, rows = source_of(score_column)
        label = f"{'score' if score_column == score else 'prediction'} column {score_column!r}"
        spec = _numeric_spec(label, _strict_numbers(label, table[score_column]), rows, options)
        score_spec = {"column": score_column, "source": origin, **spec}
    if target is not None and prediction is not None:
        origin, table = ("validation", checks) if checks is not None else ("training", data)
        used, metrics = reference_performance(
            task, table[target], table[prediction], None if score is None else table[score],
            names=(target, prediction, score), classes=classes, positive_class=positive,
        )
        performance = {"source": origin, "n_rows": used, "metrics": metrics}
        if score is not None and task == "classification" and classes:
            calibration = reference_calibration(
                table[target], table[prediction], table[score], classes=classes, positive_class=positive,
                source=origin, score_name=score,
            )
    return {
        "format_version": FORMAT_VERSION,
        "created_at": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "model_name": model_name,
        "model_version": model_version,
        "n_rows": n_rows,
        "target": target,
        "prediction_column": prediction,
        "score_column": score,
        "task": task,
        "classes": classes,
        "positive_class": positive,
        "sample_size": sample_size,
        "sample_seed": seed,
        "features": features,
        "score": score_spec,
        "predicted_class": predicted_class_spec,
        "performance": performance,
        "calibration": calibration,
    }


# --- Files ----------------------------------------------------------------------------------------------------


def _parse_cell(text: str) -> Any:
    """Empty → None; integers → int and other numbers → float, so a category coded "3" keeps its name "3"."""
    if text == "":
        return None
    try:
        return int(text)
    except ValueError:
        pass
    try:
        return float(text)
    except ValueError:
        return text


def load_csv_columns(path: str | os.PathLike[str]) -> dict[str, list[Any]]:
    """The columns of a CSV file with a header row; raises BaselineError for a missing header or ragged rows."""
    with open(path, newline="", encoding="utf-8-sig") as file:
        reader = csv.reader(file)
        header = next(reader, None)
        if not header:
            raise BaselineError(f"{path}: no header row")
        duplicates = sorted({name for name in header if header.count(name) > 1})
        if duplicates:
            raise BaselineError(f"{path}: duplicate column names {', '.join(map(repr, duplicates))}")
        columns: dict[str, list[Any]] = {name: [] for name in header}
        for row in reader:
            if not row:
                continue  # blank line
            if len(row) != len(header):
                raise BaselineError(
                    f"{path}: line {reader.line_num} has {len(row)} fields, the header has {len(header)}"
                )
            for name, text in zip(header, row, strict=True):
                columns[name].append(_parse_cell(text))
    return columns


def save_baseline(baseline: Mapping[str, Any], path: str | os.PathLike[str]) -> None:
    """Write the baseline as JSON, atomically, so an exporter starting meanwhile never reads half a file."""
    text = json.dumps(baseline, indent=2, allow_nan=False) + "\n"
    target = Path(path)
    partial = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    try:
        partial.write_text(text, encoding="utf-8")
        os.replace(partial, target)
    except OSError as error:  # named by the path asked for, not the temporary file next to it
        raise BaselineError(f"cannot write {target}: {error.strerror or error}") from None
    finally:
        with contextlib.suppress(OSError):
            partial.unlink(missing_ok=True)


# --- Command line ---------------------------------------------------------------------------------------------


def _names(text: str) -> list[str]:
    return [name.strip() for name in text.split(",") if name.strip()]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data", required=True, metavar="CSV", help="training data as CSV with a header row")
    parser.add_argument("--out", required=True, metavar="JSON", help="where to write the baseline")
    parser.add_argument("--target", metavar="COL", help="the label column, excluded from the features")
    parser.add_argument("--prediction", metavar="COL",
                        help="the model's prediction on each row (not a feature): predicted-class distribution and, "
                             "with --target, the reference performance")
    parser.add_argument("--score", metavar="COL",
                        help="the model's score on each row (not a feature): score distribution and ROC AUC")
    parser.add_argument("--task", choices=TASKS,
                        help=f"override the task; default: classification when the target has at most "
                             f"{CLASSIFICATION_MAX_LABELS} distinct ints, strings or booleans, else regression")
    parser.add_argument("--positive-class", metavar="CLASS",
                        help="the positive class of a binary classifier (default: the larger label); recorded in "
                             "the baseline, and the exporter's positive_class must agree")
    parser.add_argument("--validation", metavar="CSV",
                        help="labelled validation data with the target and prediction (and score) columns: "
                             "the reference performance is computed from it instead of --data")
    parser.add_argument("--categorical", default="", metavar="A,B",
                        help="comma-separated columns to treat as categorical even if they hold numbers")
    parser.add_argument("--numeric", default="", metavar="A,B",
                        help="comma-separated columns to treat as numeric; values that are not numbers count as "
                             "missing")
    parser.add_argument("--bins", type=int, default=DEFAULT_BINS, metavar="N",
                        help=f"quantile bins per numeric feature (default {DEFAULT_BINS})")
    parser.add_argument("--sample-size", type=int, default=DEFAULT_SAMPLE_SIZE, metavar="N",
                        help=f"values sampled per numeric column for KS and Wasserstein "
                             f"(default {DEFAULT_SAMPLE_SIZE})")
    parser.add_argument("--seed", type=int, default=DEFAULT_SAMPLE_SEED, metavar="N",
                        help=f"seed of the samples (default {DEFAULT_SAMPLE_SEED})")
    parser.add_argument("--model-name", help="model name recorded in the baseline")
    parser.add_argument("--model-version", help="model version recorded in the baseline")


def _check_arguments(args: argparse.Namespace) -> None:
    """Numeric options, checked before reading any data and named as the user typed them."""
    for option, value, minimum in (("--bins", args.bins, 2), ("--sample-size", args.sample_size, 1),
                                   ("--seed", args.seed, 0)):
        if value < minimum:
            raise BaselineError(f"{option} must be at least {minimum}, got {value}")
    if args.validation is not None and not (args.target and args.prediction):
        raise BaselineError("--validation needs --target and --prediction: it is labelled data to score them on")


def _summary_line(args: argparse.Namespace, baseline: Mapping[str, Any]) -> str:
    kinds = Counter(feature["type"] for feature in baseline["features"].values())
    line = (f"wrote {args.out}: {baseline['n_rows']} rows, {kinds['numeric']} numeric and "
            f"{kinds['categorical']} categorical features")
    for role in ("target", "prediction", "score"):
        if getattr(args, role):
            line += f", {role} {getattr(args, role)!r}"
    performance = baseline["performance"]
    if performance:
        metrics = " ".join(f"{name}={value:.4g}" for name, value in performance["metrics"].items())
        line += (f"; {baseline['task']} performance on {performance['n_rows']} {performance['source']} rows: "
                 f"{metrics}")
    calibration = baseline["calibration"]
    if calibration:
        line += (f"; calibration ({calibration['kind']}) on {calibration['n_rows']} {calibration['source']} rows, "
                 f"{len(calibration['probabilities'])} bins")
    elif performance and baseline["task"] == "classification":
        line += "; no calibration, so the exporter estimates no performance before labels: give --score too"
    return line


TARGET_LIKE_COLUMNS = ("label", "target", "y", "class", "outcome")
"""Column names that are the target far more often than a feature: without `--target`, one of them is an error."""


def _check_target(args: argparse.Namespace, columns: Mapping[str, Any]) -> None:
    """Without `--target`, a column named like a target would silently become a feature (and drift on it)."""
    if args.target is not None:
        return
    suspects = [name for name in columns if name.strip().lower() in TARGET_LIKE_COLUMNS]
    if suspects:
        raise BaselineError(
            f"column {suspects[0]!r} looks like the target but no --target was given, so it would become a "
            f"feature: pass --target {suspects[0]} (or --target '' to build without a target and keep it a feature)"
        )


def run(args: argparse.Namespace) -> int:
    """Build the baseline from `--data` and write it to `--out`; exit code 2 with a message for bad input."""
    try:
        _check_arguments(args)
        columns = load_csv_columns(args.data)
        _check_target(args, columns)
        baseline = build_baseline(
            columns,
            categorical=_names(args.categorical),
            numeric=_names(args.numeric),
            target=args.target or None,
            prediction=args.prediction,
            score=args.score,
            task=args.task,
            validation=None if args.validation is None else load_csv_columns(args.validation),
            n_bins=args.bins,
            sample_size=args.sample_size,
            seed=args.seed,
            model_name=args.model_name,
            model_version=args.model_version,
            positive_class=None if args.positive_class is None else _parse_cell(args.positive_class),
        )
        save_baseline(baseline, args.out)
    except (BaselineError, OSError) as error:
        print(f"promml baseline: {error}", file=sys.stderr)
        return 2
    print(_summary_line(args, baseline))
    return 0
