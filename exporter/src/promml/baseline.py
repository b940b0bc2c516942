"""The drift baseline: each feature's distribution in the training data, in bins the exporter can count into.

Numeric features get quantile bins (equal shares of the training data, so every bin is informative) with open
outer bins, so production values beyond the training range still land somewhere. Categorical features get their
training categories plus one "unseen" bucket whose reference share is 0, so a new category shows up as drift.
`build_baseline` and `save_baseline` write the file once; `load_baseline` validates it and gives the exporter
ready-to-use bin references. The file format is documented in docs/baseline.md.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import numbers
import os
import sys
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from itertools import pairwise
from pathlib import Path
from typing import Any

import numpy as np

FORMAT_VERSION = 1
DEFAULT_BINS = 10
RATIO_SUM_TOLERANCE = 1e-6
"""Stored shares must sum to 1 within this; JSON round trips floats exactly, so only hand edits can miss it."""


class BaselineError(ValueError):
    """Training data or a baseline file that cannot be used; the message names the column, feature or key."""


# --- Building -------------------------------------------------------------------------------------------------


def _is_number(value: Any) -> bool:
    """Real numbers, numpy's included; booleans are not numbers here, they are two categories."""
    return isinstance(value, numbers.Real) and not isinstance(value, bool | np.bool_)


def _is_missing(value: Any) -> bool:
    """None, "" and NaN are missing; so are pandas' NA and NaT, recognised by type so pandas need not be imported."""
    if value is None or (isinstance(value, str) and value == ""):
        return True
    if _is_number(value):
        return math.isnan(value)
    return type(value).__name__ in ("NAType", "NaTType")


@dataclass
class _Column:
    """One column's non-missing values and how many were missing."""

    present: list[Any] | np.ndarray
    missing: int
    all_numbers: bool


def _split_column(values: Any) -> _Column:
    """Separate missing values; numeric numpy (and pandas) columns take a fast path without Python objects."""
    array = values.to_numpy() if hasattr(values, "to_numpy") else values
    if isinstance(array, np.ndarray) and array.ndim == 1 and array.dtype.kind in "iuf":
        missing = np.isnan(array) if array.dtype.kind == "f" else np.zeros(array.shape, dtype=bool)
        return _Column(array[~missing], int(missing.sum()), True)  # ints keep their type: category "3", not "3.0"
    present = [value for value in values if not _is_missing(value)]
    missing = len(values) - len(present)
    return _Column(present, missing, all(_is_number(value) for value in present))


def _column_length(name: str, values: Any) -> int:
    try:
        return len(values)
    except TypeError:
        raise BaselineError(f"column {name!r} must be a sequence of values, got {type(values).__name__}") from None


def _numeric_feature(name: str, column: _Column, n_rows: int, n_bins: int) -> dict[str, Any]:
    values = np.asarray(column.present, dtype=float)
    finite = np.isfinite(values)
    values = values[finite]  # ±inf cannot be binned by quantiles, and the exporter ignores them too
    if values.size == 0:
        raise BaselineError(f"feature {name!r} has no finite values; drop the column or fill it")
    edges = np.unique(np.quantile(values, np.arange(1, n_bins) / n_bins))
    counts = np.bincount(np.searchsorted(edges, values, side="right"), minlength=edges.size + 1)
    return {
        "type": "numeric",
        "count": int(values.size),
        "missing_ratio": (n_rows - values.size) / n_rows,
        "mean": float(values.mean()),
        "std": float(values.std()),
        "min": float(values.min()),
        "max": float(values.max()),
        "bin_edges": edges.tolist(),
        "ref_ratios": (counts / values.size).tolist(),
    }


def _categorical_feature(name: str, column: _Column, n_rows: int) -> dict[str, Any]:
    if len(column.present) == 0:
        raise BaselineError(f"feature {name!r} has no values; drop the column or fill it")
    counts = Counter(str(value) for value in column.present)
    total = len(column.present)
    ordered = sorted(counts.items(), key=lambda item: (-item[1], item[0]))  # most frequent first, then by name
    return {
        "type": "categorical",
        "count": total,
        "missing_ratio": column.missing / n_rows,
        "categories": {category: count / total for category, count in ordered},
    }


