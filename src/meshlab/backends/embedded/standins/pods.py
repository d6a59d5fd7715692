"""What a stand-in pod is and answers: its PodSpec, the Request a behaviour sees, the
Response it returns, and the Behaviour itself.

Apart from the server (`server.py`, `http.server` and `socketserver`) on purpose: the run's
own process needs these to name what each pod plays (`describe`) and to hand pods to a host,
and never serves one itself; it no longer imports the server for them.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import field
from http import HTTPStatus
from typing import Any
from urllib.parse import unquote, urlsplit

from meshlab.records import dataclass

HOST = "127.0.0.1"
LISTEN_BACKLOG = 128  # each pod listener's backlog, in a host or bound by the supervisor


@dataclass(frozen=True)
class PodSpec:
    """What a stand-in needs to know about the pod it plays (no Kubernetes types: stdlib only)."""

    name: str
    namespace: str
    image: str
    labels: Mapping[str, str] = field(default_factory=dict, hash=False)
    container_ports: tuple[int, ...] = ()
    # this pod's egress file (`egress.py`): where its sidecar listens; None = no sidecar
    egress: str | None = None

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


def pod_record(pod: PodSpec) -> dict[str, Any]:
    """One pod as a host's spec lists it (the inverse of host.py's `load_spec`)."""
    return {
        "name": pod.name,
        "namespace": pod.namespace,
        "image": pod.image,
        "labels": dict(pod.labels),
        "ports": list(pod.container_ports),
        "egress": pod.egress,
    }


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
        target = self.target
        if target[:1] == "/" and target[1:2] != "/" and "?" not in target and "#" not in target:
            return target  # what urlsplit gives for a plain path, without its cost per request
        return urlsplit(target).path

    @property
    def segments(self) -> tuple[str, ...]:
        """Decoded, non-empty path segments: `/driver/City%20Truck` → ("driver", "City Truck")."""
        return tuple([unquote(s) for s in self.path.split("/") if s])

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
    body = _COMPACT.encode(payload).encode()
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


# what json.dumps(..., separators=(",", ":")) builds on every call, built once
_COMPACT = json.JSONEncoder(separators=(",", ":"))
