"""`meshlab grade`: a class's submissions against the instructor's lab, as a table of points."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import click

from meshlab.commands.runopts import run_options
from meshlab.errors import EXIT_BACKEND, EXIT_PASSED, printable
from meshlab.options import RunSettings, kind_only_message

if TYPE_CHECKING:
    from meshlab.grading.model import ClassReport, GradedSubmission

_OUT = click.Path(path_type=Path, dir_okay=False)


def _shard(ctx: click.Context, param: click.Parameter, value: str | None) -> object:
    from meshlab.grading.grader import Shard

    if value is None:
        return None
    try:
        return Shard.parse(value)
    except ValueError as exc:
        raise click.BadParameter(str(exc), ctx, param) from None


@click.command()
@click.argument("paths", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--json", "json_path", type=_OUT, help="Write the class report as JSON here.")
@click.option("--junit", "junit_path", type=_OUT, help="Write JUnit XML: a suite per student.")
@click.option("--csv", "csv_path", type=_OUT, help="Write CSV: a row per student.")
@click.option("--markdown", "markdown_path", type=_OUT, help="Write a Markdown table here.")
@click.option(
    "--jobs",
    type=click.IntRange(min=1),
    default=None,
    metavar="N",
    help="Grade N submissions at once (default: the cores this process may use).",
)
@click.option(
    "--shard",
    callback=_shard,
    metavar="I/N",
    help="Grade only shard I of N (every N-th submission by name): a CI matrix job each.",
)
@click.option(
    "--merge",
    is_flag=True,
    help="PATHS are shard reports (`--json`) to join into one: nothing is run.",
)
@run_options
def grade(
    paths: tuple[Path, ...],
    json_path: Path | None,
    junit_path: Path | None,
    csv_path: Path | None,
    markdown_path: Path | None,
    jobs: int | None,
    shard: object,
    merge: bool,
    **values: object,
) -> None:
    """Grade SUBMISSIONS_DIR against LAB_DIR: `meshlab grade LAB_DIR SUBMISSIONS_DIR`.

    LAB_DIR's lab.yaml is authoritative (checks, points, expectations). Each folder in
    SUBMISSIONS_DIR is a student's submission: the lab's manifests the student changed, by
    the names lab.yaml's `manifests:` uses; the others come from LAB_DIR. A submission that
    cannot run (invalid, hostile, over a budget) gets 0 points with the reason; the batch
    goes on. `meshlab grade --merge REPORT...` joins the reports of `--shard` runs.

    Exit 0: every submission graded (whatever its points); 2: LAB_DIR invalid; 3: the
    backend broke under a submission (that submission's error says so).
    """
    from meshlab.grading.grader import Shard, merge_reports
    from meshlab.grading.output import read_json

    if merge:
        if shard is not None or jobs is not None:
            raise click.UsageError("--merge runs nothing: it takes no --shard or --jobs")
        report = merge_reports([read_json(path) for path in paths])
    else:
        if len(paths) != 2:
            raise click.UsageError("give LAB_DIR and SUBMISSIONS_DIR (or --merge REPORT...)")
        settings = RunSettings.from_values(values)
        if settings.backend != "kind" and settings.kind_only_given():
            raise click.UsageError(kind_only_message())
        if settings.backend == "kind":  # a submission's pods are checked as in grading;
            settings = dataclasses.replace(settings, grading=True)
            jobs = 1  # one cluster: the lab's namespace is the same for every submission
        chosen = shard if isinstance(shard, Shard) else None
        report = _run(paths[0], paths[1], settings, jobs, chosen)
    _write_all(report, json_path, junit_path, csv_path, markdown_path)
    for line in _table(report):
        click.echo(line)
    broke = any(s.error and s.error.startswith("backend error") for s in report.submissions)
    raise click.exceptions.Exit(EXIT_BACKEND if broke else EXIT_PASSED)


def _run(
    lab_dir: Path, submissions: Path, settings: RunSettings, jobs: int | None, shard: object
) -> ClassReport:
    from meshlab.backends.registry import get_backend
    from meshlab.grading.grader import Shard, grade

    backend = get_backend(settings.backend, settings.backend_options())
    try:
        return grade(
            lab_dir,
            submissions,
            settings.run_options(),
            backend,
            jobs=jobs,
            shard=shard if isinstance(shard, Shard) else None,
            done=_progress(),
        )
    finally:
        backend.close()


def _progress() -> Callable[[GradedSubmission], None]:
    """A line on stderr as each submission is graded (the table comes at the end)."""

    def done(s: GradedSubmission) -> None:
        state = "could not run" if s.error else f"{s.points:g}/{s.max_points:g}"
        click.echo(f"graded {printable(s.name)}: {state} ({s.seconds:.1f} s)", err=True)

    return done


def _table(report: ClassReport) -> list[str]:
    from meshlab.grading.output import summary_lines

    return summary_lines(report)


def _write_all(
    report: ClassReport,
    json_path: Path | None,
    junit_path: Path | None,
    csv_path: Path | None,
    markdown_path: Path | None,
) -> None:
    from meshlab.grading.output import csv_text, junit_xml, markdown_table

    writers: list[tuple[Path | None, Callable[[ClassReport], str]]] = [
        (json_path, lambda r: r.model_dump_json(indent=2) + "\n"),
        (junit_path, junit_xml),
        (csv_path, csv_text),
        (markdown_path, markdown_table),
    ]
    for path, render in writers:
        if path is None:
            continue
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(render(report), encoding="utf-8", newline="")
        except OSError as exc:
            raise click.FileError(str(path), hint=exc.strerror or str(exc)) from None
