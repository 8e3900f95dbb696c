"""MovieLens adapters (GroupLens): the 100K release and "latest-small".

Both become the data model: ratings are ``rating`` events with the star value and the
original Unix timestamp; movies are items with their genres as ``categories``. 100K also has
user demographics (age, gender; occupation and zip code go to ``extra``). In latest-small,
free-text tags become the items' ``tags`` and, per application, a ``review`` event whose
``review_text`` is the tag (a tag is a user's short written judgement of an item); its
``event_id`` includes the tag so several tags applied in the same second stay apart.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pandas as pd

from limelight.errors import IngestError

LINE = "__line"


def _need(path: Path) -> Path:
    if not path.is_file():
        raise IngestError(f"{path.name} not found in {path.parent}; is this the right folder?")
    return path


def load_movielens_100k(directory: str | Path) -> dict[str, pd.DataFrame]:
    """Read MovieLens 100K (``u.data``, ``u.user``, ``u.item``, ``u.genre``).

    Returns
    -------
    dict
        ``events`` (100,000 ratings), ``users`` (943), ``items`` (1,682), each with the data
        model's column names and ``__line`` (line in the source file).

    Example
    -------
    >>> frames = load_movielens_100k("data/ml-100k")  # doctest: +SKIP
    >>> len(frames["events"]), len(frames["users"]), len(frames["items"])  # doctest: +SKIP
    (100000, 943, 1682)
    """
    d = Path(directory)
    ratings = pd.read_csv(_need(d / "u.data"), sep="\t", header=None, dtype=str,
                          names=["user_id", "item_id", "value", "timestamp"],
                          keep_default_na=False)
    events = ratings.assign(type="rating", **{LINE: np.arange(1, len(ratings) + 1)})
    users_raw = pd.read_csv(_need(d / "u.user"), sep="|", header=None, dtype=str,
                            names=["user_id", "age", "gender", "occupation", "zip"],
                            keep_default_na=False)
    users = pd.DataFrame({
        "user_id": users_raw["user_id"], "age": users_raw["age"],
        "gender": users_raw["gender"],
        "extra": [json.dumps({"occupation": o, "zip": z})
                  for o, z in zip(users_raw["occupation"], users_raw["zip"], strict=True)],
        LINE: np.arange(1, len(users_raw) + 1),
    })
    genres = pd.read_csv(_need(d / "u.genre"), sep="|", header=None, names=["name", "idx"],
                         dtype={"name": str, "idx": int}).dropna()
    genre_names = genres.sort_values("idx")["name"].tolist()
    item_cols = ["item_id", "title", "release_date", "video_release_date", "imdb_url",
                 *genre_names]
    # u.item is ISO-8859-1 (latin-1): a few titles carry accented letters.
    items_raw = pd.read_csv(_need(d / "u.item"), sep="|", header=None, names=item_cols,
                            dtype=str, encoding="latin-1", keep_default_na=False)
    flags = items_raw[genre_names].to_numpy() == "1"
    categories = [[g for g, on in zip(genre_names, row, strict=True) if on] for row in flags]
    release = pd.to_datetime(items_raw["release_date"], format="%d-%b-%Y", errors="coerce")
    items = pd.DataFrame({
        "item_id": items_raw["item_id"], "title": items_raw["title"],
        "categories": [json.dumps(c) for c in categories],
        "created_time": release.dt.strftime("%Y-%m-%dT00:00:00Z").fillna(""),
        "extra": [json.dumps({"imdb_url": u}) if u else None for u in items_raw["imdb_url"]],
        LINE: np.arange(1, len(items_raw) + 1),
    })
    return {"users": users, "items": items, "events": events}


def _tag_event_id(user: str, item: str, tag: str, ts: str) -> str:
    return hashlib.md5(f"tag\x1f{user}\x1f{item}\x1f{tag}\x1f{ts}".encode()).hexdigest()


def load_movielens_small(directory: str | Path) -> dict[str, pd.DataFrame]:
    """Read MovieLens latest-small (``ratings.csv``, ``tags.csv``, ``movies.csv``, ``links.csv``).

    Returns
    -------
    dict
        ``events`` (100,836 ratings then 3,683 tag ``review`` events), ``users`` (610 ids; the
        release has no demographics) and ``items`` (9,742 movies with genres and tags).
    """
    d = Path(directory)
    ratings = pd.read_csv(_need(d / "ratings.csv"), dtype=str, keep_default_na=False)
    tags = pd.read_csv(_need(d / "tags.csv"), dtype=str, keep_default_na=False)
    movies = pd.read_csv(_need(d / "movies.csv"), dtype=str, keep_default_na=False)
    rating_events = pd.DataFrame({
        "user_id": ratings["userId"], "item_id": ratings["movieId"], "type": "rating",
        "value": ratings["rating"], "timestamp": ratings["timestamp"],
        LINE: np.arange(2, len(ratings) + 2),
    })
    tag_events = pd.DataFrame({
        "event_id": [_tag_event_id(*r) for r in
                     tags[["userId", "movieId", "tag", "timestamp"]].itertuples(index=False)],
        "user_id": tags["userId"], "item_id": tags["movieId"], "type": "review",
        "review_text": tags["tag"], "timestamp": tags["timestamp"],
        LINE: np.arange(2, len(tags) + 2),
    })
    tag_lists = (tags.assign(tag=tags["tag"].str.strip())
                 .groupby("movieId")["tag"].agg(lambda s: list(dict.fromkeys(s))))
    links_path = d / "links.csv"
    links = (pd.read_csv(links_path, dtype=str, keep_default_na=False).set_index("movieId")
             if links_path.is_file() else pd.DataFrame(columns=["imdbId", "tmdbId"]))
    genres = movies["genres"].str.split("|").apply(
        lambda gs: [g for g in gs if g and g != "(no genres listed)"])
    items = pd.DataFrame({
        "item_id": movies["movieId"], "title": movies["title"],
        "categories": [json.dumps(g) for g in genres],
        "tags": [json.dumps(tag_lists.get(m, [])) for m in movies["movieId"]],
        "extra": [json.dumps({"imdb_id": links["imdbId"].get(m), "tmdb_id": links["tmdbId"].get(m)})
                  for m in movies["movieId"]],
        LINE: np.arange(2, len(movies) + 2),
    })
    user_ids = pd.unique(pd.concat([ratings["userId"], tags["userId"]]))
    users = pd.DataFrame({"user_id": user_ids})
    return {"users": users, "items": items,
            "events": rating_events, "tag_events": tag_events}
