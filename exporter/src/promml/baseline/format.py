"""The drift baseline: what the training data and the model's outputs on it looked like, ready for the exporter.

Numeric features get quantile bins (equal shares of the training data, so every bin is informative) with open
outer bins, so production values beyond the training range still land somewhere. Categorical features get their
training categories plus one "unseen" bucket whose reference share is 0, so a new category shows up as drift.
This module reads and validates baseline files (`load_baseline`, `parse_baseline`); `promml.baseline.builder`
writes them (`build_baseline`, `save_baseline`, the `promml baseline` command). Both are importable from
`promml.baseline`. The file format, its versions and their compatibility are documented in
docs/baseline.md.
"""

from __future__ import annotations

import json
import math
import numbers
import os
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from itertools import pairwise
from typing import Any

import numpy as np

from ..stats.calibration import Calibration

FORMAT_VERSION = 4
"""The version `build_baseline` writes (4 adds the score's calibration map)."""
READABLE_FORMAT_VERSIONS = (1, 2, 3, 4)
"""Versions `load_baseline` accepts; an older file loads with every newer field None or empty."""
DEFAULT_BINS = 10
DEFAULT_SAMPLE_SIZE = 5000
"""Values kept per numeric column for KS and Wasserstein: enough for a KS critical distance of about 0.02."""
DEFAULT_SAMPLE_SEED = 0
QUANTILES: dict[str, float] = {
    "p01": 0.01, "p05": 0.05, "p25": 0.25, "p50": 0.5, "p75": 0.75, "p95": 0.95, "p99": 0.99,
}
"""The summary quantiles of every numeric column: key in the file → probability (numpy's linear method)."""
TASKS = ("classification", "regression")
CLASSIFICATION_MAX_LABELS = 20
"""A target with at most this many distinct ints, strings or booleans is taken as classification by default."""
CLASSIFICATION_METRICS = ("accuracy", "precision", "recall", "f1", "roc_auc")
REGRESSION_METRICS = ("mae", "rmse", "mean_residual")
PERFORMANCE_SOURCES = ("training", "validation")
CALIBRATION_KINDS = ("positive_class", "correct_prediction")
"""What a calibration map's probability is of: the row being of the positive class (a binary model's score), or
the predicted class being right (a multi-class model's top-class score)."""
RATIO_SUM_TOLERANCE = 1e-6
"""Stored shares must sum to 1 within this; JSON round trips floats exactly, so only hand edits can miss it."""

class BaselineError(ValueError):
    """Training data or a baseline file that cannot be used; the message names the column, feature or key."""


def is_number(value: Any) -> bool:
    """Real numbers, numpy's included; booleans are not numbers here, they are two categories."""
    return isinstance(value, numbers.Real) and not isinstance(value, bool | np.bool_)


def is_missing(value: Any) -> bool:
    """None, "" and NaN are missing; so are pandas' NA and NaT, recognised by type so pandas need not be imported."""
    if value is None or (isinstance(value, str) and value == ""):
        return True
    if is_number(value):
        return math.isnan(value)
    return type(value).__name__ in ("NAType", "NaTType")


# --- The parsed form ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class NumericSummary:
    """A numeric column's training statistics over its finite values; `std` is the population std (ddof=0)."""

    count: int
    missing_ratio: float
    mean: float
    std: float
    minimum: float
    maximum: float
    quantiles: dict[str, float]
    """Keys "p01", "p05", "p25", "p50", "p75", "p95", "p99" (numpy's default linear interpolation)."""


@dataclass(frozen=True, eq=False)
class NumericReference:
    """A numeric feature's interior bin edges and the training share of each of the len(edges) + 1 bins."""

    edges: np.ndarray
    ref_ratios: np.ndarray
    summary: NumericSummary | None = None
    """None when read from a format-1 file."""
    sample: np.ndarray | None = None
    """A bounded uniform sample of the training values (float64, finite, sorted, read-only); None in format 1."""

    def bin_index(self, values: np.ndarray) -> np.ndarray:
        """Bin of each value: i when edges[i-1] <= x < edges[i]; 0 and len(edges) are open-ended.

        Pass finite values only (NaN would sort into the top bin).
        """
        return np.searchsorted(self.edges, np.asarray(values, dtype=float), side="right")


