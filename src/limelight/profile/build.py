"""One profile build end to end: profiles, segments (ids matched to the previous build), saved
as a new version. Used by ``limelight profile build`` and the main job."""

from __future__ import annotations

from typing import Any


def build_and_save(store: Any, *, method: str = "kmeans", k: int | None = None,
                   k_min: int = 2, k_max: int = 8, groups: str | None = None,
                   half_life_days: float = 30.0, as_of: str | None = None,
                   random_state: int = 0) -> dict[str, Any]:
    """Build profiles and segments from ``store`` and save them as a new version.

    Segment ids stay stable against the previous build. Returns a summary dict (version,
    users, k, segment table rows, seconds).
    """
    import time

    from limelight.profile.config import ProfileConfig
    from limelight.profile.features import ProfileBuilder
    from limelight.profile.repository import ProfileRepository
    from limelight.profile.segments import DEFAULT_GROUPS, SegmentModel

    started = time.perf_counter()
    repo = ProfileRepository(store)
    builder = ProfileBuilder(ProfileConfig(half_life_days=half_life_days,
                                           random_state=random_state)).fit(store, as_of=as_of)
    profiles = builder.profiles_
    if profiles.empty:
        from limelight.errors import SchemaError

        raise SchemaError("the store holds no users or events: run `limelight ingest` first")
    previous = None
    if repo.latest_version() is not None:
        previous = repo.memberships()["segment_id"].dropna()
        previous = previous if len(previous) else None
    chosen = tuple(g.strip() for g in groups.split(",")) if groups else DEFAULT_GROUPS
    model = SegmentModel(method=method, k=k, k_range=(k_min, k_max), groups=chosen,
                         random_state=random_state)
    model.fit(profiles, previous_labels=previous)
    version = repo.save(profiles, segments=model, as_of_us=builder.as_of_us_,
                        config=builder.config_.to_dict(),
                        rfm_boundaries=builder.rfm_boundaries_,
                        interest_columns=builder.interest_columns_)
    table = model.table()
    rfm = profiles["rfm_segment"].value_counts()
    return {"version": version, "users": len(profiles), "method": method, "k": model.k_,
            "selection_scores": {int(a): b for a, b in model.selection_scores_.items()},
            "as_of": profiles.attrs.get("as_of"),
            "segments": table.to_dict("records"),
            "rfm_segments": {str(a): int(b) for a, b in rfm.items()},
            "seconds": round(time.perf_counter() - started, 2)}


def profiles_step(ctx: Any) -> dict[str, Any]:
    """Main-job step: build and save profiles and segments, print the segment table and, when
    the sample world's hidden truth is at hand, how well segments recover it (adjusted Rand
    index; the truth is read only to score)."""
    result = build_and_save(ctx.store, random_state=ctx.seed)
    truth_dir = ctx.world_dir / "truth"
    if truth_dir.is_dir():
        from sklearn.metrics import adjusted_rand_score

        from limelight.profile.repository import ProfileRepository
        from limelight.sim.world import load_truth

        hidden = load_truth(ctx.world_dir).users.set_index("user_id")["segment"]
        hidden.index = hidden.index.astype(str)
        found = ProfileRepository(ctx.store).memberships()["segment_id"].dropna()
        common = found.index.intersection(hidden.index)
        result["ari_vs_hidden_segments"] = float(adjusted_rand_score(
            hidden.reindex(common).to_numpy(), found.reindex(common).to_numpy()))
    if ctx.console is not None:
        from rich.table import Table

        table = Table(title=f"Segments (profile build v{result['version']})")
        for col in ("segment", "users", "share", "description"):
            table.add_column(col)
        for seg in result["segments"]:
            table.add_row(str(seg["segment_id"]), f"{seg['size']:,}", f"{seg['share']:.0%}",
                          seg["description"])
        ctx.console.print(table)
    ari = result.get("ari_vs_hidden_segments")
    result["summary"] = (f"{result['users']:,} profiles, {result['k']} segments"
                         + (f", ARI {ari:.2f} vs hidden segments" if ari is not None else "")
                         + f" (v{result['version']}, {result['seconds']} s)")
    return result
