"""Stand-in pods: behaviours by image, the HTTP server's wire habits, the CLI protocol."""

from __future__ import annotations

import http.client
import json
import selectors
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, ClassVar

import psutil
import pytest

from meshlab.backends.embedded.standins import (
    Behaviour,
    PodSpec,
    Request,
    Response,
    behaviour_for,
    describe,
    parse_image,
    register,
)
from meshlab.backends.embedded.standins.server import Standin, StandinHandler

STAFF = "richardchesterwood/istio-fleetman-staff-service"
FLEETMAN = "richardchesterwood/istio-fleetman-"
PHOTO_HOST = "https://rac-istio-course-images.s3.amazonaws.com/"
DRIVERS = {
    "City Truck": "Pam Parry",
    "Huddersfield Truck A": "Duke T. Dog",
    "Huddersfield Truck B": "Denzil Tulser",
    "London Riverside": "Herman Boyce",
    "Village Truck": "June Snell",
}


def pod(image: str, name: str = "pod-a", ports: tuple[int, ...] = (8080,)) -> PodSpec:
    return PodSpec(name, "default", image, {"app": "a", "version": "v1"}, ports)


def call(image: str, path: str, method: str = "GET") -> tuple[int, Any]:
    """Ask a behaviour directly, no sockets: most behaviour tests need nothing more."""
    p = pod(image)
    response = behaviour_for(image).handle(Request(p, 8080, method, path))
    assert response.content_type
    return response.status, json.loads(response.body)


@contextmanager
def serving(
    image: str, handler: type[StandinHandler] = StandinHandler, ports: tuple[int, ...] = (8080,)
) -> Iterator[dict[int, int]]:
    with Standin(pod(image, ports=ports), behaviour_for(image), handler) as standin:
        standin.start()
        yield standin.ports


def fetch(
    conn: http.client.HTTPConnection, path: str, method: str = "GET", **kw: Any
) -> tuple[int, dict[str, str], bytes]:
    conn.request(method, path, **kw)
    r = conn.getresponse()
    return r.status, {k.lower(): v for k, v in r.getheaders()}, r.read()


# --- images and the registry ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("image", "expected"),
    [
        (f"{STAFF}:6-bad", (STAFF, "6-bad")),
        (STAFF, (STAFF, "latest")),
        (f"docker.io/{STAFF}:6", (STAFF, "6")),
        ("localhost:5000/team/app", ("localhost:5000/team/app", "latest")),
        ("localhost:5000/team/app:2@sha256:abc", ("localhost:5000/team/app", "2")),
        ("docker.io/library/nginx:1.25", ("nginx", "1.25")),
    ],
)
def test_parse_image(image: str, expected: tuple[str, str]) -> None:
    assert parse_image(image) == expected


def test_describe_names_the_behaviour() -> None:
    assert "500" in describe(f"{STAFF}:6-bad")
    assert "placeholder" in describe(f"{STAFF}:6-placeholder")
    assert "staff-service" in describe(f"{STAFF}:6")
    assert "echo" in describe("nginx:1.25")
    for service in ["position-tracker", "api-gateway", "webapp-angular", "vehicle-telemetry"]:
        assert service in describe(f"{FLEETMAN}{service}:6")
    # the downstream calls, for reports
    assert "fleetman-api-gateway" in describe(f"{FLEETMAN}webapp-angular:6")
    assert "experimental" in describe(f"{FLEETMAN}webapp-angular:6-experimental")
    gateway = describe(f"{FLEETMAN}api-gateway:6")
    assert "fleetman-position-tracker" in gateway
    assert "fleetman-staff-service /driver/{name}" in gateway
    assert "propagates x-" in gateway
    assert "propagates no" in describe(f"{FLEETMAN}api-gateway:6-no-header-propagation")
    assert "fleetman-vehicle-telemetry" in describe(f"{FLEETMAN}position-tracker:6")
    assert behaviour_for(f"{FLEETMAN}api-gateway:6").downstream == (
        "fleetman-position-tracker.default.svc.cluster.local:8080",
        "fleetman-staff-service.default.svc.cluster.local:8080",
    )


