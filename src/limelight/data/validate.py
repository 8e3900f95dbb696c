"""Vectorised validation and cleaning of one ingest chunk, as a single DuckDB SQL pass.

:func:`validation_sql` turns the source columns of a chunk (text from CSV/JSON Lines, or typed
columns from Parquet and Arrow) into the data model's typed columns plus a ``__reason`` column
that names the first problem of each row (NULL for a good row). Parsing, trimming, enum case,
UTC conversion and range checks are all SQL expressions, so a chunk of half a million rows is
validated without a Python loop.

Reasons (see docs/data-model.md): ``missing_<column>`` for a required value that is absent,
``bad_<column>`` for a value that does not parse or is out of range, ``bad_timestamp`` /
``timestamp_out_of_range`` for times, ``unknown_event_type``, ``unknown_edge_kind``,
``missing_item_id`` (an item event without an item), ``missing_value`` (a rating without a
value) and ``self_edge``. The readers add ``malformed_line`` and ``bad_encoding``.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass

import pyarrow as pa

from limelight.data import event_keys, schema

#: How each data-model column is parsed: id (required text), text, enum (lower-case text),
#: float, int, bool, ts, list (of text), json (a JSON object as text).
KINDS: dict[str, dict[str, str]] = {
    "events": {"event_id": "text", "user_id": "id", "item_id": "text", "type": "enum",
               "value": "float", "quantity": "float", "timestamp": "ts", "session_id": "text",
               "channel": "enum", "campaign_id": "text", "message_id": "text", "device": "text",
               "geo": "text", "review_text": "text"},
    "users": {"user_id": "id", "age": "int", "gender": "text", "country": "text",
              "region": "text", "city": "text", "lat": "float", "lon": "float",
              "timezone": "text", "signup_time": "ts", "consent_personalization": "bool",
              "consent_email": "bool", "consent_push": "bool", "consent_sms": "bool",
              "extra": "json"},
    "contacts": {"user_id": "id", "external_id": "text", "email": "text", "phone": "text",
                 "push_token": "text"},
    "items": {"item_id": "id", "title": "text", "description": "text", "categories": "list",
              "tags": "list", "price": "float", "currency": "text", "in_stock": "bool",
              "created_time": "ts", "extra": "json"},
    "edges": {"src_user_id": "id", "dst_user_id": "id", "kind": "enum", "weight": "float",
              "directed": "bool"},
}

#: Conditions (on the parsed value ``{v}``) that make a value out of range.
RANGES: dict[str, dict[str, str]] = {
    "events": {"value": "NOT isfinite({v})", "quantity": "NOT isfinite({v})"},
    "users": {"age": "{v} < 0 OR {v} > 120", "lat": "NOT ({v} BETWEEN -90 AND 90)",
              "lon": "NOT ({v} BETWEEN -180 AND 180)"},
    "items": {"price": "NOT isfinite({v}) OR {v} < 0"},
    "edges": {"weight": "NOT isfinite({v})"},
    "contacts": {"email": "{v} NOT LIKE '%_@_%'"},
}

#: Enum columns whose valid values are known (they pass through without normalising).
_KNOWN: dict[tuple[str, str], Collection[str]] = {
    ("events", "type"): schema.EVENT_TYPES, ("edges", "kind"): schema.EDGE_KINDS}

_TRUE = "('true', 't', '1', 'yes', 'y', '1.0')"
_FALSE = "('false', 'f', '0', 'no', 'n', '0.0')"


@dataclass(frozen=True)
class TimeBounds:
    """Events outside ``[min_timestamp, now + max_future_seconds]`` are rejected."""

    min_timestamp: str = "1990-01-01"
    max_future_seconds: int = 86_400


def _q(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _is_text(dtype: pa.DataType) -> bool:
    return pa.types.is_string(dtype) or pa.types.is_large_string(dtype)


def _epoch_us(expr: str, integer: bool) -> str:
    """Epoch seconds / ms / us / ns (told apart by magnitude) -> microseconds."""
    if integer:
        return (f"CASE WHEN abs({expr}) >= 100000000000000000 THEN {expr} // 1000 "
                f"WHEN abs({expr}) >= 100000000000000 THEN {expr} "
                f"WHEN abs({expr}) >= 100000000000 THEN {expr} * 1000 "
                f"WHEN abs({expr}) < 100000000000 THEN {expr} * 1000000 END")
    return (f"CAST(round(CASE WHEN NOT isfinite({expr}) THEN NULL "
            f"WHEN abs({expr}) >= 1e17 THEN {expr} / 1e3 WHEN abs({expr}) >= 1e14 THEN {expr} "
            f"WHEN abs({expr}) >= 1e11 THEN {expr} * 1e3 ELSE {expr} * 1e6 END) AS BIGINT)")


def _micros_to_ts(us: str) -> str:
    # Beyond year ~9900 is certainly wrong; keep it representable so the range check names it.
    return (f"CASE WHEN abs({us}) < 250000000000000000 THEN "
            f"CAST(make_timestamp({us}) AS TIMESTAMPTZ) "
            f"WHEN {us} IS NOT NULL THEN TIMESTAMPTZ '9999-01-01 00:00:00+00' END")


def _trimmed(c: str) -> str:
    """``NULLIF(trim(c), '')``, skipping ``trim`` where it cannot change the value.

    DuckDB's ``trim`` removes Unicode space separators, and the only ASCII one is ' ', so
    non-empty ASCII text that neither starts nor ends with ' ' is already trimmed and not
    blank: it passes as it is. Only other text is trimmed and checked for blank, because
    ``NULLIF(x, '')`` evaluates ``x`` twice. Four id-like columns of 1M Parquet rows: 0.15
    CPU-s over copying them, against 0.24 with ``NULLIF`` around the whole test and 0.28 for
    ``NULLIF(trim(c), '')``.
    """
    return (f"CASE WHEN strlen({c}) = length({c}) AND NOT starts_with({c}, ' ') "
            f"AND NOT ends_with({c}, ' ') AND {c} <> '' THEN {c} ELSE NULLIF(trim({c}), '') END")


def parse_expr(kind: str, col: str, dtype: pa.DataType,
               known: Collection[str] = ()) -> tuple[str, str]:
    """SQL for (parsed value, value-was-given flag) of source column ``col``.

    ``known`` values of an enum column are taken as they are: normalising case and separators
    costs ~0.2 CPU-s per million rows, and clean sources rarely need it.
    """
    c = _q(col)
    text = _trimmed(c) if _is_text(dtype) else f"NULLIF(trim(CAST({c} AS VARCHAR)), '')"
    # Whether a value was given at all: text must be non-blank; typed values non-null.
    given = f"({text} IS NOT NULL)" if _is_text(dtype) else f"({c} IS NOT NULL)"
    if kind in ("id", "text"):
        return text, "true"  # text always parses; blank is checked on the value itself
    if kind == "enum":
        normalised = f"replace(replace(lower({text}), ' ', '_'), '-', '_')"
        if known and _is_text(dtype):
            values = ", ".join(_literal(v) for v in sorted(known))
            normalised = f"CASE WHEN {c} IN ({values}) THEN {c} ELSE {normalised} END"
        return normalised, "true"
    if kind in ("float", "int"):
        if _is_text(dtype):
            value = f"TRY_CAST({text} AS DOUBLE)"
        elif pa.types.is_boolean(dtype):
            value = f"CAST(CAST({c} AS INTEGER) AS DOUBLE)"
        else:
            value = f"TRY_CAST({c} AS DOUBLE)"
        return value, given
    if kind == "bool":
        if pa.types.is_boolean(dtype):
            return c, given
        low = f"lower({text})"
        return f"CASE WHEN {low} IN {_TRUE} THEN true WHEN {low} IN {_FALSE} THEN false END", given
    if kind == "ts":
        if pa.types.is_timestamp(dtype) or pa.types.is_date(dtype):
            return f"CAST({c} AS TIMESTAMPTZ)", f"({c} IS NOT NULL)"
        if pa.types.is_integer(dtype):
            return _micros_to_ts(_epoch_us(f"CAST({c} AS BIGINT)", True)), f"({c} IS NOT NULL)"
        if pa.types.is_floating(dtype):
            return _micros_to_ts(_epoch_us(c, False)), f"({c} IS NOT NULL)"
        as_int = f"TRY_CAST({text} AS BIGINT)"
        as_num = f"TRY_CAST({text} AS DOUBLE)"
        # ISO text first: COALESCE evaluates the epoch forms only for rows still unparsed.
        value = (f"coalesce(TRY_CAST({text} AS TIMESTAMPTZ), "
                 f"CASE WHEN {as_int} IS NOT NULL THEN {_micros_to_ts(_epoch_us(as_int, True))} "
                 f"WHEN {as_num} IS NOT NULL THEN {_micros_to_ts(_epoch_us(as_num, False))} END)")
        return value, given
    if kind == "list":
        if pa.types.is_list(dtype) or pa.types.is_large_list(dtype):
            items = f"list_transform({c}, lambda x: trim(CAST(x AS VARCHAR)))"
        else:
            items = (f"CASE WHEN starts_with({text}, '[') THEN CASE WHEN json_valid({text}) "
                     f"THEN list_transform(from_json({text}, '[\"VARCHAR\"]'), "
                     f"lambda x: trim(x)) END "
                     f"ELSE list_transform(string_split({text}, '|'), lambda x: trim(x)) END")
        return f"list_filter({items}, lambda x: x IS NOT NULL AND x <> '')", given
    if kind == "json":
        return f"CASE WHEN json_valid({text}) AND starts_with({text}, '{{') THEN {text} END", given
    raise ValueError(f"unknown column kind {kind!r}")


def _literal(value: object) -> str:
    return "'" + str(value).replace("'", "''") + "'"


def validation_sql(entity: str, source: pa.Schema, relation: str, *,
                   bounds: TimeBounds | None = None) -> tuple[str, list[str]]:
    """One SELECT over ``relation`` that yields typed model columns, ``__reason`` and ``__line``.

    Parameters
    ----------
    entity
        Data-model entity (``events``, ``users``, ``contacts``, ``items``, ``edges``).
    source
        Schema of ``relation`` (source columns already renamed to model names).
    relation
        Name of the chunk's view.
    bounds
        Accepted time range of events.

    Returns
    -------
    (sql, columns)
        The query and the model columns it produces (besides ``__reason`` and ``__line``).
    """
    bounds = bounds or TimeBounds()
    kinds = KINDS[entity]
    present = {f.name: f.type for f in source if f.name in kinds}
    inner, checks = [], []
    for col, kind in kinds.items():
        if col not in present:
            continue
        value, given = parse_expr(kind, col, present[col], _KNOWN.get((entity, col), ()))
        inner.append(f"{value} AS {_q(col)}")
        if given != "true":
            inner.append(f"{given} AS {_q('__g_' + col)}")
    required = {c for c, k in kinds.items() if k == "id"}
    for col in kinds:
        if col in required:
            cond = "true" if col not in present else f"{_q(col)} IS NULL"
            checks.append((cond, f"missing_{col}"))
    columns = [c for c in kinds if c in present]
    if entity in ("users", "items"):
        extra_cols = [f.name for f in source
                      if f.name not in kinds and not f.name.startswith("__")]
        if extra_cols:  # unmapped source columns become free-form attributes
            pack = ", ".join(f"{_q(c)} := NULLIF(trim(CAST({_q(c)} AS VARCHAR)), '')"
                             for c in extra_cols)
            base = "NULLIF(trim(CAST(extra AS VARCHAR)), '')" if "extra" in present else "NULL"
            inner.append(f"CASE WHEN {base} IS NULL OR json_valid({base}) THEN json_merge_patch("
                         f"coalesce({base}, '{{}}'), to_json(struct_pack({pack}))) END "
                         f"AS __extra_merged")
    checks += _entity_checks(entity, present, bounds)
    for col, kind in kinds.items():
        if col not in present or kind in ("id",):
            continue
        if kind not in ("text", "enum"):
            checks.append((f"{_q('__g_' + col)} AND {_q(col)} IS NULL", f"bad_{col}"))
        if col in RANGES.get(entity, {}):
            cond = RANGES[entity][col].format(v=_q(col))
            checks.append((f"{_q(col)} IS NOT NULL AND ({cond})", f"bad_{col}"))
        if kind == "ts" and col == "timestamp":  # other times (releases, signups) may be old
            name = "timestamp_out_of_range"
            lo = _literal(bounds.min_timestamp)
            checks.append((f"{_q(col)} IS NOT NULL AND ({_q(col)} < CAST({lo} AS TIMESTAMPTZ) "
                           f"OR {_q(col)} > current_timestamp + to_seconds("
                           f"{int(bounds.max_future_seconds)}))", name))
    reason = "CASE " + " ".join(f"WHEN {c} THEN '{r}'" for c, r in checks) + " END"
    merged = any(x.endswith("AS __extra_merged") for x in inner)
    outer = _outer_columns(entity, present, columns, merged)
    sql = (f"SELECT {', '.join(outer)}, __reason, __line FROM (SELECT *, {reason} AS __reason "
           f"FROM (SELECT {', '.join([*inner, '__line'])} FROM {relation}))")
    out_cols = list(dict.fromkeys([*columns, *_defaulted(entity, present)]))
    if entity == "events":
        out_cols.insert(0, event_keys.KEY)
    if merged and "extra" not in out_cols:
        out_cols.append("extra")
    return sql, out_cols


def _entity_checks(entity: str, present: dict[str, pa.DataType],
                   bounds: TimeBounds) -> list[tuple[str, str]]:
    checks: list[tuple[str, str]] = []
    if entity == "events":
        if "type" not in present:
            checks.append(("true", "missing_type"))
        else:
            known = ", ".join(_literal(t) for t in sorted(schema.EVENT_TYPES))
            item_types = ", ".join(_literal(t) for t in sorted(schema.ITEM_EVENT_TYPES))
            checks += [("type IS NULL", "missing_type"),
                       (f"type NOT IN ({known})", "unknown_event_type")]
            # The rare condition first: AND evaluates its second term only on the rows that
            # pass the first, and a list of 10 types costs ~0.08 CPU-s per million rows.
            item_missing = "true" if "item_id" not in present else "item_id IS NULL"
            checks.append((f"{item_missing} AND type IN ({item_types})", "missing_item_id"))
            value_missing = "true" if "value" not in present else "NOT __g_value"
            checks.append((f"{value_missing} AND type = 'rating'", "missing_value"))
        if "timestamp" not in present:
            checks.append(("true", "missing_timestamp"))
        else:
            checks.append(('NOT "__g_timestamp"', "missing_timestamp"))
    if entity == "edges":
        if "kind" in present:
            kinds = ", ".join(_literal(k) for k in sorted(schema.EDGE_KINDS))
            checks.append((f"kind IS NOT NULL AND kind NOT IN ({kinds})", "unknown_edge_kind"))
        checks.append(("src_user_id = dst_user_id", "self_edge"))
    return checks


def _defaulted(entity: str, present: dict[str, pa.DataType]) -> list[str]:
    if entity == "edges":
        return ["kind", "weight", "directed"]
    return []


def _outer_columns(entity: str, present: dict[str, pa.DataType], columns: list[str],
                   merged: bool) -> list[str]:
    out = []
    for col in columns:
        if col == "extra":
            continue
        if KINDS[entity][col] == "int":
            out.append(f"TRY_CAST(round({_q(col)}) AS INTEGER) AS {_q(col)}")
        else:
            out.append(_q(col))
    if entity == "events":  # the key every event is stored and deduplicated by
        out = [*event_keys.stored_columns_sql(
            "user_id", "item_id" if "item_id" in present else "NULL", "type", '"timestamp"',
            given="event_id" if "event_id" in present else None),
            *(c for c in out if c != '"event_id"')]
    if entity == "edges":
        out = [c for c in out if c not in ('"kind"', '"weight"', '"directed"')]
        kind = "coalesce(kind, 'friend')" if "kind" in present else "'friend'"
        out.append(f"{kind} AS kind")
        weight = "coalesce(weight, 1.0)" if "weight" in present else "1.0"
        out.append(f"CAST({weight} AS DOUBLE) AS weight")
        directed_default = f"({kind}) IN ('follow', 'trust')"
        directed = (f"coalesce(directed, {directed_default})" if "directed" in present
                    else directed_default)
        out.append(f"{directed} AS directed")
    if merged:
        out.append("__extra_merged AS extra")
    elif "extra" in present:
        out.append("extra")
    return out
