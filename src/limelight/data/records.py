"""Fast ingest of small batches of events given as records (the serving API's ``POST /events``).

Bulk ingest (:mod:`limelight.data.ingest`) validates a chunk with one SQL pass, which is the
right trade for half a million rows but costs tens of milliseconds of fixed overhead per call
(temporary tables, several statements, three run records). A request carrying one event must be
reflected in the user's next recommendations within a few milliseconds, so this module
validates small batches in Python and writes them in one transaction with at most three
statements: one ``INSERT`` of the valid rows (anti-joined against the stored ids), one
quarantine insert when rows were rejected, and one run record.

The rules are the same, not a copy kept in step by hand: column kinds, ranges, required
columns, event types and time bounds come from :mod:`limelight.data.validate` and
:mod:`limelight.data.schema`, the checks run in the order :func:`validate.validation_sql`
applies them, and a rejected row is quarantined with the same line number, raw JSON and reason.
Whenever a batch holds a value whose reading by DuckDB this module does not reproduce exactly
(a timestamp or number in an unusual notation, text beyond printable ASCII, whose trimming,
case folding and JSON escaping DuckDB does its own way) the whole batch goes through bulk
ingest instead, so the fast path only ever answers where its answer is certain.
"""

from __future__ import annotations

import json
import re
import uuid
from collections import Counter
from contextlib import suppress
from datetime import UTC, datetime, timedelta
from typing import Any

import pyarrow as pa

from limelight.data import event_keys, schema
from limelight.data.event_keys import KEY
from limelight.data.validate import KINDS, RANGES
from limelight.store import event_layout
from limelight.store.duckdb import EVENT_TABLE

#: Batches larger than this take the bulk path (its SQL pass wins on large batches).
MAX_FAST_RECORDS = 2_000

_ISO = re.compile(
    r"(\d{4})-(\d{1,2})-(\d{1,2})"
    r"(?:[T ](\d{2}):(\d{2})(?::(\d{2})(?:\.(\d{1,6}))?)?(Z|[+-]\d{2}(?::?\d{2})?)?)?")
