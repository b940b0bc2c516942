"""What runs inside the model process: the `monitor` decorator, its Prometheus metrics and the prediction log."""
