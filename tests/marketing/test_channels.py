"""Channels over real protocols: SMTP to a local aiosmtpd, webhooks to a local HTTP server."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import ClassVar

import pytest

from limelight.marketing.channels.base import ChannelError, Message, message_id
from limelight.marketing.channels.email import SMTPChannel
from limelight.marketing.channels.inapp import InAppChannel, inbox, mark_read
from limelight.marketing.channels.webhook import (
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    WebhookChannel,
    verify_signature,
)
from limelight.store import open_store

SECRET = "test-secret"


def msg(user: str = "u1", channel: str = "email", to: str = "u1@example.test") -> Message:
    return Message(message_id("c1", user), "c1", user, channel, to=to, subject="Hello",
                   text="plain body", html="<p>html body</p>", payload={"items": ["i1"]})


def test_message_ids_are_deterministic() -> None:
    assert message_id("c", "u") == message_id("c", "u")
    assert message_id("c", "u") != message_id("c", "u", run_id="2")
    assert message_id("c", "u") != message_id("c2", "u")


def test_smtp_delivers_multipart_with_ids(smtp_server) -> None:
    host, port, sink = smtp_server
    ch = SMTPChannel(host, port, "shop@example.test", unsubscribe_url="http://127.0.0.1/u")
    m = msg()
    assert ch.send(m).ok
    assert not ch.send(msg(to="")).ok  # no address: a failure, not an exception
    ch.close()
    assert len(sink.messages) == 1
    got = sink.messages[0]
    assert got["To"] == "u1@example.test" and got["Subject"] == "Hello"
    assert got["X-Limelight-Message-Id"] == m.message_id
    assert got["X-Limelight-Campaign-Id"] == "c1"
    assert m.message_id in got["List-Unsubscribe"]
    assert "html body" in got.get_body(("html",)).get_content()
    assert "plain body" in got.get_body(("plain",)).get_content()


def test_smtp_connection_refused_is_retryable() -> None:
    from .conftest import free_port

    result = SMTPChannel("127.0.0.1", free_port(), timeout=2).send(msg())
    assert not result.ok and result.retryable


class _Hook(BaseHTTPRequestHandler):
    fail_first = 0
    status_on_fail = 503
    received: ClassVar[list] = []
    calls = 0
    lock = threading.Lock()

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        with self.lock:
            type(self).calls += 1
            failing = type(self).calls <= self.fail_first
        if failing:
            self.send_response(self.status_on_fail)
            self.end_headers()
            return
        ok = verify_signature(SECRET, body, self.headers[TIMESTAMP_HEADER],
                              self.headers[SIGNATURE_HEADER])
        self.received.append({"body": json.loads(body), "valid": ok,
                              "key": self.headers["Idempotency-Key"]})
        self.send_response(200 if ok else 401)
        self.end_headers()

    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def hook_server():
    def start(fail_first: int = 0, status: int = 503):
        handler = type("Hook", (_Hook,), {"fail_first": fail_first, "status_on_fail": status,
                                          "received": [], "calls": 0})
        server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return f"http://127.0.0.1:{server.server_port}/hook", handler

    servers: list = []
    yield start
    for s in servers:
        s.shutdown()
        s.server_close()


def test_webhook_signs_and_retries_with_backoff(hook_server) -> None:
    url, handler = hook_server(fail_first=2)
    waits: list[float] = []
    ch = WebhookChannel(url, SECRET, max_retries=3, backoff_s=0.01, sleep=waits.append)
    result = ch.send(msg(channel="webhook"))
    assert result.ok and result.attempts == 3
    assert waits == [0.01, 0.02]  # exponential
    assert handler.calls == 3
    assert handler.received[0]["valid"] and handler.received[0]["key"] == msg().message_id
    assert handler.received[0]["body"]["payload"] == {"items": ["i1"]}


def test_webhook_gives_up_and_does_not_retry_client_errors(hook_server) -> None:
    url, _handler = hook_server(fail_first=10)
    result = WebhookChannel(url, SECRET, max_retries=2, backoff_s=0.0).send(msg())
    assert not result.ok and result.attempts == 3 and result.retryable
    url4, handler4 = hook_server(fail_first=10, status=400)
    result = WebhookChannel(url4, SECRET, max_retries=2, backoff_s=0.0).send(msg())
    assert not result.ok and result.attempts == 1 and handler4.calls == 1
    with pytest.raises(ChannelError):
        WebhookChannel(url, "")


def test_signature_verification() -> None:
    from limelight.marketing.channels.webhook import sign

    sig = sign(SECRET, "1000", b"{}")
    assert verify_signature(SECRET, b"{}", "1000", sig, now=1000)
    assert not verify_signature(SECRET, b"{ }", "1000", sig, now=1000)
    assert not verify_signature("other", b"{}", "1000", sig, now=1000)
    assert not verify_signature(SECRET, b"{}", "1000", sig, now=5000)  # too old


def test_inapp_inbox_is_idempotent() -> None:
    store = open_store("memory://")
    ch = InAppChannel(store)
    m = msg(channel="inapp", to="")
    assert ch.send(m).ok and ch.send(m).ok
    box = inbox(store, "u1")
    assert len(box) == 1 and box[0]["payload"] == {"items": ["i1"]}
    assert mark_read(store, "u1", m.message_id)
    assert inbox(store, "u1", unread_only=True) == []
    assert not mark_read(store, "u2", m.message_id)
    store.close()


def test_webhook_campaign_end_to_end(shop_store, hook_server) -> None:
    from limelight.marketing.audiences import Audience
    from limelight.marketing.campaigns import CampaignManager, CampaignSpec

    url, handler = hook_server(fail_first=1)  # the first POST fails and is retried
    mgr = CampaignManager(
        shop_store, recommend=lambda u, n: ["i0", "i4"],
        channel_factory=lambda name, spec: WebhookChannel(spec.webhook_url, SECRET,
                                                          backoff_s=0.0))
    cid = mgr.create(CampaignSpec("hook", audience=Audience.from_users(
        ["u1", "u2", "u3", "u4"]).to_dict(), channel="webhook", webhook_url=url,
        holdout=0.0, schedule={"quiet_hours": None}, frequency_cap=0))
    report = mgr.launch(cid)
    # u4 has no push consent (every fourth user): policies apply to webhooks too.
    assert report.audience["removed"]["no_consent"] == 1
    assert report.dispatch["sent"] == 3 and handler.calls == 4
    got = sorted(r["body"]["user_id"] for r in handler.received)
    assert got == ["u1", "u2", "u3"] and all(r["valid"] for r in handler.received)
    # The recommender's two items first, then a popular in-stock item fills n_items=3.
    items = handler.received[0]["body"]["payload"]["items"]
    assert items[:2] == ["i0", "i4"] and len(items) == 3
