"""The rows of one predict call on their way to the prediction log, rendered as records only when written.

Why: building a record per row (feature dicts, id strings, an RFC 3339 timestamp) costs more than the rest of the
instrumentation; a `PredictionBatch` holds what the call produced and is turned into records on the writer's thread.
There, `PredictionBatch.render_many` turns every call the writer drained at once into small structs (not dicts),
the caller's feature dict reused as it is (the call already copied it), and the writer encodes them all with one
msgspec call; numpy scalars are converted by the encoder only when they occur. What is per call is done per drain:
the ids of five calls come from one hash (`call_prefixes`), and the timestamps' date and time of day are formatted
once per second (`utc_timestamps`). That keeps the writer ahead of a no-op model at saturation even
though it shares the interpreter lock with the caller (see docs/benchmarks.md). Iterating a batch still yields the
records as dicts, for tests and other consumers.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import msgspec

from ..records import PredictionLine, prediction_record, utc_timestamp, utc_timestamps
from .prediction_ids import CallIds, call_prefixes, format_ids
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
        (lines,) = self.render_many([self])
        if isinstance(lines, Exception):
            raise lines
        return encoder.encode_lines(lines)

    @staticmethod
    def render_many(batches: Sequence[PredictionBatch]) -> list[list[PredictionLine] | Exception]:
        """The lines of each batch, or the error that kept it from rendering (it fails that batch only).

        The log writer calls this once per drain of its queue, so ids and timestamps are made for all its calls at
        once; a one-row call with a dict of features (online serving) takes the short path.
        """
        prefixes = call_prefixes([batch.call for batch in batches])
        stamps = utc_timestamps([batch.epoch_seconds for batch in batches])
        rendered: list[list[PredictionLine] | Exception] = []
        for batch, prefix, stamp in zip(batches, prefixes, stamps, strict=True):
            try:
                inputs = batch.inputs
                if batch.call[2] == 1 and type(inputs) is dict and batch.keep is None:
                    scores = batch.scores
                    rendered.append([PredictionLine(prefix, stamp, batch.model[0], batch.model[1], inputs,
                                                    batch.predictions[0], None if scores is None else scores[0])])
                else:
                    rendered.append(batch._lines(prefix, stamp))
            except Exception as error:  # a batch that cannot be rendered fails alone
                rendered.append(error)
        return rendered

    def _lines(self, prefix: str, stamp: str) -> list[PredictionLine]:
        rows = feature_rows(self.inputs, self.feature_names)
        ids = format_ids(self.call, prefix)
        if len(rows) != len(ids):
            raise ValueError(f"{len(rows)} feature rows for {len(ids)} predictions")
        predictions = _plain_list(self.predictions)
        scores = [None] * len(ids) if self.scores is None else _plain_list(self.scores)
        name, version = self.model
        indices = range(len(ids)) if self.keep is None else self.keep
        return [PredictionLine(ids[index], stamp, name, version, rows[index], predictions[index], scores[index])
                for index in indices]


def _plain_list(values: Any) -> list[Any]:
    """numpy arrays become lists of Python scalars, so records serialise as JSON numbers and strings."""
    return values.tolist() if hasattr(values, "tolist") else list(values)

