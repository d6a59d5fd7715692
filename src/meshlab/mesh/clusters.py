"""DestinationRules -> clusters: which rule applies to a host (Istio's merge across namespaces),
subsets as clusters, load balancing and hash policies."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from meshlab.load import istio
from meshlab.load.manifests import Resource
from meshlab.mesh.model import ClusterPlan, HashPolicyPlan, Note, cluster_name, config_order
from meshlab.mesh.names import (
    CLIENT_LABELS,
    ROOT_NAMESPACE,
    host_matches,
    is_wildcard,
    resolve_host,
    selects,
    specificity,
    visible_to,
)
from meshlab.mesh.registry import MeshService, Registry
from meshlab.mesh.resilience import outlier_plan, pool_plan
from meshlab.records import dataclass


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

    def __init__(
        self,
        rules: list[Resource],
        client_namespace: str,
        client_labels: Mapping[str, str] = CLIENT_LABELS,
    ) -> None:
        self.client_namespace = client_namespace
        self.client_labels = client_labels
        self.exact: dict[tuple[str, str], list[tuple[str, Resource]]] = defaultdict(list)
        self.wildcards: dict[str, list[tuple[str, Resource]]] = defaultdict(list)
        for rule in rules:
            spec: istio.DestinationRuleSpec = rule.body.spec
            # push_context.go setDestinationRules: a rule with a workloadSelector is private
            # to its namespace, whatever its exportTo.
            export_to = ["."] if workload_selector(rule) is not None else spec.exportTo
            if not visible_to(export_to, rule.namespace, client_namespace):
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
                # push_context.go sortConfigBySelectorAndCreationTime: rules with a
                # workloadSelector first, then oldest first, then by name.
                candidates.sort(
                    key=lambda c: (c[0], workload_selector(c[2]) is None, config_order(c[2]))
                )
                best_host = candidates[0][1]
                same_host = [c[2] for c in candidates if c[1] == best_host]
                return self._select(same_host)
        return None

    def _select(self, rules: list[Resource]) -> MergedRule | None:
        """sidecar.go SidecarScope.DestinationRule: the first rule whose workloadSelector
        picks the client (merged with the later rules of the same selector or none, as
        destination_rule.go mergeDestinationRule does), else the rules without a selector;
        a namespace holding only rules for other workloads gives no rule at all."""
        for rule in rules:
            selector = workload_selector(rule)
            if selector is None:
                break
            if rule.namespace == self.client_namespace and selects(selector, self.client_labels):
                same = [r for r in rules if workload_selector(r) in (None, selector)]
                return MergedRule.merge(same[same.index(rule) :])
        catch_all = [r for r in rules if workload_selector(r) is None]
        return MergedRule.merge(catch_all) if catch_all else None


def workload_selector(rule: Resource) -> dict[str, str] | None:
    """A DestinationRule's `workloadSelector.matchLabels` (None: applies to every client)."""
    selector = rule.body.spec.workloadSelector
    if not isinstance(selector, Mapping):
        return None
    labels = selector.get("matchLabels")
    return {str(k): str(v) for k, v in labels.items()} if isinstance(labels, Mapping) else {}


@dataclass
class MergedRule:
    """The DestinationRule one client applies to a host: same-host rules merged as istiod merges
    them (first trafficPolicy, first definition of each subset), each subset with its rule and
    index, for messages."""

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
    for port in service.ports:
        endpoints = service.endpoints.get(port.number, [])
        base = load_balancer_for(rule, None, port.number)
        base_lb = _lb_policy(base)
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
                outlier_plan(policy_part(rule, None, port.number, "outlierDetection")),
                pool_plan(policy_part(rule, None, port.number, "connectionPool")),
                hash_table_size(base),
            )
        )
        for subset, owner, _ in rule.subsets if rule else []:
            selected = [e for e in endpoints if selects(subset.labels, e.pod.labels)]
            own_lb = load_balancer_for(rule, subset.name, port.number)
            lb = _lb_policy(own_lb)
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
                    outlier_plan(policy_part(rule, subset.name, port.number, "outlierDetection")),
                    pool_plan(policy_part(rule, subset.name, port.number, "connectionPool")),
                    hash_table_size(own_lb),
                )
            )
    return clusters


def _port_setting(
    policy: istio.TrafficPolicy | None, port: int | None
) -> istio.PortTrafficPolicy | None:
    """The portLevelSettings entry for `port` (the first one naming it), if any."""
    if policy is None or port is None:
        return None
    return next(
        (p for p in policy.portLevelSettings or [] if p.port and p.port.number == port), None
    )


def load_balancer_for(
    rule: MergedRule | None, subset: str | None, port: int
) -> istio.LoadBalancer | None:
    """The load balancer of the cluster for (subset, port): util.go GetPortLevelTrafficPolicy
    and MergeSubsetTrafficPolicy. A port's settings replace the rule's wholesale (an unset
    loadBalancer there means the default, not the rule's); a subset's loadBalancer (or its own
    port settings) overrides the result."""
    if rule is None:
        return None
    policy = rule.policy
    found = _port_setting(policy, port)
    lb = found.loadBalancer if found else (policy.loadBalancer if policy else None)
    named = rule.subset(subset) if subset else None
    own = named[0].trafficPolicy if named else None
    if own is not None:
        own_port = _port_setting(own, port)
        if own_port is not None:
            return own_port.loadBalancer
        if own.loadBalancer is not None:
            return own.loadBalancer
    return lb


