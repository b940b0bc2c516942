"""Where simulated rows come from, what the model answers, and what the truth is.

`DemoPopulation` draws the demo's credit-risk applicants (`promml.demo.data`, the same generator the demo model
was trained on), scores them with the real demo model, and draws labels from the demo's hidden relationship, so
predictions, scores and accuracy all respond to a shift. Scoring is vectorised: the rows are laid out exactly as
the model's `DictVectorizer` would lay them out and handed to the rest of its pipeline, which gives the same
probabilities as `CreditRiskModel.predict` (tested). `CsvPopulation` samples a user's reference rows; their
predictions, scores and labels come from the CSV's own columns.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..baseline import BaselineError, is_missing, is_number
from ..baseline.builder import load_csv_columns
from ..demo import data
from .labels import ConceptCalibration, calibrate_blend, flip_probability
from .scenario import ModelSpec, ScenarioError

SCORE_DECIMALS = 6
"""The demo server rounds scores to 6 decimals (`CreditRiskModel.predict`)."""
STD_ROWS = 20_000
"""Rows the features' standard deviations (the unit of seasonal shifts) are measured on."""


@dataclass(frozen=True)
class FeatureInfo:
    """How a feature is drawn and written: numeric ones are rounded to `decimals`, kept in `lower..upper`, and
    written as JSON integers when `integer`."""

    name: str
    numeric: bool
    integer: bool = False
    decimals: int | None = None
    lower: float | None = None
    upper: float | None = None

    def finish(self, values: np.ndarray) -> np.ndarray:
        """Values after a change, put back in the feature's range and precision (NaN stays NaN)."""
        if self.lower is not None or self.upper is not None:
            values = np.clip(values, self.lower, self.upper)
        if self.integer:
            return np.round(values)
        if self.decimals is not None:
            return np.round(values, self.decimals)
        return values


@dataclass
class Rows:
    """A batch of simulated rows: feature columns (numeric: float arrays; categorical: object arrays of str),
    which came from the downturn world (`incident`), and for a CSV population the source row of each."""

    columns: dict[str, np.ndarray]
    downturn: np.ndarray
    source_rows: np.ndarray | None = None

    def __len__(self) -> int:
        return self.downturn.size


