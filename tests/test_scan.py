"""The compiled fast scanner reads every line it accepts exactly as the exact decoder does, and leaves it the rest.

The exact decoder (msgspec, then `parse_line`) is the reference: for every line the scanner takes, the id,
timestamp, prediction (value and type), score and each feature must be what the exact decoder gives for it; the
exporter must count and bin the same with and without the scanner.
"""

from __future__ import annotations

import json
import math
import struct
from datetime import datetime, timedelta, timezone

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from promml.baseline import build_baseline, parse_baseline
from promml.exporter import scan
from promml.exporter.config import ExporterConfig
from promml.exporter.decode import decode_predictions_one_by_one
from promml.exporter.scan import FAST_SCANNER_BUILT, scan_predictions
from promml.exporter.service import ExporterService, parse_line
from promml.records import PREDICTION_FIELDS, Prediction, parse_prediction, prediction_record

NUMERIC = ("age", "income")
CATEGORICAL = ("region",)
MODEL = ("m", "1")
EPOCH = 1_790_000_000.123456


def exact(line: bytes) -> Prediction | None:
    """What the exporter's exact path makes of a line: its Prediction for this model, or None."""
    prediction = decode_predictions_one_by_one([line])[0]
    if prediction is None:
        status, prediction = parse_line(line, parse_prediction, PREDICTION_FIELDS)
        if status != "ok":
            return None
    if (prediction.model_name, prediction.model_version) != MODEL:
        return None
    return prediction


def as_float(value: object) -> float:
    return math.nan if value is None else float(value)


def assert_scanned_as_exact(lines: list[bytes]) -> int:
    """Every line the scanner takes equals the exact path's reading; returns how many it took."""
    columns, slow = scan_predictions(lines, *MODEL, NUMERIC, CATEGORICAL)
    taken = [line for index, line in enumerate(lines) if index not in set(slow)]
    assert len(taken) == len(columns)
    for row, line in enumerate(taken):
        expected = exact(line)
        assert expected is not None, line
        assert columns.ids[row] == expected.prediction_id
        assert columns.timestamps[row] == expected.timestamp, line
        value = columns.predictions[row]
        assert (type(value), value) == (type(expected.prediction), expected.prediction), line
        assert (type(columns.scores[row]), columns.scores[row]) == (type(expected.score), expected.score), line
        np.testing.assert_array_equal(columns.numeric[row], [as_float(expected.features[n]) for n in NUMERIC])
        for column, name in enumerate(CATEGORICAL):
            value, wanted = columns.categorical[column][row], expected.features[name]
            assert (type(value), value) == (type(wanted), wanted), line
    return len(columns)


def record_line(features: dict | None = None, **change: object) -> bytes:
    record = prediction_record("id-1", EPOCH, *MODEL, features or {"age": 41, "income": 5.5, "region": "north"}, 1,
                               0.83)
    record.update(change)
    return json.dumps({key: value for key, value in record.items() if value is not ...}).encode()


def test_the_scanner_is_built() -> None:
    assert FAST_SCANNER_BUILT, "promml.exporter._fastscan is missing: install promml with a C compiler present"


def test_lines_the_instrumentation_writes_are_all_scanned() -> None:
    rng = np.random.default_rng(1)
    lines = []
    for i in range(2000):
        features = {"age": int(rng.integers(18, 90)), "income": float(rng.lognormal(10, 1)),
                    "region": str(rng.choice(["north", "south", "ünï"]))}
        if i % 7 == 0:
            features["income"] = None
        prediction = [1, 0, "cat", 0.25, True, None][i % 6]
        score = None if i % 5 == 0 else float(rng.random())
        lines.append(json.dumps(prediction_record(f"p-{i}", EPOCH + i * 0.001, *MODEL, features, prediction, score),
                                separators=(",", ":"), ensure_ascii=False).encode())
    assert assert_scanned_as_exact(lines) == len(lines)