@dataclass(frozen=True, eq=False)
class CategoricalReference:
    """A categorical feature's training categories; `ref_ratios` has one more entry, the unseen bucket (0.0)."""

    categories: tuple[str, ...]
    ref_ratios: np.ndarray
    missing_ratio: float | None = None
    """Missing values / rows in the training data; None when read from a format-1 file."""
    _index: dict[str, int] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_index", {category: i for i, category in enumerate(self.categories)})

    @property
    def unseen_index(self) -> int:
        return len(self.categories)

    def bin_index(self, values: np.ndarray) -> np.ndarray:
        """Index of each value's category (compared as text), or `unseen_index` for a category not in training."""
        index, unseen = self._index, self.unseen_index
        return np.fromiter((index.get(str(value), unseen) for value in values), dtype=np.intp, count=len(values))


@dataclass(frozen=True)
class Baseline:
    """A validated baseline file: what the exporter bins and compares against."""

    model_name: str | None
    model_version: str | None
    target: str | None
    n_rows: int | None
    created_at: str | None
    numeric: dict[str, NumericReference]
    categorical: dict[str, CategoricalReference]
    format_version: int = 1
    score: NumericReference | None = None
    """The model's score on the reference data, binned like a numeric feature."""
    predicted_class: CategoricalReference | None = None
    """The distribution of predicted classes on the reference data, with the unseen bucket."""
    task: str | None = None
    """"classification", "regression" or None (no target and no prediction)."""
    performance: dict[str, float] = field(default_factory=dict)
    """Reference performance: accuracy, precision, recall, f1[, roc_auc] or mae, rmse, mean_residual."""
    sample_size: int | None = None
    """The capacity used for each numeric column's `sample`."""
    classes: tuple[str, ...] | None = None
    """A classifier's classes (as `promml.stats.performance.class_key` text): every class of the reference target
    and prediction; None before format 3. At most two classes make the model binary."""
    positive_class: str | None = None
    """The one positive class of a binary classifier, used by the builder's and the exporter's metrics alike;
    None before format 3 and for multi-class models."""
    calibration: Calibration | None = None
    """The score → probability map for confidence-based performance estimation; None before format 4 and when
    the reference data had no labelled scores (then the exporter exports no estimate)."""
    calibration_kind: str | None = None
    """One of `CALIBRATION_KINDS` when `calibration` is set."""
    calibration_source: str | None = None
    """"validation" or "training": the labelled rows the map was fitted on."""


# --- Validation -----------------------------------------------------------------------------------------------


def _read_only(values: list[float]) -> np.ndarray:
    array = np.asarray(values, dtype=float)
    array.setflags(write=False)
    return array


def _finite_number(value: Any) -> bool:
    return is_number(value) and math.isfinite(value)


def _ratio(value: Any) -> bool:
    return _finite_number(value) and 0 <= value <= 1


def _ratios(values: Any, where: str, key: str) -> np.ndarray:
    if not isinstance(values, list) or not values or not all(_finite_number(v) and v >= 0 for v in values):
        raise BaselineError(f"{where}: {key!r} must be a non-empty list of non-negative numbers")
    if abs(math.fsum(values) - 1) > RATIO_SUM_TOLERANCE:
        raise BaselineError(f"{where}: {key!r} must sum to 1, got {math.fsum(values)!r}")
    return _read_only(values)


