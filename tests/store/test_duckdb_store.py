"""DuckDBEventStore / MemoryEventStore: schema, dedupe and upserts, atomicity, erasure, threads."""

from __future__ import annotations

import threading
from datetime import UTC, datetime

import pandas as pd
import pyarrow as pa
import pytest

from limelight.data import schema
from limelight.errors import SchemaError, StoreError
from limelight.store import open_store
from limelight.store.base import EventStore
from limelight.store.duckdb import MIGRATIONS, DuckDBEventStore
from limelight.store.memory import MemoryEventStore


def _events(n: int, user: str = "u1") -> pa.Table:
    ts = [datetime(2024, 1, 1, tzinfo=UTC).timestamp() + i for i in range(n)]
    return pa.table({
        "user_id": [user] * n, "item_id": [f"i{i}" for i in range(n)], "type": ["view"] * n,
        "timestamp": pa.array([int(t) for t in ts], pa.timestamp("s", tz="UTC")),
    })


@pytest.fixture
def store() -> MemoryEventStore:
    s = MemoryEventStore()
    yield s
    s.close()


def test_implements_protocol_and_migrates(store):
    assert isinstance(store, EventStore)
    assert store.schema_version == MIGRATIONS[-1][0]
    for entity, arrow_schema in schema.ENTITIES.items():
        assert store.read_arrow(entity).schema.names == arrow_schema.names


def test_open_store_dispatches_urls(tmp_path):
    assert isinstance(open_store("memory://"), MemoryEventStore)
    path = tmp_path / "x.duckdb"
    s = open_store(f"duckdb:///{path}")
    assert isinstance(s, DuckDBEventStore) and path.exists()
    s.close()


def test_events_are_deduplicated_by_derived_id(store):
    table = _events(5)
    assert store.write("events", table) == 5
    assert store.write("events", table) == 0
    assert store.write("events", pa.concat_tables([table, _events(7)])) == 2
    ids = store.read("events")["event_id"]
    assert ids.is_unique and len(ids) == 7
    row = store.read("events", where="item_id = 'i0'").iloc[0]
    us = int(datetime(2024, 1, 1, tzinfo=UTC).timestamp() * 1_000_000)
    assert row["event_id"] == schema.derive_event_id("u1", "i0", "view", us)


def test_users_upsert_only_given_columns(store):
    assert store.write("users", pa.table({"user_id": ["a", "b"], "age": [30, 40]})) == 2
    assert store.write("users", pa.table({"user_id": ["a"], "gender": ["F"]})) == 1
    users = store.read("users").set_index("user_id")
    assert users.loc["a", "age"] == 30 and users.loc["a", "gender"] == "F"
    # identical rows change nothing and count as nothing new
    assert store.write("users", pa.table({"user_id": ["a"], "gender": ["F"]})) == 0


def test_items_keep_lists(store):
    store.write("items", pa.table({"item_id": ["i1"], "categories": [["a", "b"]]}))
    assert store.read_arrow("items").column("categories").to_pylist() == [["a", "b"]]


def test_transaction_rolls_back_everything(store):
    with pytest.raises(RuntimeError), store.transaction():
        store.write("events", _events(3))
        store.quarantine(pa.table({"source": ["s"], "line_no": [1], "raw": ["x"],
                                   "reason": ["bad_value"]}))
        raise RuntimeError("boom")
    assert store.count("events") == 0 and store.count("quarantine") == 0


def test_quarantine_is_idempotent(store):
    rows = pa.table({"source": ["f.csv"], "line_no": [3], "raw": ["a,b"], "reason": ["bad_value"],
                     "entity": ["events"], "user_id": ["u1"]})
    assert store.quarantine(rows) == 1
    assert store.quarantine(rows) == 0
    assert store.read("quarantine").iloc[0]["id"] == 1


def test_user_rows_and_delete_user_reach_every_table(store):
    store.write("events", _events(3, "u1"))
    store.write("events", _events(2, "u2"))
    store.write("users", pa.table({"user_id": ["u1", "u2"]}))
    store.write("contacts", pa.table({"user_id": ["u1"], "email": ["u1@example.org"]}))
    store.write("edges", pa.table({"src_user_id": ["u1", "u2", "u3"],
                                   "dst_user_id": ["u2", "u1", "u2"], "kind": ["follow"] * 3}))
    store.quarantine(pa.table({"source": ["s"], "line_no": [1], "raw": ["r"],
                               "reason": ["bad_value"], "user_id": ["u1"]}))
    found = store.user_rows("u1")
    assert {k: len(v) for k, v in found.items()} == {
        "events": 3, "users": 1, "contacts": 1, "edges": 2, "quarantine": 1}
    assert store.delete_user("u1") == {"events": 3, "users": 1, "contacts": 1, "edges": 2,
                                       "quarantine": 1}
    assert all(len(v) == 0 for v in store.user_rows("u1").values())
    assert store.count("events") == 2 and store.count("edges") == 1