@pytest.mark.parametrize(
    "line",
    [
        record_line(prediction_id=""), record_line(prediction_id="a\\u00e9"), record_line(prediction_id=7),
        record_line(timestamp="2026-11-22T14:03:02"), record_line(timestamp="2026-11-22 14:03:02Z"),
        record_line(timestamp="2026-02-30T14:03:02Z"), record_line(timestamp="2026-11-22T14:03:02.1234567Z"),
        record_line(model_name="other"), record_line(model_version="2"),
        record_line({"age": 1, "income": 2.0}), record_line({"age": 1, "income": 2.0, "region": "a", "x": 1}),
        record_line({"age": "1", "income": 2.0, "region": "a"}), record_line({"age": True, "income": 2, "region": "a"}),
        record_line({"age": [1], "income": 2.0, "region": "a"}), record_line({"age": 1, "income": 2, "region": {}}),
        record_line({"age": 2**70, "income": 2.0, "region": "a"}), record_line(score="high"), record_line(score=True),
        record_line(prediction=[1]), record_line(extra=1), record_line(features=...), record_line(score=...) + b"x",
        record_line().replace(b'"age": 41', b'"age": NaN'), record_line().replace(b'"age": 41', b'"age": 1e999'),
        record_line().replace(b'"age": 41', b'"age": 01'), record_line().replace(b'"age": 41', b'"age": 1.'),
        record_line().replace(b'"age": 41', b'"age": -'), record_line().replace(b'"age": 41', b'"age": .5'),
        record_line().replace(b'"age": 41', b'"age": 41, "age": 42'),
        record_line().replace(b'"score": 0.83', b'"score": 0.' + b"0" * 99_999 + b"1e100000"),  # msgspec: 0.0
        record_line().replace(b'"score": 0.83', b'"score": 0.83, "score": 1'),
        record_line().replace(b'"north"', b'"nor\xffth"'), b"", b"{", b"[]", b"null", b"{}",
        record_line(prediction_id="i" * 129),
        record_line().replace(b'"north"', b'"\\ud800"'), record_line().replace(b'"region"', b'"\\udc00"'),
        record_line() + b"," + record_line(),
    ],
)
def test_anything_unusual_is_left_to_the_exact_decoder(line: bytes) -> None:
    columns, slow = scan_predictions([line], *MODEL, NUMERIC, CATEGORICAL)
    assert (len(columns), slow) == (0, [0])


def test_names_without_a_utf8_form_leave_every_line_to_the_exact_decoder() -> None:
    lines = [record_line(), record_line()]
    for model, numeric in (((MODEL[0], MODEL[1]), ("age\ud800", "income")), (("m\ud800", "1"), NUMERIC)):
        columns, slow = scan_predictions(lines, *model, numeric, CATEGORICAL)
        assert (len(columns), slow) == (0, [0, 1])


def test_a_wide_baseline_is_scanned_too() -> None:
    names = tuple(f"f{i}" for i in range(5000))
    line = json.dumps(prediction_record("w", EPOCH, *MODEL, dict.fromkeys(names, 0.5), 1, None)).encode()
    columns, slow = scan_predictions([line], *MODEL, names, ())
    assert slow == [] and columns.numeric.shape == (1, 5000) and (columns.numeric == 0.5).all()


def test_whitespace_key_order_and_offsets_are_read_as_the_exact_decoder_reads_them() -> None:
    record = json.loads(record_line())
    lines = [
        json.dumps(record, indent=2).encode(),
        json.dumps(dict(reversed(record.items()))).encode() + b" \r",
        record_line(timestamp="2026-11-22T14:03:02+05:30"), record_line(timestamp="2026-11-22T14:03:02.5-08:00"),
        record_line(timestamp="1970-01-01T00:00:00Z"), record_line(timestamp="2000-02-29T23:59:59.999999Z"),
        record_line(timestamp="1900-01-01T00:00:00+00:00"), record_line(score=...), record_line(score=None),
        record_line(score=3), record_line({"age": None, "income": -0.0, "region": None}),
        record_line({"age": -0, "income": 1e-320, "region": 7}),
        record_line({"age": 1.5e300, "income": 12345678901234567, "region": 2.5}),
        record_line().replace(b'"score": 0.83', b'"score": 0.' + b"0" * 99_990 + b"1e99999"),
        record_line(prediction=-123456789012345678), record_line(prediction=0.1), record_line(prediction=False),
    ]
    assert assert_scanned_as_exact(lines) == len(lines)


finite_floats = st.floats(allow_nan=False, allow_infinity=False)