def _summary(spec: Mapping[str, Any], where: str) -> NumericSummary:
    count = spec.get("count")
    if not isinstance(count, int) or isinstance(count, bool) or count < 1:
        raise BaselineError(f"{where}: 'count' must be a positive integer, got {count!r}")
    if not _ratio(spec.get("missing_ratio")):
        raise BaselineError(f"{where}: 'missing_ratio' must be a number from 0 to 1, got {spec.get('missing_ratio')!r}")
    for key in ("mean", "std", "min", "max"):
        if not _finite_number(spec.get(key)):
            raise BaselineError(f"{where}: {key!r} must be a finite number, got {spec.get(key)!r}")
    if spec["std"] < 0 or spec["min"] > spec["max"]:
        raise BaselineError(f"{where}: 'std' must be >= 0 and 'min' <= 'max'")
    quantiles = spec.get("quantiles")
    if (
        not isinstance(quantiles, dict)
        or set(quantiles) != set(QUANTILES)
        or not all(_finite_number(quantiles[key]) for key in QUANTILES)
        or any(quantiles[b] < quantiles[a] for a, b in pairwise(QUANTILES))
    ):
        raise BaselineError(f"{where}: 'quantiles' must map {', '.join(QUANTILES)} to non-decreasing finite numbers")
    return NumericSummary(
        count=count, missing_ratio=float(spec["missing_ratio"]), mean=float(spec["mean"]), std=float(spec["std"]),
        minimum=float(spec["min"]), maximum=float(spec["max"]),
        quantiles={key: float(quantiles[key]) for key in QUANTILES},
    )


def _sample(spec: Mapping[str, Any], where: str, count: int, sample_size: int) -> np.ndarray:
    sample = spec.get("sample")
    if not isinstance(sample, list) or not sample or not all(_finite_number(value) for value in sample):
        raise BaselineError(f"{where}: 'sample' must be a non-empty list of finite numbers")
    if len(sample) > min(count, sample_size):
        raise BaselineError(f"{where}: 'sample' has {len(sample)} values, more than 'count' ({count}) "
                            f"or the file's 'sample_size' ({sample_size})")
    return _read_only(sorted(sample))


def _numeric_reference(spec: Mapping[str, Any], where: str, sample_size: int | None) -> NumericReference:
    edges = spec.get("bin_edges")
    if (
        not isinstance(edges, list)
        or not edges
        or not all(_finite_number(edge) for edge in edges)
        or any(b <= a for a, b in pairwise(edges))
    ):
        raise BaselineError(f"{where}: 'bin_edges' must be a non-empty, strictly increasing list of finite numbers")
    ratios = _ratios(spec.get("ref_ratios"), where, "ref_ratios")
    if ratios.size != len(edges) + 1:
        raise BaselineError(f"{where}: 'ref_ratios' must have len(bin_edges) + 1 = {len(edges) + 1} entries, "
                            f"got {ratios.size}")
    if sample_size is None:  # format 1: bins only
        return NumericReference(_read_only(edges), ratios)
    summary = _summary(spec, where)
    return NumericReference(_read_only(edges), ratios, summary, _sample(spec, where, summary.count, sample_size))


def _categorical_reference(spec: Mapping[str, Any], where: str, version: int) -> CategoricalReference:
    categories = spec.get("categories")
    if not isinstance(categories, dict) or not categories:
        raise BaselineError(f"{where}: 'categories' must be a non-empty object mapping category → share")
    ratios = _ratios(list(categories.values()), where, "categories")
    missing_ratio = None
    if version >= 2:
        missing_ratio = spec.get("missing_ratio")
        if not _ratio(missing_ratio):
            raise BaselineError(f"{where}: 'missing_ratio' must be a number from 0 to 1, got {missing_ratio!r}")
        missing_ratio = float(missing_ratio)
    return CategoricalReference(tuple(categories), _read_only([*ratios.tolist(), 0.0]), missing_ratio)


def _optional(raw: Mapping[str, Any], key: str, kind: type, where: str) -> Any:
    value = raw.get(key)
    if value is not None and (not isinstance(value, kind) or isinstance(value, bool)):
        expected = "a string" if kind is str else "an integer"
        raise BaselineError(f"{where}: {key!r} must be {expected} or null, got {value!r}")
    return value


def _object_or_null(raw: Mapping[str, Any], key: str, where: str) -> dict[str, Any] | None:
    value = raw.get(key)
    if value is not None and not isinstance(value, dict):
        raise BaselineError(f"{where}: {key!r} must be an object or null")
    return value


