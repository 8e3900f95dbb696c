"""Live serving state: the active model version, users' histories, feedback and profiles.

A :class:`Snapshot` bundles everything derived from one model version (the pipeline, the
catalogue, histories loaded from the store); requests read ``state.snapshot`` once and use that
object throughout, so a version switch never mixes two versions inside a request. A watcher
thread polls the artifact store's active pointer; when it changes, the new version is loaded in
the background and the reference is swapped atomically (no request is dropped or blocked).

Every accepted event is written through to the store and applied to the in-memory histories
under one lock, and a rebuild reads the store under the same lock and replays the events that
arrived while it was building, so no event is lost or counted twice across a switch.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from limelight.api.live import (
    EVENT_COLUMNS,
    FEEDBACK_TYPES,
    Provisional,
    accepted_rows,
    precheck,
    smoke_test,
)
from limelight.api.periodic import Periodic
from limelight.api.profiles import ProfileState
from limelight.data.schema import register_event_type
from limelight.data.vocab import IdVocab
from limelight.errors import ArtifactError
from limelight.pipeline.builder import RecommendationPipeline, build_pipeline
from limelight.pipeline.candidates import GroupPopularity, user_groups
from limelight.pipeline.catalog import ItemCatalog, build_catalog
from limelight.pipeline.context import UserContext
from limelight.pipeline.exposure import ExposureCounter
from limelight.pipeline.history import HistoryIndex
from limelight.settings import Settings
from limelight.store.artifacts import ACTIVE_FILE, ArtifactStore
from limelight.store.base import EventStore

log = logging.getLogger(__name__)

#: A category-level "not interested" is stored with this prefix in the event's text field.
CATEGORY_PREFIX = "category:"
USER_ATTRIBUTES = ("age", "gender", "country", "region")
#: Longest a loaded version spends filling its candidate cache in the background (seconds).
WARM_BUDGET_S = 300.0

register_event_type("hide", needs_item=True)


@dataclass
class Snapshot:
    """Everything derived from one model version."""

    version: str
    name: str
    metadata: dict[str, Any]
    pipeline: RecommendationPipeline
    catalog: ItemCatalog
    histories: HistoryIndex
    popularity: GroupPopularity
    model_users: IdVocab
    loaded_at: float = field(default_factory=time.time)


@dataclass
class Feedback:
    """Explicit negative feedback of users (by external ids; survives version switches)."""

    hidden: dict[str, set[str]] = field(default_factory=dict)
    blocked_categories: dict[str, set[str]] = field(default_factory=dict)

    def apply(self, user_id: str, type_: str, item_id: str | None, text: str | None) -> bool:
        """Record one feedback event; False when it is not feedback."""
        if type_ not in FEEDBACK_TYPES:
            return False
        if item_id:
            self.hidden.setdefault(user_id, set()).add(item_id)
        elif text and text.startswith(CATEGORY_PREFIX):
            self.blocked_categories.setdefault(user_id, set()).add(
                text.removeprefix(CATEGORY_PREFIX))
        return True


class ServingState(ProfileState):
    """The state behind one API app.

    Parameters
    ----------
    settings
        Settings (serve section, dataset event weights).
    store
        The event store events are written through to.
    artifacts_dir
        Root of the :class:`~limelight.store.artifacts.ArtifactStore` to serve from.
    """

    def __init__(self, settings: Settings, store: EventStore, artifacts_dir: str | Path) -> None:
        self.settings = settings
        self.store = store
        self.artifacts = ArtifactStore(artifacts_dir)
        self.snapshot: Snapshot | None = None
        self.load_error: str | None = None
        self.feedback = Feedback()
        self.attributes: dict[str, dict[str, Any]] = {}
        self.exposure = ExposureCounter()
        self.write_lock = threading.RLock()  # store write + in-memory apply are one step
        self._pending: list[dict[str, Any]] | None = None
        self._reload_lock = threading.Lock()
        self._watcher: Periodic | None = None
        self._stopping = threading.Event()  # set at shutdown: background warming ends
        self._pointer_mtime: float | None = None
        self.on_swap: list[Any] = []  # callbacks(snapshot) run after a switch
        # fill each loaded version's per-user candidate cache in the background
        self.warm_candidates = True
        self.candidates_status = "off"  # off, warming, ready or failed
        # versions other than the active one that serving experiments answer with
        self.variant_snapshots: dict[str, Snapshot] = {}
        self.experiments: Any = None  # ServingExperiments, set up when the app starts
        self._init_profiles()
        self._recent_ids: set[str] = set()  # event ids accepted lately (duplicate hint)
        from limelight.privacy.pseudonymize import pseudonymizer_from_settings

        # with pseudonymized ingest the store only knows HMACs of user ids: callers still
        # speak raw ids, mapped here at the edge
        self._pseudonymizer = pseudonymizer_from_settings(settings)

    # -- loading -------------------------------------------------------------------------------
    def load_active(self) -> Snapshot | None:
        """Load the active version and swap it in; keeps the current one on failure."""
        with self._reload_lock:
            self._pointer_mtime = self._mtime()
            version = self.artifacts.active_version()
            if version is None:
                self.load_error = ("no active model: train one with `limelight train` "
                                   "(or activate one with `limelight models activate`)")
                return self.snapshot
            if self.snapshot is not None and self.snapshot.version == version:
                self.load_error = None
                return self.snapshot
            try:
                snapshot = self._build(version)
            except Exception as exc:  # a broken artifact must not take the server down
                log.exception("cannot load model version %s", version)
                self.load_error = f"cannot load model version {version}: {exc}"
                return self.snapshot
            self.load_error = None
            return snapshot

    def _build(self, version: str) -> Snapshot:
        artifact = self.artifacts.load(version)
        model = artifact.model
        with self.write_lock:
            # events written from here on are replayed onto the new snapshot (see module doc)
            events = self.store.read("events", columns=EVENT_COLUMNS)
            self._pending = []
        try:
            items = self.store.read("items")
            users = self.store.read("users", columns=["user_id", *USER_ATTRIBUTES])
            snapshot = self._assemble(version, artifact.metadata, model, artifact.users,
                                      artifact.items, events, items, users)
        except BaseException:
            with self.write_lock:
                self._pending = None
            raise
        with self.write_lock:
            pending, self._pending = self._pending or [], None
            self._apply_to(snapshot, pending, learn_profiles=False)
            self.snapshot = snapshot
        self._start_warming(snapshot)
        for callback in self.on_swap:
            callback(snapshot)
        return snapshot

    def _assemble(self, version: str, metadata: dict[str, Any], model: Any, model_users: IdVocab,
                  model_items: IdVocab, events: pd.DataFrame, items: pd.DataFrame,
                  users: pd.DataFrame) -> Snapshot:
        popularity_counts = np.asarray(model.user_items_.getnnz(axis=0), dtype=np.float32)
        catalog = build_catalog(model_items, items, popularity_counts,
                                random_state=self.settings.random_state)
        weights = self.settings.dataset.event_weights
        histories = HistoryIndex.from_events(events, catalog.items, event_weights=weights)
        self.attributes = _attributes(users)
        feedback = Feedback()
        fb = events[events["type"].isin(FEEDBACK_TYPES)]
        for row in fb.itertuples(index=False):
            feedback.apply(str(row.user_id), row.type, _str(row.item_id), _str(row.review_text))
        self.feedback = feedback
        self._load_segments()
        groups = {u: user_groups(a, self.segment_of(u)) for u, a in self.attributes.items()}
        popularity = GroupPopularity.from_histories(histories, catalog.n_items, groups)
        serve = self.settings.serve
        cache_users = (serve.candidate_cache_users
                       if catalog.n_items >= serve.candidate_cache_min_items else 0)
        pipeline = build_pipeline(model, catalog, histories, popularity,
                                  boost_items=serve.boost_items, bury_items=serve.bury_items,
                                  random_state=self.settings.random_state,
                                  cache_users=cache_users)
        snapshot = Snapshot(version=version,
                            name=str(metadata.get("name", type(model).__name__)),
                            metadata=metadata, pipeline=pipeline, catalog=catalog,
                            histories=histories, popularity=popularity, model_users=model_users)
        smoke_test(snapshot)
        return snapshot

    def _start_warming(self, snapshot: Snapshot) -> None:
        """Fill the new version's candidate cache for its users, most active first, in a
        daemon thread (requests are answered meanwhile: a user not warmed yet is scored
        exactly, as on any cache miss)."""
        if not self.warm_candidates or snapshot.pipeline.cache.max_users <= 0:
            self.candidates_status = "off"
            return
        self.candidates_status = "warming"

        def warm() -> None:
            try:
                histories = snapshot.histories
                users = [u for u in snapshot.model_users.ids.tolist() if u in histories]
                users.sort(key=lambda u: -len(histories.get(u).items))
                limit = snapshot.pipeline.cache.max_users
                # a slow model (deep sequence models) warms its most active users only
                deadline = time.monotonic() + WARM_BUDGET_S
                for user_id in users[:limit]:
                    if self.snapshot is not snapshot or self._stopping.is_set():
                        return  # replaced or shutting down: the next version warms itself
                    if time.monotonic() > deadline:
                        break
                    user = UserContext(user_id, snapshot.model_users.get(user_id),
                                       histories.get(user_id))
                    snapshot.pipeline.warm(user)
                if self.snapshot is snapshot:
                    self.candidates_status = "ready"
            except Exception:  # warming is an optimisation: serving goes on without it
                log.exception("candidate cache warming failed")
                self.candidates_status = "failed"

        threading.Thread(target=warm, name="limelight-candidates", daemon=True).start()

    def variant_snapshot(self, version: str) -> Snapshot:
        """The snapshot of ``version`` for a serving experiment (the active one when it is
        active; else loaded once and kept up to date with live events like the active one)."""
        snapshot = self.snapshot
        if snapshot is not None and snapshot.version == version:
            return snapshot
        found = self.variant_snapshots.get(version)
        if found is not None:
            return found
        with self._reload_lock:
            found = self.variant_snapshots.get(version)
            if found is not None:
                return found
            artifact = self.artifacts.load(version)
            # under the write lock: no event can slip between the store read and the swap-in
            with self.write_lock:
                events = self.store.read("events", columns=EVENT_COLUMNS)
                items = self.store.read("items")
                users = self.store.read("users", columns=["user_id", *USER_ATTRIBUTES])
                found = self._assemble(version, artifact.metadata, artifact.model,
                                       artifact.users, artifact.items, events, items, users)
                self.variant_snapshots[version] = found
        return found

    def key(self, user_id: str) -> str:
        """The id the store knows a user by (their pseudonym when ingest pseudonymizes)."""
        if self._pseudonymizer is None:
            return user_id
        return self._pseudonymizer(user_id.strip())

    # -- watching the active pointer ------------------------------------------------------------
    def _mtime(self) -> float | None:
        try:
            return (self.artifacts.root / ACTIVE_FILE).stat().st_mtime_ns / 1e9
        except OSError:
            return None

    def check_for_switch(self) -> bool:
        """Reload when the active pointer changed since the last look; True on a switch."""
        mtime = self._mtime()
        if mtime == self._pointer_mtime:
            return False
        before = self.snapshot.version if self.snapshot else None
        self.load_active()
        return (self.snapshot.version if self.snapshot else None) != before

    def start_watcher(self, interval: float = 1.0) -> None:
        """Poll the active pointer every ``interval`` seconds in a daemon thread."""
        self._stopping.clear()
        if self._watcher is None:
            self._watcher = Periodic("limelight-model-watcher", interval, self.check_for_switch)
            self._watcher.start()

    def stop_watcher(self) -> None:
        """Stop polling (and any background warming: the server is shutting down)."""
        self._stopping.set()
        if self._watcher is not None:
            self._watcher.stop()
            self._watcher = None

    def activate(self, version: str) -> Snapshot | None:
        """Make ``version`` active and serve it now."""
        self.artifacts.activate(version)
        return self.load_active()

    def rollback(self) -> Snapshot | None:
        self.artifacts.rollback()
        return self.load_active()

    # -- events ----------------------------------------------------------------------------------
    def apply_events(self, events: Iterable[Mapping[str, Any]],
                     provisional: Provisional | None = None) -> None:
        """Fold accepted events into histories, feedback and profiles.

        Call with :attr:`write_lock` held together with the store write. An event already
        applied provisionally to the current snapshot is not appended twice.
        """
        events = [dict(e) for e in events]
        snapshot = self.snapshot
        if snapshot is not None:
            skip = provisional is not None and provisional.snapshot is snapshot
            self._apply_to(snapshot, events, learn_profiles=True, skip_first_history=skip)
            for side in list(self.variant_snapshots.values()):
                if side is not snapshot:
                    self._apply_to(side, events, learn_profiles=False)
        else:
            for e in events:
                self.feedback.apply(str(e["user_id"]), str(e["type"]), _str(e.get("item_id")),
                                    _str(e.get("review_text")))
        if self._pending is not None:
            self._pending.extend(events)

    def _apply_to(self, snapshot: Snapshot, events: list[dict[str, Any]], *,
                  learn_profiles: bool, skip_first_history: bool = False) -> None:
        catalog = snapshot.catalog
        for k, e in enumerate(events):
            user = str(e["user_id"])
            item = _str(e.get("item_id"))
            kind = str(e["type"])
            if learn_profiles:
                self.feedback.apply(user, kind, item, _str(e.get("review_text")))
                self._learn_profile(e)
            if item is None or kind in FEEDBACK_TYPES or (skip_first_history and k == 0):
                continue
            idx = catalog.items.get(item)
            if idx >= 0:
                value = e.get("value")
                snapshot.histories.append(user, idx, kind,
                                          None if value is None or value != value else value)

    def _learn_profile(self, event: Mapping[str, Any]) -> None:
        if self._profile_pending is not None:
            self._profile_pending.append(dict(event))
        if self.profiles is None:
            return
        try:
            self.profiles.learn_one(event)
        except Exception:  # a profile problem must never fail an ingest
            log.exception("profile update failed for an event of user %s", event.get("user_id"))

    def apply_provisionally(self, record: Any) -> Provisional | None:
        """Apply one incoming event to the history before the store write completes.

        Only for an event that passes the same checks ingest makes (known type, item in the
        catalogue, valid timestamp and value); :meth:`ingest` then keeps it (accepted) or undoes
        it (duplicate or rejected). This is what lets the user's next recommendation reflect
        the event while the durable write is still running. None when not applied.
        """
        snapshot = self.snapshot
        checked = precheck(record, self.settings) if snapshot is not None else None
        if checked is None:
            return None
        user, item, kind, value = checked
        user = self.key(user)
        event_id = record.get("event_id")
        if event_id is not None and str(event_id) in self._recent_ids:
            return None  # most likely a re-sent event: let ingest say so
        idx = snapshot.catalog.items.get(item)
        if idx < 0 or not snapshot.histories.append(user, idx, kind, value):
            return None
        return Provisional(snapshot, user, idx, kind)

    def ingest(self, records: list[Any], source_name: str = "api",
               provisional: Provisional | None = None) -> Any:
        """Write records through :func:`limelight.data.ingest.ingest_records` (quarantine and
        report exactly as bulk ingest) and apply the accepted ones; returns the IngestReport.

        ``provisional`` is the result of :meth:`apply_provisionally` for a single record: kept
        when the record is accepted, undone otherwise.
        """
        from limelight.data.ingest import ingest_records

        try:
            return self._ingest(ingest_records, records, source_name, provisional)
        except BaseException:
            if provisional is not None:
                provisional.undo()
            raise

    def _ingest(self, ingest_records: Any, records: list[Any], source_name: str,
                provisional: Provisional | None) -> Any:

        # every row names item_id (null when absent): a batch without any item column would
        # otherwise have no such column at all
        records = [({"item_id": None, **r} if isinstance(r, dict) and "item_id" not in r else r)
                   for r in records]
        with self.write_lock:
            report = ingest_records(self.store, records, "events", source_name=source_name,
                                    settings=self.settings)
            if report.accepted:
                rows = accepted_rows(records, report, self.settings, self.store)
                self.apply_events(rows, provisional=provisional)
                self._recent_ids.update(str(i) for i in report.accepted_event_ids)
                if len(self._recent_ids) > 100_000:
                    self._recent_ids.clear()
            elif provisional is not None:
                provisional.undo()
        return report

    # -- per request ---------------------------------------------------------------------------
    def user_context(self, snapshot: Snapshot, user_id: str,
                     attributes: Mapping[str, Any] | None = None) -> UserContext:
        """What the pipeline needs about ``user_id`` (attributes given override stored ones)."""
        user_id = self.key(user_id)
        stored = self.attributes.get(user_id, {})
        attrs = {**stored, **{k: v for k, v in (attributes or {}).items() if v is not None}}
        segment = attrs.pop("segment", None) or self.segment_of(user_id)
        groups = user_groups(attrs, segment)
        hidden = self.feedback.hidden.get(user_id)
        hidden_idx = (snapshot.catalog.items.index(list(hidden), missing="ignore")
                      if hidden else np.empty(0, dtype=np.int64))
        return UserContext(
            user_id=user_id, model_row=snapshot.model_users.get(user_id),
            history=snapshot.histories.get(user_id), groups=groups,
            hidden_items=hidden_idx[hidden_idx >= 0],
            blocked_categories=sorted(self.feedback.blocked_categories.get(user_id, ())))

    def require_snapshot(self) -> Snapshot:
        snapshot = self.snapshot
        if snapshot is None:
            raise ArtifactError(self.load_error or "no model loaded yet")
        return snapshot


def _attributes(users: pd.DataFrame) -> dict[str, dict[str, Any]]:
    if users is None or not len(users):
        return {}
    out: dict[str, dict[str, Any]] = {}
    cols = [c for c in USER_ATTRIBUTES if c in users]
    values = {c: users[c].to_numpy(dtype=object) for c in cols}
    for i, uid in enumerate(users["user_id"].astype(str).tolist()):
        out[uid] = {c: values[c][i] for c in cols if not pd.isna(values[c][i])}
    return out


def _str(value: Any) -> str | None:
    if value is None or (isinstance(value, float) and value != value):
        return None
    return str(value)
