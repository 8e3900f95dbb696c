"""``POST /feedback``: not interested (item or category), like, hide."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool

from limelight.api.deps import JSONResponse, State, WriteKey, error
from limelight.api.schemas import ErrorBody, FeedbackIn, FeedbackResult
from limelight.api.state import CATEGORY_PREFIX

router = APIRouter(tags=["feedback"])


@router.post("/feedback", response_model=FeedbackResult, dependencies=[WriteKey],
             summary="Explicit feedback that changes the very next recommendations",
             responses={401: {"model": ErrorBody}, 403: {"model": ErrorBody},
                        404: {"model": ErrorBody, "description": "unknown item or category"},
                        422: {"model": ErrorBody, "description": "invalid feedback"}})
async def post_feedback(request: Request, state: State, body: FeedbackIn) -> Any:
    """Stored as an event (``not_interested``, ``like`` or ``hide``; a category-level
    ``not_interested`` keeps ``category:<name>`` in the event's ``review_text``). A hidden or
    not-interesting item, or category, never appears again for this user; a like counts as
    an interaction with the item."""
    if (body.item is None) == (body.category is None):
        return error(422, "invalid_feedback", "give exactly one of item or category")
    if body.category is not None and body.action != "not_interested":
        return error(422, "invalid_feedback", "only not_interested applies to a category")
    snapshot = state.snapshot
    if snapshot is not None:
        if body.item is not None and body.item not in snapshot.catalog.items:
            return error(404, "unknown_item", f"unknown item id {body.item!r}")
        if body.category is not None and body.category not in snapshot.catalog.categories:
            return error(404, "unknown_category", f"unknown category {body.category!r}")
    record: dict[str, Any] = {
        "user_id": body.user, "type": body.action,
        "timestamp": body.timestamp or datetime.now(UTC).isoformat()}
    if body.item is not None:
        record["item_id"] = body.item
    else:
        record["review_text"] = CATEGORY_PREFIX + str(body.category)
    report = await run_in_threadpool(state.ingest, [record], "api:feedback")
    if not (report.accepted or report.duplicates):
        reasons = ", ".join(report.reasons) or "rejected"
        return error(422, "invalid_feedback", f"the feedback event was rejected: {reasons}")
    request.app.state.metrics.events.labels("feedback").inc()
    ids = report.accepted_event_ids
    return JSONResponse({"user_id": body.user, "action": body.action, "item_id": body.item,
                         "category": body.category, "event_id": ids[0] if ids else None,
                         "stored": bool(report.accepted)})
