"""The probe's HTTP/1.1 framing (backends/embedded/wire.py) against `http.client`, response by
response: same status, headers, body, keep-alive, or the same exception; and the request
head it writes is the one `http.client` writes."""

from __future__ import annotations

import contextlib
import http.client
import io
import socket
import threading
from typing import Any

import pytest

from meshlab.backends.embedded.wire import MAX_HEADERS, Reader, encode_request

ENVOY = (
    b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 12\r\n"
    b"x-meshlab-pod: staff-6-abc\r\ndate: Tue, 01 Dec 2026 22:00:00 GMT\r\nserver: envoy\r\n"
    b"x-meshlab-upstream-cluster: outbound|8080|v6|staff.default.svc.cluster.local\r\n"
    b'x-meshlab-response-flags: -\r\n\r\n{"name":"x"}'
)
CORPUS: dict[str, bytes] = {
    "envoy": ENVOY,
    "repeated headers and cookies": (
        b"HTTP/1.1 200 OK\r\nSet-Cookie: a=1; Path=/\r\nX-Mixed-Case: yes\r\n"
        b"set-cookie: b=2\r\nVia: one\r\nvia: two\r\ncontent-length: 2\r\n\r\nok"
    ),
    "chunked with extensions and trailers": (
        b"HTTP/1.1 503 Service Unavailable\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"5;ext=1\r\nhello\r\n1A\r\nabcdefghijklmnopqrstuvwxyz\r\n0\r\nx-trailer: t\r\n\r\n"
    ),
    "connection close": (
        b"HTTP/1.1 404 Not Found\r\nconnection: close\r\ncontent-length: 1\r\n\r\nx"
    ),
    "to eof": b"HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\n\r\nall the rest",
    "bad content-length": b"HTTP/1.1 200 OK\r\ncontent-length: nope\r\n\r\nrest",
    "no reason phrase": b"HTTP/1.1 204\r\ncontent-length: 0\r\n\r\n",
    "no content": b"HTTP/1.1 304 Not Modified\r\netag: x\r\n\r\n",
    "http/1.0": b"HTTP/1.0 200 OK\r\ncontent-length: 3\r\n\r\nabc",
    "http/1.0 kept alive": (
        b"HTTP/1.0 200 OK\r\nConnection: keep-alive\r\ncontent-length: 3\r\n\r\nabc"
    ),
    "100 continue first": (
        b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 201 Created\r\ncontent-length: 2\r\n\r\nhi"
    ),
    "bare LF": b"HTTP/1.1 200 OK\ncontent-length: 2\nx-a:  spaced  \n\nhi",
    "folded line": b"HTTP/1.1 200 OK\r\nx-long: one\r\n  two\r\ncontent-length: 0\r\n\r\n",
    "not a header line": b"HTTP/1.1 200 OK\r\nx-a: 1\r\nnot a header\r\nx-b: 2\r\n\r\nbody",
    "latin-1 value": b"HTTP/1.1 200 OK\r\nx-name: caf\xe9\r\ncontent-length: 0\r\n\r\n",
    "bad status line": b"HTTP/1.1 OK\r\n\r\n",
    "not http": b"SSH-2.0-OpenSSH_9.6\r\n\r\n",
    "unknown protocol": b"HTTP/2.0 200 OK\r\n\r\n",
    "too many headers": b"HTTP/1.1 200 OK\r\n"
    + b"".join(b"x-%d: v\r\n" % i for i in range(MAX_HEADERS))
    + b"\r\n",
    "as many headers as allowed": b"HTTP/1.1 200 OK\r\n"
    + b"".join(b"x-%d: v\r\n" % i for i in range(MAX_HEADERS - 2))
    + b"content-length: 0\r\n\r\n",
    "header line too long": b"HTTP/1.1 200 OK\r\nx: " + b"v" * 65536 + b"\r\n\r\n",
    "body cut short": b"HTTP/1.1 200 OK\r\ncontent-length: 10\r\n\r\nabc",
    "chunk cut short": b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n5\r\nab",
    "nothing": b"",
    "a lone CR in a value": b"HTTP/1.1 200 OK\r\nx-a: 1\r2\r\ncontent-length: 0\r\n\r\n",
    "an empty name": b"HTTP/1.1 200 OK\r\n: v\r\nx-a: 1\r\ncontent-length: 0\r\n\r\n",
    "no headers": b"HTTP/1.1 200 OK\r\n\r\nto the end",
    "folded after a repeat": b"HTTP/1.1 200 OK\r\nv: 1\r\nv: 2\r\n 3\r\ncontent-length: 0\r\n\r\n",
    "cut in the status line": b"HTTP/1.1 20",
    "cut in the headers": b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\nx-a: 1",
}


