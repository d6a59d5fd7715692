"""The probe's HTTP client: HTTP/1.1 on keep-alive sockets to Envoy's listeners on
127.0.0.1 (`wire.py`), with a session's cookie jar, and a batch spread over a few
connections at once.

Why not httpx (used before `http.client`): ~400 µs of client CPU per request; `http.client`
~200 µs, most of it parsing headers with the email package; `wire.py` ~20 µs. Everything
here talks to our own Envoy or stand-ins on loopback (plain HTTP/1.1, no proxies, no TLS,
no redirects), which is all this needs.

A batch's requests are independent draws (nothing in a request depends on another's
answer, except cookies, see `CookieJar`), so they may run concurrently; the outcomes are
returned in the order the requests were numbered, never in the order they completed.
"""

from __future__ import annotations

import http.client
import json
import socket
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from meshlab.backends.embedded.wire import Reader, encode_request

# Connections a batch may use at once. Two cores are shared by Envoy, the stand-ins and
# this client: more than a few connections only add thread switches (bench/run.py).
PARALLEL = 4
# The fewest requests per connection worth a thread hand-off (~50 µs each)
MIN_PER_CONNECTION = 2
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
    every request, closed by the client once the answer is read)."""

    def __init__(self, port: int, timeout: float, fresh: bool = False) -> None:
        self.port = port
        self._timeout = timeout
        self._fresh = fresh
        self._reader: Reader | None = None  # on the open socket, if any

    def request(
        self, method: str, path: str, headers: Mapping[str, str], jar: CookieJar | None = None
    ) -> Reply | Failure:
        started = time.perf_counter()
        cookie = jar.header() if jar is not None else None
        if cookie is not None:
            headers = {**headers, "cookie": cookie}
        data = encode_request(method, path, headers, self.port)
        head_only = method == "HEAD"
        for attempt in (1, 2):
            reused = self._reader is not None
            try:
                reader = self._reader or self._connect()
                reader.sock.sendall(data)
                response = reader.read(head_only)
            except _STALE as exc:
                self.close()
                if reused and attempt == 1:
                    continue  # the connection had been closed while idle: once more, fresh
                return Failure(exc, time.perf_counter() - started)
            except (OSError, http.client.HTTPException) as exc:
                self.close()
                return Failure(exc, time.perf_counter() - started)
            latency = time.perf_counter() - started
            if jar is not None and response.set_cookies:
                jar.update(response.set_cookies)
            if self._fresh or not response.keep_alive:
                self.close()
            return Reply(response.status, response.headers, response.body, latency)
        raise AssertionError("unreachable")  # pragma: no cover

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
        self._pool: ThreadPoolExecutor | None = None

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
        connections, each sending its share one after the other.

        `check(result)` runs as each result arrives (the watchdog: a timeout may mean a
        stopped backend); when it raises, every connection stops after its current request
        and the exception reaches the caller."""
        results: list[Reply | Failure | None] = [None] * count
        first = 0
        if count and not self._connections:
            alone = self._connection(0).request(method, path, headers, self.jar)
            results[0] = alone
            check(alone)
            first = 1
        lanes = max(1, min(PARALLEL, (count - first) // MIN_PER_CONNECTION))
        for k in range(lanes):
            self._connection(k)  # created here, not in the threads
        halt = threading.Event()

        def lane(k: int) -> None:
            conn = self._connections[k]
            for i in range(first + k, count, lanes):
                if halt.is_set():
                    return
                result = conn.request(method, path, headers, self.jar)
                results[i] = result
                try:
                    check(result)
                except BaseException:
                    halt.set()
                    raise

        if lanes == 1:
            lane(0)
        else:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(PARALLEL, thread_name_prefix="meshlab-probe")
            futures = [self._pool.submit(lane, k) for k in range(1, lanes)]
            try:
                lane(0)
            except BaseException:  # Ctrl-C or SIGTERM reach the main thread: stop every lane
                halt.set()
                raise
            finally:
                errors = [f.exception() for f in futures]  # waits: no lane outlives the batch
            for error in errors:
                if error is not None:
                    raise error
        assert all(r is not None for r in results)
        return results  # type: ignore[return-value]

    def close(self) -> None:
        for conn in self._connections:
            conn.close()
        self._connections.clear()
        if self._pool is not None:
            self._pool.shutdown(wait=True)
            self._pool = None


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
