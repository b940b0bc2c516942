"""Labels read before their prediction, held a short while for it to be read.

Why: the prediction log and the feedback log have separate writers, each flushing on its own schedule, so a label
logged right after its prediction can reach the exporter first. Counted at once, it would be `unknown_prediction_id`
and its outcome lost. Held here for `early_label_grace_seconds` and tried again after each read of the prediction
logs, it joins when its prediction arrives; only a label still unmatched after the grace period is unknown.
"""

from __future__ import annotations

from collections import Counter, deque
from collections.abc import Callable, Iterable

from ..records import Feedback

MAX_EARLY_LABELS = 50_000
"""Labels held at most (about 200 bytes each); beyond, the oldest is given up at once. Only a flood of labels for
predictions that never come (another model's, say) fills it."""

UNKNOWN = "unknown_prediction_id"


class EarlyLabels:
    """A bounded, oldest-first queue of (label, time it was read)."""

    def __init__(self, grace_seconds: float, max_labels: int = MAX_EARLY_LABELS) -> None:
        self.grace_seconds = grace_seconds
        self.max_labels = max_labels
        self._held: deque[tuple[Feedback, float]] = deque()

    def __len__(self) -> int:
        return len(self._held)

    def hold(self, feedback: Feedback, read_at: float) -> list[Feedback]:
        """Hold a label whose prediction is unknown; returns the labels given up to make room (now unknown)."""
        self._held.append((feedback, read_at))
        given_up = []
        while len(self._held) > self.max_labels:
            given_up.append(self._held.popleft()[0])
        return given_up

    def retry(self, join: Callable[[Feedback], str], now: float) -> list[str]:
        """Try each held label again; the statuses of those that are settled (joined, a duplicate, or unknown
        after the grace period), which leave the queue."""
        settled = []
        still: deque[tuple[Feedback, float]] = deque()
        for feedback, read_at in self._held:
            status = join(feedback)
            if status == UNKNOWN and now - read_at < self.grace_seconds:
                still.append((feedback, read_at))
            else:
                settled.append(status)
        self._held = still
        return settled

    def labels(self) -> Counter[Feedback]:
        """The held labels (a label held twice, twice)."""
        return Counter(feedback for feedback, _ in self._held)

    def entries(self) -> list[tuple[Feedback, float]]:
        """The held labels with their read times, oldest first (for the checkpoint)."""
        return list(self._held)

    def restore(self, entries: Iterable[tuple[Feedback, float]]) -> None:
        self._held = deque(entries)
