"""Ingest from CSV/TSV/JSON Lines/Parquet/frames/records: typing, mapping, dedupe, idempotence."""

from __future__ import annotations

import gzip
import json
from datetime import UTC, datetime

import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest

from limelight.data.ingest import ingest_file, ingest_frame, ingest_records
from limelight.data.schema import derive_event_id
from limelight.errors import IngestError, SchemaError

HEADER = "user_id,item_id,type,timestamp,value,quantity,channel\n"


def _write(path, text: str):
    path.write_text(text, encoding="utf-8")
    return path


def _us(ts: str) -> int:
    return int(datetime.fromisoformat(ts).timestamp() * 1_000_000)


def test_csv_types_trims_and_normalises(tmp_path, store, settings):
    path = _write(tmp_path / "ev.csv", HEADER
                  + " u1 ,i1, Add To-Cart ,2024-03-01T12:00:00+02:00,,2,  EMAIL \n"
                  + "u2,i2,purchase,1709294400,19.99,1,\n"
                  + "u3,i3,rating,1709294400000,4.5,,\n"
                  + "u4,,email_open,2024-03-01 10:00:00,,,email\n")
    report = ingest_file(store, path, settings=settings)
    assert (report.read, report.accepted, report.duplicates, report.rejected) == (4, 4, 0, 0)
    ev = store.read("events").set_index("user_id")
    assert ev.loc["u1", "type"] == "add_to_cart" and ev.loc["u1", "channel"] == "email"
    assert ev.loc["u1", "timestamp"] == pd.Timestamp("2024-03-01T10:00:00Z")  # to UTC
    assert ev.loc["u2", "timestamp"] == pd.Timestamp("2024-03-01T12:00:00Z")  # epoch s
    assert ev.loc["u3", "timestamp"] == pd.Timestamp("2024-03-01T12:00:00Z")  # epoch ms
    assert ev.loc["u4", "timestamp"] == pd.Timestamp("2024-03-01T10:00:00Z")  # naive = UTC
    assert ev.loc["u2", "value"] == 19.99 and ev.loc["u1", "quantity"] == 2
    assert pd.isna(ev.loc["u4", "item_id"])
    expected = derive_event_id("u2", "i2", "purchase", _us("2024-03-01T12:00:00+00:00"))
    assert ev.loc["u2", "event_id"] == expected


def test_trim_shortcut_equals_trim():
    """Validation skips ``trim`` only where it cannot change a value (ASCII, no edge space)."""
    import duckdb

    from limelight.data.validate import _trimmed

    values = ["u1", " u1", "u1 ", "  ", "", "\tu1\t", "\u00a0u1", "u1\u2003", "é u", "u é ",
              "\u00a0", "a b", None]
    con = duckdb.connect()
    got = con.execute(f"SELECT {_trimmed('v')}, NULLIF(trim(v), '') FROM "
                      f"unnest(?::VARCHAR[]) AS t(v)", [values]).fetchall()
    assert [a for a, _ in got] == [b for _, b in got]
    assert got[1][0] == "u1" and got[6][0] == "u1" and got[7][0] == "u1" and got[3][0] is None


def test_reingest_adds_nothing(tmp_path, store, settings):
    path = _write(tmp_path / "ev.csv", HEADER + "u1,i1,view,2024-01-01,,,\n"
                  + "u1,i1,view,2024-01-01,,,\n" + "u2,i1,view,2024-01-01,,,\nbad\n")
    first = ingest_file(store, path, settings=settings)
    assert (first.accepted, first.duplicates, first.rejected) == (2, 1, 1)
    again = ingest_file(store, path, settings=settings)
    assert (again.read, again.accepted, again.duplicates, again.rejected) == (4, 0, 3, 1)
    assert store.count("events") == 2 and store.count("quarantine") == 1
    runs = store.read("ingest_runs")
    assert len(runs) == 2 and set(runs["status"]) == {"done"}


def test_mapping_constants_and_delimiter(tmp_path, store, settings):
    path = _write(tmp_path / "r.txt", "uid;movie;stars;ts\n1;10;4;881250949\n2;10;5;881250950\n")
    report = ingest_file(store, path, fmt="csv", settings=settings,
                         mapping={"uid": "user_id", "movie": "item_id", "stars": "value",
                                  "ts": "timestamp"}, constants={"type": "rating"})
    assert report.accepted == 2 and report.reconciled
    assert set(store.read("events")["type"]) == {"rating"}


