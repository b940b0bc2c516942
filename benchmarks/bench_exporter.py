"""The exporter's speed and memory, on generated data, with every figure against a baseline in the same run.

1. Ingest: prediction records with 20 numeric features, read by the exporter service from a real log file
   (follow, decode, validate, add to the window, bin), in records/s on one core, against stdlib `json.loads` alone
   on the same lines; and the same ingest without the compiled scanner, as an install without a C compiler has it.
2. Recompute: every drift statistic (PSI, Jensen-Shannon, KS, chi-square, Wasserstein, prediction drift, data
   quality) of a 100,000-row, 20-feature window, against Evidently 0.7's `ValueDrift(method="psi")` report on the same
   window and reference, side by side (skipped, and said so, when Evidently is not installed: `make bench` installs it
   in a separate virtualenv, because it needs pandas < 3).
3. Memory: resident memory of a real `promml exporter` process with its default settings after 1M and after 10M
   ingested records (`--records` to change), which must stay flat within 10% and under 250 MB.
Exits non-zero when a target is missed. Run: `make bench`, or `python benchmarks/bench_exporter.py`.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

import msgspec
import numpy as np

from promml.baseline import build_baseline, parse_baseline, save_baseline
from promml.demo.stack import free_port
from promml.exporter import scan
from promml.exporter.config import parse_config
from promml.exporter.service import ExporterService
from promml.records import prediction_record

FEATURES = [f"f{i}" for i in range(20)]
MODEL = ("bench-model", "1")
START = 1_790_000_000.0
INGEST_ROWS = 200_000
WINDOW_ROWS = 100_000
TARGET_INGEST_PER_SECOND = 150_000
TARGET_SPEEDUP = 100
TARGET_RSS_BYTES = 250 * 2**20
RSS_TOLERANCE = 0.10


def rss_bytes(pid: int | str = "self") -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError("no VmRSS in /proc/self/status")


def reference_frame(rng: np.random.Generator, rows: int) -> dict[str, np.ndarray]:
    return {name: rng.normal(0.0, 1.0, rows) for name in FEATURES}


def make_baseline(rng: np.random.Generator) -> tuple[Any, dict[str, np.ndarray]]:
    columns = reference_frame(rng, WINDOW_ROWS)
    return parse_baseline(build_baseline(columns, model_name=MODEL[0], model_version=MODEL[1])), columns


def record_lines(rng: np.random.Generator, rows: int, first_id: int, start: float, spacing: float) -> list[bytes]:
    """JSONL lines as the instrumentation writes them; the drifted half of the features is shifted by 0.3 sd."""
    values = rng.normal(0.0, 1.0, (rows, len(FEATURES)))
    values[:, ::2] += 0.3
    values = values.round(6).tolist()
    return [
        msgspec.json.encode(prediction_record(f"p-{first_id + i}", start + i * spacing, *MODEL, dict(zip(FEATURES, row,
                                                                                                     strict=True)),
                                       int(row[0] > 0), 0.5))
        for i, row in enumerate(values)
    ]


def service_for(baseline: Any, log: Path, window_seconds: float, clock: list[float]) -> ExporterService:
    config = parse_config({
        "model_name": MODEL[0], "model_version": MODEL[1], "baseline": "unused.json",
        "prediction_logs": [str(log)], "window_seconds": window_seconds, "slot_seconds": 60,
        "max_pending_predictions": 100_000,
    }, log.parent)
    return ExporterService(config, baseline, clock=lambda: clock[0])


def ingest(baseline: Any, rng: np.random.Generator, work: Path) -> tuple[float, float, float]:
    """(records/s of the exporter, of stdlib `json.loads` alone, and of the exporter without its compiled scanner)."""
    lines = record_lines(rng, INGEST_ROWS, 0, START, 0.01)
    started = time.perf_counter()
    for line in lines:
        json.loads(line)
    stdlib_rate = len(lines) / (time.perf_counter() - started)
    log = work / "ingest.jsonl"
    log.write_bytes(b"\n".join(lines) + b"\n")
    rate = ingest_rate(baseline, log)
    if not scan.FAST_SCANNER_BUILT:
        return rate, stdlib_rate, rate
    compiled, scan._scan = scan._scan, None
    try:
        exact_rate = ingest_rate(baseline, log)
    finally:
        scan._scan = compiled
    return rate, stdlib_rate, exact_rate


def ingest_rate(baseline: Any, log: Path) -> float:
    clock = [START + INGEST_ROWS * 0.01]
    service = service_for(baseline, log, 7200, clock)
    started = time.perf_counter()
    while service.record_counts[("predictions", "ok")] < INGEST_ROWS:
        service.read_logs()
    service.recompute()
    return INGEST_ROWS / (time.perf_counter() - started)


def recompute_seconds(service: ExporterService) -> float:
    best = float("inf")
    for _ in range(5):
        started = time.perf_counter()
        service.recompute()
        best = min(best, time.perf_counter() - started)
    return best


def evidently_seconds(reference: dict[str, np.ndarray], current_lines: list[bytes]) -> float | None:
    try:
        import pandas as pd
        from evidently import DataDefinition, Dataset, Report
        from evidently.metrics import ValueDrift
    except ImportError:
        return None
    current = pd.DataFrame([msgspec.json.decode(line)["features"] for line in current_lines])
    definition = DataDefinition(numerical_columns=FEATURES)
    report = Report([ValueDrift(column=name, method="psi") for name in FEATURES])
    started = time.perf_counter()
    report.run(Dataset.from_pandas(current, data_definition=definition),
               Dataset.from_pandas(pd.DataFrame(reference), data_definition=definition))
    return time.perf_counter() - started


def memory(baseline_path: Path, rng: np.random.Generator, work: Path, records: int) -> list[tuple[int, int]]:
    """RSS of a real `promml exporter` process (default settings, a 1h window) after each million records.

    This process writes the records as a stream of chunk files matching the log pattern, deleting each once the
    exporter has read it (a rotation without retention), and measures only the exporter's memory, not its own.
    """
    port = free_port()
    config = work / "exporter.yml"
    config.write_text(json.dumps({
        "model_name": MODEL[0], "model_version": MODEL[1], "baseline": str(baseline_path),
        "prediction_logs": [str(work / "memory-*.jsonl")], "listen": f"127.0.0.1:{port}",
        "window_seconds": 3600, "poll_interval_seconds": 0.1, "recompute_interval_seconds": 5,
    }))
    exporter = subprocess.Popen([sys.executable, "-m", "promml.cli", "exporter", "--config", str(config)],
                                stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    try:
        chunk, fed, marks, previous = 20_000, 0, [], None
        while fed < records:
            path = work / f"memory-{fed:012d}.jsonl"
            lines = record_lines(rng, chunk, fed, time.time() - 60, 60 / chunk)
            path.write_bytes(b"\n".join(lines) + b"\n")
            fed += chunk
            _wait_for_records(port, fed, exporter)
            if previous is not None:
                previous.unlink()
            previous = path
            if fed % 1_000_000 == 0:
                marks.append((fed, rss_bytes(exporter.pid)))
                print(f"  {fed:,} records, exporter RSS {marks[-1][1] / 2**20:.1f} MiB", file=sys.stderr, flush=True)
        return marks
    finally:
        exporter.terminate()
        exporter.wait(timeout=30)


def _wait_for_records(port: int, count: int, exporter: subprocess.Popen[bytes]) -> None:
    """Until the exporter has read `count` ok prediction records (its own counter, scraped)."""
    pattern = re.compile(rb'^ml_exporter_records_total\{[^}]*log="predictions"[^}]*status="ok"[^}]*\} (\S+)$', re.M)
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        if exporter.poll() is not None:
            raise SystemExit(f"the exporter exited with {exporter.returncode}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
                match = pattern.search(response.read())
            if match and float(match.group(1)) >= count:
                return
        except OSError:
            pass
        time.sleep(0.05)
    raise SystemExit(f"the exporter did not read {count:,} records in time")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=10_000_000, help="records for the memory test")
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    work = Path(tempfile.mkdtemp(prefix="promml-bench-exporter-"))
    baseline, reference = make_baseline(rng)
    print(f"# {time.strftime('%Y-%m-%d')}, {platform.machine()}, {os.cpu_count()} cores, "
          f"Python {platform.python_version()}")
    checks: dict[str, bool] = {}

    rate, stdlib_rate, exact_rate = ingest(baseline, rng, work)
    print(f"\n## Ingest ({INGEST_ROWS:,} records, 20 numeric features, from a log file)\n")
    print("| | records/s | × stdlib json.loads |")
    print("|---|---:|---:|")
    print(f"| stdlib `json.loads` alone | {stdlib_rate:,.0f} | 1.00 |")
    print(f"| promml exporter: follow, decode, validate, window, bin | {rate:,.0f} | {rate / stdlib_rate:.2f} |")
    if not scan.FAST_SCANNER_BUILT:
        print("| (the compiled scanner is not built: the line above is the exact path alone) | | |")
    else:
        print(f"| the same without the compiled scanner (msgspec and the exact validator) | {exact_rate:,.0f} | "
              f"{exact_rate / stdlib_rate:.2f} |")
    checks[f"ingest >= {TARGET_INGEST_PER_SECOND:,}/s"] = rate >= TARGET_INGEST_PER_SECOND

    window_log = work / "window.jsonl"
    lines = record_lines(rng, WINDOW_ROWS, 0, START, 0.01)
    window_log.write_bytes(b"\n".join(lines) + b"\n")
    clock = [START + WINDOW_ROWS * 0.01]
    service = service_for(baseline, window_log, 7200, clock)
    while service.record_counts[("predictions", "ok")] < WINDOW_ROWS:
        service.read_logs()
    service.recompute()
    ours = recompute_seconds(service)
    theirs = evidently_seconds(reference, lines)
    snapshot = service.published.snapshot
    print(f"\n## Recompute of a {snapshot.predictions:,}-row, {len(FEATURES)}-feature window\n")
    print("| | seconds | speed-up |")
    print("|---|---:|---:|")
    print(f"| promml: PSI, JS, KS, chi-square, Wasserstein, prediction drift, data quality | {ours:.4f} | "
          f"{'' if theirs is None else f'{theirs / ours:.0f}×'} |")
    if theirs is None:
        print("| Evidently 0.7 `ValueDrift(method=\"psi\")` × 20 | not installed | |")
    else:
        print(f"| Evidently 0.7 `ValueDrift(method=\"psi\")` × 20 | {theirs:.3f} | 1× |")
        checks[f"recompute >= {TARGET_SPEEDUP}x faster than Evidently"] = theirs / ours >= TARGET_SPEEDUP

    baseline_path = work / "baseline.json"
    save_baseline(build_baseline(reference, model_name=MODEL[0], model_version=MODEL[1]), baseline_path)
    marks = memory(baseline_path, rng, work, args.records)
    print(f"\n## Resident memory of the exporter process while it ingests {args.records:,} records (1h window)\n")
    print("| records | RSS MiB |")
    print("|---:|---:|")
    for fed, rss in marks:
        print(f"| {fed:,} | {rss / 2**20:.1f} |")
    first, last = marks[0][1], marks[-1][1]
    checks["RSS flat within 10% from 1M to the end"] = abs(last - first) <= RSS_TOLERANCE * first
    checks["RSS under 250 MB"] = max(rss for _, rss in marks) <= TARGET_RSS_BYTES
    print()
    for name, passed in checks.items():
        print(f"{'PASS' if passed else 'FAIL'}  {name}")
    return 0 if all(checks.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
