"""External hosts on kind: the stand-ins meshlab deploys for ServiceEntry hosts, the entries
rewritten to reach them, the lab's mesh config as the run namespace's Sidecar, and the probe
dialling stand-ins instead of looking external names up. Checked on the objects kind would
get and on a fake cluster: no host outside the cluster appears anywhere."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from kind_fakes import FakeClock, FakeKube

from meshlab.backends.kind.apply import Retarget, apply_objects, lab_objects
from meshlab.backends.kind.external import (
    StandIns,
    in_cluster,
    mesh_config_sidecar,
    rewrite_service_entry,
    stand_ins,
)
from meshlab.backends.kind.kube import Obj
from meshlab.backends.kind.probe import KindMesh, probe_objects
from meshlab.errors import BackendUnavailable
from meshlab.mesh.request import Origin, ProbeRequest
from meshlab.pipeline import prepare, run_check

ROOT = Path(__file__).resolve().parents[2]
LAB10 = ROOT / "labs" / "10-service-entries"
NS = "meshlab-10-service-entries-abc123"
RUN = Retarget("default", NS)
DRIVER = "2oujlno5e4.execute-api.us-east-1.amazonaws.com"
LOCAL = ["fleetman-staff-service", "fleetman-staff-service.default.svc.cluster.local"]


def kind_objects(lab: Path) -> tuple[list[Obj], StandIns]:
    """Every object the kind backend would create for the lab, as backend.deploy builds it."""
    resources = prepare(lab).resources
    standins = stand_ins(resources, NS, LOCAL)
    objects = [
        one for o in lab_objects(resources, RUN) for one in rewrite_service_entry(o, standins)
    ]
    mesh_config_sidecar(resources, objects, NS)
    return [*objects, *standins.objects()], standins


def strings(value: Any) -> Iterator[str]:
    if isinstance(value, dict):
        for item in value.values():
            yield from strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from strings(item)
    elif isinstance(value, str):
        yield value


def test_each_external_host_gets_a_stand_in_in_the_run_namespace() -> None:
    objects, standins = kind_objects(LAB10)
    assert sorted(standins.hosts) == [DRIVER, "google.com", "www.google.com"]
    deployments = [
        o for o in objects if o["kind"] == "Deployment" and "meshlab-ext-" in o["metadata"]["name"]
    ]
    assert len(deployments) == 4  # three hosts and the catch-all
    for deployment in deployments:
        name = deployment["metadata"]["name"]
        assert len(name) <= 63
        assert deployment["metadata"]["namespace"] == NS
        template = deployment["spec"]["template"]
        assert template["metadata"]["labels"]["sidecar.istio.io/inject"] == "false"
        (container,) = template["spec"]["containers"]
        assert container["command"][:3] == ["python3", "/meshlab/probe.py", "serve"]
        assert container["command"][4:] == ["80"]  # the HTTPS port 443 is not played
    google = next(d for d in deployments if d["metadata"]["name"].endswith("-www-google-com"))
    labels = google["spec"]["template"]["metadata"]["labels"]
    assert labels["meshlab.external"] == "www.google.com"  # as on the embedded backend
    services = {o["metadata"]["name"]: o for o in objects if o["kind"] == "Service"}
    for deployment in deployments:
        service = services[deployment["metadata"]["name"]]
        assert service["spec"]["clusterIP"] == "None"  # DNS gives the pods: the log names one
        assert service["spec"]["ports"] == [{"name": "http-80", "port": 80, "targetPort": 80}]


def test_service_entries_point_at_the_stand_ins_one_host_each() -> None:
    objects, standins = kind_objects(LAB10)
    entries = {o["metadata"]["name"]: o["spec"] for o in objects if o["kind"] == "ServiceEntry"}
    assert sorted(entries) == ["driver-monitoring", "google-0", "google-1"]
    assert entries["google-0"]["hosts"] == ["google.com"]
    assert entries["google-1"]["hosts"] == ["www.google.com"]
    for spec in entries.values():
        (endpoint,) = spec["endpoints"]
        (host,) = spec["hosts"]
        assert endpoint == {"address": standins.fqdn(standins.hosts[host])}
        assert endpoint["address"].endswith(f".{NS}.svc.cluster.local")
        assert spec["resolution"] == "DNS"
        assert spec["location"] == "MESH_EXTERNAL"


def test_no_object_names_an_address_outside_the_cluster() -> None:
    """The only external names left are hosts the mesh matches on (ServiceEntry and
    VirtualService `hosts`, a Gateway's server hosts, a route's destination host): names
    istiod routes by. None is an address anything connects to."""
    objects, _ = kind_objects(LAB10)
    assert {o["metadata"].get("namespace") for o in objects} == {NS}
    externals = {DRIVER, "google.com", "www.google.com"}
    for obj in objects:
        spec = obj.get("spec") or {}
        for endpoint in spec.get("endpoints") or []:
            assert endpoint["address"].endswith(f".{NS}.svc.cluster.local")
        assert not spec.get("addresses")
        if obj["kind"] in ("Deployment", "Service", "Pod"):
            mine = obj["metadata"]["name"].startswith("meshlab-ext-")
            named = externals & set(strings(spec))
            # a stand-in names its host only to say whom it plays (its argument, its label)
            assert not named or (mine and len(named) == 1), obj["metadata"]["name"]


def test_the_mesh_config_becomes_the_namespaces_sidecar() -> None:
    objects, _ = kind_objects(LAB10)
    assert not [o for o in objects if o["kind"] == "ConfigMap"]  # never istio-system's
    (sidecar,) = [o for o in objects if o["kind"] == "Sidecar"]
    assert sidecar["metadata"] == {"name": "meshlab-mesh-config", "namespace": NS}
    assert sidecar["spec"] == {"outboundTrafficPolicy": {"mode": "REGISTRY_ONLY"}}


def test_a_labs_own_default_sidecar_takes_the_mode_it_does_not_set() -> None:
    resources = prepare(LAB10).resources
    own: Obj = {"kind": "Sidecar", "metadata": {"name": "default"}, "spec": {"egress": []}}
    mesh_config_sidecar(resources, [own], NS)
    assert own["spec"]["outboundTrafficPolicy"] == {"mode": "REGISTRY_ONLY"}
    kept: Obj = {"kind": "Sidecar", "spec": {"outboundTrafficPolicy": {"mode": "ALLOW_ANY"}}}
    objects = [kept]
    mesh_config_sidecar(resources, objects, NS)
    assert objects == [kept]
    assert kept["spec"]["outboundTrafficPolicy"]["mode"] == "ALLOW_ANY"


@pytest.mark.parametrize(
    ("before", "after", "what"),
    [
        ("resolution: DNS", "resolution: NONE", "resolution NONE"),
        ("resolution: DNS", "resolution: STATIC", "resolution STATIC"),
        ("    - google.com\n", "    - '*.google.com'\n", "wildcard host *.google.com"),
    ],
)
def test_entries_that_need_the_real_address_are_refused(
    tmp_path: Path, before: str, after: str, what: str
) -> None:
    lab = tmp_path / "10-service-entries"
    shutil.copytree(LAB10, lab)
    entries = lab / "service-entries.yaml"
    entries.write_text(entries.read_text().replace(before, after, 1))
    if "STATIC" in after:  # STATIC needs endpoints to be valid
        entries.write_text(
            entries.read_text().replace(
                "resolution: STATIC", "resolution: STATIC\n  endpoints:\n    - address: 52.1.2.3", 1
            )
        )
    with pytest.raises(BackendUnavailable) as refused:
        stand_ins(prepare(lab).resources, NS, LOCAL)
    message = str(refused.value)
    assert message.startswith(f"{entries}:")  # file:line of the entry
    assert message.split(":")[1].isdigit()
    assert what in message
    assert "never leaves the cluster" in message


# --- where the probe connects -------------------------------------------------------------


def test_in_cluster_names() -> None:
    local = frozenset([*LOCAL, ".default", ".istio-system"])
    for host in (
        "fleetman-staff-service",
        "x.other.svc.cluster.local",
        "x.default.svc",
        "10.96.0.1",
    ):
        assert in_cluster(host, local), host
    for host in ("fleetman-webapp.default", "istio-ingressgateway.istio-system"):
        assert in_cluster(host, local), host  # `name.namespace`, by the search path
    for host in ("www.google.com", "8.8.8.8", DRIVER, "fleetman.com", "example.org"):
        assert not in_cluster(host, local), host


def test_the_probe_dials_a_stand_in_for_every_external_host() -> None:
    _, standins = kind_objects(LAB10)
    assert standins.connect("www.google.com", 80) == (
        f"meshlab-ext-2-www-google-com.{NS}.svc.cluster.local:80"
    )
    assert standins.connect("WWW.Google.com.", 80) == standins.connect("www.google.com", 80)
    assert standins.connect("www.example.org", 80) == (
        f"meshlab-ext-unregistered.{NS}.svc.cluster.local:80"
    )
    assert standins.connect("8.8.8.8", 80) is not None  # a public address: never dialled
    assert standins.connect("fleetman-staff-service", 8080) is None
    assert standins.connect("fleetman-staff-service.default", 8080) is None
    assert standins.connect(f"fleetman-staff-service.{NS}", 8080) is None
    assert standins.refusal("www.example.org") is None


@pytest.fixture
def mesh10(kube: FakeKube) -> KindMesh:
    objects, standins = kind_objects(LAB10)
    apply_objects(kube, [*probe_objects(NS), *objects], NS, lambda line: None)
    mesh = KindMesh(kube, NS, RUN, FakeClock(), run_id="ex")
    mesh.external = standins
    return mesh


def test_a_request_to_an_external_host_goes_to_its_stand_in(
    mesh10: KindMesh, kube: FakeKube
) -> None:
    origin = Origin("workload", "staff-service")
    kube.mesh.target_app, kube.mesh.weights = "staff-service", {"latest": 1.0}
    mesh10.send(ProbeRequest("http://www.google.com/", origin=origin), 2)
    spec = json.loads(kube.exec_calls[-1][4])  # python3 -c SCRIPT batch SPEC
    assert spec["url"] == "http://www.google.com/"  # Host stays the external name
    assert spec["connect"] == f"meshlab-ext-2-www-google-com.{NS}.svc.cluster.local:80"
    stand_in_pods = [p for p in mesh10.pods if p.labels.get("meshlab.external") == "www.google.com"]
    assert len(stand_in_pods) == 1  # a pod of the lab's, so the log's upstream maps to it


def test_without_stand_ins_an_external_request_is_not_sent(kube: FakeKube, lab2_dir: Path) -> None:
    resources = prepare(lab2_dir).resources
    apply_objects(kube, [*probe_objects(NS), *lab_objects(resources, RUN)], NS, print)
    mesh = KindMesh(kube, NS, RUN, FakeClock(), run_id="no")
    mesh.external = stand_ins(resources, NS, LOCAL)
    (outcome,) = mesh.send(ProbeRequest("http://www.google.com/"), 1)
    assert outcome.status is None
    assert outcome.error is not None
    assert "outside the cluster" in outcome.error
    assert kube.exec_calls == []  # nothing ran in the pod


def test_the_backend_deploys_lab_10_with_its_stand_ins(  # type: ignore[no-untyped-def]
    make, kube: FakeKube, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The whole deploy on the fake cluster: what was created, in the run namespace only. The
    fake's sidecar knows lab 2's routes only, so the wait for lab 10's is recorded instead."""
    waited: list[str] = []
    monkeypatch.setattr(
        KindMesh, "wait_for_config", lambda self, expected: waited.extend(e.fqdn for e in expected)
    )
    backend = make(kubeconfig=None)
    kube.gateway = True
    try:
        with backend.deploy(prepare(LAB10).to_deploy()) as mesh:
            created = [key for key in kube.objects if key[1] == mesh.namespace]
            assert ("Sidecar", mesh.namespace, "meshlab-mesh-config") in created
            assert ("ServiceEntry", mesh.namespace, "google-1") in created
            assert ("Deployment", mesh.namespace, "meshlab-ext-unregistered") in created
            assert not [key for key in kube.objects if key[1] == "istio-system"]
            assert mesh.external.connect("www.google.com", 80) is not None
    finally:
        backend.close()  # the (fake) kind cluster goes
    assert {"www.google.com", "google.com", DRIVER} <= set(waited)  # counting waits for them


