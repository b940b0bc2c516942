"""Ground truth: which predictions get a label, how late it arrives, and how the true relationship drifts.

A label delay is a distribution (minutes to hours: lognormal, exponential, uniform or fixed) plus the share of
predictions that are ever labelled; a label due after the run's end is not written, as it would not have arrived
yet. Concept drift moves the true label relationship away from the one the model learned, at a rate given in
accuracy points per day: the blend between the two relationships that gives each accuracy drop is calibrated
once on a sample, so the drop is the one asked for while the inputs, and so the model's scores, do not move.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import stats

from .durations import DurationError, parse_duration

DISTRIBUTIONS = {
    "lognormal": ("median", "sigma"),
    "exponential": ("mean",),
    "uniform": ("min", "max"),
    "fixed": ("delay",),
}
"""Delay distributions and their parameters (durations, except the lognormal's `sigma`, the standard deviation of
the logarithm of the delay)."""

CALIBRATION_ROWS = 20_000
"""Rows the concept drift's blend is calibrated on: the accuracy of each blend is known to about ±0.2 points."""
CALIBRATION_STEPS = 201


class LabelSpecError(ValueError):
    """A label delay or fraction that cannot be used; the message names the key."""


@dataclass(frozen=True)
class DelayDistribution:
    """How long after its prediction a label arrives, in seconds."""

    distribution: str
    params: dict[str, float]

    def sample(self, rng: np.random.Generator, n: int) -> np.ndarray:
        p = self.params
        if self.distribution == "lognormal":
            return rng.lognormal(math.log(p["median"]), p["sigma"], n)
        if self.distribution == "exponential":
            return rng.exponential(p["mean"], n)
        if self.distribution == "uniform":
            return rng.uniform(p["min"], p["max"], n)
        return np.full(n, p["delay"])

    def scipy(self) -> Any:
        """The same distribution as a frozen scipy.stats distribution (for quantiles and for tests)."""
        p = self.params
        if self.distribution == "lognormal":
            return stats.lognorm(s=p["sigma"], scale=p["median"])
        if self.distribution == "exponential":
            return stats.expon(scale=p["mean"])
        if self.distribution == "uniform":
            return stats.uniform(loc=p["min"], scale=p["max"] - p["min"])
        return stats.uniform(loc=p["delay"], scale=0.0)

    def quantile(self, q: float) -> float:
        if self.distribution == "fixed":
            return self.params["delay"]
        return float(self.scipy().ppf(q))

    def to_json(self) -> dict[str, Any]:
        return {"distribution": self.distribution, **{f"{key}_seconds" if key != "sigma" else key: value
                                                      for key, value in self.params.items()}}


@dataclass(frozen=True)
class LabelSpec:
    """The share of predictions labelled and the delay of their labels."""

    fraction: float
    delay: DelayDistribution

    def to_json(self) -> dict[str, Any]:
        return {"fraction": self.fraction, "delay": self.delay.to_json()}


DEFAULT_LABELS = LabelSpec(0.8, DelayDistribution("lognormal", {"median": 300.0, "sigma": 0.8}))
"""4 in 5 predictions labelled, half of them within 5 minutes and 99% within about 32: well inside an hour's
window, so accuracy is judged on most of the window's rows."""


