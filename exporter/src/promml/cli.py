"""The `promml` command: one subcommand per job, each implemented by a module with `add_arguments` and `run`.

Modules are imported only when their subcommand runs, so `promml --help` stays fast and a missing optional
dependency of one command cannot break another.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from collections.abc import Sequence

COMMANDS = {
    "baseline": ("promml.baseline.builder", "build the drift baseline from training data (CSV)"),
    "exporter": ("promml.exporter.app", "run the sidecar exporter: logs in, drift and accuracy metrics out"),
    "backtest": ("promml.backtest.cli", "replay prediction logs through the exporter and the alert rules, in "
                 "simulated time"),
    "demo": ("promml.demo.stack", "run the whole demo stack without Docker (Prometheus, Alertmanager, ...)"),
    "demo-data": ("promml.demo.training_data", "write the demo's synthetic training data as CSV"),
    "demo-server": ("promml.demo.server", "serve the demo model (Flask), instrumented with promml.monitor"),
    "demo-traffic": ("promml.demo.traffic", "send normal, then drifted traffic and delayed labels to the demo"),
    "demo-receiver": ("promml.demo.receiver", "show what Slack and PagerDuty would be sent (stand-in receiver)"),
}


def build_parser(argv: Sequence[str]) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="promml", description="ML model monitoring on Prometheus.")
    parser.add_argument("--log-level", default="INFO", help="logging level (default INFO)")
    subcommands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, (module_name, help_text) in COMMANDS.items():
        subparser = subcommands.add_parser(name, help=help_text, description=help_text)
        if name in argv:  # only the chosen command's module is imported
            module = importlib.import_module(module_name)
            module.add_arguments(subparser)
            subparser.set_defaults(run=module.run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = build_parser(argv).parse_args(argv)
    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    return int(args.run(args))


if __name__ == "__main__":
    sys.exit(main())
