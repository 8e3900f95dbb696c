"""The short path for hot routes: same answers as the full app, errors from the app's handlers."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi import APIRouter, Depends, FastAPI, HTTPException, Request
from fastapi.responses import JSONResponse
from fastapi.testclient import TestClient

from limelight.api.hotpath import HotPathMiddleware, hot


def _app(router: APIRouter, *, short_path: bool = True) -> FastAPI:
    app = FastAPI()
    app.include_router(router)

    @app.exception_handler(HTTPException)
    async def shaped(request: Request, exc: HTTPException) -> Any:
        return JSONResponse({"error": "shaped", "detail": exc.detail}, exc.status_code)

    if short_path:
        app.add_middleware(HotPathMiddleware, routes=router.routes)
    return app


def _router(calls: list[dict[str, Any]]) -> APIRouter:
    router = APIRouter()

    @router.get("/things/{thing_id}")
    @hot(thing_id=r"[a-z]{1,5}")
    async def thing(request: Request, thing_id: str) -> Any:
        # Starlette's router puts itself in the scope; the short path does not pass there
        calls.append({"routed": "router" in request.scope, "thing": thing_id})
        if request.query_params.get("fail"):
            raise HTTPException(418, "no tea")
        return JSONResponse({"thing": thing_id, "q": request.query_params.get("q")})

    @router.get("/other/{x}")
    async def other(x: str) -> Any:
        return {"x": x}
    return router


def test_hot_route_skips_the_router_and_answers_the_same() -> None:
    calls: list[dict[str, Any]] = []
    with TestClient(_app(_router(calls))) as fast, \
            TestClient(_app(_router(calls), short_path=False)) as full:
        a = fast.get("/things/abc?q=1")
        b = full.get("/things/abc?q=1")
    assert a.status_code == b.status_code == 200
    assert a.json() == b.json() == {"thing": "abc", "q": "1"}
    assert [c["routed"] for c in calls] == [False, True]


def test_errors_are_answered_by_the_full_app() -> None:
    calls: list[dict[str, Any]] = []
    with TestClient(_app(_router(calls))) as client:
        response = client.get("/things/abc?fail=1")
    assert response.status_code == 418
    assert response.json() == {"error": "shaped", "detail": "no tea"}
    # tried on the short path, then answered by the routed endpoint
    assert [c["routed"] for c in calls] == [False, True]


def test_paths_the_pattern_refuses_take_the_full_app() -> None:
    calls: list[dict[str, Any]] = []
    with TestClient(_app(_router(calls))) as client:
        assert client.get("/things/toolongid").json() == {"thing": "toolongid", "q": None}
        assert client.get("/other/1").json() == {"x": "1"}
        assert client.post("/things/abc").status_code == 405
    assert [c["routed"] for c in calls] == [True]


def test_hot_routes_may_not_declare_dependencies() -> None:
    router = APIRouter()

    async def guard() -> None:
        return None

    @router.get("/guarded", dependencies=[Depends(guard)])
    @hot()
    async def guarded(request: Request) -> Any:
        return JSONResponse({})

    with pytest.raises(TypeError, match="dependencies"):
        HotPathMiddleware(FastAPI(), routes=router.routes)


def test_hot_patterns_must_name_path_parameters() -> None:
    router = APIRouter()

    @router.get("/users/{user_id}")
    @hot(user=r"[a-z]+")
    async def misnamed(request: Request, user_id: str) -> Any:
        return JSONResponse({})

    with pytest.raises(TypeError, match="no path parameters"):
        HotPathMiddleware(FastAPI(), routes=router.routes)


def test_recommendations_take_the_short_path_with_identical_answers(app_factory, world,
                                                                    monkeypatch) -> None:
    """The served route: the short path answers exactly as FastAPI's routing does, and the
    request is counted under its route template."""
    from limelight.api import hotpath

    answered: list[str] = []
    real_answer = hotpath._answer

    async def counting(route: Any, *args: Any) -> Any:
        answered.append(route.path)
        return await real_answer(route, *args)

    monkeypatch.setattr(hotpath, "_answer", counting)
    user = world.users["user_id"].iloc[0]
    url = f"/users/{user}/recommendations?n=5&diversity=0.3&explain=true"
    app, full_app = app_factory(world), app_factory(world)
    full_app.user_middleware = [m for m in full_app.user_middleware
                                if m.cls is not HotPathMiddleware]
    with TestClient(app) as fast, TestClient(full_app) as full:
        a, b = fast.get(url), full.get(url)
        metrics = fast.get("/metrics").text
    assert a.status_code == b.status_code == 200
    assert a.json() == b.json()
    assert answered == ["/users/{user_id}/recommendations"]  # the full app's request did not
    assert 'route="/users/{user_id}/recommendations",status="200"' in metrics
