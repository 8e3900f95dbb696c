"""Helpers shared by CLI commands: settings, store, output in table or JSON form."""

from __future__ import annotations

import functools
import json
import sys
from collections.abc import Callable
from typing import Any, NoReturn

from rich.console import Console
from rich.table import Table

console = Console()
err_console = Console(stderr=True)


def fail(message: str, code: int = 2) -> NoReturn:
    """Print a one-line error and exit with ``code``."""
    err_console.print(f"[bold red]error:[/] {message}", highlight=False)
    raise SystemExit(code)


def print_json(payload: Any) -> None:
    """Write ``payload`` as JSON to stdout (machine-readable mode of every command)."""
    sys.stdout.write(json.dumps(payload, indent=2, default=str) + "\n")


def print_table(title: str, rows: list[dict[str, Any]], columns: list[str] | None = None) -> None:
    """A rich table of ``rows`` (dicts) with ``columns`` (default: keys of the first row)."""
    columns = columns or (list(rows[0]) if rows else [])
    table = Table(title=title)
    for col in columns:
        table.add_column(col, overflow="fold")
    for row in rows:
        table.add_row(*(_fmt(row.get(c)) for c in columns))
    console.print(table)


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return "" if value is None else str(value)


def open_configured_store(url: str | None = None):
    """The event store from ``url`` or the settings."""
    from limelight.settings import get_settings
    from limelight.store import open_store

    return open_store(url or get_settings().store_url)


def friendly_errors(command: Callable[..., None]) -> Callable[..., None]:
    """Decorator: named errors end the command with one line and exit code 2.

    ``main()`` already does this for the console script; the decorator also covers commands
    invoked through typer's test runner or from another program.
    """
    from limelight.errors import LimelightError

    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> None:
        try:
            command(*args, **kwargs)
        except LimelightError as exc:
            fail(str(exc))

    return wrapper
