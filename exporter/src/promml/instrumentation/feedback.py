"""Ground truth for earlier predictions, written to the feedback log and joined by `prediction_id` later."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

from ..records import feedback_record
from .jsonl_writer import shared_writer
from .monitor import LOG_DIR_ENV

FEEDBACK_FILE = "feedback.jsonl"


class FeedbackError(ValueError):
    """Feedback that cannot be recorded; the message says what is wrong."""


def record_feedback(prediction_id: str, label: Any, *, log_dir: str | os.PathLike[str] | None = None) -> bool:
    """Append the true `label` of prediction `prediction_id` to `feedback.jsonl` without blocking.

    Returns False when the writer's queue is full and the label was dropped. Raises FeedbackError for an empty
    id, a missing label or no log directory, since those are the caller's mistakes, not load.
    """
    if not isinstance(prediction_id, str) or not prediction_id:
        raise FeedbackError("prediction_id must be a non-empty string")
    if label is None:
        raise FeedbackError("label is required")
    directory = log_dir if log_dir is not None else os.environ.get(LOG_DIR_ENV)
    if not directory:
        raise FeedbackError(f"no log directory: pass log_dir= or set {LOG_DIR_ENV}")
    writer = shared_writer(Path(directory) / FEEDBACK_FILE)
    return writer.submit([feedback_record(prediction_id, time.time(), label)])
