"""The small-batch records path gives exactly what bulk ingest gives for the same records."""

from __future__ import annotations

import json
from typing import Any

import pandas as pd
import pyarrow as pa
import pytest

from limelight.data import readers, records
from limelight.data.ingest import ingest_frame, ingest_records
from limelight.store.memory import MemoryEventStore

T = "2024-05-01T10:00:00Z"

#: One row per rule (and per accepted notation) of the event validator.
MIXED: list[Any] = [
    {"user_id": "u1", "item_id": "i1", "type": "view", "timestamp": T},
    {"user_id": "  ", "item_id": "i1", "type": "view", "timestamp": T},
    {"item_id": "i1", "type": "view", "timestamp": T},
    {"user_id": "u1", "item_id": "i1", "timestamp": T},
    {"user_id": "u1", "item_id": "i1", "type": "teleport", "timestamp": T},
    {"user_id": "u1", "item_id": "i2", "type": " Add-To cart ", "timestamp": T},
    {"user_id": "u1", "type": "view", "timestamp": T},
    {"user_id": "u1", "type": "email_open", "timestamp": T, "channel": " Email "},
    {"user_id": "u1", "item_id": "i1", "type": "rating", "timestamp": T},
    {"user_id": "u1", "item_id": "i1", "type": "rating", "value": "abc", "timestamp": T},
    {"user_id": "u1", "item_id": "i1", "type": "rating", "value": "inf", "timestamp": T},
    {"user_id": "u1", "item_id": "i1", "type": "rating", "value": 1e400, "timestamp": T},
    {"user_id": "u1", "item_id": "i1", "type": "rating", "value": " 4.5 ", "timestamp": T},
    {"user_id": "u1", "item_id": "i3", "type": "rating", "value": 4, "timestamp": T},
    {"user_id": "u1", "item_id": "i1", "type": "purchase", "quantity": "x", "timestamp": T},
    {"user_id": "u1", "item_id": "i1", "type": "purchase", "quantity": 2, "value": 9.99,
     "timestamp": "2024-05-01T12:00:00+02:00"},
    {"user_id": "u1", "item_id": "i1", "type": "view"},
    {"user_id": "u1", "item_id": "i1", "type": "view", "timestamp": "   "},
    {"user_id": "u2", "item_id": "i1", "type": "view", "timestamp": "2024-05-01T12:00:00+0200"},
    {"user_id": "u2", "item_id": "i1", "type": "view", "timestamp": "2024-05-01 10:00:01"},
    {"user_id": "u2", "item_id": "i1", "type": "view", "timestamp": "2024-05-02"},
    {"user_id": "u2", "item_id": "i1", "type": "view", "timestamp": "2024-5-3"},
    {"user_id": "u2", "item_id": "i1", "type": "view", "timestamp": "2024-05-01T10:00:02.5Z"},
    {"user_id": "u2", "item_id": "i1", "type": "view", "timestamp": "2024-05-01T10:00+05:30"},
    {"user_id": "u2", "item_id": "i1", "type": "view", "timestamp": 1714557600},
    {"user_id": "u2", "item_id": "i1", "type": "view", "timestamp": 1714557601000},
    {"user_id": "u2", "item_id": "i1", "type": "view", "timestamp": 1714557602000000},
    {"user_id": "u2", "item_id": "i1", "type": "view", "timestamp": 1714557603000000000},
    {"user_id": "u2", "item_id": "i1", "type": "view", "timestamp": 0},
    {"user_id": "u2", "item_id": "i1", "type": "view", "timestamp": "1985-01-01T00:00:00Z"},
    {"user_id": "u2", "item_id": "i1", "type": "view", "timestamp": "2100-01-01T00:00:00Z"},
    {"user_id": "u2", "item_id": "i1", "type": "view", "timestamp": 99999999999999999},
    {"user_id": "u3", "item_id": "i1", "type": "like", "timestamp": T, "event_id": " e-1 ",
     "foo": "bar", "review_text": {"nested": [1, "two"]}, "device": True},
    {"user_id": "u3", "item_id": "i9", "type": "like", "timestamp": T, "event_id": "e-1"},
    {"user_id": "u1", "item_id": "i1", "type": "VIEW", "timestamp": T},
    {"user_id": 'quo"te\\back', "item_id": "i'1", "type": "view", "timestamp": "bad"},
    {"user_id": "u4", "item_id": "i1", "type": "nope", "timestamp": T, "geo": "a'b\"c\\d"},
    42,
]


def _bulk(store: MemoryEventStore, rows: list[Any]) -> Any:
    """Bulk ingest of records, converted as the records path's own fallback converts them."""
    frame = pd.DataFrame.from_records(
        [{k: readers._as_text(v) for k, v in r.items()} if isinstance(r, dict) else {}
         for r in rows])
    table = pa.Table.from_pandas(frame.astype(object).where(frame.notna(), None),
                                 preserve_index=False)
    return ingest_frame(store, table, source_name="api")


