"""Lab 3 (subdomain)'s own tests: each host name gets its own webapp build, and the
student's classic mistake, a typo in a VirtualService's host.

The mistake is made in a copy of the lab (tmp_path), deployed on the session's backend next
to the lab itself; only the check it breaks is run.
"""

from __future__ import annotations

from pathlib import Path

from meshlab.backends.base import Backend, Deployed
from meshlab.labtests import broken_copy, run_failing_check
from meshlab.mesh.request import Origin, ProbeRequest

LAB = Path(__file__).parent
BROWSER = Origin("browser")


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
        LAB,
        tmp_path,
        "istio-rules.yaml",
        "- experimental.fleetman.com",
        "- experimental.fleetman.co",
    )
    message, analysis = run_failing_check(copy, "experimental-subdomain", mesh_backend)
    assert "HTTP 404" in message, message
    assert "serves host 'experimental.fleetman.com'" in message, message
    assert "IST0132" in analysis, analysis
    assert "experimental.fleetman.co)" in analysis, analysis
