"""The sample world: reproducibility, sizes, schema, funnel, skew, homophily, segments."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from limelight.data.schema import ENTITIES, EVENT_TYPES, ITEM_EVENT_TYPES
from limelight.errors import ConfigError
from limelight.sim import SEGMENT_NAMES, generate_world, load_truth, load_world, write_world
from limelight.sim.world import resolve_size


def _digest(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def test_same_seed_gives_identical_files(tmp_path: Path) -> None:
    write_world(tmp_path / "a", 3_000, seed=5)
    write_world(tmp_path / "b", 3_000, seed=5)
    generate_world(3_000, seed=5).save(tmp_path / "c")  # in memory, same bytes as streamed
    a, b, c = (_digest(tmp_path / x) for x in "abc")
    for d in (a, b, c):
        d.pop("manifest.json")  # names the folder it lives in
    assert a == b == c
    assert "truth/users.parquet" in a and "events.parquet" in a


def test_other_seed_gives_other_world(tiny_world) -> None:
    other = generate_world("tiny", seed=4)
    assert not other.events["item_id"].equals(tiny_world.events["item_id"])
    assert other.meta["end"] != tiny_world.meta["end"]  # the window depends on the seed


def test_window_is_derived_from_the_seed_not_the_clock(tiny_world) -> None:
    again = generate_world("tiny", seed=3)
    assert again.meta["end"] == tiny_world.meta["end"]
    ts = tiny_world.events["timestamp"]
    assert ts.min() >= pd.Timestamp(tiny_world.meta["start"])
    assert ts.max() < pd.Timestamp(tiny_world.meta["end"])


@pytest.mark.parametrize(("size", "users", "items", "events"),
                         [("tiny", 300, 200, 10_000), ("small", 5_000, 2_000, 200_000)])
def test_named_sizes(size, users, items, events, tiny_world, small_world) -> None:
    world = tiny_world if size == "tiny" else small_world
    assert len(world.users) == users and len(world.contacts) == users
    assert len(world.items) == items
    assert abs(len(world.events) - events) < 0.15 * events


def test_numeric_size_targets_events() -> None:
    world = generate_world(4_000, seed=1)
    assert abs(len(world.events) - 4_000) < 0.2 * 4_000
    assert resolve_size("10_000_000") == (*resolve_size("large")[:2], 10_000_000)
    with pytest.raises(ConfigError):
        resolve_size("huge")
    with pytest.raises(ConfigError):
        resolve_size(5)


def test_every_table_conforms_to_the_data_model(tiny_world) -> None:
    for name, schema in ENTITIES.items():
        frame = getattr(tiny_world, name)
        assert list(frame.columns) == schema.names, name
        table = pa.Table.from_pandas(frame, schema=schema, preserve_index=False)
        for field in schema:
            if not field.nullable:
                assert table.column(field.name).null_count == 0, (name, field.name)
    ev = tiny_world.events
    assert ev["event_id"].is_unique
    assert set(ev["type"]) <= EVENT_TYPES
    assert ev.loc[ev["type"].isin(ITEM_EVENT_TYPES), "item_id"].notna().all()
    assert set(ev["item_id"]) <= set(tiny_world.items["item_id"])
    assert set(ev["user_id"]) <= set(tiny_world.users["user_id"])
    assert not ev.duplicated(["user_id", "item_id", "type", "timestamp"]).any()
    assert tiny_world.users["user_id"].is_unique and tiny_world.items["item_id"].is_unique
    assert (tiny_world.items["price"] > 0).all()
    assert tiny_world.items["categories"].map(len).min() >= 1


def test_nobody_acts_before_signing_up(tiny_world) -> None:
    first = tiny_world.events.groupby("user_id")["timestamp"].min()
    signup = tiny_world.users.set_index("user_id")["signup_time"].loc[first.index]
    assert (first > signup).all()
    joined_late = (signup > pd.Timestamp(tiny_world.meta["start"])).mean()
    assert 0.15 < joined_late < 0.6  # some users sign up during the window


def test_contacts_and_consent(tiny_world) -> None:
    contacts = tiny_world.contacts
    assert (contacts["email"] == "user" + contacts["user_id"].str[1:].astype(int).astype(str)
            + "@example.com").all()
    for col in ("consent_personalization", "consent_email", "consent_push", "consent_sms"):
        share = tiny_world.users[col].mean()
        assert 0.05 < share < 0.99, col  # some opted in, some opted out, on every channel


def test_funnel_is_monotone_per_user(tiny_world) -> None:
    counts = pd.crosstab(tiny_world.events["user_id"], tiny_world.events["type"])
    assert (counts["view"] >= counts["click"]).all()
    assert (counts["click"] >= counts["add_to_cart"]).all()
    assert (counts["add_to_cart"] >= counts["purchase"]).all()
    assert counts["purchase"].sum() > 0 and counts["rating"].sum() > 0
    every = {"impression", "view", "click", "add_to_cart", "purchase", "rating", "review",
             "like", "share", "return"}
    assert every <= set(counts.columns)


def test_purchase_value_is_price_less_discount(tiny_world) -> None:
    buys = tiny_world.events[tiny_world.events["type"] == "purchase"].merge(
        tiny_world.items[["item_id", "price"]], on="item_id")
    ratio = buys["value"] / (buys["price"] * buys["quantity"])
    assert np.isin(np.round(ratio, 2), [0.7, 0.8, 0.9, 1.0]).all()
    assert (ratio < 0.99).mean() > 0.05  # some purchases were discounted


def test_popularity_is_skewed(small_world) -> None:
    views = small_world.events.loc[small_world.events["type"] == "view", "item_id"]
    counts = np.sort(views.value_counts().reindex(small_world.items["item_id"]).fillna(0)
                     .to_numpy())[::-1]
    top_decile = counts[: len(counts) // 10].sum() / counts.sum()
    assert top_decile > 0.35  # uniform would give 0.10
    assert (counts == 0).sum() > 0  # new items nobody has seen yet


def test_new_items_have_no_interactions(tiny_world) -> None:
    truth = tiny_world.truth.items
    fresh = set(truth.loc[truth["popularity"] == 0, "item_id"])
    assert fresh and not fresh & set(tiny_world.events["item_id"])
    created = tiny_world.items.set_index("item_id").loc[sorted(fresh), "created_time"]
    assert (created > pd.Timestamp(tiny_world.meta["end"]) - pd.Timedelta(days=4)).all()


def test_social_graph_has_homophily(small_world) -> None:
    seg = small_world.truth.segment_labels
    friends = small_world.edges[small_world.edges["kind"] == "friend"]
    same = (seg.loc[friends["src_user_id"]].to_numpy()
            == seg.loc[friends["dst_user_id"]].to_numpy()).mean()
    shares = seg.value_counts(normalize=True)
    random_same = float((shares**2).sum())
    assert same > 0.6 and same > 2.5 * random_same
    assert not (friends["src_user_id"] == friends["dst_user_id"]).any()
    region = small_world.users.set_index("user_id")["region"]
    same_region = (region.loc[friends["src_user_id"]].to_numpy()
                   == region.loc[friends["dst_user_id"]].to_numpy()).mean()
    assert same_region > 2 * float((region.value_counts(normalize=True) ** 2).sum())
    assert {"friend", "follow"} == set(small_world.edges["kind"])


def _segment_stats(world) -> pd.DataFrame:
    ev = world.events.merge(world.truth.users[["user_id", "segment_name"]], on="user_id")
    users = world.truth.users["segment_name"].value_counts()
    per_type = pd.crosstab(ev["segment_name"], ev["type"])
    views = ev[ev["type"] == "view"]
    local = views.merge(world.users[["user_id", "timezone"]], on="user_id")
    hours = np.concatenate([
        g["timestamp"].dt.tz_convert(tz).dt.hour.to_numpy() for tz, g in local.groupby("timezone")])
    segs = np.concatenate([g["segment_name"].to_numpy() for _, g in local.groupby("timezone")])
    night = pd.Series((hours >= 21) | (hours < 3)).groupby(segs).mean()
    weekend = (views["timestamp"].dt.day_of_week >= 5).groupby(views["segment_name"]).mean()
    buys = ev[ev["type"] == "purchase"].merge(world.items[["item_id", "price"]], on="item_id")
    discounted = (buys["value"] < buys["price"] * buys["quantity"] - 0.01)
    return pd.DataFrame({
        "events_per_user": ev.groupby("segment_name").size() / users,
        "views_per_purchase": per_type["view"] / per_type["purchase"],
        "mean_purchase_price": buys.groupby("segment_name")["price"].mean(),
        "discounted_share": discounted.groupby(buys["segment_name"]).mean(),
        "night_share": night,
        "weekend_share": weekend,
    })


def test_hidden_segments_differ_in_observable_behaviour(small_world) -> None:
    s = _segment_stats(small_world)
    assert set(s.index) == set(SEGMENT_NAMES)
    assert s["events_per_user"].idxmin() == "occasional"
    assert s["views_per_purchase"].idxmax() == "bargain_hunters"
    assert s["discounted_share"].idxmax() == "bargain_hunters"
    assert s["mean_purchase_price"].idxmax() == "loyal_big_spenders"
    assert s["night_share"]["night_browsers"] > 0.6
    assert s["night_share"].drop("night_browsers").max() < 0.25
    assert s["weekend_share"].idxmax() == "weekend_families"
    assert s["weekend_share"]["weekend_families"] > 0.55
    # Tastes: each segment's favourite categories dominate its views.
    ev = small_world.events[small_world.events["type"] == "view"].merge(
        small_world.items[["item_id", "categories"]], on="item_id").merge(
        small_world.truth.users[["user_id", "segment_name"]], on="user_id")
    top = ev.assign(cat=ev["categories"].str[0]).groupby("segment_name")["cat"].agg(
        lambda c: c.value_counts().index[0])
    assert top.nunique() >= 4


@pytest.mark.slow
def test_segments_are_recoverable_from_simple_features(small_world) -> None:
    """A plain K-means on a few behaviour features finds the hidden segments (ARI > 0.8)."""
    from sklearn.cluster import KMeans
    from sklearn.metrics import adjusted_rand_score
    from sklearn.preprocessing import StandardScaler

    ev, users = small_world.events, small_world.users.set_index("user_id")
    counts = ev.groupby(["user_id", "type"]).size().unstack(fill_value=0)
    counts = counts.reindex(users.index).fillna(0)
    views = ev[ev["type"] == "view"].merge(small_world.items[["item_id", "categories", "price"]],
                                           on="item_id")
    feats = np.log1p(counts[["view", "click", "add_to_cart", "purchase", "like", "share"]])
    hours = pd.crosstab(views["user_id"], views["timestamp"].dt.hour // 6)
    weekend = (views["timestamp"].dt.day_of_week >= 5).groupby(views["user_id"]).mean()
    cats = pd.crosstab(views["user_id"], views["categories"].str[0])
    price = np.log(views.groupby("user_id")["price"].median())
    parts = [feats, hours.div(hours.sum(axis=1), axis=0), weekend.rename("weekend"),
             cats.div(cats.sum(axis=1), axis=0), price.rename("price")]
    x = pd.concat(parts, axis=1).reindex(users.index).fillna(0)
    x.columns = x.columns.astype(str)
    labels = KMeans(5, n_init=4, random_state=0).fit_predict(StandardScaler().fit_transform(x))
    ari = adjusted_rand_score(small_world.truth.segment_labels.loc[users.index], labels)
    assert ari > 0.8


def test_truth_is_saved_apart_from_events(tmp_path: Path, tiny_world) -> None:
    paths = tiny_world.save(tmp_path)
    assert set(paths) == {"users", "contacts", "items", "edges", "events"}
    for name, path in paths.items():
        cols = set(pq.read_schema(path).names)
        assert cols == set(ENTITIES[name].names), name  # no hidden column leaks
    truth = load_truth(tmp_path)
    assert (tmp_path / "truth" / "users.parquet").is_file()
    assert truth.users["segment_name"].isin(SEGMENT_NAMES).all()
    assert truth.preference_matrix().shape == (300, len(truth.meta["factors"]))
    assert truth.item_factor_matrix().shape == (200, len(truth.meta["factors"]))
    back = load_world(tmp_path)
    pd.testing.assert_frame_equal(back.events, tiny_world.events)
    pd.testing.assert_frame_equal(back.users, tiny_world.users)
    assert back.truth.segment_labels.equals(tiny_world.truth.segment_labels)


@pytest.mark.parametrize("fmt", ["csv", "jsonl"])
def test_text_formats(tmp_path: Path, fmt: str) -> None:
    manifest = write_world(tmp_path, 2_000, seed=2, fmt=fmt)
    events = Path(manifest["files"]["events"])
    assert events.suffix == f".{fmt}"
    frame = (pd.read_csv(events) if fmt == "csv" else pd.read_json(events, lines=True))
    assert len(frame) == manifest["counts"]["events"]
    assert list(frame.columns) == ENTITIES["events"].names
    items = Path(manifest["files"]["items"])
    if fmt == "csv":
        first = pd.read_csv(items)["categories"].iloc[0]
        assert isinstance(first, str) and first.split("|")[0]
    else:
        assert isinstance(pd.read_json(items, lines=True)["categories"].iloc[0], list)
    with pytest.raises(ConfigError):
        write_world(tmp_path / "x", "tiny", fmt="xml")
