"""The data model: users, contacts, items, events, social edges (as Arrow schemas).

Contact fields (email, phone, the raw id behind a pseudonym) live in their own table so that
behaviour data never carries them; everything that belongs to one user is keyed by ``user_id``
so erasure can find it.
"""

from __future__ import annotations

import hashlib

import pyarrow as pa

#: Event types known out of the box. The set is extensible: ``register_event_type``.
EVENT_TYPES: set[str] = {
    "impression",
    "view",
    "click",
    "add_to_cart",
    "purchase",
    "return",
    "rating",
    "review",
    "like",
    "share",
    "not_interested",
    "email_open",
    "email_click",
    "unsubscribe",
}

#: Event types that must name an item.
ITEM_EVENT_TYPES: set[str] = {
    "impression",
    "view",
    "click",
    "add_to_cart",
    "purchase",
    "return",
    "rating",
    "review",
    "like",
    "share",
}

EDGE_KINDS: set[str] = {"friend", "follow", "trust"}
CHANNELS: tuple[str, ...] = ("email", "push", "sms")

TIMESTAMP = pa.timestamp("us", tz="UTC")

EVENTS = pa.schema(
    [
        pa.field("event_id", pa.string(), nullable=False),
        pa.field("user_id", pa.string(), nullable=False),
        pa.field("item_id", pa.string()),
        pa.field("type", pa.string(), nullable=False),
        pa.field("value", pa.float64()),
        pa.field("quantity", pa.float64()),
        pa.field("timestamp", TIMESTAMP, nullable=False),
        pa.field("session_id", pa.string()),
        pa.field("channel", pa.string()),
        pa.field("campaign_id", pa.string()),
        pa.field("message_id", pa.string()),
        pa.field("device", pa.string()),
        pa.field("geo", pa.string()),
        pa.field("review_text", pa.string()),
    ]
)

USERS = pa.schema(
    [
        pa.field("user_id", pa.string(), nullable=False),
        pa.field("age", pa.int32()),
        pa.field("gender", pa.string()),
        pa.field("country", pa.string()),
        pa.field("region", pa.string()),
        pa.field("city", pa.string()),
        pa.field("lat", pa.float64()),
        pa.field("lon", pa.float64()),
        pa.field("timezone", pa.string()),
        pa.field("signup_time", TIMESTAMP),
        pa.field("consent_personalization", pa.bool_()),
        pa.field("consent_email", pa.bool_()),
        pa.field("consent_push", pa.bool_()),
        pa.field("consent_sms", pa.bool_()),
        pa.field("extra", pa.string()),  # JSON object of free-form attributes
    ]
)

CONTACTS = pa.schema(
    [
        pa.field("user_id", pa.string(), nullable=False),
        pa.field("external_id", pa.string()),  # the raw id when user ids are pseudonymized
        pa.field("email", pa.string()),
        pa.field("phone", pa.string()),
        pa.field("push_token", pa.string()),
    ]
)

ITEMS = pa.schema(
    [
        pa.field("item_id", pa.string(), nullable=False),
        pa.field("title", pa.string()),
        pa.field("description", pa.string()),
        pa.field("categories", pa.list_(pa.string())),
        pa.field("tags", pa.list_(pa.string())),
        pa.field("price", pa.float64()),
        pa.field("currency", pa.string()),
        pa.field("in_stock", pa.bool_()),
        pa.field("created_time", TIMESTAMP),
        pa.field("extra", pa.string()),  # JSON object
    ]
)

EDGES = pa.schema(
    [
        pa.field("src_user_id", pa.string(), nullable=False),
        pa.field("dst_user_id", pa.string(), nullable=False),
        pa.field("kind", pa.string(), nullable=False),
        pa.field("weight", pa.float64()),
        pa.field("directed", pa.bool_()),
    ]
)

#: Every entity the store keeps, by name.
ENTITIES: dict[str, pa.Schema] = {
    "events": EVENTS,
    "users": USERS,
    "contacts": CONTACTS,
    "items": ITEMS,
    "edges": EDGES,
}

#: Columns an input must provide (after column mapping) for each entity.
REQUIRED: dict[str, tuple[str, ...]] = {
    "events": ("user_id", "type", "timestamp"),
    "users": ("user_id",),
    "contacts": ("user_id",),
    "items": ("item_id",),
    "edges": ("src_user_id", "dst_user_id"),
}

#: Columns that make an entity row unique (the key re-ingest deduplicates on).
KEYS: dict[str, tuple[str, ...]] = {
    "events": ("event_id",),
    "users": ("user_id",),
    "contacts": ("user_id",),
    "items": ("item_id",),
    "edges": ("src_user_id", "dst_user_id", "kind"),
}

#: Event columns hashed into a derived event_id (the content that makes an event itself).
EVENT_ID_FIELDS: tuple[str, ...] = ("user_id", "item_id", "type", "timestamp")


def register_event_type(name: str, *, needs_item: bool = False) -> None:
    """Allow a new event type (lower-case, e.g. ``"wishlist"``) in ingest and the API."""
    name = name.strip().lower()
    EVENT_TYPES.add(name)
    if needs_item:
        ITEM_EVENT_TYPES.add(name)


def derive_event_id(user_id: str, item_id: str | None, type_: str, timestamp_us: int) -> str:
    """Deterministic id of an event from its content (same content, same id).

    Deduplication "same user/item/type/timestamp" falls out of this: two rows with that content
    get one id. MD5 (not for security, only identity) because DuckDB computes the same digest
    in SQL, which lets bulk ingest derive ids vectorised; the store keeps the digest as a
    16-byte key (``data.event_keys``).
    """
    key = f"{user_id}\x1f{item_id or ''}\x1f{type_}\x1f{timestamp_us}"
    return hashlib.md5(key.encode()).hexdigest()
