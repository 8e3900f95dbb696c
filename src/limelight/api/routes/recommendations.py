"""Recommendations: ``GET /users/{user_id}/recommendations`` and ``POST /recommend``."""

from __future__ import annotations

from typing import Annotated, Any

import numpy as np
from fastapi import APIRouter, Path, Query, Request

from limelight.api.deps import JSONResponse, ReadKey, State, error
from limelight.api.schemas import ErrorBody, ItemScores, RecommendationList, RecommendIn
from limelight.api.state import ServingState, Snapshot
from limelight.pipeline.context import RecRequest, Slate

router = APIRouter(tags=["recommendations"])

_ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"model": ErrorBody, "description": "missing or unknown API key"},
    403: {"model": ErrorBody, "description": "the key lacks the read scope"},
    422: {"model": ErrorBody, "description": "invalid parameters"},
    503: {"model": ErrorBody, "description": "no model version is loaded"},
}


def _split(values: list[str] | None) -> list[str]:
    """Repeated and comma-separated query values, flattened."""
    out: list[str] = []
    for value in values or []:
        out.extend(v.strip() for v in value.split(",") if v.strip())
    return out


def slate_payload(state: ServingState, snapshot: Snapshot, user_id: str, slate: Slate,
                  explain: bool) -> dict[str, Any]:
    """The JSON answer for a slate (and count its exposure)."""
    catalog = snapshot.catalog
    ids = catalog.items.ids_of(slate.items).tolist() if len(slate.items) else []
    titles = catalog.titles[slate.items].tolist() if len(slate.items) else []
    scores = slate.scores.tolist()
    items = []
    for k, item_id in enumerate(ids):
        entry: dict[str, Any] = {"item_id": item_id, "score": scores[k],
                                 "title": None if titles[k] == item_id else titles[k],
                                 "source": slate.item_sources[k]}
        if explain:
            entry["explanations"] = slate.explanations[k]
        items.append(entry)
    state.exposure.record(ids)
    return {"user_id": user_id, "model_version": snapshot.version, "model": snapshot.name,
            "source": slate.source, "fallback": slate.fallback, "items": items}


def _check_n(state: ServingState, n: int | None) -> int | JSONResponse:
    serve = state.settings.serve
    if n is None:
        return serve.n
    if n > serve.max_n:
        return error(422, "n_too_large", f"n must be at most {serve.max_n}, got {n}")
    return n


@router.get("/users/{user_id}/recommendations", response_model=RecommendationList,
            responses=_ERRORS, dependencies=[ReadKey],
            summary="Top-n recommendations for a user")
async def recommendations(
    request: Request,
    state: State,
    user_id: Annotated[str, Path(min_length=1, max_length=256, examples=["u42"])],
    n: Annotated[int | None, Query(ge=1, description="list length (default settings.serve.n)",
                                   examples=[10])] = None,
    exclude_seen: Annotated[bool, Query(description="leave out items the user already "
                                                    "interacted with")] = True,
    categories: Annotated[list[str] | None, Query(description="only these categories "
                                                             "(repeat or comma-separate)",
                                                  examples=["Sci-Fi,Thriller"])] = None,
    exclude_categories: Annotated[list[str] | None, Query(description="never these "
                                                                     "categories")] = None,
    min_price: Annotated[float | None, Query(ge=0, allow_inf_nan=False)] = None,
    max_price: Annotated[float | None, Query(ge=0, allow_inf_nan=False)] = None,
    diversity: Annotated[float | None, Query(ge=0, le=1, description="MMR lambda: 0 ranks by "
                                             "relevance only, 1 by diversity only")] = None,
    novelty: Annotated[float, Query(ge=0, le=10, description="weight of the boost for less "
                                                             "popular items")] = 0.0,
    max_per_category: Annotated[int | None, Query(ge=1, le=1000)] = None,
    explain: Annotated[bool, Query(description="add reasons to each item")] = False,
    region: Annotated[str | None, Query(max_length=128, description="cold start: the "
                                        "user's region when not stored")] = None,
    country: Annotated[str | None, Query(max_length=128)] = None,
    age: Annotated[int | None, Query(ge=0, le=130)] = None,
    gender: Annotated[str | None, Query(max_length=32)] = None,
    segment: Annotated[str | None, Query(max_length=64, description="cold start: the "
                                         "user's segment id when not stored")] = None,
) -> Any:
    """Ranked items with scores, the model version that answered, the scoring path
    (``source``) and, for users the model cannot personalise, the ``fallback`` used.

    Example: ``GET /users/u42/recommendations?n=10&diversity=0.3&explain=true``
    """
    size = _check_n(state, n)
    if isinstance(size, JSONResponse):
        return size
    if min_price is not None and max_price is not None and min_price > max_price:
        return error(422, "invalid_price_range", "min_price must not exceed max_price")
    snapshot = state.require_snapshot()
    user = state.user_context(snapshot, user_id, {"region": region, "country": country,
                                                  "age": age, "gender": gender,
                                                  "segment": segment})
    req = RecRequest(n=size, exclude_seen=exclude_seen, categories=_split(categories),
                     exclude_categories=_split(exclude_categories), min_price=min_price,
                     max_price=max_price,
                     diversity=state.settings.serve.diversity if diversity is None else diversity,
                     novelty=novelty, max_per_category=max_per_category, explain=explain)
    slate = snapshot.pipeline.recommend(user, req)
    request.app.state.metrics.fallbacks.labels(slate.fallback or slate.source).inc()
    return JSONResponse(slate_payload(state, snapshot, user_id, slate, explain))


@router.post("/recommend", response_model=ItemScores | RecommendationList, responses={
    **_ERRORS, 404: {"model": ErrorBody, "description": "unknown item ids"}},
    dependencies=[ReadKey], summary="Score given items for a user, or the top n")
async def recommend(request: Request, state: State, body: RecommendIn) -> Any:
    """``{"user": ID, "items": [IDs]}`` returns a score per given item (null when the item
    cannot be scored for this user); without ``items`` the top ``n`` like
    ``GET /users/{user_id}/recommendations``."""
    snapshot = state.require_snapshot()
    user = state.user_context(snapshot, body.user)
    if body.items is None:
        size = _check_n(state, body.n)
        if isinstance(size, JSONResponse):
            return size
        slate = snapshot.pipeline.recommend(user, RecRequest(n=size,
                                                             exclude_seen=body.exclude_seen))
        request.app.state.metrics.fallbacks.labels(slate.fallback or slate.source).inc()
        return JSONResponse(slate_payload(state, snapshot, body.user, slate, False))
    idx = snapshot.catalog.items.index(body.items, missing="ignore")
    if (idx < 0).any():
        unknown = [i for i, k in zip(body.items, idx, strict=True) if k < 0]
        return error(404, "unknown_items", {"unknown_item_ids": unknown[:50]})
    values, source = snapshot.pipeline.score_items(user, idx)
    scores = [{"item_id": i, "score": None if np.isnan(v) else float(v)}
              for i, v in zip(body.items, values.tolist(), strict=True)]
    return JSONResponse({"user_id": body.user, "model_version": snapshot.version,
                         "source": source, "scores": scores})
