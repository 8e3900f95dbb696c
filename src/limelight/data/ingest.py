"""Ingest: read a source in chunks, validate and clean it, quarantine what is bad, store the rest.

Each chunk is one transaction in the store: its accepted rows, its quarantined rows and the
run's running totals are committed together, so a process killed mid-ingest leaves whole
chunks or nothing, and running the same ingest again completes it without duplicates (events
are deduplicated by ``event_id``, quarantined rows by source, line and content).

Every row read is counted exactly once, as accepted (new), duplicate (already stored or
repeated within the source) or rejected (in quarantine with a named reason), so
``read == accepted + duplicates + rejected`` holds for any input.

Chunks are validated into staging tables ahead, on a helper thread, while the
previous chunk is stored (:mod:`limelight.data.staging`).
"""

from __future__ import annotations

import json
import sys
import uuid
from collections import Counter
from collections.abc import Iterator, Mapping
from contextlib import closing
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa

from limelight.data import readers, schema
from limelight.data.dedupe import RunIds, settle_stored
from limelight.data.staging import RunContext, Staged, drop_staged, staged_chunks
from limelight.data.validate import KINDS, TimeBounds
from limelight.errors import IngestError, SchemaError

#: At most this many (line, reason) pairs are kept in a report; the quarantine keeps all.
MAX_REPORTED_REJECTIONS = 10_000


