"""A stand-in's request headers, read as `http.server` reads them (through
`http.client.parse_headers` and the email parser) at a fraction of the cost: that parser was
more than half of a stand-in's CPU per request. `tests/unit/test_standin_requests.py` checks
both readers against `http.server`, request by request.
"""

from __future__ import annotations

import io
import re

_MAX_LINE = 65536  # http.client._MAXLINE, which http.server applies to header lines
_MAX_HEADERS = 100  # http.client._MAXHEADERS


def read_header_pairs(rfile: io.BufferedIOBase) -> tuple[tuple[str, str], ...] | str:
    """The header block up to its blank line as (lower-case name, value) pairs, as
    `http.client.parse_headers` and the email parser behind it give them: a folded line
    continues the last value, a line that is not `name: value` ends the headers (the lines
    after it are read, not kept). Over http.client's limits: the error message instead."""
    pairs: list[tuple[str, str]] = []
    count = 0
    taking = True
    while True:
        raw = rfile.readline(_MAX_LINE + 1)
        if len(raw) > _MAX_LINE:
            return "Line too long"
        count += 1
        if count > _MAX_HEADERS:
            return "Too many headers"
        if raw in (b"\r\n", b"\n", b""):
            return tuple(pairs)
        if not taking:
            continue
        # email's parser also ends a line at a lone CR
        for line in str(raw, "iso-8859-1").rstrip("\r\n").split("\r"):
            if line[:1] in (" ", "\t") and pairs:
                name, value = pairs[-1]
                pairs[-1] = (name, f"{value}\r\n{line}")
                continue
            name, colon, value = line.partition(":")
            if not colon or " " in name or not (name.isascii() and name.isprintable()):
                taking = False
                break
            if name:  # a line without a name is dropped, as email drops it
                pairs.append((name.lower(), value.lstrip(" \t")))


# a header block of plain `name: value` CRLF lines, as email's parser reads them (a name of
# printable ASCII but space and colon; the value after leading blanks, to the line's end)
_PLAIN_BLOCK = re.compile(r"(?:[!-9;-~]+:[ \t]*[^\r\n]*\r\n)*\r\n")
_PLAIN_LINE = re.compile(r"([!-9;-~]+):[ \t]*([^\r\n]*)\r\n")


def buffered_header_pairs(rfile: io.BufferedIOBase) -> tuple[tuple[str, str], ...] | None:
    """`read_header_pairs` in two regex passes when the whole header block is already in
    the read buffer (as Envoy's requests are) and every line is a plain one; else None
    (nothing read), for the line-by-line reader."""
    peek = getattr(rfile, "peek", None)
    if peek is None:
        return None
    data: bytes = peek(_MAX_LINE)
    end = 2 if data.startswith(b"\r\n") else data.find(b"\r\n\r\n") + 4
    if end < 4 and end != 2:
        return None
    text = str(data[:end], "iso-8859-1")
    if _PLAIN_BLOCK.fullmatch(text) is None or text.count("\n") > _MAX_HEADERS:
        return None
    rfile.read(end)
    return tuple([(name.lower(), value) for name, value in _PLAIN_LINE.findall(text)])


def first(pairs: tuple[tuple[str, str], ...], name: str) -> str | None:
    for key, value in pairs:
        if key == name:
            return value
    return None
