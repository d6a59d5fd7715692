"""Render a MeshPlan as a static Envoy bootstrap, shaped like what istiod sends over xDS.

Static instead of xDS because the plan never changes during a run; names (listeners
`0.0.0.0_8080`, route tables `8080`, clusters `outbound|8080|safe|...`) and semantics match
Istio's so the Envoy config dump reads like a sidecar's. Three additions, all observational:
response headers naming the upstream host and Envoy's response flags, and an access log
(off in runs: nothing reads it and it cost ~20% of Envoy's throughput; `access_log=PATH`
turns it on for debugging, and the golden configs are rendered without it).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from meshlab.mesh.plan import (
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
    Redirect,
    RetryPlan,
    RouteMatchPlan,
    RoutePlan,
    StringMatchPlan,
    VirtualHostPlan,
)

UPSTREAM_HOST_HEADER = "x-meshlab-upstream-host"
RESPONSE_FLAGS_HEADER = "x-meshlab-response-flags"
UPSTREAM_CLUSTER_HEADER = "x-meshlab-upstream-cluster"
UINT32_MAX = 4294967295

_T = "type.googleapis.com/envoy."
_HCM = _T + "extensions.filters.network.http_connection_manager.v3.HttpConnectionManager"
_ROUTER = _T + "extensions.filters.http.router.v3.Router"
_FAULT = _T + "extensions.filters.http.fault.v3.HTTPFault"
_TCP_PROXY = _T + "extensions.filters.network.tcp_proxy.v3.TcpProxy"
_PREVIOUS_HOSTS = _T + "extensions.retry.host.previous_hosts.v3.PreviousHostsPredicate"
_PREVIOUS_PRIORITIES = (
    _T + "extensions.retry.priority.previous_priorities.v3.PreviousPrioritiesConfig"
)
_FILE_LOG = _T + "extensions.access_loggers.file.v3.FileAccessLog"
_REDIRECT_CODES = {
    301: "MOVED_PERMANENTLY",
    302: "FOUND",
    303: "SEE_OTHER",
    307: "TEMPORARY_REDIRECT",
    308: "PERMANENT_REDIRECT",
}
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

Addresses = Mapping[str, Mapping[int, int]]  # pod name -> container port -> 127.0.0.1 port


def render_bootstrap(
    plan: MeshPlan, addresses: Addresses, *, access_log: str | None = None
) -> dict[str, Any]:
    """The whole Envoy bootstrap. Listeners bind 127.0.0.1:0; read their ports from admin."""
    clusters = [
        _cluster(c, addresses) for c in sorted(plan.clusters.values(), key=lambda c: c.name)
    ]
    clusters.append(_static_cluster(PASSTHROUGH_CLUSTER, []))
    out: dict[str, Any] = {
        "node": {
            "id": f"sidecar~127.0.0.1~meshlab-client.{plan.client_namespace}~"
            f"{plan.client_namespace}.svc.cluster.local",
            "cluster": "meshlab-client",
        },
        "admin": {"address": _address(0)},
        "static_resources": {
            "listeners": [_listener(lst, plan, access_log) for lst in plan.listeners],
            "clusters": clusters,
        },
    }
    if _uses_regex(plan):
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


def _address(port: int) -> dict[str, Any]:
    return {"socket_address": {"address": "127.0.0.1", "port_value": port}}


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


def _listener(listener: ListenerPlan, plan: MeshPlan, access_log: str | None) -> dict[str, Any]:
    if listener.protocol == "TCP":
        network_filter = {
            "name": "envoy.filters.network.tcp_proxy",
            "typed_config": {
                "@type": _TCP_PROXY,
                "stat_prefix": listener.tcp_cluster,
                "cluster": listener.tcp_cluster,
                "access_log": _access_log(access_log),
            },
        }
    else:
        assert listener.route_table is not None
        network_filter = {
            "name": "envoy.filters.network.http_connection_manager",
            "typed_config": _http_connection_manager(listener, plan, access_log),
        }
    return {
        "name": listener.name,
        "address": _address(0),
        "filter_chains": [{"filters": [network_filter]}],
    }


def _http_connection_manager(
    listener: ListenerPlan, plan: MeshPlan, access_log: str | None
) -> dict[str, Any]:
    table = listener.route_table
    assert table is not None
    return {
        "@type": _HCM,
        "stat_prefix": f"outbound_{listener.name}",
        "stream_idle_timeout": "0s",
        "access_log": _access_log(access_log),
        "local_reply_config": {
            "mappers": [
                {
                    "filter": {"response_flag_filter": {}},
                    "headers_to_add": [_header(RESPONSE_FLAGS_HEADER, "%RESPONSE_FLAGS%")],
                }
            ]
        },
        "route_config": {
            "name": table,
            "validate_clusters": False,
            "ignore_port_in_host_matching": True,
            "response_headers_to_add": [
                _header(UPSTREAM_HOST_HEADER, "%UPSTREAM_HOST%"),
                _header(UPSTREAM_CLUSTER_HEADER, "%UPSTREAM_CLUSTER%"),
                _header(RESPONSE_FLAGS_HEADER, "%RESPONSE_FLAGS%"),
            ],
            "virtual_hosts": [_virtual_host(v) for v in plan.route_tables[table]],
        }
        | _direct_response_limit(plan.route_tables[table]),
        "http_filters": [
            {"name": "envoy.filters.http.fault", "typed_config": {"@type": _FAULT}},
            {"name": "envoy.filters.http.router", "typed_config": {"@type": _ROUTER}},
        ],
    }


def _direct_response_limit(vhosts: list[VirtualHostPlan]) -> dict[str, Any]:
    """istiod's DefaultMaxDirectResponseBodySizeBytes (1 MB, what its webhook allows; Envoy's
    default is 4 KB), written only when a directResponse has a body."""
    for vhost in vhosts:
        for route in vhost.routes:
            if isinstance(route.action, DirectResponse) and route.action.body is not None:
                return {"max_direct_response_body_size_bytes": 1024 * 1024}
    return {}


def _header(key: str, value: str, action: str = "OVERWRITE_IF_EXISTS_OR_ADD") -> dict[str, Any]:
    return {"header": {"key": key, "value": value}, "append_action": action}


def _virtual_host(vhost: VirtualHostPlan) -> dict[str, Any]:
    return {
        "name": vhost.name,
        "domains": vhost.domains,
        "routes": [_route(r) for r in vhost.routes],
    }


def _route(route: RoutePlan) -> dict[str, Any]:
    out: dict[str, Any] = {"match": _match(route.match)}
    if route.name:
        out["name"] = route.name
    action = route.action
    if isinstance(action, Redirect):
        redirect: dict[str, Any] = {
            "response_code": _REDIRECT_CODES.get(action.code, "MOVED_PERMANENTLY")
        }
        if action.uri:
            redirect["path_redirect"] = action.uri
        if action.authority:
            redirect["host_redirect"] = action.authority
        out["redirect"] = redirect
    elif isinstance(action, DirectResponse):
        direct: dict[str, Any] = {"status": action.status}
        if action.body is not None:
            direct["body"] = {"inline_string": action.body}
        out["direct_response"] = direct
    else:
        out["route"] = _route_action(route, action)
    if route.fault is not None:
        out["typed_per_filter_config"] = {"envoy.filters.http.fault": _fault(route.fault)}
    out.update(_header_ops("request", route.request_headers))
    out.update(_header_ops("response", route.response_headers))
    return out


def _header_ops(direction: str, ops: HeaderOpsPlan) -> dict[str, Any]:
    """Envoy's `<direction>_headers_to_add/_to_remove`: set overwrites, add appends."""
    out: dict[str, Any] = {}
    added = [_header(k, v) for k, v in ops.set]
    added += [_header(k, v, "APPEND_IF_EXISTS_OR_ADD") for k, v in ops.add]
    if added:
        out[f"{direction}_headers_to_add"] = added
    if ops.remove:
        out[f"{direction}_headers_to_remove"] = list(ops.remove)
    return out


