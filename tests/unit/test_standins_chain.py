"""Fleetman stand-ins calling along the app's chain, against a fake sidecar: a local HTTP server
on 127.0.0.1 that plays the pod's outbound listener, records what arrives and answers with
chosen `x-meshlab-*` headers (or, in proxy mode, forwards by Host to in-process stand-ins as
Envoy would)."""

from __future__ import annotations

import http.client
import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from meshlab.backends.embedded.standins import PodSpec, Request, behaviour_for, hops
from meshlab.backends.embedded.standins import fleetman_chain as chain
from meshlab.backends.embedded.standins.egress import ENV, EgressClient, read_listeners
from meshlab.backends.embedded.standins.host import pod_record
from meshlab.backends.embedded.standins.server import Response, Standin

FLEETMAN = "richardchesterwood/istio-fleetman-"
TRACKER = "fleetman-position-tracker.default.svc.cluster.local:8080"
STAFF = "fleetman-staff-service.default.svc.cluster.local:8080"
TELEMETRY = "fleetman-vehicle-telemetry:8080"


@dataclass
class Seen:
    method: str
    path: str
    headers: dict[str, str]  # lower-case, first value
    body: bytes
    connection: int  # id of the TCP connection it came on


@dataclass
class Answer:
    status: int = 200
    body: bytes = b"{}"
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0


Answerer = Callable[[Seen], Answer]


class FakeSidecar:
    """One outbound listener: records requests, answers with what `answer` says."""

    def __init__(self, answer: Answerer) -> None:
        self.seen: list[Seen] = []
        sidecar = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True  # headers and body are two writes

            def _any(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                seen = Seen(
                    self.command,
                    self.path,
                    {k.lower(): v for k, v in reversed(self.headers.items())},
                    self.rfile.read(length),
                    id(self.connection),
                )
                sidecar.seen.append(seen)
                a = answer(seen)
                time.sleep(a.delay)
                try:
                    self.send_response(a.status)
                    for k, v in a.headers.items():
                        self.send_header(k, v)
                    self.send_header("content-length", str(len(a.body)))
                    self.end_headers()
                    self.wfile.write(a.body)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # a delayed answer the caller gave up on: what the test wants

            do_GET = do_POST = do_PUT = _any

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = int(self.server.server_address[1])
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.05,))

    def egress(self, tmp_path: Path) -> str:
        path = tmp_path / f"egress-{self.port}.json"
        path.write_text(json.dumps({"listeners": {"8080": self.port, "80": self.port}}))
        return str(path)

    def __enter__(self) -> FakeSidecar:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join()


def fixed(status: int = 200, body: object = None, **headers: str) -> Answerer:
    payload = json.dumps(body if body is not None else {}).encode()
    sent = {"content-type": "application/json"} | {
        k.replace("_", "-"): v for k, v in headers.items()
    }
    return lambda seen: Answer(status, payload, sent)


def ask(behaviour_image: str, client: EgressClient, path: str, **kw: Any) -> Response:
    repo, _, tag = behaviour_image.rpartition(":")
    factory = {
        "webapp-angular": chain.webapp,
        "api-gateway": chain.api_gateway,
        "position-tracker": chain.position_tracker,
    }[repo.removeprefix(FLEETMAN)]
    behaviour = factory(tag, client)
    pod = PodSpec("caller-0", "default", behaviour_image, {}, (8080,))
    headers = tuple((k.lower(), v) for k, v in kw.pop("headers", {}).items())
    return behaviour.handle(Request(pod, 8080, kw.pop("method", "GET"), path, headers, **kw))


def hops_of(response: Response) -> list[dict[str, Any]]:
    raw = dict(response.headers).get(hops.HEADER)
    assert raw is not None, "no x-meshlab-hops header"
    assert raw.isascii()
    return json.loads(raw)  # type: ignore[no-any-return]


