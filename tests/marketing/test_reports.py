"""Attribution and campaign reports with hand-checked counts."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pandas as pd
import pytest

from limelight.marketing.attribution import attribute
from limelight.marketing.audiences import Audience
from limelight.marketing.campaigns import CampaignManager, CampaignSpec
from limelight.marketing.channels.inapp import InAppChannel
from limelight.marketing.delivery import DeliveryLog
from limelight.marketing.reports import campaign_report

T0 = datetime(2026, 3, 2, 12, tzinfo=UTC)


def ev(user, typ, t, item=None, value=None, mid=None, cid=None):
    return {"user_id": user, "item_id": item, "type": typ, "timestamp": t, "value": value,
            "message_id": mid, "campaign_id": cid}


@pytest.fixture
def launched(shop_store):
    mgr = CampaignManager(shop_store, recommend=lambda u, n: ["i0", "i4"],
                          channel_factory=lambda name, spec: InAppChannel(shop_store))
    cid = mgr.create(CampaignSpec(
        "inapp-test", audience=Audience.everyone().to_dict(), channel="inapp",
        holdout=0.25, schedule={"quiet_hours": None}, frequency_cap=0,
        attribution_window_days=3))
    # Launch "at" T0: sent_at is wall-clock now, so move it to T0 for a clean timeline.
    mgr.launch(cid, now=T0)
    shop_store.execute("UPDATE marketing_deliveries SET sent_at = ?, created_at = ? "
                       "WHERE campaign_id = ?", [T0, T0, cid])
    rows = DeliveryLog(shop_store).rows(cid)
    return mgr, cid, rows


def test_attribution_and_report_counts(shop_store, launched, tmp_path) -> None:
    _, cid, rows = launched
    sent = rows[rows["status"] == "sent"].reset_index(drop=True)
    held = rows[rows["status"] == "holdout"].reset_index(drop=True)
    assert len(sent) > 10 and len(held) > 3
    a, b, c, d = (sent.loc[k, "user_id"] for k in range(4))
    ma, mb, mc = (sent.loc[k, "message_id"] for k in range(3))
    h = held.loc[0, "user_id"]
    events = [
        ev(a, "email_open", T0 + timedelta(hours=1), mid=ma),
        ev(a, "email_click", T0 + timedelta(hours=2), item="i0", mid=ma),
        ev(a, "purchase", T0 + timedelta(hours=3), item="i0", value=10.0, mid=ma, cid=cid),
        ev(b, "email_open", T0 + timedelta(hours=1), mid=mb),
        # untagged purchase within the window: last touch
        ev(b, "purchase", T0 + timedelta(days=2), item="i4", value=7.5),
        # purchase after the 3-day window: not attributed
        ev(c, "purchase", T0 + timedelta(days=4), item="i1", value=100.0),
        # purchase before the message: not attributed
        ev(d, "purchase", T0 - timedelta(hours=5), item="i1", value=50.0),
        # holdout buyer: counts for uplift baseline, never attributed
        ev(h, "purchase", T0 + timedelta(days=1), item="i2", value=20.0),
    ]
    shop_store.write("events", pd.DataFrame(events))
    att = attribute(shop_store, window_days=3, campaign_id=cid)
    assert sorted(att["user_id"]) == sorted([a, b])
    assert dict(zip(att["user_id"], att["rule"], strict=True)) == {a: "tagged", b: "last_touch"}
    assert att["revenue"].sum() == pytest.approx(17.5)
    assert mc  # c got a message but bought too late

    report = campaign_report(shop_store, cid)
    f = report.funnel
    assert f["audience"] == len(rows)
    assert f["sent"] == f["delivered"] == len(sent)
    assert f["opened"] == 2 and f["clicked"] == 1 and f["converted"] == 2
    assert report.revenue == pytest.approx(17.5)
    by = {r["variant"]: r for r in report.by_variant}
    assert by["holdout"]["conversions"] == 1 and by["treatment"]["conversions"] == 2
    conv = report.uplift["treatment"]["conversion"]
    expected = 2 / by["treatment"]["users"] - 1 / by["holdout"]["users"]
    assert conv["estimate"] == pytest.approx(expected)
    assert conv["ci_low"] < conv["estimate"] < conv["ci_high"]
    assert report.srm["checked"]
    rows_table = report.rows()
    assert rows_table[0]["stage"] == "audience" and rows_table[-1]["count"] == 17.5
    png = report.plot(tmp_path / "report.png")
    assert png.stat().st_size > 5000
    assert report.to_dict()["funnel"] == f
