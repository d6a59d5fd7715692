"""A run whose requests all come from its checks runs only the sidecars that can send
(LabToDeploy.origins, mesh/proxies.py `senders_for`): the checks' origin workloads and the
pods whose image calls another service. Every pod keeps its inbound side."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from meshlab.backends.base import LabToDeploy
from meshlab.load.manifests import load_manifests
from meshlab.mesh.plan import build_plan
from meshlab.mesh.request import MESH, Origin
from meshlab.pipeline import _origins, prepare

LAB2 = Path(__file__).resolve().parents[2] / "labs" / "2-traffic"
CALLERS = {"webapp", "api-gateway", "position-tracker"}  # the fleetman images that call
ALL = CALLERS | {"position-simulator", "vehicle-telemetry", "staff-service", "staff-service-risky"}


def lab2(origins: tuple[Origin, ...] | None) -> LabToDeploy:
    resources = load_manifests([LAB2 / "fleetman.yaml", LAB2 / "istio-rules.yaml"], "default")
    plan = build_plan(resources, "default")
    return LabToDeploy("lab2", "default", resources, plan, origins)


def workloads(lab: LabToDeploy) -> set[str]:
    return {p.name.rpartition(".")[2] for p in lab.proxies.sidecars}


def test_every_sidecar_when_anything_may_send() -> None:
    lab = lab2(None)
    assert workloads(lab) == ALL
    assert lab.proxies.left_out == frozenset()


def test_a_checks_only_run_keeps_the_sidecars_that_can_send() -> None:
    full, pruned = lab2(None).proxies, lab2((MESH,)).proxies
    assert workloads(lab2((MESH,))) == CALLERS
    assert pruned.meshed_pods == full.meshed_pods  # every pod still has its inbound side
    left = {pod.rsplit("-", 2)[0] for pod in pruned.left_out}
    assert left == ALL - CALLERS
    assert pruned.client == full.client
    assert pruned.gateways == full.gateways


def test_a_workload_a_check_sends_from_keeps_its_sidecar() -> None:
    lab = lab2((MESH, Origin("workload", "staff-service"), Origin("no-sidecar")))
    assert workloads(lab) == CALLERS | {"staff-service"}
    lab = lab2((Origin("workload", "default/vehicle-telemetry"),))
    assert "vehicle-telemetry" in workloads(lab)


def test_a_left_out_sidecar_never_passes_for_no_sidecar() -> None:
    proxies = lab2((MESH,)).proxies
    left = sorted(proxies.left_out)[0]
    with pytest.raises(LookupError, match="left out"):
        proxies.sidecar_of(left)
    kept = proxies.sidecars[0].pods[0]
    assert proxies.sidecar_of(kept) is proxies.sidecars[0]


def test_a_runs_origins_are_its_checks_or_unknown() -> None:
    prepared = prepare(LAB2)
    assert _origins(prepared.checks) == (MESH,)
    assert prepared.to_deploy().origins is None  # a lab's own tests may send from anywhere
    assert prepared.to_deploy(checks_only=True).origins == (MESH,)

    class NoRequest:
        spec: Any = object()

    assert _origins([*prepared.checks, NoRequest()]) is None  # type: ignore[list-item]
