"""Compact, validated pieces of the checkpoint's window state: counts, arrays, numbers and names.

Each class that holds window state (a slot, a reservoir, a performance state, a segment table) turns itself into
plain JSON values with `to_state()` and back with `from_state()`, using these helpers. Why here: a checkpoint is a
file on disk, so it may be damaged or crafted, and everything read from it is checked before it is used (type,
range, size), raising `InvalidState` with the path of the bad value. Why compact: a 24-hour window is about 1,440
slots, so arrays are sparse lists or base64 rather than one JSON number per element.
"""

from __future__ import annotations

import base64
import binascii
import math
from collections.abc import Mapping
from typing import Any

import numpy as np

MAX_COUNT = 2**63 - 1
"""Counts are kept in int64 arrays: a larger one cannot be a count the exporter made."""

MAX_TIME = 253_402_300_800.0
"""Seconds since the epoch of 10000-01-01, past the last time an RFC 3339 timestamp can write."""

MAX_NAME_CHARS = 4096
"""Longest feature name, segment value, class or prediction id read back (longer ones are not the exporter's)."""

MAX_FLOAT_SUM = 1.7976931348623157e308
"""Sums of residuals may grow to any finite float; they are written as numbers, or as "inf" / "-inf" / "nan"."""


class InvalidState(ValueError):
    """A piece of saved state that cannot be used; the message says which and why."""


def count(value: Any, where: str, maximum: int = MAX_COUNT) -> int:
    """A non-negative integer at most `maximum`."""
    if type(value) is not int or not 0 <= value <= maximum:
        raise InvalidState(f"{where}: expected an integer from 0 to {maximum}, got {_short(value)}")
    return value


def integer(value: Any, where: str, low: int, high: int) -> int:
    """An integer in [low, high]."""
    if type(value) is not int or not low <= value <= high:
        raise InvalidState(f"{where}: expected an integer from {low} to {high}, got {_short(value)}")
    return value


def number(value: Any, where: str, low: float = -MAX_TIME, high: float = MAX_TIME) -> float:
    """A finite number in [low, high] (times by default: within the years an RFC 3339 timestamp can write)."""
    if type(value) is int:
        if not low <= value <= high:
            raise InvalidState(f"{where}: expected a number from {low:g} to {high:g}, got {_short(value)}")
        return float(value)
    if type(value) is not float or not math.isfinite(value) or not low <= value <= high:
        raise InvalidState(f"{where}: expected a number from {low:g} to {high:g}, got {_short(value)}")
    return value


def float_to_state(value: float) -> float | str:
    """A float that may not be finite (a sum that overflowed): JSON has no infinity, so those are text."""
    return value if math.isfinite(value) else repr(value)


def float_from_state(value: Any, where: str) -> float:
    if isinstance(value, str) and value in ("inf", "-inf", "nan"):
        return float(value)
    return number(value, where, -MAX_FLOAT_SUM, MAX_FLOAT_SUM)


def text(value: Any, where: str, max_chars: int = MAX_NAME_CHARS) -> str:
    """A string of at most `max_chars` characters that can be written as UTF-8 (no lone surrogate)."""
    if not isinstance(value, str) or len(value) > max_chars:
        raise InvalidState(f"{where}: expected a string of at most {max_chars} characters, got {_short(value)}")
    try:
        value.encode()
    except UnicodeEncodeError:
        raise InvalidState(f"{where}: not writable as UTF-8") from None
    return value


def scalar(value: Any, where: str) -> str | int | float | bool | None:
    """A prediction or label as the logs hold it: text, a finite number, a boolean or null."""
    if value is None or type(value) is bool:
        return value
    if type(value) is int:
        return integer(value, where, -MAX_COUNT, MAX_COUNT)
    if type(value) is float:
        return number(value, where, -MAX_FLOAT_SUM, MAX_FLOAT_SUM)
    return text(value, where)


def texts(values: list[Any], where: str, max_chars: int = MAX_NAME_CHARS) -> list[str]:
    """A list of strings (see `text`), checked at once: the usual case costs no Python call per item."""
    if all(type(value) is str and len(value) <= max_chars for value in values):
        try:
            "".join(values).encode()
            return values
        except UnicodeEncodeError:
            pass
    for index, value in enumerate(values):
        text(value, f"{where}[{index}]", max_chars)
    return values


def sequence(value: Any, where: str, max_length: int) -> list[Any]:
    if not isinstance(value, list) or len(value) > max_length:
        raise InvalidState(f"{where}: expected a list of at most {max_length} items")
    return value


