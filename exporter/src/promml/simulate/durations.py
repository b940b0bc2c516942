"""Durations and timeline offsets as scenarios write them: `90s`, `30m`, `6h`, `2d`, a number of seconds, or for an
offset a share of the run (`50%`), so one scenario file reads the same at 1 simulated day or at 7."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any

UNITS = {"s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, "w": 604800.0}
_DURATION = re.compile(r"^(?:(?:\d+(?:\.\d*)?|\.\d+)[smhdw])+$")
_PART = re.compile(r"(\d+(?:\.\d*)?|\.\d+)([smhdw])")
_SHARE = re.compile(r"^\s*(\d+(?:\.\d*)?|\.\d+)\s*%\s*$")
EXAMPLES = "90s, 30m, 6h, 12h30m, 2d or a number of seconds"


class DurationError(ValueError):
    """A duration or offset that cannot be read; the message says what was expected."""


def parse_duration(value: Any) -> float:
    """Seconds (>= 0) of `90s`, `30m`, `6h`, `12h30m`, `2d`, `1w` or a plain number of seconds."""
    if isinstance(value, bool):
        raise DurationError(f"expected a duration ({EXAMPLES}), got {value!r}")
    if isinstance(value, int | float):
        seconds = float(value)
    elif isinstance(value, str) and _DURATION.match(value.strip()):
        seconds = sum(float(number) * UNITS[unit] for number, unit in _PART.findall(value))
    else:
        raise DurationError(f"expected a duration ({EXAMPLES}), got {value!r}")
    if not math.isfinite(seconds) or seconds < 0:
        raise DurationError(f"expected a duration of 0 or more ({EXAMPLES}), got {value!r}")
    return seconds


@dataclass(frozen=True)
class Offset:
    """A point on the timeline: `seconds` after the start, or `share` of the run's length after it."""

    seconds: float | None = None
    share: float | None = None

    def resolve(self, run_seconds: float) -> float:
        """Seconds after the start in a run of `run_seconds`."""
        return self.seconds if self.seconds is not None else (self.share or 0.0) * run_seconds

    def __str__(self) -> str:
        return f"{self.seconds:g}s" if self.seconds is not None else f"{(self.share or 0.0) * 100:g}%"


def parse_offset(value: Any) -> Offset:
    """An offset from the run's start: a duration, or a share of the run such as `50%` (0% to 100%)."""
    if isinstance(value, str) and (match := _SHARE.match(value)):
        share = float(match.group(1)) / 100
        if share > 1:
            raise DurationError(f"expected a share of the run from 0% to 100%, got {value!r}")
        return Offset(share=share)
    try:
        return Offset(seconds=parse_duration(value))
    except DurationError:
        raise DurationError(f"expected an offset from the run's start ({EXAMPLES}, or a share such as 50%), "
                            f"got {value!r}") from None
