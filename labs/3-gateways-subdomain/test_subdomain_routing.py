"""Lab 3 (subdomain)'s own tests: each host name gets its own webapp build, and the
student's classic mistake, a typo in a VirtualService's host.

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


def test_host_names_are_case_insensitive(mesh: Deployed) -> None:
    """A browser may type the name in capitals: host names match whatever their case."""
    outcomes = mesh.send(ProbeRequest("http://Experimental.Fleetman.COM/", origin=BROWSER), 20)
    assert {o.labels.get("version") for o in outcomes} == {"experimental"}


def test_a_typo_in_the_host_leaves_the_subdomain_unrouted(
    tmp_path: Path, mesh_backend: Backend
) -> None:
    """`experimental.fleetman.co` is not a host of the Gateway: istiod drops it from the
    gateway's routes, so experimental.fleetman.com (accepted by `*.fleetman.com`) has no
    route and the gateway answers 404. The analysis names the VirtualService and the hosts."""
    copy = broken_copy(
        tmp_path, "istio-rules.yaml", "- experimental.fleetman.com", "- experimental.fleetman.co"
    )
    message, analysis = run_one(copy, "experimental-subdomain", mesh_backend)
    assert "HTTP 404" in message, message
    assert "serves host 'experimental.fleetman.com'" in message, message
    assert "IST0132" in analysis, analysis
    assert "experimental.fleetman.co)" in analysis, analysis
