"""Labels held for their prediction: joined when it comes, unknown after the grace period, bounded in number."""

from __future__ import annotations

from promml.exporter.early_labels import UNKNOWN, EarlyLabels
from promml.records import Feedback


def label(prediction_id: str) -> Feedback:
    return Feedback(prediction_id, 0.0, 1)


def test_a_held_label_settles_when_it_joins_or_when_its_grace_is_over() -> None:
    early = EarlyLabels(grace_seconds=10.0)
    early.hold(label("a"), read_at=100.0)
    early.hold(label("b"), read_at=105.0)
    known: set[str] = set()

    def join(feedback: Feedback) -> str:
        return "ok" if feedback.prediction_id in known else UNKNOWN

    assert early.retry(join, now=101.0) == [] and len(early) == 2  # neither prediction read yet
    known.add("b")
    assert early.retry(join, now=109.0) == ["ok"] and early.labels() == {label("a"): 1}
    assert early.retry(join, now=110.0) == [UNKNOWN] and len(early) == 0  # a's grace is over


def test_a_duplicate_settles_at_once() -> None:
    early = EarlyLabels(grace_seconds=10.0)
    early.hold(label("a"), read_at=100.0)
    assert early.retry(lambda feedback: "duplicate_feedback", now=100.0) == ["duplicate_feedback"]


def test_beyond_the_bound_the_oldest_labels_are_given_up() -> None:
    early = EarlyLabels(grace_seconds=10.0, max_labels=3)
    given_up = [feedback.prediction_id for i in range(5) for feedback in early.hold(label(f"p{i}"), read_at=i)]
    assert given_up == ["p0", "p1"] and [f.prediction_id for f, _ in early.entries()] == ["p2", "p3", "p4"]


def test_restored_entries_are_held_in_order() -> None:
    early = EarlyLabels(grace_seconds=10.0)
    early.restore([(label("x"), 1.0), (label("y"), 2.0)])
    assert early.entries() == [(label("x"), 1.0), (label("y"), 2.0)] and len(early) == 2