def test_register_slots_in_a_new_image() -> None:
    def teapot(tag: str) -> Behaviour:
        return Behaviour("teapot", f"teapot {tag}", lambda r: Response(418, b"short and stout"))

    register("example.com/teapot", teapot)
    assert behaviour_for("example.com/teapot:v2").summary == "teapot v2"
    assert (
        behaviour_for("example.com/teapot").handle(Request(pod("x"), 80, "GET", "/")).status == 418
    )


# --- staff-service ---------------------------------------------------------------------------


@pytest.mark.parametrize(("vehicle", "driver"), DRIVERS.items())
def test_staff_service_drivers(vehicle: str, driver: str) -> None:
    quoted = vehicle.replace(" ", "%20")
    status, body = call(f"{STAFF}:6", f"/driver/{quoted}")
    assert status == 200
    assert body["name"] == driver
    assert body["photo"].startswith(PHOTO_HOST)


def test_staff_service_6_has_a_distinct_stable_photo_per_driver() -> None:
    photos = {v: call(f"{STAFF}:6", f"/driver/{v}")[1]["photo"] for v in DRIVERS}
    assert len(set(photos.values())) == len(DRIVERS)
    assert PHOTO_HOST + "placeholder.png" not in photos.values()
    assert photos == {v: call(f"{STAFF}:6", f"/driver/{v}")[1]["photo"] for v in DRIVERS}


@pytest.mark.parametrize("tag", ["latest", "7", "6-something"])
def test_staff_service_other_tags_behave_like_6(tag: str) -> None:
    for v in DRIVERS:
        assert call(f"{STAFF}:{tag}", f"/driver/{v}") == call(f"{STAFF}:6", f"/driver/{v}")


def test_staff_service_placeholder_photo_for_everyone() -> None:
    for vehicle, driver in DRIVERS.items():
        status, body = call(f"{STAFF}:6-placeholder", f"/driver/{vehicle}")
        assert (status, body) == (200, {"name": driver, "photo": PHOTO_HOST + "placeholder.png"})


@pytest.mark.parametrize(
    ("path", "method"), [("/driver/City%20Truck", "GET"), ("/nowhere", "GET"), ("/", "POST")]
)
def test_staff_service_6_bad_always_500(path: str, method: str) -> None:
    status, body = call(f"{STAFF}:6-bad", path, method)
    assert status == 500
    assert body["status"] == 500
    assert body["error"] == "Internal Server Error"


def test_staff_service_unknown_vehicle_and_path_are_404_json() -> None:
    status, body = call(f"{STAFF}:6", "/driver/Space%20Shuttle")
    assert status == 404
    assert "Space Shuttle" in body["message"]
    assert call(f"{STAFF}:6", "/drivers")[0] == 404
    assert call(f"{STAFF}:6", "/driver/City%20Truck", "DELETE")[0] == 405


# --- the other fleetman images ---------------------------------------------------------------


def test_position_tracker_without_a_sidecar() -> None:
    """No egress file (no sidecar): vehicle-telemetry cannot be asked, the speed is left out."""
    image = f"{FLEETMAN}position-tracker:6"
    status, vehicles = call(image, "/vehicles/")
    assert status == 200
    assert [v["name"] for v in vehicles] == list(DRIVERS)
    assert all({"lat", "lng", "speed", "timestamp"} <= v.keys() for v in vehicles)
    latest = call(image, "/vehicles/Village%20Truck")[1]
    assert latest == {k: v for k, v in vehicles[-1].items() if k != "speed"}
    status, history = call(image, "/history/City%20Truck")
    assert status == 200
    assert len(history) > 1
    assert history[-1] == vehicles[0]
    assert call(image, "/vehicles/Nope")[0] == 404


def test_api_gateway_has_no_api_prefix() -> None:
    """The webapp strips `/api`; the api-gateway's own paths start at `/vehicles/`."""
    image = f"{FLEETMAN}api-gateway:6"
    assert call(image, "/api/vehicles/")[0] == 404
    assert call(image, "/vehicles/")[0] == 200  # tracker unreachable: getAllPositions() is []
    response = behaviour_for(image).handle(Request(pod(image), 8080, "GET", "/"))
    assert (response.status, response.content_type[:9]) == (200, "text/html")
    assert b"Fleetman API Gateway" in response.body


