"""The embedded backend end to end: our translation, a real Envoy, stand-in pods.

Smoke checks only: the split assertions are deliberately loose (the statistics module gives
the real verdict). Each scenario also checks that `configured_split` predicted what Envoy did.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterator
from contextlib import AbstractContextManager
from pathlib import Path

import psutil
import pytest

from meshlab.backends.base import LabToDeploy
from meshlab.backends.embedded.backend import EmbeddedBackend, EmbeddedMesh
from meshlab.load.manifests import Resource, load_manifests
from meshlab.mesh.expect import configured_split
from meshlab.mesh.plan import build_plan
from meshlab.mesh.request import ProbeRequest
from staff_rules import HOST, both

pytestmark = pytest.mark.envoy

ROOT = Path(__file__).resolve().parents[2]
LAB2 = ROOT / "labs" / "2-traffic"
DATA = ROOT / "tests" / "data" / "mesh"
APPS = DATA / "apps.yaml"
URL = "http://fleetman-staff-service:8080/driver/City%20Truck"
STAFF = "fleetman-staff-service.default.svc.cluster.local"


def planned(resources: list[Resource]) -> LabToDeploy:
    return LabToDeploy("test", "default", resources, build_plan(resources, "default"))


def deploy(backend: EmbeddedBackend, *files: Path) -> AbstractContextManager[EmbeddedMesh]:
    return backend.deploy(planned(load_manifests(list(files), "default")))


def scenario(backend: EmbeddedBackend, name: str) -> AbstractContextManager[EmbeddedMesh]:
    """The two staff-service builds plus one rules file of tests/data/mesh."""
    return deploy(backend, APPS, DATA / name)


@pytest.fixture(scope="module")
def lab2(backend: EmbeddedBackend) -> Iterator[EmbeddedMesh]:
    with deploy(backend, LAB2 / "fleetman.yaml", LAB2 / "istio-rules.yaml") as mesh:
        yield mesh


@pytest.fixture(scope="module")
def header_canary(backend: EmbeddedBackend) -> Iterator[EmbeddedMesh]:
    with scenario(backend, "header-canary.yaml") as mesh:
        yield mesh


def flags_expected(mesh: EmbeddedMesh, request: ProbeRequest) -> set[str | None]:
    return {c.flags for c in configured_split(mesh.plan, request, "version").causes}


def test_lab2_routes_only_to_staff_pods_with_roughly_the_configured_split(
    lab2: EmbeddedMesh,
) -> None:
    outcomes = lab2.send(ProbeRequest(URL), 400)
    assert {o.status for o in outcomes} == {200}
    assert {o.response_flags for o in outcomes} == {"-"}
    staff_pods = {p.name for p in lab2.pods if p.labels.get("app") == "staff-service"}
    assert {o.pod for o in outcomes} <= staff_pods
    versions = Counter(o.bucket("version") for o in outcomes)
    assert set(versions) == {"safe", "risky"}
    assert 0.03 <= versions["risky"] / 400 <= 0.20
    assert {o.upstream_cluster for o in outcomes} == {
        f"outbound|8080|safe|{STAFF}",
        f"outbound|8080|risky|{STAFF}",
    }


def test_missing_subset_gives_503_nc(backend: EmbeddedBackend) -> None:
    with scenario(backend, "missing-subset.yaml") as mesh:
        request = ProbeRequest(URL)
        outcomes = mesh.send(request, 60)
        failed = [o for o in outcomes if o.status != 200]
        assert failed  # 40% weight: all 60 reaching "safe" has probability 0.6**60
        assert {(o.status, o.response_flags, o.pod) for o in failed} == {(503, "NC", None)}
        assert {o.bucket("version") for o in failed} == {"HTTP 503"}
        assert {o.bucket("version") for o in outcomes if o.status == 200} == {"safe"}
        assert flags_expected(mesh, request) == {"NC"}


def test_subset_without_pods_gives_503_uh(backend: EmbeddedBackend) -> None:
    with scenario(backend, "no-pods-subset.yaml") as mesh:
        request = ProbeRequest(URL)
        outcomes = mesh.send(request, 10)
        assert {(o.status, o.response_flags, o.pod) for o in outcomes} == {(503, "UH", None)}
        assert flags_expected(mesh, request) == {"UH"}


def test_path_outside_the_uri_prefix_gets_404_nr(backend: EmbeddedBackend) -> None:
    with scenario(backend, "uri-prefix.yaml") as mesh:
        other = ProbeRequest("http://fleetman-staff-service:8080/vehicles")
        outcomes = mesh.send(other, 5)
        assert {(o.status, o.response_flags, o.pod) for o in outcomes} == {(404, "NR", None)}
        assert {o.bucket("version") for o in outcomes} == {"HTTP 404"}
        assert flags_expected(mesh, other) == {"NR"}
        assert {o.status for o in mesh.send(ProbeRequest(URL), 5)} == {200}


def test_header_match_routes_jason_to_risky_only(header_canary: EmbeddedMesh) -> None:
    jason = header_canary.send(ProbeRequest(URL, headers={"end-user": "jason"}), 30)
    assert {(o.status, o.bucket("version")) for o in jason} == {(200, "risky")}
    others = header_canary.send(ProbeRequest(URL, headers={"end-user": "pam"}), 30)
    assert {(o.status, o.bucket("version")) for o in others} == {(200, "safe")}
    anonymous = header_canary.send(ProbeRequest(URL), 30)
    assert {(o.status, o.bucket("version")) for o in anonymous} == {(200, "safe")}


def test_fault_abort_everything_gives_the_configured_status_with_fi(
    backend: EmbeddedBackend,
) -> None:
    with scenario(backend, "fault-abort.yaml") as mesh:
        outcomes = mesh.send(ProbeRequest(URL), 20)
        assert {(o.status, o.response_flags, o.pod) for o in outcomes} == {(502, "FI", None)}
        assert {o.bucket("version") for o in outcomes} == {"HTTP 502"}


def test_bad_image_answers_500_from_the_pod(backend: EmbeddedBackend) -> None:
    with deploy(backend, DATA / "bad.yaml") as mesh:
        outcomes = mesh.send(ProbeRequest("http://staff-service-bad:8080/driver/City%20Truck"), 5)
        [pod] = [p.name for p in mesh.pods]
        assert {(o.status, o.pod, o.response_flags) for o in outcomes} == {(500, pod, "-")}
        assert {o.labels.get("version") for o in outcomes} == {"bad"}
        assert {o.bucket("version") for o in outcomes} == {"HTTP 500"}
        assert all(o.failed for o in outcomes)


def test_dotted_destination_host_gives_503_nc(backend: EmbeddedBackend, tmp_path: Path) -> None:
    rules = tmp_path / "dotted.yaml"
    rules.write_text(
        (DATA / "uri-prefix.yaml")
        .read_text()
        .replace("host: fleetman-staff-service\n", "host: fleetman-staff-service.default\n")
    )
    with deploy(backend, APPS, rules) as mesh:
        request = ProbeRequest(URL)
        outcomes = mesh.send(request, 5)
        assert {(o.status, o.response_flags, o.pod) for o in outcomes} == {(503, "NC", None)}
        assert flags_expected(mesh, request) == {"NC"}


def test_pods_serve_undeclared_target_ports(backend: EmbeddedBackend, tmp_path: Path) -> None:
    apps = tmp_path / "apps.yaml"
    apps.write_text(APPS.read_text().replace("        ports:\n        - containerPort: 8080\n", ""))
    with deploy(backend, apps) as mesh:
        outcomes = mesh.send(ProbeRequest(URL), 20)
        assert {o.status for o in outcomes} == {200}
        assert {o.bucket("version") for o in outcomes} == {"safe", "risky"}


def children() -> set[int]:
    return {p.pid for p in psutil.Process().children(recursive=True)}


def test_nothing_survives_the_deployment(backend: EmbeddedBackend) -> None:
    before = children()
    resources = load_manifests([LAB2 / "fleetman.yaml", LAB2 / "istio-rules.yaml"], "default")
    with backend.deploy(planned(resources)) as mesh:
        started = children() - before
        names = {psutil.Process(pid).name() for pid in started}
        assert len(started) >= 2  # a stand-in host for the pods, plus Envoy
        assert "envoy" in names
        assert mesh.send(ProbeRequest(URL), 1)[0].status == 200
    deadline = time.monotonic() + 5.0
    while children() - before and time.monotonic() < deadline:
        time.sleep(0.05)
    assert children() - before == set()


COOKIE_RULES = both(
    f"  - route:\n    - destination:\n        host: {HOST}\n",
    "  trafficPolicy:\n    loadBalancer:\n      consistentHash:\n"
    "        httpCookie: {name: user, ttl: 0s}\n",
)


def test_sessions_do_not_share_hash_cookies(backend: EmbeddedBackend, tmp_path: Path) -> None:
    """Envoy sets the `user` cookie on a session's first response and hashes on it after:
    each session sticks to its pod, and a fresh session starts with no cookie, so sessions
    land on both pods (one shared client would pin every session to the first pod)."""
    rules = tmp_path / "cookie.yaml"
    rules.write_text(COOKIE_RULES)
    with deploy(backend, APPS, rules) as mesh:
        first_pods = []
        for _ in range(12):
            with mesh.session() as session:
                first, *rest = session.send(ProbeRequest(URL), 4)
                assert "user=" in first.headers.get("set-cookie", "")
                assert {o.pod for o in rest} == {first.pod}  # the cookie pins the session
                assert all("set-cookie" not in o.headers for o in rest)  # it sent the cookie
                first_pods.append(first.pod)
        # 12 fresh sessions all on one of two pods: probability about 2 * 0.5**12
        assert len(set(first_pods)) == 2
        # the shorthand send is a fresh session too: its first response sets a cookie again
        assert "user=" in mesh.send(ProbeRequest(URL), 1)[0].headers.get("set-cookie", "")


def test_outcomes_carry_headers_and_latency(lab2: EmbeddedMesh) -> None:
    with lab2.session() as session:
        outcomes = session.send(ProbeRequest(URL), 5)
    for outcome in outcomes:
        assert outcome.headers.get("content-type", "").startswith("application/json")
        assert outcome.latency is not None
        assert 0 < outcome.latency < 30
        # staff-service calls nothing: one hop, the pod that answered, reached from the probe
        (hop,) = outcome.hops
        assert hop.service == "fleetman-staff-service.default.svc.cluster.local"
        assert (hop.pod, hop.status, hop.depth, hop.caller) == (outcome.pod, 200, 1, None)
        assert hop.path == "/driver/City%20Truck"
