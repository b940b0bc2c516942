"""The demo model server at saturation on loopback: exact counts, every row accounted for, flat memory.

Starts `promml demo-server` with a prediction log, drives it with a bounded pool of client threads for
`--seconds` (default 60), and then checks, from the server's own /metrics and its log file:
- `ml_predictions_total` equals the successful responses exactly;
- the log accounts for every row: written + dropped + failed == predicted, and the file holds `written` lines;
- resident memory (VmRSS) stays flat: the last sample within 10% of the one taken after warm-up.
Exits non-zero if any check fails. Run: `make bench` (or `python benchmarks/bench_load.py --seconds 60`).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from promml.demo.data import generate
from promml.demo.stack import free_port

LABELS = {"model_name": "credit-risk", "model_version": "1.0.0"}
RSS_TOLERANCE = 0.10


def rss_bytes(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError("no VmRSS")


def scrape(url: str) -> dict[tuple[str, frozenset], float]:
    with urllib.request.urlopen(url, timeout=10) as response:
        text = response.read().decode()
    return {(s.name, frozenset(s.labels.items())): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--clients", type=int, default=8)
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="promml-load-"))
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "promml.cli", "demo-server", "--port", str(port), "--log-dir", str(work)],
        stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            urllib.request.urlopen(f"{url}/healthz", timeout=1)
            break
        except OSError:
            if time.monotonic() > deadline or server.poll() is not None:
                raise SystemExit("the demo server did not start") from None
            time.sleep(0.2)

    bodies = [json.dumps(row).encode() for row in generate(1000, seed=1)[0]]
    ok = [0] * args.clients
    failed = [0] * args.clients
    stop = threading.Event()

    def client(index: int) -> None:
        sent = index
        while not stop.is_set():
            request = urllib.request.Request(f"{url}/predict", bodies[sent % len(bodies)],
                                             {"Content-Type": "application/json"})
            sent += args.clients
            try:
                with urllib.request.urlopen(request, timeout=10) as response:
                    response.read()
                    ok[index] += 1
            except OSError:
                failed[index] += 1

    threads = [threading.Thread(target=client, args=(i,)) for i in range(args.clients)]
    started = time.monotonic()
    for thread in threads:
        thread.start()
    rss: list[tuple[float, int]] = []
    while (elapsed := time.monotonic() - started) < args.seconds:
        rss.append((elapsed, rss_bytes(server.pid)))
        time.sleep(min(5.0, max(0.0, args.seconds - elapsed)))
    stop.set()
    for thread in threads:
        thread.join()
    duration = time.monotonic() - started
    rss.append((duration, rss_bytes(server.pid)))

    time.sleep(1.0)  # the log writer drains its queue
    samples = scrape(f"{url}/metrics")
    server.send_signal(signal.SIGTERM)
    server.wait(timeout=30)

    def value(name: str, **labels: str) -> float:
        return samples.get((name, frozenset({**LABELS, **labels}.items())), 0.0)

    successes, errors = sum(ok), sum(failed)
    predicted = value("ml_predictions_total")
    outcomes = {o: value("ml_prediction_log_records_total", outcome=o) for o in ("written", "dropped", "failed")}
    lines = sum(len(path.read_text().splitlines()) for path in work.glob("predictions*.jsonl"))
    warm = next((bytes_ for at, bytes_ in rss if at >= min(10.0, args.seconds / 3)), rss[0][1])
    checks = {
        "ml_predictions_total == successful responses": predicted == successes,
        "written + dropped + failed == predicted": sum(outcomes.values()) == predicted,
        "log lines == written": lines == outcomes["written"],
        f"RSS after warm-up within {RSS_TOLERANCE:.0%} at the end": abs(rss[-1][1] - warm) <= RSS_TOLERANCE * warm,
    }
    print(f"# {time.strftime('%Y-%m-%d')}, {platform.machine()}, {os.cpu_count()} cores, "
          f"Python {platform.python_version()}; demo server (waitress, 8 threads), {args.clients} client threads")
    print(f"{duration:.0f} s: {successes:,} ok responses ({successes / duration:,.0f}/s), {errors} failed requests")
    print(f"ml_predictions_total {predicted:,.0f}; log: {outcomes}; {lines:,} lines in the file")
    print("RSS MiB over time: " + ", ".join(f"{at:.0f}s {bytes_ / 2**20:.1f}" for at, bytes_ in rss))
    for name, passed in checks.items():
        print(f"{'PASS' if passed else 'FAIL'}  {name}")
    return 0 if all(checks.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
