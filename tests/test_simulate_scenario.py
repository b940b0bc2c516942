"""Scenario files: every shipped one loads, and bad input gets an error that names the file, event and key."""

from __future__ import annotations

from pathlib import Path

import pytest

from promml.simulate.durations import DurationError, Offset, parse_duration, parse_offset
from promml.simulate.events import EVENT_TYPES
from promml.simulate.scenario import ScenarioError, load_scenario, parse_scenario, shipped_scenarios

REQUIRED_SCENARIOS = {"stationary", "seasonal", "sudden-shift", "gradual-concept-drift", "traffic-outage"}


def parse(raw: dict) -> object:
    return parse_scenario({"description": "test", **raw}, "t", "t.yml")


def test_every_shipped_scenario_loads_and_has_a_description() -> None:
    shipped = shipped_scenarios()
    assert set(shipped) >= REQUIRED_SCENARIOS
    for name, description in shipped.items():
        scenario = load_scenario(name)
        assert scenario.name == name and scenario.description == description and description


def test_a_scenario_file_by_path(tmp_path: Path) -> None:
    path = tmp_path / "mine.yml"
    path.write_text("description: mine\nhours: 2\nevents:\n  - {type: traffic_outage, name: down, start: 1h, "
                    "end: 90m}\n")
    scenario = load_scenario(str(path))
    assert (scenario.name, scenario.hours) == ("mine", 2.0)
    [event] = scenario.events
    assert (event.start, event.end, event.params) == (Offset(seconds=3600.0), Offset(seconds=5400.0),
                                                      {"server_down": True})


def test_an_unknown_scenario_names_the_shipped_ones_and_the_closest() -> None:
    with pytest.raises(ScenarioError, match=r"unknown scenario 'sudden-shfit': did you mean 'sudden-shift'\? "
                                            r"shipped scenarios are .*stationary"):
        load_scenario("sudden-shfit")
    with pytest.raises(ScenarioError, match=r"cannot read scenario file /nowhere/x.yml"):
        load_scenario("/nowhere/x.yml")


def test_an_unknown_event_type_lists_the_known_ones() -> None:
    with pytest.raises(ScenarioError, match=r"t.yml: events\[0\] \('x'\): unknown event type 'covariate_shfit'; "
                                            r"did you mean 'covariate_shift'\? known types: seasonal, "):
        parse({"events": [{"type": "covariate_shfit", "name": "x", "start": 0}]})


@pytest.mark.parametrize(("event", "message"), [
    ({"type": "covariate_shift", "name": "s", "start": "1h", "params": {"scale": 0.5}},
     r"events\[0\] \('s', type 'covariate_shift'\): params.feature: missing; a covariate_shift event needs it"),
    ({"type": "covariate_shift", "name": "s", "start": "1h", "params": {"feature": "income"}},
     r"params.scale: the event changes nothing"),
    ({"type": "error_burst", "name": "e", "start": "1h", "params": {"error_rate": 1.5}},
     r"params.error_rate: expected a number from 0 to 0.99, got 1.5"),
    ({"type": "error_burst", "name": "e", "start": "1h", "params": {"error_rate": 0.1, "rate": 2}},
     r"params.rate: unknown parameter for a error_burst event; known: error_rate"),
    ({"type": "traffic_outage", "name": "o", "start": "1h", "params": {"server_down": "yes"}},
     r"params.server_down: expected true or false, got 'yes'"),
    ({"type": "traffic_outage", "name": "o", "start": "soon"},
     r"events\[0\] \('o', type 'traffic_outage'\): start: expected an offset from the run's start"),
    ({"type": "traffic_outage", "name": "o"}, r"start: missing; expected an offset such as 6h or 50%"),
    ({"type": "traffic_outage", "name": "o", "start": 0, "when": 1}, r"unknown key 'when'"),
    ({"type": "label_delay", "name": "l", "start": 0, "params": {"delay": {"distribution": "lognormal",
                                                                           "median": "6h"}}},
     r"params.delay.sigma: missing; a lognormal delay needs median, sigma"),
    ({"type": "label_delay", "name": "l", "start": 0, "params": {"delay": {"distribution": "gamma"}}},
     r"params.delay.distribution: expected one of lognormal, exponential, uniform, fixed, got 'gamma'"),
    ({"type": "low_traffic", "name": "n", "params": {"from_hour": 3, "to_hour": 3}},
     r"params.to_hour: expected an hour other than from_hour"),
    ({"type": "latency_regression", "name": "l", "start": 0, "params": {"p95_seconds": 0.5,
                                                                        "median_seconds": 0.9}},
     r"params.median_seconds: expected at most p95_seconds \(0.5\), got 0.9"),
])
def test_bad_event_parameters_name_the_event_and_the_key(event: dict, message: str) -> None:
    with pytest.raises(ScenarioError, match=r"^t.yml: .*" + message):
        parse({"events": [event]})


def test_overlapping_replicas_and_replicas_that_do_not_exist_are_refused() -> None:
    event = {"type": "traffic_outage", "name": "o", "start": 0}
    with pytest.raises(ScenarioError, match=r"replicas: replica-0 is listed twice; replicas overlap"):
        parse({"replicas": 2, "events": [{**event, "replicas": ["replica-0", 0]}]})
    with pytest.raises(ScenarioError, match=r"replicas: replica-2 does not exist; the scenario has 2 replica"):
        parse({"replicas": 2, "events": [{**event, "replicas": ["replica-2"]}]})
    with pytest.raises(ScenarioError, match=r"events: the name 'o' is used twice"):
        parse({"events": [event, event]})


@pytest.mark.parametrize(("raw", "message"), [
    ({"descripton": "x"}, r"unknown key 'descripton'; did you mean 'description'\?"),
    ({"rps": 0}, r"rps: expected a positive number, got 0"),
    ({"replicas": 1.5}, r"replicas: expected a positive integer up to 64, got 1.5"),
    ({"labels": {"fraction": 2}}, r"labels.fraction: expected the share of predictions labelled, from 0 to 1"),
    ({"model_side": {"error_rate": 1}}, r"model_side.error_rate: expected a share of calls from 0 to below 1"),
    ({"model": {"baseline": "b.json"}}, r"model.reference_csv: missing"),
    ({"model": {"reference_csv": "r.csv"}, "events": [{"type": "incident", "name": "i", "start": 0}]},
     r"events\[0\] \('i', type 'incident'\): needs the demo model and data"),
])
def test_bad_top_level_keys_are_named(raw: dict, message: str) -> None:
    with pytest.raises(ScenarioError, match=r"^t.yml: " + message):
        parse_scenario({"description": "test", **raw}, "t", "t.yml")


def test_durations_and_offsets() -> None:
    assert [parse_duration(text) for text in ("90s", "30m", "6h", "12h30m", "2d", "1w", 45, "1.5h")] == [
        90.0, 1800.0, 21600.0, 45000.0, 172800.0, 604800.0, 45.0, 5400.0]
    assert parse_offset("50%").resolve(7200) == 3600.0
    assert parse_offset("2h").resolve(100) == 7200.0
    for bad in ("-1h", "6 hours", True, "150%", -3):
        with pytest.raises(DurationError):
            parse_offset(bad)


def test_every_event_type_documents_its_parameters() -> None:
    for event_type in EVENT_TYPES.values():
        assert event_type.doc
        assert all(param.doc for param in event_type.params.values())
    docs = (Path(__file__).parents[1] / "docs" / "backtest.md").read_text()
    for name in EVENT_TYPES:
        assert f"| `{name}` |" in docs
    for name in shipped_scenarios():
        assert f"| `{name}` |" in docs