def _state(store: MemoryEventStore) -> tuple[list[tuple], list[tuple]]:
    events = store.sql("SELECT * EXCLUDE (timestamp), epoch_us(timestamp) AS us FROM events "
                       "ORDER BY event_id")
    quarantine = store.sql("SELECT source, line_no, raw, reason, entity, user_id FROM quarantine "
                           "ORDER BY line_no")
    as_rows = [tuple(None if pd.isna(v) else v for v in r)
               for r in events.itertuples(index=False)]
    return as_rows, [tuple(r) for r in quarantine.itertuples(index=False)]


def _summary(report: Any) -> dict[str, Any]:
    out = report.to_dict()
    out["accepted_event_ids"] = sorted(out["accepted_event_ids"])
    for volatile in ("run_id", "started_at", "finished_at", "seconds", "format"):
        out.pop(volatile)
    return out


@pytest.fixture
def pair() -> tuple[MemoryEventStore, MemoryEventStore]:
    a, b = MemoryEventStore(), MemoryEventStore()
    yield a, b
    a.close()
    b.close()


def test_parity_with_bulk_for_every_rule(pair, settings) -> None:
    bulk_store, fast_store = pair
    certain = [r for r in MIXED if not (isinstance(r, dict) and r.get("timestamp") == "bad")]
    slow = _bulk(bulk_store, certain)
    fast = records.ingest_event_records(fast_store, certain, source_name="api",
                                        settings=settings)
    assert fast is not None, "these records are all within the fast path's exact reading"
    assert _summary(fast) == _summary(slow)
    assert _state(fast_store) == _state(bulk_store)
    assert fast.reconciled and fast.rejected >= 15 and fast.accepted >= 15
    assert len(set(fast.reasons)) >= 9


def test_uncertain_values_take_the_bulk_path_with_the_same_result(pair, settings) -> None:
    bulk_store, fast_store = pair
    batch = [{"user_id": "u1", "item_id": "i1", "type": "view", "timestamp": ts}
             for ts in ("yesterday", "2024-02-30", "1714557600.5", "20240501", T)]
    batch.append({"user_id": "zoë", "item_id": "i1", "type": "view", "timestamp": T})
    batch.append({"user_id": "u5", "type": "view", "timestamp": T, "note": "café\t"})
    for row in batch[:3] + batch[5:]:
        assert records.ingest_event_records(fast_store, [row], source_name="api",
                                            settings=settings) is None
    assert fast_store.count("events") == 0 and fast_store.count("ingest_runs") == 0
    slow = _bulk(bulk_store, batch)
    through_api = ingest_records(fast_store, batch, settings=settings)
    assert _summary(through_api) == _summary(slow)
    assert _state(fast_store) == _state(bulk_store)


def test_duplicates_against_the_store_and_idempotence(store, settings) -> None:
    first = ingest_records(store, MIXED, settings=settings)
    again = ingest_records(store, [r for r in MIXED if not (isinstance(r, dict)
                                                           and r.get("timestamp") == "bad")],
                           settings=settings)
    assert first.accepted > 0 and again.accepted == 0 and again.accepted_event_ids == []
    assert again.duplicates == first.accepted + first.duplicates
    assert store.count("events") == first.accepted
    # Quarantine does not grow on a replay of the same rejected rows (same source/line/raw).
    before = store.count("quarantine")
    ingest_records(store, [r for r in MIXED if not (isinstance(r, dict)
                                                   and r.get("timestamp") == "bad")],
                   settings=settings)
    assert store.count("quarantine") == before


def test_one_event_is_stored_with_its_report_and_run(store, settings) -> None:
    report = ingest_records(store, [{"user_id": "u1", "item_id": "i1", "type": "click",
                                     "timestamp": T, "event_id": "ev1"}], settings=settings)
    assert (report.read, report.accepted, report.duplicates, report.rejected) == (1, 1, 0, 0)
    assert report.accepted_event_ids == ["ev1"] and report.status == "done"
    runs = store.read("ingest_runs")
    assert len(runs) == 1
    run = runs.iloc[0]
    assert (run["status"], run["read"], run["accepted"], run["source"]) == ("done", 1, 1, "api")
    row = store.sql("SELECT user_id, item_id, type, CAST(timestamp AS VARCHAR) AS ts FROM events")
    assert row.iloc[0].tolist() == ["u1", "i1", "click", "2024-05-01 10:00:00+00"]


def test_within_batch_repeat_keeps_the_first_line(store, settings) -> None:
    batch = [{"user_id": "u1", "item_id": "i1", "type": "view", "timestamp": T,
              "event_id": "same", "device": "first"},
             {"user_id": "u1", "item_id": "i1", "type": "view", "timestamp": T,
              "event_id": "same", "device": "second"}]
    report = ingest_records(store, batch, settings=settings)
    assert (report.accepted, report.duplicates) == (1, 1)
    assert store.sql("SELECT device FROM events")["device"].tolist() == ["first"]


