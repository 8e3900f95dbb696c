"""The sample world: a reproducible synthetic shop with a hidden truth to score against.

``generate_world(size, seed)`` builds everything in memory; ``write_world(out, size, seed)``
streams the events to disk chunk by chunk, so 10M events need only about one chunk of memory.
Both produce the same data for the same size and seed (chunks are seeded by their number, not
by how they are consumed). The time window ends on a date derived from the seed, never from
the wall clock.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa

from limelight.data.schema import CONTACTS, EDGES, EVENTS, ITEMS, USERS
from limelight.errors import ConfigError
from limelight.sim.catalog import make_catalog
from limelight.sim.population import make_population
from limelight.sim.response import ResponseModel
from limelight.sim.segments import CATEGORIES, SEGMENT_NAMES, SEGMENTS
from limelight.sim.sessions import N_DAYS, Calendar, EventContext, chunk_to_arrow, simulate_chunk

#: Named sizes: (users, items, target events).
SIZES: dict[str, tuple[int, int, int]] = {
    "tiny": (300, 200, 10_000),
    "small": (5_000, 2_000, 200_000),
    "medium": (25_000, 10_000, 1_000_000),
    "large": (250_000, 50_000, 10_000_000),
}
FORMATS = ("parquet", "csv", "jsonl")
ENTITY_FILES = ("users", "contacts", "items", "edges", "events")
_SCHEMAS = {"users": USERS, "contacts": CONTACTS, "items": ITEMS, "edges": EDGES,
            "events": EVENTS}
_TARGET_EVENTS_PER_CHUNK = 400_000


def resolve_size(size: str | int) -> tuple[int, int, int]:
    """(n_users, n_items, target_events) of a named size or a target number of events."""
    if isinstance(size, str) and size.strip().lower() in SIZES:
        return SIZES[size.strip().lower()]
    try:
        events = int(str(size).replace("_", ""))
    except ValueError:
        raise ConfigError(
            f"unknown size {size!r}: use {', '.join(SIZES)} or a number of events"
        ) from None
    if events < 100:
        raise ConfigError(f"size {events} is too small: ask for at least 100 events")
    # Below ~1,000 events the per-segment minimum of sessions makes the count approximate.
    return max(10, events // 40), int(np.clip(events // 100, 30, 50_000)), events


@dataclass
class Truth:
    """What the shop cannot see: segments, preference vectors, item factors, response model.

    Attributes
    ----------
    users
        One row per user: ``user_id``, ``segment`` (int), ``segment_name``, ``bias``,
        ``activity``, then the preference vector as ``pref_<factor>`` columns.
    items
        One row per item: ``item_id``, ``quality``, ``z_price``, ``popularity``, then the
        factor vector as ``factor_<factor>`` columns.
    response
        The :class:`ResponseModel` that generated the funnel.
    meta
        Seed, size, time window, factor and segment names.
    """

    users: pd.DataFrame
    items: pd.DataFrame
    response: ResponseModel
    meta: dict = field(default_factory=dict)

    @property
    def segment_labels(self) -> pd.Series:
        """Hidden segment name per user id."""
        return self.users.set_index("user_id")["segment_name"]

    def preference_matrix(self) -> np.ndarray:
        """User preference vectors, shape (n_users, n_factors), rows as in ``users``."""
        return self.users.filter(like="pref_").to_numpy()

    def item_factor_matrix(self) -> np.ndarray:
        """Item factor vectors, shape (n_items, n_factors), rows as in ``items``."""
        return self.items.filter(like="factor_").to_numpy()

    def save(self, directory: str | Path) -> Path:
        """Write the truth into ``directory`` (a ``truth/`` folder beside the events)."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        self.users.to_parquet(directory / "users.parquet", index=False)
        self.items.to_parquet(directory / "items.parquet", index=False)
        (directory / "meta.json").write_text(json.dumps(self.meta, indent=2, default=str))
        self.response.save(directory)
        return directory


@dataclass
class World:
    """A generated shop: data-model tables plus the hidden :class:`Truth`."""

    users: pd.DataFrame
    contacts: pd.DataFrame
    items: pd.DataFrame
    edges: pd.DataFrame
    events: pd.DataFrame
    truth: Truth
    meta: dict = field(default_factory=dict)

    def save(self, directory: str | Path, fmt: str = "parquet") -> dict[str, Path]:
        """Write ``<entity>.<fmt>`` files and ``truth/``; returns entity -> path."""
        directory = Path(directory)
        paths = {}
        for name in ENTITY_FILES:
            paths[name] = _write_table(directory, name, getattr(self, name), fmt)
        self.truth.save(directory / "truth")
        _write_manifest(directory, self.meta, fmt, {"events": len(self.events)})
        return paths


@dataclass
class _Blueprint:
    """Static parts of a world plus a way to produce its events chunk by chunk."""

    world_parts: dict[str, pd.DataFrame]
    truth: Truth
    meta: dict
    chunks: Callable[[], Iterator[pa.Table]]


