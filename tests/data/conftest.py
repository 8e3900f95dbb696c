"""Fixtures for ingest tests: a fresh in-memory store and default settings."""

from __future__ import annotations

import pytest

from limelight.settings import Settings
from limelight.store.memory import MemoryEventStore


@pytest.fixture
def store() -> MemoryEventStore:
    s = MemoryEventStore()
    yield s
    s.close()


@pytest.fixture
def settings() -> Settings:
    return Settings(store_url="memory://")
