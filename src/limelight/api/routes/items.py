"""Items: ``GET /items/{item_id}/similar`` and the exposure report."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query

from limelight.api.deps import AdminKey, JSONResponse, ReadKey, State, error
from limelight.api.schemas import ErrorBody, SimilarItems

router = APIRouter(tags=["items"])


@router.get("/items/{item_id}/similar", response_model=SimilarItems, dependencies=[ReadKey],
            summary="Items most similar to an item",
            responses={401: {"model": ErrorBody}, 403: {"model": ErrorBody},
                       404: {"model": ErrorBody, "description": "unknown item"},
                       422: {"model": ErrorBody}})
async def similar(state: State,
                  item_id: Annotated[str, Path(min_length=1, max_length=256, examples=["i7"])],
                  n: Annotated[int, Query(ge=1, examples=[10])] = 10) -> Any:
    """Collaborative similarity for items with interactions; content similarity (categories,
    tags) for items nobody has interacted with yet (``source`` says which).

    Example: ``GET /items/i7/similar?n=5``
    """
    if n > state.settings.serve.max_n:
        return error(422, "n_too_large", f"n must be at most {state.settings.serve.max_n}")
    snapshot = state.require_snapshot()
    idx = snapshot.catalog.items.get(item_id)
    if idx < 0:
        return error(404, "unknown_item", f"unknown item id {item_id!r}")
    items, sims, source = snapshot.pipeline.similar(idx, n)
    catalog = snapshot.catalog
    ids = catalog.ids_of(items).tolist()
    out = [{"item_id": ids[k], "similarity": float(s), "title": str(catalog.titles[i])}
           for k, (i, s) in enumerate(zip(items.tolist(), sims.tolist(), strict=True))]
    return JSONResponse({"item_id": item_id, "model_version": snapshot.version,
                         "source": source, "items": out})


@router.get("/items/exposure", dependencies=[AdminKey],
            summary="How often items were shown (over-exposure of the head)")
async def exposure(state: State, top: Annotated[int, Query(ge=1, le=1000)] = 10) -> Any:
    """Lists served, impressions, the share of exposure taken by the top 10% of the catalogue,
    the Gini coefficient of exposure and the most shown items."""
    snapshot = state.snapshot
    n_items = snapshot.catalog.n_items if snapshot is not None else None
    return JSONResponse(state.exposure.report(n_items, top))
