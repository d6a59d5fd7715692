"""Route tables as Envoy reads them: virtual hosts, routes and their matchers, retries,
faults and hash policies, rendered from the plan (istiod's route.go builds the same shapes)."""

from __future__ import annotations

from typing import Any

from meshlab.mesh.plan import (
    DirectResponse,
    FaultPlan,
    Forward,
    HashPolicyPlan,
    HeaderMatchPlan,
    HeaderOpsPlan,
    Redirect,
    RetryPlan,
    RouteMatchPlan,
    RoutePlan,
    StringMatchPlan,
    VirtualHostPlan,
)

T = "type.googleapis.com/envoy."
_FAULT = T + "extensions.filters.http.fault.v3.HTTPFault"
_PREVIOUS_HOSTS = T + "extensions.retry.host.previous_hosts.v3.PreviousHostsPredicate"
_PREVIOUS_PRIORITIES = (
    T + "extensions.retry.priority.previous_priorities.v3.PreviousPrioritiesConfig"
)
_REDIRECT_CODES = {
    301: "MOVED_PERMANENTLY",
    302: "FOUND",
    303: "SEE_OTHER",
    307: "TEMPORARY_REDIRECT",
    308: "PERMANENT_REDIRECT",
}


def header(key: str, value: str, action: str = "OVERWRITE_IF_EXISTS_OR_ADD") -> dict[str, Any]:
    return {"header": {"key": key, "value": value}, "append_action": action}


def seconds(value: float) -> str:
    return f"{value:.3f}s".replace(".000s", "s")


def virtual_host(vhost: VirtualHostPlan, prefix: str = "") -> dict[str, Any]:
    """An Envoy virtual host; `prefix` names the proxy whose clusters its routes use."""
    return {
        "name": vhost.name,
        "domains": vhost.domains,
        "routes": [_route(r, prefix) for r in vhost.routes],
    }


def _route(route: RoutePlan, prefix: str) -> dict[str, Any]:
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
        out["route"] = _route_action(route, action, prefix)
    if route.fault is not None:
        out["typed_per_filter_config"] = {"envoy.filters.http.fault": _fault(route.fault)}
    out.update(_header_ops("request", route.request_headers))
    out.update(_header_ops("response", route.response_headers))
    return out


def _header_ops(direction: str, ops: HeaderOpsPlan) -> dict[str, Any]:
    """Envoy's `<direction>_headers_to_add/_to_remove`: set overwrites, add appends."""
    out: dict[str, Any] = {}
    added = [header(k, v) for k, v in ops.set]
    added += [header(k, v, "APPEND_IF_EXISTS_OR_ADD") for k, v in ops.add]
    if added:
        out[f"{direction}_headers_to_add"] = added
    if ops.remove:
        out[f"{direction}_headers_to_remove"] = list(ops.remove)
    return out


def _route_action(route: RoutePlan, action: Forward, prefix: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if action.weighted:
        out["weighted_clusters"] = {
            "clusters": [
                {"name": prefix + t.cluster, "weight": t.weight}
                | _header_ops("request", t.request_headers)
                | _header_ops("response", t.response_headers)
                | ({"host_rewrite_literal": t.authority_rewrite} if t.authority_rewrite else {})
                for t in action.targets
            ]
        }
    else:
        out["cluster"] = prefix + action.targets[0].cluster
    out["timeout"] = seconds(route.timeout_s)
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
            cookie["ttl"] = seconds(policy.ttl_s)
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
        out["retry_back_off"] = {"base_interval": seconds(retry.backoff_s)}
    if retry.retriable_status_codes:
        out["retriable_status_codes"] = list(retry.retriable_status_codes)
    if retry.per_try_timeout_s is not None:
        out["per_try_timeout"] = seconds(retry.per_try_timeout_s)
    return out


def _fault(fault: FaultPlan) -> dict[str, Any]:
    out: dict[str, Any] = {"@type": _FAULT}
    if fault.delay_s is not None:
        out["delay"] = {
            "fixed_delay": seconds(fault.delay_s),
            "percentage": _fraction(fault.delay_percent),
        }
    if fault.abort_status is not None:
        out["abort"] = {
            "http_status": fault.abort_status,
            "percentage": _fraction(fault.abort_percent),
        }
    return out


def _fraction(percent: float) -> dict[str, Any]:
    # route.go translatePercentToFractionalPercent: uint32(p.Value * 10000), Go's conversion
    # truncates (0.57% is 5699 per million there, not 5700)
    return {"numerator": int(percent * 10000), "denominator": "MILLION"}


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
