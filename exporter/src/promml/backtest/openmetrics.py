"""Writes scraped samples as OpenMetrics text, the input of `promtool tsdb create-blocks-from openmetrics`.

Samples are written scrape by scrape, so each series' samples are in time order (what the block writer needs);
series may interleave, which the format's parser accepts when no `# TYPE` metadata is given. The text of each
series (name and labels) is built once and reused: a day of scrapes repeats it thousands of times.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import TextIO

from prometheus_client.utils import floatToGoString


def escape(value: str) -> str:
    """A label value as the exposition formats quote it."""
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def series_text(name: str, labels: dict[str, str]) -> str:
    """`name{a="1",b="2"}`, labels sorted."""
    if not labels:
        return name
    inner = ",".join(f'{key}="{escape(value)}"' for key, value in sorted(labels.items()))
    return f"{name}{{{inner}}}"


class OpenMetricsWriter:
    """Appends samples to an OpenMetrics file; `close()` writes the `# EOF` the format ends with."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._file: TextIO = open(self.path, "w", encoding="utf-8")  # noqa: SIM115
        self._series: dict[tuple[str, tuple[tuple[str, str], ...]], str] = {}
        self.samples = 0
        self.first: float | None = None
        self.last: float | None = None

    def write(self, at: float, samples: Iterable[tuple[str, dict[str, str], float]]) -> None:
        """Samples of one scrape, all stamped `at` (seconds since the epoch)."""
        stamp = f"{at:.3f}"
        cache = self._series
        lines = []
        for name, labels, value in samples:
            key = (name, tuple(labels.items()))
            text = cache.get(key)
            if text is None:
                text = cache[key] = series_text(name, labels)
            lines.append(f"{text} {floatToGoString(value)} {stamp}\n")
        self._file.write("".join(lines))
        self.samples += len(lines)
        self.first = at if self.first is None else self.first
        self.last = at

    @property
    def series(self) -> int:
        return len(self._series)

    def close(self) -> None:
        if not self._file.closed:
            self._file.write("# EOF\n")
            self._file.close()