class _FakeSocket:
    def __init__(self, data: bytes) -> None:
        self._data = data

    def makefile(self, mode: str) -> io.BytesIO:
        return io.BytesIO(self._data)


def _by_http_client(data: bytes, method: str) -> Any:
    response = http.client.HTTPResponse(_FakeSocket(data), method=method)  # type: ignore[arg-type]
    try:
        response.begin()
        body = response.read()
    except (http.client.HTTPException, OSError) as exc:
        return type(exc)
    headers: dict[str, str] = {}
    for name, value in response.getheaders():
        key = name.lower()
        headers[key] = f"{headers[key]}, {value}" if key in headers else value
    cookies = response.msg.get_all("set-cookie") or []
    return response.status, headers, cookies, body, not response.will_close


def _by_wire(data: bytes, method: str) -> Any:
    ours, theirs = socket.socketpair()

    def write() -> None:
        with contextlib.suppress(OSError):  # the reader may give up before reading it all
            theirs.sendall(data)
            theirs.shutdown(socket.SHUT_WR)

    writer = threading.Thread(target=write)
    writer.start()
    try:
        ours.settimeout(5)
        response = Reader(ours).read(head_only=method == "HEAD")
    except (http.client.HTTPException, OSError) as exc:
        return type(exc)
    finally:
        ours.close()
        writer.join()
        theirs.close()
    return (
        response.status,
        response.headers,
        response.set_cookies,
        response.body,
        response.keep_alive,
    )


@pytest.mark.parametrize("name", sorted(CORPUS))
@pytest.mark.parametrize("method", ["GET", "HEAD"])
def test_reads_as_http_client_does(name: str, method: str) -> None:
    data = CORPUS[name]
    assert _by_wire(data, method) == _by_http_client(data, method)


def test_a_keep_alive_connection_carries_responses_back_to_back() -> None:
    """A response that arrives in pieces, and two responses in one segment, each read whole."""
    ours, theirs = socket.socketpair()
    try:
        reader = Reader(ours)
        theirs.sendall(ENVOY[:7])
        threading.Timer(0.05, lambda: theirs.sendall(ENVOY[7:] + ENVOY + ENVOY[:40])).start()
        first, second = reader.read(), reader.read()
        assert (first.status, first.body) == (second.status, second.body) == (200, ENVOY[-12:])
        theirs.sendall(ENVOY[40:])
        assert reader.read().headers == first.headers
    finally:
        ours.close()
        theirs.close()


def _written_by_http_client(method: str, path: str, headers: dict[str, str]) -> bytes:
    sent: list[bytes] = []

    class Capture(http.client.HTTPConnection):
        def send(self, data: Any) -> None:
            sent.append(bytes(data))

    conn = Capture("127.0.0.1", 4321)
    conn.sock = object()  # type: ignore[assignment]  # "connected": no connect() attempted
    conn.request(method, path, headers=headers)
    return b"".join(sent)


@pytest.mark.parametrize(
    ("method", "path", "headers"),
    [
        ("GET", "/driver/City%20Truck", {"host": "staff:8080"}),
        ("GET", "/", {}),
        ("POST", "/a?b=c", {"host": "h", "x-user": "jo", "cookie": "k=v"}),
        ("HEAD", "/", {"Host": "h", "Accept-Encoding": "gzip"}),
        ("PUT", "/", {"host": "h", "content-length": "0"}),
    ],
)
def test_writes_the_request_head_http_client_writes(
    method: str, path: str, headers: dict[str, str]
) -> None:
    assert encode_request(method, path, headers, 4321) == _written_by_http_client(
        method, path, headers
    )


@pytest.mark.parametrize("bad", [{"x": "a\r\nx-injected: 1"}, {"x\n": "a"}])
def test_a_line_break_in_a_header_is_refused(bad: dict[str, str]) -> None:
    with pytest.raises(ValueError, match="line break"):
        encode_request("GET", "/", bad, 80)


def test_a_plain_head_is_read_without_the_line_by_line_reader(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The point of the regex pass: Envoy's usual answer never takes the slow path."""
    from meshlab.backends.embedded import wire

    def refuse(lines: list[str]) -> Any:
        raise AssertionError("line by line")

    monkeypatch.setattr(wire, "_header_lines", refuse)
    assert _by_wire(ENVOY, "GET")[3] == ENVOY[-12:]
