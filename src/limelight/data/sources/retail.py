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
    lines = data.decode("utf-8", errors="replace").splitlines()[1:]
    df = pd.read_csv(io.BytesIO(data), dtype=str, keep_default_na=False, compression=None)
    if len(df) != len(lines):  # a quoted field spans lines: fall back to rebuilt rows
        lines = df.apply(lambda r: ",".join(r), axis=1).tolist()
    invoice = df["InvoiceNo"].str.strip()
    is_return = invoice.str.upper().str.startswith("C")
    qty = pd.to_numeric(df["Quantity"], errors="coerce")
    customer = df["CustomerID"].str.strip().str.removesuffix(".0")
    events = pd.DataFrame({
        "event_id": ("or:" + invoice + ":" + df["StockCode"].str.strip() + ":"
                     + df["Quantity"].str.strip() + ":" + df["UnitPrice"].str.strip()),
        "user_id": customer,
        "item_id": df["StockCode"].str.strip(),
        "type": np.where(is_return, "return", "purchase"),
        "value": df["UnitPrice"],
        "quantity": np.where(is_return, qty.abs(), qty).astype(str),
        "timestamp": df["InvoiceDate"],
        "session_id": invoice,
        "geo": df["Country"],
        LINE: np.arange(2, len(df) + 2),
        "__raw": lines,
    })
    events.loc[qty.isna(), "quantity"] = df.loc[qty.isna(), "Quantity"]
    price = pd.to_numeric(df["UnitPrice"], errors="coerce")
    described = df.assign(price=price.where(price > 0))
    described["Description"] = described["Description"].str.strip()
    titles = _most_frequent(described[described["Description"] != ""], "StockCode",
                            "Description")
    prices = described.groupby("StockCode")["price"].median()
    codes = pd.Index(pd.unique(df["StockCode"]))
    items = pd.DataFrame({
        "item_id": codes.str.strip(), "title": titles.reindex(codes).to_numpy(),
        "price": prices.reindex(codes).round(2).to_numpy(), "currency": "GBP",
    })
    known = df.assign(user_id=customer)[customer != ""]
    users = _most_frequent(known, "user_id", "Country").rename("country").reset_index()
    return {"users": users, "items": items, "events": events}


def _most_frequent(df: pd.DataFrame, key: str, value: str) -> pd.Series:
    """Most frequent ``value`` per ``key`` (ties: the value sorting last), vectorised."""
    counts = df.groupby([key, value]).size().rename("n").reset_index()
    best = counts.sort_values(["n", value]).drop_duplicates(key, keep="last")
    return best.set_index(key)[value]
