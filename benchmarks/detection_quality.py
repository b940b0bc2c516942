"""Hold the shipped alert rules to the detection goals: simulate every scenario of the goals table, backtest it
through the real exporter, Prometheus rules and Alertmanager routing, and judge what a person would have received.

`make backtest` runs the full table (a week at 50 predictions/s where the goal says so) and rewrites
docs/detection-quality.md with the verdicts and each run's plot; `--compressed` runs one simulated day per scenario
at a few predictions per second with the same goals (what `make test` runs, through tests/test_detection_quality.py).
A compressed run also scrapes and evaluates every 60 s instead of the shipped 15 s: a day at a few rows per second
then replays in under a minute, and no rule judges anything shorter than a few minutes, so verdicts move by a minute
at most. Exit status 1 when a goal fails.
Run: `python benchmarks/detection_quality.py [--compressed] [--only SCENARIO ...] [--docs] [--jobs N]`.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import yaml

from promml.backtest.goals import GOALS, Goal, Verdict

REPO_ROOT = Path(__file__).resolve().parent.parent
DOC = REPO_ROOT / "docs" / "detection-quality.md"
PLOTS = REPO_ROOT / "docs" / "img" / "detection-quality"
SEED = 1
SHIPPED_PROMETHEUS = REPO_ROOT / "prometheus" / "prometheus.yml"
COMPRESSED_INTERVAL = "60s"
"""Scrape and rule-evaluation interval of a compressed run (the shipped prometheus.yml says 15s)."""


@dataclass
class Outcome:
    goal: Goal
    verdict: Verdict
    seconds: float
    plot: Path | None


def promml(*args: str) -> None:
    """Run a promml command in this interpreter's environment; its output is shown only when it fails."""
    result = subprocess.run([sys.executable, "-m", "promml.cli", *args], capture_output=True, text=True)
    if result.returncode != 0:
        raise RuntimeError(f"promml {args[0]} failed ({result.returncode}):\n{result.stdout}\n{result.stderr}")


def scenario_argument(goal: Goal, compressed: bool, workdir: Path) -> str:
    """The scenario to simulate: the shipped one, or a copy with the compressed run's event params replaced."""
    if not (compressed and goal.compressed_params):
        return goal.scenario
    shipped = resources.files("promml.simulate") / "scenarios" / f"{goal.scenario}.yml"
    document = yaml.safe_load(shipped.read_text(encoding="utf-8"))
    for event in document["events"]:
        event.setdefault("params", {}).update(goal.compressed_params.get(event["name"], {}))
    path = workdir / f"{goal.scenario}.yml"
    path.write_text(yaml.safe_dump(document, sort_keys=False))
    return str(path)


def compressed_prometheus_config(workdir: Path) -> Path:
    """The shipped prometheus.yml with its global scrape and evaluation intervals set to COMPRESSED_INTERVAL."""
    document = yaml.safe_load(SHIPPED_PROMETHEUS.read_text(encoding="utf-8"))
    document["global"].update(scrape_interval=COMPRESSED_INTERVAL, evaluation_interval=COMPRESSED_INTERVAL)
    path = workdir / "prometheus-compressed.yml"
    path.write_text(yaml.safe_dump(document, sort_keys=False))
    return path


def run_goal(goal: Goal, compressed: bool, workdir: Path, plot: bool) -> Outcome:
    started = time.monotonic()
    run = workdir / goal.scenario
    shutil.rmtree(run, ignore_errors=True)
    hours, rps = (goal.compressed_hours, goal.compressed_rps) if compressed else (goal.hours, goal.rps)
    try:
        promml("simulate", "--scenario", scenario_argument(goal, compressed, workdir), "--hours", str(hours),
               "--rps", str(rps), "--seed", str(SEED), "--out", str(run), "--quiet")
        configs = sorted(str(path) for path in run.glob("exporter-replica-*.yml")) or [str(run / "exporter.yml")]
        plot_path = run / "backtest.png" if plot else None
        intervals = ("--prometheus-config", str(compressed_prometheus_config(workdir))) if compressed else ()
        promml("backtest", *configs, "--json", str(run / "backtest.json"), "--quiet", *intervals,
               *(("--plot", str(plot_path)) if plot_path else ()))
        verdict = goal.judge(json.loads((run / "backtest.json").read_text()))
    except Exception as error:  # one broken scenario is a failed row, not a crashed table
        verdict, plot_path = Verdict(False, f"not run: {str(error).strip().splitlines()[0]}"), None
    return Outcome(goal, verdict, time.monotonic() - started, plot_path)


