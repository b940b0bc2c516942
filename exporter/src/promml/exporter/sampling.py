"""One uniform sample of a window's values, merged from the per-slot reservoirs it is made of.

Each slot keeps a reservoir (a uniform sample of its own values). A uniform sample of the whole window must hold
each slot's values in proportion to how many the slot saw, not to how many it kept: a slot that saw 10 times more
rows must give 10 times more values. So slot i, which saw nᵢ values and kept hᵢ, gives mᵢ ≈ nᵢ · f values drawn
without replacement from its reservoir, with one rate f for every slot: f = min(size / N, minᵢ hᵢ / nᵢ), N = Σ nᵢ.
When every slot kept all it saw and N ≤ size, f = 1 and the sample is every value of the window.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np


def proportional_quotas(seen: Sequence[int], kept: Sequence[int], size: int) -> list[int]:
    """How many values each part gives: nᵢ · f rounded by largest remainder, never more than it kept."""
    total = sum(seen)
    if total == 0 or size <= 0:
        return [0] * len(seen)
    rate = min(size / total, *(k / n for n, k in zip(seen, kept, strict=True) if n))
    exact = [n * rate for n in seen]
    quotas = [min(math.floor(x + 1e-9), k) for x, k in zip(exact, kept, strict=True)]
    remaining = min(round(total * rate), sum(kept)) - sum(quotas)
    order = sorted(range(len(seen)), key=lambda i: exact[i] - quotas[i], reverse=True)
    for i in order:
        if remaining <= 0:
            break
        if quotas[i] < kept[i]:
            quotas[i] += 1
            remaining -= 1
    return quotas


def merged_sample(parts: Sequence[tuple[int, np.ndarray]], size: int, rng: np.random.Generator) -> np.ndarray:
    """A uniform sample of at most `size` values of the union of `parts`, each (values seen, reservoir held)."""
    quotas = proportional_quotas([seen for seen, _ in parts], [held.size for _, held in parts], size)
    pieces = [
        held if quota == held.size else rng.choice(held, quota, replace=False)
        for (_, held), quota in zip(parts, quotas, strict=True)
        if quota
    ]
    return np.concatenate(pieces) if pieces else np.empty(0, dtype=float)
