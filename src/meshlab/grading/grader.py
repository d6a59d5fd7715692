"""Grade every submission of a class against the instructor's lab, in parallel.

One process: imports, the instructor's lab and the backend (its Envoy lookup) once. Each
submission is a merged lab folder in its own temp folder, prepared and run as `meshlab run`
would, on its own processes and ports, under its own budgets (a RunLedger per run). A thread
per running submission suffices: the work is in Envoy and the stand-ins, not in Python.
Whatever one submission does (invalid, hostile, over budget, a backend that breaks under it)
ends as 0 points with the reason; the batch goes on.
"""

from __future__ import annotations

import os
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import suppress
from pathlib import Path

from meshlab.backends.base import Backend
from meshlab.checks import Check
from meshlab.errors import InputError, MeshlabError, printable, stop_behind
from meshlab.grading.model import ClassReport, GradedCheck, GradedSubmission
from meshlab.grading.submissions import discover, merge
from meshlab.pipeline import PreparedLab, RunOptions, prepare, run_prepared
from meshlab.records import dataclass

Done = Callable[[GradedSubmission], None]  # called as each submission is graded


@dataclass(frozen=True)
class Shard:
    """`--shard I/N`: this runner grades every N-th submission by name, from the I-th."""

    index: int  # 1-based
    count: int

    @classmethod
    def parse(cls, text: str) -> Shard:
        """`2/4` (ValueError says what is wrong)."""
        left, sep, right = text.partition("/")
        try:
            index, count = int(left), int(right)
        except ValueError:
            raise ValueError(f"{text!r} is not I/N, e.g. 1/4") from None
        if not sep or not 1 <= index <= count:
            raise ValueError(f"{text!r}: I must be 1 to N, e.g. 1/4")
        return cls(index, count)

    def take(self, names: Sequence[Path]) -> list[Path]:
        return [p for i, p in enumerate(names) if i % self.count == self.index - 1]

    def __str__(self) -> str:
        return f"{self.index}/{self.count}"


def default_jobs() -> int:
    """As many submissions at once as the machine has cores for this process."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def not_run(checks: Sequence[Check], why: str = "") -> list[GradedCheck]:
    return [
        GradedCheck(name=c.name, points=c.spec.points, outcome="not run", message=why)
        for c in checks
    ]


def _stoppable(clock: Callable[[], float], stop: threading.Event) -> Callable[[], float]:
    """The run's clock, a billion seconds ahead once the batch is stopping: every check of
    a running submission then ends at its next batch of requests (over its time budget),
    and its processes are stopped as after any run. No thread is ever killed."""

    def now() -> float:
        return clock() + (1e9 if stop.is_set() else 0.0)

    return now


def _forms(folder: Path) -> list[str]:
    """How messages write a path in `folder`: absolute, or relative to the working folder
    when it is inside it (meshlab.errors shows paths so)."""
    forms = [f"{folder}/"]
    with suppress(ValueError):  # not inside the working folder
        forms.insert(0, f"{folder.relative_to(Path.cwd().resolve())}/")
    return forms


def grade_one(
    instructor: PreparedLab,
    submission: Path,
    options: RunOptions,
    backend: Backend,
    stop: threading.Event | None = None,
) -> GradedSubmission:
    """One submission, start to end; never raises for anything the submission does.
    `stop` set (Ctrl-C, SIGTERM): its checks end within a request."""
    started = time.perf_counter()
    name = printable(submission.name)
    max_points = sum(c.spec.points for c in instructor.checks)
    ignored: list[str] = []
    with tempfile.TemporaryDirectory(prefix="meshlab-grade-") as tmp:
        folder = Path(tmp).resolve() / instructor.lab.name

        def unmerged(text: str) -> str:  # the merged folder's paths, as the student's files
            for form in _forms(folder):
                text = text.replace(form, f"{name}/")
            return text

        try:
            merged = merge(instructor.lab, submission, folder, options.budgets)
            ignored = list(merged.ignored)
            prepared = prepare(folder, options.budgets, options.design, options.requests)
            if stop is not None:
                prepared.ledger.clock = _stoppable(prepared.ledger.clock, stop)
            report = run_prepared(prepared, options, backend=backend)
        except InputError as exc:
            error = unmerged(str(exc))
        except MeshlabError as exc:  # the backend broke under this submission
            error = unmerged(f"backend error: {exc}")
        except OSError as exc:  # unreadable, vanished while copied: the submission's files
            error = unmerged(f"cannot read the submission: {exc.strerror or exc}")
        except Exception as exc:  # a bug in meshlab: this submission's, said plainly
            interrupt = stop_behind(exc)  # unless it is Ctrl-C or SIGTERM, wrapped on its way
            if interrupt is not None:
                raise interrupt from None
            error = unmerged(f"internal error: {type(exc).__name__}: {exc}")
        else:
            checks = [
                GradedCheck(
                    name=r.name,
                    points=r.points,
                    points_awarded=r.points_awarded,
                    outcome=r.outcome,
                    message=unmerged(r.message),
                    seconds=round(r.seconds, 3),
                )
                for r in report.results
            ]
            return GradedSubmission(
                name=name,
                points=sum(c.points_awarded for c in checks),
                max_points=max_points,
                passed=report.passed,
                ignored=ignored,
                seconds=round(time.perf_counter() - started, 3),
                checks=checks,
            )
    return GradedSubmission(
        name=name,
        max_points=max_points,
        error=printable(error, newlines=True),
        ignored=ignored,
        seconds=round(time.perf_counter() - started, 3),
        checks=not_run(instructor.checks, "not run: the submission could not be run"),
    )


def prepare_instructor_lab(lab_dir: Path, options: RunOptions) -> PreparedLab:
    """The instructor's lab, as shipped: must itself be valid (InputError, exit 2, if not)."""
    return prepare(lab_dir, options.budgets, options.design, options.requests)