@pytest.fixture
def client_for(tmp_path: Path) -> Iterator[Callable[..., EgressClient]]:
    made: list[EgressClient] = []

    def make(sidecar: FakeSidecar, timeout: float = 5.0) -> EgressClient:
        made.append(EgressClient(sidecar.egress(tmp_path), timeout=timeout))
        return made[-1]

    yield make
    for c in made:
        c.close()


# --- header propagation ----------------------------------------------------------------------

INCOMING = (
    ("x-my-header", "canary"),
    ("X-B3-TraceId", "abc"),
    ("x-request-id", "r1"),
    ("x-envoy-attempt-count", "1"),
    ("x-meshlab-probe", "7"),
    ("my-header", "canary"),
    ("accept", "application/json"),
    ("x-my-header", "second value"),
)
PROPAGATED = [("x-my-header", "canary"), ("x-b3-traceid", "abc"), ("x-request-id", "r1")]


@pytest.mark.parametrize(
    ("tag", "expected"),
    [
        ("6", PROPAGATED),
        ("6-placeholder", PROPAGATED),
        ("6-bad", PROPAGATED),
        ("6-experimental", PROPAGATED),
        ("latest", PROPAGATED),
        ("6-no-header-propagation", []),
        ("6-no-header-propagation-arm64", []),
    ],
)
def test_propagation_rule(tag: str, expected: list[tuple[str, str]]) -> None:
    assert chain.propagated_headers(tag, INCOMING) == expected


def test_nginx_forwards_every_header_and_sets_its_own() -> None:
    pod = PodSpec("web", "default", "x", {}, (80,))
    incoming = (
        ("host", "fleetman.com"),
        ("my-header", "canary"),
        ("x-envoy-attempt-count", "1"),
        ("connection", "keep-alive"),
        ("x-forwarded-for", "10.0.0.9"),
        ("content-length", "0"),
    )
    sent = chain.nginx_headers(Request(pod, 80, "GET", "/api/", incoming))
    assert sent == [
        ("my-header", "canary"),
        ("x-envoy-attempt-count", "1"),
        ("x-real-ip", "127.0.0.1"),
        ("x-forwarded-for", "10.0.0.9, 127.0.0.1"),
        ("x-forwarded-proto", "http"),
    ]


# --- the chain's paths -----------------------------------------------------------------------


def test_webapp_proxies_api_to_the_gateway(client_for: Callable[..., EgressClient]) -> None:
    answer = fixed(
        201,
        [{"name": "City Truck"}],
        x_meshlab_upstream_host="envoy://inbound~api-gateway-0~8080/",
        x_meshlab_upstream_cluster="outbound|8080||fleetman-api-gateway.default.svc.cluster.local",
        x_meshlab_response_flags="-",
    )
    with FakeSidecar(answer) as sidecar:
        client = client_for(sidecar)
        headers = {"my-header": "canary", "x-my-header": "canary", "x-envoy-attempt-count": "1"}
        response = ask(f"{FLEETMAN}webapp-angular:6", client, "/api/vehicles/?q=1", headers=headers)
        post = ask(
            f"{FLEETMAN}webapp-angular:6-no-header-propagation",
            client,
            "/api/x",
            method="POST",
            body=b"hello",
            headers=headers,
        )
    assert (response.status, json.loads(response.body)) == (201, [{"name": "City Truck"}])
    assert response.content_type == "application/json"
    first, second = sidecar.seen
    assert (first.method, first.path, first.headers["host"]) == (
        "GET",
        "/vehicles/?q=1",
        "fleetman-api-gateway",
    )
    for name, value in headers.items():  # nginx forwards all, whatever the tag
        assert first.headers[name] == second.headers[name] == value
    assert (second.method, second.path, second.body) == ("POST", "/x", b"hello")
    assert post.status == 201
    assert hops_of(response) == [
        {
            "host": "fleetman-api-gateway:8080",
            "path": "/vehicles/?q=1",
            "upstream": "envoy://inbound~api-gateway-0~8080/",
            "cluster": "outbound|8080||fleetman-api-gateway.default.svc.cluster.local",
            "status": 201,
            "flags": "-",
            "hops": [],
        }
    ]


