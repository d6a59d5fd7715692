"""`meshlab run` pauses the cyclic collector while it starts, then freezes what start-up made;
whatever happens, the caller's collector is left as it was."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from meshlab.commands.startup import collector_paused_until_started


@pytest.fixture(autouse=True)
def _collector_restored() -> Iterator[None]:
    enabled = gc.isenabled()
    yield
    gc.unfreeze()
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


def test_a_caller_that_froze_objects_keeps_its_freeze() -> None:
    gc.enable()
    gc.freeze()
    frozen = gc.get_freeze_count()
    with collector_paused_until_started() as started:
        started()
        assert gc.get_freeze_count() == frozen  # not ours to freeze more, or to unfreeze
    assert gc.get_freeze_count() == frozen
    assert gc.isenabled()
