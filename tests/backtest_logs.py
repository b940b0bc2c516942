"""Small simulated logs for the backtest tests: one numeric feature `x` that shifts at a known time.

Written with the library's own record builders (`promml.records`), in the layout `promml simulate` writes:
`DIR/exporter.yml`, `DIR/baseline.json`, `DIR/logs/`, `DIR/scenario.json`.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from promml.baseline import build_baseline
from promml.records import feedback_record, prediction_record, utc_timestamp

START = 1_764_547_200.0  # 2025-12-01T00:00:00Z, a Monday
MODEL = ("credit-risk", "1.0.0")


def write_scenario(out: Path, *, hours: float = 2.0, rps: float = 2.0, shift_at: float | None = 3600.0,
                   shift: float = 3.0, seed: int = 0, label_delay: float = 60.0, model: tuple[str, str] = MODEL,
                   events: list[dict] | None = None) -> Path:
    """Write a scenario; returns the exporter config's path. `shift_at` is seconds after START (None: no shift)."""
    rng = np.random.default_rng(seed)
    (out / "logs").mkdir(parents=True, exist_ok=True)
    train_x = rng.normal(0.0, 1.0, 4000)
    train_target = (train_x > 0).astype(int)
    train_prediction = np.where(rng.random(4000) < 0.9, train_target, 1 - train_target)
    baseline = build_baseline({"x": train_x.tolist(), "target": train_target.tolist(),
                               "prediction": train_prediction.tolist()}, target="target", prediction="prediction",
                              model_name=model[0], model_version=model[1])
    baseline["created_at"] = utc_timestamp(START - 86400)
    (out / "baseline.json").write_text(json.dumps(baseline))
    n = int(hours * 3600 * rps)
    times = START + np.arange(n) / rps
    x = rng.normal(0.0, 1.0, n)
    if shift_at is not None:
        x = np.where(times >= START + shift_at, x + shift, x)
    truth = (x > 0).astype(int)
    predicted = np.where(rng.random(n) < 0.9, truth, 1 - truth)
    with open(out / "logs" / "predictions.jsonl", "w") as predictions, \
            open(out / "logs" / "feedback.jsonl", "w") as feedback:
        for i in range(n):
            pid = f"{i:016x}-0"
            record = prediction_record(pid, float(times[i]), model[0], model[1], {"x": round(float(x[i]), 6)},
                                       int(predicted[i]), round(float(0.5 + 0.4 * np.tanh(x[i])), 6))
            predictions.write(json.dumps(record) + "\n")
            feedback.write(json.dumps(feedback_record(pid, float(times[i]) + label_delay, int(truth[i]))) + "\n")
    config = out / "exporter.yml"
    config.write_text(
        f"model_name: {model[0]}\nmodel_version: \"{model[1]}\"\nbaseline: baseline.json\n"
        "prediction_logs: [logs/predictions*.jsonl]\nfeedback_logs: [logs/feedback*.jsonl]\n"
        "window_seconds: 300\nslot_seconds: 10\nrecompute_interval_seconds: 15\n"
    )
    scenario = {
        "scenario": "sudden-shift" if shift_at is not None else "stationary", "seed": seed, "rps": rps,
        "start": utc_timestamp(START), "end": utc_timestamp(START + hours * 3600),
        "model_name": model[0], "model_version": model[1], "replicas": ["model-server-a"],
        "log_files": {"predictions": ["logs/predictions.jsonl"], "feedback": ["logs/feedback.jsonl"]},
        "events": events if events is not None else ([] if shift_at is None else [{
            "type": "sudden_shift", "name": "x shifts by 3 standard deviations",
            "start": utc_timestamp(START + shift_at),
            "end": utc_timestamp(START + hours * 3600), "params": {"feature": "x", "shift": shift},
            "affects": ["feature:x", "scores", "accuracy"],
        }]),
        "model_side": {"latency": {"median_seconds": 0.02, "p95_seconds": 0.05}, "error_rate": 0.0},
    }
    (out / "scenario.json").write_text(json.dumps(scenario, indent=1))
    return config
