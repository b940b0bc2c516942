"""promml: Prometheus-native monitoring for ML models.

`@promml.monitor(...)` instruments a predict function; `promml.record_feedback(...)` records ground truth;
`promml exporter` turns the logs into drift and accuracy metrics.
"""

from .feedback import FeedbackError, record_feedback
from .instrument import monitor
from .prediction_ids import last_prediction_ids

__all__ = ["FeedbackError", "last_prediction_ids", "monitor", "record_feedback"]
__version__ = "0.1.0"