_FLOAT = re.compile(r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?")
_NON_FINITE = ("inf", "infinity", "nan")
_INT = re.compile(r"-?\d{1,19}")
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_FAR_FUTURE_US = 250_000_000_000_000_000


class _Uncertain(Exception):
    """A value this module cannot read exactly as DuckDB would: use the bulk path."""


def _text(value: str | None) -> str | None:
    """``NULLIF(trim(v), '')`` for printable ASCII (other text raises :class:`_Uncertain`)."""
    if value is None:
        return None
    if not (value.isascii() and value.isprintable()):
        raise _Uncertain
    value = value.strip(" ")
    return value or None


def _enum(value: str | None) -> str | None:
    text = _text(value)
    return None if text is None else text.lower().replace(" ", "_").replace("-", "_")


def _float(text: str | None) -> float | None:
    if text is None:
        return None
    if text.lower().lstrip("+-") in _NON_FINITE or not any(c.isdigit() for c in text):
        return float("nan")  # NULL or not finite to DuckDB: a bad value either way
    if not _FLOAT.fullmatch(text):
        raise _Uncertain
    return float(text)


def _iso_us(text: str) -> int | None:
    """Epoch microseconds of an ISO timestamp (naive means UTC, as the store's session)."""
    m = _ISO.fullmatch(text)
    if m is None:
        return None
    year, month, day, hh, mm, ss, frac, tz = m.groups()
    try:
        ts = datetime(int(year), int(month), int(day), int(hh or 0), int(mm or 0), int(ss or 0),
                      int((frac or "0").ljust(6, "0")), tzinfo=UTC)
    except ValueError as exc:  # e.g. February 30th: DuckDB's reading of it is not ours
        raise _Uncertain from exc
    us = (ts - _EPOCH) // timedelta(microseconds=1)
    if tz and tz != "Z":
        sign = -1 if tz[0] == "+" else 1
        digits = tz[1:].replace(":", "")
        us += sign * (int(digits[:2]) * 3600 + int(digits[2:4] or 0) * 60) * 1_000_000
    return us


def _epoch_int_us(value: int) -> int:
    """Seconds / ms / us / ns told apart by magnitude, as ``validate._epoch_us`` does."""
    size = abs(value)
    if size >= 100_000_000_000_000_000:
        return value // 1000 if value >= 0 else -((-value) // 1000)
    if size >= 100_000_000_000_000:
        return value
    if size >= 100_000_000_000:
        return value * 1000
    return value * 1_000_000


def _timestamp_us(text: str | None) -> int | None:
    """Epoch microseconds of a timestamp text; None when it does not parse."""
    if text is None:
        return None
    us = _iso_us(text)
    if us is not None:
        return us
    if _INT.fullmatch(text) and abs(int(text)) < 2**63:
        us = _epoch_int_us(int(text))
        # Beyond year ~9900 DuckDB keeps a sentinel far-future time; out of range either way.
        return us if abs(us) < _FAR_FUTURE_US else _FAR_FUTURE_US
    raise _Uncertain  # floats, compact dates and the like: DuckDB's reading decides


def _to_text(value: object) -> str | None:
    from limelight.data.readers import _as_text

    return _as_text(value)


class _Rules:
    """The event rules of ``validate.validation_sql`` in the order it checks them."""

    def __init__(self, settings: Any) -> None:
        lo = _iso_us(str(settings.ingest.min_timestamp).strip())
        if lo is None:
            raise _Uncertain
        self.min_us = lo
        self.max_us = ((datetime.now(UTC) - _EPOCH) // timedelta(microseconds=1)
                       + int(settings.ingest.max_future_seconds) * 1_000_000)
        self.types = schema.EVENT_TYPES
        self.item_types = schema.ITEM_EVENT_TYPES
        self.kinds = KINDS["events"]
        self.ranges = RANGES["events"]

    def check(self, row: dict[str, str | None]) -> tuple[dict[str, Any], str | None]:
        """Typed values of one row (as text dict) and its first failing reason (or None)."""
        typed: dict[str, Any] = {}
        given: dict[str, bool] = {}
        for col, kind in self.kinds.items():
            raw = row.get(col)
            if kind in ("id", "text"):
                typed[col] = _text(raw)
            elif kind == "enum":
                typed[col] = _enum(raw)
            elif kind == "float":
                text = _text(raw)
                given[col] = text is not None
                typed[col] = _float(text)
            elif kind == "ts":
                text = _text(raw)
                given[col] = text is not None
                typed[col] = _timestamp_us(text)
        return typed, self._reason(typed, given)

    def _reason(self, typed: dict[str, Any], given: dict[str, bool]) -> str | None:
        if typed["user_id"] is None:
            return "missing_user_id"
        kind = typed["type"]
        if kind is None:
            return "missing_type"
        if kind not in self.types:
            return "unknown_event_type"
        if kind in self.item_types and typed["item_id"] is None:
            return "missing_item_id"
        if kind == "rating" and not given["value"]:
            return "missing_value"
        if not given["timestamp"]:
            return "missing_timestamp"
        for col in ("value", "quantity"):
            value = typed[col]
            if given[col] and value is None:
                return f"bad_{col}"
            if value is not None and self.ranges.get(col) and not _finite(value):
                return f"bad_{col}"
        ts = typed["timestamp"]
        if ts is None:
            return "bad_timestamp"
        if ts < self.min_us or ts > self.max_us:
            return "timestamp_out_of_range"
        return None


def _finite(value: float) -> bool:
    return value == value and value not in (float("inf"), float("-inf"))


def fast_path_applies(records: list[Any], entity: str, settings: Any) -> bool:
    """Whether :func:`ingest_event_records` may take ``records`` (cheap structural checks)."""
    if entity != "events" or not records or len(records) > MAX_FAST_RECORDS:
        return False
    from limelight.privacy.pseudonymize import pseudonymizer_from_settings

    return pseudonymizer_from_settings(settings) is None


def ingest_event_records(store: Any, records: list[Any], *, source_name: str,
                         settings: Any) -> Any | None:
    """Ingest a small batch of event records; None when the bulk path must decide.

    Returns an :class:`~limelight.data.ingest.IngestReport` exactly as bulk ingest of the same
    records would (same accepted rows, duplicates, rejected lines, reasons and raw content),
    or None (nothing written) when a value needs DuckDB's own reading, or the batch lacks a
    required column altogether (bulk ingest names the problem).
    """
    from limelight.data.ingest import IngestReport, _now, _run_row

    rows = [{str(k): _to_text(v) for k, v in r.items()} if isinstance(r, dict) else {}
            for r in records]
    names = list(dict.fromkeys(k for row in rows for k in row))
    if any(n.startswith("__") for n in names) or any(
            not isinstance(k, str) for r in records if isinstance(r, dict) for k in r):
        return None
    if any(c not in names for c in schema.REQUIRED["events"]):
        return None
    # Unknown columns too end up in a rejected row's raw JSON, whose escaping is DuckDB's.
    if not all(v is None or (v.isascii() and v.isprintable()) for row in rows
               for v in row.values()):
        return None
    try:
        rules = _Rules(settings)
        checked = [rules.check(row) for row in rows]
        rejected = [(line, reason, _raw(row, names))
                    for line, (row, (_, reason)) in enumerate(zip(rows, checked, strict=True), 1)
                    if reason is not None]
    except _Uncertain:
        return None
    started = datetime.now(UTC)
    report = IngestReport(run_id=uuid.uuid4().hex, source=source_name, entity="events",
                          format="frame", started_at=_now(), read=len(records))
    known = set(KINDS["events"])
    report.ignored_columns = [n for n in names if n not in known]
    valid, first = [], {}
    for line, (typed, reason) in enumerate(checked, 1):
        if reason is not None:
            continue
        typed["__id_given"] = typed["event_id"] is not None
        if typed["event_id"] is None:
            typed["event_id"] = schema.derive_event_id(
                typed["user_id"], typed["item_id"], typed["type"], typed["timestamp"])
        if typed["event_id"] in first:  # a repeat within the batch: the first line wins
            continue
        first[typed["event_id"]] = line
        valid.append(typed)
    n_valid = sum(1 for _, reason in checked if reason is None)
    report.rejected = len(rejected)
    report.reasons = dict(Counter(r[1] for r in rejected))
    report.rejections = [(line, reason) for line, reason, _ in rejected]
    try:
        with store.transaction():
            ids = _insert(store, valid, [n for n in KINDS["events"] if n in names])
            report.accepted = len(ids)
            report.duplicates = n_valid - len(ids)
            report.accepted_event_ids = ids
            if rejected:
                _quarantine(store, [(line, reason, raw, checked[line - 1][0]["user_id"])
                                    for line, reason, raw in rejected],
                            source_name, report.run_id)
            report.status = "done"
            _finish(report, started, _now)
            _record_run(store, _run_row(report))
    except BaseException:
        report.status = "failed"
        _finish(report, started, _now)
        with suppress(Exception):  # outside the rolled-back transaction: stays visible
            store.record_run(_run_row(report))
        raise
    return report


def _finish(report: Any, started: datetime, now: Any) -> None:
    report.finished_at = now()
    report.seconds = round((datetime.now(UTC) - started).total_seconds(), 3)


def _raw(row: dict[str, str | None], names: list[str]) -> str:
    """What bulk ingest keeps as raw content: ``to_json(struct_pack(...))`` of the source row."""
    return json.dumps({n: row.get(n) for n in names}, separators=(",", ":"))


def _lit(value: Any) -> str:
    """A SQL literal (text here is printable ASCII, checked by :func:`_text`)."""
    if value is None:
        return "NULL"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return f"CAST('{value!r}' AS DOUBLE)"
    return "'" + str(value).replace("'", "''") + "'"


def _insert(store: Any, valid: list[dict[str, Any]], present: list[str]) -> list[str]:
    """Insert rows whose ``event_id`` is not stored yet; returns the inserted ids in order.

    A point probe for the batch's ids (a filter on the id column, far cheaper than the
    anti-join bulk ingest uses for large batches), then one plain insert of the new rows, whose
    columns travel as list parameters unnested in SQL (cheaper to plan than a registered Arrow
    table or a VALUES list). Both run inside the caller's transaction, under the store's lock.
    """
    if not valid:
        return []
    keys = [event_keys.key_of(row["event_id"]) for row in valid]
    if len(keys) <= 16:  # integer literals: cheaper to plan than a list parameter
        probe, params = f"e.{KEY} IN ({', '.join(map(str, keys))})", None
    else:
        probe, params = f"list_contains({event_keys.KEYS_PARAM}, e.{KEY})", [list(map(str, keys))]
    if not any(row["__id_given"] for row in valid):
        # Derived ids are a function of the timestamp, so a stored event with the same id has
        # a timestamp inside this batch's range: zone maps skip the rest of the table.
        stamps = [row["timestamp"] for row in valid]
        probe += (f" AND e.timestamp BETWEEN CAST(make_timestamp({min(stamps)}) AS TIMESTAMPTZ)"
                  f" AND CAST(make_timestamp({max(stamps)}) AS TIMESTAMPTZ)")
    stored = {int(r[0]) for r in store.execute(
        f"SELECT e.{KEY} FROM {EVENT_TABLE} e WHERE {probe}", params).fetchall()}
    new = [(row, key) for row, key in zip(valid, keys, strict=True) if key not in stored]
    if not new:
        return []
    cols, packed = event_layout.split(
        [c for c in schema.EVENTS.names if c in present or c == "event_id"])
    select = [f"unnest({event_keys.KEYS_PARAM}) AS {KEY}"]
    values: list[list[Any]] = [[str(key) for _, key in new]]
    for col in cols:
        if col == "timestamp":
            select.append('CAST(make_timestamp(unnest(?::BIGINT[])) AS TIMESTAMPTZ) AS "timestamp"')
        else:
            kind = "DOUBLE" if _FIELDS[col] == pa.float64() else "VARCHAR"
            select.append(f'unnest(?::{kind}[]) AS "{col}"')
        if col == "event_id":  # canonical ids are their key alone (see event_keys)
            values.append([None if event_keys.is_canonical(row[col]) else row[col]
                           for row, _ in new])
        else:
            values.append([row[col] for row, _ in new])
    targets = [KEY, *(f'"{c}"' for c in cols)]
    if packed:
        # Built here, not by json_object in SQL: planning that cost ~1 ms per one-event call.
        select.append(f"unnest(?::VARCHAR[]) AS {event_layout.DETAILS}")
        targets.append(event_layout.DETAILS)
        values.append([event_layout.details_text(row) for row, _ in new])
    store.execute(f"INSERT INTO {EVENT_TABLE} ({', '.join(targets)}) SELECT {', '.join(select)}",
                  values)
    return [row["event_id"] for row, _ in new]


#: Event columns in the data model's order, with their Arrow types.
_FIELDS = {f.name: f.type for f in schema.EVENTS}

_QUARANTINE = ["source", "line_no", "raw", "reason", "entity", "user_id", "run_id"]
_RUN = ["run_id", "source", "entity", "format", "status", "started_at", "finished_at", "read",
        "accepted", "duplicates", "rejected", "reasons"]


def _quarantine(store: Any, rejected: list[tuple[int, str, str, str | None]],
                source: str, run_id: str) -> None:
    """Quarantine rejected rows through the store's own rule (no repeat of source/line/raw)."""
    n = len(rejected)
    columns = [[source] * n, [r[0] for r in rejected], [r[2] for r in rejected],
               [r[1] for r in rejected], ["events"] * n, [r[3] for r in rejected],
               [run_id] * n]
    select = ", ".join(
        f"unnest({_lit_list(values, 'BIGINT' if name == 'line_no' else 'VARCHAR')}) AS {name}"
        for name, values in zip(_QUARANTINE, columns, strict=True))
    store.quarantine_from(f"(SELECT {select})")


def _lit_list(values: list[Any], kind: str) -> str:
    return f"CAST([{', '.join(_lit(v) for v in values)}] AS {kind}[])"


def _record_run(store: Any, row: dict[str, Any]) -> None:
    """One new ``ingest_runs`` row (a fresh run id: a plain insert, no upsert needed)."""
    values = [row.get(c) for c in _RUN]
    values[-1] = json.dumps(row.get("reasons") or {}, sort_keys=True)
    cells = [_lit(v) for v in values]
    for i in (5, 6):  # started_at, finished_at
        cells[i] = f"CAST({cells[i]} AS TIMESTAMPTZ)"
    quoted = ", ".join(f'"{c}"' for c in _RUN)
    store.execute(f"INSERT INTO ingest_runs ({quoted}) VALUES ({', '.join(cells)})")
