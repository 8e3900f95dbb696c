"""Shared fixtures.

Public datasets are read from ``$LIMELIGHT_DATA_DIR`` or ``../shared/data`` beside the
repository; tests that need them are marked ``realdata`` and skip cleanly when absent.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
DATA_DIR = Path(os.environ.get("LIMELIGHT_DATA_DIR", REPO.parent / "shared" / "data"))


def dataset_path(name: str) -> Path:
    """Folder of public dataset ``name`` (e.g. "ml-100k"); skips the test when absent."""
    path = DATA_DIR / name
    if not path.is_dir():
        pytest.skip(f"dataset {name} not found under {DATA_DIR}")
    return path


@pytest.fixture
def ml100k_dir() -> Path:
    return dataset_path("ml-100k")


@pytest.fixture
def ml_small_dir() -> Path:
    return dataset_path("ml-latest-small")


@pytest.fixture
def filmtrust_dir() -> Path:
    return dataset_path("filmtrust")


@pytest.fixture
def retail_dir() -> Path:
    return dataset_path("online-retail")
