"""The event types a scenario's timeline is made of: their parameters, defaults, checks and what each affects.

The registry (`EVENT_TYPES`) is the one list of what a scenario may say; the engine implements each type's effect
(traffic in `traffic.py`, inputs and scores in `population.py`, labels in `labels.py`) and `scenario.json` carries
`affects` so a backtest knows which signal should notice it. Model-side effects that the prediction log cannot
hold (latency, failed calls, the server being down) travel as the event's parameters (docs/backtest.md).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from .durations import DurationError, parse_duration
from .labels import LabelSpecError, parse_delay, parse_fraction

REQUIRED: Any = object()
"""The default of a parameter that must be given."""


class ParamError(ValueError):
    """A bad event parameter; `key` names it and the message says what is expected."""

    def __init__(self, key: str, message: str) -> None:
        super().__init__(message)
        self.key = key


@dataclass(frozen=True)
class Param:
    """One parameter: its kind (how it is read), what it means, its default and bounds (numbers only)."""

    kind: str
    doc: str
    default: Any = REQUIRED
    minimum: float | None = None
    maximum: float | None = None


def _number(key: str, value: Any, spec: Param) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ParamError(key, f"expected a number, got {value!r}")
    if (spec.minimum is not None and value < spec.minimum) or (spec.maximum is not None and value > spec.maximum):
        raise ParamError(key, f"expected a number from {spec.minimum:g} to {spec.maximum:g}, got {value!r}"
                         if spec.maximum is not None else f"expected a number of at least {spec.minimum:g}, "
                                                          f"got {value!r}")
    return float(value)


def _name(key: str, value: Any) -> str:
    if not isinstance(value, str) or not value:
        raise ParamError(key, f"expected a feature name, got {value!r}")
    return value


def _numbers_by_name(key: str, value: Any, what: str, minimum: float | None = None) -> dict[str, float]:
    if not isinstance(value, Mapping):
        raise ParamError(key, f"expected a mapping of {what}, got {value!r}")
    result: dict[str, float] = {}
    for name, number in value.items():
        if isinstance(number, bool) or not isinstance(number, int | float) or not math.isfinite(number) or (
                minimum is not None and number < minimum):
            raise ParamError(f"{key}.{name}", f"expected a number{'' if minimum is None else f' >= {minimum:g}'}, "
                                              f"got {number!r}")
        result[str(name)] = float(number)
    return result


def read_param(key: str, value: Any, spec: Param) -> Any:
    """`value` checked and converted as `spec` says; raises ParamError naming `key`."""
    kind = spec.kind
    if kind == "number":
        return _number(key, value, spec)
    if kind == "bool":
        if not isinstance(value, bool):
            raise ParamError(key, f"expected true or false, got {value!r}")
        return value
    if kind == "duration":
        try:
            return parse_duration(value)
        except DurationError as error:
            raise ParamError(key, str(error)) from None
    if kind == "feature":
        return _name(key, value)
    if kind == "features":
        if isinstance(value, str):
            value = [value]
        if not isinstance(value, list) or not value:
            raise ParamError(key, f"expected a list of feature names, got {value!r}")
        return tuple(_name(key, item) for item in value)
    if kind == "std_shifts":
        return _numbers_by_name(key, value, "feature name → shift in the feature's standard deviations")
    if kind == "shares":
        shares = _numbers_by_name(key, value, "category → share", minimum=0.0)
        if shares and sum(shares.values()) <= 0:
            raise ParamError(key, f"expected shares that add up to more than 0, got {value!r}")
        return shares
    if kind == "fraction":
        try:
            return parse_fraction(value, key)
        except LabelSpecError as error:
            raise ParamError(key, str(error).split(": ", 1)[1]) from None
    if kind == "delay":
        try:
            return parse_delay(value, key)
        except LabelSpecError as error:
            message = str(error)
            bad_key = message.split(":", 1)[0]
            raise ParamError(bad_key, message.split(": ", 1)[1]) from None
    raise AssertionError(f"unknown parameter kind {kind!r}")


@dataclass(frozen=True)
class EventType:
    """What one kind of event does, which parameters it takes, and which signals it affects.

    `affects(params, scored)` lists the signals (`feature:NAME`, `scores`, `accuracy`, `traffic`, `latency`,
    `errors`, `labels`, `server`); `scored` says whether the model scores the simulated rows (the demo model does;
    a user's CSV brings its scores along, so input changes do not move them). `whole_run` types default to the
    whole run instead of needing a start; `demo_only` types need the demo's data and label relationship.
    """

    name: str
    doc: str
    params: dict[str, Param]
    affects: Callable[[dict[str, Any], bool], list[str]]
    whole_run: bool = False
    demo_only: bool = False
    check: Callable[[dict[str, Any]], None] = field(default=lambda params: None)

    def read_params(self, raw: Any) -> dict[str, Any]:
        """The event's parameters checked, with defaults filled in; raises ParamError naming the key."""
        if raw is None:
            raw = {}
        if not isinstance(raw, Mapping):
            raise ParamError("params", f"expected a mapping of parameter → value, got {raw!r}")
        for key in raw:
            if key not in self.params:
                known = ", ".join(self.params) or "none"
                raise ParamError(str(key), f"unknown parameter for a {self.name} event; known: {known}")
        params: dict[str, Any] = {}
        for key, spec in self.params.items():
            if key in raw:
                params[key] = read_param(key, raw[key], spec)
            elif spec.default is REQUIRED:
                raise ParamError(key, f"missing; a {self.name} event needs it ({spec.doc})")
            elif spec.default is not None:
                params[key] = spec.default
        self.check(params)
        return params


def _feature_shift_affects(params: dict[str, Any], scored: bool) -> list[str]:
    return [f"feature:{params['feature']}", *(["scores"] if scored else [])]


def _check_shift(params: dict[str, Any]) -> None:
    if params["scale"] == 1.0 and params["shift"] == 0.0 and not params["shares"]:
        raise ParamError("scale", "the event changes nothing: give scale (≠ 1) or shift (≠ 0) for a numeric "
                                  "feature, shares for a categorical one")


_SHIFT_PARAMS = {
    "feature": Param("feature", "the feature that moves"),
    "scale": Param("number", "numeric feature: values are multiplied by this", 1.0, minimum=0.0),
    "shift": Param("number", "numeric feature: then this is added (in the feature's units)", 0.0),
    "shares": Param("shares", "categorical feature: the category shares rows move to", {}),
}


def _seasonal_affects(params: dict[str, Any], scored: bool) -> list[str]:
    features = sorted({*params["feature_daily"], *params["feature_weekend"]})
    return ["traffic", *(f"feature:{name}" for name in features), *(["scores"] if scored and features else [])]


def _check_hours(params: dict[str, Any]) -> None:
    if params["from_hour"] == params["to_hour"]:
        raise ParamError("to_hour", "expected an hour other than from_hour: the low-traffic hours would be empty")


def _check_label_delay(params: dict[str, Any]) -> None:
    if "delay" not in params and "fraction" not in params:
        raise ParamError("delay", "give a delay, a fraction or both: the event changes nothing without one")


def _check_latency(params: dict[str, Any]) -> None:
    median = params.get("median_seconds")
    if median is not None and median > params["p95_seconds"]:
        raise ParamError("median_seconds", f"expected at most p95_seconds ({params['p95_seconds']:g}), got "
                                           f"{median:g}")


EVENT_TYPES: dict[str, EventType] = {
    event.name: event
    for event in (
        EventType(
            "seasonal",
            "traffic follows the hour of day and the weekday, and so do the inputs: a daily cycle of the listed "
            "features (in standard deviations) and a weekend shift",
            {
                "daily_amplitude": Param("number", "traffic swings by ± this share of its mean over a day", 0.5,
                                         minimum=0.0, maximum=1.0),
                "peak_hour": Param("number", "hour of day (UTC) of the busiest traffic", 14.0, minimum=0.0,
                                   maximum=24.0),
                "weekend_factor": Param("number", "traffic on Saturday and Sunday, as a share of weekdays'", 0.7,
                                        minimum=0.0, maximum=10.0),
                "feature_daily": Param("std_shifts", "feature → amplitude of its daily cycle, peaking at "
                                                     "peak_hour, in the feature's standard deviations", {}),
                "feature_weekend": Param("std_shifts", "feature → its shift on weekends, in standard deviations",
                                         {}),
            },
            _seasonal_affects,
            whole_run=True,
        ),
        EventType(
            "covariate_shift",
            "one feature's distribution changes at `start` (or over `ramp`) and stays changed until `end`",
            {**_SHIFT_PARAMS, "ramp": Param("duration", "the change grows linearly over this long", 0.0)},
            _feature_shift_affects,
            check=_check_shift,
        ),
        EventType(
            "covariate_drift",
            "one feature drifts linearly from no change at `start` to the full change at `end`, then stays",
            dict(_SHIFT_PARAMS),
            _feature_shift_affects,
            check=_check_shift,
        ),
        EventType(
            "concept_drift",
            "the true relationship between inputs and label drifts away from the learned one: accuracy falls "
            "by `accuracy_drop_per_day` while the inputs do not move",
            {
                "accuracy_drop_per_day": Param("number", "accuracy lost per simulated day (0.01 = one point)",
                                               0.01, minimum=0.0, maximum=1.0),
                "max_drop": Param("number", "the drop stops growing here", 0.3, minimum=0.0, maximum=1.0),
            },
            lambda params, scored: ["accuracy"],
        ),
        EventType(
            "incident",
            "a share of the traffic comes from the demo's downturn world: incomes fall and debt rises (inputs and "
            "scores move) and defaults follow another relationship (accuracy falls)",
            {
                "fraction": Param("fraction", "share of rows from the downturn at full strength", 1.0),
                "ramp": Param("duration", "the share grows linearly over this long", 0.0),
            },
            lambda params, scored: ["feature:income", "feature:debt_ratio", "scores", "accuracy"],
            demo_only=True,
        ),
        EventType(
            "missing_values",
            "the listed features are missing (null) in a share of rows; the model sees the training mean",
            {
                "features": Param("features", "the features that go missing"),
                "rate": Param("fraction", "share of rows where each goes missing"),
            },
            lambda params, scored: [f"feature:{name}" for name in params["features"]],
        ),
        EventType(
            "traffic_outage",
            "no predictions at all; with server_down the model server itself is down (its scrape target too)",
            {"server_down": Param("bool", "the model server is down, not just idle", True)},
            lambda params, scored: ["traffic", *(["server"] if params["server_down"] else [])],
        ),
        EventType(
            "low_traffic",
            "between from_hour and to_hour (UTC) every day, the total rate drops to `rps`",
            {
                "rps": Param("number", "predictions per second in the quiet hours (all replicas together)", 0.2,
                             minimum=0.0),
                "from_hour": Param("number", "quiet hours start (UTC)", 0.0, minimum=0.0, maximum=24.0),
                "to_hour": Param("number", "quiet hours end (UTC); may be below from_hour to span midnight", 6.0,
                                 minimum=0.0, maximum=24.0),
            },
            lambda params, scored: ["traffic"],
            whole_run=True,
            check=_check_hours,
        ),
        EventType(
            "latency_regression",
            "predict calls get slower: latency becomes lognormal with this p95 (and median)",
            {
                "p95_seconds": Param("number", "95th percentile of the call latency", REQUIRED, minimum=0.0),
                "median_seconds": Param("number", "median call latency; default: the normal median scaled as "
                                                  "the p95", None, minimum=0.0),
            },
            lambda params, scored: ["latency"],
            check=_check_latency,
        ),
        EventType(
            "error_burst",
            "a share of predict calls fail; failed calls write no prediction record, as with promml.monitor",
            {"error_rate": Param("number", "share of calls that fail", REQUIRED, minimum=0.0, maximum=0.99)},
            lambda params, scored: ["errors"],
        ),
        EventType(
            "label_delay",
            "predictions made in the interval get their labels with this delay and fraction",
            {
                "delay": Param("delay", "the delay distribution, e.g. {distribution: lognormal, median: 6h, "
                                        "sigma: 0.2}", None),
                "fraction": Param("fraction", "share of these predictions that are ever labelled", None),
            },
            lambda params, scored: ["labels"],
            check=_check_label_delay,
        ),
    )
}
