"""Lab 4 (no propagation)'s own tests: the header reaches the api-gateway but not the staff
service, and the check that states it fails as soon as the api-gateway passes headers on.

The change is made in a copy of the lab (tmp_path), deployed on the session's backend next
to the lab itself; only the check it affects is run.
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
DRIVER = "http://192.168.49.2:31380/api/vehicles/driver/City%20Truck"


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


def test_the_header_is_lost_at_the_api_gateway(mesh: Deployed) -> None:
    """The chain behind one request: the webapp's nginx forwards the header to the
    api-gateway, whose call to the staff service goes without it, to the safe build."""
    dark = ProbeRequest(DRIVER, headers={"x-my-header": "canary"}, origin=BROWSER)
    for outcome in mesh.send(dark, 20):
        assert outcome.status == 200, outcome
        staff = [h for h in outcome.hops if "fleetman-staff-service" in h.service]
        assert len(staff) == 1, outcome.hops
        assert staff[0].labels.get("version") == "safe", staff[0]


def test_with_propagating_images_the_header_gets_through(
    tmp_path: Path, mesh_backend: Backend
) -> None:
    """The check is not a tautology: with the api-gateway's tag 6 image (which copies x-
    headers onto its calls) the same request reaches the risky build, and the message says
    that propagation decides it."""
    copy = broken_copy(
        tmp_path,
        "fleetman.yaml",
        "istio-fleetman-api-gateway:6-no-header-propagation",
        "istio-fleetman-api-gateway:6",
    )
    message, _ = run_one(copy, "header-lost-after-the-first-hop", mesh_backend)
    assert "risky for 10 of 10 requests" in message, message
    assert "passes it on" in message, message
