"""Moving a lab into its run namespace, the apply order, and waiting for rollouts."""

from __future__ import annotations

from pathlib import Path

import pytest
from kind_fakes import Events, FakeClock, FakeKube

from meshlab.backends.kind.apply import (
    Retarget,
    Waiter,
    apply_objects,
    apply_order,
    lab_objects,
    pod_state,
    rollout_state,
)
from meshlab.backends.kind.kube import ApiError
from meshlab.errors import BackendError, BackendUnavailable
from meshlab.load.manifests import load_manifests
from meshlab.pipeline import prepare

RUN = Retarget("default", "meshlab-2-traffic-abc123")


def test_hosts_follow_the_namespace() -> None:
    assert RUN.host("fleetman-staff-service") == "fleetman-staff-service"
    assert (
        RUN.host("fleetman-staff-service.default")
        == "fleetman-staff-service.meshlab-2-traffic-abc123"
    )
    assert (
        RUN.host("fleetman-staff-service.default.svc.cluster.local")
        == "fleetman-staff-service.meshlab-2-traffic-abc123.svc.cluster.local"
    )
    assert RUN.host("*.default.svc.cluster.local") == "*.meshlab-2-traffic-abc123.svc.cluster.local"
    assert RUN.host("other.elsewhere.svc.cluster.local") == "other.elsewhere.svc.cluster.local"
    assert RUN.host("default/fleetman-gateway") == "meshlab-2-traffic-abc123/fleetman-gateway"
    assert RUN.host("istio-system/*") == "istio-system/*"
    assert RUN.host("www.default.example.com") == "www.default.example.com"


def test_urls_and_cluster_names_both_ways() -> None:
    assert RUN.url("http://fleetman-staff-service:8080/driver/City%20Truck") == (
        "http://fleetman-staff-service:8080/driver/City%20Truck"
    )
    assert RUN.url("http://x.default.svc.cluster.local:8080/a?b=c") == (
        "http://x.meshlab-2-traffic-abc123.svc.cluster.local:8080/a?b=c"
    )
    planned = "outbound|8080|risky|fleetman-staff-service.default.svc.cluster.local"
    real = "outbound|8080|risky|fleetman-staff-service.meshlab-2-traffic-abc123.svc.cluster.local"
    assert RUN.cluster(planned) == real
    assert RUN.back(real) == planned


def test_lab_2_in_its_run_namespace(lab2_dir: Path) -> None:
    prepared = prepare(lab2_dir)
    objects = lab_objects(prepared.resources, RUN)
    kinds = [o["kind"] for o in objects]
    assert kinds == ["Service"] * 5 + ["Deployment"] * 7 + ["DestinationRule", "VirtualService"]
    assert {o["metadata"]["namespace"] for o in objects} == {"meshlab-2-traffic-abc123"}
    webapp = next(o for o in objects if o["metadata"]["name"] == "fleetman-webapp")
    assert webapp["spec"]["type"] == "NodePort"
    assert "nodePort" not in webapp["spec"]["ports"][0]  # two runs must never collide on it
    vs = next(o for o in objects if o["kind"] == "VirtualService")
    assert vs["spec"]["hosts"] == ["fleetman-staff-service"]
    assert [r["destination"]["subset"] for r in vs["spec"]["http"][0]["route"]] == ["safe", "risky"]
    images = {
        o["spec"]["template"]["spec"]["containers"][0]["image"]
        for o in objects
        if o["kind"] == "Deployment"
    }
    assert "richardchesterwood/istio-fleetman-staff-service:6" in images  # the real images
    # the lab's files are untouched
    assert prepared.resources[-1].document.data["metadata"]["namespace"] == "default"


def test_istio_fields_that_name_namespaces(tmp_path: Path) -> None:
    manifest = tmp_path / "rules.yaml"
    manifest.write_text(
        """\
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: vs, namespace: default}
spec:
  hosts: [staff.default.svc.cluster.local]
  exportTo: [default]
  gateways: [default/gw, mesh]
  http:
  - match: [{sourceNamespace: default}]
    route:
    - destination: {host: staff.default.svc.cluster.local, subset: risky}
"""
    )
    (obj,) = lab_objects(load_manifests([manifest]), RUN)
    spec = obj["spec"]
    run = "meshlab-2-traffic-abc123"
    assert spec["hosts"] == [f"staff.{run}.svc.cluster.local"]
    assert spec["exportTo"] == [run]
    assert spec["gateways"] == [f"{run}/gw", "mesh"]
    assert spec["http"][0]["match"][0]["sourceNamespace"] == run
    assert spec["http"][0]["route"][0]["destination"]["host"] == f"staff.{run}.svc.cluster.local"


def test_service_fields_that_name_namespaces(tmp_path: Path) -> None:
    manifest = tmp_path / "services.yaml"
    manifest.write_text(
        """\
apiVersion: v1
kind: Service
metadata: {name: alias, namespace: default}
spec: {type: ExternalName, externalName: staff.default.svc.cluster.local}
---
apiVersion: v1
kind: Service
metadata:
  name: staff
  namespace: default
  annotations: {networking.istio.io/exportTo: "default, other"}
spec:
  selector: {app: staff}
  ports: [{name: http, port: 8080}]
"""
    )
    alias, staff = sorted(
        lab_objects(load_manifests([manifest]), RUN), key=lambda o: o["metadata"]["name"]
    )
    run = "meshlab-2-traffic-abc123"
    assert alias["spec"]["externalName"] == f"staff.{run}.svc.cluster.local"
    assert staff["metadata"]["annotations"]["networking.istio.io/exportTo"] == f"{run},other"


