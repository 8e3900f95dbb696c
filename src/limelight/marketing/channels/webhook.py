"""Webhook / push over HTTP POST: JSON body, HMAC-SHA256 signature, retries with backoff.

The receiver verifies ``X-Limelight-Signature: sha256=<hex>`` where the digest is
HMAC-SHA256(secret, f"{timestamp}.{body}") and ``X-Limelight-Timestamp`` is the Unix time of
the send (so old requests can be refused; see :func:`verify_signature`). ``Idempotency-Key``
carries the message id: receivers de-duplicate on it, which makes re-sending a message whose
outcome is unknown (a crash mid-send) safe.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time

import httpx

from limelight.marketing.channels.base import ChannelError, Message, SendResult

SIGNATURE_HEADER = "X-Limelight-Signature"
TIMESTAMP_HEADER = "X-Limelight-Timestamp"


def sign(secret: str, timestamp: str, body: bytes) -> str:
    """``sha256=<hex>`` signature of ``body`` sent at ``timestamp``."""
    mac = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    return "sha256=" + mac.hexdigest()


def verify_signature(secret: str, body: bytes, timestamp: str, signature: str, *,
                     tolerance_s: float = 300.0, now: float | None = None) -> bool:
    """Whether ``signature`` is valid for ``body`` and the timestamp is recent enough."""
    try:
        age = abs((now if now is not None else time.time()) - float(timestamp))
    except ValueError:
        return False
    return age <= tolerance_s and hmac.compare_digest(sign(secret, timestamp, body), signature)


class WebhookChannel:
    """POST each message as JSON to ``url``.

    Parameters
    ----------
    url
        Endpoint of the receiving service (push gateway, CRM, app backend).
    secret
        HMAC key shared with the receiver (required).
    max_retries
        Further attempts after a failure that may pass (connection errors, 408, 429, 5xx).
    backoff_s
        First wait; each retry doubles it (exponential backoff), capped at ``max_backoff_s``.

    Examples
    --------
    >>> ch = WebhookChannel("http://127.0.0.1:9/hook", secret="s3cret")
    >>> ch.name
    'webhook'
    """

    name = "webhook"
    receiver_deduplicates = True  # Idempotency-Key: at-least-once is safe

    def __init__(self, url: str, secret: str, *, max_retries: int = 3,
                 backoff_s: float = 0.2, max_backoff_s: float = 10.0,
                 timeout_s: float = 5.0, sleep=time.sleep) -> None:
        if not secret:
            raise ChannelError("a webhook channel needs a secret to sign requests "
                               "(settings.marketing.webhook_secret)")
        self.url, self.secret = url, secret
        self.max_retries, self.backoff_s, self.max_backoff_s = max_retries, backoff_s, \
            max_backoff_s
        self.timeout_s = timeout_s
        self._sleep = sleep
        self._client = httpx.Client(timeout=timeout_s)

    def body(self, message: Message) -> bytes:
        return json.dumps({
            "message_id": message.message_id, "campaign_id": message.campaign_id,
            "user_id": message.user_id, "to": message.to, "title": message.subject,
            "text": message.text, "payload": message.payload,
        }, sort_keys=True, default=str).encode()

    def send(self, message: Message) -> SendResult:
        body = self.body(message)
        error = ""
        for attempt in range(1, self.max_retries + 2):
            timestamp = str(int(time.time()))
            headers = {"Content-Type": "application/json", TIMESTAMP_HEADER: timestamp,
                       SIGNATURE_HEADER: sign(self.secret, timestamp, body),
                       "Idempotency-Key": message.message_id}
            try:
                resp = self._client.post(self.url, content=body, headers=headers)
            except httpx.HTTPError as exc:
                error, retryable = f"{type(exc).__name__}: {exc}", True
            else:
                if resp.status_code < 300:
                    return SendResult(True, attempts=attempt, provider_id=message.message_id)
                error = f"HTTP {resp.status_code}: {resp.text[:200]}"
                retryable = resp.status_code in (408, 425, 429) or resp.status_code >= 500
            if not retryable:
                return SendResult(False, attempts=attempt, error=error)
            if attempt <= self.max_retries:
                self._sleep(min(self.max_backoff_s, self.backoff_s * 2 ** (attempt - 1)))
        return SendResult(False, attempts=self.max_retries + 1, error=error, retryable=True)

    def close(self) -> None:
        self._client.close()
