"""The cyclic garbage collector during a command's start-up: paused, then told to skip it all.

Importing meshlab and preparing a lab creates ~50,000 objects that live until the process
exits (modules, classes, pydantic schemas, the plan). The collector scans them again and again
while they are made (~100 young collections, a few older ones) and once more in a full
collection during the checks, ~60 ms of a `meshlab run` of lab 2, to free nothing. So a command
pauses it while it starts, then freezes what start-up made (`gc.freeze`: later collections
skip those objects) and collects as usual from there on. Only the command line does this: a
library never changes its caller's collector.
"""

from __future__ import annotations

import gc
from collections.abc import Callable, Iterator
from contextlib import contextmanager

__all__ = ["collector_paused_until_started"]


@contextmanager
def collector_paused_until_started() -> Iterator[Callable[[], None]]:
    """Pause collections; the callable it yields says start-up is over (freeze, resume).

    On the way out everything is as before: resumed if it was running, unfrozen so that a
    caller that goes on running (a test calling `main`) collects those objects again. A
    caller that had frozen objects itself keeps its freeze: nothing is frozen or unfrozen.
    """
    was_enabled = gc.isenabled()
    ours = gc.get_freeze_count() == 0
    frozen = False
    gc.disable()

    def started() -> None:
        nonlocal frozen
        if ours and not frozen:
            gc.freeze()
            frozen = True
        if was_enabled:
            gc.enable()

    try:
        yield started
    finally:
        if frozen:
            gc.unfreeze()
        if was_enabled:
            gc.enable()