def test_webapp_page_and_methods_make_no_calls(client_for: Callable[..., EgressClient]) -> None:
    with FakeSidecar(fixed()) as sidecar:
        client = client_for(sidecar)
        page = ask(f"{FLEETMAN}webapp-angular:6-experimental", client, "/api")  # no slash
        posted = ask(f"{FLEETMAN}webapp-angular:6", client, "/index.html", method="POST")
    assert page.status == 200
    assert b'data-meshlab-variant="experimental"' in page.body
    assert posted.status == 405
    assert hops.HEADER not in dict(page.headers)
    assert sidecar.seen == []


@pytest.mark.parametrize(
    ("path", "authority", "sent"),
    [
        ("/vehicles/", TRACKER, "/vehicles/"),
        ("/vehicles/City%20Truck", TRACKER, "/vehicles/City%20Truck"),
        ("/history/City%20Truck", TRACKER, "/history/City%20Truck"),
        ("/vehicles/driver/City%20Truck", STAFF, "/driver/City%20Truck"),
    ],
)
def test_api_gateway_paths(
    path: str, authority: str, sent: str, client_for: Callable[..., EgressClient]
) -> None:
    body = [{"lat": 1, "lng": 2, "name": "a"}, {"lat": 3, "lng": 4, "name": "a"}]
    with FakeSidecar(fixed(200, body)) as sidecar:
        response = ask(f"{FLEETMAN}api-gateway:6", client_for(sidecar), path)
    assert response.status == 200
    [seen] = sidecar.seen
    assert (seen.path, seen.headers["host"]) == (sent, authority)
    [hop] = hops_of(response)
    assert (hop["host"], hop["path"], hop["status"]) == (authority, sent, 200)
    if path.startswith("/history/"):  # lat/lng only, newest first, as getHistoryFor shapes it
        assert json.loads(response.body) == [{"lat": 3, "lng": 4}, {"lat": 1, "lng": 2}]
    else:
        assert json.loads(response.body) == body


@pytest.mark.parametrize(
    ("tag", "arrives"), [("6", True), ("6-placeholder", True), ("6-no-header-propagation", False)]
)
def test_api_gateway_propagation(
    tag: str, arrives: bool, client_for: Callable[..., EgressClient]
) -> None:
    with FakeSidecar(fixed(200, {"name": "Pam"})) as sidecar:
        headers = {"x-my-header": "canary", "x-envoy-force-trace": "1", "x-meshlab-a": "b"}
        ask(
            f"{FLEETMAN}api-gateway:{tag}",
            client_for(sidecar),
            "/vehicles/driver/x",
            headers=headers,
        )
    [seen] = sidecar.seen
    assert ("x-my-header" in seen.headers) is arrives
    assert seen.headers.get("x-my-header", "canary") == "canary"
    assert "x-envoy-force-trace" not in seen.headers
    assert "x-meshlab-a" not in seen.headers


def test_api_gateway_downstream_failure_is_springs_500(
    client_for: Callable[..., EgressClient],
) -> None:
    with FakeSidecar(fixed(503, x_meshlab_response_flags="UF")) as sidecar:
        response = ask(
            f"{FLEETMAN}api-gateway:6", client_for(sidecar), "/vehicles/driver/City%20Truck"
        )
    assert response.status == 500
    body = json.loads(response.body)
    assert (body["status"], body["error"]) == (500, "Internal Server Error")
    assert body["path"] == "/vehicles/driver/City%20Truck"
    assert (
        f"[503 Service Unavailable] during [GET] to [http://{STAFF}/driver/City%20Truck]"
        in (body["message"])
    )
    [hop] = hops_of(response)
    assert (hop["status"], hop["flags"]) == (503, "UF")


