"""What `@promml.monitor` costs the calling thread, as ratios to hand-written prometheus_client code in one run.

Two references, both pre-binding their label children (the cheapest correct hand-written instrumentation):
- "same metrics": everything promml records per call (in-flight gauge, latency, rows, batch size, score, class);
- "seed metrics": only a row counter, the latency and the score histograms.
Per-call figures are the calling thread's CPU time (`time.thread_time`), so the log writer's work on its own
thread is not charged to predict; the log's accounting (written/dropped) is printed so drops cannot hide.
The batch table records a 10,000-row batch whose model returns numpy arrays, against observing the rows one by one.
`--multiprocess` runs the same tables with PROMETHEUS_MULTIPROC_DIR set (prometheus_client's mmap-backed values).
Run: `make bench` (or `python benchmarks/bench_instrument.py [--multiprocess]`).
"""

from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys
import tempfile
import time
import timeit
from collections.abc import Callable
from typing import Any

import numpy as np

ROW = {"age": 41.0, "income": 52000.0, "debt_ratio": 0.3, "num_accounts": 3, "region": "north"}
RESULT = {"prediction": 1, "score": 0.83}
CALLS = 100_000
REPEATS = 5
BATCH_ROWS = 10_000
LABELS = ("credit-risk", "1.0.0")
NAMES = ["model_name", "model_version"]


def model(row: dict) -> dict:
    return RESULT


def hand_written(same_metrics: bool) -> Callable[[dict], dict]:
    from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

    from promml.instrumentation.metrics import BATCH_SIZE_BUCKETS, SCORE_BUCKETS

    registry = CollectorRegistry()
    predictions = Counter("ml_predictions", "", NAMES, registry=registry).labels(*LABELS)
    latency = Histogram("ml_prediction_latency_seconds", "", NAMES, registry=registry).labels(*LABELS)
    score = Histogram("ml_prediction_score", "", NAMES, buckets=SCORE_BUCKETS, registry=registry).labels(*LABELS)
    if not same_metrics:

        def predict_seed_metrics(row: dict) -> dict:
            started = time.perf_counter()
            result = model(row)
            latency.observe(time.perf_counter() - started)
            predictions.inc()
            score.observe(result["score"])
            return result

        return predict_seed_metrics

    batch_size = Histogram("ml_prediction_batch_size_rows", "", NAMES, buckets=BATCH_SIZE_BUCKETS,
                           registry=registry).labels(*LABELS)
    in_flight = Gauge("ml_predictions_in_flight", "", NAMES, registry=registry,
                      multiprocess_mode="livesum").labels(*LABELS)
    classes = {1: Counter("ml_predicted_class", "", [*NAMES, "class"], registry=registry).labels(*LABELS, "1")}

    def predict(row: dict) -> dict:
        in_flight.inc()
        started = time.perf_counter()
        try:
            result = model(row)
        finally:
            in_flight.dec()
        latency.observe(time.perf_counter() - started)
        predictions.inc()
        batch_size.observe(1)
        score.observe(result["score"])
        classes[result["prediction"]].inc()
        return result

    return predict


def thread_seconds(action: Callable[[], Any], number: int) -> float:
    """Best of REPEATS runs, per call, in the calling thread's CPU time."""
    return min(timeit.repeat(action, number=number, repeat=REPEATS, timer=time.thread_time)) / number


def per_call_table() -> None:
    from prometheus_client import CollectorRegistry

    import promml
    from promml.instrumentation.jsonl_writer import shared_writer
    from promml.instrumentation.monitor import predictions_file

    log_dir = tempfile.mkdtemp(prefix="promml-bench-")
    log_registry = CollectorRegistry()
    candidates = {
        "bare model (no instrumentation)": model,
        "hand-written, seed metrics": hand_written(same_metrics=False),
        "hand-written, same metrics (reference)": hand_written(same_metrics=True),
        "promml.monitor, metrics only": promml.monitor(
            model_name=LABELS[0], model_version=LABELS[1], registry=CollectorRegistry())(model),
        "promml.monitor, metrics + prediction log": promml.monitor(
            model_name=LABELS[0], model_version=LABELS[1], registry=log_registry, log_dir=log_dir,
            max_log_bytes=None)(model),
    }
    timings = {name: thread_seconds(lambda p=predict: p(ROW), CALLS) for name, predict in candidates.items()}
    shared_writer(predictions_file(log_dir)).flush(timeout=120)
    outcomes = {
        outcome: log_registry.get_sample_value(
            "ml_prediction_log_records_total",
            {"model_name": LABELS[0], "model_version": LABELS[1], "outcome": outcome}) or 0
        for outcome in ("written", "dropped")
    }
    reference = timings["hand-written, same metrics (reference)"]
    seed = timings["hand-written, seed metrics"]
    print(f"\n{CALLS:,} one-row calls, best of {REPEATS}, calling thread CPU time\n")
    print("| instrumentation | µs/call | × same-metrics reference | × seed-metrics reference |")
    print("|---|---:|---:|---:|")
    for name, seconds in timings.items():
        print(f"| {name} | {seconds * 1e6:.2f} | {seconds / reference:.2f} | {seconds / seed:.2f} |")
    print(f"\nprediction log: {outcomes['written']:,.0f} rows written, {outcomes['dropped']:,.0f} dropped "
          f"(queue full, {outcomes['dropped'] / (CALLS * REPEATS):.1%}) of {CALLS * REPEATS:,} predicted")


