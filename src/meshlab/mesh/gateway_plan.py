"""What istiod sends a gateway proxy, as a MeshPlan the same renderer turns into Envoy config.

The rules, all from github.com/istio/istio: which Gateways apply to the proxy and how their
servers merge per port (pilot/pkg/model/push_context.go mergeGateways, pilot/pkg/model/
gateway.go mergeGateways, resolvePorts, gatewayRDSRouteName, sanitizeServerHostNamespace),
the listener per port (pilot/pkg/networking/core/gateway.go buildGatewayListeners,
getListenerName), the route table per port with a vhost per host that a server and a bound
VirtualService share, VirtualServices merged per host, catch-alls last, identical vhosts
collapsed, a `blackhole` vhost when none (gateway.go buildGatewayHTTPRouteConfig,
collapseDuplicateRoutes; route.go SortVHostRoutes; pkg/config/host/names.go
NamesForNamespace, Intersection). Routes and clusters are built as for a sidecar
(mesh/routes.py, mesh/clusters.py), from the gateway pod's namespace and labels.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from meshlab.load import istio
from meshlab.load.manifests import Resource
from meshlab.mesh.clusters import MergedRule, proxy_clusters
from meshlab.mesh.gateways import ProvidedGateway, selecting_gateways
from meshlab.mesh.matching import choose_virtual_host
from meshlab.mesh.model import (
    GatewayServer,
    GatewayView,
    ListenerPlan,
    MeshPlan,
    Note,
    RoutePlan,
    VirtualHostPlan,
)
from meshlab.mesh.names import host_matches, is_wildcard, resolve_host, split_namespaced_host
from meshlab.mesh.registry import Registry, build_registry
from meshlab.mesh.routes import mesh_virtual_services, virtual_service_routes
from meshlab.records import dataclass

# protocol.Parse(...).IsHTTP() (pkg/config/protocol/instance.go): the servers that get an HTTP
# connection manager and a route table `http.<port>`.
HTTP_SERVER_PROTOCOLS = frozenset({"HTTP", "HTTP2", "GRPC", "GRPC-WEB"})


@dataclass(frozen=True)
class _Server:
    """One plain-HTTP server of a Gateway selecting the proxy, with its hosts sanitized as istiod
    does; the servers on one port share that port's route table."""

    gateway: Resource
    key: tuple[str, str]  # the Gateway's (namespace, name)
    index: int
    port: int  # as the server writes it (the routes' listener port)
    hosts: tuple[str, ...]  # sanitized: `./h` -> `ns/h`, `*/h` -> `h`


def build_gateway_plan(resources: Sequence[Resource], gateway: ProvidedGateway) -> MeshPlan:
    """The plan of `gateway`'s proxy: listeners from the servers of the Gateways selecting it,
    a route table `http.<port>` per listener, the clusters it sees from its namespace. A
    gateway no Gateway selects gets no listener (istiod sends it none) and a note."""
    registry = build_registry(resources)
    namespace, labels = gateway.namespace, dict(gateway.labels)
    notes: list[Note] = []
    visible = Registry(
        [s for s in registry.services if s.visible_to(namespace)],
        registry.pods,
        [s for s in registry.externals if s.visible_to(namespace)],
    )
    clusters, rule_for = proxy_clusters(resources, visible, namespace, labels, notes)
    selecting = selecting_gateways(resources, labels)
    by_route = _merge_servers(selecting, gateway, notes)
    if not selecting:
        notes.append(Note(f"{gateway.ref}: no Gateway selects this gateway: it serves no port"))
    listeners: list[ListenerPlan] = []
    route_tables: dict[str, list[VirtualHostPlan]] = {}
    tables = _RouteTables(resources, gateway, visible, rule_for, notes)
    for route_name, servers in by_route.items():
        first = servers[0]
        listen = gateway.listen_port(first.port)
        listeners.append(
            ListenerPlan(
                f"0.0.0.0_{listen}",  # gateway.go getListenerName
                first.port,
                "HTTP",
                route_table=route_name,
                bind_port=listen,
                node_port=gateway.node_port(first.port),
            )
        )
        route_tables[route_name] = tables.build(servers)
    listeners.sort(key=lambda lst: lst.bind_port or lst.port)
    servers_seen = tuple(
        GatewayServer(
            f"{s.key[0]}/{s.key[1]}",
            s.port,
            "HTTP",
            s.hosts,
            s.gateway.locate("spec", "servers", s.index),
        )
        for servers in by_route.values()
        for s in servers
    )
    view = GatewayView(gateway.ref, tuple(sorted(labels.items())), servers_seen)
    return MeshPlan(namespace, registry, clusters, route_tables, listeners, notes, view)


