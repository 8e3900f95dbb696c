"""`limelight evaluate | train | tune | models ...` through the real CLI app."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pyarrow as pa
import pytest
from typer.testing import CliRunner

from limelight.cli import app
from limelight.data.schema import EVENTS, derive_event_id
from limelight.store import open_store

runner = CliRunner()


@pytest.fixture
def store_url(tmp_path) -> str:
    """A DuckDB store file with a few hundred clicks of 40 users on 30 items."""
    url = f"duckdb:///{tmp_path / 'events.duckdb'}"
    store = open_store(url)
    rows = []
    for u in range(40):
        for j in range(8):
            item = (u % 3) * 10 + (u * 7 + j * 3) % 10
            ts = datetime(2024, 1, 1 + j, u % 24, tzinfo=UTC)
            us = int(ts.timestamp() * 1_000_000)
            rows.append({"event_id": derive_event_id(f"u{u}", f"i{item}", "click", us),
                         "user_id": f"u{u}", "item_id": f"i{item}", "type": "click",
                         "timestamp": ts})
    table = pa.Table.from_pylist(rows, schema=EVENTS)
    assert store.write("events", table) == len(rows)
    store.close()
    return url


def _json(result) -> object:
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_train_then_list_activate_rollback(store_url: str, tmp_path) -> None:
    art = str(tmp_path / "art")
    first = _json(runner.invoke(app, ["train", "--model", "popularity", "--store", store_url,
                                      "--artifacts", art, "--activate", "--json"]))
    assert first["version"] == "v0001" and first["active"] and first["users"] == 40
    second = _json(runner.invoke(app, ["train", "--model", "item_knn", "--store", store_url,
                                       "--params", '{"n_neighbors": 5}', "--artifacts", art,
                                       "--json"]))
    assert second["version"] == "v0002" and not second["active"]
    assert second["params"]["n_neighbors"] == 5
    listed = _json(runner.invoke(app, ["models", "list", "--artifacts", art, "--json"]))
    assert [(v["version"], v["name"], v["active"]) for v in listed] == [
        ("v0001", "popularity", True), ("v0002", "item_knn", False)]
    assert listed[1]["dataset_fingerprint"] == listed[0]["dataset_fingerprint"]
    assert _json(runner.invoke(app, ["models", "activate", "v0002", "--artifacts", art,
                                     "--json"])) == {"active": "v0002"}
    assert _json(runner.invoke(app, ["models", "rollback", "--artifacts", art, "--json"])) == {
        "active": "v0001"}
    table = runner.invoke(app, ["models", "list", "--artifacts", art])
    assert table.exit_code == 0 and "item_knn" in table.stdout


def test_user_mistakes_exit_2_with_one_line(store_url: str, tmp_path) -> None:
    art = str(tmp_path / "art")
    cases = [
        ["train", "--model", "nope", "--store", store_url, "--artifacts", art],
        ["train", "--model", "ease", "--params", "{bad", "--store", store_url],
        ["train", "--model", "ease", "--params", '{"nonsense": 1}', "--store", store_url,
         "--artifacts", art],
        ["models", "activate", "v0042", "--artifacts", art],
        ["models", "rollback", "--artifacts", art],
        ["evaluate", "--protocol", "sideways", "--models", "popularity"],
        ["evaluate", "--dataset", "ml-100k", "--data-dir", str(tmp_path)],
    ]
    for args in cases:
        result = runner.invoke(app, args)
        assert result.exit_code == 2, (args, result.output)
        assert "error:" in result.output and "Traceback" not in result.output


def test_evaluate_on_the_sample_world(tmp_path) -> None:
    out = tmp_path / "lb"
    payload = _json(runner.invoke(app, ["evaluate", "--dataset", "sample", "--size", "tiny",
                                        "--models", "popularity,item_knn", "--out", str(out),
                                        "--json"]))
    assert payload["protocol"] == "ranking"
    assert {r["model"] for r in payload["results"]} == {"popularity", "item_knn"}
    assert all("ndcg@10" in r["metrics"] for r in payload["results"])
    assert (out / "sample-ranking.json").is_file()
    assert (out / "sample-ranking.png").read_bytes()[:4] == b"\x89PNG"


def test_tune_reports_best_params(store_url: str) -> None:
    payload = _json(runner.invoke(app, ["tune", "--model", "item_knn", "--store", store_url,
                                        "--budget", "20", "--n-trials", "3", "--json"]))
    assert payload["n_trials"] == 3 and "n_neighbors" in payload["best_params"]
    assert payload["best_value"] >= payload["default_value"]


def test_help_has_examples() -> None:
    for command in (["evaluate"], ["train"], ["tune"], ["models", "list"]):
        result = runner.invoke(app, [*command, "--help"])
        assert result.exit_code == 0 and "Example" in result.stdout