def test_tracker_asks_telemetry_for_the_speed(client_for: Callable[..., EgressClient]) -> None:
    with FakeSidecar(lambda seen: Answer(200, b"55.5")) as sidecar:
        client = client_for(sidecar)
        found = ask(
            f"{FLEETMAN}position-tracker:6",
            client,
            "/vehicles/City%20Truck",
            headers={"x-my-header": "canary"},
        )
        listing = ask(f"{FLEETMAN}position-tracker:6", client, "/vehicles/")
        unknown = ask(f"{FLEETMAN}position-tracker:6", client, "/vehicles/Nope")
    assert json.loads(found.body)["speed"] == 55.5
    [seen] = sidecar.seen  # only the one named vehicle asks
    assert (seen.path, seen.headers["host"]) == ("/vehicles/City%20Truck", TELEMETRY)
    assert seen.headers["x-my-header"] == "canary"
    assert listing.status == 200
    assert hops.HEADER not in dict(listing.headers)
    assert unknown.status == 404


@pytest.mark.parametrize("answer", [Answer(503, b"fault filter abort"), Answer(200, b'"fast"')])
def test_tracker_leaves_the_speed_out_when_telemetry_fails(
    answer: Answer, client_for: Callable[..., EgressClient]
) -> None:
    with FakeSidecar(lambda seen: answer) as sidecar:
        response = ask(
            f"{FLEETMAN}position-tracker:6", client_for(sidecar), "/vehicles/City%20Truck"
        )
    assert response.status == 200
    body = json.loads(response.body)
    assert body["name"] == "City Truck"
    assert "speed" not in body
    assert hops_of(response)[0]["status"] == answer.status


# --- no sidecar, timeouts, the egress file -----------------------------------------------------


def test_no_egress_file_fails_as_connection_refused() -> None:
    client = EgressClient(None)
    gateway = f"{FLEETMAN}api-gateway:6"
    driver = ask(gateway, client, "/vehicles/driver/City%20Truck")
    assert driver.status == 500
    message = json.loads(driver.body)["message"]
    assert message == f"connection refused executing GET http://{STAFF}/driver/City%20Truck"
    assert hops_of(driver) == [
        {
            "host": STAFF,
            "path": "/driver/City%20Truck",
            "upstream": "",
            "cluster": "",
            "status": None,
            "flags": "-",
            "hops": [],
        }
    ]
    listing = ask(gateway, client, "/vehicles/")  # getAllPositions(): [] when unreachable
    assert (listing.status, json.loads(listing.body)) == (200, [])
    web = ask(f"{FLEETMAN}webapp-angular:6", client, "/api/vehicles/")
    assert web.status == 502
    assert b"502 Bad Gateway" in web.body


def test_downstream_timeout(client_for: Callable[..., EgressClient]) -> None:
    with FakeSidecar(lambda seen: Answer(200, b"1.0", delay=0.4)) as sidecar:
        client = client_for(sidecar, timeout=0.1)
        started = time.monotonic()
        web = ask(f"{FLEETMAN}webapp-angular:6", client, "/api/vehicles/")
        tracked = ask(f"{FLEETMAN}position-tracker:6", client, "/vehicles/City%20Truck")
        elapsed = time.monotonic() - started
    assert web.status == 504  # nginx's answer to an upstream that timed out
    assert hops_of(web)[0]["status"] is None
    assert tracked.status == 200
    assert "speed" not in json.loads(tracked.body)
    assert elapsed < 0.7  # the calls gave up; they did not wait for the answers


def test_keep_alive_per_listener(client_for: Callable[..., EgressClient]) -> None:
    with FakeSidecar(lambda seen: Answer(200, b"1.5")) as sidecar:
        client = client_for(sidecar)
        for _ in range(5):
            ask(f"{FLEETMAN}position-tracker:6", client, "/vehicles/City%20Truck")
    assert len(sidecar.seen) == 5
    assert len({s.connection for s in sidecar.seen}) == 1


