"""Reading baseline files: validation naming the key, format-1 compatibility, format-2 fields and bin lookup."""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import promml.baseline
import promml.baseline.builder
from promml.baseline import (
    BaselineError,
    build_baseline,
    load_baseline,
    parse_baseline,
    save_baseline,
)


@pytest.fixture
def training() -> dict[str, Any]:
    rng = np.random.default_rng(42)
    n = 2000
    return {
        "income": rng.lognormal(10, 1, n),
        "region": rng.choice(["north", "south", "east", "west"], n, p=[0.4, 0.3, 0.2, 0.1]).tolist(),
        "label": rng.integers(0, 2, n).tolist(),
    }

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


def test_categorical_reference_has_an_unseen_bucket(training: dict[str, Any]) -> None:
    reference = parse_baseline(build_baseline(training, target="label")).categorical["region"]
    assert reference.ref_ratios.size == len(reference.categories) + 1
    assert reference.ref_ratios[-1] == 0.0
    values = np.array(["south", "mars", "north", "west", ""], dtype=object)
    expected = [reference.categories.index("south"), len(reference.categories),
                reference.categories.index("north"), reference.categories.index("west"), len(reference.categories)]
    assert reference.bin_index(values).tolist() == expected
    assert reference.unseen_index == len(reference.categories)


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
        (("format_version",), 5, "'format_version' must be 1, 2, 3 or 4, got 5"),
        (("format_version",), True, "'format_version' must be 1, 2, 3 or 4, got True"),
        (("classes",), [], "'classes' must be a non-empty list of distinct strings or null"),
        (("classes",), ["0", "0"], "'classes' must be a non-empty list of distinct strings or null"),
        (("positive_class",), "2", "'positive_class' '2' must be one of 'classes'"),
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



FORMAT_1_FILE = {
    "format_version": 1,
    "created_at": "2024-05-01T12:00:00Z",
    "model_name": "credit-risk",
    "model_version": "1.0.0",
    "n_rows": 8,
    "target": "label",
    "features": {
        "age": {
            "type": "numeric", "count": 8, "missing_ratio": 0.0,
            "mean": 41.0, "std": 12.010412149464313, "min": 23.0, "max": 63.0,
            "bin_edges": [33.5, 39.5, 48.25],
            "ref_ratios": [0.25, 0.25, 0.25, 0.25],
        },
        "region": {
            "type": "categorical", "count": 7, "missing_ratio": 0.125,
            "categories": {"north": 0.42857142857142855, "east": 0.2857142857142857, "south": 0.2857142857142857},
        },
    },
}


def test_a_format_1_file_loads_with_the_newer_fields_empty(tmp_path: Path) -> None:
    file = tmp_path / "baseline.json"
    file.write_text(json.dumps(FORMAT_1_FILE))
    loaded = load_baseline(file)
    assert loaded.format_version == 1
    assert loaded.numeric["age"].edges.tolist() == [33.5, 39.5, 48.25]
    assert loaded.numeric["age"].bin_index([20, 40, 90]).tolist() == [0, 2, 3]
    assert (loaded.numeric["age"].summary, loaded.numeric["age"].sample) == (None, None)
    assert loaded.categorical["region"].categories == ("north", "east", "south")
    assert loaded.categorical["region"].missing_ratio is None
    assert (loaded.score, loaded.predicted_class, loaded.task, loaded.performance, loaded.sample_size) == (
        None, None, None, {}, None)
    assert (loaded.model_name, loaded.target, loaded.n_rows) == ("credit-risk", "label", 8)


def test_a_format_1_file_needs_only_bins() -> None:
    minimal = {"format_version": 1, "features": {"x": {"type": "numeric", "bin_edges": [0.0], "ref_ratios": [0.5, 0.5]},
                                                 "c": {"type": "categorical", "categories": {"a": 1.0}}}}
    loaded = parse_baseline(minimal)
    assert loaded.numeric["x"].ref_ratios.tolist() == [0.5, 0.5]
    assert loaded.categorical["c"].ref_ratios.tolist() == [1.0, 0.0]


@pytest.fixture
def format_4() -> dict[str, Any]:
    rng = np.random.default_rng(0)
    label = rng.integers(0, 2, 200)
    return build_baseline(
        {"x": rng.normal(size=200), "color": rng.choice(["red", "blue"], 200).tolist(), "label": label,
         "predicted": label ^ (rng.random(200) < 0.2), "proba": rng.random(200)},
        target="label", prediction="predicted", score="proba", sample_size=50,
    )


