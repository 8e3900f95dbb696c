"""`limelight serve` as a user runs it: a subprocess on a free loopback port."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import httpx
import pytest


@pytest.mark.slow
def test_limelight_serve_process(world, tmp_path) -> None:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    limelight = Path(sys.executable).with_name("limelight")
    # the session store is a DuckDB file held open by this process: serve a copy
    store_copy = tmp_path / "copy.duckdb"
    world.store.execute(f"EXPORT DATABASE '{tmp_path / 'export'}' (FORMAT parquet)")
    env = {**os.environ, "LIMELIGHT_STORE_URL": f"duckdb:///{store_copy}"}
    import duckdb

    con = duckdb.connect(str(store_copy))
    con.execute(f"IMPORT DATABASE '{tmp_path / 'export'}'")
    con.close()
    proc = subprocess.Popen([str(limelight), "serve", "--port", str(port), "--artifacts",
                             str(world.artifacts_dir), "--json"], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line = proc.stdout.readline()
        assert line, proc.stderr.read()
        url = json.loads(line)["url"]
        assert url == f"http://127.0.0.1:{port}"
        health = httpx.get(f"{url}/health", timeout=10).json()
        assert health["status"] == "ok" and health["model_version"] is not None
        user = world.active_users[0]
        body = httpx.get(f"{url}/users/{user}/recommendations", params={"n": 3},
                         timeout=10).json()
        assert len(body["items"]) == 3
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def test_serve_rejects_a_bad_store_url() -> None:
    from typer.testing import CliRunner

    from limelight.cli import app

    result = CliRunner().invoke(app, ["serve", "--store", "nosuch://x", "--port", "1"])
    assert result.exit_code == 2
    assert "unsupported store URL" in result.output
