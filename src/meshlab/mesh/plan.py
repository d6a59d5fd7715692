"""What istiod would send a client sidecar in the lab namespace, as plain data.

`build_plan` is the one place where Istio semantics live (docs/reference/backends.md lists them):
which VirtualService owns a host, how rules become ordered routes, how weights become
weighted clusters, which DestinationRule defines subsets and load balancing. The Envoy
renderer and the expectation code both read the plan, so they cannot disagree. How names
resolve (hosts, wildcards, exportTo, selectors, mesh binding) is meshlab.mesh.names.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal

from meshlab.errors import Location
from meshlab.load import istio
from meshlab.load.manifests import Resource
from meshlab.mesh.names import (
    ROOT_NAMESPACE,
    bound_to_mesh,
    catch_all_uri,
    host_matches,
    resolve_host,
    selects,
    specificity,
    vhost_domains,
    visible_to,
)
from meshlab.mesh.registry import Endpoint, MeshService, Registry, build_registry

PASSTHROUGH_CLUSTER = "PassthroughCluster"
DEFAULT_RETRY_ON = "connect-failure,refused-stream,unavailable,cancelled,retriable-status-codes"


def cluster_name(port: int, subset: str | None, host: str) -> str:
    """Istio's BuildSubsetKey: `outbound|9080|v1|reviews.default.svc.cluster.local`."""
    return f"outbound|{port}|{subset or ''}|{host}"


@dataclass(frozen=True)
class Note:
    """Something the embedded backend does not simulate, said out loud rather than ignored."""

    message: str
    location: Location | None = None


@dataclass
class ClusterPlan:
    name: str
    service: MeshService
    port: int
    subset: str | None
    subset_labels: dict[str, str]
    endpoints: list[Endpoint]
    lb_policy: str = "LEAST_REQUEST"
    destination_rule: Resource | None = None


@dataclass(frozen=True)
class StringMatchPlan:
    kind: Literal["exact", "prefix", "regex", "present"]
    value: str = ""


@dataclass(frozen=True)
class HeaderMatchPlan:
    name: str
    match: StringMatchPlan
    invert: bool = False


@dataclass(frozen=True)
class RouteMatchPlan:
    path: StringMatchPlan = StringMatchPlan("prefix", "/")
    case_sensitive: bool = True
    headers: tuple[HeaderMatchPlan, ...] = ()
    query: tuple[tuple[str, StringMatchPlan], ...] = ()

    @property
    def is_catch_all(self) -> bool:
        """Istio's isCatchAllRoute (pilot/pkg/networking/core/route/route.go): a catch-all
        path and no header or query matcher; the config-time filters are already applied."""
        path_all = catch_all_uri(self.path.kind, self.path.value)
        return path_all and not self.headers and not self.query


@dataclass(frozen=True)
class HeaderOpsPlan:
    """Istio's HeaderOperations: `set` overwrites, `add` appends, `remove` drops."""

    set: tuple[tuple[str, str], ...] = ()
    add: tuple[tuple[str, str], ...] = ()
    remove: tuple[str, ...] = ()

    @staticmethod
    def of(ops: istio.HeaderOperations | None) -> HeaderOpsPlan:
        if ops is None:
            return HeaderOpsPlan()
        return HeaderOpsPlan(tuple(ops.set.items()), tuple(ops.add.items()), tuple(ops.remove))

    def __add__(self, other: HeaderOpsPlan) -> HeaderOpsPlan:
        return HeaderOpsPlan(self.set + other.set, self.add + other.add, self.remove + other.remove)

    def __bool__(self) -> bool:
        return bool(self.set or self.add or self.remove)


@dataclass(frozen=True)
class WeightedTarget:
    cluster: str
    weight: int
    host: str
    subset: str | None
    location: Location | None
    request_headers: HeaderOpsPlan = HeaderOpsPlan()
    response_headers: HeaderOpsPlan = HeaderOpsPlan()


@dataclass(frozen=True)
class Forward:
    targets: tuple[WeightedTarget, ...]
    weighted: bool  # False: one destination, all traffic (its weight is ignored)


