import json
import math
import os
import stat
import threading
import time

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from promml.instrumentation import jsonl_writer
from promml.instrumentation.jsonl_writer import FILE_MODE_ENV, JsonlWriter, shared_writer


class Tally:
    def __init__(self):
        self.count = 0
        self.lock = threading.Lock()

    def __call__(self, n):
        with self.lock:
            self.count += n


def test_writes_records_as_json_lines(tmp_path):
    path = tmp_path / "sub" / "log.jsonl"
    writer = JsonlWriter(path)
    written, failed = Tally(), Tally()
    assert writer.submit([{"a": 1}, {"b": "x"}], written, failed)
    writer.flush()
    assert [json.loads(line) for line in path.read_text().splitlines()] == [{"a": 1}, {"b": "x"}]
    assert (written.count, failed.count) == (2, 0)
    writer.close()


def test_full_queue_drops_without_blocking_and_accounting_is_exact(tmp_path):
    writer = JsonlWriter(tmp_path / "log.jsonl", max_queue_batches=1)
    written, failed = Tally(), Tally()
    accepted = sum(writer.submit([{"i": i}], written, failed) for i in range(2000))
    dropped = 2000 - accepted
    writer.flush()
    assert dropped > 0
    assert written.count + failed.count == accepted
    assert len((tmp_path / "log.jsonl").read_text().splitlines()) == written.count
    writer.close()


def test_unwritable_path_counts_failures_once_logged(tmp_path, caplog):
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("a file where the log directory should be")
    writer = JsonlWriter(blocker / "log.jsonl", reopen_interval=0)
    written, failed = Tally(), Tally()
    for _ in range(5):
        writer.submit([{"a": 1}, {"a": 2}], written, failed)
    writer.flush()
    assert (written.count, failed.count) == (0, 10)
    warnings = [r for r in caplog.records if "cannot write" in r.getMessage()]
    assert len(warnings) == 1
    writer.close()


def test_unserialisable_values_are_written_as_text(tmp_path):
    writer = JsonlWriter(tmp_path / "log.jsonl")
    writer.submit([{"when": object}])
    writer.flush()
    assert json.loads((tmp_path / "log.jsonl").read_text())["when"] == str(object)
    writer.close()


def test_close_writes_what_is_queued_and_refuses_more(tmp_path):
    writer = JsonlWriter(tmp_path / "log.jsonl")
    for i in range(100):
        writer.submit([{"i": i}])
    writer.close()
    assert len((tmp_path / "log.jsonl").read_text().splitlines()) == 100
    assert writer.submit([{"late": True}]) is False


def test_shared_writer_is_one_per_file(tmp_path):
    assert shared_writer(tmp_path / "a.jsonl") is shared_writer(tmp_path / "a.jsonl")
    assert shared_writer(tmp_path / "a.jsonl") is not shared_writer(tmp_path / "b.jsonl")


def test_rotation_keeps_the_newest_backups_and_loses_no_record(tmp_path):
    writer = JsonlWriter(tmp_path / "predictions.jsonl", max_bytes=200, backup_count=3)
    for i in range(60):
        assert writer.submit([{"i": i, "pad": "x" * 20}])
        writer.flush()  # one drain per record, so the size check runs after each
    writer.close()
    rotated = writer.rotated_files()
    assert len(rotated) == 3
    assert all(p.name.startswith("predictions.2") and p.suffix == ".jsonl" for p in rotated)
    files = [*rotated, *tmp_path.glob("predictions.jsonl")]  # the live file is gone if the last write rotated
    kept = [json.loads(line)["i"] for path in files for line in path.read_text().splitlines()]
    assert kept == list(range(60 - len(kept), 60))  # the newest records, in order, none repeated
    assert all(p.stat().st_size >= 200 for p in rotated)


def test_a_full_disk_counts_failures_and_never_raises(caplog):
    writer = JsonlWriter("/dev/full")
    written, failed = Tally(), Tally()
    for _ in range(3):
        writer.submit([{"a": 1}] * 4, written, failed)
    writer.flush()
    writer.close()
    assert (written.count, failed.count) == (0, 12)  # nothing is counted written before the OS has it
    assert len([r for r in caplog.records if "cannot write" in r.getMessage()]) == 1


