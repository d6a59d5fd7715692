"""`meshlab explain`: a traced request (meshlab.mesh.trace) as lines for a student, or as data
for tools. Each line names the Envoy object it describes (listener, virtual host, route,
cluster) so it can be found in `meshlab envoy-config`, and the YAML line that made it."""

from __future__ import annotations

from typing import Any

from meshlab.errors import Location
from meshlab.mesh.model import (
    DEFAULT_RETRY_ON,
    DirectResponse,
    HashPolicyPlan,
    HeaderOpsPlan,
    Redirect,
    RoutePlan,
)
from meshlab.mesh.trace import RequestTrace, TargetTrace

WIDTH = 11  # the label column


def _at(location: Location | None) -> str:
    return f" ({location.short()})" if location else ""


def _row(label: str, text: str) -> str:
    return f"{label:<{WIDTH}}{text}"


def _more(text: str) -> str:
    return " " * WIDTH + text


def explain_lines(trace: RequestTrace) -> list[str]:
    request = trace.request
    lines = [
        _row("request", f"{request.method} {request.url}")
        + "".join(f" -H '{k}: {v}'" for k, v in request.headers.items()),
        _more(
            f"as a browser sends it from outside, through the ingress gateway {trace.gateway}"
            if trace.gateway
            else f"as a pod of {trace.origin} sends it, through its sidecar"
            if trace.origin
            else f"as a meshed pod in namespace {trace.namespace} sends it, through its sidecar"
        ),
    ]
    if trace.listener is not None:
        table = trace.listener.route_table
        lines.append(_row("listener", f"{trace.listener.name} (HTTP, route table {table})"))
    if trace.choice is not None:
        vhost = trace.choice.vhost
        lines.append(_row("vhost", f'{vhost.name}: domain "{trace.choice.domain}" matched'))
        if vhost.virtual_service is not None:
            owner = vhost.virtual_service
            lines.append(_more(f"routes from {owner.ref}{_at(owner.location)}"))
        elif vhost.service is not None:
            lines.append(_more("no VirtualService: the Service's default route"))
    for skipped in trace.skipped:
        where = _at(skipped.route.location)
        lines.append(_row("skipped", f"route {skipped.index}{where}: {skipped.reason}"))
    if trace.route is not None:
        lines.append(_row("route", _route_text(trace.route, trace.route_index)))
        lines += _action_lines(trace)
        lines += _policy_lines(trace)
    if trace.problem:
        lines.append(_row("outcome", trace.problem))
    return lines


def _route_text(route: RoutePlan, index: int | None) -> str:
    name = f' (Envoy route "{route.name}")' if route.name else ""
    return f"route {index}{_at(route.location)}{name}"


def _action_lines(trace: RequestTrace) -> list[str]:
    route = trace.route
    assert route is not None
    action = route.action
    if isinstance(action, Redirect):
        where = (action.authority or "") + (action.uri or "")
        return [_row("answer", f"redirect {action.code} to {where or 'the same URL'}")]
    if isinstance(action, DirectResponse):
        return [_row("answer", f"direct response {action.status} from the sidecar")]
    lines = []
    for i, target in enumerate(trace.targets):
        lines.append(_row("to" if i == 0 else "", _target_text(target)))
        lines += [_more(f"  {line}") for line in _pods_text(target)]
    if route.fault and route.fault.abort_status and route.fault.abort_percent:
        share = route.fault.abort_percent
        lines.append(
            _more(f"{share:5.1f}%  aborted by the sidecar with {route.fault.abort_status} (FI)")
        )
    return lines


def _target_text(target: TargetTrace) -> str:
    subset = f" subset {target.target.subset}" if target.target.subset else ""
    text = f"{100 * target.share:5.1f}%  {target.target.cluster}{subset}"
    text += _at(target.target.location)
    return text + (f": {target.problem}" if target.problem else "")


def _pods_text(target: TargetTrace) -> list[str]:
    pods = target.pods
    if not pods:
        return []
    each = 100 * target.share / len(pods)
    return [f"pod {pod.name} ({_labels(pod.labels)}): {each:.1f}%" for pod in pods]