def test_egress_file_is_read_lazily_and_validated(tmp_path: Path) -> None:
    path = tmp_path / "egress.json"
    client = EgressClient(str(path))  # not there yet: nothing is read at construction
    assert client.listener(8080) is None  # missing: this call fails, a later one retries
    path.write_text('{"listeners": {"8080": 40123, "80": 40124}}')
    assert (client.listener(8080), client.listener(80), client.listener(9090)) == (
        40123,
        40124,
        None,
    )
    for bad in [
        '{"listeners": {"8080": "x"}}',
        '{"listeners": [1]}',
        "[]",
        "{",
        '{"listeners": {"0": 1}}',
    ]:
        path.write_text(bad)
        with pytest.raises(ValueError):
            read_listeners(str(path))


def test_the_env_var_names_the_egress_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(ENV, str(tmp_path / "e.json"))
    assert EgressClient.from_env().path == str(tmp_path / "e.json")
    monkeypatch.delenv(ENV)
    assert EgressClient.from_env().path is None


# --- hops: shape, nesting, caps, garbage --------------------------------------------------------


def nested(depth: int) -> list[dict[str, Any]]:
    return (
        [{"host": f"h{depth}:1", "path": "/", "status": 200, "hops": nested(depth + 1)}]
        if (depth <= 12)
        else []
    )


def levels(entries: list[dict[str, Any]]) -> int:
    return 1 + max((levels(e["hops"]) for e in entries), default=0) if entries else 0


def count(entries: list[dict[str, Any]]) -> int:
    return sum(1 + count(e["hops"]) for e in entries)


def test_nested_hops_are_kept_with_their_fields(client_for: Callable[..., EgressClient]) -> None:
    inner = [
        {
            "host": TELEMETRY,
            "path": "/vehicles/x",
            "upstream": "envoy://inbound~t-0~8080/",
            "cluster": "c",
            "status": 503,
            "flags": "FI",
            "hops": [],
        }
    ]
    answer = fixed(200, [], x_meshlab_hops=json.dumps(inner))
    with FakeSidecar(answer) as sidecar:
        response = ask(f"{FLEETMAN}api-gateway:6", client_for(sidecar), "/vehicles/")
    [hop] = hops_of(response)
    assert hop["hops"] == inner


@pytest.mark.parametrize(
    "garbage",
    ["not json", "{}", '{"host": "x"}', "[1, 2]", "[" * 5000, '[{"host": 5}]', "null", "x" * 70000],
)
def test_garbage_hops_from_downstream_are_dropped(
    garbage: str, client_for: Callable[..., EgressClient]
) -> None:
    with FakeSidecar(fixed(200, [], x_meshlab_hops=garbage)) as sidecar:
        response = ask(f"{FLEETMAN}api-gateway:6", client_for(sidecar), "/vehicles/")
    assert response.status == 200
    assert hops_of(response)[0]["hops"] == []


def test_bad_fields_are_coerced_not_trusted() -> None:
    raw = json.dumps(
        [
            {"host": "a:1", "status": True, "flags": 3, "upstream": None, "hops": "x"},
            {"host": "b:1", "status": 99999, "path": "p" * 1000, "extra": 1},
            "junk",
        ]
    )
    assert hops.parse(raw) == [
        {
            "host": "a:1",
            "path": "",
            "upstream": "",
            "cluster": "",
            "status": None,
            "flags": "-",
            "hops": [],
        },
        {
            "host": "b:1",
            "path": "p" * hops.MAX_TEXT,
            "upstream": "",
            "cluster": "",
            "status": None,
            "flags": "-",
            "hops": [],
        },
    ]


def test_caps_on_depth_and_entries() -> None:
    deep = hops.parse(json.dumps(nested(1)))
    assert levels(deep) == hops.MAX_DEPTH
    wide = [{"host": f"h:{i}", "hops": [{"host": "n:1"}]} for i in range(40)]
    kept = hops.parse(json.dumps(wide))
    assert count(kept) == hops.MAX_ENTRIES
    assert [e["host"] for e in kept[:2]] == ["h:0", "h:1"]  # call order, depth first
    # one level deeper (as the caller nests a callee's list) loses one more level
    assert levels(hops.parse(json.dumps(nested(1)), depth=2)) == hops.MAX_DEPTH - 1


