"""``GET /segments``: user segments with their size and a readable description."""

from __future__ import annotations

from collections import Counter
from typing import Any

from fastapi import APIRouter

from limelight.api.deps import JSONResponse, ReadKey, State
from limelight.api.schemas import ErrorBody, Segments

router = APIRouter(tags=["users"])


@router.get("/segments", response_model=Segments, dependencies=[ReadKey],
            summary="User segments", responses={401: {"model": ErrorBody},
                                                403: {"model": ErrorBody}})
async def segments(state: State) -> Any:
    """Segments from the latest profile build (size and description). Without a segment
    build, the groups used for cold-start popularity (region, demographics) are listed
    instead and ``source`` says so."""
    table = state.segment_table()
    if table:
        return JSONResponse({"source": "profile", "segments": table})
    counts: Counter[str] = Counter()
    for attrs in state.attributes.values():
        region = attrs.get("region") or attrs.get("country")
        if region is not None:
            counts[f"region:{region}"] += 1
    rows = [{"segment": key, "size": size, "description": f"users in {key.split(':', 1)[1]}"}
            for key, size in counts.most_common()]
    return JSONResponse({"source": "attributes", "segments": rows})
