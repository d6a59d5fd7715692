"""What istiod would send a client sidecar in the lab namespace, as plain data.

`build_plan` is the one place where Istio semantics live (docs/reference/backends.md lists them):
which VirtualService owns a host, how rules become ordered routes, how weights become
weighted clusters, which DestinationRule defines subsets and load balancing. The Envoy
renderer and the expectation code both read the plan, so they cannot disagree. How names
resolve (hosts, wildcards, exportTo, selectors, mesh binding) is meshlab.mesh.names.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence

from meshlab.load import istio
from meshlab.load.manifests import Resource
from meshlab.mesh.clusters import DestinationRuleIndex, MergedRule, clusters_for
from meshlab.mesh.model import (
    DEFAULT_RETRY_ON,
    PASSTHROUGH_CLUSTER,
    ClusterPlan,
    DirectResponse,
    FaultPlan,
    Forward,
    HashPolicyPlan,
    HeaderMatchPlan,
    HeaderOpsPlan,
    ListenerPlan,
    MeshPlan,
    Note,
    Redirect,
    RetryPlan,
    RouteMatchPlan,
    RoutePlan,
    StringMatchPlan,
    VirtualHostPlan,
    WeightedTarget,
    cluster_name,
)
from meshlab.mesh.names import CLIENT_LABELS
from meshlab.mesh.registry import MeshService, Registry, build_registry
from meshlab.mesh.routes import (
    VirtualServiceIndex,
    allow_any_vhost,
    mesh_virtual_services,
    route_table,
)

__all__ = [
    "DEFAULT_RETRY_ON",
    "PASSTHROUGH_CLUSTER",
    "ClusterPlan",
    "DirectResponse",
    "FaultPlan",
    "Forward",
    "HashPolicyPlan",
    "HeaderMatchPlan",
    "HeaderOpsPlan",
    "ListenerPlan",
    "MeshPlan",
    "Note",
    "Redirect",
    "RetryPlan",
    "RouteMatchPlan",
    "RoutePlan",
    "StringMatchPlan",
    "VirtualHostPlan",
    "WeightedTarget",
    "build_plan",
    "cluster_name",
]


def build_plan(
    resources: Sequence[Resource],
    client_namespace: str = "default",
    client_labels: Mapping[str, str] = CLIENT_LABELS,
) -> MeshPlan:
    """The plan for a client sidecar in `client_namespace` whose pod carries `client_labels`
    (by default the probe's; a workload's own for `meshlab explain --from`). Every lookup goes
    through an index (hosts, namespaces, labels), so the time grows linearly with the objects."""
    registry = build_registry(resources)
    # The Services the client's sidecar sees (the exportTo annotation): the others get no
    # cluster and no vhost, as in istiod's SidecarScope.
    visible = Registry(
        [s for s in registry.services if s.visible_to(client_namespace)],
        registry.pods,
        [s for s in registry.externals if s.visible_to(client_namespace)],
    )
    notes: list[Note] = []
    rules = DestinationRuleIndex(
        [r for r in resources if r.kind == "DestinationRule"], client_namespace, client_labels
    )
    merged: dict[str, MergedRule | None] = {}

    def rule_for(host: str) -> MergedRule | None:
        if host not in merged:
            service = visible.service_by_fqdn(host)
            merged[host] = None if service is None else rules.rule_for(service)
        return merged[host]

    virtual_services = VirtualServiceIndex(mesh_virtual_services(resources, client_namespace))
    clusters: dict[str, ClusterPlan] = {}
    for service in visible.services:
        for cluster in clusters_for(service, rule_for(service.fqdn), notes):
            clusters[cluster.name] = cluster
    route_tables: dict[str, list[VirtualHostPlan]] = {}
    listeners: list[ListenerPlan] = []
    http_ports = sorted({p.number for s in visible.services for p in s.ports if p.is_http})
    serving: dict[int, list[MeshService]] = defaultdict(list)  # port -> its HTTP Services
    for service in [*visible.services, *visible.externals]:  # aliases only as VS hosts
        for number in dict.fromkeys(p.number for p in service.ports):
            if service.port(number).is_http:  # type: ignore[union-attr]
                serving[number].append(service)
    for port in http_ports:
        table = str(port)
        vhosts = route_table(
            port,
            serving[port],
            virtual_services,
            rule_for,
            client_namespace,
            visible,
            notes,
            client_labels,
        )
        vhosts.sort(key=lambda v: v.name)
        vhosts.append(allow_any_vhost())
        route_tables[table] = vhosts
        listeners.append(ListenerPlan(f"0.0.0.0_{port}", port, "HTTP", route_table=table))
    for service in visible.services:
        for sport in service.ports:
            if not sport.is_http and sport.protocol != "UDP":
                listeners.append(
                    ListenerPlan(
                        f"{service.fqdn}_{sport.number}",
                        sport.number,
                        "TCP",
                        tcp_cluster=cluster_name(sport.number, None, service.fqdn),
                        tcp_service=service,
                    )
                )
    _note_unsimulated(resources, notes)
    return MeshPlan(client_namespace, registry, clusters, route_tables, listeners, notes)


def _note_unsimulated(resources: Sequence[Resource], notes: list[Note]) -> None:
    for r in resources:
        if r.kind in ("ServiceEntry", "Sidecar", "WorkloadEntry", "WorkloadGroup"):
            notes.append(
                Note(f"{r.ref}: {r.kind} is not simulated by the embedded backend", r.location)
            )
        if r.kind == "DestinationRule":
            policy = r.body.spec.trafficPolicy
            lb = policy.loadBalancer if policy else None
            if lb is not None and lb.simple == "PASSTHROUGH":
                notes.append(
                    Note(
                        f"{r.ref}: loadBalancer PASSTHROUGH is not simulated by the embedded "
                        "backend (pods share traffic as with LEAST_REQUEST)",
                        r.locate("spec", "trafficPolicy", "loadBalancer", "simple"),
                    )
                )
            for part in ("connectionPool", "outlierDetection", "tls", "portLevelSettings"):
                # the loadBalancer of a port is simulated (clusters.load_balancer_for)
                if part == "portLevelSettings" and not _port_extras(policy):
                    continue
                if policy is not None and getattr(policy, part) is not None:
                    notes.append(
                        Note(
                            f"{r.ref}: trafficPolicy.{part} is not simulated by the "
                            "embedded backend yet",
                            r.locate("spec", "trafficPolicy", part),
                        )
                    )


def _port_extras(policy: istio.TrafficPolicy | None) -> bool:
    """Whether a portLevelSettings entry sets more than its loadBalancer."""
    return policy is not None and any(
        p.connectionPool or p.outlierDetection or p.tls for p in policy.portLevelSettings or []
    )
