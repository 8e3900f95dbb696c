"""Corrupt input: every row read is accepted, a duplicate, or quarantined with a named reason."""

from __future__ import annotations

import json
import os

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hyp_settings
from hypothesis import strategies as st

from limelight.data.ingest import ingest_file, ingest_frame
from limelight.errors import IngestError
from limelight.store.memory import MemoryEventStore

HEADER = b"user_id,item_id,type,timestamp,value\n"


def _check(store, report) -> None:
    """Reconciliation, and each rejected row quarantined once with its reason and line."""
    assert report.read == report.accepted + report.duplicates + report.rejected
    assert sum(report.reasons.values()) == report.rejected
    q = store.read("quarantine", where=f"run_id = '{report.run_id}'")
    assert len(q) == report.rejected
    assert q["reason"].notna().all() and q["line_no"].notna().all()
    assert sorted(zip(q["line_no"], q["reason"], strict=True)) == sorted(report.rejections)


def _ingest(store, tmp_path, body: bytes, settings, name="ev.csv"):
    path = tmp_path / name
    path.write_bytes(body)
    report = ingest_file(store, path, settings=settings)
    _check(store, report)
    return report


def test_wrong_types_and_impossible_timestamps(store, tmp_path, settings):
    body = HEADER + (
        b"u1,i1,view,2024-01-01,\n"
        b"u2,i2,rating,2024-01-01,five\n"        # bad_value
        b"u3,i3,rating,2024-01-01,inf\n"         # bad_value (not finite)
        b"u4,i4,view,2024-02-30,\n"              # bad_timestamp (no such day)
        b"u5,i5,view,yesterday,\n"               # bad_timestamp
        b"u6,i6,view,1969-07-20T20:17:00Z,\n"    # timestamp_out_of_range (too early)
        b"u7,i7,view,2999-01-01,\n"              # timestamp_out_of_range (future)
        b"u8,i8,view,-5,\n"                      # negative epoch: too early
        b"u9,i9,view,99999999999999999999,\n"    # absurd epoch
        b"u10,i10,warp,2024-01-01,\n"            # unknown_event_type
        b",i11,view,2024-01-01,\n"               # missing_user_id
        b"u12,,click,2024-01-01,\n"              # missing_item_id
        b"u13,i13,view,,\n"                      # missing_timestamp
        b"u14,i14,rating,2024-01-01,\n"          # missing_value
    )
    r = _ingest(store, tmp_path, body, settings)
    assert r.accepted == 1 and r.read == 14
    assert r.reasons == {"bad_value": 2, "bad_timestamp": 2, "timestamp_out_of_range": 4,
                         "unknown_event_type": 1, "missing_user_id": 1, "missing_item_id": 1,
                         "missing_timestamp": 1, "missing_value": 1}
    raw = store.read("quarantine", where="line_no = 3").iloc[0]["raw"]
    assert raw == "u2,i2,rating,2024-01-01,five"


def test_bad_encoding_truncation_and_field_counts(store, tmp_path, settings):
    body = HEADER + (
        b"u1,i1,view,2024-01-01,\n"
        b"u2,i2,view,2024-01-01,\xff\xfe\n"       # bad_encoding
        b"u3,i3,view,2024-01-01,1,extra\n"       # malformed_line: too many fields
        b"u4,i4,view\n"                          # malformed_line: too few fields
        b'u5,"i5,view,2024-01-01,\n'             # malformed_line: unbalanced quote
        b"\n"                                    # empty line: not a row
        b'u6,"i,6",view,2024-01-01,\r\n'         # quoted delimiter, CRLF: fine
        b"u7,i7,vi"                              # truncated last line, no newline
    )
    r = _ingest(store, tmp_path, body, settings)
    assert (r.read, r.accepted) == (7, 2)
    assert r.reasons == {"bad_encoding": 1, "malformed_line": 4}
    lines = dict(zip(*store.read("quarantine")[["line_no", "reason"]].T.values, strict=True))
    assert lines == {3: "bad_encoding", 4: "malformed_line", 5: "malformed_line",
                     6: "malformed_line", 9: "malformed_line"}
    assert set(store.read("events")["item_id"]) == {"i1", "i,6"}


