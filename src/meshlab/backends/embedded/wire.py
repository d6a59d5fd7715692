"""HTTP/1.1 on a raw socket for the probe: one request written in one `sendall`, one response
read back (status, headers, body) with as few Python calls as the framing allows.

Why not `http.client` (used before): it parses every response's headers with the `email`
package: reading one of Envoy's responses costs it 7-20 times the CPU this code takes.
Why not a parser library (httptools, h11): the probe only reads our own Envoy or stand-ins
on loopback, whose responses carry a content-length or a chunked body, so the framing below
is short; it follows `http.client` wherever a response is odd (bare LF line ends, folded
lines, a missing or unreadable content-length: read to EOF, the 100-header and 64 KiB-line
limits, the exceptions it raises), and tests/unit/test_wire.py checks it against
`http.client` response by response.
"""

from __future__ import annotations

import http.client
import re
import socket
from collections.abc import Mapping

MAX_LINE = 65536  # http.client._MAXLINE
MAX_HEADERS = 100  # http.client._MAXHEADERS
_RECV = 65536
_HEAD_END = re.compile(rb"\r?\n\r?\n")
_NO_BODY = frozenset({204, 304})
# a header block of plain `name: value` CRLF lines (most responses): read in two regex passes
_PLAIN_BLOCK = re.compile(r"(?:[!-9;-~]+:[ \t]*[^\r\n]*\r\n)*\r\n")
_PLAIN_LINE = re.compile(r"([!-9;-~]+):[ \t]*([^\r\n]*)\r\n")


def encode_request(method: str, path: str, headers: Mapping[str, str], port: int) -> bytes:
    """The request's head, as `http.client` writes a bodiless request: Host and
    `Accept-Encoding: identity` unless given, `Content-Length: 0` for the methods that
    expect a body, then the headers in order."""
    names = {name.lower() for name in headers}
    lines = [f"{method} {path} HTTP/1.1"]
    if "host" not in names:
        lines.append(f"Host: 127.0.0.1:{port}")
    if "accept-encoding" not in names:
        lines.append("Accept-Encoding: identity")
    if "content-length" not in names and method.upper() in ("PATCH", "POST", "PUT"):
        lines.append("Content-Length: 0")
    lines += [f"{name}: {value}" for name, value in headers.items()]
    text = "\r\n".join(lines)
    breaks = len(lines) - 1
    if text.count("\n") != breaks or text.count("\r") != breaks:  # as http.client refuses
        raise ValueError(f"a line break inside the request head: {text!r}")
    return (text + "\r\n\r\n").encode("latin-1")


class Response:
    """One response: status, headers (lower-case names, repeats joined with ", " as HTTP
    allows, in arrival order), each `set-cookie` line, the body, and whether the connection
    stays open."""

    __slots__ = ("body", "headers", "keep_alive", "set_cookies", "status")

    def __init__(
        self,
        status: int,
        headers: dict[str, str],
        set_cookies: list[str],
        body: bytes,
        keep_alive: bool,
    ) -> None:
        self.status = status
        self.headers = headers
        self.set_cookies = set_cookies
        self.body = body
        self.keep_alive = keep_alive


