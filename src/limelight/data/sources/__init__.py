"""Adapters for well-known public datasets: each returns the data model as DataFrames.

``load_*`` functions return ``{entity: DataFrame}`` (columns named as in
:mod:`limelight.data.schema`, values still as text where the source had text: ingest types and
validates them). :func:`ingest_dataset` runs them through :mod:`limelight.data.ingest`, so the
same validation, deduplication and quarantine apply as for any file.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd

from limelight.data.sources.filmtrust import load_filmtrust
from limelight.data.sources.movielens import load_movielens_100k, load_movielens_small
from limelight.data.sources.retail import load_online_retail
from limelight.errors import IngestError

#: Dataset name -> loader.
DATASETS: dict[str, Callable[[str | Path], dict[str, pd.DataFrame]]] = {
    "ml-100k": load_movielens_100k,
    "ml-latest-small": load_movielens_small,
    "filmtrust": load_filmtrust,
    "online-retail": load_online_retail,
}

#: The file each frame comes from (recorded as the quarantine source).
_SOURCE_FILES = {
    ("ml-100k", "events"): "u.data", ("ml-100k", "users"): "u.user",
    ("ml-100k", "items"): "u.item", ("ml-latest-small", "events"): "ratings.csv",
    ("ml-latest-small", "tag_events"): "tags.csv", ("ml-latest-small", "items"): "movies.csv",
    ("filmtrust", "events"): "ratings.txt", ("filmtrust", "edges"): "trust.txt",
    ("online-retail", "events"): "online_retail.csv.gz",
}

#: Ingest order: attributes before the behaviour that refers to them.
_ORDER = ("users", "contacts", "items", "events", "tag_events", "edges")


def ingest_dataset(store: Any, name: str, directory: str | Path, *,
                   settings: Any | None = None,
                   frames: dict[str, pd.DataFrame] | None = None) -> dict[str, Any]:
    """Load dataset ``name`` from ``directory`` and ingest every entity into ``store``.

    ``frames`` may hold what ``DATASETS[name](directory)`` returned already (saves a re-read).

    Returns
    -------
    dict
        Frame name (``users``, ``items``, ``events``, ...) -> :class:`IngestReport`.

    Example
    -------
    >>> reports = ingest_dataset(store, "ml-100k", "data/ml-100k")  # doctest: +SKIP
    >>> reports["events"].accepted  # doctest: +SKIP
    100000
    """
    from limelight.data.ingest import ingest_frame

    if name not in DATASETS:
        raise IngestError(f"unknown dataset {name!r}; known: {', '.join(DATASETS)}")
    frames = frames if frames is not None else DATASETS[name](directory)
    reports = {}
    for key in sorted(frames, key=_ORDER.index):
        entity = "events" if key == "tag_events" else key
        source = f"{name}/{_SOURCE_FILES.get((name, key), key)}"
        reports[key] = ingest_frame(store, frames[key], entity, source_name=source,
                                    settings=settings)
    return reports


__all__ = ["DATASETS", "ingest_dataset", "load_filmtrust", "load_movielens_100k",
           "load_movielens_small", "load_online_retail"]