def writer_table() -> None:
    """The log writer's own thread: rows encoded and written per second of CPU on one core. The reference is the
    standard library's JSON encoder (what the writer used before msgspec) on the same one-row calls, rendered one
    call at a time and written 1000 calls at a time. promml's row is the writer thread itself, fed the calls through
    its queue (bounded as in use: the feeder waits when it is full), with its thread's CPU time read from the
    kernel: rendering a drain at once (ids, timestamps), encoding, writing, flushing and counting."""
    import json

    from prometheus_client import CollectorRegistry

    from promml.instrumentation.jsonl_writer import JsonlWriter
    from promml.instrumentation.metrics import bind_metrics
    from promml.instrumentation.prediction_ids import next_call_ids
    from promml.instrumentation.prediction_log import PredictionBatch

    rows = 200_000

    def call(index: int) -> PredictionBatch:
        return PredictionBatch(next_call_ids(1), 1.79e9 + index / 1000, LABELS, dict(ROW), [RESULT["prediction"]],
                               [RESULT["score"]])

    stdlib = json.JSONEncoder(separators=(",", ":"), default=str).encode

    def write(render: Callable[[PredictionBatch], bytes]) -> float:
        batches = [call(index) for index in range(rows)]
        with tempfile.TemporaryFile() as handle:
            started = time.process_time()
            for start in range(0, rows, 1000):  # a drain of 1000 queued calls per write
                handle.write(b"".join(render(batch) for batch in batches[start:start + 1000]))
                handle.flush()
            return time.process_time() - started

    def writer_thread() -> float:
        counted = bind_metrics(*LABELS, CollectorRegistry()).log_written.inc
        with tempfile.TemporaryDirectory() as directory:
            writer = JsonlWriter(os.path.join(directory, "predictions.jsonl"))
            clock = time.pthread_getcpuclockid(writer._thread.ident)  # type: ignore[arg-type]
            started = time.clock_gettime(clock)
            for index in range(rows):  # made as a predict call makes them: only the queue holds calls
                batch = call(index)
                while not writer.submit(batch, counted):  # the queue's bound, as in use: wait rather than drop
                    time.sleep(0.001)
            writer.flush(timeout=120)
            seconds = time.clock_gettime(clock) - started
            writer.close()
        return seconds

    reference = min(write(lambda batch: "".join(stdlib(record) + "\n" for record in batch).encode())
                    for _ in range(3))
    thread = min(writer_thread() for _ in range(3))
    print(f"\nlog writer: {rows:,} one-row calls encoded and written, best of 3, CPU time of the writing thread\n")
    print("| encoder | rows/s | speed-up |")
    print("|---|---:|---:|")
    print(f"| stdlib json, one dict per row, one call at a time (reference) | {rows / reference:,.0f} | 1.0 |")
    print(f"| promml's writer thread (msgspec, a drain at a time, through the queue) | {rows / thread:,.0f} | "
          f"{reference / thread:.1f}× |")


def batch_table() -> None:
    from prometheus_client import CollectorRegistry, Counter, Histogram

    import promml
    from promml.instrumentation.metrics import SCORE_BUCKETS

    rng = np.random.default_rng(0)
    scores = rng.random(BATCH_ROWS)
    classes = (scores >= 0.5).astype(int)
    frame = np.zeros((BATCH_ROWS, 5))

    registry = CollectorRegistry()
    predictions = Counter("ml_predictions", "", NAMES, registry=registry).labels(*LABELS)
    score = Histogram("ml_prediction_score", "", NAMES, buckets=SCORE_BUCKETS, registry=registry).labels(*LABELS)
    class_counter = Counter("ml_predicted_class", "", [*NAMES, "class"], registry=registry)
    class_children = {0: class_counter.labels(*LABELS, "0"), 1: class_counter.labels(*LABELS, "1")}

    def one_by_one() -> None:
        for row_score, row_class in zip(scores.tolist(), classes.tolist(), strict=True):
            predictions.inc()
            score.observe(row_score)
            class_children[row_class].inc()

    batch_predict = promml.monitor(
        model_name=LABELS[0], model_version=LABELS[1], registry=CollectorRegistry(),
        outputs=lambda result, n: result,
    )(lambda features: (classes, scores))
    slow = thread_seconds(one_by_one, 5)
    fast = thread_seconds(lambda: batch_predict(frame), 50)
    print(f"\none {BATCH_ROWS:,}-row batch (counts, score histogram, classes), best of {REPEATS}\n")
    print("| recording | ms/batch | speed-up |")
    print("|---|---:|---:|")
    print(f"| hand-written, one observation per row | {slow * 1e3:.2f} | 1.0 |")
    print(f"| promml.monitor, numpy outputs | {fast * 1e3:.3f} | {slow / fast:.0f}× |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--multiprocess", action="store_true", help="run with PROMETHEUS_MULTIPROC_DIR set")
    args = parser.parse_args()
    if args.multiprocess and not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": tempfile.mkdtemp(prefix="promml-bench-mp-")}
        sys.exit(subprocess.call([sys.executable, __file__, "--multiprocess"], env=env))
    mode = "multiprocess (PROMETHEUS_MULTIPROC_DIR)" if args.multiprocess else "single process"
    print(f"# {time.strftime('%Y-%m-%d')}, {platform.machine()}, {os.cpu_count()} cores, "
          f"Python {platform.python_version()}, {mode}")
    per_call_table()
    writer_table()
    batch_table()


if __name__ == "__main__":
    main()
