"""The delivery log and idempotent sending.

Every message has a deterministic id (:func:`~limelight.marketing.channels.base.message_id`
of campaign, run and user) and one row in ``marketing_deliveries`` whose status moves

    queued -> sending -> sent | failed        (retried in between, logged)
    deferred (quiet hours) -> queued ...      holdout (control group, never sent)

Each transition is written *before* the next step happens and also appended to
``marketing_delivery_log``. A send is therefore bracketed: ``sending`` is durable before the
channel is called and ``sent`` after it answers. A crash between the two leaves the message
``sending`` -- in doubt: it may or may not have gone out. :meth:`Dispatcher.reconcile` decides:

* **at-most-once** (the default for email and SMS, whose receivers cannot de-duplicate: a
  second copy lands in the inbox) -- the message is marked ``unknown`` and never re-sent. A
  customer may miss one message after a crash, but nobody ever gets two.
* **at-least-once** (webhook/push with an ``Idempotency-Key``, in-app keyed by message id) --
  the message is sent again; the receiver drops the duplicate, so the effect is exactly once.

Messages already ``sent``, ``failed`` or ``unknown`` are skipped on re-runs, so re-launching a
campaign after a crash sends only what never went out.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

import pandas as pd

from limelight.marketing.channels.base import Channel, Message
from limelight.marketing.tables import ensure_tables

FINAL = ("sent", "failed", "unknown", "holdout", "skipped")
GUARANTEES = ("auto", "at_most_once", "at_least_once")


class DeliveryLog:
    """Rows of ``marketing_deliveries`` and the append-only ``marketing_delivery_log``."""

    def __init__(self, store: Any) -> None:
        self.store = store
        ensure_tables(store)

    def status(self, message_id: str) -> str | None:
        row = self.store.execute("SELECT status FROM marketing_deliveries WHERE message_id = ?",
                                 [message_id]).fetchone()
        return None if row is None else str(row[0])

    def add(self, message: Message, *, status: str = "queued", run_id: str = "",
            variant: str = "", not_before: datetime | None = None) -> bool:
        """Insert the row for ``message`` unless it exists; True when inserted."""
        now = datetime.now(UTC)
        with self.store.transaction():
            row = self.store.execute(
                "INSERT INTO marketing_deliveries (message_id, campaign_id, run_id, user_id, "
                "channel, variant, status, attempts, error, payload, created_at, updated_at, "
                "not_before) VALUES (?, ?, ?, ?, ?, ?, ?, 0, NULL, ?, ?, ?, ?) "
                "ON CONFLICT (message_id) DO NOTHING RETURNING message_id",
                [message.message_id, message.campaign_id, run_id, message.user_id,
                 message.channel, variant, status, json.dumps(asdict(message), default=str),
                 now, now, not_before]).fetchone()
            if row is not None:
                self._append(message.message_id, status, "", now)
        return row is not None

    def add_many(self, messages: list[Message], *, status: str = "queued", run_id: str = "",
                 variants: dict[str, str] | None = None,
                 not_before: dict[str, datetime] | None = None) -> set[str]:
        """Insert rows for many messages in one transaction; returns the ids inserted."""
        if not messages:
            return set()
        now = datetime.now(UTC)
        variants, not_before = variants or {}, not_before or {}
        frame = pd.DataFrame({
            "message_id": [m.message_id for m in messages],
            "campaign_id": [m.campaign_id for m in messages],
            "run_id": run_id,
            "user_id": [m.user_id for m in messages],
            "channel": [m.channel for m in messages],
            "variant": [variants.get(m.user_id, "") for m in messages],
            "status": status,
            "payload": [json.dumps(asdict(m), default=str) for m in messages],
            "not_before": pd.to_datetime([not_before.get(m.message_id) for m in messages],
                                         utc=True),
        }).drop_duplicates("message_id")
        view = f"__deliveries_{id(frame)}"
        with self.store.transaction():
            self.store.register(view, frame)
            try:
                rows = self.store.execute(
                    "INSERT INTO marketing_deliveries (message_id, campaign_id, run_id, user_id, "
                    "channel, variant, status, attempts, payload, created_at, updated_at, "
                    "not_before) SELECT message_id, campaign_id, run_id, user_id, channel, "
                    f"variant, status, 0, payload, ?, ?, not_before FROM {view} "
                    "WHERE message_id NOT IN (SELECT message_id FROM marketing_deliveries) "
                    "RETURNING message_id", [now, now]).fetchall()
                inserted = {r[0] for r in rows}
                self.store.execute(
                    "INSERT INTO marketing_delivery_log SELECT message_id, status, ?, '' "
                    f"FROM {view} WHERE message_id IN (SELECT unnest(?::VARCHAR[]))",
                    [now, sorted(inserted)])
            finally:
                self.store.unregister(view)
        return inserted

    def statuses(self, message_ids: list[str]) -> dict[str, str]:
        """Current status of each of ``message_ids`` (missing ones left out)."""
        if not message_ids:
            return {}
        frame = self.store.sql("SELECT message_id, status FROM marketing_deliveries WHERE "
                               "message_id IN (SELECT unnest(?::VARCHAR[]))", [message_ids])
        return dict(zip(frame["message_id"], frame["status"], strict=True))

    def set(self, message_id: str, status: str, *, detail: str = "",
            attempts: int | None = None) -> None:
        """Move a message to ``status`` and log the transition."""
        now = datetime.now(UTC)
        # The row's status is the truth; the history line goes first, so a crash between the
        # two statements leaves at worst an extra history line, never a wrong status. (Two
        # autocommit statements instead of a transaction: half the round trips per send.)
        self._append(message_id, status, detail, now)
        self.store.execute(
            "UPDATE marketing_deliveries SET status = ?, updated_at = ?, "
            "error = CASE WHEN ? = '' THEN error ELSE ? END, "
            "attempts = coalesce(?, attempts), "
            "sent_at = CASE WHEN ? = 'sent' THEN ? ELSE sent_at END WHERE message_id = ?",
            [status, now, detail, detail, attempts, status, now, message_id])

    def _append(self, message_id: str, status: str, detail: str, now: datetime) -> None:
        self.store.execute("INSERT INTO marketing_delivery_log VALUES (?, ?, ?, ?)",
                           [message_id, status, now, detail])

    def message(self, message_id: str) -> Message:
        row = self.store.execute("SELECT payload FROM marketing_deliveries WHERE message_id = ?",
                                 [message_id]).fetchone()
        return Message(**json.loads(row[0]))

    def rows(self, campaign_id: str | None = None, status: str | None = None) -> pd.DataFrame:
        conds, params = [], []
        if campaign_id is not None:
            conds.append("campaign_id = ?")
            params.append(campaign_id)
        if status is not None:
            conds.append("status = ?")
            params.append(status)
        where = ("WHERE " + " AND ".join(conds)) if conds else ""
        return self.store.sql(
            "SELECT message_id, campaign_id, run_id, user_id, channel, variant, status, "
            f"attempts, error, created_at, sent_at, not_before FROM marketing_deliveries {where} "
            "ORDER BY created_at, message_id", params)

    def counts(self, campaign_id: str) -> dict[str, int]:
        frame = self.store.sql("SELECT status, count(*) AS n FROM marketing_deliveries "
                               "WHERE campaign_id = ? GROUP BY status", [campaign_id])
        return {str(s): int(n) for s, n in zip(frame["status"], frame["n"], strict=True)}

    def history(self, message_id: str) -> list[str]:
        """Statuses the message went through, in order."""
        frame = self.store.sql("SELECT status FROM marketing_delivery_log WHERE message_id = ? "
                               "ORDER BY logged_at, rowid", [message_id])
        return frame["status"].tolist()


@dataclass
class DispatchReport:
    """What one dispatch (or reconcile) did."""

    sent: int = 0
    failed: int = 0
    retried: int = 0
    skipped: int = 0  # already handled by an earlier run
    resent_in_doubt: int = 0
    unknown: int = 0  # in doubt after a crash and not re-sent (at-most-once)
    errors: dict[str, int] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def merge(self, other: DispatchReport) -> DispatchReport:
        for k in ("sent", "failed", "retried", "skipped", "resent_in_doubt", "unknown"):
            setattr(self, k, getattr(self, k) + getattr(other, k))
        self.errors = dict(Counter(self.errors) + Counter(other.errors))
        return self


class Dispatcher:
    """Send messages through one channel, logging every step, never twice after a crash.

    Parameters
    ----------
    store
        The event store holding the delivery log.
    channel
        A :class:`~limelight.marketing.channels.base.Channel`.
    guarantee
        ``"at_most_once"``, ``"at_least_once"`` or ``"auto"`` (at-least-once when the
        channel's receiver de-duplicates by message id, else at-most-once).
    max_attempts
        Tries per message for failures the channel calls retryable.
    backoff_s
        First wait between tries, doubled each time.
    """

    def __init__(self, store: Any, channel: Channel, *, guarantee: str = "auto",
                 max_attempts: int = 3, backoff_s: float = 0.05) -> None:
        if guarantee not in GUARANTEES:
            raise ValueError(f"guarantee must be one of {GUARANTEES}")
        self.log = DeliveryLog(store)
        self.channel = channel
        if guarantee == "auto":
            guarantee = ("at_least_once" if getattr(channel, "receiver_deduplicates", False)
                         else "at_most_once")
        self.guarantee = guarantee
        self.max_attempts = max_attempts
        self.backoff_s = backoff_s

    def reconcile(self, campaign_id: str | None = None) -> DispatchReport:
        """Settle messages left ``sending`` by a crash (see the module docstring)."""
        report = DispatchReport()
        in_doubt = self.log.rows(campaign_id, status="sending")
        in_doubt = in_doubt[in_doubt["channel"] == self.channel.name]
        for mid in in_doubt["message_id"]:
            if self.guarantee == "at_least_once":
                self._send(self.log.message(mid), report)
                report.resent_in_doubt += 1
            else:
                self.log.set(mid, "unknown", detail="crash between send and log; not re-sent "
                             "(at-most-once)")
                report.unknown += 1
        return report

    def dispatch(self, messages: Iterable[Message], *, run_id: str = "",
                 variants: dict[str, str] | None = None) -> DispatchReport:
        """Queue and send ``messages``; ones already handled are skipped."""
        report = self.reconcile()
        messages = list(messages)
        self.log.add_many(messages, run_id=run_id, variants=variants)
        status = self.log.statuses([m.message_id for m in messages])
        for message in messages:
            if status.get(message.message_id) != "queued":
                report.skipped += 1
                continue
            self._send(message, report)
        return report

    def _send(self, message: Message, report: DispatchReport) -> None:
        attempts = 0
        while True:
            attempts += 1
            self.log.set(message.message_id, "sending", attempts=attempts)
            result = self.channel.send(message)
            attempts += result.attempts - 1
            if result.ok:
                self.log.set(message.message_id, "sent", attempts=attempts)
                report.sent += 1
                return
            if result.retryable and attempts < self.max_attempts:
                self.log.set(message.message_id, "retried", detail=result.error,
                             attempts=attempts)
                report.retried += 1
                time.sleep(self.backoff_s * 2 ** (attempts - 1))
                continue
            self.log.set(message.message_id, "failed", detail=result.error, attempts=attempts)
            report.failed += 1
            key = result.error.split(":")[0][:60] or "error"
            report.errors[key] = report.errors.get(key, 0) + 1
            return
