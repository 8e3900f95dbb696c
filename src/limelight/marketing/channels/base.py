"""What every channel takes and answers: a :class:`Message` in, a :class:`SendResult` out."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from limelight.errors import LimelightError


def message_id(campaign_id: str, user_id: str, run_id: str = "") -> str:
    """Deterministic id of the message a campaign (run) sends one user.

    The same campaign run and user always give the same id, which is what makes sends
    idempotent: a retried or restarted run finds the id in the delivery log.
    """
    key = f"{campaign_id}\x1f{run_id}\x1f{user_id}"
    return "m-" + hashlib.blake2b(key.encode(), digest_size=12).hexdigest()


@dataclass
class Message:
    """One personalised message to one user.

    ``to`` is the channel address (email address, push token, ...); ``payload`` carries
    structured content (items, coupon, links) for webhook and in-app channels.
    """

    message_id: str
    campaign_id: str
    user_id: str
    channel: str
    to: str = ""
    subject: str = ""
    text: str = ""
    html: str = ""
    payload: dict[str, Any] = field(default_factory=dict)


@dataclass
class SendResult:
    """Outcome of one send: ``ok``; when not, whether trying again may help."""

    ok: bool
    attempts: int = 1
    error: str = ""
    retryable: bool = False
    provider_id: str = ""


class ChannelError(LimelightError):
    """A channel could not be set up (bad address, missing secret)."""


@runtime_checkable
class Channel(Protocol):
    """Delivers messages over one protocol."""

    name: str
    #: Whether the receiving end de-duplicates by message id (then a send in doubt after a
    #: crash may be repeated safely: at-least-once; otherwise at-most-once).
    receiver_deduplicates: bool

    def send(self, message: Message) -> SendResult: ...
