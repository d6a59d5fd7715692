"""The plan's data: what istiod would send a client sidecar (listeners, route tables, virtual
hosts, routes, clusters), as plain frozen dataclasses that the Envoy renderer, the
expectations and the kind backend read."""

from __future__ import annotations

from dataclasses import field
from typing import Literal

from meshlab.errors import Location
from meshlab.load import istio
from meshlab.load.manifests import Resource
from meshlab.mesh.names import (
    catch_all_uri,
)
from meshlab.mesh.registry import Endpoint, MeshService, Registry
from meshlab.mesh.resilience import OutlierPlan, PoolPlan
from meshlab.records import dataclass

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
    """One Envoy cluster istiod builds for a Service port, or for one DestinationRule subset of it
    (`outbound|port|subset|host`): its endpoints and the rule's load balancing, outlier detection
    and connection pool."""

    name: str
    service: MeshService
    port: int
    subset: str | None
    subset_labels: dict[str, str]
    endpoints: list[Endpoint]
    lb_policy: str = "LEAST_REQUEST"
    destination_rule: Resource | None = None
    outlier: OutlierPlan | None = None  # the DR's outlierDetection (mesh/resilience.py)
    # circuit breakers: Istio's unlimited defaults unless the rule sets a connectionPool
    pool: PoolPlan = field(default_factory=PoolPlan)
    # RING_HASH: minimum_ring_size; MAGLEV: table_size; None: Envoy's default (no lb config)
    hash_table_size: int | None = None


@dataclass(frozen=True)
class StringMatchPlan:
    """Istio's StringMatch as a route matches it: exact, prefix, regex, or `present` (an empty
    matcher or regex `*`: any value, as long as there is one)."""

    kind: Literal["exact", "prefix", "regex", "present"]
    value: str = ""


@dataclass(frozen=True)
class HeaderMatchPlan:
    """One header condition of a route: a header (or pseudo-header such as `:method`) and its
    matcher; `invert` for withoutHeaders, `claim` when it names a JWT claim instead."""

    name: str
    match: StringMatchPlan
    invert: bool = False
    # `@request.auth.claims.a.b` (or `[a][b]`): the JWT claim path, matched on the
    # jwt_authn filter's metadata instead of a header (route.go translateMetadataMatch)
    claim: tuple[str, ...] | None = None


@dataclass(frozen=True)
class RouteMatchPlan:
    """One HTTPMatchRequest of a VirtualService, as the Envoy route's match: path, headers and query
    parameters must all match; the default matches everything."""

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
        return HeaderOpsPlan(
            tuple((k, v) for k, v in ops.set.items() if not _internal(k)),
            tuple((k, v) for k, v in ops.add.items() if not _internal(k)),
            tuple(ops.remove),
        )

    def __add__(self, other: HeaderOpsPlan) -> HeaderOpsPlan:
        return HeaderOpsPlan(self.set + other.set, self.add + other.add, self.remove + other.remove)

    def __bool__(self) -> bool:
        return bool(self.set or self.add or self.remove)


def _internal(name: str) -> bool:
    """istiod's isInternalHeader: `host`/`:authority` become a host rewrite (the only such
    names validation lets through), never a header Envoy would refuse to set."""
    return name.startswith(":") or name.lower() == "host"


@dataclass(frozen=True)
class WeightedTarget:
    """One destination of an HTTP route: the cluster it sends to, its weight and the header
    operations Istio attaches to that destination, with where it was written for messages."""

    cluster: str
    weight: int
    host: str
    subset: str | None
    location: Location | None
    request_headers: HeaderOpsPlan = HeaderOpsPlan()
    response_headers: HeaderOpsPlan = HeaderOpsPlan()
    authority_rewrite: str | None = None  # from a `host`/`:authority` in its headers.request
    port: int | None = None  # destination.port as written (port-level hash settings need it)
    subset_location: Location | None = None  # the `subset:` line, where a missing one is fixed


@dataclass(frozen=True)
class Forward:
    """A route's forwarding action: one destination, or several split by weight."""

    targets: tuple[WeightedTarget, ...]
    weighted: bool  # False: one destination, all traffic (its weight is ignored)


@dataclass(frozen=True)
class Redirect:
    """An HTTPRedirect: Envoy answers the client itself with a redirect, sends nothing upstream."""

    uri: str | None
    authority: str | None
    code: int


@dataclass(frozen=True)
class DirectResponse:
    """An HTTPDirectResponse, or REGISTRY_ONLY's 502 for a host it does not know: Envoy answers
    with this status and body itself and sends nothing upstream."""

    status: int
    body: str | None


