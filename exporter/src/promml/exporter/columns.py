"""Prediction records column by column: the form in which the exporter adds rows to its window.

Why: the window bins whole columns with numpy, so rows arrive as columns. The fast scanner (`scan.py`) writes
them so directly from log lines; records decoded one by one (`Prediction`s) are turned into the same form here,
so there is one way to bin, whichever way a row was read.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from contextlib import suppress
from dataclasses import dataclass, field
from itertools import chain
from operator import itemgetter
from typing import Any

import numpy as np

from ..records import Prediction

MISSING_FEATURE = "missing_feature"
WRONG_TYPE = "wrong_type"
UNKNOWN_FEATURE = "unknown_feature"

_NUMBER_OR_NULL = frozenset({int, float, type(None)})
_ABSENT = object()


@dataclass
class PredictionColumns:
    """Rows of prediction records of one model, a list or array per field.

    `numeric` holds the baseline's numeric features in its order (NaN where a value is null, absent, of the wrong
    type or not finite) and `categorical` a list per categorical feature (None where a value is absent). `issues`
    says which of those values were absent or of the wrong type, and which rows carried features the baseline does
    not have, as (row, feature, reason) with the reasons of `ml_schema_violations`."""

    ids: list[str]
    timestamps: np.ndarray
    predictions: list[Any]
    scores: list[float | None]
    numeric: np.ndarray
    categorical: list[list[Any]]
    issues: list[tuple[int, str, str]] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.ids)

    def take(self, rows: np.ndarray) -> PredictionColumns:
        """The given rows (distinct positions), in the given order, as columns of their own."""
        positions = rows.tolist()
        renumbered = {row: new for new, row in enumerate(positions)} if self.issues else {}
        issues = [(renumbered[row], name, why) for row, name, why in self.issues if row in renumbered]
        return PredictionColumns(
            ids=[self.ids[row] for row in positions],
            timestamps=self.timestamps[rows],
            predictions=[self.predictions[row] for row in positions],
            scores=[self.scores[row] for row in positions],
            numeric=self.numeric[rows],
            categorical=[[values[row] for row in positions] for values in self.categorical],
            issues=sorted(issues, key=itemgetter(0)),  # in row order, as they were noted
        )

    @staticmethod
    def concat(parts: Sequence[PredictionColumns]) -> PredictionColumns:
        """The rows of every part, one part after the other (at least one part, all of one baseline)."""
        kept = [part for part in parts if len(part)] or [parts[0]]
        if len(kept) == 1:
            return kept[0]
        offsets = np.cumsum([0, *(len(part) for part in kept[:-1])]).tolist()
        return PredictionColumns(
            ids=[value for part in kept for value in part.ids],
            timestamps=np.concatenate([part.timestamps for part in kept]),
            predictions=[value for part in kept for value in part.predictions],
            scores=[value for part in kept for value in part.scores],
            numeric=np.concatenate([part.numeric for part in kept]),
            categorical=[[value for part in kept for value in part.categorical[column]]
                         for column in range(len(kept[0].categorical))],
            issues=[(row + offset, name, why) for part, offset in zip(kept, offsets, strict=True)
                    for row, name, why in part.issues],
        )

    @staticmethod
    def empty(numeric: int, categorical: int) -> PredictionColumns:
        return PredictionColumns([], np.empty(0), [], [], np.empty((0, numeric)), [[] for _ in range(categorical)])


def numeric_matrix(features: list[dict[str, Any]], names: tuple[str, ...]) -> np.ndarray | None:
    """Every row's numeric features as one float matrix (null as NaN), built in C: the common case of rows that
    carry every numeric feature as a number or null. None when any row does not (a feature absent, text, a
    boolean, an integer too large for a float)."""
    if not names or not features:
        return np.empty((len(features), len(names)))
    getter = itemgetter(*names)
    try:
        rows = list(map(getter, features))
    except KeyError:
        return None
    if len(names) == 1:
        rows = [(value,) for value in rows]
    if not _NUMBER_OR_NULL.issuperset(map(type, chain.from_iterable(rows))):
        return None
    try:
        return np.array(rows, dtype=float)
    except (OverflowError, ValueError):
        return None


def _numeric_column(features: list[dict[str, Any]], name: str, issues: list[tuple[int, str, str]]) -> np.ndarray:
    """One numeric feature value by value, noting absent and wrongly typed values (booleans and text are wrong;
    an empty text is missing, as null is)."""
    column = np.full(len(features), np.nan)
    for row, values in enumerate(features):
        value = values.get(name, _ABSENT)
        kind = type(value)
        if kind is float or kind is int:
            with suppress(OverflowError):  # an integer too large for a float: not a finite number, so missing
                column[row] = value
        elif value is _ABSENT:
            issues.append((row, name, MISSING_FEATURE))
        elif value is not None and value != "":
            issues.append((row, name, WRONG_TYPE))
    return column


def columns_of(
    predictions: Iterable[Prediction], numeric: Sequence[str], categorical: Sequence[str]
) -> PredictionColumns:
    """Decoded records as columns for a baseline with these numeric and categorical features."""
    rows = list(predictions)
    features = [row.features for row in rows]
    numeric = tuple(numeric)
    issues: list[tuple[int, str, str]] = []
    known = frozenset([*numeric, *categorical])
    if not known.issuperset(chain.from_iterable(features)):  # the usual case, decided in one C loop over all names
        issues.extend((row, name, UNKNOWN_FEATURE)
                      for row, values in enumerate(features) for name in values if name not in known)
    matrix = numeric_matrix(features, numeric)
    if matrix is None:
        matrix = np.column_stack([_numeric_column(features, name, issues) for name in numeric])
    categories = []
    for name in categorical:
        categories.append([values.get(name) for values in features])
        issues.extend((row, name, MISSING_FEATURE) for row, values in enumerate(features) if name not in values)
    return PredictionColumns(
        ids=[row.prediction_id for row in rows],
        timestamps=np.fromiter((row.timestamp for row in rows), dtype=float, count=len(rows)),
        predictions=[row.prediction for row in rows],
        scores=[row.score for row in rows],
        numeric=matrix,
        categorical=categories,
        issues=issues,
    )
