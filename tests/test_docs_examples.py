"""Every Python example in the user docs runs as written."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import REPO_ROOT

DOCS = ["docs/instrumentation.md"]
BLOCK = re.compile(r"```python\n(.*?)```", re.DOTALL)


def examples() -> list[tuple[str, str]]:
    found = []
    for doc in DOCS:
        for index, code in enumerate(BLOCK.findall((REPO_ROOT / doc).read_text())):
            found.append((f"{doc}#{index}", code))
    return found


@pytest.mark.parametrize(("where", "code"), examples(), ids=[where for where, _ in examples()])
def test_example_runs(where: str, code: str, tmp_path: Path) -> None:
    # Each example runs in a fresh interpreter, so the default registry starts empty as in a user's program.
    result = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, f"{where} failed:\n{code}\n{result.stderr}"
