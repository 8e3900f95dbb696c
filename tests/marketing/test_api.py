"""Marketing API routes through the real app (TestClient)."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from limelight.api.app import create_app
from limelight.marketing.audiences import Audience
from limelight.marketing.campaigns import CampaignManager, CampaignSpec
from limelight.settings import Settings


@pytest.fixture
def client(shop_store):
    app = create_app(Settings(), shop_store, watch=False, build_profiles=False)
    with TestClient(app) as c:
        yield c


def test_inapp_messages_tracking_and_report(client, shop_store) -> None:
    mgr = CampaignManager(shop_store, recommend=lambda u, n: ["i0", "i4", "i8"])
    cid = mgr.create(CampaignSpec("app-banner", audience=Audience.from_users(
        ["u0", "u1", "u2", "u3"]).to_dict(), channel="inapp", holdout=0.0,
        schedule={"quiet_hours": None}, frequency_cap=0, subject="Just for you"))
    report = mgr.launch(cid)
    assert report.dispatch["sent"] == 4
    box = client.get("/users/u1/messages").json()["messages"]
    assert len(box) == 1 and box[0]["title"] == "Just for you"
    assert box[0]["payload"]["items"] == ["i0", "i4", "i8"]
    mid = box[0]["message_id"]
    assert client.post(f"/users/u1/messages/{mid}/read").json()["read"]
    assert client.get("/users/u1/messages?unread_only=true").json()["messages"] == []
    link = box[0]["payload"]["links"]["i4"]
    path = link.split("127.0.0.1:8000", 1)[1]
    r = client.get(path)
    assert r.status_code == 200 and r.json()["campaign_id"] == cid
    events = shop_store.sql("SELECT type, item_id, campaign_id, message_id FROM events "
                            "WHERE message_id = ? ORDER BY type", [mid])
    assert events["type"].tolist()[-2:] == ["email_click", "email_open"]
    assert set(events["campaign_id"]) == {cid}
    assert client.get("/t/click?m=nope").status_code == 404
    r = client.get(f"{path}&to=/shop/items/i4", follow_redirects=False)
    assert r.status_code == 302 and r.headers["location"] == "/shop/items/i4"
    for bad in ("https://evil.test/", "//evil.test/x"):
        assert client.get(f"{path}&to={bad}").status_code == 422
    assert client.get(f"/t/open?m={mid}").headers["content-type"] == "image/gif"
    rep = client.get(f"/campaigns/{cid}/report").json()
    assert rep["funnel"]["delivered"] == 4 and rep["funnel"]["clicked"] == 1
    assert rep["funnel"]["opened"] == 1
    assert client.get("/campaigns/none/report").status_code == 404
    assert any(c["campaign_id"] == cid for c in client.get("/campaigns").json()["campaigns"])
    # Unsubscribing through the link removes the user from the next audience.
    assert client.get(f"/t/unsubscribe?m={mid}").status_code == 200
    from limelight.marketing.audiences import unsubscribed_users

    assert "u1" in unsubscribed_users(shop_store, "inapp")


def test_create_campaign_validates(client) -> None:
    r = client.post("/campaigns", json={"name": "x", "channel": "pigeon"})
    assert r.status_code == 422
    r = client.post("/campaigns", json={"name": "ok", "audience": {"rule": {"segment": "A"}}})
    assert r.status_code == 201 and r.json()["status"] == "draft"
    assert client.post("/campaigns", content=b"{bad").status_code == 400


def test_experiment_endpoints(client) -> None:
    body = {"name": "div", "variants": {"off": 1, "on": 1},
            "params": {"on": {"diversity": 0.3}}}
    assert client.post("/experiments", json=body).status_code == 201
    assert client.post("/experiments", json=body).status_code == 422  # duplicate
    seen = {}
    for u in ("u1", "u2", "u3", "u4", "u5", "u6"):
        r = client.get(f"/experiments/div/assignment?user_id={u}").json()
        assert r["params"] == ({"diversity": 0.3} if r["variant"] == "on" else {})
        seen[u] = r["variant"]
    assert client.get("/experiments/div/assignment?user_id=u1").json()["variant"] == seen["u1"]
    report = client.get("/experiments/div/report").json()
    assert sum(v["users"] for v in report["variants"]) == 6
    assert client.get("/experiments/zzz/report").status_code == 404
    assert client.get("/experiments/zzz/assignment?user_id=u1").status_code == 404
