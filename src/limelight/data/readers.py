"""Chunked readers for ingest: CSV/TSV (optionally gzip), JSON Lines, Parquet, in-memory frames.

Every reader yields :class:`Chunk` objects: an Arrow table of the source columns plus a
``__line`` column (the 1-based line of a text file, or row number of a table), the lines that
could not be parsed at all (with a named reason), and how many rows were read. Nothing is
dropped: a row is either in ``table`` or in ``malformed``.

CSV is parsed in two ways. The fast path works on a whole block of bytes with numpy (line
boundaries, quote balance, field counts) and hands the well-formed lines to pyarrow's
multithreaded parser, so line numbers stay exact without touching rows one by one in Python.
Blocks that hold anything unusual (invalid encoding, unbalanced quotes, a parser complaint)
go through the slow path, which reads them line by line with the ``csv`` module. A record
must fit on one physical line; a field with an embedded newline is quarantined as
``malformed_line``. Empty lines are not rows and are not counted.
"""

from __future__ import annotations

import csv
import gzip
import io
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from limelight.errors import IngestError

LINE = "__line"
RAW = "__raw"
FORMATS = ("csv", "tsv", "jsonl", "parquet")
_DELIMITERS = (",", "\t", ";", "|")


@dataclass
class Chunk:
    """One batch of source rows.

    Attributes
    ----------
    table
        Source columns plus ``__line`` (int64) for rows that parsed.
    malformed
        ``(line_no, reason, raw)`` for rows that could not be parsed into columns.
    n_read
        Rows read in this chunk (``table.num_rows + len(malformed)``).
    raw_of
        For text sources, a function from line numbers to the exact source lines.
    progress
        Bytes (or rows) consumed, for the progress bar.
    """

    table: pa.Table
    malformed: list[tuple[int, str, str]] = field(default_factory=list)
    raw_of: Callable[[list[int]], list[str]] | None = None
    progress: int = 0
    parquet: ParquetRange | None = None

    @property
    def n_read(self) -> int:
        rows = self.parquet.n_rows if self.parquet is not None else self.table.num_rows
        return rows + len(self.malformed)


@dataclass(frozen=True)
class ParquetRange:
    """Rows ``[start, stop)`` of a Parquet file, left for DuckDB to read in SQL.

    DuckDB decodes Parquet in parallel straight into its own vectors and prunes row groups by
    ``file_row_number``, which measured several times cheaper than decoding into Arrow first.
    """

    path: Path
    start: int
    stop: int

    @property
    def n_rows(self) -> int:
        return self.stop - self.start

    def relation(self, select: str) -> str:
        """SQL reading this range; ``select`` may use the file's columns and ``__line``."""
        path = str(self.path).replace("'", "''")
        return (f"SELECT {select} FROM (SELECT *, file_row_number + 1 AS {LINE} FROM "
                f"read_parquet('{path}', file_row_number = true) "
                f"WHERE file_row_number >= {self.start} AND file_row_number < {self.stop})")


def detect_format(path: Path, fmt: str | None) -> str:
    """The format named by ``fmt`` or guessed from the file name (``.csv.gz`` is csv)."""
    if fmt:
        fmt = fmt.lower().removeprefix(".")
        fmt = {"ndjson": "jsonl", "json": "jsonl", "txt": "csv", "parq": "parquet"}.get(fmt, fmt)
        if fmt not in FORMATS:
            raise IngestError(f"unknown format {fmt!r}; use one of {', '.join(FORMATS)}")
        return fmt
    suffixes = [s.lower() for s in path.suffixes if s.lower() not in (".gz", ".gzip")]
    ext = suffixes[-1].lstrip(".") if suffixes else ""
    guess = {"csv": "csv", "tsv": "tsv", "tab": "tsv", "txt": "csv", "data": "csv",
             "jsonl": "jsonl", "ndjson": "jsonl", "json": "jsonl",
             "parquet": "parquet", "pq": "parquet"}.get(ext)
    if guess is None:
        raise IngestError(f"cannot tell the format of {path.name}; pass fmt= "
                          f"(one of {', '.join(FORMATS)})")
    return guess


