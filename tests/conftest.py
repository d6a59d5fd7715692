"""Shared test configuration: pytester for plugin tests, and paths to the repo's labs."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest_plugins = ["pytester"]

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def lab2_dir() -> Path:
    return ROOT / "labs" / "2-traffic"
