"""What each check kind needs of a client, on a (fake) cluster: a cookie jar per session
(`kind: sticky` with a cookie ttl), requests sent when asked (`kind: ejection`), concurrent
clients (`kind: overflow`, 503 UO read from the access log), the pod's own timing
(`kind: latency`). The fake cluster answers; nothing here is a cluster result."""

from __future__ import annotations

import json
import shutil
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from kind_fakes import FakeClock, FakeKube

from meshlab.backends.base import Outcome
from meshlab.backends.kind.apply import Retarget, apply_objects, lab_objects
from meshlab.backends.kind.probe import KindMesh, probe_objects
from meshlab.backends.kind.session import batch_jar
from meshlab.checks.overflow import OverflowSpec, judge
from meshlab.mesh.request import ProbeRequest
from meshlab.pipeline import prepare, run_check

NS = "meshlab-2-traffic-abc123"
RUN = Retarget("default", NS)
URL = "http://fleetman-staff-service:8080/driver/City%20Truck"


@pytest.fixture
def deployed(kube: FakeKube, lab2_dir: Path) -> KindMesh:
    objects = [*probe_objects(NS), *lab_objects(prepare(lab2_dir).resources, RUN)]
    apply_objects(kube, objects, NS, lambda line: None)
    return KindMesh(kube, NS, RUN, FakeClock(), run_id="ab")


def _counts(kube: FakeKube) -> list[int]:
    return [json.loads(call[3])["count"] for call in kube.exec_calls]


# --- cookies (kind: sticky, cookie ttl) ----------------------------------------------------


def test_a_session_sends_back_the_cookie_envoy_set(deployed: KindMesh, kube: FakeKube) -> None:
    kube.mesh.hash_cookie = "user"
    with deployed.session() as session:
        (first,) = session.send(ProbeRequest(URL), 1)
        assert first.headers["set-cookie"].startswith('user="')
        assert set(session.jar) == {"user"}
        rest = session.send(ProbeRequest(URL), 30)
    assert {o.pod for o in rest} == {first.pod}  # the cookie went back: the same pod
    assert all("set-cookie" not in o.headers for o in rest)
    batches = [json.loads(call[3]) for call in kube.exec_calls[1:]]  # after the warm-up
    assert batches[0]["jar"] == {}  # a new client starts with none
    assert batches[1]["jar"] == {"user": session.jar["user"]}
    with deployed.session() as other:  # another user: no cookie carried over
        other.send(ProbeRequest(URL), 1)
        assert json.loads(kube.exec_calls[-1][3])["jar"] == {}
        assert other.jar["user"] != session.jar["user"]


def test_the_sticky_check_passes_with_ttl_cookies(
    kube: FakeKube, lab2_dir: Path, tmp_path: Path
) -> None:
    """The course's stickiness lab with an Envoy-made cookie instead of a header: the check
    itself, on the fake cluster, reads the same pod for every user's requests."""
    lab = tmp_path / "2-traffic-cookie"
    shutil.copytree(Path(lab2_dir).parent / "2-traffic-stickiness", lab)
    rules = lab / "istio-rules.yaml"
    rules.write_text(
        rules.read_text().replace("httpHeaderName: x-myval", "httpCookie: {name: user, ttl: 0s}")
    )
    spec = lab / "lab.yaml"
    spec.write_text(spec.read_text().replace("key: {header: x-myval}", "key: {cookie: user}"))
    prepared = prepare(lab)
    apply_objects(kube, [*probe_objects(NS), *lab_objects(prepared.resources, RUN)], NS, print)
    mesh = KindMesh(kube, NS, RUN, FakeClock(), run_id="ck")
    kube.mesh.hash_cookie = "user"
    (check,) = prepared.checks
    result = run_check(check, prepared.context(mesh))
    assert result.passed, result.message
    # each user's first request went without a cookie, its later ones with Envoy's
    sent = [json.loads(call[3]) for call in kube.exec_calls if json.loads(call[3]).get("jar") == {}]
    assert sent
    assert all(batch["count"] == 1 for batch in sent)


