"""Profiles and segments behind the API: the latest profile build's segments and the
real-time :class:`~limelight.profile.realtime.ProfileUpdater`, built in the background."""

from __future__ import annotations

import logging
import threading
from collections import Counter
from collections.abc import Mapping
from typing import Any

import pandas as pd

log = logging.getLogger(__name__)


class ProfileState:
    """Mixin of :class:`~limelight.api.state.ServingState`: segments and live profiles.

    Expects ``store``, ``write_lock`` and the attributes set in :meth:`_init_profiles`.
    """

    store: Any
    write_lock: Any

    def _init_profiles(self) -> None:
        self.profiles: Any = None  # limelight.profile.realtime.ProfileUpdater when built
        self.profiles_status = "off"  # off, building, ready or failed
        self.segments: Any = None  # user_id -> segment id, when segments were built
        self.segment_descriptions: dict[str, str] = {}
        self._segment_rows: list[dict[str, Any]] = []
        self._segment_model_obj: Any = None
        self._profile_thread: threading.Thread | None = None
        self._profile_pending: list[dict[str, Any]] | None = None

    def _load_segments(self) -> None:
        """Segments and memberships of the latest profile build, when there is one."""
        self._segment_rows, self._segment_model_obj = [], None
        try:
            from limelight.profile.repository import ProfileRepository

            repo = ProfileRepository(self.store)
            if repo.latest_version() is None:
                return
            members = repo.memberships()
            table = repo.segments()
            model = repo.segment_model()
        except Exception:  # no profile build yet, or a store without SQL tables
            log.info("no stored segments", exc_info=True)
            return
        self.segments = {str(u): str(s) for u, s in members["segment_id"].items()
                         if not pd.isna(s)}
        self.segment_descriptions = {str(r.segment_id): str(r.description)
                                     for r in table.itertuples(index=False)}
        self._segment_rows = [{"segment": str(r.segment_id), "size": int(r.size),
                               "description": str(r.description)}
                              for r in table.itertuples(index=False)]
        self._segment_model_obj = model

    def segment_of(self, user_id: str) -> str | None:
        if self.profiles is not None:
            try:
                found = self.profiles.segment(user_id)
            except Exception:
                found = None
            if found is not None:
                return str(found[0])
        if isinstance(self.segments, Mapping):
            value = self.segments.get(user_id)
            return None if value is None else str(value)
        return None

    def segment_table(self) -> list[dict[str, Any]]:
        """Segments with size and description (empty when no segments were built)."""
        if self._segment_rows:
            return list(self._segment_rows)
        if not isinstance(self.segments, Mapping) or not self.segments:
            return []
        counts = Counter(str(v) for v in self.segments.values())
        return [{"segment": seg, "size": size, "description": self.segment_descriptions.get(seg)}
                for seg, size in sorted(counts.items())]

    # -- profiles ------------------------------------------------------------------------------
    def start_profiles(self) -> None:
        """Build profiles and the real-time updater in a background thread."""
        if self._profile_thread is not None:
            return
        self.profiles_status = "building"
        self._profile_thread = threading.Thread(target=self._build_profiles,
                                                name="limelight-profiles", daemon=True)
        self._profile_thread.start()

    def stop_profiles(self) -> None:
        thread, self._profile_thread = self._profile_thread, None
        if thread is not None:
            thread.join(timeout=0.1)  # a daemon: an unfinished build dies with the process

    def _build_profiles(self) -> None:
        try:
            from limelight.profile.features import ProfileBuilder
            from limelight.profile.realtime import ProfileUpdater
        except ImportError:
            self.profiles_status = "off"
            return
        try:
            with self.write_lock:
                self._profile_pending = []
                events = self.store.read("events")
            builder = ProfileBuilder().fit(self.store)
            updater = ProfileUpdater.from_builder(builder, self._segment_model())
            # the updater starts empty: replaying the history gives the batch build's values
            updater.learn_many(events)
            with self.write_lock:
                for event in self._profile_pending or []:
                    updater.learn_one(event)
                self._profile_pending = None
                self.profiles = updater
                self.profiles_status = "ready"
        except Exception:
            log.exception("profiles could not be built; profile features stay unavailable")
            with self.write_lock:
                self._profile_pending = None
                self.profiles_status = "failed"

    def _segment_model(self) -> Any:
        """The latest build's segment model, so live events also refresh segments."""
        return self._segment_model_obj

