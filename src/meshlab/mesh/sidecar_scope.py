"""Istio's `Sidecar` resource: which one shapes a proxy, and what it lets that proxy see.

istiod turns every Sidecar into a SidecarScope (pilot/pkg/model/sidecar.go): per egress
listener, the Services and VirtualServices its `hosts` import; in all, the Services the
proxy gets clusters for; and the outbound traffic policy of its catch-all route. A proxy
without a Sidecar gets the same scope built from one egress listener `*/*`, so every plan is
built through here and "no Sidecar" is not a special case. Paths are github.com/istio/istio.
"""

from __future__ import annotations

import bisect
import functools
from collections.abc import Mapping, Sequence
from dataclasses import field, replace
from typing import Literal

from meshlab.errors import Location
from meshlab.load import istio
from meshlab.load.manifests import Resource
from meshlab.mesh.meshconfig import mesh_settings
from meshlab.mesh.model import (
    PASSTHROUGH_CLUSTER,
    DirectResponse,
    Forward,
    RouteMatchPlan,
    RoutePlan,
    VirtualHostPlan,
    WeightedTarget,
    config_order,
)
from meshlab.mesh.names import (
    ROOT_NAMESPACE,
    is_wildcard,
    resolve_host,
    selects,
    service_fqdn,
)
from meshlab.mesh.registry import MeshService, Registry
from meshlab.mesh.routes import mesh_virtual_services
from meshlab.records import dataclass

OutboundMode = Literal["ALLOW_ANY", "REGISTRY_ONLY"]
# pkg/config/mesh/mesh.go DefaultMeshConfig: outboundTrafficPolicy ALLOW_ANY; the course's
# install keeps it; a lab changes it in the `istio` ConfigMap (mesh/meshconfig.py).
MESH_OUTBOUND_MODE: OutboundMode = "ALLOW_ANY"
# sidecar.go initSidecarScopeInternalIndexes: no egress = one listener importing `*/*`.
DEFAULT_EGRESS_HOSTS = ("*/*",)
# sidecar.go constants wildcardNamespace, currentNamespace, excludePrefix.
_ANY_NAMESPACE, _CURRENT_NAMESPACE, _EXCLUDE = "*", ".", "~"
# pkg/config/protocol: the egress port protocols whose listener routes HTTP (an empty or
# unknown protocol is sniffed, and sniffed ports take HTTP routes too).
_TCP_PROTOCOLS = frozenset({"TCP", "TLS", "HTTPS", "MONGO", "MYSQL", "REDIS", "UDP"})


def applicable_sidecar(
    sidecars: Sequence[Resource], namespace: str, labels: Mapping[str, str]
) -> Resource | None:
    """The Sidecar istiod gives a proxy (push_context.go initSidecarScopes, getSidecarScope):
    in its namespace, those with a workloadSelector first, each group oldest first; the
    first whose selector is a subset of the proxy's labels, or the one without a selector;
    failing both, the root namespace's Sidecar without a selector; else none."""
    ordered = sorted(sidecars, key=lambda r: (_selector(r) is None, config_order(r)))
    for sidecar in ordered:
        selector = _selector(sidecar)
        if sidecar.namespace == namespace and (selector is None or selects(selector, labels)):
            return sidecar
    return next(
        (r for r in ordered if r.namespace == ROOT_NAMESPACE and _selector(r) is None), None
    )


def _selector(sidecar: Resource) -> dict[str, str] | None:
    selector: istio.WorkloadSelector | None = sidecar.body.spec.workloadSelector
    return None if selector is None else dict(selector.labels)


def subset_of(name: str, other: str) -> bool:
    """pkg/config/host/name.go Name.SubsetOf: `name` is covered by `other`."""
    if is_wildcard(name):
        return is_wildcard(other) and len(name) >= len(other) and name[1:].endswith(other[1:])
    return name.endswith(other[1:]) if is_wildcard(other) else name == other


