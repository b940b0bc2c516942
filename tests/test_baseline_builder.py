"""The baseline builder against numpy, scipy and scikit-learn on the same data, and the `promml baseline` command."""

from __future__ import annotations

import argparse
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
from scipy.stats import chisquare
from sklearn.isotonic import IsotonicRegression
from sklearn.metrics import (
    accuracy_score,
    f1_score,
    mean_absolute_error,
    mean_squared_error,
    precision_score,
    recall_score,
    roc_auc_score,
)

from promml.baseline import DEFAULT_SAMPLE_SIZE, load_baseline, parse_baseline
from promml.baseline.builder import (
    FORMAT_VERSION,
    BaselineError,
    add_arguments,
    build_baseline,
    detect_task,
    load_csv_columns,
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


def test_a_sparse_feature_gets_a_bin_for_its_point_mass() -> None:
    values = [0.0] * 90 + [float(i) for i in range(1, 11)]
    feature = build_baseline({"x": values}, n_bins=10)["features"]["x"]
    assert feature["bin_edges"] == [np.nextafter(0.0, 1.0)]
    assert feature["ref_ratios"] == histogram_ratios(np.asarray(values), np.asarray(feature["bin_edges"])).tolist()
    assert feature["ref_ratios"] == [0.9, 0.1]


def test_constant_column_has_one_edge_and_two_bins() -> None:
    feature = build_baseline({"x": [3.0] * 50}, n_bins=10)["features"]["x"]
    assert feature["bin_edges"] == [3.0]
    assert feature["ref_ratios"] == [0.0, 1.0]


def test_categorical_ratios_are_counter_shares(training: dict[str, Any]) -> None:
    feature = build_baseline(training, target="label")["features"]["region"]
    counter = Counter(training["region"])
    total = sum(counter.values())
    assert feature["type"] == "categorical"
    assert feature["count"] == total
    assert feature["categories"] == {category: count / total for category, count in counter.items()}
    shares = list(feature["categories"].values())
    assert shares == sorted(shares, reverse=True)  # most frequent first


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
    assert baseline["format_version"] == FORMAT_VERSION == 4
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
    assert (args.prediction, args.score, args.task, args.validation, args.numeric) == (None, None, None, None, "")
    assert (args.sample_size, args.seed) == (5000, 0)


@pytest.mark.parametrize(
    ("extra", "content", "message"),
    [
        (["--target", "price"], "a,b\n1,2\n", "target column 'price' is not in the data"),
        (["--categorical", "a,colour"], "a,b\n1,2\n", "categorical column 'colour' is not in the data"),
        ([], "a,b\n", "the data has no rows"),
        ([], "", "no header row"),
        (["--bins", "1"], "a,b\n1,2\n", "--bins must be at least 2, got 1"),
        (["--sample-size", "0"], "a,b\n1,2\n", "--sample-size must be at least 1, got 0"),
        (["--seed", "-3"], "a,b\n1,2\n", "--seed must be at least 0, got -3"),
        (["--numeric", "a,colour"], "a,b\n1,2\n", "numeric column 'colour' is not in the data"),
        (["--prediction", "pred"], "a,b\n1,2\n", "prediction column 'pred' is not in the data"),
        (["--score", "b"], "a,b\n1,x\n", "score column 'b' must hold numbers, found 'x'"),
        (["--target", "b", "--validation", "v.csv"], "a,b\n1,2\n", "--validation needs --target and --prediction"),
        (["--target", "b", "--prediction", "a", "--validation", "missing.csv"], "a,b\n1,2\n", "missing.csv"),
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


# --- Format 2: summaries, samples, overrides ------------------------------------------------------------------


def test_numeric_summary_quantiles_match_numpy_on_the_finite_values() -> None:
    rng = np.random.default_rng(7)
    raw = rng.gamma(2.0, 3.0, 1000).tolist()
    raw[3], raw[10], raw[20], raw[30] = None, math.nan, math.inf, ""
    finite = np.asarray([v for v in raw if isinstance(v, float) and math.isfinite(v)])
    feature = build_baseline({"x": raw}, sample_size=100)["features"]["x"]
    assert feature["count"] == finite.size == 996
    assert feature["missing_ratio"] == 4 / 1000
    assert feature["mean"] == float(np.mean(finite))
    assert feature["std"] == float(np.std(finite))
    assert (feature["min"], feature["max"]) == (float(np.min(finite)), float(np.max(finite)))
    probabilities = {"p01": 0.01, "p05": 0.05, "p25": 0.25, "p50": 0.5, "p75": 0.75, "p95": 0.95, "p99": 0.99}
    assert list(feature["quantiles"]) == list(probabilities)
    for key, probability in probabilities.items():
        assert feature["quantiles"][key] == pytest.approx(float(np.quantile(finite, probability)), rel=1e-15)


def test_sample_is_a_seeded_subset_of_the_finite_values_of_the_requested_size() -> None:
    values = np.random.default_rng(3).normal(size=20_000)
    values[:5] = np.nan
    finite = values[5:]
    first = build_baseline({"x": values})["features"]["x"]["sample"]
    assert len(first) == DEFAULT_SAMPLE_SIZE == 5000
    assert first == sorted(first)
    remaining = Counter(finite.tolist())
    remaining.subtract(first)
    assert min(remaining.values()) >= 0  # drawn without replacement from the finite values
    assert build_baseline({"x": values})["features"]["x"]["sample"] == first  # same seed, same sample
    other = build_baseline({"x": values}, seed=1)["features"]["x"]["sample"]
    assert other != first and len(other) == 5000
    small = build_baseline({"x": values}, sample_size=10)["features"]["x"]["sample"]
    assert len(small) == 10


def test_sample_keeps_every_value_when_the_column_is_smaller_than_the_capacity() -> None:
    values = [5.0, 1.0, None, 3.0, 1.0]
    feature = build_baseline({"x": values}, sample_size=4)["features"]["x"]
    assert feature["sample"] == [1.0, 1.0, 3.0, 5.0]


def test_sample_is_uniform_across_the_values() -> None:
    """Over 400 seeds each of 40 values is drawn about 400 * 10/40 = 100 times: a chi-square test cannot tell."""
    values = np.arange(40, dtype=float)
    hits = Counter()
    for seed in range(400):
        hits.update(build_baseline({"x": values}, sample_size=10, seed=seed, n_bins=2)["features"]["x"]["sample"])
    observed = [hits[value] for value in values.tolist()]
    assert sum(observed) == 4000
    assert chisquare(observed).pvalue > 0.01


def test_numeric_override_counts_junk_as_missing() -> None:
    values = [1.5, "3.5", "n/a", 2, None, True, "oops", " 4 "]
    feature = build_baseline({"x": values, "y": list(range(8))}, numeric=["x"])["features"]["x"]
    numbers = np.array([1.5, 3.5, 2.0, 1.0, 4.0])
    assert feature["type"] == "numeric"
    assert feature["non_numeric"] == 2
    assert feature["count"] == 5
    assert feature["missing_ratio"] == 3 / 8
    assert feature["mean"] == float(np.mean(numbers))
    assert feature["std"] == float(np.std(numbers))
    assert feature["sample"] == sorted(numbers.tolist())
    assert build_baseline({"x": values, "y": list(range(8))})["features"]["x"]["type"] == "categorical"


def test_categorical_missing_ratio_is_parsed() -> None:
    reference = parse_baseline(build_baseline({"c": ["a", None, "b", "a"]})).categorical["c"]
    assert reference.missing_ratio == 0.25


# --- Prediction, score and task -------------------------------------------------------------------------------


@pytest.fixture
def binary() -> dict[str, Any]:
    rng = np.random.default_rng(11)
    n = 3000
    label = rng.integers(0, 2, n)
    proba = np.clip(0.35 * label + 0.65 * rng.random(n), 0, 1).round(2)  # rounded: ties in the score
    return {"x": rng.normal(size=n), "label": label, "predicted": (proba > 0.5).astype(int), "proba": proba}


def test_score_is_binned_and_summarised_like_a_numeric_feature(binary: dict[str, Any]) -> None:
    baseline = build_baseline(binary, target="label", prediction="predicted", score="proba", n_bins=5,
                              sample_size=100)
    score = baseline["score"]
    assert (score["column"], score["source"], score["type"]) == ("proba", "training", "numeric")
    expected_edges = quantile_edges(binary["proba"], 5)
    assert score["bin_edges"] == expected_edges.tolist()
    np.testing.assert_allclose(score["ref_ratios"], histogram_ratios(binary["proba"], expected_edges), atol=1e-15)
    assert score["mean"] == float(np.mean(binary["proba"]))
    assert score["quantiles"]["p50"] == float(np.quantile(binary["proba"], 0.5))
    assert len(score["sample"]) == 100
    assert set(baseline["features"]) == {"x"}
    reference = parse_baseline(baseline).score
    assert reference.summary.count == 3000
    assert reference.bin_index(np.array([-1.0, 2.0])).tolist() == [0, len(expected_edges)]


def test_predicted_class_is_the_share_of_each_prediction(binary: dict[str, Any]) -> None:
    baseline = build_baseline(binary, target="label", prediction="predicted")
    counter = Counter(str(value) for value in binary["predicted"].tolist())
    predicted = baseline["predicted_class"]
    assert predicted["categories"] == {label: count / 3000 for label, count in counter.most_common()}
    assert (predicted["column"], predicted["missing_ratio"]) == ("predicted", 0.0)
    reference = parse_baseline(baseline).predicted_class
    assert reference.bin_index(["1", 0, 7]).tolist() == [reference.categories.index("1"),
                                                         reference.categories.index("0"), 2]
    assert reference.ref_ratios[-1] == 0.0


def test_binary_performance_equals_scikit_learn(binary: dict[str, Any]) -> None:
    baseline = build_baseline(binary, target="label", prediction="predicted", score="proba")
    y, p, s = binary["label"], binary["predicted"], binary["proba"]
    assert baseline["task"] == "classification"
    assert baseline["performance"]["source"] == "training"
    assert baseline["performance"]["n_rows"] == 3000
    expected = {
        "accuracy": accuracy_score(y, p), "precision": precision_score(y, p), "recall": recall_score(y, p),
        "f1": f1_score(y, p), "roc_auc": roc_auc_score(y, s),
    }
    assert baseline["performance"]["metrics"] == pytest.approx(expected, rel=1e-12)
    assert parse_baseline(baseline).performance == pytest.approx(expected, rel=1e-12)


def test_text_labels_take_the_larger_label_as_positive_and_skip_missing_rows() -> None:
    truth = ["yes", "no", "no", "yes", None, "yes", "no", "yes", "no", "no"]
    predicted = ["yes", "yes", "no", "no", "yes", "yes", "no", None, "no", "yes"]
    score = [0.9, 0.6, 0.2, 0.4, 0.7, 0.8, 0.1, 0.5, 0.3, math.nan]
    baseline = build_baseline({"x": list(range(10)), "y": truth, "p": predicted, "s": score},
                              target="y", prediction="p", score="s")
    rows = [i for i in range(10) if truth[i] is not None and predicted[i] is not None and not math.isnan(score[i])]
    y, p = [truth[i] for i in rows], [predicted[i] for i in rows]
    s = [score[i] for i in rows]
    assert baseline["performance"]["n_rows"] == len(rows) == 7
    assert baseline["performance"]["metrics"] == pytest.approx({
        "accuracy": accuracy_score(y, p), "precision": precision_score(y, p, pos_label="yes"),
        "recall": recall_score(y, p, pos_label="yes"), "f1": f1_score(y, p, pos_label="yes"),
        "roc_auc": roc_auc_score([v == "yes" for v in y], s),
    }, rel=1e-12)


def test_multiclass_performance_is_macro_and_has_no_roc_auc() -> None:
    rng = np.random.default_rng(5)
    truth = rng.integers(0, 4, 2000)
    predicted = np.where(rng.random(2000) < 0.6, truth, rng.integers(0, 5, 2000))  # label 4 only predicted
    baseline = build_baseline({"x": rng.normal(size=2000), "y": truth, "p": predicted}, target="y", prediction="p")
    assert baseline["performance"]["metrics"] == pytest.approx({
        "accuracy": accuracy_score(truth, predicted),
        "precision": precision_score(truth, predicted, average="macro", zero_division=0),
        "recall": recall_score(truth, predicted, average="macro", zero_division=0),
        "f1": f1_score(truth, predicted, average="macro", zero_division=0),
    }, rel=1e-12)
    assert baseline["predicted_class"]["categories"].keys() == {"0", "1", "2", "3", "4"}


def test_undefined_precision_is_zero_and_roc_auc_needs_both_classes() -> None:
    never_positive = build_baseline({"x": [1, 2, 3, 4], "y": [0, 1, 0, 1], "p": [0, 0, 0, 0], "s": [.1, .2, .3, .4]},
                                    target="y", prediction="p", score="s")["performance"]["metrics"]
    assert never_positive["precision"] == precision_score([0, 1, 0, 1], [0, 0, 0, 0], zero_division=0) == 0.0
    assert never_positive["roc_auc"] == roc_auc_score([0, 1, 0, 1], [.1, .2, .3, .4])
    one_class = build_baseline({"x": [1, 2, 3], "y": [1, 1, 1], "p": [1, 0, 1], "s": [.9, .2, .8]},
                               target="y", prediction="p", score="s")["performance"]["metrics"]
    assert "roc_auc" not in one_class
    assert one_class["recall"] == recall_score([1, 1, 1], [1, 0, 1])


def test_regression_performance_equals_scikit_learn_and_the_prediction_is_the_score() -> None:
    rng = np.random.default_rng(9)
    truth = rng.normal(50, 10, 1500)
    predicted = truth + rng.normal(1.0, 3.0, 1500)
    baseline = build_baseline({"x": rng.normal(size=1500), "y": truth, "p": predicted}, target="y", prediction="p")
    assert baseline["task"] == "regression"
    assert baseline["performance"]["metrics"] == pytest.approx({
        "mae": mean_absolute_error(truth, predicted),
        "rmse": math.sqrt(mean_squared_error(truth, predicted)),
        "mean_residual": float(np.mean(truth - predicted)),  # label − prediction
    }, rel=1e-12)
    assert baseline["predicted_class"] is None
    assert baseline["score"]["column"] == "p"
    assert baseline["score"]["bin_edges"] == quantile_edges(predicted, 10).tolist()


@pytest.mark.parametrize(
    ("target", "expected"),
    [
        (list(range(20)) * 2, "classification"),
        (list(range(21)), "regression"),
        ([0.0, 1.0, 0.0], "regression"),
        (np.array([0, 1, 2, 1]), "classification"),
        (["cat", "dog", None, "cat"], "classification"),
        ([True, False, True], "classification"),
        (pd.Series([1, None, 2], dtype="Int64"), "classification"),
    ],
)
def test_task_is_detected_from_the_target(target: Any, expected: str) -> None:
    assert detect_task(target) == expected
    assert build_baseline({"x": [1.0] * len(target), "y": target}, target="y")["task"] == expected


def test_task_override_and_default_without_target() -> None:
    columns = {"x": [1.0, 2.0, 3.0, 4.0], "y": [0.0, 1.0, 1.0, 0.0], "p": [0.0, 1.0, 0.0, 0.0]}
    forced = build_baseline(columns, target="y", prediction="p", task="classification")
    assert forced["task"] == "classification"
    assert forced["performance"]["metrics"]["accuracy"] == 0.75
    assert build_baseline(columns, target="y", prediction="p")["task"] == "regression"
    assert build_baseline({"x": [1.0, 2.0], "p": ["a", "b"]}, prediction="p")["task"] == "classification"
    no_model = build_baseline({"x": [1.0, 2.0]})
    assert (no_model["task"], no_model["score"], no_model["predicted_class"], no_model["performance"]) == (
        None, None, None, None)


def test_validation_data_provides_the_performance(binary: dict[str, Any]) -> None:
    training = {"x": binary["x"][:2000], "label": binary["label"][:2000]}
    validation = {name: values[2000:] for name, values in binary.items()}
    baseline = build_baseline(training, target="label", prediction="predicted", score="proba", validation=validation)
    y, p, s = validation["label"], validation["predicted"], validation["proba"]
    assert baseline["n_rows"] == 2000
    assert baseline["performance"]["source"] == "validation"
    assert baseline["performance"]["n_rows"] == 1000
    assert baseline["performance"]["metrics"] == pytest.approx({
        "accuracy": accuracy_score(y, p), "precision": precision_score(y, p), "recall": recall_score(y, p),
        "f1": f1_score(y, p), "roc_auc": roc_auc_score(y, s)}, rel=1e-12)
    assert baseline["predicted_class"]["source"] == baseline["score"]["source"] == "validation"
    assert baseline["score"]["count"] == 1000


def test_the_calibration_map_is_scikit_learns_isotonic_fit_on_the_validation_rows(binary: dict[str, Any]) -> None:
    training = {"x": binary["x"][:2000], "label": binary["label"][:2000]}
    validation = {name: values[2000:] for name, values in binary.items()}
    baseline = build_baseline(training, target="label", prediction="predicted", score="proba", validation=validation)
    spec = baseline["calibration"]
    assert (spec["kind"], spec["method"], spec["source"], spec["n_rows"]) == (
        "positive_class", "isotonic", "validation", 1000)
    iso = IsotonicRegression(out_of_bounds="clip", y_min=0.0, y_max=1.0).fit(validation["proba"], validation["label"])
    bins = np.searchsorted(spec["bin_edges"], validation["proba"], side="right")
    np.testing.assert_array_equal(np.asarray(spec["probabilities"])[bins], iso.predict(validation["proba"]))
    assert spec["rows"] == np.bincount(bins, minlength=len(spec["probabilities"])).tolist()


def test_the_calibration_is_of_the_positive_class_and_from_the_training_rows_without_validation() -> None:
    rng = np.random.default_rng(4)
    label = rng.choice(["no", "yes"], 500)
    score = np.where(label == "yes", 0.6, 0.3) + 0.3 * rng.random(500)
    predicted = np.where(score > 0.6, "yes", "no").tolist()
    data = {"x": rng.normal(size=500), "y": label.tolist(), "p": predicted, "s": score}
    spec = build_baseline(data, target="y", prediction="p", score="s")["calibration"]
    iso = IsotonicRegression(out_of_bounds="clip", y_min=0.0, y_max=1.0).fit(score, label == "yes")
    bins = np.searchsorted(spec["bin_edges"], score, side="right")
    assert spec["source"] == "training"
    np.testing.assert_array_equal(np.asarray(spec["probabilities"])[bins], iso.predict(score))


def test_a_multiclass_calibration_is_of_the_prediction_being_right_from_the_top_score() -> None:
    rng = np.random.default_rng(5)
    label = rng.integers(0, 3, 600)
    right = rng.random(600) < 0.7
    predicted = np.where(right, label, (label + 1) % 3)
    top = np.where(right, 0.6, 0.4) + 0.4 * rng.random(600)
    spec = build_baseline({"x": rng.normal(size=600), "y": label, "p": predicted, "s": top},
                          target="y", prediction="p", score="s")["calibration"]
    iso = IsotonicRegression(out_of_bounds="clip", y_min=0.0, y_max=1.0).fit(top, right)
    bins = np.searchsorted(spec["bin_edges"], top, side="right")
    assert spec["kind"] == "correct_prediction"
    np.testing.assert_array_equal(np.asarray(spec["probabilities"])[bins], iso.predict(top))


def test_no_score_no_calibration(binary: dict[str, Any]) -> None:
    assert build_baseline(binary, target="label", prediction="predicted")["calibration"] is None


def test_validation_is_used_even_when_the_training_data_has_predictions(binary: dict[str, Any]) -> None:
    validation = {name: values[:500] for name, values in binary.items()}
    baseline = build_baseline(binary, target="label", prediction="predicted", validation=validation)
    assert baseline["performance"]["source"] == "validation"
    assert baseline["performance"]["metrics"]["accuracy"] == accuracy_score(validation["label"],
                                                                            validation["predicted"])
    assert baseline["predicted_class"]["source"] == "training"


def test_pandas_dataframe_with_every_option(binary: dict[str, Any]) -> None:
    options = {"target": "label", "prediction": "predicted", "score": "proba", "sample_size": 50, "seed": 4,
               "numeric": ["x"]}
    from_lists = build_baseline(binary, **options)
    from_frame = build_baseline(pd.DataFrame(binary), validation=None, **options)
    del from_lists["created_at"], from_frame["created_at"]
    assert from_frame == from_lists


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"sample_size": 0}, "sample_size must be an integer of at least 1, got 0"),
        ({"seed": -1}, "seed must be an integer of at least 0, got -1"),
        ({"task": "ranking"}, "task must be one of classification, regression, got 'ranking'"),
        ({"numeric": ["colour"]}, "numeric column 'colour' is not in the data"),
        ({"numeric": ["x"], "categorical": ["x"]}, "column 'x' cannot be both categorical and numeric"),
        ({"target": "t", "categorical": ["t"]}, "categorical column 't' is the target column, not a feature"),
        ({"prediction": "pred"}, "prediction column 'pred' is not in the data"),
        ({"score": "proba"}, "score column 'proba' is not in the data"),
        ({"target": "t", "prediction": "t"}, "the target and prediction columns must differ, both are 't'"),
        ({"score": "y"}, "score column 'y' must hold numbers, found 'a'"),
        ({"target": "y", "prediction": "t", "task": "regression"},
         "target column 'y' (regression) must hold numbers, found 'a'"),
        ({"target": "t", "prediction": "p", "columns": {"x": [1, 2], "t": [None, 1], "p": [1, None]}},
         "no row has both the target 't' and the prediction 'p'"),
        ({"target": "t", "validation": {"t": [1]}}, "validation data needs a target and a prediction column"),
        ({"target": "t", "prediction": "t2", "validation": {"t": [1], "t2": []}},
         "the validation data: columns differ in length"),
        ({"target": "t", "prediction": "p", "validation": {"p": [1]}},
         "target column 't' is not in the validation data"),
        ({"prediction": "p", "validation": {"t": [1]}}, "prediction column 'p' is not in the data or the validation"),
    ],
)
def test_build_rejects_bad_roles_and_options(kwargs: dict[str, Any], message: str) -> None:
    columns = kwargs.pop("columns", {"x": [1.0, 2.0, 3.0], "y": ["a", "b", "a"], "t": [0, 1, 1], "t2": [1, 1, 0]})
    with pytest.raises(BaselineError, match=re.escape(message)):
        build_baseline(columns, **kwargs)


