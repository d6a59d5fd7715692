"""Calls from a stand-in to other services, out through its own pod's sidecar.

The backend writes one egress file per pod and names it in that pod's spec (`PodSpec.egress`,
from the host's spec file; `MESHLAB_EGRESS` for a pod run by hand):
`{"listeners": {"8080": 40123}}` maps a destination port to the 127.0.0.1 port of that pod's
sidecar outbound listener. The app's Host header then picks the route, as in a real pod where
iptables hands every outbound connection to the sidecar. No file means no sidecar: every
call fails as a refused connection would, and the app's own error handling applies.
Pods sharing a host process each get their own client (`client_for`), so one pod's calls never
leave through another pod's sidecar.

Only ever connects to 127.0.0.1. Thread-safe (the server is threaded); connections are kept
alive per listener port in a small pool.
"""

from __future__ import annotations

import http.client
import json
import os
import sys
import threading
from collections.abc import Mapping, Sequence
from dataclasses import field

from meshlab.backends.embedded.standins import hops
from meshlab.records import dataclass

ENV = "MESHLAB_EGRESS"
HOST = "127.0.0.1"
CONNECT_TIMEOUT = 1.0  # loopback: a connect that takes longer is not going to succeed
CALL_TIMEOUT = 5.0  # per read; well under the apps' own (Feign 60 s, nginx 90 s)
POOL_SIZE = 8  # idle connections kept per listener port
REFUSED = "connection refused"
# The original destination a sidecar's PassthroughCluster sends a call to (the cluster that
# plays the Service's ClusterIP): what iptables and the cluster's DNS tell Istio's
# ORIGINAL_DST cluster, said here in a header (backends/embedded/envoy/bootstrap.py).
ORIGINAL_DST_HEADER = "x-meshlab-original-dst"
TIMED_OUT = "timed out"


@dataclass(frozen=True)
class Reply:
    """One downstream call's result. `status` None: no HTTP response (see `error`)."""

    status: int | None
    body: bytes = b""
    headers: Mapping[str, str] = field(default_factory=dict)  # lower-case names, first value
    error: str | None = None


def read_listeners(path: str) -> dict[int, int]:
    """The egress file's {destination port: local listener port}; ValueError when malformed."""
    return read_egress(path)[0]


def read_egress(path: str) -> tuple[dict[int, int], dict[str, str]]:
    """The egress file: {destination port: local listener port}, and {"host:port": the
    cluster playing that Service's ClusterIP} for the names only ALLOW_ANY passes through."""
    with open(path, encoding="utf-8") as f:
        data = json.load(f)
    listeners = data.get("listeners") if isinstance(data, dict) else None
    if not isinstance(listeners, dict):
        raise ValueError('expected {"listeners": {"<port>": <port>, ...}}')
    table: dict[int, int] = {}
    for key, value in listeners.items():
        dest, local = int(key), value
        ok = isinstance(local, int) and not isinstance(local, bool)
        if not (ok and 0 < dest < 65536 and 0 < local < 65536):
            raise ValueError(f"bad listener entry {key!r}: {value!r}")
        table[dest] = local
    passthrough = data.get("passthrough", {})
    if not isinstance(passthrough, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in passthrough.items()
    ):
        raise ValueError('expected {"passthrough": {"<host>:<port>": "<cluster>", ...}}')
    return table, passthrough