def number_texts() -> st.SearchStrategy[str]:
    """Numbers as JSON writers spell them: repr, %.17g, exponents, long and short integers, odd zeros."""
    return st.one_of(
        finite_floats.map(repr),
        finite_floats.map(lambda x: f"{x:.17g}" if "n" not in f"{x:.17g}" else "0"),
        st.integers(-(10**18), 10**18).map(str),
        st.tuples(st.integers(-(10**17), 10**17), st.integers(-330, 330)).map(lambda t: f"{t[0]}e{t[1]}"),
        st.tuples(st.integers(0, 10**30), st.integers(0, 40)).map(lambda t: f"0.{'0' * t[1]}{t[0]}"),
        st.sampled_from(["0", "-0", "0.0", "-0.0", "0e0", "1E+2", "1e-2", "123456789012345.678"]),
    )


@settings(max_examples=500, deadline=None)
@given(text=number_texts())
def test_numbers_are_read_as_the_exact_decoder_reads_them(text: str) -> None:
    line = record_line().replace(b'"income": 5.5', b'"income": ' + text.encode())
    columns, slow = scan_predictions([line], *MODEL, NUMERIC, CATEGORICAL)
    expected = exact(line)
    if expected is None:
        assert slow == [0]
        return
    if not slow:  # taken: the very same double, bit for bit (an integer's -0 is the exact path's 0)
        got = struct.pack("<d", columns.numeric[0, 1])
        assert got == struct.pack("<d", float(expected.features["income"])), text


@settings(max_examples=300, deadline=None)
@given(
    moment=st.datetimes(min_value=datetime(1686, 1, 1), max_value=datetime(2254, 12, 31)),  # µs exact as doubles
    offset_minutes=st.integers(-23 * 60 - 59, 23 * 60 + 59),
    digits=st.integers(0, 6),
    zulu=st.booleans(),
)
def test_timestamps_are_read_as_datetime_reads_them(moment, offset_minutes, digits, zulu) -> None:
    offset = timezone(timedelta(minutes=0 if zulu else offset_minutes))
    text = moment.replace(tzinfo=offset).isoformat(timespec="microseconds")
    text = text[:20 + digits] + text[26:] if digits else text[:19] + text[26:]
    if zulu:
        text = text.replace("+00:00", "Z")
    line = record_line(timestamp=text)
    columns, slow = scan_predictions([line], *MODEL, NUMERIC, CATEGORICAL)
    assert not slow, text
    assert columns.timestamps[0] == datetime.fromisoformat(text).timestamp() == exact(line).timestamp


scalars = st.one_of(st.none(), st.booleans(), st.integers(-(2**64), 2**64), st.floats(), st.text(max_size=8))
numbers = st.one_of(st.none(), st.integers(-1000, 1000), st.integers(-(10**20), 10**20), finite_floats)
FIELDS = ("prediction_id", "timestamp", "model_name", "model_version", "features", "prediction", "score", "extra")


@st.composite
def records(draw: st.DrawFn) -> dict:
    """A record the scanner may take, then up to two changes that may spoil it: a field or feature of any value,
    a field or feature left out, or one added."""
    record = {
        "prediction_id": draw(st.text(min_size=1, max_size=6)),
        "timestamp": draw(st.sampled_from(["2026-11-22T14:03:02.250Z", "2026-11-22T14:03:02+01:00"])),
        "model_name": "m", "model_version": "1",
        "features": {"age": draw(numbers), "income": draw(numbers), "region": draw(st.one_of(st.text(), scalars))},
        "prediction": draw(st.one_of(st.integers(0, 3), st.text(max_size=5), scalars)),
    }
    if draw(st.booleans()):
        record["score"] = draw(numbers)
    for _ in range(draw(st.integers(0, 2))):
        change, key = draw(st.sampled_from(["set", "drop"])), draw(st.sampled_from(FIELDS))
        target = record
        if key == "features" and isinstance(record.get("features"), dict) and draw(st.booleans()):
            target, key = record["features"], draw(st.sampled_from(["age", "income", "region", "other"]))
        if change == "drop":
            target.pop(key, None)
        else:
            target[key] = draw(st.one_of(scalars, st.text(max_size=30), st.lists(scalars, max_size=2)))
    return record


@settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(record=records(), indent=st.sampled_from([None, 1]), ascii_only=st.booleans())
def test_generated_records_are_read_as_the_exact_decoder_reads_them(record, indent, ascii_only) -> None:
    assert_scanned_as_exact([json.dumps(record, indent=indent, ensure_ascii=ascii_only).encode()])


@settings(max_examples=300, deadline=None)
@given(garbage=st.lists(st.binary(max_size=200), max_size=5), good=st.booleans())
def test_garbage_is_never_taken(garbage, good) -> None:
    lines = [*garbage, record_line()] if good else garbage
    assert_scanned_as_exact(lines)