def test_a_stand_in_caps_its_own_header(client_for: Callable[..., EgressClient]) -> None:
    many = json.dumps([{"host": f"h:{i}"} for i in range(40)])
    with FakeSidecar(fixed(200, [], x_meshlab_hops=many)) as sidecar:
        response = ask(f"{FLEETMAN}api-gateway:6", client_for(sidecar), "/vehicles/")
    entries = hops_of(response)
    assert count(entries) == hops.MAX_ENTRIES
    assert len(dict(response.headers)[hops.HEADER]) < 8192


# --- the whole chain, in-process, through a sidecar that routes by Host -------------------------


@contextmanager
def fleet(tmp_path: Path, tags: dict[str, str]) -> Iterator[tuple[int, FakeSidecar]]:
    """webapp → api-gateway → position-tracker → vehicle-telemetry (+ staff-service), each an
    in-process stand-in; the fake sidecar forwards by Host and adds Envoy's x-meshlab-* headers."""
    hosts = {
        "fleetman-api-gateway": "api-gateway",
        TRACKER: "position-tracker",
        STAFF: "staff-service",
        TELEMETRY: "vehicle-telemetry",
    }
    ports: dict[str, int] = {}

    def proxy(seen: Seen) -> Answer:
        service = hosts[seen.headers["host"]]
        conn = http.client.HTTPConnection("127.0.0.1", ports[service], timeout=5)
        try:
            headers = {k: v for k, v in seen.headers.items() if k != "content-length"}
            conn.request(seen.method, seen.path, headers=headers)
            r = conn.getresponse()
            body, got = r.read(), {k.lower(): v for k, v in r.getheaders()}
        finally:
            conn.close()
        extra = {k: v for k, v in got.items() if k in (hops.HEADER, "content-type")}
        extra[hops.UPSTREAM_HOST] = f"envoy://inbound~{service}-0~8080/"
        extra[hops.RESPONSE_FLAGS] = "-"
        return Answer(r.status, body, extra)

    with FakeSidecar(proxy) as sidecar:
        client = EgressClient(sidecar.egress(tmp_path))
        standins = []
        try:
            for service in ["webapp-angular", *hosts.values()]:
                image = f"{FLEETMAN}{service}:{tags.get(service, '6')}"
                factory = {
                    "webapp-angular": chain.webapp,
                    "api-gateway": chain.api_gateway,
                    "position-tracker": chain.position_tracker,
                }.get(service)
                behaviour = (
                    factory(image.rpartition(":")[2], client) if factory else behaviour_for(image)
                )
                s = Standin(PodSpec(f"{service}-0", "default", image, {}, (8080,)), behaviour)
                s.start()
                standins.append(s)
                ports[service] = s.ports[8080]
            yield ports["webapp-angular"], sidecar
        finally:  # in parallel: each close joins its accept thread
            closers = [threading.Thread(target=s.close) for s in standins]
            for t in closers:
                t.start()
            for t in closers:
                t.join()
            client.close()


