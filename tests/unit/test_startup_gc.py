"""`meshlab run` pauses the cyclic collector while it starts, then freezes what start-up made;
whatever happens, the caller's collector is left as it was."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from meshlab.commands.startup import collector_paused_until_started

_unfreeze = gc.unfreeze  # the real one: a test may watch gc.unfreeze until after this restores


@pytest.fixture(autouse=True)
def _collector_restored() -> Iterator[None]:
    enabled = gc.isenabled()
    yield
    _unfreeze()
    if enabled:
        gc.enable()


def test_paused_while_starting_then_frozen_and_resumed_then_as_before() -> None:
    gc.enable()
    with collector_paused_until_started() as started:
        assert not gc.isenabled()
        assert gc.get_freeze_count() == 0
        started()
        assert gc.isenabled()
        assert gc.get_freeze_count() > 0  # start-up's objects: later collections skip them
        started()  # said twice: still one freeze
    assert gc.isenabled()
    assert gc.get_freeze_count() == 0  # a caller that goes on running collects them again


def test_an_error_during_start_up_leaves_the_collector_running() -> None:
    gc.enable()
    with pytest.raises(RuntimeError), collector_paused_until_started():
        raise RuntimeError("a lab that does not load")
    assert gc.isenabled()
    assert gc.get_freeze_count() == 0


def test_a_caller_that_disabled_the_collector_keeps_it_disabled() -> None:
    gc.disable()
    with collector_paused_until_started() as started:
        started()
        assert not gc.isenabled()
    assert not gc.isenabled()
    assert gc.get_freeze_count() == 0


def test_a_caller_that_froze_objects_keeps_its_freeze(monkeypatch: pytest.MonkeyPatch) -> None:
    """Neither frozen more nor unfrozen. Watched through the calls: the freeze count itself
    drifts down when a frozen object is freed (another thread of the test worker does that)."""
    gc.enable()
    gc.freeze()
    calls: list[str] = []
    monkeypatch.setattr(gc, "freeze", lambda: calls.append("freeze"))
    monkeypatch.setattr(gc, "unfreeze", lambda: calls.append("unfreeze"))
    with collector_paused_until_started() as started:
        started()
        assert gc.isenabled()
    assert calls == []  # not ours to freeze more, or to unfreeze
    assert gc.isenabled()
    assert gc.get_freeze_count() > 0


def test_meshlab_run_loads_the_lab_paused_checks_collecting_and_leaves_it_as_before(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The command itself: the lab is read with the collector paused, the checks run with it
    on and start-up frozen, and the caller's collector is as before once `main` returns."""
    from pathlib import Path

    from meshlab import pipeline
    from meshlab.backends import registry
    from meshlab.backends.fake import FakeBackend, weighted_pods
    from meshlab.cli import main

    seen: dict[str, tuple[bool, int]] = {}
    prepare, run_prepared = pipeline.prepare, pipeline.run_prepared

    def watched_prepare(*args: object, **kwargs: object) -> pipeline.PreparedLab:
        seen["prepare"] = (gc.isenabled(), gc.get_freeze_count())
        return prepare(*args, **kwargs)  # type: ignore[arg-type]

    def watched_run(*args: object, **kwargs: object) -> pipeline.LabReport:
        seen["checks"] = (gc.isenabled(), gc.get_freeze_count())
        return run_prepared(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(pipeline, "prepare", watched_prepare)
    monkeypatch.setattr(pipeline, "run_prepared", watched_run)
    monkeypatch.setattr(registry, "warm_start", lambda *_: None)
    fake = FakeBackend(weighted_pods({"safe": 90, "risky": 10}))
    monkeypatch.setattr(registry, "get_backend", lambda *_: fake)
    gc.enable()
    lab = Path(__file__).resolve().parents[2] / "labs" / "2-traffic"
    with pytest.raises(SystemExit) as done:
        main(["run", str(lab)])
    assert done.value.code == 0
    assert seen["prepare"] == (False, 0)
    enabled, frozen = seen["checks"]
    assert enabled
    assert frozen > 0
    assert gc.isenabled()
    assert gc.get_freeze_count() == 0
