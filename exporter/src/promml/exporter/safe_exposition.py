"""The Prometheus text format of a registry, written family by family so that one bad family cannot blank a scrape.

Why: `generate_latest` renders every family into one string and encodes it at the end, so one label with no UTF-8
form (however it got past the readers) or one value that cannot be formatted fails the whole response, and the
exporter goes blind while `/healthz` still says 200. Here each family is rendered on its own; one that fails is
left out, logged once, and counted in `ml_exporter_exposition_errors_total{family}`, and the rest are served.
"""

from __future__ import annotations

import logging
import threading
from collections import Counter
from collections.abc import Iterator, Sequence

from prometheus_client import generate_latest
from prometheus_client.core import CounterMetricFamily, Metric
from prometheus_client.registry import Collector

logger = logging.getLogger(__name__)


class _One(Collector):
    def __init__(self, family: Metric) -> None:
        self.family = family

    def collect(self) -> Iterator[Metric]:
        yield self.family


class SafeExposition:
    """Renders a collector's families one at a time and counts those that cannot be rendered."""

    def __init__(self, collector: Collector, labels: Sequence[str], label_values: Sequence[str]) -> None:
        self.collector = collector
        self.labels = tuple(labels)
        self.label_values = list(label_values)
        self.errors: Counter[str] = Counter()  # family name -> scrapes it was left out of
        self._lock = threading.Lock()

    def render(self) -> bytes:
        """The text format of every family that renders, then the error counter."""
        parts = []
        for family in self.collector.collect():
            try:
                parts.append(generate_latest(_One(family)))
            except Exception as error:
                with self._lock:
                    if not self.errors[family.name]:
                        logger.warning("promml exporter: metric family %s cannot be written (%r); it is left out "
                                       "of scrapes and counted in ml_exporter_exposition_errors_total",
                                       family.name, error)
                    self.errors[family.name] += 1
        parts.append(generate_latest(_One(self._error_family())))
        return b"".join(parts)

    def _error_family(self) -> CounterMetricFamily:
        family = CounterMetricFamily(
            "ml_exporter_exposition_errors", "Scrapes a metric family was left out of because it could not be "
            "written (a label with no UTF-8 form, say), by family.", labels=[*self.labels, "family"],
        )
        with self._lock:
            for name, count in sorted(self.errors.items()):
                family.add_metric([*self.label_values, name], count)
        return family
