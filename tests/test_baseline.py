"""The baseline builder against numpy and collections.Counter, the file round trip, validation and the CLI."""

from __future__ import annotations

import argparse
import copy
import csv
import json
import math
import re
from collections import Counter
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from promml.baseline import (
    FORMAT_VERSION,
    BaselineError,
    add_arguments,
    build_baseline,
    load_baseline,
    load_csv_columns,
    parse_baseline,
    run,
    save_baseline,
)


def quantile_edges(values: np.ndarray, n_bins: int) -> np.ndarray:
    return np.unique(np.quantile(values, [i / n_bins for i in range(1, n_bins)]))


def histogram_ratios(values: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """Shares per bin with left-closed bins [e(i-1), e(i)) and open outer bins, via np.histogram."""
    counts, _ = np.histogram(values, bins=np.concatenate([[-np.inf], edges, [np.inf]]))
    return counts / values.size


@pytest.fixture
def training() -> dict[str, Any]:
    rng = np.random.default_rng(42)
    n = 2000
    return {
        "income": rng.lognormal(10, 1, n),
        "age": rng.integers(18, 90, n).tolist(),
        "region": rng.choice(["north", "south", "east", "west"], n, p=[0.4, 0.3, 0.2, 0.1]).tolist(),
        "label": rng.integers(0, 2, n).tolist(),
    }


@pytest.mark.parametrize("n_bins", [2, 5, 10, 20])
def test_numeric_edges_are_deduplicated_quantiles_and_ratios_match_histogram(
    training: dict[str, Any], n_bins: int
) -> None:
    baseline = build_baseline(training, categorical=["region"], target="label", n_bins=n_bins)
    for name in ("income", "age"):
        values = np.asarray(training[name], dtype=float)
        feature = baseline["features"][name]
        expected_edges = quantile_edges(values, n_bins)
        np.testing.assert_array_equal(feature["bin_edges"], expected_edges)
        np.testing.assert_allclose(feature["ref_ratios"], histogram_ratios(values, expected_edges), rtol=0, atol=1e-15)
        assert len(feature["ref_ratios"]) == len(feature["bin_edges"]) + 1
        assert math.fsum(feature["ref_ratios"]) == pytest.approx(1.0, abs=1e-12)


def test_numeric_summary_statistics_match_numpy(training: dict[str, Any]) -> None:
    feature = build_baseline(training, target="label")["features"]["income"]
    values = training["income"]
    assert feature["type"] == "numeric"
    assert feature["count"] == values.size
    assert feature["missing_ratio"] == 0.0
    assert feature["mean"] == pytest.approx(float(np.mean(values)), rel=1e-12)
    assert feature["std"] == pytest.approx(float(np.std(values, ddof=0)), rel=1e-12)
    assert feature["min"] == float(np.min(values))
    assert feature["max"] == float(np.max(values))


def test_heavy_ties_give_fewer_bins() -> None:
    values = [0.0] * 90 + [float(i) for i in range(1, 11)]
    feature = build_baseline({"x": values}, n_bins=10)["features"]["x"]
    expected = quantile_edges(np.asarray(values), 10)
    assert len(expected) < 9
    assert feature["bin_edges"] == expected.tolist()
    assert feature["ref_ratios"] == histogram_ratios(np.asarray(values), expected).tolist()


def test_constant_column_has_one_edge_and_two_bins() -> None:
    feature = build_baseline({"x": [3.0] * 50}, n_bins=10)["features"]["x"]
    assert feature["bin_edges"] == [3.0]
    assert feature["ref_ratios"] == [0.0, 1.0]


def test_values_beyond_the_training_range_fall_in_the_outer_bins(training: dict[str, Any], tmp_path: Path) -> None:
    path = tmp_path / "baseline.json"
    save_baseline(build_baseline(training, target="label"), path)
    reference = load_baseline(path).numeric["income"]
    low, high = float(np.min(training["income"])), float(np.max(training["income"]))
    bins = reference.bin_index(np.array([low - 1e6, -1e300, high + 1e6, 1e300]))
    assert bins.tolist() == [0, 0, reference.edges.size, reference.edges.size]


def test_bin_index_agrees_with_the_stored_ratios(training: dict[str, Any]) -> None:
    reference = parse_baseline(build_baseline(training, target="label")).numeric["income"]
    counts = np.bincount(reference.bin_index(training["income"]), minlength=reference.ref_ratios.size)
    np.testing.assert_allclose(counts / training["income"].size, reference.ref_ratios, rtol=0, atol=1e-15)


def test_categorical_ratios_are_counter_shares(training: dict[str, Any]) -> None:
    feature = build_baseline(training, target="label")["features"]["region"]
    counter = Counter(training["region"])
    total = sum(counter.values())
    assert feature["type"] == "categorical"
    assert feature["count"] == total
    assert feature["categories"] == {category: count / total for category, count in counter.items()}
    shares = list(feature["categories"].values())
    assert shares == sorted(shares, reverse=True)  # most frequent first


def test_categorical_reference_has_an_unseen_bucket(training: dict[str, Any]) -> None:
    reference = parse_baseline(build_baseline(training, target="label")).categorical["region"]
    assert reference.ref_ratios.size == len(reference.categories) + 1
    assert reference.ref_ratios[-1] == 0.0
    values = np.array(["south", "mars", "north", "west", ""], dtype=object)
    expected = [reference.categories.index("south"), len(reference.categories),
                reference.categories.index("north"), reference.categories.index("west"), len(reference.categories)]
    assert reference.bin_index(values).tolist() == expected
    assert reference.unseen_index == len(reference.categories)


def test_numbers_listed_as_categorical_are_keyed_by_their_text() -> None:
    codes = [1, 2, 2, 3, 3, 3]
    baseline = build_baseline({"code": codes, "code_array": np.array(codes)}, categorical=["code", "code_array"])
    expected = {"3": 0.5, "2": 2 / 6, "1": 1 / 6}
    assert baseline["features"]["code"]["categories"] == expected
    assert baseline["features"]["code_array"]["categories"] == expected


@pytest.mark.parametrize(
    ("values", "expected_type"),
    [
        ([1, 2.5, None, 4], "numeric"),
        ([True, False, True], "categorical"),
        (np.array([True, False, True]), "categorical"),
        ([1, 2, "three"], "categorical"),
        (["a", None, "b"], "categorical"),
        (np.array([1.5, np.nan, 2.5]), "numeric"),
    ],
)
def test_type_detection(values: Any, expected_type: str) -> None:
    assert build_baseline({"x": values})["features"]["x"]["type"] == expected_type


def test_boolean_categories_are_their_text() -> None:
    feature = build_baseline({"flag": [True, False, True, True]})["features"]["flag"]
    assert feature["categories"] == {"True": 0.75, "False": 0.25}


def test_missing_values_are_counted_not_binned() -> None:
    numeric = [1.0, None, 2.0, float("nan"), 3.0, "", 4.0, 5.0]
    category = ["a", None, "b", "", "a", float("nan"), "a", "b"]
    features = build_baseline({"n": numeric, "c": category})["features"]
    assert features["n"]["type"] == "numeric"
    assert features["n"]["missing_ratio"] == 3 / 8
    assert features["n"]["count"] == 5
    assert features["n"]["mean"] == 3.0
    assert features["c"]["missing_ratio"] == 3 / 8
    assert features["c"]["count"] == 5
    assert features["c"]["categories"] == {"a": 0.6, "b": 0.4}


def test_infinite_numeric_values_count_as_missing() -> None:
    feature = build_baseline({"x": [1.0, math.inf, 2.0, -math.inf]})["features"]["x"]
    assert feature["missing_ratio"] == 0.5
    assert feature["max"] == 2.0


def test_target_is_excluded_and_recorded(training: dict[str, Any]) -> None:
    baseline = build_baseline(training, target="label", model_name="credit-risk", model_version="1.0.0")
    assert set(baseline["features"]) == {"income", "age", "region"}
    assert baseline["target"] == "label"
    assert baseline["n_rows"] == 2000
    assert baseline["format_version"] == FORMAT_VERSION == 1
    assert (baseline["model_name"], baseline["model_version"]) == ("credit-risk", "1.0.0")


def test_created_at_is_rfc3339_utc(training: dict[str, Any]) -> None:
    before = datetime.now(timezone.utc).replace(microsecond=0)
    created_at = build_baseline(training)["created_at"]
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", created_at)
    assert before <= datetime.fromisoformat(created_at.replace("Z", "+00:00")) <= datetime.now(timezone.utc)


def test_result_is_plain_json(training: dict[str, Any]) -> None:
    baseline = build_baseline(training, target="label")
    assert json.loads(json.dumps(baseline, allow_nan=False)) == baseline


def test_pandas_dataframe_gives_the_same_baseline(training: dict[str, Any]) -> None:
    from_lists = build_baseline(training, target="label")
    from_frame = build_baseline(pd.DataFrame(training), target="label")
    del from_lists["created_at"], from_frame["created_at"]
    assert from_frame == from_lists


def test_pandas_missing_values() -> None:
    frame = pd.DataFrame({"n": pd.array([1, None, 3, 4], dtype="Int64"), "c": ["a", None, "b", "a"]})
    features = build_baseline(frame)["features"]
    assert features["n"]["type"] == "numeric"
    assert features["n"]["missing_ratio"] == 0.25
    assert features["c"]["missing_ratio"] == 0.25
    assert features["c"]["categories"] == {"a": 2 / 3, "b": 1 / 3}


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"n_bins": 1}, "n_bins must be an integer of at least 2"),
        ({"target": "price"}, "target column 'price' is not in the data"),
        ({"categorical": ["colour"]}, "categorical column 'colour' is not in the data"),
        ({"target": "x", "columns": {"x": [1, 2]}}, "the data has no feature columns"),
        ({"columns": {"x": [], "y": []}}, "the data has no rows"),
        ({"columns": {"x": [1, 2], "y": [1]}}, "columns differ in length: 'y'"),
        ({"columns": {"x": [None, ""], "y": [1, 2]}}, "feature 'x' has no finite values"),
        ({"columns": {"x": [None, ""], "y": [1, 2]}, "categorical": ["x"]}, "feature 'x' has no values"),
        ({"columns": {"x": 5}}, "column 'x' must be a sequence of values"),
    ],
)
def test_build_rejects_unusable_input(kwargs: dict[str, Any], message: str) -> None:
    columns = kwargs.pop("columns", {"x": [1.0, 2.0, 3.0], "y": ["a", "b", "a"]})
    with pytest.raises(BaselineError, match=re.escape(message)):
        build_baseline(columns, **kwargs)