def overlaps(name: str, other: str) -> bool:
    """pkg/config/host/name.go Name.Matches: either covers the other."""
    return subset_of(name, other) or subset_of(other, name)


@dataclass
class HostImports:
    """sidecar.go hostClassification: one namespace's `hosts` of an egress listener.

    Indexed so that a lookup costs the length of the name, not the number of hosts: a
    Sidecar may list thousands (a hostile one, tens of thousands) and every proxy's plan
    asks for every Service and VirtualService host."""

    exact: set[str] = field(default_factory=set)
    wildcards: set[str] = field(default_factory=set)
    excluded: set[str] = field(default_factory=set)  # from `~ns/host`, exact or wildcard
    _reversed: list[str] = field(default_factory=list)  # every import, reversed, sorted

    def add(self, name: str) -> None:
        (self.wildcards if is_wildcard(name) else self.exact).add(name)
        self._reversed.append(name[::-1])  # sorted once all are in (host_imports)

    def excludes(self, host: str) -> bool:
        """hostClassification.Excluded: the host is a subset of a `~` entry."""
        return host in self.excluded or _covered(host, self.excluded)

    def matches(self, host: str) -> bool:
        """hostClassification.Matches: a Service's host is imported (exact, or a subset of a
        wildcard import)."""
        return host in self.exact or _covered(host, self.wildcards)

    def matches_virtual_service(self, host: str) -> bool:
        """hostClassification.VSMatches (sidecar semantics): Name.Matches, both ways, for
        compatibility; so a VirtualService for `*.com` is imported by `./a.com`."""
        if self.matches(host):
            return True
        if not is_wildcard(host):
            return False
        # an import the wildcard covers: one whose name ends with the wildcard's suffix
        suffix = host[1:][::-1]
        at = bisect.bisect_left(self._reversed, suffix)
        return at < len(self._reversed) and self._reversed[at].startswith(suffix)


def _covered(name: str, wildcards: set[str]) -> bool:
    """Name.SubsetOf against a set of wildcards, one lookup per suffix of the name: `a.b.com`
    is covered by `*`, `*.com`, `*.b.com` (and `*b.com`, `*com`...); `*.b.com` by `*.com`."""
    if not wildcards:
        return False
    base = name[1:] if is_wildcard(name) else name
    return any(f"*{base[k:]}" in wildcards for k in range(len(base) + 1))


def host_imports(hosts: Sequence[str], config_namespace: str) -> Mapping[str, HostImports]:
    """sidecar.go convertIstioListenerToWrapper: `ns/dnsName` by namespace; `.` is the
    proxy's config namespace, `*` any; a `~` before the namespace excludes (`~/*`: nothing).
    Read-only and cached: every workload of a namespace shares its Sidecar's imports, as
    istiod computes a SidecarScope once per Sidecar and namespace."""
    return _host_imports(tuple(hosts), config_namespace)


@functools.lru_cache(maxsize=16)
def _host_imports(hosts: tuple[str, ...], config_namespace: str) -> Mapping[str, HostImports]:
    found: dict[str, HostImports] = {}
    for entry in hosts:
        if entry.count("/") != 1:
            continue  # rejected by the schema; istiod logs and skips it
        namespace, _, name = entry.partition("/")
        excluded = namespace.startswith(_EXCLUDE)
        if excluded:
            namespace = namespace[1:] or _ANY_NAMESPACE
        if namespace == _CURRENT_NAMESPACE:
            namespace = config_namespace
        imports = found.setdefault(namespace, HostImports())
        if excluded:
            imports.excluded.add(name)
        else:
            imports.add(name)
    for imports in found.values():
        imports._reversed.sort()
    return found


@dataclass
class EgressScope:
    """One egress listener (sidecar.go IstioEgressListenerWrapper): its port (None: the
    catch-all) and what it imports, in istiod's order."""

    port: int | None
    protocol: str | None
    services: list[MeshService]
    externals: list[MeshService]  # ExternalName Services (aliases), as VirtualService hosts
    virtual_services: list[Resource]
    location: Location | None = None

    @property
    def routes_http(self) -> bool:
        return (self.protocol or "").upper() not in _TCP_PROTOCOLS