def open_binary(path: Path) -> tuple[io.BufferedIOBase, Callable[[], int]]:
    """Open ``path`` as bytes (gunzipped when needed) and a probe of the compressed position."""
    try:
        raw = open(path, "rb")  # noqa: SIM115 - closed by the caller
    except OSError as exc:
        raise IngestError(f"cannot read {path}: {exc.strerror or exc}") from exc
    magic = raw.read(2)
    raw.seek(0)
    if magic == b"\x1f\x8b":
        return gzip.GzipFile(fileobj=raw, mode="rb"), raw.tell  # type: ignore[return-value]
    return raw, raw.tell


def _looks_binary(sample: bytes) -> bool:
    return b"\x00" in sample[:8192]


def sniff_delimiter(lines: list[str]) -> str:
    """The delimiter that splits the sample lines into the same (largest) number of fields."""
    best, best_count = ",", 0
    for delim in (*_DELIMITERS, " "):
        counts = {len(next(csv.reader([ln], delimiter=delim))) for ln in lines if ln.strip()}
        if len(counts) == 1 and (n := counts.pop()) > 1 and n > best_count:
            best, best_count = delim, n
        if best_count and delim == _DELIMITERS[-1]:
            break  # a real delimiter was found; a space is only the last resort
    return best


def iter_csv(path: Path, *, delimiter: str | None = None, header: bool = True,
             encoding: str = "utf-8", chunk_rows: int = 500_000) -> Iterator[Chunk]:
    """Stream a delimited text file (plain or gzip) as chunks of about ``chunk_rows`` rows."""
    fh, position = open_binary(path)
    with fh:
        try:
            sample = fh.read(65536)
            fh.seek(0)
        except (OSError, EOFError) as exc:
            raise IngestError(f"cannot read {path}: {exc}") from exc
        if _looks_binary(sample):
            raise IngestError(f"{path.name} looks like a binary file, not delimited text")
        first = fh.readline()
        if not first.strip():
            return
        first = first.removeprefix(b"\xef\xbb\xbf")
        try:
            sample_lines = sample.decode(encoding, errors="replace").splitlines()[:50]
            head = first.decode(encoding).rstrip("\r\n")
        except UnicodeDecodeError as exc:
            raise IngestError(f"the first line of {path.name} is not {encoding} text") from exc
        delim = delimiter or sniff_delimiter(sample_lines[:20] or [head])
        header_fields = [f.strip() for f in next(csv.reader([head], delimiter=delim))]
        if header:
            columns, line_no = header_fields, 2
            if len(set(columns)) != len(columns) or any(not c for c in columns):
                raise IngestError(f"header of {path.name} has empty or repeated column names")
            pending = b""
        else:
            columns, line_no = [f"col{i}" for i in range(len(header_fields))], 1
            pending = first
        avg = max(16, len(sample) // max(1, sample.count(b"\n")))
        block = max(64 << 10, min(256 << 20, chunk_rows * avg))
        while True:
            buf = pending + fh.read(block)
            pending = b""
            if not buf:
                break
            if not buf.endswith(b"\n"):
                buf += fh.readline()
            chunk, n_lines = _parse_block(buf, line_no, columns, delim, encoding)
            chunk.progress = position()
            line_no += n_lines
            yield chunk


def _line_bounds(arr: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    nl = np.flatnonzero(arr == 10)
    starts = np.concatenate(([0], nl + 1))
    ends = np.concatenate((nl, [len(arr)]))
    if starts[-1] == len(arr):  # buffer ends with a newline: no trailing partial line
        starts, ends = starts[:-1], ends[:-1]
    has_cr = (ends > starts) & (arr[np.maximum(ends - 1, 0)] == 13)
    return starts, ends - has_cr


def _parse_block(buf: bytes, first_line: int, columns: list[str], delim: str,
                 encoding: str) -> tuple[Chunk, int]:
    """Parse one block of whole lines; returns the chunk and the number of physical lines."""
    arr = np.frombuffer(buf, dtype=np.uint8)
    starts, ends = _line_bounds(arr)
    n_lines = len(starts)
    line_nos = first_line + np.arange(n_lines, dtype=np.int64)

    def raw_of(lines: list[int]) -> list[str]:
        idx = np.asarray(lines, dtype=np.int64) - first_line
        return [buf[starts[i]:ends[i]].decode(encoding, errors="replace") for i in idx]

    fast = _fast_block(buf, arr, starts, ends, line_nos, columns, delim, encoding)
    if fast is None:
        fast = _slow_block(buf, starts, ends, line_nos, columns, delim, encoding)
    fast.raw_of = raw_of
    return fast, n_lines


def _fast_block(buf: bytes, arr: np.ndarray, starts: np.ndarray, ends: np.ndarray,
                line_nos: np.ndarray, columns: list[str], delim: str,
                encoding: str) -> Chunk | None:
    """Vectorised parse of a block, or None when the block needs the line-by-line path."""
    if _plain_block(arr, starts, ends, len(columns), delim):
        good = ends != starts
        table = _parse_lines(buf, columns, delim, encoding, int(good.sum()))
        if table is not None:
            return Chunk(table=table.append_column(LINE, pa.array(line_nos[good], pa.int64())))
    # Something is odd (or a delimiter sits inside quotes): find each line's real fields.
    quotes = np.flatnonzero(arr == 34)
    delims = np.flatnonzero(arr == ord(delim))
    if len(quotes):
        per_line = np.searchsorted(quotes, ends) - np.searchsorted(quotes, starts)
        if (per_line % 2).any():
            return None
        delims = delims[np.searchsorted(quotes, delims) % 2 == 0]
    n_fields = np.searchsorted(delims, ends) - np.searchsorted(delims, starts) + 1
    blank = ends == starts
    bad = (n_fields != len(columns)) & ~blank
    good = ~bad & ~blank
    malformed = [(int(line_nos[i]), "malformed_line",
                  buf[starts[i]:ends[i]].decode(encoding, errors="replace"))
                 for i in np.flatnonzero(bad)]
    if bad.any():  # keep contiguous runs of good lines; there are few bad ones on this path
        keep = np.flatnonzero(good)
        breaks = np.flatnonzero(np.diff(keep) != 1) + 1
        runs = np.split(keep, breaks)
        data = b"\n".join(buf[starts[r[0]]:ends[r[-1]]] for r in runs if len(r))
    else:
        data = buf
    table = _parse_lines(data, columns, delim, encoding, int(good.sum()))
    if table is None:
        return None
    table = table.append_column(LINE, pa.array(line_nos[good], pa.int64()))
    return Chunk(table=table, malformed=malformed)


def _plain_block(arr: np.ndarray, starts: np.ndarray, ends: np.ndarray, n_columns: int,
                 delim: str) -> bool:
    """Whether every non-blank line has balanced quotes and ``n_columns - 1`` delimiters.

    Counting per line with ``reduceat`` costs a few passes over the bytes, where locating
    every quote and delimiter (the exact path) cost ~1 CPU-s per million lines. Delimiters
    inside quotes are counted too, so a line that passes may still hold fewer fields; the
    parser then refuses the block and the exact path takes it.
    """
    if not len(starts):
        return True
    blank = ends == starts
    delims = np.add.reduceat(arr == ord(delim), starts, dtype=np.int64)
    if ((delims != n_columns - 1) & ~blank).any():
        return False
    quotes = arr == 34
    return not (quotes.any() and (np.add.reduceat(quotes, starts, dtype=np.int64) % 2).any())


def _parse_lines(data: bytes, columns: list[str], delim: str, encoding: str,
                 n_good: int) -> pa.Table | None:
    """pyarrow's parse of well-formed lines as text columns; None unless ``n_good`` rows."""
    if encoding.lower().replace("-", "") not in ("utf8", "utf8sig", "ascii"):
        try:
            data = data.decode(encoding).encode("utf-8")
        except UnicodeError:
            return None
    if n_good == 0:
        return pa.table({c: pa.array([], pa.string()) for c in columns})
    try:
        table = pacsv.read_csv(
            io.BytesIO(data),
            read_options=pacsv.ReadOptions(column_names=columns, block_size=8 << 20),
            parse_options=pacsv.ParseOptions(delimiter=delim, ignore_empty_lines=True),
            convert_options=pacsv.ConvertOptions(
                column_types={c: pa.string() for c in columns},
                strings_can_be_null=False, quoted_strings_can_be_null=False),
        )
    except (pa.ArrowInvalid, UnicodeError):
        return None
    return table if table.num_rows == n_good else None


def _slow_block(buf: bytes, starts: np.ndarray, ends: np.ndarray, line_nos: np.ndarray,
                columns: list[str], delim: str, encoding: str) -> Chunk:
    """Line-by-line parse that names what is wrong with each bad line."""
    rows: list[list[str]] = []
    lines: list[int] = []
    malformed: list[tuple[int, str, str]] = []
    for start, end, line_no in zip(starts.tolist(), ends.tolist(), line_nos.tolist(),
                                   strict=True):
        if start == end:
            continue
        raw = buf[start:end]
        try:
            text = raw.decode(encoding)
        except UnicodeDecodeError:
            malformed.append((line_no, "bad_encoding", raw.decode(encoding, errors="replace")))
            continue
        if "\x00" in text:
            malformed.append((line_no, "bad_encoding", text.replace("\x00", "\\0")))
            continue
        if text.count('"') % 2:
            malformed.append((line_no, "malformed_line", text))
            continue
        try:
            fields = next(csv.reader([text], delimiter=delim, strict=True))
        except csv.Error:
            malformed.append((line_no, "malformed_line", text))
            continue
        if len(fields) != len(columns):
            malformed.append((line_no, "malformed_line", text))
            continue
        rows.append(fields)
        lines.append(line_no)
    arrays = {c: pa.array([r[i] for r in rows], pa.string()) for i, c in enumerate(columns)}
    arrays[LINE] = pa.array(lines, pa.int64())
    return Chunk(table=pa.table(arrays), malformed=malformed)


def prefetch(chunks: Iterator[Chunk]) -> Iterator[Chunk]:
    """Yield ``chunks`` while a background thread already reads the next one.

    Parsing text (numpy, pyarrow, the ``csv`` module for odd blocks) and storing the previous
    chunk (DuckDB) both release the GIL for most of their time, so on two or more cores they
    overlap. At most one chunk waits in memory. Reader errors surface in the consumer at the
    chunk where they happened; a consumer that stops early stops the reader.
    """
    import queue
    import threading

    slot: queue.Queue[tuple[str, object]] = queue.Queue(maxsize=1)
    stop = threading.Event()

    def put(item: tuple[str, object]) -> bool:
        while not stop.is_set():
            try:
                slot.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def produce() -> None:
        try:
            for chunk in chunks:
                if not put(("chunk", chunk)):
                    return
            put(("end", None))
        except BaseException as exc:  # handed to the consumer, raised there
            put(("error", exc))
        finally:
            close = getattr(chunks, "close", None)
            if close is not None:
                close()

    worker = threading.Thread(target=produce, name="ingest-reader", daemon=True)
    worker.start()
    try:
        while True:
            kind, value = slot.get()
            if kind == "end":
                return
            if kind == "error":
                raise value  # type: ignore[misc]
            yield value  # type: ignore[misc]
    finally:
        stop.set()
        worker.join()


def iter_jsonl(path: Path, *, encoding: str = "utf-8",
               chunk_rows: int = 500_000) -> Iterator[Chunk]:
    """Stream a JSON Lines file; every value arrives as text (validation types it)."""
    fh, position = open_binary(path)
    with fh:
        line_no = 0
        while True:
            rows: list[dict[str, str | None]] = []
            lines: list[int] = []
            malformed: list[tuple[int, str, str]] = []
            for raw in fh:
                line_no += 1
                if not raw.strip():
                    continue
                try:
                    text = raw.decode(encoding).rstrip("\r\n")
                except UnicodeDecodeError:
                    malformed.append((line_no, "bad_encoding",
                                      raw.decode(encoding, errors="replace").rstrip("\r\n")))
                    continue
                try:
                    obj = json.loads(text)
                except ValueError:
                    obj = None
                if not isinstance(obj, dict):
                    malformed.append((line_no, "malformed_line", text))
                else:
                    rows.append({str(k): _as_text(v) for k, v in obj.items()})
                    lines.append(line_no)
                if len(rows) + len(malformed) >= chunk_rows:
                    break
            if not rows and not malformed:
                return
            names = list(dict.fromkeys(k for row in rows for k in row))
            arrays = {n: pa.array([row.get(n) for row in rows], pa.string()) for n in names}
            arrays[LINE] = pa.array(lines, pa.int64())
            yield Chunk(table=pa.table(arrays), malformed=malformed, progress=position())


def _as_text(value: object) -> str | None:
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list | dict):
        return json.dumps(value, ensure_ascii=False)
    return str(value)


def iter_parquet(path: Path, *, chunk_rows: int = 500_000) -> Iterator[Chunk]:
    """Stream a Parquet file in row batches; typed columns are kept as they are."""
    try:
        pf = pq.ParquetFile(path)
    except (OSError, pa.ArrowException) as exc:
        raise IngestError(f"cannot read Parquet file {path}: {exc}") from exc
    offset = 0
    try:
        for batch in pf.iter_batches(batch_size=chunk_rows):
            table = pa.Table.from_batches([batch])
            lines = np.arange(offset + 1, offset + 1 + table.num_rows, dtype=np.int64)
            offset += table.num_rows
            yield Chunk(table=table.append_column(LINE, pa.array(lines)), progress=offset)
    except (OSError, pa.ArrowException) as exc:
        raise IngestError(f"Parquet file {path} is corrupt after row {offset}: {exc}") from exc


def iter_parquet_ranges(path: Path, *, chunk_rows: int = 500_000) -> Iterator[Chunk]:
    """Chunks of a Parquet file as row ranges for DuckDB to read (see :class:`ParquetRange`).

    Each chunk's ``table`` is empty and carries the file's schema; ranges follow row-group
    boundaries where the row groups are not larger than ``chunk_rows``.
    """
    try:
        pf = pq.ParquetFile(path)
        schema = pf.schema_arrow
        sizes = [pf.metadata.row_group(i).num_rows for i in range(pf.metadata.num_row_groups)]
    except (OSError, pa.ArrowException) as exc:
        raise IngestError(f"cannot read Parquet file {path}: {exc}") from exc
    empty = schema.empty_table().append_column(LINE, pa.array([], pa.int64()))
    start = stop = 0
    for size in sizes:
        if stop > start and stop - start + size > chunk_rows:
            yield Chunk(table=empty, progress=stop, parquet=ParquetRange(path, start, stop))
            start = stop
        stop += size
        while stop - start >= chunk_rows:
            yield Chunk(table=empty, progress=start + chunk_rows,
                        parquet=ParquetRange(path, start, start + chunk_rows))
            start += chunk_rows
    if stop > start:
        yield Chunk(table=empty, progress=stop, parquet=ParquetRange(path, start, stop))


def iter_frame(frame: pd.DataFrame | pa.Table, *, chunk_rows: int = 500_000) -> Iterator[Chunk]:
    """Chunks of an in-memory pandas DataFrame or Arrow table.

    Rows are numbered from 1 unless the frame has its own ``__line`` column; a ``__raw`` column,
    when present, is what quarantine keeps as a rejected row's raw content.
    """
    table = frame if isinstance(frame, pa.Table) else _frame_to_arrow(frame)
    given = LINE in table.column_names  # adapters pass the line numbers of their source file
    for start in range(0, max(table.num_rows, 1), chunk_rows):
        part = table.slice(start, chunk_rows)
        if part.num_rows == 0:
            return
        if given:
            part = part.set_column(part.column_names.index(LINE), LINE,
                                   part.column(LINE).cast(pa.int64()))
        else:
            lines = np.arange(start + 1, start + 1 + part.num_rows, dtype=np.int64)
            part = part.append_column(LINE, pa.array(lines))
        yield Chunk(table=part, progress=start + part.num_rows)


def _frame_to_arrow(frame: pd.DataFrame) -> pa.Table:
    frame = frame.reset_index(drop=True)
    frame.columns = [str(c) for c in frame.columns]
    try:
        return pa.Table.from_pandas(frame, preserve_index=False)
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        # Mixed-type object columns: hand them over as text and let validation type them.
        fixed = {}
        for name in frame.columns:
            col = frame[name]
            try:
                fixed[name] = pa.array(col, from_pandas=True)
            except (pa.ArrowInvalid, pa.ArrowTypeError):
                fixed[name] = pa.array([None if _isna(v) else _as_text(v) for v in col],
                                       pa.string())
        return pa.table(fixed)


def _isna(value: object) -> bool:
    try:
        return bool(pd.isna(value))
    except (TypeError, ValueError):
        return False