@dataclass(frozen=True)
class Redirect:
    uri: str | None
    authority: str | None
    code: int


@dataclass(frozen=True)
class DirectResponse:
    status: int
    body: str | None


@dataclass(frozen=True)
class RetryPlan:
    attempts: int
    retry_on: str
    per_try_timeout_s: float | None = None
    retriable_status_codes: tuple[int, ...] = ()
    previous_hosts: bool = True  # retry_host_predicate previous_hosts
    backoff_s: float | None = None


@dataclass(frozen=True)
class FaultPlan:
    delay_s: float | None = None
    delay_percent: float = 0.0
    abort_status: int | None = None
    abort_percent: float = 0.0


@dataclass(frozen=True)
class HashPolicyPlan:
    """What a consistent hash keys on: a header, a cookie (Envoy sets it when a ttl is given),
    the client's address, or a query parameter."""

    kind: Literal["header", "cookie", "source_ip", "query_parameter"]
    name: str = ""
    ttl_s: float | None = None
    path: str | None = None


@dataclass
class RoutePlan:
    name: str
    match: RouteMatchPlan
    action: Forward | Redirect | DirectResponse
    timeout_s: float = 0.0
    retry: RetryPlan | None = None
    fault: FaultPlan | None = None
    hash_policy: HashPolicyPlan | None = None
    prefix_rewrite: str | None = None
    authority_rewrite: str | None = None
    request_headers: HeaderOpsPlan = HeaderOpsPlan()
    response_headers: HeaderOpsPlan = HeaderOpsPlan()
    virtual_service: Resource | None = None
    location: Location | None = None


@dataclass
class VirtualHostPlan:
    name: str
    domains: list[str]
    routes: list[RoutePlan]
    service: MeshService | None
    virtual_service: Resource | None = None


@dataclass
class ListenerPlan:
    """One outbound listener. HTTP listeners share a route table per port, like Istio's `8080`."""

    name: str
    port: int
    protocol: Literal["HTTP", "TCP"]
    route_table: str | None = None
    tcp_cluster: str | None = None
    tcp_service: MeshService | None = None


@dataclass
class MeshPlan:
    client_namespace: str
    registry: Registry
    clusters: dict[str, ClusterPlan]
    route_tables: dict[str, list[VirtualHostPlan]]
    listeners: list[ListenerPlan]
    notes: list[Note]

    def listener_for(self, port: int) -> ListenerPlan | None:
        return next(
            (lst for lst in self.listeners if lst.protocol == "HTTP" and lst.port == port), None
        )


def build_plan(resources: Sequence[Resource], client_namespace: str = "default") -> MeshPlan:
    registry = build_registry(resources)
    notes: list[Note] = []
    destination_rules = [r for r in resources if r.kind == "DestinationRule"]

    def rule_for(host: str) -> MergedRule | None:
        service = registry.service_by_fqdn(host)
        if service is None:
            return None
        return _destination_rule_for(service, destination_rules, client_namespace)

    virtual_services = _mesh_virtual_services(resources, client_namespace)
    clusters: dict[str, ClusterPlan] = {}
    for service in registry.services:
        rule = _destination_rule_for(service, destination_rules, client_namespace)
        for cluster in _clusters_for(service, rule, notes):
            clusters[cluster.name] = cluster
    route_tables: dict[str, list[VirtualHostPlan]] = {}
    listeners: list[ListenerPlan] = []
    http_ports = sorted({p.number for s in registry.services for p in s.ports if p.is_http})
    for port in http_ports:
        table = str(port)
        vhosts = []
        for service in registry.services:
            if service.port(port) is None or not service.port(port).is_http:  # type: ignore[union-attr]
                continue
            vhosts.append(
                _virtual_host(
                    service, port, virtual_services, rule_for, client_namespace, registry, notes
                )
            )
        vhosts.sort(key=lambda v: v.name)
        vhosts.append(_allow_any_vhost())
        route_tables[table] = vhosts
        listeners.append(ListenerPlan(f"0.0.0.0_{port}", port, "HTTP", route_table=table))
    for service in registry.services:
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


