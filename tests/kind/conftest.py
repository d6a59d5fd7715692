"""The kind backend's tests run no cluster, no Docker, no kind and no istioctl: every command
goes to a FakeRunner, the Kubernetes API to a FakeKube (or a fake HTTP pool), pytest-kind's
subprocess calls to a recorder. A test that starts one of those tools for real fails, unless
it is marked `kind` (the e2e tests, which need a real cluster and skip without one)."""

from __future__ import annotations

import importlib.util
import subprocess
from pathlib import Path
from typing import Any

import pytest
from kind_fakes import Events, FakeClock, FakeKube, FakeRunner, FakeSubprocess

from meshlab.backends.kind import KindBackend, KindOptions
from meshlab.backends.kind.tools import Tools

_REAL_TOOLS = {"docker", "kind", "istioctl", "kubectl"}


@pytest.fixture(autouse=True)
def _kind_extra() -> None:
    """The backend's client libraries come with the kind extra (nox's tests session has it)."""
    for module in ("kubernetes", "pytest_kind"):
        if importlib.util.find_spec(module) is None:
            pytest.skip(f"needs the kind extra ({module}): pip install -e '.[kind]'")


@pytest.fixture(autouse=True)
def _no_real_cluster_tools(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    if request.node.get_closest_marker("kind") is not None:
        return
    real_popen = subprocess.Popen

    class GuardedPopen(real_popen):  # type: ignore[misc,valid-type]
        def __init__(self, args: Any, *rest: Any, **kwargs: Any) -> None:
            argv = [args] if isinstance(args, str | Path) else list(args)
            if argv and Path(str(argv[0])).name.split("-")[0] in _REAL_TOOLS:
                raise RuntimeError(f"blocked: {request.node.nodeid} runs {argv[0]} for real")
            super().__init__(args, *rest, **kwargs)

    monkeypatch.setattr(subprocess, "Popen", GuardedPopen)


@pytest.fixture
def events() -> Events:
    return Events()


@pytest.fixture
def runner(events: Events) -> FakeRunner:
    return FakeRunner(events)


@pytest.fixture
def kube(events: Events) -> FakeKube:
    return FakeKube(events)


@pytest.fixture
def kind_subprocess(monkeypatch: pytest.MonkeyPatch, runner: FakeRunner) -> FakeSubprocess:
    """pytest-kind's own `subprocess` calls, answered by the same FakeRunner."""
    import pytest_kind.cluster

    fake = FakeSubprocess(runner)
    monkeypatch.setattr(pytest_kind.cluster, "subprocess", fake)
    return fake


@pytest.fixture
def progress() -> list[str]:
    return []


@pytest.fixture
def make(
    runner: FakeRunner,
    kube: FakeKube,
    events: Events,
    tmp_path: Path,
    progress: list[str],
    kind_subprocess: FakeSubprocess,
):  # type: ignore[no-untyped-def]
    """A KindBackend on the fakes, with KindOptions(**options)."""

    def make_backend(**options: object) -> KindBackend:
        bin_dir = tmp_path / "bin"
        bin_dir.mkdir(exist_ok=True)
        for name in ("kind", "istioctl"):
            (bin_dir / name).write_text("")
        tools = Tools(
            runner,
            cache=tmp_path / "cache",
            env={
                "MESHLAB_KIND": str(bin_dir / "kind"),
                "MESHLAB_ISTIOCTL": str(bin_dir / "istioctl"),
            },
        )

        def connect(path: Path) -> FakeKube:
            events.append(f"api: connect {path.name}")
            return kube

        return KindBackend(
            KindOptions(**options),  # type: ignore[arg-type]
            runner=runner,
            tools=tools,
            kube_factory=connect,
            clock=FakeClock(),
            progress=progress.append,
            which=lambda name: f"/usr/bin/{name}",
            has_module=lambda name: True,
        )

    return make_backend
