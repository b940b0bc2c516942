"""The HTTP server every promml process uses, tried on loopback the way a hostile or unlucky client would.

The servers run in child processes (as in production: signals, threads and file descriptors are the process's
own): `promml exporter` and `promml demo-receiver` through the CLI, and a small app through `serve` directly
where a test needs other limits. Every wait is bounded.
"""

from __future__ import annotations

import json
import os
import resource
import signal
import socket
import subprocess
import sys
import textwrap
import urllib.request
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

import pytest
import yaml
from conftest import wait_for
from flask import Flask

from promml.baseline import build_baseline, save_baseline
from promml.demo.stack import free_port
from promml.http_server import DEFAULT_LIMITS, BadJson, ServerLimits, connection_limit_for, limit_body, read_json

HALF_SENT_REQUESTS = 200


@contextmanager
def running(command: list[str], port: int, log: Path) -> Iterator[subprocess.Popen[bytes]]:
    """A server process, once it answers /healthz; stopped with SIGTERM (and checked to exit 0) afterwards."""
    with open(log, "ab") as output:
        process = subprocess.Popen(command, stdout=output, stderr=subprocess.STDOUT)
    try:
        wait_for(f"{command} to answer", lambda: get(port, "/healthz", timeout=1) == 200 or process.poll() is not None)
        assert process.poll() is None, log.read_text()
        yield process
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
                raise AssertionError("the server did not stop on SIGTERM within 15 s") from None
    assert process.returncode == 0, log.read_text()


def get(port: int, path: str, timeout: float = 5) -> int | None:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=timeout) as response:
            response.read()
            return response.status
    except OSError:
        return None


def half_sent(port: int, count: int, stack: ExitStack) -> None:
    """`count` connections, each with a request whose headers are complete but whose body never comes."""
    for _ in range(count):
        sock = stack.enter_context(socket.create_connection(("127.0.0.1", port), timeout=5))
        sock.sendall(b"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n{\"age\": ")


def raw_response(port: int, request: bytes) -> bytes:
    """What the server answers to `request`, sent as it is (the body may be shorter than it claims)."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(request)
        answer = b""
        while b"\r\n\r\n" not in answer:
            chunk = sock.recv(65536)
            if not chunk:
                break
            answer += chunk
        return answer


def status_of(answer: bytes) -> int:
    return int(answer.split(b" ", 2)[1])


def thread_count(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/task"))


@pytest.fixture
def exporter(tmp_path: Path) -> Iterator[tuple[subprocess.Popen[bytes], int]]:
    save_baseline(build_baseline({"x": [float(i) for i in range(100)]}), tmp_path / "baseline.json")
    (tmp_path / "logs").mkdir()
    port = free_port()
    config = {
        "model_name": "m", "model_version": "1", "baseline": "baseline.json",
        "prediction_logs": "logs/predictions*.jsonl", "listen": f"127.0.0.1:{port}",
        "recompute_interval_seconds": 0.2, "poll_interval_seconds": 0.05,
    }
    (tmp_path / "exporter.yml").write_text(yaml.safe_dump(config))
    command = [sys.executable, "-m", "promml.cli", "exporter", "--config", str(tmp_path / "exporter.yml")]
    with running(command, port, tmp_path / "exporter.log") as process:
        yield process, port


def test_half_sent_requests_do_not_stop_the_exporter_answering(exporter) -> None:
    process, port = exporter
    threads_before = thread_count(process.pid)
    with ExitStack() as stack:
        half_sent(port, HALF_SENT_REQUESTS, stack)
        assert get(port, "/metrics") == 200
        assert get(port, "/healthz") == 200
        # a slow client holds a connection, never a worker thread: the pool is as large as before
        assert thread_count(process.pid) == threads_before


def test_exporter_answers_413_to_a_body_over_the_limit(exporter) -> None:
    _, port = exporter
    fifty_mb = 50 * 1024 * 1024
    answer = raw_response(port, b"GET /metrics HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % fifty_mb
                          + b"x" * 65536)
    assert status_of(answer) == 413
    assert get(port, "/metrics") == 200


def test_receiver_answers_413_and_400_and_stays_up(tmp_path: Path) -> None:
    port = free_port()
    command = [sys.executable, "-m", "promml.cli", "demo-receiver", "--port", str(port)]
    with running(command, port, tmp_path / "receiver.log"):
        fifty_mb = 50 * 1024 * 1024
        request = b"POST /slack/demo HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        assert status_of(raw_response(port, request + b"Content-Length: %d\r\n\r\n" % fifty_mb + b"[" * 65536)) == 413
        deep = b"[" * 100_000 + b"]" * 100_000
        answer = raw_response(port, request + b"Content-Length: %d\r\nConnection: close\r\n\r\n" % len(deep) + deep)
        assert status_of(answer) == 400
        assert get(port, "/healthz") == 200


SMALL_LIMITS_SERVER = textwrap.dedent("""
    import sys
    from flask import Flask
    from promml.http_server import ServerLimits, serve

    app = Flask("t")
    app.get("/healthz")(lambda: "ok")
    serve(app, "127.0.0.1", int(sys.argv[1]), "on {port}",
          ServerLimits(threads=2, connection_limit=20, channel_timeout_seconds=1, max_body_bytes=100))
