"""The `promml` command: every subcommand is listed, errors exit non-zero, and only the chosen module is imported."""

from __future__ import annotations

import csv
import json
import subprocess
import sys

import pytest

from promml.cli import COMMANDS, build_parser, main

SHARED_LIBRARIES = {"promml.baseline.builder", "promml.demo.training_data"}
"""Command modules that other commands legitimately build on (the exporter loads baselines through the package;
the demo writes its training data)."""


def promml(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "promml.cli", *args], capture_output=True, text=True, timeout=30)


def test_help_lists_every_command():
    result = promml("--help")
    assert result.returncode == 0
    words = " ".join(result.stdout.split())  # argparse wraps long help lines
    for name, (_, help_text) in COMMANDS.items():
        assert f"{name} {help_text}" in words
    assert set(COMMANDS) == {
        "baseline", "exporter", "backtest", "simulate", "demo", "demo-data", "demo-server", "demo-traffic",
        "demo-receiver",
    }


def test_unknown_command_exits_non_zero():
    result = promml("nope")
    assert result.returncode == 2
    assert "invalid choice: 'nope'" in result.stderr


def test_missing_command_exits_non_zero():
    result = promml()
    assert result.returncode == 2
    assert "the following arguments are required: COMMAND" in result.stderr


def imported_after_parsing(argv: list[str]) -> dict:
    """Which command modules a fresh interpreter has imported after building the parser, with scikit-learn made
    unimportable (as if it were not installed), and the import error building the parser raised, if any."""
    code = (
        "import json, sys\n"
        "class NoScikitLearn:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name.partition('.')[0] == 'sklearn':\n"
        "            raise ModuleNotFoundError('No module named sklearn')\n"
        "sys.meta_path.insert(0, NoScikitLearn())\n"
        "from promml import cli\n"
        "try:\n"
        f"    cli.build_parser({argv!r})\n"
        "    error = None\n"
        "except ImportError as exc:\n"
        "    error = str(exc)\n"
        "modules = sorted(module for module, _ in cli.COMMANDS.values() if module in sys.modules)\n"
        "print(json.dumps({'commands': modules, 'error': error}))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=30, check=True)
    return json.loads(result.stdout)


def test_help_imports_no_command_module():
    assert imported_after_parsing(["--help"]) == {"commands": [], "error": None}


@pytest.mark.parametrize("command", sorted(set(COMMANDS) - {"demo-server"}))
def test_only_the_chosen_command_module_is_imported(command):
    """Each command works without scikit-learn, which only the demo's model server needs."""
    module = COMMANDS[command][0]
    imported = imported_after_parsing([command, "--help"])
    assert imported["error"] is None
    assert module in imported["commands"]
    assert set(imported["commands"]) - {module} <= SHARED_LIBRARIES


def test_the_model_server_command_is_the_one_that_needs_scikit_learn():
    imported = imported_after_parsing(["demo-server", "--help"])
    assert imported["error"] == "No module named sklearn"
    assert set(imported["commands"]) <= SHARED_LIBRARIES  # promml.demo.server itself failed to import


def test_subcommand_help_shows_its_own_arguments(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["exporter", "--help"])
    assert exit_info.value.code == 0
    assert "--config CONFIG" in capsys.readouterr().out


def test_main_runs_the_chosen_command(tmp_path, capsys):
    out = tmp_path / "train.csv"
    assert main(["--log-level", "warning", "demo-data", "--out", str(out), "--rows", "7", "--seed", "1"]) == 0
    with open(out, newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 7
    assert list(rows[0]) == ["age", "income", "debt_ratio", "num_accounts", "region", "label"]
    assert capsys.readouterr().out == f"wrote 7 rows to {out}\n"


def test_main_returns_the_commands_exit_code(tmp_path, capsys):
    assert main(["baseline", "--data", str(tmp_path / "absent.csv"), "--out", str(tmp_path / "b.json")]) == 2
    assert capsys.readouterr().err.startswith("promml baseline: ")


def test_version():
    from promml import __version__

    result = promml("--version")
    assert (result.returncode, result.stdout) == (0, f"promml {__version__}\n")


@pytest.mark.parametrize(("argv", "level"), [
    (["--log-level", "error", "demo-data"], "error"), (["demo-data", "--log-level", "error"], "error"),
    (["--log-level", "debug", "demo-data", "--log-level", "error"], "error"), (["demo-data"], "INFO"),
])
def test_log_level_before_or_after_the_command(argv, level):
    assert build_parser(argv).parse_args([*argv, "--out", "t.csv"]).log_level == level


def test_a_missing_extra_is_named_with_the_install_command():
    code = (
        "import sys\n"
        "class NoFlask:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name.partition('.')[0] == 'flask':\n"
        "            raise ModuleNotFoundError(\"No module named 'flask'\", name='flask')\n"
        "sys.meta_path.insert(0, NoFlask())\n"
        "from promml import cli\n"
        "sys.exit(cli.main(['exporter', '--config', 'x.yml']))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=30)
    assert (result.returncode, result.stderr) == (2, "promml exporter: No module named 'flask'; this command needs "
                                                     "the 'exporter' extra: pip install 'promml[exporter]'\n")
