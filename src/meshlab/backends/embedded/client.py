"""The probe's HTTP client: HTTP/1.1 on keep-alive sockets to Envoy's listeners on
127.0.0.1 (`wire.py`), with a session's cookie jar, and a batch spread over a few
connections at once.

Why neither httpx nor `http.client` (used before): on lab 2's probe path the client cost
~400 µs of CPU per request with httpx, 300-400 µs with `http.client` (most of it parsing
headers with the email package), ~150 µs with `wire.py` and one thread for the batch.
Everything here talks to our own Envoy or stand-ins on loopback (plain HTTP/1.1, no
proxies, no TLS, no redirects), which is all this needs.

A batch's requests are independent draws (nothing in a request depends on another's
answer, except cookies, see `CookieJar`), so they may run concurrently; the outcomes are
returned in the order the requests were numbered, never in the order they completed.
"""

from __future__ import annotations

import http.client
import json
import select
import socket
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import field
from typing import Any

from meshlab.backends.embedded.wire import Reader, encode_request
from meshlab.records import dataclass

# Connections a batch may use at once: a check's batch of 10 goes out whole, one request per
# connection, so it costs one round trip rather than three (one thread drives them all; with
# 10 rather than 4, lab 2's probe went from ~1150 to ~1550-1850 requests/s on 2 cores).
PARALLEL = 10
# The fewest requests per connection worth opening one more
MIN_PER_CONNECTION = 1
# Errors of a kept-alive connection the peer closed while it idled: one fresh retry
_STALE = (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError)


@dataclass
class Reply:
    """What came back for one request: status, headers (lower-case names, repeats joined
    with ", " as HTTP allows), the body, and the seconds it took."""

    status: int
    headers: dict[str, str]
    body: bytes
    latency: float


@dataclass
class Failure:
    """A request that got no HTTP answer: the exception and the seconds it took."""

    error: OSError | http.client.HTTPException
    latency: float

    @property
    def timed_out(self) -> bool:
        return isinstance(self.error, TimeoutError)

    def describe(self) -> str:
        return f"{type(self.error).__name__}: {self.error}"


@dataclass
class CookieJar:
    """The cookies a client keeps (name -> value): sent on every later request, updated
    from each `set-cookie`. Enough for Envoy's hash cookies (one host, path /); a `Max-Age=0`
    or past expiry is not interpreted (Envoy's hash cookies never send one)."""

    cookies: dict[str, str] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def header(self) -> str | None:
        with self._lock:
            if not self.cookies:
                return None
            return "; ".join(f"{k}={v}" for k, v in self.cookies.items())

    def update(self, set_cookies: Sequence[str]) -> None:
        with self._lock:
            for line in set_cookies:
                name, sep, value = line.split(";", 1)[0].partition("=")
                if sep and name.strip():
                    self.cookies[name.strip()] = value.strip()


class Connection:
    """One keep-alive HTTP/1.1 connection to 127.0.0.1:port (with `fresh`, a new one for
    every request, closed by the client once the answer is read). A request is `send`
    then `receive` (so one thread can keep several connections busy), or `request`."""

    def __init__(self, port: int, timeout: float, fresh: bool = False) -> None:
        self.port = port
        self._timeout = timeout
        self._fresh = fresh
        self._reader: Reader | None = None  # on the open socket, if any
        self._data = b""
        self._head_only = False
        self._reused = False
        self.started = 0.0  # when the request in flight was sent (perf_counter)

    @property
    def sock(self) -> socket.socket | None:
        return self._reader.sock if self._reader is not None else None

    def request(
        self, method: str, path: str, headers: Mapping[str, str], jar: CookieJar | None = None
    ) -> Reply | Failure:
        """One request, waiting for its answer."""
        failed = self.send(method, path, headers, jar)
        return failed if failed is not None else self.receive(jar)

    def send(
        self, method: str, path: str, headers: Mapping[str, str], jar: CookieJar | None = None
    ) -> Failure | None:
        """Write one request (connecting first if need be); a Failure if it could not."""
        self.started = time.perf_counter()
        cookie = jar.header() if jar is not None else None
        if cookie is not None:
            headers = {**headers, "cookie": cookie}
        self._data = encode_request(method, path, headers, self.port)
        self._head_only = method == "HEAD"
        self._reused = self._reader is not None
        return self._write()

    def _write(self) -> Failure | None:
        try:
            reader = self._reader or self._connect()
            reader.sock.sendall(self._data)
        except _STALE as exc:
            self.close()
            if self._reused:  # closed while it idled: once more, fresh
                self._reused = False
                return self._write()
            return Failure(exc, time.perf_counter() - self.started)
        except OSError as exc:
            self.close()
            return Failure(exc, time.perf_counter() - self.started)
        return None

    def receive(self, jar: CookieJar | None = None) -> Reply | Failure:
        """The answer to the request `send` wrote (waits for it)."""
        assert self._reader is not None, "receive() without a request in flight"
        try:
            response = self._reader.read(self._head_only)
        except _STALE as exc:
            self.close()
            if self._reused:  # closed while it idled: once more, fresh
                self._reused = False
                failed = self._write()
                return failed if failed is not None else self.receive(jar)
            return Failure(exc, time.perf_counter() - self.started)
        except (OSError, http.client.HTTPException) as exc:
            self.close()
            return Failure(exc, time.perf_counter() - self.started)
        latency = time.perf_counter() - self.started
        if jar is not None and response.set_cookies:
            jar.update(response.set_cookies)
        if self._fresh or not response.keep_alive:
            self.close()
        return Reply(response.status, response.headers, response.body, latency)

    def timed_out(self) -> Failure:
        """Give up on the request in flight: its answer never came within the timeout."""
        self.close()
        return Failure(TimeoutError("timed out"), time.perf_counter() - self.started)

    def _connect(self) -> Reader:
        sock = socket.create_connection(("127.0.0.1", self.port), self._timeout)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # as http.client does
        self._reader = Reader(sock)
        return self._reader

    def close(self) -> None:
        if self._reader is not None:
            self._reader.sock.close()
            self._reader = None