def test_tsv_without_header(tmp_path, store, settings):
    path = _write(tmp_path / "u.data", "1\t10\t4\t881250949\n2\t11\t3\t881250950\n")
    report = ingest_file(store, path, fmt="tsv", header=False, settings=settings,
                         mapping={"col0": "user_id", "col1": "item_id", "col2": "value",
                                  "col3": "timestamp"}, constants={"type": "rating"})
    assert report.accepted == 2


def test_gzip_jsonl_and_parquet(tmp_path, store, settings):
    rows = [{"user_id": "u1", "item_id": "i1", "type": "view", "timestamp": 1704067200},
            {"user_id": 7, "item_id": "i2", "type": "like", "timestamp": "2024-01-02T00:00:00Z",
             "value": 1}]
    gz = tmp_path / "e.jsonl.gz"
    with gzip.open(gz, "wt") as fh:
        fh.write("\n".join(json.dumps(r) for r in rows) + "\n")
    assert ingest_file(store, gz, settings=settings).accepted == 2
    pq_path = tmp_path / "e.parquet"
    pq.write_table(pa.table({
        "user_id": ["u9", "u9"], "item_id": ["i1", None], "type": ["view", "view"],
        "timestamp": pa.array([datetime(2024, 1, 3, tzinfo=UTC)] * 2,
                              pa.timestamp("us", tz="UTC"))}), pq_path)
    report = ingest_file(store, pq_path, settings=settings)
    assert (report.accepted, report.rejected, report.reasons) == (1, 1, {"missing_item_id": 1})
    assert store.count("events") == 3


def test_small_chunks_give_the_same_result(tmp_path, settings):
    from limelight.store.memory import MemoryEventStore

    lines = [f"u{i % 50},i{i % 70},view,{1704067200 + i},,,\n" for i in range(20_000)]
    lines[123] = "u1,i1,view,not-a-time,,,\n"
    path = _write(tmp_path / "big.csv", HEADER + "".join(lines))
    results = []
    for chunk_rows in (500, 1_000_000):
        s = MemoryEventStore()
        r = ingest_file(s, path, chunk_rows=chunk_rows, settings=settings)
        results.append((r.read, r.accepted, r.duplicates, r.rejected, s.count("events"),
                        s.read("quarantine")["line_no"].tolist()))
        s.close()
    assert results[0] == results[1]
    assert results[0][:4] == (20_000, 19_999, 0, 1) and results[0][5] == [125]


def test_repeats_across_and_within_batches_into_a_fresh_store(tmp_path, settings):
    """Batches skip probing a store that holds only this run's events; repeats still count."""
    from limelight.store.duckdb import DuckDBEventStore

    rows = [f"u{i},i{i % 70},view,{1704067200 + i},,,\n" for i in range(3_000)]
    rows += rows[1_000:1_400]  # repeats of earlier batches
    rows += [rows[10]] * 3 + [rows[2_999]]  # repeats inside batches (and of the last row)
    path = _write(tmp_path / "rep.csv", HEADER + "".join(rows))
    s = DuckDBEventStore(str(tmp_path / "rep.duckdb"))
    report = ingest_file(s, path, chunk_rows=700, settings=settings)
    assert report.reconciled and (report.read, report.accepted, report.duplicates) == (
        3_404, 3_000, 404)
    assert s.count("events") == 3_000
    assert s.sql("SELECT count(DISTINCT event_id) AS n FROM events")["n"][0] == 3_000
    again = ingest_file(s, path, chunk_rows=700, settings=settings)  # store not only this run's
    assert (again.accepted, again.duplicates) == (0, 3_404)
    s.close()


@pytest.mark.parametrize("odd", ['"u9,i9",view,1704067200,,,\n',      # right count, quoted
                                 '"u9,x",i9,view,1704067200,,,\n'])  # quoted, 7 fields
