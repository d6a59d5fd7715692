"""Where traffic enters a pod: its sidecar's inbound side, and kube-proxy for clients
without a sidecar.

Each meshed pod gets an Envoy internal listener per container port (`inbound~<pod>~<port>`:
no socket, reachable only from Envoy's own clusters), shaped like Istio's inbound chain
(listener_builder.go / listener_inbound.go: an HTTP connection manager routing everything to
`inbound|<port>||`, the local app). Outbound clusters reach the pod there, so a call enters
through the callee's sidecar as in a cluster; mTLS and per-pod policies live on this side.
A client without a sidecar has no outbound listener: it reaches a Service's ClusterIP,
where kube-proxy picks one of its pods at random (iptables mode); `kube-proxy~<host>~<port>`
listeners play that, a TCP proxy with random balancing over the pods' inbound sides.
"""

from __future__ import annotations

from typing import Any

from meshlab.backends.embedded.envoy.clusters import (
    Addresses,
    EndpointOf,
    inbound_listener_name,
    socket_address,
    static_cluster,
)
from meshlab.backends.embedded.envoy.mtls import MeshTls, inbound_chains
from meshlab.backends.embedded.envoy.routes import T
from meshlab.mesh.registry import Registry

_HCM = T + "extensions.filters.network.http_connection_manager.v3.HttpConnectionManager"
_ROUTER = T + "extensions.filters.http.router.v3.Router"
_TCP_PROXY = T + "extensions.filters.network.tcp_proxy.v3.TcpProxy"


def kube_proxy_listener_name(host: str, port: int) -> str:
    return f"kube-proxy~{host}~{port}"


def inbound_side(
    registry: Registry, meshed: frozenset[str], addresses: Addresses, tls: MeshTls | None = None
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """An internal listener and an `inbound|<port>||` cluster per meshed pod and port; with
    `tls`, the filter chains the pod's PeerAuthentication mode asks for (envoy/mtls.py)."""
    tcp_only = _tcp_only_ports(registry)
    listeners: list[dict[str, Any]] = []
    clusters: list[dict[str, Any]] = []
    for pod in registry.pods:
        if pod.name not in meshed:
            continue
        for port, local in sorted(addresses.get(pod.name, {}).items()):
            name = inbound_listener_name(pod.name, port)
            app = f"{pod.name}~inbound|{port}||"
            clusters.append(static_cluster(app, [(pod.name, socket_address(local))]))
            tcp = (pod.name, port) in tcp_only
            filters = [_tcp_filter(app) if tcp else _http_filter(app, port)]
            listener_filters, chains = inbound_chains(tls, pod.name, port, filters)
            listener: dict[str, Any] = {
                "name": name,
                "internal_listener": {},
                "filter_chains": chains,
            }
            if listener_filters:
                listener["listener_filters"] = listener_filters
            listeners.append(listener)
    return listeners, clusters


def _tcp_only_ports(registry: Registry) -> set[tuple[str, int]]:
    """(pod, container port) pairs that only non-HTTP Service ports target: a TCP inbound."""
    http: set[tuple[str, int]] = set()
    tcp: set[tuple[str, int]] = set()
    for service in registry.services:
        for sport in service.ports:
            for endpoint in service.endpoints.get(sport.number, []):
                key = (endpoint.pod.name, endpoint.port)
                (http if sport.is_http else tcp).add(key)
    return tcp - http


def _http_filter(cluster: str, port: int) -> dict[str, Any]:
    return {
        "name": "envoy.filters.network.http_connection_manager",
        "typed_config": {
            "@type": _HCM,
            "stat_prefix": f"inbound_0.0.0.0_{port}",
            "stream_idle_timeout": "0s",
            "route_config": {
                "name": f"inbound|{port}||",
                "validate_clusters": False,
                "virtual_hosts": [
                    {
                        "name": f"inbound|http|{port}",
                        "domains": ["*"],
                        "routes": [
                            {
                                "name": "default",
                                "match": {"prefix": "/"},
                                # listener_inbound.go: no timeout on the inbound route
                                "route": {"cluster": cluster, "timeout": "0s"},
                            }
                        ],
                    }
                ],
            },
            "http_filters": [
                {"name": "envoy.filters.http.router", "typed_config": {"@type": _ROUTER}}
            ],
        },
    }


def _tcp_filter(cluster: str) -> dict[str, Any]:
    return {
        "name": "envoy.filters.network.tcp_proxy",
        "typed_config": {"@type": _TCP_PROXY, "stat_prefix": cluster, "cluster": cluster},
    }


def kube_proxy(
    registry: Registry, endpoint_of: EndpointOf, dialled: frozenset[str] | None = None
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """A TCP listener per Service port, spreading connections over its pods at random; only
    for the Services in `dialled` (their FQDNs) when a run knows which it can dial."""
    listeners: list[dict[str, Any]] = []
    clusters: list[dict[str, Any]] = []
    for service in registry.services:
        if service.headless:
            continue  # no ClusterIP: a client resolves the pods themselves
        if dialled is not None and service.fqdn not in dialled:
            continue
        for sport in service.ports:
            if sport.protocol == "UDP":
                continue
            endpoints = [
                (e.pod.name, address)
                for e in service.endpoints.get(sport.number, [])
                if (address := endpoint_of(e.pod.name, e.port)) is not None
            ]
            name = kube_proxy_listener_name(service.fqdn, sport.number)
            out = static_cluster(name, endpoints)
            out["lb_policy"] = "RANDOM"
            clusters.append(out)
            listeners.append(
                {
                    "name": name,
                    "address": socket_address(0),
                    "filter_chains": [{"filters": [_tcp_filter(name)]}],
                }
            )
    return listeners, clusters
