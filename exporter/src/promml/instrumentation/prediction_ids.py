"""Prediction ids: unguessable, unique across processes, and cheap to make on the hot path.

An id is the caller's proof that a label belongs to its prediction, so it must not be guessable from other ids: the
id of a call is a 96-bit keyed BLAKE2b of its sequence number under a 256-bit secret drawn from `secrets` per
process (redrawn in a forked child), which without the secret is as unpredictable as 96 random bits, however many
ids one has seen. Only the sequence number is taken on the calling thread (`itertools.count` is thread-safe under the
GIL): the hash and the id strings are made when somebody reads them, on the log writer's thread or in
`last_prediction_ids()`. A one-row call gets `<24 hex digits>`; row `i` of a batch gets `<24 hex digits>-<i>` (a dash
only in the batch form, so the two forms never collide). The last call's ids live in a context variable, so threads
and asyncio tasks each see their own. Unguessable ids are not authentication: an endpoint that accepts labels must
still check who sends them (docs/instrumentation.md, Security).
"""

from __future__ import annotations

import itertools
import os
import secrets
from contextvars import ContextVar
from hashlib import blake2b

CallIds = tuple[bytes, int, int]
"""(process secret, call sequence number, rows in the call): everything needed to format the call's ids."""

ID_BITS = 96
"""Bits of each call's id: guessing one live id among a million waiting for labels takes about 2**76 tries."""

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


def format_ids(call: CallIds) -> tuple[str, ...]:
    """The id strings of a call, one per row, in row order."""
    secret, sequence, rows = call
    prefix = blake2b(sequence.to_bytes(8, "little"), digest_size=ID_BITS // 8, key=secret).hexdigest()
    if rows == 1:
        return (prefix,)
    return tuple(f"{prefix}-{index}" for index in range(rows))


def last_prediction_ids() -> tuple[str, ...]:
    """The ids of the rows of the last monitored predict call in this thread or task (one per row)."""
    call = _last_call.get()
    return () if call is None else format_ids(call)
