"""What a student sees while a lab runs: per check, a bar whose total is the requests the
check will likely send (the sequential test's estimate, updated at every look), with the
running share of the bucket that matters; it ends at 100% when the check decides. Without
a terminal (piped, CI): one plain line per check as it starts and as it ends."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

import click

from meshlab.checks.base import Check, ProgressUpdate

if TYPE_CHECKING:
    from rich.console import Console
    from rich.progress import Progress, TaskID

CheckProgress = Callable[[ProgressUpdate], None]


@contextmanager
def progress_display(
    console: Console | None = None,
) -> Iterator[Callable[[Check], CheckProgress]]:
    """A factory of per-check progress callbacks, live on a terminal, plain lines otherwise."""
    if console is None and _surely_not_a_terminal():
        yield _plain_lines  # rich (~50 ms to import) only when it draws
        return
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
    )

    console = console or Console(stderr=True)
    if not console.is_terminal:
        yield _plain_lines
        return
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("requests{task.fields[focus]}"),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=console) as bar:

        def for_check(check: Check) -> CheckProgress:
            task = bar.add_task(check.name, total=None, focus="")
            return lambda update: _show(bar, task, update)

        yield for_check


def _surely_not_a_terminal() -> bool:
    """What rich's Console.is_terminal says for stderr, without importing rich, when stderr
    is no tty and no variable (TTY_COMPATIBLE, FORCE_COLOR) makes rich draw anyway."""
    if "TTY_COMPATIBLE" in os.environ or "FORCE_COLOR" in os.environ:
        return False
    try:
        return not sys.stderr.isatty()
    except (AttributeError, ValueError):  # no stream, or a closed one: rich says False too
        return True


def _show(bar: Progress, task: TaskID, update: ProgressUpdate) -> None:
    share = update.focus_share
    focus = f" · {update.focus} {100 * share:.1f}%" if share is not None else ""
    total = update.expected_total
    bar.update(
        task, completed=update.sent, total=max(total, update.sent) if total else None, focus=focus
    )


def _plain_lines(check: Check) -> CheckProgress:
    click.echo(f"{check.name}: sending requests…", err=True)

    def update(progress: ProgressUpdate) -> None:
        if progress.done:
            click.echo(f"{check.name}: {progress.sent} requests sent", err=True)

    return update
