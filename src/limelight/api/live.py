"""Live events: applying one event ahead of its store write, and the rows an ingest accepted."""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from limelight.settings import Settings

if TYPE_CHECKING:
    from limelight.api.state import Snapshot

#: Feedback event types; ``hide`` is registered by the state module (it names an item).
FEEDBACK_TYPES = ("not_interested", "hide")
EVENT_COLUMNS = ["event_id", "user_id", "item_id", "type", "value", "timestamp", "review_text"]


@dataclass
class Provisional:
    """An event applied to a snapshot's history ahead of its store write."""

    snapshot: Snapshot
    user_id: str
    item_idx: int
    type: str

    def undo(self) -> None:
        self.snapshot.histories.remove_last(self.user_id, self.item_idx, self.type)


def precheck(record: Any, settings: Settings) -> tuple[str, str, str, float | None] | None:
    """(user, item, type, value) when ``record`` passes ingest's checks for an item event
    that counts in the history; None when in doubt (ingest then decides alone)."""
    if not isinstance(record, dict):
        return None
    from limelight.data.schema import EVENT_TYPES

    user, item, kind = record.get("user_id"), record.get("item_id"), record.get("type")
    if not isinstance(user, str | int) or not isinstance(item, str | int) or \
            not isinstance(kind, str):
        return None
    user, item, kind = str(user).strip(), str(item).strip(), kind.strip().lower()
    if not user or not item or kind not in EVENT_TYPES or kind in FEEDBACK_TYPES:
        return None
    value = record.get("value")
    if value is not None:
        if isinstance(value, bool) or not isinstance(value, int | float) or value != value:
            return None
        value = float(value)
    stamp = epoch_seconds(record.get("timestamp"))
    if stamp is None:
        return None
    try:
        low = datetime.fromisoformat(settings.ingest.min_timestamp).replace(tzinfo=UTC)
    except ValueError:
        return None
    if not low.timestamp() <= stamp <= time.time() + settings.ingest.max_future_seconds:
        return None
    return user, item, kind, value


def epoch_seconds(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value) if 1e8 < value < 1e10 else None  # plain epoch seconds only
    if not isinstance(value, str):
        return None
    try:
        stamp = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        return None
    if stamp.tzinfo is None:
        stamp = stamp.replace(tzinfo=UTC)
    return stamp.timestamp()




def accepted_rows(records: list[Any], report: Any, settings: Settings, store: Any
                  ) -> list[dict[str, Any]]:
    """The accepted events of an ingest, in request order.

    Without duplicates every row that was not rejected was stored, so the rows come from
    the request itself (normalised as ingest does: trimmed ids, lower-case type); with
    duplicates, or pseudonymized ids, they are read back from the store by event id.
    """
    rejected = {int(line) - 1 for line, _ in report.rejections}
    complete = len(report.rejections) == report.rejected
    if report.duplicates == 0 and complete and not settings.ingest.pseudonymize:
        rows = []
        for k, record in enumerate(records):
            if k in rejected or not isinstance(record, dict):
                continue
            value = record.get("value")
            try:
                value = None if value is None else float(value)
            except (TypeError, ValueError):
                value = None
            rows.append({"user_id": str(record["user_id"]).strip(),
                         "item_id": _str(record.get("item_id")),
                         "type": str(record["type"]).strip().lower(), "value": value,
                         "timestamp": record.get("timestamp"),
                         "review_text": _str(record.get("review_text"))})
        if len(rows) == report.accepted:
            for row in rows:
                if row["item_id"] is not None:
                    row["item_id"] = row["item_id"].strip()
            return rows
    frame = store.read_events_by_id(report.accepted_event_ids, EVENT_COLUMNS)
    return frame.sort_values("timestamp", kind="stable").to_dict("records")


def _str(value: Any) -> str | None:
    if value is None or (isinstance(value, float) and value != value):
        return None
    return str(value)


def smoke_test(snapshot: Snapshot) -> None:
    """Answer one request per scoring path before a version is swapped in: a model that
    cannot score (e.g. an artifact from an incompatible release) is refused at load time,
    so the previous version keeps serving instead of requests failing."""
    from limelight.errors import ArtifactError
    from limelight.pipeline.context import RecRequest, UserContext

    histories = snapshot.histories
    try:
        if len(snapshot.model_users):
            known = str(snapshot.model_users.ids[0])
            user = UserContext(known, 0, histories.get(known))
            snapshot.pipeline.recommend(user, RecRequest(n=3, diversity=0.3, explain=True))
        if snapshot.catalog.n_items:
            item = int(snapshot.catalog.items.get(str(snapshot.catalog.items.ids[0])))
            from limelight.pipeline.history import HistoryIndex

            probe = HistoryIndex(event_weights={"view": 1.0})
            probe.append("probe", item, "view")
            snapshot.pipeline.recommend(UserContext("probe", -1, probe.get("probe")),
                                        RecRequest(n=3))
            snapshot.pipeline.similar(item, 3)
    except Exception as exc:
        raise ArtifactError(f"version {snapshot.version} cannot serve requests "
                            f"({type(exc).__name__}: {exc}); retrain it with this release") from exc
