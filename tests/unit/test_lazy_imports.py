"""Start-up stays cheap: what a run of lab 2 never uses is never imported or built.

No timings (they flake on a shared machine): a fresh interpreter reports which modules it
imported and which pydantic schemas it built, and the test names what must stay lazy.
"""

from __future__ import annotations

import ast
import importlib
import io
import json
import subprocess
import sys
from pathlib import Path

import pytest

from meshlab.checks import base as checks_base
from meshlab.checks import registry
from meshlab.commands.lazy import LazyGroup
from meshlab.load import istio

ROOT = Path(__file__).resolve().parents[2]
SRC = ROOT / "src"

# Imports meshlab as the CLI does, loads lab 2 as `meshlab run` does (no backend), and
# reports what is loaded and which of meshlab's schemas are built.
_PROBE = """
import json, sys
from pathlib import Path
from pydantic import BaseModel

def built():
    seen, todo = [], [BaseModel]
    while todo:
        for sub in todo.pop().__subclasses__():
            todo.append(sub)
            if sub.__module__.startswith("meshlab.") and sub.__pydantic_complete__:
                seen.append(f"{sub.__module__}.{sub.__qualname__}")
    return sorted(set(seen))

import meshlab.cli, meshlab.pipeline, meshlab.backends.embedded.backend
after_import = {"modules": sorted(m for m in sys.modules if m.startswith("meshlab")),
                "built": built(), "stdlib": sorted(sys.modules)}
from meshlab.pipeline import prepare
prepare(Path(sys.argv[1]))
after_prepare = {"modules": sorted(m for m in sys.modules if m.startswith("meshlab")),
                 "built": built()}
from meshlab.progress import progress_display
with progress_display() as progress:  # stderr is a pipe here: plain lines
    pass
drawn = {"modules": sorted(m for m in sys.modules if m.startswith(("meshlab", "rich")))}
print(json.dumps({"import": after_import, "prepare": after_prepare, "progress": drawn}))
"""

# Check kinds lab 2 does not use; Istio kinds lab 2 does not write.
_UNUSED_CHECKS = ("status", "ejection", "overflow", "sticky", "reachability", "latency")
_UNWRITTEN_KINDS = ("gateway", "serviceentry", "sidecar")


@pytest.fixture(scope="module")
def probe() -> dict[str, dict[str, list[str]]]:
    done = subprocess.run(
        [sys.executable, "-c", _PROBE, str(ROOT / "labs" / "2-traffic")],
        capture_output=True,
        text=True,
        check=True,
        env={"PYTHONPATH": str(SRC), "PATH": "/usr/bin:/bin"},
        timeout=120,
    )
    result: dict[str, dict[str, list[str]]] = json.loads(done.stdout)
    return result


@pytest.mark.parametrize("stage", ["import", "prepare"])
def test_unused_check_kinds_are_not_imported(
    probe: dict[str, dict[str, list[str]]], stage: str
) -> None:
    loaded = set(probe[stage]["modules"])
    assert not {f"meshlab.checks.{k}" for k in _UNUSED_CHECKS} & loaded


@pytest.mark.parametrize("stage", ["import", "prepare"])
def test_unwritten_istio_kinds_are_not_imported(
    probe: dict[str, dict[str, list[str]]], stage: str
) -> None:
    loaded = set(probe[stage]["modules"])
    assert not {f"meshlab.load.istio.{k}" for k in _UNWRITTEN_KINDS} & loaded


def test_importing_builds_no_manifest_schema(probe: dict[str, dict[str, list[str]]]) -> None:
    """defer_build: a schema is built when first used, never by importing its module."""
    built = [m for m in probe["import"]["built"] if m.startswith("meshlab.load.")]
    assert built == []


def test_loading_lab_2_builds_the_schemas_it_validates_only(
    probe: dict[str, dict[str, list[str]]],
) -> None:
    built = set(probe["prepare"]["built"])
    assert "meshlab.load.istio.virtualservice.VirtualService" in built  # the test can fail
    assert "meshlab.load.k8s.Deployment" in built
    assert "meshlab.load.istio.peerauthentication.PeerAuthentication" not in built


def test_importing_builds_no_report_schema(probe: dict[str, dict[str, list[str]]]) -> None:
    """The report's schemas are built when the run's report is, and only those it uses."""
    assert [m for m in probe["import"]["built"] if m.startswith("meshlab.report.")] == []
    assert [m for m in probe["prepare"]["built"] if m.startswith("meshlab.report.")] == []


def test_importing_reads_no_package_metadata(probe: dict[str, dict[str, list[str]]]) -> None:
    """meshlab.version is a literal. (pydantic's plugin loader imports importlib.metadata on
    the first schema build, in prepare: that one is pydantic's to pay.)"""
    assert "meshlab.version" in probe["import"]["stdlib"]  # the probe can see it
    assert "importlib.metadata" not in probe["import"]["stdlib"]


