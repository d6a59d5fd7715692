"""Istio's routing corner cases on the real Envoy: each scenario of tests/data/mesh changes
which pods a request reaches (the golden configs are in tests/unit/test_bootstrap.py)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import AbstractContextManager
from pathlib import Path

import pytest

from meshlab.backends.base import LabToDeploy
from meshlab.backends.embedded.backend import EmbeddedBackend, EmbeddedMesh
from meshlab.load.manifests import load_manifests
from meshlab.mesh.expect import configured_split
from meshlab.mesh.plan import build_plan
from meshlab.mesh.request import ProbeRequest

pytestmark = pytest.mark.envoy

DATA = Path(__file__).resolve().parents[1] / "data" / "mesh"
PATH = "/driver/City%20Truck"
URL = f"http://fleetman-staff-service:8080{PATH}"


def scenario(backend: EmbeddedBackend, name: str) -> AbstractContextManager[EmbeddedMesh]:
    resources = load_manifests([DATA / "apps.yaml", DATA / name], "default")
    return backend.deploy(LabToDeploy("test", "default", resources, build_plan(resources)))


def versions(mesh: EmbeddedMesh, url: str, n: int = 20) -> set[tuple[int, str]]:
    request = ProbeRequest(url)
    outcomes = mesh.send(request, n)
    seen = {(o.status, o.bucket("version")) for o in outcomes}
    # the expectation reads the same plan: it must name the same buckets
    expected = configured_split(mesh.plan, request, "version").shares
    assert {bucket for _, bucket in seen} <= set(expected) | {"HTTP 503"}
    return seen


def test_an_exact_host_beats_an_older_wildcard(backend: EmbeddedBackend) -> None:
    with scenario(backend, "exact-beats-wildcard.yaml") as mesh:
        assert versions(mesh, URL) == {(200, "safe")}


def test_a_vs_exported_by_name_beats_an_older_public_one(backend: EmbeddedBackend) -> None:
    with scenario(backend, "exported-tier.yaml") as mesh:
        assert versions(mesh, URL) == {(200, "safe")}


@pytest.fixture(scope="module")
def foreign(backend: EmbeddedBackend) -> Iterator[EmbeddedMesh]:
    with scenario(backend, "foreign-host.yaml") as mesh:
        yield mesh


def test_a_vs_host_that_is_no_service_routes_on_port_80(foreign: EmbeddedMesh) -> None:
    assert versions(foreign, f"http://staff.example.com{PATH}") == {(200, "risky")}


def test_a_vs_host_takes_the_domain_from_the_service(foreign: EmbeddedMesh) -> None:
    assert versions(foreign, f"http://fleetman-staff-front.default{PATH}") == {(200, "risky")}
    # the Service's other names keep its default route: both builds, 40 tries
    both = versions(foreign, f"http://fleetman-staff-front{PATH}", 40)
    assert both == {(200, "safe"), (200, "risky")}


@pytest.fixture(scope="module")
def aliases(backend: EmbeddedBackend) -> Iterator[EmbeddedMesh]:
    with scenario(backend, "service-aliases.yaml") as mesh:
        yield mesh


def test_an_externalname_service_is_an_alias(aliases: EmbeddedMesh) -> None:
    outcomes = aliases.send(ProbeRequest(f"http://staff-alias:8080{PATH}"), 10)
    staff = "outbound|8080||fleetman-staff-service.default.svc.cluster.local"
    assert {(o.status, o.upstream_cluster) for o in outcomes} == {(200, staff)}


def test_an_alias_named_by_a_vs_keeps_its_names_and_routes_to_its_service(
    aliases: EmbeddedMesh,
) -> None:
    assert versions(aliases, f"http://staff-canary:8080{PATH}") == {(200, "risky")}


def test_a_headless_service_answers_its_pod_names(aliases: EmbeddedMesh) -> None:
    url = f"http://staff-0.staff-pods.default.svc.cluster.local:8080{PATH}"
    outcomes = aliases.send(ProbeRequest(url), 10)
    cluster = "outbound|8080||staff-pods.default.svc.cluster.local"
    assert {(o.status, o.upstream_cluster) for o in outcomes} == {(200, cluster)}


def test_a_service_exported_elsewhere_is_not_routed_but_passed_through(
    aliases: EmbeddedMesh,
) -> None:
    """exportTo hides the Service from the client's sidecar (no cluster, no route), not from
    the cluster's DNS: ALLOW_ANY's PassthroughCluster takes the call on to its ClusterIP,
    where kube-proxy picks a pod (mesh/passthrough.py)."""
    outcomes = aliases.send(ProbeRequest(f"http://staff-private:8080{PATH}"), 5)
    kube_proxy = "kube-proxy~staff-private.default.svc.cluster.local~8080"
    assert {(o.status, o.upstream_cluster) for o in outcomes} == {(200, kube_proxy)}


def test_a_rule_with_a_workload_selector_applies_to_the_client_it_selects(
    backend: EmbeddedBackend,
) -> None:
    with scenario(backend, "workload-selector.yaml") as mesh:
        assert versions(mesh, URL) == {(200, "safe")}


def test_every_weighted_destination_hashes(backend: EmbeddedBackend) -> None:
    with scenario(backend, "weighted-hash.yaml") as mesh:
        request = ProbeRequest(URL, headers={"x-user": "alice"})
        outcomes = mesh.send(request, 60)
        safe = {o.pod for o in outcomes if o.bucket("version") == "safe"}
        assert len(safe) == 1  # two safe pods; without the hash, 30 tries reach both
        # another user may land on the other pod: the hash, not a fixed pod, decides
        assert {o.status for o in outcomes} == {200}


def test_port_level_settings_hash_that_port(backend: EmbeddedBackend) -> None:
    with scenario(backend, "port-level.yaml") as mesh:
        for user in ("alice", "bob", "carol"):
            outcomes = mesh.send(ProbeRequest(URL, headers={"x-user": user}), 12)
            assert len({o.pod for o in outcomes}) == 1  # ROUND_ROBIN would alternate
        # the hash cookie of staff-cookies carries its attributes
        [first] = mesh.send(ProbeRequest(f"http://staff-cookies:9090{PATH}"), 1)
        cookie = first.headers.get("set-cookie", "")
        assert "user=" in cookie
        assert "SameSite=Strict" in cookie
        assert "Secure" in cookie


def test_jwt_claim_matches_see_no_claims_at_the_client(backend: EmbeddedBackend) -> None:
    with scenario(backend, "jwt-claims.yaml") as mesh:
        assert versions(mesh, URL) == {(200, "safe")}
