"""Drift statistics against hand-computed values and scipy on the same data.

PSI against symmetric KL divergence via scipy's rel_entr; Jensen-Shannon against scipy.spatial.distance.jensenshannon;
chi-square against scipy.stats.chisquare; KS against scipy.stats.ks_2samp(method="asymp"); Wasserstein against
scipy.stats.wasserstein_distance.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats
from scipy.spatial.distance import jensenshannon
from scipy.special import rel_entr

from promml.stats import drift
from promml.stats.drift import (
    PSI_EPSILON,
    chi_square_test,
    dataset_drift_share,
    jensen_shannon_distance,
    ks_test,
    psi,
    psi_many,
    wasserstein_distance_normalised,
)


def reference_psi(reference_ratios: np.ndarray, current_counts: np.ndarray, epsilon: float = PSI_EPSILON) -> float:
    """PSI = KL(p‖q) + KL(q‖p) on the clipped shares, computed with scipy."""
    counts = np.asarray(current_counts, dtype=float)
    p = np.clip(counts / counts.sum(), epsilon, None)
    q = np.clip(np.asarray(reference_ratios, dtype=float), epsilon, None)
    return float(np.sum(rel_entr(p, q) + rel_entr(q, p)))


def test_hand_computed_two_bins() -> None:
    # p = (0.75, 0.25), q = (0.5, 0.5): 0.25·ln(1.5) − 0.25·ln(0.5) = 0.25·ln(3)
    assert psi(np.array([0.5, 0.5]), np.array([3, 1])) == pytest.approx(0.25 * math.log(3), rel=1e-12)


def test_hand_computed_three_bins() -> None:
    # p = (0.2, 0.3, 0.5), q = (0.5, 0.3, 0.2): the middle bin cancels, the outer two contribute 0.3·ln(2.5) each
    assert psi([0.5, 0.3, 0.2], [2, 3, 5]) == pytest.approx(0.6 * math.log(2.5), rel=1e-12)


def test_identical_distributions_give_zero() -> None:
    ratios = np.array([0.1, 0.2, 0.3, 0.4])
    assert psi(ratios, ratios * 1000) == pytest.approx(0.0, abs=1e-15)


def test_empty_current_window_is_nan() -> None:
    assert math.isnan(psi([0.5, 0.5], [0, 0]))


def test_zero_reference_bin_is_finite_and_uses_epsilon() -> None:
    # q = (1, 0) clips to (1, ε); p = (0.5, 0.5): (0.5 − 1)·ln(0.5) + (0.5 − ε)·ln(0.5 / ε)
    expected = -0.5 * math.log(0.5) + (0.5 - PSI_EPSILON) * math.log(0.5 / PSI_EPSILON)
    value = psi([1.0, 0.0], [1, 1])
    assert math.isfinite(value)
    assert value == pytest.approx(expected, rel=1e-12)


def test_empty_current_bin_is_finite() -> None:
    expected = (PSI_EPSILON - 0.5) * math.log(PSI_EPSILON / 0.5) + 0.5 * math.log(1 / 0.5)
    assert psi([0.5, 0.5], [0, 7]) == pytest.approx(expected, rel=1e-12)


def test_custom_epsilon_changes_the_clip() -> None:
    assert psi([1.0, 0.0], [1, 1], epsilon=1e-2) == pytest.approx(reference_psi([1.0, 0.0], [1, 1], 1e-2), rel=1e-12)


@pytest.mark.parametrize("seed", range(5))
def test_matches_symmetric_kl_divergence(seed: int) -> None:
    rng = np.random.default_rng(seed)
    bins = int(rng.integers(2, 20))
    reference = rng.dirichlet(np.ones(bins))
    reference[rng.integers(bins)] = 0.0  # an empty reference bin, such as the unseen-category bucket
    reference /= reference.sum()
    counts = rng.integers(0, 50, size=bins)
    counts[0] += 1
    assert psi(reference, counts) == pytest.approx(reference_psi(reference, counts), rel=1e-12)


def test_psi_is_scale_invariant_in_counts() -> None:
    assert psi([0.25, 0.75], [1, 2]) == pytest.approx(psi([0.25, 0.75], [100, 200]), rel=1e-12)


@pytest.mark.parametrize(
    ("reference", "current", "message"),
    [
        ([0.5, 0.5], [1, 1, 1], "reference_ratios has 2 bins but current_counts has 3"),
        ([[0.5, 0.5]], [[1, 1]], "reference_ratios must be a non-empty 1-D array"),
        ([], [], "reference_ratios must be a non-empty 1-D array"),
        ([0.5, 0.5], [1, -1], "current_counts must hold finite, non-negative numbers"),
        ([0.5, math.nan], [1, 1], "reference_ratios must hold finite, non-negative numbers"),
    ],
)
def test_invalid_shapes_and_values_are_rejected(reference: list, current: list, message: str) -> None:
    with pytest.raises(ValueError, match=message.replace("(", r"\(")):
        psi(reference, current)


def test_non_positive_epsilon_is_rejected() -> None:
    with pytest.raises(ValueError, match="epsilon must be positive"):
        psi([0.5, 0.5], [1, 1], epsilon=0.0)


def test_psi_many_matrix_matches_independent_values() -> None:
    rng = np.random.default_rng(7)
    reference = rng.dirichlet(np.ones(10), size=6)
    counts = rng.integers(0, 30, size=(6, 10))
    counts[3] = 0  # one feature without rows in the window
    result = psi_many(reference, counts)
    assert result.shape == (6,)
    assert math.isnan(result[3])
    for i in (0, 1, 2, 4, 5):
        assert result[i] == pytest.approx(reference_psi(reference[i], counts[i]), rel=1e-12)


def test_psi_many_pads_ragged_rows_without_changing_values() -> None:
    reference = [np.array([0.5, 0.5]), np.array([0.2, 0.3, 0.5, 0.0])]
    counts = [np.array([3, 1]), np.array([5, 3, 2, 1])]
    result = psi_many(reference, counts)
    np.testing.assert_allclose(result, [0.25 * math.log(3), reference_psi(reference[1], counts[1])], rtol=1e-12)


def test_psi_many_rejects_mismatched_features() -> None:
    with pytest.raises(ValueError, match="reference_ratios has 2 features but current_counts has 1"):
        psi_many([[0.5, 0.5], [0.5, 0.5]], [[1, 1]])
    with pytest.raises(ValueError, match="feature 1: reference_ratios has 2 bins but current_counts has 3"):
        psi_many([[0.5, 0.5], [0.5, 0.5]], [[1, 1], [1, 1, 1]])
    with pytest.raises(ValueError, match="must be a 2-D array or a sequence of 1-D arrays"):
        psi_many(np.array([0.5, 0.5]), np.array([1, 1]))


# Jensen-Shannon distance


def test_jensen_shannon_identical_distributions_give_zero() -> None:
    ratios = np.array([0.1, 0.2, 0.3, 0.4])
    assert jensen_shannon_distance(ratios, ratios * 1000) == pytest.approx(0.0, abs=1e-7)


def test_jensen_shannon_disjoint_distributions_give_one() -> None:
    assert jensen_shannon_distance([1.0, 0.0], [0, 5]) == 1.0


def test_jensen_shannon_hand_computed() -> None:
    # p = (1, 0), q = (½, ½), m = (¾, ¼): JSD = ½·log2(4/3) + ½·(½·log2(2/3) + ½·log2(2)) bits
    divergence = 0.5 * math.log2(4 / 3) + 0.5 * (0.5 * math.log2(2 / 3) + 0.5 * math.log2(2))
    assert jensen_shannon_distance([0.5, 0.5], [4, 0]) == pytest.approx(math.sqrt(divergence), rel=1e-12)


@pytest.mark.parametrize("seed", range(6))
def test_jensen_shannon_matches_scipy_with_empty_bins(seed: int) -> None:
    rng = np.random.default_rng(seed)
    bins = int(rng.integers(3, 25))
    reference = rng.dirichlet(np.ones(bins))
    reference[-1] = 0.0  # the unseen-category bucket
    reference /= reference.sum()
    counts = rng.integers(0, 40, size=bins)
    counts[rng.integers(bins - 1)] = 0  # an empty window bin
    counts[-1] = rng.integers(0, 3)
    expected = jensenshannon(counts / counts.sum(), reference, base=2)
    assert jensen_shannon_distance(reference, counts) == pytest.approx(expected, rel=1e-12, abs=1e-15)


def test_jensen_shannon_normalises_reference_ratios_like_scipy() -> None:
    reference, counts = np.array([2.0, 1.0, 1.0]), np.array([1, 5, 2])
    expected = jensenshannon(counts, reference, base=2)
    assert jensen_shannon_distance(reference, counts) == pytest.approx(expected, rel=1e-12)


def test_jensen_shannon_empty_window_is_nan() -> None:
    assert math.isnan(jensen_shannon_distance([0.5, 0.5], [0, 0]))


def test_jensen_shannon_rejects_bad_input() -> None:
    with pytest.raises(ValueError, match="reference_ratios must not be all zero"):
        jensen_shannon_distance([0.0, 0.0], [1, 1])
    with pytest.raises(ValueError, match="reference_ratios has 2 bins but current_counts has 3"):
        jensen_shannon_distance([0.5, 0.5], [1, 1, 1])


# Chi-square goodness of fit


def scipy_chi_square(reference_ratios: np.ndarray, counts: np.ndarray) -> tuple[float, float]:
    """scipy.stats.chisquare over the known categories (reference ratio > 0), expected = ratio · n."""
    known = np.asarray(reference_ratios) > 0
    observed = np.asarray(counts, dtype=float)[known]
    ratios = np.asarray(reference_ratios)[known]
    result = stats.chisquare(observed, ratios / ratios.sum() * observed.sum())
    return float(result.statistic), float(result.pvalue)


def test_chi_square_hand_computed() -> None:
    # O = (30, 10), E = (20, 20): X² = 100/20 + 100/20 = 10; with 1 df, P(χ² > x) = erfc(√(x/2))
    statistic, p_value = chi_square_test([0.5, 0.5], [30, 10])
    assert statistic == pytest.approx(10.0, rel=1e-12)
    assert p_value == pytest.approx(math.erfc(math.sqrt(5.0)), rel=1e-9)


@pytest.mark.parametrize("seed", range(6))
def test_chi_square_matches_scipy(seed: int) -> None:
    rng = np.random.default_rng(seed)
    categories = int(rng.integers(2, 12))
    reference = np.append(rng.dirichlet(np.ones(categories)), 0.0)  # known categories, then the unseen bucket
    counts = rng.multinomial(int(rng.integers(50, 5000)), rng.dirichlet(np.ones(categories + 1)))
    statistic, p_value = chi_square_test(reference, counts)
    expected_statistic, expected_p = scipy_chi_square(reference, counts)
    assert statistic == pytest.approx(expected_statistic, rel=1e-12)
    assert p_value == pytest.approx(expected_p, rel=1e-9, abs=1e-300)


def test_chi_square_leaves_the_unseen_bucket_out() -> None:
    with_unseen = chi_square_test([0.2, 0.3, 0.5, 0.0], [10, 40, 50, 900])
    without = chi_square_test([0.2, 0.3, 0.5], [10, 40, 50])
    assert with_unseen == without
    assert without == pytest.approx(scipy_chi_square(np.array([0.2, 0.3, 0.5]), np.array([10, 40, 50])), rel=1e-12)


def test_chi_square_counts_matching_the_reference_give_zero_and_p_one() -> None:
    statistic, p_value = chi_square_test([0.25, 0.25, 0.5, 0.0], [100, 100, 200, 0])
    assert statistic == 0.0
    assert p_value == 1.0


def test_chi_square_window_without_known_rows_is_nan() -> None:
    assert all(math.isnan(value) for value in chi_square_test([0.5, 0.5, 0.0], [0, 0, 0]))
    assert all(math.isnan(value) for value in chi_square_test([0.5, 0.5, 0.0], [0, 0, 7]))


def test_chi_square_single_known_category_has_no_mix_to_change() -> None:
    assert chi_square_test([1.0, 0.0], [5, 3]) == (0.0, 1.0)


# Kolmogorov-Smirnov


def assert_matches_ks_2samp(reference: np.ndarray, current: np.ndarray) -> None:
    statistic, p_value = ks_test(reference, current)
    expected = stats.ks_2samp(reference, current, method="asymp")
    assert statistic == pytest.approx(float(expected.statistic), rel=1e-12, abs=1e-15)
    assert p_value == pytest.approx(float(expected.pvalue), rel=1e-9, abs=1e-300)


def test_ks_hand_computed_statistic() -> None:
    # F_ref − F_cur is largest at x = 2 (½ − 0) and x = 3 (¾ − ¼): D = ½
    statistic, _ = ks_test([1.0, 2.0, 3.0, 4.0], [3.0, 4.0, 5.0, 6.0])
    assert statistic == 0.5
    assert_matches_ks_2samp(np.array([1.0, 2.0, 3.0, 4.0]), np.array([3.0, 4.0, 5.0, 6.0]))


def test_ks_separated_samples_give_one() -> None:
    statistic, p_value = ks_test([1.0, 2.0, 3.0], [4.0, 5.0, 6.0])
    assert statistic == 1.0
    assert p_value == pytest.approx(float(stats.ks_2samp([1, 2, 3], [4, 5, 6], method="asymp").pvalue), rel=1e-12)


@pytest.mark.parametrize("seed", range(8))
def test_ks_matches_scipy_asymptotic(seed: int) -> None:
    rng = np.random.default_rng(seed)
    reference = rng.normal(size=int(rng.integers(20, 3000)))
    current = rng.normal(loc=rng.uniform(-0.3, 0.3), scale=rng.uniform(0.8, 1.2), size=int(rng.integers(5, 3000)))
    assert_matches_ks_2samp(reference, current)


@pytest.mark.parametrize("seed", range(4))
def test_ks_with_ties_matches_scipy(seed: int) -> None:
    rng = np.random.default_rng(100 + seed)
    reference = rng.integers(0, 6, size=400).astype(float)
    current = rng.integers(0, 7, size=250).astype(float)
    assert_matches_ks_2samp(reference, current)


def test_ks_large_unequal_samples_match_scipy() -> None:
    rng = np.random.default_rng(42)
    assert_matches_ks_2samp(rng.normal(size=10_000), rng.normal(0.02, 1.0, size=50_000))


def test_ks_identical_samples_give_zero_and_p_one() -> None:
    sample = np.random.default_rng(3).normal(size=500)
    assert ks_test(sample, sample[::-1]) == (0.0, 1.0)


def test_ks_constant_samples() -> None:
    assert ks_test([2.0] * 10, [2.0] * 7) == (0.0, 1.0)
    assert_matches_ks_2samp(np.full(10, 2.0), np.full(7, 3.0))
    assert ks_test([2.0] * 10, [3.0] * 7)[0] == 1.0


def test_ks_single_values_give_nan_p_value_as_scipy() -> None:
    statistic, p_value = ks_test([1.0], [2.0])
    assert statistic == 1.0
    assert math.isnan(p_value)
    with np.errstate(divide="ignore"):  # scipy divides by n = 0 on its way to the same NaN
        assert math.isnan(float(stats.ks_2samp([1.0], [2.0], method="asymp").pvalue))
    assert_matches_ks_2samp(np.array([1.0, 2.0]), np.array([2.0]))


def test_ks_empty_sample_is_nan() -> None:
    assert all(math.isnan(value) for value in ks_test([1.0, 2.0], []))
    assert all(math.isnan(value) for value in ks_test([], [1.0, 2.0]))


def test_ks_rejects_non_finite_and_multidimensional_samples() -> None:
    with pytest.raises(ValueError, match="current_sample must hold finite numbers"):
        ks_test([1.0, 2.0], [1.0, math.nan])
    with pytest.raises(ValueError, match="reference_sample must be a 1-D array"):
        ks_test([[1.0, 2.0]], [1.0])


# Wasserstein distance in reference standard deviations


def test_wasserstein_hand_computed() -> None:
    # every unit of mass moves by 5 (0→5, 1→6, 3→8); in units of a std of 2 that is 2.5
    assert wasserstein_distance_normalised([0.0, 1.0, 3.0], [5.0, 6.0, 8.0], 2.0) == 2.5


def test_wasserstein_shift_is_the_shift_in_stds() -> None:
    reference = np.random.default_rng(11).normal(10.0, 3.0, size=1000)
    std = float(np.std(reference))
    assert wasserstein_distance_normalised(reference, reference + 0.75, std) == pytest.approx(0.75 / std, rel=1e-12)


@pytest.mark.parametrize("seed", range(8))
def test_wasserstein_matches_scipy(seed: int) -> None:
    rng = np.random.default_rng(seed)
    reference = rng.lognormal(size=int(rng.integers(1, 2000)))
    size = reference.size if seed % 2 == 0 else int(rng.integers(1, 2000))  # equal and unequal sizes
    current = rng.lognormal(mean=rng.uniform(-0.5, 0.5), size=size)
    std = float(np.std(reference)) or 1.0
    expected = stats.wasserstein_distance(reference, current) / std
    assert wasserstein_distance_normalised(reference, current, std) == pytest.approx(expected, rel=1e-9)


def test_wasserstein_with_ties_and_unequal_sizes_matches_scipy() -> None:
    rng = np.random.default_rng(5)
    reference = rng.integers(0, 5, size=300).astype(float)
    current = rng.integers(1, 7, size=77).astype(float)
    std = float(np.std(reference))
    expected = stats.wasserstein_distance(reference, current) / std
    assert wasserstein_distance_normalised(reference, current, std) == pytest.approx(expected, rel=1e-12)


def test_wasserstein_identical_distributions_give_zero() -> None:
    sample = np.random.default_rng(8).normal(size=400)
    assert wasserstein_distance_normalised(sample, sample[::-1], 1.0) == 0.0
    assert wasserstein_distance_normalised(sample, np.concatenate([sample, sample]), 1.0) == 0.0


def test_wasserstein_zero_reference_std() -> None:
    assert wasserstein_distance_normalised([4.0, 4.0, 4.0], [4.0, 4.0], 0.0) == 0.0
    assert wasserstein_distance_normalised([4.0, 4.0, 4.0], [4.0, 4.5], 0.0) == math.inf


def test_wasserstein_empty_sample_is_nan() -> None:
    assert math.isnan(wasserstein_distance_normalised([], [1.0], 1.0))
    assert math.isnan(wasserstein_distance_normalised([1.0], [], 1.0))


@pytest.mark.parametrize("std", [-1.0, math.nan, math.inf])
def test_wasserstein_rejects_bad_reference_std(std: float) -> None:
    with pytest.raises(ValueError, match="reference_std must be a finite, non-negative number"):
        wasserstein_distance_normalised([1.0], [1.0], std)


# Dataset drift share


def test_dataset_drift_share_counts_scores_strictly_over_the_threshold() -> None:
    scores = {"age": 0.30, "income": 0.10, "region": math.nan, "tenure": 0.25}
    assert dataset_drift_share(scores, 0.25) == pytest.approx(1 / 3, rel=1e-15)


def test_dataset_drift_share_of_nothing_is_nan() -> None:
    assert math.isnan(dataset_drift_share({}, 0.25))
    assert math.isnan(dataset_drift_share({"age": math.nan}, 0.25))


def test_dataset_drift_share_extremes() -> None:
    assert dataset_drift_share({"a": 0.5, "b": 0.9}, 0.25) == 1.0
    assert dataset_drift_share({"a": 0.0, "b": 0.2}, 0.25) == 0.0


@pytest.mark.parametrize(
    ("n_reference", "n_current", "seed"), [(500, 500, 0), (5000, 1000, 1), (7, 300, 2), (50, 3, 3)]
)
def test_ks_and_wasserstein_together_equal_scipy(n_reference: int, n_current: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    reference = np.round(rng.normal(0, 2, n_reference), 1)  # rounded: ties within and across the samples
    current = np.round(rng.normal(0.5, 2, n_current), 1)
    statistic, effective_n, distance = drift.ks_and_wasserstein(np.sort(reference), current, 2.0)
    expected = stats.ks_2samp(reference, current, method="asymp")
    assert statistic == pytest.approx(expected.statistic, abs=1e-12)
    assert drift.ks_pvalues([statistic], [effective_n])[0] == pytest.approx(expected.pvalue, abs=1e-9)
    assert distance == pytest.approx(stats.wasserstein_distance(reference, current) / 2.0, rel=1e-9)
    assert drift.ks_and_wasserstein([], current, 2.0)[0] != drift.ks_and_wasserstein([], current, 2.0)[0]  # NaN
    assert drift.ks_and_wasserstein(reference, reference, 0.0)[2] == 0.0
