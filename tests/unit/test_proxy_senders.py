"""A run whose requests all come from its checks runs only the sidecars those requests can
pass out through (LabToDeploy.requests, mesh/reach.py): the workloads the checks send from,
and the pods their requests can reach whose image calls on, down the chain. Where a plan
cannot say where a call goes, every pod whose image calls on keeps its sidecar
(mesh/proxies.py `senders_for`). Every pod keeps its inbound side."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from meshlab.backends.base import LabToDeploy
from meshlab.load.manifests import load_manifests
from meshlab.mesh.plan import build_plan
from meshlab.mesh.request import MESH, Origin, ProbeRequest
from meshlab.pipeline import _requests, prepare

ROOT = Path(__file__).resolve().parents[2]
LAB2 = ROOT / "labs" / "2-traffic"
GATEWAYS = ROOT / "labs" / "3-gateways-ending"
CALLERS = {"webapp", "api-gateway", "position-tracker"}  # the fleetman images that call
ALL = CALLERS | {"position-simulator", "vehicle-telemetry", "staff-service", "staff-service-risky"}
STAFF = "http://fleetman-staff-service:8080/driver/City%20Truck"
WEBAPP = "http://fleetman-webapp/api/vehicles/driver/City%20Truck"
API_GATEWAY = "http://fleetman-api-gateway:8080/vehicles/driver/City%20Truck"


def lab2(*requests: ProbeRequest, anything: bool = False) -> LabToDeploy:
    resources = load_manifests([LAB2 / "fleetman.yaml", LAB2 / "istio-rules.yaml"], "default")
    plan = build_plan(resources, "default")
    return LabToDeploy("lab2", "default", resources, plan, None if anything else requests)


def workloads(lab: LabToDeploy) -> set[str]:
    return {p.name.rpartition(".")[2] for p in lab.proxies.sidecars}


def test_every_sidecar_when_anything_may_send() -> None:
    lab = lab2(anything=True)
    assert workloads(lab) == ALL
    assert lab.proxies.left_out == frozenset()


def test_lab2s_checks_pass_out_through_no_sidecar() -> None:
    """The canary check calls the staff service, which calls nobody: only the test client's
    sidecar sends; every pod keeps its inbound side."""
    full, pruned = lab2(anything=True).proxies, lab2(ProbeRequest(STAFF)).proxies
    assert workloads(lab2(ProbeRequest(STAFF))) == set()
    assert pruned.meshed_pods == full.meshed_pods
    assert {pod.rsplit("-", 2)[0] for pod in pruned.left_out} == ALL
    assert pruned.client == full.client
    assert pruned.gateways == full.gateways


def test_lab2s_checks_enter_only_the_staff_pods_and_dial_no_cluster_ip() -> None:
    """The inbound side of a pod no request reaches, and the kube-proxy listener of a Service
    no call dials without a proxy, are left out too; a client without a sidecar dials it."""
    proxies = lab2(ProbeRequest(STAFF)).proxies
    entered = proxies.meshed_pods - proxies.unreached
    assert {pod.rsplit("-", 2)[0] for pod in entered} == {"staff-service", "staff-service-risky"}
    assert proxies.direct == frozenset()
    plain = lab2(ProbeRequest(API_GATEWAY, origin=Origin("no-sidecar"))).proxies
    assert plain.direct == {"fleetman-api-gateway.default.svc.cluster.local"}
    entered = plain.meshed_pods - plain.unreached
    assert {pod.rsplit("-", 2)[0] for pod in entered} == {
        "api-gateway",
        "position-tracker",
        "staff-service",
        "staff-service-risky",
        "vehicle-telemetry",
    }
    everything = lab2(ProbeRequest("http://10.0.0.7:8080/")).proxies
    assert everything.unreached == frozenset()
    assert everything.direct is None


@pytest.mark.parametrize(
    ("url", "origin", "kept"),
    [
        (WEBAPP, MESH, CALLERS),  # webapp -> api-gateway -> position tracker -> telemetry
        (API_GATEWAY, MESH, {"api-gateway", "position-tracker"}),
        (API_GATEWAY, Origin("no-sidecar"), {"api-gateway", "position-tracker"}),
        ("http://fleetman-position-tracker:8080/vehicles/", MESH, {"position-tracker"}),
        (STAFF, Origin("workload", "staff-service"), {"staff-service"}),
        (WEBAPP, Origin("workload", "default/vehicle-telemetry"), {"vehicle-telemetry", *CALLERS}),
    ],
)
def test_the_sidecars_a_request_can_pass_out_through(
    url: str, origin: Origin, kept: set[str]
) -> None:
    assert workloads(lab2(ProbeRequest(url, origin=origin))) == kept


def test_a_call_the_plan_cannot_follow_keeps_every_caller() -> None:
    """A host neither a route nor the cluster's DNS knows, or a workload that is not there:
    every pod whose image calls on keeps its sidecar, as when nothing was known."""
    for request in (
        ProbeRequest("http://10.0.0.7:8080/"),
        ProbeRequest(STAFF, origin=Origin("workload", "nobody")),
    ):
        assert workloads(lab2(ProbeRequest(STAFF), request)) >= CALLERS


def test_a_browser_reaches_whatever_the_gateways_route_to() -> None:
    prepared = prepare(GATEWAYS)
    browser = ProbeRequest("http://192.168.49.2:31380/", origin=Origin("browser"))
    lab = prepared.to_deploy()
    pruned = LabToDeploy(lab.name, lab.namespace, lab.resources, lab.plan, (browser,))
    assert workloads(pruned) == {"webapp", "webapp-experimental", "api-gateway", "position-tracker"}
    assert [g.name for g in pruned.proxies.gateways] == [g.name for g in lab.proxies.gateways]


def test_a_left_out_sidecar_never_passes_for_no_sidecar() -> None:
    proxies = lab2(ProbeRequest(API_GATEWAY)).proxies
    left = sorted(proxies.left_out)[0]
    with pytest.raises(LookupError, match="left out"):
        proxies.sidecar_of(left)
    kept = proxies.sidecars[0].pods[0]
    assert proxies.sidecar_of(kept) is proxies.sidecars[0]


def test_a_runs_requests_are_its_checks_or_unknown() -> None:
    prepared = prepare(LAB2)
    assert _requests(prepared.checks) == (ProbeRequest(STAFF),)
    assert prepared.to_deploy().requests is None  # a lab's own tests may send from anywhere
    assert prepared.to_deploy(checks_only=True).requests == (ProbeRequest(STAFF),)

    class NoRequest:
        spec: Any = object()

    assert _requests([*prepared.checks, NoRequest()]) is None  # type: ignore[list-item]
