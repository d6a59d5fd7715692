"""Static analysis of a lab's objects: `istioctl analyze`'s checks for these kinds, offline,
plus Kiali's validations and meshlab's own (see docs/reference/analyzer.md for every code).

    analyze(resources, namespace) -> [Diagnostic]     objects already loaded
    analyze_paths([path, ...])     -> Analysis          files and folders, as `meshlab analyze`
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from meshlab.analysis import messages
from meshlab.analysis.base import (
    LEVELS,
    SERVICE_KINDS,
    WORKLOAD_KINDS,
    Analyzer,
    Context,
    Diagnostic,
    Level,
    Metadata,
    severity,
)
from meshlab.analysis.knockon import without_knock_on
from meshlab.analysis.registry import analyzers
from meshlab.errors import InputError, reading_input
from meshlab.load.manifests import Rejected, Resource, load_manifests_partial
from meshlab.records import dataclass

__all__ = [
    "LEVELS",
    "Analysis",
    "Analyzer",
    "Context",
    "Diagnostic",
    "Level",
    "Metadata",
    "analyze",
    "analyze_paths",
    "analyzers",
    "counts",
    "render_text",
    "severity",
]

_ISTIO_GROUP = "networking.istio.io/"
_NEEDS_TEXT = {"services": "Services", "pods": "Deployments or Pods"}


def analyze(
    resources: Sequence[Resource],
    namespace: str = "default",
    rejected: Sequence[Rejected] = (),
) -> list[Diagnostic]:
    """Every diagnostic for these objects, sorted by file, line and column."""
    ctx = Context(resources, namespace, rejected)
    refused = {r.kind for r in rejected}  # written, though refused: not a missing kind
    available = {
        "services": ctx.has_services or bool(refused & set(SERVICE_KINDS)),
        "pods": ctx.has_pods or bool(refused & set(WORKLOAD_KINDS)),
    }
    ctx.given = frozenset(need for need, present in available.items() if present)
    skipped: dict[str, list[str]] = {}
    for analyzer in analyzers():
        missing = [need for need in sorted(analyzer.metadata.needs) if not available[need]]
        if missing:
            skipped.setdefault(missing[0], []).append(analyzer.metadata.name)
            continue
        analyzer.analyze(ctx)
    for need, names in ctx.withheld.items():
        skipped.setdefault(need, []).extend(names)
    istio_objects = [r for r in resources if r.body.apiVersion.startswith(_ISTIO_GROUP)]
    if skipped and istio_objects:
        missing_text = " or ".join(_NEEDS_TEXT[need] for need in sorted(skipped))
        names = [name for need in sorted(skipped) for name in skipped[need]]
        ctx.report(
            messages.ANALYSIS_INCOMPLETE(
                None,
                istio_objects[0].location,
                missing=missing_text,
                count=len(names),
                skipped=", ".join(names),
                hint="analyze the app's Services and Deployments together with the rules, "
                "e.g. `meshlab analyze rules.yaml app.yaml`",
            )
        )
    found = without_knock_on(ctx.diagnostics, rejected)
    unique = {(d.code, d.location, d.message): d for d in found}
    return sorted(unique.values(), key=Diagnostic.sort_key)


@dataclass
class Analysis:
    """What `meshlab analyze` read and found."""

    files: list[Path]
    resources: list[Resource]
    diagnostics: list[Diagnostic]

    @property
    def errors(self) -> int:
        return sum(d.level == "error" for d in self.diagnostics)

    def to_json(self, threshold: Level = "info") -> dict[str, Any]:
        shown = [d for d in self.diagnostics if severity(d.level) >= severity(threshold)]
        return {
            "files": [str(f) for f in self.files],
            "objects": len(self.resources),
            "summary": counts(self.diagnostics),
            "diagnostics": [d.to_json() for d in shown],
        }


@reading_input("the files to analyze")
def analyze_paths(paths: Sequence[Path], namespace: str | None = None) -> Analysis:
    """Files, folders (their *.yaml, *.yml), lab folders (the manifests lab.yaml lists, in
    its namespace) or a folder of labs (each lab in it). Each lab is analysed on its own, as
    the mesh it is, and the loose files together. Unreadable input is an InputError; objects
    that would be refused at apply time become IST0106 diagnostics."""
    from meshlab.load.lab import LAB_FILE, load_lab

    groups: list[tuple[list[Path], str]] = []
    loose: list[Path] = []
    for path in paths:
        if (path.is_dir() and (path / LAB_FILE).is_file()) or path.name == LAB_FILE:
            lab = load_lab(path)
            groups.append((list(lab.manifests), namespace or lab.namespace))
        elif path.is_dir():
            yamls = _folder_yamls(path)
            labs = sorted(path.glob(f"*/{LAB_FILE}"))
            if not yamls and labs:  # a folder of labs
                for lab_file in labs:
                    lab = load_lab(lab_file)
                    groups.append((list(lab.manifests), namespace or lab.namespace))
                continue
            if not yamls:
                raise InputError(
                    f"no *.yaml or *.yml files in {path}",
                    hint=f"give YAML files, a lab folder or a folder of labs (with {LAB_FILE})",
                )
            loose += yamls
        elif path.is_file():
            loose.append(path)
        else:
            raise InputError(f"no such file or folder: {path}")
    if loose:
        groups.append((loose, namespace or "default"))
    files: list[Path] = []
    resources: list[Resource] = []
    diagnostics: list[Diagnostic] = []
    for group, ns in groups:
        unique = [f for f in dict.fromkeys(group) if f not in files]
        files += unique
        found, refused = load_manifests_partial(unique, ns)
        resources += found
        diagnostics += analyze(found, ns, refused)
    return Analysis(files, resources, diagnostics)


def _folder_yamls(folder: Path) -> list[Path]:
    """The *.yaml and *.yml files of `folder`; a symbolic link out of it is an error (a
    submission must not make meshlab read, and echo, files from elsewhere)."""
    inside = folder.resolve()
    yamls = []
    for path in sorted(folder.iterdir()):
        if path.suffix not in (".yaml", ".yml"):
            continue
        try:
            target = path.resolve()
        except (OSError, RuntimeError):  # a symlink loop
            target = None
        if target is None or not target.is_relative_to(inside):
            raise InputError(
                f"{path} is a symbolic link to a file outside {folder}",
                hint="analyze the files themselves, not links to them",
            )
        yamls.append(path)
    return yamls


def counts(diagnostics: Sequence[Diagnostic]) -> dict[str, int]:
    return {level: sum(d.level == level for d in diagnostics) for level in reversed(LEVELS)}


def render_text(diagnostics: Sequence[Diagnostic], threshold: Level = "info") -> list[str]:
    """Compiler-style lines (with hint lines) for the diagnostics at or above `threshold`."""
    lines: list[str] = []
    for diagnostic in diagnostics:
        if severity(diagnostic.level) >= severity(threshold):
            lines += str(diagnostic).splitlines()
    return lines


def summary(diagnostics: Sequence[Diagnostic]) -> str:
    found = counts(diagnostics)
    parts = [
        f"{found['error']} error" + ("s" if found["error"] != 1 else ""),
        f"{found['warning']} warning" + ("s" if found["warning"] != 1 else ""),
        f"{found['info']} info",
    ]
    return ", ".join(parts)


# Analyzers read kinds through Context; these tell callers which kinds make the registry.
REGISTRY_KINDS = SERVICE_KINDS + WORKLOAD_KINDS
