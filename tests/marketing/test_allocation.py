"""A recurring campaign whose creatives are allocated by Thompson sampling."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pandas as pd
import pytest

from limelight.marketing.audiences import Audience
from limelight.marketing.campaigns import CampaignError, CampaignManager, CampaignSpec
from limelight.marketing.channels.inapp import InAppChannel
from limelight.marketing.delivery import DeliveryLog

T0 = datetime(2026, 3, 2, 12, tzinfo=UTC)


def test_bandit_moves_traffic_to_the_better_creative(shop_store) -> None:
    mgr = CampaignManager(shop_store, recommend=lambda u, n: ["i0"],
                          channel_factory=lambda name, spec: InAppChannel(shop_store))
    cid = mgr.create(CampaignSpec(
        "weekly", audience=Audience.everyone().to_dict(), channel="inapp", holdout=0.0,
        variants={"A": {"subject": "Hello"}, "B": {"subject": "Your picks"}},
        allocation="thompson", schedule={"kind": "recurring", "every_days": 7,
                                         "quiet_hours": None}, frequency_cap=0))
    first = mgr.launch(cid, now=T0)
    assert first.status == "running"  # recurring campaigns keep running
    assert min(first.assigned.values()) >= 10  # no history: both creatives explored
    rows = DeliveryLog(shop_store).rows(cid)
    # Every B message is clicked, no A message is.
    clicks = rows[rows["variant"] == "B"]
    shop_store.write("events", pd.DataFrame({
        "user_id": clicks["user_id"], "item_id": "i0", "type": "email_click",
        "timestamp": T0 + timedelta(hours=1), "message_id": clicks["message_id"],
        "campaign_id": cid}))
    due = mgr.run_due(now=T0 + timedelta(days=8))
    second = due["launched"][cid]
    assert second["assigned"]["B"] > 0.85 * sum(second["assigned"].values())
    assert len(DeliveryLog(shop_store).rows(cid)) == 120  # a new message per user per run


def test_bandit_needs_variants() -> None:
    with pytest.raises(CampaignError):
        CampaignSpec("x", allocation="thompson")
