"""Channels built from settings, by name (what campaigns use unless given a factory)."""

from __future__ import annotations

from typing import Any

from limelight.marketing.channels.base import Channel, ChannelError


def default_channel(name: str, spec: Any, store: Any = None) -> Channel:
    """Channels configured from settings (SMTP host/port/sender, webhook secret)."""
    from limelight.settings import get_settings

    if name == "inapp":
        from limelight.marketing.channels.inapp import InAppChannel

        return InAppChannel(store)
    cfg = get_settings().marketing
    if name == "email":
        from limelight.marketing.channels.email import SMTPChannel

        return SMTPChannel(cfg.smtp_host, cfg.smtp_port, cfg.smtp_sender,
                           unsubscribe_url=spec.tracking_base_url.rstrip("/") + "/t/unsubscribe")
    if name in ("webhook", "push"):
        from limelight.marketing.channels.webhook import WebhookChannel

        if not spec.webhook_url:
            raise ChannelError(f"a {name} campaign needs webhook_url")
        channel = WebhookChannel(spec.webhook_url, cfg.webhook_secret)
        channel.name = name  # type: ignore[misc]
        return channel
    raise ChannelError(f"no default channel for {name!r}")


def close_channel(channel: Any) -> None:
    """Close a channel's connections when it has any."""
    close = getattr(channel, "close", None)
    if callable(close):
        close()
