"""Dependencies shared by the routers, as ``Annotated`` aliases.

``State`` gives the app's :class:`~limelight.api.state.ServingState`; ``ReadKey``,
``WriteKey`` and ``AdminKey`` enforce the API key scopes (see :mod:`limelight.api.auth`).
"""

from __future__ import annotations

from typing import Annotated, Any

import orjson
from fastapi import Depends, Request, Security
from fastapi.responses import Response
from fastapi.security import APIKeyHeader

from limelight.api.auth import HEADER, ApiKeys, AuthError
from limelight.api.state import ServingState

_key_header = APIKeyHeader(name=HEADER, auto_error=False,
                           description="API key; scopes read, write, admin")


async def get_state(request: Request) -> ServingState:
    # async on purpose: FastAPI runs sync dependencies in a worker thread, which costs more
    # than the whole recommendation on the hot path
    return request.app.state.serving


def _require(scope: str):
    async def check(request: Request,
                    key: Annotated[str | None, Security(_key_header)] = None) -> None:
        keys: ApiKeys = request.app.state.api_keys
        try:
            keys.check(key, scope)
        except AuthError as exc:
            from fastapi import HTTPException

            raise HTTPException(exc.status, exc.message,
                                headers={"WWW-Authenticate": HEADER}) from None
    return check


def authorize(request: Request, scope: str) -> None:
    """The scope check of ``ReadKey`` & co. as a plain call, for hot endpoints that skip
    FastAPI's dependency solving (they declare the security scheme in ``openapi_extra``)."""
    keys: ApiKeys = request.app.state.api_keys
    if not keys.enabled:
        return
    try:
        keys.check(request.headers.get(HEADER), scope)
    except AuthError as exc:
        from fastapi import HTTPException

        raise HTTPException(exc.status, exc.message,
                            headers={"WWW-Authenticate": HEADER}) from None


#: OpenAPI security requirement of endpoints that call :func:`authorize` themselves.
SECURITY = [{"APIKeyHeader": []}]

State = Annotated[ServingState, Depends(get_state)]
ReadKey = Depends(_require("read"))
WriteKey = Depends(_require("write"))
AdminKey = Depends(_require("admin"))


class JSONResponse(Response):
    """orjson-serialised JSON (numpy scalars and arrays included)."""

    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content, option=orjson.OPT_SERIALIZE_NUMPY)


def error(status: int, code: str, detail: Any = None) -> JSONResponse:
    """An error answer in the API's one format: ``{"error": code, "detail": ...}``."""
    return JSONResponse({"error": code, "detail": detail}, status_code=status)