def mapping(value: Any, where: str, max_length: int) -> Mapping[str, Any]:
    if not isinstance(value, Mapping) or len(value) > max_length:
        raise InvalidState(f"{where}: expected an object of at most {max_length} entries")
    return value


def field(value: Any, key: str, where: str) -> Any:
    """`value[key]`, `value` being an object."""
    if not isinstance(value, Mapping) or key not in value:
        raise InvalidState(f"{where}.{key}: missing")
    return value[key]


def counts_to_state(counts: np.ndarray) -> list[int] | dict[str, Any]:
    """Bin counts: a plain list, or {"size", "at", "n"} (the non-zero ones) when that is shorter."""
    nonzero = np.flatnonzero(counts)
    if 2 * nonzero.size >= counts.size:
        return [int(n) for n in counts.tolist()]
    return {"size": int(counts.size), "at": nonzero.tolist(), "n": counts[nonzero].tolist()}


def counts_from_state(value: Any, where: str, size: int, maximum: int = MAX_COUNT) -> np.ndarray:
    """Bin counts of exactly `size` bins, each from 0 to `maximum`."""
    if isinstance(value, list):
        if len(value) != size:
            raise InvalidState(f"{where}: expected {size} counts, got {len(value)}")
        return np.array([count(n, f"{where}[{i}]", maximum) for i, n in enumerate(value)], dtype=np.int64)
    if count(field(value, "size", where), f"{where}.size") != size:
        raise InvalidState(f"{where}.size: expected {size}")
    at = sequence(field(value, "at", where), f"{where}.at", size)
    numbers = sequence(field(value, "n", where), f"{where}.n", size)
    if len(at) != len(numbers):
        raise InvalidState(f"{where}: `at` and `n` differ in length")
    result = np.zeros(size, dtype=np.int64)
    previous = -1
    for i, (index, n) in enumerate(zip(at, numbers, strict=True)):
        index = integer(index, f"{where}.at[{i}]", previous + 1, size - 1)  # increasing: each bin once
        result[index] = count(n, f"{where}.n[{i}]", maximum)
        previous = index
    return result


def floats_to_state(values: np.ndarray) -> str:
    """float64 values as base64 of their little-endian bytes: exact, and about 11 characters a value."""
    return base64.b64encode(np.ascontiguousarray(values, dtype="<f8").tobytes()).decode("ascii")


def floats_from_state(value: Any, where: str, max_length: int, finite: bool = True) -> np.ndarray:
    if not isinstance(value, str) or len(value) > (max_length * 8 + 2) // 3 * 4:
        raise InvalidState(f"{where}: expected base64 of at most {max_length} float64 values")
    try:
        data = base64.b64decode(value.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError):
        raise InvalidState(f"{where}: not base64") from None
    if len(data) % 8:
        raise InvalidState(f"{where}: {len(data)} bytes is not a whole number of float64 values")
    values = np.frombuffer(data, dtype="<f8").astype(float)
    if finite and not np.isfinite(values).all():
        raise InvalidState(f"{where}: values must be finite")
    return values


def rng_to_state(rng: np.random.Generator) -> dict[str, Any]:
    """The state of a PCG64 generator, so a restored reservoir draws what the saved one would have."""
    state = rng.bit_generator.state
    return {"state": state["state"]["state"], "inc": state["state"]["inc"], "has_uint32": state["has_uint32"],
            "uinteger": state["uinteger"]}


def rng_from_state(value: Any, where: str) -> np.random.Generator:
    bits = np.random.PCG64(0)  # seeded: no entropy drawn from the system for a state replaced at once
    bits.state = {
        "bit_generator": "PCG64",
        "state": {"state": integer(field(value, "state", where), f"{where}.state", 0, 2**128 - 1),
                  "inc": integer(field(value, "inc", where), f"{where}.inc", 0, 2**128 - 1)},
        "has_uint32": integer(field(value, "has_uint32", where), f"{where}.has_uint32", 0, 1),
        "uinteger": integer(field(value, "uinteger", where), f"{where}.uinteger", 0, 2**32 - 1),
    }
    return np.random.Generator(bits)


def _short(value: Any) -> str:
    """A value for an error message, cut short: a crafted one may be huge (and a huge integer has no text form)."""
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) >= 10**30:
        return f"an integer of {value.bit_length()} bits"
    if value is None or isinstance(value, bool | int | float):
        return repr(value)
    if isinstance(value, str):
        return repr(value[:40]) + ("..." if len(value) > 40 else "")
    return f"a {type(value).__name__}"
