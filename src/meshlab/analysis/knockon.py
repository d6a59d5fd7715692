"""No knock-on findings: an object refused at apply time (IST0106) is still what the student
meant, so "not found" reports about it would only repeat the IST0106 in a worse way.

istioctl analyzes the objects it could read and reports the invalid ones as IST0106; the
others do not then say that a Gateway, a Service or a subset is missing because it was
invalid. Here the findings that name a refused object as missing are dropped.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import field
from typing import Any

from meshlab.analysis.base import Diagnostic
from meshlab.load.manifests import Rejected
from meshlab.mesh.names import resolve_host
from meshlab.records import dataclass

_HOST_MISSING = {
    "ReferencedResourceNotFound/host",
    "ReferencedResourceNotFound/mirror-host",
    "ReferencedResourceNotFound/host-port",
    "UnknownDestinationRuleHost",
    "VirtualServiceHostNotFound",
}
_SUBSET_MISSING = {"ReferencedResourceNotFound/host-subset"}
_GATEWAY_MISSING = {"ReferencedResourceNotFound/gateway", "VirtualServiceHostNotFoundInGateway"}
_PODS_MISSING = {
    "ServiceSelectsNoPods",
    "DestinationRuleSubsetNotSelectPods",
    "SubsetSelectsNoEndpoints",
    "ReferencedResourceNotFound/selector",
}
_ROUTES_MISSING = {"SubsetNotReferenced", "SubsetsWithoutVirtualService"}


@dataclass
class _Refused:
    """What the refused objects would have provided (hosts, rule hosts, routed hosts, Gateways,
    workload namespaces), to recognise findings that only blame their absence."""

    hosts: set[str] = field(default_factory=set)  # Services and ServiceEntry hosts
    rule_hosts: set[str] = field(default_factory=set)  # DestinationRule hosts
    routed_hosts: set[str] = field(default_factory=set)  # VirtualService destinations
    gateways: set[str] = field(default_factory=set)  # "namespace/name"
    workload_namespaces: set[str] = field(default_factory=set)


def without_knock_on(
    diagnostics: Sequence[Diagnostic], rejected: Sequence[Rejected]
) -> list[Diagnostic]:
    """The diagnostics minus those that blame a refused object's absence."""
    if not rejected:
        return list(diagnostics)
    refused = _refused(rejected)
    return [d for d in diagnostics if not _knock_on(d, refused)]


def _refused(rejected: Sequence[Rejected]) -> _Refused:
    found = _Refused()
    for r in rejected:
        namespace = r.namespace or "default"
        spec = r.raw.get("spec") if isinstance(r.raw, dict) else None
        spec = spec if isinstance(spec, dict) else {}
        if r.kind == "Service" and r.name:
            found.hosts.add(resolve_host(r.name, namespace))
        elif r.kind == "ServiceEntry":
            found.hosts.update(resolve_host(h, namespace) for h in _strings(spec.get("hosts")))
        elif r.kind == "DestinationRule":
            found.rule_hosts.update(
                resolve_host(h, namespace) for h in _strings([spec.get("host")])
            )
        elif r.kind == "VirtualService":
            found.routed_hosts.update(resolve_host(h, namespace) for h in _destinations(spec))
        elif r.kind == "Gateway" and r.name:
            found.gateways.add(f"{namespace}/{r.name}")
        elif r.kind in ("Deployment", "Pod"):
            found.workload_namespaces.add(namespace)
    return found


def _knock_on(d: Diagnostic, refused: _Refused) -> bool:
    hosts = set(d.hosts)
    if d.name in _HOST_MISSING:
        return bool(hosts & refused.hosts)
    if d.name in _SUBSET_MISSING:
        return bool(hosts & refused.rule_hosts)
    if d.name in _ROUTES_MISSING:
        return bool(hosts & refused.routed_hosts)
    if d.name in _GATEWAY_MISSING:
        return any(f"no Gateway {g})" in d.message for g in refused.gateways) or (
            "(it does not exist)" in d.message
            and any(f"gateway {g.split('/')[1]} " in d.message for g in refused.gateways)
        )
    if d.name in _PODS_MISSING:
        namespace = (d.resource or "").partition(" ")[2].partition("/")[0]
        return namespace in refused.workload_namespaces
    return False


def _strings(values: Any) -> Iterable[str]:
    return [v for v in values if isinstance(v, str) and v] if isinstance(values, list) else []


def _destinations(spec: dict[str, Any]) -> Iterable[str]:
    for section in ("http", "tcp", "tls"):
        for rule in spec.get(section) or []:
            for route in (rule.get("route") or []) if isinstance(rule, dict) else []:
                destination = route.get("destination") if isinstance(route, dict) else None
                if isinstance(destination, dict):
                    yield from _strings([destination.get("host")])
