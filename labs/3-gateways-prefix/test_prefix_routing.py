"""Lab 3 (prefix)'s own tests: any path under /experimental is the experimental webapp, and
the student's classic mistake, the catch-all route written first.

The mistake is made in a copy of the lab (tmp_path), deployed on the session's backend next
to the lab itself; only the check it breaks is run.
"""

from __future__ import annotations

import shutil
from dataclasses import replace
from pathlib import Path

from meshlab.backends.base import Backend, Deployed
from meshlab.mesh.request import Origin, ProbeRequest
from meshlab.pipeline import prepare, run_prepared

LAB = Path(__file__).parent
BROWSER = Origin("browser")
GATEWAY = "http://192.168.49.2:31380"


def broken_copy(tmp_path: Path, file: str, old: str, new: str) -> Path:
    """The lab, copied, with one edit a student might make (the edit must apply)."""
    copy = tmp_path / LAB.name
    shutil.copytree(LAB, copy, ignore=shutil.ignore_patterns("test_*", "__pycache__"))
    text = (copy / file).read_text()
    assert old in text, f"{file} no longer holds {old!r}: update this test"
    (copy / file).write_text(text.replace(old, new, 1))
    return copy


def run_one(lab_dir: Path, check: str, backend: Backend) -> tuple[str, str]:
    """Run one check of a lab folder (it must fail): its message, and the static analysis'
    findings that `meshlab run` prints above it."""
    prepared = prepare(lab_dir)
    only = tuple(c for c in prepared.checks if c.name == check)
    report = run_prepared(replace(prepared, checks=only), backend=backend)
    (result,) = report.results
    assert not result.passed, result.message
    return result.message, "\n".join(str(d) for d in prepared.diagnostics)


def test_a_prefix_matches_deeper_paths_too(mesh: Deployed) -> None:
    """`prefix: /experimental` matches the start of the path: a deep link stays on the
    experimental build, and so does `/experimentalist` (a prefix is not a path segment)."""
    for path in ("/experimental/vehicles", "/experimentalist", "/canary?x=1"):
        outcomes = mesh.send(ProbeRequest(GATEWAY + path, origin=BROWSER), 20)
        assert {o.labels.get("version") for o in outcomes} == {"experimental"}, path


def test_the_catch_all_first_hides_the_prefixes(tmp_path: Path, mesh_backend: Backend) -> None:
    """Routes are tried in order: with `prefix: /` first, every request is the original
    webapp's. The check fails on what the browser got; the analysis names the dead rule."""
    text = (LAB / "istio-rules.yaml").read_text()
    first = text.index("  - match:\n    - uri:\n        prefix: /experimental")
    catch_all = text.index("  - match:\n    - uri:\n        prefix: /\n")
    end = text.index("---", catch_all)
    swapped = text[:first] + text[catch_all:end] + text[first:catch_all] + text[end:]
    copy = broken_copy(tmp_path, "istio-rules.yaml", text, swapped)
    message, analysis = run_one(copy, "experimental-prefix", mesh_backend)
    assert "original for 10 of 10 requests" in message, message
    assert "ML0108" in analysis, analysis
    assert "http[0] matches every request" in analysis, analysis
