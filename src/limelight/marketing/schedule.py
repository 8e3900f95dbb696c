"""When a campaign runs: now, at a time, or every N days; never in the user's quiet hours."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import pandas as pd

from limelight.errors import LimelightError

KINDS = ("now", "at", "recurring")


class ScheduleError(LimelightError):
    """A schedule is malformed (unknown kind, missing time, bad quiet hours)."""


def _zone(tz: str | None) -> ZoneInfo:
    try:
        return ZoneInfo(tz) if tz else ZoneInfo("UTC")
    except (ZoneInfoNotFoundError, ValueError):
        # Unknown zone names fall back to UTC rather than blocking the message.
        return ZoneInfo("UTC")


def in_quiet_hours(moment: datetime, tz: str | None, quiet: tuple[int, int] | None) -> bool:
    """Whether ``moment`` falls in the quiet window ``[start, end)`` (local hours, may wrap)."""
    if not quiet or quiet[0] == quiet[1]:
        return False
    hour = moment.astimezone(_zone(tz)).hour
    start, end = quiet
    return start <= hour < end if start < end else hour >= start or hour < end


def next_allowed(moment: datetime, tz: str | None, quiet: tuple[int, int] | None) -> datetime:
    """The first moment at or after ``moment`` outside the quiet window (UTC)."""
    if not in_quiet_hours(moment, tz, quiet):
        return moment
    local = moment.astimezone(_zone(tz))
    end = quiet[1]  # type: ignore[index]
    candidate = local.replace(hour=end, minute=0, second=0, microsecond=0)
    if candidate <= local:
        candidate += timedelta(days=1)
    return candidate.astimezone(moment.tzinfo)


@dataclass(frozen=True)
class Schedule:
    """Parameters
    ----------
    kind
        ``now``, ``at`` (one run at ``at``) or ``recurring`` (first at ``at`` or now, then
        every ``every_days``).
    quiet_hours
        Local (start, end) hours when nothing is sent, e.g. (21, 8); None = never quiet.
    """

    kind: str = "now"
    at: datetime | None = None
    every_days: float | None = None
    quiet_hours: tuple[int, int] | None = (21, 8)

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ScheduleError(f"schedule kind must be one of {KINDS}, got {self.kind!r}")
        if self.kind == "at" and self.at is None:
            raise ScheduleError("an 'at' schedule needs a time (at=...)")
        if self.kind == "recurring" and not (self.every_days and self.every_days > 0):
            raise ScheduleError("a recurring schedule needs every_days > 0")
        if self.quiet_hours is not None:
            q = tuple(self.quiet_hours)
            if len(q) != 2 or not all(0 <= h <= 23 for h in q):
                raise ScheduleError("quiet_hours must be two hours in 0..23, e.g. [21, 8]")
            object.__setattr__(self, "quiet_hours", (int(q[0]), int(q[1])))
        if self.at is not None and self.at.tzinfo is None:
            raise ScheduleError("schedule times must carry a timezone (e.g. ...+00:00)")

    def due(self, now: datetime, last_run: datetime | None) -> bool:
        """Whether a run should start at ``now`` given the previous run."""
        if self.kind == "now":
            return last_run is None
        if self.kind == "at":
            return last_run is None and now >= self.at  # type: ignore[operator]
        first = self.at or now
        if last_run is None:
            return now >= first
        return now >= last_run + timedelta(days=self.every_days)  # type: ignore[arg-type]

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "at": self.at.isoformat() if self.at else None,
                "every_days": self.every_days,
                "quiet_hours": list(self.quiet_hours) if self.quiet_hours else None}

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> Schedule:
        data = dict(data or {})
        if data.get("at"):
            data["at"] = pd.Timestamp(data["at"]).to_pydatetime()
        if data.get("quiet_hours") is not None:
            data["quiet_hours"] = tuple(data["quiet_hours"])
        return cls(**data)