def test_rejected_rows_are_quarantined_with_line_raw_and_reason(store, settings) -> None:
    batch = [{"user_id": "u1", "item_id": "i1", "type": "view", "timestamp": T},
             {"user_id": "u9", "type": "view", "timestamp": T, "extra_field": 7}]
    report = ingest_records(store, batch, settings=settings)
    assert report.rejections == [(2, "missing_item_id")]
    q = store.read("quarantine")
    assert q[["line_no", "reason", "user_id", "source", "entity", "run_id"]].iloc[0].tolist() == \
        [2, "missing_item_id", "u9", "api", "events", report.run_id]
    assert json.loads(q["raw"].iloc[0]) == {"user_id": "u9", "item_id": None, "type": "view",
                                            "timestamp": T, "extra_field": "7"}
    assert report.ignored_columns == ["extra_field"]


def test_a_failed_write_leaves_nothing_and_records_a_failed_run(store, settings) -> None:
    # A broken quarantine table makes the second statement of the transaction fail.
    store.execute("ALTER TABLE quarantine RENAME TO quarantine_moved")
    batch = [{"user_id": "u1", "item_id": "i1", "type": "view", "timestamp": T},
             {"user_id": "u1", "type": "view", "timestamp": T}]
    with pytest.raises(Exception, match="quarantine"):
        ingest_records(store, batch, settings=settings)
    assert store.count("events") == 0
    runs = store.read("ingest_runs")
    assert runs["status"].tolist() == ["failed"]


def test_large_batches_and_other_entities_use_the_bulk_path(store, settings) -> None:
    assert not records.fast_path_applies([{}] * (records.MAX_FAST_RECORDS + 1), "events",
                                         settings)
    assert not records.fast_path_applies([{"user_id": "u1"}], "users", settings)
    assert not records.fast_path_applies([], "events", settings)


def test_store_write_fills_a_missing_item_id_with_null(store) -> None:
    from datetime import UTC, datetime

    from limelight.data.schema import derive_event_id

    ts = datetime(2024, 5, 1, 10, tzinfo=UTC)
    table = pa.table({"user_id": ["u1", "u1"], "type": ["email_open", "email_open"],
                      "timestamp": pa.array([ts, ts], pa.timestamp("us", tz="UTC"))})
    assert store.write("events", table) == 1  # same content, same derived id
    rows = store.sql("SELECT event_id, item_id FROM events")
    assert rows["item_id"].isna().all()
    assert rows["event_id"].tolist() == [derive_event_id("u1", None, "email_open",
                                                         1714557600000000)]


POOLS: dict[str, list[Any]] = {
    "user_id": ["u1", " u2 ", "", "  ", None, 7],
    "item_id": ["i1", " i2", "", None, 3],
    "type": ["view", "VIEW", " click ", "rating", "email_open", "bogus", "", None, "add-to-cart",
             "Purchase"],
    "value": [None, "4", " 4.5 ", "x", "inf", "nan", "", 3.5, 1e400, -2, True],
    "quantity": [None, "2", "abc", "", 1.0, "-inf"],
    "timestamp": [T, "2024-05-01 10:00:00", "2024-05-01", 1714557600, 1714557600123,
                  "1980-01-01", "2100-01-01T00:00:00Z", "", None, 0, "2024-05-01T11:00:00-01:00"],
    "event_id": [None, "e1", " e2 ", "", "e3"],
    "channel": [None, "Email", " PUSH "],
    "note": [None, "free text", 'a "quoted" \\ one'],
}


#: Well-formed values, drawn most of the time so batches hold accepted rows and repeats too.
GOOD: dict[str, list[Any]] = {
    "user_id": ["u1", "u2", "u3"], "item_id": ["i1", "i2", "i3", "i4"],
    "type": ["view", "click", "rating", "purchase", "like"], "value": ["4", 3.5, 5],
    "quantity": [None, 1], "timestamp": [T, 1714557600, "2024-05-02T08:00:00+02:00"],
    "event_id": [None, None, None, "e1", "e2"], "channel": [None], "note": [None],
}


@pytest.mark.parametrize("seed", range(8))
def test_random_batches_agree_with_bulk(seed, settings) -> None:
    import random

    rng = random.Random(seed)
    batch = []
    for _ in range(40):
        row = {}
        for col, pool in POOLS.items():
            if rng.random() < 0.9:  # sometimes the key is absent altogether
                row[col] = rng.choice(pool if rng.random() < 0.25 else GOOD[col])
        batch.append(row)
    for col in ("user_id", "type", "timestamp"):  # a wholly absent column is a SchemaError
        batch[0].setdefault(col, None)
    bulk_store, fast_store = MemoryEventStore(), MemoryEventStore()
    try:
        slow = _bulk(bulk_store, batch)
        fast = records.ingest_event_records(fast_store, batch, source_name="api",
                                            settings=settings)
        assert fast is not None
        assert _summary(fast) == _summary(slow)
        assert _state(fast_store) == _state(bulk_store)
        assert fast.accepted and fast.rejected
    finally:
        bulk_store.close()
        fast_store.close()
