import os
import shutil
import threading
from dataclasses import replace

import pytest

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


def copytruncate(log, rotated):
    """What logrotate's `copytruncate` does: copy the file aside, then empty it in place."""
    shutil.copyfile(log, rotated)
    os.truncate(log, 0)


def test_several_patterns_read_each_file_once(tmp_path):
    append(tmp_path / "a.jsonl", "a1\n")
    append(tmp_path / "b-1.jsonl", "b1\n")
    append(tmp_path / "c.log", "c1\n")
    follower = LogFollower([str(tmp_path / "a.jsonl"), str(tmp_path / "*.jsonl"), str(tmp_path / "b-*")])
    assert sorted(follower.poll().lines) == [b"a1", b"b1"]
    append(tmp_path / "a.jsonl", "a2\n")
    append(tmp_path / "b-1.jsonl", "b2\n")
    assert sorted(follower.poll().lines) == [b"a2", b"b2"]


def test_copy_truncate_between_polls_reads_the_unread_rest_from_the_copy(tmp_path):
    log = tmp_path / "p.jsonl"
    append(log, "1\n")
    follower = LogFollower([str(tmp_path / "p.jsonl*")])
    assert follower.poll().lines == [b"1"]
    append(log, "2\n3\n")  # written after the last poll: only the copy holds them once the file is emptied
    copytruncate(log, tmp_path / "p.jsonl.1")
    append(log, "4\n")
    assert follower.poll().lines == [b"2", b"3", b"4"]
    append(log, "5\n")
    assert follower.poll().lines == [b"5"]


def test_copy_truncate_completes_a_partial_line_from_the_copy(tmp_path):
    log = tmp_path / "p.jsonl"
    append(log, "1\n2")
    follower = LogFollower([str(tmp_path / "p.jsonl*")])
    assert follower.poll().lines == [b"1"]
    append(log, "2\n")
    copytruncate(log, tmp_path / "p.jsonl.1")
    append(log, "3\n")
    assert follower.poll().lines == [b"22", b"3"]


def test_a_poll_between_the_copy_and_the_truncate_reads_nothing_twice(tmp_path):
    log = tmp_path / "p.jsonl"
    append(log, "1\n")
    follower = LogFollower([str(tmp_path / "p.jsonl*")])
    assert follower.poll().lines == [b"1"]
    append(log, "2\n")
    shutil.copyfile(log, tmp_path / "p.jsonl.1")
    assert follower.poll().lines == [b"2"]  # from the original; the copy is not read while the original is intact
    os.truncate(log, 0)
    append(log, "3\n")
    assert follower.poll().lines == [b"3"]
    assert follower.poll().lines == []


@pytest.mark.parametrize("written_at_first_sight", [b"", b"1\n"])
def test_a_copy_seen_while_it_is_still_being_written_is_not_read_as_new(tmp_path, written_at_first_sight):
    """`cp` creates the copy first and fills it after: a poll in between must not take it for a new log."""
    log = tmp_path / "p.jsonl"
    append(log, "1\n2\n")
    follower = LogFollower([str(tmp_path / "p.jsonl*")])
    assert follower.poll().lines == [b"1", b"2"]
    copy = tmp_path / "p.jsonl.1"
    copy.write_bytes(written_at_first_sight)
    assert follower.poll().lines == []
    copy.write_bytes(log.read_bytes())
    os.truncate(log, 0)
    append(log, "3\n")
    assert follower.poll().lines == [b"3"]
    assert follower.poll().lines == []


def test_a_log_seen_empty_is_not_taken_for_a_copy_of_its_own_copy(tmp_path):
    """A log created empty, then written and copied before the next poll: the log is the original."""
    log = tmp_path / "p.jsonl"
    log.touch()
    follower = LogFollower([str(tmp_path / "p*.jsonl")])
    assert follower.poll().lines == []
    append(log, "1\n")
    shutil.copyfile(log, tmp_path / "p-backup.jsonl")  # sorts before p.jsonl, same size
    assert follower.poll().lines == [b"1"]
    append(log, "2\n")
    assert follower.poll().lines == [b"2"]


