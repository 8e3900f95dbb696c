"""Event keys: SQL and Python agree, ids round-trip, and dedupe by key is dedupe by id."""

from __future__ import annotations

import hashlib

import duckdb
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from limelight.data import event_keys, schema
from limelight.data.ingest import ingest_frame, ingest_records
from limelight.store.duckdb import EVENT_TABLE
from limelight.store.memory import MemoryEventStore

ids = st.one_of(st.text(min_size=1, max_size=40),
                st.binary(min_size=16, max_size=16).map(bytes.hex))


@pytest.fixture(scope="module")
def con() -> duckdb.DuckDBPyConnection:
    return duckdb.connect()


@settings(max_examples=200, deadline=None)
@given(event_id=ids)
def test_sql_and_python_give_the_same_key_and_public_id(con, event_id):
    key, text, public = con.execute(
        f"SELECT k, t, {event_keys.public_id_sql('k', 't')} FROM (SELECT "
        f"{event_keys.given_key_sql('$id')} AS k, {event_keys.stored_text_sql('$id')} AS t)",
        {"id": event_id}).fetchone()
    assert int(key) == event_keys.key_of(event_id)
    assert public == event_id  # what the events view shows is the id given
    assert (text is None) == event_keys.is_canonical(event_id)


def test_derived_key_is_the_digest_of_the_derived_id(con):
    us = 1_714_557_600_123_456
    event_id = schema.derive_event_id("u1", "i9", "click", us)
    derived = event_keys.derived_key_sql("$u", "$i", "$t", "CAST($ts AS TIMESTAMPTZ)")
    key = con.execute(f"SELECT {derived}",
                      {"u": "u1", "i": "i9", "t": "click",
                       "ts": "2024-05-01 10:00:00.123456+00"}).fetchone()[0]
    assert int(key) == event_keys.key_of(event_id)
    assert event_keys.canonical_id(int(key)) == event_id
    # the byte order of DuckDB's md5_number: the digest read little-endian
    assert int(key) == int.from_bytes(
        hashlib.md5(f"u1\x1fi9\x1fclick\x1f{us}".encode()).digest(), "little")


def test_keys_are_stored_not_digest_text_and_ids_read_back():
    store = MemoryEventStore()
    events = pa.table({"event_id": [None, "e-1", "0" * 31 + "1"], "user_id": ["u1"] * 3,
                       "item_id": ["i1", "i2", "i3"], "type": ["view"] * 3,
                       "timestamp": ["2024-05-01T10:00:00Z"] * 3})
    report = ingest_frame(store, events, "events")
    assert report.accepted == 3
    derived = schema.derive_event_id("u1", "i1", "view", 1_714_557_600_000_000)
    assert sorted(store.read("events")["event_id"]) == sorted([derived, "e-1", "0" * 31 + "1"])
    stored = store.execute(f"SELECT event_id FROM {EVENT_TABLE} ORDER BY item_id").fetchall()
    assert stored == [(None,), ("e-1",), (None,)]  # canonical ids: the key alone
    found = store.read_events_by_id([derived, "e-1", "missing"], ["event_id", "item_id"])
    assert sorted(found["event_id"]) == sorted([derived, "e-1"])
    assert store.count("events") == 3


@pytest.mark.parametrize("path", ["bulk", "records"])
def test_a_derived_id_given_back_dedupes_against_the_stored_event(path):
    """A client that posts an event again with the id it was given back adds nothing."""
    store = MemoryEventStore()
    row = {"user_id": "u1", "item_id": "i1", "type": "click",
           "timestamp": "2024-05-01T10:00:00Z"}
    first = ingest_records(store, [row], source_name="api")
    (event_id,) = first.accepted_event_ids
    again = {**row, "event_id": event_id}
    if path == "bulk":
        report = ingest_frame(store, pa.Table.from_pylist([again]), "events")
    else:
        report = ingest_records(store, [again], source_name="api")
    assert (report.accepted, report.duplicates) == (0, 1)
    other = ingest_records(store, [{**row, "event_id": event_id.upper()}], source_name="api")
    assert other.accepted == 1  # upper-case hex is another (opaque) id
    assert sorted(store.read("events")["event_id"]) == sorted([event_id, event_id.upper()])
