"""`meshlab`: run labs, list them, show the Envoy a run would use and the config it gets.

Exit codes: 0 all checks passed, 1 a check failed, 2 invalid input or a backend that cannot
run here, 3 the backend broke mid-run (or an internal error), 130 interrupted (Ctrl-C), 143
SIGTERM, 129 SIGHUP. Never a traceback (unless MESHLAB_DEBUG=1).
"""

from __future__ import annotations

import atexit
import functools
import os
import signal
import sys
import threading
import traceback
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import TYPE_CHECKING

import click

from meshlab.commands.lazy import LazyGroup
from meshlab.commands.runopts import run_options as _run_options
from meshlab.commands.startup import collector_paused_until_started
from meshlab.errors import (
    EXIT_BACKEND,
    EXIT_FAILED,
    EXIT_PASSED,
    MeshlabError,
    printable,
    stop_behind,
)
from meshlab.options import RunSettings, kind_only_message

if TYPE_CHECKING:
    from meshlab.report.text import Style

EXIT_INTERRUPTED = 130
PYDANTIC_PLUGINS_ENV = "PYDANTIC_DISABLE_PLUGINS"  # pydantic/plugin/_loader.py
STOP_SIGNALS = ("SIGTERM", "SIGHUP")  # exit 128 + the signal's number: 143, 129


class Stopped(SystemExit):
    """SIGTERM or SIGHUP, raised where the run is: every `with` unwinds as for Ctrl-C (each
    process stopped, temp folders and logs removed), then exit 128 + the signal number.
    A SystemExit, so no `except Exception` on the way can swallow it."""


