"""Model versions: list them, switch the served one, roll back, reload."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from limelight.api.deps import AdminKey, JSONResponse, ReadKey, State, error
from limelight.api.schemas import ErrorBody
from limelight.errors import ArtifactError

router = APIRouter(tags=["models"])


class ActivateIn(BaseModel):
    model_config = {"json_schema_extra": {"examples": [{"version": "v0002"}]}}

    version: str = Field(min_length=1, max_length=64)


def _served(state: Any) -> dict[str, Any]:
    snapshot = state.snapshot
    return {"active_version": state.artifacts.active_version(),
            "serving_version": snapshot.version if snapshot else None,
            "error": state.load_error}


@router.get("/models", dependencies=[ReadKey], summary="Saved model versions")
async def list_models(state: State) -> Any:
    """Every saved version with its metadata; ``active`` marks the active one."""
    versions = await run_in_threadpool(state.artifacts.list)
    return JSONResponse({**_served(state), "versions": versions})


@router.post("/models/activate", dependencies=[AdminKey], summary="Serve another version",
             responses={404: {"model": ErrorBody}, 401: {"model": ErrorBody},
                        403: {"model": ErrorBody}})
async def activate(state: State, body: ActivateIn) -> Any:
    """Activate ``version`` and load it; requests keep being answered by the previous version
    until the new one is ready. Same as ``limelight models activate``."""
    try:
        await run_in_threadpool(state.activate, body.version)
    except ArtifactError as exc:
        return error(404, "unknown_version", str(exc))
    return JSONResponse(_served(state))


@router.post("/models/rollback", dependencies=[AdminKey], summary="Serve the previous version",
             responses={409: {"model": ErrorBody}, 401: {"model": ErrorBody},
                        403: {"model": ErrorBody}})
async def rollback(state: State) -> Any:
    """Re-activate the version that was active before the current one."""
    try:
        await run_in_threadpool(state.rollback)
    except ArtifactError as exc:
        return error(409, "nothing_to_roll_back", str(exc))
    return JSONResponse(_served(state))


@router.post("/models/reload", dependencies=[AdminKey],
             summary="Load the active version now (instead of waiting for the watcher)")
async def reload(state: State) -> Any:
    await run_in_threadpool(state.load_active)
    return JSONResponse(_served(state))
