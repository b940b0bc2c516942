import os

from promml.exporter.log_follower import LogFollower


def append(path, text):
    with open(path, "ab") as handle:
        handle.write(text.encode())


def test_returns_complete_lines_and_keeps_the_partial_one(tmp_path):
    log = tmp_path / "p.jsonl"
    append(log, '{"a":1}\n{"a":2}\n{"a"')
    follower = LogFollower([str(log)])
    assert follower.poll().lines == [b'{"a":1}', b'{"a":2}']
    assert follower.poll().lines == []
    append(log, ':3}\n')
    assert follower.poll().lines == [b'{"a":3}']


def test_glob_picks_up_new_files(tmp_path):
    follower = LogFollower([str(tmp_path / "p*.jsonl")])
    assert follower.poll().lines == []
    append(tmp_path / "p-1.jsonl", "one\n")
    append(tmp_path / "p-2.jsonl", "two\n")
    assert sorted(follower.poll().lines) == [b"one", b"two"]


def test_rotation_by_rename_reads_the_rest_of_the_old_file_then_the_new_one(tmp_path):
    log = tmp_path / "p.jsonl"
    append(log, "1\n")
    follower = LogFollower([str(log)])
    assert follower.poll().lines == [b"1"]
    append(log, "2\n")
    os.rename(log, tmp_path / "p.jsonl.1")  # renamed out of the pattern
    append(log, "3\n")
    assert follower.poll().lines == [b"2", b"3"]
    append(log, "4\n")
    assert follower.poll().lines == [b"4"]


def test_rename_to_a_matching_name_is_not_read_twice(tmp_path):
    log = tmp_path / "p.jsonl"
    append(log, "1\n2\n")
    follower = LogFollower([str(tmp_path / "p*.jsonl")])
    assert follower.poll().lines == [b"1", b"2"]
    os.rename(log, tmp_path / "p-old.jsonl")
    append(tmp_path / "p-old.jsonl", "3\n")
    append(log, "4\n")
    assert sorted(follower.poll().lines) == [b"3", b"4"]


def test_copy_truncate_starts_over(tmp_path):
    log = tmp_path / "p.jsonl"
    append(log, "1\n2\n")
    follower = LogFollower([str(log)])
    assert follower.poll().lines == [b"1", b"2"]
    with open(log, "wb"):
        pass
    append(log, "3\n")
    assert follower.poll().lines == [b"3"]


def test_oversized_lines_are_skipped_and_counted(tmp_path):
    log = tmp_path / "p.jsonl"
    append(log, "short\n" + "x" * 50 + "\nafter\n")
    follower = LogFollower([str(log)], max_line_bytes=20)
    result = follower.poll()
    assert (result.lines, result.oversized) == ([b"short", b"after"], 1)


def test_oversized_partial_line_is_dropped_until_its_end(tmp_path):
    log = tmp_path / "p.jsonl"
    follower = LogFollower([str(log)], max_line_bytes=20)
    append(log, "y" * 30)
    assert follower.poll().oversized == 1
    append(log, "y" * 30)
    assert follower.poll().oversized == 0
    append(log, "yyy\nnext\n")
    result = follower.poll()
    assert (result.lines, result.oversized) == ([b"next"], 0)


def test_blank_lines_are_ignored_and_missing_files_are_fine(tmp_path):
    follower = LogFollower([str(tmp_path / "absent.jsonl")])
    assert follower.poll().lines == []
    append(tmp_path / "absent.jsonl", "\n  \nx\n")
    assert follower.poll().lines == [b"x"]
    follower.close()