def write_csv(path: Path, header: list[str], rows: list[list[Any]]) -> Path:
    with path.open("w", newline="") as file:
        writer = csv.writer(file)
        writer.writerow(header)
        writer.writerows(rows)
    return path


def test_load_csv_columns_parses_numbers_and_empty_cells(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "data.csv", ["a", "b", "c"], [["1", "2.5", "x"], ["", "1e3", "y"], ["-4", "nan", ""]])
    columns = load_csv_columns(path)
    assert columns["a"] == [1, None, -4]
    assert all(type(v) is int for v in (columns["a"][0], columns["a"][2]))
    assert columns["b"][:2] == [2.5, 1000.0]
    assert math.isnan(columns["b"][2])
    assert columns["c"] == ["x", "y", None]


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("", "no header row"),
        ("a,a\n1,2\n", "duplicate column names 'a'"),
        ("a,b\n1,2\n3\n", "line 3 has 1 fields, the header has 2"),
    ],
)
def test_load_csv_columns_rejects_malformed_files(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "data.csv"
    path.write_text(content)
    with pytest.raises(BaselineError, match=re.escape(message)):
        load_csv_columns(path)


def test_csv_round_trip(training: dict[str, Any], tmp_path: Path) -> None:
    names = list(training)
    rows = [[training[name][i] for name in names] for i in range(len(training["label"]))]
    rows[5][0] = ""  # one missing income
    csv_path = write_csv(tmp_path / "train.csv", names, rows)
    built = build_baseline(load_csv_columns(csv_path), target="label", categorical=["region"],
                           model_name="credit-risk", model_version="1.0.0")
    json_path = tmp_path / "baseline.json"
    save_baseline(built, json_path)
    assert json.loads(json_path.read_text()) == built
    loaded = load_baseline(json_path)

    incomes = np.asarray([v for i, v in enumerate(training["income"]) if i != 5])
    np.testing.assert_array_equal(loaded.numeric["income"].edges, quantile_edges(incomes, 10))
    np.testing.assert_array_equal(loaded.numeric["income"].ref_ratios, built["features"]["income"]["ref_ratios"])
    assert built["features"]["income"]["missing_ratio"] == 1 / 2000
    assert set(loaded.numeric) == {"income", "age"}
    assert loaded.categorical["region"].categories == tuple(built["features"]["region"]["categories"])
    np.testing.assert_array_equal(
        loaded.categorical["region"].ref_ratios, [*built["features"]["region"]["categories"].values(), 0.0]
    )
    assert (loaded.model_name, loaded.model_version, loaded.target, loaded.n_rows) == (
        "credit-risk", "1.0.0", "label", 2000)
    assert loaded.created_at == built["created_at"]
    assert not loaded.numeric["income"].edges.flags.writeable


@pytest.fixture
def valid_file() -> dict[str, Any]:
    return build_baseline({"x": [float(i) for i in range(100)], "color": ["red", "blue"] * 50})


def _set(document: dict[str, Any], path: tuple[str, ...], value: Any) -> dict[str, Any]:
    changed = copy.deepcopy(document)
    node = changed
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    return changed


@pytest.mark.parametrize(
    ("path", "value", "message"),
    [
        (("format_version",), 2, "'format_version' must be 1, got 2"),
        (("format_version",), True, "'format_version' must be 1, got True"),
        (("features",), {}, "'features' must be a non-empty object"),
        (("features", "x", "type"), "ordinal", "feature 'x': must be an object whose 'type' is"),
        (("features", "x"), [1, 2], "feature 'x': must be an object whose 'type' is"),
        (("features", "x", "bin_edges"), [3.0, 1.0], "'bin_edges' must be a non-empty, strictly increasing"),
        (("features", "x", "bin_edges"), [], "feature 'x': 'bin_edges' must be a non-empty"),
        (("features", "x", "bin_edges"), ["1"], "feature 'x': 'bin_edges' must be a non-empty"),
        (("features", "x", "ref_ratios"), [0.5, 0.5], "feature 'x': 'ref_ratios' must have len(bin_edges) + 1 = 10"),
        (("features", "x", "ref_ratios"), [0.5] + [0.1] * 9, "feature 'x': 'ref_ratios' must sum to 1"),
        (("features", "x", "ref_ratios"), [-0.1, 1.1] + [0.0] * 8, "feature 'x': 'ref_ratios' must be a non-empty"),
        (("features", "color", "categories"), {}, "feature 'color': 'categories' must be a non-empty object"),
        (("features", "color", "categories"), {"red": "half"}, "feature 'color': 'categories' must be a non-empty"),
        (("features", "color", "categories"), {"red": 0.5}, "feature 'color': 'categories' must sum to 1"),
        (("model_name",), 7, "'model_name' must be a string or null, got 7"),
        (("n_rows",), -1, "'n_rows' must be a non-negative integer or null"),
    ],
)
def test_load_rejects_invalid_files_naming_the_key(
    valid_file: dict[str, Any], tmp_path: Path, path: tuple[str, ...], value: Any, message: str
) -> None:
    file = tmp_path / "baseline.json"
    file.write_text(json.dumps(_set(valid_file, path, value)))
    with pytest.raises(ValueError, match=re.escape(f"{file}: ") + ".*" + re.escape(message)):
        load_baseline(file)


def test_load_accepts_the_valid_fixture(valid_file: dict[str, Any], tmp_path: Path) -> None:
    file = tmp_path / "baseline.json"
    save_baseline(valid_file, file)
    loaded = load_baseline(file)
    assert list(loaded.numeric) == ["x"]
    assert loaded.categorical["color"].categories == ("blue", "red")


def test_load_rejects_non_json_and_non_objects(tmp_path: Path) -> None:
    file = tmp_path / "baseline.json"
    file.write_text("{not json")
    with pytest.raises(BaselineError, match="not valid JSON"):
        load_baseline(file)
    file.write_text("[1, 2]")
    with pytest.raises(BaselineError, match="must be a JSON object"):
        load_baseline(file)


def parse_cli(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="promml baseline")
    add_arguments(parser)
    return parser.parse_args(argv)


def test_cli_writes_the_baseline_and_prints_a_summary(
    training: dict[str, Any], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    names = list(training)
    rows = [[training[name][i] for name in names] for i in range(len(training["label"]))]
    csv_path = write_csv(tmp_path / "train.csv", names, rows)
    out = tmp_path / "baseline.json"
    args = parse_cli(["--data", str(csv_path), "--out", str(out), "--target", "label", "--categorical", " region, ",
                      "--bins", "4", "--model-name", "credit-risk", "--model-version", "2"])
    assert run(args) == 0
    assert capsys.readouterr().out == f"wrote {out}: 2000 rows, 2 numeric and 1 categorical features, target 'label'\n"
    loaded = load_baseline(out)
    assert loaded.categorical["region"].categories == tuple(c for c, _ in Counter(training["region"]).most_common())
    assert loaded.numeric["age"].edges.tolist() == quantile_edges(np.asarray(training["age"], dtype=float), 4).tolist()
    assert (loaded.model_name, loaded.model_version) == ("credit-risk", "2")
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # no partial file left behind


def test_cli_defaults() -> None:
    args = parse_cli(["--data", "d.csv", "--out", "b.json"])
    assert (args.bins, args.target, args.categorical, args.model_name, args.model_version) == (10, None, "", None, None)


@pytest.mark.parametrize(
    ("extra", "content", "message"),
    [
        (["--target", "price"], "a,b\n1,2\n", "target column 'price' is not in the data"),
        (["--categorical", "a,colour"], "a,b\n1,2\n", "categorical column 'colour' is not in the data"),
        ([], "a,b\n", "the data has no rows"),
        ([], "", "no header row"),
        (["--bins", "1"], "a,b\n1,2\n", "--bins must be at least 2, got 1"),
    ],
)
def test_cli_bad_input_exits_2_with_a_message(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], extra: list[str], content: str, message: str
) -> None:
    data = tmp_path / "train.csv"
    data.write_text(content)
    out = tmp_path / "baseline.json"
    assert run(parse_cli(["--data", str(data), "--out", str(out), *extra])) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.startswith("promml baseline: ")
    assert message in captured.err
    assert not out.exists()


def test_cli_missing_data_file_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    missing = tmp_path / "nope.csv"
    assert run(parse_cli(["--data", str(missing), "--out", str(tmp_path / "b.json")])) == 2
    err = capsys.readouterr().err
    assert err.startswith("promml baseline: ") and str(missing) in err
