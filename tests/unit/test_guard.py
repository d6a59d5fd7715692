"""The conftest guard: unmarked tests cannot start Envoy."""

from __future__ import annotations

import subprocess

import pytest


def test_unmarked_test_cannot_start_envoy() -> None:
    with pytest.raises(RuntimeError, match=r"without @pytest\.mark\.envoy"):
        subprocess.run(["/does/not/matter/envoy", "--version"], check=False)
