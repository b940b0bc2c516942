"""Prediction ids: unique across processes and cheap to make on the hot path.

A random 64-bit prefix per process plus a counter costs a fraction of `uuid4()`; `itertools.count` is
thread-safe under the GIL. The ids of the last call are kept in a context variable so the caller can read them
after predict returns (`promml.last_prediction_ids()`), in threads and in asyncio tasks alike.
"""

from __future__ import annotations

import itertools
import os
import secrets
from contextvars import ContextVar

_prefix = secrets.token_hex(8)
_counter = itertools.count()
_prefix_pid = os.getpid()
_last_ids: ContextVar[tuple[str, ...]] = ContextVar("promml_last_prediction_ids", default=())


def _reset_after_fork() -> None:
    """A forked worker must not repeat its parent's ids."""
    global _prefix, _counter, _prefix_pid
    _prefix, _counter, _prefix_pid = secrets.token_hex(8), itertools.count(), os.getpid()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_reset_after_fork)


def new_prediction_ids(count: int) -> tuple[str, ...]:
    """`count` fresh ids, remembered as the current context's last ids."""
    prefix, counter = _prefix, _counter
    ids = tuple(f"{prefix}-{next(counter)}" for _ in range(count))
    _last_ids.set(ids)
    return ids


def last_prediction_ids() -> tuple[str, ...]:
    """The ids of the rows of the last monitored predict call in this thread or task (one per row)."""
    return _last_ids.get()
