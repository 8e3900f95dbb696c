"""Event identity: the 128-bit key each stored event is deduplicated by, and its public id.

Every event has a public ``event_id`` (text). When a source gives none, the id is derived
from the event's content: the MD5 hex digest of user, item, type and time
(:func:`limelight.data.schema.derive_event_id`). The store does not keep that text: it keeps
the digest as one ``UHUGEINT`` column, ``event_key``. 32 hex characters stored per event
cost ~2x the insert time of the 16-byte integer, and a string hash per dedupe probe
(10M events, DuckDB alone: 6.1 s -> 4.9 s).

The rule that maps every id to its key (SQL and Python agree):

* a *canonical* id, 32 lower-case hex digits (every derived id, or one given back to us), is
  the digest itself: ``key = int.from_bytes(bytes.fromhex(id), "little")`` (the byte order
  of DuckDB's ``md5_number``), and its text is not stored;
* any other given id is kept as text in ``event_id`` and keyed by ``md5_number(id)``.

Equal ids therefore have equal keys, so deduplication by key is deduplication by id (up to
MD5 collisions of distinct ids, negligible at 128 bits), and an event posted again with the
derived id it was given back dedupes against the stored one. The store's ``events`` view
shows ``coalesce(event_id, <hex of event_key>)`` as ``event_id``: the same text as before.
"""

from __future__ import annotations

import hashlib
import re

#: DuckDB type of the stored key.
KEY_TYPE = "UHUGEINT"
#: Column of the stored key.
KEY = "event_key"
#: A list of keys as one query parameter: pass them as decimal text (DuckDB reads a Python
#: list of ints above 2**64 as DOUBLE[], which loses digits).
KEYS_PARAM = f"CAST(?::VARCHAR[] AS {KEY_TYPE}[])"

_CANONICAL = re.compile(r"[0-9a-f]{32}")
_LOW64 = "18446744073709551615"


def is_canonical(event_id: str) -> bool:
    """True when ``event_id`` is 32 lower-case hex digits (stored as its key alone)."""
    return _CANONICAL.fullmatch(event_id) is not None


def key_of(event_id: str) -> int:
    """The stored key of a public event id (see the module notes)."""
    if is_canonical(event_id):
        return int.from_bytes(bytes.fromhex(event_id), "little")
    return int.from_bytes(hashlib.md5(event_id.encode()).digest(), "little")


def canonical_id(key: int) -> str:
    """The 32-hex-digit id of a key (the inverse of :func:`key_of` on canonical ids)."""
    return key.to_bytes(16, "little").hex()


def _bswap64(expr: str) -> str:
    return " | ".join(f"((({expr} >> {s}) & CAST(255 AS UBIGINT)) << {56 - s})"
                      for s in range(0, 64, 8))


def derived_key_sql(user: str, item: str, type_: str, ts: str) -> str:
    """SQL for the key of a derived id (``md5_number`` of the content key text).

    ``concat`` builds the key text in one allocation (a chain of ``||`` made one per
    operator); it reads NULL as empty text, which only rows that fail validation for the
    missing value can have.
    """
    return (f"md5_number(concat({user}, chr(31), {item}, chr(31), {type_}, chr(31), "
            f"CAST(epoch_us({ts}) AS VARCHAR)))")


def _canonical_sql(text: str) -> str:
    return f"regexp_full_match({text}, '[0-9a-f]{{32}}')"


def given_key_sql(text: str) -> str:
    """SQL for the key of a given id ``text`` (NULL stays NULL)."""
    # Each 16-digit half read as one big-endian integer, its bytes reversed: the first half
    # holds the key's low 8 bytes (hex parses into UBIGINT on every DuckDB we support).
    first = f"CAST('0x' || substr({text}, 1, 16) AS UBIGINT)"
    second = f"CAST('0x' || substr({text}, 17, 16) AS UBIGINT)"
    swapped = (f"((CAST({_bswap64(second)} AS UHUGEINT) << 64) "
               f"| CAST({_bswap64(first)} AS UHUGEINT))")
    return (f"CASE WHEN {_canonical_sql(text)} THEN {swapped} "
            f"ELSE md5_number({text}) END")


def stored_text_sql(text: str) -> str:
    """SQL for what ``event_id`` stores of a given id: NULL for a canonical one."""
    return f"CASE WHEN {_canonical_sql(text)} THEN NULL ELSE {text} END"


def public_id_sql(key: str = KEY, text: str = "event_id") -> str:
    """SQL for the public id of a stored event: its text, or the hex digits of its key."""
    low = _bswap64(f"CAST({key} & {_LOW64} AS UBIGINT)")
    high = _bswap64(f"CAST({key} >> 64 AS UBIGINT)")
    return f"coalesce({text}, printf('%016x%016x', {low}, {high}))"


def stored_columns_sql(user: str, item: str, type_: str, ts: str,
                       given: str | None = None) -> list[str]:
    """The select list that stores an event's identity: ``event_key``, and ``event_id`` when
    ids may be given (``given``: SQL of the given id; rows where it is NULL get the key
    derived from user, item, type and time)."""
    key = derived_key_sql(user, item, type_, ts)
    if given is None:
        return [f"{key} AS {KEY}"]
    return [f"coalesce({given_key_sql(given)}, {key}) AS {KEY}",
            f"{stored_text_sql(given)} AS event_id"]
