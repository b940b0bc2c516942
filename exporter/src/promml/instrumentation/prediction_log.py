"""The rows of one predict call on their way to the prediction log, rendered as records only when written.

Why: building a record per row (feature dicts, id strings, an RFC 3339 timestamp) costs more than the rest of the
instrumentation; a `PredictionBatch` holds what the call produced and is turned into records on the writer's thread.
There, `encode_lines` renders a whole batch straight to JSON Lines bytes with msgspec: one small struct per row
instead of a dict, the caller's feature dict reused as it is (the call already copied it), numpy scalars converted
by the encoder only when they occur. That keeps the writer ahead of a no-op model at saturation (see
docs/benchmarks.md). Iterating a batch still yields the records as dicts, for tests and other consumers.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import msgspec

from ..records import PredictionLine, prediction_record, utc_timestamp
from .prediction_ids import CallIds, format_ids
from .rows import feature_rows


class PredictionBatch(Sequence[dict[str, Any]]):
    """A lazy sequence of prediction records: `len()` is free, iterating renders the records."""

    __slots__ = ("call", "epoch_seconds", "feature_names", "inputs", "keep", "model", "predictions", "scores")

    def __init__(
        self, call: CallIds, epoch_seconds: float, model: tuple[str, str], inputs: Any,
        predictions: Any, scores: Any, *, feature_names: Sequence[str] | None = None,
        keep: list[int] | None = None,
    ) -> None:
        self.call = call
        self.epoch_seconds = epoch_seconds
        self.model = model
        self.inputs = inputs
        self.predictions = predictions
        self.scores = scores
        self.feature_names = feature_names
        self.keep = keep
        """Row indices that were sampled in; None keeps every row."""

    def __len__(self) -> int:
        return self.call[2] if self.keep is None else len(self.keep)

    def __getitem__(self, index: Any) -> Any:
        return list(self)[index]

    def __iter__(self) -> Iterator[dict[str, Any]]:
        rows = feature_rows(self.inputs, self.feature_names)
        ids = format_ids(self.call)
        if len(rows) != len(ids):
            raise ValueError(f"{len(rows)} feature rows for {len(ids)} predictions")
        predictions = _plain_list(self.predictions)
        scores = [None] * len(ids) if self.scores is None else _plain_list(self.scores)
        name, version = self.model
        timestamp = utc_timestamp(self.epoch_seconds)
        indices = range(len(ids)) if self.keep is None else self.keep
        for index in indices:
            yield prediction_record(ids[index], self.epoch_seconds, name, version, rows[index],
                                    predictions[index], scores[index], timestamp=timestamp)


    def encode_lines(self, encoder: msgspec.json.Encoder) -> bytes:
        """The batch as JSON Lines, equal to encoding each record of `iter(self)` (tests/test_prediction_log.py)."""
        name, version = self.model
        timestamp = utc_timestamp(self.epoch_seconds)
        inputs = self.inputs
        if self.call[2] == 1 and type(inputs) is dict and self.keep is None:  # one row, the online-serving case
            score = None if self.scores is None else self.scores[0]
            return encoder.encode_lines((PredictionLine(format_ids(self.call)[0], timestamp, name, version, inputs,
                                                        self.predictions[0], score),))
        rows = feature_rows(inputs, self.feature_names)
        ids = format_ids(self.call)
        if len(rows) != len(ids):
            raise ValueError(f"{len(rows)} feature rows for {len(ids)} predictions")
        predictions = _plain_list(self.predictions)
        scores = [None] * len(ids) if self.scores is None else _plain_list(self.scores)
        indices = range(len(ids)) if self.keep is None else self.keep
        return encoder.encode_lines([
            PredictionLine(ids[index], timestamp, name, version, rows[index], predictions[index], scores[index])
            for index in indices
        ])


def _plain_list(values: Any) -> list[Any]:
    """numpy arrays become lists of Python scalars, so records serialise as JSON numbers and strings."""
    return values.tolist() if hasattr(values, "tolist") else list(values)