@dataclass
class SidecarScope:
    """Istio's SidecarScope for one proxy: the Sidecar that shapes it (or the default `*/*`), what
    each egress listener imports, the Services it gets clusters for and its outbound policy."""

    sidecar: Resource | None  # None: istiod's default scope (`*/*`)
    namespace: str
    egress: list[EgressScope]
    services: list[MeshService]  # every listener's and the VirtualServices' (CDS)
    externals: list[MeshService]
    outbound_mode: OutboundMode = MESH_OUTBOUND_MODE


def sidecar_scope(
    resources: Sequence[Resource],
    registry: Registry,
    namespace: str,
    labels: Mapping[str, str],
) -> SidecarScope:
    """The scope istiod computes for a sidecar in `namespace` with `labels`
    (sidecar.go convertToSidecarScope, initSidecarScopeInternalIndexes)."""
    sidecar = applicable_sidecar([r for r in resources if r.kind == "Sidecar"], namespace, labels)
    spec: istio.SidecarSpec | None = sidecar.body.spec if sidecar is not None else None
    # push_context.go servicesExportedToNamespace: the exportTo annotation first.
    visible = [s for s in registry.services if s.visible_to(namespace)]
    visible_externals = [s for s in registry.externals if s.visible_to(namespace)]
    mesh_vses = mesh_virtual_services(resources, namespace)
    listeners: list[tuple[istio.IstioEgressListener | None, int]] = (
        [(e, i) for i, e in enumerate(spec.egress)] if spec and spec.egress else [(None, 0)]
    )
    egress = []
    for listener, index in listeners:
        hosts = listener.hosts if listener is not None else list(DEFAULT_EGRESS_HOSTS)
        port = listener.port if listener is not None else None
        imports = host_imports(hosts, namespace)
        # sidecar.go needsPortMatch: a port trims the Services to it, unless the listener is
        # a generic HTTP_PROXY
        match_port = port.number if port and not _http_proxy(port.protocol) else None
        egress.append(
            EgressScope(
                port.number if port is not None else None,
                port.protocol if port is not None else None,
                select_services(visible, imports, match_port),
                select_services(visible_externals, imports, match_port),
                select_virtual_services(mesh_vses, imports),
                sidecar.locate("spec", "egress", index) if sidecar and listener else None,
            )
        )
    services, externals = _imported(egress, registry, namespace)
    # sidecar.go convertToSidecarScope: a Sidecar without a policy takes the mesh's
    # (the `istio` ConfigMap's outboundTrafficPolicy, mesh/meshconfig.py)
    mode: OutboundMode = mesh_settings(resources).outbound_mode
    if spec is not None and spec.outboundTrafficPolicy is not None:
        # istio/api networking/v1alpha3/sidecar.proto: REGISTRY_ONLY is the enum's zero
        # value, so `outboundTrafficPolicy: {}` blocks (sidecar.go takes the Sidecar's as is)
        mode = spec.outboundTrafficPolicy.mode or "REGISTRY_ONLY"
    return SidecarScope(sidecar, namespace, egress, services, externals, mode)


def _http_proxy(protocol: str | None) -> bool:
    return (protocol or "").upper() == "HTTP_PROXY"


def select_services(
    candidates: Sequence[MeshService], imports: Mapping[str, HostImports], port: int | None
) -> list[MeshService]:
    """sidecar.go selectServices: a Service not excluded (`~`) is imported by its own
    namespace's hosts, else by the `*/` ones; with a listener port, only if it has that port
    (and trimmed to it, serviceMatchingListenerPort); aliases trimmed to the imported ones
    (matchingAliasService)."""
    anywhere = imports.get(_ANY_NAMESPACE)
    found = []
    for service in candidates:
        own = imports.get(service.namespace)
        fqdn = service.fqdn
        if (own and own.excludes(fqdn)) or (anywhere and anywhere.excludes(fqdn)):
            continue
        for scope in (own, anywhere):
            if scope is None or not scope.matches(fqdn):
                continue
            matched = _on_port(service, port)
            if matched is not None:
                found.append(_trim_aliases(matched, scope))
                break
    return found


