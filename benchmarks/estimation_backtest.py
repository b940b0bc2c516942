"""When to trust the estimated performance: the exporter's estimate (CBPE) against the realized accuracy, hour by hour,
on simulated runs where the concept drifts (the estimate cannot see it) and where the inputs drift (it can).

Each run is `promml simulate` (a compressed day at 2 predictions/s; the concept drift sped up to 7 accuracy points a
day, as benchmarks/detection_quality.py compresses it), then the exporter's own sliding window
(`promml.exporter.window.SlidingWindow`, with the run's exporter.yml and baseline) fed the logs in simulated time:
every 15 minutes the predictions stamped up to then and the labels that had arrived by then. Per step it records
the primary window's estimated accuracy, its realized accuracy (labelled rows), and the accuracy of all its rows
once every label is known (the truth the estimate tries to tell early). The alerts themselves are judged by
`promml backtest` on the same runs (docs/estimation.md quotes both).

Run: `python benchmarks/estimation_backtest.py --workdir DIR [--plot docs/img/estimation-backtest.png]`; prints a
JSON summary.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

import numpy as np
import yaml

from promml.baseline import load_baseline
from promml.exporter.config import load_config
from promml.exporter.window import SlidingWindow, same_label
from promml.records import parse_feedback, parse_prediction

STEP_SECONDS = 900.0
HOURS, RPS, SEED = 24, 2, 1


@dataclass(frozen=True)
class Run:
    scenario: str
    title: str
    params: dict[str, dict[str, float]] = field(default_factory=dict)


RUNS = (
    Run("gradual-concept-drift", "concept drift: 7 accuracy points a day, inputs unchanged",
        {"relationship-drift": {"accuracy_drop_per_day": 0.07}}),
    Run("gradual-covariate-drift", "covariate drift: debt ratios creep up by 0.15 over the day"),
)


def simulate(run: Run, workdir: Path) -> Path:
    """The run's logs, baseline and exporter.yml (the shipped scenario with `run.params` over its events)."""
    shipped = resources.files("promml.simulate") / "scenarios" / f"{run.scenario}.yml"
    document = yaml.safe_load(shipped.read_text(encoding="utf-8"))
    for event in document["events"]:
        event.setdefault("params", {}).update(run.params.get(event["name"], {}))
    scenario = workdir / f"{run.scenario}.yml"
    scenario.write_text(yaml.safe_dump(document, sort_keys=False))
    out = workdir / run.scenario
    subprocess.run([sys.executable, "-m", "promml.cli", "simulate", "--scenario", str(scenario), "--hours",
                    str(HOURS), "--rps", str(RPS), "--seed", str(SEED), "--out", str(out), "--quiet", "--force"],
                   check=True)
    return out


def _records(folder: Path, pattern: str) -> list[dict]:
    return [json.loads(line) for path in sorted(folder.glob(pattern)) for line in path.read_text().splitlines()]


def replay(out: Path) -> dict[str, list[float]]:
    """Every STEP_SECONDS: the primary window's estimated, realized (labelled rows) and true (every row) accuracy."""
    config = load_config(out / "exporter.yml")
    window = SlidingWindow(load_baseline(config.baseline), windows=config.windows, slot_seconds=config.slot_seconds)
    predictions = sorted((parse_prediction(r) for r in _records(out / "logs", "predictions*.jsonl")),
                         key=lambda p: p.timestamp)
    labels = sorted((parse_feedback(r) for r in _records(out / "logs", "feedback*.jsonl")), key=lambda f: f.timestamp)
    truth = {f.prediction_id: f.label for f in labels}
    times = np.array([p.timestamp for p in predictions])
    label_times = np.array([f.timestamp for f in labels])
    start = float(np.floor(times[0] / STEP_SECONDS) * STEP_SECONDS)
    series: dict[str, list[float]] = {"hours": [], "estimated": [], "realized": [], "true": [], "labelled": []}
    done_p = done_l = 0
    for now in np.arange(start + STEP_SECONDS, times[-1] + STEP_SECONDS, STEP_SECONDS):
        upto_p = int(np.searchsorted(times, now, side="right"))
        window.add_predictions(predictions[done_p:upto_p], now=float(now))
        upto_l = int(np.searchsorted(label_times, now, side="right"))
        for feedback in labels[done_l:upto_l]:
            window.add_feedback(feedback)
        done_p, done_l = upto_p, upto_l
        snapshot = window.snapshot(float(now))
        inside = predictions[int(np.searchsorted(times, now - config.window_seconds, side="right")):upto_p]
        known = [same_label(p.prediction, truth[p.prediction_id]) for p in inside if p.prediction_id in truth]
        series["hours"].append((float(now) - start) / 3600)
        series["estimated"].append(snapshot.estimated_performance.get("accuracy", float("nan")))
        series["realized"].append(snapshot.accuracy if snapshot.accuracy is not None else float("nan"))
        series["true"].append(float(np.mean(known)) if known else float("nan"))
        series["labelled"].append(snapshot.labeled)
    return series


def summary(series: dict[str, list[float]], reference: float) -> dict[str, float]:
    """Means of each accuracy over hours 1-4 and over the last three hours; the largest estimated drop."""
    hours = np.asarray(series["hours"])
    first, last = (hours > 1) & (hours <= 4), hours > hours[-1] - 3
    out = {"reference": reference}
    for name in ("estimated", "realized", "true"):
        values = np.asarray(series[name])
        out[f"{name}_hours_1_4"] = round(float(np.nanmean(values[first])), 4)
        out[f"{name}_last_3h"] = round(float(np.nanmean(values[last])), 4)
    out["largest_estimated_drop"] = round(float(np.nanmax(1 - np.asarray(series["estimated"]) / reference)), 4)
    return out


def plot(results: list[tuple[Run, dict[str, list[float]], float]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(len(results), 1, figsize=(11, 3.2 * len(results)), sharex=True, squeeze=False)
    for axis, (run, series, reference) in zip(axes[:, 0], results, strict=True):
        axis.plot(series["hours"], series["estimated"], label="estimated (CBPE, every scored row)", linewidth=1.6)
        axis.plot(series["hours"], series["realized"], label="realized (labelled rows so far)", linewidth=1)
        axis.plot(series["hours"], series["true"], label="every label that ever comes", linewidth=1, linestyle=":")
        axis.axhline(reference, color="grey", linewidth=1, label="reference (baseline)")
        axis.axhline(reference * 0.95, color="orange", linewidth=1, linestyle="--",
                     label="EstimatedPerformanceDrop line (5% below)")
        axis.set_title(f"{run.scenario}: {run.title}", loc="left", fontsize=10)
        axis.set_ylabel("accuracy, 1h window")
        axis.legend(loc="lower left", fontsize=7, frameon=False)
    axes[-1, 0].set_xlabel(f"simulated hours ({RPS} predictions/s, seed {SEED})")
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workdir", type=Path, required=True, help="where the simulated runs are written")
    parser.add_argument("--plot", type=Path, help="write the estimated-vs-realized PNG here")
    args = parser.parse_args(argv)
    args.workdir.mkdir(parents=True, exist_ok=True)
    results = []
    for run in RUNS:
        out = simulate(run, args.workdir)
        reference = load_baseline(out / "baseline.json").performance["accuracy"]
        results.append((run, replay(out), reference))
    print(json.dumps({run.scenario: summary(series, reference) for run, series, reference in results}, indent=2))
    if args.plot:
        plot(results, args.plot)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
