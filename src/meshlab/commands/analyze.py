"""`meshlab analyze` and `meshlab results-page`: the static analysis, and a run's report as a
page of the course site."""

from __future__ import annotations

import json
from pathlib import Path
from typing import cast

import click

from meshlab.errors import EXIT_FAILED, EXIT_PASSED


@click.command()
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

    PATHS are files, folders (their *.yaml and *.yml), lab folders (the manifests their
    lab.yaml lists) or a folder of labs (each lab analysed on its own, as the mesh it is).
    Exit 0: no errors (warnings allowed), 1: errors, 2: unreadable input.
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


@click.command("results-page")
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
