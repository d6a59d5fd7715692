"""One request traced through the configuration the client sidecar gets, without sending it:
listener, virtual host (and the domain that matched), the routes that did not match and why,
the route that did, its destinations with their shares and pods, and the policies in force.

It reads the same plan the Envoy config is rendered from, so what it says is what the proxy
will do (`meshlab explain`; like `istioctl x describe` next to Envoy's route table).
"""

from __future__ import annotations

from meshlab.mesh.gateway_plan import gateway_refusal
from meshlab.mesh.matching import VirtualHostChoice, choose_virtual_host, mismatch
from meshlab.mesh.model import (
    PASSTHROUGH_CLUSTER,
    ClusterPlan,
    Forward,
    ListenerPlan,
    MeshPlan,
    RoutePlan,
    WeightedTarget,
)
from meshlab.mesh.registry import PodInstance, Registry
from meshlab.mesh.request import ProbeRequest
from meshlab.records import dataclass


@dataclass(frozen=True)
class SkippedRoute:
    """A route tried before the one that matched, and why it did not match."""

    index: int  # 1-based, as a student counts the `http:` rules
    route: RoutePlan
    reason: str


@dataclass(frozen=True)
class TargetTrace:
    """One destination of the matched route: its share, its cluster and the pods behind it."""

    target: WeightedTarget
    share: float
    cluster: ClusterPlan | None
    problem: str | None  # why this destination cannot answer (503 NC, UH), if it cannot

    @property
    def pods(self) -> list[PodInstance]:
        return [e.pod for e in self.cluster.endpoints] if self.cluster else []


@dataclass(frozen=True)
class RequestTrace:
    """One request followed through the client's plan: listener, virtual host, the routes passed
    over, the route taken and its destinations, or why it goes nowhere (`meshlab explain`)."""

    request: ProbeRequest
    namespace: str  # the client's
    listener: ListenerPlan | None
    choice: VirtualHostChoice | None
    skipped: tuple[SkippedRoute, ...]
    route: RoutePlan | None
    route_index: int | None
    targets: tuple[TargetTrace, ...]
    problem: str | None  # why the request goes nowhere (no listener, no host, no route)
    origin: str | None = None  # the workload it starts from (None: the meshed test client)
    gateway: str | None = None  # the gateway it enters through (a browser's request), ns/name


@dataclass(frozen=True)
class Workload:
    """A client named by `--from`: its namespace and its pods' labels decide which rules its
    sidecar gets (VirtualService `sourceLabels`, DestinationRule `workloadSelector`)."""

    kind: str
    name: str
    namespace: str
    labels: dict[str, str]

    def __str__(self) -> str:
        labels = ", ".join(f"{k}={v}" for k, v in self.labels.items() if k != "pod-template-hash")
        return f"{self.kind} {self.namespace}/{self.name} ({labels})"


def find_workload(registry: Registry, name: str, namespace: str) -> Workload:
    """The Deployment or Pod called `name` (or `ns/name`); ValueError lists what there is."""
    ns, _, short = name.rpartition("/")
    ns = ns or namespace
    for pod in registry.pods:
        if pod.owner.name == short and pod.namespace == ns:
            return Workload(pod.owner.kind, short, ns, dict(pod.labels))
    known = sorted({f"{p.namespace}/{p.owner.name}" for p in registry.pods})
    raise ValueError(
        f"no Deployment or Pod {ns}/{short} in the lab (workloads: {', '.join(known) or 'none'})"
    )


def trace_request(
    plan: MeshPlan, request: ProbeRequest, origin: Workload | None = None
) -> RequestTrace:
    """Trace `request` through `plan`, the plan of the client it starts from (`origin`'s
    sidecar when a workload is named: build the plan for its namespace and labels)."""
    listener = plan.listener_for(request.port)
    choice = choose_virtual_host(plan, request.host, request.port) if listener else None
    if (
        plan.gateway is None
        and choice is not None
        and choice.vhost.service is None
        and choice.domain == "*"
    ):
        choice = None  # a name no Service has: DNS fails in the app, no proxy sees the request
    skipped: list[SkippedRoute] = []
    route, index = None, None
    for position, candidate in enumerate(choice.vhost.routes if choice else [], start=1):
        reason = mismatch(candidate.match, request)
        if reason is None:
            route, index = candidate, position
            break
        skipped.append(SkippedRoute(position, candidate, reason))
    targets = _targets(plan, route) if route else ()
    return RequestTrace(
        request,
        plan.client_namespace,
        listener,
        choice,
        tuple(skipped),
        route,
        index,
        targets,
        _problem(plan, request, listener, choice, route),
        str(origin) if origin else None,
        plan.gateway.proxy if plan.gateway is not None else None,
    )


def _problem(
    plan: MeshPlan,
    request: ProbeRequest,
    listener: ListenerPlan | None,
    choice: VirtualHostChoice | None,
    route: RoutePlan | None,
) -> str | None:
    if plan.gateway is not None and route is None:
        # through a gateway: no DNS of the mesh, the gateway's servers decide
        refusal = gateway_refusal(plan, request.host, request.port)
        if refusal is not None:
            return refusal
    if listener is None:
        return (
            f"no Service in the mesh serves HTTP on port {request.port}: the connection is refused"
        )
    if choice is None:
        return f"no Service is named {request.host!r}: DNS cannot resolve it"
    if route is None:
        return f"no route matches {request.method} {request.path}: Envoy answers 404 (NR)"
    return None


def _targets(plan: MeshPlan, route: RoutePlan) -> tuple[TargetTrace, ...]:
    action = route.action
    if not isinstance(action, Forward):
        return ()
    total = sum(t.weight for t in action.targets) if action.weighted else 1
    abort = route.fault.abort_percent / 100.0 if route.fault and route.fault.abort_status else 0.0
    out = []
    for target in action.targets:
        share = (1.0 - abort) * (target.weight / total if action.weighted else 1.0)
        cluster = plan.clusters.get(target.cluster)
        out.append(TargetTrace(target, share, cluster, _target_problem(target, cluster)))
    return tuple(out)


def _target_problem(target: WeightedTarget, cluster: ClusterPlan | None) -> str | None:
    if target.cluster == PASSTHROUGH_CLUSTER:
        return "not a Service in the mesh: passed through to the original destination"
    if cluster is None:
        what = f'subset "{target.subset}"' if target.subset else f"host {target.host}"
        return f"{what} has no cluster: Envoy answers 503 (NC)"
    if not cluster.endpoints:
        return "selects no pods: Envoy answers 503 (UH)"
    return None
