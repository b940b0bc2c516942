"""Exposing the model-side metrics, in one process or merged across the workers of a multiprocess server.

Under gunicorn (or any pre-fork server) each worker counts into its own files in `$PROMETHEUS_MULTIPROC_DIR`, and
a scrape must merge them, or it would see one worker's share at random. `metrics_registry()` returns the registry
to expose either way; `child_exit` is the gunicorn hook that retires a dead worker's live gauges.
"""

from __future__ import annotations

import os
from typing import Any

from prometheus_client import REGISTRY, CollectorRegistry, multiprocess

MULTIPROCESS_ENV = "PROMETHEUS_MULTIPROC_DIR"


def metrics_registry(registry: CollectorRegistry = REGISTRY) -> CollectorRegistry:
    """`registry`, or in multiprocess mode a fresh registry that sums every worker's values at collect time."""
    if registry is REGISTRY and os.environ.get(MULTIPROCESS_ENV):
        merged = CollectorRegistry()
        multiprocess.MultiProcessCollector(merged)
        return merged
    return registry


def child_exit(_server: Any, worker: Any) -> None:
    """gunicorn `child_exit` hook: `from promml.instrumentation.exposition import child_exit` in gunicorn.conf.py."""
    if os.environ.get(MULTIPROCESS_ENV):
        multiprocess.mark_process_dead(worker.pid)
