"""Clusters as Envoy reads them. A pod with a sidecar is reached through its inbound side
(an Envoy internal listener `inbound~<pod>~<port>`, the stand-in behind it); a pod without one
directly at its stand-in's 127.0.0.1 port, as a sidecar reaches a pod outside the mesh."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from meshlab.mesh.plan import ClusterPlan
from meshlab.records import dataclass

HTTP_OPTIONS = "envoy.extensions.upstreams.http.v3.HttpProtocolOptions"
Addresses = Mapping[str, Mapping[int, int]]  # pod name -> container port -> 127.0.0.1 port
# (pod, container port) -> the Envoy address where that pod's traffic enters, or None
EndpointOf = Callable[[str, int], dict[str, Any] | None]


def socket_address(port: int) -> dict[str, Any]:
    return {"socket_address": {"address": "127.0.0.1", "port_value": port}}


def inbound_listener_name(pod: str, port: int) -> str:
    """The internal listener standing for a pod's sidecar inbound side on `port`."""
    return f"inbound~{pod}~{port}"


def internal_address(listener: str) -> dict[str, Any]:
    return {"envoy_internal_address": {"server_listener_name": listener}}


def direct_endpoints(addresses: Addresses) -> EndpointOf:
    """Every pod reached at its stand-in's port (the single client proxy's view)."""

    def endpoint(pod: str, port: int) -> dict[str, Any] | None:
        local = addresses.get(pod, {}).get(port)
        return None if local is None else socket_address(local)

    return endpoint


def mesh_endpoints(addresses: Addresses, meshed: frozenset[str]) -> EndpointOf:
    """Meshed pods through their inbound internal listener, the others directly."""
    direct = direct_endpoints(addresses)

    def endpoint(pod: str, port: int) -> dict[str, Any] | None:
        if pod in meshed and port in addresses.get(pod, {}):
            return internal_address(inbound_listener_name(pod, port))
        return direct(pod, port)

    return endpoint


@dataclass(frozen=True)
class UpstreamTls:
    """Istio mTLS on a cluster (envoy/mtls.py decides it): `socket` for every endpoint
    (`auto_for` None: DestinationRule ISTIO_MUTUAL), or auto mTLS: only for the pods named
    in `auto_for` (those with a sidecar), plaintext to the others."""

    socket: dict[str, Any]
    auto_for: frozenset[str] | None = None


def cluster(
    plan: ClusterPlan, endpoint_of: EndpointOf, prefix: str = "", tls: UpstreamTls | None = None
) -> dict[str, Any]:
    """An outbound cluster as istiod writes it (cluster.go): its LB policy, Istio's
    unlimited circuit breakers by default, the `istio` metadata naming the Service, and
    Istio's mTLS when `tls` says so."""
    endpoints = [
        (e.pod.name, address)
        for e in plan.endpoints
        if (address := endpoint_of(e.pod.name, e.port)) is not None
    ]
    out = static_cluster(prefix + plan.name, endpoints)
    out["lb_policy"] = plan.lb_policy
    # cluster_traffic_policy.go ApplyRingHashLoadBalancer: the size only when istiod sets one
    if plan.lb_policy == "RING_HASH" and plan.hash_table_size:
        out["ring_hash_lb_config"] = {"minimum_ring_size": str(plan.hash_table_size)}
    if plan.lb_policy == "MAGLEV" and plan.hash_table_size:
        out["maglev_lb_config"] = {"table_size": str(plan.hash_table_size)}
    out.update(resilience(plan))
    out["metadata"] = {
        "filter_metadata": {
            "istio": {
                "services": [
                    {
                        "host": plan.service.fqdn,
                        "name": plan.service.name,
                        "namespace": plan.service.namespace,
                    }
                ]
            }
        }
    }
    if tls is not None:
        _apply_tls(out, tls)
    return out


