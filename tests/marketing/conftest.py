"""A small shop for marketing tests: users with mixed consent, contacts, items, events."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd
import pytest

from limelight.store import open_store

NOW = datetime(2026, 3, 1, 12, tzinfo=UTC)
GENRES = ["Sci-Fi", "Drama", "Comedy", "Thriller"]


def make_shop(n_users: int = 60, n_items: int = 30, seed: int = 0):
    """Users u0..u{n-1}: every third has no email consent, u5 has no address."""
    rng = np.random.default_rng(seed)
    ids = [f"u{i}" for i in range(n_users)]
    users = pd.DataFrame({
        "user_id": ids,
        "country": ["UK" if i % 2 == 0 else "FR" for i in range(n_users)],
        "age": rng.integers(18, 70, n_users).astype("int32"),
        "timezone": ["Europe/London" if i % 2 == 0 else "Europe/Paris" for i in range(n_users)],
        "consent_email": [i % 3 != 0 for i in range(n_users)],
        "consent_push": [i % 4 != 0 for i in range(n_users)],
        "consent_sms": [False] * n_users,
    })
    contacts = pd.DataFrame({
        "user_id": ids,
        "email": ["" if i == 5 else f"{u}@example.test" for i, u in enumerate(ids)],
        "push_token": [f"tok-{u}" for u in ids],
    })
    items = pd.DataFrame({
        "item_id": [f"i{j}" for j in range(n_items)],
        "title": [f"Item {j}" for j in range(n_items)],
        "categories": [[GENRES[j % 4]] for j in range(n_items)],
        "price": [5.0 + j for j in range(n_items)],
        "in_stock": [j % 7 != 6 for j in range(n_items)],
    })
    rows = []
    for k in range(n_users * 8):
        u = ids[int(rng.integers(n_users))]
        j = int(min(rng.zipf(1.6) - 1, n_items - 1))
        t = NOW - timedelta(days=float(rng.uniform(1, 120)))
        typ = "purchase" if rng.random() < 0.2 else "view"
        rows.append({"user_id": u, "item_id": f"i{j}", "type": typ, "timestamp": t,
                     "value": 5.0 + j if typ == "purchase" else None,
                     "session_id": f"s{k}"})
    events = pd.DataFrame(rows)
    return users, contacts, items, events


@pytest.fixture
def shop_store():
    store = open_store("memory://")
    users, contacts, items, events = make_shop()
    store.write("users", users)
    store.write("contacts", contacts)
    store.write("items", items)
    store.write("events", events)
    yield store
    store.close()


class _Sink:
    """aiosmtpd handler keeping every delivered message (parsed) in memory."""

    def __init__(self) -> None:
        self.messages: list = []

    async def handle_DATA(self, server, session, envelope):
        from email import message_from_bytes, policy

        msg = message_from_bytes(envelope.content, policy=policy.default)
        self.messages.append(msg)
        return "250 OK"


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def smtp_server():
    """A real SMTP server on 127.0.0.1 (aiosmtpd); yields (host, port, sink)."""
    from aiosmtpd.controller import Controller

    sink = _Sink()
    port = free_port()
    controller = Controller(sink, hostname="127.0.0.1", port=port)
    controller.start()
    yield "127.0.0.1", port, sink
    controller.stop()
