"""``GET /users/{user_id}/profile``: attributes, segment, history and interests."""

from __future__ import annotations

import math
from datetime import datetime
from typing import Annotated, Any

import numpy as np
from fastapi import APIRouter, Path

from limelight.api.deps import JSONResponse, ReadKey, State, error
from limelight.api.schemas import ErrorBody, Profile

router = APIRouter(tags=["users"])


@router.get("/users/{user_id}/profile", response_model=Profile, dependencies=[ReadKey],
            summary="A user's profile: attributes, segment, history, interests, features",
            responses={401: {"model": ErrorBody}, 403: {"model": ErrorBody},
                       404: {"model": ErrorBody, "description": "unknown user"}})
async def profile(state: State,
                  user_id: Annotated[str, Path(min_length=1, max_length=256, examples=["u42"])]
                  ) -> Any:
    """Interests are category shares over the user's history (live events included);
    ``features`` are the profile features (RFM, activity, interests) kept current by the
    real-time profile updater when profiles are built.

    Example: ``GET /users/u42/profile``
    """
    snapshot = state.require_snapshot()
    stored_id = state.key(user_id)
    history = snapshot.histories.get(stored_id)
    attributes = state.attributes.get(stored_id)
    features = _features(state, stored_id)
    if not len(history.items) and attributes is None and features is None:
        return error(404, "unknown_user", f"unknown user id {user_id!r}")
    catalog = snapshot.catalog
    recent = history.recent(10)
    interests: list[dict[str, Any]] = []
    if len(history.items):
        matrix = catalog.category_matrix[history.items]
        totals = np.asarray(matrix.multiply(history.weights[:, None]).sum(axis=0)).ravel()
        if totals.sum() > 0:
            order = np.argsort(-totals)[:5]
            share = totals / totals.sum()
            interests = [{"category": catalog.categories.ids[j], "share": round(float(share[j]), 4)}
                         for j in order if totals[j] > 0]
    return JSONResponse({
        "user_id": user_id, "known": True, "attributes": _clean(attributes or {}),
        "segment": state.segment_of(stored_id),
        "history": {"events": len(history.items), "live_events": history.live_events,
                    "recent_items": catalog.ids_of(recent).tolist()},
        "interests": interests, "features": features})


def _features(state: Any, user_id: str) -> dict[str, Any] | None:
    updater = state.profiles
    if updater is None:
        return None
    try:
        return _clean(updater.profile(user_id))
    except Exception:  # unknown to the updater
        return None


def _clean(values: dict[str, Any]) -> dict[str, Any]:
    """JSON-safe values (NaN/NA -> None, timestamps -> ISO strings, numpy -> Python)."""
    out: dict[str, Any] = {}
    for key, value in values.items():
        out[str(key)] = _value(value)
    return out


def _value(value: Any) -> Any:
    if isinstance(value, dict):
        return _clean(value)
    if isinstance(value, list | tuple | np.ndarray):
        return [_value(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, datetime):
        return value.isoformat()
    if value is None or isinstance(value, str | int | float | bool):
        return value
    try:
        import pandas as pd

        if pd.isna(value):
            return None
    except (TypeError, ValueError):
        pass
    return str(value)