def test_webapp_serves_html_for_any_path() -> None:
    image = f"{FLEETMAN}webapp-angular:6"
    for path in ("/", "/missing", "/vehicles/City%20Truck"):  # try_files ... /index.html
        response = behaviour_for(image).handle(Request(pod(image), 80, "GET", path))
        assert response.status == 200
        assert response.content_type.startswith("text/html")
        assert b"Fleet Management" in response.body
        assert b'data-meshlab-variant="original"' in response.body


def test_webapp_experimental_page_is_visibly_different() -> None:
    original = behaviour_for(f"{FLEETMAN}webapp-angular:6").handle(
        Request(pod("x"), 80, "GET", "/")
    )
    experimental = behaviour_for(f"{FLEETMAN}webapp-angular:6-experimental").handle(
        Request(pod("x"), 80, "GET", "/")
    )
    assert b"<title>Fleet Management (experimental)</title>" in experimental.body
    assert b'data-meshlab-variant="experimental"' in experimental.body
    assert b"experimental" not in original.body


def test_vehicle_telemetry_and_position_simulator() -> None:
    status, body = call(f"{FLEETMAN}vehicle-telemetry:6", "/vehicles/City%20Truck")
    assert (status, body) == (200, 28.4)  # a bare number, as the real service's BigDecimal
    assert call(f"{FLEETMAN}vehicle-telemetry:6", "/vehicles/Nope")[0] == 404
    status, body = call(f"{FLEETMAN}position-simulator:6", "/")
    assert status == 200
    assert body["status"] == "running"


def test_echo_for_unknown_images() -> None:
    image = "nginx:1.25"
    request = Request(pod(image), 80, "PUT", "/a/b?x=1", (("x-a", "1"), ("x-a", "2")), b"{}")
    body = json.loads(behaviour_for(image).handle(request).body)
    assert body == {
        "pod": "pod-a",
        "namespace": "default",
        "image": image,
        "labels": {"app": "a", "version": "v1"},
        "method": "PUT",
        "path": "/a/b?x=1",
        "headers": {"x-a": "1, 2"},
    }


def test_podspec_validates_and_copies() -> None:
    labels = {"app": "a"}
    p = PodSpec("n", "ns", "img", labels, [8080, 9090])  # type: ignore[arg-type]
    labels["app"] = "changed"
    assert p.labels == {"app": "a"}
    assert p.container_ports == (8080, 9090)
    assert hash(p) == hash(PodSpec("n", "ns", "img", {"app": "other"}, (8080, 9090)))
    with pytest.raises(ValueError, match="duplicate"):
        PodSpec("n", "ns", "img", {}, (80, 80))
    with pytest.raises(ValueError, match="range"):
        PodSpec("n", "ns", "img", {}, (0,))


# --- the HTTP server -------------------------------------------------------------------------


class RecordingHandler(StandinHandler):
    """Records, on the server side, each connection's TCP_NODELAY and each response's writes."""

    nodelay: ClassVar[list[int]] = []
    writes_per_response: ClassVar[list[int]] = []

    def setup(self) -> None:
        super().setup()
        self.nodelay.append(self.connection.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY))

    def send_standin_response(self, response: Response) -> None:
        real = self.wfile
        count = 0

        class Counting:
            def write(self, data: bytes) -> int:
                nonlocal count
                count += 1
                return real.write(data)

        self.wfile = Counting()  # type: ignore[assignment]
        try:
            super().send_standin_response(response)
        finally:
            self.wfile = real
        self.writes_per_response.append(count)


def test_keep_alive_nodelay_and_one_write_per_response() -> None:
    RecordingHandler.nodelay = []
    RecordingHandler.writes_per_response = []
    with serving(f"{STAFF}:6", RecordingHandler) as ports:
        conn = http.client.HTTPConnection("127.0.0.1", ports[8080], timeout=5)
        try:
            conn.connect()
            sock = conn.sock
            for i in range(300):
                vehicle = list(DRIVERS)[i % 5].replace(" ", "%20")
                status, headers, body = fetch(conn, f"/driver/{vehicle}")
                assert status == 200
                assert json.loads(body)["name"] == list(DRIVERS.values())[i % 5]
                assert headers.get("connection") != "close"
                assert conn.sock is sock  # http.client reconnects silently if the server closed
        finally:
            conn.close()
    assert RecordingHandler.nodelay == [1]  # one connection, Nagle off on the server side
    # the handler counts a response after writing it: the client may have read the last one
    # (and the server closed) before its thread got there, on a loaded machine
    deadline = time.monotonic() + 5
    while len(RecordingHandler.writes_per_response) < 300 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert RecordingHandler.writes_per_response == [1] * 300