class Population:
    """The interface the engine uses; see DemoPopulation and CsvPopulation."""

    model_name: str
    model_version: str
    features: list[FeatureInfo]
    std: dict[str, float]
    scored: bool
    has_labels: bool
    segments: tuple[str, ...] = ()

    def feature(self, name: str) -> FeatureInfo:
        for info in self.features:
            if info.name == name:
                return info
        raise KeyError(name)

    def draw(self, rng: np.random.Generator, n: int) -> Rows:
        raise NotImplementedError

    def replace_with_downturn(self, rng: np.random.Generator, rows: Rows, mask: np.ndarray) -> None:
        raise ScenarioError("the incident event needs the demo model and data")

    def true_labels(self, rng: np.random.Generator, rows: Rows, concept_drop: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def outputs(self, rows: Rows, observed: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray | None]:
        raise NotImplementedError

    def reference_outputs(self, rows: Rows) -> tuple[np.ndarray, np.ndarray | None]:
        return self.outputs(rows, rows.columns)


def _std_of(population: Population, rows: Rows) -> dict[str, float]:
    return {info.name: float(np.nanstd(rows.columns[info.name])) for info in population.features if info.numeric}


class DemoPopulation(Population):
    """The demo's applicants, its model and its true relationship (normal and downturn worlds)."""

    features: list[FeatureInfo] = [  # noqa: RUF012 - read-only, as the demo data defines it
        FeatureInfo("age", True, decimals=0, lower=18, upper=90),
        FeatureInfo("income", True, decimals=2, lower=100.0),  # a shifted income stays a positive income
        FeatureInfo("debt_ratio", True, decimals=4, lower=0.0, upper=1.0),
        FeatureInfo("num_accounts", True, integer=True, lower=0),
        FeatureInfo("region", False),
    ]
    scored = True
    has_labels = True
    segments = ("region",)

    def __init__(self) -> None:
        from ..demo.model import MODEL_NAME, MODEL_VERSION, CreditRiskModel  # scikit-learn: the demo model only

        self.model_name, self.model_version = MODEL_NAME, MODEL_VERSION
        self.model = CreditRiskModel()
        vectorizer = self.model.pipeline[0]
        self._columns: list[tuple[str, str | None]] = []  # (feature, category) per model input column
        for name in vectorizer.feature_names_:
            feature, _, category = name.partition("=")
            self._columns.append((feature, category or None))
        self._rest = self.model.pipeline[1:]
        scaler = self.model.pipeline[1]
        self._means = {feature: float(mean) for (feature, category), mean in zip(self._columns, scaler.mean_,
                                                                                  strict=True) if category is None}
        sample = self.draw(np.random.default_rng(0), STD_ROWS)
        self.std = _std_of(self, sample)
        self._calibration: ConceptCalibration | None = None

    def draw(self, rng: np.random.Generator, n: int) -> Rows:
        columns, _ = data.generate_columns(n, rng)
        columns["region"] = columns["region"].astype(object)
        columns["num_accounts"] = columns["num_accounts"].astype(float)
        return Rows(columns, np.zeros(n, dtype=bool))

    def replace_with_downturn(self, rng: np.random.Generator, rows: Rows, mask: np.ndarray) -> None:
        """Rows in `mask` become applicants of the demo's downturn world (`data.generate(drift=True)`)."""
        count = int(mask.sum())
        if count == 0:
            return
        drifted, _ = data.generate_columns(count, rng, drift=True)
        for name, values in drifted.items():
            rows.columns[name][mask] = values.astype(object) if name == "region" else values.astype(float)
        rows.downturn |= mask

    def _matrix(self, columns: dict[str, np.ndarray]) -> np.ndarray:
        """The model's input matrix: DictVectorizer's column order; a missing number is the training mean (0 once
        scaled), a missing category no category."""
        n = len(next(iter(columns.values())))
        matrix = np.empty((n, len(self._columns)))
        for j, (feature, category) in enumerate(self._columns):
            values = columns[feature]
            if category is None:
                matrix[:, j] = np.where(np.isnan(values), self._means[feature], values)
            else:
                matrix[:, j] = values == category
        return matrix

    def probabilities(self, columns: dict[str, np.ndarray]) -> np.ndarray:
        """P(default) per row, as `CreditRiskModel.predict` computes it before rounding."""
        return self._rest.predict_proba(self._matrix(columns))[:, 1]

    def outputs(self, rows: Rows, observed: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray | None]:
        probability = self.probabilities(observed)
        return (probability >= 0.5).astype(int), np.round(probability, SCORE_DECIMALS)

    def calibration(self) -> ConceptCalibration:
        """How far the true relationship must blend towards the downturn's for each accuracy drop (cached)."""
        if self._calibration is None:
            rng = np.random.default_rng(1)
            rows = self.draw(rng, 20_000)
            noise = rng.logistic(0, data.LABEL_NOISE, len(rows))
            predictions, _ = self.outputs(rows, rows.columns)
            self._calibration = calibrate_blend(data.default_score(rows.columns),
                                                data.default_score(rows.columns, drift=True), noise, predictions)
        return self._calibration

    def true_labels(self, rng: np.random.Generator, rows: Rows, concept_drop: np.ndarray) -> np.ndarray:
        """Defaults drawn from the demo's relationship; downturn rows follow the downturn's; concept drift blends
        the normal relationship towards the downturn's by the weight that loses `concept_drop` accuracy."""
        normal = data.default_score(rows.columns)
        drifted = data.default_score(rows.columns, drift=True)
        weight = np.where(rows.downturn, 1.0, 0.0)
        drifting = (concept_drop > 0) & ~rows.downturn
        if drifting.any():
            weight[drifting] = self.calibration().weight_for(concept_drop[drifting])
        score = (1 - weight) * normal + weight * drifted
        return (score + rng.logistic(0, data.LABEL_NOISE, len(rows)) > 0).astype(int)


@functools.lru_cache(maxsize=1)
def demo_population() -> DemoPopulation:
    """The demo population, built once per process: training the model is the same work for every run."""
    return DemoPopulation()


@dataclass
class CsvPopulation(Population):
    """A user's reference rows: sampled with replacement, outputs and labels from their own columns."""

    path: Path
    spec: ModelSpec
    baseline_model: tuple[str | None, str | None] = (None, None)
    table: dict[str, list[Any]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        try:
            self.table = load_csv_columns(self.path)
        except (BaselineError, OSError) as error:
            message = error.strerror if isinstance(error, OSError) and error.strerror else error
            raise ScenarioError(f"model.reference_csv {self.path}: {message}") from None
        self.n_rows = len(next(iter(self.table.values()), []))
        if self.n_rows == 0:
            raise ScenarioError(f"model.reference_csv {self.path}: no rows")
        spec = self.spec
        if spec.prediction not in self.table:
            raise ScenarioError(f"model.reference_csv {self.path}: no {spec.prediction!r} column: a prediction log "
                                f"needs the model's prediction of each row (columns: {', '.join(self.table)})")
        roles = {spec.target, spec.prediction, spec.score}
        names = [name for name in self.table if name not in roles]
        if not names:
            raise ScenarioError(f"model.reference_csv {self.path}: no feature columns")
        self.features, self._values = [], {}
        for name in names:
            values = self.table[name]
            present = [value for value in values if not is_missing(value)]
            if present and all(is_number(value) for value in present):
                numbers = np.array([np.nan if is_missing(value) else float(value) for value in values])
                integer = all(isinstance(value, int) for value in present)
                lower = 0.0 if min(present) >= 0 else None
                self.features.append(FeatureInfo(name, True, integer=integer, lower=lower))
                self._values[name] = numbers
            else:
                self.features.append(FeatureInfo(name, False))
                self._values[name] = np.array([None if is_missing(value) else str(value) for value in values],
                                              dtype=object)
        self.predictions = np.array(self.table[spec.prediction], dtype=object)
        self.scores = None if spec.score not in self.table else np.array(
            [np.nan if is_missing(value) else float(value) for value in self.table[spec.score]])
        self.labels = None if spec.target not in self.table else np.array(self.table[spec.target], dtype=object)
        self.has_labels = self.labels is not None
        self.scored = False
        name, version = self.baseline_model
        self.model_name = spec.name or name or "my-model"
        self.model_version = spec.version or version or "1"
        known = [label for label in (self.labels if self.labels is not None else []) if not is_missing(label)]
        self.classes = sorted({str(label) for label in known})
        self._class_values = {str(label): label for label in known}
        matches = [str(p) == str(t) for p, t in zip(self.predictions, self.labels, strict=True)
                   if not is_missing(t)] if self.labels is not None else []
        self.accuracy = float(np.mean(matches)) if matches else 0.0
        self.std = {feature.name: float(np.nanstd(self._values[feature.name])) for feature in self.features
                    if feature.numeric}

    def draw(self, rng: np.random.Generator, n: int) -> Rows:
        index = rng.integers(0, self.n_rows, n)
        columns = {name: values[index].copy() for name, values in self._values.items()}
        return Rows(columns, np.zeros(n, dtype=bool), index)

    def outputs(self, rows: Rows, observed: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray | None]:
        assert rows.source_rows is not None
        scores = None if self.scores is None else self.scores[rows.source_rows]
        return self.predictions[rows.source_rows], scores

    def true_labels(self, rng: np.random.Generator, rows: Rows, concept_drop: np.ndarray) -> np.ndarray:
        """The CSV's labels; under concept drift a share of them changes class (see `flip_probability`)."""
        assert rows.source_rows is not None and self.labels is not None
        labels = self.labels[rows.source_rows].copy()
        if (concept_drop > 0).any() and len(self.classes) >= 2:
            flip = rng.random(len(rows)) < flip_probability(concept_drop, self.accuracy)
            for i in np.flatnonzero(flip):
                others = [name for name in self.classes if name != str(labels[i])]
                labels[i] = self._class_values[others[rng.integers(0, len(others))]]
        return labels