def resilience(plan: ClusterPlan) -> dict[str, Any]:
    """Circuit breakers (on every cluster), the pool's HTTP options and outlier detection,
    as cluster_traffic_policy.go applyConnectionPool / applyOutlierDetection write them."""
    pool = plan.pool
    out: dict[str, Any] = {
        "circuit_breakers": {
            "thresholds": [
                {
                    "max_connections": pool.max_connections,
                    "max_pending_requests": pool.max_pending_requests,
                    "max_requests": pool.max_requests,
                    "max_retries": pool.max_retries,
                    "track_remaining": True,
                }
            ]
        }
    }
    if pool.connect_timeout != 10.0:
        out["connect_timeout"] = _duration(pool.connect_timeout)
    common: dict[str, Any] = {}
    if pool.idle_timeout is not None:
        common["idle_timeout"] = _duration(pool.idle_timeout)
    if pool.max_requests_per_connection:
        common["max_requests_per_connection"] = pool.max_requests_per_connection
    if common:
        out["typed_extension_protocol_options"] = {
            HTTP_OPTIONS: {
                "@type": f"type.googleapis.com/{HTTP_OPTIONS}",
                "common_http_protocol_options": common,
                "explicit_http_config": {"http_protocol_options": {}},
            }
        }
    outlier = plan.outlier
    if outlier is None:
        return out
    detection: dict[str, Any] = {"enforcing_success_rate": 0}
    if outlier.consecutive_5xx is not None:
        detection["consecutive_5xx"] = outlier.consecutive_5xx
        detection["enforcing_consecutive_5xx"] = 100 if outlier.consecutive_5xx else 0
    if outlier.consecutive_gateway_failure is not None:
        detection["consecutive_gateway_failure"] = outlier.consecutive_gateway_failure
        detection["enforcing_consecutive_gateway_failure"] = (
            100 if outlier.consecutive_gateway_failure else 0
        )
    if outlier.interval is not None:
        detection["interval"] = _duration(outlier.interval)
    if outlier.base_ejection_time is not None:
        detection["base_ejection_time"] = _duration(outlier.base_ejection_time)
    if outlier.max_ejection_percent:
        detection["max_ejection_percent"] = outlier.max_ejection_percent
    if outlier.split_local_origin:
        detection["split_external_local_origin_errors"] = True
        if outlier.consecutive_local_origin_failure:
            detection["consecutive_local_origin_failure"] = outlier.consecutive_local_origin_failure
            detection["enforcing_consecutive_local_origin_failure"] = 100
        detection["enforcing_local_origin_success_rate"] = 0
    out["outlier_detection"] = detection
    # Istio sets the panic threshold whenever the block is present (0 = panic off).
    out["common_lb_config"] = {
        "healthy_panic_threshold": {"value": outlier.healthy_panic_threshold}
    }
    return out


def _duration(seconds: float) -> str:
    """A protobuf JSON duration (`10s`, `0.250s`)."""
    return f"{seconds:.9f}".rstrip("0").rstrip(".") + "s"


_RAW_BUFFER = "type.googleapis.com/envoy.extensions.transport_sockets.raw_buffer.v3.RawBuffer"


def _apply_tls(out: dict[str, Any], tls: UpstreamTls) -> None:
    """cluster_tls.go applyUpstreamTLSSettings: auto-detected mTLS becomes transport socket
    matches on the endpoints' `tlsMode: istio` metadata (set for pods with a sidecar)."""
    if tls.auto_for is None:
        out["transport_socket"] = tls.socket
        return
    out["transport_socket_matches"] = [
        {"name": "tlsMode-istio", "match": {"tlsMode": "istio"}, "transport_socket": tls.socket},
        {
            "name": "tlsMode-disabled",
            "match": {},
            "transport_socket": {
                "name": "envoy.transport_sockets.raw_buffer",
                "typed_config": {"@type": _RAW_BUFFER},
            },
        },
    ]
    for group in out["load_assignment"]["endpoints"]:
        for lb in group["lb_endpoints"]:
            if lb["endpoint"]["hostname"] in tls.auto_for:
                lb["metadata"] = {
                    "filter_metadata": {"envoy.transport_socket_match": {"tlsMode": "istio"}}
                }


def static_cluster(name: str, endpoints: list[tuple[str, dict[str, Any]]]) -> dict[str, Any]:
    """A STATIC cluster of (hostname, address) endpoints."""
    return {
        "name": name,
        "type": "STATIC",
        "connect_timeout": "10s",
        "load_assignment": {
            "cluster_name": name,
            "endpoints": [
                {
                    "lb_endpoints": [
                        {"endpoint": {"address": address, "hostname": host}}
                        for host, address in endpoints
                    ]
                }
            ]
            if endpoints
            else [],
        },
    }