class _RouteTables:
    """buildGatewayHTTPRouteConfig's loop: for each server of a route table, each VirtualService
    bound to its Gateway, each host the two share: that VirtualService's routes go to that
    host's vhost."""

    def __init__(
        self,
        resources: Sequence[Resource],
        gateway: ProvidedGateway,
        registry: Registry,
        rule_for: Callable[[str], MergedRule | None],
        notes: list[Note],
    ) -> None:
        self.resources = resources
        self.namespace, self.labels = gateway.namespace, dict(gateway.labels)
        self.registry, self.rule_for, self.notes = registry, rule_for, notes
        self.bound: dict[tuple[str, str], list[Resource]] = {}

    def build(self, servers: Sequence[_Server]) -> list[VirtualHostPlan]:
        vhosts: dict[str, VirtualHostPlan] = {}
        # gatewayRoutes: one route list per Gateway and VirtualService in a route table,
        # built with the port of the first server that needs it
        cache: dict[tuple[tuple[str, str], int], list[RoutePlan]] = {}
        for server in servers:
            if server.key not in self.bound:
                # push_context.go VirtualServicesForGateway, from the proxy's namespace
                self.bound[server.key] = mesh_virtual_services(
                    self.resources, self.namespace, server.key
                )
            for vs in self.bound[server.key]:
                spec: istio.VirtualServiceSpec = vs.body.spec
                vs_hosts = [resolve_host(h, vs.namespace) for h in spec.hosts]
                server_hosts = names_for_namespace(server.hosts, vs.namespace)
                common = host_intersection(server_hosts, vs_hosts)
                if common and (server.key, id(vs)) not in cache:
                    cache[(server.key, id(vs))] = self._routes(server, vs)
                routes = cache[(server.key, id(vs))] if common else []
                # no routes: "no routes matched", this VirtualService adds nothing here
                for host in (h.lower() for h in common if routes):
                    if host in vhosts:
                        vhosts[host].routes.extend(routes)  # gateways merge; sidecars don't
                    else:
                        name = f"{host}:{server.port}"  # util.DomainName
                        vhosts[host] = VirtualHostPlan(name, [host], list(routes), None, vs)
        return _finish(vhosts, servers[0].port)

    def _routes(self, server: _Server, vs: Resource) -> list[RoutePlan]:
        return virtual_service_routes(
            vs,
            server.port,
            self.namespace,
            self.registry,
            self.rule_for,
            self.notes,
            self.labels,
            server.key,
        )


def _merge_servers(
    gateways: Sequence[Resource], proxy: ProvidedGateway, notes: list[Note]
) -> dict[str, list[_Server]]:
    """model/gateway.go mergeGateways for plain-text HTTP servers: every HTTP server of every
    Gateway on one (resolved) port shares the route table `http.<port>`, in Gateway order.
    Other protocols are noted, not served."""
    by_route: dict[str, list[_Server]] = {}
    for gateway in gateways:
        spec: istio.GatewaySpec = gateway.body.spec
        for index, server in enumerate(spec.servers):
            at = gateway.locate("spec", "servers", index)
            protocol = server.port.protocol.upper()
            if protocol not in HTTP_SERVER_PROTOCOLS:
                notes.append(
                    Note(
                        f"{gateway.ref}: the {protocol} server on port {server.port.number} is "
                        f"not simulated by the embedded backend ({proxy.ref} serves HTTP only)",
                        at,
                    )
                )
                continue
            for part in ("tls", "bind"):
                if getattr(server, part) is not None:
                    notes.append(
                        Note(
                            f"{gateway.ref}: server {part} is not simulated by the embedded "
                            "backend (the server is served as plain HTTP on all addresses)",
                            gateway.locate("spec", "servers", index, part),
                        )
                    )
            hosts = tuple(_sanitize(h, gateway.namespace) for h in server.hosts)
            # gatewayRDSRouteName: `http.<resolved port>` for every HTTP server
            route = f"http.{proxy.listen_port(server.port.number)}"
            key = (gateway.namespace, gateway.name)
            by_route.setdefault(route, []).append(
                _Server(gateway, key, index, server.port.number, hosts)
            )
    return by_route


def _sanitize(entry: str, namespace: str) -> str:
    """model/gateway.go sanitizeServerHostNamespace: `./h` is `<ns>/h`, `*/h` is `h`."""
    ns, host = split_namespaced_host(entry)
    if "/" not in entry or ns == "*":
        return host
    return f"{namespace if ns == '.' else ns}/{host}"