def _route_action(route: RoutePlan, action: Forward) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if action.weighted:
        out["weighted_clusters"] = {
            "clusters": [
                {"name": t.cluster, "weight": t.weight}
                | _header_ops("request", t.request_headers)
                | _header_ops("response", t.response_headers)
                | ({"host_rewrite_literal": t.authority_rewrite} if t.authority_rewrite else {})
                for t in action.targets
            ]
        }
    else:
        out["cluster"] = action.targets[0].cluster
    out["timeout"] = _seconds(route.timeout_s)
    if route.retry is not None:
        out["retry_policy"] = _retry(route.retry)
    if route.hash_policies:
        out["hash_policy"] = [_hash_policy(h) for h in route.hash_policies]
    if route.prefix_rewrite:
        out["prefix_rewrite"] = route.prefix_rewrite
    if route.authority_rewrite:
        out["host_rewrite_literal"] = route.authority_rewrite
    return out


def _hash_policy(policy: HashPolicyPlan) -> dict[str, Any]:
    if policy.kind == "header":
        return {"header": {"header_name": policy.name}}
    if policy.kind == "cookie":
        cookie: dict[str, Any] = {"name": policy.name}
        if policy.ttl_s is not None:
            cookie["ttl"] = _seconds(policy.ttl_s)
        if policy.path:
            cookie["path"] = policy.path
        if policy.attributes:
            cookie["attributes"] = [
                {"name": k} | ({"value": v} if v else {}) for k, v in policy.attributes
            ]
        return {"cookie": cookie}
    if policy.kind == "source_ip":
        return {"connection_properties": {"source_ip": True}}
    return {"query_parameter": {"name": policy.name}}


