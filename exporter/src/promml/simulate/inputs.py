"""The events that change the model's inputs, applied to a batch of rows at their arrival times.

In order: the downturn rows of an `incident`, the `seasonal` cycle of the feature mix, `covariate_shift` and
`covariate_drift`, then `missing_values`, which hides values from the model and the log but not from the truth
(the labels are drawn on the real values first). Every numeric change is put back in the feature's range and
precision, so a shifted income still has cents and an age is still whole.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from .population import Population, Rows
from .scenario import ScenarioError
from .timeline import TimedEvent
from .traffic import daily_cycle, is_weekend


def _where(event: TimedEvent) -> str:
    return f"events[{event.spec.index}] ({event.name!r}, type {event.type!r})"


def check_features(events: Sequence[TimedEvent], population: Population, source: str) -> None:
    """Every feature an event names exists and has the kind its parameters need; the error names the event."""
    names = [info.name for info in population.features]
    for event in events:
        params = event.params
        wanted: list[tuple[str, str]] = []
        if event.type in ("covariate_shift", "covariate_drift"):
            wanted.append(("feature", params["feature"]))
        elif event.type == "missing_values":
            wanted.extend(("features", name) for name in params["features"])
        elif event.type == "seasonal":
            wanted.extend((f"feature_daily.{name}", name) for name in params["feature_daily"])
            wanted.extend((f"feature_weekend.{name}", name) for name in params["feature_weekend"])
        for key, name in wanted:
            if name not in names:
                raise ScenarioError(f"{source}: {_where(event)}: params.{key}: no feature {name!r}; the model's "
                                    f"features are {', '.join(names)}")
            info = population.feature(name)
            if key.startswith("feature_") and not info.numeric:
                raise ScenarioError(f"{source}: {_where(event)}: params.{key}: {name!r} is categorical; a seasonal "
                                    f"shift in standard deviations needs a numeric feature")
            if event.type in ("covariate_shift", "covariate_drift"):
                if info.numeric and params["shares"]:
                    raise ScenarioError(f"{source}: {_where(event)}: params.shares: {name!r} is numeric; use scale "
                                        f"or shift")
                if not info.numeric and (params["scale"] != 1.0 or params["shift"] != 0.0):
                    raise ScenarioError(f"{source}: {_where(event)}: params.scale: {name!r} is categorical; use "
                                        f"shares")


def apply_inputs(rng: np.random.Generator, rows: Rows, offsets: np.ndarray, epoch: np.ndarray,
                 events: Sequence[TimedEvent], replica: int, population: Population) -> None:
    """Apply the input events (all but missing values) to `rows` in place."""
    mine = [event for event in events if event.applies_to(replica)]
    for event in mine:
        if event.type == "incident":
            share = event.strength(offsets) * event.params["fraction"]
            population.replace_with_downturn(rng, rows, rng.random(len(rows)) < share)
    changed: set[str] = set()
    for event in mine:
        if event.type == "seasonal":
            active = event.active(offsets)
            cycle = daily_cycle(epoch, event.params["peak_hour"])
            weekend = is_weekend(epoch)
            for name, amplitude in event.params["feature_daily"].items():
                rows.columns[name] = rows.columns[name] + active * amplitude * population.std[name] * cycle
                changed.add(name)
            for name, shift in event.params["feature_weekend"].items():
                rows.columns[name] = rows.columns[name] + (active & weekend) * shift * population.std[name]
                changed.add(name)
        elif event.type in ("covariate_shift", "covariate_drift"):
            name, params = event.params["feature"], event.params
            strength = event.strength(offsets)
            if population.feature(name).numeric:
                factor = 1 + strength * (params["scale"] - 1)
                rows.columns[name] = rows.columns[name] * factor + strength * params["shift"]
                changed.add(name)
            else:
                categories = list(params["shares"])
                shares = np.array([params["shares"][c] for c in categories])
                moved = rng.random(len(rows)) < strength
                picks = rng.choice(len(categories), size=int(moved.sum()), p=shares / shares.sum())
                column = rows.columns[name].copy()
                column[moved] = np.array(categories, dtype=object)[picks]
                rows.columns[name] = column
    for name in changed:
        rows.columns[name] = population.feature(name).finish(rows.columns[name])


def observed_columns(rng: np.random.Generator, rows: Rows, offsets: np.ndarray, events: Sequence[TimedEvent],
                     replica: int, population: Population) -> dict[str, np.ndarray]:
    """The columns as the model and the log see them: `missing_values` turns a share of values into NaN / None."""
    observed = dict(rows.columns)
    for event in events:
        if event.type != "missing_values" or not event.applies_to(replica):
            continue
        active = event.active(offsets)
        for name in event.params["features"]:
            hidden = active & (rng.random(len(rows)) < event.params["rate"])
            if not hidden.any():
                continue
            column = observed[name].copy()
            column[hidden] = np.nan if population.feature(name).numeric else None
            observed[name] = column
    return observed