def test_the_run_process_imports_no_stand_in_server(
    probe: dict[str, dict[str, list[str]]],
) -> None:
    """The run hands pods to a stand-in host and never serves one: the pods' types come
    from standins.pods, not from the server (http.server, socketserver: ~10 ms). A cold
    start's thread pool (concurrent.futures, logging) and `--mode validate`'s module (a
    refused config's) are imported when used."""
    loaded = set(probe["import"]["stdlib"])
    assert "meshlab.backends.embedded.standins.pods" in loaded  # the probe can see it
    assert (
        not {
            "meshlab.backends.embedded.standins.server",
            "http.server",
            "socketserver",
            "concurrent.futures",
            "meshlab.backends.embedded.envoy.validate",
        }
        & loaded
    )


@pytest.mark.parametrize("stage", ["import", "prepare"])
def test_a_run_imports_no_other_subcommand(
    probe: dict[str, dict[str, list[str]]], stage: str
) -> None:
    loaded = set(probe[stage]["modules"])
    assert "meshlab.cli" in loaded  # the probe imported the command line
    others = ("analyze", "explain", "grade", "labs", "up", "wizard")
    assert not {f"meshlab.commands.{name}" for name in others} & loaded


def test_every_lazy_subcommand_is_the_command_of_its_name() -> None:
    """A typo in the table would only show when a student runs that command."""
    import click

    from meshlab.cli import cli

    assert isinstance(cli, LazyGroup)
    ctx = click.Context(cli)
    for name in cli.lazy:
        command = cli.get_command(ctx, name)
        assert command is not None
        assert command.name == name
    assert "run" in cli.list_commands(ctx)
    assert cli.list_commands(ctx) == sorted(cli.list_commands(ctx))


def test_no_schema_takes_a_builtin_default_factory() -> None:
    """`Field(default=[])`, not `Field(default_factory=list)`: pydantic copies a mutable default
    for each object anyway, and a factory makes every schema build that meets it call
    inspect.signature(list), which tokenizes list's text signature (~10 ms for lab 2)."""
    from pydantic import BaseModel

    for path in sorted((SRC / "meshlab").rglob("*.py")):
        module = ".".join(path.relative_to(SRC).with_suffix("").parts).removesuffix(".__init__")
        if ".standins" in module or module.endswith("__main__"):
            continue  # stdlib only, no pydantic there
        importlib.import_module(module)
    offenders, todo, seen = [], [BaseModel], 0
    while todo:
        for model in todo.pop().__subclasses__():
            todo.append(model)
            if not model.__module__.startswith("meshlab."):
                continue
            seen += 1
            offenders += [
                f"{model.__module__}.{model.__qualname__}.{name}"
                for name, info in model.model_fields.items()
                if info.default_factory in (list, dict, set, tuple, frozenset)
            ]
    assert seen > 50  # the walk found meshlab's schemas: the test can fail
    assert offenders == []


def test_progress_without_a_terminal_does_not_import_rich(
    probe: dict[str, dict[str, list[str]]],
) -> None:
    assert "meshlab.progress" in probe["progress"]["modules"]  # the probe did use it
    assert not [m for m in probe["progress"]["modules"] if m.startswith("rich")]


@pytest.mark.parametrize("variable", ["FORCE_COLOR", "TTY_COMPATIBLE"])
def test_progress_asks_rich_when_a_variable_may_force_drawing(
    monkeypatch: pytest.MonkeyPatch, variable: str
) -> None:
    from meshlab import progress

    for name in ("FORCE_COLOR", "TTY_COMPATIBLE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(sys, "stderr", io.StringIO())  # no tty
    assert progress._surely_not_a_terminal()
    monkeypatch.setenv(variable, "1")
    assert not progress._surely_not_a_terminal()


def test_every_builtin_kind_is_listed_with_its_module() -> None:
    """A kind module that registers itself must be in BUILTIN_KINDS, or no lab could find it."""
    declared: dict[str, str] = {}
    for path in sorted((SRC / "meshlab" / "checks").glob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.ClassDef) and any(
                isinstance(d, ast.Name) and d.id == "register" for d in node.decorator_list
            ):
                kind = next(
                    s.value.value
                    for s in node.body
                    if isinstance(s, ast.Assign)
                    and any(isinstance(t, ast.Name) and t.id == "kind" for t in s.targets)
                    and isinstance(s.value, ast.Constant)
                )
                declared[kind] = f"meshlab.checks.{path.stem}"
    assert declared == checks_base.BUILTIN_KINDS
    kinds = registry()
    assert sorted(kinds) == sorted(declared)
    assert all(kinds[name].kind == name for name in declared)


def test_istio_package_names_each_lazy_name_where_it_is_defined() -> None:
    """The TYPE_CHECKING imports (what mypy sees) and the lazy table agree, and all resolve."""
    tree = ast.parse((SRC / "meshlab" / "load" / "istio" / "__init__.py").read_text())
    typed = {
        alias.name: node.module.rsplit(".", 1)[1]
        for node in ast.walk(tree)
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("meshlab")
        for alias in node.names
    }
    assert typed == istio._WHERE
    assert sorted(istio.__all__) == sorted(typed)
    for name in istio.__all__:
        assert getattr(istio, name) is not None
    with pytest.raises(AttributeError):
        istio.NoSuchKind  # noqa: B018
