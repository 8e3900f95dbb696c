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


def get_state(request: Request) -> ServingState:
    return request.app.state.serving


def _require(scope: str):
    def check(request: Request, key: Annotated[str | None, Security(_key_header)] = None
              ) -> None:
        keys: ApiKeys = request.app.state.api_keys
        try:
            keys.check(key, scope)
        except AuthError as exc:
            from fastapi import HTTPException

            raise HTTPException(exc.status, exc.message,
                                headers={"WWW-Authenticate": HEADER}) from None
    return check


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
