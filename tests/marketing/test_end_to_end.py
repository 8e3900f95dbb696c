"""segment -> audience -> campaign with coupon -> SMTP -> clicks and purchases through the
HTTP API (uvicorn on 127.0.0.1) -> attributed report with the right counts."""

from __future__ import annotations

import re
import threading
import time
from datetime import UTC, datetime

import httpx
import pytest

from limelight.api.app import create_app
from limelight.marketing.audiences import Audience, build_audience
from limelight.marketing.campaigns import CampaignManager, CampaignSpec
from limelight.marketing.channels.email import SMTPChannel
from limelight.marketing.delivery import DeliveryLog
from limelight.marketing.offers import CouponBook
from limelight.profile.features import build_profiles
from limelight.profile.repository import ProfileRepository
from limelight.settings import Settings

from .conftest import free_port


class LiveServer:
    def __init__(self, app) -> None:
        import uvicorn

        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=self.port,
                                                    log_level="warning"))
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> LiveServer:
        self.thread.start()
        deadline = time.monotonic() + 60
        while not self.server.started:
            assert time.monotonic() < deadline and self.thread.is_alive(), "no uvicorn"
            time.sleep(0.02)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)


def _body(mail) -> str:
    return mail.get_body(("plain",)).get_content()


@pytest.mark.slow
def test_segment_to_attributed_report(shop_store, smtp_server) -> None:
    host, port, sink = smtp_server
    store = shop_store
    # 1. A segment from the profiles, and its audience under the always-on policies.
    profiles = build_profiles(store)
    ProfileRepository(store).save(profiles)  # the stored build marketing reads from
    segment = profiles["rfm_segment"].value_counts().index[0]
    members = set(profiles.index[profiles["rfm_segment"] == segment])
    app = create_app(Settings(), store, watch=False, build_profiles=False)
    with LiveServer(app) as live, httpx.Client(base_url=live.url, timeout=60) as http:
        aud = build_audience(store, Audience.segment(segment), "email", frequency_cap=0)
        assert set(aud.user_ids) <= members and aud.size > 4
        # 2. A campaign with a coupon, tracked links pointing at the live API.
        mgr = CampaignManager(
            store, recommend=lambda u, n: ["i0", "i4", "i8", "i12"][:n],
            channel_factory=lambda name, spec: SMTPChannel(host, port, "shop@example.test"))
        cid = mgr.create(CampaignSpec(
            "e2e", audience=Audience.segment(segment).to_dict(), channel="email",
            subject="For you", offer={"offer_id": "e2e-15", "kind": "percent", "value": 15},
            holdout=0.2, schedule={"quiet_hours": None}, frequency_cap=0,
            tracking_base_url=live.url, attribution_window_days=7),
            campaign_id="cmp-e2e")  # a named campaign: the holdout split is reproducible
        launch = mgr.launch(cid)
        # 3. Real SMTP delivery: one mail per treated user, each with its own code.
        treated = launch.assigned["treatment"]
        assert launch.dispatch["sent"] == treated == len(sink.messages)
        by_user = {m["To"].split("@")[0]: m for m in sink.messages}
        assert set(by_user) <= members
        rows = DeliveryLog(store).rows(cid)
        holdout = rows.loc[rows["status"] == "holdout", "user_id"].tolist()
        assert holdout and not set(holdout) & set(by_user)
        recipients = sorted(by_user)
        a, b, c = recipients[:3]
        # 4. a and b click the tracked link in their email (through the HTTP API).
        for u in (a, b):
            link = re.search(r"(http://\S+/t/click\?\S+)", _body(by_user[u])).group(1)
            assert http.get(link.replace(live.url, "")).status_code == 200
        mid_a = by_user[a]["X-Limelight-Message-Id"]
        # a redeems the coupon and buys (the shop tags the order with the message id);
        code = re.search(r"code (LL-[A-Z0-9]+)", _body(by_user[a])).group(1)
        redemption = CouponBook(store).redeem(code, a, 40.0, order_id="o-a")
        now = datetime.now(UTC).isoformat()
        purchases = [
            {"user_id": a, "item_id": "i4", "type": "purchase", "timestamp": now,
             "value": 40.0 - redemption.discount, "campaign_id": cid, "message_id": mid_a},
            # b buys without a tag: last touch (the click) gets the credit;
            {"user_id": b, "item_id": "i8", "type": "purchase", "timestamp": now,
             "value": 12.5},
            # c never clicked but bought after the mail arrived: last touch is the delivery;
            {"user_id": c, "item_id": "i0", "type": "purchase", "timestamp": now, "value": 5.0},
            # a holdout user buys: baseline for uplift, never attributed.
            {"user_id": holdout[0], "item_id": "i1", "type": "purchase", "timestamp": now,
             "value": 99.0},
        ]
        r = http.post("/events", json=purchases)
        assert r.status_code == 200 and r.json()["accepted"] == 4
        # 5. The attributed report, through the API.
        report = http.get(f"/campaigns/{cid}/report").json()
    assert redemption.discount == 6.0
    f = report["funnel"]
    assert f["audience"] == aud.size and f["delivered"] == f["sent"] == treated
    assert f["clicked"] == 2 and f["converted"] == 3
    assert report["revenue"] == pytest.approx(34.0 + 12.5 + 5.0)
    by_variant = {v["variant"]: v for v in report["by_variant"]}
    assert by_variant["treatment"]["conversions"] == 3
    assert by_variant["holdout"]["conversions"] == 1
    uplift = report["uplift"]["treatment"]["conversion"]
    assert uplift["estimate"] == pytest.approx(3 / treated - 1 / len(holdout))
    assert CouponBook(store).stats("e2e-15") == {"issued": treated, "redeemed": 1}
