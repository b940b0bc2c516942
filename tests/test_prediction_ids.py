"""Prediction ids: unique per row, per call, per thread and per forked process."""

from __future__ import annotations

import asyncio
import os
import threading

from promml.instrumentation.prediction_ids import format_ids, last_prediction_ids, next_call_ids


def test_one_row_and_batch_forms_never_collide() -> None:
    single = format_ids(("p", 12, 1))
    batch = format_ids(("p", 1, 3))
    assert single == ("p-12",)
    assert batch == ("p-1-0", "p-1-1", "p-1-2")
    many = [i for seq in range(200) for i in format_ids(("p", seq, seq % 4 + 1))]
    assert len(many) == len(set(many))


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


def test_a_forked_child_gets_a_new_prefix() -> None:
    parent_prefix = next_call_ids(1)[0]
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # child
        os.write(write, next_call_ids(1)[0].encode())
        os._exit(0)
    os.waitpid(pid, 0)
    child_prefix = os.read(read, 64).decode()
    assert child_prefix and child_prefix != parent_prefix
