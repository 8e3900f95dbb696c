"""The marketing CLI end to end on a DuckDB file (in-app channel: no servers needed)."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from limelight.cli import app
from limelight.store import open_store

from .conftest import make_shop

runner = CliRunner()


@pytest.fixture
def store_url(tmp_path, monkeypatch):
    monkeypatch.setenv("LIMELIGHT_ARTIFACTS_DIR", str(tmp_path / "artifacts"))
    url = f"duckdb:///{tmp_path / 'shop.duckdb'}"
    store = open_store(url)
    for name, frame in zip(("users", "contacts", "items", "events"), make_shop(), strict=True):
        store.write(name, frame)
    store.close()
    return url


def run(*args: str):
    return runner.invoke(app, list(args))


def test_campaign_commands(store_url, tmp_path) -> None:
    r = run("audience", "build", "--where", "country=UK", "--channel", "email",
            "--store", store_url, "--json")
    assert r.exit_code == 0, r.output
    aud = json.loads(r.stdout)
    assert aud["matched"] == 30 and aud["removed"]["no_consent"] == 10
    spec = {"name": "cli", "channel": "inapp", "audience": {"rule": {
        "feature": "country", "op": "==", "value": "FR"}}, "holdout": 0.2,
        "schedule": {"quiet_hours": None}, "offer": {"offer_id": "o", "kind": "amount",
                                                     "value": 5}}
    r = run("campaign", "create", "--spec", json.dumps(spec), "--store", store_url, "--json")
    assert r.exit_code == 0, r.output
    cid = json.loads(r.stdout)["campaign_id"]
    r = run("campaign", "preview", cid, "--store", store_url, "--json")
    assert r.exit_code == 0 and "PREVIEW" in json.loads(r.stdout)[0]["text"]
    r = run("campaign", "launch", cid, "--store", store_url, "--json")
    assert r.exit_code == 0, r.output
    launch = json.loads(r.stdout)
    assert launch["status"] == "completed" and launch["dispatch"]["sent"] > 0
    png = tmp_path / "r.png"
    r = run("campaign", "report", cid, "--store", store_url, "--plot", str(png), "--json")
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["funnel"]["delivered"] == launch["dispatch"]["sent"]
    assert png.exists()
    r = run("campaign", "list", "--store", store_url, "--json")
    assert json.loads(r.stdout)[0]["status"] == "completed"


def test_user_mistakes_exit_2(store_url) -> None:
    assert run("campaign", "report", "nope", "--store", store_url).exit_code == 2
    assert run("campaign", "create", "--spec", "{bad", "--store", store_url).exit_code == 2
    assert run("campaign", "create", "--spec", '{"name": "x", "channel": "fax"}',
               "--store", store_url).exit_code == 2
    assert run("audience", "build", "--where", "nosuchcol=1", "--store",
               store_url).exit_code == 2
    assert run("experiment", "size", "--baseline", "1.5", "--mde", "0.1").exit_code == 2
    r = run("experiment", "size", "--baseline", "0.1", "--mde", "0.01", "--json")
    assert json.loads(r.stdout)["n_per_arm"] == 14751
    assert "Example" in run("campaign", "launch", "--help").stdout


def test_experiment_and_suppression_commands(store_url) -> None:
    r = run("experiment", "create", "ranker", "--variants", '{"als": 1, "ease": 1}',
            "--params", '{"ease": {"model": "ease"}}', "--store", store_url)
    assert r.exit_code == 0, r.output
    assert run("experiment", "create", "ranker", "--variants", '{"a": 1}',
               "--store", store_url).exit_code == 2
    assert json.loads(run("experiment", "list", "--store", store_url, "--json").stdout)[0][
        "name"] == "ranker"
    assert run("experiment", "report", "ranker", "--store", store_url).exit_code == 2  # none
    assert run("audience", "suppress", "u0", "u2", "--store", store_url).exit_code == 0
    r = run("audience", "build", "--store", store_url, "--channel", "inapp", "--json")
    assert json.loads(r.stdout)["removed"]["suppressed"] == 2


def test_bandit_command() -> None:
    r = run("experiment", "bandit", "--rates", '{"a": 0.02, "b": 0.10}', "--horizon", "1500",
            "--json")
    assert r.exit_code == 0, r.output
    out = json.loads(r.stdout)
    assert out["runs"]["thompson"]["best_arm"] == "b"
    assert out["runs"]["thompson"]["regret"] < out["uniform_regret"]
    assert run("experiment", "bandit", "--rates", '{"a": 2}').exit_code == 2
