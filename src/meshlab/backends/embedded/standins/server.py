"""The HTTP side of a stand-in pod: request/response types, the keep-alive server, `run()`.

Stdlib only: every pod is its own `python -m meshlab.backends.embedded.standins` process and
must be ready in tens of milliseconds. Envoy reuses upstream connections, so the server speaks
HTTP/1.1 with keep-alive, sets TCP_NODELAY and writes each response in one `send` (a header write
followed by a body write would otherwise meet the peer's delayed ACK and stall ~40 ms per
request).
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import socketserver
import sys
import threading
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import FrameType
from typing import Any, TextIO
from urllib.parse import unquote, urlsplit

HOST = "127.0.0.1"
POLL_INTERVAL = 0.25  # serve_forever's shutdown latency; only in-process users wait for it


@dataclass(frozen=True)
class PodSpec:
    """What a stand-in needs to know about the pod it plays (no Kubernetes types: stdlib only)."""

    name: str
    namespace: str
    image: str
    labels: Mapping[str, str] = field(default_factory=dict, hash=False)
    container_ports: tuple[int, ...] = ()

    def __post_init__(self) -> None:
        if not self.name:
            raise ValueError("pod name must not be empty")
        ports = tuple(int(p) for p in self.container_ports)
        if bad := [p for p in ports if not 0 < p < 65536]:
            raise ValueError(f"pod {self.name}: container ports out of range: {bad}")
        if len(set(ports)) != len(ports):
            raise ValueError(f"pod {self.name}: duplicate container ports {list(ports)}")
        object.__setattr__(self, "container_ports", ports)
        object.__setattr__(self, "labels", dict(self.labels))  # a private copy: frozen means frozen


@dataclass(frozen=True)
class Request:
    """One parsed request as a behaviour sees it; the body has already been read in full."""

    pod: PodSpec
    container_port: int
    method: str
    target: str  # exactly as received, query included
    headers: tuple[tuple[str, str], ...] = ()  # lower-case names, in arrival order
    body: bytes = b""

    @property
    def path(self) -> str:
        """The raw path without the query string."""
        return urlsplit(self.target).path

    @property
    def segments(self) -> tuple[str, ...]:
        """Decoded, non-empty path segments: `/driver/City%20Truck` → ("driver", "City Truck")."""
        return tuple(unquote(s) for s in self.path.split("/") if s)

    def header(self, name: str) -> str | None:
        """The first value of a header, case-insensitively."""
        name = name.lower()
        return next((v for k, v in self.headers if k == name), None)


@dataclass(frozen=True)
class Response:
    """What a behaviour returns; the server adds content-length and x-meshlab-pod."""

    status: int
    body: bytes = b""
    content_type: str = "application/json"
    headers: tuple[tuple[str, str], ...] = ()


Handler = Callable[[Request], Response]


@dataclass(frozen=True)
class Behaviour:
    """How a stand-in answers: `name` and `summary` are for reports, `handle` does the work;
    `downstream` lists the authorities it may call (`fleetman-staff-service:8080`), for reports."""

    name: str
    summary: str
    handle: Handler
    downstream: tuple[str, ...] = ()


def json_response(status: int, payload: Any, headers: tuple[tuple[str, str], ...] = ()) -> Response:
    """A compact JSON response."""
    body = json.dumps(payload, separators=(",", ":")).encode()
    return Response(status, body, "application/json", headers)


def error_response(
    request: Request, status: int, message: str, headers: tuple[tuple[str, str], ...] = ()
) -> Response:
    """A Spring-Boot-shaped JSON error, like the fleetman services send, naming the pod."""
    payload = {
        "status": status,
        "error": HTTPStatus(status).phrase,
        "message": message,
        "path": request.path,
        "pod": request.pod.name,
    }
    return json_response(status, payload, headers)


class StandinHandler(BaseHTTPRequestHandler):
    """Keep-alive HTTP/1.1 handler: reads bodies fully, one write per response, no access log."""

    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # StreamRequestHandler.setup() sets TCP_NODELAY
    server: StandinServer

    def _dispatch(self) -> None:
        body = self._read_body()
        if body is None:
            return
        request = Request(
            pod=self.server.pod,
            container_port=self.server.container_port,
            method=self.command,
            target=self.path,
            headers=tuple((k.lower(), v) for k, v in self.headers.items()),
            body=body,
        )
        try:
            response = self.server.behaviour.handle(request)
        except Exception as exc:  # a bug in a behaviour must not kill the connection silently
            print(f"stand-in {self.server.pod.name}: behaviour failed: {exc!r}", file=sys.stderr)
            response = error_response(request, 500, f"stand-in behaviour failed: {exc!r}")
        self.send_standin_response(response)

    do_GET = do_HEAD = do_POST = do_PUT = do_PATCH = do_DELETE = do_OPTIONS = _dispatch

    def _read_body(self) -> bytes | None:
        """Consume the request body so the next request on this connection parses cleanly."""
        if "chunked" in self.headers.get("transfer-encoding", "").lower():
            return self._read_chunked()
        length = self.headers.get("content-length")
        if length is None:
            return b""
        try:
            n = int(length)
            if n < 0:
                raise ValueError(length)
        except ValueError:
            self.send_error(400, f"bad content-length {length!r}")
            return None
        return self.rfile.read(n)

    def _read_chunked(self) -> bytes | None:
        parts: list[bytes] = []
        while True:
            line = self.rfile.readline(65537)
            try:
                size = int(line.split(b";", 1)[0].strip(), 16)
            except ValueError:
                self.send_error(400, "bad chunk size")
                return None
            if size == 0:
                while self.rfile.readline(65537) not in (b"\r\n", b"\n", b""):
                    pass  # trailers: read and ignore
                return b"".join(parts)
            parts.append(self.rfile.read(size))
            self.rfile.readline(3)  # the CRLF after each chunk

    def send_standin_response(self, response: Response) -> None:
        """Status line, headers and body in a single write (see the module docstring)."""
        status = response.status
        lines = [
            f"HTTP/1.1 {status} {_reason(status)}",
            f"content-type: {response.content_type}",
            f"content-length: {len(response.body)}",
            f"x-meshlab-pod: {self.server.pod.name}",
        ]
        lines += [f"{k}: {v}" for k, v in response.headers]
        if self.close_connection:
            lines.append("connection: close")
        head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
        self.wfile.write(head if self.command == "HEAD" else head + response.body)

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        """Protocol errors (bad request line, unknown method) get our JSON and headers too."""
        self.close_connection = True
        target = getattr(self, "path", "") or ""
        request = Request(self.server.pod, self.server.container_port, "", target)
        self.send_standin_response(error_response(request, code, message or _reason(code)))

    def log_message(self, format: str, *args: Any) -> None:
        """Silence the per-request access log: stderr is kept for real failures."""


def _reason(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Unknown"


class StandinServer(ThreadingHTTPServer):
    """One listener of one pod on 127.0.0.1:<ephemeral>."""

    daemon_threads = True
    block_on_close = False  # idle keep-alive connections must not hold up close()
    request_queue_size = 128

    def __init__(
        self,
        pod: PodSpec,
        behaviour: Behaviour,
        container_port: int,
        handler_class: type[StandinHandler] = StandinHandler,
    ) -> None:
        self.pod = pod
        self.behaviour = behaviour
        self.container_port = container_port
        super().__init__((HOST, 0), handler_class)

    def server_bind(self) -> None:
        """Skip HTTPServer's getfqdn(): a reverse DNS lookup can cost seconds at start-up."""
        socketserver.TCPServer.server_bind(self)
        self.server_name = "localhost"
        self.server_port = self.server_address[1]

    @property
    def port(self) -> int:
        return int(self.server_address[1])

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Peers hanging up is normal; anything else gets one line on stderr, not a traceback."""
        exc = sys.exc_info()[1]
        if isinstance(exc, ConnectionError | TimeoutError):
            return
        print(f"stand-in {self.pod.name}: error serving {client_address}: {exc!r}", file=sys.stderr)


class Standin:
    """All listeners of one pod, bound at construction so the ports are known before serving."""

    def __init__(
        self,
        pod: PodSpec,
        behaviour: Behaviour,
        handler_class: type[StandinHandler] = StandinHandler,
    ) -> None:
        self.pod = pod
        self.servers: dict[int, StandinServer] = {}
        self._threads: list[threading.Thread] = []
        try:
            for cp in pod.container_ports:
                self.servers[cp] = StandinServer(pod, behaviour, cp, handler_class)
        except BaseException:
            self.close()
            raise

    @property
    def ports(self) -> dict[int, int]:
        """containerPort → bound local port."""
        return {cp: s.port for cp, s in self.servers.items()}

    def start(self) -> None:
        for cp, srv in self.servers.items():
            t = threading.Thread(
                target=srv.serve_forever,
                args=(POLL_INTERVAL,),
                name=f"standin-{self.pod.name}-{cp}",
                daemon=True,
            )
            t.start()
            self._threads.append(t)

    def close(self, graceful: bool = True) -> None:
        """Stop listening. `graceful` waits for the accept loops (in-process use); a process
        about to exit skips that wait, its daemon threads die with it."""
        if graceful and self._threads:
            stoppers = [threading.Thread(target=s.shutdown) for s in self.servers.values()]
            for t in stoppers:
                t.start()
            for t in stoppers:
                t.join()
            for t in self._threads:
                t.join()
        self._threads.clear()
        for s in self.servers.values():
            s.server_close()

    def __enter__(self) -> Standin:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def ready_line(pod: PodSpec, ports: Mapping[int, int]) -> str:
    """The one stdout line the supervisor waits for."""
    return json.dumps(
        {"ready": True, "pod": pod.name, "ports": {str(cp): p for cp, p in ports.items()}}
    )


def _watch_lifeline(fd: int, wake: socket.socket) -> None:
    """EOF on stdin means the supervisor is gone. os.read, not sys.stdin: no buffer lock that
    interpreter shutdown might need while this daemon thread sits in read()."""
    with contextlib.suppress(OSError):
        while os.read(fd, 65536):
            pass
    with contextlib.suppress(OSError):
        wake.send(b"L")


@contextmanager
def _signals_to(wake: socket.socket) -> Iterator[None]:
    """Make SIGTERM/SIGINT/SIGHUP write a byte to `wake` instead of killing or raising.

    The kernel may deliver a signal to any thread; Python then runs its handler only when the
    main thread next runs bytecode, which a blocked wait never does. The wakeup fd is written
    by the C-level handler whichever thread took the signal, so the main thread's recv() on
    the other end of the socketpair always returns.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def ignore(signum: int, frame: FrameType | None) -> None:
        """The wakeup byte does the work; the handler only stops the default action."""

    sigs = [getattr(signal, n) for n in ("SIGTERM", "SIGINT", "SIGHUP") if hasattr(signal, n)]
    previous_fd = signal.set_wakeup_fd(wake.fileno(), warn_on_full_buffer=False)
    previous = {s: signal.signal(s, ignore) for s in sigs}
    try:
        yield
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
        signal.set_wakeup_fd(previous_fd)


def run(pod: PodSpec, behaviour: Behaviour, *, lifeline_fd: int | None, out: TextIO) -> int:
    """Bind every port, print the ready line, serve until a stop signal or EOF on the lifeline."""
    waiter, wake = socket.socketpair()
    wake.setblocking(False)
    with waiter, wake, _signals_to(wake):
        try:
            standin = Standin(pod, behaviour)
        except OSError as exc:
            print(f"stand-in {pod.name}: cannot listen on {HOST}: {exc}", file=sys.stderr)
            return 1
        try:
            standin.start()
            try:
                out.write(ready_line(pod, standin.ports) + "\n")
                out.flush()
            except (BrokenPipeError, ValueError):
                return 1  # nobody is listening for the ready line: nothing to serve
            if lifeline_fd is not None:
                args = (lifeline_fd, wake)
                threading.Thread(target=_watch_lifeline, args=args, daemon=True).start()
            waiter.recv(1)
        finally:
            standin.close(graceful=False)
    return 0
