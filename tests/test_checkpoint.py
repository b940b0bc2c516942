"""The checkpoint file: its JSON form round-trips, bad documents are refused by name, and saving is atomic."""

from __future__ import annotations

import hashlib
import json
import os

import pytest

from promml.exporter import checkpoint as checkpoint_module
from promml.exporter.checkpoint import (
    Checkpoint,
    CheckpointError,
    LabelTotals,
    checkpoint_from_dict,
    checkpoint_to_dict,
    load_checkpoint,
    save_checkpoint,
)
from promml.exporter.log_follower import READ_ELSEWHERE, FilePosition, Fingerprint
from promml.records import Feedback

POSITION = FilePosition(
    dev=2049, inode=77, path="/logs/predictions.jsonl", offset=4096, oversized_line_counted=True,
    fingerprint=Fingerprint.of(b'{"prediction_id": "a"}\n'), marks=((1_700_000_000.5, 1024), (1_700_000_100.0, 4096)),
)
COPY = FilePosition(
    dev=2049, inode=78, path="/logs/predictions.jsonl.1", offset=0, oversized_line_counted=False,
    fingerprint=Fingerprint.of(b"x"), copy_of=(2049, 77),
)
DONE = FilePosition(
    dev=1, inode=2, path="/logs/feedback.jsonl.1", offset=0, oversized_line_counted=False,
    fingerprint=Fingerprint.of(b"y"), copy_of=READ_ELSEWHERE,
)
CHECKPOINT = Checkpoint(
    model_name="m", model_version="1", saved_at=1_700_000_100.0,
    record_counts={("predictions", "ok"): 10, ("feedback", "duplicate_feedback"): 2},
    positions={"predictions": [POSITION, COPY], "feedback": [DONE]},
    labels=LabelTotals({"correct": 7, "incorrect": 1}, (0, 2, 6, 0), 131.5),
    early_labels=((Feedback("p9", 1_700_000_098.5, "yes"), 1_700_000_099.0), (Feedback("p10", 5.0, 1), 6.0)),
)


def test_round_trip_through_json():
    document = json.loads(json.dumps(checkpoint_to_dict(CHECKPOINT)))
    assert checkpoint_from_dict(document) == CHECKPOINT
    assert (document["format"], document["version"]) == ("promml-exporter-checkpoint", 2)
    assert document["record_counts"] == [
        {"log": "feedback", "status": "duplicate_feedback", "count": 2},
        {"log": "predictions", "status": "ok", "count": 10},
    ]
    assert document["logs"]["predictions"][0] == {
        "dev": 2049, "inode": 77, "path": "/logs/predictions.jsonl", "offset": 4096, "oversized_line_counted": True,
        "fingerprint": {"length": 23, "sha256": hashlib.sha256(b'{"prediction_id": "a"}\n').hexdigest()},
        "marks": [[1_700_000_000.5, 1024], [1_700_000_100.0, 4096]], "copy_of": None,
    }
    assert document["early_labels"] == [["p9", 1_700_000_098.5, "yes", 1_700_000_099.0], ["p10", 5.0, 1, 6.0]]
    assert document["labels"] == {"outcomes": {"correct": 7, "incorrect": 1}, "delay_counts": [0, 2, 6, 0],
                                  "delay_sum": 131.5}


def test_a_checkpoint_without_label_counters_is_still_used():
    document = checkpoint_to_dict(CHECKPOINT)
    del document["labels"], document["early_labels"]
    assert checkpoint_from_dict(document).labels is None and checkpoint_from_dict(document).early_labels == ()


def test_save_and_load(tmp_path):
    path = tmp_path / "state" / "checkpoint.json"
    assert load_checkpoint(path) is None  # none yet: start from the beginning
    save_checkpoint(CHECKPOINT, path)
    assert load_checkpoint(path) == CHECKPOINT
    assert sorted(p.name for p in path.parent.iterdir()) == ["checkpoint.json"]  # no temporary left behind


