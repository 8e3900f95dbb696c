"""A tiny hand-checkable shop shared by the profile tests."""

from __future__ import annotations

import pandas as pd

AS_OF = pd.Timestamp("2024-01-11 00:00", tz="UTC")


def _ts(text: str) -> pd.Timestamp:
    return pd.Timestamp(text, tz="UTC")


def tiny_frames() -> dict[str, pd.DataFrame]:
    """Three users, three items, nine events, three edges (values computed by hand in tests)."""
    users = pd.DataFrame({
        "user_id": ["u1", "u2", "u3"],
        "age": [34, 52, None],
        "gender": ["F", "M", None],
        "country": ["GB", "GB", "FR"],
        "region": ["north-east", None, "ile-de-france"],
        "lat": [54.97, None, 48.85],
        "lon": [-1.61, None, 2.35],
        "signup_time": [_ts("2023-12-01"), _ts("2024-01-10"), None],
    })
    items = pd.DataFrame({
        "item_id": ["i1", "i2", "i3"],
        "categories": [["Sci-Fi", "Thriller"], ["Comedy"], ["Sci-Fi"]],
        "tags": [["space"], ["funny"], []],
        "price": [10.0, 5.0, 20.0],
    })
    rows = [
        # user, item, type, value, qty, time, session, campaign, geo
        ("u1", "i1", "view", None, None, "2024-01-01 10:00", "s1", None, None),
        ("u1", "i1", "click", None, None, "2024-01-01 10:05", "s1", None, None),
        ("u1", "i1", "add_to_cart", None, None, "2024-01-01 10:06", "s1", None, None),
        ("u1", "i1", "purchase", 20.0, 2.0, "2024-01-01 10:10", "s1", None, None),
        ("u1", "i3", "purchase", 15.0, 1.0, "2024-01-01 10:10", "s1", None, None),
        ("u1", "i2", "view", None, None, "2024-01-03 20:00", None, None, None),
        ("u1", "i2", "purchase", 5.0, 1.0, "2024-01-03 20:30", None, "c1", None),
        ("u1", "i1", "return", 10.0, 1.0, "2024-01-05 09:00", None, None, None),
        ("u2", "i2", "rating", 4.0, None, "2024-01-10 12:00", None, None, "wales"),
        ("u2", "i3", "purchase", 20.0, 1.0, "2024-01-10 13:00", "s9", None, "wales"),
    ]
    events = pd.DataFrame(rows, columns=["user_id", "item_id", "type", "value", "quantity",
                                         "timestamp", "session_id", "campaign_id", "geo"])
    events["timestamp"] = pd.to_datetime(events["timestamp"], utc=True)
    events["event_id"] = [f"e{i:02d}" for i in range(len(events))]
    edges = pd.DataFrame({
        "src_user_id": ["u1", "u2", "u1"],
        "dst_user_id": ["u2", "u1", "u3"],
        "kind": ["trust", "trust", "friend"],
        "weight": [1.0, 0.5, None],
        "directed": [True, True, False],
    })
    return {"events": events, "users": users, "items": items, "edges": edges}
