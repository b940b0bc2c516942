"""`promml simulate`: the prediction and feedback logs of a scenario, written in simulated time.

A scenario (a YAML file, `scenario.py`) is a timeline of events (`events.py`) over stationary traffic. The engine
(`engine.py`) draws arrivals (`traffic.py`), feature rows and the model's answers (`population.py`) and true labels
with their delays (`labels.py`) an hour of simulated time at a time with numpy, and the writer (`writer.py`) puts
them in the documented log format with the library's own record code, next to a baseline, an exporter
configuration and `scenario.json`, the timeline a backtest measures detection against (docs/backtest.md).
"""

from .engine import SimulationResult, simulate
from .scenario import Scenario, ScenarioError, load_scenario, shipped_scenarios

__all__ = ["Scenario", "ScenarioError", "SimulationResult", "load_scenario", "shipped_scenarios", "simulate"]