def build_baseline(
    columns: Mapping[str, Sequence[Any]],
    *,
    categorical: Iterable[str] = (),
    target: str | None = None,
    n_bins: int = DEFAULT_BINS,
    model_name: str | None = None,
    model_version: str | None = None,
) -> dict[str, Any]:
    """The baseline of the training data in `columns` (column name → values; a pandas DataFrame works too).

    Every column but `target` is a feature. A feature is categorical when listed in `categorical` or when any
    non-missing value is not a number (booleans count as categorical). Numeric features get up to `n_bins`
    quantile bins (fewer when ties make quantiles coincide). Raises BaselineError for unusable input.
    """
    if isinstance(n_bins, bool) or not isinstance(n_bins, int) or n_bins < 2:
        raise BaselineError(f"n_bins must be an integer of at least 2, got {n_bins!r}")
    data = dict(columns.items())
    categorical = set(categorical)
    for role, names in (("target", [] if target is None else [target]), ("categorical", sorted(categorical))):
        for name in names:
            if name not in data:
                raise BaselineError(f"{role} column {name!r} is not in the data (columns: {', '.join(map(str, data))})")
    feature_names = [name for name in data if name != target]
    if not feature_names:
        raise BaselineError("the data has no feature columns")
    lengths = {name: _column_length(name, values) for name, values in data.items()}
    n_rows = max(lengths.values())
    short = [name for name, length in lengths.items() if length != n_rows]
    if short:
        raise BaselineError(f"columns differ in length: {', '.join(map(repr, short))} have fewer than {n_rows} rows")
    if n_rows == 0:
        raise BaselineError("the data has no rows")
    features: dict[str, dict[str, Any]] = {}
    for name in feature_names:
        column = _split_column(data[name])
        if name in categorical or not column.all_numbers:
            features[str(name)] = _categorical_feature(name, column, n_rows)
        else:
            features[str(name)] = _numeric_feature(name, column, n_rows, n_bins)
    return {
        "format_version": FORMAT_VERSION,
        "created_at": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "model_name": model_name,
        "model_version": model_version,
        "n_rows": n_rows,
        "target": target,
        "features": features,
    }


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
    finally:
        partial.unlink(missing_ok=True)


# --- Loading --------------------------------------------------------------------------------------------------


def _read_only(values: list[float]) -> np.ndarray:
    array = np.asarray(values, dtype=float)
    array.setflags(write=False)
    return array


@dataclass(frozen=True, eq=False)
class NumericReference:
    """A numeric feature's interior bin edges and the training share of each of the len(edges) + 1 bins."""

    edges: np.ndarray
    ref_ratios: np.ndarray

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


def _finite_number(value: Any) -> bool:
    return _is_number(value) and math.isfinite(value)


def _ratios(values: Any, where: str, key: str) -> np.ndarray:
    if not isinstance(values, list) or not values or not all(_finite_number(v) and v >= 0 for v in values):
        raise BaselineError(f"{where}: {key!r} must be a non-empty list of non-negative numbers")
    if abs(math.fsum(values) - 1) > RATIO_SUM_TOLERANCE:
        raise BaselineError(f"{where}: {key!r} must sum to 1, got {math.fsum(values)!r}")
    return _read_only(values)


def _numeric_reference(spec: Mapping[str, Any], where: str) -> NumericReference:
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
    return NumericReference(_read_only(edges), ratios)


def _categorical_reference(spec: Mapping[str, Any], where: str) -> CategoricalReference:
    categories = spec.get("categories")
    if not isinstance(categories, dict) or not categories:
        raise BaselineError(f"{where}: 'categories' must be a non-empty object mapping category → share")
    ratios = _ratios(list(categories.values()), where, "categories")
    return CategoricalReference(tuple(categories), _read_only([*ratios.tolist(), 0.0]))


def _optional(raw: Mapping[str, Any], key: str, kind: type, where: str) -> Any:
    value = raw.get(key)
    if value is not None and (not isinstance(value, kind) or isinstance(value, bool)):
        expected = "a string" if kind is str else "an integer"
        raise BaselineError(f"{where}: {key!r} must be {expected} or null, got {value!r}")
    return value


