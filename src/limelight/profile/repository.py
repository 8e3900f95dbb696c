"""Versioned storage of profiles, segments and memberships in the event store's database.

Tables (created on first use):

- ``profile_builds``: one row per build: ``version``, ``created_at``, ``as_of``, ``n_users``,
  ``config`` (JSON), ``rfm_boundaries`` (JSON), ``interest_columns`` (JSON), ``method``,
  ``segment_model`` (the pickled :class:`SegmentModel`, preprocessing pipeline included);
- ``profiles``: the wide profile table with a ``version`` column (columns a later build adds
  are added to the table; the last ``keep_versions`` builds are kept);
- ``segments``: ``version``, ``segment_id``, ``size``, ``share``, ``description``, ``method``;
- ``segment_memberships``: ``version``, ``user_id``, ``segment_id``, ``probability``,
  ``rfm_segment``.

Marketing reads segments with plain SQL, e.g. ``SELECT user_id FROM segment_memberships
WHERE version = (SELECT max(version) FROM profile_builds) AND segment_id = 2``.
"""

from __future__ import annotations

import json
import pickle
from typing import Any

import pandas as pd
import pyarrow as pa

from limelight.errors import StoreError, UnknownIdError

_DDL = [
    """CREATE TABLE IF NOT EXISTS profile_builds (
        version INTEGER PRIMARY KEY, created_at TIMESTAMPTZ, as_of TIMESTAMPTZ,
        n_users INTEGER, config VARCHAR, rfm_boundaries VARCHAR, interest_columns VARCHAR,
        method VARCHAR, segment_model BLOB)""",
    """CREATE TABLE IF NOT EXISTS segments (
        version INTEGER, segment_id INTEGER, size INTEGER, share DOUBLE,
        description VARCHAR, method VARCHAR)""",
    """CREATE TABLE IF NOT EXISTS segment_memberships (
        version INTEGER, user_id VARCHAR, segment_id INTEGER, probability DOUBLE,
        rfm_segment VARCHAR)""",
]