def test_quoted_delimiters_inside_a_plain_block(tmp_path, store, settings, odd):
    """A quoted delimiter must not fool the per-line delimiter count of the fast CSV path."""
    lines = [f'"u{i}","i{i}",view,{1704067200 + i},,,\n' for i in range(300)]
    lines[150] = odd
    report = ingest_file(store, _write(tmp_path / "q.csv", HEADER + "".join(lines)),
                         settings=settings)
    assert report.reconciled and report.read == 300
    if odd.startswith('"u9,i9"'):  # 2 real fields: quarantined with its line and raw text
        assert (report.accepted, report.rejections) == (299, [(152, "malformed_line")])
        assert store.read("quarantine")["raw"].tolist() == [odd.rstrip("\n")]
    else:
        assert report.accepted == 300
        assert "u9,x" in store.read("events")["user_id"].tolist()


def test_given_ids_repeated_across_batches_with_other_content(tmp_path, settings):
    """Given ids repeat across batches with other timestamps: only the first row is kept."""
    from limelight.store.duckdb import DuckDBEventStore

    rows = [f"e{i},u{i},i{i % 70},view,{1704067200 + i}\n" for i in range(2_000)]
    rows += [f"e{i},u{i},i{i % 70},click,{1704067200 + 5_000 + i}\n" for i in (3, 900, 1_999)]
    rows += [f"e{i},u{i},i{i % 70},view,{1704067200 + i}\n" for i in (5, 6)]  # exact repeats
    path = _write(tmp_path / "ids.csv", "event_id,user_id,item_id,type,timestamp\n"
                  + "".join(rows))
    s = DuckDBEventStore(str(tmp_path / "ids.duckdb"))
    report = ingest_file(s, path, chunk_rows=600, settings=settings)
    assert report.reconciled and (report.accepted, report.duplicates) == (2_000, 5)
    kept = s.sql("SELECT count(*) AS n, count(DISTINCT event_id) AS d, "
                 "count(*) FILTER (type = 'click') AS clicks FROM events")
    assert kept.to_dict("records") == [{"n": 2_000, "d": 2_000, "clicks": 0}]
    s.close()


def test_parquet_ranges_map_constants_and_line_numbers(tmp_path, settings):
    """DuckDB reads Parquet row ranges itself: mapping, constants, lines as with Arrow."""
    from limelight.store.duckdb import DuckDBEventStore

    n = 1_000
    ts = [str(1704067200 + i) for i in range(n)]
    ts[517] = "yesterday"
    path = tmp_path / "e.parquet"
    pq.write_table(pa.table({"uid": [f"u{i}" for i in range(n)],
                             "item_id": [f"i{i % 9}" for i in range(n)], "timestamp": ts,
                             "type": ["bogus"] * n, "extra_col": ["x"] * n}),
                   path, row_group_size=300)
    results = []
    for chunk_rows in (250, 400, 10_000):
        s = DuckDBEventStore(str(tmp_path / f"p{chunk_rows}.duckdb"))
        r = ingest_file(s, path, mapping={"uid": "user_id"}, constants={"type": "view"},
                        chunk_rows=chunk_rows, settings=settings)
        q = s.read("quarantine")
        results.append((r.read, r.accepted, r.rejected, r.reasons, q["line_no"].tolist(),
                        s.count("events"), r.ignored_columns))
        assert '"user_id":"u517"' in q["raw"][0]  # as the Arrow path keeps it
        s.close()
    assert results[0] == results[1] == results[2]
    assert results[0][:6] == (n, n - 1, 1, {"bad_timestamp": 1}, [518], n - 1)


def test_frame_and_records(store, settings):
    frame = pd.DataFrame({"user_id": ["a", "b", None], "item_id": ["x", "y", "z"],
                          "type": ["view"] * 3,
                          "timestamp": pd.to_datetime(["2024-01-01"] * 3, utc=True)})
    report = ingest_frame(store, frame, settings=settings)
    assert (report.accepted, report.rejected) == (2, 1) and len(report.accepted_event_ids) == 2
    recs = ingest_records(store, [{"user_id": "c", "type": "unsubscribe",
                                   "timestamp": "2024-01-05T00:00:00Z"}, "nonsense"],
                          settings=settings)
    assert (recs.read, recs.accepted, recs.rejected) == (2, 1, 1)
    assert recs.reasons == {"missing_user_id": 1}


