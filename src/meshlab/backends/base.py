"""The backend contract: "apply this planned lab, give me fresh clients that send requests
and say which pod served them, tear down". Labs, checks and reports only see this module,
and everything a backend may offer is declared here (nothing is looked up with getattr)."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import field, replace
from functools import cached_property
from types import TracebackType
from typing import Self

from meshlab.load.manifests import Resource
from meshlab.mesh.plan import MeshPlan, Note
from meshlab.mesh.proxies import (
    MeshProxies,
    SidecarPlans,
    build_proxies,
    gateway_proxies,
    senders_for,
)
from meshlab.mesh.reach import reach_of
from meshlab.mesh.registry import PodInstance
from meshlab.mesh.request import ProbeRequest
from meshlab.records import dataclass

NO_RESPONSE = "no response"


@dataclass(frozen=True)
class Hop:
    """One call in the chain behind a request (caller -> service -> pod), so a check can
    bucket by any hop and a failure is reported where it happened. `Outcome.hops` lists them
    in call order (depth first): depth 1 is what the request's origin called."""

    service: str  # the destination Service's FQDN when known, else the host as called
    pod: str | None = None  # the pod that answered (None: no pod did, e.g. 503 UH or a fault)
    labels: Mapping[str, str] = field(default_factory=dict)
    status: int | None = None
    response_flags: str = "-"
    caller: str | None = None  # the calling pod's name; None for the request's origin
    depth: int = 1
    path: str = ""  # the request path of this call, as sent


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
    headers: Mapping[str, str] = field(default_factory=dict)  # response headers, names lower-case
    latency: float | None = None  # seconds, measured by the client around the request
    hops: tuple[Hop, ...] = ()  # the calls behind this one; empty until a backend traces them

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
    """A pod of the deployed mesh as its backend reports it: name, labels, image, and one line on it
    (the stand-in answering for the image; on kind, the pod's phase and IP)."""

    name: str
    labels: Mapping[str, str]
    image: str
    detail: str = ""


@dataclass(frozen=True)
class AccessPoint:
    """How a person reaches a running mesh by hand (`meshlab up`): what it is, and the URL or
    command that gets there."""

    what: str
    how: str


@dataclass(frozen=True)
class LabToDeploy:
    """A lab as the pipeline prepared it: backends deploy this plan, they never re-plan."""

    name: str  # the lab's name (its folder), for namespaces and labels
    namespace: str  # the namespace the lab's objects are written for
    resources: Sequence[Resource]
    plan: MeshPlan
    # every request the run sends, as its checks' `request:` write them (host, port and
    # origin are what count); None: anything, from anywhere (a lab's own tests, `meshlab up`),
    # so every sidecar is there
    requests: tuple[ProbeRequest, ...] | None = None

    @cached_property
    def proxies(self) -> MeshProxies:
        """Every proxy's plan (a sidecar per workload, the gateways), built once on first use:
        only a backend that runs the proxies itself needs them. With `requests`, what none
        of them can use is left out (mesh/reach.py): a workload's sidecar they cannot pass
        out through (its pods keep their inbound side), a pod's inbound side they cannot
        enter, a Service's ClusterIP they cannot dial."""
        if self.requests is None:
            return build_proxies(self.resources, self.plan)
        plans = SidecarPlans(self.resources, self.plan.registry)
        gateways = gateway_proxies(self.resources, self.plan.registry)
        reach = reach_of(self.plan, gateways, self.requests, plans, self.namespace)
        if reach is None:  # a call may reach any pod: any that calls on may send
            senders = senders_for([r.origin for r in self.requests], self.namespace)
            return build_proxies(self.resources, self.plan, plans.for_labels, senders, gateways)
        sends = _named_in(reach.senders)
        proxies = build_proxies(self.resources, self.plan, plans.for_labels, sends, gateways)
        unreached = proxies.meshed_pods - reach.reached
        return replace(proxies, unreached=unreached, direct=reach.direct)


def _named_in(names: frozenset[str]) -> Callable[[PodInstance], bool]:
    def sends(pod: PodInstance) -> bool:
        return pod.name in names

    return sends


class Session(ABC):
    """One client's state (connections, cookies): a check, or one simulated user inside a
    check, gets a fresh one, so what one sees (e.g. a hash cookie) never routes another."""

    @abstractmethod
    def send(self, request: ProbeRequest, count: int) -> list[Outcome]:
        """Send `count` requests one after another, as this client."""

    def close(self) -> None:  # noqa: B027 (a no-op unless the session holds connections)
        """Release connections; nothing to do for clients that hold none."""

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()


class Deployed(ABC):
    """A lab applied to a mesh: open client sessions, learn what served the traffic."""

    @property
    @abstractmethod
    def pods(self) -> Sequence[PodInfo]: ...

    @abstractmethod
    def session(self) -> Session:
        """A new client with no state carried over from any earlier session."""

    def send(self, request: ProbeRequest, count: int) -> list[Outcome]:
        """`count` requests from a fresh session: the shorthand for labs' own tests."""
        with self.session() as session:
            return session.send(request, count)

    def diagnostics(self) -> str:
        """The mesh's state now, for a check that just failed ("" when there is nothing)."""
        return ""

    def access_points(self) -> Sequence[AccessPoint]:
        """Where a person can send requests by hand while the mesh runs (none by default)."""
        return ()


class Backend(ABC):
    """Where the traffic flows. One instance serves a whole run (several labs)."""

    name: str

    @abstractmethod
    def describe(self) -> Mapping[str, str]:
        """What runs the traffic (e.g. which Envoy binary and version), for reports."""

    @abstractmethod
    def deploy(self, lab: LabToDeploy) -> AbstractContextManager[Deployed]:
        """Apply the lab; the context's exit tears everything down, even on Ctrl-C."""

    def notes(self, lab: LabToDeploy) -> Sequence[Note]:
        """What of this lab this backend does not simulate, said rather than ignored."""
        return ()

    def report_extras(self, passed: bool) -> Mapping[str, str]:
        """What the backend learnt during a run (and diagnostics when something failed)."""
        return {}

    def close(self) -> None:  # noqa: B027 (a no-op unless the backend holds something)
        """End the run: release what is held between labs (nothing, for most backends)."""
