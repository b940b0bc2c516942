"""Decoded records turned into columns: values where they belong, and every irregular value noted once."""

from __future__ import annotations

import numpy as np

from promml.exporter.columns import (
    MISSING_FEATURE,
    UNKNOWN_FEATURE,
    WRONG_TYPE,
    PredictionColumns,
    columns_of,
    numeric_matrix,
)
from promml.records import Prediction


def record(pid: str, features: dict, timestamp: float = 1.0, predicted=1, score=0.5) -> Prediction:
    return Prediction(pid, timestamp, "m", "1", features, predicted, score)


def test_numeric_matrix_holds_every_value_and_null_as_nan_and_declines_odd_rows() -> None:
    rng = np.random.default_rng(3)
    rows = [{"a": float(x), "b": int(y), "c": None if y % 5 == 0 else float(x)}
            for x, y in zip(rng.normal(size=200), rng.integers(0, 50, 200), strict=True)]
    matrix = numeric_matrix(rows, ("a", "b", "c"))
    expected = np.array([[row["a"], float(row["b"]), np.nan if row["c"] is None else row["c"]] for row in rows])
    np.testing.assert_array_equal(matrix, expected)
    assert numeric_matrix(rows, ("a",)).shape == (200, 1)
    for odd in ({"a": 1.0}, {"a": 1.0, "b": True, "c": 1.0}, {"a": "1.5", "b": 1, "c": 1.0},
                {"a": 10**400, "b": 1, "c": 1.0}):
        assert numeric_matrix([*rows, odd], ("a", "b", "c")) is None
    assert numeric_matrix([], ("a",)).shape == (0, 1)
    assert numeric_matrix(rows, ()).shape == (200, 0)


def test_columns_of_clean_records_carry_every_field_in_order() -> None:
    rows = [record("a", {"x": 1.5, "n": 2, "region": "north"}, 10.0, 1, 0.9),
            record("b", {"x": None, "n": -1, "region": None}, 11.0, "cat", None)]
    columns = columns_of(rows, ["x", "n"], ["region"])
    assert columns.ids == ["a", "b"]
    np.testing.assert_array_equal(columns.timestamps, [10.0, 11.0])
    assert columns.predictions == [1, "cat"] and columns.scores == [0.9, None]
    np.testing.assert_array_equal(columns.numeric, [[1.5, 2.0], [np.nan, -1.0]])
    assert columns.categorical == [["north", None]]
    assert columns.issues == [] and len(columns) == 2


def test_columns_of_irregular_records_note_absent_wrong_and_unknown_values() -> None:
    rows = [
        record("a", {"x": "1.5", "n": 2, "region": "north"}),  # text where a number belongs: wrong type
        record("b", {"n": True, "extra": 1}),  # x and region absent, a boolean number, an unknown feature
        record("c", {"x": 10**400, "n": "", "region": "south", "extra": 2, "other": 3}),  # too large; empty text
    ]
    columns = columns_of(rows, ["x", "n"], ["region"])
    assert sorted(columns.issues) == sorted([
        (0, "x", WRONG_TYPE), (1, "x", MISSING_FEATURE), (1, "n", WRONG_TYPE), (1, "extra", UNKNOWN_FEATURE),
        (1, "region", MISSING_FEATURE), (2, "extra", UNKNOWN_FEATURE), (2, "other", UNKNOWN_FEATURE),
    ])
    np.testing.assert_array_equal(columns.numeric, [[np.nan, 2.0], [np.nan, np.nan], [np.nan, np.nan]])
    assert columns.categorical == [["north", None, "south"]]


def test_take_keeps_the_chosen_rows_and_renumbers_their_issues() -> None:
    rows = [record(f"p{i}", {"x": float(i)} if i % 2 else {"x": float(i), "extra": i}, float(i)) for i in range(6)]
    columns = columns_of(rows, ["x"], [])
    part = columns.take(np.array([1, 2, 4]))
    assert part.ids == ["p1", "p2", "p4"]
    np.testing.assert_array_equal(part.timestamps, [1.0, 2.0, 4.0])
    np.testing.assert_array_equal(part.numeric[:, 0], [1.0, 2.0, 4.0])
    assert part.issues == [(1, "extra", UNKNOWN_FEATURE), (2, "extra", UNKNOWN_FEATURE)]


def test_empty_columns_have_the_baseline_shape() -> None:
    empty = PredictionColumns.empty(3, 2)
    assert len(empty) == 0 and empty.numeric.shape == (0, 3) and empty.categorical == [[], []]
