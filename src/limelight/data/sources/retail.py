"""UCI Online Retail adapter (Chen, Sain & Guo 2012): invoice lines -> purchase and return events.

Each invoice line is one event: ``purchase``, or ``return`` when the invoice number starts
with ``C`` (a cancellation; its quantity is stored as a positive number of units returned).
``value`` is the unit price (GBP), ``quantity`` the units, ``session_id`` the invoice and
``geo`` the country; InvoiceDate has no zone and is read as UTC. ``event_id`` is built from
the invoice, stock code, quantity and price, so exact repeated lines count as duplicates
while distinct lines of one invoice stay apart. Lines without a CustomerID are not dropped:
they reach ingest without a user and are quarantined as ``missing_user_id``, with the
original CSV line as raw content. Items carry the most frequent description as title and the
median unit price.
"""

from __future__ import annotations

import gzip
import io
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from limelight.data.sources.movielens import LINE, _need

FILE = "online_retail.csv.gz"


def load_online_retail(directory: str | Path) -> dict[str, pd.DataFrame]:
    """Read ``online_retail.csv.gz`` (one header line, 541,909 invoice lines).

    Returns
    -------
    dict
        ``events`` (one per invoice line, ``__raw`` holding the source line), ``items``
        (stock codes) and ``users`` (customers with their country).
    """
    path = _need(Path(directory) / FILE)
    with gzip.open(path, "rb") as fh:
        data = fh.read()
    header = data[:data.index(b"\n")].decode().strip().split(",")
    table = pacsv.read_csv(io.BytesIO(data), convert_options=pacsv.ConvertOptions(
        column_types={c: pa.string() for c in header}, strings_can_be_null=False))
    lines = pc.list_flatten(pc.split_pattern(
        pa.array([data.decode("utf-8", errors="replace")]), "\n"))[1:]
    lines = lines.filter(pc.not_equal(lines, ""))
    if len(lines) != table.num_rows:  # a quoted field spans lines: rebuild the rows instead
        lines = pc.binary_join_element_wise(*table.columns, ",")
    col = {c: pc.utf8_trim_whitespace(table[c]) for c in header}
    invoice = col["InvoiceNo"]
    is_return = pc.starts_with(pc.utf8_upper(invoice), "C")
    # a cancellation's quantity is stored as the (positive) number of units returned
    quantity = pc.if_else(is_return, pc.replace_substring_regex(col["Quantity"], "^-", ""),
                          col["Quantity"])
    customer = pc.replace_substring_regex(col["CustomerID"], r"\.0$", "")
    events = pa.table({
        "event_id": pc.binary_join_element_wise(
            "or", invoice, col["StockCode"], col["Quantity"], col["UnitPrice"], ":"),
        "user_id": customer,
        "item_id": col["StockCode"],
        "type": pc.if_else(is_return, "return", "purchase"),
        "value": col["UnitPrice"],
        "quantity": quantity,
        "timestamp": col["InvoiceDate"],
        "session_id": invoice,
        "geo": col["Country"],
        LINE: pa.array(np.arange(2, table.num_rows + 2)),
        "__raw": lines,
    }).to_pandas()
    df = pa.table({"StockCode": col["StockCode"], "Description": col["Description"],
                   "UnitPrice": col["UnitPrice"], "Country": col["Country"]}).to_pandas()
    price = pd.to_numeric(df["UnitPrice"], errors="coerce")
    described = df.assign(price=price.where(price > 0))
    titles = _most_frequent(described[described["Description"] != ""], "StockCode",
                            "Description")
    prices = described.groupby("StockCode")["price"].median()
    codes = pd.Index(pd.unique(df["StockCode"]))
    items = pd.DataFrame({
        "item_id": codes, "title": titles.reindex(codes).to_numpy(),
        "price": prices.reindex(codes).round(2).to_numpy(), "currency": "GBP",
    })
    known = df.assign(user_id=events["user_id"])[events["user_id"] != ""]
    users = _most_frequent(known, "user_id", "Country").rename("country").reset_index()
    return {"users": users, "items": items, "events": events}


def _most_frequent(df: pd.DataFrame, key: str, value: str) -> pd.Series:
    """Most frequent ``value`` per ``key`` (ties: the value sorting last), vectorised."""
    counts = df.groupby([key, value]).size().rename("n").reset_index()
    best = counts.sort_values(["n", value]).drop_duplicates(key, keep="last")
    return best.set_index(key)[value]