def test_every_response_has_pod_content_type_and_length() -> None:
    with serving(f"{STAFF}:6") as ports:
        conn = http.client.HTTPConnection("127.0.0.1", ports[8080], timeout=5)
        try:
            for method, path, status in [
                ("GET", "/driver/City%20Truck", 200),
                ("GET", "/nope", 404),
                ("POST", "/driver/City%20Truck", 405),
                ("HEAD", "/driver/City%20Truck", 200),
                ("GET", "/driver/Nobody", 404),
            ]:
                got, headers, body = fetch(conn, path, method)
                assert got == status
                assert headers["x-meshlab-pod"] == "pod-a"
                assert headers["content-type"].startswith("application/json")
                length = int(headers["content-length"])
                assert len(body) == (0 if method == "HEAD" else length)
                assert length > 0
        finally:
            conn.close()


def raw_exchange(port: int, data: bytes) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        s.sendall(data)
        chunks = []
        while chunk := s.recv(65536):
            chunks.append(chunk)
        return b"".join(chunks)


@pytest.mark.parametrize(
    ("data", "status"),
    [
        (b"garbage\r\n\r\n", 400),
        (b"BREW /pot HTTP/1.1\r\nhost: x\r\n\r\n", 501),
        (b"POST / HTTP/1.1\r\ncontent-length: nope\r\n\r\n", 400),
    ],
)
def test_protocol_errors_are_json_with_pod_header(data: bytes, status: int) -> None:
    with serving("nginx:1") as ports:
        reply = raw_exchange(ports[8080], data)
    head, _, body = reply.partition(b"\r\n\r\n")
    lines = head.decode().split("\r\n")
    assert lines[0].startswith(f"HTTP/1.1 {status} ")
    headers = dict(line.lower().split(": ", 1) for line in lines[1:])
    assert headers["x-meshlab-pod"] == "pod-a"
    assert headers["connection"] == "close"
    assert int(headers["content-length"]) == len(body)
    assert json.loads(body)["status"] == status


def test_echo_reads_bodies_so_keep_alive_survives() -> None:
    with serving("example/unknown:1", ports=(8080, 9090)) as ports:
        assert len(set(ports.values())) == 2
        conn = http.client.HTTPConnection("127.0.0.1", ports[9090], timeout=5)
        try:
            status, _, body = fetch(conn, "/post?q=1", "POST", body=b"x" * 100_000)
            assert status == 200
            assert json.loads(body)["method"] == "POST"
            chunked = iter([b"abc", b"defg"])
            status, _, body = fetch(conn, "/chunked", "PUT", body=chunked, encode_chunked=True)
            assert status == 200
            assert json.loads(body)["path"] == "/chunked"
            sock = conn.sock
            status, _, body = fetch(conn, "/after", headers={"X-Test": "yes"})
            echoed = json.loads(body)
            assert (echoed["method"], echoed["path"]) == ("GET", "/after")
            assert echoed["headers"]["x-test"] == "yes"
            assert echoed["labels"] == {"app": "a", "version": "v1"}
            assert conn.sock is sock
        finally:
            conn.close()


def test_a_failing_behaviour_answers_500_and_keeps_serving(
    capsys: pytest.CaptureFixture[str],
) -> None:
    def broken(tag: str) -> Behaviour:
        def handle(request: Request) -> Response:
            if request.path == "/boom":
                raise RuntimeError("kaboom")
            return Response(200, b"{}")

        return Behaviour("broken", "broken", handle)

    register("example.com/broken", broken)
    with serving("example.com/broken") as ports:
        conn = http.client.HTTPConnection("127.0.0.1", ports[8080], timeout=5)
        try:
            assert fetch(conn, "/boom")[0] == 500
            assert fetch(conn, "/fine")[0] == 200
        finally:
            conn.close()
    assert "kaboom" in capsys.readouterr().err