class Client:
    """A client of one listener: its connections (up to PARALLEL) and cookie jar. `fresh`:
    a new connection per request (what a load balancer of connections needs, see
    `Connection`)."""

    def __init__(self, port: int, timeout: float, fresh: bool = False) -> None:
        self.port = port
        self.timeout = timeout
        self.fresh = fresh
        self.jar = CookieJar()
        self._connections: list[Connection] = []

    def _connection(self, index: int) -> Connection:
        while len(self._connections) <= index:
            self._connections.append(Connection(self.port, self.timeout, self.fresh))
        return self._connections[index]

    def batch(
        self,
        method: str,
        path: str,
        headers: Mapping[str, str],
        count: int,
        check: Callable[[Reply | Failure], None] = lambda _: None,
    ) -> list[Reply | Failure]:
        """`count` requests, returned in their numbered order. While the client has no
        connection yet, the first request goes alone (a hash cookie it sets then travels
        on every later one, as a browser's would); the rest are spread over up to PARALLEL
        connections, each sending its share one after the other, all driven by this thread
        (one `poll` for the answers: threads cost more CPU in hand-offs than they saved).

        `check(result)` runs as each result arrives (the watchdog: a timeout may mean a
        stopped backend); when it raises, no request is sent after it, the connections
        still waiting for an answer are closed, and the exception reaches the caller."""
        results: list[Reply | Failure | None] = [None] * count
        first = 0
        if count and not self._connections:
            alone = self._connection(0).request(method, path, headers, self.jar)
            results[0] = alone
            check(alone)
            first = 1
        lanes = max(1, min(PARALLEL, (count - first) // MIN_PER_CONNECTION))
        conns = [self._connection(k) for k in range(lanes)]
        # lane k sends requests first+k, first+k+lanes, ... in that order
        shares = [iter(range(first + k, count, lanes)) for k in range(lanes)]
        waiting: dict[int, tuple[Connection, int, int]] = {}  # fd -> (connection, request, lane)

        def start(k: int) -> None:
            """The lane's next request, until one is in flight or the share is done."""
            conn = conns[k]
            for i in shares[k]:
                failed = conn.send(method, path, headers, self.jar)
                sock = conn.sock
                if failed is None and sock is not None:
                    waiting[sock.fileno()] = (conn, i, k)
                    return
                result = failed or Failure(OSError("not connected"), 0.0)
                results[i] = result
                check(result)

        def finish(fd: int, late: bool) -> None:
            conn, i, k = waiting.pop(fd)
            result = conn.timed_out() if late else conn.receive(self.jar)
            results[i] = result
            check(result)
            start(k)

        try:
            for k in range(lanes):
                start(k)
            while waiting:
                oldest = min(conn.started for conn, _, _ in waiting.values())
                ready = _ready(list(waiting), oldest + self.timeout - time.perf_counter())
                for fd in ready:
                    finish(fd, late=False)
                if not ready:  # time is up for the oldest: every request as old fails
                    due = time.perf_counter() - self.timeout
                    for fd in [fd for fd, (c, _, _) in waiting.items() if c.started <= due]:
                        finish(fd, late=True)
        finally:
            for conn, _, _ in waiting.values():  # a raising check or Ctrl-C: no answer due
                conn.close()
        assert all(r is not None for r in results)
        return results  # type: ignore[return-value]

    def close(self) -> None:
        for conn in self._connections:
            conn.close()
        self._connections.clear()


def _ready(fds: list[int], timeout: float) -> list[int]:
    """The descriptors with something to read within `timeout` seconds (poll where the OS
    has it: select() cannot take descriptors above 1023, which a large lab's run reaches)."""
    timeout = max(timeout, 0.0)
    if _POLL is None:
        return select.select(fds, [], [], timeout)[0]
    poller = _POLL()
    for fd in fds:
        poller.register(fd, select.POLLIN)
    return [fd for fd, _ in poller.poll(timeout * 1000 + 1)]


_POLL = getattr(select, "poll", None)


def get_json(url: str, timeout: float) -> Any:
    """GET an Envoy admin URL (`http://127.0.0.1:PORT/path?query`) and parse its JSON."""
    status, body = get(url, timeout)
    if status != 200:
        raise http.client.HTTPException(f"{url}: HTTP {status}")
    return json.loads(body)


def get(url: str, timeout: float) -> tuple[int, bytes]:
    """GET a loopback URL on a fresh connection: status and body. Raises OSError or
    http.client.HTTPException when nothing answers."""
    rest = url.removeprefix("http://")
    authority, _, path = rest.partition("/")
    host, _, port = authority.rpartition(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=timeout)
    try:
        conn.request("GET", "/" + path)
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()
