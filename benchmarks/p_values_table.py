"""The "Reading p-values" table of docs/exporter.md: what KS, Wasserstein and PSI read for one small shift at
growing sample sizes, as medians over many seeded draws (one draw can be unlucky: at 1,000 rows the KS p-value of
a single draw ranges from below 0.05 to near 1).

Each draw: a reference and a current sample of n values, N(0, 1) and N(0.03, 1) (a shift of 0.03 training stds),
KS D and its asymptotic p-value (`promml.stats.drift.ks_test`, equal to scipy's `ks_2samp(method="asymp")`), the
Wasserstein distance over the reference std, and PSI over 10 quantile bins of the reference. Prints the Markdown
table. Run: `python benchmarks/p_values_table.py` (about a minute).
"""

from __future__ import annotations

import argparse

import numpy as np

from promml.stats.drift import ks_test, psi, wasserstein_distance_normalised

SHIFT = 0.03
DRAWS = {1_000: 1001, 100_000: 101, 1_000_000: 21}
"""Draws per sample size: odd, so the median is one of the draws."""


def one_draw(n: int, rng: np.random.Generator) -> tuple[float, float, float, float]:
    reference = rng.normal(0.0, 1.0, n)
    current = rng.normal(SHIFT, 1.0, n)
    d, p = ks_test(reference, current)
    distance = wasserstein_distance_normalised(reference, current, float(np.std(reference)))
    edges = np.unique(np.quantile(reference, np.arange(1, 10) / 10))
    ratios = np.bincount(np.searchsorted(edges, reference, side="right"), minlength=edges.size + 1) / n
    counts = np.bincount(np.searchsorted(edges, current, side="right"), minlength=edges.size + 1)
    return d, p, distance, psi(ratios, counts)


def _p_text(p: float) -> str:
    if p >= 0.001:
        return f"{p:.2g}"
    mantissa, exponent = f"{p:.0e}".split("e")
    return f"{mantissa} × 10^{int(exponent)}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    rng = np.random.default_rng(args.seed)
    print(f"Medians over seeded draws (seed {args.seed}) of a shift of {SHIFT} stds:\n")
    print("| rows per sample | draws | KS D | KS p-value | Wasserstein / std | PSI |")
    print("|---|---|---|---|---|---|")
    for n, draws in DRAWS.items():
        d, p, distance, index = np.median([one_draw(n, rng) for _ in range(draws)], axis=0)
        print(f"| {n:,} | {draws} | {d:.3f} | {_p_text(p)} | {distance:.3f} | {index:.4f} |")


if __name__ == "__main__":
    main()