# --- the CLI process -------------------------------------------------------------------------


@contextmanager
def standin_process(*args: str) -> Iterator[tuple[subprocess.Popen[bytes], dict[str, Any]]]:
    argv = [sys.executable, "-m", "meshlab.backends.embedded.standins", *args]
    proc = subprocess.Popen(
        argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    try:
        assert proc.stdout is not None
        with selectors.DefaultSelector() as sel:
            sel.register(proc.stdout, selectors.EVENT_READ)
            assert sel.select(timeout=15), "no ready line within 15 s"
        line = proc.stdout.readline()
        yield proc, json.loads(line)
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.communicate(timeout=10)


STAFF_ARGS = ("--pod", "staff-6", "--namespace", "fleet", "--image", f"{STAFF}:6")


def test_cli_ready_line_and_loopback_ports() -> None:
    args = (*STAFF_ARGS, "--port", "8080", "--port", "9090", "--label", "app=staff")
    with standin_process(*args) as (proc, ready):
        assert list(ready) == ["ready", "pods"]
        assert ready["ready"] is True
        assert list(ready["pods"]) == ["staff-6"]
        ports = ready["pods"]["staff-6"]
        assert set(ports) == {"8080", "9090"}
        listening = {
            (c.laddr.ip, c.laddr.port)
            for c in psutil.Process(proc.pid).net_connections("tcp")
            if c.status == psutil.CONN_LISTEN
        }
        assert listening == {("127.0.0.1", p) for p in ports.values()}
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=10) == 0


def exercise(ports: dict[str, int]) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", ports["8080"], timeout=5)
    try:
        assert fetch(conn, "/driver/City%20Truck")[0] == 200
        assert fetch(conn, "/nope")[0] == 404
        assert fetch(conn, "/driver/x", "POST", body=b"1")[0] == 405
    finally:
        conn.close()


@pytest.mark.parametrize("how", ["SIGTERM", "SIGINT", "stdin EOF"])
def test_cli_exits_quietly(how: str) -> None:
    with standin_process(*STAFF_ARGS, "--port", "8080") as (proc, ready):
        ports = ready["pods"]["staff-6"]
        exercise(ports)
        # an idle keep-alive connection must not hold up the exit
        idle = socket.create_connection(("127.0.0.1", ports["8080"]))
        try:
            if how != "stdin EOF":
                proc.send_signal(getattr(signal, how))
                proc.wait(timeout=10)  # stdin still open: the signal alone ends it
            out, err = proc.communicate(timeout=10)  # closes stdin: EOF on the lifeline
        finally:
            idle.close()
    assert proc.returncode == 0
    assert err == b""
    assert out == b""


def test_cli_rejects_bad_arguments() -> None:
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "meshlab.backends.embedded.standins",
            "--pod",
            "p",
            "--image",
            "i",
            "--label",
            "x",
        ],
        capture_output=True,
        timeout=30,
        check=False,
    )
    assert result.returncode == 2
    assert b"KEY=VALUE" in result.stderr


def test_standins_import_is_stdlib_only() -> None:
    code = (
        "import sys, meshlab.backends.embedded.standins\n"
        "import meshlab.backends.embedded.standins.__main__\n"
        "heavy = {'pydantic', 'scipy', 'numpy', 'yaml', 'click', 'httpx', 'rich', 'psutil'}\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in heavy))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, timeout=30, check=True
    )
    assert result.stdout.strip() == b"[]"


def test_in_process_standin_closes_with_idle_connections() -> None:
    with serving("nginx:1") as ports:
        idle = socket.create_connection(("127.0.0.1", ports[8080]))
    try:
        with pytest.raises(ConnectionRefusedError):
            socket.create_connection(("127.0.0.1", ports[8080]), timeout=1).close()
    finally:
        idle.close()


def test_webapp_page_escapes_the_image_tag() -> None:
    image = f"{FLEETMAN}webapp-angular:6<script>x"
    response = behaviour_for(image).handle(Request(pod(image), 80, "GET", "/"))
    assert b"<script>" not in response.body
    assert b"&lt;script&gt;" in response.body
