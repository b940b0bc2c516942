"""The checkpoint of a 24-hour window: its size, the memory of the window, and what a restart costs.

A window of 1h and 24h (1-minute slots, 20 numeric features and one segment feature, default `sample_size` and
`max_pending_predictions`) is filled with a day of predictions at a given rate, a third of them labelled ten minutes
later. Then: the window's memory (resident set growth while it was filled, in a process of its own), the
checkpoint's size, the time to encode and save it atomically, and the time to load, validate and restore it,
against the reference measured in the same run: binning the same rows into a fresh window, the least a restart
that reads the logs again must do (it must also read and decode every line: `bench_exporter.py` puts that at about
250,000 lines/s).

The checkpoint must stay bounded: at 10 and at 100 predictions/s its size differs by little (reservoirs, bins and
the pending table are bounded; only counts grow). Exits non-zero when a target is missed.
Run: `python benchmarks/bench_checkpoint.py` (a few minutes), `--rates 10 100`.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from collections import deque
from pathlib import Path

import msgspec
import numpy as np

from promml.baseline import build_baseline, parse_baseline
from promml.exporter.checkpoint import (
    Checkpoint,
    checkpoint_to_dict,
    encode_checkpoint,
    load_checkpoint,
    save_checkpoint,
)
from promml.exporter.columns import PredictionColumns
from promml.exporter.config import WindowSpec
from promml.exporter.window import SlidingWindow
from promml.records import Feedback

FEATURES = [f"f{i}" for i in range(20)]
START = 1_790_000_000.0
DAY = 86_400
SLOT = 60.0
LABEL_DELAY = 600.0
TARGET_CHECKPOINT_BYTES = 64 * 2**20
"""A 24-hour window's checkpoint at 100 predictions/s must stay under this (it is rewritten every minute)."""
TARGET_GROWTH = 1.5
"""Ten times the rate may not make the checkpoint more than this much larger: it is bounded, not per row."""
TARGET_RESTORE_SPEEDUP = 10
"""Restoring must be at least this much faster than binning the rows again (reading the logs not even counted)."""


def rss_bytes() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError("no VmRSS in /proc/self/status")


def make_window(baseline) -> SlidingWindow:
    return SlidingWindow(baseline, windows=[WindowSpec("1h", 3600.0), WindowSpec("24h", DAY)], slot_seconds=SLOT,
                         segments=["region"])


def slot_rows(rng: np.random.Generator, slot: int, rows: int) -> PredictionColumns:
    start = START + slot * SLOT
    scores = np.round(rng.random(rows), 3)
    return PredictionColumns(
        ids=[f"{slot:05d}-{row:05d}-7f3a9c1e" for row in range(rows)],
        timestamps=np.sort(start + rng.random(rows) * SLOT),
        predictions=(scores > 0.5).astype(int).tolist(),
        scores=scores.tolist(),
        numeric=rng.normal(0.2, 1.1, (rows, len(FEATURES))),
        categorical=[rng.choice(["north", "south", "east", "west"], rows).tolist()],
    )


def fill(window: SlidingWindow, rate: int, seed: int) -> float:
    """A day of predictions at `rate`/s, slot by slot, a third labelled ten minutes later; the seconds spent binning
    the rows (adding them to their slots, labels not included): what a restart that reads the logs again redoes."""
    rng = np.random.default_rng(seed)
    per_slot = int(rate * SLOT)
    delay_slots = int(LABEL_DELAY / SLOT)
    batches: deque[PredictionColumns] = deque(maxlen=delay_slots + 1)  # the rows whose labels are still to come
    binning = 0.0
    for slot in range(int(DAY / SLOT)):
        rows = slot_rows(rng, slot, per_slot)
        now = START + (slot + 1) * SLOT
        began = time.perf_counter()
        window.add_columns(rows, now)
        binning += time.perf_counter() - began
        batches.append(rows)
        if slot >= delay_slots:
            labelled = batches[0]
            for index in range(0, per_slot, 3):
                window.add_feedback(Feedback(labelled.ids[index], now, int(labelled.predictions[index])))
        if slot % 120 == 0:
            window.snapshots(now)  # expires slots and pending predictions, as the recompute does
    return binning


