"""Campaign lifecycle, personalised rendering, quiet hours, budget, SMTP delivery."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from limelight.marketing.audiences import Audience
from limelight.marketing.campaigns import CampaignError, CampaignManager, CampaignSpec
from limelight.marketing.channels.email import SMTPChannel
from limelight.marketing.content import ItemRules, TemplateError, render
from limelight.marketing.delivery import DeliveryLog
from limelight.marketing.offers import CouponBook
from limelight.marketing.schedule import Schedule, ScheduleError, in_quiet_hours, next_allowed

NOON = datetime(2026, 3, 2, 12, tzinfo=UTC)


def smtp_factory(host: str, port: int):
    return lambda name, spec: SMTPChannel(host, port, "shop@example.test")


def fixed_recommend(user_id: str, n: int) -> list[str]:
    # Cheap items first, one out of stock (i6), then Sci-Fi items.
    return ["i6", "i0", "i1", "i4", "i8", "i12", "i16", "i20"][:n]


def spec(**kw) -> CampaignSpec:
    base = dict(name="spring", audience=Audience.everyone().where(country="UK").to_dict(),
                subject="New for you", offer={"offer_id": "s20", "kind": "percent",
                                              "value": 20},
                item_rules={"categories": ["Sci-Fi"]}, n_items=3, holdout=0.2,
                schedule={"quiet_hours": None}, frequency_cap=0)
    base.update(kw)
    return CampaignSpec(**base)


def test_spec_round_trip_and_validation() -> None:
    s = spec()
    assert CampaignSpec.from_dict(s.to_dict()) == s
    with pytest.raises(CampaignError):
        CampaignSpec.from_dict({**s.to_dict(), "colour": "red"})
    with pytest.raises(CampaignError):
        spec(channel="pigeon")
    with pytest.raises(ScheduleError):
        spec(schedule={"kind": "at"})


def test_quiet_hours_in_user_timezone() -> None:
    late_utc = datetime(2026, 3, 2, 21, 30, tzinfo=UTC)  # 21:30 London, 22:30 Paris
    assert in_quiet_hours(late_utc, "Europe/London", (21, 8))
    assert not in_quiet_hours(late_utc, "America/New_York", (21, 8))  # 16:30 there
    release = next_allowed(late_utc, "Europe/Paris", (21, 8))
    assert release == datetime(2026, 3, 3, 7, tzinfo=UTC)  # 08:00 Paris
    assert next_allowed(NOON, "Europe/London", (21, 8)) == NOON
    assert Schedule("recurring", every_days=7).due(NOON, NOON - timedelta(days=8))
    assert not Schedule("at", at=NOON).due(NOON - timedelta(hours=1), None)


def test_templates_are_strict() -> None:
    with pytest.raises(TemplateError, match="not found"):
        render("nope.j2", {})
    with pytest.raises(TemplateError):
        render("recommendations.txt.j2", {"subject": "x"})  # items missing


def test_item_rules(shop_store) -> None:
    items = shop_store.read("items").set_index("item_id")
    allowed = items.index[ItemRules(categories=("Sci-Fi",), max_price=20).mask(items)]
    assert sorted(allowed) == ["i0", "i12", "i4", "i8"]  # Sci-Fi is every 4th; prices 5..17


def test_lifecycle_launch_and_smtp_delivery(shop_store, smtp_server) -> None:
    host, port, sink = smtp_server
    mgr = CampaignManager(shop_store, recommend=fixed_recommend,
                          channel_factory=smtp_factory(host, port))
    cid = mgr.create(spec(), campaign_id="cmp-lifecycle")  # named: reproducible holdout
    assert mgr.get(cid).status == "draft"
    preview = mgr.preview(cid, n=2)
    assert len(preview) == 2 and "PREVIEW" in preview[0]["text"]
    assert CouponBook(shop_store).stats() == {"issued": 0, "redeemed": 0}  # preview mints none
    mgr.schedule(cid)
    report = mgr.launch(cid, now=NOON)
    assert report.status == "completed" and mgr.get(cid).status == "completed"
    aud = report.audience
    # 30 UK users; every third has no email consent (10 of the UK ones: i % 6 == 0 -> 5)...
    assert aud["matched"] == 30 and aud["final"] == aud["matched"] - sum(aud["removed"].values())
    treated = report.assigned.get("treatment", 0)
    assert report.assigned.get("holdout", 0) + treated == aud["final"]
    assert report.dispatch["sent"] == treated == len(sink.messages)
    first = sink.messages[0]
    body = first.get_body(("plain",)).get_content()
    # Personalised under the rules: Sci-Fi only, in stock, from the recommender's order.
    assert "Item 0" in body and "Item 4" in body and "Item 8" in body and "Item 6" not in body
    assert "20% off" in body and "LL-" in body
    assert "/t/click?m=" in body and first["X-Limelight-Campaign-Id"] == cid
    codes = {m.get_body(("plain",)).get_content().split("code ")[1].split()[0].rstrip(",.")
             for m in sink.messages}
    assert len(codes) == treated  # one unique code per recipient
    # Holdout users are logged, never contacted.
    rows = DeliveryLog(shop_store).rows(cid)
    held = set(rows.loc[rows["status"] == "holdout", "user_id"])
    assert held and not held & {m["To"].split("@")[0] for m in sink.messages}
    with pytest.raises(CampaignError):
        mgr.launch(cid)  # completed campaigns do not run again


def test_quiet_hours_defer_and_release(shop_store, smtp_server) -> None:
    host, port, sink = smtp_server
    mgr = CampaignManager(shop_store, recommend=fixed_recommend,
                          channel_factory=smtp_factory(host, port))
    cid = mgr.create(spec(schedule={"quiet_hours": [21, 8]}, holdout=0.0,
                          audience=Audience.everyone().to_dict()))
    late = datetime(2026, 3, 2, 20, 30, tzinfo=UTC)  # 20:30 London (ok), 21:30 Paris (quiet)
    report = mgr.launch(cid, now=late)
    sent_to = {m["To"] for m in sink.messages}
    assert report.deferred > 0 and report.dispatch["sent"] == len(sent_to) > 0
    assert all(int(a.split("@")[0][1:]) % 2 == 0 for a in sent_to)  # London users only
    assert report.status == "running"
    assert mgr.run_due(now=late + timedelta(hours=1))["released"][cid]["sent"] == 0
    released = mgr.release_deferred(cid, now=datetime(2026, 3, 3, 7, 1, tzinfo=UTC))
    assert released.sent == report.deferred
    assert mgr.get(cid).status == "completed"
    assert len(sink.messages) == len({m["To"] for m in sink.messages})


def test_budget_caps_sends(shop_store, smtp_server) -> None:
    host, port, sink = smtp_server
    mgr = CampaignManager(shop_store, recommend=fixed_recommend,
                          channel_factory=smtp_factory(host, port))
    cid = mgr.create(spec(budget=10.0, cost_per_message=1.0, holdout=0.0,
                          offer={"offer_id": "five", "kind": "amount", "value": 1.0}))
    report = mgr.launch(cid, now=NOON)
    assert report.dispatch["sent"] == 5 and len(sink.messages) == 5  # 2.0 per message
    assert report.budget_capped > 0
    assert mgr.get(cid).spent == pytest.approx(10.0)


def test_crash_mid_launch_never_overspends_or_sends_twice(shop_store, smtp_server) -> None:
    from .test_delivery import CrashAfterSend, SimulatedCrash

    host, port, sink = smtp_server
    crashing = {"on": True}

    def factory(name, spec):
        channel = SMTPChannel(host, port, "shop@example.test")
        return CrashAfterSend(channel, crash_on=3) if crashing["on"] else channel

    mgr = CampaignManager(shop_store, recommend=fixed_recommend, channel_factory=factory)
    cid = mgr.create(spec(budget=6.0, cost_per_message=1.0, holdout=0.0))
    with pytest.raises(SimulatedCrash):
        mgr.launch(cid, now=NOON)
    assert len(sink.messages) == 3
    crashing["on"] = False
    report = mgr.launch(cid, now=NOON)  # the restart re-runs the whole launch
    assert report.dispatch["unknown"] == 1 and report.dispatch["sent"] == 3
    recipients = [m["To"] for m in sink.messages]
    assert len(recipients) == 6 == len(set(recipients))  # within budget, nobody twice
    assert mgr.get(cid).spent == pytest.approx(6.0)


def test_named_campaign_ids_are_unique(shop_store) -> None:
    mgr = CampaignManager(shop_store, recommend=fixed_recommend)
    spec = CampaignSpec("named", audience=Audience.segment("Champions").to_dict(),
                        channel="email", subject="Hi")
    assert mgr.create(spec, campaign_id="cmp-named") == "cmp-named"
    assert mgr.get("cmp-named").spec.name == "named"
    with pytest.raises(CampaignError, match="exists already"):
        mgr.create(spec, campaign_id="cmp-named")
