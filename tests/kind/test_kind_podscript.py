"""The in-pod script, run here against a local HTTP server (its own code, really executed),
and its summaries of Envoy admin output."""

from __future__ import annotations

import io
import json
import socket
import struct
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import ClassVar

import pytest

from meshlab.backends.base import Outcome
from meshlab.backends.kind import podscript
from meshlab.checks.reachability import REFUSED, verdict_of


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as a meshed app's client would see
    seen: ClassVar[list[tuple[str, str, dict[str, str], int]]] = []

    def do_GET(self) -> None:
        body = json.dumps({"path": self.path, "big": "x" * 5000}).encode()
        headers = {k.lower(): v for k, v in self.headers.items()}
        self.seen.append((self.command, self.path, headers, id(self.connection)))
        self.send_response(200)
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


def _serving(handler: type[BaseHTTPRequestHandler]) -> Iterator[str]:
    """A local HTTP server with `handler` for the test's length; its URL."""
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()


@pytest.fixture
def server() -> Iterator[str]:
    _Handler.seen = []
    yield from _serving(_Handler)


def _run(spec: dict[str, object]) -> list[dict[str, object]]:
    out = io.StringIO()
    podscript.run_batch(spec, out)
    return [json.loads(line) for line in out.getvalue().splitlines()]


def test_a_batch_on_one_keep_alive_connection(server: str) -> None:
    lines = _run(
        {
            "url": f"{server}/driver/City%20Truck?x=1",
            "method": "GET",
            "headers": {"end-user": "jason"},
            "count": 3,
            "prefix": "meshlab-ab-1-",
        }
    )
    assert [line["rid"] for line in lines] == ["meshlab-ab-1-0", "meshlab-ab-1-1", "meshlab-ab-1-2"]
    assert {line["status"] for line in lines} == {200}
    assert all(len(str(line["body"])) == podscript.BODY_LIMIT for line in lines)
    assert all(isinstance(line["seconds"], float) for line in lines)
    assert all(int(line["headers"]["content-length"]) > 5000 for line in lines)  # type: ignore[index]
    paths = {path for _, path, _, _ in _Handler.seen}
    assert paths == {"/driver/City%20Truck?x=1"}
    headers = [h for _, _, h, _ in _Handler.seen]
    assert [h["x-request-id"] for h in headers] == [line["rid"] for line in lines]
    assert {h["end-user"] for h in headers} == {"jason"}
    assert {h["user-agent"] for h in headers} == {"meshlab-probe"}
    assert len({conn for *_, conn in _Handler.seen}) == 1  # one connection for the batch


def test_a_request_that_gets_no_answer_is_an_outcome() -> None:
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    lines = _run({"url": f"http://127.0.0.1:{port}/", "count": 2, "prefix": "p-"})
    assert [line["status"] for line in lines] == [None, None]
    assert str(lines[0]["error"]).startswith("connection failed")