def test_users_items_edges_contacts(tmp_path, store, settings):
    users = _write(tmp_path / "users.csv", "user_id,age,gender,lat,lon,consent_email,hobby\n"
                   "u1,34,F,52.5,13.4,yes,chess\nu2,150,M,,,no,\nu3,x,M,,,maybe,\n")
    r = ingest_file(store, users, "users", settings=settings)
    assert (r.accepted, r.reasons) == (1, {"bad_age": 2})
    u1 = store.read("users").set_index("user_id").loc["u1"]
    assert u1["age"] == 34 and bool(u1["consent_email"]) is True
    assert json.loads(u1["extra"]) == {"hobby": "chess"}
    items = _write(tmp_path / "items.csv", 'item_id,title,categories,price\n'
                   'i1,Lamp,"[""home"", ""light""]",9.5\ni2,Mug,kitchen|home,-1\n')
    r = ingest_file(store, items, "items", settings=settings)
    assert r.accepted == 1 and r.reasons == {"bad_price": 1}
    assert store.read_arrow("items").column("categories").to_pylist() == [["home", "light"]]
    edges = _write(tmp_path / "edges.csv", "src_user_id,dst_user_id,kind\nu1,u2,follow\n"
                   "u1,u1,friend\nu2,u3,enemy\nu1,u2,follow\n")
    r = ingest_file(store, edges, "edges", settings=settings)
    assert (r.accepted, r.duplicates) == (1, 1)
    assert r.reasons == {"self_edge": 1, "unknown_edge_kind": 1}
    assert bool(store.read("edges").iloc[0]["directed"]) is True
    contacts = _write(tmp_path / "c.csv", "user_id,email\nu1,u1@example.org\nu2,not-an-email\n")
    r = ingest_file(store, contacts, "contacts", settings=settings)
    assert r.accepted == 1 and r.reasons == {"bad_email": 1}


def test_named_errors_for_unusable_input(tmp_path, store, settings):
    with pytest.raises(IngestError):
        ingest_file(store, tmp_path / "missing.csv", settings=settings)
    no_user = _write(tmp_path / "ev.csv", "item_id,type,timestamp\ni1,view,2024-01-01\n")
    with pytest.raises(SchemaError, match="user_id"):
        ingest_file(store, no_user, settings=settings)
    with pytest.raises(SchemaError):
        ingest_file(store, no_user, mapping={"item_id": "nonsense"}, settings=settings)
    with pytest.raises(IngestError):
        ingest_file(store, _write(tmp_path / "x.weird", "a\n"), settings=settings)
    assert store.count("events") == 0


def test_explicit_event_ids_dedupe_regardless_of_time(tmp_path, store, settings):
    first = _write(tmp_path / "a.csv", "event_id,user_id,item_id,type,timestamp\n"
                   "e1,u1,i1,view,2024-01-01\ne2,u1,i2,view,2024-01-01\n")
    second = _write(tmp_path / "b.csv", "event_id,user_id,item_id,type,timestamp\n"
                    "e1,u9,i9,click,2024-06-01\n,u1,i1,view,2024-01-01\n")
    assert ingest_file(store, first, settings=settings).accepted == 2
    r = ingest_file(store, second, settings=settings)
    # e1 is known; the row without an id gets a derived id (new content, so new)
    assert (r.accepted, r.duplicates) == (1, 1)
    assert store.count("events") == 3


def test_prefetch_keeps_order_errors_and_stops_early():
    """The read-ahead thread yields chunks in order, re-raises reader errors, stops early."""
    import threading

    from limelight.data.readers import prefetch

    def chunks(n, fail_at=None, log=None):
        for i in range(n):
            if i == fail_at:
                raise IngestError(f"broken at {i}")
            if log is not None:
                log.append(i)
            yield i

    assert list(prefetch(chunks(5))) == [0, 1, 2, 3, 4]
    got = []
    with pytest.raises(IngestError, match="broken at 3"):
        for c in prefetch(chunks(5, fail_at=3)):
            got.append(c)
    assert got == [0, 1, 2]
    log: list[int] = []
    it = prefetch(chunks(1_000, log=log))
    assert next(it) == 0
    it.close()  # the consumer stops: the reader stops too, at most two chunks ahead
    assert len(log) <= 3
    assert not [t for t in threading.enumerate() if t.name == "ingest-reader"]