def policy_part(rule: MergedRule | None, subset: str | None, port: int, part: str) -> Any:
    """One block (`outlierDetection`, `connectionPool`) of the policy a cluster gets:
    util.go MergeSubsetTrafficPolicy and model/destination_rule.go MergeTrafficPolicy. The
    rule's port settings replace its top level wholesale; a subset's block replaces the
    result when set, and a subset port entry replaces it even when unset there."""
    if rule is None:
        return None
    policy = rule.policy
    found = _port_setting(policy, port)
    block = getattr(found, part) if found else (getattr(policy, part) if policy else None)
    named = rule.subset(subset) if subset else None
    own = named[0].trafficPolicy if named else None
    if own is not None:
        own_port = _port_setting(own, port)
        if own_port is not None:
            return getattr(own_port, part)
        if getattr(own, part) is not None:
            return getattr(own, part)
    return block


def _lb_policy(lb: istio.LoadBalancer | None) -> str:
    """Unset means LEAST_REQUEST in Istio (not Envoy's ROUND_ROBIN); LEAST_CONN is an alias."""
    if lb is None:
        return "LEAST_REQUEST"
    if lb.consistentHash is not None:
        return "MAGLEV" if lb.consistentHash.maglev is not None else "RING_HASH"
    # PASSTHROUGH (original destination) has no meaning offline: it is noted, and the pods
    # share traffic as with the default.
    return {"ROUND_ROBIN": "ROUND_ROBIN", "RANDOM": "RANDOM"}.get(lb.simple or "", "LEAST_REQUEST")


ENVOY_MIN_RING_SIZE = 1024  # what istiod writes when no ring size is given


def hash_table_size(lb: istio.LoadBalancer | None) -> int | None:
    """cluster_traffic_policy.go ApplyRingHashLoadBalancer: maglev's tableSize and ringHash's
    minimumRingSize when set (else no lb config); neither algorithm named: a ring of the
    deprecated minimumRingSize, or 1024."""
    hashing = lb.consistentHash if lb else None
    if hashing is None:
        return None
    if hashing.maglev is not None:
        return hashing.maglev.tableSize or None
    if hashing.ringHash is not None:
        return hashing.ringHash.minimumRingSize or None
    return hashing.minimumRingSize or ENVOY_MIN_RING_SIZE


def consistent_hash_for(
    rule: MergedRule | None, subset: str | None, port: int | None = None
) -> istio.ConsistentHash | None:
    """The consistentHash a route to this destination hashes with, route.go
    HashForHTTPDestination: the subset's port settings, the subset's, the rule's port
    settings, the rule's, the first set wins; port settings count only when the destination
    names its port."""
    if rule is None:
        return None
    named = rule.subset(subset) if subset else None
    own = named[0].trafficPolicy if named else None
    candidates = (
        _port_setting(own, port),
        own,
        _port_setting(rule.policy, port),
        rule.policy,
    )
    for policy in candidates:
        if policy is not None and policy.loadBalancer and policy.loadBalancer.consistentHash:
            return policy.loadBalancer.consistentHash
    return None


def service_hash_for(rule: MergedRule | None, port: int) -> istio.ConsistentHash | None:
    """The default route's consistentHash, route.go hashForService: the rule's, unless the
    Service port's settings name one."""
    if rule is None:
        return None
    found = _port_setting(rule.policy, port)
    if found and found.loadBalancer and found.loadBalancer.consistentHash:
        return found.loadBalancer.consistentHash
    lb = rule.policy.loadBalancer if rule.policy else None
    return lb.consistentHash if lb else None


def hash_policy(consistent_hash: istio.ConsistentHash | None) -> HashPolicyPlan | None:
    """Istio's ConsistentHashToHashPolicy: the route's hash key for this destination."""
    if consistent_hash is None:
        return None
    if consistent_hash.httpHeaderName:
        # as written: Envoy lowercases the name itself (route.go ConsistentHashToHashPolicy)
        return HashPolicyPlan("header", consistent_hash.httpHeaderName)
    if consistent_hash.httpCookie is not None:
        cookie = consistent_hash.httpCookie
        ttl = istio.parse_duration(cookie.ttl) if cookie.ttl else None
        attributes = tuple((a.name, a.value or "") for a in cookie.attributes or ())
        return HashPolicyPlan("cookie", cookie.name, ttl, cookie.path, attributes)
    if consistent_hash.useSourceIp:
        return HashPolicyPlan("source_ip")
    if consistent_hash.httpQueryParameterName:
        return HashPolicyPlan("query_parameter", consistent_hash.httpQueryParameterName)
    return None


def proxy_clusters(
    resources: Sequence[Resource],
    visible: Registry,
    namespace: str,
    labels: Mapping[str, str],
    notes: list[Note],
) -> tuple[dict[str, ClusterPlan], Callable[[str], MergedRule | None]]:
    """A proxy's outbound clusters (every port and subset of the Services it sees) and its
    DestinationRule lookup by host, for a proxy in `namespace` with `labels`: the rules that
    apply depend on both (exportTo, workloadSelector), sidecar and gateway alike."""
    rules = DestinationRuleIndex(
        [r for r in resources if r.kind == "DestinationRule"], namespace, labels
    )
    merged: dict[str, MergedRule | None] = {}

    def rule_for(host: str) -> MergedRule | None:
        if host not in merged:
            service = visible.service_by_fqdn(host)
            merged[host] = None if service is None else rules.rule_for(service)
        return merged[host]

    clusters: dict[str, ClusterPlan] = {}
    for service in visible.services:
        for cluster in clusters_for(service, rule_for(service.fqdn), notes):
            clusters[cluster.name] = cluster
    return clusters, rule_for
