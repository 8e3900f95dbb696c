"""``limelight ingest``, ``limelight stats`` and ``limelight quarantine list|show|export``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from limelight.cli.common import console, fail, open_configured_store, print_json, print_table

#: Files of a data folder (e.g. a generated sample world) in ingest order.
FOLDER_ENTITIES = ("users", "contacts", "items", "events", "edges")
_SUFFIXES = (".parquet", ".csv", ".csv.gz", ".tsv", ".jsonl", ".jsonl.gz")

quarantine_app = typer.Typer(
    help="Inspect rows rejected at ingest: list, show one, export all.\n\n"
    "Example: limelight quarantine list --reason bad_timestamp",
    no_args_is_help=True,
)


def register(app: typer.Typer) -> None:
    app.command(
        "ingest",
        help="Validate and store a file, a data folder or a public dataset.\n\n"
        "Bad rows are quarantined with a reason; the report reconciles read = accepted + "
        "duplicates + rejected. Re-running adds nothing.\n\n"
        "Examples:\n\n"
        "  limelight ingest events.csv --map CustomerID=user_id --const type=purchase\n\n"
        "  limelight ingest ./world   (users/items/events/edges files of a folder)\n\n"
        "  limelight ingest data/ml-100k --dataset ml-100k --json",
    )(ingest)
    app.command(
        "stats",
        help="Counts, event date range, events per type, sparsity and top items of the store."
        "\n\nExample: limelight stats --json",
    )(stats)
    app.add_typer(quarantine_app, name="quarantine")


def _parse_pairs(pairs: list[str], option: str) -> dict[str, str]:
    out = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            fail(f"{option} takes name=value, got {pair!r}")
        out[key.strip()] = value.strip()
    return out


def _folder_files(folder: Path) -> list[tuple[str, Path]]:
    found = []
    for entity in FOLDER_ENTITIES:
        for suffix in _SUFFIXES:
            candidate = folder / f"{entity}{suffix}"
            if candidate.is_file():
                found.append((entity, candidate))
                break
    return found


def ingest(
    path: Path = typer.Argument(..., help="file, folder of entity files, or dataset folder"),
    entity: str = typer.Option("events", "--entity", "-e",
                               help="events, users, items, edges or contacts"),
    fmt: str | None = typer.Option(None, "--format", "-f",
                                   help="csv, tsv, jsonl or parquet (default: from the name)"),
    maps: list[str] = typer.Option([], "--map", "-m", help="source=model column (repeatable)"),
    consts: list[str] = typer.Option([], "--const", "-c",
                                     help="model column=value for every row (repeatable)"),
    dataset: str | None = typer.Option(
        None, "--dataset", "-d", help="ml-100k, ml-latest-small, filmtrust or online-retail"),
    delimiter: str | None = typer.Option(None, "--delimiter", help="default: sniffed"),
    no_header: bool = typer.Option(False, "--no-header",
                                   help="the file has no header; columns are col0, col1, ..."),
    encoding: str = typer.Option("utf-8", "--encoding"),
    chunk_rows: int | None = typer.Option(None, "--chunk-rows", min=1,
                                          help="rows per chunk (default from settings)"),
    store_url: str | None = typer.Option(None, "--store", help="store URL (default: settings)"),
    as_json: bool = typer.Option(False, "--json", help="print the report(s) as JSON"),
) -> None:
    """Ingest ``path`` into the store and print the report."""
    from limelight.data.ingest import ingest_file
    from limelight.data.schema import ENTITIES
    from limelight.data.sources import DATASETS, ingest_dataset

    if not path.exists():
        fail(f"no such file or folder: {path}")
    if entity not in ENTITIES:
        fail(f"unknown entity {entity!r}: use one of {', '.join(ENTITIES)}")
    if dataset is not None and dataset not in DATASETS:
        fail(f"unknown dataset {dataset!r}: use one of {', '.join(DATASETS)}")
    mapping, constants = _parse_pairs(maps, "--map"), _parse_pairs(consts, "--const")
    from limelight.errors import LimelightError

    store = open_configured_store(store_url)
    try:
        options: dict[str, Any] = dict(
            mapping=mapping, fmt=fmt, chunk_rows=chunk_rows, progress=not as_json,
            constants=constants, delimiter=delimiter, header=not no_header, encoding=encoding)
        if dataset is not None:
            if not path.is_dir():
                fail(f"--dataset needs the dataset's folder, got {path}")
            reports = dict(ingest_dataset(store, dataset, path))
        elif path.is_dir():
            files = _folder_files(path)
            if not files:
                fail(f"{path} holds no users/items/events/edges/contacts file (.parquet, .csv, "
                     f".jsonl); name a file, or pass --dataset")
            reports = {ent: ingest_file(store, f, ent, **{**options, "mapping": None,
                                                           "constants": None})
                       for ent, f in files}
        else:
            reports = {entity: ingest_file(store, path, entity, **options)}
    except LimelightError as exc:  # bad input or options: one line, exit code 2
        fail(str(exc))
    finally:
        store.close()
    if as_json:
        print_json({k: _short(r.to_dict()) for k, r in reports.items()})
        return
    rows = [{"part": k, "read": r.read, "accepted": r.accepted, "dupes": r.duplicates,
             "rejected": r.rejected, "s": r.seconds} for k, r in reports.items()]
    print_table("ingest report", rows)
    reasons = [{"part": k, "reason": reason, "rows": n} for k, r in reports.items()
               for reason, n in sorted(r.reasons.items(), key=lambda kv: -kv[1])]
    if reasons:
        print_table("rejected by reason", reasons)
    if any(r.rejected for r in reports.values()):
        console.print("rejected rows are in quarantine: [bold]limelight quarantine list[/]")


def _short(report: dict[str, Any]) -> dict[str, Any]:
    report = dict(report)
    report["rejections"] = report["rejections"][:100]
    report["accepted_event_ids"] = report["accepted_event_ids"][:100]
    return report


def stats(
    store_url: str | None = typer.Option(None, "--store", help="store URL (default: settings)"),
    top: int = typer.Option(10, "--top", min=1, help="how many top items"),
    as_json: bool = typer.Option(False, "--json", help="print the statistics as JSON"),
) -> None:
    """Print what the store holds."""
    from limelight.data.stats import store_stats

    store = open_configured_store(store_url)
    try:
        result = store_stats(store, top=top)
    finally:
        store.close()
    if as_json:
        print_json(result)
        return
    print_table("rows", [{"table": k, "rows": v} for k, v in result["counts"].items()])
    sparsity = result["sparsity"]
    console.print(
        f"events {result['first_event']} .. {result['last_event']}; "
        f"{result['active_users']} users x {result['active_items']} items with "
        f"{result['interactions']} distinct pairs"
        + (f" (sparsity {sparsity:.4%})" if sparsity is not None else ""))
    if result["events_per_type"]:
        print_table("events per type", [{"type": k, "events": v}
                                        for k, v in result["events_per_type"].items()])
    if result["top_items"]:
        print_table("top items", result["top_items"])
    if result["quarantine_by_reason"]:
        print_table("quarantine", [{"reason": k, "rows": v}
                                   for k, v in result["quarantine_by_reason"].items()])


def _where(reason: str | None, source: str | None, run_id: str | None) -> tuple[str, list]:
    conds, params = [], []
    for column, value in (("reason", reason), ("source", source), ("run_id", run_id)):
        if value is not None:
            conds.append(f"{column} = ?")
            params.append(value)
    return (" WHERE " + " AND ".join(conds)) if conds else "", params


@quarantine_app.command("list", help="Rejected rows, newest first, with a summary by reason."
                        "\n\nExample: limelight quarantine list --reason missing_user_id")
def quarantine_list(
    reason: str | None = typer.Option(None, "--reason", help="only this reason"),
    source: str | None = typer.Option(None, "--source", help="only this source"),
    run_id: str | None = typer.Option(None, "--run", help="only this ingest run"),
    limit: int = typer.Option(20, "--limit", min=1),
    store_url: str | None = typer.Option(None, "--store", help="store URL (default: settings)"),
    as_json: bool = typer.Option(False, "--json", help="print JSON"),
) -> None:
    """List quarantined rows."""
    where, params = _where(reason, source, run_id)
    store = open_configured_store(store_url)
    try:
        summary = store.sql(f"SELECT reason, count(*) AS n FROM quarantine{where} "
                            f"GROUP BY reason ORDER BY n DESC", params)
        rows = store.sql(f"SELECT id, source, line_no, reason, left(raw, 80) AS raw FROM "
                         f"quarantine{where} ORDER BY id DESC LIMIT {int(limit)}", params)
    finally:
        store.close()
    records = _records(rows)
    by_reason = {r.reason: int(r.n) for r in summary.itertuples()}
    if as_json:
        print_json({"by_reason": by_reason, "total": sum(by_reason.values()), "rows": records})
        return
    print_table("quarantine by reason", [{"reason": k, "rows": v} for k, v in by_reason.items()])
    print_table(f"latest {len(records)} rows", records)


@quarantine_app.command("show", help="One quarantined row in full.\n\n"
                        "Example: limelight quarantine show 42")
def quarantine_show(
    row_id: int = typer.Argument(..., help="the id shown by `quarantine list`"),
    store_url: str | None = typer.Option(None, "--store", help="store URL (default: settings)"),
    as_json: bool = typer.Option(False, "--json", help="print JSON"),
) -> None:
    """Show one quarantined row."""
    store = open_configured_store(store_url)
    try:
        rows = store.sql("SELECT * FROM quarantine WHERE id = ?", [row_id])
    finally:
        store.close()
    if rows.empty:
        fail(f"no quarantined row with id {row_id}")
    record = _records(rows)[0]
    if as_json:
        print_json(record)
        return
    print_table(f"quarantined row {row_id}",
                [{"field": k, "value": v} for k, v in record.items()])


@quarantine_app.command("export", help="Write quarantined rows to a CSV, JSON Lines or Parquet "
                        "file.\n\nExample: limelight quarantine export rejected.csv --reason "
                        "bad_timestamp")
def quarantine_export(
    out: Path = typer.Argument(..., help="file to write (.csv, .jsonl or .parquet)"),
    reason: str | None = typer.Option(None, "--reason", help="only this reason"),
    source: str | None = typer.Option(None, "--source", help="only this source"),
    run_id: str | None = typer.Option(None, "--run", help="only this ingest run"),
    store_url: str | None = typer.Option(None, "--store", help="store URL (default: settings)"),
    as_json: bool = typer.Option(False, "--json", help="print a JSON summary"),
) -> None:
    """Export quarantined rows."""
    suffix = "".join(out.suffixes[-1:]).lower()
    if suffix not in (".csv", ".jsonl", ".parquet"):
        fail(f"cannot tell the format of {out.name}: name it .csv, .jsonl or .parquet")
    if not out.parent.is_dir():
        fail(f"folder {out.parent} does not exist")
    where, params = _where(reason, source, run_id)
    store = open_configured_store(store_url)
    try:
        frame = store.sql(f"SELECT * FROM quarantine{where} ORDER BY id", params)
    finally:
        store.close()
    if suffix == ".csv":
        frame.to_csv(out, index=False)
    elif suffix == ".jsonl":
        frame.to_json(out, orient="records", lines=True, date_format="iso")
    else:
        frame.to_parquet(out, index=False)
    if as_json:
        print_json({"path": str(out), "rows": len(frame)})
    else:
        console.print(f"wrote {len(frame)} quarantined rows to {out}")


def _records(frame: Any) -> list[dict[str, Any]]:
    out = []
    for rec in frame.astype(object).where(frame.notna(), None).to_dict(orient="records"):
        out.append({k: (v.isoformat() if hasattr(v, "isoformat") else v) for k, v in rec.items()})
    return out
