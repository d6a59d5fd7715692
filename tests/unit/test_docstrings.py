"""Every dataclass in meshlab says in its own docstring what it is and why.

Without one, `dataclasses` writes `Name(field: type, ...)` into `__doc__`, built with
`inspect.signature` at import time, and the reader learns nothing the fields do not say.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SRC = ROOT / "src"

# A fresh interpreter imports every module of meshlab (this process keeps what it has) and
# reports each dataclass defined there, nested classes included, with its docstring.
_PROBE = """
import dataclasses, importlib, json, pkgutil, meshlab

def classes(owner, module):
    for value in vars(owner).values():
        if isinstance(value, type) and value.__module__ == module:
            yield value
            yield from classes(value, module)

found = {}
for info in pkgutil.walk_packages(meshlab.__path__, "meshlab."):
    module = importlib.import_module(info.name)
    for cls in classes(module, info.name):
        if dataclasses.is_dataclass(cls):
            found[f"{cls.__module__}.{cls.__qualname__}"] = [cls.__name__, cls.__doc__]
print(json.dumps(found))
"""


def _dataclasses() -> dict[str, tuple[str, str | None]]:
    done = subprocess.run(
        [sys.executable, "-c", _PROBE],
        capture_output=True,
        text=True,
        env={"PYTHONPATH": str(SRC), "PATH": ""},
        cwd=ROOT,
        timeout=60,
        check=True,
    )
    return {name: (short, doc) for name, (short, doc) in json.loads(done.stdout).items()}


def _generated(short: str, doc: str | None) -> bool:
    """True when `__doc__` is the one `dataclasses` writes for a class with none."""
    return doc is None or doc.startswith(f"{short}(")


def test_every_dataclass_has_its_own_docstring() -> None:
    found = _dataclasses()
    # The walk reaches every stage, private classes too: it cannot pass by finding nothing.
    assert {"meshlab.mesh.model.MeshPlan", "meshlab.report.traffic._Edge"} <= set(found)
    assert len(found) > 100
    missing = sorted(name for name, (short, doc) in found.items() if _generated(short, doc))
    assert not missing, "dataclasses without a docstring of their own:\n" + "\n".join(missing)


def test_a_generated_docstring_is_told_apart_from_a_written_one() -> None:
    assert _generated("Edge", "Edge(source: str, target: str)")
    assert _generated("Edge", None)
    assert not _generated("Edge", "A hop between two services, drawn as an arrow.")
