"""Where a run's requests can go: the pods they can reach, the sidecars they can pass out
through (those of the pods its checks send from, and of the reached pods whose image calls
on, and so on down the chain), and the Services they can reach with no proxy on the way. A
run whose requests all come from its checks gives Envoy only these: the other sidecars'
outbound config (mesh/proxies.py `left_out`), the other pods' inbound side (`unreached`)
and the other Services' kube-proxy listeners are left out, as no request can use them.

A request starts at its origin with its URL's host and port. A proxy sends a host:port where
its plan says: every route of the virtual host Envoy picks for the name (whatever headers,
weights or faults choose among them at run time, each counts), every destination of each,
and the endpoints of those clusters are the pods reached. With no proxy (a pod without a
sidecar), or through ALLOW_ANY's PassthroughCluster, the call goes to the Service the
cluster's DNS names, any of its pods. A reached pod whose image calls other services
(mesh/image_calls.py `callees`) sends each of those calls through its own sidecar, followed
the same way. A gateway reached sends anywhere its routes go.

Where the plan cannot say for sure (a redirect the client may follow, an address, a host
neither a route nor the cluster's DNS knows, a cluster the plan does not hold) every pod
counts as reached: a sidecar is left out only when no request can pass through it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence

from meshlab.mesh.gateways import is_gateway_workload
from meshlab.mesh.image_calls import callees
from meshlab.mesh.matching import choose_virtual_host
from meshlab.mesh.model import PASSTHROUGH_CLUSTER, DirectResponse, Forward, MeshPlan, RoutePlan
from meshlab.mesh.passthrough import cluster_dns
from meshlab.mesh.proxies import ProxyPlan
from meshlab.mesh.registry import PodInstance
from meshlab.mesh.request import ProbeRequest
from meshlab.records import dataclass

__all__ = ["Reach", "reach_of"]

PlanOf = Callable[[PodInstance], MeshPlan | None]  # a pod's sidecar plan; None: no sidecar


class _Anywhere(Exception):
    """A call the plan cannot follow: it may reach any pod."""


@dataclass(frozen=True)
class Reach:
    """Where a run's requests can go: the pods they can reach, those of them (and of the
    origins) that send on through their sidecar, and the Services whose ClusterIP a call
    can dial with no proxy on the way (kube-proxy's part)."""

    reached: frozenset[str]
    senders: frozenset[str]
    direct: frozenset[str]  # Service FQDNs


def reach_of(
    client: MeshPlan,
    gateways: Sequence[ProxyPlan],
    requests: Iterable[ProbeRequest],
    plan_of: PlanOf,
    namespace: str,
) -> Reach | None:
    """Where `requests` can go, and nothing else is sent (the client's plan is `client`, the
    gateways' `gateways`, the lab's namespace `namespace`); None when some call may reach
    any pod."""
    walk = _Walk(client, gateways, plan_of)
    try:
        for request in requests:
            walk.enter(request, namespace)
        walk.follow()
    except _Anywhere:
        return None
    return Reach(frozenset(walk.reached), frozenset(walk.senders), frozenset(walk.dialled))


class _Walk:
    """The calls still to follow, the pods reached, and the pods that send."""

    def __init__(self, client: MeshPlan, gateways: Sequence[ProxyPlan], plan_of: PlanOf):
        self.client = client
        self.gateways = gateways
        self.registry = client.registry
        self.plan_of = plan_of
        self.reached: set[str] = set()
        self.senders: set[str] = set()
        self.dialled: set[str] = set()
        self.pending: list[PodInstance] = []
        self.gateways_followed = False

    def enter(self, request: ProbeRequest, namespace: str) -> None:
        """Where a check's request starts (backends/embedded/entry.py plays the same)."""
        origin = request.origin
        if origin.kind == "browser":
            self.through_gateways()
        elif origin.kind == "no-sidecar":
            self.direct(request.host, namespace)
        elif origin.kind == "workload":
            assert origin.workload is not None
            ns, _, name = origin.workload.rpartition("/")
            pods = [
                p
                for p in self.registry.pods
                if p.owner.name == name and p.namespace == (ns or namespace)
            ]
            if not pods:
                raise _Anywhere  # the check's own error says so; nothing is pruned meanwhile
            for pod in pods:
                self.senders.add(pod.name)
                self.call(self.plan_of(pod), request.host, request.port, pod.namespace)
        else:
            self.call(self.client, request.host, request.port, self.client.client_namespace)

    def follow(self) -> None:
        """Each reached pod's own calls, until no new pod is reached."""
        while self.pending:
            pod = self.pending.pop()
            if is_gateway_workload(pod):
                self.through_gateways()
                continue
            targets = callees(pod.image)
            if not targets:
                continue
            self.senders.add(pod.name)
            plan = self.plan_of(pod)
            for host, port in targets:
                self.call(plan, host, port, pod.namespace)

    def call(self, plan: MeshPlan | None, host: str, port: int, namespace: str) -> None:
        """`host:port` sent through a proxy with `plan` (None: no proxy) from `namespace`."""
        if plan is None:
            self.direct(host, namespace)
            return
        choice = choose_virtual_host(plan, host, port)
        if choice is None:
            tcp = [lst for lst in plan.listeners if lst.protocol == "TCP" and lst.port == port]
            if not tcp:  # the virtual outbound listener: on to the address dialled
                self.direct(host, namespace)
            for listener in tcp:
                self.cluster(plan, listener.tcp_cluster, host, namespace)
            return
        self.routes(plan, choice.vhost.routes, namespace, host)

    def routes(
        self, plan: MeshPlan, routes: Iterable[RoutePlan], namespace: str, host: str | None
    ) -> None:
        """Every destination of every route (`host`: the name called; None: each target's)."""
        for route in routes:
            if isinstance(route.action, DirectResponse):
                continue  # answered by the proxy itself (REGISTRY_ONLY's 502 among them)
            if not isinstance(route.action, Forward):
                raise _Anywhere  # a redirect: the client may follow it anywhere
            for target in route.action.targets:
                self.cluster(plan, target.cluster, host or target.host, namespace)

    def cluster(self, plan: MeshPlan, name: str | None, host: str, namespace: str) -> None:
        if name == PASSTHROUGH_CLUSTER:
            self.direct(host, namespace)
            return
        found = plan.clusters.get(name or "")
        if found is None:
            raise _Anywhere
        for endpoint in found.endpoints:
            self.reach(endpoint.pod)

    def direct(self, host: str, namespace: str) -> None:
        """No proxy on the way: the cluster's DNS names a Service, kube-proxy picks a pod."""
        fqdn = cluster_dns(host, namespace)
        service = self.registry.service_by_fqdn(fqdn) if fqdn else None
        if service is None:
            raise _Anywhere
        self.dialled.add(service.fqdn)
        for endpoints in service.endpoints.values():
            for endpoint in endpoints:
                self.reach(endpoint.pod)

    def through_gateways(self) -> None:
        """Anywhere any gateway's routes go: which one a call meets and with what Host is
        left to run time."""
        if self.gateways_followed:
            return
        self.gateways_followed = True
        for gateway in self.gateways:
            plan = gateway.plan
            for table in plan.route_tables.values():
                for vhost in table:
                    self.routes(plan, vhost.routes, gateway.namespace, None)
            for listener in plan.listeners:
                if listener.tcp_cluster is not None:
                    self.cluster(plan, listener.tcp_cluster, "", gateway.namespace)

    def reach(self, pod: PodInstance) -> None:
        if pod.name not in self.reached:
            self.reached.add(pod.name)
            self.pending.append(pod)
