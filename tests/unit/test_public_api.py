"""The curated public API (as httpx keeps one): sorted, complete, every name importable, and
importing the package itself stays light (the stand-in pods import it)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

import meshlab


def test_all_is_sorted_and_matches_the_exports() -> None:
    assert meshlab.__all__ == sorted(meshlab.__all__)
    assert set(meshlab.__all__) == set(meshlab._EXPORTS)


def test_every_public_name_resolves_to_the_object_its_module_defines() -> None:
    import importlib

    for name in meshlab.__all__:
        module = importlib.import_module(meshlab._EXPORTS[name])
        assert getattr(meshlab, name) is getattr(module, name), name


def test_an_unknown_name_is_an_attribute_error() -> None:
    with pytest.raises(AttributeError, match="no_such_thing"):
        meshlab.no_such_thing  # noqa: B018


def test_the_version_is_pyprojects_and_the_installed_metadatas() -> None:
    """meshlab.version is a literal (no importlib.metadata at start-up): it must say what
    pyproject.toml says, and what the installed package says."""
    import tomllib
    from importlib.metadata import version

    pyproject = Path(__file__).resolve().parents[2] / "pyproject.toml"
    declared = tomllib.loads(pyproject.read_text(encoding="utf-8"))["project"]["version"]
    assert meshlab.__version__ == declared
    assert meshlab.__version__ == version("meshlab")


def test_importing_meshlab_loads_nothing_heavy() -> None:
    code = (
        "import sys, meshlab\n"
        "heavy = {'pydantic', 'scipy', 'yaml', 'click', 'httpx', 'rich'}\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in heavy))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