def test_logrotate_copytruncate_with_numbered_copies_over_several_cycles(tmp_path):
    """`copytruncate` + `rotate 2`: p.jsonl.1 is renamed to p.jsonl.2, p.jsonl copied to p.jsonl.1 and emptied,
    the oldest deleted; every line is read once whatever the polls in between."""
    log = tmp_path / "p.jsonl"
    follower = LogFollower([str(tmp_path / "p.jsonl*")])
    seen: list[bytes] = []
    line = 0
    for cycle in range(4):
        for _ in range(3):
            append(log, f"{cycle}-{line}\n")
            line += 1
            if line % 2:
                seen += follower.poll().lines
        if (tmp_path / "p.jsonl.2").exists():
            os.remove(tmp_path / "p.jsonl.2")
        if (tmp_path / "p.jsonl.1").exists():
            os.rename(tmp_path / "p.jsonl.1", tmp_path / "p.jsonl.2")
        copytruncate(log, tmp_path / "p.jsonl.1")
        if cycle % 2:
            seen += follower.poll().lines
    seen += follower.poll().lines
    assert seen == [f"{i // 3}-{i}".encode() for i in range(line)]


def test_a_backup_copy_that_is_never_truncated_is_not_read(tmp_path):
    log = tmp_path / "p.jsonl"
    append(log, "1\n2\n")
    follower = LogFollower([str(tmp_path / "p*.jsonl")])
    assert follower.poll().lines == [b"1", b"2"]
    shutil.copyfile(log, tmp_path / "p-backup.jsonl")
    append(log, "3\n")
    assert follower.poll().lines == [b"3"]
    os.remove(log)
    assert follower.poll().lines == []  # the original was read to its end: the copy holds nothing new


def test_copies_of_a_log_emptied_before_any_of_it_was_read_are_read_once(tmp_path):
    """A backup copy (`copy`), then a copy-truncate, then another copy of the new content, all before the follower
    read the log: the second copy of the new content is told a copy by the first copy's first bytes (the emptied
    log has none to compare with), so its lines are read once."""
    log = tmp_path / "p.jsonl"
    append(log, "0\n1\n")
    shutil.copyfile(log, tmp_path / "p.jsonl.c1")  # logrotate `copy`: a backup, the log goes on
    os.truncate(log, 0)
    append(log, "2\n")
    shutil.copyfile(log, tmp_path / "p.jsonl.c2")  # ...then `copytruncate`, in two steps
    follower = LogFollower([str(tmp_path / "p.jsonl*")])
    lines = follower.poll(max_bytes=1).lines  # the budget ends in the backup: the log itself is not read yet
    shutil.copyfile(log, tmp_path / "p.jsonl.c3")
    os.truncate(log, 0)
    for _ in range(3):
        lines += follower.poll().lines
    assert sorted(lines) == [b"0", b"1", b"2"]


def test_truncated_and_rewritten_past_the_old_size_is_read_again(tmp_path):
    log = tmp_path / "p.jsonl"
    append(log, "old-1\n")
    follower = LogFollower([str(log)])
    assert follower.poll().lines == [b"old-1"]
    with open(log, "wb") as handle:  # emptied and refilled between polls: the size alone does not tell
        handle.write(b"new-1\nnew-2\n")
    assert follower.poll().lines == [b"new-1", b"new-2"]


def test_a_poll_budget_leaves_the_rest_for_the_next_poll(tmp_path):
    log = tmp_path / "p.jsonl"
    append(log, "".join(f"{i:03d}\n" for i in range(100)))
    follower = LogFollower([str(log)])
    lines = []
    while batch := follower.poll(max_bytes=37).lines:
        lines += batch
    assert lines == [f"{i:03d}".encode() for i in range(100)]


def restarted(follower: LogFollower, patterns, replay_since: float = 0.0) -> LogFollower:
    """A new follower resumed from the positions of `follower`, as after a restart."""
    fresh = LogFollower(patterns)
    fresh.restore(follower.positions(), replay_since)
    follower.close()
    return fresh


def test_restore_replays_counted_lines_and_returns_the_rest_as_new(tmp_path):
    log = tmp_path / "p.jsonl"
    append(log, "1\n2\n3")
    follower = LogFollower([str(log)])
    assert follower.poll().lines == [b"1", b"2"]
    append(log, "\n4\n")
    follower = restarted(follower, [str(log)])
    assert follower.replaying
    result = follower.poll()
    assert (result.replayed, result.lines) == ([b"1", b"2"], [b"3", b"4"])
    assert not follower.replaying


