"""`promml simulate`: write a scenario's logs, baseline, exporter.yml and scenario.json in simulated time."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .engine import DEFAULT_START, simulate
from .scenario import ScenarioError, duration_hours, load_scenario, shipped_scenarios


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--scenario", metavar="NAME",
                        help="a shipped scenario (see --list) or the path of a scenario YAML file")
    parser.add_argument("--out", metavar="DIR", help="output folder: logs/, baseline.json, exporter.yml, "
                                                     "scenario.json")
    parser.add_argument("--hours", metavar="H", help="simulated hours (or a duration such as 7d); default: the "
                                                     "scenario's")
    parser.add_argument("--rps", type=float, metavar="R",
                        help="mean predictions per second, all replicas together; default: the scenario's")
    parser.add_argument("--seed", type=int, default=0, metavar="S", help="random seed (default 0)")
    parser.add_argument("--start", default=DEFAULT_START, metavar="RFC3339",
                        help=f"simulated start time (default {DEFAULT_START}, a Monday)")
    parser.add_argument("--replicas", type=int, metavar="N", help="model server replicas, one log pair each; "
                                                                  "default: the scenario's")
    parser.add_argument("--reference-csv", type=Path, metavar="CSV",
                        help="your own reference rows (features, and prediction, score, label columns) instead "
                             "of the demo's")
    parser.add_argument("--baseline", type=Path, metavar="JSON",
                        help="your own baseline for --reference-csv (default: built from the CSV)")
    parser.add_argument("--force", action="store_true", help="replace the logs of an earlier run in DIR/logs")
    parser.add_argument("--list", action="store_true", help="list the shipped scenarios and exit")
    parser.add_argument("--quiet", action="store_true", help="no progress lines")


def run(args: argparse.Namespace) -> int:
    if args.list:
        for name, description in shipped_scenarios().items():
            print(f"{name:28s} {description.splitlines()[0] if description else ''}")
        return 0
    missing = [option for option, value in (("--scenario", args.scenario), ("--out", args.out)) if not value]
    if missing:
        print(f"promml simulate: {' and '.join(missing)} required (see --help; --list shows the scenarios)",
              file=sys.stderr)
        return 2

    def progress(line: str) -> None:
        print(line, file=sys.stderr, flush=True)

    try:
        scenario = load_scenario(args.scenario)
        hours = None if args.hours is None else duration_hours(args.hours)
        result = simulate(scenario, args.out, hours=hours, rps=args.rps, seed=args.seed, start=args.start,
                          replicas=args.replicas, reference_csv=args.reference_csv, baseline=args.baseline,
                          overwrite=args.force, progress=None if args.quiet else progress)
    except (ScenarioError, OSError) as error:
        print(f"promml simulate: {error}", file=sys.stderr)
        return 2
    for note in result.notes:
        print(f"note: {note}", file=sys.stderr)
    document = result.document
    rate = result.predictions / result.seconds if result.seconds > 0 else float("inf")
    print(f"wrote {result.out}: {result.predictions} predictions and {result.feedback} labels of scenario "
          f"{document['scenario']!r} from {document['start']} to {document['end']} in {result.seconds:.1f}s "
          f"({rate:,.0f} predictions/s); {len(document['events'])} event(s) in scenario.json")
    return 0
