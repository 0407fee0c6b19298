"""Shared fixtures. Real-data tests find the recordings through BIODECODE_DATA_DIR, else in
``../shared/data`` beside the checkout (as ``make bench`` does); under CI (BIODECODE_REQUIRE_DATA=1)
a missing folder fails instead of skipping."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest


@pytest.fixture(scope="session")
def data_dir() -> Path:
    env = os.environ.get("BIODECODE_DATA_DIR")
    beside = Path(__file__).resolve().parents[2] / "shared" / "data"
    path = Path(env) if env else (beside if beside.is_dir() else None)
    if path is None or not path.is_dir():
        msg = f"real data not found (BIODECODE_DATA_DIR={env!r})"
        if os.environ.get("BIODECODE_REQUIRE_DATA") == "1":
            pytest.fail(msg)
        pytest.skip(msg)
    return path


@pytest.fixture(autouse=True, scope="session")
def _isolated_cache(tmp_path_factory) -> None:
    """Never write window caches into the user's cache during tests."""
    os.environ["BIODECODE_CACHE_DIR"] = str(tmp_path_factory.mktemp("window-cache"))


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(0)
