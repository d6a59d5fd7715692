"""A request as a client sends it into the mesh: URL (host and port are what DNS and the
sidecar's listeners see), method and headers. Every stage speaks of requests in these terms."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import field
from typing import Literal
from urllib.parse import urlsplit

from meshlab.records import dataclass

OriginKind = Literal["mesh", "browser", "workload", "no-sidecar"]


@dataclass(frozen=True)
class Origin:
    """Where a request starts, as the course's clients send it: `mesh` (the meshed test
    client in the lab namespace, the default), `browser` (from outside, through the ingress
    gateway: the URL's host and path as typed), `workload` (from a named workload's pod: its
    sidecar, namespace and labels apply), `no-sidecar` (a pod without a sidecar: no client
    proxy, the request reaches a pod of the Service directly)."""

    kind: OriginKind = "mesh"
    workload: str | None = None  # the Deployment or Pod name (`ns/name` allowed), for `workload`

    def __post_init__(self) -> None:
        if (self.kind == "workload") != (self.workload is not None):
            raise ValueError("an origin names a workload exactly when its kind is `workload`")

    def __str__(self) -> str:
        return f"workload {self.workload}" if self.kind == "workload" else self.kind


MESH = Origin()


@dataclass(frozen=True)
class ProbeRequest:
    """One request as a client sends it: by default the meshed test client in the lab
    namespace; `origin` says when it starts elsewhere."""

    url: str
    method: str = "GET"
    headers: Mapping[str, str] = field(default_factory=dict)
    origin: Origin = MESH

    @property
    def host(self) -> str:
        return urlsplit(self.url).hostname or ""

    @property
    def port(self) -> int:
        parts = urlsplit(self.url)
        return parts.port or (443 if parts.scheme == "https" else 80)

    @property
    def path(self) -> str:
        parts = urlsplit(self.url)
        return (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
