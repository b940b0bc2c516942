"""A clock that only moves when told: the exporter's wall clock and its monotonic clock in a backtest."""

from __future__ import annotations


class SimulatedClock:
    """Seconds since the epoch, set by the backtest at each scrape step.

    Calling it gives the time (it stands in for `time.time` and `time.monotonic`, which the exporter only subtracts
    from each other, so one simulated time serves both)."""

    def __init__(self, now: float) -> None:
        self.now = float(now)

    def __call__(self) -> float:
        return self.now

    def set(self, now: float) -> None:
        if now < self.now:
            raise ValueError(f"a simulated clock does not go back: {now} < {self.now}")
        self.now = float(now)