def test_save_replaces_atomically_and_fsyncs_file_and_folder(tmp_path, monkeypatch):
    path = tmp_path / "checkpoint.json"
    save_checkpoint(CHECKPOINT, path)
    synced = []
    real_fsync = os.fsync
    monkeypatch.setattr(checkpoint_module.os, "fsync", lambda fd: (synced.append(os.fstat(fd).st_mode), real_fsync(fd)))
    newer = Checkpoint("m", "1", 1.0, {("predictions", "ok"): 11}, {})
    save_checkpoint(newer, path)
    assert load_checkpoint(path) == newer
    assert [mode & 0o170000 for mode in synced] == [0o100000, 0o040000]  # the file's data, then the folder


def test_a_failed_save_leaves_the_previous_checkpoint(tmp_path, monkeypatch):
    path = tmp_path / "checkpoint.json"
    save_checkpoint(CHECKPOINT, path)

    def disk_full(fd):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(checkpoint_module.os, "fsync", disk_full)
    with pytest.raises(OSError, match="No space"):
        save_checkpoint(Checkpoint("m", "1", 1.0, {}, {}), path)
    assert load_checkpoint(path) == CHECKPOINT
    assert sorted(p.name for p in tmp_path.iterdir()) == ["checkpoint.json"]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"format": "other"}, "not a promml exporter checkpoint"),
        ({"version": 3}, "checkpoint version 3 is not one of 1, 2"),
        ({"version": 10**400}, "checkpoint version an integer of 1329 bits is not one of 1, 2"),
        ({"record_counts": [{"log": "predictions", "status": "ok", "count": -1}]}, "count: expected an integer from"),
        ({"record_counts": [{"log": "predictions", "status": "ok", "count": 10**400}]}, "an integer of 1329 bits"),
        ({"record_counts": [{"log": "predictions", "status": "ok", "count": 2**63}]}, r"count: expected an integer"),
        ({"record_counts": {}}, "record_counts: expected a list"),
        ({"saved_at": True}, "saved_at: expected a number"),
        ({"saved_at": 10**400}, "saved_at: expected a number from"),
        ({"saved_at": 1e300}, "saved_at: expected a number from"),
        ({"logs": {"predictions": [{"dev": 1}]}}, r"logs.predictions\[0\].fingerprint: missing"),
        ({"model_name": 3}, "model_name: expected a string"),
        ({"model_name": "\ud800"}, "model_name: not writable as UTF-8"),
        ({"labels": {"outcomes": {"correct": -2}, "delay_counts": [], "delay_sum": 0}}, "outcomes.correct: expected"),
        ({"labels": {"outcomes": {}, "delay_counts": [1.5], "delay_sum": 0}}, "delay_counts: expected an integer"),
        ({"labels": {"outcomes": {}, "delay_counts": [], "delay_sum": float("nan")}}, "delay_sum: expected"),
        ({"labels": []}, "labels.outcomes: missing"),
        ({"early_labels": {}}, "early_labels: expected a list"),
        ({"early_labels": [["p1", 1.0, 1]]}, r"early_labels\[0\]: expected \[prediction_id, timestamp, label"),
        ({"early_labels": [[7, 1.0, 1, 2.0]]}, r"early_labels\[0\]\[0\]: expected a string"),
        ({"early_labels": [["p1", 10**400, 1, 2.0]]}, r"early_labels\[0\]\[1\]: expected a number"),
        ({"newest_records": {"predictions": 10**400}}, r"newest_records.predictions: expected a number"),
    ],
)
def test_bad_documents_are_refused_with_the_reason(change, message):
    with pytest.raises(CheckpointError, match=message):
        checkpoint_from_dict({**checkpoint_to_dict(CHECKPOINT), **change})


def test_unreadable_files(tmp_path):
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(CheckpointError, match="is not JSON"):
        load_checkpoint(tmp_path / "bad.json")
    with pytest.raises(CheckpointError, match="cannot read"):
        load_checkpoint(tmp_path)  # a folder


