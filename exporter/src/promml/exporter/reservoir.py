"""A bounded, uniform random sample of a stream of numbers, for KS and Wasserstein on unbounded data.

Reservoir sampling (Vitter's Algorithm R): the first `capacity` values fill the reservoir; the value at 0-based
stream position i ≥ capacity then replaces slot j, drawn uniformly from 0..i, when j < capacity. After any number of
values every one of them is in the reservoir with the same probability, capacity / seen, and memory stays at
`capacity` floats however long the stream. `add_many` draws all of a batch's slots in one numpy call.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from . import state as st


class Reservoir:
    """A uniform sample of at most `capacity` of the values added so far; `seed` makes it reproducible.

    Memory grows with the values kept, up to `capacity`, not with the capacity asked for: a slot that sees 10 rows
    holds 10 floats. `shrink` lowers the capacity later, keeping a uniform subset.
    """

    def __init__(self, capacity: int, seed: int | None = None) -> None:
        if isinstance(capacity, bool) or not isinstance(capacity, int | np.integer) or capacity < 1:
            raise ValueError(f"capacity must be a positive integer, got {capacity!r}")
        self.capacity = int(capacity)
        self._rng = np.random.default_rng(seed)
        self._sample = np.empty(0, dtype=float)
        self._seen = 0

    @property
    def seen(self) -> int:
        """How many values have been offered, kept or not."""
        return self._seen

    @property
    def held(self) -> int:
        """How many values are kept: `min(seen, capacity)`."""
        return self._sample.size

    def values(self) -> np.ndarray:
        """A copy of the sample: `min(seen, capacity)` values, in no particular order."""
        return self._sample.copy()

    def to_state(self) -> dict[str, Any]:
        """Everything the reservoir holds, its generator's state included, for the checkpoint."""
        return {"capacity": self.capacity, "seen": self._seen, "values": st.floats_to_state(self._sample),
                "rng": st.rng_to_state(self._rng)}

    @classmethod
    def from_state(cls, state: Any, max_capacity: int, where: str, max_seen: int = st.MAX_COUNT) -> Reservoir:
        """A reservoir as saved by `to_state`, of at most `max_capacity` (InvalidState when it cannot be one); it
        goes on drawing as the saved one would have."""
        capacity = st.integer(st.field(state, "capacity", where), f"{where}.capacity", 1, max_capacity)
        seen = st.count(st.field(state, "seen", where), f"{where}.seen", max_seen)
        values = st.floats_from_state(st.field(state, "values", where), f"{where}.values", capacity)
        if values.size != min(seen, capacity):
            raise st.InvalidState(f"{where}.values: expected {min(seen, capacity)} values, got {values.size}")
        reservoir = cls.__new__(cls)  # not __init__: its fresh generator would be replaced at once
        reservoir.capacity = capacity
        reservoir._rng = st.rng_from_state(st.field(state, "rng", where), f"{where}.rng")
        reservoir._sample = values
        reservoir._seen = seen
        return reservoir

    def add(self, value: float) -> None:
        """Offer one value."""
        self.add_many(np.array([value], dtype=float))

    def add_many(self, values: np.ndarray) -> None:
        """Offer a batch of values, in order; the result is the same in law as offering them one by one."""
        batch = np.asarray(values, dtype=float)
        if batch.ndim != 1:
            raise ValueError(f"values must be a 1-D array, got shape {batch.shape}")
        filling = min(max(self.capacity - self._sample.size, 0), batch.size)
        if filling:
            self._sample = np.concatenate([self._sample, batch[:filling]])
        rest = batch[filling:]
        first_position = self._seen + filling
        self._seen += batch.size
        if rest.size == 0:
            return
        # Position i replaces slot j ~ uniform{0..i} when j < capacity; `high` is exclusive, hence i + 1.
        positions = np.arange(first_position, first_position + rest.size, dtype=np.int64)
        slots = self._rng.integers(0, positions + 1)
        kept = slots < self.capacity
        slots, rest = slots[kept], rest[kept]
        # When several values of the batch hit one slot, the latest wins, as it would one at a time.
        reversed_slots = slots[::-1]
        unique_slots, last_from_end = np.unique(reversed_slots, return_index=True)
        self._sample[unique_slots] = rest[::-1][last_from_end]

    def shrink(self, capacity: int) -> None:
        """Lower the capacity to `capacity` (no-op when it is not lower), keeping a uniform random subset of the
        values held. A uniform subset of a uniform sample is a uniform sample, and Algorithm R goes on from there
        exactly as if `capacity` had been the capacity from the start."""
        if capacity >= self.capacity or capacity < 1:
            return
        self.capacity = int(capacity)
        if self._sample.size > capacity:
            self._sample = self._rng.choice(self._sample, capacity, replace=False)
