"""Render plans as a static Envoy bootstrap, shaped like what istiod sends over xDS.

Static instead of xDS because the plan never changes during a run; names (listeners
`0.0.0.0_8080`, route tables `8080`, clusters `outbound|8080|safe|...`) and semantics match
Istio's so the Envoy config dump reads like a sidecar's. `render_bootstrap` renders the test
client's sidecar alone (golden files, `meshlab envoy-config`, validation); `render_mesh`
renders every proxy of the lab into one Envoy process, each proxy's objects prefixed with its
name (`deployment.default.webapp~0.0.0.0_8080`; the client's keep Istio's bare names).
Additions, all observational: response headers naming the upstream host, cluster and Envoy's
response flags, and an access log (off in runs: nothing reads it and it cost ~20% of Envoy's
throughput; `access_log=PATH` turns it on for debugging).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from meshlab.backends.embedded.envoy.clusters import (
    Addresses,
    EndpointOf,
    UpstreamTls,
    cluster,
    direct_endpoints,
    mesh_endpoints,
    socket_address,
    static_cluster,
)
from meshlab.backends.embedded.envoy.gateway_inbound import gateway_endpoints, gateway_twins
from meshlab.backends.embedded.envoy.inbound import inbound_side, kube_proxy
from meshlab.backends.embedded.envoy.mtls import MeshTls
from meshlab.backends.embedded.envoy.routes import T, header, virtual_host
from meshlab.backends.embedded.envoy.stats import DEFERRED_STAT_OPTIONS, stats_config
from meshlab.backends.embedded.standins.egress import ORIGINAL_DST_HEADER
from meshlab.mesh.passthrough import ALLOW_ANY
from meshlab.mesh.plan import (
    PASSTHROUGH_CLUSTER,
    ClusterPlan,
    DirectResponse,
    ListenerPlan,
    MeshPlan,
    VirtualHostPlan,
)
from meshlab.mesh.proxies import CLIENT_PROXY, MeshProxies, ProxyPlan

UPSTREAM_HOST_HEADER = "x-meshlab-upstream-host"
RESPONSE_FLAGS_HEADER = "x-meshlab-response-flags"
UPSTREAM_CLUSTER_HEADER = "x-meshlab-upstream-cluster"

_HCM = T + "extensions.filters.network.http_connection_manager.v3.HttpConnectionManager"
_ROUTER = T + "extensions.filters.http.router.v3.Router"
_FAULT = T + "extensions.filters.http.fault.v3.HTTPFault"
_TCP_PROXY = T + "extensions.filters.network.tcp_proxy.v3.TcpProxy"
_FILE_LOG = T + "extensions.access_loggers.file.v3.FileAccessLog"
_INTERNAL_LISTENER = T + "extensions.bootstrap.internal_listener.v3.InternalListener"
ACCESS_LOG_FORMAT = {
    "start_time": "%START_TIME%",
    "method": "%REQ(:METHOD)%",
    "path": "%REQ(X-ENVOY-ORIGINAL-PATH?:PATH)%",
    "authority": "%REQ(:AUTHORITY)%",
    "response_code": "%RESPONSE_CODE%",
    "response_flags": "%RESPONSE_FLAGS%",
    "route_name": "%ROUTE_NAME%",
    "upstream_cluster": "%UPSTREAM_CLUSTER%",
    "upstream_host": "%UPSTREAM_HOST%",
    "duration_ms": "%DURATION%",
    "request_id": "%REQ(X-REQUEST-ID)%",
}


def render_bootstrap(
    plan: MeshPlan, addresses: Addresses, *, access_log: str | None = None
) -> dict[str, Any]:
    """The test client's sidecar alone, every pod reached at its stand-in. Listeners bind
    127.0.0.1:0; read their ports from admin."""
    listeners, clusters = _proxy_resources(
        plan, "", direct_endpoints(addresses), access_log, gateway=False
    )
    return _bootstrap(plan, listeners, clusters)


def render_mesh(
    proxies: MeshProxies,
    addresses: Addresses,
    *,
    access_log: str | None = None,
    fixed_ports: Mapping[str, int] | None = None,
    tls: MeshTls | None = None,
    stats_prefixes: Sequence[str] = (),
) -> dict[str, Any]:
    """Every proxy of the lab in one Envoy: the client's sidecar, each workload's sidecar
    (outbound listeners, and an inbound side per pod and port), the gateways, and a
    kube-proxy listener per Service port for clients without a sidecar. Listeners bind
    127.0.0.1:0 unless `fixed_ports` names their port (`meshlab up`'s gateway). With `tls`,
    Istio's mTLS between the proxies (envoy/mtls.py); without, plaintext everywhere."""
    # a sidecar routing to the egress gateway reaches its listener's internal twin
    endpoint_of = gateway_endpoints(proxies, mesh_endpoints(addresses, proxies.meshed_pods))
    listeners: list[dict[str, Any]] = []
    clusters: list[dict[str, Any]] = []
    for proxy in proxies.all:
        more_listeners, more_clusters = _proxy_resources(
            proxy.plan,
            prefix_of(proxy),
            endpoint_of,
            access_log,
            proxy.kind == "gateway",
            _upstream_tls(tls, proxy),
        )
        listeners += more_listeners
        clusters += more_clusters
    for listener in listeners:
        if fixed_ports and listener["name"] in fixed_ports:
            listener["address"] = socket_address(fixed_ports[listener["name"]])
        _pass_to_original_destination(listener)
    registry = proxies.client.plan.registry
    inbound_listeners, inbound_clusters = inbound_side(
        registry, proxies.meshed_pods - proxies.unreached, addresses, tls
    )
    inbound_listeners += gateway_twins(proxies, listeners)
    proxy_listeners, proxy_clusters = kube_proxy(registry, endpoint_of, proxies.direct)
    out = _bootstrap(
        proxies.client.plan,
        listeners + inbound_listeners + proxy_listeners,
        clusters + inbound_clusters + proxy_clusters,
        regex=any(_uses_regex(p.plan) for p in proxies.all),
        stats_prefixes=stats_prefixes,
    )
    if inbound_listeners:
        out["bootstrap_extensions"] = [
            {
                "name": "envoy.bootstrap.internal_listener",
                "typed_config": {"@type": _INTERNAL_LISTENER},
            }
        ]
    return out


def _pass_to_original_destination(listener: dict[str, Any]) -> None:
    """Istio's PassthroughCluster is ORIGINAL_DST: on to the address the app dialled, which
    iptables keeps. Here the client says it (ORIGINAL_DST_HEADER, set only for a Service's
    ClusterIP, mesh/passthrough.py), and the catch-all's first route sends the call to the
    cluster that plays that ClusterIP: loopback only, as every cluster here. Without the
    header (a name outside the cluster) the catch-all's own route stays: no endpoint."""
    for chain in listener.get("filter_chains", []):
        for net in chain.get("filters", []):
            routes = net.get("typed_config", {}).get("route_config", {})
            for vhost in routes.get("virtual_hosts", []):
                if vhost["name"] != ALLOW_ANY:
                    continue
                present = {"name": ORIGINAL_DST_HEADER, "present_match": True}
                vhost["routes"].insert(
                    0,
                    {
                        "name": "allow_any~original_dst",
                        "match": {"prefix": "/", "headers": [present]},
                        "route": {"cluster_header": ORIGINAL_DST_HEADER, "timeout": "0s"},
                        "request_headers_to_remove": [ORIGINAL_DST_HEADER],
                    },
                )


def _upstream_tls(
    tls: MeshTls | None, proxy: ProxyPlan
) -> Callable[[ClusterPlan], UpstreamTls | None] | None:
    """How this proxy's clusters get their mTLS (None: plaintext everywhere)."""
    if tls is None:
        return None
    return lambda plan: tls.upstream(proxy, plan)


def prefix_of(proxy: ProxyPlan) -> str:
    """What a proxy's Envoy object names start with ("" for the test client's)."""
    return "" if proxy.name == CLIENT_PROXY else f"{proxy.name}~"


def _proxy_resources(
    plan: MeshPlan,
    prefix: str,
    endpoint_of: EndpointOf,
    access_log: str | None,
    gateway: bool,
    upstream_tls: Callable[[ClusterPlan], UpstreamTls | None] | None = None,
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    clusters = [
        cluster(c, endpoint_of, prefix, upstream_tls(c) if upstream_tls else None)
        for c in sorted(plan.clusters.values(), key=lambda c: c.name)
    ]
    clusters.append(static_cluster(prefix + PASSTHROUGH_CLUSTER, []))
    listeners = [_listener(lst, plan, prefix, access_log, gateway) for lst in plan.listeners]
    return listeners, clusters


def _bootstrap(
    plan: MeshPlan,
    listeners: list[dict[str, Any]],
    clusters: list[dict[str, Any]],
    regex: bool | None = None,
    stats_prefixes: Sequence[str] = (),
) -> dict[str, Any]:
    out: dict[str, Any] = {
        "node": {
            "id": f"sidecar~127.0.0.1~meshlab-client.{plan.client_namespace}~"
            f"{plan.client_namespace}.svc.cluster.local",
            "cluster": "meshlab-client",
        },
        "admin": {"address": socket_address(0)},
        "static_resources": {"listeners": listeners, "clusters": clusters},
        "stats_config": stats_config(stats_prefixes),
        "deferred_stat_options": DEFERRED_STAT_OPTIONS,
    }
    if _uses_regex(plan) if regex is None else regex:
        # Istio's bootstrap (pkg/bootstrap/config.go) raises Envoy's RE2 program-size limit
        # from 100 to the 32768 the webhook's checks assume; only written when needed.
        out["layered_runtime"] = {
            "layers": [
                {
                    "name": "global config",
                    "static_layer": {"re2.max_program_size.error_level": "32768"},
                }
            ]
        }
    return out


def _uses_regex(plan: MeshPlan) -> bool:
    for vhosts in plan.route_tables.values():
        for vhost in vhosts:
            for route in vhost.routes:
                matchers = [route.match.path, *(h.match for h in route.match.headers)]
                matchers += [m for _, m in route.match.query]
                if any(m.kind == "regex" for m in matchers):
                    return True
    return False


def _access_log(path: str | None) -> list[dict[str, Any]]:
    if path is None:
        return []
    return [
        {
            "name": "envoy.access_loggers.file",
            "typed_config": {
                "@type": _FILE_LOG,
                "path": path,
                "log_format": {"json_format": ACCESS_LOG_FORMAT},
            },
        }
    ]


def _listener(
    listener: ListenerPlan, plan: MeshPlan, prefix: str, access_log: str | None, gateway: bool
) -> dict[str, Any]:
    if listener.protocol == "TCP":
        assert listener.tcp_cluster is not None
        network_filter = {
            "name": "envoy.filters.network.tcp_proxy",
            "typed_config": {
                "@type": _TCP_PROXY,
                "stat_prefix": listener.tcp_cluster,
                "cluster": prefix + listener.tcp_cluster,
                "access_log": _access_log(access_log),
            },
        }
    else:
        network_filter = {
            "name": "envoy.filters.network.http_connection_manager",
            "typed_config": _http_connection_manager(listener, plan, prefix, access_log, gateway),
        }
    return {
        "name": prefix + listener.name,
        "address": socket_address(0),
        "filter_chains": [{"filters": [network_filter]}],
    }


def _http_connection_manager(
    listener: ListenerPlan, plan: MeshPlan, prefix: str, access_log: str | None, gateway: bool
) -> dict[str, Any]:
    table = listener.route_table
    assert table is not None
    out: dict[str, Any] = {
        "@type": _HCM,
        "stat_prefix": f"outbound_{listener.name}",
        "stream_idle_timeout": "0s",
        "access_log": _access_log(access_log),
        "local_reply_config": {
            "mappers": [
                {
                    "filter": {"response_flag_filter": {}},
                    "headers_to_add": [header(RESPONSE_FLAGS_HEADER, "%RESPONSE_FLAGS%")],
                }
            ]
        },
        "route_config": {
            "name": prefix + table,
            "validate_clusters": False,
            "ignore_port_in_host_matching": True,
            "response_headers_to_add": [
                header(UPSTREAM_HOST_HEADER, "%UPSTREAM_HOST%"),
                header(UPSTREAM_CLUSTER_HEADER, "%UPSTREAM_CLUSTER%"),
                header(RESPONSE_FLAGS_HEADER, "%RESPONSE_FLAGS%"),
            ],
            "virtual_hosts": [virtual_host(v, prefix) for v in plan.route_tables[table]],
        }
        | _direct_response_limit(plan.route_tables[table]),
        "http_filters": [
            {"name": "envoy.filters.http.fault", "typed_config": {"@type": _FAULT}},
            {"name": "envoy.filters.http.router", "typed_config": {"@type": _ROUTER}},
        ],
    }
    if gateway:
        # gateway.go buildGatewayConnectionManager: a gateway is the edge, so Envoy takes the
        # client's address from the connection and trusts no x-envoy-* header from outside.
        out["use_remote_address"] = True
    return out


def _direct_response_limit(vhosts: list[VirtualHostPlan]) -> dict[str, Any]:
    """istiod's DefaultMaxDirectResponseBodySizeBytes (1 MB, what its webhook allows; Envoy's
    default is 4 KB), written only when a directResponse has a body."""
    for vhost in vhosts:
        for route in vhost.routes:
            if isinstance(route.action, DirectResponse) and route.action.body is not None:
                return {"max_direct_response_body_size_bytes": 1024 * 1024}
    return {}


def placeholder_addresses(plan: MeshPlan, first_port: int = 20000) -> dict[str, dict[int, int]]:
    """Deterministic fake pod ports, for golden files and `meshlab envoy-config`."""
    addresses: dict[str, dict[int, int]] = {}
    port = first_port
    for pod in plan.registry.all_pods:
        addresses[pod.name] = {}
        for container_port in sorted({p.number for p in pod.ports}):
            addresses[pod.name][container_port] = port
            port += 1
    return addresses
