"""`meshlab`: run labs, list them, show the Envoy a run would use and the config it gets.

Exit codes: 0 all checks passed, 1 a check failed, 2 invalid input or a backend that cannot
run here, 3 the backend broke mid-run (or an internal error), 130 interrupted. Never a
traceback (unless MESHLAB_DEBUG=1).
"""

from __future__ import annotations

import json
import os
import sys
import traceback
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, cast

import click
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from meshlab.errors import EXIT_BACKEND, EXIT_FAILED, EXIT_PASSED, MeshlabError, printable
from meshlab.options import RUN_OPTIONS, RunOption, RunSettings, kind_only_message
from meshlab.report.text import Style, render_lines, write_json, write_junit
from meshlab.version import __version__

EXIT_INTERRUPTED = 130


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


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="meshlab")
def cli() -> None:
    """Check Istio traffic rules by sending real traffic through a real Envoy."""


class _Parsed(click.ParamType[Any, Any]):
    """A run option's own parser as a click type: its ValueError is click's usage error."""

    def __init__(self, option: RunOption) -> None:
        self.option = option
        self.name = (option.metavar or option.dest).lower()

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if not isinstance(value, str) or self.option.parse is None:
            return value
        try:
            return self.option.parse(value)
        except ValueError as exc:
            self.fail(str(exc), param, ctx)


def _run_options(command: Callable[..., None]) -> Callable[..., None]:
    """RUN_OPTIONS as click options (the pytest plugin adds the same ones to pytest)."""
    for option in reversed(RUN_OPTIONS):
        if option.is_flag:
            decorate = click.option(option.flag, option.dest, is_flag=True, help=option.help)
        else:
            kind: click.ParamType[Any, Any] = (
                click.Choice(option.choices) if option.choices else _Parsed(option)
            )
            decorate = click.option(
                option.flag,
                option.dest,
                type=kind,
                default=option.default,
                show_default=option.default is not None,
                metavar=option.metavar,
                help=option.help,
            )
        command = decorate(command)
    return command


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
    from meshlab.backends.registry import get_backend
    from meshlab.pipeline import run_lab

    settings = RunSettings.from_values(values)
    if settings.backend != "kind" and settings.kind_only_given():
        raise click.UsageError(kind_only_message())
    chosen = get_backend(settings.backend, settings.backend_options())
    try:
        with _progress() as progress:
            report = run_lab(lab_dir, settings.run_options(), progress=progress, backend=chosen)
    finally:
        chosen.close()  # the kind cluster meshlab created goes, unless kept
    report.backend.update(chosen.report_extras(report.passed))
    model = report.model()
    for line, style in render_lines(model):
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


def _colour(line: str, style: Style) -> str:
    """Green/red verdict lines on a terminal; click drops the colour when piped."""
    if style == "fail":
        return click.style(line, fg="red", bold=True)
    if style == "pass":
        return click.style(line, fg="green")
    return line


@contextmanager
def _progress() -> Iterator[Callable[[Any], Callable[[int, int], None]] | None]:
    """A progress bar per check on a terminal; nothing at all when output is piped or in CI."""
    console = Console(stderr=True)
    if not console.is_terminal:
        yield None
        return
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("requests"),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=console, transient=True) as bar:

        def for_check(check: Any) -> Callable[[int, int], None]:
            task = bar.add_task(check.name, total=None)

            def update(sent: int, total: int) -> None:
                bar.update(task, completed=sent, total=total)

            return update

        yield for_check


@cli.command("list")
@click.argument(
    "labs_dir", type=click.Path(path_type=Path, exists=True, file_okay=False), default=Path("labs")
)
def list_labs(labs_dir: Path) -> None:
    """List the labs under LABS_DIR with their checks."""
    from meshlab.checks import load_checked_lab
    from meshlab.load.lab import LAB_FILE

    for lab_file in sorted(labs_dir.glob(f"*/{LAB_FILE}")):
        checked = load_checked_lab(lab_file)
        checks = ", ".join(f"{c.name} ({c.kind})" for c in checked.checks)
        click.echo(printable(f"{checked.lab.name}: {checked.lab.title} — {checks}"))