def _blueprint(size: str | int, seed: int) -> _Blueprint:
    n_users, n_items, target = resolve_size(size)
    if int(seed) < 0:
        raise ConfigError(f"seed must be >= 0, got {seed}")
    root = np.random.SeedSequence([int(seed), 20_240_601])
    rng_items, rng_users, rng_pilot = (np.random.default_rng(s) for s in root.spawn(3))
    end = pd.Timestamp("2025-01-01", tz="UTC") + pd.Timedelta(days=int(seed) % 365 + 150)
    calendar = Calendar.ending(end)
    catalog = make_catalog(n_items, rng_items, calendar.start, end)
    pop = make_population(n_users, rng_users, calendar.start, end)
    params = [{f: getattr(s, f) for f in ("click_logit", "cart_logit", "buy_logit",
                                          "price_sensitivity", "discount_sensitivity")}
              for s in SEGMENTS]
    response = ResponseModel(pop.users["user_id"], catalog.items["item_id"], pop.preferences,
                             catalog.factors, pop.segment, pop.bias, catalog.quality,
                             catalog.z_price, params)
    ctx = EventContext(pop, catalog, response, calendar, int(seed))

    # Calibrate activity so the world has about `target` events: a pilot run at scale 1.
    # Session floors and caps make events non-linear in the scale: refine it once.
    pilot = np.sort(rng_pilot.choice(n_users, size=min(n_users, 2000), replace=False))
    scale = 1.0
    for _ in range(2):
        pilot_events = len(simulate_chunk(ctx, pilot, scale, rng_pilot)["user"])
        per_user = max(pilot_events / len(pilot), 1e-3)
        scale *= target / (per_user * n_users)
    per_user *= target / (per_user * n_users)
    users_per_chunk = max(1, int(_TARGET_EVENTS_PER_CHUNK / per_user))

    def chunks() -> Iterator[pa.Table]:
        first_event = first_session = 0
        for k, lo in enumerate(range(0, n_users, users_per_chunk)):
            rng = np.random.default_rng(np.random.SeedSequence([int(seed), 7, k]))
            cols = simulate_chunk(ctx, np.arange(lo, min(lo + users_per_chunk, n_users)),
                                  scale, rng)
            table = chunk_to_arrow(ctx, cols, first_event, first_session)
            first_event += table.num_rows
            first_session += int(cols["session"].max()) + 1 if len(cols["session"]) else 0
            yield table

    factor_names = [c.lower().replace(" & ", "_").replace(" ", "_") for c in CATEGORIES]
    factor_names += [f"style{j}" for j in range(catalog.factors.shape[1] - len(CATEGORIES))]
    truth_users = pd.DataFrame({
        "user_id": pop.users["user_id"], "segment": pop.segment,
        "segment_name": np.array(SEGMENT_NAMES, dtype=object)[pop.segment],
        "bias": pop.bias, "activity": pop.activity,
    })
    truth_users = pd.concat([truth_users, pd.DataFrame(
        pop.preferences, columns=[f"pref_{f}" for f in factor_names])], axis=1)
    truth_items = pd.DataFrame({
        "item_id": catalog.items["item_id"], "quality": catalog.quality,
        "z_price": catalog.z_price, "popularity": catalog.popularity,
    })
    truth_items = pd.concat([truth_items, pd.DataFrame(
        catalog.factors, columns=[f"factor_{f}" for f in factor_names])], axis=1)
    meta = {
        "size": str(size), "seed": int(seed), "n_users": n_users, "n_items": n_items,
        "target_events": target, "start": calendar.start.isoformat(),
        "end": end.isoformat(), "days": N_DAYS, "activity_scale": scale,
        "factors": factor_names, "segments": list(SEGMENT_NAMES),
    }
    truth = Truth(truth_users, truth_items, response, meta)
    parts = {"users": pop.users, "contacts": pop.contacts, "items": catalog.items,
             "edges": pop.edges}
    return _Blueprint(parts, truth, meta, chunks)


def generate_world(size: str | int = "tiny", seed: int = 0) -> World:
    """Generate the sample world in memory.

    Parameters
    ----------
    size
        ``"tiny"`` (~300 users, ~10k events, for tests), ``"small"`` (~5k users, ~200k events),
        ``"medium"`` (~1M events), ``"large"`` (~10M events; prefer :func:`write_world`), or a
        target number of events.
    seed
        Same seed and size, same world (byte for byte once saved).

    Returns
    -------
    World

    Example
    -------
    >>> w = generate_world("tiny", seed=1)
    >>> sorted(w.truth.segment_labels.unique())[:2]
    ['bargain_hunters', 'loyal_big_spenders']
    """
    bp = _blueprint(size, seed)
    events = pa.concat_tables(list(bp.chunks())).to_pandas()
    return World(events=events, truth=bp.truth, meta=bp.meta, **bp.world_parts)


