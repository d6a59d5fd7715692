"""Lab 4 (no propagation)'s own tests: the header reaches the api-gateway but not the staff
service, and the check that states it fails as soon as the api-gateway passes headers on.

The change is made in a copy of the lab (tmp_path), deployed on the session's backend next
to the lab itself; only the check it affects is run.
"""

from __future__ import annotations

from pathlib import Path

from meshlab.backends.base import Backend, Deployed
from meshlab.labtests import broken_copy, run_failing_check
from meshlab.mesh.request import Origin, ProbeRequest

LAB = Path(__file__).parent
BROWSER = Origin("browser")
DRIVER = "http://192.168.49.2:31380/api/vehicles/driver/City%20Truck"


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
        LAB,
        tmp_path,
        "fleetman.yaml",
        "istio-fleetman-api-gateway:6-no-header-propagation",
        "istio-fleetman-api-gateway:6",
    )
    message, _ = run_failing_check(copy, "header-lost-after-the-first-hop", mesh_backend)
    assert "risky for 10 of 10 requests" in message, message
    assert "passes it on" in message, message
