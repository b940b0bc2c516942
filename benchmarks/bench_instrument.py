"""Per-call cost of `@promml.monitor` against hand-written prometheus_client instrumentation, in one run.

The reference pre-binds its label children (the cheapest correct hand-written instrumentation): counter inc,
latency observe, score observe. Figures are ratios to it, so they transfer between machines.
Run: `make bench` (or `python benchmarks/bench_instrument.py`).
"""

from __future__ import annotations

import platform
import tempfile
import time
import timeit
from collections.abc import Callable

from prometheus_client import CollectorRegistry, Counter, Histogram

import promml
from promml.instrument_metrics import SCORE_BUCKETS

ROW = {"age": 41.0, "income": 52000.0, "debt_ratio": 0.3, "num_accounts": 3, "region": "north"}
RESULT = {"prediction": 1, "score": 0.83}
CALLS = 200_000


def model(row: dict) -> dict:
    return RESULT


def hand_written() -> Callable[[dict], dict]:
    registry = CollectorRegistry()
    labels = ("credit-risk", "1.0.0")
    predictions = Counter("ml_predictions", "", ["model_name", "model_version"], registry=registry).labels(*labels)
    latency = Histogram("ml_prediction_latency_seconds", "", ["model_name", "model_version"],
                        registry=registry).labels(*labels)
    score = Histogram("ml_prediction_score", "", ["model_name", "model_version"], buckets=SCORE_BUCKETS,
                      registry=registry).labels(*labels)

    def predict(row: dict) -> dict:
        started = time.perf_counter()
        result = model(row)
        latency.observe(time.perf_counter() - started)
        predictions.inc()
        score.observe(result["score"])
        return result

    return predict


def per_call_seconds(predict: Callable[[dict], dict]) -> float:
    """Best of five runs, per call (the minimum is the least disturbed by the rest of the machine)."""
    return min(timeit.repeat(lambda: predict(ROW), number=CALLS, repeat=5)) / CALLS


def main() -> None:
    log_dir = tempfile.mkdtemp(prefix="promml-bench-")
    candidates = {
        "bare model (no instrumentation)": model,
        "hand-written prometheus_client (reference)": hand_written(),
        "promml.monitor, metrics only": promml.monitor(
            model_name="credit-risk", model_version="1.0.0", registry=CollectorRegistry())(model),
        "promml.monitor, metrics + prediction log": promml.monitor(
            model_name="credit-risk", model_version="1.0.0", registry=CollectorRegistry(), log_dir=log_dir)(model),
    }
    timings = {name: per_call_seconds(predict) for name, predict in candidates.items()}
    reference = timings["hand-written prometheus_client (reference)"]
    print(f"# {time.strftime('%Y-%m-%d')} {platform.processor() or platform.machine()} "
          f"Python {platform.python_version()}, {CALLS} calls, best of 5")
    print(f"{'instrumentation':48} {'µs/call':>8} {'× reference':>12}")
    for name, seconds in timings.items():
        print(f"{name:48} {seconds * 1e6:8.2f} {seconds / reference:12.2f}")


if __name__ == "__main__":
    main()
