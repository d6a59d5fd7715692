"""The HTTP side of a stand-in pod: request/response types, the keep-alive server, and one
accept loop for many listeners (`Acceptor`).

Stdlib only: a stand-in host process (`host.py`) serving many pods must be ready in tens of
milliseconds. Envoy reuses upstream connections, so the server speaks
HTTP/1.1 with keep-alive, sets TCP_NODELAY and writes each response in one `send` (a header write
followed by a body write would otherwise meet the peer's delayed ACK and stall ~40 ms per
request).
"""

from __future__ import annotations

import contextlib
import errno
import selectors
import socket
import socketserver
import sys
import threading
import time
from collections.abc import Iterable, Mapping
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from meshlab.backends.embedded.standins.headers import (
    buffered_header_pairs,
    first,
    read_header_pairs,
)
from meshlab.backends.embedded.standins.pods import (
    HOST,
    LISTEN_BACKLOG,
    Behaviour,
    PodSpec,
    Request,
    Response,
    error_response,
)


class StandinHandler(BaseHTTPRequestHandler):
    """Keep-alive HTTP/1.1 handler: reads bodies fully, one write per response, no access log.

    The request's headers are in `header_pairs` (lower-case names, in arrival order), read by
    `parse_request` below rather than by `http.server`'s email-based parser, which cost more
    than half of a stand-in's CPU per request; `headers` is only set on the stdlib's path."""

    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # StreamRequestHandler.setup() sets TCP_NODELAY
    server: StandinServer
    header_pairs: tuple[tuple[str, str], ...] = ()
    raw_requestline: bytes  # set by handle_one_request

    def parse_request(self) -> bool:
        """What `BaseHTTPRequestHandler.parse_request` does for a plain `METHOD target
        HTTP/1.x` request, with the same limits, errors and connection rules; any other
        request line goes to the stdlib's own parser, which answers its errors."""
        line = str(self.raw_requestline, "iso-8859-1").rstrip("\r\n")
        words = line.split()
        if len(words) != 3 or words[2] not in _VERSIONS or words[1].startswith("//"):
            if not super().parse_request():
                return False
            self.header_pairs = tuple((k.lower(), v) for k, v in self.headers.items())
            return True
        self.requestline = line
        self.command, self.path, self.request_version = words
        self.close_connection = words[2] == "HTTP/1.0"
        buffered = buffered_header_pairs(self.rfile)
        pairs = read_header_pairs(self.rfile) if buffered is None else buffered
        if isinstance(pairs, str):
            self.send_error(HTTPStatus.REQUEST_HEADER_FIELDS_TOO_LARGE, pairs)
            return False
        self.header_pairs = pairs
        connection = (first(pairs, "connection") or "").lower()
        if connection == "close":
            self.close_connection = True
        elif connection == "keep-alive":
            self.close_connection = False
        expect = (first(pairs, "expect") or "").lower()
        if expect == "100-continue" and words[2] == "HTTP/1.1":
            return self.handle_expect_100()
        return True

    def _dispatch(self) -> None:
        body = self._read_body()
        if body is None:
            return
        request = Request(
            pod=self.server.pod,
            container_port=self.server.container_port,
            method=self.command,
            target=self.path,
            headers=self.header_pairs,
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
        if "chunked" in (first(self.header_pairs, "transfer-encoding") or "").lower():
            return self._read_chunked()
        length = first(self.header_pairs, "content-length")
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
    return _REASONS.get(status, "Unknown")


_REASONS = {int(s): s.phrase for s in HTTPStatus}


_VERSIONS = ("HTTP/1.1", "HTTP/1.0")


class StandinServer(ThreadingHTTPServer):
    """One listener of one pod on 127.0.0.1:<ephemeral>."""

    daemon_threads = True
    block_on_close = False  # idle keep-alive connections must not hold up close()
    request_queue_size = LISTEN_BACKLOG

    def __init__(
        self,
        pod: PodSpec,
        behaviour: Behaviour,
        container_port: int,
        handler_class: type[StandinHandler] = StandinHandler,
        fd: int | None = None,
    ) -> None:
        self.pod = pod
        self.behaviour = behaviour
        self.container_port = container_port
        if fd is None:
            super().__init__((HOST, 0), handler_class)
            return
        # a socket the supervisor bound and listens on (hosts.py): it knew the port before
        # this process started, so Envoy could start meanwhile
        super().__init__((HOST, 0), handler_class, bind_and_activate=False)
        self.socket.close()
        self.socket = socket.socket(fileno=fd)
        self.server_address = self.socket.getsockname()
        self.server_name = "localhost"
        self.server_port = self.server_address[1]

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


class Acceptor:
    """One thread accepting connections for many listeners (every pod of a host).

    A thread per listener (`serve_forever`) would be hundreds of threads each waking four
    times a second in a 200-pod lab; one selector costs nothing while idle. Each accepted
    connection still gets its own handler thread (`ThreadingMixIn`), so a slow or hung
    behaviour holds up only its own connection.
    """

    def __init__(self, servers: Iterable[StandinServer], name: str = "standin-accept") -> None:
        self._selector = selectors.DefaultSelector()
        self._waiter, self._wake = socket.socketpair()
        self._selector.register(self._waiter, selectors.EVENT_READ, None)
        for server in servers:
            # non-blocking: a connection gone between select() and accept() must not stall
            # every pod of the host (`_accept_one` makes each accepted socket blocking)
            server.socket.setblocking(False)
            self._selector.register(server.socket, selectors.EVENT_READ, server)
        self._thread = threading.Thread(target=self._loop, name=name, daemon=True)
        self._stopping = False

    def start(self) -> None:
        self._thread.start()

    def _loop(self) -> None:
        while not self._stopping:
            for key, _ in self._selector.select():
                server = key.data
                if server is None:
                    return  # woken by close()
                _accept_one(server)

    def close(self, wait: bool = True) -> None:
        """Stop accepting; `wait` joins the loop (in-process use) before closing the selector."""
        self._stopping = True
        with contextlib.suppress(OSError):
            self._wake.send(b"x")
        if wait and self._thread.is_alive():
            self._thread.join()
        if wait or not self._thread.is_alive():
            self._selector.close()
            self._waiter.close()
            self._wake.close()


def _accept_one(server: StandinServer) -> None:
    """What `socketserver`'s `_handle_request_noblock` does, through its public hooks."""
    try:
        request, address = server.get_request()
    except OSError as exc:  # the peer gave up before accept(), or out of descriptors
        if exc.errno in (errno.EMFILE, errno.ENFILE):
            time.sleep(0.01)  # the listener stays readable: do not spin until one frees up
        return
    try:
        request.setblocking(True)  # BSDs pass the listener's O_NONBLOCK on to it
        server.process_request(request, address)  # a handler thread (ThreadingMixIn)
    except Exception:
        server.handle_error(request, address)
        server.shutdown_request(request)


class Standin:
    """All listeners of one pod, bound at construction so the ports are known before serving."""

    def __init__(
        self,
        pod: PodSpec,
        behaviour: Behaviour,
        handler_class: type[StandinHandler] = StandinHandler,
        fds: Mapping[int, int] | None = None,
    ) -> None:
        """`fds`: containerPort → an inherited listening socket to serve on instead of
        binding a new one."""
        self.pod = pod
        self.servers: dict[int, StandinServer] = {}
        self._acceptor: Acceptor | None = None
        given = fds or {}
        try:
            for cp in pod.container_ports:
                fd = given.get(cp)
                self.servers[cp] = StandinServer(pod, behaviour, cp, handler_class, fd)
        except BaseException:
            self.close()
            raise

    @property
    def ports(self) -> dict[int, int]:
        """containerPort → bound local port."""
        return {cp: s.port for cp, s in self.servers.items()}

    def start(self) -> None:
        """Serve in the background (one accept thread for all of this pod's listeners)."""
        self._acceptor = Acceptor(self.servers.values(), f"standin-{self.pod.name}")
        self._acceptor.start()

    def close(self, graceful: bool = True) -> None:
        """Stop listening. `graceful` waits for the accept loop (in-process use); a process
        about to exit skips that wait, its daemon threads die with it."""
        if self._acceptor is not None:
            self._acceptor.close(wait=graceful)
            self._acceptor = None
        for s in self.servers.values():
            s.server_close()

    def __enter__(self) -> Standin:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