def test_unknown_entity_and_bad_sql_are_named_errors(store):
    with pytest.raises(SchemaError):
        store.read("nope")
    with pytest.raises(StoreError):
        store.sql("SELECT * FROM missing_table")


def test_execute_lets_modules_own_tables(store):
    store.execute("CREATE TABLE IF NOT EXISTS profiles (user_id VARCHAR, score DOUBLE)")
    store.execute("INSERT INTO profiles VALUES (?, ?)", ["u1", 0.5])
    assert store.sql("SELECT * FROM profiles").to_dict("records") == [
        {"user_id": "u1", "score": 0.5}]


def test_file_store_persists_and_reopens(tmp_path):
    path = tmp_path / "s.duckdb"
    with DuckDBEventStore(str(path)) as s:
        s.write("events", _events(4))
    with DuckDBEventStore(str(path)) as s:
        assert s.count("events") == 4
        assert s.schema_version == MIGRATIONS[-1][0]


def _old_store_with_events(path, monkeypatch, version: int) -> list[str]:
    """A store at schema ``version`` (< 3: events as a table of text ids) holding derived and
    given ids, written as that version wrote them; returns the stored ids."""
    import limelight.store.duckdb as duck

    monkeypatch.setattr(duck, "MIGRATIONS", MIGRATIONS[:version])
    us = int(datetime(2024, 1, 1, tzinfo=UTC).timestamp() * 1_000_000)
    ids = [schema.derive_event_id("u1", f"i{i}", "view", us + i * 1_000_000) for i in range(4)]
    ids += ["e-1001", "E0CC175B9C0F1B6A831C399E269772661"]  # given: opaque text, upper-case hex
    with DuckDBEventStore(str(path)) as s:
        assert s.schema_version == version
        for i, event_id in enumerate(ids):
            s.execute("INSERT INTO events (event_id, user_id, item_id, type, timestamp) VALUES "
                      "(?, 'u1', ?, 'view', make_timestamp(?))", [event_id, f"i{i}",
                                                                  us + i * 1_000_000])
    monkeypatch.setattr(duck, "MIGRATIONS", MIGRATIONS)
    return ids


@pytest.mark.parametrize("version", [1, 2])
def test_old_store_migrates_keeping_its_events_and_their_ids(tmp_path, monkeypatch, version):
    """Migration 3 moves events into 16-byte keys: the public ids read back unchanged, derived
    ids keep no text, and re-ingested content or a given id still dedupes against them."""
    path = tmp_path / f"v{version}.duckdb"
    ids = _old_store_with_events(path, monkeypatch, version)
    with DuckDBEventStore(str(path)) as s:
        assert s.schema_version == MIGRATIONS[-1][0]
        assert sorted(s.read("events")["event_id"]) == sorted(ids)
        assert s.read_arrow("events").schema.names == schema.ENTITIES["events"].names
        texts = s.sql("SELECT event_id FROM event_log WHERE event_id IS NOT NULL")
        assert sorted(texts["event_id"]) == sorted(ids[4:])  # derived digests: key only
        assert s.write("events", _events(6)) == 2  # i0..i3 are the migrated derived events
        given = pa.table({"event_id": [*ids[4:], "e-1002"], "user_id": ["u2"] * 3,
                          "type": ["click"] * 3,
                          "timestamp": pa.array([0, 0, 0], pa.timestamp("s", tz="UTC"))})
        assert s.write("events", given) == 1
        assert s.count("events") == len(ids) + 2 + 1