class Reader:
    """Reads responses off one socket; bytes that came after a response wait for the next."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self._buf = b""

    def _more(self) -> bytes:
        chunk = self.sock.recv(_RECV)
        if not chunk:
            raise EOFError
        return chunk

    def read(self, head_only: bool = False) -> Response:
        """The next final response (a `100 Continue` is skipped, as `http.client` does).
        `head_only`: the answer to a HEAD request (no body whatever the headers say)."""
        while True:
            status, version, headers, cookies = self._head()
            if status != 100:
                break
        connection = headers.get("connection", "").lower()
        if version in ("HTTP/1.0", "HTTP/0.9"):  # closed unless kept alive
            keep_alive = "keep-alive" in connection or "keep-alive" in headers
        else:
            keep_alive = "close" not in connection
        if head_only or status in _NO_BODY or status < 200:
            return Response(status, headers, cookies, b"", keep_alive)
        if headers.get("transfer-encoding", "").lower() == "chunked":
            return Response(status, headers, cookies, self._chunked(), keep_alive)
        length = _length(headers.get("content-length"))
        if length is None:  # no framing: the body runs to EOF
            return Response(status, headers, cookies, self._to_eof(), False)
        return Response(status, headers, cookies, self._exactly(length), keep_alive)

    def _head(self) -> tuple[int, str, dict[str, str], list[str]]:
        buf = self._buf
        while (found := _HEAD_END.search(buf)) is None:
            if len(buf) > MAX_LINE * (MAX_HEADERS + 1):
                raise http.client.LineTooLong("header line")
            try:
                buf += self._more()
            except EOFError:
                if not buf:
                    raise http.client.RemoteDisconnected(
                        "Remote end closed connection without response"
                    ) from None
                break  # EOF ends the head, as in http.client: parse what came
        start, end = (found.start(), found.end()) if found else (len(buf), len(buf))
        self._buf = buf[end:]
        text = buf[:start].decode("latin-1")
        line_end = text.find("\n")
        status, version = _status_line(text if line_end < 0 else text[:line_end])
        block = "\r\n" if line_end < 0 else text[line_end + 1 :] + "\r\n\r\n"
        if (
            len(block) < MAX_LINE
            and block.count("\n") <= MAX_HEADERS
            and _PLAIN_BLOCK.fullmatch(block) is not None
        ):
            pairs = _PLAIN_LINE.findall(block)
            headers = {name.lower(): value for name, value in pairs}
            if len(headers) == len(pairs):  # no name twice: nothing to join
                cookie = headers.get("set-cookie")
                return status, version, headers, [cookie] if cookie is not None else []
        headers, cookies = _header_lines(text.split("\n")[1:])
        return status, version, headers, cookies

    def _exactly(self, n: int) -> bytes:
        buf = self._buf
        while len(buf) < n:
            try:
                buf += self._more()
            except EOFError:
                self._buf = b""
                raise http.client.IncompleteRead(buf, n - len(buf)) from None
        self._buf = buf[n:]
        return buf[:n]

    def _line(self) -> bytes:
        buf = self._buf
        while (end := buf.find(b"\n")) < 0:
            if len(buf) > MAX_LINE:
                raise http.client.LineTooLong("chunk size")
            try:
                buf += self._more()
            except EOFError:
                self._buf = b""
                raise http.client.IncompleteRead(buf) from None
        self._buf = buf[end + 1 :]
        return buf[: end + 1]

    def _chunked(self) -> bytes:
        parts: list[bytes] = []
        while True:
            line = self._line()
            try:
                size = int(line.split(b";", 1)[0], 16)
            except ValueError:
                raise http.client.IncompleteRead(b"".join(parts)) from None
            if size == 0:
                while self._line() not in (b"\r\n", b"\n"):
                    pass  # trailers: read and dropped, as http.client does
                return b"".join(parts)
            parts.append(self._exactly(size))
            self._line()  # the CRLF closing the chunk

    def _to_eof(self) -> bytes:
        parts = [self._buf]
        self._buf = b""
        while chunk := self.sock.recv(_RECV):
            parts.append(chunk)
        return b"".join(parts)


def _header_lines(lines: list[str]) -> tuple[dict[str, str], list[str]]:
    """Header lines one by one, as http.client and its email parser read them: the limits,
    folded lines, a lone CR ending a line, a nameless line dropped, a line that is not a
    header ending the headers."""
    headers: dict[str, str] = {}
    cookies: list[str] = []
    if len(lines) >= MAX_HEADERS:  # the blank line counts too, as in http.client
        raise http.client.HTTPException(f"got more than {MAX_HEADERS} headers")
    name = ""
    for raw in lines:
        if len(raw) >= MAX_LINE:
            raise http.client.LineTooLong("header line")
        for line in raw.rstrip("\r").split("\r"):
            if line[:1] in (" ", "\t") and name:  # a folded line: kept as email keeps it
                headers[name] = f"{headers[name]}\r\n{line}"
                continue
            key, colon, value = line.partition(":")
            if not colon or " " in key or not (key.isascii() and key.isprintable()):
                return headers, cookies  # not a header: email stops here, the rest is lost
            if not key:
                continue  # no name: email drops the line
            name = key.lower()
            value = value.lstrip(" \t")
            headers[name] = f"{headers[name]}, {value}" if name in headers else value
            if name == "set-cookie":
                cookies.append(value)
    return headers, cookies


def _status_line(raw: str) -> tuple[int, str]:
    """`HTTP/1.1 200 OK` → (200, "HTTP/1.1"), with http.client's checks and exceptions."""
    line = raw + "\n"
    if len(line) > MAX_LINE:
        raise http.client.LineTooLong("status line")
    words = raw.rstrip("\r").split(None, 2)
    if len(words) < 2 or not words[0].startswith("HTTP/"):
        raise http.client.BadStatusLine(line)
    version = words[0]
    try:
        status = int(words[1])
    except ValueError:
        raise http.client.BadStatusLine(line) from None
    if not 100 <= status <= 999:
        raise http.client.BadStatusLine(line)
    if version not in ("HTTP/1.0", "HTTP/0.9") and not version.startswith("HTTP/1."):
        raise http.client.UnknownProtocol(version)
    return status, version


def _length(value: str | None) -> int | None:
    if value is None:
        return None
    try:
        n = int(value)
    except ValueError:
        return None
    return n if n >= 0 else None
