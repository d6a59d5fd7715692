"""Helpers for a lab's own tests: make the mistake a student would in a copy of the lab, run
the one check it should break, and read what the student would read (the check's message and
the static analysis `meshlab run` prints above it). Labs' test files share these rather than
each carrying its own copy."""

from __future__ import annotations

import shutil
from dataclasses import replace
from pathlib import Path

from meshlab.backends.base import Backend
from meshlab.pipeline import prepare, run_prepared


def broken_copy(lab: Path, tmp_path: Path, file: str, old: str, new: str) -> Path:
    """`lab` copied under `tmp_path` (its tests left out) with the first `old` in `file`
    replaced by `new`; AssertionError if `old` is not there (the lab changed: fix the test)."""
    copy = tmp_path / lab.name
    shutil.copytree(lab, copy, ignore=shutil.ignore_patterns("test_*", "__pycache__"))
    text = (copy / file).read_text(encoding="utf-8")
    if old not in text:
        raise AssertionError(f"{file} no longer holds {old!r}: update this test")
    (copy / file).write_text(text.replace(old, new, 1), encoding="utf-8")
    return copy


def run_failing_check(lab_dir: Path, check: str, backend: Backend) -> tuple[str, str]:
    """Run the check named `check` of `lab_dir` alone on `backend`; it must fail
    (AssertionError if it passed). Its message, and the analysis' findings as printed."""
    prepared = prepare(lab_dir)
    only = tuple(c for c in prepared.checks if c.name == check)
    if not only:
        raise AssertionError(f"{lab_dir} has no check named {check!r}")
    (result,) = run_prepared(replace(prepared, checks=only), backend=backend).results
    if result.passed:
        raise AssertionError(
            f"{check} passed, but the broken lab should fail it:\n{result.message}"
        )
    return result.message, "\n".join(str(d) for d in prepared.diagnostics)