@dataclass(frozen=True)
class RetryPlan:
    """A route's retry policy: a VirtualService's HTTPRetry, or Istio's default of two attempts when
    it says nothing."""

    attempts: int
    retry_on: str
    per_try_timeout_s: float | None = None
    retriable_status_codes: tuple[int, ...] = ()
    previous_hosts: bool = True  # retry_host_predicate previous_hosts
    backoff_s: float | None = None
    remote_localities: bool = False  # retryRemoteLocalities: previous_priorities


@dataclass(frozen=True)
class FaultPlan:
    """An HTTPFaultInjection: delay and/or abort a percentage of a route's requests (Envoy's fault
    filter), to test how callers cope."""

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
    attributes: tuple[tuple[str, str], ...] = ()  # the cookie's attributes (SameSite=...)


@dataclass
class RoutePlan:
    """One Envoy route in a virtual host: a match, what to do with what it matches, and the timeout,
    retries, fault, hashing and rewrites Istio attaches; the VirtualService it came from and where,
    for messages."""

    name: str
    match: RouteMatchPlan
    action: Forward | Redirect | DirectResponse
    timeout_s: float = 0.0
    retry: RetryPlan | None = None
    fault: FaultPlan | None = None
    # route.go processDestination/processWeightedDestination: one per destination whose
    # DestinationRule hashes (a weighted route gathers them all, in order).
    hash_policies: tuple[HashPolicyPlan, ...] = ()
    prefix_rewrite: str | None = None
    authority_rewrite: str | None = None
    request_headers: HeaderOpsPlan = HeaderOpsPlan()
    response_headers: HeaderOpsPlan = HeaderOpsPlan()
    virtual_service: Resource | None = None
    location: Location | None = None

    @property
    def hash_policy(self) -> HashPolicyPlan | None:
        """The first hash policy: the one Envoy hashes with when its key is in the request."""
        return self.hash_policies[0] if self.hash_policies else None


@dataclass
class VirtualHostPlan:
    """One virtual host of a route table: the domains (Host header values) it answers for and its
    routes in order; the first that matches wins."""

    name: str
    domains: list[str]
    routes: list[RoutePlan]
    service: MeshService | None
    virtual_service: Resource | None = None


@dataclass
class ListenerPlan:
    """One outbound listener. HTTP listeners share a route table per port, like Istio's `8080`.
    A gateway's listener is found by the port clients call (`port`, the Gateway server's);
    the proxy listens on `bind_port` (its Service's targetPort) and a browser on the host
    reaches it on `node_port`."""

    name: str
    port: int
    protocol: Literal["HTTP", "TCP"]
    route_table: str | None = None
    tcp_cluster: str | None = None
    tcp_service: MeshService | None = None
    bind_port: int | None = None
    node_port: int | None = None


@dataclass(frozen=True)
class GatewayServer:
    """One Gateway server a gateway proxy serves: which Gateway, its port and its hosts as
    istiod reads them (`./` made the Gateway's namespace, `*/` dropped)."""

    gateway: str  # namespace/name
    port: int
    protocol: str
    hosts: tuple[str, ...]
    location: Location | None = None


@dataclass(frozen=True)
class GatewayView:
    """What makes a plan a gateway proxy's: its name and the servers it serves."""

    proxy: str  # namespace/name of the gateway workload, `istio-system/istio-ingressgateway`
    labels: tuple[tuple[str, str], ...]
    servers: tuple[GatewayServer, ...]


@dataclass
class MeshPlan:
    """All a proxy is given, as istiod would give it: listeners, route tables, clusters and the
    outbound policy, with the registry it was built from and what is not simulated."""

    client_namespace: str
    registry: Registry
    clusters: dict[str, ClusterPlan]
    route_tables: dict[str, list[VirtualHostPlan]]
    listeners: list[ListenerPlan]
    notes: list[Note]
    gateway: GatewayView | None = None  # None: a sidecar's plan
    # the sidecar's outboundTrafficPolicy: what happens to a name or port it imports nothing for
    outbound_mode: str = "ALLOW_ANY"

    def listener_for(self, port: int) -> ListenerPlan | None:
        return next(
            (
                lst
                for lst in self.listeners
                if lst.protocol == "HTTP" and port in (lst.port, lst.node_port)
            ),
            None,
        )


def config_order(r: Resource) -> tuple[str, str, str]:
    """Istio's sortConfigByCreationTime: oldest creationTimestamp first, then name, namespace."""
    return (r.body.metadata.creationTimestamp or "", r.name, r.namespace)
