"""Serve a Flask app until SIGTERM or SIGINT: the one way every promml process serves HTTP."""

from __future__ import annotations

import signal
import threading
from typing import Any

from flask import Flask
from werkzeug.serving import make_server


def serve(app: Flask, host: str, port: int, banner: str) -> None:
    """Serve on a threaded werkzeug server; the banner (with the bound port filled in as {port}) goes to stdout."""
    server = make_server(host, port, app, threaded=True)

    def shut_down(_signum: int, _frame: Any) -> None:
        threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, shut_down)
    signal.signal(signal.SIGINT, shut_down)
    print(banner.format(port=server.server_port), flush=True)
    server.serve_forever()
