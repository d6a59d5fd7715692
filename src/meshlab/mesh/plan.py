"""What istiod would send a client sidecar in the lab namespace, as plain data.

`build_plan` is the one place where Istio semantics live (docs/reference/backends.md lists them):
which VirtualService owns a host, how rules become ordered routes, how weights become
weighted clusters, which DestinationRule defines subsets and load balancing. The Envoy
renderer and the expectation code both read the plan, so they cannot disagree. How names
resolve (hosts, wildcards, exportTo, selectors, mesh binding) is meshlab.mesh.names.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace

from meshlab.load import istio
from meshlab.load.manifests import Resource
from meshlab.mesh.clusters import proxy_clusters
from meshlab.mesh.egress_gateway import with_egress_gateway
from meshlab.mesh.external import external_hosts
from meshlab.mesh.meshconfig import mesh_settings
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
from meshlab.mesh.routes import VirtualServiceIndex, route_table
from meshlab.mesh.sidecar_scope import (
    EgressScope,
    SidecarScope,
    catch_all_vhost,
    sidecar_scope,
)
from meshlab.mesh.sidecar_scope import unsimulated as sidecar_unsimulated

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
    *,
    registry: Registry | None = None,
) -> MeshPlan:
    """The plan for a client sidecar in `client_namespace` whose pod carries `client_labels`
    (by default the probe's; a workload's own for `meshlab explain --from`). Every lookup goes
    through an index (hosts, namespaces, labels), so the time grows linearly with the objects.
    `registry`: another plan's of the same resources (every proxy of a lab shares it, as they
    share istiod's service registry), not built again."""
    if registry is None:
        # the install's egress gateway is a Service sidecars may route to (egress_gateway.py)
        registry = with_egress_gateway(build_registry(resources), resources)
    # What the proxy's Sidecar (or istiod's default `*/*` scope) lets it see: Services not
    # exported to its namespace or not imported get no cluster and no vhost.
    scope = sidecar_scope(resources, registry, client_namespace, client_labels)
    visible = Registry(scope.services, registry.pods, scope.externals)
    notes: list[Note] = []
    clusters, rule_for = proxy_clusters(resources, visible, client_namespace, client_labels, notes)
    route_tables: dict[str, list[VirtualHostPlan]] = {}
    listeners: list[ListenerPlan] = []
    indexes: dict[int, VirtualServiceIndex] = {}
    for port, egress, http in _listener_ports(scope):
        if not http:
            listeners += _tcp_listeners(egress, port)
            continue
        if id(egress) not in indexes:
            indexes[id(egress)] = VirtualServiceIndex(egress.virtual_services)
        serving = [  # aliases (externals) only as VirtualService hosts
            s
            for s in [*egress.services, *egress.externals]
            if (p := s.port(port)) is not None and (p.is_http or egress.port == port)
        ]
        table = str(port)
        vhosts = route_table(
            port,
            serving,
            indexes[id(egress)],
            rule_for,
            client_namespace,
            visible,
            notes,
            client_labels,
        )
        vhosts.sort(key=lambda v: v.name)
        vhosts.append(catch_all_vhost(scope.outbound_mode))
        route_tables[table] = vhosts
        listeners.append(ListenerPlan(f"0.0.0.0_{port}", port, "HTTP", route_table=table))
    _note_unsimulated(resources, notes)
    _note_external(resources, notes)
    return MeshPlan(
        client_namespace,
        registry,
        clusters,
        route_tables,
        listeners,
        notes,
        outbound_mode=scope.outbound_mode,
    )


