"""The ingress gateway's config on a real Envoy: requests as a browser sends them (Host and
path as typed) enter the mesh at the gateway's listener and reach the webapp build the
course's section 3 routes them to."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from meshlab.backends.base import LabToDeploy
from meshlab.backends.embedded.backend import EmbeddedBackend, EmbeddedMesh
from meshlab.load.manifests import load_manifests
from meshlab.mesh.gateway_plan import gateway_accepts
from meshlab.mesh.plan import build_plan
from meshlab.mesh.request import Origin, ProbeRequest

pytestmark = pytest.mark.envoy

DATA = Path(__file__).resolve().parents[1] / "data" / "gateways"


@pytest.fixture(scope="module", params=["prefix", "subdomain"])
def gateway(request: pytest.FixtureRequest, backend: EmbeddedBackend) -> Iterator[EmbeddedMesh]:
    resources = load_manifests([DATA / "webapp.yaml", DATA / f"{request.param}.yaml"], "default")
    lab = LabToDeploy("gateway", "default", resources, build_plan(resources, "default"))
    with backend.deploy(lab) as mesh:
        yield mesh


def browse(mesh: EmbeddedMesh, url_host: str, path: str, n: int = 6) -> set[str]:
    """The version label of the pods that answered `n` requests a browser sends to
    http://<url_host><path>, or `<status> <flags>` for Envoy's own answers. (Which status
    the webapp stand-in gives a path is the stand-in's business, not the gateway's.)"""
    with mesh.session() as session:
        outcomes = session.send(
            ProbeRequest(f"http://{url_host}{path}", origin=Origin("browser")), n
        )
    seen = set()
    for outcome in outcomes:
        assert outcome.status is not None, outcome.error
        seen.add(
            outcome.labels["version"]
            if outcome.pod
            else f"{outcome.status} {outcome.response_flags}"
        )
    return seen


def serves_fleetman_com_only(mesh: EmbeddedMesh) -> bool:
    ingress = mesh.proxies.ingress()
    assert ingress is not None
    return not gateway_accepts(ingress.plan, "other.example", 80)


def test_the_course_s_routing_through_the_gateway(gateway: EmbeddedMesh) -> None:
    if serves_fleetman_com_only(gateway):  # subdomain: by Host
        assert browse(gateway, "fleetman.com", "/") == {"original"}
        assert browse(gateway, "experimental.fleetman.com", "/") == {"experimental"}
        assert browse(gateway, "fleetman.com:31380", "/experimental") == {"original"}
    else:  # prefix: by path, whatever the Host
        assert browse(gateway, "192.168.49.2:31380", "/") == {"original"}
        assert browse(gateway, "fleetman.com", "/experimental") == {"experimental"}
        assert browse(gateway, "other.example", "/canary/page") == {"experimental"}


def test_a_host_no_server_accepts_gets_404_nr(gateway: EmbeddedMesh) -> None:
    expected = {"404 NR"} if serves_fleetman_com_only(gateway) else {"original"}
    assert browse(gateway, "other.example", "/", n=2) == expected
    assert browse(gateway, "www.fleetman.com", "/", n=2) == expected
