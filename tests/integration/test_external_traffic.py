"""ServiceEntry hosts on a real Envoy: an external host is answered by its loopback stand-in
(never the outside world), a VirtualService for an external host routes it on, and under
REGISTRY_ONLY an unregistered host is refused with 502 (httproute.go
buildCatchAllVirtualHost) while a registered one is still served."""

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

DATA = Path(__file__).resolve().parents[1] / "data" / "external"


def deploy(backend: EmbeddedBackend, *extra: str) -> Iterator[EmbeddedMesh]:
    files = [DATA / "app.yaml", DATA / "entries.yaml", *(DATA / e for e in extra)]
    resources = load_manifests(files, "default")
    lab = LabToDeploy("test", "default", resources, build_plan(resources, "default"))
    with backend.deploy(lab) as deployed:
        yield deployed


@pytest.fixture(scope="module")
def registry_only(backend: EmbeddedBackend) -> Iterator[EmbeddedMesh]:
    yield from deploy(backend, "registry-only.yaml")


def send(mesh: EmbeddedMesh, url: str, origin: Origin | None = None, n: int = 4) -> list[Outcome]:
    with mesh.session() as session:
        request = ProbeRequest(url) if origin is None else ProbeRequest(url, origin=origin)
        return session.send(request, n)


def test_external_hosts_answer_from_loopback_stand_ins(registry_only: EmbeddedMesh) -> None:
    served = send(registry_only, "http://api.example.com/drivers")
    assert [o.status for o in served] == [200] * 4
    assert {o.pod for o in served} == {"external-api-example-com-0"}
    # a STATIC entry's two public addresses are two local stand-ins, sharing the traffic
    static = send(registry_only, "http://static.example.org/", n=12)
    assert {o.pod for o in static} == {
        "external-static-example-org-0",
        "external-static-example-org-1",
    }
    # from a workload's own sidecar too
    staff = send(registry_only, "http://google.com/", Origin("workload", "staff"))
    assert {(o.status, o.pod) for o in staff} == {(200, "external-google-com-0")}


def test_a_virtual_service_sends_one_external_host_to_another(registry_only: EmbeddedMesh) -> None:
    routed = send(registry_only, "http://www.google.com/search")
    assert {(o.status, o.pod) for o in routed} == {(200, "external-google-com-0")}


def test_registry_only_refuses_an_unregistered_host(registry_only: EmbeddedMesh) -> None:
    refused = send(registry_only, "http://example.net/")
    assert {o.status for o in refused} == {502}
    assert all(o.pod is None or not o.pod.startswith("external-") for o in refused)


LAB10 = Path(__file__).resolve().parents[2] / "labs" / "10-service-entries"


@pytest.fixture(scope="module")
def egress(backend: EmbeddedBackend) -> Iterator[EmbeddedMesh]:
    names = ["fleetman.yaml", "mesh-config.yaml", "service-entries.yaml", "egress-gateway.yaml"]
    resources = [r for r in load_manifests([LAB10 / n for n in names], "default") if r.simulated]
    lab = LabToDeploy("test", "default", resources, build_plan(resources, "default"))
    with backend.deploy(lab) as deployed:
        yield deployed


def test_the_egress_gateway_route_shows_the_gateway_hop(egress: EmbeddedMesh) -> None:
    outcomes = send(egress, "http://www.google.com/", Origin("workload", "staff-service"))
    for outcome in outcomes:
        assert outcome.status == 200
        assert outcome.pod == "istio-egressgateway"  # what the sidecar called
        caller = outcome.hops[0].caller
        assert caller is not None
        assert caller.startswith("staff-service-")
        assert [(h.depth, h.pod, h.caller) for h in outcome.hops] == [
            (1, "istio-egressgateway", caller),
            (2, "external-www-google-com-0", "istio-egressgateway"),
        ]
    # google.com (no egress route) leaves straight from the sidecar
    direct = send(egress, "http://google.com/", Origin("workload", "staff-service"))
    assert {(o.status, o.pod) for o in direct} == {(200, "external-google-com-0")}
    # the mesh config's REGISTRY_ONLY blocks the rest
    assert {o.status for o in send(egress, "http://www.example.org/")} == {502}


def test_allow_any_never_reaches_the_internet(backend: EmbeddedBackend) -> None:
    for mesh in deploy(backend):  # no Sidecar, no mesh config: ALLOW_ANY
        passed = send(mesh, "http://www.example.org/", Origin("workload", "staff"), n=2)
        # PassthroughCluster has no endpoint here: 503, where a cluster would reach the internet
        assert {(o.status, o.response_flags) for o in passed} == {(503, "UH")}