# --- DestinationRules -> clusters --------------------------------------------------------


def _destination_rule_for(
    service: MeshService, rules: list[Resource], client_namespace: str
) -> MergedRule | None:
    """Client namespace, then the service's, then the root namespace; most specific host first;
    same-host rules in one namespace merge (first subset definition and first policy win)."""
    for namespace in dict.fromkeys((client_namespace, service.namespace, ROOT_NAMESPACE)):
        candidates = []
        for rule in rules:
            spec: istio.DestinationRuleSpec = rule.body.spec
            if rule.namespace != namespace:
                continue
            if not visible_to(spec.exportTo, rule.namespace, client_namespace):
                continue
            host = resolve_host(spec.host, rule.namespace)
            if host_matches(host, service.fqdn):
                candidates.append((specificity(host), host, rule))
        if candidates:
            # Istio merges same-host rules in config order: oldest first, then by name.
            candidates.sort(key=lambda c: (c[0], _config_order(c[2])))
            best_host = candidates[0][1]
            same_host = [c[2] for c in candidates if c[1] == best_host]
            return MergedRule.merge(same_host)
    return None


@dataclass
class MergedRule:
    rules: list[Resource]
    policy: istio.TrafficPolicy | None
    subsets: list[tuple[istio.Subset, Resource, int]]

    @staticmethod
    def merge(rules: list[Resource]) -> MergedRule:
        policy = next((r.body.spec.trafficPolicy for r in rules if r.body.spec.trafficPolicy), None)
        seen: set[str] = set()
        subsets = []
        for rule in rules:
            for index, subset in enumerate(rule.body.spec.subsets):
                if subset.name not in seen:
                    seen.add(subset.name)
                    subsets.append((subset, rule, index))
        return MergedRule(rules, policy, subsets)

    def subset(self, name: str) -> tuple[istio.Subset, Resource, int] | None:
        return next((s for s in self.subsets if s[0].name == name), None)


def _clusters_for(
    service: MeshService, rule: MergedRule | None, notes: list[Note]
) -> list[ClusterPlan]:
    clusters = []
    base_lb = _lb_policy(rule.policy if rule else None)
    for port in service.ports:
        endpoints = service.endpoints.get(port.number, [])
        clusters.append(
            ClusterPlan(
                cluster_name(port.number, None, service.fqdn),
                service,
                port.number,
                None,
                {},
                endpoints,
                base_lb,
                rule.rules[0] if rule else None,
            )
        )
        for subset, owner, _ in rule.subsets if rule else []:
            selected = [e for e in endpoints if selects(subset.labels, e.pod.labels)]
            lb = base_lb
            if subset.trafficPolicy and subset.trafficPolicy.loadBalancer:
                lb = _lb_policy(subset.trafficPolicy)
            clusters.append(
                ClusterPlan(
                    cluster_name(port.number, subset.name, service.fqdn),
                    service,
                    port.number,
                    subset.name,
                    dict(subset.labels),
                    selected,
                    lb,
                    owner,
                )
            )
    return clusters


def _lb_policy(policy: istio.TrafficPolicy | None) -> str:
    """Unset means LEAST_REQUEST in Istio (not Envoy's ROUND_ROBIN); LEAST_CONN is an alias."""
    lb = policy.loadBalancer if policy else None
    if lb is None:
        return "LEAST_REQUEST"
    if lb.consistentHash is not None:
        return "MAGLEV" if lb.consistentHash.maglev is not None else "RING_HASH"
    # PASSTHROUGH (original destination) has no meaning offline: it is noted, and the pods
    # share traffic as with the default.
    return {"ROUND_ROBIN": "ROUND_ROBIN", "RANDOM": "RANDOM"}.get(lb.simple or "", "LEAST_REQUEST")


