"""Prediction ids: unguessable, unique across processes, and cheap to make on the hot path.

An id is the caller's proof that a label belongs to its prediction, so it must not be guessable from other ids: the
id of a call is 96 bits of a keyed BLAKE2b under a 256-bit secret drawn from `secrets` per process (redrawn in a
forked child). One hash gives the ids of five consecutive calls: its 60-byte output, keyed, is a pseudo-random
function of the block number (the call's sequence number divided by five), and each 12-byte slice of it is one call's
id, so without the secret an id is as unpredictable as 96 random bits however many ids one has seen, its block's
other four included. Only the sequence number is taken on the calling thread (`itertools.count` is thread-safe under
the GIL): the hash and the id strings are made when somebody reads them, on the log writer's thread (one hash per
five calls, `call_prefixes`) or in `last_prediction_ids()`. A one-row call gets `<24 hex digits>`; row `i` of a
batch gets `<24 hex digits>-<i>` (a dash only in the batch form, so the two forms never collide). The last call's ids
live in a context variable, so threads and asyncio tasks each see their own. Unguessable ids are not
authentication: an endpoint that accepts labels must still check who sends them (docs/instrumentation.md, Security).
"""

from __future__ import annotations

import itertools
import os
import secrets
from collections.abc import Iterable
from contextvars import ContextVar
from hashlib import blake2b

CallIds = tuple[bytes, int, int]
"""(process secret, call sequence number, rows in the call): everything needed to format the call's ids."""

ID_BITS = 96
"""Bits of each call's id: guessing one live id among a million waiting for labels takes about 2**76 tries."""
ID_HEX_DIGITS = ID_BITS // 4
IDS_PER_HASH = 5
"""Calls whose ids one keyed BLAKE2b gives: its longest output (64 bytes) holds five 96-bit ids. Hashing was a third
of the log writer's time per row when each call had its own hash."""

_secret = secrets.token_bytes(32)
_counter = itertools.count()
_last_call: ContextVar[CallIds | None] = ContextVar("promml_last_call_ids", default=None)


def _reset_after_fork() -> None:
    """A forked worker must neither repeat its parent's ids nor share the secret that makes them."""
    global _secret, _counter
    _secret, _counter = secrets.token_bytes(32), itertools.count()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_reset_after_fork)


def next_call_ids(rows: int) -> CallIds:
    """Reserve the ids of a call of `rows` rows and remember them as this context's last call."""
    call = (_secret, next(_counter), rows)
    _last_call.set(call)
    return call


def _block_digits(secret: bytes, block: int) -> str:
    """The hex digits of the ids of calls `IDS_PER_HASH * block` to `IDS_PER_HASH * block + IDS_PER_HASH - 1`."""
    return blake2b(block.to_bytes(8, "little"), digest_size=IDS_PER_HASH * ID_BITS // 8, key=secret).hexdigest()


def call_prefix(secret: bytes, sequence: int) -> str:
    """The id of call `sequence` in its one-row form (a batch's rows add `-<row>`)."""
    block, slot = divmod(sequence, IDS_PER_HASH)
    start = slot * ID_HEX_DIGITS
    return _block_digits(secret, block)[start:start + ID_HEX_DIGITS]


def call_prefixes(calls: Iterable[CallIds]) -> list[str]:
    """`call_prefix` of many calls, hashing once per run of calls in the same block: the log writer drains calls in
    about the order they were made, so a drain costs about one hash per five calls."""
    prefixes = []
    cached_secret, cached_block, digits = b"", -1, ""
    for secret, sequence, _ in calls:
        block = sequence // IDS_PER_HASH
        if block != cached_block or secret is not cached_secret:
            cached_secret, cached_block, digits = secret, block, _block_digits(secret, block)
        start = (sequence - block * IDS_PER_HASH) * ID_HEX_DIGITS
        prefixes.append(digits[start:start + ID_HEX_DIGITS])
    return prefixes


def format_ids(call: CallIds, prefix: str | None = None) -> tuple[str, ...]:
    """The id strings of a call, one per row, in row order; `prefix`, when given, is its `call_prefix` already
    computed."""
    secret, sequence, rows = call
    if prefix is None:
        prefix = call_prefix(secret, sequence)
    if rows == 1:
        return (prefix,)
    return tuple(f"{prefix}-{index}" for index in range(rows))


def last_prediction_ids() -> tuple[str, ...]:
    """The ids of the rows of the last monitored predict call in this thread or task (one per row)."""
    call = _last_call.get()
    return () if call is None else format_ids(call)
