"""One uniform sample of a window's values, merged from the per-slot reservoirs it is made of.

Each slot keeps a reservoir, a uniform sample of its own values. A uniform sample of `size` of the window's N rows
takes from slot i, which saw nᵢ of them, a number mᵢ distributed as in drawing `size` rows at random from all N:
(m₁, …, mₖ) is one multivariate hypergeometric draw over (n₁, …, nₖ), and slot i gives mᵢ values drawn without
replacement from its reservoir. Every row of the window then has the same chance, size / N, whatever the spread of
rows over the slots: a fixed rounding of nᵢ · size / N would give each of 1,440 one-minute slots of a day with
1,000 draws 0 or 1 value in a fixed pattern (the oldest slots all, the newest none).

A slot must hold as many values as it may be asked for: `slot_capacity` says how many that is, given the rows
from that slot to now, which every window holding the slot contains (see `SlidingWindow`). On the rare draw where
a slot is asked for more than it holds, the shortfall is drawn the same way from the other slots' spare values.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

CAPACITY_SIGMAS = 4.0
"""A slot keeps its expected share of a sample plus this many standard deviations (and 4 values): a hypergeometric
count exceeds that less than once in 30,000 draws."""


def slot_capacity(seen: int, seen_since: int, size: int) -> int:
    """Values a slot must keep so that any window holding it can draw its share of a `size` sample: the slot saw
    `seen` rows and the slots from it to now `seen_since` (itself included); every window that holds the slot holds
    all of those, so the slot's expected share of its sample is at most size · seen / seen_since."""
    if seen_since <= 0:
        return size
    expected = size * seen / seen_since
    return min(size, seen, math.ceil(expected + CAPACITY_SIGMAS * math.sqrt(expected) + 4))


def draw_counts(seen: Sequence[int], held: Sequence[int], size: int, rng: np.random.Generator) -> np.ndarray:
    """How many values each part gives to a uniform sample of min(size, Σ seen) rows: a multivariate hypergeometric
    draw over the rows seen, capped by the values held, any shortfall drawn again over the spare values."""
    seen_array = np.asarray(seen, dtype=np.int64)
    held_array = np.asarray(held, dtype=np.int64)
    total = int(seen_array.sum())
    if total == 0 or size <= 0:
        return np.zeros(len(seen_array), dtype=np.int64)
    counts = rng.multivariate_hypergeometric(seen_array, min(size, total), method="marginals")
    counts = np.minimum(counts, held_array)
    shortfall = min(size, total) - int(counts.sum())
    spare = held_array - counts
    if shortfall > 0 and spare.sum() > 0:
        counts += rng.multivariate_hypergeometric(spare, min(shortfall, int(spare.sum())), method="marginals")
    return counts


def merged_sample(parts: Sequence[tuple[int, np.ndarray]], size: int, rng: np.random.Generator) -> np.ndarray:
    """A uniform sample of min(`size`, Σ seen) values of the union of `parts`, each (values seen, reservoir held)."""
    counts = draw_counts([seen for seen, _ in parts], [held.size for _, held in parts], size, rng)
    pieces = [
        held if count == held.size else rng.choice(held, count, replace=False)
        for (_, held), count in zip(parts, counts.tolist(), strict=True)
        if count
    ]
    return np.concatenate(pieces) if pieces else np.empty(0, dtype=float)
