"""Recommendations: ``GET /users/{user_id}/recommendations`` and ``POST /recommend``."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Annotated, Any

import numpy as np
from fastapi import APIRouter, Path, Request
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from limelight.api.deps import SECURITY, JSONResponse, ReadKey, State, authorize, error
from limelight.api.experiments import Assignment
from limelight.api.hotpath import hot
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


def assignment_for(state: ServingState, user_id: str) -> tuple[Assignment | None, Snapshot]:
    """The user's serving-experiment variants and the snapshot that answers them."""
    snapshot = state.require_snapshot()
    experiments = state.experiments
    assignment = experiments.resolve(user_id) if experiments is not None else None
    if assignment is not None and assignment.version is not None:
        snapshot = state.variant_snapshot(assignment.version)
    return assignment, snapshot


def _override(values: dict[str, Any], assignment: Assignment | None,
              explicit: Iterable[str]) -> dict[str, Any]:
    """``values`` with the variant's parameters in place of those the caller did not send."""
    if assignment is None or not assignment.overrides:
        return values
    given = set(explicit)
    return {**values, **{k: v for k, v in assignment.overrides.items() if k not in given}}


def slate_payload(state: ServingState, snapshot: Snapshot, user_id: str, slate: Slate,
                  explain: bool, assignment: Assignment | None = None) -> dict[str, Any]:
    """The JSON answer for a slate (and count its exposure)."""
    catalog = snapshot.catalog
    ids = catalog.ids_of(slate.items).tolist() if len(slate.items) else []
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
            "source": slate.source, "fallback": slate.fallback, "items": items,
            "experiments": assignment.variants if assignment is not None else {}}


def _check_n(state: ServingState, n: int | None) -> int | JSONResponse:
    serve = state.settings.serve
    if n is None:
        return serve.n
    if n > serve.max_n:
        return error(422, "n_too_large", f"n must be at most {serve.max_n}, got {n}")
    return n


class RecsQuery(BaseModel):
    """Query parameters of ``GET /users/{user_id}/recommendations``."""

    model_config = ConfigDict(extra="ignore")

    n: int | None = Field(None, ge=1, description="list length (default settings.serve.n)",
                          examples=[10])
    exclude_seen: bool = Field(True, description="leave out items the user already "
                                                 "interacted with")
    categories: list[str] = Field(default_factory=list, description="only these categories "
                                  "(repeat or comma-separate)", examples=[["Sci-Fi,Thriller"]])
    exclude_categories: list[str] = Field(default_factory=list,
                                          description="never these categories")
    min_price: float | None = Field(None, ge=0, allow_inf_nan=False)
    max_price: float | None = Field(None, ge=0, allow_inf_nan=False)
    diversity: float | None = Field(None, ge=0, le=1, description="MMR lambda: 0 ranks by "
                                    "relevance only, 1 by diversity only", examples=[0.3])
    novelty: float = Field(0.0, ge=0, le=10, allow_inf_nan=False,
                           description="weight of the boost for less popular items")
    max_per_category: int | None = Field(None, ge=1, le=1000,
                                         description="cap per primary category")
    explain: bool = Field(False, description="add reasons to each item")
    region: str | None = Field(None, max_length=128, description="cold start: the user's "
                               "region when not stored")
    country: str | None = Field(None, max_length=128)
    age: int | None = Field(None, ge=0, le=130)
    gender: str | None = Field(None, max_length=32)
    segment: str | None = Field(None, max_length=64, description="cold start: the user's "
                                "segment id when not stored")


_LIST_PARAMS = ("categories", "exclude_categories")


def _query_parameters() -> list[dict[str, Any]]:
    """OpenAPI parameters of :class:`RecsQuery` (the endpoint parses them itself)."""
    schema = RecsQuery.model_json_schema()
    out = []
    for name, prop in schema["properties"].items():
        param: dict[str, Any] = {"name": name, "in": "query", "required": False,
                                 "schema": {k: v for k, v in prop.items()
                                            if k not in ("description", "examples")}}
        if "description" in prop:
            param["description"] = prop["description"]
        if "examples" in prop:
            param["example"] = prop["examples"][0]
        out.append(param)
    return out


