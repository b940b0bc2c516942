"""`pip install promml` is the decorator alone: its import path needs prometheus-client, numpy and msgspec (the
prediction log's encoder), nothing more.

The exporter, the baseline builder and the demo live behind extras (`promml[exporter]`, `promml[demo]`,
`promml[backtest]`); `dev` holds them all, since `make install` uses it.
"""

from __future__ import annotations

import json
import subprocess
import sys

import tomllib
from conftest import REPO_ROOT

OPTIONAL = ("scipy", "flask", "werkzeug", "waitress", "sklearn", "yaml", "matplotlib", "pandas")


def test_the_decorator_path_imports_no_optional_dependency(tmp_path):
    code = (
        "import json, sys\n"
        "import promml\n"
        f"@promml.monitor(model_name='m', model_version='1', log_dir={str(tmp_path)!r})\n"
        "def predict(rows):\n"
        "    return [{'prediction': 1, 'score': 0.5} for _ in rows]\n"
        "predict([{'x': float('nan')}])\n"
        "promml.record_feedback(promml.last_prediction_ids()[0], 1, log_dir=" + repr(str(tmp_path)) + ")\n"
        f"print(json.dumps(sorted({{name.partition('.')[0] for name in sys.modules}} & set({OPTIONAL!r}))))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    assert json.loads(result.stdout) == []


def test_base_dependencies_and_extras():
    project = tomllib.loads((REPO_ROOT / "exporter" / "pyproject.toml").read_text())["project"]
    names = {extra: {requirement.split(">")[0].split("=")[0].split("<")[0] for requirement in requirements}
             for extra, requirements in project["optional-dependencies"].items()}
    base = {requirement.split(">")[0] for requirement in project["dependencies"]}
    assert base == {"prometheus-client", "numpy", "msgspec"}
    assert names["exporter"] == {"flask", "waitress", "scipy", "pyyaml", "scikit-learn"}
    assert names["demo"] == names["exporter"] | {"markdown"}  # markdown: the receiver's runbooks
    assert names["backtest"] == names["exporter"] | {"matplotlib"}
    assert names["dev"] >= names["exporter"] | names["demo"] | names["backtest"]
