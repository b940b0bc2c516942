"""PSI against hand-computed values and an independent form: symmetric KL divergence via scipy's rel_entr."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.special import rel_entr

from promml.drift import PSI_EPSILON, psi, psi_many


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