def run_goals(goals: list[Goal], compressed: bool, workdir: Path, plot: bool, jobs: int) -> list[Outcome]:
    with ThreadPoolExecutor(max_workers=jobs) as pool:
        return list(pool.map(lambda goal: run_goal(goal, compressed, workdir, plot), goals))


def table(outcomes: list[Outcome], compressed: bool) -> str:
    lines = ["| scenario | run | goal | measured | holds |", "|---|---|---|---|---|"]
    for outcome in outcomes:
        goal = outcome.goal
        hours, rps = (goal.compressed_hours, goal.compressed_rps) if compressed else (goal.hours, goal.rps)
        lines.append(f"| `{goal.scenario}` | {hours:g} h at {rps:g}/s | {goal.goal} | {outcome.verdict.measured} | "
                     f"{'yes' if outcome.verdict.passed else '**no**'} |")
    return "\n".join(lines)


def write_doc(outcomes: list[Outcome], compressed: bool) -> None:
    PLOTS.mkdir(parents=True, exist_ok=True)
    plots = []
    for outcome in outcomes:
        if outcome.plot and outcome.plot.exists():
            target = PLOTS / f"{outcome.goal.scenario}.png"
            shutil.copyfile(outcome.plot, target)
            plots.append(f"### `{outcome.goal.scenario}`\n\n![{outcome.goal.scenario}](img/detection-quality/"
                         f"{target.name})\n")
    held = sum(outcome.verdict.passed for outcome in outcomes)
    DOC.write_text(
        "# Detection quality of the shipped rules\n\n"
        "Generated by `make backtest` (`benchmarks/detection_quality.py`): each scenario is simulated with "
        "`promml simulate`, replayed with `promml backtest` through the real exporter, the shipped Prometheus rules "
        "and the shipped Alertmanager routing, and judged on what a person would have been sent. The goals are "
        "defined in `promml.backtest.goals`; `make test` runs the same goals on one simulated day per scenario at a "
        "few predictions per second.\n\n"
        f"Run of {time.strftime('%Y-%m-%d')} on {platform.machine()}, {os.cpu_count()} cores, "
        f"{'compressed' if compressed else 'full'} runs, seed {SEED}: **{held} of {len(outcomes)} goals hold.**\n\n"
        f"{table(outcomes, compressed)}\n\n"
        "What each rule does and why its thresholds are what they are: [alerting.md](alerting.md). How to run the "
        "same on your own logs: [backtest.md](backtest.md).\n\n## Plots\n\n" + "\n".join(plots)
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--compressed", action="store_true", help="one simulated day per scenario, few rows/s")
    parser.add_argument("--only", nargs="+", metavar="SCENARIO", help="run only these scenarios")
    parser.add_argument("--docs", action="store_true", help="rewrite docs/detection-quality.md and its plots")
    parser.add_argument("--jobs", type=int, default=2, help="scenarios run at once (default 2)")
    parser.add_argument("--workdir", type=Path, help="keep the runs here (default a temporary folder)")
    args = parser.parse_args()
    goals = [goal for goal in GOALS if not args.only or goal.scenario in args.only]
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="promml-detection-"))
    workdir.mkdir(parents=True, exist_ok=True)
    outcomes = run_goals(goals, args.compressed, workdir, plot=args.docs, jobs=args.jobs)
    print(table(outcomes, args.compressed))
    for outcome in outcomes:
        print(f"{outcome.goal.scenario}: {outcome.seconds:.0f}s", file=sys.stderr)
    if args.docs:
        write_doc(outcomes, args.compressed)
    return 0 if all(outcome.verdict.passed for outcome in outcomes) else 1


if __name__ == "__main__":
    sys.exit(main())
