"""The lab format: a folder with `lab.yaml` naming its manifests and its checks.

This is a contract other tools read, so it is validated strictly: unknown keys, wrong types,
and manifest paths outside the lab folder are errors with file:line. Each check stays a raw
entry here (its name and kind checked); the check kinds, a later stage, validate the rest
(`meshlab.checks.load_checked_lab`), so loading never depends on what the kinds are.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from pydantic import Field, field_validator

from meshlab.errors import ErrorCollector, InputError, Location
from meshlab.load.k8s import check_dns1123_label
from meshlab.load.schema import Strict, validate
from meshlab.load.yamlio import PathKey, YamlDocument, load_documents
from meshlab.records import dataclass

LAB_FILE = "lab.yaml"
_CHECK_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,252}$")
# C0 and C1 control characters, DEL, and Unicode line/paragraph separators
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029]")
_MAX_PATH = 1024


class LabFile(Strict):
    title: str = Field(min_length=1, max_length=200)
    manifests: list[str] = Field(min_length=1)
    checks: list[dict[str, Any]] = Field(min_length=1)
    namespace: str = "default"
    description: str | None = None

    @field_validator("namespace")
    @classmethod
    def _namespace(cls, value: str) -> str:
        return check_dns1123_label(value, "namespace")

    @field_validator("title")
    @classmethod
    def _title(cls, value: str) -> str:
        if _CONTROL.search(value):
            raise ValueError("title must be one line of text, without control characters")
        return value


@dataclass(frozen=True)
class CheckEntry:
    """One item of `checks:` as written: a name, a kind and the rest, not yet validated
    against its kind's schema."""

    name: str
    kind: str
    raw: dict[str, Any]
    document: YamlDocument
    at: PathKey

    @property
    def location(self) -> Location:
        return self.document.locate(self.at)

    def locate(self, *path: str | int) -> Location:
        return self.document.locate((*self.at, *path))


@dataclass(frozen=True)
class Lab:
    """A loaded lab: its folder, title, the namespace it deploys to, the manifests to apply and the
    checks to run, with the parsed lab.yaml kept so later errors can point into it."""

    root: Path
    file: Path
    title: str
    namespace: str
    manifests: tuple[Path, ...]
    checks: tuple[CheckEntry, ...]
    document: YamlDocument
    description: str | None = None

    @property
    def name(self) -> str:
        # resolve(): `meshlab run .` would otherwise be lab "" (Path(".").name is empty)
        return self.root.resolve().name


def find_lab_file(path: Path) -> Path:
    """`labs/2-traffic` or `labs/2-traffic/lab.yaml` -> the lab.yaml path."""
    candidate = path / LAB_FILE if path.is_dir() else path
    if candidate.is_file() and candidate.name != LAB_FILE:
        raise InputError(
            f"{path} is not a lab: meshlab runs a lab folder (or its {LAB_FILE})",
            hint="pass a lab folder such as labs/2-traffic",
        )
    if not candidate.is_file():
        raise InputError(
            f"no {LAB_FILE} found at {path}", hint="pass a lab folder such as labs/2-traffic"
        )
    try:
        inside = candidate.resolve().is_relative_to(candidate.parent.resolve())
    except (OSError, RuntimeError):
        inside = False
    if not inside:  # never read (nor echo in errors) a file from elsewhere
        raise InputError(
            f"{candidate} is a symbolic link to a file outside the lab folder",
            hint=f"a lab's {LAB_FILE} must be a file inside the lab folder itself",
        )
    return candidate


def load_lab(path: Path, errors: ErrorCollector | None = None) -> Lab:
    """Read and validate lab.yaml. With `errors`, mistakes in entries are collected there for
    the caller to raise together with its own (a student sees every mistake in one run)."""
    lab_file = find_lab_file(path)
    root = lab_file.parent
    documents = load_documents(lab_file)
    if len(documents) != 1 or not isinstance(documents[0].data, dict):
        raise InputError(
            f"{LAB_FILE} must hold exactly one mapping (title, manifests, checks)",
            documents[0].start if documents else Location(lab_file, 1),
        )
    document = documents[0]
    spec = validate(LabFile, document.data, document, what=LAB_FILE)
    collector = errors if errors is not None else ErrorCollector()
    manifests = []
    for index, entry in enumerate(spec.manifests):
        with collector.collecting():
            manifests.append(_manifest_path(root, entry, document, index))
    checks: list[CheckEntry] = []
    for index, raw in enumerate(spec.checks):
        with collector.collecting():
            check = _check_entry(raw, document, ("checks", index))
            taken = {c.name for c in checks}
            checks.append(check)  # a bad name still gets its kind's checks
            if check.name:  # else the kind's schema says the name is missing
                _check_name(check, taken)
    if errors is None:
        collector.raise_if_any()
    return Lab(
        root,
        lab_file,
        spec.title,
        spec.namespace,
        tuple(manifests),
        tuple(checks),
        document,
        spec.description,
    )


def _check_entry(raw: dict[str, Any], document: YamlDocument, at: PathKey) -> CheckEntry:
    """Name and kind, as every check has them; a missing kind is reported by the kinds' stage
    (it knows which kinds exist)."""
    name, kind = raw.get("name"), raw.get("kind")
    return CheckEntry(
        name if isinstance(name, str) else "",
        kind if isinstance(kind, str) else "",
        raw,
        document,
        at,
    )


def _check_name(check: CheckEntry, taken: set[str]) -> None:
    """Check names become pytest item ids and report keys: unique, and plain."""
    if check.name in taken:
        raise InputError(f'duplicate check name "{check.name}"', check.location)
    if not _CHECK_NAME.fullmatch(check.name):
        raise InputError(
            f"check name {_clip(check.name)!r} may use letters, digits, '-', '_', '.' only "
            "(at most 253 characters)",
            check.location,
        )


def _manifest_path(root: Path, entry: str, document: YamlDocument, index: int) -> Path:
    where = document.locate(("manifests", index))
    if _CONTROL.search(entry) or len(entry) > _MAX_PATH:
        raise InputError(
            f"manifest path {_clip(entry)!r} is not a usable file name (control characters, "
            f"or longer than {_MAX_PATH} characters)",
            where,
        )
    if Path(entry).is_absolute():
        raise InputError(f'manifest path "{entry}" must be relative to the lab folder', where)
    try:
        resolved = (root / entry).resolve()
        leaves = not resolved.is_relative_to(root.resolve())
        found = not leaves and resolved.is_file()
    except (OSError, RuntimeError) as exc:  # a name too long, a symlink loop
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise InputError(f'manifest path "{entry}" cannot be used: {reason}', where) from None
    if leaves:
        raise InputError(
            f'manifest path "{entry}" leaves the lab folder',
            where,
            hint="labs may only apply files inside their own folder",
        )
    if not found:
        raise InputError(f'manifest "{entry}" not found in {root}', where)
    return resolved


def _clip(text: str) -> str:
    return text if len(text) <= 80 else text[:80] + "..."
