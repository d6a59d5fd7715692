"""A backend with no processes at all: a function decides every outcome.

The test seam for checks, statistics and reports (like httpx's MockTransport): seeded and
instant, so a test can ask "what does the verdict say when the mesh sends 30% to risky?".
It honours a request's origin as a real backend does (a workload that the lab does not
have is refused; `by_origin` answers each origin its own way) and `chain` answers with the
hops behind a request, so hop checks are tested without Envoy.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import field

from meshlab.backends.base import Backend, Deployed, Hop, LabToDeploy, Outcome, PodInfo, Session
from meshlab.errors import BackendError
from meshlab.mesh.request import ProbeRequest
from meshlab.records import dataclass

Responder = Callable[[ProbeRequest, random.Random], Outcome]


def weighted_pods(weights: Mapping[str, float], label: str = "version") -> Responder:
    """Answer from a pod whose `label` is drawn with these relative weights (keys like
    "risky"); a key of the form "HTTP 503" answers that status with no pod."""
    names = list(weights)
    values = [weights[n] for n in names]

    def respond(request: ProbeRequest, rng: random.Random) -> Outcome:
        choice = rng.choices(names, values)[0]
        if choice.startswith("HTTP "):
            return Outcome(status=int(choice.split()[1]), response_flags="UH")
        return Outcome(status=200, pod=f"pod-{choice}", labels={label: choice})

    return respond


def _failure(choice: str) -> tuple[int, str] | None:
    """`HTTP 503` (flag UH) or `HTTP 503 FI` (that flag): a failure drawn instead of a pod."""
    if not choice.startswith("HTTP "):
        return None
    parts = choice.split()
    return int(parts[1]), parts[2] if len(parts) > 2 else "UH"


def chain(
    steps: Sequence[tuple[str, Mapping[str, float]]],
    label: str = "version",
    namespace: str = "default",
) -> Responder:
    """Answer through a chain of calls: each step names the Service called and the relative
    weights of its pods' `label` values (or of failures, `HTTP 503 [FLAG]`), e.g.
    `[("webapp", {"original": 1}), ("fleetman-staff-service", {"safe": 9, "risky": 1})]`.
    A failure ends the chain there and every caller answers its status (flag `-`), as the
    fleetman apps pass a downstream error on. Outcome.pod/labels/status are depth 1's."""

    def respond(request: ProbeRequest, rng: random.Random) -> Outcome:
        hops: list[Hop] = []
        caller: str | None = None
        for depth, (service, weights) in enumerate(steps, start=1):
            choice = rng.choices(list(weights), list(weights.values()))[0]
            host = f"{service}.{namespace}.svc.cluster.local"
            failed = _failure(choice)
            if failed is not None:
                hops.append(Hop(host, None, {}, failed[0], failed[1], caller, depth, "/"))
                break
            pod = f"{service}-{choice}"
            hops.append(Hop(host, pod, {label: choice}, 200, "-", caller, depth, "/"))
            caller = pod
        status = hops[-1].status
        if status is not None and status >= 500:  # passed on up the chain
            hops = [h if h is hops[-1] else _answered(h, status) for h in hops]
        first = hops[0]
        return Outcome(
            status=first.status,
            pod=first.pod,
            labels=dict(first.labels),
            response_flags=first.response_flags,
            hops=tuple(hops),
        )

    return respond


def _answered(hop: Hop, status: int) -> Hop:
    return Hop(hop.service, hop.pod, hop.labels, status, "-", hop.caller, hop.depth, hop.path)


def by_origin(responders: Mapping[str, Responder]) -> Responder:
    """A responder per origin, keyed as the origin prints (`mesh`, `browser`, `no-sidecar`,
    `workload webapp`); an origin without one is the backend failing, not a bucket."""

    def respond(request: ProbeRequest, rng: random.Random) -> Outcome:
        responder = responders.get(str(request.origin))
        if responder is None:
            raise BackendError(f"the fake mesh has no answer for requests {request.origin}")
        return responder(request, rng)

    return respond


class FakeSession(Session):
    """Holds no state: each request is the responder's fresh draw."""

    def __init__(self, mesh: FakeMesh) -> None:
        self.mesh = mesh

    def send(self, request: ProbeRequest, count: int) -> list[Outcome]:
        origin = request.origin
        if origin.kind == "workload" and origin.workload not in self.mesh.workloads:
            raise BackendError(f"no workload {origin.workload} is deployed to send from")
        self.mesh.sent.extend([request] * count)
        return [self.mesh.responder(request, self.mesh.rng) for _ in range(count)]


@dataclass
class FakeMesh(Deployed):
    """A deployed fake mesh: the responder that decides each outcome, its seeded random source, and
    what the tests inspect afterwards (requests sent, sessions opened)."""

    responder: Responder
    rng: random.Random
    pods: Sequence[PodInfo] = ()
    sent: list[ProbeRequest] = field(default_factory=list)
    sessions: int = 0  # how many sessions were opened: one per check, at least
    workloads: frozenset[str] = frozenset()  # names a request may start from (`ns/name` too)

    def session(self) -> FakeSession:
        self.sessions += 1
        return FakeSession(self)


class FakeBackend(Backend):
    name = "fake"

    def __init__(self, responder: Responder, seed: int = 0) -> None:
        self.responder = responder
        self.seed = seed
        self.deployed: list[FakeMesh] = []

    def describe(self) -> Mapping[str, str]:
        return {"backend": self.name}

    @contextmanager
    def deploy(self, lab: LabToDeploy) -> Iterator[FakeMesh]:
        registry = lab.plan.registry
        pods = [PodInfo(p.name, dict(p.labels), p.image) for p in registry.pods]
        workloads = {
            n for p in registry.pods for n in (p.owner.name, f"{p.namespace}/{p.owner.name}")
        }
        mesh = FakeMesh(
            self.responder, random.Random(self.seed), pods, workloads=frozenset(workloads)
        )
        self.deployed.append(mesh)
        yield mesh