def names_for_namespace(hosts: Sequence[str], namespace: str) -> list[str]:
    """pkg/config/host/names.go NamesForNamespace: the server hosts a VirtualService in
    `namespace` may bind: unqualified ones and `<namespace>/...` ones, prefix stripped."""
    found = []
    for entry in hosts:
        ns, slash, host = entry.partition("/")
        if not slash:
            found.append(entry)
        elif ns in (namespace, "*"):
            found.append(host)
    return found


def _subset_of(a: str, b: str) -> bool:
    """pkg/config/host/name.go Name.SubsetOf: every name `a` covers, `b` covers too."""
    if is_wildcard(a):
        return is_wildcard(b) and len(a) >= len(b) and a[1:].endswith(b[1:])
    return host_matches(b, a)


def host_intersection(server_hosts: Sequence[str], vs_hosts: Sequence[str]) -> list[str]:
    """pkg/config/host/names.go Names.Intersection: for each pair, the narrower of the two when
    one covers the other (`*` and `fleetman.com` give `fleetman.com`), in server-host order."""
    found: list[str] = []
    for server_host in server_hosts:
        for vs_host in vs_hosts:
            if _subset_of(server_host, vs_host):
                narrower = server_host
            elif _subset_of(vs_host, server_host):
                narrower = vs_host
            else:
                continue
            if narrower not in found:
                found.append(narrower)
    return found


def _more_specific_key(host: str) -> tuple[bool, int, str]:
    """pkg/config/host/names.go MoreSpecific: exact names first, longest first, then by name."""
    return (is_wildcard(host), -len(host), host)


def _finish(vhosts: dict[str, VirtualHostPlan], port: int) -> list[VirtualHostPlan]:
    """The end of buildGatewayHTTPRouteConfig: no vhost -> one `blackhole` vhost without routes
    (Envoy answers 404 NR); else vhosts with the very same routes collapse into the most
    specific host's (collapseDuplicateRoutes), catch-all routes move last (SortVHostRoutes),
    vhosts sort by name (util.go SortVirtualHosts)."""
    if not vhosts:
        return [VirtualHostPlan(f"blackhole:{port}", ["*"], [], None)]
    known: dict[tuple[int, ...], VirtualHostPlan] = {}
    kept: list[VirtualHostPlan] = []
    for host in sorted(vhosts, key=_more_specific_key):
        vhost = vhosts[host]
        identity = tuple(id(r) for r in vhost.routes)  # routesEqual compares pointers
        if identity in known:
            known[identity].domains.extend(vhost.domains)
            continue
        known[identity] = vhost
        kept.append(vhost)
    for vhost in kept:
        vhost.routes = [r for r in vhost.routes if not r.match.is_catch_all] + [
            r for r in vhost.routes if r.match.is_catch_all
        ]
    return sorted(kept, key=lambda v: v.name)


def gateway_refusal(plan: MeshPlan, host: str, port: int) -> str | None:
    """Why a request for `host` on `port` gets no route at the gateway (connection refused, or
    Envoy's 404 NR), in a student's words; None when a vhost with routes takes it."""
    view = plan.gateway
    if view is None:
        raise ValueError("gateway_refusal needs a gateway's plan (build_gateway_plan)")
    listener = plan.listener_for(port)
    if listener is None:
        served = ", ".join(str(p) for p in sorted({s.port for s in view.servers})) or "none"
        return (
            f"no Gateway server of {view.proxy} listens on port {port} (its ports: {served}): "
            "the connection is refused"
        )
    servers = [s for s in view.servers if s.port == listener.port]
    hosts = list(dict.fromkeys(split_namespaced_host(h)[1] for s in servers for h in s.hosts))
    if not any(host_matches(h.lower(), host.lower()) for h in hosts):
        return (
            f"no Gateway server accepts host {host!r} on port {listener.port} (the servers of "
            f"{view.proxy} accept {', '.join(hosts)}): the gateway answers 404 (NR)"
        )
    choice = choose_virtual_host(plan, host.lower(), port)
    if choice is None or not choice.vhost.routes:
        gateways = ", ".join(dict.fromkeys(s.gateway for s in servers))
        return (
            f"no VirtualService bound to {gateways} serves host {host!r}: the gateway answers "
            "404 (NR)"
        )
    return None


def gateway_accepts(plan: MeshPlan, host: str, port: int) -> bool:
    """Whether the gateway routes requests for `host` on `port` (see gateway_refusal)."""
    return gateway_refusal(plan, host, port) is None
