"""A short path through the ASGI stack for the hottest read routes.

FastAPI's routing walks the route list, builds the dependency graph's arguments and wraps
the endpoint in several layers; for ``GET /users/{id}/recommendations`` on a small catalogue
that costs as much as scoring the catalogue. An endpoint marked with :func:`hot` is also
reachable through :class:`HotPathMiddleware`, which matches the route's path template with one
regular expression and calls it directly.

Only plain successes take the short path: when the endpoint raises (a missing key, invalid
parameters, an unknown id...), the request goes through the full app instead, so every error
answer comes from the app's own handlers, exactly as without the middleware. A hot endpoint
must therefore have no side effect before its last possible exception, and must parse and
validate its query parameters itself (it gets no FastAPI dependencies); its path parameters
are validated by the patterns given to :func:`hot` (a value a pattern refuses takes the full
path, where FastAPI's own validation answers it).

Example
-------
>>> @router.get("/users/{user_id}/things")                               # doctest: +SKIP
... @hot(user_id=r"[^/]{1,256}")
... async def things(request: Request, user_id: str) -> Response: ...
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Iterable
from typing import Any, TypeVar

from fastapi.routing import APIRoute
from starlette.requests import Request
from starlette.responses import Response

Endpoint = TypeVar("Endpoint", bound=Callable[..., Awaitable[Any]])

_PARAMS = "__hot_path_params__"
_PLACEHOLDER = re.compile(r"{([^{}:]+)(:[^{}]*)?}")


def hot(**param_patterns: str) -> Callable[[Endpoint], Endpoint]:
    """Mark an endpoint for the short path; ``param_patterns`` give the regular expression
    each path parameter must match there (default ``[^/]+``), e.g. the length limits its
    FastAPI declaration has."""
    def mark(endpoint: Endpoint) -> Endpoint:
        setattr(endpoint, _PARAMS, param_patterns)
        return endpoint
    return mark


def _path_pattern(route: APIRoute) -> re.Pattern[str]:
    """The route's path template as a regular expression with one named group per path
    parameter, as constrained by :func:`hot`."""
    given: dict[str, str] = dict(getattr(route.endpoint, _PARAMS))
    parts, pos = [], 0
    for placeholder in _PLACEHOLDER.finditer(route.path):
        name, convertor = placeholder.groups()
        if convertor:  # the endpoint would get a string where FastAPI converts
            raise TypeError(f"hot route {route.path}: typed path parameters are not supported")
        parts += [re.escape(route.path[pos:placeholder.start()]),
                  f"(?P<{name}>{given.pop(name, '[^/]+')})"]
        pos = placeholder.end()
    if given:
        raise TypeError(f"hot route {route.path} has no path parameters {sorted(given)}")
    return re.compile("".join(parts) + re.escape(route.path[pos:]))


class HotPathMiddleware:
    """ASGI middleware serving :func:`hot` endpoints of the app it wraps directly.

    ``routes`` are the app's routes (those of its routers); the marked ones are served. The
    matched :class:`~fastapi.routing.APIRoute` is put in ``scope["route"]`` as the router
    would, for the metrics that label by route.
    """

    def __init__(self, app: Any, routes: Iterable[Any]) -> None:
        self.app = app
        hot_routes = [route for route in routes
                      if isinstance(route, APIRoute) and hasattr(route.endpoint, _PARAMS)]
        for route in hot_routes:
            if route.dependencies:
                # the short path would skip them: an auth dependency silently not run
                raise TypeError(f"hot route {route.path} must not declare dependencies")
        self._routes = [(method, _path_pattern(route), route) for route in hot_routes
                        for method in sorted(route.methods)]

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] == "http" and self._routes:
            path = scope["path"]
            root = scope.get("root_path", "")
            if root and path.startswith(root):
                path = path[len(root):]
            method = scope["method"]
            for route_method, pattern, route in self._routes:
                match = pattern.fullmatch(path) if route_method == method else None
                if match is None:
                    continue
                response = await _answer(route, scope, receive, match.groupdict())
                if response is not None:
                    await response(scope, receive, send)
                    return
                break
        await self.app(scope, receive, send)


async def _answer(route: APIRoute, scope: dict, receive: Any,
                  params: dict[str, str]) -> Response | None:
    """The endpoint's response, or None when it raised (the full app answers then)."""
    scope["route"], scope["endpoint"], scope["path_params"] = route, route.endpoint, params
    try:
        response = await route.endpoint(Request(scope, receive), **params)
    except Exception:
        # errors are rare: the full app runs the request again and answers it with the
        # app's own error handlers
        return None
    if not isinstance(response, Response):
        raise TypeError(f"hot endpoint {route.path} must return a Response")
    return response