def get(port: int, path: str, headers: dict[str, str]) -> tuple[int, dict[str, str], bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        conn.request("GET", path, headers=headers)
        r = conn.getresponse()
        return r.status, {k.lower(): v for k, v in r.getheaders()}, r.read()
    finally:
        conn.close()


@pytest.mark.parametrize("tag", ["6", "6-no-header-propagation"])
def test_three_hops_through_the_chain(tmp_path: Path, tag: str) -> None:
    tags = {"api-gateway": tag, "position-tracker": tag}
    with fleet(tmp_path, tags) as (webapp, sidecar):
        status, headers, body = get(webapp, "/api/vehicles/City%20Truck", {"x-my-header": "canary"})
    assert status == 200
    assert json.loads(body)["speed"] == 28.4  # from vehicle-telemetry, two hops down
    [web] = json.loads(headers[hops.HEADER])
    assert (web["host"], web["upstream"]) == (
        "fleetman-api-gateway:8080",
        "envoy://inbound~api-gateway-0~8080/",
    )
    [tracker] = web["hops"]
    assert (tracker["host"], tracker["path"]) == (TRACKER, "/vehicles/City%20Truck")
    [telemetry] = tracker["hops"]
    assert (telemetry["host"], telemetry["status"], telemetry["hops"]) == (TELEMETRY, 200, [])
    arrived = [s.headers.get("x-my-header") for s in sidecar.seen]
    # nginx always forwards; the Java images only with propagation
    assert arrived == (["canary"] * 3 if tag == "6" else ["canary", None, None])


# --- the stand-in process reads MESHLAB_EGRESS --------------------------------------------------


def test_standin_process_calls_through_the_egress_file(tmp_path: Path) -> None:
    with FakeSidecar(fixed(200, {"name": "Pam Parry"})) as sidecar:
        env = {**os.environ, ENV: sidecar.egress(tmp_path)}
        argv = [
            sys.executable,
            "-m",
            "meshlab.backends.embedded.standins",
            "--pod",
            "gw-0",
            "--image",
            f"{FLEETMAN}api-gateway:6",
            "--port",
            "8080",
        ]
        proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env)
        try:
            assert proc.stdout is not None
            ready = json.loads(proc.stdout.readline())
            status, headers, body = get(
                ready["pods"]["gw-0"]["8080"],
                "/vehicles/driver/City%20Truck",
                {"x-my-header": "canary"},
            )
        finally:
            proc.communicate(timeout=10)  # EOF on stdin: the lifeline ends it
    assert (status, json.loads(body)) == (200, {"name": "Pam Parry"})
    assert headers["x-meshlab-pod"] == "gw-0"
    assert json.loads(headers[hops.HEADER])[0]["host"] == STAFF
    [seen] = sidecar.seen
    assert (seen.headers["host"], seen.headers["x-my-header"]) == (STAFF, "canary")
    assert proc.returncode == 0


def test_pods_of_one_host_call_out_through_their_own_sidecars(tmp_path: Path) -> None:
    gateway = f"{FLEETMAN}api-gateway:6"
    with (
        FakeSidecar(fixed(200, {"name": "from sidecar A"})) as a,
        FakeSidecar(fixed(200, {"name": "from sidecar B"})) as b,
    ):
        pods = [
            PodSpec("gw-a", "default", gateway, {}, (8080,), a.egress(tmp_path)),
            PodSpec("gw-b", "default", gateway, {}, (8080,), b.egress(tmp_path)),
            PodSpec("gw-none", "default", gateway, {}, (8080,)),  # no sidecar
        ]
        spec = tmp_path / "spec.json"
        spec.write_text(json.dumps({"pods": [pod_record(p) for p in pods]}))
        argv = [sys.executable, "-m", "meshlab.backends.embedded.standins", "--spec", str(spec)]
        env = {**os.environ, ENV: a.egress(tmp_path)}  # inherited: must not reach gw-none
        proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env)
        try:
            assert proc.stdout is not None
            ports = json.loads(proc.stdout.readline())["pods"]
            answers = {}
            for name in ("gw-a", "gw-b", "gw-none", "gw-a"):
                status, headers, body = get(ports[name]["8080"], "/vehicles/driver/x", {})
                answers[name] = (status, headers["x-meshlab-pod"], json.loads(body))
        finally:
            proc.communicate(timeout=10)
    assert answers["gw-a"] == (200, "gw-a", {"name": "from sidecar A"})
    assert answers["gw-b"] == (200, "gw-b", {"name": "from sidecar B"})
    assert answers["gw-none"][:2] == (500, "gw-none")
    assert "connection refused" in answers["gw-none"][2]["message"]
    assert (len(a.seen), len(b.seen)) == (2, 1)
    assert proc.returncode == 0
