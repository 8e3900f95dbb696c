"""Audiences: who a campaign may reach, and the policies that always apply.

An :class:`Audience` is built from a segment, a rule over profile features, an explicit list
(from a propensity model or a lookalike search), or any mix::

    Audience.segment("At risk").where(interest("Sci-Fi") > 0.3).where(country="UK")

It serialises to a JSON rule (``to_dict`` / ``from_dict``), which is how the CLI and the API take
it. :func:`build_audience` resolves it against the profiles and then applies, in this order and
*always*: channel consent (opt-in; a missing answer is a no), unsubscribes, the suppression list,
the weekly frequency cap and reachability (an address for the channel). The
:class:`AudienceReport` counts the users each policy removed; each count is taken on the users
the previous policies kept, so matched = final + sum(removed).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pandas as pd

from limelight.marketing.rules import AllOf, Condition, Rule, RuleError, SegmentIs
from limelight.marketing.tables import ensure_tables

#: Which users-table consent column each channel needs (in-app shows inside the product the
#: user is signed in to, so it needs no marketing opt-in; unsubscribes and suppression still
#: apply to it).
CONSENT_COLUMN: dict[str, str | None] = {
    "email": "consent_email",
    "push": "consent_push",
    "webhook": "consent_push",
    "sms": "consent_sms",
    "inapp": None,
}
#: Which contacts column a channel needs to reach a user.
CONTACT_COLUMN: dict[str, str | None] = {
    "email": "email", "sms": "phone", "push": "push_token", "webhook": None, "inapp": None,
}
POLICY_ORDER = ("no_consent", "unsubscribed", "suppressed", "frequency_cap", "unreachable")


@dataclass(frozen=True)
class Audience:
    """A description of who to reach; resolved against profiles by :func:`build_audience`.

    Parameters
    ----------
    rule
        A rule over profile features (see :mod:`limelight.marketing.rules`), or None for all.
    user_ids
        An explicit list (e.g. from a propensity model or lookalike search), intersected with
        the rule when both are given.
    name
        A label for reports.
    """

    rule: Rule | None = None
    user_ids: tuple[str, ...] | None = None
    name: str = ""
    source: dict[str, Any] = field(default_factory=dict, compare=False)

    @classmethod
    def everyone(cls, name: str = "everyone") -> Audience:
        return cls(name=name)

    @classmethod
    def segment(cls, segment: str) -> Audience:
        """Members of a segment (by name, or id as text)."""
        return cls(rule=SegmentIs(str(segment)), name=str(segment))

    @classmethod
    def from_users(cls, user_ids: Iterable[str], name: str = "list",
                   source: dict[str, Any] | None = None) -> Audience:
        return cls(user_ids=tuple(str(u) for u in user_ids), name=name, source=source or {})

    @classmethod
    def from_rule(cls, rule: Rule | dict[str, Any] | str, name: str = "rule") -> Audience:
        if isinstance(rule, str):
            rule = Rule.from_json(rule)
        elif isinstance(rule, dict):
            rule = Rule.from_dict(rule)
        return cls(rule=rule, name=name)

    def where(self, *rules: Rule, **equals: Any) -> Audience:
        """A narrower audience: every given rule and ``column=value`` must hold too."""
        parts: list[Rule] = [] if self.rule is None else [self.rule]
        parts.extend(rules)
        for column, value in equals.items():
            op = "in" if isinstance(value, list | tuple | set) else "=="
            parts.append(Condition("feature", column, op,
                                   tuple(value) if op == "in" else value))
        if not parts:
            return self
        rule = parts[0] if len(parts) == 1 else AllOf(tuple(parts))
        return Audience(rule, self.user_ids, self.name, self.source)

    def to_dict(self) -> dict[str, Any]:
        """JSON form: ``{"name", "rule", "user_ids"}`` (absent parts left out)."""
        out: dict[str, Any] = {"name": self.name}
        if self.rule is not None:
            out["rule"] = self.rule.to_dict()
        if self.user_ids is not None:
            out["user_ids"] = list(self.user_ids)
        if self.source:
            out["source"] = self.source
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Audience:
        if not isinstance(data, dict):
            raise RuleError("an audience must be a JSON object with 'rule' and/or 'user_ids'")
        rule = Rule.from_dict(data["rule"]) if data.get("rule") is not None else None
        ids = data.get("user_ids")
        return cls(rule, None if ids is None else tuple(map(str, ids)), data.get("name", ""),
                   data.get("source", {}))

    def match(self, profiles: pd.DataFrame) -> list[str]:
        """User ids in ``profiles`` (indexed by user_id) that this audience describes."""
        mask = pd.Series(True, index=profiles.index)
        if self.rule is not None:
            mask &= self.rule.mask(profiles)
        ids = [str(u) for u in profiles.index[mask.to_numpy()]]
        if self.user_ids is not None:
            wanted = set(self.user_ids)
            if self.rule is None:
                # A list needs no profile: users without one are still reachable.
                return list(dict.fromkeys(self.user_ids))
            ids = [u for u in ids if u in wanted]
        return ids


@dataclass
class AudienceReport:
    """Who is reached, and how many each always-on policy removed."""

    name: str
    channel: str
    matched: int
    removed: dict[str, int]
    user_ids: list[str]
    removed_users: dict[str, list[str]] = field(default_factory=dict, repr=False)

    @property
    def size(self) -> int:
        return len(self.user_ids)

    def to_dict(self, with_users: bool = False) -> dict[str, Any]:
        out: dict[str, Any] = {"name": self.name, "channel": self.channel,
                               "matched": self.matched, "removed": self.removed,
                               "final": self.size}
        if with_users:
            out["user_ids"] = self.user_ids
        return out


def load_profiles(store: Any, profiles: pd.DataFrame | None = None) -> pd.DataFrame:
    """Users table (demographics, consent) joined with profile features and segments.

    ``profiles`` (indexed by user_id) wins where given. Otherwise the newest stored profile
    build is used, with its segment memberships (``segment_id``, ``rfm_segment``) and segment
    descriptions; without a stored build, profiles are computed from the events.
    """
    users = store.read("users").set_index("user_id")
    users.index = users.index.astype(str)
    if profiles is None:
        profiles = _stored_profiles(store)
    if profiles is None and store.count("events") > 0:
        from limelight.profile.features import build_profiles

        profiles = build_profiles(store)
    if profiles is None or profiles.empty:
        return users
    prof = profiles.copy()
    prof.index = prof.index.astype(str)
    extra = users.drop(columns=[c for c in users.columns if c in prof.columns])
    return prof.join(extra, how="outer")


def _stored_profiles(store: Any) -> pd.DataFrame | None:
    """The newest profile build with segments, or None when nothing was built yet."""
    from limelight.errors import StoreError
    from limelight.profile.repository import ProfileRepository

    try:
        repo = ProfileRepository(store)
        if repo.latest_version() is None:
            return None
        prof = repo.profiles()
        members = repo.memberships()
    except StoreError:
        return None
    if members.empty:  # a build without a segment model: profiles carry rfm_segment
        return prof
    prof = prof.drop(columns=[c for c in members.columns if c in prof.columns])
    prof = prof.join(members, how="left")
    if "segment_id" in prof:
        described = repo.segments().set_index("segment_id")["description"]
        prof["segment_description"] = prof["segment_id"].map(described)
    return prof


class SuppressionList:
    """Users never to contact (per channel, or ``"*"`` for every channel)."""

    def __init__(self, store: Any) -> None:
        self.store = store
        ensure_tables(store)

    def add(self, user_ids: Iterable[str], channel: str = "*", reason: str = "manual") -> int:
        now = datetime.now(UTC)
        n = 0
        for u in user_ids:
            self.store.execute(
                "INSERT INTO marketing_suppressions VALUES (?, ?, ?, ?) "
                "ON CONFLICT (user_id, channel) DO UPDATE SET reason = excluded.reason",
                [str(u), channel, reason, now])
            n += 1
        return n

    def remove(self, user_ids: Iterable[str], channel: str = "*") -> None:
        for u in user_ids:
            self.store.execute("DELETE FROM marketing_suppressions WHERE user_id = ? "
                               "AND channel = ?", [str(u), channel])

    def users(self, channel: str | None = None) -> set[str]:
        """Suppressed for ``channel`` (including every-channel entries), or all when None."""
        if channel is None:
            frame = self.store.sql("SELECT user_id FROM marketing_suppressions")
        else:
            frame = self.store.sql("SELECT user_id FROM marketing_suppressions "
                                   "WHERE channel = ? OR channel = '*'", [channel])
        return set(frame["user_id"].astype(str))


def unsubscribed_users(store: Any, channel: str) -> set[str]:
    """Users with an ``unsubscribe`` event for ``channel`` or for every channel (no channel)."""
    frame = store.sql(
        "SELECT DISTINCT user_id FROM events WHERE type = 'unsubscribe' "
        "AND (channel IS NULL OR channel = '' OR channel = ? OR channel = 'all')", [channel])
    return set(frame["user_id"].astype(str))


def recent_contacts(store: Any, since: datetime) -> pd.Series:
    """Messages sent (or being sent) per user since ``since``, any channel."""
    ensure_tables(store)
    frame = store.sql(
        "SELECT user_id, count(*) AS n FROM marketing_deliveries WHERE status IN "
        "('sending', 'sent', 'delivered') AND created_at >= ? GROUP BY user_id", [since])
    return frame.set_index("user_id")["n"] if not frame.empty else pd.Series(dtype=int)


def apply_policies(store: Any, user_ids: Sequence[str], channel: str, *,
                   now: datetime | None = None, frequency_cap: int | None = None,
                   require_contact: bool = True) -> tuple[list[str], dict[str, list[str]]]:
    """Remove who must not be contacted on ``channel``; returns (kept, removed by policy).

    Parameters
    ----------
    frequency_cap
        Most messages per user in the trailing 7 days (None = settings default, 0 = no cap).
    require_contact
        Drop users with no address for the channel (email, phone, push token).
    """
    if channel not in CONSENT_COLUMN:
        raise RuleError(f"unknown channel {channel!r}; use one of {', '.join(CONSENT_COLUMN)}")
    ensure_tables(store)
    now = now or datetime.now(UTC)
    if frequency_cap is None:
        from limelight.settings import get_settings

        frequency_cap = get_settings().marketing.frequency_cap_per_week
    kept = list(dict.fromkeys(str(u) for u in user_ids))
    removed: dict[str, list[str]] = {k: [] for k in POLICY_ORDER}

    def drop(reason: str, bad: set[str]) -> None:
        nonlocal kept
        removed[reason] = [u for u in kept if u in bad]
        kept = [u for u in kept if u not in bad]

    consent_col = CONSENT_COLUMN[channel]
    if consent_col is not None:
        users = store.read("users", columns=["user_id", consent_col])
        consenting = set(users.loc[users[consent_col].fillna(False).astype(bool), "user_id"]
                         .astype(str))
        drop("no_consent", {u for u in kept if u not in consenting})
    drop("unsubscribed", unsubscribed_users(store, channel))
    drop("suppressed", SuppressionList(store).users(channel))
    if frequency_cap and frequency_cap > 0:
        counts = recent_contacts(store, now - timedelta(days=7))
        drop("frequency_cap", set(counts.index[counts >= frequency_cap].astype(str)))
    contact_col = CONTACT_COLUMN[channel]
    if require_contact and contact_col is not None:
        contacts = store.read("contacts", columns=["user_id", contact_col])
        reachable = set(contacts.loc[contacts[contact_col].fillna("").astype(str).str.len() > 0,
                                     "user_id"].astype(str))
        drop("unreachable", {u for u in kept if u not in reachable})
    return kept, removed


def _users_suffice(store: Any, rule: Rule | None) -> bool:
    if rule is None:
        return True
    refs = rule.references()
    if any(kind != "feature" for kind, _ in refs):
        return False
    columns = set(store.read("users", where="false").columns)
    return all(name in columns for _, name in refs)


def build_audience(store: Any, audience: Audience, channel: str, *,
                   profiles: pd.DataFrame | None = None, now: datetime | None = None,
                   frequency_cap: int | None = None,
                   require_contact: bool = True) -> AudienceReport:
    """Resolve ``audience`` and apply consent, unsubscribes, suppression and frequency caps.

    Examples
    --------
    >>> report = build_audience(store, Audience.segment("At risk"), "email")  # doctest: +SKIP
    >>> report.to_dict()  # doctest: +SKIP
    {'name': 'At risk', 'channel': 'email', 'matched': 120, 'removed': {...}, 'final': 97}
    """
    if audience.rule is None and audience.user_ids is not None:
        matched = audience.match(pd.DataFrame(index=pd.Index([], name="user_id")))
    elif profiles is None and _users_suffice(store, audience.rule):
        # Rules over user attributes only need no profile build.
        matched = audience.match(load_profiles(store, pd.DataFrame()))
    else:
        matched = audience.match(load_profiles(store, profiles))
    kept, removed = apply_policies(store, matched, channel, now=now,
                                   frequency_cap=frequency_cap, require_contact=require_contact)
    return AudienceReport(audience.name, channel, len(matched),
                          {k: len(v) for k, v in removed.items()}, kept, removed)
