"""`promml backtest`'s speed: one simulated day at 50 predictions/s, against the time to just read the same logs.

1. Logs: `promml simulate --scenario sudden-shift --hours 24 --rps 50 --seed 1` (written once into --dir and
   reused when already there).
2. Reference, in the same run: every line of the same logs read with the exporter's own reader (`LogFollower`),
   nothing decoded: the floor of any tool that looks at every line.
3. The backtest: `promml backtest` in-process on the shipped rules and Alertmanager config, each stage timed
   (replay through the exporter, TSDB blocks, recording-rule backfill, alert queries, routing).
Target: the backtest of one simulated day at 50/s in under 5 minutes. Exits non-zero when missed.
Run: `make bench`, or `python benchmarks/bench_backtest.py [--hours 24 --rps 50 --dir DIR]`.
"""

from __future__ import annotations

import argparse
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from promml.backtest.cli import add_arguments, run
from promml.exporter.config import load_config
from promml.exporter.log_follower import LogFollower

TARGET_SECONDS = 300.0


def simulate(out: Path, scenario: str, hours: float, rps: float) -> None:
    if (out / "scenario.json").is_file():
        return
    subprocess.run([sys.executable, "-m", "promml.cli", "simulate", "--scenario", scenario, "--hours", str(hours),
                    "--rps", str(rps), "--seed", "1", "--out", str(out)], check=True)


def read_logs(config_path: Path) -> tuple[float, int, int]:
    """Seconds to read every line of the config's logs with the exporter's reader; lines and bytes read."""
    config = load_config(config_path)
    began = time.perf_counter()
    lines = size = 0
    for patterns in (config.prediction_logs, config.feedback_logs):
        follower = LogFollower(patterns)
        while True:
            result = follower.poll()
            lines += len(result.lines)
            size += sum(map(len, result.lines))
            if not result.lines and not result.more:
                break
        follower.close()
    return time.perf_counter() - began, lines, size


def _cpu_seconds() -> float:
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--hours", type=float, default=24.0)
    parser.add_argument("--rps", type=float, default=50.0)
    parser.add_argument("--scenario", default="sudden-shift")
    parser.add_argument("--dir", type=Path, help="keep the simulated logs here (default: a temporary folder)")
    parser.add_argument("--plot", type=Path, help="also draw the backtest's plot here (not timed apart)")
    args = parser.parse_args()
    out = args.dir or Path(tempfile.mkdtemp(prefix="bench-backtest-"))
    print(f"machine: {platform.platform()}, {os.cpu_count()} cores, load average "
          f"{' '.join(f'{x:.1f}' for x in os.getloadavg())}; {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}")
    simulate(out, args.scenario, args.hours, args.rps)
    config = out / "exporter.yml"
    reference, lines, size = read_logs(config)
    print(f"read the logs (LogFollower, no decoding): {lines:,} lines, {size / 1e6:,.0f} MB in {reference:.1f}s")
    backtest = argparse.ArgumentParser()
    add_arguments(backtest)
    began, cpu = time.perf_counter(), _cpu_seconds()
    plot = ["--plot", str(args.plot)] if args.plot else []
    code = run(backtest.parse_args([str(config), "--json", str(out / "backtest.json"), "--quiet", *plot]))
    seconds, cpu = time.perf_counter() - began, _cpu_seconds() - cpu
    if code != 0:
        return code
    import json

    stages = json.loads((out / "backtest.json").read_text())["summary"]["seconds"]
    print(f"backtest: {seconds:.1f}s = {seconds / reference:.1f}x reading the logs; stages (s): "
          + ", ".join(f"{k} {v:.1f}" for k, v in stages.items()))
    print(f"CPU time: {cpu:.1f}s (this process and promtool/prometheus together; on a busy machine the wall time "
          "above includes waiting for a core)")
    met = seconds < TARGET_SECONDS * args.hours / 24 * args.rps / 50
    print(f"{'PASS' if met else 'FAIL'}  {args.hours:g} simulated hours at {args.rps:g}/s in under "
          f"{TARGET_SECONDS * args.hours / 24 * args.rps / 50:.0f}s")
    return 0 if met else 1


if __name__ == "__main__":
    sys.exit(main())