class ProfileRepository:
    """Saves and reads profile builds in a DuckDB-backed store (or a DuckDB connection).

    Parameters
    ----------
    store
        A :class:`~limelight.store.duckdb.DuckDBEventStore` (anything with ``execute`` and
        ``register``) or a ``duckdb`` connection.
    keep_versions
        How many builds of the (wide) ``profiles`` table to keep; segments and memberships of
        every build are kept.
    """

    def __init__(self, store: Any, keep_versions: int = 3) -> None:
        if not hasattr(store, "execute") or not hasattr(store, "register"):
            raise StoreError(f"{type(store).__name__} cannot hold profiles: use a DuckDB store")
        self.store = store
        self.keep_versions = keep_versions
        for ddl in _DDL:
            self.store.execute(ddl)

    # -- writing ----------------------------------------------------------------------------
    def save(self, profiles: pd.DataFrame, *, segments: Any = None,
             memberships: pd.DataFrame | None = None, as_of_us: int | None = None,
             config: dict[str, Any] | None = None,
             rfm_boundaries: dict[str, list[float]] | None = None,
             interest_columns: list[str] | None = None) -> int:
        """Store one build and return its version (1, 2, ...).

        ``memberships`` defaults to ``segments.assign(profiles)`` when a segment model is given.
        """
        version = (self.latest_version() or 0) + 1
        if segments is not None and memberships is None:
            memberships = pd.DataFrame({"segment_id": segments.labels_.reindex(profiles.index),
                                        "segment_probability": 1.0})
        as_of = (pd.Timestamp(as_of_us, unit="us", tz="UTC") if as_of_us is not None
                 else pd.Timestamp(profiles.attrs.get("as_of", pd.Timestamp.now(tz="UTC"))))
        self.store.execute(
            "INSERT INTO profile_builds VALUES (?, now(), ?, ?, ?, ?, ?, ?, ?)",
            [version, as_of.to_pydatetime(), len(profiles), json.dumps(config or {}),
             json.dumps(rfm_boundaries or {}), json.dumps(interest_columns or []),
             getattr(segments, "method", None),
             pickle.dumps(segments) if segments is not None else None])
        self._save_profiles(profiles, version)
        if segments is not None:
            table = segments.table()
            seg = pd.DataFrame({"version": version, "segment_id": table["segment_id"],
                                "size": table["size"], "share": table["share"],
                                "description": table["description"],
                                "method": segments.method})
            self._insert("segments", seg)
        if memberships is not None:
            mem = pd.DataFrame({
                "version": version, "user_id": profiles.index.astype(str),
                "segment_id": memberships["segment_id"].reindex(profiles.index).to_numpy(),
                "probability": memberships["segment_probability"].reindex(
                    profiles.index).to_numpy(),
                "rfm_segment": (profiles["rfm_segment"].to_numpy()
                                if "rfm_segment" in profiles else None)})
            self._insert("segment_memberships", mem)
        return version

    def _save_profiles(self, profiles: pd.DataFrame, version: int) -> None:
        frame = profiles.reset_index()
        frame.insert(0, "version", version)
        table = pa.Table.from_pandas(frame, preserve_index=False)
        # All-null columns have Arrow type null, which DuckDB cannot store: make them text.
        for i, fld in enumerate(table.schema):
            if pa.types.is_null(fld.type):
                table = table.set_column(i, fld.name, table.column(i).cast(pa.string()))
        exists = self._table_exists("profiles")
        self.store.register("_profiles_new", table)
        try:
            if not exists:
                self.store.execute("CREATE TABLE profiles AS SELECT * FROM _profiles_new")
                return
            have = set(self.store.execute(
                "SELECT column_name FROM information_schema.columns "
                "WHERE table_name = 'profiles'").df()["column_name"])
            types = self.store.execute("DESCRIBE _profiles_new").df()
            for name, typ in zip(types["column_name"], types["column_type"], strict=True):
                if name not in have:
                    self.store.execute(f'ALTER TABLE profiles ADD COLUMN "{name}" {typ}')
            self.store.execute("INSERT INTO profiles BY NAME SELECT * FROM _profiles_new")
            self.store.execute("DELETE FROM profiles WHERE version <= ?",
                               [version - self.keep_versions])
        finally:
            self.store.unregister("_profiles_new")

    def _insert(self, table: str, frame: pd.DataFrame) -> None:
        self.store.register("_rows_new", frame)
        try:
            self.store.execute(f"INSERT INTO {table} BY NAME SELECT * FROM _rows_new")
        finally:
            self.store.unregister("_rows_new")

    def _table_exists(self, name: str) -> bool:
        rows = self.store.execute(
            "SELECT count(*) FROM information_schema.tables WHERE table_name = ?", [name]
        ).fetchone()
        return bool(rows and rows[0])

    # -- reading ----------------------------------------------------------------------------
    def latest_version(self) -> int | None:
        """Newest build's version, or None before the first build."""
        row = self.store.execute("SELECT max(version) FROM profile_builds").fetchone()
        return None if row is None or row[0] is None else int(row[0])

    def builds(self) -> pd.DataFrame:
        """Every build: version, created_at, as_of, n_users, method."""
        return self.store.execute(
            "SELECT version, created_at, as_of, n_users, method FROM profile_builds "
            "ORDER BY version").df()

    def _version(self, version: int | None) -> int:
        v = self.latest_version() if version is None else version
        if v is None:
            raise StoreError("no profiles built yet: run `limelight profile build` first")
        return int(v)

    def profiles(self, version: int | None = None) -> pd.DataFrame:
        """The profile table of a build (default: the newest), indexed by user_id."""
        v = self._version(version)
        df = self.store.execute("SELECT * FROM profiles WHERE version = ? ORDER BY user_id",
                                [v]).df()
        if df.empty and not self.builds()["version"].eq(v).any():
            raise StoreError(f"no profile build {v}")
        return _tidy(df.drop(columns=["version"]).set_index("user_id"))

    def profile(self, user_id: str, version: int | None = None) -> dict[str, Any]:
        """One user's profile as a dict (with ``segment_id`` when segments were built).

        Raises
        ------
        UnknownIdError
            When the user has no profile in that build.
        """
        v = self._version(version)
        df = self.store.execute("SELECT * FROM profiles WHERE version = ? AND user_id = ?",
                                [v, str(user_id)]).df()
        if df.empty:
            raise UnknownIdError("user", user_id)
        row = _tidy(df.drop(columns=["version"]).set_index("user_id")).iloc[0].to_dict()
        seg = self.store.execute(
            "SELECT segment_id, probability FROM segment_memberships "
            "WHERE version = ? AND user_id = ?", [v, str(user_id)]).fetchone()
        if seg is not None:
            row["segment_id"], row["segment_probability"] = seg
        row["user_id"] = str(user_id)
        return row

    def segments(self, version: int | None = None) -> pd.DataFrame:
        """Segment table of a build: segment_id, size, share, description, method."""
        v = self._version(version)
        return self.store.execute(
            "SELECT segment_id, size, share, description, method FROM segments "
            "WHERE version = ? ORDER BY segment_id", [v]).df()

    def memberships(self, version: int | None = None) -> pd.DataFrame:
        """user_id -> segment_id, probability, rfm_segment for a build."""
        v = self._version(version)
        return self.store.execute(
            "SELECT user_id, segment_id, probability, rfm_segment FROM segment_memberships "
            "WHERE version = ? ORDER BY user_id", [v]).df().set_index("user_id")

    def segment_model(self, version: int | None = None) -> Any:
        """The pickled :class:`SegmentModel` of a build (None when it had no segments)."""
        v = self._version(version)
        row = self.store.execute("SELECT segment_model FROM profile_builds WHERE version = ?",
                                 [v]).fetchone()
        if row is None:
            raise StoreError(f"no profile build {v}")
        return pickle.loads(row[0]) if row[0] is not None else None

    def build_state(self, version: int | None = None) -> dict[str, Any]:
        """as_of (µs), config, rfm_boundaries and interest_columns of a build."""
        v = self._version(version)
        row = self.store.execute(
            "SELECT epoch_us(as_of), config, rfm_boundaries, interest_columns "
            "FROM profile_builds WHERE version = ?", [v]).fetchone()
        if row is None:
            raise StoreError(f"no profile build {v}")
        return {"version": v, "as_of_us": int(row[0]), "config": json.loads(row[1]),
                "rfm_boundaries": json.loads(row[2]), "interest_columns": json.loads(row[3])}


def _tidy(df: pd.DataFrame) -> pd.DataFrame:
    """Lists back as Python lists (DuckDB returns arrays)."""
    for col in ("last_items", "last_types", "top_categories", "top_tags"):
        if col in df:
            df[col] = [list(v) if v is not None and not isinstance(v, float) else []
                       for v in df[col]]
    return df
