"""`promml backtest EXPORTER_YML --json OUT.json --plot OUT.png`: the command line of a backtest.

Rules, prometheus.yml and alertmanager.yml default to the repository's shipped ones (`prometheus/rules/*.yml`,
`prometheus/prometheus.yml`, `alertmanager/alertmanager.yml`), found by walking up from the current directory,
then from the exporter config, then from this package's source (an editable install sits in the repository).
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
from pathlib import Path

from ..baseline import load_baseline
from ..exporter.config import ConfigError, load_config
from ..records import InvalidRecord, parse_timestamp
from .replay import BacktestError, Progress, Replica, log_span
from .routing import RoutingError, load_alertmanager_config
from .rules import RulesError, load_prometheus_settings, load_rules, rule_paths
from .run import run_backtest
from .scenario import Scenario, ScenarioError, load_scenario
from .tsdb import EngineError

SHIPPED_RULES = "prometheus/rules/*.yml"
SHIPPED_PROMETHEUS = "prometheus/prometheus.yml"
SHIPPED_ALERTMANAGER = "alertmanager/alertmanager.yml"
MARKER = "prometheus/rules/alerts.yml"


def find_repo_root(*starts: Path) -> Path | None:
    """The first folder, walking up from each start, that holds the shipped rules."""
    for start in starts:
        for folder in [start.resolve(), *start.resolve().parents]:
            if (folder / MARKER).is_file():
                return folder
    return None


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("configs", nargs="+", metavar="EXPORTER_YML",
                        help="exporter config(s) of the logs to replay; one per replica")
    parser.add_argument("--json", type=Path, help="write episodes, notifications and a summary as JSON here")
    parser.add_argument("--plot", type=Path, help="write a PNG timeline of the alerts' signals here")
    parser.add_argument("--rules", action="append", metavar="GLOB",
                        help=f"rule files (repeatable; default the shipped {SHIPPED_RULES})")
    parser.add_argument("--alertmanager", type=Path, help=f"Alertmanager config (default {SHIPPED_ALERTMANAGER})")
    parser.add_argument("--prometheus-config", type=Path,
                        help=f"prometheus.yml for scrape/evaluation intervals (default {SHIPPED_PROMETHEUS})")
    parser.add_argument("--scenario", type=Path,
                        help="scenario.json (default: the one next to the first config, if any)")
    parser.add_argument("--from", dest="start", help="judge alerts from this RFC 3339 time (default: first log line)")
    parser.add_argument("--to", dest="end", help="judge alerts up to this RFC 3339 time (default: last log line)")
    parser.add_argument("--recompute-interval", type=float,
                        help="seconds between exporter recomputes (default the config's, at least the scrape "
                             "interval)")
    parser.add_argument("--workdir", type=Path, help="keep the samples, blocks and rule files here")
    parser.add_argument("--quiet", action="store_true", help="no progress on stderr")


def _time(text: str | None, flag: str) -> float | None:
    if text is None:
        return None
    try:
        return parse_timestamp(text)
    except InvalidRecord as error:
        raise BacktestError(f"{flag}: {error}") from None


def _defaults(args: argparse.Namespace) -> tuple[list[str], Path, Path]:
    root = find_repo_root(Path.cwd(), Path(args.configs[0]).parent, Path(__file__).parent)
    if (args.rules is None or args.alertmanager is None or args.prometheus_config is None) and root is None:
        raise BacktestError("cannot find the shipped prometheus/ and alertmanager/ folders from here: run inside "
                            "the promml repository or pass --rules, --prometheus-config and --alertmanager")
    rules = args.rules or [str(root / SHIPPED_RULES)]  # type: ignore[operator]
    prometheus = args.prometheus_config or root / SHIPPED_PROMETHEUS  # type: ignore[operator]
    alertmanager = args.alertmanager or root / SHIPPED_ALERTMANAGER  # type: ignore[operator]
    return rules, prometheus, alertmanager


def per_replica_configs(configs: list[str], scenario: Scenario, scenario_dir: Path) -> list[str]:
    """With several replicas, `promml simulate` writes one exporter config per replica next to the one that reads
    every log: given that one, the backtest runs one exporter per replica, as deployed."""
    if len(configs) != 1 or not scenario.replica_exporter_configs or scenario.exporter_config is None:
        return configs
    if Path(configs[0]).resolve() != (scenario_dir / scenario.exporter_config).resolve():
        return configs
    return [str(scenario_dir / scenario.replica_exporter_configs[name]) for name in scenario.replicas
            if name in scenario.replica_exporter_configs]


def _replicas(configs: list[str], scenario: Scenario) -> list[Replica]:
    replicas = []
    for index, path in enumerate(configs):
        if not Path(path).is_file():
            raise BacktestError(f"{path}: no such exporter config")
        config = load_config(path)
        baseline = load_baseline(config.baseline)
        name = scenario.replicas[index] if len(scenario.replicas) == len(configs) else f"replica-{index + 1}"
        replicas.append(Replica(name, config, baseline))
    return replicas


def _check_logs(replica: Replica, scenario: Scenario) -> tuple[float, float]:
    config = replica.config
    span = log_span(config.prediction_logs)
    if span is None:
        raise BacktestError(f"no prediction log line with a timestamp matches {', '.join(config.prediction_logs)}")
    if scenario.model_name is not None and (scenario.model_name, scenario.model_version) != (
            config.model_name, config.model_version):
        raise BacktestError(f"the scenario's logs are of model {scenario.model_name} {scenario.model_version}, the "
                            f"exporter config watches {config.model_name} {config.model_version}")
    return span


def _model_check(replica: Replica) -> None:
    """Logs of another model fail early: the first lines of the logs say which model they are."""
    import glob

    from .model_side import _decode_line

    config = replica.config
    seen: set[tuple[str, str]] = set()
    for path in sorted({p for pattern in config.prediction_logs for p in glob.glob(pattern)}):
        with open(path, "rb") as file:
            for _, line in zip(range(1000), file, strict=False):
                try:
                    decoded = _decode_line(line)
                except Exception:
                    continue
                seen.add((str(decoded.model_name), str(decoded.model_version)))
                if seen and (config.model_name, config.model_version) in seen:
                    return
    if seen:
        others = ", ".join(f"{n} {v}" for n, v in sorted(seen))
        raise BacktestError(f"the prediction logs hold model(s) {others}, not {config.model_name} "
                            f"{config.model_version} as {config.baseline.name}'s exporter config says")


def run(args: argparse.Namespace) -> int:
    try:
        return _run(args)
    except (BacktestError, ConfigError, ScenarioError, RulesError, RoutingError, EngineError, OSError,
            ValueError) as error:
        print(f"promml backtest: {error}", file=sys.stderr)
        return 2


def _run(args: argparse.Namespace) -> int:
    if args.plot is not None:
        try:
            import matplotlib  # noqa: F401 - checked before a long run, not after it
        except ImportError:
            raise BacktestError("--plot needs matplotlib: pip install 'promml[backtest]' (or drop --plot)") \
                from None
    scenario_path = args.scenario or Path(args.configs[0]).parent / "scenario.json"
    if args.scenario is not None and not scenario_path.is_file():
        raise BacktestError(f"{scenario_path}: no such scenario file")
    scenario = load_scenario(scenario_path) if scenario_path.is_file() else Scenario()
    rules_globs, prometheus_yml, alertmanager_yml = _defaults(args)
    settings = load_prometheus_settings(prometheus_yml)
    rules = load_rules(rule_paths(rules_globs), settings.evaluation_interval)
    alertmanager = load_alertmanager_config(alertmanager_yml)
    configs = per_replica_configs(args.configs, scenario, scenario_path.parent)
    if configs != args.configs and not args.quiet:
        print(f"promml backtest: one exporter per replica ({', '.join(scenario.replicas)})", file=sys.stderr)
    replicas = _replicas(configs, scenario)
    spans = []
    for replica in replicas:
        _model_check(replica)
        spans.append(_check_logs(replica, scenario))
    first, last = min(s[0] for s in spans), max(s[1] for s in spans)
    start = _time(args.start, "--from") or first
    end = _time(args.end, "--to") or last
    if end <= start:
        raise BacktestError(f"empty range: {args.start or 'the first log line'} .. {args.end or 'the last log line'}"
                            " holds no time; --from must be before --to")
    if end < first or start > last:
        raise BacktestError("empty range: the logs run from "
                            f"{_iso(first)} to {_iso(last)}, outside --from/--to")
    warmup = max(r.config.longest_window_seconds for r in replicas) if start > first else 0.0
    work = Path(tempfile.mkdtemp(prefix="promml-backtest-")) if args.workdir is None else args.workdir
    work.mkdir(parents=True, exist_ok=True)
    progress = Progress(0, stream=None if args.quiet else sys.stderr)
    try:
        result = run_backtest(replicas, scenario, rules, settings, alertmanager, work, start=start, end=end,
                              warmup_seconds=min(warmup, start - first), recompute_interval=args.recompute_interval,
                              progress=_sized(progress, start - min(warmup, start - first), end,
                                              settings.scrape_interval))
    finally:
        if args.workdir is None:
            shutil.rmtree(work, ignore_errors=True)
    from .report import to_json, to_text

    print(to_text(result), end="")
    if args.json is not None:
        args.json.write_text(json.dumps(to_json(result), indent=2) + "\n")
    if args.plot is not None:
        from .plot import plot

        plot(result, args.plot)
    return 0


def _iso(seconds: float) -> str:
    from .report import rfc3339

    return str(rfc3339(seconds))


def _sized(progress: Progress, start: float, end: float, interval: float) -> Progress:
    progress.total = int((end - start) // interval) + 1
    return progress