@contextmanager
def _stop_signals_unwind() -> Iterator[None]:
    """SIGTERM/SIGHUP raise Stopped in the main thread while the block runs; later ones
    (a supervisor insisting) are ignored, so that the clean-up itself is not cut short."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    signals = [signal.Signals[n] for n in STOP_SIGNALS if n in signal.Signals.__members__]

    def stop(signum: int, frame: object) -> None:
        for sig in signals:
            signal.signal(sig, lambda *_: None)  # a handler, not SIG_IGN: exec resets it
        name = signal.Signals(signum).name
        with suppress(OSError, RuntimeError):  # a hung-up terminal (SIGHUP) cannot be written
            click.echo(f"{name}: stopping every process meshlab started", err=True)
        raise Stopped(128 + signum)

    previous = {sig: signal.signal(sig, stop) for sig in signals}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _stoppable(run: Callable[[list[str] | None], None]) -> Callable[[list[str] | None], None]:
    """`main` under _stop_signals_unwind."""

    @functools.wraps(run)
    def wrapper(argv: list[str] | None = None) -> None:
        with _stop_signals_unwind():
            run(argv)

    return wrapper


@_stoppable
def main(argv: list[str] | None = None) -> None:
    """Console-script entry point: maps our errors to exit codes and plain messages."""
    try:
        code = cli.main(args=argv, prog_name="meshlab", standalone_mode=False)
    except MeshlabError as exc:
        click.echo(printable(str(exc), newlines=True), err=True)
        code = exc.exit_code
    except click.exceptions.Exit as exc:
        code = exc.exit_code
    except click.ClickException as exc:
        exc.show()
        code = 2
    except (click.exceptions.Abort, KeyboardInterrupt):
        # click turns Ctrl-C inside a command into Abort; by now every `with` has unwound.
        click.echo("interrupted: every process meshlab started has been stopped", err=True)
        code = EXIT_INTERRUPTED
    except Exception as exc:  # a bug in meshlab: said plainly, traced only when asked
        stop = stop_behind(exc)  # or a stop that Python wrapped on its way (errors.py)
        if isinstance(stop, SystemExit):
            raise stop from None
        if stop is not None:
            click.echo("interrupted: every process meshlab started has been stopped", err=True)
            sys.exit(EXIT_INTERRUPTED)
        if os.environ.get("MESHLAB_DEBUG") == "1":
            traceback.print_exc()
        click.echo(
            printable(f"internal error: {type(exc).__name__}: {exc}", newlines=True)
            + "\n  hint: this is a bug in meshlab, not in the lab; please report it with "
            "the command and the lab (MESHLAB_DEBUG=1 shows the traceback)",
            err=True,
        )
        code = EXIT_BACKEND
    sys.exit(code if isinstance(code, int) else 0)


def program() -> None:
    """The `meshlab` command (the console script): main(), then a quick exit.

    Once every thread has ended and every atexit handler has run (processes stopped, temp
    folders removed), what is left of an exit is the interpreter tearing down each module it
    imported, ~0.1 s for meshlab's; the process skips that (os._exit) after flushing its
    output. main() itself exits normally, for callers that go on running.

    It also turns pydantic's plugins off unless the user set PYDANTIC_DISABLE_PLUGINS: on
    its first schema pydantic reads every installed distribution's entry points for them
    (observers of every validation, such as logfire's), ~5 ms of a run's start for nothing
    meshlab's own schemas use.
    """
    os.environ.setdefault(PYDANTIC_PLUGINS_ENV, "__all__")
    exit_code: list[int] = []

    def quick_exit() -> None:  # registered first, so it runs after every other handler
        if not exit_code:
            return  # not a SystemExit from main: leave the exit to the interpreter
        try:
            sys.stdout.flush()
            sys.stderr.flush()
        except (OSError, ValueError):  # a closed pipe: the interpreter reports it as usual
            return
        os._exit(exit_code[0])

    atexit.register(quick_exit)
    try:
        main(None)
    except SystemExit as exc:
        if isinstance(exc.code, int) or exc.code is None:
            exit_code.append(exc.code or 0)
        raise


# The other subcommands, each family in its module under meshlab.commands, imported when named
_SUBCOMMANDS = {
    "list": "meshlab.commands.labs:list_labs",
    "doctor": "meshlab.commands.labs:doctor",
    "envoy-config": "meshlab.commands.explain:envoy_config",
    "explain": "meshlab.commands.explain:explain",
    "wizard": "meshlab.commands.wizard:wizard",
    "analyze": "meshlab.commands.analyze:analyze",
    "results-page": "meshlab.commands.analyze:results_page",
    "grade": "meshlab.commands.grade:grade",
    "up": "meshlab.commands.up:up",
}


@click.group(
    cls=LazyGroup,
    lazy=_SUBCOMMANDS,
    context_settings={"help_option_names": ["-h", "--help"]},
)
@click.option(
    "--version",
    is_flag=True,
    expose_value=False,
    is_eager=True,
    callback=lambda ctx, _, value: _print_version(ctx) if value else None,
    help="Show the version and exit.",
)
def cli() -> None:
    """Check Istio traffic rules by sending real traffic through a real Envoy."""


@cli.command()
@click.argument("lab_dir", type=click.Path(path_type=Path))
@click.option(
    "--json",
    "json_path",
    type=click.Path(path_type=Path, dir_okay=False),
    default=None,
    help="Write the JSON report here.",
)
@click.option(
    "--junit",
    "junit_path",
    type=click.Path(path_type=Path, dir_okay=False),
    default=None,
    help="Write a JUnit XML report here (one test case per check).",
)
@_run_options
def run(lab_dir: Path, json_path: Path | None, junit_path: Path | None, **values: object) -> None:
    """Apply LAB_DIR's manifests, send traffic as a meshed client, check the observed split."""
    with collector_paused_until_started() as started:
        _run(lab_dir, json_path, junit_path, values, started)


def _run(
    lab_dir: Path,
    json_path: Path | None,
    junit_path: Path | None,
    values: dict[str, object],
    started: Callable[[], None],
) -> None:
    """`run`, told when its start-up (imports, then loading the lab) is over."""
    from meshlab.backends.registry import get_backend, warm_start

    settings = RunSettings.from_values(values)
    if settings.backend != "kind" and settings.kind_only_given():
        raise click.UsageError(kind_only_message())
    # Envoy, a stand-in host and the CA start now, while the imports below and the lab's
    # reading keep this core busy; the backend owns them (and ends them) from here on
    warm = warm_start(settings.backend, settings.backend_options())
    try:
        chosen = get_backend(settings.backend, settings.backend_options(), warm)
    except BaseException:
        if warm is not None:
            warm.close()
        raise
    try:
        # imported here: `meshlab --help` and the other commands never pay for the report's
        # and the checks' schemas, rich, or the backends
        from meshlab.pipeline import prepare, run_prepared
        from meshlab.progress import progress_display
        from meshlab.report.text import header_lines, render_lines, write_json, write_junit

        options = settings.run_options()
        prepared = prepare(lab_dir, options.budgets, options.design, options.requests)
        started()  # what start-up made lives until exit: later collections skip it
        # what the run is about, before the first request: the run may take a while
        for line in header_lines(prepared.lab.name, prepared.lab.title, chosen.describe()):
            click.echo(line)
        with progress_display() as progress:
            report = run_prepared(prepared, options, progress=progress, backend=chosen)
    finally:
        chosen.close()  # the kind cluster meshlab created goes, unless kept
    report.backend.update(chosen.report_extras(report.passed))
    model = report.model()
    for line, style in render_lines(model, header=False):
        click.echo(_colour(line, style))
    _echo_diagnostics(model.backend_info)
    for path, write in ((json_path, write_json), (junit_path, write_junit)):
        if path is not None:
            try:
                write(model, path)
            except OSError as exc:
                raise click.FileError(str(path), hint=exc.strerror or str(exc)) from None
    raise click.exceptions.Exit(EXIT_PASSED if model.passed else EXIT_FAILED)


def _echo_diagnostics(info: dict[str, str]) -> None:
    """What a real cluster looked like when a check failed (also in the JSON report)."""
    parts = {
        k.removeprefix("diagnostics_"): v for k, v in info.items() if k.startswith("diagnostics_")
    }
    if parts:
        click.echo("cluster diagnostics (also in the JSON report's backend_info):")
        for key, text in parts.items():
            click.echo(f"  {key}:")
            for line in text.split("\n"):
                click.echo(f"    {printable(line)}")


def _print_version(ctx: click.Context) -> None:
    """`--version`: the version meshlab.version declares (pyproject.toml says the same)."""
    from meshlab.version import __version__

    click.echo(f"meshlab, version {__version__}")
    ctx.exit()


def _colour(line: str, style: Style) -> str:
    """Green/red verdict lines on a terminal; click drops the colour when piped."""
    if style == "fail":
        return click.style(line, fg="red", bold=True)
    if style == "pass":
        return click.style(line, fg="green")
    return line
