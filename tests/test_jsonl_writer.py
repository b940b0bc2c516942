import json
import threading

from promml.instrumentation.jsonl_writer import JsonlWriter, shared_writer


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