def test_restore_replays_only_from_the_last_mark_before_the_window(tmp_path):
    log = tmp_path / "p.jsonl"
    follower = LogFollower([str(log)])
    for second, text in [(100.0, "a\n"), (200.0, "b\n"), (300.0, "c\n")]:
        append(log, text)
        follower.poll()
        follower.mark(second, keep_since=0.0, min_spacing=1.0)
    follower = restarted(follower, [str(log)], replay_since=250.0)  # the mark at 200 s: "c" may be in the window
    assert follower.poll().replayed == [b"c"]
    follower = restarted(follower, [str(log)], replay_since=50.0)  # no mark that early: from the start
    assert follower.poll().replayed == [b"a", b"b", b"c"]


def test_marks_are_spaced_and_pruned(tmp_path):
    log = tmp_path / "p.jsonl"
    follower = LogFollower([str(log)])
    for second in range(10):
        append(log, f"{second}\n")
        follower.poll()
        follower.mark(float(second), keep_since=second - 4.0, min_spacing=2.0)
    (position,) = follower.positions()
    assert position.marks == ((4.0, 10), (6.0, 14), (8.0, 18))  # one every 2 s; 4 s is the one a restart needs


def test_an_oversized_line_counted_before_a_restart_is_not_counted_again(tmp_path):
    log = tmp_path / "p.jsonl"
    append(log, "a\n" + "x" * 30)
    follower = LogFollower([str(log)], max_line_bytes=20)
    result = follower.poll()
    assert (result.lines, result.oversized) == ([b"a"], 1)
    (position,) = follower.positions()
    assert (position.offset, position.oversized_line_counted) == (2, True)
    append(log, "x\nb\n")
    fresh = LogFollower([str(log)], max_line_bytes=20)
    fresh.restore([position], 0.0)
    result = fresh.poll()
    assert (result.replayed, result.lines, result.oversized) == ([b"a"], [b"b"], 0)


def test_restore_detects_a_reused_inode_by_its_first_bytes(tmp_path):
    log = tmp_path / "p.jsonl"
    append(log, "old-1\nold-2\n")
    follower = LogFollower([str(log)])
    follower.poll()
    (position,) = follower.positions()
    follower.close()
    with open(log, "r+b") as handle:  # same inode, other content: as if the file was replaced while stopped
        handle.write(b"new-1\nnew-2\nnew-3\n")
    fresh = LogFollower([str(log)])
    fresh.restore([position], 0.0)
    result = fresh.poll()
    assert (result.replayed, result.lines) == ([], [b"new-1", b"new-2", b"new-3"])


def test_restore_after_a_truncate_while_stopped_goes_on_in_the_copy(tmp_path):
    log = tmp_path / "p.jsonl"
    append(log, "1\n2\n")
    follower = LogFollower([str(tmp_path / "p.jsonl*")])
    follower.poll()
    positions = follower.positions()
    follower.close()
    append(log, "3\n")
    copytruncate(log, tmp_path / "p.jsonl.1")
    append(log, "4\n")
    fresh = LogFollower([str(tmp_path / "p.jsonl*")])
    fresh.restore(positions, 0.0)
    result = fresh.poll()
    assert (result.replayed, sorted(result.lines)) == ([b"1", b"2"], [b"3", b"4"])


def test_restore_after_a_rename_while_stopped_follows_the_inode(tmp_path):
    log = tmp_path / "p.jsonl"
    append(log, "1\n")
    follower = LogFollower([str(tmp_path / "p*.jsonl")])
    follower.poll()
    positions = follower.positions()
    follower.close()
    append(log, "2\n")
    os.rename(log, tmp_path / "p-old.jsonl")
    append(log, "3\n")
    fresh = LogFollower([str(tmp_path / "p*.jsonl")])
    fresh.restore(positions, 0.0)
    result = fresh.poll()
    assert (result.replayed, sorted(result.lines)) == ([b"1"], [b"2", b"3"])


