"""Delivery log and idempotent sends, including a crash between send and log."""

from __future__ import annotations

import pytest

from limelight.marketing.channels.base import Message, SendResult, message_id
from limelight.marketing.channels.email import SMTPChannel
from limelight.marketing.channels.inapp import InAppChannel, inbox
from limelight.marketing.delivery import DeliveryLog, Dispatcher
from limelight.store import open_store


class SimulatedCrash(BaseException):
    """Stands for the process dying (kill -9): nothing after it runs."""


class CrashAfterSend:
    """Wraps a real channel; the n-th send really goes out, then the process 'dies'."""

    def __init__(self, inner, crash_on: int) -> None:
        self.inner, self.crash_on, self.calls = inner, crash_on, 0
        self.name = inner.name
        self.receiver_deduplicates = inner.receiver_deduplicates

    def send(self, message: Message) -> SendResult:
        self.calls += 1
        result = self.inner.send(message)
        if self.calls == self.crash_on:
            raise SimulatedCrash
        return result


def emails(n: int, campaign: str = "c1") -> list[Message]:
    return [Message(message_id(campaign, f"u{i}"), campaign, f"u{i}", "email",
                    to=f"u{i}@example.test", subject=f"hi u{i}", text="x") for i in range(n)]


@pytest.fixture
def store():
    s = open_store("memory://")
    yield s
    s.close()


def test_crash_between_send_and_log_never_sends_twice(store, smtp_server) -> None:
    host, port, sink = smtp_server
    batch = emails(10)
    crashing = Dispatcher(store, CrashAfterSend(SMTPChannel(host, port), crash_on=4))
    with pytest.raises(SimulatedCrash):
        crashing.dispatch(batch)
    assert len(sink.messages) == 4  # the 4th went out, but its 'sent' was never written
    log = DeliveryLog(store)
    assert log.status(batch[3].message_id) == "sending"
    # Restart: a fresh dispatcher over the same store re-runs the whole campaign.
    restarted = Dispatcher(store, SMTPChannel(host, port))
    assert restarted.guarantee == "at_most_once"
    report = restarted.dispatch(batch)
    assert report.unknown == 1 and report.skipped == 4 and report.sent == 6
    assert log.status(batch[3].message_id) == "unknown"
    # ... and once more: nothing new.
    again = Dispatcher(store, SMTPChannel(host, port)).dispatch(batch)
    assert again.sent == 0 and again.skipped == 10
    recipients = [m["To"] for m in sink.messages]
    assert len(recipients) == 10 and len(set(recipients)) == 10  # each exactly once
    assert log.history(batch[0].message_id) == ["queued", "sending", "sent"]
    assert log.counts("c1") == {"sent": 9, "unknown": 1}


def test_at_least_once_resends_in_doubt_to_deduplicating_receiver(store) -> None:
    ch = InAppChannel(store)
    batch = [Message(message_id("c2", f"u{i}"), "c2", f"u{i}", "inapp", subject="s", text="t")
             for i in range(3)]
    with pytest.raises(SimulatedCrash):
        Dispatcher(store, CrashAfterSend(ch, crash_on=2)).dispatch(batch)
    report = Dispatcher(store, ch).dispatch(batch)
    # u1 (in doubt) is re-sent during reconcile, u2 for the first time; u0 and u1 skipped.
    assert report.resent_in_doubt == 1 and report.sent == 2 and report.skipped == 2
    assert all(len(inbox(store, f"u{i}")) == 1 for i in range(3))
    assert DeliveryLog(store).counts("c2") == {"sent": 3}


class Flaky:
    name = "email"
    receiver_deduplicates = False

    def __init__(self, failures: int, retryable: bool = True) -> None:
        self.failures, self.retryable, self.calls = failures, retryable, 0

    def send(self, message: Message) -> SendResult:
        self.calls += 1
        if self.calls <= self.failures:
            return SendResult(False, error="451: try later", retryable=self.retryable)
        return SendResult(True)


def test_retries_are_logged_and_failures_final(store) -> None:
    m1, m2 = emails(2, "c3")
    r1 = Dispatcher(store, Flaky(2), backoff_s=0).dispatch([m1])
    assert r1.sent == 1 and r1.retried == 2
    log = DeliveryLog(store)
    assert log.history(m1.message_id) == ["queued", "sending", "retried", "sending", "retried",
                                          "sending", "sent"]
    r2 = Dispatcher(store, Flaky(5, retryable=False), backoff_s=0).dispatch([m2])
    assert r2.failed == 1 and r2.errors == {"451": 1}
    assert log.status(m2.message_id) == "failed"
    rows = log.rows("c3")
    assert rows.set_index("message_id").loc[m1.message_id, "attempts"] == 3
