"""Prediction ids: unguessable, unique per row, per call, per thread and per forked process."""

from __future__ import annotations

import asyncio
import os
import threading
from hashlib import blake2b

from promml.instrumentation.prediction_ids import ID_BITS, format_ids, last_prediction_ids, next_call_ids

SECRET = bytes(range(32))


def reference(sequence: int) -> str:
    return blake2b(sequence.to_bytes(8, "little"), digest_size=12, key=SECRET).hexdigest()


def test_one_row_and_batch_forms_never_collide() -> None:
    single = format_ids((SECRET, 12, 1))
    batch = format_ids((SECRET, 1, 3))
    assert single == (reference(12),)
    assert batch == (f"{reference(1)}-0", f"{reference(1)}-1", f"{reference(1)}-2")
    many = [i for seq in range(200) for i in format_ids((SECRET, seq, seq % 4 + 1))]
    assert len(many) == len(set(many))


def test_a_call_id_is_96_bits_that_other_ids_do_not_give_away() -> None:
    """The id of the next call is not the last one's prefix with the next number: it is a keyed hash of the call's
    sequence number under the process secret, which no id reveals."""
    assert ID_BITS == 96
    ids = [next_call_ids(1) and last_prediction_ids()[0] for _ in range(60)]
    assert all(len(text) == 24 and int(text, 16) >= 0 for text in ids)
    assert len({text[:8] for text in ids}) == 60  # no shared prefix a guesser could reuse
    secret, sequence, rows = next_call_ids(2)
    assert len(secret) == 32 and rows == 2
    assert last_prediction_ids() == tuple(f"{format_ids((secret, sequence, 1))[0]}-{i}" for i in range(2))
    assert format_ids((SECRET, sequence, 1)) != format_ids((secret, sequence, 1))


def test_last_ids_are_per_thread() -> None:
    next_call_ids(2)
    mine = last_prediction_ids()
    theirs: list[tuple[str, ...]] = []
    thread = threading.Thread(target=lambda: (next_call_ids(1), theirs.append(last_prediction_ids())))
    thread.start()
    thread.join()
    assert last_prediction_ids() == mine and len(mine) == 2
    assert len(theirs[0]) == 1 and set(theirs[0]).isdisjoint(mine)


def test_last_ids_are_per_task() -> None:
    async def call(rows: int) -> tuple[str, ...]:
        next_call_ids(rows)
        await asyncio.sleep(0)
        return last_prediction_ids()

    async def both() -> list[tuple[str, ...]]:
        return list(await asyncio.gather(call(1), call(3)))

    first, second = asyncio.run(both())
    assert (len(first), len(second)) == (1, 3)


def test_a_forked_child_gets_a_new_secret() -> None:
    parent_secret = next_call_ids(1)[0]
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # child
        os.write(write, next_call_ids(1)[0])
        os._exit(0)
    os.waitpid(pid, 0)
    child_secret = os.read(read, 64)
    assert len(child_secret) == 32 and child_secret != parent_secret
