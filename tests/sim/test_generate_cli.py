"""``limelight generate`` from the command line."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
from typer.testing import CliRunner

from limelight.cli import app


def _limelight(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "COLUMNS": "200"}  # rich wraps errors at the terminal's width
    return subprocess.run([sys.executable, "-c", "from limelight.cli import main; main()",
                           *args], capture_output=True, text=True, cwd=cwd, timeout=120, env=env)


def test_generate_json(tmp_path: Path) -> None:
    out = tmp_path / "world"
    run = _limelight("generate", "--size", "tiny", "--seed", "2", "--out", str(out), "--json",
                     cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    manifest = json.loads(run.stdout)
    assert manifest["counts"]["users"] == 300
    events = pd.read_parquet(out / "events.parquet")
    assert len(events) == manifest["counts"]["events"]
    assert (out / "truth" / "users.parquet").is_file()
    assert json.loads((out / "manifest.json").read_text())["seed"] == 2


def test_generate_table_output_and_csv(tmp_path: Path) -> None:
    run = _limelight("generate", "--size", "1500", "--out", "w", "--format", "csv",
                     cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    assert "events" in run.stdout and (tmp_path / "w" / "events.csv").is_file()


def test_user_mistakes_are_one_line_errors(tmp_path: Path) -> None:
    run = _limelight("generate", "--out", str(tmp_path / "x"), "--size", "enormous",
                     cwd=tmp_path)
    assert run.returncode == 2 and "Traceback" not in run.stderr
    assert run.stderr.strip().splitlines() == [
        "error: unknown size 'enormous': use tiny, small, medium, large or a number of events"]
    runner = CliRunner()
    for args in (["--format", "xml"], ["--seed", "-1"]):
        result = runner.invoke(app, ["generate", "--out", str(tmp_path / "x"), *args])
        assert result.exit_code == 2, (args, result.output)
    assert not (tmp_path / "x").exists()
    assert "Example" in runner.invoke(app, ["generate", "--help"]).output