def _seconds(value: float) -> str:
    return f"{value:.3f}s".replace(".000s", "s")


def _retry(retry: RetryPlan) -> dict[str, Any]:
    out: dict[str, Any] = {
        "retry_on": retry.retry_on,
        "num_retries": retry.attempts,
        "host_selection_retry_max_attempts": "5",
    }
    if retry.previous_hosts:
        out["retry_host_predicate"] = [
            {
                "name": "envoy.retry_host_predicates.previous_hosts",
                "typed_config": {"@type": _PREVIOUS_HOSTS},
            }
        ]
    if retry.remote_localities:
        # retry.go cachedRetryRemoteLocalitiesPredicate
        out["retry_priority"] = {
            "name": "envoy.retry_priorities.previous_priorities",
            "typed_config": {"@type": _PREVIOUS_PRIORITIES, "update_frequency": 2},
        }
    if retry.backoff_s is not None:
        out["retry_back_off"] = {"base_interval": _seconds(retry.backoff_s)}
    if retry.retriable_status_codes:
        out["retriable_status_codes"] = list(retry.retriable_status_codes)
    if retry.per_try_timeout_s is not None:
        out["per_try_timeout"] = _seconds(retry.per_try_timeout_s)
    return out


def _fault(fault: FaultPlan) -> dict[str, Any]:
    out: dict[str, Any] = {"@type": _FAULT}
    if fault.delay_s is not None:
        out["delay"] = {
            "fixed_delay": _seconds(fault.delay_s),
            "percentage": _fraction(fault.delay_percent),
        }
    if fault.abort_status is not None:
        out["abort"] = {
            "http_status": fault.abort_status,
            "percentage": _fraction(fault.abort_percent),
        }
    return out


def _fraction(percent: float) -> dict[str, Any]:
    return {"numerator": round(percent * 10000), "denominator": "MILLION"}


def _match(match: RouteMatchPlan) -> dict[str, Any]:
    out: dict[str, Any] = {}
    path = match.path
    if path.kind == "exact":
        out["path"] = path.value
    elif path.kind == "regex":
        out["safe_regex"] = {"regex": path.value}
    else:
        out["prefix"] = path.value
    if not match.case_sensitive:
        out["case_sensitive"] = False
    headers = [h for h in match.headers if h.claim is None]
    claims = [h for h in match.headers if h.claim is not None]
    if headers:
        out["headers"] = [_header_matcher(h) for h in headers]
    if claims:
        out["dynamic_metadata"] = [_claim_matcher(h) for h in claims]
    if match.query:
        out["query_parameters"] = [_query_matcher(name, m) for name, m in match.query]
    return out