def test_run_ids_merge_keeps_every_hash_sorted():
    """The run's id hashes stay sorted and distinct through merges; matches are exact."""
    import numpy as np

    from limelight.data.dedupe import RunIds as _RunIds

    rng = np.random.default_rng(3)
    ids, everything = _RunIds(), np.empty(0, dtype=np.uint64)
    batches = [np.sort(rng.integers(0, 1_000, size).astype(np.uint64))
               for size in (5, 0, 40, 1, 300, 17, 900)]
    # Offered out of order: 1 and 2 wait for 0; 4 waits for 3; 6 waits for 5.
    for seq in (1, 2, 0, 4, 3, 6, 5):
        ids.offer(seq, batches[seq] if len(batches[seq]) else None)  # None: no rows
        if seq in (1, 2, 4, 6):
            with pytest.raises(RuntimeError, match="not admitted"):
                ids.matched(seq)
    for seq, batch in enumerate(batches):
        assert ids.matched(seq).tolist() == sorted(set(batch.tolist())
                                                   & set(everything.tolist()))
        everything = np.unique(np.concatenate((everything, batch)))
    assert ids.hashes.tolist() == everything.tolist() and ids.admitted == len(batches)


def test_chunks_staged_ahead_are_admitted_off_the_storing_thread(tmp_path, monkeypatch,
                                                                 settings):
    """Once the first chunk is in, the helper admits each chunk's hashes as it stages it:
    the storing thread never merges them (that cost grows with the run)."""
    import threading

    from limelight.data.dedupe import RunIds as _RunIds
    from limelight.store.duckdb import DuckDBEventStore

    s = DuckDBEventStore(str(tmp_path / "s.duckdb"))
    admitted_on: list[tuple[int, str]] = []
    admit = _RunIds._admit
    monkeypatch.setattr(_RunIds, "_admit", lambda self, h: (
        admitted_on.append((self.admitted, threading.current_thread().name))
        or admit(self, h)))
    frame = pd.DataFrame({"user_id": [f"u{i}" for i in range(16)], "item_id": ["i1"] * 16,
                          "type": ["view"] * 16, "timestamp": ["2024-01-01T00:00:00Z"] * 16})
    assert ingest_frame(s, frame, chunk_rows=2, settings=settings).accepted == 16
    assert [seq for seq, _ in admitted_on] == list(range(8))
    # Chunks 1 and 2 are staged beside chunk 0 (either thread may complete the sequence);
    # every later chunk is staged after chunk 0 was offered.
    assert all(name.startswith("ingest-validate") for seq, name in admitted_on if seq >= 3)
    s.close()


def _staging_tables(s) -> int:
    return int(s.sql("SELECT count(*) AS n FROM duckdb_tables() "
                     "WHERE database_name = 'limelight_staging'")["n"][0])


def _outcome(s, report) -> tuple:
    """What a run leaves behind, independent of run ids and clocks."""
    kept = {k: v for k, v in report.to_dict().items()
            if k not in ("run_id", "started_at", "finished_at", "seconds")}
    events = s.sql("SELECT * FROM events ORDER BY event_id")
    events = events.astype(object).where(events.notna(), None).to_dict("records")  # NaN != NaN
    quarantined = s.sql("SELECT line_no, raw, reason, user_id FROM quarantine "
                        "ORDER BY line_no").to_dict("records")
    return kept, events, quarantined


