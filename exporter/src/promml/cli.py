"""The `promml` command: one subcommand per job, each implemented by a module with `add_arguments` and `run`.

Modules are imported only when their subcommand runs, so `promml --help` stays fast and a missing optional
dependency of one command cannot break another: the command says which extra to install instead.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from collections.abc import Sequence

from ._version import __version__

COMMANDS = {
    "baseline": ("promml.baseline.builder", "build the drift baseline from training data (CSV)"),
    "exporter": ("promml.exporter.app", "run the sidecar exporter: logs in, drift and accuracy metrics out"),
    "backtest": ("promml.backtest.cli", "replay prediction logs through the exporter and the alert rules, in "
                 "simulated time"),
    "simulate": ("promml.simulate.command", "write a scenario's prediction and feedback logs in simulated time"),
    "demo": ("promml.demo.stack", "run the whole demo stack without Docker (Prometheus, Alertmanager, ...)"),
    "demo-data": ("promml.demo.training_data", "write the demo's synthetic training data as CSV"),
    "demo-server": ("promml.demo.server", "serve the demo model (Flask), instrumented with promml.monitor"),
    "demo-traffic": ("promml.demo.traffic", "send normal, then drifted traffic and delayed labels to the demo"),
    "demo-receiver": ("promml.demo.receiver", "show what Slack and PagerDuty would be sent (stand-in receiver)"),
}
EXTRAS = {"baseline": "exporter", "exporter": "exporter", "backtest": "backtest", "simulate": "demo", "demo": "demo",
          "demo-data": "demo", "demo-server": "demo", "demo-traffic": "demo", "demo-receiver": "demo"}
"""The optional dependencies (`pip install 'promml[EXTRA]'`) each command needs beyond the decorator's."""
DEFAULT_LOG_LEVEL = "INFO"


def build_parser(argv: Sequence[str]) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="promml", description="ML model monitoring on Prometheus.")
    parser.add_argument("--version", action="version", version=f"promml {__version__}")
    parser.add_argument("--log-level", default=DEFAULT_LOG_LEVEL,
                        help=f"logging level (default {DEFAULT_LOG_LEVEL}); also accepted after the command")
    subcommands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, (module_name, help_text) in COMMANDS.items():
        subparser = subcommands.add_parser(name, help=help_text, description=help_text)
        # SUPPRESS: left out after the command, the value given before it (or the default) stands
        subparser.add_argument("--log-level", default=argparse.SUPPRESS, help="logging level (default INFO)")
        if name in argv:  # only the chosen command's module is imported
            module = importlib.import_module(module_name)
            module.add_arguments(subparser)
            subparser.set_defaults(run=module.run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        parser = build_parser(argv)
    except ModuleNotFoundError as error:  # an optional dependency of the chosen command is not installed
        command = next((name for name in argv if name in COMMANDS), "")
        print(f"promml {command}: {error}; this command needs the {EXTRAS.get(command, 'exporter')!r} extra: "
              f"pip install 'promml[{EXTRAS.get(command, 'exporter')}]'", file=sys.stderr)
        return 2
    args = parser.parse_args(argv)
    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    return int(args.run(args))


if __name__ == "__main__":
    sys.exit(main())
