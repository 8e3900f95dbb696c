"""Email over SMTP (smtplib): multipart text + HTML, ids in headers for attribution."""

from __future__ import annotations

import contextlib
import smtplib
from email.message import EmailMessage
from email.utils import formatdate, make_msgid

from limelight.marketing.channels.base import Message, SendResult


class SMTPChannel:
    """Send email through an SMTP server.

    Parameters
    ----------
    host, port
        The SMTP server (a relay or a local MTA).
    sender
        The From address.
    starttls, username, password
        Optional STARTTLS upgrade and login.
    unsubscribe_url
        Base URL for the List-Unsubscribe header (``?m=<message id>`` is appended).

    Examples
    --------
    >>> ch = SMTPChannel("127.0.0.1", 8025, "shop@example.test")
    >>> ch.name
    'email'
    """

    name = "email"
    receiver_deduplicates = False  # mailboxes show a second copy: at-most-once

    def __init__(self, host: str = "127.0.0.1", port: int = 25,
                 sender: str = "limelight@localhost", *, timeout: float = 10.0,
                 starttls: bool = False, username: str | None = None,
                 password: str | None = None, unsubscribe_url: str | None = None) -> None:
        self.host, self.port, self.sender = host, port, sender
        self.timeout, self.starttls = timeout, starttls
        self.username, self.password = username, password
        self.unsubscribe_url = unsubscribe_url
        self._smtp: smtplib.SMTP | None = None

    def build(self, message: Message) -> EmailMessage:
        """The MIME message for ``message`` (exposed for previews and tests)."""
        mail = EmailMessage()
        mail["From"] = self.sender
        mail["To"] = message.to
        mail["Subject"] = message.subject
        mail["Date"] = formatdate(localtime=False)
        mail["Message-ID"] = make_msgid(idstring=message.message_id, domain="limelight")
        mail["X-Limelight-Message-Id"] = message.message_id
        mail["X-Limelight-Campaign-Id"] = message.campaign_id
        if self.unsubscribe_url:
            mail["List-Unsubscribe"] = f"<{self.unsubscribe_url}?m={message.message_id}>"
        mail.set_content(message.text or " ")
        if message.html:
            mail.add_alternative(message.html, subtype="html")
        return mail

    def _connection(self) -> smtplib.SMTP:
        if self._smtp is None:
            smtp = smtplib.SMTP(self.host, self.port, timeout=self.timeout)
            if self.starttls:
                smtp.starttls()
            if self.username:
                smtp.login(self.username, self.password or "")
            self._smtp = smtp
        return self._smtp

    def send(self, message: Message) -> SendResult:
        """Deliver one message; connection problems and 4xx replies are retryable."""
        if not message.to or "@" not in message.to:
            return SendResult(False, error=f"no valid email address for {message.user_id}")
        try:
            refused = self._connection().send_message(self.build(message))
        except smtplib.SMTPRecipientsRefused as exc:
            return SendResult(False, error=f"recipient refused: {exc.recipients}")
        except smtplib.SMTPResponseException as exc:
            self.close()
            return SendResult(False, error=f"SMTP {exc.smtp_code}: {exc.smtp_error!r}",
                              retryable=400 <= exc.smtp_code < 500)
        except (TimeoutError, smtplib.SMTPException, OSError) as exc:
            self.close()
            return SendResult(False, error=f"SMTP connection failed: {exc}", retryable=True)
        if refused:
            return SendResult(False, error=f"refused: {refused}")
        return SendResult(True, provider_id=message.message_id)

    def close(self) -> None:
        """Close the kept-alive connection (sends reopen it)."""
        if self._smtp is not None:
            with contextlib.suppress(smtplib.SMTPException, OSError):
                self._smtp.quit()
            self._smtp = None
