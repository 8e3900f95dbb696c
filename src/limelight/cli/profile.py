"""``limelight profile build | show`` and ``limelight segments``: user profiles and segments."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from limelight.cli.common import (
    console,
    fail,
    friendly_errors,
    open_configured_store,
    print_json,
    print_table,
)

profile_app = typer.Typer(help="Build and inspect user profiles.", no_args_is_help=True)



@profile_app.command("build")
@friendly_errors
def build(
    method: str = typer.Option("kmeans", help="Segmentation: kmeans or gmm."),
    k: int | None = typer.Option(None, help="Fixed number of segments (default: automatic)."),
    k_min: int = typer.Option(2, help="Smallest k tried when choosing automatically."),
    k_max: int = typer.Option(8, help="Largest k tried when choosing automatically."),
    groups: str | None = typer.Option(
        None, help="Feature groups to segment on, comma-separated "
                   "(rfm, activity, time, interests, geo, demographics, social, embeddings)."),
    half_life: float = typer.Option(30.0, help="Half-life of interest decay in days."),
    as_of: str | None = typer.Option(None, help="Reference time (default: latest event)."),
    store: str | None = typer.Option(None, help="Event store URL (default: settings)."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Compute every user's profile, fit segments and save both as a new version.

    Example: limelight profile build --method gmm --k-min 3 --k-max 8 --half-life 14
    """
    from limelight.profile.build import build_and_save

    s = open_configured_store(store)
    try:
        result = build_and_save(s, method=method, k=k, k_min=k_min, k_max=k_max,
                                groups=groups, half_life_days=half_life, as_of=as_of)
    finally:
        s.close()
    if as_json:
        print_json(result)
        return
    console.print(f"profile build [bold]v{result['version']}[/]: {result['users']:,} users, "
                  f"{result['k']} {result['method']} segments in {result['seconds']} s")
    print_table("Segments", result["segments"], ["segment_id", "size", "share", "description"])


@profile_app.command("show")
@friendly_errors
def show(
    user: str = typer.Argument(..., help="User id."),
    version: int | None = typer.Option(None, help="Profile build (default: newest)."),
    store: str | None = typer.Option(None, help="Event store URL (default: settings)."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Show one user's stored profile.

    Example: limelight profile show u00042 --json
    """
    from limelight.profile.repository import ProfileRepository

    s = open_configured_store(store)
    try:
        row = ProfileRepository(s).profile(user, version)
    finally:
        s.close()
    row = {k: _plain(v) for k, v in row.items()}
    if as_json:
        print_json(row)
        return
    skip = ("hour_", "dow_")
    rows = [{"feature": k, "value": v} for k, v in row.items()
            if not k.startswith(skip) and v not in (None, [], 0)]
    print_table(f"Profile of {user}", rows, ["feature", "value"])


def segments(
    version: int | None = typer.Option(None, help="Profile build (default: newest)."),
    plot: Path | None = typer.Option(None, help="Save a figure (sizes + 2-D map) here."),
    store: str | None = typer.Option(None, help="Event store URL (default: settings)."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """The segments of a profile build: size, share and description.

    Example: limelight segments --plot segments.png
    """
    from limelight.errors import LimelightError
    from limelight.profile.repository import ProfileRepository

    s = open_configured_store(store)
    try:
        repo = ProfileRepository(s)
        table = repo.segments(version)
        if plot is not None:
            from limelight.profile.plot import plot_segments

            plot_segments(repo.profiles(version), repo.memberships(version),
                          repo.segment_model(version), table, plot)
    except LimelightError as exc:
        fail(str(exc))
    finally:
        s.close()
    rows = table.to_dict("records")
    if as_json:
        print_json({"version": version, "segments": rows,
                    "plot": str(plot) if plot is not None else None})
        return
    print_table("Segments", rows, ["segment_id", "size", "share", "description"])
    if plot is not None:
        console.print(f"plot saved to {plot}")


def _plain(v: Any) -> Any:
    import math

    import numpy as np
    import pandas as pd

    if v is None or v is pd.NA:
        return None
    if isinstance(v, np.generic):
        v = v.item()
    if isinstance(v, float) and math.isnan(v):
        return None
    if isinstance(v, pd.Timestamp):
        return v.isoformat()
    if isinstance(v, np.ndarray):
        return v.tolist()
    return v


def register(app: typer.Typer) -> None:
    app.add_typer(profile_app, name="profile")
    app.command("segments")(segments)
