"""Reservoir sampling: bounded size and memory, and uniform inclusion checked with scipy's chi-square tests.

The statistical tests run over many deterministic seeds, so each outcome is fixed; they use the significance level
below, and a sampler with an off-by-one slot draw is shown to fail the same test.
"""

from __future__ import annotations

import itertools
import tracemalloc

import numpy as np
import pytest
from scipy import stats

from promml.exporter.reservoir import Reservoir

SIGNIFICANCE = 0.001
"""A uniform sampler fails a test below with this probability; the seeds are fixed, so the outcome is too."""


def fed_in_batches(capacity: int, seed: int, stream: np.ndarray, batch_sizes: list[int]) -> Reservoir:
    reservoir = Reservoir(capacity, seed=seed)
    start = 0
    for size in itertools.cycle(batch_sizes):
        if start >= stream.size:
            break
        reservoir.add_many(stream[start : start + size])
        start += size
    return reservoir


def inclusion_counts(capacity: int, items: int, runs: int, batch_sizes: list[int]) -> np.ndarray:
    """How often each of `items` stream positions ends up in the sample, over `runs` seeded runs."""
    counts = np.zeros(items, dtype=int)
    stream = np.arange(items, dtype=float)
    for seed in range(runs):
        sample = fed_in_batches(capacity, seed, stream, batch_sizes).values().astype(int)
        counts[sample] += 1
    return counts


def inclusion_p_value(counts: np.ndarray, capacity: int, runs: int) -> float:
    """Chi-square test that every item is kept with probability capacity / items.

    scipy's Pearson statistic assumes multinomial counts; a sample without replacement holds exactly `capacity`
    distinct items per run, so each count is Binomial(runs, k/N) with covariance −p(1 − p)/(N − 1) between items.
    Dividing the statistic by (1 − k/N) · N/(N − 1) restores a χ² distribution with N − 1 degrees of freedom.
    """
    items = counts.size
    share = capacity / items
    pearson = stats.chisquare(counts, np.full(items, runs * share)).statistic
    corrected = pearson / ((1 - share) * items / (items - 1))
    return float(stats.chi2.sf(corrected, items - 1))


def test_first_values_fill_the_reservoir_in_order() -> None:
    reservoir = Reservoir(5, seed=0)
    reservoir.add_many(np.array([1.0, 2.0, 3.0]))
    np.testing.assert_array_equal(reservoir.values(), [1.0, 2.0, 3.0])
    reservoir.add(4.0)
    assert reservoir.seen == 4
    np.testing.assert_array_equal(reservoir.values(), [1.0, 2.0, 3.0, 4.0])


def test_capacity_is_never_exceeded() -> None:
    rng = np.random.default_rng(0)
    reservoir = Reservoir(50, seed=1)
    seen = 0
    offered: set[float] = set()
    for _ in range(200):
        batch = rng.normal(size=int(rng.integers(0, 120)))
        reservoir.add_many(batch)
        offered.update(batch.tolist())
        seen += batch.size
        sample = reservoir.values()
        assert reservoir.seen == seen
        assert sample.size == min(seen, 50)
        assert set(sample.tolist()) <= offered
        assert np.unique(sample).size == sample.size  # distinct positions: no value was kept twice


def test_memory_does_not_grow_with_the_stream() -> None:
    reservoir = Reservoir(1000, seed=2)
    rng = np.random.default_rng(2)
    reservoir.add_many(rng.normal(size=1000))
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        for _ in range(100):
            reservoir.add_many(rng.normal(size=10_000))
        after = tracemalloc.get_traced_memory()[0]
    finally:
        tracemalloc.stop()
    assert reservoir.seen == 1_001_000
    assert after - before < 1024  # a million more values, not one more kilobyte kept


@pytest.mark.parametrize(
    ("capacity", "items", "batch_sizes"),
    [
        (5, 20, [3, 7, 1, 9]),  # batches crossing the fill boundary, several hits on one slot per batch
        (8, 40, [40]),  # the whole stream in one batch
        (1, 12, [5]),  # a single slot: the correction factor is 1 and the counts are multinomial
    ],
)
def test_each_item_is_kept_with_equal_probability(capacity: int, items: int, batch_sizes: list[int]) -> None:
    runs = 3000
    counts = inclusion_counts(capacity, items, runs, batch_sizes)
    assert counts.sum() == runs * capacity
    assert inclusion_p_value(counts, capacity, runs) > SIGNIFICANCE


def test_an_off_by_one_sampler_fails_the_same_test() -> None:
    # A plausible bug: slot j drawn from 0..i − 1 instead of 0..i, so later values replace earlier ones too often.
    runs, capacity, items = 3000, 5, 20
    rng = np.random.default_rng(0)
    counts = np.zeros(items, dtype=int)
    for _ in range(runs):
        sample = list(range(capacity))
        for position in range(capacity, items):
            slot = int(rng.integers(0, position))
            if slot < capacity:
                sample[slot] = position
        counts[sample] += 1
    assert inclusion_p_value(counts, capacity, runs) < SIGNIFICANCE