class Unprintable:
    """A value msgspec cannot encode: the writer's fallback for unknown types is its text, which fails here."""

    def __str__(self) -> str:
        raise ValueError("no text")


def test_a_record_the_encoder_refuses_fails_its_batch_only_not_the_drain(tmp_path):
    writer = JsonlWriter(tmp_path / "log.jsonl")
    written, failed = Tally(), Tally()
    writer._pending.extend([([{"i": 0}], written, failed), ([{"i": 1}, {"bad": Unprintable()}], written, failed),
                            ([{"i": 2}], written, failed)])  # queued together, so they are written in one drain
    writer.flush()
    assert (written.count, failed.count) == (2, 2)
    assert [json.loads(line) for line in (tmp_path / "log.jsonl").read_text().splitlines()] == [{"i": 0}, {"i": 2}]
    writer.close()


def test_a_drain_counts_consecutive_batches_of_one_callback_with_one_call(tmp_path):
    """A model's calls share one counter: a drain of many calls takes its lock once, not once per call."""
    calls: list[tuple[str, int]] = []
    first, second = (lambda n: calls.append(("first", n))), (lambda n: calls.append(("second", n)))
    writer = JsonlWriter(tmp_path / "log.jsonl")
    writer._pending.extend([([{"i": 0}], first, first), ([{"i": 1}, {"i": 2}], first, first),
                            ([{"i": 3}], second, second), ([{"i": 4}], first, first)])
    writer.flush()
    assert calls == [("first", 3), ("second", 1), ("first", 1)]
    writer.close()


def test_a_filling_queue_wakes_a_sleeping_writer(tmp_path, monkeypatch):
    """At saturation the writer must not sleep out its poll interval while the queue fills: a submit that finds
    the queue a quarter full wakes it (here the poll interval is made far longer than the test may take)."""
    monkeypatch.setattr(jsonl_writer, "IDLE_POLL_SECONDS", 60.0)
    writer = JsonlWriter(tmp_path / "log.jsonl", max_queue_batches=8)  # wakes at 2 queued
    written = Tally()
    deadline = time.monotonic() + 5
    while not writer._asleep and time.monotonic() < deadline:
        time.sleep(0.001)
    for index in range(3):
        assert writer.submit([{"i": index}], written)
    while written.count < 3 and time.monotonic() < deadline:
        time.sleep(0.001)
    assert written.count == 3
    writer.close()


def test_a_record_that_cannot_be_rendered_fails_its_batch_only(tmp_path):
    class Broken:
        def __len__(self):
            return 2

        def __iter__(self):
            raise ValueError("bad row")

    writer = JsonlWriter(tmp_path / "log.jsonl")
    written, failed = Tally(), Tally()
    writer.submit(Broken(), written, failed)
    writer.submit([{"ok": 1}], written, failed)
    writer.flush()
    assert (written.count, failed.count) == (1, 2)
    assert [json.loads(line) for line in (tmp_path / "log.jsonl").read_text().splitlines()] == [{"ok": 1}]
    writer.close()


def strict_loads(line: str):
    """json.loads that refuses the NaN and Infinity tokens, as every strict JSON reader does."""

    def refuse(token: str):
        raise ValueError(f"{token} is not JSON")

    return json.loads(line, parse_constant=refuse)


def test_nan_none_and_infinities_are_written_as_null(tmp_path):
    import numpy as np
    import pandas as pd

    writer = JsonlWriter(tmp_path / "log.jsonl")
    record = {"features": {"a": float("nan"), "b": float("inf"), "c": -float("inf"), "d": None, "e": 1.5,
                           "f": np.float32("nan"), "g": pd.NA, "h": np.float64(2.25)},
              "prediction": float("nan"), "score": float("inf")}
    writer.submit([record, {"features": {"a": 1.0}}])
    writer.flush()
    lines = (tmp_path / "log.jsonl").read_text().splitlines()
    assert "NaN" not in lines[0] and "Infinity" not in lines[0]
    assert [strict_loads(line) for line in lines] == [
        {"features": {"a": None, "b": None, "c": None, "d": None, "e": 1.5, "f": None, "g": None, "h": 2.25},
         "prediction": None, "score": None},
        {"features": {"a": 1.0}},
    ]
    writer.close()