def _performance(raw: Mapping[str, Any], source: str, task: str | None) -> dict[str, float]:
    spec = _object_or_null(raw, "performance", source)
    if spec is None:
        return {}
    where = f"{source}: 'performance'"
    if task is None:
        raise BaselineError(f"{where}: needs 'task' to be \"classification\" or \"regression\"")
    if spec.get("source") not in PERFORMANCE_SOURCES:
        raise BaselineError(f"{where}: 'source' must be one of {', '.join(PERFORMANCE_SOURCES)}")
    rows = spec.get("n_rows")
    if not isinstance(rows, int) or isinstance(rows, bool) or rows < 1:
        raise BaselineError(f"{where}: 'n_rows' must be a positive integer, got {rows!r}")
    metrics = spec.get("metrics")
    allowed = CLASSIFICATION_METRICS if task == "classification" else REGRESSION_METRICS
    if not isinstance(metrics, dict) or not metrics or not all(_finite_number(v) for v in metrics.values()):
        raise BaselineError(f"{where}: 'metrics' must be a non-empty object mapping metric → finite number")
    unknown = sorted(set(metrics) - set(allowed))
    if unknown:
        raise BaselineError(f"{where}: unknown {task} metric {', '.join(map(repr, unknown))} "
                            f"(known: {', '.join(allowed)})")
    return {name: float(value) for name, value in metrics.items()}


def parse_baseline(raw: Any, source: str = "baseline") -> Baseline:
    """Validate a baseline already read from JSON; errors name `source`, the feature and the key."""
    if not isinstance(raw, dict):
        raise BaselineError(f"{source}: must be a JSON object")
    version = raw.get("format_version")
    if version not in READABLE_FORMAT_VERSIONS or isinstance(version, bool):
        *earlier, last = map(str, READABLE_FORMAT_VERSIONS)
        readable = f"{', '.join(earlier)} or {last}"
        raise BaselineError(f"{source}: 'format_version' must be {readable}, got {version!r}")
    sample_size = None
    if version >= 2:
        sample_size = raw.get("sample_size")
        if not isinstance(sample_size, int) or isinstance(sample_size, bool) or sample_size < 1:
            raise BaselineError(f"{source}: 'sample_size' must be a positive integer, got {sample_size!r}")
    features = raw.get("features")
    if not isinstance(features, dict) or not features:
        raise BaselineError(f"{source}: 'features' must be a non-empty object mapping feature name → definition")
    numeric: dict[str, NumericReference] = {}
    categorical: dict[str, CategoricalReference] = {}
    for name, spec in features.items():
        where = f"{source}: feature {name!r}"
        kind = spec.get("type") if isinstance(spec, dict) else None
        if kind == "numeric":
            numeric[name] = _numeric_reference(spec, where, sample_size)
        elif kind == "categorical":
            categorical[name] = _categorical_reference(spec, where, version)
        else:
            raise BaselineError(f"{where}: must be an object whose 'type' is \"numeric\" or \"categorical\"")
    n_rows = _optional(raw, "n_rows", int, source)
    if n_rows is not None and n_rows < 0:
        raise BaselineError(f"{source}: 'n_rows' must be a non-negative integer or null, got {n_rows!r}")
    baseline = Baseline(
        model_name=_optional(raw, "model_name", str, source),
        model_version=_optional(raw, "model_version", str, source),
        target=_optional(raw, "target", str, source),
        n_rows=n_rows,
        created_at=_optional(raw, "created_at", str, source),
        numeric=numeric,
        categorical=categorical,
        format_version=version,
    )
    if version == 1:
        return baseline
    return _with_newer_fields(baseline, raw, source, sample_size)