""")


def test_idle_connections_are_closed_after_the_channel_timeout(tmp_path: Path) -> None:
    port = free_port()
    command = [sys.executable, "-c", SMALL_LIMITS_SERVER, str(port)]
    with running(command, port, tmp_path / "server.log"), ExitStack() as stack:
        # more half-sent requests than the connection limit: the server closes them as they time out, so a new
        # client is answered within a few timeouts instead of never
        sockets = []
        for _ in range(30):
            sock = stack.enter_context(socket.create_connection(("127.0.0.1", port), timeout=10))
            sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
            sockets.append(sock)
        assert get(port, "/healthz", timeout=10) == 200
        assert sockets[0].recv(100) == b""  # closed by the server, with nothing sent


def test_small_body_limit_is_413_and_one_under_is_read(tmp_path: Path) -> None:
    port = free_port()
    command = [sys.executable, "-c", SMALL_LIMITS_SERVER, str(port)]
    with running(command, port, tmp_path / "server.log"):
        request = b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: %d\r\n\r\n"
        assert status_of(raw_response(port, request % 101 + b"x" * 101)) == 413
        assert status_of(raw_response(port, request % 100 + b"x" * 100)) == 200


# --- read_json, limit_body -------------------------------------------------------------------------------------


def json_app() -> Flask:
    app = limit_body(Flask("t"))

    @app.post("/")
    def echo() -> object:
        try:
            return {"body": read_json(__import__("flask").request)}
        except BadJson as error:
            return {"reason": error.reason, "error": str(error)}, 400

    return app


@pytest.mark.parametrize(("body", "status", "answer"), [
    (b'{"a": [1, 2]}', 200, {"body": {"a": [1, 2]}}),
    (b"null", 200, {"body": None}),
    (b"", 400, {"reason": "invalid_json", "error": "the request body must be JSON, and it is empty"}),
    (b"  \n", 400, {"reason": "invalid_json", "error": "the request body must be JSON, and it is empty"}),
    (b"{", 400, {"reason": "invalid_json",
                 "error": "the request body must be JSON: Expecting property name enclosed in double quotes: "
                          "line 1 column 2 (char 1)"}),
    (b'"\xc3"', 400, {"reason": "invalid_json",
                      "error": "the request body must be UTF-8 JSON: invalid byte at offset 1"}),
    (b"[" * 50_000 + b"]" * 50_000, 400, {"reason": "invalid_json",
                                          "error": "the request body must be JSON nested less deeply"}),
    (b'{"a": ' * 20_000 + b"1" + b"}" * 20_000, 400, {"reason": "invalid_json",
                                                      "error": "the request body must be JSON nested less deeply"}),
])
def test_read_json(body: bytes, status: int, answer: dict) -> None:
    response = json_app().test_client().post("/", data=body)
    assert (response.status_code, response.get_json()) == (status, answer)


def test_limit_body_is_the_servers_limit() -> None:
    client = json_app().test_client()
    assert client.post("/", data=b" " * (DEFAULT_LIMITS.max_body_bytes + 1)).status_code == 413
    body = json.dumps("x" * (DEFAULT_LIMITS.max_body_bytes - 2)).encode()
    assert len(body) == DEFAULT_LIMITS.max_body_bytes
    assert client.post("/", data=body).get_json() == {"body": "x" * (DEFAULT_LIMITS.max_body_bytes - 2)}


@pytest.mark.parametrize(("open_files", "expected"), [
    (1024, 512), (4096, 512), (256, 128), (3, 1), (1, 1), (resource.RLIM_INFINITY, 512),
])
def test_connections_take_at_most_half_the_open_file_limit(open_files: int, expected: int) -> None:
    assert connection_limit_for(DEFAULT_LIMITS, open_files) == expected
    assert connection_limit_for(ServerLimits(connection_limit=20), open_files) == min(20, expected)
