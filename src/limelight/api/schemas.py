"""Request and response schemas of the HTTP API (kept apart from domain objects).

Responses are built as plain dicts and serialised with orjson on the hot paths; these models
document them in the OpenAPI schema (``/docs``) with examples.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field


class EventIn(BaseModel):
    """One event in the data model's fields (see the README's data model)."""

    model_config = ConfigDict(extra="allow", json_schema_extra={"examples": [{
        "event_id": "e-1001", "user_id": "u42", "item_id": "i7", "type": "purchase",
        "value": 19.9, "quantity": 1, "timestamp": "2024-05-01T10:00:00Z",
        "session_id": "s-9", "channel": "web"}]})

    user_id: str
    type: str = Field(description="impression, view, click, add_to_cart, purchase, rating, ...")
    timestamp: str | int | float | None = Field(
        None, description="ISO 8601 or epoch seconds; the server's clock when absent")
    item_id: str | None = None
    event_id: str | None = Field(None, description="idempotency key; derived when absent")
    value: float | None = None
    quantity: float | None = None
    session_id: str | None = None
    channel: str | None = None
    campaign_id: str | None = None
    device: str | None = None
    geo: str | None = None
    review_text: str | None = None


class RejectedRow(BaseModel):
    index: int = Field(description="0-based position of the row in the request")
    reason: str


class EventsResult(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{
        "received": 3, "accepted": 1, "duplicates": 1, "rejected": 1,
        "reasons": {"unknown_type": 1},
        "rejections": [{"index": 2, "reason": "unknown_type"}],
        "accepted_event_ids": ["e-1001"]}]})

    received: int
    accepted: int
    duplicates: int
    rejected: int
    reasons: dict[str, int]
    rejections: list[RejectedRow]
    accepted_event_ids: list[str]


class Explanation(BaseModel):
    type: Literal["similar_to_history", "popular_in_group", "new_in_category", "popular"]
    text: str
    item_id: str | None = None
    group: str | None = None
    category: str | None = None


class RecommendedItem(BaseModel):
    item_id: str
    score: float | None
    title: str | None = None
    source: Literal["model", "content", "popular"] = "model"
    explanations: list[Explanation] | None = None


class RecommendationList(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{
        "user_id": "u42", "model_version": "v0003", "model": "als", "source": "fold_in",
        "fallback": None, "items": [
            {"item_id": "i7", "score": 0.93, "title": "Trail shoes", "source": "model",
             "explanations": [{"type": "similar_to_history", "item_id": "i3",
                               "text": "because you bought Running socks"}]}]}]})

    user_id: str
    model_version: str
    model: str
    source: str = Field(description="model, fold_in, model+recent_knn, recent_knn, popular or "
                                    "content: the path that produced the scores")
    fallback: str | None = Field(description="the cold-start fallback that answered "
                                             "(popular_segment, popular_region, "
                                             "popular_demographic, popular_age, popular_gender,"
                                             " popular_global, content) or null")
    items: list[RecommendedItem]
    experiments: dict[str, str] = Field(default_factory=dict, description="serving "
                                        "experiments the user is in: experiment -> variant "
                                        "that answered")


class RecommendIn(BaseModel):
    """Score given items for a user, or ask for the top ``n`` when ``items`` is absent."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"user": "u42", "items": ["i7", "i9", "i11"]}, {"user": "u42", "n": 5}]})

    user: str = Field(min_length=1, max_length=256)
    items: list[str] | None = Field(None, max_length=10_000)
    n: int | None = Field(None, ge=1)
    exclude_seen: bool = True


class ItemScore(BaseModel):
    item_id: str
    score: float | None


class ItemScores(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{
        "user_id": "u42", "model_version": "v0003", "source": "model",
        "scores": [{"item_id": "i7", "score": 0.93}, {"item_id": "i9", "score": 0.12}]}]})

    user_id: str
    model_version: str
    source: str
    scores: list[ItemScore]
    experiments: dict[str, str] = Field(default_factory=dict)


class SimilarItem(BaseModel):
    item_id: str
    similarity: float
    title: str | None = None


class SimilarItems(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{
        "item_id": "i7", "model_version": "v0003", "source": "model",
        "items": [{"item_id": "i9", "similarity": 0.82, "title": "Trail socks"}]}]})

    item_id: str
    model_version: str
    source: Literal["model", "content"]
    items: list[SimilarItem]


class FeedbackIn(BaseModel):
    """Explicit feedback; takes effect on the user's very next request."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"user": "u42", "action": "not_interested", "item": "i7"},
        {"user": "u42", "action": "not_interested", "category": "Horror"},
        {"user": "u42", "action": "like", "item": "i9"},
        {"user": "u42", "action": "hide", "item": "i11"}]})

    user: str = Field(min_length=1, max_length=256)
    action: Literal["not_interested", "like", "hide"]
    item: str | None = Field(None, min_length=1)
    category: str | None = Field(None, min_length=1)
    timestamp: str | None = None


class FeedbackResult(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{
        "user_id": "u42", "action": "not_interested", "item_id": "i7", "category": None,
        "event_id": "7d3f...", "stored": True}]})

    user_id: str
    action: str
    item_id: str | None
    category: str | None
    event_id: str | None
    stored: bool


class Profile(BaseModel):
    model_config = ConfigDict(extra="allow", json_schema_extra={"examples": [{
        "user_id": "u42", "known": True, "attributes": {"region": "north", "age": 31},
        "segment": "2", "history": {"events": 57, "live_events": 2, "recent_items": ["i7"]},
        "interests": [{"category": "Outdoor", "share": 0.41}], "features": {"frequency": 4}}]})

    user_id: str
    known: bool
    attributes: dict[str, Any]
    segment: str | None
    history: dict[str, Any]
    interests: list[dict[str, Any]]
    features: dict[str, Any] | None = None


class Segment(BaseModel):
    segment: str
    size: int
    description: str | None = None


class Segments(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{
        "source": "profile", "segments": [
            {"segment": "0", "size": 312, "description": "high spend, evenings, Outdoor"}]}]})

    source: str
    segments: list[Segment]


class Health(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{
        "status": "ok", "model_version": "v0003", "model": "als", "items": 1682,
        "users": 943, "uptime_s": 12.5, "profiles": "ready",
        "candidates": {"status": "ready", "users": 943}, "error": None}]})

    status: Literal["ok", "degraded"]
    model_version: str | None
    model: str | None
    items: int
    users: int
    uptime_s: float
    profiles: Literal["off", "building", "ready", "failed"] = Field(
        description="real-time profiles: built in the background after start-up")
    candidates: dict[str, Any] = Field(
        default_factory=dict,
        description="per-user candidate cache of the version served: ``status`` (off, "
                    "warming, ready) and ``users`` held; warmed in the background after a "
                    "version loads")
    error: str | None


class ErrorBody(BaseModel):
    error: str
    detail: Any = None