def write_world(out: str | Path, size: str | int = "small", seed: int = 0,
                fmt: str = "parquet",
                progress: Callable[[int], None] | None = None) -> dict[str, object]:
    """Generate the sample world straight to ``out`` (events streamed chunk by chunk).

    Writes ``users``, ``contacts``, ``items``, ``edges`` and ``events`` as ``.parquet``,
    ``.csv`` (lists joined by ``|``) or ``.jsonl``, the hidden truth under ``out/truth/`` and a
    ``manifest.json``. ``progress`` is called with the number of events written so far.

    Returns
    -------
    dict
        The manifest: size, seed, time window, counts per entity, file paths.
    """
    if fmt not in FORMATS:
        raise ConfigError(f"unknown format {fmt!r}: use one of {', '.join(FORMATS)}")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    bp = _blueprint(size, seed)
    files = {name: str(_write_table(out, name, frame, fmt))
             for name, frame in bp.world_parts.items()}
    files["events"] = str(_stream_events(out / f"events.{fmt}", bp.chunks(), fmt, progress))
    bp.truth.save(out / "truth")
    counts = {name: len(frame) for name, frame in bp.world_parts.items()}
    counts["events"] = _count_rows(Path(files["events"]), fmt)
    return _write_manifest(out, bp.meta, fmt, counts, files)


def _write_manifest(out: Path, meta: dict, fmt: str, counts: dict[str, int],
                    files: dict[str, str] | None = None) -> dict[str, object]:
    files = files or {name: str(out / f"{name}.{fmt}") for name in ENTITY_FILES}
    manifest = {**meta, "format": fmt, "counts": counts, "files": files,
                "truth": str(out / "truth")}
    (out / "manifest.json").write_text(json.dumps(manifest, indent=2, default=str))
    return manifest


def _to_arrow(name: str, frame: pd.DataFrame) -> pa.Table:
    return pa.Table.from_pandas(frame, schema=_SCHEMAS[name], preserve_index=False)


def _csv_ready(table: pa.Table) -> pa.Table:
    """CSV has no lists: join list columns with ``|``."""
    import pyarrow.compute as pc

    for k, f in enumerate(table.schema):
        if pa.types.is_list(f.type):
            table = table.set_column(k, f.name, pc.binary_join(table.column(k), "|"))
    return table


def _write_table(directory: Path, name: str, frame: pd.DataFrame, fmt: str) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{name}.{fmt}"
    return _stream_events(path, iter([_to_arrow(name, frame)]), fmt, None)


def _stream_events(path: Path, tables: Iterator[pa.Table], fmt: str,
                   progress: Callable[[int], None] | None) -> Path:
    """Write a stream of Arrow tables to one file (a temp name first, renamed when whole)."""
    import pyarrow.csv as pacsv
    import pyarrow.parquet as pq

    tmp = path.with_name(path.name + ".partial")
    writer = None
    written = 0
    with open(tmp, "wb") as fh:
        for table in tables:
            # Without pandas' metadata, in-memory and streamed worlds write the same bytes.
            table = table.replace_schema_metadata(None)
            if fmt == "parquet":
                writer = writer or pq.ParquetWriter(fh, table.schema, compression="zstd")
                writer.write_table(table)
            elif fmt == "csv":
                table = _csv_ready(table)
                writer = writer or pacsv.CSVWriter(fh, table.schema)
                writer.write_table(table)
            else:
                frame = table.to_pandas()
                for col in frame.select_dtypes(include=["datetimetz"]).columns:
                    frame[col] = frame[col].map(lambda t: None if pd.isna(t) else t.isoformat())
                fh.write(frame.to_json(orient="records", lines=True).encode())
            written += table.num_rows
            if progress is not None:
                progress(written)
        if writer is not None:
            writer.close()
    tmp.replace(path)
    return path


def _count_rows(path: Path, fmt: str) -> int:
    if fmt == "parquet":
        import pyarrow.parquet as pq

        return pq.ParquetFile(path).metadata.num_rows
    with open(path, "rb") as fh:
        lines = sum(chunk.count(b"\n") for chunk in iter(lambda: fh.read(1 << 20), b""))
    return lines - 1 if fmt == "csv" else lines


def load_truth(directory: str | Path) -> Truth:
    """Read the hidden truth from a world folder (or its ``truth/`` folder itself)."""
    directory = Path(directory)
    if (directory / "truth").is_dir():
        directory = directory / "truth"
    if not (directory / "meta.json").is_file():
        raise ConfigError(f"no sample-world truth under {directory}: run `limelight generate`")
    return Truth(
        pd.read_parquet(directory / "users.parquet"),
        pd.read_parquet(directory / "items.parquet"),
        ResponseModel.load(directory),
        json.loads((directory / "meta.json").read_text()),
    )


def load_world(directory: str | Path) -> World:
    """Read a world written in parquet format by :meth:`World.save` or :func:`write_world`."""
    directory = Path(directory)
    frames = {}
    for name in ENTITY_FILES:
        path = directory / f"{name}.parquet"
        if not path.is_file():
            raise ConfigError(f"{path} is missing: load_world reads parquet worlds only")
        frames[name] = pd.read_parquet(path)
    manifest = directory / "manifest.json"
    meta = json.loads(manifest.read_text()) if manifest.is_file() else {}
    return World(truth=load_truth(directory), meta=meta, **frames)