def test_objects_in_other_namespaces_are_refused(tmp_path: Path) -> None:
    manifest = tmp_path / "dr.yaml"
    manifest.write_text(
        "apiVersion: networking.istio.io/v1\nkind: DestinationRule\n"
        "metadata: {name: dr, namespace: istio-system}\nspec: {host: x}\n"
    )
    with pytest.raises(BackendUnavailable, match="in namespace 'istio-system'"):
        lab_objects(load_manifests([manifest]), RUN)
    other_ns = tmp_path / "ns.yaml"
    other_ns.write_text("apiVersion: v1\nkind: Namespace\nmetadata: {name: other}\n")
    with pytest.raises(BackendUnavailable, match="cannot create other namespaces"):
        lab_objects(load_manifests([other_ns]), RUN)
    own_ns = tmp_path / "own.yaml"
    own_ns.write_text("apiVersion: v1\nkind: Namespace\nmetadata: {name: default}\n")
    assert lab_objects(load_manifests([own_ns]), RUN) == []  # the run namespace replaces it


def test_apply_order_is_stable_by_kind() -> None:
    objects = [
        {"kind": kind, "metadata": {"name": str(i)}}
        for i, kind in enumerate(
            [
                "VirtualService",
                "Gateway",
                "Deployment",
                "DestinationRule",
                "Service",
                "ConfigMap",
                "Secret",
                "Namespace",
                "ServiceAccount",
                "Pod",
                "Service",
            ]
        )
    ]
    ordered = [(o["kind"], o["metadata"]["name"]) for o in apply_order(objects)]
    assert ordered == [
        ("Namespace", "7"),
        ("ConfigMap", "5"),
        ("Secret", "6"),
        ("ServiceAccount", "8"),
        ("Service", "4"),
        ("Service", "10"),
        ("Deployment", "2"),
        ("Pod", "9"),
        ("DestinationRule", "3"),
        ("VirtualService", "0"),
        ("Gateway", "1"),
    ]


def test_apply_creates_in_order_and_stops_at_a_refusal(kube: FakeKube, events: Events) -> None:
    objects = [
        {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "s"}, "spec": {}},
        {
            "apiVersion": "networking.istio.io/v1",
            "kind": "VirtualService",
            "metadata": {"name": "v"},
        },
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "late"}},
    ]
    kube.refuse["VirtualService"] = ApiError("HTTP 400: admission webhook denied", 400)
    with pytest.raises(BackendError, match=r"refused VirtualService v.*admission webhook denied"):
        apply_objects(kube, objects, "ns", lambda line: None)
    assert events == ["create: Service ns/s", "create: VirtualService ns/v"]


# --- waiting -----------------------------------------------------------------------------


def test_rollout_state_like_kubectl() -> None:
    base = {"metadata": {"generation": 2}, "spec": {"replicas": 2}}
    assert rollout_state({**base, "status": {"observedGeneration": 1}})[0] is False
    done, text = rollout_state(
        {
            **base,
            "status": {
                "observedGeneration": 2,
                "replicas": 2,
                "updatedReplicas": 2,
                "availableReplicas": 1,
            },
        }
    )
    assert (done, text) == (False, "1/2 available")
    assert rollout_state(
        {
            **base,
            "status": {
                "observedGeneration": 2,
                "replicas": 2,
                "updatedReplicas": 2,
                "availableReplicas": 2,
            },
        }
    ) == (True, "2/2 available")


def test_pod_state_explains_why_not_ready() -> None:
    assert pod_state({"status": {"conditions": [{"type": "Ready", "status": "True"}]}}) == (
        True,
        "ready",
    )
    stuck = {
        "status": {
            "phase": "Pending",
            "containerStatuses": [
                {
                    "name": "staff-service",
                    "state": {
                        "waiting": {"reason": "ImagePullBackOff", "message": "no such image"}
                    },
                }
            ],
        }
    }
    assert pod_state(stuck) == (False, "staff-service: ImagePullBackOff (no such image)")
    assert pod_state({"status": {"phase": "Pending"}}) == (False, "Pending")


def test_waiting_reports_progress_and_returns_when_ready(kube: FakeKube) -> None:
    for name in ("a", "b"):
        kube.create(
            {
                "apiVersion": "apps/v1",
                "kind": "Deployment",
                "metadata": {"name": name},
                "spec": {
                    "replicas": 1,
                    "template": {
                        "metadata": {"labels": {"app": name}},
                        "spec": {"containers": [{"name": "c", "image": "i"}]},
                    },
                },
            },
            "ns",
        )
    lines: list[str] = []
    Waiter(kube, "ns", lines.append, FakeClock()).deployments(["a", "b"], timeout_s=60)
    assert lines == ["rollouts: 1/2 ready; waiting for b (not created yet)", "rollouts: 2/2 ready"]


def test_waiting_times_out_with_the_reason(kube: FakeKube) -> None:
    kube.ready = False
    kube.create(
        {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": "p"},
            "spec": {"containers": [{"name": "c", "image": "nope"}]},
        },
        "ns",
    )
    clock = FakeClock()
    with pytest.raises(BackendError) as info:
        Waiter(kube, "ns", lambda line: None, clock).pods(["p"], timeout_s=5)
    assert "timed out after 5 s waiting for pods in namespace ns" in str(info.value)
    assert "p: c: ImagePullBackOff (pull)" in str(info.value)
    assert sum(clock.slept) >= 5  # it waited, without spinning
