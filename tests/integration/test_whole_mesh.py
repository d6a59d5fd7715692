"""The whole mesh on one Envoy: requests from each origin enter where the course's clients
would, and a call enters a meshed pod through its own sidecar's inbound side."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from meshlab.backends.base import LabToDeploy
from meshlab.backends.embedded.backend import EmbeddedBackend, EmbeddedMesh
from meshlab.backends.embedded.client import get
from meshlab.load.manifests import load_manifests
from meshlab.mesh.plan import build_plan
from meshlab.mesh.request import Origin, ProbeRequest

pytestmark = pytest.mark.envoy

ROOT = Path(__file__).resolve().parents[2]
APP = ROOT / "labs" / "2-traffic" / "fleetman.yaml"
RULES = ROOT / "tests" / "data" / "whole" / "rules.yaml"
URL = "http://fleetman-staff-service:8080/driver/City%20Truck"


@pytest.fixture(scope="module")
def mesh(backend: EmbeddedBackend) -> Iterator[EmbeddedMesh]:
    resources = load_manifests([APP, RULES], "default")
    lab = LabToDeploy("test", "default", resources, build_plan(resources, "default"))
    with backend.deploy(lab) as deployed:
        yield deployed


def versions(mesh: EmbeddedMesh, origin: Origin, n: int = 40) -> Counter[str]:
    with mesh.session() as session:
        outcomes = session.send(ProbeRequest(URL, origin=origin), n)
    assert all(o.status == 200 for o in outcomes), [o.error or o.status for o in outcomes]
    return Counter(o.labels.get("version", "?") for o in outcomes)


def test_each_workload_has_its_own_sidecar(mesh: EmbeddedMesh) -> None:
    """`sourceLabels: {app: webapp}` is in the webapp's sidecar only."""
    assert versions(mesh, Origin("workload", "webapp")) == {"risky": 40}
    assert versions(mesh, Origin("workload", "api-gateway")) == {"safe": 40}
    assert versions(mesh, Origin()) == {"safe": 40}


def test_a_client_without_a_sidecar_bypasses_the_routing(mesh: EmbeddedMesh) -> None:
    """No client sidecar, no VirtualService: kube-proxy spreads over both staff pods."""
    seen = versions(mesh, Origin("no-sidecar"), 60)
    assert set(seen) == {"safe", "risky"}  # each missed with probability 0.5**60


def test_calls_enter_a_meshed_pod_through_its_inbound_side(mesh: EmbeddedMesh) -> None:
    with mesh.session() as session:
        (outcome,) = session.send(ProbeRequest(URL, origin=Origin("workload", "webapp")), 1)
    assert outcome.headers["x-meshlab-upstream-host"].startswith("envoy://inbound~staff-service")
    (hop,) = outcome.hops
    assert (hop.caller or "").startswith("webapp-")
    config = json.dumps(mesh.envoy.config_dump())
    assert "deployment.default.webapp~0.0.0.0_8080" in config


def test_refusals_are_the_clients_own(mesh: EmbeddedMesh) -> None:
    cases = {
        Origin("workload", "nothing"): "no Deployment or Pod default/nothing",
        Origin("browser"): "no ingress gateway",
    }
    with mesh.session() as session:
        for origin, said in cases.items():
            (outcome,) = session.send(ProbeRequest(URL, origin=origin), 1)
            assert outcome.status is None
            assert said in (outcome.error or ""), outcome
        nowhere = ProbeRequest("http://nowhere:8080/", origin=Origin("no-sidecar"))
        (outcome,) = session.send(nowhere, 1)
        assert "could not resolve host 'nowhere'" in (outcome.error or "")


DARK = ROOT / "tests" / "data" / "whole" / "dark.yaml"
DRIVER = "http://fleetman-webapp/api/vehicles/driver/City%20Truck"


def staff_versions(backend: EmbeddedBackend, app: Path, n: int = 20) -> Counter[str]:
    """Which staff build served the driver lookup behind the webapp, with the dark-release
    header set by the client."""
    resources = load_manifests([app, DARK], "default")
    lab = LabToDeploy("test", "default", resources, build_plan(resources, "default"))
    request = ProbeRequest(DRIVER, headers={"x-my-header": "canary"})
    with backend.deploy(lab) as deployed, deployed.session() as session:
        outcomes = session.send(request, n)
    seen: Counter[str] = Counter()
    for outcome in outcomes:
        assert outcome.status == 200, outcome
        chain = [(h.depth, h.service.split(".")[0]) for h in outcome.hops]
        assert chain == [
            (1, "fleetman-webapp"),
            (2, "fleetman-api-gateway"),
            (3, "fleetman-staff-service"),
        ]
        assert outcome.hops[2].caller == outcome.hops[1].pod
        seen[outcome.hops[2].labels["version"]] += 1
    return seen


def test_the_dark_release_header_travels_the_chain(
    backend: EmbeddedBackend, tmp_path: Path
) -> None:
    """Tag 6 images propagate `x-my-header` webapp -> api-gateway -> staff-service; the
    course's no-propagation images lose it after the first hop, so staff sees no header."""
    assert staff_versions(backend, APP) == {"risky": 20}
    text = APP.read_text().replace(":6\n", ":6-no-header-propagation\n")
    text = text.replace("webapp-angular:6-no-header-propagation", "webapp-angular:6")
    lost = tmp_path / "fleetman.yaml"
    lost.write_text(text)
    assert "6-no-header-propagation" in text
    assert staff_versions(backend, lost) == {"safe": 20}


def test_envoy_keeps_only_the_stats_istio_keeps(mesh: EmbeddedMesh) -> None:
    """Istio's default inclusion list (envoy/stats.py): Envoy's own health and
    `downstream_cx_active` are kept, the clusters' and listeners' counters are not."""
    _, body = get(f"{mesh.envoy.admin_url}/stats", 5)
    names = [line.partition(": ")[0] for line in body.decode().splitlines()]
    assert any(n.startswith("server.") for n in names)
    assert any(n.startswith("cluster_manager.") for n in names)
    assert any(n.endswith(".downstream_cx_active") for n in names)
    assert not [n for n in names if n.startswith("cluster.outbound|")]
    assert not [n for n in names if n.endswith(".downstream_rq_total")]