def test_the_exporter_counts_and_bins_the_same_without_the_scanner(tmp_path, monkeypatch) -> None:
    rng = np.random.default_rng(4)
    columns = {"age": rng.integers(18, 90, 500).tolist(), "income": rng.lognormal(10, 1, 500).tolist(),
               "region": rng.choice(["north", "south"], 500).tolist()}
    baseline = parse_baseline(build_baseline(columns, categorical=["region"]))
    start = 1_700_000_000.0
    lines = []
    for i in range(3000):
        features = {"age": int(rng.integers(10, 99)), "income": float(rng.lognormal(10.3, 1)),
                    "region": str(rng.choice(["north", "south", "west"]))}
        odd = i % 50
        if odd == 1:
            features["age"] = "old"
        elif odd == 2:
            del features["region"]
        elif odd == 3:
            features["shoe_size"] = 44
        elif odd == 4:
            features["income"] = None
        line = json.dumps(prediction_record(f"p{i}", start + i * 0.02, *MODEL, features, int(rng.integers(0, 2)),
                                            float(rng.random())))
        lines.append(line if odd != 5 else line.replace('"age": ', '"age":  '))
    lines += ["not json", json.dumps(prediction_record("q", start, "other", "1", {}, 1, None))]
    (tmp_path / "predictions.jsonl").write_text("\n".join(lines) + "\n")

    def run() -> ExporterService:
        config = ExporterConfig(model_name="m", model_version="1", baseline=tmp_path / "baseline.json",
                                prediction_logs=(str(tmp_path / "predictions.jsonl"),), feedback_logs=(),
                                window_seconds=600.0, slot_seconds=10.0, segments=("region",))
        service = ExporterService(config, baseline, clock=lambda: start + 70)
        service.read_logs()
        service.recompute()
        return service

    fast = run()
    monkeypatch.setattr(scan, "_scan", None)
    slow = run()
    assert fast.record_counts == slow.record_counts
    assert fast.record_counts[("predictions", "ok")] == 3000
    ours, theirs = fast.published.snapshot, slow.published.snapshot
    for name in ("predictions", "feature_counts", "drift", "missing_ratio", "out_of_range_ratio", "unseen_ratio",
                 "schema_violations", "prediction_counts", "segments", "sample_sizes", "ks", "wasserstein"):
        assert repr(getattr(ours, name)) == repr(getattr(theirs, name)), name
    assert fast.window._pending == slow.window._pending and fast.window.pending == 3000  # in the order read


def test_rows_of_both_readers_are_added_in_the_order_of_their_lines(tmp_path) -> None:
    """A repeated id keeps its last line and segments fill in line order, whichever reader read each line."""
    rng = np.random.default_rng(5)
    baseline = parse_baseline(build_baseline({"age": rng.integers(18, 90, 300).tolist(),
                                              "income": rng.lognormal(10, 1, 300).tolist(),
                                              "region": rng.choice(["a", "b"], 300).tolist()},
                                             categorical=["region"]))
    start = 1_700_000_000.0

    def record(pid: str, region: str, predicted: int, extra: bool = False) -> str:
        features = {"age": 30, "income": 1.0, "region": region, **({"extra": 1} if extra else {})}
        return json.dumps(prediction_record(pid, start, *MODEL, features, predicted, None))

    lines = [record("d", "a", 0, extra=True), record("d", "a", 1), record("s1", "a", 1),
             *(record(f"s{i}", "b", 1, extra=True) for i in range(2, 5))]
    (tmp_path / "predictions.jsonl").write_text("\n".join(lines) + "\n")
    config = ExporterConfig(model_name="m", model_version="1", baseline=tmp_path / "baseline.json",
                            prediction_logs=(str(tmp_path / "predictions.jsonl"),), feedback_logs=(),
                            window_seconds=60.0, slot_seconds=10.0, segments=("region",), max_segment_values=1)
    service = ExporterService(config, baseline, clock=lambda: start + 1)
    service.read_logs()
    service.recompute()
    assert service.window._pending["d"][1] == 1  # the last line of "d", read by the scanner, after the exact one
    assert {value: counts.rows for value, counts in service.published.snapshot.segments["region"].items()} == {
        "a": 3, "__other__": 3}  # "a" came first in the file, so it holds the slot's one value