def _consistent_hash(rule: MergedRule | None, subset: str | None) -> istio.ConsistentHash | None:
    """The consistentHash a route to this destination uses (subset policy wins over the rule's)."""
    if rule is None:
        return None
    policy = rule.policy
    if subset:
        found = rule.subset(subset)
        if found and found[0].trafficPolicy and found[0].trafficPolicy.loadBalancer:
            policy = found[0].trafficPolicy
    lb = policy.loadBalancer if policy else None
    return lb.consistentHash if lb else None


def _hash_policy(rule: MergedRule | None, subset: str | None) -> HashPolicyPlan | None:
    """Istio's ConsistentHashToHashPolicy: the route's hash key for this destination."""
    consistent_hash = _consistent_hash(rule, subset)
    if consistent_hash is None:
        return None
    if consistent_hash.httpHeaderName:
        return HashPolicyPlan("header", consistent_hash.httpHeaderName.lower())
    if consistent_hash.httpCookie is not None:
        cookie = consistent_hash.httpCookie
        ttl = istio.parse_duration(cookie.ttl) if cookie.ttl else None
        return HashPolicyPlan("cookie", cookie.name, ttl, cookie.path)
    if consistent_hash.useSourceIp:
        return HashPolicyPlan("source_ip")
    if consistent_hash.httpQueryParameterName:
        return HashPolicyPlan("query_parameter", consistent_hash.httpQueryParameterName)
    return None


# --- VirtualServices -> routes ------------------------------------------------------------


def _mesh_virtual_services(resources: Sequence[Resource], client_namespace: str) -> list[Resource]:
    """VirtualServices a sidecar sees, in Istio's order: bound to `mesh` (no gateways = mesh),
    exported to the client; private ones first, then oldest first, then by name/namespace."""
    found = []
    for r in resources:
        if r.kind != "VirtualService":
            continue
        spec: istio.VirtualServiceSpec = r.body.spec
        if not bound_to_mesh(spec.gateways):
            continue
        if not visible_to(spec.exportTo, r.namespace, client_namespace):
            continue
        private = spec.exportTo == ["."] and r.namespace == client_namespace
        found.append(((0 if private else 1, *_config_order(r)), r))
    return [r for _, r in sorted(found, key=lambda item: item[0])]


def _config_order(r: Resource) -> tuple[str, str, str]:
    """Istio's sortConfigByCreationTime: oldest creationTimestamp first, then name, namespace."""
    return (r.body.metadata.creationTimestamp or "", r.name, r.namespace)


def _virtual_host(
    service: MeshService,
    port: int,
    virtual_services: list[Resource],
    rule_for: Callable[[str], MergedRule | None],
    client_namespace: str,
    registry: Registry,
    notes: list[Note],
) -> VirtualHostPlan:
    name = f"{service.fqdn}:{port}"
    domains = vhost_domains(service.name, service.namespace, client_namespace)
    for vs in virtual_services:
        hosts = [resolve_host(h, vs.namespace) for h in vs.body.spec.hosts]
        if not any(host_matches(h, service.fqdn) for h in hosts):
            continue
        routes = _routes_for(vs, port, client_namespace, registry, rule_for, notes)
        # Every route filtered out: this VS yields no vhost, so the next VS for the host (if
        # any) gets it; with none, Istio keeps the service's default route.
        if routes:
            return VirtualHostPlan(name, domains, routes, service, vs)
    default = _default_route(service, port, rule_for(service.fqdn))
    return VirtualHostPlan(name, domains, [default], service)


def _default_route(service: MeshService, port: int, rule: MergedRule | None) -> RoutePlan:
    target = WeightedTarget(cluster_name(port, None, service.fqdn), 100, service.fqdn, None, None)
    return RoutePlan(
        "default",
        RouteMatchPlan(),
        Forward((target,), weighted=False),
        retry=_default_retry(),
        hash_policy=_hash_policy(rule, None),
    )


def _allow_any_vhost() -> VirtualHostPlan:
    target = WeightedTarget(PASSTHROUGH_CLUSTER, 100, "*", None, None)
    route = RoutePlan("allow_any", RouteMatchPlan(), Forward((target,), weighted=False))
    return VirtualHostPlan("allow_any", ["*"], [route], None)