def test_every_subset_is_equally_likely() -> None:
    # With 6 values and room for 2 each run yields one of 15 pairs; uniform sampling makes them equally likely,
    # so the pair counts are multinomial and scipy's chi-square test applies as is.
    runs, items, capacity = 3000, 6, 2
    pairs = {pair: i for i, pair in enumerate(itertools.combinations(range(items), capacity))}
    counts = np.zeros(len(pairs), dtype=int)
    stream = np.arange(items, dtype=float)
    for seed in range(runs):
        sample = fed_in_batches(capacity, 10_000 + seed, stream, [2, 1, 3]).values().astype(int)
        counts[pairs[tuple(sorted(sample.tolist()))]] += 1
    assert stats.chisquare(counts).pvalue > SIGNIFICANCE


def test_batching_does_not_change_the_sample() -> None:
    stream = np.random.default_rng(4).normal(size=20_000)
    whole = fed_in_batches(64, 9, stream, [stream.size]).values()
    np.testing.assert_array_equal(fed_in_batches(64, 9, stream, [1, 10, 333, 7]).values(), whole)
    one_by_one = Reservoir(64, seed=9)
    for value in stream[:500]:
        one_by_one.add(float(value))
    one_by_one.add_many(stream[500:])
    np.testing.assert_array_equal(one_by_one.values(), whole)


def test_values_is_a_copy() -> None:
    reservoir = Reservoir(3, seed=0)
    reservoir.add_many(np.array([1.0, 2.0, 3.0]))
    reservoir.values()[:] = 0.0
    np.testing.assert_array_equal(reservoir.values(), [1.0, 2.0, 3.0])


@pytest.mark.parametrize("capacity", [0, -1, 2.5, True])
def test_invalid_capacity_is_rejected(capacity: object) -> None:
    with pytest.raises(ValueError, match="capacity must be a positive integer"):
        Reservoir(capacity, seed=0)  # type: ignore[arg-type]


def test_multidimensional_values_are_rejected() -> None:
    with pytest.raises(ValueError, match="values must be a 1-D array"):
        Reservoir(3, seed=0).add_many(np.zeros((2, 2)))


def test_a_shrunk_reservoir_stays_uniform_as_values_go_on_coming() -> None:
    """300 values into capacity 50, shrunk to 10, then 100 more: every one of the 400 values is kept with the same
    chance, 10 / 400 (chi-square over the values, scipy)."""
    kept = np.zeros(400)
    for trial in range(2000):
        reservoir = Reservoir(50, seed=trial)
        reservoir.add_many(np.arange(300, dtype=float))
        reservoir.shrink(10)
        assert reservoir.capacity == 10 and reservoir.held == 10
        reservoir.add_many(np.arange(300, 400, dtype=float))
        kept[reservoir.values().astype(int)] += 1
    assert kept.sum() == 2000 * 10
    assert stats.chisquare(kept).pvalue > 0.01


def test_memory_grows_with_the_values_kept_not_the_capacity() -> None:
    reservoir = Reservoir(1000, seed=0)
    reservoir.add_many(np.arange(10, dtype=float))
    assert reservoir.held == 10 and reservoir.values().tolist() == list(range(10))
    reservoir.shrink(2000)  # not lower: nothing changes
    assert reservoir.capacity == 1000


def test_state_round_trip_goes_on_drawing_as_the_saved_reservoir_would():
    import json

    saved = Reservoir(50, seed=4)
    saved.add_many(np.arange(500, dtype=float))
    saved.shrink(20)
    restored = Reservoir.from_state(json.loads(json.dumps(saved.to_state())), 50, "r")
    assert (restored.seen, restored.capacity) == (500, 20) and (restored.values() == saved.values()).all()
    more = np.linspace(-1, 1, 300)
    saved.add_many(more)
    restored.add_many(more)
    assert (restored.values() == saved.values()).all()


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"seen": 10**400}, "r.seen: expected an integer"),
        ({"seen": 3}, r"r.values: expected 3 values, got 50"),
        ({"capacity": 51}, r"r.capacity: expected an integer from 1 to 50"),
        ({"values": "!!"}, "r.values: not base64"),
        ({"values": "AAAAAAAA+H8="}, "r.values: values must be finite"),  # a NaN
        ({"rng": {"state": -1, "inc": 1, "has_uint32": 0, "uinteger": 0}}, "r.rng.state: expected an integer"),
    ],
)
def test_invalid_states_are_refused(change, message):
    from promml.exporter.state import InvalidState

    saved = Reservoir(50, seed=4)
    saved.add_many(np.arange(500, dtype=float))
    with pytest.raises(InvalidState, match=message):
        Reservoir.from_state({**saved.to_state(), **change}, 50, "r")
