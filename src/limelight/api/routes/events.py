"""``POST /events``: one event or a batch, written through to the store and applied live."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import orjson
from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool

from limelight.api.deps import JSONResponse, State, WriteKey, error
from limelight.api.schemas import ErrorBody, EventIn, EventsResult

router = APIRouter(tags=["events"])

#: Largest request body accepted, bytes (a full batch of modest events fits easily).
MAX_BODY_BYTES = 32 * 1024 * 1024


def parse_json_body(body: bytes) -> tuple[Any, JSONResponse | None]:
    """Parsed JSON, or a 400/413 answer saying what is wrong with the body."""
    if len(body) > MAX_BODY_BYTES:
        return None, error(413, "body_too_large", f"the body exceeds {MAX_BODY_BYTES} bytes")
    if not body.strip():
        return None, error(422, "empty_body", "send a JSON object or a list of objects")
    try:
        return orjson.loads(body), None
    except orjson.JSONDecodeError as exc:
        return None, error(400, "malformed_json", str(exc))


def result_payload(report: Any, received: int) -> dict[str, Any]:
    return {"received": received, "accepted": report.accepted, "duplicates": report.duplicates,
            "rejected": report.rejected, "reasons": dict(report.reasons),
            "rejections": [{"index": int(line) - 1, "reason": reason}
                           for line, reason in report.rejections],
            "accepted_event_ids": list(report.accepted_event_ids)}


@router.post("/events", response_model=EventsResult, dependencies=[WriteKey],
             summary="Send one event or a batch",
             openapi_extra={"requestBody": {"required": True, "content": {"application/json": {
                 "schema": {"oneOf": [{"$ref": "#/components/schemas/EventIn"},
                                      {"type": "array",
                                       "items": {"$ref": "#/components/schemas/EventIn"}}]},
                 "examples": {
                     "one": {"value": EventIn.model_config["json_schema_extra"]["examples"][0]},
                     "batch": {"value": [
                         {"user_id": "u42", "item_id": "i7", "type": "view",
                          "timestamp": "2024-05-01T10:00:00Z"},
                         {"user_id": "u42", "item_id": "i7", "type": "purchase",
                          "value": 19.9, "timestamp": "2024-05-01T10:02:00Z"}]}}}}}},
             responses={400: {"model": ErrorBody, "description": "malformed JSON"},
                        401: {"model": ErrorBody}, 403: {"model": ErrorBody},
                        413: {"model": ErrorBody, "description": "batch or body too large"},
                        422: {"model": EventsResult,
                              "description": "nothing valid was sent (every row rejected)"}})
async def post_events(request: Request, state: State) -> Any:
    """Events are idempotent by ``event_id`` (derived from the content when absent);
    rejected rows are quarantined exactly as in bulk ingest and explained per row (``index``
    is the row's position in the request). An event without a ``timestamp`` gets the server's
    clock. Each accepted event updates the user's profile and their next recommendations.
    The answer is 422 only when no row was valid."""
    payload, problem = parse_json_body(await request.body())
    if problem is not None:
        return problem
    records = [payload] if isinstance(payload, dict) else payload
    if not isinstance(records, list):
        return error(422, "invalid_body", "send a JSON object or a list of objects")
    if not records:
        return error(422, "empty_batch", "the batch holds no events")
    limit = state.settings.serve.max_batch
    if len(records) > limit:
        return error(413, "batch_too_large", f"at most {limit} events per request, "
                                             f"got {len(records)}")
    now = datetime.now(UTC).isoformat()
    for record in records:
        if isinstance(record, dict) and "timestamp" not in record:
            record["timestamp"] = now
    # a single valid event reaches the user's history at once; the store write runs in a
    # worker thread (recommendations keep being answered meanwhile) and then confirms or
    # undoes it
    provisional = state.apply_provisionally(records[0]) if len(records) == 1 else None
    report = await run_in_threadpool(state.ingest, records, "api", provisional)
    metrics = request.app.state.metrics
    for outcome in ("accepted", "duplicates", "rejected"):
        if getattr(report, outcome):
            metrics.events.labels(outcome).inc(getattr(report, outcome))
    status = 200 if report.accepted + report.duplicates else 422
    return JSONResponse(result_payload(report, len(records)), status_code=status)
