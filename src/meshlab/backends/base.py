"""The backend contract: "apply these objects, give me a client that sends a request and tells
me which pod served it, tear down". Labs, statistics and reports only see this module."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import Protocol

from meshlab.load.manifests import Resource
from meshlab.mesh.request import ProbeRequest

NO_RESPONSE = "no response"


@dataclass(frozen=True)
class Outcome:
    """What happened to one request: who answered, with what, and Envoy's response flags."""

    status: int | None
    pod: str | None = None
    labels: Mapping[str, str] = field(default_factory=dict)
    response_flags: str = "-"
    upstream_cluster: str | None = None
    error: str | None = None
    body: str = ""  # the first few KiB of the response body, for labs' own assertions

    @property
    def failed(self) -> bool:
        return self.status is None or self.status >= 500 or self.pod is None

    def bucket(self, by: str) -> str:
        """The pod's `by` label when a pod answered without a 5xx; else the failure itself."""
        if self.status is None:
            return NO_RESPONSE
        if self.pod is None or self.status >= 500:
            return f"HTTP {self.status}"
        return self.labels.get(by, "unknown")


@dataclass(frozen=True)
class PodInfo:
    name: str
    labels: Mapping[str, str]
    image: str
    detail: str = ""


class Deployed(Protocol):
    """A lab applied to a mesh: send traffic, learn what served it."""

    @property
    def pods(self) -> Sequence[PodInfo]: ...

    def send(self, request: ProbeRequest, count: int) -> list[Outcome]:
        """Send `count` requests one after another on a keep-alive connection."""
        ...


class Backend(Protocol):
    name: str

    def describe(self) -> Mapping[str, str]:
        """What ran the traffic (e.g. which Envoy binary and version), for reports."""
        ...

    def deploy(
        self, resources: Sequence[Resource], namespace: str
    ) -> AbstractContextManager[Deployed]:
        """Apply the objects; the context's exit tears everything down, even on Ctrl-C."""
        ...