def test_restore_finds_a_file_whose_device_number_changed_by_its_first_bytes(tmp_path):
    log = tmp_path / "p.jsonl"
    append(log, "1\n2\n")
    follower = LogFollower([str(log)])
    follower.poll()
    (position,) = follower.positions()
    follower.close()
    append(log, "3\n")
    moved = replace(position, dev=position.dev + 1)  # e.g. a remount: the same file under another device number
    fresh = LogFollower([str(log)])
    fresh.restore([moved], 0.0)
    result = fresh.poll()
    assert (result.replayed, result.lines) == ([b"1", b"2"], [b"3"])


def test_a_checkpointed_file_that_is_gone_is_dropped(tmp_path):
    log = tmp_path / "p.jsonl"
    append(log, "1\n")
    follower = LogFollower([str(log)])
    follower.poll()
    positions = follower.positions()
    follower.close()
    os.remove(log)
    fresh = LogFollower([str(log)])
    fresh.restore(positions, 0.0)
    assert fresh.replaying
    assert fresh.poll().lines == []
    assert (fresh.replaying, fresh.positions()) == (False, [])


def poll_in_thread(follower, **options):
    """poll() on a daemon thread, given 5 s: a follower that blocks fails the test instead of hanging it."""
    outcome = {}
    thread = threading.Thread(target=lambda: outcome.update(result=follower.poll(**options)), daemon=True)
    thread.start()
    thread.join(5)
    assert not thread.is_alive(), "poll() blocked"
    return outcome["result"]


def test_a_fifo_matching_the_glob_is_not_opened(tmp_path):
    os.mkfifo(tmp_path / "p-fifo.jsonl")
    append(tmp_path / "p-1.jsonl", "one\n")
    follower = LogFollower([str(tmp_path / "p*.jsonl")])
    assert poll_in_thread(follower).lines == [b"one"]
    assert [position.path for position in follower.positions()] == [str(tmp_path / "p-1.jsonl")]
    assert follower.refused == {str(tmp_path / "p-fifo.jsonl"): "not a regular file"}


def test_a_symlink_to_a_device_is_not_read(tmp_path):
    os.symlink("/dev/zero", tmp_path / "p-zero.jsonl")
    follower = LogFollower([str(tmp_path / "p*.jsonl")], follow_symlinks_out=True)
    result = poll_in_thread(follower, max_bytes=1 << 16)
    assert (result.lines, result.oversized, result.more, follower.positions()) == ([], 0, False, [])
    assert follower.refused == {str(tmp_path / "p-zero.jsonl"): "not a regular file"}


def test_a_symlink_out_of_the_log_directory_is_followed_only_when_configured(tmp_path):
    logs, elsewhere = tmp_path / "logs", tmp_path / "elsewhere"
    logs.mkdir()
    elsewhere.mkdir()
    append(elsewhere / "secret.txt", "root:x:0:0\n")
    os.symlink(elsewhere / "secret.txt", logs / "p-out.jsonl")
    append(logs / "p-real.jsonl", "in\n")
    os.symlink("p-real.jsonl", logs / "p-link.jsonl")  # inside the directory: the same file, read once
    follower = LogFollower([str(logs / "p*.jsonl")])
    assert follower.poll().lines == [b"in"]
    assert follower.refused == {str(logs / "p-out.jsonl"): "a symlink out of the log directory"}
    following = LogFollower([str(logs / "p*.jsonl")], follow_symlinks_out=True)
    assert sorted(following.poll().lines) == [b"in", b"root:x:0:0"]


def test_a_file_renamed_out_of_the_glob_is_read_within_the_poll_budget(tmp_path):
    log = tmp_path / "p.jsonl"
    line = "x" * 1023 + "\n"
    append(log, line)
    follower = LogFollower([str(log)])
    assert len(follower.poll().lines) == 1
    append(log, line * 4096)  # a 4 MiB backlog
    os.rename(log, tmp_path / "p.jsonl.1")
    append(log, "new\n")
    budget, polls, read = 1 << 20, 0, []
    while True:
        result = follower.poll(max_bytes=budget)
        polls += 1
        assert sum(len(text) + 1 for text in result.lines) <= budget + len(line)
        read.extend(result.lines)
        if not result.more:
            break
    assert polls == 5
    assert read == [line[:-1].encode()] * 4096 + [b"new"]
    assert [position.path for position in follower.positions()] == [str(log)]
