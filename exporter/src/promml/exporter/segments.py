"""Per-segment counts and the demographic parity ratio, kept per time slot so that they add up like everything else.

A segment feature splits a window's rows by value (`region="north"`, …). For each value four counts are kept:
rows, positive predictions (the prediction is `positive_class`), labelled rows and right labelled rows. Counts of
slots, windows and replicas add up, so a window's numbers are the sum of its slots' and a fleet's the sum of its
exporters'. A categorical feature's value is its text; a numeric feature's value is its baseline bin
(`[30, 41)`), so its values are as few as its bins. Rows whose value is missing belong to no segment.

Which values a window reports is chosen over the whole window, not per slot: each slot counts every value exactly,
up to `SLOT_VALUES_PER_REPORTED` × `max_values` distinct values per feature (memory stays bounded), and the window
sums the slots, reports its `max_values` values with the most rows (ties by name), each with its exact counts, and
sums the others into `OTHER_VALUE`. Capping per slot instead would count a value under `OTHER_VALUE` in every slot
where it came after the cap was reached (with polls of a few rows, most of its rows), and report a value outside
the true top while leaving out one inside. Only a slot with more distinct values than its cap counts the extra
ones under `OTHER_VALUE` itself (the values it already holds stay, new ones are taken most frequent first); those
rows are the window's `overflow` (`ml_segment_overflow_rows`): while it is 0, every reported count is exact.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from itertools import pairwise
from typing import Any

import numpy as np

from ..baseline import CategoricalReference, NumericReference
from . import state as st

MAX_SEGMENT_FEATURES = 5
"""Segment features per exporter: each adds up to `max_segment_values` + 1 series per window to every segment
family, so a handful keeps the exporter's series count in check."""
DEFAULT_MAX_SEGMENT_VALUES = 20
"""Values reported per segment feature and window (and kept per slot); the rest are counted as `OTHER_VALUE`."""
DEFAULT_MIN_SEGMENT_ROWS = 30
"""Rows a value needs in a window to take part in the demographic parity ratio: a positive rate from fewer rows
is mostly noise (its standard error near 0.5 is 0.09 at 30 rows)."""
OTHER_VALUE = "__other__"
SLOT_VALUES_PER_REPORTED = 4
"""A slot counts up to this many times `max_segment_values` distinct values per segment feature exactly (80 by
default): a fairness segment has a handful of values, so in practice every value is counted exactly, while a
feature with thousands of values cannot grow a slot without bound (it holds at most 80 count vectors)."""
MAX_VALUE_LENGTH = 256
"""Longest segment value kept as its own text (in characters, so at most 1 KiB of UTF-8: within the
`label_value_length_limit` of prometheus/prometheus.yml); a longer one is counted as `OTHER_VALUE`, so one client
cannot make each held value, and each exported label, arbitrarily large."""

ROWS, POSITIVE, LABELED, CORRECT = range(4)
"""Positions of the four counts in a value's count vector."""


MIN_LABEL_DIGITS = 6
"""Significant digits of the edges in a numeric segment's labels, more when needed to tell the edges apart."""


def edge_texts(edges: Sequence[float]) -> list[str]:
    """The edges as text with the fewest significant digits (at least `MIN_LABEL_DIGITS`) that keep distinct edges
    distinct: epoch-like edges 1.7e+09 and 1.7000001e+09 need 8 digits, and 17 always suffice for floats."""
    for digits in range(MIN_LABEL_DIGITS, 18):
        texts = [f"{edge:.{digits}g}" for edge in edges]
        if len(set(texts)) == len(set(edges)):
            return texts
    return [repr(float(edge)) for edge in edges]


def bin_labels(edges: Sequence[float]) -> list[str]:
    """The value name of each bin of a numeric baseline feature: `[a, b)`, open at both ends ("-inf", "+inf"); one
    distinct name per bin (see `edge_texts`)."""
    bounds = ["-inf", *edge_texts(edges), "+inf"]
    return [f"({low}, {high})" if low == "-inf" else f"[{low}, {high})" for low, high in pairwise(bounds)]


def segment_values(reference: NumericReference | CategoricalReference, values: Iterable[Any]) -> list[str | None]:
    """Each row's segment value (None when missing): categorical values as text, numbers as their baseline bin."""
    if isinstance(reference, CategoricalReference):
        texts = [None if value is None or value == "" else str(value) for value in values]
        return [OTHER_VALUE if text is not None and len(text) > MAX_VALUE_LENGTH else text for text in texts]
    labels = bin_labels(reference.edges)
    result: list[str | None] = []
    numbers: list[float] = []
    positions: list[int] = []
    for position, value in enumerate(values):
        result.append(None)
        kind = type(value)
        if (kind is float or kind is int) and math.isfinite(value):
            numbers.append(value)
            positions.append(position)
    for position, index in zip(positions, reference.bin_index(np.asarray(numbers, dtype=float)).tolist(),
                               strict=True):
        result[position] = labels[index]
    return result


