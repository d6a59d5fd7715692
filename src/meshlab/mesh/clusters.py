"""DestinationRules -> clusters: which rule applies to a host (Istio's merge across namespaces),
subsets as clusters, load balancing and hash policies."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

from meshlab.load import istio
from meshlab.load.manifests import Resource
from meshlab.mesh.model import ClusterPlan, HashPolicyPlan, Note, cluster_name, config_order
from meshlab.mesh.names import (
    ROOT_NAMESPACE,
    host_matches,
    is_wildcard,
    resolve_host,
    selects,
    specificity,
    visible_to,
)
from meshlab.mesh.registry import MeshService


def destination_rule_for(
    service: MeshService, rules: list[Resource], client_namespace: str
) -> MergedRule | None:
    """Client namespace, then the service's, then the root namespace; most specific host first;
    same-host rules in one namespace merge (first subset definition and first policy win)."""
    return DestinationRuleIndex(rules, client_namespace).rule_for(service)


class DestinationRuleIndex:
    """The DestinationRules a client sees, by namespace and host, so finding a Service's rule
    reads the rules for its host (and the wildcards) instead of every rule: planning stays
    linear in the number of Services."""

    def __init__(self, rules: list[Resource], client_namespace: str) -> None:
        self.client_namespace = client_namespace
        self.exact: dict[tuple[str, str], list[tuple[str, Resource]]] = defaultdict(list)
        self.wildcards: dict[str, list[tuple[str, Resource]]] = defaultdict(list)
        for rule in rules:
            spec: istio.DestinationRuleSpec = rule.body.spec
            if not visible_to(spec.exportTo, rule.namespace, client_namespace):
                continue
            host = resolve_host(spec.host, rule.namespace)
            if is_wildcard(host):
                self.wildcards[rule.namespace].append((host, rule))
            else:
                self.exact[(rule.namespace, host)].append((host, rule))

    def rule_for(self, service: MeshService) -> MergedRule | None:
        """The merged rule for `service` (see destination_rule_for), or None."""
        fqdn = service.fqdn
        for namespace in dict.fromkeys((self.client_namespace, service.namespace, ROOT_NAMESPACE)):
            candidates = [
                (specificity(host), host, rule)
                for host, rule in (
                    *self.exact.get((namespace, fqdn), ()),
                    *self.wildcards.get(namespace, ()),
                )
                if host_matches(host, fqdn)
            ]
            if candidates:
                # Istio merges same-host rules in config order: oldest first, then by name.
                candidates.sort(key=lambda c: (c[0], config_order(c[2])))
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


def clusters_for(
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


def consistent_hash_for(rule: MergedRule | None, subset: str | None) -> istio.ConsistentHash | None:
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


def hash_policy(rule: MergedRule | None, subset: str | None) -> HashPolicyPlan | None:
    """Istio's ConsistentHashToHashPolicy: the route's hash key for this destination."""
    consistent_hash = consistent_hash_for(rule, subset)
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