@pytest.fixture
def format_3(format_4: dict[str, Any]) -> dict[str, Any]:
    """The same file as format 3 wrote it: no calibration."""
    return {key: value for key, value in format_4.items() if key != "calibration"} | {"format_version": 3}


@pytest.fixture
def format_2(format_3: dict[str, Any]) -> dict[str, Any]:
    """The same file as format 2 wrote it: no classes, no positive class."""
    older = {key: value for key, value in format_3.items() if key not in ("classes", "positive_class")}
    return older | {"format_version": 2}


def test_a_format_2_file_loads_every_field(format_2: dict[str, Any]) -> None:
    loaded = parse_baseline(format_2)
    x = loaded.numeric["x"]
    assert loaded.format_version == 2 and loaded.sample_size == 50 and loaded.task == "classification"
    assert x.summary.count == 200 and x.summary.missing_ratio == 0.0
    assert x.summary.quantiles == format_2["features"]["x"]["quantiles"]
    assert x.sample.tolist() == format_2["features"]["x"]["sample"]
    assert loaded.categorical["color"].missing_ratio == 0.0
    assert loaded.score.summary.mean == format_2["score"]["mean"]
    assert loaded.predicted_class.categories == tuple(format_2["predicted_class"]["categories"])
    assert loaded.performance == format_2["performance"]["metrics"]
    assert set(loaded.performance) == {"accuracy", "precision", "recall", "f1", "roc_auc"}
    assert (loaded.classes, loaded.positive_class) == (None, None)


def test_a_format_3_file_records_the_classes_and_the_positive_class(format_3: dict[str, Any]) -> None:
    loaded = parse_baseline(format_3)
    assert loaded.format_version == 3
    assert (loaded.classes, loaded.positive_class) == (("0", "1"), "1")


def test_a_format_4_file_holds_the_calibration_map(format_4: dict[str, Any]) -> None:
    loaded = parse_baseline(format_4)
    spec = format_4["calibration"]
    assert loaded.format_version == 4
    assert (loaded.calibration_kind, loaded.calibration_source) == ("positive_class", "training")
    assert loaded.calibration.edges.tolist() == spec["bin_edges"]
    assert loaded.calibration.probabilities.tolist() == spec["probabilities"]
    assert loaded.calibration.rows.tolist() == spec["rows"] and sum(spec["rows"]) == spec["n_rows"] == 200


def test_older_files_load_without_a_calibration_map(format_3: dict[str, Any], format_2: dict[str, Any]) -> None:
    for document in (format_3, format_2):
        loaded = parse_baseline(document)
        assert (loaded.calibration, loaded.calibration_kind, loaded.calibration_source) == (None, None, None)


@pytest.mark.parametrize(
    ("path", "value", "message"),
    [
        (("calibration",), [1], "'calibration' must be an object or null"),
        (("calibration", "kind"), "score", "'calibration': 'kind' must be one of positive_class, correct_prediction"),
        (("calibration", "source"), "test", "'calibration': 'source' must be one of training, validation"),
        (("calibration", "bin_edges"), [0.5, 0.4], "'calibration': 'bin_edges' must be a strictly increasing"),
        (("calibration", "probabilities"), [0.5], "'calibration': 'probabilities' must be len(bin_edges) + 1"),
        (("calibration", "rows"), [1], "'calibration': 'rows' must be"),
    ],
)
def test_load_rejects_an_invalid_calibration_naming_the_key(
    format_4: dict[str, Any], path: tuple[str, ...], value: Any, message: str
) -> None:
    with pytest.raises(BaselineError, match=re.escape(message)):
        parse_baseline(_set(format_4, path, value))


def test_a_calibration_must_be_non_decreasing(format_4: dict[str, Any]) -> None:
    spec = {**format_4["calibration"], "bin_edges": [0.5], "probabilities": [0.9, 0.1], "rows": [1, 1]}
    with pytest.raises(BaselineError, match="non-decreasing"):
        parse_baseline({**format_4, "calibration": spec})