@cli.command()
@click.option(
    "--envoy", "envoy", type=click.Path(path_type=Path), default=None, envvar="MESHLAB_ENVOY"
)
def doctor(envoy: Path | None) -> None:
    """Say which Envoy the embedded backend would run, and whether it works."""
    from meshlab.backends.embedded.envoy.binary import find_envoy

    binary = find_envoy(envoy)
    click.echo(f"embedded backend: {binary.describe()}")
    click.echo(f"kind backend: {_kind_status()}")


def _kind_status() -> str:
    """Whether `--backend kind` could start here (the same fast check a run makes)."""
    from meshlab.backends.registry import get_backend
    from meshlab.errors import BackendUnavailable

    try:
        info = get_backend("kind").describe()
    except BackendUnavailable as exc:
        return f"cannot run here: {exc}"
    image = info["node_image"].split("@")[0]
    return (
        f"can start here (Docker engine {info.get('docker', '?')}); would use kind "
        f"{info['kind']}, {image}, Istio {info['istio']}"
    )


@cli.command("envoy-config")
@click.argument("lab_dir", type=click.Path(path_type=Path))
def envoy_config(lab_dir: Path) -> None:
    """Print the Envoy configuration meshlab derives from LAB_DIR (pods at placeholder ports)."""
    from meshlab.backends.embedded.envoy.bootstrap import placeholder_addresses, render_bootstrap
    from meshlab.pipeline import prepare

    prepared = prepare(lab_dir)
    config = render_bootstrap(prepared.plan, placeholder_addresses(prepared.plan))
    click.echo(json.dumps(config, indent=2))


@cli.command()
@click.argument("paths", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Print the diagnostics as JSON.")
@click.option(
    "--severity",
    type=click.Choice(["info", "warning", "error"]),
    default="info",
    show_default=True,
    help="Show diagnostics at this level and above.",
)
@click.option(
    "-n",
    "--namespace",
    default=None,
    help="Namespace of objects that name none (default: the lab's, else `default`).",
)
def analyze(paths: tuple[Path, ...], as_json: bool, severity: str, namespace: str | None) -> None:
    """Check Kubernetes and Istio objects offline: istioctl analyze's checks, and more.

    PATHS are files, folders (their *.yaml and *.yml) or lab folders (the manifests their
    lab.yaml lists). Exit 0: no errors (warnings allowed), 1: errors, 2: unreadable input.
    """
    from meshlab.analysis import Level, analyze_paths, render_text, summary

    threshold = cast(Level, severity)
    result = analyze_paths(list(paths), namespace)
    if as_json:
        click.echo(json.dumps(result.to_json(threshold), indent=2))
    else:
        colours = {"error": "red", "warning": "yellow"}
        for line in render_text(result.diagnostics, threshold):
            level = line.split(": ", 1)[1].split(" ", 1)[0] if ": " in line else ""
            click.echo(click.style(line, fg=colours[level]) if level in colours else line)
        files = len(result.files)
        click.echo(
            f"{summary(result.diagnostics)} ({len(result.resources)} objects in {files} "
            f"file{'s' if files != 1 else ''})"
        )
    raise click.exceptions.Exit(EXIT_FAILED if result.errors else EXIT_PASSED)


@cli.command("results-page")
@click.argument("report", type=click.Path(path_type=Path, exists=True, dir_okay=False))
@click.option(
    "-o",
    "--output",
    type=click.Path(path_type=Path, dir_okay=False),
    default=None,
    help="Write the page here (default: standard output). Parent folders are created.",
)
def results_page(report: Path, output: Path | None) -> None:
    """Render REPORT (from `meshlab run --json`) as a Markdown page for the course site.

    The page has the versioned app graph of each split check and a chart of the observed
    against the configured shares, both as inline SVG (no JavaScript, works offline).
    """
    from meshlab.report.page import load_report, render_page

    page = render_page(load_report(report), source=report)
    if output is None:
        click.echo(page, nl=False)
        return
    try:
        output.parent.mkdir(parents=True, exist_ok=True)
        output.write_text(page, encoding="utf-8")
    except OSError as exc:
        raise click.FileError(str(output), hint=exc.strerror or str(exc)) from None
