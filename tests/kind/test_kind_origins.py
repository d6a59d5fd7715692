"""Where a request starts on a (fake) cluster, and the calls behind it as every sidecar of
the namespace logged them: the meshed probe, a pod without a sidecar, a browser through the
real ingress gateway's Service, and a workload's own pod (an ephemeral container)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from kind_fakes import FakeClock, FakeKube

from meshlab.backends.kind import podscript
from meshlab.backends.kind.apply import Retarget, apply_objects, lab_objects
from meshlab.backends.kind.origins import ORIGIN_UID, PLAIN_PROBE_POD
from meshlab.backends.kind.probe import KindMesh, probe_objects
from meshlab.errors import BackendError
from meshlab.mesh.request import Origin, ProbeRequest
from meshlab.pipeline import RunOptions, prepare, run_lab

NS = "meshlab-2-traffic-abc123"
RUN = Retarget("default", NS)
STAFF_URL = "http://fleetman-staff-service:8080/driver/City%20Truck"
WEBAPP_URL = "http://fleetman-webapp/api/vehicles/driver/City%20Truck"
BROWSER = Origin("browser")


def svc(name: str) -> str:
    return f"fleetman-{name}.default.svc.cluster.local"


@pytest.fixture
def deployed(kube: FakeKube, lab2_dir: Path) -> KindMesh:
    prepared = prepare(lab2_dir)
    objects = [*probe_objects(NS), *lab_objects(prepared.resources, RUN)]
    apply_objects(kube, objects, NS, lambda line: None)
    mesh = KindMesh(kube, NS, RUN, FakeClock(), run_id="ab")
    mesh.fqdns = [RUN.cluster(s.fqdn) for s in prepared.plan.registry.services]
    return mesh


def to_webapp(kube: FakeKube, *calls: str) -> None:
    """The probe calls the webapp, which calls `calls` in turn (as /api/... does)."""
    kube.mesh.target_app, kube.mesh.target_service = "webapp", "fleetman-webapp"
    kube.mesh.target_host = "fleetman-webapp"
    kube.mesh.weights = {"safe": 1.0}
    kube.mesh.calls = list(calls)


def pod_of(mesh: KindMesh, app: str) -> str:
    return next(p.name for p in mesh.pods if p.labels.get("app") == app)


def test_the_chain_from_the_meshed_probe(deployed: KindMesh, kube: FakeKube) -> None:
    to_webapp(kube, "api-gateway", "staff-service")
    webapp, gateway = pod_of(deployed, "webapp"), pod_of(deployed, "api-gateway")
    for outcome in deployed.send(ProbeRequest(WEBAPP_URL), 5):
        assert (outcome.status, outcome.pod) == (200, webapp)  # the depth-1 answer, as before
        assert outcome.upstream_cluster == f"outbound|8080|safe|{svc('webapp')}"
        assert [(h.service, h.caller, h.depth) for h in outcome.hops] == [
            (svc("webapp"), None, 1),
            (svc("api-gateway"), webapp, 2),
            (svc("staff-service"), gateway, 3),
        ]
        assert outcome.hops[0].labels == outcome.labels
        assert outcome.hops[2].labels["app"] == "staff-service"


def test_a_failure_deeper_in_the_chain_is_reported_at_its_hop(
    deployed: KindMesh, kube: FakeKube
) -> None:
    to_webapp(kube, "api-gateway", "staff-service")
    kube.mesh.fail_last_call = "503 FI"  # an injected abort on the staff-service call
    outcome = deployed.send(ProbeRequest(WEBAPP_URL), 1)[0]
    last = outcome.hops[-1]
    assert (last.service, last.pod, last.status, last.response_flags) == (
        svc("staff-service"),
        None,
        503,
        "FI",
    )
    assert last.caller == pod_of(deployed, "api-gateway")


def test_without_header_propagation_the_chain_stops_at_the_first_app(
    deployed: KindMesh, kube: FakeKube
) -> None:
    to_webapp(kube, "api-gateway", "staff-service")
    kube.mesh.propagate = False  # the apps' calls carry ids their sidecars made up
    outcome = deployed.send(ProbeRequest(WEBAPP_URL), 1)[0]
    assert [h.pod for h in outcome.hops] == [pod_of(deployed, "webapp")]


# --- no sidecar ----------------------------------------------------------------------------


def test_a_client_without_a_sidecar(deployed: KindMesh, kube: FakeKube) -> None:
    outcomes = deployed.send(ProbeRequest(STAFF_URL, origin=Origin("no-sidecar")), 5)
    plain = kube.objects[("Pod", NS, PLAIN_PROBE_POD)]
    assert plain["metadata"]["labels"]["sidecar.istio.io/inject"] == "false"
    assert [c["name"] for c in plain["spec"]["containers"]] == ["probe"]  # none injected
    assert set(kube.events.matching("exec: ")) == {
        "exec: meshlab-probe-plain python3 /meshlab/probe.py batch"
    }
    for outcome in outcomes:
        # no client proxy: the serving pod's sidecar tells which pod it was, and no cluster
        # was picked by a client
        assert outcome.pod is not None
        assert outcome.pod.startswith("staff-service")
        assert outcome.upstream_cluster is None
        (hop,) = outcome.hops
        assert (hop.service, hop.pod, hop.caller) == (svc("staff-service"), outcome.pod, None)
    assert PLAIN_PROBE_POD not in {p.name for p in deployed.pods}


# --- a browser, through the ingress gateway ------------------------------------------------


def test_a_browser_goes_through_the_gateway_service(deployed: KindMesh, kube: FakeKube) -> None:
    kube.gateway = True
    to_webapp(kube, "api-gateway")
    kube.mesh.target_host = "fleetman.com"
    outcomes = deployed.send(ProbeRequest("http://fleetman.com/", origin=BROWSER), 5)
    spec = json.loads(kube.exec_calls[-1][3])
    assert spec["url"] == "http://fleetman.com/"  # Host and path as typed
    assert spec["connect"] == "istio-ingressgateway.istio-system.svc.cluster.local:80"
    assert spec["agent_id"] is True
    webapp = pod_of(deployed, "webapp")
    for outcome in outcomes:
        assert outcome.pod == webapp
        assert outcome.upstream_cluster == f"outbound|8080|safe|{svc('webapp')}"
        # the gateway's own id is followed behind it
        assert [(h.service, h.caller, h.depth) for h in outcome.hops] == [
            (svc("webapp"), None, 1),
            (svc("api-gateway"), webapp, 2),
        ]


@pytest.mark.parametrize(("port", "service_port"), [(31380, 80), (30080, 80), (80, 80)])
def test_a_browser_reaches_the_gateway_at_its_nodeport_too(
    deployed: KindMesh, kube: FakeKube, port: int, service_port: int
) -> None:
    """The course's students type :31380 (the course's NodePort for 80); this cluster's own
    nodePort for 80 works as well. Host is still the URL's, port included."""
    kube.gateway = True
    to_webapp(kube)
    url = f"http://fleetman.com:{port}/" if port != 80 else "http://fleetman.com/"
    (outcome,) = deployed.send(ProbeRequest(url, origin=BROWSER), 1)
    assert outcome.pod == pod_of(deployed, "webapp")
    spec = json.loads(kube.exec_calls[-1][3])
    assert spec["connect"] == f"istio-ingressgateway.istio-system.svc.cluster.local:{service_port}"
    assert spec["url"] == url