def parse_baseline(raw: Any, source: str = "baseline") -> Baseline:
    """Validate a baseline already read from JSON; errors name `source`, the feature and the key."""
    if not isinstance(raw, dict):
        raise BaselineError(f"{source}: must be a JSON object")
    version = raw.get("format_version")
    if version != FORMAT_VERSION or isinstance(version, bool):
        raise BaselineError(f"{source}: 'format_version' must be {FORMAT_VERSION}, got {version!r}")
    features = raw.get("features")
    if not isinstance(features, dict) or not features:
        raise BaselineError(f"{source}: 'features' must be a non-empty object mapping feature name → definition")
    numeric: dict[str, NumericReference] = {}
    categorical: dict[str, CategoricalReference] = {}
    for name, spec in features.items():
        where = f"{source}: feature {name!r}"
        kind = spec.get("type") if isinstance(spec, dict) else None
        if kind == "numeric":
            numeric[name] = _numeric_reference(spec, where)
        elif kind == "categorical":
            categorical[name] = _categorical_reference(spec, where)
        else:
            raise BaselineError(f"{where}: must be an object whose 'type' is \"numeric\" or \"categorical\"")
    n_rows = _optional(raw, "n_rows", int, source)
    if n_rows is not None and n_rows < 0:
        raise BaselineError(f"{source}: 'n_rows' must be a non-negative integer or null, got {n_rows!r}")
    return Baseline(
        model_name=_optional(raw, "model_name", str, source),
        model_version=_optional(raw, "model_version", str, source),
        target=_optional(raw, "target", str, source),
        n_rows=n_rows,
        created_at=_optional(raw, "created_at", str, source),
        numeric=numeric,
        categorical=categorical,
    )


def load_baseline(path: str | os.PathLike[str]) -> Baseline:
    """Read and validate a baseline file; BaselineError (a ValueError) says what is wrong and where."""
    with open(path, encoding="utf-8") as file:
        text = file.read()
    try:
        raw = json.loads(text)
    except json.JSONDecodeError as error:
        raise BaselineError(f"{path}: not valid JSON ({error})") from None
    return parse_baseline(raw, str(path))


# --- Command line ---------------------------------------------------------------------------------------------


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data", required=True, metavar="CSV", help="training data as CSV with a header row")
    parser.add_argument("--out", required=True, metavar="JSON", help="where to write the baseline")
    parser.add_argument("--target", metavar="COL", help="the label column, excluded from the features")
    parser.add_argument("--categorical", default="", metavar="A,B",
                        help="comma-separated columns to treat as categorical even if they hold numbers")
    parser.add_argument("--bins", type=int, default=DEFAULT_BINS, metavar="N",
                        help=f"quantile bins per numeric feature (default {DEFAULT_BINS})")
    parser.add_argument("--model-name", help="model name recorded in the baseline")
    parser.add_argument("--model-version", help="model version recorded in the baseline")


def run(args: argparse.Namespace) -> int:
    """Build the baseline from `--data` and write it to `--out`; exit code 2 with a message for bad input."""
    categorical = [name.strip() for name in args.categorical.split(",") if name.strip()]
    try:
        if args.bins < 2:  # checked before reading the data, and named as the user typed it
            raise BaselineError(f"--bins must be at least 2, got {args.bins}")
        baseline = build_baseline(
            load_csv_columns(args.data),
            categorical=categorical,
            target=args.target,
            n_bins=args.bins,
            model_name=args.model_name,
            model_version=args.model_version,
        )
        save_baseline(baseline, args.out)
    except (BaselineError, OSError) as error:
        print(f"promml baseline: {error}", file=sys.stderr)
        return 2
    kinds = Counter(feature["type"] for feature in baseline["features"].values())
    print(
        f"wrote {args.out}: {baseline['n_rows']} rows, {kinds['numeric']} numeric and "
        f"{kinds['categorical']} categorical features"
        + (f", target {args.target!r}" if args.target else "")
    )
    return 0
