"""Versioned storage of builds, and the `limelight profile` / `limelight segments` commands."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from typer.testing import CliRunner

from limelight.cli import app
from limelight.profile.features import ProfileBuilder
from limelight.profile.repository import ProfileRepository
from limelight.profile.segments import SegmentModel
from limelight.store.duckdb import DuckDBEventStore

from .fixtures import AS_OF, tiny_frames


def test_repository_versions_and_reads() -> None:
    store = DuckDBEventStore(":memory:")
    repo = ProfileRepository(store)
    assert repo.latest_version() is None
    builder = ProfileBuilder().fit(tiny_frames(), as_of=AS_OF)
    model = SegmentModel(k=2, groups=("rfm", "time"), random_state=0).fit(builder.profiles_)
    v1 = repo.save(builder.profiles_, segments=model, as_of_us=builder.as_of_us_,
                   rfm_boundaries=builder.rfm_boundaries_,
                   interest_columns=builder.interest_columns_)
    assert v1 == 1
    row = repo.profile("u1")
    assert row["monetary"] == pytest.approx(30.0) and row["top_categories"][0] == "Sci-Fi"
    assert row["segment_id"] == model.labels_["u1"]
    assert repo.segments()["size"].sum() == 3
    assert repo.memberships().loc["u2", "rfm_segment"] == "New"
    loaded = repo.segment_model()
    assert (loaded.assign(builder.profiles_)["segment_id"] == model.labels_).all()
    state = repo.build_state()
    assert state["as_of_us"] == builder.as_of_us_
    assert state["rfm_boundaries"]["monetary"] == builder.rfm_boundaries_["monetary"]

    # A later build with a new column and no segment model.
    later = builder.profiles_.assign(emb_0=[0.1, 0.2, 0.3])
    assert repo.save(later) == 2
    assert repo.profiles(2).loc["u3", "emb_0"] == pytest.approx(0.3)
    assert pd.isna(repo.profiles(1).loc["u3", "emb_0"])
    assert list(repo.builds()["version"]) == [1, 2]
    from limelight.errors import UnknownIdError

    with pytest.raises(UnknownIdError):
        repo.profile("nobody")
    store.close()


@pytest.fixture(scope="module")
def store_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    from limelight.data.ingest import ingest_frame
    from limelight.sim import generate_world

    path = tmp_path_factory.mktemp("profile-cli") / "shop.duckdb"
    world = generate_world("tiny", seed=1)
    store = DuckDBEventStore(str(path))
    for entity in ("users", "items", "edges", "events"):
        ingest_frame(store, getattr(world, entity), entity)
    store.close()
    return f"duckdb:///{path}"


def _run(*args: str) -> Any:
    return CliRunner().invoke(app, list(args))


def test_cli_build_show_segments(store_url: str, tmp_path: Path) -> None:
    result = _run("profile", "build", "--store", store_url, "--k", "3", "--json")
    assert result.exit_code == 0, result.output
    built = json.loads(result.stdout)
    assert built["version"] == 1 and built["k"] == 3 and len(built["segments"]) == 3
    assert sum(s["size"] for s in built["segments"]) == built["users"]

    # Rebuilding keeps the segment ids (matched to the previous build).
    again = json.loads(_run("profile", "build", "--store", store_url, "--k", "3",
                            "--json").stdout)
    assert again["version"] == 2
    assert sorted(s["segment_id"] for s in again["segments"]) == [0, 1, 2]

    store = DuckDBEventStore(store_url.removeprefix("duckdb:///"))
    repo = ProfileRepository(store)
    same = (repo.memberships(1)["segment_id"] == repo.memberships(2)["segment_id"]).mean()
    user = repo.memberships().index[0]
    store.close()
    assert same > 0.95

    shown = _run("profile", "show", user, "--store", store_url, "--json")
    assert shown.exit_code == 0, shown.output
    assert json.loads(shown.stdout)["user_id"] == user

    plot = tmp_path / "segments.png"
    seg = _run("segments", "--store", store_url, "--json", "--plot", str(plot))
    assert seg.exit_code == 0, seg.output
    assert len(json.loads(seg.stdout)["segments"]) == 3
    assert plot.stat().st_size > 10_000

    table = _run("segments", "--store", store_url)
    assert table.exit_code == 0 and "description" in table.stdout


def test_cli_user_mistakes_exit_2(store_url: str, tmp_path: Path) -> None:
    missing = _run("profile", "show", "no-such-user", "--store", store_url)
    assert missing.exit_code == 2
    assert "unknown user" in missing.output
    empty = f"duckdb:///{tmp_path / 'empty.duckdb'}"
    assert _run("segments", "--store", empty).exit_code == 2
    assert _run("profile", "build", "--store", empty).exit_code == 2
    bad = _run("profile", "build", "--store", store_url, "--method", "dbscan")
    assert bad.exit_code == 2 and "dbscan" in bad.output
    assert "Example" in _run("profile", "build", "--help").stdout


def test_main_job_step_builds_and_scores_segments(tmp_path: Path) -> None:
    from types import SimpleNamespace

    from limelight.data.ingest import ingest_frame
    from limelight.profile.build import profiles_step
    from limelight.sim import generate_world

    world = generate_world("tiny", seed=2)
    world.save(tmp_path / "world")
    store = DuckDBEventStore(":memory:")
    for entity in ("users", "items", "edges", "events"):
        ingest_frame(store, getattr(world, entity), entity)
    ctx = SimpleNamespace(store=store, world_dir=tmp_path / "world", seed=0, console=None)
    result = profiles_step(ctx)
    assert result["version"] == 1 and result["users"] == len(world.users)
    assert 0.0 < result["ari_vs_hidden_segments"] <= 1.0
    assert "segments" in result["summary"] and "ARI" in result["summary"]
    store.close()