def grade(
    lab_dir: Path,
    submissions_dir: Path,
    options: RunOptions,
    backend: Backend,
    *,
    jobs: int | None = None,
    shard: Shard | None = None,
    done: Done | None = None,
) -> ClassReport:
    """Every submission (of this shard) graded, `jobs` at a time; sorted by name."""
    instructor = prepare_instructor_lab(lab_dir, options)
    info = dict(backend.describe())  # the Envoy lookup, once: none here is exit 2 at once
    if not submissions_dir.is_dir():
        raise InputError(f"{printable(str(submissions_dir))} is not a folder of submissions")
    submissions = discover(submissions_dir)
    if shard is not None:
        submissions = shard.take(submissions)

    stop = threading.Event()

    def one(submission: Path) -> GradedSubmission:
        graded = grade_one(instructor, submission, options, backend, stop)
        if done is not None:
            done(graded)
        return graded

    workers = max(1, min(jobs or default_jobs(), len(submissions) or 1))
    with ThreadPoolExecutor(workers, thread_name_prefix="meshlab-grade") as pool:
        try:
            graded = list(pool.map(one, submissions))
        except BaseException:  # Ctrl-C, SIGTERM (cli.Stopped), a failing `done`
            stop.set()  # the running submissions stop within a request, and clean up
            pool.shutdown(wait=True, cancel_futures=True)
            raise
    return ClassReport(
        lab=instructor.lab.name,
        backend=info,
        shard=str(shard) if shard else None,
        submissions=sorted(graded, key=lambda s: s.name),
    )


def merge_reports(reports: Sequence[ClassReport]) -> ClassReport:
    """The shards' reports as one: the same lab, each submission once, sorted by name."""
    if not reports:
        raise InputError("no reports to merge")
    labs = {r.lab for r in reports}
    if len(labs) > 1:
        raise InputError(f"the reports are of different labs: {', '.join(sorted(labs))}")
    seen: dict[str, GradedSubmission] = {}
    for report in reports:
        for submission in report.submissions:
            if submission.name in seen:
                raise InputError(
                    f"submission {submission.name!r} is in more than one report",
                    hint="merge the reports of one `--shard I/N` run each, same N",
                )
            seen[submission.name] = submission
    return ClassReport(
        lab=reports[0].lab,
        backend=reports[0].backend,
        submissions=sorted(seen.values(), key=lambda s: s.name),
    )