def _on_port(service: MeshService, port: int | None) -> MeshService | None:
    if port is None:
        return service
    only = service.port(port)
    if only is None:
        return None
    return service if len(service.ports) == 1 else replace(service, ports=[only])


def _trim_aliases(service: MeshService, scope: HostImports) -> MeshService:
    kept = [a for a in service.aliases if scope.matches(service_fqdn(*a))]
    return service if len(kept) == len(service.aliases) else replace(service, aliases=kept)


def select_virtual_services(
    virtual_services: Sequence[Resource], imports: Mapping[str, HostImports]
) -> list[Resource]:
    """virtualservice.go SelectVirtualServices: in the sidecar's order, a VirtualService one
    of whose hosts its own namespace's or the `*/` imports match, unless `~` excludes it."""
    anywhere = imports.get(_ANY_NAMESPACE)
    found = []
    for vs in virtual_services:
        own = imports.get(vs.namespace)
        hosts = [resolve_host(h, vs.namespace) for h in vs.body.spec.hosts]
        for scope in (own, anywhere):
            if scope is not None and any(
                scope.matches_virtual_service(h)
                and not (own and own.excludes(h))
                and not (anywhere and anywhere.excludes(h))
                for h in hosts
            ):
                found.append(vs)
                break
    return found


def _imported(
    egress: Sequence[EgressScope], registry: Registry, namespace: str
) -> tuple[list[MeshService], list[MeshService]]:
    """sidecar.go collectImportedServices: each listener's Services, then the destinations
    of its VirtualServices (the one in the proxy's namespace, else the first visible one
    by namespace name; push_context.go pickFirstVisibleNamespace), trimmed to the ports the
    routes name (serviceMatchingVirtualServicePorts) or to the listener's port."""
    by_host: dict[str, MeshService] = {}
    externals: dict[str, MeshService] = {}
    for listener in egress:
        for service in listener.services:
            by_host.setdefault(service.fqdn, service)
        for service in listener.externals:
            externals.setdefault(service.fqdn, service)
    candidates: dict[str, list[MeshService]] = {}
    for service in registry.services:
        candidates.setdefault(service.fqdn, []).append(service)
    for listener in egress:
        for vs in listener.virtual_services:
            for host, ports in _destinations(vs, namespace).items():
                if host in by_host or host not in candidates:
                    continue
                mine = [s for s in candidates[host] if s.namespace == namespace]
                seen = sorted(
                    (s for s in candidates[host] if s.visible_to(namespace)),
                    key=lambda s: s.namespace,
                )
                if not (mine or seen):
                    continue
                pick = (mine or seen)[0]
                if listener.port is not None and not _http_proxy(listener.protocol):
                    matched = _on_port(pick, listener.port)
                else:
                    matched = _on_ports(pick, ports)
                if matched is not None:
                    by_host[host] = matched
    return list(by_host.values()), list(externals.values())


def _on_ports(service: MeshService, ports: set[int]) -> MeshService | None:
    if not ports or 0 in ports:  # 0: a destination without a port needs every port
        return service
    kept = [p for p in service.ports if p.number in ports]
    if len(kept) == len(service.ports):
        return service
    return replace(service, ports=kept) if kept else None