def _default_retry() -> RetryPlan:
    return RetryPlan(attempts=2, retry_on=DEFAULT_RETRY_ON)


def _routes_for(
    vs: Resource,
    port: int,
    client_namespace: str,
    registry: Registry,
    rule_for: Callable[[str], MergedRule | None],
    notes: list[Note],
) -> list[RoutePlan]:
    spec: istio.VirtualServiceSpec = vs.body.spec
    routes: list[RoutePlan] = []
    for index, http in enumerate(spec.http):
        matches: list[tuple[int | None, istio.HTTPMatchRequest | None]] = (
            list(enumerate(http.match)) if http.match else [(None, None)]
        )
        for match_index, match in matches:
            if match is not None and not _applies_to_sidecar(match, port, client_namespace):
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


def _applies_to_sidecar(match: istio.HTTPMatchRequest, port: int, client_namespace: str) -> bool:
    """Config-time filters: port, gateways, sourceLabels, sourceNamespace (the probe client
    is a pod in the lab namespace with no labels). Istio's sourceMatchHTTP: a non-empty
    match.gateways replaces the source checks (`mesh` listed = the sidecar matches)."""
    if match.port is not None and match.port != port:
        return False
    if match.gateways:
        return bound_to_mesh(match.gateways)
    if match.sourceLabels:
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
    if isinstance(plan.action, Forward) and len(plan.action.targets) == 1:
        target = plan.action.targets[0]  # the hash comes from the destination's own rule
        rule = rule_for(target.host)
        plan.hash_policy = _hash_policy(rule, target.subset)
        hashed = _consistent_hash(rule, target.subset) is not None
    # Istio's ConvertPolicy(policy, consistentHash): no previous_hosts next to a hash policy.
    plan.retry = _retry(http.retries, hashed=hashed)
    plan.fault = _fault(http.fault)
    if http.rewrite:
        plan.prefix_rewrite = http.rewrite.uri
        plan.authority_rewrite = http.rewrite.authority
    if http.headers is not None:
        plan.request_headers = HeaderOpsPlan.of(http.headers.request)
        plan.response_headers = HeaderOpsPlan.of(http.headers.response)
    if isinstance(plan.action, Forward) and not plan.action.weighted:
        # One destination: Istio puts its header operations on the route itself.
        only = plan.action.targets[0]
        plan.request_headers += only.request_headers
        plan.response_headers += only.response_headers
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
    headers += [HeaderMatchPlan(k, _string_match(v)) for k, v in match.headers.items()]
    headers += [
        HeaderMatchPlan(k, _string_match(v), invert=True) for k, v in match.withoutHeaders.items()
    ]
    query = tuple((k, _string_match(v)) for k, v in match.queryParams.items())
    return RouteMatchPlan(path, not match.ignoreUriCase, tuple(headers), query)


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
        service = registry.service_by_fqdn(host)
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
        targets.append(
            WeightedTarget(
                cluster_name(dest_port, dest.destination.subset, host),
                dest.weight or 0,
                host,
                dest.destination.subset,
                location,
                HeaderOpsPlan.of(dest.headers.request if dest.headers else None),
                HeaderOpsPlan.of(dest.headers.response if dest.headers else None),
            )
        )
    if len(targets) == 1:
        return Forward(tuple(targets), weighted=False)
    return Forward(tuple(t for t in targets if t.weight > 0), weighted=True)


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
    return RetryPlan(retries.attempts, retry_on, per_try, codes, previous_hosts, backoff)


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


def _note_unsimulated(resources: Sequence[Resource], notes: list[Note]) -> None:
    for r in resources:
        if r.kind in ("Gateway", "ServiceEntry", "Sidecar", "WorkloadEntry", "WorkloadGroup"):
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
                if policy is not None and getattr(policy, part) is not None:
                    notes.append(
                        Note(
                            f"{r.ref}: trafficPolicy.{part} is not simulated by the "
                            "embedded backend yet",
                            r.locate("spec", "trafficPolicy", part),
                        )
                    )
