"""A student's submission as a lab folder: the instructor's lab.yaml, the student's copies of
the lab's manifests, and the instructor's for the files the student did not submit.

Why a merged copy: the instructor's lab.yaml is authoritative (a student cannot edit the
checks or the points), and nothing is read through a link or from outside the submission.
Only regular files whose names the lab's `manifests:` uses are copied; everything else in
the submission is listed as ignored, with the reason, so a student learns why it did not count.
"""

from __future__ import annotations

import os
import shutil
import stat
from pathlib import Path, PurePosixPath

from meshlab.errors import InputError, Location, printable
from meshlab.load.budgets import Budgets, over
from meshlab.load.lab import Lab
from meshlab.records import dataclass

MAX_LISTED = 50  # ignored files listed per submission (a report stays readable)


@dataclass(frozen=True)
class Merged:
    """The lab folder built for one submission, and what of the submission was left out."""

    root: Path
    submitted: tuple[str, ...]  # the manifests taken from the submission
    ignored: tuple[str, ...]  # "path: why", in path order


def manifest_names(lab: Lab) -> tuple[str, ...]:
    """The lab's manifests by their path relative to the lab folder (`k8s/app.yaml`)."""
    root = lab.root.resolve()
    return tuple(path.resolve().relative_to(root).as_posix() for path in lab.manifests)


def discover(submissions_dir: Path) -> list[Path]:
    """The submissions: every entry of the folder that is not a hidden file, by name. A
    symlink or a plain file among them is still a submission (graded 0, with the reason)."""
    return sorted(
        (p for p in submissions_dir.iterdir() if not p.name.startswith(".")),
        key=lambda p: p.name,
    )


def _why_ignored(relative: str, mode: int, names: set[str]) -> str | None:
    name = PurePosixPath(relative).name
    if stat.S_ISLNK(mode):
        return "a symlink (only regular files are read)"
    if name == "lab.yaml":
        return "the instructor's lab.yaml is the one graded"
    if name.endswith(".py"):
        return "Python files are not run when grading"
    if not stat.S_ISREG(mode):
        return "not a regular file"
    if relative not in names:
        return "not one of the lab's manifests"
    return None


def merge(lab: Lab, submission: Path, into: Path, budgets: Budgets) -> Merged:
    """Build the submission's lab folder at `into` (which must not exist). InputError when
    the submission is not a folder, or a file of it is over the bytes budget (not copied)."""
    if submission.is_symlink() or not submission.is_dir():
        what = "a symlink" if submission.is_symlink() else "not a folder"
        raise InputError(
            f"submission {printable(submission.name)!r} is {what}",
            hint="each submission is a folder holding the lab's files the student changed",
        )
    names = set(manifest_names(lab))
    submitted: list[str] = []
    ignored: list[str] = []
    into.mkdir(parents=True)
    for top, dirs, files in os.walk(submission, followlinks=False):
        base = Path(top)
        for entry in sorted(dirs + files):
            path = base / entry
            relative = path.relative_to(submission).as_posix()
            mode = path.lstat().st_mode
            if stat.S_ISDIR(mode):
                continue  # os.walk goes in (a symlinked folder is a link: listed below)
            why = _why_ignored(relative, mode, names)
            if why is not None:
                ignored.append(f"{printable(relative)}: {why}")
                continue
            size = path.lstat().st_size
            if size > budgets.manifest_bytes:  # not even copied
                raise over("manifest_bytes", f"{relative} is {size} bytes", budgets.manifest_bytes)
            target = into / relative
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, target, follow_symlinks=False)
            if not target.read_text(encoding="utf-8", errors="replace").strip():
                raise InputError(
                    f"{printable(relative)} is empty",
                    Location(target, 1, 1),
                    hint="submit the lab's file with your changes, or leave it out of the "
                    "submission to keep the lab's own",
                )
            submitted.append(relative)
        dirs[:] = [d for d in dirs if not (base / d).is_symlink()]
    for relative in sorted(names - set(submitted)):
        target = into / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(lab.root / relative, target)
    shutil.copyfile(lab.file, into / "lab.yaml")
    if len(ignored) > MAX_LISTED:
        ignored[MAX_LISTED:] = [f"... and {len(ignored) - MAX_LISTED} more files ignored"]
    return Merged(into, tuple(sorted(submitted)), tuple(ignored))