def test_a_format_2_mean_residual_is_turned_into_label_minus_prediction() -> None:
    rng = np.random.default_rng(2)
    truth = rng.normal(size=300)
    predicted = truth + 0.5
    raw = build_baseline({"x": rng.normal(size=300), "y": truth, "p": predicted}, target="y", prediction="p")
    assert raw["performance"]["metrics"]["mean_residual"] == pytest.approx(-0.5)  # label − prediction
    older = raw | {"format_version": 2, "performance": {
        **raw["performance"], "metrics": {**raw["performance"]["metrics"], "mean_residual": 0.5}}}
    older = {key: value for key, value in older.items() if key not in ("classes", "positive_class")}
    assert parse_baseline(older).performance["mean_residual"] == -0.5


def test_an_unsorted_sample_is_sorted_on_load(format_2: dict[str, Any]) -> None:
    shuffled = _set(format_2, ("features", "x", "sample"), format_2["features"]["x"]["sample"][::-1])
    assert parse_baseline(shuffled).numeric["x"].sample.tolist() == format_2["features"]["x"]["sample"]


def test_optional_format_2_parts_may_be_null(format_2: dict[str, Any]) -> None:
    document = {**format_2, "score": None, "predicted_class": None, "performance": None, "task": None}
    loaded = parse_baseline(document)
    assert (loaded.score, loaded.predicted_class, loaded.performance, loaded.task) == (None, None, {}, None)


@pytest.mark.parametrize(
    ("path", "value", "message"),
    [
        (("sample_size",), None, "'sample_size' must be a positive integer, got None"),
        (("sample_size",), 10, "feature 'x': 'sample' has 50 values, more than 'count' (200) or the file's"),
        (("features", "x", "count"), 0, "feature 'x': 'count' must be a positive integer"),
        (("features", "x", "missing_ratio"), 1.5, "feature 'x': 'missing_ratio' must be a number from 0 to 1"),
        (("features", "x", "mean"), "high", "feature 'x': 'mean' must be a finite number"),
        (("features", "x", "std"), -1.0, "feature 'x': 'std' must be >= 0 and 'min' <= 'max'"),
        (("features", "x", "quantiles"), {"p50": 0.0}, "feature 'x': 'quantiles' must map p01, p05, p25"),
        (("features", "x", "quantiles", "p05"), 99.0, "feature 'x': 'quantiles' must map"),
        (("features", "x", "sample"), [], "feature 'x': 'sample' must be a non-empty list of finite numbers"),
        (("features", "x", "sample"), [1.0, "2"], "feature 'x': 'sample' must be a non-empty list"),
        (("features", "color", "missing_ratio"), None, "feature 'color': 'missing_ratio' must be a number from 0"),
        (("task",), "ranking", "'task' must be \"classification\", \"regression\" or null, got 'ranking'"),
        (("score_column",), 3, "'score_column' must be a string or null, got 3"),
        (("score",), [1], "'score' must be an object or null"),
        (("score", "bin_edges"), [], "'score': 'bin_edges' must be a non-empty"),
        (("score", "sample"), None, "'score': 'sample' must be a non-empty list"),
        (("predicted_class", "categories"), {}, "'predicted_class': 'categories' must be a non-empty object"),
        (("performance", "source"), "tests", "'performance': 'source' must be one of training, validation"),
        (("performance", "n_rows"), 0, "'performance': 'n_rows' must be a positive integer"),
        (("performance", "metrics"), {"accuracy": None}, "'performance': 'metrics' must be a non-empty object"),
        (("performance", "metrics"), {"mae": 1.0}, "'performance': unknown classification metric 'mae'"),
    ],
)
def test_load_rejects_invalid_format_2_fields_naming_the_key(
    format_2: dict[str, Any], tmp_path: Path, path: tuple[str, ...], value: Any, message: str
) -> None:
    file = tmp_path / "baseline.json"
    file.write_text(json.dumps(_set(format_2, path, value)))
    with pytest.raises(BaselineError, match=re.escape(f"{file}: ") + ".*" + re.escape(message)):
        load_baseline(file)


def test_performance_needs_a_task(format_2: dict[str, Any]) -> None:
    with pytest.raises(BaselineError, match=re.escape("'performance': needs 'task'")):
        parse_baseline({**format_2, "task": None})


def test_the_builder_is_importable_from_here() -> None:
    for name in ("build_baseline", "save_baseline", "load_csv_columns", "add_arguments", "run", "detect_task",
                 "reference_performance"):
        assert getattr(promml.baseline, name) is getattr(promml.baseline.builder, name)
    with pytest.raises(AttributeError, match="has no attribute 'nothing'"):
        _ = promml.baseline.nothing
