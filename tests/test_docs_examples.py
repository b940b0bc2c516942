"""Every shell and Python block of README.md and docs/*.md runs as written.

The blocks of one page run in order in one temporary directory, so a page may build on its own earlier blocks
(train a model, then build its baseline, then start the exporter), as a reader following it would. A block may be
preceded by a marker comment, invisible once rendered, that says how it is run:

- `<!-- docs-test: skip REASON -->`: not run here (it needs Docker, root, a running Prometheus, or is the test
  suite itself); the reason is required.
- `<!-- docs-test: in-repo -->`: run in the repository's root (commands that read its config files).
- `<!-- docs-test: before COMMAND -->`: COMMAND (shell) runs first, to create files the block takes as given.
- `<!-- docs-test: server URL -->`: a long-running command: started in the background, the page's next blocks run
  once URL answers 200, and it is stopped at the end of the page. The port in URL is replaced, in every block of
  the page, by a free one, so a busy port on the test machine cannot break the page.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import sys
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import pytest
from conftest import REPO_ROOT, wait_for

from promml.demo.stack import free_port

DOCS = ["README.md", *sorted(str(path.relative_to(REPO_ROOT)) for path in (REPO_ROOT / "docs").glob("*.md"))]
FENCE = re.compile(r"((?:^<!-- docs-test: [^\n]*-->\n)*)^```(sh|python)\n(.*?)^```", re.DOTALL | re.MULTILINE)
MARKER = re.compile(r"<!-- docs-test: (skip|in-repo|before|server)\s*(.*?)\s*-->")
BLOCK_TIMEOUT = 120


@dataclass
class Block:
    where: str
    language: str
    code: str
    markers: dict[str, str]


def blocks(doc: str) -> list[Block]:
    text = (REPO_ROOT / doc).read_text()
    found = []
    for match in FENCE.finditer(text):
        line = text.count("\n", 0, match.start(2)) + 1
        markers = dict(MARKER.findall(match.group(1)))
        found.append(Block(f"{doc}:{line}", match.group(2), match.group(3), markers))
    return found


PAGES = [doc for doc in DOCS if blocks(doc)]


def environment() -> dict[str, str]:
    """The test's interpreter and its `promml` command first on PATH, as after `pip install`."""
    env = dict(os.environ)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env["PROMML_REPO"] = str(REPO_ROOT)  # "your clone of this repository", in docs/own-prometheus.md
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    env.pop("PROMML_LOG_DIR", None)
    return env


def command(block: Block) -> list[str]:
    if block.language == "python":
        return [sys.executable, "-c", block.code]
    return ["bash", "-euo", "pipefail", "-c", block.code]


def answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return response.status == 200
    except OSError:
        return False


def with_free_ports(page: list[Block]) -> list[Block]:
    """Every port named by a server marker, replaced by a free one in the whole page."""
    for block in page:
        url = block.markers.get("server")
        if url:
            port = re.search(r":(\d+)/", url).group(1)
            new = str(free_port())
            for each in page:
                each.code = re.sub(rf"(?<=:){port}\b", new, each.code)
                each.markers = {key: re.sub(rf"(?<=:){port}\b", new, value) for key, value in each.markers.items()}
    return page


def test_every_page_with_examples_is_tested():
    assert {"README.md", "docs/instrumentation.md", "docs/exporter.md", "docs/baseline.md",
            "docs/own-prometheus.md"} <= set(PAGES)


def test_every_skipped_block_says_why():
    for doc in PAGES:
        for block in blocks(doc):
            assert block.markers.get("skip", "x"), f"{block.where}: a skipped block must say why"


@pytest.mark.parametrize("doc", PAGES)
def test_the_page_runs_as_written(doc: str, tmp_path: Path) -> None:
    env = environment()
    servers: list[tuple[subprocess.Popen[bytes], Path]] = []
    try:
        for block in with_free_ports(blocks(doc)):
            if "skip" in block.markers:
                continue
            cwd = REPO_ROOT if "in-repo" in block.markers else tmp_path
            if "before" in block.markers:
                subprocess.run(["bash", "-euo", "pipefail", "-c", block.markers["before"]], cwd=cwd, env=env,
                               check=True, timeout=BLOCK_TIMEOUT, capture_output=True)
            if "server" in block.markers:
                output = tmp_path / f".server-{len(servers)}.log"
                with open(output, "wb") as handle:
                    server = subprocess.Popen(command(block), cwd=cwd, env=env, stdout=handle,
                                              stderr=subprocess.STDOUT, start_new_session=True)
                servers.append((server, output))
                url = block.markers["server"]
                try:
                    wait_for(f"{block.where} to answer {url}", lambda u=url, s=server: (s.poll() is None and answers(u))
                             or s.poll() is not None, timeout=60)
                except AssertionError:
                    pytest.fail(f"{block.where}: {url} did not answer:\n{output.read_text()}")
                assert server.poll() is None, f"{block.where} exited:\n{output.read_text()}"
                continue
            result = subprocess.run(command(block), cwd=cwd, env=env, capture_output=True, text=True,
                                    timeout=BLOCK_TIMEOUT)
            assert result.returncode == 0, f"{block.where} failed:\n{block.code}\n{result.stdout}\n{result.stderr}"
    finally:
        for server, _ in servers:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(server.pid, signal.SIGTERM)
            try:
                server.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(server.pid, signal.SIGKILL)
                server.wait()