def test_it_runs_as_a_script_with_this_python(server: str) -> None:
    """The pod runs the file with `python3 probe.py batch SPEC`: the same here."""
    spec = json.dumps({"url": f"{server}/", "count": 2, "prefix": "s-"})
    done = subprocess.run(
        [sys.executable, str(Path(podscript.__file__)), "batch", spec],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert [json.loads(line)["rid"] for line in done.stdout.splitlines()] == ["s-0", "s-1"]
    usage = subprocess.run(
        [sys.executable, str(Path(podscript.__file__))],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert usage.returncode == 2
    assert "usage" in usage.stderr


def test_summaries_of_envoy_admin_output() -> None:
    clusters = {
        "cluster_statuses": [
            {
                "name": "outbound|8080|risky|fleetman-staff-service.ns.svc.cluster.local",
                "host_statuses": [
                    {"address": {"socket_address": {"address": "10.244.0.7", "port_value": 8080}}}
                ],
            },
            {"name": "BlackHoleCluster"},
        ]
    }
    assert podscript.summarize_clusters(clusters) == {
        "outbound|8080|risky|fleetman-staff-service.ns.svc.cluster.local": ["10.244.0.7:8080"],
        "BlackHoleCluster": [],
    }
    dump = {
        "configs": [
            {
                "@type": "type.googleapis.com/envoy.admin.v3.RoutesConfigDump.DynamicRouteConfig",
                "route_config": {
                    "name": "8080",
                    "virtual_hosts": [
                        {
                            "name": "fleetman-staff-service.ns.svc.cluster.local:8080",
                            "domains": ["fleetman-staff-service.ns.svc.cluster.local"],
                            "routes": [
                                {
                                    "route": {
                                        "weighted_clusters": {
                                            "clusters": [
                                                {"name": "outbound|8080|safe|f", "weight": 90},
                                                {
                                                    "name": "outbound|8080|risky|f",
                                                    "weight": {"value": 10},
                                                },
                                            ]
                                        }
                                    }
                                }
                            ],
                        },
                        {
                            "name": "allow_any",
                            "domains": ["*"],
                            "routes": [{"route": {"cluster": "PassthroughCluster"}}],
                        },
                    ],
                },
            }
        ]
    }
    assert podscript.summarize_routes(dump) == {
        "8080": [
            {
                "name": "fleetman-staff-service.ns.svc.cluster.local:8080",
                "domains": ["fleetman-staff-service.ns.svc.cluster.local"],
                "targets": [["outbound|8080|safe|f", 90], ["outbound|8080|risky|f", 10]],
            },
            {"name": "allow_any", "domains": ["*"], "targets": [["PassthroughCluster", None]]},
        ]
    }


def test_the_script_needs_only_the_standard_library() -> None:
    source = Path(podscript.__file__).read_text(encoding="utf-8")
    imports = {
        line.split()[1].split(".")[0]
        for line in source.splitlines()
        if line.startswith(("import ", "from "))
    }
    allowed = {"__future__", "http", "json", "socket", "sys", "threading", "time", "typing"}
    assert imports <= {*allowed, "urllib"}


def test_a_browser_batch_connects_to_the_gateway_with_the_url_host(server: str) -> None:
    """`connect` is where the connection goes (the gateway's Service); Host and path are the
    URL's, as a browser types it; the id is in the User-Agent too, for the gateway's log."""
    lines = _run(
        {
            "url": "http://experimental.fleetman.com/canary?x=1",
            "method": "GET",
            "headers": {"my-header": "canary"},
            "count": 2,
            "prefix": "meshlab-ab-2-",
            "connect": server.removeprefix("http://"),
            "agent_id": True,
        }
    )
    assert {line["status"] for line in lines} == {200}
    assert [path for _, path, _, _ in _Handler.seen] == ["/canary?x=1"] * 2
    headers = [h for _, _, h, _ in _Handler.seen]
    assert {h["host"] for h in headers} == {"experimental.fleetman.com"}
    assert {h["my-header"] for h in headers} == {"canary"}
    assert [h["user-agent"] for h in headers] == [
        "meshlab-probe/meshlab-ab-2-0",
        "meshlab-probe/meshlab-ab-2-1",
    ]


def test_the_script_runs_from_the_command_line_too(server: str) -> None:
    """How a workload's ephemeral container runs it: `python3 -c SCRIPT batch SPEC` (it
    cannot mount the probe's ConfigMap)."""
    script = Path(podscript.__file__).read_text(encoding="utf-8")
    spec = {"url": f"{server}/x", "count": 1, "prefix": "meshlab-ab-3-"}
    done = subprocess.run(
        [sys.executable, "-c", script, "batch", json.dumps(spec)],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    (line,) = [json.loads(raw) for raw in done.stdout.splitlines()]
    assert (line["rid"], line["status"]) == ("meshlab-ab-3-0", 200)


# --- a client that keeps cookies (kind: sticky with a cookie ttl) ---------------------------


class _CookieHandler(BaseHTTPRequestHandler):
    """Envoy's hash cookie as Envoy sends it: set when the request has none; then dropped
    (`Max-Age=0`) when the client asks for /forget."""

    protocol_version = "HTTP/1.1"
    seen: ClassVar[list[str | None]] = []

    def do_GET(self) -> None:
        cookie = self.headers.get("cookie")
        self.seen.append(cookie)
        self.send_response(200)
        if self.path == "/forget":
            self.send_header("set-cookie", 'user=""; Max-Age=0')
        elif cookie is None or "user=" not in cookie:
            self.send_header("set-cookie", 'user="5a1f"; Max-Age=3600; Path=/; HttpOnly')
        self.send_header("content-length", "0")
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def cookie_server() -> Iterator[str]:
    _CookieHandler.seen = []
    yield from _serving(_CookieHandler)


def test_a_batch_with_a_jar_sends_back_what_was_set(cookie_server: str) -> None:
    spec = {"url": f"{cookie_server}/", "count": 3, "prefix": "c-", "jar": {}}
    lines = _run(spec)
    assert _CookieHandler.seen == [None, 'user="5a1f"', 'user="5a1f"']
    assert "jar" not in lines[0]
    assert "jar" not in lines[1]
    assert lines[-1]["jar"] == {"user": '"5a1f"'}  # the jar the client ends with
    # the next batch of the same client starts with it, beside a cookie the lab sets itself
    _CookieHandler.seen = []
    _run({**spec, "count": 1, "jar": lines[-1]["jar"], "headers": {"cookie": "lang=en"}})
    assert _CookieHandler.seen == ['lang=en; user="5a1f"']


def test_a_max_age_0_cookie_leaves_the_jar(cookie_server: str) -> None:
    lines = _run(
        {"url": f"{cookie_server}/forget", "count": 1, "prefix": "f-", "jar": {"user": "1"}}
    )
    assert _CookieHandler.seen == ["user=1"]
    assert lines[-1]["jar"] == {}


def test_without_a_jar_no_cookie_is_kept(cookie_server: str) -> None:
    lines = _run({"url": f"{cookie_server}/", "count": 2, "prefix": "n-"})
    assert _CookieHandler.seen == [None, None]
    assert all("jar" not in line for line in lines)


# --- the stand-in of an external host -------------------------------------------------------


def test_the_stand_in_answers_anything_as_its_host() -> None:
    servers = podscript.serve("www.google.com", [0], bind="127.0.0.1")
    catch_all = podscript.serve("*", [0], bind="127.0.0.1")
    try:
        port = servers[0].server_address[1]
        lines = _run(
            {
                "url": "http://www.google.com/search?q=x",
                "method": "POST",
                "headers": {"content-length": "0"},
                "count": 2,
                "prefix": "e-",
                "connect": f"127.0.0.1:{port}",
            }
        )
        assert {(line["status"], line["body"]) for line in lines} == {
            (200, "external www.google.com")
        }
        assert lines[0]["headers"]["x-meshlab-external"] == "www.google.com"
        other = catch_all[0].server_address[1]
        (line,) = _run(
            {
                "url": "http://www.example.org/",
                "count": 1,
                "prefix": "u-",
                "connect": f"127.0.0.1:{other}",
            }
        )
        assert line["body"] == "external www.example.org"  # the catch-all plays the host named
    finally:
        for server in [*servers, *catch_all]:
            server.shutdown()
            server.server_close()


# --- refused, as a STRICT sidecar refuses a plaintext client (kind: reachability) -------------


@pytest.mark.parametrize("reset", [True, False])
def test_a_dropped_connection_reads_as_refused(reset: bool) -> None:
    """A STRICT pod's sidecar fails the plaintext client's connection: reset (RST) or closed
    with no answer. The script's error for either is what the check calls refused."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()

    def drop() -> None:
        for _ in range(2):  # two requests: after a dropped one the script reconnects
            conn, _ = listener.accept()
            conn.recv(65536)
            if reset:  # SO_LINGER 0: close sends RST
                conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            conn.close()

    thread = threading.Thread(target=drop, daemon=True)
    thread.start()
    try:
        port = listener.getsockname()[1]
        lines = _run({"url": f"http://127.0.0.1:{port}/", "count": 2, "prefix": "r-"})
    finally:
        thread.join(timeout=10)
        listener.close()
    for line in lines:
        outcome = Outcome(status=None, error=line["error"])
        assert verdict_of(outcome) == REFUSED, line["error"]


def test_a_batch_waits_for_its_start_instant(server: str) -> None:
    """Concurrent clients' batches start together: at `start_at`, unless it is past or
    further ahead than any clock skew on one node would make it."""
    spec = {"url": f"{server}/", "count": 1, "prefix": "s-"}
    started = time.time()
    _run({**spec, "start_at": started + 0.3})
    assert time.time() - started >= 0.29
    started = time.time()
    _run({**spec, "start_at": started + 3600})  # another clock: at once
    _run({**spec, "start_at": started - 10})  # already past: at once
    assert time.time() - started < 2
