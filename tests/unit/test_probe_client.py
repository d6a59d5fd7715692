"""The probe's HTTP client (backends/embedded/client.py) against a local counting server:
outcomes come back in request order whatever the connections, cookies travel once set,
a stale keep-alive connection is retried once, a raising check stops every lane, and a
request that gets no answer in time is a timeout."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from meshlab.backends.embedded import client as probe
from meshlab.backends.embedded.client import Client, CookieJar, Failure, Reply


class Counting(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: Server

    def do_GET(self) -> None:
        with self.server.lock:
            self.server.served += 1
            number = self.server.served
        if self.path.startswith("/slow"):
            time.sleep(0.002 * (number % 3))  # answers finish out of order
        extra = [("set-cookie", "user=abc; Path=/"), ("set-cookie", "other=1")]
        body = f"{self.path}|{self.headers.get('cookie', '')}|{self.headers.get('x-n', '')}"
        self.send_response(200)
        for name, value in extra if self.path.startswith("/cookie") else []:
            self.send_header(name, value)
        self.send_header("content-length", str(len(body)))
        self.send_header("X-Mixed-Case", "yes")
        if self.path.startswith("/close"):
            self.send_header("connection", "close")
            self.close_connection = True
        self.end_headers()
        self.wfile.write(body.encode())

    def log_message(self, format: str, *args: Any) -> None:
        pass


class Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), Counting)
        self.lock = threading.Lock()
        self.served = 0


@pytest.fixture
def server() -> Iterator[Server]:
    srv = Server()
    thread = threading.Thread(target=srv.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield srv
    finally:
        srv.shutdown()
        srv.server_close()
        thread.join()


def port(server: Server) -> int:
    return int(server.server_address[1])


def replies(results: list[Reply | Failure]) -> list[Reply]:
    assert all(isinstance(r, Reply) for r in results), results
    return results  # type: ignore[return-value]


def test_a_batch_is_answered_in_request_order_over_several_connections(server: Server) -> None:
    c = Client(port(server), 5)
    seen: list[int] = []
    try:
        first = replies(c.batch("GET", "/slow", {"host": "h"}, 1))
        got = replies(c.batch("GET", "/slow", {"host": "h"}, 40, lambda r: seen.append(1)))
        assert len(first) == 1
        assert len(got) == 40
        assert len(seen) == 40
        assert len(c._connections) == probe.PARALLEL  # 40 requests: every lane in use
        assert all(r.status == 200 and r.body.startswith(b"/slow|") for r in got)
        assert server.served == 41
    finally:
        c.close()


def test_order_is_the_request_numbering_not_completion(
    server: Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each request is numbered by a header only the connection's share knows about: the
    numbering of the results must be 0..n-1 whatever lane sent them."""
    sent: list[int] = []
    original = probe.Connection.send

    def numbered(self: probe.Connection, method: str, path: str, headers: Any, jar: Any) -> Any:
        n = len(sent)
        sent.append(n)
        return original(self, method, path, {**headers, "x-n": str(n)}, jar)

    monkeypatch.setattr(probe.Connection, "send", numbered)
    c = Client(port(server), 5)
    try:
        c.batch("GET", "/slow", {"host": "h"}, 1)
        got = replies(c.batch("GET", "/slow", {"host": "h"}, 24))
        numbers = [int(r.body.rsplit(b"|", 1)[1]) for r in got]
        # numbers are assigned as lanes start requests, so they interleave across lanes, but
        # every lane keeps its own share in order: positions k, k+lanes, ... increase
        lanes = len(c._connections)
        assert lanes > 1
        for k in range(lanes):
            share = numbers[k::lanes]
            assert share == sorted(share)
        assert sorted(numbers) == list(range(1, 25))
    finally:
        c.close()


def test_headers_are_lower_case_and_cookies_travel_once_set(server: Server) -> None:
    c = Client(port(server), 5)
    try:
        (first,) = replies(c.batch("GET", "/cookie", {"host": "h"}, 1))
        assert first.headers["x-mixed-case"] == "yes"
        assert first.headers["set-cookie"] == "user=abc; Path=/, other=1"
        assert first.body.split(b"|")[1] == b""  # the first request had no cookie
        rest = replies(c.batch("GET", "/cookie", {"host": "h"}, 12))
        assert {r.body.split(b"|")[1] for r in rest} == {b"user=abc; other=1"}
    finally:
        c.close()
    fresh = Client(port(server), 5)  # a new client starts with an empty jar
    try:
        (again,) = replies(fresh.batch("GET", "/", {"host": "h"}, 1))
        assert again.body.split(b"|")[1] == b""
    finally:
        fresh.close()


def test_cookie_jar_parses_set_cookie_lines() -> None:
    jar = CookieJar()
    assert jar.header() is None
    jar.update(["a=1; Path=/; HttpOnly", "b = two ", "junk", "=nameless"])
    assert jar.header() == "a=1; b=two"
    jar.update(["a=3"])
    assert jar.header() == "a=3; b=two"


def test_a_closed_connection_is_reopened(server: Server) -> None:
    c = Client(port(server), 5)
    try:
        got = replies(c.batch("GET", "/close", {"host": "h"}, 3))
        assert [r.status for r in got] == [200, 200, 200]
        assert server.served == 3
    finally:
        c.close()


def test_nothing_listening_is_a_failure_not_an_exception() -> None:
    srv = Server()
    free = port(srv)  # type: ignore[arg-type]
    srv.server_close()
    c = Client(free, 1)
    try:
        (failure,) = c.batch("GET", "/", {"host": "h"}, 1)
        assert isinstance(failure, Failure)
        assert not failure.timed_out
        assert failure.describe().startswith("ConnectionRefusedError")
    finally:
        c.close()


def test_a_raising_check_stops_every_lane(server: Server) -> None:
    c = Client(port(server), 5)
    calls = 0

    def check(result: Reply | Failure) -> None:
        nonlocal calls
        calls += 1
        if calls == 3:
            raise RuntimeError("backend fault")

    try:
        c.batch("GET", "/", {"host": "h"}, 1)
        with pytest.raises(RuntimeError, match="backend fault"):
            c.batch("GET", "/", {"host": "h"}, 400, check)
        assert server.served < 1 + 400  # the lanes stopped early
        # the answers still due were dropped with their connections: the next batch reads
        # its own answers, not those
        after = replies(c.batch("GET", "/after", {"host": "h"}, 12))
        assert all(r.body.startswith(b"/after|") for r in after)
    finally:
        c.close()
    assert c._connections == []


def test_an_answer_that_never_comes_is_a_timeout_on_its_own_lane() -> None:
    """A listener that accepts but never answers: every request times out after the
    timeout, and the lanes do not wait for one another's timeouts one after the other."""
    mute = socket.create_server(("127.0.0.1", 0))
    c = Client(mute.getsockname()[1], 0.3)
    try:
        started = time.perf_counter()
        got = c.batch("GET", "/", {"host": "h"}, 9)
        took = time.perf_counter() - started
        assert all(isinstance(r, Failure) and r.timed_out for r in got), got
        assert all(r.describe() == "TimeoutError: timed out" for r in got)
        # the first alone (0.3 s), then the other 8 on lanes of their own, all at once (one
        # after the other they would take 2.4 s more)
        assert 0.55 <= took < 2.0
    finally:
        c.close()
        mute.close()
