"""Segment values, per-slot tables with their cap, window totals and the demographic parity ratio."""

from __future__ import annotations

import math

import numpy as np
import pytest

from promml.baseline import CategoricalReference, NumericReference
from promml.exporter.segments import (
    OTHER_VALUE,
    SegmentTable,
    SegmentValue,
    bin_labels,
    parity_ratio,
    segment_values,
    window_values,
)

AGE = NumericReference(np.array([30.0, 45.5]), np.array([0.3, 0.4, 0.3]))
REGION = CategoricalReference(("north", "south"), np.array([0.5, 0.5, 0.0]))


def test_bin_labels_name_each_baseline_bin():
    assert bin_labels([30.0, 45.5]) == ["(-inf, 30)", "[30, 45.5)", "[45.5, +inf)"]
    assert bin_labels([]) == ["(-inf, +inf)"]


def test_segment_values_of_categorical_and_numeric_features():
    assert segment_values(REGION, ["north", "mars", 3, None, ""]) == ["north", "mars", "3", None, None]
    # a value too long to be held and exported as a label of its own
    assert segment_values(REGION, ["n" * 256, "n" * 257]) == ["n" * 256, "__other__"]
    # a value equal to an edge belongs to the bin it opens, as the baseline bins it; non-numbers are missing
    assert segment_values(AGE, [12, 30.0, 45.4, 45.5, 90.0, None, "40", True, math.inf]) == [
        "(-inf, 30)", "[30, 45.5)", "[30, 45.5)", "[45.5, +inf)", "[45.5, +inf)", None, None, None, None]


def test_table_keeps_the_most_frequent_new_values_and_counts_the_rest_as_other():
    table = SegmentTable(max_values=2)
    values = ["a", "b", "b", "c", "c", "c", None]
    positive = np.array([1, 0, 1, 1, 1, 0, 1], dtype=bool)
    assert table.add_rows(values, positive) == [OTHER_VALUE, "b", "b", "c", "c", "c", None]
    assert {value: counts.tolist() for value, counts in table.counts.items()} == {
        "c": [3, 2, 0, 0], "b": [2, 1, 0, 0], OTHER_VALUE: [1, 1, 0, 0]}
    # a later batch: the kept values stay even when rarer, new ones go to other
    assert table.add_rows(["d", "d", "b"], np.array([0, 0, 0], dtype=bool)) == [OTHER_VALUE, OTHER_VALUE, "b"]
    table.add_label("b", True)
    table.add_label(OTHER_VALUE, False)
    table.add_label("gone", True)  # a value the table does not hold: nothing to count
    assert {value: counts.tolist() for value, counts in table.counts.items()} == {
        "c": [3, 2, 0, 0], "b": [3, 1, 1, 1], OTHER_VALUE: [3, 1, 1, 0]}


def test_window_values_sum_slots_and_keep_the_largest_values():
    first, second = SegmentTable(5), SegmentTable(5)
    first.add_rows(["a", "a", "b", "c"], np.array([1, 0, 1, 0], dtype=bool))
    second.add_rows(["b", "b", "c", "d"], np.array([1, 1, 0, 0], dtype=bool))
    assert window_values([first, second], max_values=5) == ({
        "a": SegmentValue(2, 1, 0, 0), "b": SegmentValue(3, 3, 0, 0), "c": SegmentValue(2, 0, 0, 0),
        "d": SegmentValue(1, 0, 0, 0)}, 0)
    # two values: b (3 rows), then a and c tie at 2 and a wins by name; c and d go to other
    assert window_values([first, second], max_values=2) == ({
        OTHER_VALUE: SegmentValue(3, 0, 0, 0), "a": SegmentValue(2, 1, 0, 0), "b": SegmentValue(3, 3, 0, 0)}, 0)
    assert window_values([], max_values=2) == ({}, 0)


def test_window_values_report_what_a_full_slot_counted_as_other_as_overflow():
    full = SegmentTable(1)
    full.add_rows(["a", "a", "b"], np.array([0, 0, 1], dtype=bool))  # "b" came after the slot's cap: other
    values, overflow = window_values([full], max_values=5)
    assert values == {"a": SegmentValue(2, 0, 0, 0), OTHER_VALUE: SegmentValue(1, 1, 0, 0)}
    assert overflow == 1


def test_segment_value_rates():
    stats = SegmentValue(rows=40, positive=10, labeled=8, correct=6)
    assert (stats.positive_rate, stats.accuracy) == (0.25, 0.75)
    assert math.isnan(SegmentValue(0, 0, 0, 0).positive_rate) and math.isnan(SegmentValue(5, 1, 0, 0).accuracy)


def test_parity_ratio_is_lowest_over_highest_rate_of_values_with_enough_rows():
    values = {"a": SegmentValue(100, 50, 0, 0), "b": SegmentValue(50, 15, 0, 0), "c": SegmentValue(29, 0, 0, 0),
              OTHER_VALUE: SegmentValue(500, 1, 0, 0)}
    assert parity_ratio(values, min_rows=30) == pytest.approx(0.3 / 0.5, rel=1e-15)  # c too small, other a mix
    assert parity_ratio(values, min_rows=29) == 0.0
    assert math.isnan(parity_ratio(values, min_rows=60))  # a single value: nothing to compare
    assert math.isnan(parity_ratio({"a": SegmentValue(40, 0, 0, 0), "b": SegmentValue(40, 0, 0, 0)}, min_rows=30))


def test_bin_labels_of_close_edges_stay_distinct():
    edges = [1_700_000_000.0 + 100 * k for k in range(9)]  # epoch-like: 6 significant digits would merge them
    labels = bin_labels(edges)
    assert len(set(labels)) == len(labels) == 10
    assert labels[1] == "[1.7e+09, 1.7000001e+09)"
    assert bin_labels([0.0, np.nextafter(0.0, 1.0)])[1] == "[0, 4.94066e-324)"
    assert len(set(bin_labels([0.1, np.nextafter(0.1, 1.0)]))) == 3


def test_state_round_trip_and_counts_out_of_range():
    import json

    from promml.exporter.state import InvalidState

    table = SegmentTable(2)
    table.add_rows(["a", "b", "c", "a", None], np.array([True, False, True, True, False]))
    table.add_label("a", True)
    state = json.loads(json.dumps(table.to_state()))
    restored = SegmentTable.from_state(state, 2, "t")
    assert {value: counts.tolist() for value, counts in restored.counts.items()} == {
        value: counts.tolist() for value, counts in table.counts.items()}
    with pytest.raises(InvalidState, match=r"t\.a: counts out of range"):
        SegmentTable.from_state({**state, "a": [2, 3, 0, 0]}, 2, "t")  # more positive rows than rows
    with pytest.raises(InvalidState, match="t: expected an object of at most 2 entries"):
        SegmentTable.from_state(state, 1, "t")
