"""Sample worlds shared by the sim tests (generated once per session: they are deterministic)."""

from __future__ import annotations

import pytest

from limelight.sim import World, generate_world


@pytest.fixture(scope="session")
def tiny_world() -> World:
    return generate_world("tiny", seed=3)


@pytest.fixture(scope="session")
def small_world() -> World:
    return generate_world("small", seed=0)