def test_a_port_the_gateway_has_not_is_a_refused_connection(
    deployed: KindMesh, kube: FakeKube
) -> None:
    """What a browser would get, and what the embedded backend says: a failing outcome."""
    kube.gateway = True
    outcomes = deployed.send(ProbeRequest("http://fleetman.com:8080/", origin=BROWSER), 3)
    assert {o.error for o in outcomes} == {
        "connection refused: the ingress gateway's Service has no port 8080 (its ports: 15021, "
        "80; the course's NodePort 31380 stands for 80)"
    }
    assert {o.status for o in outcomes} == {None}
    assert kube.exec_calls == []  # nothing was sent


def test_a_browser_waits_while_the_gateway_has_no_route_yet(
    deployed: KindMesh, kube: FakeKube
) -> None:
    kube.gateway = True
    to_webapp(kube)
    kube.mesh.unrouted_batches = 2
    lines: list[str] = []
    deployed.progress = lines.append
    outcomes = deployed.send(ProbeRequest("http://fleetman.com/", origin=BROWSER), 3)
    assert {o.status for o in outcomes} == {200}
    assert deployed.requests_warmup == 3 * 20
    assert "found no route there yet (404 NR)" in lines[0]


@pytest.mark.parametrize(
    ("gateway", "url", "headers", "message"),
    [
        (False, "http://fleetman.com/", {}, "this cluster has none"),
        (True, "http://fleetman.com/", {"User-Agent": "Chrome"}, "cannot set user-agent"),
    ],
)
def test_what_a_browser_cannot_do_here_is_said(
    deployed: KindMesh,
    kube: FakeKube,
    gateway: bool,
    url: str,
    headers: dict[str, str],
    message: str,
) -> None:
    kube.gateway = gateway
    with pytest.raises(BackendError, match=message):
        deployed.send(ProbeRequest(url, headers=headers, origin=BROWSER), 1)


# --- a workload's own pod ------------------------------------------------------------------