@pytest.mark.parametrize("fmt", ["frame", "parquet", "csv"])
def test_validating_ahead_stores_exactly_what_the_serial_path_stores(tmp_path, settings,
                                                                     monkeypatch, fmt):
    """Chunk N+1 validated on a helper thread while chunk N is stored: same rows, same report.

    Repeats and bad rows sit on both sides of chunk boundaries and repeat earlier chunks.
    """
    from limelight.data import staging
    from limelight.store.duckdb import DuckDBEventStore

    rows = [(f"u{i % 97}", f"i{i % 31}", "view", str(1704067200 + i), f"{i % 5}")
            for i in range(2_000)]
    rows[299] = ("u1", "i1", "view", "not-a-time", "")   # bad, last row of chunk 1
    rows[300] = ("", "i1", "view", "1704067200", "")       # bad, first row of chunk 2
    rows[301] = rows[298]                                   # repeat across the boundary
    rows[900] = rows[5]                                     # repeat of an earlier chunk
    rows[1_500] = ("u2", "i2", "teleport", "1704067200", "")  # unknown type
    rows += [rows[10], rows[1_999], rows[600]]              # repeats in the last chunk
    cols = ["user_id", "item_id", "type", "timestamp", "value"]
    table = pa.table({c: [r[k] for r in rows] for k, c in enumerate(cols)})
    table = table.append_column("junk", pa.array(["x"] * len(rows)))  # reported as ignored
    path = tmp_path / "ev.parquet"
    pq.write_table(table, path, row_group_size=450)
    if fmt == "csv":  # parsed on a reader thread as well
        path = tmp_path / "ev.csv"
        pacsv.write_csv(table, path)

    def run(s):  # Arrow chunks registered in DuckDB, or files (DuckDB reads Parquet itself)
        if fmt == "frame":
            return ingest_frame(s, table, chunk_rows=300, settings=settings)
        return ingest_file(s, path, chunk_rows=300, settings=settings)
    outcomes = []
    for ahead in (False, True):
        monkeypatch.setattr(staging, "VALIDATE_AHEAD", ahead)
        s = DuckDBEventStore(str(tmp_path / f"{fmt}-{ahead}.duckdb"))
        report, again = run(s), run(s)
        assert report.reconciled and again.reconciled
        assert (again.accepted, again.duplicates) == (0, report.accepted + report.duplicates)
        assert _staging_tables(s) == 0
        outcomes.append(_outcome(s, report))
        s.close()
    assert outcomes[0] == outcomes[1]
    kept, events, quarantined = outcomes[1]
    assert (kept["read"], kept["rejected"]) == (2_003, 3) and len(events) == kept["accepted"]
    first_line = 2 if fmt == "csv" else 1  # a CSV file's line 1 is its header
    assert kept["duplicates"] == 5 and [q["line_no"] - first_line + 1 for q in quarantined] == [
        300, 301, 1_501]
    assert kept["ignored_columns"] == ["junk"]


def test_only_sources_of_several_chunks_are_validated_ahead(tmp_path, settings, monkeypatch):
    """One chunk has nothing to overlap: no helper thread, DuckDB's threads left alone."""
    from limelight.store.duckdb import DuckDBEventStore

    s = DuckDBEventStore(str(tmp_path / "s.duckdb"))
    lent = []
    original = s.lend_thread
    monkeypatch.setattr(s, "lend_thread", lambda: lent.append(1) or original())
    frame = pd.DataFrame({"user_id": ["u1", "u2", "u3"], "item_id": ["i1"] * 3,
                          "type": ["view"] * 3, "timestamp": ["2024-01-01T00:00:00Z"] * 3})
    assert ingest_frame(s, frame, settings=settings).accepted == 3
    assert lent == []
    frame["timestamp"] = "2024-01-02T00:00:00Z"
    assert ingest_frame(s, frame, chunk_rows=2, settings=settings).accepted == 3
    assert lent == [1]
    s.close()


def test_pipeline_ends_keep_both_cores_busy(tmp_path, monkeypatch, settings):
    """The first chunk is validated on the calling thread beside the helper, the middle
    inserts run with a DuckDB thread lent to the helper, and the last insert gets it back."""
    import threading

    import limelight.data.staging as staging
    from limelight.store.duckdb import DuckDBEventStore

    s = DuckDBEventStore(str(tmp_path / "s.duckdb"))
    s.execute("SET threads = 2")
    validated_on, threads_at_insert = [], []
    stage, insert = staging._stage, s.insert_from
    monkeypatch.setattr(staging, "_stage", lambda ctx, cur, db, chunk, seq: (
        validated_on.append((seq, threading.current_thread().name))
        or stage(ctx, cur, db, chunk, seq)))
    monkeypatch.setattr(s, "insert_from", lambda *a, **k: (
        threads_at_insert.append(int(s.execute("SELECT current_setting('threads')")
                                     .fetchone()[0])) or insert(*a, **k)))
    frame = pd.DataFrame({"user_id": [f"u{i}" for i in range(8)], "item_id": ["i1"] * 8,
                          "type": ["view"] * 8, "timestamp": ["2024-01-01T00:00:00Z"] * 8})
    assert ingest_frame(s, frame, chunk_rows=2, settings=settings).accepted == 8
    assert sorted(validated_on)[0] == (0, threading.current_thread().name)
    assert all(name.startswith("ingest-validate") for _, name in sorted(validated_on)[1:])
    assert threads_at_insert[0] == 1 and threads_at_insert[-1] == 2
    assert int(s.execute("SELECT current_setting('threads')").fetchone()[0]) == 2
    s.close()