class SegmentTable:
    """One segment feature's counts in one slot: value → [rows, positive, labelled, correct], at most `max_values`
    values besides `OTHER_VALUE`."""

    __slots__ = ("counts", "max_values")

    def __init__(self, max_values: int) -> None:
        self.max_values = max_values
        self.counts: dict[str, np.ndarray] = {}

    def add_rows(self, values: Sequence[str | None], positive: np.ndarray) -> list[str | None]:
        """Count a batch of rows (`positive`: per row, whether it predicted the positive class); returns the value
        each row was counted under (its own, `OTHER_VALUE` or None), for its label to join later."""
        codes: dict[str | None, int] = {}
        row_codes = np.fromiter((codes.setdefault(value, len(codes)) for value in values), dtype=np.intp,
                                count=len(values))
        rows = np.bincount(row_codes, minlength=len(codes))
        positives = np.bincount(row_codes, weights=positive, minlength=len(codes)).astype(np.int64)
        counts = self.counts
        kept_here = sum(1 for value in counts if value != OTHER_VALUE)
        order = sorted(codes.items(), key=lambda item: (item[0] not in counts, -rows[item[1]]))
        counted_as: list[str | None] = [None] * len(codes)
        for value, code in order:
            if value is None:
                continue
            if value not in counts:
                if kept_here >= self.max_values:
                    value = OTHER_VALUE
                else:
                    kept_here += 1
            target = counts.get(value)
            if target is None:
                target = counts[value] = np.zeros(4, dtype=np.int64)
            target[ROWS] += rows[code]
            target[POSITIVE] += positives[code]
            counted_as[code] = value
        return [counted_as[code] for code in row_codes.tolist()]

    def to_state(self) -> dict[str, list[int]]:
        """value → [rows, positive, labelled, correct], for the checkpoint."""
        return {value: [int(n) for n in counts.tolist()] for value, counts in self.counts.items()}

    @classmethod
    def from_state(cls, state: Any, max_values: int, where: str, max_rows: int = st.MAX_COUNT) -> SegmentTable:
        """A table as saved by `to_state`: at most `max_values` values besides `OTHER_VALUE`, each with positive
        and labelled rows at most its rows, and right ones at most its labelled ones."""
        table = cls(max_values)
        entries = st.mapping(state, where, max_values + 1)
        for value, raw in entries.items():
            name = st.text(value, f"{where} value")
            counts = st.counts_from_state(raw, f"{where}.{name[:40]}", 4, max_rows)
            if counts[POSITIVE] > counts[ROWS] or counts[LABELED] > counts[ROWS] or counts[CORRECT] > counts[LABELED]:
                raise st.InvalidState(f"{where}.{name[:40]}: counts out of range ({counts.tolist()})")
            table.counts[name] = counts
        if sum(value != OTHER_VALUE for value in table.counts) > max_values:
            raise st.InvalidState(f"{where}: more than {max_values} values")
        return table

    def add_label(self, value: str, right: bool) -> None:
        """Count a label joined to a row counted under `value`."""
        target = self.counts.get(value)
        if target is not None:
            target[LABELED] += 1
            target[CORRECT] += right


@dataclass(frozen=True)
class SegmentValue:
    """One segment value's counts in a window."""

    rows: int
    positive: int
    labeled: int
    correct: int

    @property
    def positive_rate(self) -> float:
        """Share of the rows predicted as the positive class; NaN without rows."""
        return self.positive / self.rows if self.rows else math.nan

    @property
    def accuracy(self) -> float:
        """Share of the labelled rows whose prediction was right; NaN without labels."""
        return self.correct / self.labeled if self.labeled else math.nan


def window_values(tables: Iterable[SegmentTable], max_values: int) -> tuple[dict[str, SegmentValue], int]:
    """One feature's counts over a window's slots: the `max_values` values with the most rows (ties by name), the
    others summed into `OTHER_VALUE`; and the rows the slots themselves counted under `OTHER_VALUE` (overflow)."""
    totals: dict[str, np.ndarray] = {}
    for table in tables:
        for value, counts in table.counts.items():
            if value in totals:
                totals[value] = totals[value] + counts
            else:
                totals[value] = counts.copy()
    other = totals.pop(OTHER_VALUE, np.zeros(4, dtype=np.int64))
    overflow = int(other[ROWS])
    ranked = sorted(totals, key=lambda value: (-int(totals[value][ROWS]), value))
    for value in ranked[max_values:]:
        other = other + totals.pop(value)
    if other[ROWS]:
        totals[OTHER_VALUE] = other
    return {value: SegmentValue(*(int(n) for n in counts)) for value, counts in sorted(totals.items())}, overflow


def parity_ratio(values: Mapping[str, SegmentValue], min_rows: int) -> float:
    """Demographic parity ratio: the lowest positive rate over the highest, among the values with at least
    `min_rows` rows (`OTHER_VALUE`, a mix of values, left out). NaN with fewer than two such values, or when none
    of them has a positive prediction (no rate to compare against: 0 / 0, as in PromQL)."""
    rates = [stats.positive_rate for value, stats in values.items()
             if value != OTHER_VALUE and stats.rows >= min_rows]
    highest = max(rates, default=0.0)
    return min(rates) / highest if len(rates) >= 2 and highest else math.nan
