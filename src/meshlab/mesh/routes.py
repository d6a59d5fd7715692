"""VirtualServices -> routes: which VirtualService owns a host, how its rules become ordered
routes (matches, weights, retries, faults, rewrites), and the Service's default route."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence

from meshlab.load import istio
from meshlab.load.manifests import Resource
from meshlab.mesh.clusters import MergedRule, consistent_hash_for, hash_policy, service_hash_for
from meshlab.mesh.model import (
    DEFAULT_RETRY_ON,
    DirectResponse,
    FaultPlan,
    Forward,
    HashPolicyPlan,
    HeaderMatchPlan,
    HeaderOpsPlan,
    Note,
    Redirect,
    RetryPlan,
    RouteMatchPlan,
    RoutePlan,
    StringMatchPlan,
    VirtualHostPlan,
    WeightedTarget,
    cluster_name,
    config_order,
)
from meshlab.mesh.names import (
    CLIENT_LABELS,
    bound_to_mesh,
    gateway_key,
    host_matches,
    is_wildcard,
    most_specific,
    resolve_host,
    selects,
    vhost_domains,
    visible_to,
)
from meshlab.mesh.registry import MeshService, Registry


def mesh_virtual_services(
    resources: Sequence[Resource],
    client_namespace: str,
    gateway: tuple[str, str] | None = None,
) -> list[Resource]:
    """VirtualServices a sidecar sees, in Istio's order (pilot/pkg/model/push_context.go,
    initVirtualServices and VirtualServicesForGateway): bound to `mesh` (no gateways = mesh),
    exported to the client; then three tiers, each oldest first, then by name/namespace:
    private (its exportTo names its own namespace, the client's), exported to the client's
    namespace by name, public (`*` or no exportTo). With `gateway` (namespace, name): the
    ones whose `gateways` name that Gateway instead (resolved in the VirtualService's
    namespace, virtualservice.go ResolveVirtualServiceShortnames), as a gateway proxy in
    `client_namespace` sees them."""
    found = []
    for r in resources:
        if r.kind != "VirtualService":
            continue
        spec: istio.VirtualServiceSpec = r.body.spec
        if gateway is not None:
            if not any(gateway_key(g, r.namespace) == gateway for g in spec.gateways):
                continue
        elif not bound_to_mesh(spec.gateways):
            continue
        if not visible_to(spec.exportTo, r.namespace, client_namespace):
            continue
        found.append(((_tier(spec.exportTo, r.namespace, client_namespace), *config_order(r)), r))
    return [r for _, r in sorted(found, key=lambda item: item[0])]


def _tier(export_to: Sequence[str], namespace: str, client_namespace: str) -> int:
    if not export_to or "*" in export_to:
        return 2
    own = namespace == client_namespace and ("." in export_to or namespace in export_to)
    return 0 if own else 1


class VirtualServiceIndex:
    """The mesh VirtualServices by the hosts they name, so a Service's candidates are read
    from an index, not a scan of all of them: planning stays linear in the Services."""

    def __init__(self, virtual_services: Sequence[Resource]) -> None:
        self.exact: dict[str, list[int]] = defaultdict(list)
        # pattern -> the first VirtualService naming it (sidecar.go
        # computeWildcardHostVirtualServiceIndex never overwrites an earlier entry)
        self.wildcards: dict[str, int] = {}
        self.ordered = list(virtual_services)
        self.hosts: list[list[str]] = []
        for position, vs in enumerate(self.ordered):
            hosts = list(
                dict.fromkeys(resolve_host(h, vs.namespace).lower() for h in vs.body.spec.hosts)
            )
            self.hosts.append(hosts)
            for host in hosts:
                if is_wildcard(host):
                    self.wildcards.setdefault(host, position)
                else:
                    self.exact[host].append(position)

    def owners(self, fqdn: str) -> list[int]:
        """The VirtualServices that may build `fqdn`'s vhost, in order. Istio's most specific
        host rule (sidecar.go computeWildcardHostVirtualServiceIndex, route.go
        separateVSHostsAndServices): every VirtualService naming the host exactly, whatever
        their age; with none, the one VirtualService of the most specific wildcard."""
        if fqdn in self.exact:
            return self.exact[fqdn]
        pattern = most_specific(fqdn, self.wildcards)
        return [self.wildcards[pattern]] if pattern is not None else []


def route_table(
    port: int,
    services: Sequence[MeshService],
    virtual_services: VirtualServiceIndex,
    rule_for: Callable[[str], MergedRule | None],
    client_namespace: str,
    registry: Registry,
    notes: list[Note],
    client_labels: Mapping[str, str] = CLIENT_LABELS,
) -> list[VirtualHostPlan]:
    """The vhosts of one port's route table, built in istiod's order so that the first to
    claim a domain keeps it (httproute.go BuildSidecarOutboundVirtualHosts, dedupeDomains):
    each VirtualService in order (the hosts that are not Services on this port first, then its
    Services), then a default vhost for each Service no VirtualService took.
    `services` are the Services with this port, `registry` the ones the client sees."""
    by_name = {s.fqdn: s for s in reversed(services)}
    claimed: dict[int, list[MeshService]] = defaultdict(list)
    for service in by_name.values():
        for position in virtual_services.owners(service.fqdn):
            claimed[position].append(service)
    table = _Table()
    taken: set[str] = set()
    for position, vs in enumerate(virtual_services.ordered):
        mine = claimed.get(position, [])
        foreign = [h for h in virtual_services.hosts[position] if not _names_service(h, by_name)]
        # route.go buildSidecarVirtualHostsForVirtualService: hosts that are no Service on
        # this port ride along with its Services on this port; with none, they get a vhost
        # on port 80 only (istiod's "port 80 hack": httproute.go selectVirtualServices keeps
        # every VirtualService there, and only those naming a Service on other ports).
        if not mine and not (port == 80 and foreign):
            continue
        routes = virtual_service_routes(
            vs, port, client_namespace, registry, rule_for, notes, client_labels
        )
        if not routes:
            continue  # no vhost from this one: the host is free for the next
        for host in foreign:
            table.add(VirtualHostPlan(f"{host}:{port}", [host], routes, None, vs))
        for service in mine:
            if service.fqdn in taken:
                continue
            taken.add(service.fqdn)
            domains = service_domains(service, client_namespace)
            table.add(VirtualHostPlan(f"{service.fqdn}:{port}", domains, routes, service, vs))
    for service in services:
        # route.go BuildSidecarVirtualHostWrapper: an alias gets no vhost of its own; its
        # names are on the concrete Service's (service_domains)
        if service.fqdn not in taken and service.external_name is None:
            taken.add(service.fqdn)
            default = _default_route(service, port, rule_for(service.fqdn))
            table.add(
                VirtualHostPlan(
                    f"{service.fqdn}:{port}",
                    service_domains(service, client_namespace),
                    [default],
                    service,
                )
            )
    return table.vhosts


def _names_service(host: str, by_name: dict[str, MeshService]) -> bool:
    if not is_wildcard(host):
        return host in by_name
    return any(host_matches(host, fqdn) for fqdn in by_name)


class _Table:
    """Vhosts in build order, each keeping only the domains no earlier vhost took; a vhost
    whose name or every domain was taken is dropped (httproute.go buildVirtualHost)."""

    def __init__(self) -> None:
        self.vhosts: list[VirtualHostPlan] = []
        self.names: set[str] = set()
        self.domains: set[str] = set()

    def add(self, vhost: VirtualHostPlan) -> None:
        if vhost.name in self.names:
            return
        self.names.add(vhost.name)
        vhost.domains = [d for d in dict.fromkeys(vhost.domains) if d.lower() not in self.domains]
        self.domains.update(d.lower() for d in vhost.domains)
        if vhost.domains:
            self.vhosts.append(vhost)


def service_domains(service: MeshService, client_namespace: str) -> list[str]:
    """httproute.go generateVirtualHostDomains: the Service's names, then its aliases'
    (ExternalName Services pointing at it); a headless Service (Passthrough resolution) also
    answers `*.` each of them (pod names like `web-0.web.default.svc.cluster.local`)."""
    if service.host is not None:  # a ServiceEntry host: its name as written, nothing more
        return [service.host, f"{service.host}."]
    domains = vhost_domains(service.name, service.namespace, client_namespace)
    for name, namespace in service.aliases:
        domains += vhost_domains(name, namespace, client_namespace)
    if service.headless:
        domains += [f"*.{d}" for d in domains]
    return domains


def _default_route(service: MeshService, port: int, rule: MergedRule | None) -> RoutePlan:
    target = WeightedTarget(cluster_name(port, None, service.fqdn), 100, service.fqdn, None, None)
    return RoutePlan(
        "default",
        RouteMatchPlan(),
        Forward((target,), weighted=False),
        retry=_default_retry(),
        hash_policies=_some(hash_policy(service_hash_for(rule, port))),
    )


def _some(policy: HashPolicyPlan | None) -> tuple[HashPolicyPlan, ...]:
    return (policy,) if policy is not None else ()


def _default_retry() -> RetryPlan:
    return RetryPlan(attempts=2, retry_on=DEFAULT_RETRY_ON)


def virtual_service_routes(
    vs: Resource,
    port: int,
    client_namespace: str,
    registry: Registry,
    rule_for: Callable[[str], MergedRule | None],
    notes: list[Note],
    client_labels: Mapping[str, str] = CLIENT_LABELS,
    gateway: tuple[str, str] | None = None,
) -> list[RoutePlan]:
    """One VirtualService's routes for one proxy and port (route.go
    BuildHTTPRoutesForVirtualService): a route per rule and match that the proxy sees, in
    order, stopping at the first catch-all. `gateway` is the (namespace, name) of the Gateway
    whose server the routes are for, or None for a sidecar."""
    spec: istio.VirtualServiceSpec = vs.body.spec
    routes: list[RoutePlan] = []
    for index, http in enumerate(spec.http):
        matches: list[tuple[int | None, istio.HTTPMatchRequest | None]] = (
            list(enumerate(http.match)) if http.match else [(None, None)]
        )
        for match_index, match in matches:
            if match is not None and not _applies_to(
                match, vs.namespace, port, client_namespace, client_labels, gateway
            ):
                continue
            at = ("spec", "http", index) + (
                ("match", match_index) if match_index is not None else ()
            )
            route = _route(vs, http, index, match, port, registry, rule_for, notes)
            route.location = vs.locate(*at)
            routes.append(route)
            if route.match.is_catch_all:
                return routes  # Istio stops emitting at the first catch-all
    return routes


def _applies_to(
    match: istio.HTTPMatchRequest,
    vs_namespace: str,
    port: int,
    client_namespace: str,
    client_labels: Mapping[str, str] = CLIENT_LABELS,
    gateway: tuple[str, str] | None = None,
) -> bool:
    """Config-time filters: port, gateways, sourceLabels, sourceNamespace (the client is the
    probe, a pod in the lab namespace with names.CLIENT_LABELS, unless a workload is named;
    for a gateway, the gateway's pod). Istio's sourceMatchHTTP (route.go): a non-empty
    match.gateways replaces the source checks (`mesh` listed = a sidecar matches; the
    Gateway's name, resolved in the VirtualService's namespace as
    virtualservice.go ResolveVirtualServiceShortnames does, = that gateway matches)."""
    if match.port is not None and match.port != port:
        return False
    if match.gateways and gateway is not None:
        return any(gateway_key(g, vs_namespace) == gateway for g in match.gateways)
    if match.gateways:
        return bound_to_mesh(match.gateways)
    if match.sourceLabels and not selects(match.sourceLabels, client_labels):
        return False
    return match.sourceNamespace is None or match.sourceNamespace == client_namespace


def _route(
    vs: Resource,
    http: istio.HTTPRoute,
    index: int,
    match: istio.HTTPMatchRequest | None,
    port: int,
    registry: Registry,
    rule_for: Callable[[str], MergedRule | None],
    notes: list[Note],
) -> RoutePlan:
    name = ".".join(part for part in (http.name, match.name if match else None) if part)
    plan = RoutePlan(
        name, _match_plan(match), _action(vs, http, index, port, registry), virtual_service=vs
    )
    plan.timeout_s = istio.parse_duration(http.timeout) if http.timeout else 0.0
    hashed = False
    if isinstance(plan.action, Forward):
        # route.go processDestination/processWeightedDestination: each destination's own
        # rule adds its hash policy, for one destination as for every weighted one.
        hashes = [
            consistent_hash_for(rule_for(t.host), t.subset, t.port) for t in plan.action.targets
        ]
        plan.hash_policies = tuple(p for h in hashes if (p := hash_policy(h)) is not None)
        # retry.go ConvertPolicy(policy, consistentHash): only a single destination's hash
        # drops previous_hosts.
        hashed = not plan.action.weighted and hashes[0] is not None
    plan.retry = _retry(http.retries, hashed=hashed)
    plan.fault = _fault(http.fault)
    # istiod's applyHTTPRouteDestination: a host/:authority header set on the route, then
    # rewrite.authority, then (one destination) the destination's own header.
    plan.authority_rewrite = _authority(http.headers)
    if http.rewrite:
        plan.prefix_rewrite = http.rewrite.uri
        plan.authority_rewrite = http.rewrite.authority or plan.authority_rewrite
    if http.headers is not None:
        plan.request_headers = HeaderOpsPlan.of(http.headers.request)
        plan.response_headers = HeaderOpsPlan.of(http.headers.response)
    if isinstance(plan.action, Forward) and not plan.action.weighted:
        # One destination: Istio puts its header operations on the route itself.
        only = plan.action.targets[0]
        plan.request_headers += only.request_headers
        plan.response_headers += only.response_headers
        plan.authority_rewrite = plan.authority_rewrite or only.authority_rewrite
    for unsupported in ("mirror", "mirrors", "corsPolicy", "delegate"):
        if getattr(http, unsupported) is not None:
            notes.append(
                Note(
                    f"{vs.ref}: {unsupported} is not simulated by the embedded backend",
                    vs.locate("spec", "http", index, unsupported),
                )
            )
    return plan


def _match_plan(match: istio.HTTPMatchRequest | None) -> RouteMatchPlan:
    if match is None:
        return RouteMatchPlan()
    path = StringMatchPlan("prefix", "/")
    if match.uri is not None:
        path = _string_match(match.uri)
        if path.kind == "present":
            path = StringMatchPlan("prefix", "/")
    headers: list[HeaderMatchPlan] = []
    for pseudo, value in (
        (":method", match.method),
        (":authority", match.authority),
        (":scheme", match.scheme),
    ):
        if value is not None:
            headers.append(HeaderMatchPlan(pseudo, _string_match(value)))
    headers += [
        HeaderMatchPlan(k, _string_match(v), claim=routing_claim(k))
        for k, v in match.headers.items()
    ]
    headers += [
        HeaderMatchPlan(k, _string_match(v), invert=True, claim=routing_claim(k))
        for k, v in match.withoutHeaders.items()
    ]
    query = tuple((k, _string_match(v)) for k, v in match.queryParams.items())
    return RouteMatchPlan(path, not match.ignoreUriCase, tuple(headers), query)


JWT_CLAIM_HEADER = "@request.auth.claims"


def routing_claim(name: str) -> tuple[str, ...] | None:
    """pkg/jwt/routing.go ToRoutingClaim: `@request.auth.claims.a.b` or
    `@request.auth.claims[a][b]` names the JWT claim path (a, b); else None."""
    if not name.lower().startswith(JWT_CLAIM_HEADER):
        return None
    rest = name[len(JWT_CLAIM_HEADER) :]
    if rest.startswith(".") and len(rest) > 1:
        return tuple(rest[1:].split("."))
    if rest.startswith("[") and rest.endswith("]") and len(rest) > 2:
        return tuple(rest[1:-1].split("]["))
    return None


def _string_match(value: istio.StringMatch) -> StringMatchPlan:
    if value.exact is not None:
        return StringMatchPlan("exact", value.exact)
    if value.prefix is not None:
        return StringMatchPlan("prefix", value.prefix)
    if value.regex is not None and value.regex != "*":
        return StringMatchPlan("regex", value.regex)
    return StringMatchPlan("present")


def _action(
    vs: Resource, http: istio.HTTPRoute, index: int, port: int, registry: Registry
) -> Forward | Redirect | DirectResponse:
    if http.redirect is not None:
        return Redirect(http.redirect.uri, http.redirect.authority, http.redirect.redirectCode)
    if http.directResponse is not None:
        body = http.directResponse.body.string if http.directResponse.body else None
        return DirectResponse(http.directResponse.status, body)
    targets = []
    for d_index, dest in enumerate(http.route):
        host = resolve_host(dest.destination.host, vs.namespace)
        service = registry.lookup(host)
        if service is not None and service.external_name and service.port(port) is None:
            service = None  # istiod looks up the Services of the listener's port only
        if dest.destination.port is not None:
            dest_port = dest.destination.port.number
        elif service is not None and len(service.ports) == 1:
            dest_port = service.ports[0].number
        else:
            dest_port = port  # Istio falls back to the listener port
        weight_at = ("spec", "http", index, "route", d_index)
        location = (
            vs.locate(*weight_at, "weight") if dest.weight is not None else vs.locate(*weight_at)
        )
        if service is not None and service.external_name is not None:
            host = service.external_name  # route.go GetDestinationCluster: one hop only
        targets.append(
            WeightedTarget(
                cluster_name(dest_port, dest.destination.subset, host),
                dest.weight or 0,
                host,
                dest.destination.subset,
                location,
                HeaderOpsPlan.of(dest.headers.request if dest.headers else None),
                HeaderOpsPlan.of(dest.headers.response if dest.headers else None),
                _authority(dest.headers),
                dest.destination.port.number if dest.destination.port else None,
                vs.locate(*weight_at, "destination", "subset") if dest.destination.subset else None,
            )
        )
    if len(targets) == 1:
        return Forward(tuple(targets), weighted=False)
    return Forward(tuple(t for t in targets if t.weight > 0), weighted=True)


def _authority(headers: istio.Headers | None) -> str | None:
    return headers.request.authority() if headers and headers.request else None


def _retry(retries: istio.HTTPRetry | None, hashed: bool = False) -> RetryPlan | None:
    if retries is None:
        return RetryPlan(attempts=2, retry_on=DEFAULT_RETRY_ON, previous_hosts=not hashed)
    if retries.attempts <= 0:
        return None
    retry_on = DEFAULT_RETRY_ON
    codes: tuple[int, ...] = ()
    if retries.retryOn:
        tokens = [t.strip() for t in retries.retryOn.split(",") if t.strip()]
        codes = tuple(int(t) for t in tokens if t.isdigit())
        named = [t for t in tokens if not t.isdigit()]
        if codes and "retriable-status-codes" not in named:
            named.append("retriable-status-codes")
        retry_on = ",".join(named)
    per_try = istio.parse_duration(retries.perTryTimeout) if retries.perTryTimeout else None
    previous_hosts = not hashed
    if retries.retryIgnorePreviousHosts is not None:
        previous_hosts = retries.retryIgnorePreviousHosts
    backoff = istio.parse_duration(retries.backoff) if retries.backoff else None
    remote = bool(retries.retryRemoteLocalities)  # retry.go: previous_priorities
    return RetryPlan(retries.attempts, retry_on, per_try, codes, previous_hosts, backoff, remote)


def _fault(fault: istio.HTTPFaultInjection | None) -> FaultPlan | None:
    if fault is None:
        return None
    plan = FaultPlan()
    if fault.delay is not None and fault.delay.fixedDelay:
        if fault.delay.percentage is not None:
            percent = fault.delay.percentage.value
        else:
            percent = float(fault.delay.percent or 0)
        plan = FaultPlan(istio.parse_duration(fault.delay.fixedDelay), percent)
    if fault.abort is not None and fault.abort.httpStatus is not None:
        percent = fault.abort.percentage.value if fault.abort.percentage else 0.0
        plan = FaultPlan(plan.delay_s, plan.delay_percent, fault.abort.httpStatus, percent)
    return plan