def test_sparse_attributes_are_packed_and_read_back_exactly(tmp_path, monkeypatch):
    """Migration 4 packs quantity, channel, campaign, message and review text into one
    ``details`` column: every event reads back as it did, values exact, and writes after it
    (bulk and records paths) read back the same way."""
    import limelight.store.duckdb as duck
    from limelight.store import event_layout

    path = tmp_path / "v3.duckdb"
    monkeypatch.setattr(duck, "MIGRATIONS", MIGRATIONS[:3])
    rows = [  # (quantity, channel, campaign_id, message_id, review_text, geo)
        (None, None, None, None, None, None), (2.0, None, None, None, None, "berlin"),
        (1 / 3, "email", "c-1", "m-1", None, None), (None, None, None, None, 'a "q"\n é', None),
        (1e300, "push", None, None, None, "x")]
    with DuckDBEventStore(str(path)) as s:
        assert s.schema_version == 3
        for i, row in enumerate(rows):
            s.execute("INSERT INTO event_log (event_key, user_id, item_id, type, value, "
                      "timestamp, quantity, channel, campaign_id, message_id, review_text, geo) "
                      "VALUES (?, 'u1', ?, 'purchase', 9.5, make_timestamp(?), ?, ?, ?, ?, ?, ?)",
                      [i + 1, f"i{i}", 1_700_000_000_000_000 + i, *row])
        before = s.sql("SELECT * FROM events ORDER BY item_id")
    monkeypatch.setattr(duck, "MIGRATIONS", MIGRATIONS)
    with DuckDBEventStore(str(path)) as s:
        assert s.schema_version == MIGRATIONS[-1][0]
        after = s.sql("SELECT * FROM events ORDER BY item_id")
        pd.testing.assert_frame_equal(after, before)
        stored = s.sql("SELECT * EXCLUDE (event_key) FROM event_log ORDER BY item_id")
        assert not set(event_layout.SPARSE) & set(stored.columns)
        assert stored["details"].isna().tolist() == [True, False, False, False, False]
        # New events, through the bulk write and the one-event records path.
        events = pa.table({"user_id": ["u2", "u3"], "item_id": ["i1", "i2"],
                           "type": ["purchase", "view"], "quantity": [0.1 + 0.2, None],
                           "channel": ["sms", None],
                           "timestamp": pa.array([5, 6], pa.timestamp("s", tz="UTC"))})
        assert s.write("events", events) == 2
        from limelight.data.ingest import ingest_records

        report = ingest_records(s, [{"user_id": "u4", "item_id": "i9", "type": "review",
                                     "review_text": "great", "quantity": 7,
                                     "timestamp": "2024-01-01T00:00:00Z"}])
        assert report.accepted == 1
        got = s.sql("SELECT user_id, quantity, channel, review_text FROM events "
                    "WHERE user_id IN ('u2', 'u3', 'u4') ORDER BY user_id")
        assert got["quantity"].tolist()[0] == 0.1 + 0.2 and pd.isna(got["quantity"][1])
        assert got["channel"][0] == "sms" and pd.isna(got["channel"][1])
        assert got.iloc[2][["user_id", "quantity", "review_text"]].tolist() == ["u4", 7.0, "great"]
        assert pd.isna(got["channel"][2])
        assert s.read_events_by_id(after["event_id"][2:3].tolist(),
                                   ["quantity", "channel"]).iloc[0].tolist() == [1 / 3, "email"]


def test_concurrent_threads_read_and_write(store):
    errors: list[BaseException] = []

    def work(k: int) -> None:
        try:
            for j in range(5):
                store.write("events", _events(10, f"t{k}-{j}"))
                assert store.count("events") >= 10
                store.sql("SELECT count(*) FROM events")
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert store.count("events") == 4 * 5 * 10


def test_existing_keys_and_arrow_reads(store):
    store.write("edges", pa.table({"src_user_id": ["a"], "dst_user_id": ["b"],
                                   "kind": ["follow"]}))
    probe = pa.table({"src_user_id": ["a", "a"], "dst_user_id": ["b", "c"],
                      "kind": ["follow", "follow"]})
    assert store.existing_keys("edges", probe).to_pylist() == [
        {"src_user_id": "a", "dst_user_id": "b", "kind": "follow"}]
    store.write("events", _events(3))
    table = store.read_arrow("events", columns=["user_id", "timestamp"])
    assert table.num_rows == 3 and table.schema.field("timestamp").type.tz == "UTC"


def test_lend_thread_takes_one_duckdb_thread_and_restores_it():
    """Nested or overlapping blocks share the one lent thread; the last restores the setting."""
    from limelight.store.duckdb import DuckDBEventStore

    def threads(s) -> int:
        return int(s.sql("SELECT current_setting('threads') AS t")["t"][0])

    s = DuckDBEventStore(":memory:")
    s.execute("SET threads = 3")
    with s.lend_thread():
        assert threads(s) == 2
        with s.lend_thread():
            assert threads(s) == 2
        assert threads(s) == 2
    assert threads(s) == 3
    s.execute("SET threads = 1")
    with s.lend_thread():
        assert threads(s) == 1  # never fewer than one
    assert threads(s) == 1
    s.close()