def _labels(labels: dict[str, str]) -> str:
    """The labels a student wrote; Kubernetes' own pod-template-hash is noise here."""
    return ", ".join(f"{k}={v}" for k, v in labels.items() if k != "pod-template-hash")


def _policy_lines(trace: RequestTrace) -> list[str]:
    route = trace.route
    assert route is not None
    policies = [
        "timeout: " + (f"{route.timeout_s:g} s" if route.timeout_s else "none (Istio's default)")
    ]
    retry = route.retry
    if retry is None:
        policies.append("retries: none")
    else:
        default = retry.retry_on == DEFAULT_RETRY_ON and retry.attempts == 2
        policies.append(
            f"retries: {retry.attempts} on {retry.retry_on}"
            + (f", {retry.per_try_timeout_s:g} s per try" if retry.per_try_timeout_s else "")
            + (" (Istio's default)" if default else "")
        )
    fault = route.fault
    if fault and fault.delay_s and fault.delay_percent:
        policies.append(f"fault: {fault.delay_s:g} s delay for {fault.delay_percent:g}%")
    if fault and fault.abort_status and fault.abort_percent:
        policies.append(f"fault: abort {fault.abort_status} for {fault.abort_percent:g}%")
    for hashed in route.hash_policies:
        policies.append(f"consistent hash: {_hash_text(hashed)}")
    if route.prefix_rewrite is not None or route.authority_rewrite is not None:
        policies.append(
            "rewrite: "
            + ", ".join(
                f"{what} {value}"
                for what, value in (
                    ("uri", route.prefix_rewrite),
                    ("authority", route.authority_rewrite),
                )
                if value is not None
            )
        )
    for what, ops in (("request", route.request_headers), ("response", route.response_headers)):
        if ops:
            policies.append(f"{what} headers: {_ops_text(ops)}")
    balancing = dict.fromkeys(
        f"load balancing: {t.cluster.lb_policy} ({_rule_text(t)})"
        for t in trace.targets
        if t.cluster
    )
    policies += list(balancing)
    return [_row("policies" if i == 0 else "", p) for i, p in enumerate(policies)]


def _rule_text(target: TargetTrace) -> str:
    rule = target.cluster.destination_rule if target.cluster else None
    return f"{rule.ref}{_at(rule.location)}" if rule else "Istio's default"


def _hash_text(policy: HashPolicyPlan) -> str:
    if policy.kind == "source_ip":
        return "the client's address"
    ttl = f", ttl {policy.ttl_s:g} s (Envoy sets it)" if policy.ttl_s else ""
    return f"{policy.kind.replace('_', ' ')} {policy.name}{ttl}"


def _ops_text(ops: HeaderOpsPlan) -> str:
    parts = [f"set {k}: {v}" for k, v in ops.set] + [f"add {k}: {v}" for k, v in ops.add]
    return ", ".join(parts + [f"remove {k}" for k in ops.remove])


def explain_json(trace: RequestTrace) -> dict[str, Any]:
    """The trace as data: the Envoy names and the YAML locations, for tools."""
    route = trace.route
    return {
        "request": {
            "method": trace.request.method,
            "url": trace.request.url,
            "headers": dict(trace.request.headers),
        },
        "namespace": trace.namespace,
        "from": trace.origin,
        "listener": trace.listener.name if trace.listener else None,
        "virtual_host": trace.choice.vhost.name if trace.choice else None,
        "domain": trace.choice.domain if trace.choice else None,
        "skipped": [
            {"index": s.index, "location": _loc(s.route.location), "reason": s.reason}
            for s in trace.skipped
        ],
        "route": (
            {"index": trace.route_index, "name": route.name, "location": _loc(route.location)}
            if route
            else None
        ),
        "destinations": [
            {
                "cluster": t.target.cluster,
                "subset": t.target.subset,
                "share": t.share,
                "location": _loc(t.target.location),
                "pods": [p.name for p in t.pods],
                "problem": t.problem,
            }
            for t in trace.targets
        ],
        "outcome": trace.problem,
    }


def _loc(location: Location | None) -> str | None:
    return str(location) if location else None
