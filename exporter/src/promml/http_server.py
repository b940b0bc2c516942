"""Serve a Flask app until SIGTERM or SIGINT: the one way every promml process serves HTTP.

The server is waitress, a production WSGI server that runs in the process itself (the exporter's work loop is a
thread next to it, so a forking server would not do). Its I/O loop reads each request whole before a worker
thread sees it, so a slow or half-sent request holds a connection, never a worker: the bounded worker pool stays
free for `/metrics` and `/healthz`. The limits below are the whole defence, in one place:

- `threads`: the worker pool; requests beyond it queue.
- `connection_limit`: open connections at once; past it, new connections wait in the kernel's backlog until some
  close. Bounds file descriptors, so a flood of idle connections cannot starve the exporter's own files.
- `channel_timeout_seconds`: a connection with no complete request and no activity for this long is closed.
- `max_body_bytes`: a larger body is answered 413 before it is read (and `create_app`s set Flask's
  `MAX_CONTENT_LENGTH` to the same, so the limit holds under any other WSGI server too).
- `max_header_bytes`: larger request headers are answered 431.

`read_json` turns a request body into JSON or a `BadJson` that says why not (a 400 with that reason).
"""

from __future__ import annotations

import json
import resource
import signal
from dataclasses import dataclass
from typing import Any, NoReturn

from flask import Flask, Request
from waitress.server import create_server


@dataclass(frozen=True)
class ServerLimits:
    """How much one promml HTTP server takes on at once; see the module docstring for what each bounds."""

    threads: int = 8
    """Enough for a scrape, a health check and a few requests in parallel; the demo model predicts in microseconds."""
    connection_limit: int = 512
    """At most; never more than half the process's open-file limit (`connection_limit_for`), so the other half
    stays for logs, checkpoints and the process's own sockets."""
    channel_timeout_seconds: int = 30
    """Longer than any scrape timeout or client pause worth waiting for; idle keep-alive connections close too."""
    max_body_bytes: int = 1024 * 1024
    """A /predict batch of the demo's 1000 rows is about 100 KiB; the exporter's own endpoints take no body."""
    max_header_bytes: int = 64 * 1024


DEFAULT_LIMITS = ServerLimits()


class BadJson(ValueError):
    """A body that cannot be read as JSON; the message says why, for the 400 answer."""

    reason = "invalid_json"


def read_json(request: Request) -> Any:
    """The request body as JSON, whatever its Content-Type; `BadJson` for a body that is not UTF-8, not JSON, or
    nested too deep for the decoder (a RecursionError, which would otherwise be a 500). A body over Flask's
    `MAX_CONTENT_LENGTH` raises werkzeug's RequestEntityTooLarge, which Flask answers 413."""
    body = request.get_data(cache=False)
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as error:
        raise BadJson(f"the request body must be UTF-8 JSON: invalid byte at offset {error.start}") from None
    if not text.strip():
        raise BadJson("the request body must be JSON, and it is empty")
    try:
        return json.loads(text)
    except RecursionError:
        raise BadJson("the request body must be JSON nested less deeply") from None
    except ValueError as error:
        raise BadJson(f"the request body must be JSON: {error}") from None


def limit_body(app: Flask, limits: ServerLimits = DEFAULT_LIMITS) -> Flask:
    """Make the app itself answer 413 to a body over the limit, whichever server runs it."""
    app.config["MAX_CONTENT_LENGTH"] = limits.max_body_bytes
    return app


def connection_limit_for(limits: ServerLimits, open_files: int | None = None) -> int:
    """The connections a server takes at once: the configured limit, or half the open-file limit (the soft
    RLIMIT_NOFILE, read when not given) when that is lower; at least 1."""
    if open_files is None:
        open_files = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    if open_files == resource.RLIM_INFINITY or open_files < 0:
        return limits.connection_limit
    return max(1, min(limits.connection_limit, open_files // 2))


def make_server(app: Flask, host: str, port: int, limits: ServerLimits = DEFAULT_LIMITS) -> Any:
    """A bound waitress server for `app` (port 0: any free port, see `.effective_port`); `.run()` serves."""
    return create_server(
        app,
        host=host,
        port=port,
        threads=limits.threads,
        connection_limit=connection_limit_for(limits),
        channel_timeout=limits.channel_timeout_seconds,
        cleanup_interval=max(1, limits.channel_timeout_seconds // 3),
        max_request_body_size=limits.max_body_bytes + 1,  # waitress refuses a body of this size or more
        max_request_header_size=limits.max_header_bytes,
        ident="promml",
        clear_untrusted_proxy_headers=True,
    )


def _stop(_signum: int, _frame: Any) -> NoReturn:
    # waitress's loop runs on the main thread, where Python delivers signals; it shuts its workers down on
    # SystemExit and returns from run().
    raise SystemExit(0)


def serve(app: Flask, host: str, port: int, banner: str, limits: ServerLimits = DEFAULT_LIMITS) -> None:
    """Serve until SIGTERM or SIGINT; the banner (with the bound port filled in as {port}) goes to stdout."""
    server = make_server(limit_body(app, limits), host, port, limits)
    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    print(banner.format(port=server.effective_port), flush=True)
    try:
        server.run()
    finally:
        server.close()