def _destinations(vs: Resource, namespace: str) -> dict[str, set[int]]:
    """push_context.go virtualServiceDestinationsFilteredBySourceNamespace: the hosts and
    ports (0 = unnamed) of a VirtualService's routes and mirrors, skipping HTTP rules whose
    matches all name another sourceNamespace."""
    spec: istio.VirtualServiceSpec = vs.body.spec
    out: dict[str, set[int]] = {}

    def add(host: object, port: object) -> None:
        if not isinstance(host, str) or not host:
            return
        number = getattr(port, "number", None)
        if isinstance(port, Mapping):
            number = port.get("number")
        key = resolve_host(host, vs.namespace)
        out.setdefault(key, set()).add(number if isinstance(number, int) else 0)

    def add_raw(destination: object) -> None:
        # tcp, tls and mirrors are kept as plain YAML by the schema (not simulated)
        if isinstance(destination, Mapping):
            add(destination.get("host"), destination.get("port"))

    for http in spec.http:
        sources = [m.sourceNamespace for m in http.match if m.sourceNamespace]
        if sources and namespace not in sources:
            continue
        for route in http.route:
            add(route.destination.host, route.destination.port)
        if http.mirror is not None:
            add(http.mirror.host, http.mirror.port)
        for mirror in http.mirrors if isinstance(http.mirrors, list) else []:
            add_raw(mirror.get("destination") if isinstance(mirror, Mapping) else None)
    for rules in (spec.tcp, spec.tls):
        for rule in rules if isinstance(rules, list) else []:
            routes = rule.get("route") if isinstance(rule, Mapping) else None
            for route in routes if isinstance(routes, list) else []:
                add_raw(route.get("destination") if isinstance(route, Mapping) else None)
    return out


def unsimulated(sidecar: Resource) -> list[tuple[str, Location | None]]:
    """What of a Sidecar the embedded backend does not simulate, with where it is written:
    the inbound side (`ingress`, `inboundConnectionPool`), how traffic is captured or bound
    (`egress[].captureMode`, `egress[].bind`), an HTTP_PROXY egress port (served as a plain
    HTTP listener), and `outboundTrafficPolicy.egressProxy`."""
    spec: istio.SidecarSpec = sidecar.body.spec
    found: list[tuple[str, Location | None]] = []
    if spec.ingress:
        found.append(("ingress", sidecar.locate("spec", "ingress")))
    if spec.inboundConnectionPool is not None:
        found.append(("inboundConnectionPool", sidecar.locate("spec", "inboundConnectionPool")))
    for index, egress in enumerate(spec.egress):
        if egress.port is not None and _http_proxy(egress.port.protocol):
            where = sidecar.locate("spec", "egress", index, "port", "protocol")
            found.append((f"egress[{index}].port protocol HTTP_PROXY", where))
        for part in ("captureMode", "bind"):
            if getattr(egress, part) is not None:
                found.append(
                    (f"egress[{index}].{part}", sidecar.locate("spec", "egress", index, part))
                )
    policy = spec.outboundTrafficPolicy
    if policy is not None and policy.egressProxy is not None:
        where = sidecar.locate("spec", "outboundTrafficPolicy", "egressProxy")
        found.append(("outboundTrafficPolicy.egressProxy", where))
    return found


def allow_any_vhost() -> VirtualHostPlan:
    target = WeightedTarget(PASSTHROUGH_CLUSTER, 100, "*", None, None)
    route = RoutePlan("allow_any", RouteMatchPlan(), Forward((target,), weighted=False))
    return VirtualHostPlan("allow_any", ["*"], [route], None)


# httproute.go buildCatchAllVirtualHost: REGISTRY_ONLY's last vhost answers 502 itself.
BLOCK_ALL_STATUS = 502


def block_all_vhost() -> VirtualHostPlan:
    route = RoutePlan("block_all", RouteMatchPlan(), DirectResponse(BLOCK_ALL_STATUS, None))
    return VirtualHostPlan("block_all", ["*"], [route], None)


def catch_all_vhost(mode: str) -> VirtualHostPlan:
    """The last vhost of a sidecar's route table (httproute.go buildCatchAllVirtualHost):
    ALLOW_ANY passes an unknown host through to PassthroughCluster, REGISTRY_ONLY blocks it."""
    return block_all_vhost() if mode == "REGISTRY_ONLY" else allow_any_vhost()