class EgressClient:
    """HTTP/1.1 to the sidecar's outbound listeners; the egress file is read on first use."""

    def __init__(
        self,
        path: str | None,
        *,
        timeout: float = CALL_TIMEOUT,
        connect_timeout: float = CONNECT_TIMEOUT,
    ) -> None:
        self.path = path
        self.timeout = timeout
        self.connect_timeout = connect_timeout
        self._listeners: dict[int, int] | None = None
        self._passthrough: dict[str, str] = {}
        self._idle: dict[int, list[http.client.HTTPConnection]] = {}
        self._lock = threading.Lock()
        self._warned = False

    @classmethod
    def from_env(cls) -> EgressClient:
        return cls(os.environ.get(ENV) or None)

    def listener(self, port: int) -> int | None:
        """The local port for calls to destination `port`; None: no sidecar, or no listener."""
        if self.path is None:
            return None
        with self._lock:
            if self._listeners is None:
                try:
                    self._listeners, self._passthrough = read_egress(self.path)
                except (OSError, ValueError) as exc:  # not cached: the next call tries again
                    if not self._warned:
                        self._warned = True
                        print(f"stand-in: egress file {self.path}: {exc}", file=sys.stderr)
                    return None
            return self._listeners.get(port)

    def passthrough(self, host: str, port: int) -> str | None:
        """The cluster playing `host`'s ClusterIP when the sidecar passes the call through
        (read with the listeners: call `listener` first)."""
        return self._passthrough.get(f"{host}:{port}")

    def request(
        self,
        method: str,
        port: int,
        path: str,
        headers: Sequence[tuple[str, str]],
        body: bytes = b"",
    ) -> Reply:
        """Send one request via the listener for destination `port`; never raises for I/O."""
        local = self.listener(port)
        if local is None:
            return Reply(None, error=REFUSED)
        conn, reused = self._checkout(local)
        try:
            try:
                reply = self._exchange(conn, method, path, headers, body)
            except (ConnectionResetError, BrokenPipeError, http.client.BadStatusLine):
                if not reused:
                    raise
                conn.close()  # the listener closed an idle connection: one fresh try
                conn = self._connection(local)
                reply = self._exchange(conn, method, path, headers, body)
        except ConnectionRefusedError:
            conn.close()
            return Reply(None, error=REFUSED)
        except TimeoutError:
            conn.close()
            return Reply(None, error=TIMED_OUT)
        except (OSError, ValueError, http.client.HTTPException) as exc:  # ValueError: a header
            conn.close()  # value http.client will not send (CR/LF, not latin-1)
            return Reply(None, error=f"{type(exc).__name__}: {exc}")
        self._checkin(local, conn, reply)
        return reply

    def _connection(self, local: int) -> http.client.HTTPConnection:
        return http.client.HTTPConnection(HOST, local, timeout=self.connect_timeout)

    def _checkout(self, local: int) -> tuple[http.client.HTTPConnection, bool]:
        with self._lock:
            idle = self._idle.get(local)
            if idle:
                return idle.pop(), True
        return self._connection(local), False

    def _checkin(self, local: int, conn: http.client.HTTPConnection, reply: Reply) -> None:
        if reply.headers.get("connection", "").lower() == "close" or conn.sock is None:
            conn.close()
            return
        with self._lock:
            idle = self._idle.setdefault(local, [])
            if len(idle) < POOL_SIZE:
                idle.append(conn)
                return
        conn.close()

    def _exchange(
        self,
        conn: http.client.HTTPConnection,
        method: str,
        path: str,
        headers: Sequence[tuple[str, str]],
        body: bytes,
    ) -> Reply:
        if conn.sock is None:
            conn.connect()  # under the connect timeout, then reads get the call timeout
        assert conn.sock is not None
        conn.sock.settimeout(self.timeout)
        conn.putrequest(method, path, skip_host=True, skip_accept_encoding=True)
        for name, value in headers:
            conn.putheader(name, value)
        if body or method not in ("GET", "HEAD", "DELETE", "OPTIONS"):
            conn.putheader("content-length", str(len(body)))
        conn.endheaders(body or None)
        r = conn.getresponse()
        data = r.read()
        got: dict[str, str] = {}
        for name, value in r.getheaders():
            got.setdefault(name.lower(), value)
        if r.will_close:
            conn.close()
        return Reply(r.status, data, got)

    def close(self) -> None:
        with self._lock:
            idle, self._idle = self._idle, {}
        for conns in idle.values():
            for conn in conns:
                conn.close()


_clients: dict[str | None, EgressClient] = {}  # egress file → its pod's client
_clients_lock = threading.Lock()


def client_for(path: str | None) -> EgressClient:
    """The client of the pod whose egress file is `path` (None: a pod without a sidecar).

    One per file, made on first use: the pods of a host share nothing but the process.
    """
    with _clients_lock:
        client = _clients.get(path)
        if client is None:
            client = _clients[path] = EgressClient(path)
        return client


class Calls:
    """The downstream calls made while serving one request, and the hops header they make."""

    def __init__(self, client: EgressClient) -> None:
        self.client = client
        self.entries: list[hops.Entry] = []
        self._budget = hops.Budget()

    def get(
        self,
        authority: str,
        path: str,
        headers: Sequence[tuple[str, str]] = (),
        *,
        host_header: str | None = None,
        method: str = "GET",
        body: bytes = b"",
    ) -> Reply:
        """Call `http://<authority><path>`; Host is the authority unless the app sets its own."""
        name, _, port_text = authority.rpartition(":")
        port = int(port_text) if name and port_text.isdigit() else 80
        sent = [("host", host_header or authority), *headers]
        if self.client.listener(port) is not None and (
            original := self.client.passthrough(name or authority, port)
        ):
            sent.append((ORIGINAL_DST_HEADER, original))  # iptables: the dialled address
        reply = self.client.request(method, port, path, sent, body)
        if self._budget.take():
            self.entries.append(
                hops.entry(authority, path, reply.status, reply.headers, 1, self._budget)
            )
        return reply

    def header(self) -> tuple[tuple[str, str], ...]:
        """The `x-meshlab-hops` response header, or nothing when no call was made."""
        return ((hops.HEADER, hops.encode(self.entries)),) if self.entries else ()
