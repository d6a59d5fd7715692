"""What a student sees while a lab runs: per check, a bar whose total is the requests the
check will likely send (the sequential test's estimate, updated at every look), with the
running share of the bucket that matters; it ends at 100% when the check decides. Without
a terminal (piped, CI): one plain line per check as it starts and as it ends."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

import click
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
)

from meshlab.checks.base import Check, ProgressUpdate

CheckProgress = Callable[[ProgressUpdate], None]


@contextmanager
def progress_display(
    console: Console | None = None,
) -> Iterator[Callable[[Check], CheckProgress]]:
    """A factory of per-check progress callbacks, live on a terminal, plain lines otherwise."""
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
