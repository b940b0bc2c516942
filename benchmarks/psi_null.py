"""How often an unchanged feature's PSI crosses the drift thresholds by chance, by present values per bin.

The sample-size guards of DataDriftDetected and DataDriftAnomalous (prometheus/rules/alerts.yml) come from this
table: PSI's noise under no drift depends on how many present values fall in each of the feature's bins, not on
the window's rows (a feature missing in most rows, or with many categories, is noisy in a full window). Each
row draws `WINDOWS` windows of k × bins values from the reference shares and computes PSI with the exporter's
formula (promml.stats.drift.psi: both shares clipped at 1e-4). Run: `python benchmarks/psi_null.py`.
"""

from __future__ import annotations

import numpy as np

from promml.stats.drift import PSI_EPSILON

WINDOWS = 20000
PER_BIN = (5, 10, 15, 20, 30, 40, 50)
THRESHOLDS = (0.25, 0.1)


def reference_shapes() -> dict[str, np.ndarray]:
    """Even bins (numeric deciles and the like), Zipf categories, and a categorical with its unseen bucket (0)."""
    shapes = {f"even{b}": np.full(b, 1 / b) for b in (2, 3, 5, 10, 20, 30, 50)}
    for b in (10, 30, 50):
        weights = 1 / np.arange(1, b + 1)
        shapes[f"zipf{b}"] = weights / weights.sum()
    shapes["zipf50+unseen"] = np.append(shapes["zipf50"], 0.0)
    return shapes


def null_psi(reference: np.ndarray, values: int, rng: np.random.Generator) -> np.ndarray:
    """PSI of `WINDOWS` windows of `values` draws from `reference` itself (no drift)."""
    counts = rng.multinomial(values, reference / reference.sum(), size=WINDOWS).astype(float)
    p = np.clip(counts / values, PSI_EPSILON, None)
    q = np.clip(reference, PSI_EPSILON, None)
    return ((p - q) * np.log(p / q)).sum(axis=1)


def main() -> None:
    rng = np.random.default_rng(16)
    print("values/bin  shape           " + "  ".join(f"P(PSI>{t})" for t in THRESHOLDS) + "  mean")
    for per_bin in PER_BIN:
        worst = [0.0] * len(THRESHOLDS)
        for name, reference in reference_shapes().items():
            scores = null_psi(reference, per_bin * reference.size, rng)
            shares = [float(np.mean(scores > t)) for t in THRESHOLDS]
            worst = [max(a, b) for a, b in zip(worst, shares, strict=True)]
            print(f"{per_bin:10d}  {name:14s}  " + "  ".join(f"{100 * s:10.2f}%" for s in shares)
                  + f"  {scores.mean():.3f}")
        print(f"{per_bin:10d}  {'worst':14s}  " + "  ".join(f"{100 * s:10.2f}%" for s in worst))


if __name__ == "__main__":
    main()
