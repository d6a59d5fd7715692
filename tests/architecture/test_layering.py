"""The package's one direction of flow, enforced: load → mesh → analysis → backends → checks →
report → pipeline → entry points. A module imports only from its own stage or earlier ones,
and no two modules import each other, however indirectly (lazy and type-only imports count:
they are coupling all the same)."""

from __future__ import annotations

import ast
import graphlib
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[2] / "src"
PACKAGE = SRC / "meshlab"

# Stage by module prefix, earliest first. The first matching prefix wins, so the longer
# prefixes come before the package they sit in.
STAGES: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("foundation", ("meshlab.errors", "meshlab.records", "meshlab.version")),
    ("load", ("meshlab.load",)),
    ("mesh", ("meshlab.mesh",)),
    ("analysis", ("meshlab.analysis",)),
    ("backends", ("meshlab.backends",)),
    ("checks", ("meshlab.checks",)),
    ("report", ("meshlab.report",)),
    (
        "pipeline",
        (
            "meshlab.pipeline",
            "meshlab.options",
            "meshlab.progress",
            "meshlab.grading",
            "meshlab.labtests",
        ),
    ),
    ("entry points", ("meshlab.cli", "meshlab.commands", "meshlab.pytest_plugin")),
    # the curated public API re-exports from every stage, lazily (see meshlab/__init__.py)
    ("public API", ("meshlab",)),
)


def module_name(path: Path) -> str:
    parts = list(path.relative_to(SRC).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


MODULES = {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def stage_of(module: str) -> int:
    for index, (_, prefixes) in enumerate(STAGES):
        if any(module == p or module.startswith(p + ".") for p in prefixes):
            return index
    raise AssertionError(f"{module} belongs to no stage: add it to STAGES")


def imports_of(module: str) -> set[str]:
    """The meshlab modules `module` imports; `from pkg import sub` counts as `pkg.sub`."""
    path = MODULES[module]
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                base = f"{anchor}.{base}" if base else anchor
            for alias in node.names:
                candidate = f"{base}.{alias.name}"
                found.add(candidate if candidate in MODULES else base)
    return {m for m in found if m in MODULES and m != module}


GRAPH = {module: imports_of(module) for module in MODULES}


def test_every_module_has_a_stage() -> None:
    for module in MODULES:
        stage_of(module)


@pytest.mark.parametrize("module", sorted(m for m in MODULES if m != "meshlab"))
def test_no_module_imports_a_later_stage(module: str) -> None:
    mine = stage_of(module)
    upward = sorted(
        f"{target} ({STAGES[stage_of(target)][0]})"
        for target in GRAPH[module]
        if stage_of(target) > mine
    )
    assert not upward, f"{module} ({STAGES[mine][0]}) imports a later stage: {upward}"


def test_no_import_cycles() -> None:
    try:
        tuple(graphlib.TopologicalSorter(GRAPH).static_order())
    except graphlib.CycleError as exc:
        cycle = " -> ".join(exc.args[1])
        pytest.fail(f"import cycle: {cycle}")


def test_no_module_is_over_500_lines() -> None:
    long = {
        module: n
        for module, path in MODULES.items()
        if (n := len(path.read_text(encoding="utf-8").splitlines())) > 500
    }
    assert not long, f"split these by job: {long}"


def test_the_checker_sees_an_upward_import(tmp_path: Path) -> None:
    """The test itself can fail: a planted upward import is caught."""
    assert "meshlab.load.lab" in GRAPH["meshlab.pipeline"] or any(
        m.startswith("meshlab.load") for m in GRAPH["meshlab.pipeline"]
    )
    assert stage_of("meshlab.load.yamlio") < stage_of("meshlab.report.text")
    assert stage_of("meshlab.backends.embedded.standins.server") == stage_of("meshlab.backends")