def test_from_a_workload_through_its_own_sidecar(deployed: KindMesh, kube: FakeKube) -> None:
    webapp = pod_of(deployed, "webapp")
    outcomes = deployed.send(ProbeRequest(STAFF_URL, origin=Origin("workload", "webapp")), 5)
    deployed.send(ProbeRequest(STAFF_URL, origin=Origin("workload", "default/webapp")), 5)
    ((namespace, pod, container),) = kube.ephemeral  # added once, reused
    assert (namespace, pod, container["name"]) == (NS, webapp, "meshlab-origin")
    security = container["securityContext"]
    # not istio-proxy's UID 1337, whose connections the sidecar's iptables let through
    assert security["runAsUser"] == security["runAsGroup"] == ORIGIN_UID != 1337
    argv = kube.exec_calls[-1]
    assert argv[:2] == ["python3", "-c"]
    assert argv[2] == Path(podscript.__file__).read_text(encoding="utf-8")
    assert argv[3] == "batch"
    assert f"exec: {webapp} python3 -c" in kube.events
    for outcome in outcomes:  # read from the webapp pod's sidecar, which made the call
        assert outcome.pod is not None
        assert outcome.pod.startswith("staff-service")
        assert outcome.hops[0].caller == webapp  # the workload's pod made the call


@pytest.mark.parametrize(
    ("workload", "message"),
    [
        ("nope", "the lab has no Deployment or Pod named 'nope'"),
        ("istio-system/webapp", "'istio-system' is another one"),
    ],
)
def test_an_unknown_workload_is_named(deployed: KindMesh, workload: str, message: str) -> None:
    with pytest.raises(BackendError, match=message):
        deployed.send(ProbeRequest(STAFF_URL, origin=Origin("workload", workload)), 1)


@pytest.mark.parametrize(
    ("origin", "message"),
    [
        (BROWSER, "the ingress gateway logged no access-log line .* Is access logging on for"),
        (Origin("no-sidecar"), "the sidecar of the pod that served it logged no .* Has the pod"),
        (Origin("workload", "webapp"), "the sidecar of pod webapp-7d9f8-00000 logged no"),
    ],
)
def test_a_missing_line_names_the_proxy_that_should_have_written_it(
    deployed: KindMesh, kube: FakeKube, origin: Origin, message: str
) -> None:
    kube.gateway = True
    kube.drop_log_lines = True
    url = "http://fleetman.com/" if origin == BROWSER else STAFF_URL
    with pytest.raises(BackendError, match=message):
        deployed.send(ProbeRequest(url, origin=origin), 1)


def test_a_plain_probe_that_got_a_sidecar_anyway_is_refused(
    deployed: KindMesh, kube: FakeKube, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A webhook that injects regardless would make `no-sidecar` a meshed client."""
    start = kube._start_pod

    def forced(pod: dict[str, object], namespace: str) -> None:
        pod["metadata"]["labels"].pop("sidecar.istio.io/inject", None)  # type: ignore[index,union-attr]
        start(pod, namespace)

    monkeypatch.setattr(kube, "_start_pod", forced)
    with pytest.raises(BackendError, match="got a sidecar although it is labelled"):
        deployed.send(ProbeRequest(STAFF_URL, origin=Origin("no-sidecar")), 1)


# --- through the whole pipeline ------------------------------------------------------------

CHAIN_LAB = """\
title: The staff service behind the api-gateway, from the webapp's pod
manifests: [fleetman.yaml, istio-rules.yaml]
checks:
  - name: driver-from-webapp
    kind: split
    request:
      url: http://fleetman-api-gateway:8080/vehicles/driver/City%20Truck
      from: {workload: webapp}
    by: {service: fleetman-staff-service, label: version}
    expect: {safe: 100}
    requests: auto
"""


@pytest.mark.parametrize(
    ("fail", "passed", "words"),
    [
        (None, True, "(from workload webapp, by version at fleetman-staff-service) passed: safe"),
        ("503 FI", False, "HTTP 503 at fleetman-staff-service (FI)"),
    ],
)
def test_a_check_buckets_by_a_deeper_hop_on_kind(  # type: ignore[no-untyped-def]
    make, kube: FakeKube, lab2_dir: Path, tmp_path: Path, fail: str | None, passed: bool, words: str
) -> None:
    """The webapp's pod calls the api-gateway, which calls the staff service: the check
    reads the staff pod's version from the chain the sidecars logged."""
    lab = tmp_path / "chain"
    shutil.copytree(lab2_dir, lab)
    (lab / "lab.yaml").write_text(CHAIN_LAB)
    kube.mesh.target_app, kube.mesh.target_service = "api-gateway", "fleetman-api-gateway"
    kube.mesh.target_host = "fleetman-api-gateway:8080"
    kube.mesh.weights = {"safe": 1.0}
    kube.mesh.calls = ["staff-service"]  # its first pod: the `safe` one
    kube.mesh.fail_last_call = fail
    backend = make()
    report = run_lab(lab, RunOptions(backend="kind"), backend=backend)
    backend.close()
    (result,) = report.results
    assert result.passed is passed, result.message
    assert words in result.message
    assert kube.ephemeral  # sent from the webapp's pod
