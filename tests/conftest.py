"""Shared test configuration: pytester for plugin tests, and paths to the repo's labs."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Any

import pytest
import scipy.optimize
import scipy.special  # noqa: F401

from meshlab.backends.embedded.castore import OFF_ENV, STORE_ENV

# meshlab imports scipy on first use. pytester's in-process runs restore sys.modules after
# each run, and numpy refuses to load twice in one process: load scipy before any of them.

pytest_plugins = ["pytester"]


def pytest_configure(config: pytest.Config) -> None:
    """Each test process keeps its mesh CA (castore.py) in a folder of its own, never in the
    user's cache: the first Envoy test of a process fills it, the later ones read it."""
    store = Path(tempfile.mkdtemp(prefix="castore-test-"))
    config.add_cleanup(lambda: shutil.rmtree(store, ignore_errors=True))
    os.environ[STORE_ENV] = str(store)
    os.environ.pop(OFF_ENV, None)


ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def lab2_dir() -> Path:
    return ROOT / "labs" / "2-traffic"


LAB2_GOAL = "expect: {safe: 90, risky: 10}"  # lab 2's graded check states the course's goal


@pytest.fixture
def lab2_configured(tmp_path: Path) -> Path:
    """Lab 2 with `expect: configured`: for tests whose lesson is "the mesh does what the
    YAML says" (the shipped lab states the course's goal instead)."""
    lab = tmp_path / "lab2-configured"
    shutil.copytree(ROOT / "labs" / "2-traffic", lab, ignore=shutil.ignore_patterns("__pycache__"))
    lab_file = lab / "lab.yaml"
    text = lab_file.read_text()
    assert LAB2_GOAL in text
    lab_file.write_text(text.replace(LAB2_GOAL, "expect: configured"))
    return lab


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """A lab's own Python tests (a test file next to a lab.yaml) run on the lab's deployed
    mesh, as its checks do: they are Envoy tests, whichever worker or order runs them first."""
    for item in items:
        if (item.path.parent / "lab.yaml").is_file():
            item.add_marker(pytest.mark.envoy)


class _Blocked(RuntimeError):
    pass


@pytest.fixture(autouse=True)
def _envoy_only_when_marked(
    request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A test that is not marked `envoy` cannot start Envoy by accident: the fast unit tests
    stay fast and honest about what they exercise."""
    if request.node.get_closest_marker("envoy") is not None:
        return
    real_popen = subprocess.Popen

    class GuardedPopen(real_popen):  # type: ignore[misc,valid-type]
        def __init__(self, args: Any, *rest: Any, **kwargs: Any) -> None:
            argv = [args] if isinstance(args, str | Path) else list(args)
            if argv and Path(str(argv[0])).name == "envoy":
                raise _Blocked(
                    f"blocked: {request.node.nodeid} starts Envoy without @pytest.mark.envoy"
                )
            super().__init__(args, *rest, **kwargs)

    monkeypatch.setattr(subprocess, "Popen", GuardedPopen)
