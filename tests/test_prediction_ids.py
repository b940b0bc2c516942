"""Prediction ids: unguessable, unique per row, per call, per thread and per forked process."""

from __future__ import annotations

import asyncio
import os
import random
import threading
from hashlib import blake2b

from promml.instrumentation.prediction_ids import (
    ID_BITS,
    IDS_PER_HASH,
    call_prefix,
    call_prefixes,
    format_ids,
    last_prediction_ids,
    next_call_ids,
)

SECRET = bytes(range(32))


def reference(sequence: int, secret: bytes = SECRET) -> str:
    """Call `sequence`'s id: its 12-byte slice of the keyed BLAKE2b (60 bytes) of its block of five calls."""
    block, slot = divmod(sequence, 5)
    digest = blake2b(block.to_bytes(8, "little"), digest_size=60, key=secret).digest()
    return digest[12 * slot:12 * slot + 12].hex()


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


def test_one_hash_gives_five_distinct_ids_and_a_drain_gets_the_same_ids_as_one_call() -> None:
    assert IDS_PER_HASH == 5
    assert [call_prefix(SECRET, sequence) for sequence in range(10)] == [reference(sequence) for sequence in range(10)]
    assert len({reference(sequence) for sequence in range(5)}) == 5
    other = bytes(32)
    rng = random.Random(3)
    calls = [(SECRET if rng.random() < 0.7 else other, rng.randrange(40), rng.randrange(1, 4)) for _ in range(300)]
    calls += [(SECRET, sequence, 1) for sequence in range(100, 140)]  # in order, as a drain at saturation
    assert call_prefixes(calls) == [reference(sequence, secret) for secret, sequence, _ in calls]
    assert call_prefixes([]) == []


def test_ids_are_unique_over_many_calls() -> None:
    ids = call_prefixes((SECRET, sequence, 1) for sequence in range(100_000))
    assert len(set(ids)) == 100_000 and all(len(text) == 24 for text in ids)


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