def test_duplicates_within_and_across_files(store, tmp_path, settings):
    body = HEADER + b"u1,i1,view,2024-01-01,\n" * 3 + b"u1,i1,view,2024-01-01T00:00:00Z,\n"
    r = _ingest(store, tmp_path, body, settings)
    assert (r.accepted, r.duplicates) == (1, 3)  # same content = same derived event_id
    r2 = _ingest(store, tmp_path, body, settings, name="copy.csv")
    assert (r2.accepted, r2.duplicates) == (0, 4)


def test_empty_and_header_only_files(store, tmp_path, settings):
    for body in (b"", HEADER, b"\n\n"):
        r = _ingest(store, tmp_path, body, settings)
        assert (r.read, r.accepted, r.rejected) == (0, 0, 0)
        assert r.status == "done"


def test_binary_file_is_refused_with_a_named_error(store, tmp_path, settings):
    path = tmp_path / "events.csv"
    path.write_bytes(os.urandom(4096) + b"\x00" * 64)
    with pytest.raises(IngestError, match="binary"):
        ingest_file(store, path, settings=settings)
    assert store.count("events") == 0
    assert store.read("ingest_runs")["status"].tolist() == ["failed"]


def test_corrupt_parquet_and_jsonl(store, tmp_path, settings):
    bad_pq = tmp_path / "e.parquet"
    bad_pq.write_bytes(b"PAR1 not really parquet")
    with pytest.raises(IngestError):
        ingest_file(store, bad_pq, settings=settings)
    jl = tmp_path / "e.jsonl"
    jl.write_bytes(b'{"user_id": "u1", "item_id": "i1", "type": "view", "timestamp": 1704067200}\n'
                   b"[1, 2]\n{not json\n\xff\n"
                   b'{"user_id": "u2", "type": "view", "timestamp": 1704067200}\n')
    r = ingest_file(store, jl, settings=settings)
    _check(store, r)
    assert r.reasons == {"malformed_line": 2, "bad_encoding": 1, "missing_item_id": 1}


def test_typed_parquet_with_garbage_values(store, tmp_path, settings):
    path = tmp_path / "typed.parquet"
    pq.write_table(pa.table({
        "user_id": ["a", "b", "c", None], "item_id": ["x", "y", "z", "w"],
        "type": ["view", "VIEW", "bogus", "view"],
        "timestamp": pa.array([1704067200, 1704067200_000, -1, 1704067200], pa.int64()),
        "value": [1.0, float("nan"), 2.0, 3.0]}), path)
    r = ingest_file(store, path, settings=settings)
    _check(store, r)
    assert r.accepted == 1
    assert r.reasons == {"bad_value": 1, "unknown_event_type": 1, "missing_user_id": 1}


def test_mixed_type_frame(store, settings):
    frame = {"user_id": ["a", 5, None], "item_id": ["x", "y", "z"], "type": ["view"] * 3,
             "timestamp": ["2024-01-01", 1704067200, "garbage"]}
    import pandas as pd

    r = ingest_frame(store, pd.DataFrame(frame), settings=settings)
    _check(store, r)
    assert (r.accepted, r.rejected) == (2, 1)


@hyp_settings(max_examples=25, deadline=None,
              suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.one_of(
    st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=40),
    st.sampled_from(["u1,i1,view,2024-01-01,", "u2,i2,rating,2024-01-02,4", '"u3",i,view,x,',
                     "u4,i4,click,1704067200,1", ",,,,", '"""",a,b,c,d']),
), max_size=30), st.binary(max_size=20))
def test_reconciliation_holds_for_any_text(tmp_path_factory, settings, lines, noise):
    store = MemoryEventStore()
    body = HEADER + "\n".join(x.replace("\n", " ").replace("\r", " ") for x in lines).encode()
    body += b"\n" + noise
    path = tmp_path_factory.mktemp("fuzz") / "ev.csv"
    path.write_bytes(body)
    try:
        report = ingest_file(store, path, settings=settings)
    except IngestError as exc:  # only refusals for binary-looking input are allowed
        assert "binary" in str(exc)
        return
    _check(store, report)
    store.close()


def test_report_is_json_ready(store, tmp_path, settings):
    r = _ingest(store, tmp_path, HEADER + b"u1,i1,view,2024-01-01,\nx\n", settings)
    d = json.loads(json.dumps(r.to_dict()))
    assert d["reconciled"] is True and d["rejections"] == [[3, "malformed_line"]]
