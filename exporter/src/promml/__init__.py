"""promml: Prometheus-native monitoring for ML models.

`@promml.monitor(...)` instruments a predict function; `promml.record_feedback(...)` records ground truth;
`promml exporter` turns the logs into drift and accuracy metrics.
"""

from ._version import __version__
from .estimator import monitor_estimator
from .feedback import FeedbackError, record_feedback
from .instrument import monitor
from .prediction_ids import last_prediction_ids

__all__ = ["FeedbackError", "__version__", "last_prediction_ids", "monitor", "monitor_estimator", "record_feedback"]