def _parse_query(request: Request) -> RecsQuery:
    params = request.query_params
    data: dict[str, Any] = {k: v for k, v in params.items() if k not in _LIST_PARAMS}
    for name in _LIST_PARAMS:
        if name in params:
            data[name] = _split(params.getlist(name))
    try:
        return RecsQuery.model_validate(data)
    except ValidationError as exc:
        errors = [{**e, "loc": ("query", *e["loc"])} for e in exc.errors(include_url=False)]
        raise RequestValidationError(errors) from None


@router.get("/users/{user_id}/recommendations", response_model=RecommendationList,
            responses=_ERRORS, summary="Top-n recommendations for a user",
            openapi_extra={"parameters": _query_parameters(), "security": SECURITY})
@hot(user_id=r"[^/]{1,256}")  # the limits of the Path declaration below
async def recommendations(
    request: Request,
    user_id: Annotated[str, Path(min_length=1, max_length=256, examples=["u42"])],
) -> Any:
    """Ranked items with scores, the model version that answered, the scoring path
    (``source``) and, for users the model cannot personalise, the ``fallback`` used.

    Example: ``GET /users/u42/recommendations?n=10&diversity=0.3&explain=true``
    """
    # query parameters are parsed here rather than by FastAPI's dependency solver, and the
    # route is on the short path (``hot``): on a small catalogue FastAPI's routing and
    # solver cost more than scoring the whole catalogue
    authorize(request, "read")
    state: ServingState = request.app.state.serving
    q = _parse_query(request)
    size = _check_n(state, q.n)
    if isinstance(size, JSONResponse):
        return size
    if q.min_price is not None and q.max_price is not None and q.min_price > q.max_price:
        return error(422, "invalid_price_range", "min_price must not exceed max_price")
    assignment, snapshot = assignment_for(state, user_id)
    if assignment is not None and assignment.overrides:
        q = q.model_copy(update=_override({}, assignment, request.query_params.keys()))
        size = _check_n(state, q.n)
        if isinstance(size, JSONResponse):
            return size
    user = state.user_context(snapshot, user_id, {"region": q.region, "country": q.country,
                                                  "age": q.age, "gender": q.gender,
                                                  "segment": q.segment})
    req = RecRequest(n=size, exclude_seen=q.exclude_seen, categories=q.categories,
                     exclude_categories=q.exclude_categories, min_price=q.min_price,
                     max_price=q.max_price,
                     diversity=state.settings.serve.diversity if q.diversity is None
                     else q.diversity,
                     novelty=q.novelty, max_per_category=q.max_per_category, explain=q.explain)
    slate = snapshot.pipeline.recommend(user, req)
    request.app.state.metrics.count_list(slate.fallback or slate.source)
    return JSONResponse(slate_payload(state, snapshot, user_id, slate, q.explain, assignment))


@router.post("/recommend", response_model=ItemScores | RecommendationList, responses={
    **_ERRORS, 404: {"model": ErrorBody, "description": "unknown item ids"}},
    dependencies=[ReadKey], summary="Score given items for a user, or the top n")
async def recommend(request: Request, state: State, body: RecommendIn) -> Any:
    """``{"user": ID, "items": [IDs]}`` returns a score per given item (null when the item
    cannot be scored for this user); without ``items`` the top ``n`` like
    ``GET /users/{user_id}/recommendations``."""
    assignment, snapshot = assignment_for(state, body.user)
    user = state.user_context(snapshot, body.user)
    if body.items is None:
        params = _override({"n": body.n, "exclude_seen": body.exclude_seen}, assignment,
                           body.model_fields_set)
        size = _check_n(state, params.pop("n"))
        if isinstance(size, JSONResponse):
            return size
        slate = snapshot.pipeline.recommend(user, RecRequest(n=size, **params))
        request.app.state.metrics.count_list(slate.fallback or slate.source)
        return JSONResponse(slate_payload(state, snapshot, body.user, slate, False,
                                          assignment))
    idx = snapshot.catalog.items.index(body.items, missing="ignore")
    if (idx < 0).any():
        unknown = [i for i, k in zip(body.items, idx, strict=True) if k < 0]
        return error(404, "unknown_items", {"unknown_item_ids": unknown[:50]})
    values, source = snapshot.pipeline.score_items(user, idx)
    scores = [{"item_id": i, "score": None if np.isnan(v) else float(v)}
              for i, v in zip(body.items, values.tolist(), strict=True)]
    return JSONResponse({"user_id": body.user, "model_version": snapshot.version,
                         "source": source, "scores": scores,
                         "experiments": assignment.variants if assignment is not None else {}})