def _with_newer_fields(baseline: Baseline, raw: Mapping[str, Any], source: str, sample_size: int) -> Baseline:
    task = raw.get("task")
    if task is not None and task not in TASKS:
        raise BaselineError(f"{source}: 'task' must be \"classification\", \"regression\" or null, got {task!r}")
    for key in ("prediction_column", "score_column"):
        _optional(raw, key, str, source)
    score = _object_or_null(raw, "score", source)
    predicted_class = _object_or_null(raw, "predicted_class", source)
    performance = _performance(raw, source, task)
    if baseline.format_version == 2 and "mean_residual" in performance:
        # format 2 stored the mean of prediction − target; format 3 defines residual = label − prediction
        performance["mean_residual"] = -performance["mean_residual"]
    classes, positive_class = _classes(raw, source) if baseline.format_version >= 3 else (None, None)
    calibration, kind, origin = _calibration(raw, source) if baseline.format_version >= 4 else (None, None, None)
    return replace(
        baseline,
        calibration=calibration,
        calibration_kind=kind,
        calibration_source=origin,
        classes=classes,
        positive_class=positive_class,
        score=None if score is None else _numeric_reference(score, f"{source}: 'score'", sample_size),
        predicted_class=(None if predicted_class is None
                         else _categorical_reference(predicted_class, f"{source}: 'predicted_class'", 2)),
        task=task,
        performance=performance,
        sample_size=sample_size,
    )


def _classes(raw: Mapping[str, Any], source: str) -> tuple[tuple[str, ...] | None, str | None]:
    """Format 3's `classes` (a non-empty list of distinct strings, or null) and `positive_class` (one of them)."""
    classes = raw.get("classes")
    if classes is not None and (
        not isinstance(classes, list) or not classes or not all(isinstance(c, str) for c in classes)
        or len(set(classes)) != len(classes)
    ):
        raise BaselineError(f"{source}: 'classes' must be a non-empty list of distinct strings or null")
    positive_class = _optional(raw, "positive_class", str, source)
    if positive_class is not None and (classes is None or positive_class not in classes):
        raise BaselineError(f"{source}: 'positive_class' {positive_class!r} must be one of 'classes' ({classes!r})")
    return (None if classes is None else tuple(classes)), positive_class


def _calibration(raw: Mapping[str, Any], source: str) -> tuple[Calibration | None, str | None, str | None]:
    """Format 4's `calibration`: null, or an object with `kind`, `source`, `n_rows`, `bin_edges` (strictly
    increasing), `probabilities` (one more, non-decreasing, in [0, 1]) and `rows` (reference rows per bin)."""
    spec = _object_or_null(raw, "calibration", source)
    if spec is None:
        return None, None, None
    where = f"{source}: 'calibration'"
    kind, origin = spec.get("kind"), spec.get("source")
    if kind not in CALIBRATION_KINDS:
        raise BaselineError(f"{where}: 'kind' must be one of {', '.join(CALIBRATION_KINDS)}, got {kind!r}")
    if origin not in PERFORMANCE_SOURCES:
        raise BaselineError(f"{where}: 'source' must be one of {', '.join(PERFORMANCE_SOURCES)}, got {origin!r}")
    edges, probabilities, rows = spec.get("bin_edges"), spec.get("probabilities"), spec.get("rows")
    if not isinstance(edges, list) or not all(_finite_number(e) for e in edges) or any(
            b <= a for a, b in pairwise(edges)):
        raise BaselineError(f"{where}: 'bin_edges' must be a strictly increasing list of finite numbers")
    if not isinstance(probabilities, list) or len(probabilities) != len(edges) + 1 or not all(
            _ratio(p) for p in probabilities) or any(b < a for a, b in pairwise(probabilities)):
        raise BaselineError(f"{where}: 'probabilities' must be len(bin_edges) + 1 = {len(edges) + 1} "
                            "non-decreasing numbers from 0 to 1")
    if not isinstance(rows, list) or len(rows) != len(probabilities) or not all(
            isinstance(n, int) and not isinstance(n, bool) and n >= 0 for n in rows):
        raise BaselineError(f"{where}: 'rows' must be {len(probabilities)} non-negative integers")
    calibration = Calibration(edges=_read_only(edges), probabilities=_read_only(probabilities),
                              rows=np.asarray(rows, dtype=np.int64))
    return calibration, kind, origin


def load_baseline(path: str | os.PathLike[str]) -> Baseline:
    """Read and validate a baseline file; BaselineError (a ValueError) says what is wrong and where."""
    with open(path, encoding="utf-8") as file:
        text = file.read()
    try:
        raw = json.loads(text)
    except json.JSONDecodeError as error:
        raise BaselineError(f"{path}: not valid JSON ({error})") from None
    return parse_baseline(raw, str(path))
