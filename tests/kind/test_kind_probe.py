"""The probe on a (fake) cluster: pod objects, access-log parsing, batching and outcomes,
and the wait for the lab's routes to reach the probe's sidecar."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from kind_fakes import FakeClock, FakeKube

from meshlab.backends.kind import podscript
from meshlab.backends.kind.accesslog import parse_access_log_line
from meshlab.backends.kind.apply import Retarget, apply_objects, lab_objects
from meshlab.backends.kind.kube import ExecResult
from meshlab.backends.kind.probe import MAX_BATCH, KindMesh, host_ip, parse_batch, probe_objects
from meshlab.backends.kind.sidecar_routes import config_problems, expected_routes, render_routes
from meshlab.errors import BackendError
from meshlab.mesh.request import ProbeRequest
from meshlab.pipeline import prepare

NS = "meshlab-2-traffic-abc123"
RUN = Retarget("default", NS)
URL = "http://fleetman-staff-service:8080/driver/City%20Truck"


def test_probe_objects() -> None:
    configmap, telemetry, pod = probe_objects(NS)
    assert configmap["data"]["probe.py"] == Path(podscript.__file__).read_text(encoding="utf-8")
    assert telemetry["apiVersion"] == "telemetry.istio.io/v1"
    # every sidecar of the run namespace, both directions: the chain is read from them all
    assert telemetry["spec"] == {"accessLogging": [{"providers": [{"name": "envoy"}]}]}
    assert pod["metadata"]["labels"] == {"meshlab.io/probe": "true"}
    assert json.loads(pod["metadata"]["annotations"]["proxy.istio.io/config"]) == {
        "holdApplicationUntilProxyStarts": True
    }
    container = pod["spec"]["containers"][0]
    assert container["volumeMounts"] == [
        {"name": "script", "mountPath": "/meshlab", "readOnly": True}
    ]
    assert pod["spec"]["volumes"] == [{"name": "script", "configMap": {"name": "meshlab-probe"}}]
    assert {o["metadata"]["namespace"] for o in (configmap, telemetry, pod)} == {NS}


# --- the client sidecar's access log -----------------------------------------------------

JSON_LINE = json.dumps(
    {
        "authority": "fleetman-staff-service:8080",
        "request_id": "meshlab-ab-1-0",
        "response_code": "200",
        "response_flags": "-",
        "upstream_cluster": f"outbound|8080|risky|fleetman-staff-service.{NS}.svc.cluster.local",
        "upstream_host": "10.244.0.12:8080",
    }
)
# Istio's default TEXT format (EnvoyTextLogFormat), as the built-in `envoy` provider writes it.
TEXT_LINE = (
    '[2026-11-21T10:00:00.123Z] "GET /driver/City%20Truck HTTP/1.1" 503 UH no_healthy_upstream - '
    '"-" 0 19 0 - "-" "meshlab-probe" "meshlab-ab-1-1" "fleetman-staff-service:8080" "-" '
    f"outbound|8080|risky|fleetman-staff-service.{NS}.svc.cluster.local - 10.96.12.3:8080 "
    "10.244.0.20:51234 - -"
)


def test_parse_json_access_log() -> None:
    entry = parse_access_log_line(JSON_LINE)
    assert entry is not None
    assert (entry.request_id, entry.response_code, entry.response_flags) == (
        "meshlab-ab-1-0",
        200,
        "-",
    )
    assert entry.upstream_host == "10.244.0.12:8080"
    assert entry.upstream_cluster is not None
    assert "|risky|" in entry.upstream_cluster


def test_parse_text_access_log() -> None:
    entry = parse_access_log_line(TEXT_LINE)
    assert entry is not None
    assert (entry.request_id, entry.response_code, entry.response_flags) == (
        "meshlab-ab-1-1",
        503,
        "UH",
    )
    assert entry.upstream_host is None
    assert (
        entry.upstream_cluster
        == f"outbound|8080|risky|fleetman-staff-service.{NS}.svc.cluster.local"
    )


@pytest.mark.parametrize(
    "line",
    [
        "2026-11-21T10:00:00.000000Z\tinfo\tEnvoy proxy is ready",
        '{"level": "info", "msg": "xds"}',
        "{not json",
        "",
    ],
)
def test_other_sidecar_lines_are_ignored(line: str) -> None:
    assert parse_access_log_line(line) is None


def test_host_ip() -> None:
    assert host_ip("10.244.0.7:8080") == "10.244.0.7"
    assert host_ip("[fd00::7]:8080") == "fd00::7"


# --- the mesh ----------------------------------------------------------------------------


@pytest.fixture
def deployed(kube: FakeKube, lab2_dir: Path) -> KindMesh:
    objects = [*probe_objects(NS), *lab_objects(prepare(lab2_dir).resources, RUN)]
    apply_objects(kube, objects, NS, lambda line: None)
    return KindMesh(kube, NS, RUN, FakeClock(), run_id="ab")


def test_pods_are_the_labs_with_their_real_labels(deployed: KindMesh) -> None:
    names = sorted(p.name for p in deployed.pods)
    assert "meshlab-probe" not in names
    risky = next(p for p in deployed.pods if p.labels.get("version") == "risky")
    assert risky.name == "staff-service-risky-7d9f8-00000"
    assert risky.labels["pod-template-hash"] == "7d9f8"
    assert risky.image == "richardchesterwood/istio-fleetman-staff-service:6"
    assert risky.detail.startswith("Running, IP 10.244.0.")


def test_one_exec_per_batch_with_the_exact_command(deployed: KindMesh, kube: FakeKube) -> None:
    outcomes = deployed.send(ProbeRequest(URL, headers={"x-user": "a"}), 10)
    assert len(outcomes) == 10
    warmup, counted = kube.exec_calls  # a warm-up batch, then one counted batch
    for argv in (warmup, counted):
        assert argv[:3] == ["python3", "/meshlab/probe.py", "batch"]
    assert json.loads(warmup[3]) == {
        "url": URL,
        "method": "GET",
        "headers": {"x-user": "a"},
        "count": 20,
        "prefix": "meshlab-ab-1-",
        "timeout": 30.0,
    }
    assert json.loads(counted[3])["prefix"] == "meshlab-ab-2-"


def test_sessions_send_through_the_probe_with_headers_and_latency(deployed: KindMesh) -> None:
    with deployed.session() as session:
        outcomes = session.send(ProbeRequest(URL), 5)
    assert {o.headers["server"] for o in outcomes} == {"envoy"}
    assert {o.latency for o in outcomes} == {0.002}  # the pod's own timing of each request
    for outcome in outcomes:  # one call: the probe's own, nothing behind it
        (hop,) = outcome.hops
        assert (hop.pod, hop.depth, hop.caller, hop.status) == (outcome.pod, 1, None, 200)
        assert hop.service == "fleetman-staff-service.default.svc.cluster.local"
    with deployed.session() as other:  # a fresh client: its own jar, nothing read ahead
        assert len(other.send(ProbeRequest(URL), 3)) == 3
    assert deployed.requests_served == 8


def test_outcomes_name_the_serving_pod(deployed: KindMesh) -> None:
    outcomes = deployed.send(ProbeRequest(URL), 200)
    versions = {o.labels["version"] for o in outcomes}
    assert versions == {"safe", "risky"}
    for outcome in outcomes:
        assert outcome.status == 200
        assert outcome.pod is not None
        assert outcome.pod.startswith("staff-service")
        assert outcome.response_flags == "-"
        version = outcome.labels["version"]
        # cluster names are told in the lab's namespace, as the plan and reports say them
        assert outcome.upstream_cluster == (
            f"outbound|8080|{version}|fleetman-staff-service.default.svc.cluster.local"
        )
        assert json.loads(outcome.body)["name"] == "Pam Parry"
        assert not outcome.failed


def test_a_session_reads_ahead_on_repeats_and_keeps_the_rest(
    deployed: KindMesh, kube: FakeKube
) -> None:
    request = ProbeRequest(URL)
    with deployed.session() as session:
        first = session.send(request, 10)  # a first call: exactly what was asked
        assert (deployed.requests_warmup, deployed.requests_sent) == (20, 20 + 10)
        session.send(request, 10)  # a repeat: no more ahead than handed out (10)
        session.send(request, 10)  # 20 handed out: a batch of 20, 10 kept
        session.send(request, 10)  # from what was kept: no exec
        assert _counts(kube) == [20, 10, 10, 20]
        big = session.send(request, 600)  # asked for more than the cap: exactly that
        session.send(request, 10)  # 640 handed out: a batch up to the 2 s cap
        assert _counts(kube)[4:] == [600, MAX_BATCH]
        assert [len(first), len(big)] == [10, 600]
        other = session.send(ProbeRequest(URL, headers={"end-user": "x"}), 5)  # another request
        assert len(other) == 5  # same host and port: no second warm-up
        assert _counts(kube)[-1] == 5  # exactly: what was kept for the other request is dropped
        assert session.batches == 6
    assert deployed.requests_served == 40 + 600 + 10 + 5
    # another session never gets outcomes a session sent: it sends its own
    assert len(deployed.send(request, 3)) == 3
    assert _counts(kube)[-1] == 3


def _counts(kube: FakeKube) -> list[int]:
    return [json.loads(call[3])["count"] for call in kube.exec_calls]


def test_outcomes_come_in_the_order_they_were_sent(deployed: KindMesh, kube: FakeKube) -> None:
    deployed.send(ProbeRequest(URL), 1)  # warm-up (20 requests), then that one request
    seen = [o.pod for o in deployed.send(ProbeRequest(URL), 60)]
    log = [
        json.loads(line) for line in kube.logs(NS, "meshlab-probe", "istio-proxy", 0).splitlines()
    ]
    ips = {p.detail.split("IP ")[1].split(",")[0]: p.name for p in deployed.pods}
    in_log = [ips[entry["upstream_host"].split(":")[0]] for entry in log]
    assert seen == in_log[21:81]  # sent as one batch of 60 by a fresh session


def test_failures_without_a_pod(deployed: KindMesh, kube: FakeKube) -> None:
    kube.mesh.fail_with = "HTTP 503 UH"
    outcome = deployed.send(ProbeRequest(URL), 1)[0]
    assert (outcome.status, outcome.pod, outcome.response_flags) == (503, None, "UH")
    assert outcome.bucket("version") == "HTTP 503"
    kube.mesh.fail_with = "error: could not resolve host 'nope': Name does not resolve"
    outcome = deployed.send(ProbeRequest("http://nope:8080/"), 1)[0]
    assert outcome.status is None
    assert outcome.error == "could not resolve host 'nope': Name does not resolve"


def test_access_log_lines_arrive_late(deployed: KindMesh, kube: FakeKube) -> None:
    kube.log_delay = 2  # istio-proxy flushes its log once a second
    clock = deployed.clock
    assert isinstance(clock, FakeClock)
    outcomes = deployed.send(ProbeRequest(URL), 5)
    assert all(o.pod for o in outcomes)
    # per batch (warm-up and counted): 1.5 s for every proxy to flush (once a second), then
    # the lines show up at the third read
    assert clock.slept == [1.5, 0.5, 0.5] * 2


def test_no_access_log_is_an_error_not_a_guess(deployed: KindMesh, kube: FakeKube) -> None:
    kube.drop_log_lines = True
    with pytest.raises(BackendError, match="logged no access-log line for 20 of 20 requests"):
        deployed.send(ProbeRequest(URL), 3)


def test_warm_up_waits_for_apps_that_are_still_starting(deployed: KindMesh, kube: FakeKube) -> None:
    kube.mesh.closed_batches = 3  # Spring Boot still starting: connection refused (URX,UF)
    lines: list[str] = []
    deployed.progress = lines.append
    outcomes = deployed.send(ProbeRequest(URL), 10)
    assert all(o.status == 200 for o in outcomes)  # nothing from the warm-up is counted
    assert deployed.requests_warmup == 4 * 20
    assert len(lines) == 3
    assert lines[0] == (
        "warming up fleetman-staff-service:8080: 20 of 20 requests found no listening app yet "
        "(Envoy flag UF); its pods may still be starting"
    )


def test_warm_up_gives_up_and_counts_what_the_mesh_does(deployed: KindMesh, kube: FakeKube) -> None:
    kube.mesh.closed_batches = 10**6  # e.g. a Service whose targetPort nothing listens on
    lines: list[str] = []
    deployed.progress = lines.append
    outcomes = deployed.send(ProbeRequest(URL), 10)
    assert {o.bucket("version") for o in outcomes} == {"HTTP 503"}
    assert {o.response_flags for o in outcomes} == {"URX,UF"}
    assert lines[-1].endswith("still find no listening app (Envoy flag UF); counting anyway")


def test_routing_failures_are_no_reason_to_wait(deployed: KindMesh, kube: FakeKube) -> None:
    kube.mesh.fail_with = "HTTP 503 NC"  # a subset with no cluster: the lab is measured as is
    deployed.send(ProbeRequest(URL), 10)
    assert deployed.requests_warmup == 20
    assert len(kube.exec_calls) == 2


def test_probe_output_is_checked() -> None:
    good = '{"rid": "p-0", "status": 200}\n{"rid": "p-1", "status": null}\n'
    assert len(parse_batch(good, "p-", 2)) == 2
    with pytest.raises(BackendError, match="reported 2 of 3"):
        parse_batch(good, "p-", 3)
    with pytest.raises(BackendError, match="not JSON"):
        parse_batch("Traceback (most recent call last):\n", "p-", 1)
    with pytest.raises(BackendError, match="unexpected line"):
        parse_batch('{"rid": "other-0"}\n', "p-", 1)


def test_a_failing_exec_says_what_the_pod_said(deployed: KindMesh, kube: FakeKube) -> None:
    failed = ExecResult("", "python3: can't open file '/meshlab/probe.py'", 2)
    kube.exec = lambda *args, **kwargs: failed  # type: ignore[method-assign]
    with pytest.raises(BackendError, match=r"exit 2.*can't open file"):
        deployed.send(ProbeRequest(URL), 1)


# --- the routes reach the sidecar before counting ----------------------------------------


def test_expected_routes_of_lab_2(lab2_dir: Path) -> None:
    expected = expected_routes(prepare(lab2_dir).plan, RUN)
    staff = next(e for e in expected if e.fqdn.startswith("fleetman-staff-service."))
    assert staff.table == "8080"
    assert staff.fqdn == f"fleetman-staff-service.{NS}.svc.cluster.local"
    assert staff.clusters == (
        f"outbound|8080|safe|fleetman-staff-service.{NS}.svc.cluster.local",
        f"outbound|8080|risky|fleetman-staff-service.{NS}.svc.cluster.local",
    )
    assert set(staff.endpoints.values()) == {1}
    assert {e.table for e in expected} == {"80", "8080"}


def test_counting_waits_for_the_labs_routes(
    deployed: KindMesh, kube: FakeKube, lab2_dir: Path
) -> None:
    kube.sync_after = 3  # three reads still show the route from before the VirtualService
    lines: list[str] = []
    deployed.progress = lines.append
    deployed.wait_for_config(expected_routes(prepare(lab2_dir).plan, RUN))
    assert [c[2] for c in kube.exec_calls] == ["envoy"] * 4
    assert lines == ["the probe's sidecar has the lab's routes; counting starts"]


def test_routes_that_never_arrive_stop_the_run(
    deployed: KindMesh, kube: FakeKube, lab2_dir: Path
) -> None:
    kube.sync_after = 10**6
    with pytest.raises(BackendError) as info:
        deployed.wait_for_config(expected_routes(prepare(lab2_dir).plan, RUN))
    assert "did not get the lab's routing within 90 s" in str(info.value)
    assert "not yet to outbound|8080|safe|" in str(info.value)


def test_config_problems_names_what_is_missing() -> None:
    fqdn = f"fleetman-staff-service.{NS}.svc.cluster.local"
    (want,) = [
        e
        for e in expected_routes(
            prepare(Path(__file__).parents[2] / "labs" / "2-traffic").plan, RUN
        )
        if e.fqdn == fqdn
    ]
    assert config_problems([want], {}) == [f"route table 8080: no virtual host for {fqdn} yet"]
    summary = {
        "routes": {"8080": [{"domains": [fqdn], "targets": [[c, 50] for c in want.clusters]}]},
        "clusters": {want.clusters[0]: ["10.244.0.1:8080"], want.clusters[1]: []},
    }
    assert config_problems([want], summary) == [
        f"cluster {want.clusters[1]}: 0 of 1 endpoints so far"
    ]


def test_render_routes_for_reports(deployed: KindMesh) -> None:
    text = render_routes(
        deployed.envoy_summary(), [f"fleetman-staff-service.{NS}.svc.cluster.local"]
    )
    assert (
        f"route 8080 fleetman-staff-service.{NS}.svc.cluster.local:8080: outbound|8080|safe|"
        in text
    )
    assert "weight 90" in text
    assert "weight 10" in text
    assert (
        f"cluster outbound|8080|risky|fleetman-staff-service.{NS}.svc.cluster.local: 10.244.0."
        in text
    )
    assert render_routes({}, ["x"]) == "(the sidecar has no routes for the lab's services)"
