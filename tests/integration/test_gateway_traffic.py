"""The ingress gateway's config on a real Envoy: requests as a browser sends them (Host and
path as typed) through the gateway listener reach the webapp build the course's section 3
routes them to. The single-proxy backend renders the gateway plan as if it were the client's
(the whole-mesh backend will host it next to the sidecars)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from meshlab.backends.base import LabToDeploy
from meshlab.backends.embedded.backend import EmbeddedBackend, EmbeddedMesh
from meshlab.backends.embedded.client import Client, Reply
from meshlab.backends.embedded.envoy.bootstrap import RESPONSE_FLAGS_HEADER, UPSTREAM_HOST_HEADER
from meshlab.load.manifests import load_manifests
from meshlab.mesh.gateway_plan import build_gateway_plan, gateway_accepts
from meshlab.mesh.gateways import INGRESS, find_gateway, provided_gateways

pytestmark = pytest.mark.envoy

DATA = Path(__file__).resolve().parents[1] / "data" / "gateways"


@pytest.fixture(scope="module", params=["prefix", "subdomain"])
def gateway(request: pytest.FixtureRequest, backend: EmbeddedBackend) -> Iterator[EmbeddedMesh]:
    resources = load_manifests([DATA / "webapp.yaml", DATA / f"{request.param}.yaml"], "default")
    proxy = find_gateway(provided_gateways(resources), INGRESS)
    assert proxy is not None
    plan = build_gateway_plan(resources, proxy)
    with backend.deploy(LabToDeploy("gateway", "default", resources, plan)) as mesh:
        yield mesh


def browse(mesh: EmbeddedMesh, url_host: str, path: str, n: int = 6) -> set[str]:
    """The version label of the pods that answered `n` requests with that Host, sent to the
    gateway's port-80 listener, or `<status> <flags>` for Envoy's own answers. (Which status
    the webapp stand-in gives a path is the stand-in's business, not the gateway's.)"""
    listener = mesh.plan.listener_for(80)
    assert listener is not None
    client = Client(mesh.envoy.listener_ports[listener.name], timeout=10.0)
    try:
        replies = client.batch("GET", path, {"host": url_host}, n)
    finally:
        client.close()
    seen = set()
    for reply in replies:
        assert isinstance(reply, Reply), reply
        pod = mesh.by_address.get(reply.headers.get(UPSTREAM_HOST_HEADER, ""))
        flags = reply.headers.get(RESPONSE_FLAGS_HEADER, "-")
        seen.add(pod.labels["version"] if pod else f"{reply.status} {flags}")
    return seen


def serves_fleetman_com_only(mesh: EmbeddedMesh) -> bool:
    return not gateway_accepts(mesh.plan, "other.example", 80)


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
