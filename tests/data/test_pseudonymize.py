"""Pseudonymization at ingest: raw user ids never reach behaviour data; contacts keep the link."""

from __future__ import annotations

import hashlib
import hmac

import pytest

from limelight.data.ingest import ingest_file, ingest_records
from limelight.errors import ConfigError
from limelight.privacy.pseudonymize import Pseudonymizer
from limelight.settings import IngestConfig, Settings

SECRET = "test-secret"


def _h(raw: str) -> str:
    return hmac.new(SECRET.encode(), raw.encode(), hashlib.sha256).hexdigest()


@pytest.fixture
def pseudo_settings() -> Settings:
    return Settings(ingest=IngestConfig(pseudonymize=True, pseudonym_secret=SECRET))


def test_requires_a_secret(store, tmp_path):
    with pytest.raises(ConfigError, match="secret"):
        Pseudonymizer("")
    path = tmp_path / "e.csv"
    path.write_text("user_id,item_id,type,timestamp\nalice,i1,view,2024-01-01\n")
    with pytest.raises(ConfigError):
        ingest_file(store, path, settings=Settings(ingest=IngestConfig(pseudonymize=True)))
    assert store.count("events") == 0


def test_raw_ids_only_in_contacts(store, tmp_path, pseudo_settings):
    events = tmp_path / "e.csv"
    events.write_text("user_id,item_id,type,timestamp\n alice ,i1,view,2024-01-01\n"
                      "bob,i2,view,2024-01-01\nbob,i2,view,1800-01-01\nbob,i2\n")
    r = ingest_file(store, events, settings=pseudo_settings)
    assert (r.accepted, r.rejected) == (2, 2)
    edges = tmp_path / "g.csv"
    edges.write_text("src_user_id,dst_user_id,kind\nalice,carol,follow\n")
    ingest_file(store, edges, "edges", settings=pseudo_settings)
    users = tmp_path / "u.csv"
    users.write_text("user_id,age\ncarol,40\n")
    ingest_file(store, users, "users", settings=pseudo_settings)

    assert set(store.read("events")["user_id"]) == {_h("alice"), _h("bob")}
    edge = store.read("edges").iloc[0]
    assert (edge["src_user_id"], edge["dst_user_id"]) == (_h("alice"), _h("carol"))
    assert store.read("users")["user_id"].tolist() == [_h("carol")]
    contacts = store.read("contacts").set_index("external_id")["user_id"].to_dict()
    assert contacts == {"alice": _h("alice"), "bob": _h("bob"), "carol": _h("carol")}

    # no raw id anywhere outside contacts, quarantine included
    for table in ("events", "users", "edges", "quarantine", "ingest_runs"):
        dump = store.read(table).astype(str).to_csv()
        for raw in ("alice", "bob", "carol"):
            assert raw not in dump, (table, raw)
    q = store.read("quarantine")
    assert q["user_id"].dropna().tolist() == [_h("bob")]


def test_same_secret_same_pseudonym_across_paths(store, pseudo_settings):
    ingest_records(store, [{"user_id": "dave", "type": "unsubscribe",
                            "timestamp": "2024-01-01T00:00:00Z"}], settings=pseudo_settings)
    assert store.read("events")["user_id"].tolist() == [_h("dave")]
    assert store.user_rows(_h("dave"))["contacts"]["external_id"].tolist() == ["dave"]
    deleted = store.delete_user(_h("dave"))
    assert deleted["events"] == 1 and deleted["contacts"] == 1
