"""The stand-in server's own request parsing (standins/server.py `parse_request`) against
`http.server`'s, request by request: same method, target, version, headers (lower-case
names, in order), connection rule, or the same error status."""

from __future__ import annotations

import io
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import unquote, urlsplit

import pytest

from meshlab.backends.embedded.standins import PodSpec, behaviour_for
from meshlab.backends.embedded.standins.server import Request, Response, StandinHandler

POD = PodSpec("pod-a", "default", "nginx:1", {}, (8080,))
HEAD = b"GET /driver/City%20Truck HTTP/1.1\r\n"
CORPUS: dict[str, bytes] = {
    "envoy": HEAD
    + b"host: fleetman-staff-service:8080\r\nx-forwarded-proto: http\r\n"
    + b"x-request-id: 1b2c\r\nx-envoy-attempt-count: 1\r\nx-b3-sampled: 0\r\n\r\n",
    "repeats and case": HEAD + b"X-A: 1\r\nx-a: 2\r\nCookie: k=v\r\n\r\n",
    "http/1.0": b"GET / HTTP/1.0\r\nhost: h\r\n\r\n",
    "http/1.0 keep-alive": b"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n",
    "close": HEAD + b"Connection: close\r\n\r\n",
    "close twice, first wins": HEAD + b"connection: keep-alive\r\nconnection: close\r\n\r\n",
    "spaces kept at the end": HEAD + b"x-a:   padded  \r\nx-b:\tq\r\n\r\n",
    "bare LF": b"GET / HTTP/1.1\nhost: h\nx-a: 1\n\n",
    "folded": HEAD + b"x-long: one\r\n  two\r\n\tthree\r\nx-b: 2\r\n\r\n",
    "not a header line": HEAD + b"x-a: 1\r\nnot a header\r\nx-b: 2\r\n\r\n",
    "space in a name": HEAD + b"x a: 1\r\nx-b: 2\r\n\r\n",
    "empty value": HEAD + b"x-empty:\r\n\r\n",
    "latin-1": HEAD + b"x-name: caf\xe9\r\n\r\n",
    "99 headers": HEAD + b"".join(b"x-%d: v\r\n" % i for i in range(99)) + b"\r\n",
    "100 headers": HEAD + b"".join(b"x-%d: v\r\n" % i for i in range(100)) + b"\r\n",
    "line too long": HEAD + b"x: " + b"v" * 65536 + b"\r\n\r\n",
    "no blank line": HEAD + b"x-a: 1\r\n",
    "unknown method": b"BREW /pot HTTP/1.1\r\nhost: x\r\n\r\n",
    "double slash": b"GET //evil.example/x HTTP/1.1\r\nhost: x\r\n\r\n",
    "http/0.9": b"GET /\r\n",
    "bad version": b"GET / HTTP/1.x\r\n\r\n",
    "http/2": b"GET / HTTP/2.0\r\n\r\n",
    "garbage": b"garbage\r\n\r\n",
    "too many words": b"GET / x HTTP/1.1\r\n\r\n",
    "no headers": b"GET / HTTP/1.1\r\n\r\nGET /next HTTP/1.1\r\n\r\n",
    "a second request behind": HEAD + b"x-a: 1\r\n\r\nGET /next HTTP/1.1\r\nx-b: 2\r\n\r\n",
    "a body behind": b"POST / HTTP/1.1\r\ncontent-length: 4\r\n\r\nbody",
    "a lone CR in a value": HEAD + b"x-a: 1\r2\r\n\r\n",
    "an empty name": HEAD + b": v\r\nx-a: 1\r\n\r\n",
}


class _Server:
    pod = POD
    container_port = 8080
    behaviour = behaviour_for(POD.image)


class _Stdlib(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    error: int | None = None

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        self.error = int(code)


def _handler(cls: type[Any], data: bytes, buffered: bool = True) -> Any:
    """A handler with no socket, for the parsing alone; `buffered`: a socket's reader (the
    whole header block in its buffer), else one without `peek` (read line by line)."""
    handler = cls.__new__(cls)
    line, _, rest = data.partition(b"\n")
    handler.raw_requestline = line + b"\n"
    handler.rfile = io.BufferedReader(io.BytesIO(rest)) if buffered else io.BytesIO(rest)
    handler.wfile = io.BytesIO()
    handler.server = _Server()
    handler.request_version = handler.default_request_version
    handler.command = None
    return handler


def _parsed(handler: Any, ok: bool, pairs: Any) -> Any:
    if not ok:
        return "error"
    return (
        handler.command,
        handler.path,
        handler.request_version,
        handler.close_connection,
        pairs,
        handler.rfile.read(),
    )


def _by_stdlib(data: bytes) -> Any:
    handler = _handler(_Stdlib, data)
    ok = handler.parse_request()
    pairs = tuple((k.lower(), v) for k, v in handler.headers.items()) if ok else None
    return _parsed(handler, ok, pairs), handler.error


def _by_standin(data: bytes, buffered: bool) -> Any:
    handler = _handler(StandinHandler, data, buffered)
    ok = handler.parse_request()
    error = None
    if not ok:
        status_line = handler.wfile.getvalue().split(b"\r\n", 1)[0]
        error = int(status_line.split()[1]) if status_line else None
    return _parsed(handler, ok, handler.header_pairs if ok else None), error


@pytest.mark.parametrize("name", sorted(CORPUS))
@pytest.mark.parametrize("buffered", [True, False], ids=["block", "lines"])
def test_parses_as_http_server_does(name: str, buffered: bool) -> None:
    assert _by_standin(CORPUS[name], buffered) == _by_stdlib(CORPUS[name])


def test_the_fast_path_does_not_use_the_email_parser(monkeypatch: pytest.MonkeyPatch) -> None:
    """The point of the own parser: a plain request never reaches http.client's."""
    import http.client

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("http.client.parse_headers called")

    monkeypatch.setattr(http.client, "parse_headers", refuse)
    for buffered in (True, False):
        handler = _handler(StandinHandler, CORPUS["envoy"], buffered)
        assert handler.parse_request()
        assert dict(handler.header_pairs)["x-request-id"] == "1b2c"


@pytest.mark.parametrize(
    "target",
    [
        "/driver/City%20Truck",
        "/",
        "/a/b/",
        "/a?b=c",
        "/a#frag",
        "//evil.example/x",
        "http://host:8080/p?q",
        "*",
        "",
        "\x01/a",
        "/a;params",
        "/caf%C3%A9/x%2Fy",
    ],
)
def test_the_path_is_what_urlsplit_gives(target: str) -> None:
    request = Request(POD, 8080, "GET", target)
    assert request.path == urlsplit(target).path
    assert request.segments == tuple(unquote(s) for s in urlsplit(target).path.split("/") if s)


@pytest.mark.parametrize("status", [200, 404, 418, 503, 599, 299])
def test_the_status_line_reason_is_the_stdlib_phrase(status: int) -> None:
    try:
        expected = HTTPStatus(status).phrase
    except ValueError:
        expected = "Unknown"
    handler = _handler(StandinHandler, CORPUS["envoy"])
    handler.parse_request()
    handler.send_standin_response(Response(status, b"{}"))
    assert handler.wfile.getvalue().split(b"\r\n", 1)[0] == f"HTTP/1.1 {status} {expected}".encode()
