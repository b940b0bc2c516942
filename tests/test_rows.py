import numpy as np
import pandas as pd
import pytest

from promml.instrumentation.rows import RowShapeError, feature_rows, predictions_and_scores, row_count, snapshot_rows


def test_one_row_batch_and_dataframe():
    assert feature_rows({"a": 1}) == [{"a": 1}]
    assert feature_rows([{"a": 1}, {"a": 2}]) == [{"a": 1}, {"a": 2}]
    frame = pd.DataFrame({"a": np.array([1, 2], dtype=np.int64), "b": ["x", "y"]})
    rows = feature_rows(frame)
    assert rows == [{"a": 1, "b": "x"}, {"a": 2, "b": "y"}]
    assert type(rows[0]["a"]) is int  # numpy scalars become JSON-friendly Python numbers


def test_rows_are_copies_so_later_mutation_does_not_change_the_log():
    row = {"a": 1}
    [copy] = feature_rows(row)
    row["a"] = 2
    assert copy == {"a": 1}


@pytest.mark.parametrize("data", ["text", 3, [1, 2], None])
def test_unreadable_inputs_say_what_to_do(data):
    with pytest.raises(RowShapeError, match="inputs="):
        feature_rows(data)


def test_outputs_dicts_plain_values_and_arrays():
    assert predictions_and_scores({"prediction": 1, "score": 0.8}, 1) == ([1], [0.8])
    assert predictions_and_scores([{"prediction": 0}, {"prediction": 1, "score": 0.9}], 2) == ([0, 1], [None, 0.9])
    assert predictions_and_scores(np.array([1, 0]), 2) == ([1, 0], [None, None])
    assert predictions_and_scores(np.float64(2.5), 1) == ([2.5], [None])
    assert predictions_and_scores("cat", 1) == (["cat"], [None])


def test_output_row_count_must_match_input():
    with pytest.raises(RowShapeError, match="2 result\\(s\\) for 3 input row\\(s\\)"):
        predictions_and_scores([1, 2], 3)
    with pytest.raises(RowShapeError, match="'prediction' key"):
        predictions_and_scores({"label": 1}, 1)


def test_row_count_of_every_shape():
    assert row_count({"a": 1}) == 1
    assert row_count([{"a": 1}] * 3) == 3
    assert row_count(pd.DataFrame({"a": range(4)})) == 4
    assert row_count(np.zeros((5, 2))) == 5
    assert row_count(np.zeros(2)) == 1
    assert row_count([]) == 0
    for data in ("text", 3, None, np.zeros((2, 2, 2))):
        with pytest.raises(RowShapeError):
            row_count(data)


def test_snapshots_keep_later_changes_out():
    row, batch, array = {"a": 1}, [{"a": 1}], np.array([[1.0, 2.0]])
    frame = pd.DataFrame({"a": [1]})
    snapshots = [snapshot_rows(row), snapshot_rows(batch), snapshot_rows(array), snapshot_rows(frame)]
    row["a"] = 2
    batch.append({"a": 2})
    array[0, 0] = 9.0
    frame["added_later"] = [0]
    assert feature_rows(snapshots[0]) == [{"a": 1}]
    assert feature_rows(snapshots[1]) == [{"a": 1}]
    assert feature_rows(snapshots[2], ["x", "y"]) == [{"x": 1.0, "y": 2.0}]
    assert feature_rows(snapshots[3]) == [{"a": 1}]


def test_arrays_need_matching_feature_names():
    assert feature_rows(np.array([[1, 2], [3, 4]]), ["x", "y"]) == [{"x": 1, "y": 2}, {"x": 3, "y": 4}]
    assert feature_rows(np.array([1.5, 2.5]), ("x", "y")) == [{"x": 1.5, "y": 2.5}]
    with pytest.raises(RowShapeError, match="feature_names="):
        feature_rows(np.array([[1, 2]]))
    with pytest.raises(RowShapeError, match="does not match 3 feature names"):
        feature_rows(np.array([[1, 2]]), ["x", "y", "z"])


def test_per_row_probabilities_give_the_argmax_and_the_positive_or_top_class_score():
    binary = np.array([[0.9, 0.1], [0.2, 0.8], [0.5, 0.5]])
    predictions, scores = predictions_and_scores(binary, 3)
    assert predictions.tolist() == [0, 1, 0]  # a tie goes to the first class, as numpy's argmax
    assert scores.tolist() == [0.1, 0.8, 0.5]  # the positive class (column 1), whatever the prediction
    three = [[0.2, 0.5, 0.3], [0.7, 0.2, 0.1]]
    assert predictions_and_scores(three, 2) == ([1, 0], [0.5, 0.7])  # the top class's probability
    assert predictions_and_scores(np.array([[0.3, 0.7]]), 1) == ([1], [0.7])
    assert predictions_and_scores([np.array([0.3, 0.7])], 1) == ([1], [0.7])


def test_a_predictions_and_scores_tuple_is_one_of_each_per_row():
    assert predictions_and_scores((np.array([0, 1]), np.array([0.2, 0.9])), 2) == ([0, 1], [0.2, 0.9])
    predictions, scores = predictions_and_scores((["a", "b"], np.array([[0.9, 0.1], [0.3, 0.7]])), 2)
    assert (predictions, scores.tolist()) == (["a", "b"], [0.1, 0.7])  # probabilities as scores are reduced
    assert predictions_and_scores((1, 0.8), 1) == ([1], [0.8])
    assert predictions_and_scores((np.int64(1), np.float32(0.5)), 1) == ([1], [0.5])
    assert predictions_and_scores(([1, 0, 1], None), 3) == ([1, 0, 1], [None, None, None])
    assert predictions_and_scores((0, 1), 2) == ([0, 1], [None, None])  # two plain predictions for two rows


def test_pandas_outputs():
    assert predictions_and_scores(pd.Series([1, 0]), 2) == ([1, 0], [None, None])
    frame = pd.DataFrame({"prediction": [1, 0], "score": [0.7, 0.2]})
    assert predictions_and_scores(frame, 2) == ([1, 0], [0.7, 0.2])
    probabilities = pd.DataFrame({"no": [0.9, 0.4], "yes": [0.1, 0.6]})
    assert predictions_and_scores(probabilities, 2) == (["no", "yes"], [0.1, 0.6])
    assert predictions_and_scores(np.array([[1.5], [2.5]]), 2) == ([1.5, 2.5], [None, None])  # one column: values


@pytest.mark.parametrize(("result", "rows", "message"), [
    (np.array([[1.0, 2.0], [3.0, 4.0]]), 2, "not class probabilities"),
    ([[0.2, 0.2], [0.5, 0.5]], 2, "not class probabilities"),
    ([object(), object()], 2, "is a object, not a prediction"),
    ({"prediction": [1, 2]}, 1, "is a list, not a prediction"),
    (np.zeros((2, 2, 2)), 2, "3 result\\(s\\) for 2|has shape"),
    ((np.array([1, 2, 3]), np.array([0.1, 0.2])), 3, "the scores has 2 value\\(s\\) for 3"),
    ({"prediction": 1, "score": "high"}, 1, "a score is a str, not a number"),
])
def test_anything_else_is_refused_with_the_fix(result, rows, message):
    with pytest.raises(RowShapeError, match=message) as raised:
        predictions_and_scores(result, rows)
    assert "outputs=" in str(raised.value) or "dicts" in str(raised.value)