JSON_SCALARS = st.one_of(
    st.none(), st.booleans(), st.integers(-(2**70), 2**70), st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=8),
    st.floats(allow_nan=True, allow_infinity=True, width=32).map(lambda x: __import__("numpy").float32(x)),
)
JSON_VALUES = st.recursive(
    JSON_SCALARS, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=5), inner, max_size=4),
    max_leaves=20,
)


def finite_only(value):
    """The reference: what a record reads as once every non-finite number is null (numpy scalars as Python's)."""
    if hasattr(value, "item") and getattr(value, "ndim", None) == 0:
        value = value.item()
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {key: finite_only(item) for key, item in value.items()}
    if isinstance(value, list):
        return [finite_only(item) for item in value]
    return value


@pytest.fixture(scope="module")
def one_writer(tmp_path_factory):
    """One writer for every example: what is tested is the rendering, not the thread's start and stop."""
    writer = JsonlWriter(tmp_path_factory.mktemp("log") / "log.jsonl")
    yield writer
    writer.close()


@given(records=st.lists(st.dictionaries(st.text(max_size=6), JSON_VALUES, max_size=5), min_size=1, max_size=5))
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_the_writer_never_writes_a_line_a_strict_parser_refuses(one_writer, records):
    start = one_writer.path.stat().st_size if one_writer.path.exists() else 0
    written = Tally()
    one_writer.submit(records, written)
    one_writer.flush()
    with open(one_writer.path, "rb") as handle:
        handle.seek(start)
        # split on the newline byte as the exporter does: str.splitlines would also split inside a string holding
        # U+0085 or U+2028, which JSON leaves unescaped
        lines = [line.decode("utf-8") for line in handle.read().split(b"\n")[:-1]]
    assert written.count == len(records) == len(lines)
    assert [strict_loads(line) for line in lines] == [finite_only(record) for record in records]


def test_logs_are_created_owner_only_unless_configured(tmp_path, monkeypatch):
    old_umask = os.umask(0o022)
    try:
        cases = (("default.jsonl", {}, None, 0o600), ("group.jsonl", {"file_mode": 0o640}, None, 0o640),
                 ("env.jsonl", {}, "640", 0o640), ("bad-env.jsonl", {}, "rw-r", 0o600))
        for name, options, env, mode in cases:
            if env is None:
                monkeypatch.delenv(FILE_MODE_ENV, raising=False)
            else:
                monkeypatch.setenv(FILE_MODE_ENV, env)
            writer = JsonlWriter(tmp_path / name, **options)
            assert writer.submit([{"a": 1}])
            writer.close()
            assert stat.S_IMODE(os.stat(tmp_path / name).st_mode) == mode, name
    finally:
        os.umask(old_umask)


def test_a_partial_line_left_by_a_crashed_writer_stays_one_bad_line(tmp_path):
    path = tmp_path / "log.jsonl"
    path.write_text('{"a": 1}\n{"a": 2, "b"')  # the previous writer died mid-line
    writer = JsonlWriter(path)
    assert writer.submit([{"a": 3}])
    writer.close()
    assert path.read_text() == '{"a": 1}\n{"a": 2, "b"\n{"a":3}\n'
    writer = JsonlWriter(path)  # a file that ends in a newline gets no blank line
    assert writer.submit([{"a": 4}])
    writer.close()
    assert path.read_text().splitlines()[-2:] == ['{"a":3}', '{"a":4}']


def test_an_idle_writer_keeps_no_new_memory(tmp_path):
    """Idle writers poll their queue every 10 ms for the life of the process; a round must leave nothing behind,
    or every idle writer would show in memory measurements of the rest of the program."""
    import tracemalloc

    writers = [JsonlWriter(tmp_path / f"{index}.jsonl") for index in range(4)]
    for writer in writers:
        writer.submit([{"a": 1}])
        writer.flush()
    tracemalloc.start()
    try:
        time.sleep(0.2)  # about 20 rounds of each writer
        kept = tracemalloc.take_snapshot().filter_traces([tracemalloc.Filter(True, jsonl_writer.__file__)])
    finally:
        tracemalloc.stop()
    assert sum(stat.size for stat in kept.statistics("filename")) == 0
    for writer in writers:
        writer.close()
