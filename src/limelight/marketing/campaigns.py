"""Campaigns: audience + offer + personalised template + channel + schedule + budget.

Lifecycle (stored in ``marketing_campaigns``)::

    draft -> scheduled -> running -> completed        (cancelled from any but completed)

A launch builds the audience (consent, unsubscribes, suppression and frequency caps always
apply), splits it with a salted-hash :class:`~limelight.marketing.experiments.Experiment`
into variants and a holdout (control, recorded but never contacted: the baseline of the uplift
in the report), issues coupon codes, renders each message with the user's own items, holds
messages that would land in the user's quiet hours (``deferred`` until the window ends), stops
at the budget, and hands the rest to the :class:`~limelight.marketing.delivery.Dispatcher`.

Budget: each message costs ``cost_per_message``; an amount-off offer also reserves its face
value times its redemption limit (the most it can cost). Percent-off offers reserve nothing,
since their cost depends on basket size. Users are taken in audience order (propensity and
lookalike audiences are ordered best first), so a cap keeps the best prospects.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

import pandas as pd

from limelight.errors import LimelightError
from limelight.marketing.audiences import Audience, build_audience, load_profiles
from limelight.marketing.channels.base import Channel, Message, message_id
from limelight.marketing.channels.factory import close_channel, default_channel
from limelight.marketing.content import (
    Content,
    ItemRules,
    Recommend,
    popularity_recommender,
    render,
    select_items,
    tracking_url,
)
from limelight.marketing.delivery import DeliveryLog, Dispatcher, DispatchReport
from limelight.marketing.experiments import HOLDOUT, Experiment
from limelight.marketing.offers import CouponBook, Offer
from limelight.marketing.schedule import Schedule, next_allowed
from limelight.marketing.tables import ensure_tables

STATUSES = ("draft", "scheduled", "running", "completed", "cancelled")
_ALLOWED = {
    "scheduled": {"draft"},
    "running": {"draft", "scheduled", "running"},
    "completed": {"running"},
    "cancelled": {"draft", "scheduled", "running"},
}


class CampaignError(LimelightError):
    """A campaign is unknown, malformed, or asked to make a move its status forbids."""


@dataclass
class CampaignSpec:
    """Everything a campaign needs; stored as JSON.

    Examples
    --------
    >>> spec = CampaignSpec("spring", audience=Audience.segment("At risk").to_dict(),
    ...                     subject="New for you", offer={"offer_id": "s20", "kind": "percent",
    ...                     "value": 20})
    >>> CampaignSpec.from_dict(spec.to_dict()) == spec
    True
    """

    name: str
    audience: dict[str, Any] = field(default_factory=lambda: {"name": "everyone"})
    channel: str = "email"
    subject: str = "Picked for you"
    headline: str = ""
    template: str = "recommendations"
    offer: dict[str, Any] | None = None
    item_rules: dict[str, Any] = field(default_factory=dict)
    n_items: int = 3
    schedule: dict[str, Any] = field(default_factory=dict)
    budget: float | None = None
    cost_per_message: float = 0.0
    holdout: float = 0.1
    variants: dict[str, dict[str, Any]] = field(default_factory=dict)
    tracking_base_url: str = "http://127.0.0.1:8000"
    webhook_url: str | None = None
    attribution_window_days: float = 7.0
    frequency_cap: int | None = None
    allocation: str = "split"
    allocation_reward: str = "click"
    allocation_segment: str | None = None

    def __post_init__(self) -> None:
        if not self.name:
            raise CampaignError("a campaign needs a name")
        if self.channel not in ("email", "push", "webhook", "inapp"):
            raise CampaignError(f"unknown channel {self.channel!r}")
        if self.n_items < 0:
            raise CampaignError("n_items must be >= 0")
        if not 0.0 <= self.holdout < 1.0:
            raise CampaignError("holdout must lie in [0, 1)")
        if self.allocation not in ("split", "thompson"):
            raise CampaignError("allocation must be 'split' (hash) or 'thompson' (bandit)")
        if self.allocation == "thompson" and len(self.variants) < 2:
            raise CampaignError("a bandit allocation needs two or more variants")
        if self.allocation_reward not in ("click", "purchase"):
            raise CampaignError("allocation_reward must be 'click' or 'purchase'")
        Schedule.from_dict(self.schedule)  # validates
        ItemRules.from_dict(self.item_rules)
        if self.offer:
            Offer.from_dict(self.offer)
        Audience.from_dict(self.audience)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> CampaignSpec:
        known = set(cls.__dataclass_fields__)
        unknown = set(data) - known
        if unknown:
            raise CampaignError(f"unknown campaign fields: {sorted(unknown)}")
        return cls(**data)

    def experiment(self, campaign_id: str) -> Experiment:
        variants = {name: 1.0 for name in self.variants} or {"treatment": 1.0}
        return Experiment(campaign_id, variants, holdout=self.holdout)


@dataclass
class Campaign:
    campaign_id: str
    spec: CampaignSpec
    status: str
    created_at: Any = None
    updated_at: Any = None
    last_run_at: Any = None
    spent: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return {"campaign_id": self.campaign_id, "name": self.spec.name, "status": self.status,
                "created_at": str(self.created_at), "updated_at": str(self.updated_at),
                "last_run_at": None if pd.isna(self.last_run_at) else str(self.last_run_at),
                "spent": self.spent, "spec": self.spec.to_dict()}


@dataclass
class LaunchReport:
    campaign_id: str
    run_id: str
    audience: dict[str, Any]
    assigned: dict[str, int]
    deferred: int
    budget_capped: int
    dispatch: dict[str, Any]
    status: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


ChannelFactory = Callable[[str, "CampaignSpec"], Channel]


class CampaignManager:
    """Create, preview, launch and track campaigns stored in the event store.

    Parameters
    ----------
    store
        The event store.
    recommend
        ``recommend(user_id, n) -> item ids``; defaults to :func:`popularity_recommender`.
    channel_factory
        ``factory(channel_name, spec) -> Channel``; defaults to SMTP / webhook / in-app
        configured from settings.
    profiles
        Profile features (index user_id) for audience rules; default: the stored profile
        build, else computed from the events.
    """

    def __init__(self, store: Any, *, recommend: Recommend | None = None,
                 channel_factory: ChannelFactory | None = None,
                 profiles: pd.DataFrame | None = None) -> None:
        self.store = store
        self.profiles = profiles
        ensure_tables(store)
        self._recommend = recommend
        self.channel_factory = channel_factory or (
            lambda name, spec: default_channel(name, spec, store))

    # -- storage ---------------------------------------------------------------------------
    def create(self, spec: CampaignSpec | dict[str, Any], *,
               campaign_id: str | None = None) -> str:
        """Store a new draft; returns its campaign id.

        ``campaign_id`` (default: a random ``cmp-...``) also salts the treatment/holdout
        assignment, so a caller who names the campaign gets a reproducible split.
        """
        if isinstance(spec, dict):
            spec = CampaignSpec.from_dict(spec)
        cid = campaign_id or f"cmp-{uuid.uuid4().hex[:12]}"
        if campaign_id is not None and not self.store.sql(
                "SELECT 1 FROM marketing_campaigns WHERE campaign_id = ?", [cid]).empty:
            raise CampaignError(f"campaign {cid!r} exists already; choose another id")
        now = datetime.now(UTC)
        self.store.execute("INSERT INTO marketing_campaigns VALUES (?, ?, 'draft', ?, ?, ?, "
                           "NULL, 0)", [cid, spec.name, json.dumps(spec.to_dict(), default=str),
                                        now, now])
        return cid

    def get(self, campaign_id: str) -> Campaign:
        frame = self.store.sql("SELECT * FROM marketing_campaigns WHERE campaign_id = ?",
                               [campaign_id])
        if frame.empty:
            raise CampaignError(f"no campaign {campaign_id!r}; `limelight campaign list` "
                                "shows them")
        row = frame.iloc[0]
        return Campaign(row["campaign_id"], CampaignSpec.from_dict(json.loads(row["spec"])),
                        row["status"], row["created_at"], row["updated_at"],
                        row["last_run_at"], float(row["spent"] or 0.0))

    def list(self) -> list[dict[str, Any]]:
        frame = self.store.sql("SELECT campaign_id, name, status, created_at, last_run_at, "
                               "spent FROM marketing_campaigns ORDER BY created_at")
        rows = frame.astype(object).where(frame.notna(), None).to_dict(orient="records")
        for row in rows:
            for key in ("created_at", "last_run_at"):
                if row[key] is not None:
                    row[key] = pd.Timestamp(row[key]).isoformat()
        return rows

    def _set_status(self, campaign_id: str, status: str, **extra: Any) -> None:
        current = self.get(campaign_id).status
        if current not in _ALLOWED[status]:
            raise CampaignError(f"campaign {campaign_id} is {current}; it cannot become "
                                f"{status}")
        sets = ", ".join(["status = ?", "updated_at = ?", *(f"{k} = ?" for k in extra)])
        self.store.execute(f"UPDATE marketing_campaigns SET {sets} WHERE campaign_id = ?",
                           [status, datetime.now(UTC), *extra.values(), campaign_id])

    def schedule(self, campaign_id: str) -> None:
        """draft -> scheduled: :meth:`run_due` launches it when its time comes."""
        self._set_status(campaign_id, "scheduled")

    def cancel(self, campaign_id: str) -> None:
        self._set_status(campaign_id, "cancelled")

    # -- content ---------------------------------------------------------------------------
    def recommend(self) -> Recommend:
        if self._recommend is None:
            self._recommend = popularity_recommender(self.store)
        return self._recommend

    def _items(self) -> pd.DataFrame:
        items = self.store.read("items")
        return items.set_index(items["item_id"].astype(str))

    def render_for(self, spec: CampaignSpec, user_id: str, mid: str, *, variant: str = "",
                   code: str | None = None, items: pd.DataFrame | None = None,
                   fallback: list[str] | None = None) -> Content:
        """The message ``user_id`` gets (subject, text, html, payload)."""
        items = self._items() if items is None else items
        overrides = spec.variants.get(variant, {})
        subject = overrides.get("subject", spec.subject)
        headline = overrides.get("headline", spec.headline) or subject
        chosen = select_items(user_id, spec.n_items, self.recommend(), items,
                              ItemRules.from_dict(spec.item_rules), fallback or [])
        shown = [{"item_id": i, "title": str(items.at[i, "title"]) if "title" in items and
                  pd.notna(items.at[i, "title"]) else i,
                  "price": float(items.at[i, "price"]) if "price" in items and
                  pd.notna(items.at[i, "price"]) else None,
                  "url": tracking_url(spec.tracking_base_url, "click", mid, i)} for i in chosen]
        offer = Offer.from_dict(spec.offer) if spec.offer else None
        offer_ctx = None
        if offer is not None:
            offer_ctx = {"description": offer.describe(), "code": code,
                         "expires_at": offer.expires_at.date().isoformat()
                         if offer.expires_at else None}
        ctx = {"subject": subject, "headline": headline, "items": shown, "offer": offer_ctx,
               "unsubscribe_url": tracking_url(spec.tracking_base_url, "unsubscribe", mid),
               "open_pixel_url": tracking_url(spec.tracking_base_url, "open", mid),
               "user_id": user_id}
        template = overrides.get("template", spec.template)
        if spec.channel == "email":
            text = render(f"{template}.txt.j2", ctx)
            html = render(f"{template}.html.j2", ctx)
        else:
            text, html = render("short.txt.j2", ctx), ""
        payload = {"items": chosen, "offer": offer_ctx, "variant": variant,
                   "links": {s["item_id"]: s["url"] for s in shown}}
        return Content(subject, text, html, payload)

    def preview(self, campaign_id: str, user_ids: list[str] | None = None, n: int = 3
                ) -> list[dict[str, Any]]:
        """Render messages for a few audience members without sending or issuing codes."""
        campaign = self.get(campaign_id)
        spec = campaign.spec
        if not user_ids:
            report = build_audience(self.store, Audience.from_dict(spec.audience),
                                    spec.channel, frequency_cap=spec.frequency_cap,
                                    profiles=self.profiles)
            user_ids = report.user_ids[:n]
        items = self._items()
        exp = spec.experiment(campaign_id)
        out = []
        for u in user_ids:
            variant = exp.assign_one(u)
            content = self.render_for(spec, u, message_id(campaign_id, u, "preview"),
                                      variant=variant, code="PREVIEW", items=items)
            out.append({"user_id": u, "variant": variant, **asdict(content)})
        return out

    # -- running ---------------------------------------------------------------------------
    def launch(self, campaign_id: str, *, now: datetime | None = None) -> LaunchReport:
        """Run the campaign once now (see the module docstring)."""
        now = now or datetime.now(UTC)
        campaign = self.get(campaign_id)
        spec = campaign.spec
        self._set_status(campaign_id, "running")
        run_id = now.strftime("%Y%m%dT%H%M%S") if Schedule.from_dict(
            spec.schedule).kind == "recurring" else ""
        audience = build_audience(self.store, Audience.from_dict(spec.audience), spec.channel,
                                  now=now, frequency_cap=spec.frequency_cap,
                                  profiles=self.profiles)
        users = audience.user_ids
        variants = spec.experiment(campaign_id).assign(users)
        if spec.allocation == "thompson":
            variants = self._bandit_variants(spec, campaign_id, users, variants, now)
        log = DeliveryLog(self.store)
        assigned: dict[str, int] = {}
        for v in variants:
            assigned[str(v)] = assigned.get(str(v), 0) + 1
        treated = [(u, str(v)) for u, v in zip(users, variants, strict=True) if v != HOLDOUT]
        log.add_many([Message(message_id(campaign_id, u, run_id), campaign_id, u, spec.channel)
                      for u, v in zip(users, variants, strict=True) if v == HOLDOUT],
                     status="holdout", run_id=run_id,
                     variants=dict.fromkeys(users, HOLDOUT))
        # Budget: cut the treated list where the cost would pass the budget.
        offer = Offer.from_dict(spec.offer) if spec.offer else None
        unit = spec.cost_per_message + (offer.value * offer.max_redemptions
                                         if offer and offer.kind == "amount" else 0.0)
        capped = 0
        if spec.budget is not None and unit > 0:
            # Messages already committed (also by a run that crashed before it could update
            # `spent`) count against the budget; they are skipped by the dispatcher anyway.
            committed = self._committed(campaign_id)
            fresh = [(u, v) for u, v in treated
                     if message_id(campaign_id, u, run_id) not in committed]
            affordable = max(0, int((spec.budget - unit * len(committed)) // unit))
            capped = max(0, len(fresh) - affordable)
            # Capped users stay in the analysis (intention to treat) as 'skipped'.
            log.add_many([Message(message_id(campaign_id, u, run_id), campaign_id, u,
                                  spec.channel) for u, _ in fresh[affordable:]],
                         status="skipped", run_id=run_id, variants=dict(fresh[affordable:]))
            keep = {u for u, _ in fresh[:affordable]}
            treated = [(u, v) for u, v in treated
                       if u in keep or message_id(campaign_id, u, run_id) in committed]
        codes = CouponBook(self.store).issue(offer, [u for u, _ in treated],
                                             campaign_id=campaign_id, now=now) if offer else {}
        contacts = self._contacts(spec.channel)
        tz = self._timezones()
        quiet = Schedule.from_dict(spec.schedule).quiet_hours
        items = self._items()
        fallback = popularity_recommender(self.store)("", max(5 * spec.n_items, 20))
        messages, held, wait_until, variant_of = [], [], {}, {}
        for u, v in treated:
            mid = message_id(campaign_id, u, run_id)
            content = self.render_for(spec, u, mid, variant=v, code=codes.get(u), items=items,
                                      fallback=fallback)
            msg = Message(mid, campaign_id, u, spec.channel, to=contacts.get(u, ""),
                          subject=content.subject, text=content.text, html=content.html,
                          payload=content.payload)
            variant_of[u] = v
            allowed = next_allowed(now, tz.get(u), quiet)
            if allowed > now:
                held.append(msg)
                wait_until[mid] = allowed
                continue
            messages.append(msg)
        deferred = len(log.add_many(held, status="deferred", run_id=run_id,
                                    variants=variant_of, not_before=wait_until))
        channel = self.channel_factory(spec.channel, spec)
        dispatch = Dispatcher(self.store, channel).dispatch(messages, run_id=run_id,
                                                            variants=variant_of)
        close_channel(channel)
        spent = unit * len(self._committed(campaign_id))
        self.store.execute("UPDATE marketing_campaigns SET last_run_at = ?, spent = ? "
                           "WHERE campaign_id = ?", [now, spent, campaign_id])
        status = self._maybe_complete(campaign_id, spec)
        return LaunchReport(campaign_id, run_id, audience.to_dict(), assigned, deferred, capped,
                            dispatch.to_dict(), status)

    def _bandit_variants(self, spec: CampaignSpec, campaign_id: str, users: list[str],
                         variants: Any, now: datetime) -> Any:
        """Replace the hash split of treated users by Thompson draws on earlier runs."""
        from limelight.marketing.allocation import campaign_rewards, thompson_assign

        treated = variants != HOLDOUT
        if not treated.any():
            return variants
        segments = None
        if spec.allocation_segment:
            profiles = load_profiles(self.store, self.profiles)
            if spec.allocation_segment not in profiles:
                raise CampaignError(f"profiles have no column {spec.allocation_segment!r} "
                                    "to allocate per segment")
            segments = profiles[spec.allocation_segment].astype(str).to_dict()
        history = campaign_rewards(self.store, campaign_id, spec.allocation_reward)
        out = variants.copy()
        out[treated] = thompson_assign(history, [u for u, t in zip(users, treated,
                                                                    strict=True) if t],
                                       list(spec.variants), segments=segments,
                                       random_state=int(now.timestamp()))
        return out

    def run_due(self, *, now: datetime | None = None) -> dict[str, Any]:
        """Launch scheduled campaigns whose time has come and send deferred messages now
        outside quiet hours. Call it from a scheduler (cron, a loop) every few minutes."""
        now = now or datetime.now(UTC)
        launched, released = {}, {}
        frame = self.store.sql("SELECT campaign_id FROM marketing_campaigns WHERE status IN "
                               "('scheduled', 'running')")
        for cid in frame["campaign_id"]:
            campaign = self.get(cid)
            sched = Schedule.from_dict(campaign.spec.schedule)
            last = None if pd.isna(campaign.last_run_at) else campaign.last_run_at
            if sched.due(now, last):
                launched[cid] = self.launch(cid, now=now).to_dict()
            else:
                released[cid] = self.release_deferred(cid, now=now).to_dict()
        return {"launched": launched, "released": released}

    def release_deferred(self, campaign_id: str, *, now: datetime | None = None
                         ) -> DispatchReport:
        """Send deferred messages whose quiet hours have ended."""
        now = now or datetime.now(UTC)
        spec = self.get(campaign_id).spec
        log = DeliveryLog(self.store)
        due = self.store.sql("SELECT message_id, variant FROM marketing_deliveries WHERE "
                             "campaign_id = ? AND status = 'deferred' AND not_before <= ?",
                             [campaign_id, now])
        for mid in due["message_id"]:
            log.set(mid, "queued", detail="quiet hours over")
        channel = self.channel_factory(spec.channel, spec)
        report = Dispatcher(self.store, channel).dispatch(
            [log.message(m) for m in due["message_id"]])
        close_channel(channel)
        self._maybe_complete(campaign_id, spec)
        return report

    def _committed(self, campaign_id: str) -> set[str]:
        """Message ids that cost money: sent, possibly sent, or waiting to be sent."""
        frame = self.store.sql("SELECT message_id FROM marketing_deliveries WHERE campaign_id = "
                               "? AND status IN ('queued', 'sending', 'retried', 'sent', "
                               "'unknown', 'deferred')", [campaign_id])
        return set(frame["message_id"])

    def _maybe_complete(self, campaign_id: str, spec: CampaignSpec) -> str:
        pending = self.store.sql("SELECT count(*) AS n FROM marketing_deliveries WHERE "
                                 "campaign_id = ? AND status IN ('deferred', 'queued')",
                                 [campaign_id])["n"].iloc[0]
        if pending == 0 and Schedule.from_dict(spec.schedule).kind != "recurring":
            self._set_status(campaign_id, "completed")
            return "completed"
        return "running"

    def _contacts(self, channel: str) -> dict[str, str]:
        column = {"email": "email", "push": "push_token", "sms": "phone"}.get(channel)
        if column is None:
            return {}
        frame = self.store.read("contacts", columns=["user_id", column])
        return dict(zip(frame["user_id"].astype(str), frame[column].fillna("").astype(str),
                        strict=True))

    def _timezones(self) -> dict[str, str]:
        frame = self.store.read("users", columns=["user_id", "timezone"])
        frame = frame[frame["timezone"].notna()]
        return dict(zip(frame["user_id"].astype(str), frame["timezone"].astype(str),
                        strict=True))