def test_format_3_file_round_trips(binary: dict[str, Any], tmp_path: Path) -> None:
    built = build_baseline(binary, target="label", prediction="predicted", score="proba", sample_size=300,
                           model_name="m", model_version="3")
    path = tmp_path / "baseline.json"
    save_baseline(built, path)
    assert json.loads(path.read_text()) == built
    loaded = load_baseline(path)
    assert (loaded.format_version, loaded.task, loaded.sample_size) == (4, "classification", 300)
    assert loaded.performance == built["performance"]["metrics"]
    assert (loaded.classes, loaded.positive_class) == (("0", "1"), "1")
    x = loaded.numeric["x"]
    spec = built["features"]["x"]
    assert x.summary.quantiles == spec["quantiles"]
    assert (x.summary.mean, x.summary.std, x.summary.minimum, x.summary.maximum) == (
        spec["mean"], spec["std"], spec["min"], spec["max"])
    assert x.sample.dtype == np.float64 and not x.sample.flags.writeable
    assert x.sample.tolist() == spec["sample"]
    assert loaded.score.sample.tolist() == built["score"]["sample"]
    assert loaded.predicted_class.categories == tuple(built["predicted_class"]["categories"])


# --- Command line: format 2 -----------------------------------------------------------------------------------


def test_cli_help_lists_every_option() -> None:
    parser = argparse.ArgumentParser(prog="promml baseline")
    add_arguments(parser)
    text = parser.format_help()
    for option in ("--data", "--out", "--target", "--prediction", "--score", "--task", "--validation",
                   "--categorical", "--numeric", "--bins", "--sample-size", "--seed", "--model-name",
                   "--model-version"):
        assert option in text


