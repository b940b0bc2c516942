"""Merging per-slot reservoirs into one window sample: quotas proportional to the rows each slot saw."""

from __future__ import annotations

import numpy as np

from promml.exporter.sampling import merged_sample, proportional_quotas


def test_quotas_follow_the_rows_seen_not_the_rows_kept():
    # rate = min(100 / 1000, 50 / 600, 50 / 300, 100 / 100) = 1/12: 600 → 50, 300 → 25, 100 → 8.33 → 8
    assert proportional_quotas([600, 300, 100], [50, 50, 100], 100) == [50, 25, 8]
    assert proportional_quotas([3, 4], [3, 4], 100) == [3, 4]  # all kept and few: the whole window
    assert proportional_quotas([0, 0], [0, 0], 10) == [0, 0]
    assert proportional_quotas([5, 5, 5], [5, 5, 5], 10) == [4, 3, 3]  # largest remainder, ties by position


def test_merged_sample_draws_each_quota_without_replacement():
    rng = np.random.default_rng(0)
    parts = [(1000, np.arange(0, 40, dtype=float)), (500, np.arange(100, 140, dtype=float))]
    sample = merged_sample(parts, 30, rng)
    assert np.count_nonzero(sample < 100) == 20 and np.count_nonzero(sample >= 100) == 10
    assert np.unique(sample).size == 30
    assert merged_sample([], 10, rng).size == 0