def _string_matcher(match: StringMatchPlan) -> dict[str, Any]:
    if match.kind == "regex":
        return {"safe_regex": {"regex": match.value}}
    return {match.kind: match.value}


def _header_matcher(header: HeaderMatchPlan) -> dict[str, Any]:
    out: dict[str, Any] = {"name": header.name}
    if header.match.kind == "present":
        out["present_match"] = True
    else:
        out["string_match"] = _string_matcher(header.match)
        if header.invert:
            out["treat_missing_header_as_empty"] = True
    if header.invert:
        out["invert_match"] = True
    return out


def _claim_matcher(header: HeaderMatchPlan) -> dict[str, Any]:
    """route.go translateMetadataMatch (authz MetadataListMatcher, extended JWT): the claim
    on the jwt_authn filter's `payload` metadata, as a string or as one of a list. The client
    sidecar runs no jwt_authn filter, so the metadata is never there."""
    assert header.claim is not None
    value: dict[str, Any]
    if header.match.kind == "present":
        value = {"present_match": True}
    else:
        string = {"string_match": _string_matcher(header.match)}
        value = {"or_match": {"value_matchers": [{"list_match": {"one_of": string}}, string]}}
    out: dict[str, Any] = {
        "filter": "envoy.filters.http.jwt_authn",
        "path": [{"key": key} for key in ("payload", *header.claim)],
        "value": value,
    }
    if header.invert:
        out["invert"] = True
    return out


def _query_matcher(name: str, match: StringMatchPlan) -> dict[str, Any]:
    if match.kind == "present":
        return {"name": name, "present_match": True}
    return {"name": name, "string_match": _string_matcher(match)}


def _cluster(cluster: ClusterPlan, addresses: Addresses) -> dict[str, Any]:
    endpoints = [
        (endpoint.pod.name, addresses[endpoint.pod.name][endpoint.port])
        for endpoint in cluster.endpoints
        if endpoint.pod.name in addresses and endpoint.port in addresses[endpoint.pod.name]
    ]
    out = _static_cluster(cluster.name, endpoints)
    out["lb_policy"] = cluster.lb_policy
    if cluster.lb_policy == "RING_HASH":
        out["ring_hash_lb_config"] = {"minimum_ring_size": "1024"}
    out["circuit_breakers"] = {
        "thresholds": [
            {
                "max_connections": UINT32_MAX,
                "max_pending_requests": UINT32_MAX,
                "max_requests": UINT32_MAX,
                "max_retries": UINT32_MAX,
                "track_remaining": True,
            }
        ]
    }
    out["metadata"] = {
        "filter_metadata": {
            "istio": {
                "services": [
                    {
                        "host": cluster.service.fqdn,
                        "name": cluster.service.name,
                        "namespace": cluster.service.namespace,
                    }
                ]
            }
        }
    }
    return out


def _static_cluster(name: str, endpoints: list[tuple[str, int]]) -> dict[str, Any]:
    return {
        "name": name,
        "type": "STATIC",
        "connect_timeout": "10s",
        "load_assignment": {
            "cluster_name": name,
            "endpoints": [
                {
                    "lb_endpoints": [
                        {"endpoint": {"address": _address(port), "hostname": pod}}
                        for pod, port in endpoints
                    ]
                }
            ]
            if endpoints
            else [],
        },
    }


def placeholder_addresses(plan: MeshPlan, first_port: int = 20000) -> dict[str, dict[int, int]]:
    """Deterministic fake pod ports, for golden files and `meshlab envoy-config`."""
    addresses: dict[str, dict[int, int]] = {}
    port = first_port
    for pod in plan.registry.pods:
        addresses[pod.name] = {}
        for container_port in sorted({p.number for p in pod.ports}):
            addresses[pod.name][container_port] = port
            port += 1
    return addresses