@pytest.mark.parametrize("suffix", [".csv", ".jsonl"])
def test_text_sources_report_ignored_columns(store, tmp_path, settings, suffix):
    frame = pd.DataFrame({"user_id": ["a", "b"], "item_id": ["x", "y"], "type": ["view"] * 2,
                          "timestamp": ["2024-01-01T00:00:00Z"] * 2, "junk": ["1", "2"]})
    path = tmp_path / f"e{suffix}"
    if suffix == ".csv":
        frame.to_csv(path, index=False)
    else:
        frame.to_json(path, orient="records", lines=True)
    report = ingest_file(store, path, settings=settings)
    assert report.accepted == 2 and report.ignored_columns == ["junk"]


def test_a_failing_chunk_leaves_whole_chunks_and_no_staging_tables(tmp_path, settings):
    """A store error mid-run: earlier chunks stay, the failing one is rolled back, the chunk
    being validated ahead is dropped, and a re-run completes the file."""
    from limelight.errors import StoreError
    from limelight.store.duckdb import DuckDBEventStore

    class FailingStore(DuckDBEventStore):  # the real store, failing its third insert
        inserts = 0

        def insert_from(self, *args, **kwargs):
            self.inserts += 1
            if self.inserts == 3:
                raise StoreError("disk full (simulated)")
            return super().insert_from(*args, **kwargs)

    frame = pd.DataFrame({"user_id": [f"u{i}" for i in range(1_000)], "item_id": "i1",
                          "type": "view", "timestamp": [1704067200 + i for i in range(1_000)]})
    s = FailingStore(str(tmp_path / "f.duckdb"))
    with pytest.raises(StoreError, match="simulated"):
        ingest_frame(s, frame, chunk_rows=200, settings=settings)
    assert s.count("events") == 400 and _staging_tables(s) == 0
    assert s.read("ingest_runs")["status"].tolist() == ["failed"]
    report = ingest_frame(s, frame, chunk_rows=200, settings=settings)
    assert (report.accepted, report.duplicates) == (600, 400) and s.count("events") == 1_000
    assert _staging_tables(s) == 0
    s.close()


def test_many_repeats_take_the_insert_passes_with_the_same_result(tmp_path, settings,
                                                                  monkeypatch):
    """Few repeated ids are settled in the staging table; many go through the insert's own
    within-batch pass and anti-join. Both keep the first row of each id and nothing stored."""
    from limelight.data import dedupe
    from limelight.store.duckdb import DuckDBEventStore

    rows = [(f"e{i % 700}", f"u{i}", f"i{i % 7}", "view", 1704067200 + i) for i in range(2_000)]
    frame = pd.DataFrame(rows, columns=["event_id", "user_id", "item_id", "type", "timestamp"])
    derived = frame.drop(columns="event_id").iloc[:1_500]
    derived = pd.concat([derived, derived.iloc[::3]])  # repeats across and within chunks
    outcomes = []
    for limit in (dedupe.MAX_INLINE_REPEATS, 2):
        monkeypatch.setattr(dedupe, "MAX_INLINE_REPEATS", limit)
        s = DuckDBEventStore(str(tmp_path / f"m{limit}.duckdb"))
        given = ingest_frame(s, frame, chunk_rows=400, settings=settings)
        own = ingest_frame(s, derived, chunk_rows=400, settings=settings)
        again = ingest_frame(s, derived, chunk_rows=400, settings=settings)
        assert (given.accepted, given.duplicates) == (700, 1_300)
        assert (own.accepted, own.duplicates) == (1_500, 500)
        assert (again.accepted, again.duplicates) == (0, 2_000)
        outcomes.append(_outcome(s, own)[1:])
        s.close()
    assert outcomes[0] == outcomes[1]
    first = outcomes[0][0]
    given_ids = {f"e{i}": f"u{i}" for i in range(700)}  # the first row of each given id
    assert {e["event_id"]: e["user_id"] for e in first if e["event_id"] in given_ids} == given_ids


def test_dedupe_sql_on_a_side_cursor_fails_as_a_store_error(store):
    """Repeats are settled on the validating thread's own cursor: a DuckDB failure there is
    a named StoreError (a one-line CLI error), not a raw duckdb exception."""
    from limelight.data.dedupe import settle_repeats
    from limelight.errors import StoreError

    with store.side_cursor() as cur, pytest.raises(StoreError, match="SQL failed"):
        settle_repeats(cur, "no_such_staging_table")
