"""Prediction ids: unique across processes and cheap to make on the hot path.

A random 64-bit prefix per process plus a per-call sequence number costs a fraction of `uuid4()`, and only the
sequence number is taken on the calling thread (`itertools.count` is thread-safe under the GIL): the id strings
are formatted when somebody reads them, on the log writer's thread or in `last_prediction_ids()`. A one-row call
gets `<prefix>-<seq>`; row `i` of a batch gets `<prefix>-<seq>-<i>` (a different number of dashes, so the two
forms never collide). The last call's ids live in a context variable, so threads and asyncio tasks each see their own.
"""

from __future__ import annotations

import itertools
import os
import secrets
from contextvars import ContextVar

CallIds = tuple[str, int, int]
"""(process prefix, call sequence number, rows in the call): everything needed to format the call's ids."""

_prefix = secrets.token_hex(8)
_counter = itertools.count()
_last_call: ContextVar[CallIds | None] = ContextVar("promml_last_call_ids", default=None)


def _reset_after_fork() -> None:
    """A forked worker must not repeat its parent's ids."""
    global _prefix, _counter
    _prefix, _counter = secrets.token_hex(8), itertools.count()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_reset_after_fork)


def next_call_ids(rows: int) -> CallIds:
    """Reserve the ids of a call of `rows` rows and remember them as this context's last call."""
    call = (_prefix, next(_counter), rows)
    _last_call.set(call)
    return call


def format_ids(call: CallIds) -> tuple[str, ...]:
    """The id strings of a call, one per row, in row order."""
    prefix, sequence, rows = call
    if rows == 1:
        return (f"{prefix}-{sequence}",)
    return tuple(f"{prefix}-{sequence}-{index}" for index in range(rows))


def last_prediction_ids() -> tuple[str, ...]:
    """The ids of the rows of the last monitored predict call in this thread or task (one per row)."""
    call = _last_call.get()
    return () if call is None else format_ids(call)
