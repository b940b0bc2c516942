"""`promml.monitor_estimator`: a scikit-learn estimator (or pipeline) instrumented as a whole.

`predict` and `predict_proba` are monitored; every other attribute is the estimator's own. The score of a row
is the probability of the positive class for a binary classifier and of the predicted (top) class otherwise.
Results stay numpy arrays on the hot path, so large batches are observed in one vectorised pass.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from .monitor import monitor
from .rows import RowShapeError


def _predict_outputs(result: Any, n_rows: int) -> tuple[np.ndarray, None]:
    predictions = np.asarray(result)
    if predictions.ndim != 1 or len(predictions) != n_rows:
        raise RowShapeError(f"predict returned shape {predictions.shape} for {n_rows} row(s)")
    return predictions, None


class MonitoredEstimator:
    """Wraps a fitted estimator; use it wherever the estimator was used."""

    def __init__(self, estimator: Any, *, feature_names: Sequence[str] | None = None, **options: Any) -> None:
        self.estimator = estimator
        names = feature_names if feature_names is not None else getattr(estimator, "feature_names_in_", None)
        names = None if names is None else [str(name) for name in names]
        self.predict = monitor(outputs=_predict_outputs, feature_names=names, **options)(estimator.predict)
        if hasattr(estimator, "predict_proba"):
            self.predict_proba = monitor(outputs=self._proba_outputs, feature_names=names, **options)(
                estimator.predict_proba
            )

    def _proba_outputs(self, result: Any, n_rows: int) -> tuple[np.ndarray, np.ndarray]:
        probabilities = np.asarray(result, dtype=float)
        if probabilities.ndim != 2 or len(probabilities) != n_rows:
            raise RowShapeError(f"predict_proba returned shape {probabilities.shape} for {n_rows} row(s)")
        top = probabilities.argmax(axis=1)
        predictions = np.asarray(self.estimator.classes_)[top]
        scores = probabilities[:, 1] if probabilities.shape[1] == 2 else probabilities[np.arange(n_rows), top]
        return predictions, scores

    def __getattr__(self, name: str) -> Any:
        return getattr(self.estimator, name)


def monitor_estimator(estimator: Any, *, model_name: str, model_version: str, **options: Any) -> MonitoredEstimator:
    """Instrument a fitted scikit-learn estimator; `options` are those of `promml.monitor`."""
    return MonitoredEstimator(estimator, model_name=model_name, model_version=model_version, **options)