def _listener_ports(scope: SidecarScope) -> list[tuple[int, EgressScope, bool]]:
    """(port, egress listener, routes HTTP) of each outbound listener, HTTP ones in port
    order first. listener.go buildSidecarOutboundListeners: an egress listener with a port
    gets that port (HTTP unless its protocol says otherwise); the catch-all gets its
    Services' ports that no listener with a port took. The route table of a port is built
    from that same listener's imports (sidecar.go GetEgressListenerForRDS)."""
    explicit = {e.port: e for e in scope.egress if e.port is not None}
    http = {p: e for p, e in explicit.items() if e.routes_http}
    tcp = [(p, e, False) for p, e in explicit.items() if not e.routes_http]
    catch_all = next((e for e in scope.egress if e.port is None), None)
    if catch_all is not None:
        for service in catch_all.services:
            for sport in service.ports:
                if sport.number in explicit:
                    continue
                if sport.is_http:
                    http.setdefault(sport.number, catch_all)
                elif sport.protocol != "UDP":
                    tcp.append((sport.number, _only(catch_all, service), False))
    return [*((p, http[p], True) for p in sorted(http)), *tcp]


def _only(egress: EgressScope, service: MeshService) -> EgressScope:
    """The catch-all's TCP listener for one Service port (one listener per Service)."""
    return replace(egress, services=[service], externals=[])


def _tcp_listeners(egress: EgressScope, port: int) -> list[ListenerPlan]:
    return [
        ListenerPlan(
            f"{service.fqdn}_{port}",
            port,
            "TCP",
            tcp_cluster=cluster_name(port, None, service.fqdn),
            tcp_service=service,
        )
        for service in egress.services
        if (sport := service.port(port)) is not None and sport.protocol != "UDP"
    ]


def _note_unsimulated(resources: Sequence[Resource], notes: list[Note]) -> None:
    for r in resources:
        if r.kind in ("WorkloadEntry", "WorkloadGroup"):
            notes.append(
                Note(f"{r.ref}: {r.kind} is not simulated by the embedded backend", r.location)
            )
        if r.kind == "Sidecar":  # its egress and outbound policy are (sidecar_scope.py)
            for part, where in sidecar_unsimulated(r):
                notes.append(
                    Note(f"{r.ref}: {part} is not simulated by the embedded backend", where)
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
            for part in ("tls", "portLevelSettings"):
                # a port's loadBalancer, connectionPool and outlierDetection are simulated
                # (clusters.load_balancer_for, clusters.policy_part)
                if part == "portLevelSettings" and not _port_extras(policy):
                    continue
                if part == "tls" and policy is not None and _istio_tls(policy.tls):
                    continue
                if policy is not None and getattr(policy, part) is not None:
                    notes.append(
                        Note(
                            f"{r.ref}: trafficPolicy.{part} is not simulated by the "
                            "embedded backend yet",
                            r.locate("spec", "trafficPolicy", part),
                        )
                    )


def _note_external(resources: Sequence[Resource], notes: list[Note]) -> None:
    """What of the ServiceEntries is simulated differently (mesh/external.py): addresses
    written in them are answered by loopback stand-ins; the rest is said to be left out."""
    found = external_hosts(resources)
    for r, addresses in found.replaced:
        notes.append(
            Note(
                f"{r.ref}: endpoints {addresses} are answered by loopback stand-ins "
                "(meshlab never sends traffic off this machine)",
                r.locate("spec", "endpoints"),
            )
        )
    for r, what in found.skipped:
        notes.append(Note(f"{r.ref}: {what} is not simulated by the embedded backend", r.location))
    settings = mesh_settings(resources)
    if settings.source is not None and settings.problem is not None:
        notes.append(
            Note(
                f"{settings.source.ref}: {settings.problem}; the mesh keeps "
                f"outboundTrafficPolicy {settings.outbound_mode}",
                settings.location,
            )
        )


def _port_extras(policy: istio.TrafficPolicy | None) -> bool:
    """Whether a portLevelSettings entry sets what is not simulated (a tls of its own that
    is not Istio's mTLS)."""
    return policy is not None and any(
        p.tls and not _istio_tls(p.tls) for p in policy.portLevelSettings or []
    )


def _istio_tls(tls: istio.ClientTLSSettings | None) -> bool:
    """`tls.mode` ISTIO_MUTUAL or DISABLE (or none): Istio's own mTLS, simulated
    (backends/embedded/envoy/mtls.py); SIMPLE and MUTUAL (TLS origination) are not."""
    return tls is None or tls.mode in (None, "ISTIO_MUTUAL", "DISABLE")