def parse_delay(raw: Any, where: str) -> DelayDistribution:
    """A delay mapping such as `{distribution: lognormal, median: 10m, sigma: 0.8}`."""
    if not isinstance(raw, Mapping):
        raise LabelSpecError(f"{where}: expected a mapping such as {{distribution: lognormal, median: 10m, "
                             f"sigma: 0.8}}, got {raw!r}")
    name = raw.get("distribution")
    if name not in DISTRIBUTIONS:
        raise LabelSpecError(f"{where}.distribution: expected one of {', '.join(DISTRIBUTIONS)}, got {name!r}")
    keys = DISTRIBUTIONS[name]
    for key in raw:
        if key != "distribution" and key not in keys:
            raise LabelSpecError(f"{where}: unknown key {key!r} for a {name} delay; expected {', '.join(keys)}")
    params: dict[str, float] = {}
    for key in keys:
        if key not in raw:
            raise LabelSpecError(f"{where}.{key}: missing; a {name} delay needs {', '.join(keys)}")
        value = raw[key]
        if key == "sigma":
            if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= 5:
                raise LabelSpecError(f"{where}.sigma: expected a number from 0 to 5, got {value!r}")
            params[key] = float(value)
            continue
        try:
            params[key] = parse_duration(value)
        except DurationError as error:
            raise LabelSpecError(f"{where}.{key}: {error}") from None
    if name == "lognormal" and params["median"] <= 0:
        raise LabelSpecError(f"{where}.median: expected a duration above 0, got {raw['median']!r}")
    if name == "exponential" and params["mean"] <= 0:
        raise LabelSpecError(f"{where}.mean: expected a duration above 0, got {raw['mean']!r}")
    if name == "uniform" and params["max"] < params["min"]:
        raise LabelSpecError(f"{where}: max ({raw['max']!r}) must not be below min ({raw['min']!r})")
    return DelayDistribution(name, params)


def parse_fraction(value: Any, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= 1:
        raise LabelSpecError(f"{where}: expected the share of predictions labelled, from 0 to 1, got {value!r}")
    return float(value)


def parse_labels(raw: Any, where: str, default: LabelSpec = DEFAULT_LABELS) -> LabelSpec:
    """A `labels:` mapping: `fraction` (0..1) and `delay` (see `parse_delay`), each defaulting to `default`'s."""
    if raw is None:
        return default
    if not isinstance(raw, Mapping):
        raise LabelSpecError(f"{where}: expected a mapping with fraction and delay, got {raw!r}")
    for key in raw:
        if key not in ("fraction", "delay"):
            raise LabelSpecError(f"{where}: unknown key {key!r}; expected fraction, delay")
    fraction = parse_fraction(raw["fraction"], f"{where}.fraction") if "fraction" in raw else default.fraction
    delay = parse_delay(raw["delay"], f"{where}.delay") if "delay" in raw else default.delay
    return LabelSpec(fraction, delay)


# --- Concept drift --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ConceptCalibration:
    """Accuracy drop (ascending) → blend weight of the drifted relationship that gives it."""

    drops: np.ndarray
    weights: np.ndarray

    @property
    def max_drop(self) -> float:
        return float(self.drops[-1])

    def weight_for(self, drop: np.ndarray) -> np.ndarray:
        return np.interp(drop, self.drops, self.weights)


def calibrate_blend(normal: np.ndarray, drifted: np.ndarray, noise: np.ndarray, predictions: np.ndarray
                    ) -> ConceptCalibration:
    """The accuracy drop of the model's `predictions` when labels follow `(1 - w) * normal + w * drifted` (plus the
    same `noise`), for w from 0 to 1: the weights are read back by drop, so the drop grows only as w does."""
    weights = np.linspace(0.0, 1.0, CALIBRATION_STEPS)
    accuracy = np.array([np.mean((((1 - w) * normal + w * drifted + noise) > 0) == predictions) for w in weights])
    drops = np.maximum.accumulate(accuracy[0] - accuracy)
    keep = np.concatenate([[True], np.diff(drops) > 0])  # a strictly rising curve to interpolate on
    return ConceptCalibration(drops[keep], weights[keep])


def flip_probability(drop: np.ndarray, accuracy: float) -> np.ndarray:
    """The share of binary labels to flip so that a model of `accuracy` loses `drop`: flipping q of the labels
    turns accuracy a into a(1 - q) + (1 - a)q = a - q(2a - 1). Used for a user's rows, whose true relationship is
    not known."""
    if accuracy <= 0.5:
        return np.zeros_like(drop)
    return np.clip(drop / (2 * accuracy - 1), 0.0, 1.0)

