"""FastHistogram must leave a histogram exactly as prometheus_client's own `observe` would."""

from __future__ import annotations

import math

import numpy as np
import pytest
from prometheus_client import CollectorRegistry, Histogram
from prometheus_client.multiprocess import MultiProcessCollector

from promml.instrumentation.fast_histogram import FastHistogram

BUCKETS = (0.1, 0.2, 0.5, 1.0, 2.5)


def samples(registry: CollectorRegistry) -> dict[tuple[str, tuple], float]:
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in registry.collect() for s in family.samples if not s.name.endswith("_created")
    }


def pair() -> tuple[CollectorRegistry, Histogram, CollectorRegistry, FastHistogram]:
    reference_registry, fast_registry = CollectorRegistry(), CollectorRegistry()
    reference = Histogram("h", "", ["m"], buckets=BUCKETS, registry=reference_registry).labels("x")
    fast = FastHistogram(Histogram("h", "", ["m"], buckets=BUCKETS, registry=fast_registry).labels("x"))
    return reference_registry, reference, fast_registry, fast


# Values on every bucket bound, between them, below the first, above the last, negative and infinite.
EDGE_VALUES = [0.0, 0.1, 0.10000001, 0.2, 0.35, 0.5, 1.0, 2.5, 2.5000001, 100.0, -3.0, math.inf]


def test_one_value_at_a_time_matches_observe() -> None:
    reference_registry, reference, fast_registry, fast = pair()
    for value in EDGE_VALUES:
        reference.observe(value)
        fast.observe(value)
    assert samples(fast_registry) == samples(reference_registry)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_a_whole_array_matches_observing_each_value(seed: int) -> None:
    values = np.random.default_rng(seed).gamma(1.0, 0.5, 10_000)
    values[:len(EDGE_VALUES)] = EDGE_VALUES
    reference_registry, reference, fast_registry, fast = pair()
    for value in values:
        reference.observe(float(value))
    fast.observe_many(values)
    expected, got = samples(reference_registry), samples(fast_registry)
    assert got.keys() == expected.keys()
    for key, value in expected.items():
        assert got[key] == pytest.approx(value, rel=1e-12), key  # the sum may differ in the last bits


def test_nan_is_ignored_and_empty_input_changes_nothing() -> None:
    reference_registry, _, fast_registry, fast = pair()
    fast.observe(math.nan)
    fast.observe_many([math.nan, math.nan])
    fast.observe_many([])
    assert samples(fast_registry) == samples(reference_registry)


def test_multiprocess_values_are_incremented(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path))
    from prometheus_client import values

    values.ValueClass = values.get_value_class()
    try:
        histogram = Histogram("mp", "", ["m"], buckets=BUCKETS, registry=None).labels("x")
        FastHistogram(histogram).observe_many([0.05, 0.3, 7.0])
        FastHistogram(histogram).observe(0.3)
        registry = CollectorRegistry()
        MultiProcessCollector(registry, path=str(tmp_path))
        buckets = {s.labels["le"]: s.value for f in registry.collect() for s in f.samples if s.name == "mp_bucket"}
        assert buckets == {"0.1": 1, "0.2": 1, "0.5": 3, "1.0": 3, "2.5": 3, "+Inf": 4}
    finally:
        monkeypatch.delenv("PROMETHEUS_MULTIPROC_DIR")
        values.ValueClass = values.get_value_class()
