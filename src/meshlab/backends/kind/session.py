"""A client in the probe pod (`Session` on kind): its own cookie jar, its own read-ahead.

What the checks need from a client, and how a session gives it on a real cluster:

- cookies (`kind: sticky` with a cookie `ttl`: Envoy sets the hash cookie on the first
  answer and the client must send it back). The session keeps a jar; each batch gets it,
  keeps it the way a browser would (podscript.py `jar`) and hands back what it ends with.
- requests sent when they are asked for (`kind: ejection` paces its requests and pauses
  after a 5xx so Envoy can eject). A session sends exactly the requests it is asked for,
  one exec each call, except in the two cases below; a lone session asking for one request
  at a time never reads ahead.
- throughput (`kind: split` asks for hundreds). On a repeat of the request it sent last, a
  session asked for more than one reads ahead: one exec sends as many as the session has
  already handed out for that request (so the batches double, and at most half of what is
  sent is surplus), up to about two seconds' worth, and the surplus is kept for the
  session's next call (the draws are independent, and the outcomes are handed out in the
  order they were sent). A user of `kind: sticky` (1 request, then 2) reads nothing ahead.
- concurrency (`kind: overflow`: N clients, each its own session on its own thread). While
  other sessions are sending at the same moment, a session reads ahead too, so each client
  is one process in the probe pod sending back to back on its own connection, all at once:
  requests overlap inside the sidecar as they do from N real clients. Their batches start at
  one shared instant (probe.py `_together_start`), so the first requests, the ones handed
  out, overlap too. One exec per request would not overlap: the API round trip of an exec is
  far longer than a request.

Whatever a session sent and never handed out is counted in `requests_sent` and dropped when
it switches to another request or closes.
"""

from __future__ import annotations

import json
from collections import deque
from collections.abc import Mapping, Sequence
from contextlib import AbstractContextManager
from typing import Any, Protocol

from meshlab.backends.base import Outcome, Session
from meshlab.errors import BackendError
from meshlab.mesh.request import ProbeRequest


class Mesh(Protocol):
    """What a session needs of the deployed mesh (probe.py's KindMesh)."""

    def sending(self) -> AbstractContextManager[bool]: ...

    def batch_size(self, needed: int) -> int: ...

    def batch(
        self, request: ProbeRequest, count: int, jar: Mapping[str, str], together: bool = False
    ) -> tuple[list[Outcome], dict[str, str]]: ...

    def served(self, count: int) -> None: ...


RequestKey = tuple[object, str, str, tuple[tuple[str, str], ...]]


def request_key(request: ProbeRequest) -> RequestKey:
    return (request.origin, request.method, request.url, tuple(sorted(request.headers.items())))


class KindSession(Session):
    """One client: a cookie jar carried from batch to batch, and what it read ahead."""

    def __init__(self, mesh: Mesh) -> None:
        self.mesh = mesh
        self.jar: dict[str, str] = {}
        self.batches = 0  # the execs this session ran (for tests and reports)
        self._last: RequestKey | None = None
        self._handed = 0  # outcomes handed out for the request it sent last
        self._buffer: deque[Outcome] = deque()

    def send(self, request: ProbeRequest, count: int) -> list[Outcome]:
        if count <= 0:
            return []
        key = request_key(request)
        with self.mesh.sending() as others:
            repeat = key == self._last
            if not repeat:
                self._buffer.clear()  # sent with another request (and maybe other cookies)
                self._last, self._handed = key, 0
            while len(self._buffer) < count:
                needed = count - len(self._buffer)
                size = needed
                if others:
                    size = self.mesh.batch_size(needed)
                elif repeat and count > 1:  # never more ahead than already handed out
                    size = min(self.mesh.batch_size(needed), max(needed, self._handed))
                outcomes, self.jar = self.mesh.batch(request, size, self.jar, others)
                self.batches += 1
                self._buffer.extend(outcomes)
            self.mesh.served(count)
            self._handed += count
            return [self._buffer.popleft() for _ in range(count)]

    def close(self) -> None:
        self._buffer.clear()


def batch_jar(lines: Sequence[Mapping[str, Any]], sent: Mapping[str, str] | None) -> dict[str, str]:
    """The cookies the client holds after a batch: the script's last line says (it prints
    its jar there when it was given one); else what it was sent with."""
    last = lines[-1].get("jar") if lines else None
    if isinstance(last, dict):
        return {str(k): str(v) for k, v in last.items()}
    return dict(sent or {})


def parse_batch(stdout: str, prefix: str, count: int) -> list[dict[str, Any]]:
    lines = []
    for raw in stdout.splitlines():
        if not raw.strip():
            continue
        try:
            line = json.loads(raw)
        except ValueError:
            raise BackendError(
                f"the probe printed a line that is not JSON: {raw[:200]!r}"
            ) from None
        if not isinstance(line, dict) or not str(line.get("rid", "")).startswith(prefix):
            raise BackendError(f"the probe printed an unexpected line: {raw[:200]!r}")
        lines.append(line)
    if len(lines) != count:
        raise BackendError(f"the probe reported {len(lines)} of {count} requests")
    return lines
