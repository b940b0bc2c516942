"""`promml.monitor_estimator`: a scikit-learn estimator (or pipeline) instrumented as a whole.

`predict` and `predict_proba` are monitored; every other attribute is the estimator's own. The score of a row
is the probability of the positive class for a binary classifier and of the predicted (top) class otherwise
(`rows.class_scores`). Results stay numpy arrays on the hot path, so large batches are observed in one vectorised
pass.

One log row per prediction: serving code often calls `predict_proba(X)` and then `predict(X)` on the same rows
(or the other way round). Of two such calls in a row, on the same thread, with the other method and the same rows
(the same object, or an equal array or DataFrame), only the first is monitored; the second is the estimator's
own call, so its rows are neither counted nor logged twice. Call `predict_proba` first: its row carries the score.

Pickling (`joblib.dump`) keeps the estimator and the monitoring options; a `registry=` is not kept (a registry
belongs to its process), so the unpickled estimator reports to the default registry of the process loading it.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from .monitor import monitor
from .rows import RowShapeError, class_scores

_METHODS = ("predict", "predict_proba")


def _predict_outputs(result: Any, n_rows: int) -> tuple[np.ndarray, None]:
    predictions = np.asarray(result)
    if predictions.ndim != 1 or len(predictions) != n_rows:
        raise RowShapeError(f"predict returned shape {predictions.shape} for {n_rows} row(s)")
    return predictions, None


def _same_rows(first: Any, second: Any) -> bool:
    """The same input object, or an equal array or DataFrame (compared only when one method follows the other)."""
    if first is second:
        return True
    if isinstance(first, np.ndarray) and isinstance(second, np.ndarray):
        return first.shape == second.shape and bool(np.array_equal(first, second))
    if hasattr(first, "equals") and type(first) is type(second):  # pandas, recognised without importing it
        return bool(first.equals(second))
    return False


class MonitoredEstimator:
    """Wraps a fitted estimator; use it wherever the estimator was used."""

    def __init__(self, estimator: Any, *, feature_names: Sequence[str] | None = None, **options: Any) -> None:
        names = feature_names if feature_names is not None else getattr(estimator, "feature_names_in_", None)
        if names is None:
            raise ValueError(
                f"promml.monitor_estimator: {type(estimator).__name__} was fitted without feature names (on a numpy "
                "array), so its rows could not be logged by name: pass feature_names=[...] (the columns in the "
                "order the model reads them), or fit it on a pandas DataFrame"
            )
        self.__dict__.update(estimator=estimator, _feature_names=[str(name) for name in names], _options=options)
        self._bind()

    def _bind(self) -> None:
        estimator, options, names = self.estimator, self._options, self._feature_names
        self._local = threading.local()
        self._monitored: dict[str, Callable[..., Any]] = {
            "predict": monitor(outputs=_predict_outputs, feature_names=names, **options)(estimator.predict)}
        self.predict = self._method("predict")
        if hasattr(estimator, "predict_proba"):
            self._monitored["predict_proba"] = monitor(outputs=self._proba_outputs, feature_names=names, **options)(
                estimator.predict_proba)
            self.predict_proba = self._method("predict_proba")

    def _method(self, name: str) -> Callable[..., Any]:
        monitored, own = self._monitored[name], getattr(self.estimator, name)
        local = self._local

        def call(X: Any, *args: Any, **kwargs: Any) -> Any:
            last = getattr(local, "last", None)
            if last is not None and last[0] != name and _same_rows(last[1], X):
                local.last = None  # these rows were monitored by the other method just now
                return own(X, *args, **kwargs)
            local.last = (name, X)
            return monitored(X, *args, **kwargs)

        call.__name__ = call.__qualname__ = name
        call.__doc__ = getattr(own, "__doc__", None)
        return call

    def _proba_outputs(self, result: Any, n_rows: int) -> tuple[np.ndarray, np.ndarray]:
        probabilities = np.asarray(result, dtype=float)
        if probabilities.ndim != 2 or len(probabilities) != n_rows:
            raise RowShapeError(f"predict_proba returned shape {probabilities.shape} for {n_rows} row(s)")
        top, scores = class_scores(probabilities)
        return np.asarray(self.estimator.classes_)[top], scores

    def __getstate__(self) -> dict[str, Any]:
        options = {key: value for key, value in self._options.items() if key != "registry"}
        return {"estimator": self.estimator, "feature_names": self._feature_names, "options": options}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(estimator=state["estimator"], _feature_names=state["feature_names"],
                             _options=state["options"])
        self._bind()

    def __getattr__(self, name: str) -> Any:
        estimator = self.__dict__.get("estimator")
        if estimator is None or name.startswith("__"):  # half-built (while unpickling), or a protocol lookup
            raise AttributeError(name)
        return getattr(estimator, name)


def monitor_estimator(estimator: Any, *, model_name: str, model_version: str, **options: Any) -> MonitoredEstimator:
    """Instrument a fitted scikit-learn estimator; `options` are those of `promml.monitor`.

    Raises ValueError when the estimator has no feature names (fitted on a numpy array) and none are given."""
    return MonitoredEstimator(estimator, model_name=model_name, model_version=model_version, **options)
