"""`promml simulate` on the command line: what it writes, what it says, and its errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from promml.cli import main


def test_simulate_writes_the_run_and_says_what_it_wrote(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "run"
    code = main(["simulate", "--scenario", "traffic-outage", "--hours", "0.25", "--rps", "2", "--seed", "5",
                 "--out", str(out), "--start", "2026-03-02T10:00:00+00:00", "--quiet"])
    assert code == 0
    printed = capsys.readouterr()
    assert printed.out.startswith(f"wrote {out}: ")
    assert "of scenario 'traffic-outage' from 2026-03-02T10:00:00Z to 2026-03-02T10:15:00Z" in printed.out
    assert "note: event 'model-server-down' starts at 12h, after the run's 0.25h: left out" in printed.err
    document = json.loads((out / "scenario.json").read_text())
    assert (document["seed"], document["rps"], document["events"]) == (5, 2.0, [])
    assert sorted(path.name for path in (out / "logs").iterdir()) == ["feedback.jsonl", "predictions.jsonl"]


def test_list_shows_every_shipped_scenario(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["simulate", "--list"]) == 0
    names = [line.split()[0] for line in capsys.readouterr().out.splitlines()]
    assert {"stationary", "sudden-shift", "seasonal"} <= set(names)


@pytest.mark.parametrize(("args", "message"), [
    (["--scenario", "nope"], "promml simulate: unknown scenario 'nope'"),
    (["--scenario", "stationary", "--hours", "-1"], "promml simulate: --hours: expected a positive number of hours"),
    (["--scenario", "stationary", "--start", "2026-01-05 00:00"], "--start: '2026-01-05 00:00' has no UTC offset"),
    (["--scenario", "stationary", "--rps", "0"], "--rps: expected a positive number of predictions per second"),
    (["--scenario", "stationary", "--replicas", "0"], "--replicas: expected 1 to 64, got 0"),
    (["--scenario", "stationary", "--reference-csv", "/nowhere.csv"], "model.reference_csv /nowhere.csv: No such"),
])
def test_bad_input_is_a_clear_error_and_exit_code_2(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                   args: list[str], message: str) -> None:
    assert main(["simulate", *args, "--out", str(tmp_path / "x"), "--quiet"]) == 2
    assert message in capsys.readouterr().err


def test_scenario_and_out_are_required(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["simulate", "--scenario", "stationary"]) == 2
    assert "--out required" in capsys.readouterr().err
