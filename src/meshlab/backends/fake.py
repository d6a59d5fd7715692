"""A backend with no processes at all: a function decides every outcome.

The test seam for checks, statistics and reports (like httpx's MockTransport): seeded and
instant, so a test can ask "what does the verdict say when the mesh sends 30% to risky?".
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field

from meshlab.backends.base import Backend, Deployed, LabToDeploy, Outcome, PodInfo, Session
from meshlab.mesh.request import ProbeRequest

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


class FakeSession(Session):
    """Holds no state: each request is the responder's fresh draw."""

    def __init__(self, mesh: FakeMesh) -> None:
        self.mesh = mesh

    def send(self, request: ProbeRequest, count: int) -> list[Outcome]:
        self.mesh.sent.extend([request] * count)
        return [self.mesh.responder(request, self.mesh.rng) for _ in range(count)]


@dataclass
class FakeMesh(Deployed):
    responder: Responder
    rng: random.Random
    pods: Sequence[PodInfo] = ()
    sent: list[ProbeRequest] = field(default_factory=list)
    sessions: int = 0  # how many sessions were opened: one per check, at least

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
        pods = [PodInfo(p.name, dict(p.labels), p.image) for p in lab.plan.registry.pods]
        mesh = FakeMesh(self.responder, random.Random(self.seed), pods)
        self.deployed.append(mesh)
        yield mesh
