"""The main job (`limelight demo`) and the example settings file."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from limelight.errors import ConfigError
from limelight.jobs.demo import STEPS, DemoContext, Step, run_demo
from limelight.settings import Settings

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_demo_end_to_end_on_tiny(tmp_path: Path) -> None:
    workdir = tmp_path / "demo"
    env = {**os.environ, "COLUMNS": "200"}
    run = subprocess.run(
        [sys.executable, "-c", "from limelight.cli import main; main()", "demo", "--workdir",
         str(workdir), "--size", "tiny", "--seed", "1", "--no-serve", "--json"],
        capture_output=True, text=True, timeout=300, env=env, cwd=tmp_path)
    assert run.returncode == 0, run.stderr[-3000:]
    result = json.loads(run.stdout)
    steps = result["steps"]
    assert list(steps)[:3] == ["generate", "ingest", "stats"]
    world = steps["generate"]["counts"]
    ingest = steps["ingest"]
    for entity, n in world.items():
        report = ingest[entity]
        assert report["read"] == n, entity
        assert report["accepted"] == n and report["rejected"] == 0, (entity, report)
    stats = steps["stats"]
    assert stats["counts"]["events"] == world["events"]
    assert stats["counts"]["users"] == world["users"] == 300
    assert stats["events_per_type"]["view"] >= stats["events_per_type"]["purchase"] > 0
    assert 0.0 < stats["sparsity"] < 1.0 and stats["top_items"]
    assert (workdir / "limelight.duckdb").is_file()
    assert (workdir / "world" / "truth" / "users.parquet").is_file()

    # Running again reuses the world and adds nothing to the store.
    again = run_demo(workdir, size="tiny", seed=1, serve=False, quiet=True,
                     steps=STEPS[:3])
    assert again["steps"]["generate"]["reused"] is True
    totals = again["steps"]["ingest"]["totals"]
    assert totals["accepted"] == 0 and totals["duplicates"] == totals["read"]
    assert again["steps"]["stats"]["counts"] == stats["counts"]


def test_steps_share_a_context_and_can_be_switched_off(tmp_path: Path) -> None:
    seen: list[str] = []

    def first(ctx: DemoContext) -> dict:
        seen.append("first")
        return {"value": 41, "summary": "first ran"}

    def second(ctx: DemoContext) -> dict:
        seen.append("second")
        return {"value": ctx.results["first"]["value"] + 1}

    def serving(ctx: DemoContext) -> dict:
        seen.append("serving")
        return {}

    steps = [Step("first", "one", first), Step("second", "two", second),
             Step("serving", "serve", serving, enabled=lambda ctx: ctx.serve)]
    result = run_demo(tmp_path / "w", size="tiny", serve=False, steps=steps, quiet=True)
    assert seen == ["first", "second"]
    assert result["steps"]["second"]["value"] == 42
    assert result["steps"]["first"]["seconds"] >= 0
    assert result["store_url"] == f"duckdb:///{(tmp_path / 'w' / 'limelight.duckdb').resolve()}"


def test_progress_is_shown_per_step(tmp_path: Path) -> None:
    from rich.console import Console

    console = Console(record=True, width=200)
    steps = [Step("alpha", "does alpha", lambda ctx: {"summary": "alpha done"})]
    run_demo(tmp_path, size="tiny", steps=steps, console=console)
    text = console.export_text()
    assert "[1/1] alpha: does alpha" in text and "alpha done" in text and "total" in text


def test_bad_size_fails_before_any_work(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="unknown size"):
        run_demo(tmp_path / "never", size="gigantic", quiet=True)
    assert not (tmp_path / "never").exists()


def _keys(model: type, prefix: str = "") -> list[str]:
    from pydantic import BaseModel

    out = []
    for name, field in model.model_fields.items():
        ann = field.annotation
        if isinstance(ann, type) and issubclass(ann, BaseModel):
            out += _keys(ann, f"{prefix}{name}.")
        else:
            out.append(prefix + name)
    return out


def test_example_settings_file_lists_every_key_with_its_default(monkeypatch) -> None:
    path = REPO / "limelight.example.toml"
    text = path.read_text()
    parsed = tomllib.loads(text)
    defaults = Settings().model_dump()
    for key in _keys(Settings):
        section, _, name = key.rpartition(".")
        node = parsed
        for part in filter(None, section.split(".")):
            node = node.get(part, {})
        value = defaults
        for part in key.split("."):
            value = value[part]
        if value is None:  # TOML has no null: such keys are shown commented out
            assert f"# {name} = " in text, key
        else:
            assert name in node, f"{key} is missing from limelight.example.toml"
    for var in [v for v in os.environ if v.startswith("LIMELIGHT_")]:
        monkeypatch.delenv(var)
    monkeypatch.setenv("LIMELIGHT_CONFIG", str(path))
    assert Settings().model_dump() == defaults  # the file states the defaults exactly
