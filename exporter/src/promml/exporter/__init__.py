"""The sidecar exporter: follows the prediction and feedback logs and serves drift and accuracy to Prometheus."""
