"""Numeric bin edges: quantile bins, a bin per point mass, and no training bin left empty by ties, against numpy
binning of the same values."""

from __future__ import annotations

import numpy as np
import pytest

from promml.stats.binning import POINT_MASS_SHARE, numeric_bin_edges, point_masses


def shares(values: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """Shares per bin with left-closed bins [e(i-1), e(i)) and open outer bins, via np.histogram."""
    counts, _ = np.histogram(values, bins=np.concatenate([[-np.inf], edges, [np.inf]]))
    return counts / values.size


def test_without_point_masses_the_edges_are_the_deduplicated_quantiles() -> None:
    values = np.random.default_rng(1).normal(size=5000)
    expected = np.unique(np.quantile(values, np.arange(1, 10) / 10))
    np.testing.assert_array_equal(numeric_bin_edges(values, 10), expected)


def test_a_sparse_column_gets_a_bin_for_its_zeros_and_quantile_bins_for_the_rest() -> None:
    rest = np.linspace(1.0, 2.0, 100)
    values = np.concatenate([np.zeros(900), rest])
    edges = numeric_bin_edges(values, 10)
    # 90 % zeros: the zeros hold the bottom bin (-inf, nextafter(0)) alone; the other 10 % get round(10 × 0.1) = 1
    # quantile bin: two bins in all.
    np.testing.assert_array_equal(edges, [np.nextafter(0.0, 1.0)])
    np.testing.assert_array_equal(shares(values, edges), [0.9, 0.1])


def test_a_point_mass_inside_the_range_gets_a_bin_that_holds_it_alone() -> None:
    rng = np.random.default_rng(2)
    values = np.concatenate([rng.uniform(-1, 0, 300), np.full(400, 0.5), rng.uniform(1, 2, 300)])
    edges = numeric_bin_edges(values, 10)
    assert 0.5 in edges and np.nextafter(0.5, 1.0) in edges
    bins = np.searchsorted(edges, values, side="right")
    mass_bin = int(np.searchsorted(edges, 0.5, side="right"))
    np.testing.assert_array_equal(np.unique(values[bins == mass_bin]), [0.5])
    ratios = shares(values, edges)
    assert ratios[mass_bin] == 0.4
    assert np.all(ratios > 0), "no bin without training rows"
    # the 60 % of other rows share round(10 × 0.6) = 6 quantile bins
    assert ratios.size == 1 + 6


def test_a_point_mass_at_the_maximum_takes_the_top_bin() -> None:
    values = np.concatenate([np.linspace(0.0, 1.0, 500), np.full(500, 1.0)])
    edges = numeric_bin_edges(values, 10)
    assert edges[-1] == 1.0
    ratios = shares(values, edges)
    assert ratios[-1] == 501 / 1000  # the 500 ones and the linspace's own 1.0
    assert np.all(ratios > 0)


def test_ties_below_the_point_mass_share_leave_no_empty_bin() -> None:
    values = np.repeat(np.arange(20.0), 50)  # 20 values of 5 % each: below POINT_MASS_SHARE, heavy ties
    assert POINT_MASS_SHARE > 0.05 and point_masses(values).size == 0
    assert np.all(shares(values, numeric_bin_edges(values, 30)) > 0)


def test_constant_column_keeps_one_edge() -> None:
    np.testing.assert_array_equal(numeric_bin_edges(np.full(50, 3.0), 10), [3.0])


@pytest.mark.parametrize("n_bins", [2, 5, 10, 20])
def test_every_bin_holds_training_rows_whatever_the_mix(n_bins: int) -> None:
    rng = np.random.default_rng(n_bins)
    for _ in range(20):
        values = np.concatenate([rng.choice([0.0, 1.0, 7.0], size=rng.integers(0, 800)), rng.normal(size=200)])
        assert np.all(shares(values, numeric_bin_edges(values, n_bins)) > 0)
