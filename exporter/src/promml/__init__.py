"""promml: Prometheus-native monitoring for ML models.

The package shows its two processes: `promml.instrumentation` runs inside the model process (the decorator, its
metrics, the prediction log writer), `promml.exporter` is the sidecar that reads those logs; both build on
`promml.records` (the log format), `promml.baseline` (the training reference) and `promml.stats` (pure statistics).

`@promml.monitor(...)` instruments a predict function; `promml.record_feedback(...)` records ground truth;
`promml exporter` turns the logs into drift and accuracy metrics.
"""

from ._version import __version__
from .instrumentation.estimator import monitor_estimator
from .instrumentation.exposition import child_exit
from .instrumentation.feedback import FeedbackError, record_feedback
from .instrumentation.monitor import monitor
from .instrumentation.prediction_ids import last_prediction_ids

__all__ = [
    "FeedbackError", "__version__", "child_exit", "last_prediction_ids", "monitor", "monitor_estimator",
    "record_feedback",
]