def with_position(**change):
    """The checkpoint's document with its first prediction log position changed."""
    document = checkpoint_to_dict(CHECKPOINT)
    document["logs"]["predictions"][0].update(change)
    return document


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"offset": 2**64}, r"logs.predictions\[0\].offset: expected an integer from 0 to 9223372036854775807"),
        ({"offset": -1}, r"logs.predictions\[0\].offset: expected an integer"),
        ({"dev": 10**400}, r"logs.predictions\[0\].dev: expected an integer"),
        ({"marks": [[10**400, 0]]}, r"marks\[0\]: expected a number"),
        ({"marks": [[1.0, 2**64]]}, r"marks\[0\]: expected an integer"),
        ({"copy_of": [-1, -2]}, r"logs.predictions\[0\].copy_of: expected an integer from 0"),
        ({"copy_of": [-5, 77]}, r"logs.predictions\[0\].copy_of: expected an integer from 0"),
        ({"copy_of": [-1, -1]}, r"logs.predictions\[0\]: a copy \(copy_of set\) with an offset or marks"),
        ({"copy_of": [2049, 999]}, r"logs.predictions\[0\]: a copy \(copy_of set\) with an offset"),
        ({"offset": 0, "marks": [], "copy_of": [2049, 999]}, r"predictions\[0\].copy_of: names no original file"),
        ({"oversized_line_counted": 1}, r"oversized_line_counted: expected true or false"),
        ({"fingerprint": {"length": 10**400, "sha256": "0" * 64}}, r"fingerprint.length: expected an integer"),
        ({"fingerprint": {"length": 3, "sha256": "zz"}}, r"fingerprint.sha256: expected 64 hexadecimal digits"),
        ({"inode": 78}, r"logs.predictions: a file appears twice"),
    ],
)
def test_crafted_positions_are_refused_with_the_reason(change, message):
    with pytest.raises(CheckpointError, match=message):
        checkpoint_from_dict(with_position(**change))


def test_deep_nesting_and_huge_numbers_in_the_file_are_refused_not_raised(tmp_path):
    path = tmp_path / "checkpoint.json"
    path.write_bytes(b"[" * 100_000 + b"]" * 100_000)
    with pytest.raises(CheckpointError, match="is not JSON"):
        load_checkpoint(path)
    document = json.dumps(checkpoint_to_dict(CHECKPOINT))
    path.write_text(document.replace('"saved_at": 1700000100.0', '"saved_at": 1' + "0" * 400))
    with pytest.raises(CheckpointError, match="saved_at: expected a number"):
        load_checkpoint(path)


def test_saved_files_are_private_and_temporary_files_never_follow_a_symlink(tmp_path, monkeypatch):
    path = tmp_path / "checkpoint.json"
    save_checkpoint(CHECKPOINT, path)
    assert os.stat(path).st_mode & 0o777 == 0o600
    victim = tmp_path / "victim"
    victim.write_text("precious")
    names = iter(["planted", "planted", "fresh"])
    monkeypatch.setattr(checkpoint_module.secrets, "token_hex", lambda n: next(names))
    (tmp_path / f".checkpoint.json.{os.getpid()}.planted.tmp").symlink_to(victim)
    save_checkpoint(CHECKPOINT, path)  # the planted name is taken: another is used, the symlink is not followed
    assert victim.read_text() == "precious"
    assert load_checkpoint(path) == CHECKPOINT
    (tmp_path / "link.json").symlink_to(path)
    with pytest.raises(CheckpointError, match="cannot read"):
        load_checkpoint(tmp_path / "link.json")  # the checkpoint itself is not read through a symlink either


def test_a_checkpoint_of_version_1_is_still_read():
    document = checkpoint_to_dict(CHECKPOINT)
    document["version"] = 1
    assert checkpoint_from_dict(document) == CHECKPOINT  # no window in either: it is rebuilt from the logs
