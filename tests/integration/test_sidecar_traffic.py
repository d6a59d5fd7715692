"""Sidecar resources on a real Envoy: each workload's sidecar sees what its Sidecar imports,
and a call to anything else never reaches it, while the other workloads' sidecars are
untouched (sidecar.go SidecarScope; httproute.go buildCatchAllVirtualHost)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from meshlab.backends.base import LabToDeploy, Outcome
from meshlab.backends.embedded.backend import EmbeddedBackend, EmbeddedMesh
from meshlab.load.manifests import load_manifests
from meshlab.mesh.plan import build_plan
from meshlab.mesh.request import Origin, ProbeRequest

pytestmark = pytest.mark.envoy

ROOT = Path(__file__).resolve().parents[2]
APP = ROOT / "labs" / "2-traffic" / "fleetman.yaml"
DATA = ROOT / "tests" / "data" / "whole"
STAFF = "http://fleetman-staff-service:8080/driver/City%20Truck"
API = "http://fleetman-api-gateway:8080/"
DRIVER = "http://fleetman-webapp/api/vehicles/driver/City%20Truck"


def deploy(backend: EmbeddedBackend, sidecar: Path) -> Iterator[EmbeddedMesh]:
    resources = load_manifests([APP, sidecar], "default")
    lab = LabToDeploy("test", "default", resources, build_plan(resources, "default"))
    with backend.deploy(lab) as deployed:
        yield deployed


@pytest.fixture(scope="module")
def webapp_scoped(backend: EmbeddedBackend) -> Iterator[EmbeddedMesh]:
    yield from deploy(backend, DATA / "sidecar-webapp.yaml")


@pytest.fixture(scope="module")
def gateway_scoped(backend: EmbeddedBackend) -> Iterator[EmbeddedMesh]:
    yield from deploy(backend, DATA / "sidecar-api-gateway.yaml")


def send(mesh: EmbeddedMesh, url: str, origin: Origin, n: int = 5) -> list[Outcome]:
    with mesh.session() as session:
        return session.send(ProbeRequest(url, origin=origin), n)


def staff_pods(outcomes: list[Outcome]) -> set[str]:
    return {h.pod or "" for o in outcomes for h in o.hops if "staff" in h.service}


def test_the_webapps_sidecar_keeps_it_from_staff_service(webapp_scoped: EmbeddedMesh) -> None:
    blocked = send(webapp_scoped, STAFF, Origin("workload", "webapp"))
    # the cluster's DNS knows the name; the webapp's own sidecar answers it (REGISTRY_ONLY)
    assert {o.status for o in blocked} == {502}, blocked
    assert staff_pods(blocked) <= {""}  # no staff pod ever answered
    # what it imports it still reaches, through its own sidecar
    allowed = send(webapp_scoped, API, Origin("workload", "webapp"))
    assert [o.status for o in allowed] == [200] * 5
    assert all(o.pod.startswith("api-gateway-") for o in allowed if o.pod)


def test_the_api_gateway_still_reaches_staff_service(webapp_scoped: EmbeddedMesh) -> None:
    direct = send(webapp_scoped, STAFF, Origin("workload", "api-gateway"))
    assert [o.status for o in direct] == [200] * 5
    assert all(p.startswith("staff-service") for p in staff_pods(direct))
    # and so the webapp's page still shows the driver: the lookup is the api-gateway's call
    chain = send(webapp_scoped, DRIVER, Origin())
    assert [o.status for o in chain] == [200] * 5
    assert all(o.hops[-1].service.startswith("fleetman-staff-service") for o in chain)


def test_a_blocked_call_in_the_chain_is_the_block_all_502(gateway_scoped: EmbeddedMesh) -> None:
    """The api-gateway's Sidecar imports the position tracker only (REGISTRY_ONLY): its
    driver lookup gets 502 from its own sidecar, no staff pod sees it, the page fails."""
    for outcome in send(gateway_scoped, DRIVER, Origin()):
        services = [(h.service.split(".")[0], h.status) for h in outcome.hops]
        assert services == [
            ("fleetman-webapp", 500),
            ("fleetman-api-gateway", 500),
            ("fleetman-staff-service", 502),
        ], outcome
        assert outcome.hops[-1].pod is None
