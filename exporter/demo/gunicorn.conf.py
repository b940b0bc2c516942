# gunicorn settings for serving an instrumented model with several workers. Each worker counts into
# $PROMETHEUS_MULTIPROC_DIR (which must exist and be empty at start) and writes its own prediction log
# (predictions-<pid>.jsonl); /metrics merges the workers' counts. Run for example:
#   mkdir -p /tmp/promml-mp /tmp/promml-logs
#   PROMETHEUS_MULTIPROC_DIR=/tmp/promml-mp gunicorn -c exporter/demo/gunicorn.conf.py \
#       'promml.demo.server:create_app(log_dir="/tmp/promml-logs")'
# gunicorn's sync workers read each request on the worker itself, so a slow client holds a worker: serve behind a
# proxy that buffers requests (nginx), or use `promml demo-server` (waitress, promml/http_server.py) for one
# process. The app answers 413 to a body over promml's limit under gunicorn too (Flask's MAX_CONTENT_LENGTH).
from promml.instrumentation.exposition import child_exit  # noqa: F401 - gunicorn reads the hook by name

workers = 2
bind = "127.0.0.1:8000"
timeout = 30  # a worker stuck on one request this long is restarted
