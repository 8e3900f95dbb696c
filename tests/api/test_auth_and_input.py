"""Auth scopes on every protected endpoint, and bad input answered 4xx (never 500)."""

from __future__ import annotations

import pytest

#: (method, path, json body, scope needed)
PROTECTED = [
    ("GET", "/users/u1/recommendations", None, "read"),
    ("POST", "/recommend", {"user": "u1", "n": 2}, "read"),
    ("GET", "/items/{item}/similar", None, "read"),
    ("GET", "/users/u1/profile", None, "read"),
    ("GET", "/segments", None, "read"),
    ("GET", "/metrics", None, "read"),
    ("GET", "/models", None, "read"),
    ("POST", "/events", {"user_id": "u1", "item_id": "{item}", "type": "view"}, "write"),
    ("POST", "/feedback", {"user": "u1", "action": "like", "item": "{item}"}, "write"),
    ("POST", "/models/reload", None, "admin"),
    ("POST", "/models/activate", {"version": "{v1}"}, "admin"),
    ("POST", "/models/rollback", None, "admin"),
    ("GET", "/items/exposure", None, "admin"),
]
KEY_FOR = {"read": "reader", "write": "writer", "admin": "admin-key"}
WRONG_FOR = {"read": "writer", "write": "reader", "admin": "rw"}


def _call(client, method, path, body, key=None):
    headers = {"X-API-Key": key} if key else {}
    return client.request(method, path, json=body, headers=headers)


def _fill(world, path, body):
    item = world.items.item_id.iloc[0]
    user = world.active_users[0]
    path = path.replace("{item}", item).replace("/u1/", f"/{user}/")
    if isinstance(body, dict):
        body = {k: (v.replace("{item}", item).replace("{v1}", world.v1)
                    if isinstance(v, str) else v) for k, v in body.items()}
    return path, body


@pytest.mark.parametrize(("method", "path", "body", "scope"), PROTECTED,
                         ids=[f"{m} {p}" for m, p, _, _ in PROTECTED])
def test_scopes(auth_client, world, method, path, body, scope) -> None:
    path, body = _fill(world, path, body)
    missing = _call(auth_client, method, path, body)
    assert missing.status_code == 401 and missing.json()["error"] == "unauthorized"
    assert _call(auth_client, method, path, body, "not-a-key").status_code == 401
    wrong = _call(auth_client, method, path, body, WRONG_FOR[scope])
    assert wrong.status_code == 403, wrong.text
    right = _call(auth_client, method, path, body, KEY_FOR[scope])
    # authorised: anything but 401/403 (a rollback with nothing to roll back to is a 409)
    assert right.status_code < 400 or right.status_code == 409, right.text
    admin = _call(auth_client, method, path, body, "admin-key")
    assert admin.status_code < 400 or admin.status_code == 409, admin.text


def test_health_is_open(auth_client) -> None:
    assert auth_client.get("/health").status_code == 200


BAD = [
    ("GET", "/users/u1/recommendations?n=abc", None, 422),
    ("GET", "/users/u1/recommendations?n=0", None, 422),
    ("GET", "/users/u1/recommendations?n=1000000000", None, 422),
    ("GET", "/users/u1/recommendations?n=99999999999999999999999", None, 422),
    ("GET", "/users/u1/recommendations?diversity=2", None, 422),
    ("GET", "/users/u1/recommendations?min_price=-1", None, 422),
    ("GET", "/users/u1/recommendations?min_price=10&max_price=1", None, 422),
    ("GET", "/users/u1/recommendations?min_price=nan", None, 422),
    ("GET", "/users/u1/recommendations?explain=maybe", None, 422),
    ("GET", "/users/u1/recommendations?age=-5", None, 422),
    ("GET", "/items/no-such-item/similar", None, 404),
    ("GET", "/items/{item}/similar?n=-3", None, 422),
    ("GET", "/users/no-such-user/profile", None, 404),
    ("POST", "/recommend", {"user": "u1", "items": ["no-such-item"]}, 404),
    ("POST", "/recommend", {"user": 5, "items": "x"}, 422),
    ("POST", "/recommend", {"items": []}, 422),
    ("POST", "/recommend", {"user": "u1", "n": 10**9}, 422),
    ("POST", "/recommend", {"user": "u1", "unexpected": 1}, 422),
    ("POST", "/events", [], 422),
    ("POST", "/events", 42, 422),
    ("POST", "/events", "just a string", 422),
    ("POST", "/events", [1, 2, 3], 422),
    ("POST", "/events", {"user_id": None, "type": None}, 422),
    ("POST", "/events", [{"user_id": "u", "type": "view", "item_id": "i"}] * 51, 413),
    ("POST", "/feedback", {"user": "u1", "action": "explode", "item": "{item}"}, 422),
    ("POST", "/feedback", {"user": "u1", "action": "hide"}, 422),
    ("POST", "/feedback", {"user": "u1", "action": "hide", "item": "no-such-item"}, 404),
    ("POST", "/feedback", {"user": "u1", "action": "like", "category": "x"}, 422),
    ("POST", "/models/activate", {"version": "v9999"}, 404),
    ("POST", "/models/activate", {"version": ""}, 422),
    ("DELETE", "/events", None, 405),
    ("GET", "/nope", None, 404),
]


@pytest.mark.parametrize(("method", "path", "body", "status"), BAD,
                         ids=[f"{m} {p} {str(b)[:30]}" for m, p, b, _ in BAD])
def test_bad_input_is_4xx(client, world, method, path, body, status) -> None:
    path, body = _fill(world, path, body)
    response = client.request(method, path, json=body)
    assert response.status_code == status, response.text
    assert "error" in response.json() or "rejected" in response.json()


@pytest.mark.parametrize("raw", [b"{", b"[{]", b"\xff\xfe", b"{\"user_id\": }", b"nul"])
def test_malformed_json(client, raw) -> None:
    for path in ("/events", "/recommend", "/feedback"):
        response = client.post(path, content=raw, headers={"content-type": "application/json"})
        assert response.status_code == 400, (path, response.text)
        assert response.json()["error"] == "malformed_json"


def test_wrong_content_is_never_500(client) -> None:
    for body in (b"", b"   ", b"x" * 10_000, b"[" * 5000 + b"]" * 5000):
        for path in ("/events", "/recommend", "/feedback"):
            response = client.post(path, content=body,
                                   headers={"content-type": "application/json"})
            assert 400 <= response.status_code < 500, (path, body[:20], response.text)