def test_the_jar_is_read_from_the_last_line() -> None:
    lines = [{"rid": "a-0"}, {"rid": "a-1", "jar": {"user": '"7f"'}}]
    assert batch_jar(lines, {"old": "1"}) == {"user": '"7f"'}
    assert batch_jar([{"rid": "a-0"}], {"old": "1"}) == {"old": "1"}  # no jar printed


# --- pacing (kind: ejection) -----------------------------------------------------------------


def test_a_lone_session_asking_one_at_a_time_never_reads_ahead(
    deployed: KindMesh, kube: FakeKube
) -> None:
    with deployed.session() as session:
        for _ in range(6):
            session.send(ProbeRequest(URL), 1)
    assert _counts(kube) == [20, 1, 1, 1, 1, 1, 1]  # the warm-up, then each when asked
    assert deployed.requests_sent == deployed.requests_warmup + deployed.requests_served


# --- concurrency (kind: overflow) ------------------------------------------------------------


def _clients(mesh: KindMesh, clients: int, each: int) -> list[Outcome]:
    def client(_: int) -> list[Outcome]:
        with mesh.session() as session:
            return [o for _ in range(each) for o in session.send(ProbeRequest(URL), 1)]

    with ThreadPoolExecutor(clients) as pool:
        return [o for batch in pool.map(client, range(clients)) for o in batch]


def test_concurrent_sessions_run_at_once_in_the_pod(deployed: KindMesh, kube: FakeKube) -> None:
    deployed.send(ProbeRequest(URL), 1)  # warmed up, as the overflow check's first request
    kube.exec_pause = 0.05  # an exec's round trip, so the threads' execs overlap
    kube.since_window = 64  # a log read covers every batch that ran at the same time
    outcomes = _clients(deployed, 6, 10)
    assert len(outcomes) == 60
    assert kube.peak_in_flight >= 2  # several clients in the pod at the same moment
    # beside other clients a session reads ahead: far fewer execs than requests
    assert len(kube.exec_calls) < 2 + 60
    assert len({json.loads(c[3])["prefix"] for c in kube.exec_calls}) == len(kube.exec_calls)
    assert deployed.requests_served == 61
    assert all(o.status == 200 and o.pod for o in outcomes)
    # the batches sent beside others start at one instant, the lone first one at once
    specs = [json.loads(c[3]) for c in kube.exec_calls]
    starts = [spec["start_at"] for spec in specs if "start_at" in spec]
    assert len(starts) >= 2
    assert len(set(starts)) < len(starts)  # shared by the clients that started together
    assert "start_at" not in specs[0]


def test_a_start_instant_is_shared_until_too_close(deployed: KindMesh) -> None:
    now = [1000.0]
    deployed.wall = lambda: now[0]
    first = deployed._together_start()
    assert first == 1001.0
    now[0] = 1000.6  # 0.4 s ahead: a new exec still makes it
    assert deployed._together_start() == first
    now[0] = 1000.8  # 0.2 s ahead: too close, the next group starts a second later
    assert deployed._together_start() == 1001.8


def test_overflow_is_read_from_the_client_sidecars_log(deployed: KindMesh, kube: FakeKube) -> None:
    deployed.send(ProbeRequest(URL), 1)
    kube.exec_pause, kube.since_window = 0.05, 64
    kube.mesh.pool = 1  # one batch at a time: the others overflow
    outcomes = _clients(deployed, 6, 10)
    overflowed = [o for o in outcomes if o.response_flags == "UO"]
    assert overflowed, "no request overflowed although the clients overlapped"
    assert {(o.status, o.pod) for o in overflowed} == {(503, None)}
    spec = OverflowSpec.model_validate(
        {
            "name": "pool",
            "kind": "overflow",
            "request": {"url": URL},
            "concurrency": 6,
            "expect": "overflow",
        }
    )
    check = type("C", (), {"name": "pool", "points": 1, "spec": spec})()
    assert judge(check, spec, outcomes, None).passed  # type: ignore[arg-type]


# --- timing (kind: latency) ------------------------------------------------------------------


def test_latency_is_the_pods_own_timing(deployed: KindMesh) -> None:
    """The script's `seconds` around each request, next to the client sidecar: a fault delay
    on the sidecar's route is in it, the exec's round trip is not."""
    (outcome,) = deployed.send(ProbeRequest(URL), 1)
    assert outcome.latency == 0.002
