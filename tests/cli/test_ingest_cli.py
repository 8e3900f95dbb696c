"""`limelight ingest | stats | quarantine` through the real CLI app."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from limelight.cli import app

runner = CliRunner()


def _ok(result) -> object:
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def _store(tmp_path) -> str:
    return f"duckdb:///{tmp_path / 'cli.duckdb'}"


def test_ingest_stats_and_quarantine(tmp_path):
    url = _store(tmp_path)
    src = tmp_path / "orders.csv"
    src.write_text("customer,sku,when,price\nc1,s1,2024-01-01T10:00:00Z,9.5\n"
                   "c2,s1,2024-01-02T10:00:00Z,9.5\nc2,s2,not a date,1\n,s3,2024-01-03,1\n")
    args = ["ingest", str(src), "--map", "customer=user_id", "--map", "sku=item_id",
            "--map", "when=timestamp", "--map", "price=value", "--const", "type=purchase",
            "--store", url, "--json"]
    report = _ok(runner.invoke(app, args))["events"]
    assert (report["read"], report["accepted"], report["rejected"]) == (4, 2, 2)
    assert report["reasons"] == {"bad_timestamp": 1, "missing_user_id": 1}
    again = _ok(runner.invoke(app, args))["events"]
    assert (again["accepted"], again["duplicates"]) == (0, 2)

    stats = _ok(runner.invoke(app, ["stats", "--store", url, "--json"]))
    assert stats["counts"]["events"] == 2 and stats["events_per_type"] == {"purchase": 2}
    assert stats["top_items"][0] == {"item_id": "s1", "title": None, "events": 2, "users": 2}
    assert stats["first_event"] == "2024-01-01T10:00:00Z"
    assert 0 <= stats["sparsity"] < 1

    listed = _ok(runner.invoke(app, ["quarantine", "list", "--store", url, "--json"]))
    assert listed["total"] == 2 and listed["by_reason"]["bad_timestamp"] == 1
    row_id = listed["rows"][0]["id"]
    shown = _ok(runner.invoke(app, ["quarantine", "show", str(row_id), "--store", url,
                                    "--json"]))
    assert shown["id"] == row_id and shown["line_no"] in (4, 5) and shown["raw"]
    out = tmp_path / "rejected.jsonl"
    _ok(runner.invoke(app, ["quarantine", "export", str(out), "--store", url, "--json"]))
    assert len(out.read_text().splitlines()) == 2

    human = runner.invoke(app, ["stats", "--store", url])
    assert human.exit_code == 0 and "purchase" in human.stdout


def test_ingest_a_folder_of_entity_files(tmp_path):
    folder = tmp_path / "world"
    folder.mkdir()
    (folder / "users.csv").write_text("user_id,age\nu1,30\n")
    (folder / "items.csv").write_text("item_id,title\ni1,Lamp\n")
    (folder / "events.csv").write_text("user_id,item_id,type,timestamp\nu1,i1,view,2024-01-01\n")
    reports = _ok(runner.invoke(app, ["ingest", str(folder), "--store", _store(tmp_path),
                                      "--json"]))
    assert {k: v["accepted"] for k, v in reports.items()} == {"users": 1, "items": 1,
                                                              "events": 1}


def test_user_mistakes_exit_2_with_one_line(tmp_path):
    url = _store(tmp_path)
    cases = [
        ["ingest", str(tmp_path / "absent.csv"), "--store", url],
        ["ingest", str(tmp_path), "--dataset", "nope", "--store", url],
        ["ingest", str(tmp_path), "--entity", "widgets", "--store", url],
        ["quarantine", "show", "999", "--store", url],
        ["quarantine", "export", str(tmp_path / "x.xlsx"), "--store", url],
    ]
    bad_map = tmp_path / "e.csv"
    bad_map.write_text("a,b\n1,2\n")
    cases.append(["ingest", str(bad_map), "--store", url])  # lacks user_id etc.
    cases.append(["ingest", str(bad_map), "--map", "a", "--store", url])
    for args in cases:
        result = runner.invoke(app, args)
        assert result.exit_code == 2, (args, result.output)
        assert "Traceback" not in result.output
        assert result.stderr.count("error:") == 1, result.stderr


def test_help_has_examples():
    for cmd in (["ingest"], ["stats"], ["quarantine"], ["quarantine", "list"],
                ["quarantine", "export"]):
        result = runner.invoke(app, [*cmd, "--help"])
        assert result.exit_code == 0 and "Example" in result.stdout, cmd