@dataclass
class IngestReport:
    """What one ingest run did. ``read == accepted + duplicates + rejected`` always.

    Attributes
    ----------
    read
        Rows read from the source (empty lines of text files are not rows).
    accepted
        Rows stored (new, or changed for users/contacts/items).
    duplicates
        Valid rows already stored, or repeated within the source.
    rejected
        Rows quarantined; ``reasons`` counts them by reason.
    rejections
        ``(line_no, reason)`` of rejected rows (the first 10,000; the quarantine has all).
    accepted_event_ids
        Ids of the events stored by this run (collected for in-memory sources only).
    """

    run_id: str
    source: str
    entity: str
    format: str
    read: int = 0
    accepted: int = 0
    duplicates: int = 0
    rejected: int = 0
    reasons: dict[str, int] = field(default_factory=dict)
    rejections: list[tuple[int, str]] = field(default_factory=list)
    accepted_event_ids: list[str] = field(default_factory=list)
    ignored_columns: list[str] = field(default_factory=list)
    status: str = "running"
    started_at: str = ""
    finished_at: str | None = None
    seconds: float = 0.0

    @property
    def reconciled(self) -> bool:
        """Whether every row read is accounted for."""
        return self.read == self.accepted + self.duplicates + self.rejected

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (rejections as ``[line, reason]`` pairs)."""
        out = {k: getattr(self, k) for k in (
            "run_id", "source", "entity", "format", "status", "read", "accepted", "duplicates",
            "rejected", "reasons", "ignored_columns", "started_at", "finished_at", "seconds")}
        out["rejections"] = [list(r) for r in self.rejections]
        out["accepted_event_ids"] = list(self.accepted_event_ids)
        out["reconciled"] = self.reconciled
        return out

    def _add(self, other: IngestReport) -> None:
        for name in ("read", "accepted", "duplicates", "rejected"):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        for reason, n in other.reasons.items():
            self.reasons[reason] = self.reasons.get(reason, 0) + n


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def _settings(settings: Any | None) -> Any:
    if settings is None:
        from limelight.settings import get_settings

        settings = get_settings()
    return settings


def ingest_file(store: Any, path: str | Path, entity: str = "events", *,
                mapping: Mapping[str, str] | None = None, fmt: str | None = None,
                source_name: str | None = None, chunk_rows: int | None = None,
                progress: bool = False, constants: Mapping[str, object] | None = None,
                delimiter: str | None = None, header: bool = True, encoding: str = "utf-8",
                settings: Any | None = None) -> IngestReport:
    """Ingest a CSV/TSV (plain or gzip), JSON Lines or Parquet file into ``store``.

    Parameters
    ----------
    store
        A DuckDB-backed :class:`~limelight.store.base.EventStore`.
    path
        The file. Larger-than-memory files stream in chunks of ``chunk_rows``.
    entity
        ``events``, ``users``, ``contacts``, ``items`` or ``edges``.
    mapping
        Source column -> data-model column, e.g. ``{"CustomerID": "user_id"}``.
    fmt
        ``csv``, ``tsv``, ``jsonl`` or ``parquet``; guessed from the name when None.
    source_name
        Name recorded with quarantined rows (default: the file's path).
    chunk_rows
        Rows per chunk/transaction (default ``settings.ingest.chunk_rows``).
    progress
        Show a progress bar on stderr.
    constants
        Data-model column -> value for every row, e.g. ``{"type": "rating"}``.
    delimiter, header, encoding
        Text options; the delimiter is sniffed when None. Without a header, columns are
        named ``col0``, ``col1``, ...

    Returns
    -------
    IngestReport

    Example
    -------
    >>> ingest_file(store, "ratings.csv", mapping={"userId": "user_id", "movieId": "item_id",
    ...             "rating": "value"}, constants={"type": "rating"})  # doctest: +SKIP
    """
    settings = _settings(settings)
    path = Path(path)
    if not path.is_file():
        raise IngestError(f"no such file: {path}")
    fmt = readers.detect_format(path, fmt)
    rows = chunk_rows or settings.ingest.chunk_rows
    if fmt in ("csv", "tsv"):
        delim = delimiter or ("\t" if fmt == "tsv" else None)
        chunks = readers.iter_csv(path, delimiter=delim, header=header, encoding=encoding,
                                  chunk_rows=rows)
        total = path.stat().st_size
    elif fmt == "jsonl":
        chunks = readers.iter_jsonl(path, encoding=encoding, chunk_rows=rows)
        total = path.stat().st_size
    else:
        from limelight.privacy.pseudonymize import pseudonymizer_from_settings

        # Pseudonymization maps ids in Arrow; otherwise DuckDB reads the file itself.
        if pseudonymizer_from_settings(settings) is None:
            chunks = readers.iter_parquet_ranges(path, chunk_rows=rows)
        else:
            chunks = readers.iter_parquet(path, chunk_rows=rows)
        total = _parquet_rows(path)
    if fmt != "parquet":  # DuckDB reads Parquet itself; text is parsed here, ahead
        chunks = readers.prefetch(chunks)
    return _run(store, chunks, entity, source=source_name or str(path), fmt=fmt,
                mapping=mapping, constants=constants, settings=settings, progress=progress,
                total=total, collect_ids=False, raw_lines=fmt in ("csv", "tsv"))


def ingest_frame(store: Any, frame: pd.DataFrame | pa.Table, entity: str = "events", *,
                 mapping: Mapping[str, str] | None = None, source_name: str = "frame",
                 constants: Mapping[str, object] | None = None, chunk_rows: int | None = None,
                 settings: Any | None = None) -> IngestReport:
    """Ingest an in-memory pandas DataFrame or Arrow table (row numbers count from 1).

    Example
    -------
    >>> ingest_frame(store, pd.DataFrame({"user_id": ["u1"], "item_id": ["i1"],
    ...     "type": ["view"], "timestamp": ["2024-05-01T10:00:00Z"]}))  # doctest: +SKIP
    """
    settings = _settings(settings)
    rows = chunk_rows or settings.ingest.chunk_rows
    chunks = readers.iter_frame(frame, chunk_rows=rows)
    return _run(store, chunks, entity, source=source_name, fmt="frame", mapping=mapping,
                constants=constants, settings=settings, progress=False, total=None,
                collect_ids=True, raw_lines=False)


def ingest_records(store: Any, records: list[dict[str, Any]], entity: str = "events",
                   source_name: str = "api", *, settings: Any | None = None) -> IngestReport:
    """Ingest a list of dicts (e.g. an API request body); values may be any JSON types.

    Small event batches take a Python fast path (:mod:`limelight.data.records`) with the same
    rules, reasons and quarantine; anything it cannot read exactly comes through here.
    """
    from limelight.data import records as fast

    settings = _settings(settings)
    if fast.fast_path_applies(records, entity, settings):
        report = fast.ingest_event_records(store, records, source_name=source_name,
                                           settings=settings)
        if report is not None:
            return report
    frame = pd.DataFrame.from_records(
        [{k: readers._as_text(v) for k, v in r.items()} if isinstance(r, dict) else {}
         for r in records])
    if frame.empty and records:
        frame = pd.DataFrame(index=range(len(records)))
    table = pa.Table.from_pandas(frame.astype(object).where(frame.notna(), None),
                                 preserve_index=False) if len(frame.columns) else \
        pa.table({"__empty": pa.nulls(len(records), pa.string())})
    return ingest_frame(store, table, entity, source_name=source_name, settings=settings)


def _parquet_rows(path: Path) -> int | None:
    try:
        import pyarrow.parquet as pq

        return pq.ParquetFile(path).metadata.num_rows
    except Exception:
        return None


def _run(store: Any, chunks: Iterator[readers.Chunk], entity: str, *, source: str, fmt: str,
         mapping: Mapping[str, str] | None, constants: Mapping[str, object] | None,
         settings: Any, progress: bool, total: int | None, collect_ids: bool,
         raw_lines: bool) -> IngestReport:
    if entity not in schema.ENTITIES:
        raise SchemaError(f"unknown entity {entity!r}; use one of {sorted(schema.ENTITIES)}")
    from limelight.privacy.pseudonymize import pseudonymizer_from_settings

    mapping = dict(mapping or {})
    unknown_targets = sorted(set(mapping.values()) - set(KINDS[entity]))
    if unknown_targets and entity not in ("users", "items"):
        raise SchemaError(f"mapping targets {unknown_targets} are not {entity} columns; "
                          f"known: {sorted(KINDS[entity])}")
    pseudo = pseudonymizer_from_settings(settings)
    report = IngestReport(run_id=uuid.uuid4().hex, source=source, entity=entity, format=fmt,
                          started_at=_now())
    ctx = RunContext(store, entity, report, mapping, dict(constants or {}),
                     TimeBounds(settings.ingest.min_timestamp, settings.ingest.max_future_seconds),
                     pseudo, collect_ids, raw_lines and pseudo is None,
                     RunIds() if entity == "events" else None)
    started = datetime.now(UTC)
    bar = _progress_bar(progress, total, fmt)
    store.record_run(_run_row(report))
    try:
        with closing(staged_chunks(ctx, chunks)) as staged_iter:
            for staged in staged_iter:
                part = _store_chunk(ctx, staged)
                report._add(part)
                if len(report.rejections) < MAX_REPORTED_REJECTIONS:
                    room = MAX_REPORTED_REJECTIONS - len(report.rejections)
                    report.rejections.extend(part.rejections[:room])
                report.accepted_event_ids.extend(part.accepted_event_ids)
                if bar is not None:
                    bar.update(staged.progress - bar.n)
                    bar.set_postfix(rows=report.read, rejected=report.rejected, refresh=False)
        report.status = "done"
    except BaseException:
        report.status = "failed"
        raise
    finally:
        if bar is not None:
            bar.close()
        report.finished_at = _now()
        report.seconds = round((datetime.now(UTC) - started).total_seconds(), 3)
        try:
            store.record_run(_run_row(report))
        except Exception:
            if report.status == "done":
                raise
    return report


def _store_chunk(ctx: RunContext, staged: Staged) -> IngestReport:
    """Store one staged chunk in one transaction: its new rows, quarantine, run totals."""
    store, entity, run, part = ctx.store, ctx.entity, ctx.run, staged.part
    run.ignored_columns += [c for c in staged.ignored if c not in run.ignored_columns]
    try:
        # The write lock is held from the duplicate check to the commit, so no other writer
        # can store one of this chunk's ids in between.
        with store.exclusive():
            earlier = ctx.seen.matched(staged.seq) if ctx.seen is not None else None
            if staged.hashes is not None:  # set only for events, while the staged table lives
                # Before the transaction: it deletes from the staging table (another database).
                staged.hints.update(settle_stored(store, staged.typed, staged.hashes,
                                                  staged.ids_given, ctx.seen, earlier))
            with store.transaction():
                if staged.typed is not None:
                    inserted, ids = store.insert_from(
                        entity, f"(SELECT * FROM {staged.typed} WHERE __reason IS NULL)",
                        staged.columns, order_by="__line",
                        returning=ctx.collect_ids and entity == "events", **staged.hints)
                    part.accepted = inserted
                    part.duplicates = staged.n_valid - inserted
                    part.accepted_event_ids = ids
                _quarantine(store, staged.rejected, run, entity)
                if staged.pairs is not None and staged.pairs.num_rows and entity != "contacts":
                    store.write("contacts", staged.pairs)  # the one link back to the raw id
                part.rejected = len(staged.rejected)
                part.reasons = dict(Counter(r[1] for r in staged.rejected))
                part.rejections = [(r[0], r[1])
                                   for r in staged.rejected[:MAX_REPORTED_REJECTIONS]]
                snapshot = IngestReport(**{**run.__dict__, "reasons": dict(run.reasons)})
                snapshot._add(part)
                store.record_run(_run_row(snapshot))
        if staged.hashes is not None:  # committed
            ctx.seen.inserted += part.accepted
    finally:
        drop_staged(store, staged)  # outside the transaction: it writes another database
    return part


def _progress_bar(progress: bool, total: int | None, fmt: str) -> Any:
    if not progress:
        return None
    from tqdm import tqdm

    unit = "row" if fmt == "parquet" else "B"
    return tqdm(total=total, unit=unit, unit_scale=True, file=sys.stderr, desc="ingest",
                dynamic_ncols=True)


def _run_row(report: IngestReport) -> dict[str, object]:
    row = report.to_dict()
    row.pop("rejections")
    row.pop("accepted_event_ids")
    return row


def _quarantine(store: Any, rejected: list[tuple[int, str, str, Any]], run: IngestReport,
                entity: str) -> None:
    if not rejected:
        return
    table = pa.table({
        "source": pa.array([run.source] * len(rejected), pa.string()),
        "line_no": pa.array([r[0] for r in rejected], pa.int64()),
        "raw": pa.array([r[2] for r in rejected], pa.string()),
        "reason": pa.array([r[1] for r in rejected], pa.string()),
        "entity": pa.array([entity] * len(rejected), pa.string()),
        "user_id": pa.array([r[3] for r in rejected], pa.string()),
        "run_id": pa.array([run.run_id] * len(rejected), pa.string()),
    })
    store.quarantine(table)


def report_json(report: IngestReport) -> str:
    """The report as indented JSON."""
    return json.dumps(report.to_dict(), indent=2, default=str)
