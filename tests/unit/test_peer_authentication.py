"""Which mTLS mode a pod's sidecar enforces: the resolution table of istiod's
ComposePeerAuthentication (mesh, namespace, workload levels; UNSET inherits; port-level)."""

from __future__ import annotations

from pathlib import Path

import pytest

from meshlab.errors import InputError
from meshlab.load.manifests import load_manifests
from meshlab.mesh.peer_authentication import (
    explain,
    misplaced,
    namespace_mode,
    peer_policies,
    pod_mtls,
    service_account,
    spiffe_id,
)
from meshlab.mesh.registry import build_registry

APP = """
apiVersion: apps/v1
kind: Deployment
metadata: {name: staff, namespace: default}
spec:
  selector: {matchLabels: {app: staff}}
  template:
    metadata: {labels: {app: staff}}
    spec:
      serviceAccountName: staff-sa
      containers:
      - {name: s, image: "richardchesterwood/istio-fleetman-staff-service:6",
         ports: [{containerPort: 8080}]}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: hr, namespace: default}
spec:
  selector: {matchLabels: {app: hr}}
  template:
    metadata: {labels: {app: hr}}
    spec:
      containers:
      - {name: s, image: "richardchesterwood/istio-fleetman-staff-service:6",
         ports: [{containerPort: 8080}]}
"""


def policy(name: str, namespace: str, mode: str | None, selector: str = "", ports: str = "") -> str:
    spec = []
    if selector:
        spec.append(f"  selector: {{matchLabels: {{{selector}}}}}")
    if mode:
        spec.append(f"  mtls: {{mode: {mode}}}")
    if ports:
        spec.append(f"  portLevelMtls: {{{ports}}}")
    body = "\n".join(spec) or "  {}"
    return (
        "---\napiVersion: security.istio.io/v1beta1\nkind: PeerAuthentication\n"
        f"metadata: {{name: {name}, namespace: {namespace}}}\nspec:\n{body}\n"
    )


def load(tmp_path: Path, *policies: str):  # type: ignore[no-untyped-def]
    path = tmp_path / "lab.yaml"
    path.write_text(APP + "".join(policies))
    resources = [r for r in load_manifests([path], "default") if r.simulated]
    registry = build_registry(resources)
    pods = {p.owner.name: p for p in registry.pods}
    return peer_policies(resources), pods


MESH_STRICT = policy("default", "istio-system", "STRICT")
NS_PERMISSIVE = policy("ns", "default", "PERMISSIVE")
NS_UNSET = policy("ns", "default", None)
STAFF_DISABLE = policy("staff", "default", "DISABLE", "app: staff")
STAFF_PORTS = policy("staff", "default", None, "app: staff", "8080: {mode: STRICT}, 9090: {}")


@pytest.mark.parametrize(
    ("policies", "staff", "hr"),
    [
        ((), "PERMISSIVE", "PERMISSIVE"),  # nothing set: Istio's default
        ((MESH_STRICT,), "STRICT", "STRICT"),  # mesh-wide in the root namespace
        ((MESH_STRICT, NS_PERMISSIVE), "PERMISSIVE", "PERMISSIVE"),  # namespace over mesh
        ((MESH_STRICT, NS_UNSET), "STRICT", "STRICT"),  # UNSET inherits the mesh's
        ((MESH_STRICT, STAFF_DISABLE), "DISABLE", "STRICT"),  # workload over the rest
        ((policy("x", "prod", "STRICT"),), "PERMISSIVE", "PERMISSIVE"),  # another namespace
        # a selector in the root namespace selects only pods there
        ((policy("d", "istio-system", "STRICT", "app: staff"),), "PERMISSIVE", "PERMISSIVE"),
        # two namespace-wide policies: the oldest (first applied) wins
        ((NS_PERMISSIVE, policy("later", "default", "STRICT")), "PERMISSIVE", "PERMISSIVE"),
    ],
)
def test_mode_resolution(tmp_path: Path, policies: tuple[str, ...], staff: str, hr: str) -> None:
    found, pods = load(tmp_path, *policies)
    assert pod_mtls(found, pods["staff"]).for_port(8080) == staff
    assert pod_mtls(found, pods["hr"]).for_port(8080) == hr


def test_port_level_modes_and_unset_ports_inherit(tmp_path: Path) -> None:
    found, pods = load(tmp_path, policy("default", "istio-system", "DISABLE"), STAFF_PORTS)
    staff = pod_mtls(found, pods["staff"])
    assert (staff.for_port(8080), staff.for_port(9090), staff.for_port(80)) == (
        "STRICT",
        "DISABLE",
        "DISABLE",
    )


def test_namespace_mode_reads_namespace_and_mesh_policies_only(tmp_path: Path) -> None:
    found, _ = load(tmp_path, MESH_STRICT, STAFF_DISABLE)
    assert namespace_mode(found, "default") == "STRICT"
    found, _ = load(tmp_path, NS_PERMISSIVE)
    assert namespace_mode(found, "default") == "PERMISSIVE"
    found, _ = load(tmp_path)
    assert namespace_mode(found, "default") is None


def test_identity_is_the_pods_service_account(tmp_path: Path) -> None:
    _, pods = load(tmp_path)
    assert service_account(pods["staff"]) == "staff-sa"
    assert service_account(pods["hr"]) == "default"
    assert spiffe_id("default", "staff-sa") == "spiffe://cluster.local/ns/default/sa/staff-sa"


def test_explanations_name_the_policy_or_the_default(tmp_path: Path) -> None:
    found, pods = load(tmp_path, MESH_STRICT, policy("oops", "istio", "STRICT"))
    assert explain(found, pods["staff"], 8080).startswith(
        "STRICT from PeerAuthentication istio-system/default (lab.yaml:"
    )
    [wrong] = misplaced(found, {"default"})
    assert wrong.startswith("PeerAuthentication istio/oops (lab.yaml:")
    found, pods = load(tmp_path)
    assert "Istio's default is PERMISSIVE" in explain(found, pods["staff"], 8080)


def test_port_level_mtls_needs_a_selector(tmp_path: Path) -> None:
    path = tmp_path / "pa.yaml"
    path.write_text(policy("p", "default", "STRICT", ports="8080: {mode: DISABLE}"))
    with pytest.raises(InputError, match="portLevelMtls requires a selector"):
        load_manifests([path], "default")


def test_a_mesh_wide_policy_is_simulated_though_in_istio_system(tmp_path: Path) -> None:
    path = tmp_path / "pa.yaml"
    path.write_text(MESH_STRICT)
    [resource] = load_manifests([path], "default")
    assert resource.install
    assert resource.simulated