def test_cli_with_prediction_score_and_validation(
    binary: dict[str, Any], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    names = ["x", "label", "predicted", "proba"]
    rows = [[binary[name][i].item() for name in names] for i in range(3000)]
    train = write_csv(tmp_path / "train.csv", ["x", "label"], [row[:2] for row in rows[:2000]])
    valid = write_csv(tmp_path / "valid.csv", names, rows[2000:])
    out = tmp_path / "baseline.json"
    args = parse_cli(["--data", str(train), "--out", str(out), "--target", "label", "--prediction", "predicted",
                      "--score", "proba", "--validation", str(valid), "--sample-size", "200", "--seed", "3",
                      "--task", "classification", "--numeric", "x"])
    assert run(args) == 0
    y, p, s = binary["label"][2000:], binary["predicted"][2000:], binary["proba"][2000:]
    loaded = load_baseline(out)
    assert loaded.performance == pytest.approx({
        "accuracy": accuracy_score(y, p), "precision": precision_score(y, p), "recall": recall_score(y, p),
        "f1": f1_score(y, p), "roc_auc": roc_auc_score(y, s)}, rel=1e-12)
    assert loaded.sample_size == 200 and loaded.numeric["x"].sample.size == 200
    output = capsys.readouterr().out
    assert output.startswith(f"wrote {out}: 2000 rows, 1 numeric and 0 categorical features, target 'label', "
                             "prediction 'predicted', score 'proba'; classification performance on 1000 "
                             "validation rows: accuracy=")
    assert f"accuracy={accuracy_score(y, p):.4g}" in output
    assert output.rstrip().endswith(f"; calibration (positive_class) on 1000 validation rows, "
                                    f"{loaded.calibration.bins} bins")


def test_cli_rejects_an_unknown_task(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        parse_cli(["--data", "d.csv", "--out", "b.json", "--task", "ranking"])
    assert exit_info.value.code == 2
    assert "--task: invalid choice: 'ranking'" in capsys.readouterr().err


def test_cli_refuses_a_label_column_without_target_and_says_how(tmp_path: Path,
                                                               capsys: pytest.CaptureFixture[str]) -> None:
    data = tmp_path / "train.csv"
    data.write_text("age,label\n30,1\n40,0\n")
    out = tmp_path / "baseline.json"
    assert run(parse_cli(["--data", str(data), "--out", str(out)])) == 2
    assert capsys.readouterr().err == (
        "promml baseline: column 'label' looks like the target but no --target was given, so it would become a "
        "feature: pass --target label (or --target '' to build without a target and keep it a feature)\n")
    assert run(parse_cli(["--data", str(data), "--out", str(out), "--target", ""])) == 0
    assert set(load_baseline(out).numeric) == {"age", "label"}


def test_cli_names_the_out_path_it_cannot_write(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = tmp_path / "train.csv"
    data.write_text("age,label\n30,1\n40,0\n")
    out = tmp_path / "no-such-dir" / "baseline.json"
    assert run(parse_cli(["--data", str(data), "--out", str(out), "--target", "label"])) == 2
    assert capsys.readouterr().err == f"promml baseline: cannot write {out}: No such file or directory\n"


def test_cli_positive_class_is_recorded_and_used(
    binary: dict[str, Any], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    names = ["x", "label", "predicted", "proba"]
    rows = [[binary[name][i].item() for name in names] for i in range(1000)]
    data = write_csv(tmp_path / "train.csv", names, rows)
    out = tmp_path / "baseline.json"
    assert run(parse_cli(["--data", str(data), "--out", str(out), "--target", "label", "--prediction", "predicted",
                          "--score", "proba", "--positive-class", "0"])) == 0
    y, p, s = binary["label"][:1000], binary["predicted"][:1000], binary["proba"][:1000]
    loaded = load_baseline(out)
    assert (loaded.classes, loaded.positive_class) == (("0", "1"), "0")
    assert loaded.performance == pytest.approx({
        "accuracy": accuracy_score(y, p), "precision": precision_score(y, p, pos_label=0),
        "recall": recall_score(y, p, pos_label=0), "f1": f1_score(y, p, pos_label=0),
        "roc_auc": roc_auc_score(y == 0, s)}, rel=1e-12)
    assert run(parse_cli(["--data", str(data), "--out", str(out), "--target", "label", "--prediction", "predicted",
                          "--positive-class", "7"])) == 2
    assert "positive class '7' is not one of the classes of the target and prediction ('0', '1')" in (
        capsys.readouterr().err)
    with pytest.raises(BaselineError, match="positive_class is for classification, and the task is unknown"):
        build_baseline({"x": [1.0, 2.0]}, positive_class=1)
