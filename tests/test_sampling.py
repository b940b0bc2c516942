"""Merging per-slot reservoirs into one window sample: every row of the window equally likely, checked with a
chi-square test over the parts (scipy), and the capacity a slot needs."""

from __future__ import annotations

import math

import numpy as np
from scipy import stats

from promml.exporter.sampling import draw_counts, merged_sample, slot_capacity


def test_counts_follow_the_rows_seen_uniformly_even_when_each_part_gets_less_than_one():
    """1,440 parts of 10 rows, 1,000 draws: each part's expected count is 0.69. Over 50 draws, the counts per part
    are uniform (chi-square over parts, scipy), and neither the oldest nor the newest parts are favoured."""
    rng = np.random.default_rng(0)
    seen = [10] * 1440
    totals = np.zeros(1440)
    for _ in range(50):
        counts = draw_counts(seen, seen, 1000, rng)
        assert counts.sum() == 1000 and np.all(counts <= 10)
        totals += counts
    assert stats.chisquare(totals).pvalue > 0.01
    per_six_hours = totals.reshape(4, 360).sum(axis=1)
    assert stats.chisquare(per_six_hours).pvalue > 0.01


def test_counts_are_in_proportion_to_the_rows_seen_not_held():
    rng = np.random.default_rng(1)
    seen, held = [6000, 3000, 1000], [300, 200, 100]
    totals = sum(draw_counts(seen, held, 100, rng) for _ in range(400))
    expected = np.array(seen) / 10_000 * 100 * 400
    assert stats.chisquare(totals, expected).pvalue > 0.01


def test_a_part_asked_for_more_than_it_holds_gives_all_and_the_rest_comes_from_the_others():
    rng = np.random.default_rng(2)
    counts = draw_counts([1000, 1000], [5, 1000], 500, rng)
    assert counts[0] == 5 and counts.sum() == 500
    assert draw_counts([3, 4], [3, 4], 100, rng).tolist() == [3, 4]  # fewer rows than asked: every row
    assert draw_counts([0, 0], [0, 0], 10, rng).tolist() == [0, 0]


def test_merged_sample_draws_each_count_without_replacement():
    rng = np.random.default_rng(3)
    parts = [(1000, np.arange(0, 400, dtype=float)), (500, np.arange(1000, 1400, dtype=float))]
    sample = merged_sample(parts, 300, rng)
    assert sample.size == 300 and np.unique(sample).size == 300
    assert merged_sample([], 10, rng).size == 0


def test_slot_capacity_covers_the_share_any_window_holding_the_slot_may_ask_for():
    assert slot_capacity(10_000, 10_000, 1000) == 1000  # the newest slot: the whole sample may come from it
    expected = 1000 * 50 / 5000
    assert slot_capacity(50, 5000, 1000) == math.ceil(expected + 4 * math.sqrt(expected) + 4) == 27
    assert slot_capacity(3, 5000, 1000) == 3  # never more than it saw
    # the chance a hypergeometric count exceeds the capacity is below 1 in 30,000
    assert stats.hypergeom(5000, 50, 1000).sf(27) < 1 / 30_000


def test_a_steady_day_of_slots_keeps_a_few_samples_worth_not_every_row():
    """1,440 slots of 1,000 rows each: the capacities add up to about sample_size × (ln 1440 + headroom), 23,000
    values, against 1,440,000 rows (and 1,440,000 for a full reservoir per slot)."""
    capacities = [slot_capacity(1000, 1000 * k, 1000) for k in range(1, 1441)]
    assert capacities[0] == 1000 and capacities[-1] == 9
    assert sum(capacities) < 25_000