# --- through the egress gateway -------------------------------------------------------------


def test_a_call_through_the_egress_gateway_is_traced_to_the_stand_in(
    mesh10: KindMesh, kube: FakeKube
) -> None:
    kube.egress = True
    mesh10.use_egress_gateway()
    kube.mesh.egress_to = "www.google.com"
    origin = Origin("workload", "staff-service")
    outcomes = mesh10.send(ProbeRequest("http://www.google.com/", origin=origin), 3)
    spec = json.loads(kube.exec_calls[-1][4])
    assert spec["agent_id"] is True  # the gateway's new id is matched by the User-Agent
    for outcome in outcomes:
        gateway, host = outcome.hops
        assert gateway.service == "istio-egressgateway.istio-system.svc.cluster.local"
        assert gateway.labels["istio"] == "egressgateway"
        assert gateway.pod == outcome.pod == "istio-egressgateway-6c7d-k1"
        assert (host.service, host.depth, host.caller) == ("www.google.com", 2, gateway.pod)
        assert host.labels["meshlab.external"] == "www.google.com"
    assert "istio-egressgateway-6c7d-k1" not in {p.name for p in mesh10.pods}  # not the lab's


def test_lab_10s_egress_checks_on_the_fake_cluster(mesh10: KindMesh, kube: FakeKube) -> None:
    """The lab's own checks through the gateway, judged as on the embedded backend."""
    kube.egress = True
    mesh10.use_egress_gateway()
    kube.mesh.egress_to = "www.google.com"
    prepared = prepare(LAB10)
    for check in prepared.checks:
        if check.name in ("google-through-egress-gateway", "google-answers"):
            result = run_check(check, prepared.context(mesh10))
            assert result.passed, result.message


def test_without_the_gateways_logs_the_chain_ends_at_the_gateway(
    mesh10: KindMesh, kube: FakeKube
) -> None:
    """A lab that sets its own User-Agent: the gateway's line cannot be found, so nothing is
    reported behind it (nothing guessed)."""
    kube.egress = True
    mesh10.use_egress_gateway()
    kube.mesh.egress_to = "www.google.com"
    origin = Origin("workload", "staff-service")
    request = ProbeRequest("http://www.google.com/", headers={"user-agent": "curl"}, origin=origin)
    (outcome,) = mesh10.send(request, 1)
    assert json.loads(kube.exec_calls[-1][4])["agent_id"] is False
    (hop,) = outcome.hops
    assert hop.labels["istio"] == "egressgateway"


def test_tls_ports_without_a_stand_in_are_noted(make) -> None:  # type: ignore[no-untyped-def]
    notes = make().notes(prepare(LAB10).to_deploy())
    ports = [n for n in notes if "has no stand-in on kind" in n.message]
    assert len(ports) == 3  # port 443 of each of the three hosts
    assert all(n.location is not None for n in ports)
    assert "port 443 (HTTPS) of www.google.com" in "\n".join(n.message for n in ports)