def measure(baseline, rate: int, folder: Path) -> dict[str, float]:
    started = rss_bytes()
    window = make_window(baseline)
    binning = fill(window, rate, seed=rate)
    now = START + DAY
    window.snapshots(now)
    filled = rss_bytes()
    labeled = tuple((f"id-{n:08d}-7f3a9c1e", now - n * 0.01) for n in range(window.max_pending))
    checkpoint = Checkpoint("bench-model", "1", now, {("predictions", "ok"): rate * DAY}, {},
                            window=window.to_state(), labeled=labeled, newest_records={"predictions": now})
    state = checkpoint.window
    parts = {"slots": msgspec.json.encode(state["slots"]), "pending": msgspec.json.encode(state["pending"]),
             "labeled": msgspec.json.encode(checkpoint_to_dict(checkpoint)["labeled"])}
    began = time.perf_counter()
    data = encode_checkpoint(checkpoint)
    save_checkpoint(data, folder / "checkpoint.json")
    save_seconds = time.perf_counter() - began
    began = time.perf_counter()
    loaded = load_checkpoint(folder / "checkpoint.json")
    restored = make_window(baseline)
    restored.restore_state(loaded.window)
    restore_seconds = time.perf_counter() - began
    assert restored.pending == window.pending
    assert [s.predictions for s in restored.snapshots(now)] == [s.predictions for s in window.snapshots(now)]
    return {"rate": rate, "rows": rate * DAY, "window": filled - started, "process": filled, "bytes": len(data),
            "save": save_seconds, "restore": restore_seconds, "binning": binning, "pending": window.pending,
            "slots": len(restored._slots), **{f"{name} bytes": len(part) for name, part in parts.items()}}


def baseline_for_bench():
    rng = np.random.default_rng(0)
    columns = {name: rng.normal(0.0, 1.0, 5000).tolist() for name in FEATURES}
    columns["region"] = rng.choice(["north", "south", "east"], 5000).tolist()
    columns["prediction"] = rng.integers(0, 2, 5000).tolist()
    columns["score"] = rng.random(5000).tolist()
    return parse_baseline(build_baseline(columns, categorical=["region"], prediction="prediction", score="score"))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rates", type=int, nargs="+", default=[10, 100], help="predictions per second")
    parser.add_argument("--one", type=int, help=argparse.SUPPRESS)  # one rate, in a process of its own
    args = parser.parse_args()
    if args.one is not None:
        with tempfile.TemporaryDirectory() as folder:
            print(json.dumps(measure(baseline_for_bench(), args.one, Path(folder))))
        return 0
    print(f"# {time.strftime('%Y-%m-%d')}, {platform.machine()}, {os.cpu_count()} cores, Python "
          f"{platform.python_version()}; 1h + 24h windows, 1-minute slots, 20 numeric features, 1 segment feature")
    print()
    print("| predictions/s | rows in 24h | slots | pending | window MiB | process RSS MiB | checkpoint MiB | save s "
          "| restore s | binning the rows again s | restore × faster |")
    print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    results = []
    for rate in args.rates:  # each in a fresh process, so that its resident memory is its own
        output = subprocess.run([sys.executable, __file__, "--one", str(rate)], check=True, capture_output=True,
                                text=True).stdout
        result = json.loads(output.strip().splitlines()[-1])
        results.append(result)
        print(f"| {rate} | {result['rows']:,} | {result['slots']:,} | {result['pending']:,} | "
              f"{result['window'] / 2**20:.1f} | {result['process'] / 2**20:.1f} | {result['bytes'] / 2**20:.1f} | "
              f"{result['save']:.2f} | {result['restore']:.2f} | {result['binning']:.2f} | "
              f"{result['binning'] / result['restore']:.0f}× |")
    print()
    for result in results:
        print(f"{result['rate']}/s: of the checkpoint's {result['bytes'] / 2**20:.1f} MiB, slots "
              f"{result['slots bytes'] / 2**20:.1f} MiB, pending predictions {result['pending bytes'] / 2**20:.1f} "
              f"MiB, labelled ids {result['labeled bytes'] / 2**20:.1f} MiB")
    print()
    failed = False
    top = results[-1]
    checks = [(f"checkpoint of the {top['rate']}/s window under {TARGET_CHECKPOINT_BYTES / 2**20:.0f} MiB",
               top["bytes"] < TARGET_CHECKPOINT_BYTES),
              (f"restore at least {TARGET_RESTORE_SPEEDUP}x faster than binning the rows again",
               top["binning"] / top["restore"] >= TARGET_RESTORE_SPEEDUP)]
    if len(results) > 1:
        growth = results[-1]["bytes"] / results[0]["bytes"]
        checks.append((f"checkpoint bounded: {results[-1]['rate'] // results[0]['rate']}x the rate, "
                       f"{growth:.2f}x the size (at most {TARGET_GROWTH})", growth <= TARGET_GROWTH))
    for name, passed in checks:
        print(f"{'PASS' if passed else 'FAIL'}  {name}")
        failed |= not passed
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
