"""Istio's naming semantics, in one place: how a name in a rule becomes a host, which hosts a
wildcard covers, who sees a rule (exportTo), what a selector picks, which gateway a reference
names, when a VirtualService is bound to the mesh, which match takes every request.

Everything that reads Istio objects (the plan, the registry, the expectation, the analyzers,
the kind backend) asks this module, so the embedded simulation, `meshlab analyze` and the
objects sent to a real cluster cannot disagree on a name. Each rule cites the Istio source it
comes from (paths in github.com/istio/istio).

Kubernetes' own label selectors (`matchLabels` + `matchExpressions`) are Kubernetes semantics
and stay in `load/k8s.py`. Two rules are also written in `load/istio.py`, which validates
schemas at an earlier stage and cannot import this one: "bound to the mesh" (no `*` host on a
mesh-bound VirtualService) and the `[namespace/]host` split of `check_namespaced_host`;
tests/unit/test_names.py checks that they agree with this module.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

from meshlab.load import istio

# --- namespaces and domains ----------------------------------------------------------------

# pkg/config/constants: DefaultClusterLocalDomain (the `svc.<domain>` suffix of every Service).
CLUSTER_DOMAIN = "cluster.local"
# pkg/config/constants: IstioSystemNamespace, where istiod and the default gateways run.
ISTIO_SYSTEM_NAMESPACE = "istio-system"
# meshConfig.rootNamespace defaults to the system namespace: rules there apply to every
# namespace (pilot/pkg/model/push_context.go, DestinationRule and Sidecar lookup).
ROOT_NAMESPACE = ISTIO_SYSTEM_NAMESPACE
# pkg/config/constants: IstioMeshGateway, the reserved gateway name for all sidecars.
MESH = "mesh"
ANY_HOST = "*"

# --- hosts ---------------------------------------------------------------------------------


def service_fqdn(name: str, namespace: str) -> str:
    """A Kubernetes Service's host in the mesh: `reviews.default.svc.cluster.local`
    (pilot/pkg/serviceregistry/kube/conversion.go, ServiceHostname)."""
    return f"{name}.{namespace}.svc.{CLUSTER_DOMAIN}"


def resolve_host(host: str, namespace: str) -> str:
    """Istio's ResolveShortnameToFQDN (pilot/pkg/model/config.go): dot-less names expand in
    the rule's namespace; any dotted name is taken literally (so `reviews.default` is NOT
    `reviews.default.svc...`); `*` stays `*`."""
    if host == ANY_HOST or "." in host:  # IPv4 addresses are dotted, so literal too
        return host
    return service_fqdn(host, namespace)


# The ways a request (or a rule, before Istio reads it literally) spells a Service's name out
# beyond the short name: `name.ns`, `name.ns.svc`, `name.ns.svc.cluster.local`.
SERVICE_HOST_SUFFIXES = ("", ".svc", f".svc.{CLUSTER_DOMAIN}")


def split_service_host(host: str) -> tuple[str, str, str] | None:
    """`reviews.default[.svc[.cluster.local]]` -> ("reviews", "default", suffix), where
    suffix is one of SERVICE_HOST_SUFFIXES; None for any other name (short, external...)."""
    name, dot, rest = host.partition(".")
    if not dot or not name:
        return None
    namespace, _, suffix = rest.partition(".")
    suffix = f".{suffix}" if suffix else ""
    if not namespace or suffix not in SERVICE_HOST_SUFFIXES:
        return None
    return name, namespace, suffix


def is_wildcard(host: str) -> bool:
    """`*` or `*.suffix` (pkg/config/host/name.go Name.IsWildCarded: a leading `*`)."""
    return host.startswith("*")


def host_matches(pattern: str, fqdn: str) -> bool:
    """pkg/config/host/name.go Name.Matches, one way: exact, or a `*.suffix` wildcard
    covering the name, or `*` covering everything."""
    if pattern == ANY_HOST:
        return True
    if is_wildcard(pattern):
        return fqdn.endswith(pattern[1:])
    return pattern == fqdn


def hosts_overlap(a: str, b: str) -> bool:
    """Either name covers the other (wildcard-aware both ways, pkg/config/host Name.Matches)."""
    return host_matches(a, b) or host_matches(b, a)


def specificity(pattern: str) -> tuple[int, int]:
    """Sort key, most specific first (pkg/config/host/names.go, and Envoy's vhost choice):
    exact names before wildcards, longer wildcards before shorter, `*` last."""
    return (1, -len(pattern)) if is_wildcard(pattern) else (0, -len(pattern))


def most_specific(host: str, patterns: Iterable[str]) -> str | None:
    """The pattern that wins for `host` (exact, then the longest wildcard), or None."""
    found = [p for p in patterns if host_matches(p, host)]
    return min(found, key=specificity) if found else None


def vhost_domains(name: str, namespace: str, client_namespace: str) -> list[str]:
    """The domains of a sidecar's vhost for Service `name.namespace`, without `:port` forms
    (Istio >= 1.16 sets ignore_port_in_host_matching; pilot/pkg/networking/core/httproute.go
    generateVirtualHostDomains). A bare short name only works in the same namespace."""
    fqdn = service_fqdn(name, namespace)
    domains = [fqdn, f"{fqdn}."]
    if namespace == client_namespace:
        domains.append(name)
    domains += [f"{name}.{namespace}.svc", f"{name}.{namespace}"]
    return domains


def split_namespaced_host(entry: str) -> tuple[str, str]:
    """`ns/host` as Gateway servers[].hosts and Sidecar egress[].hosts write it ->
    (ns, host); a bare host is `*/host` (pkg/config/validation, validateNamespaceSlashWildcard
    and Gateway server hosts)."""
    namespace, slash, host = entry.rpartition("/")
    return (namespace if slash else "*", host)


# --- visibility ----------------------------------------------------------------------------


def namespace_admits(target: str, owner_namespace: str, namespace: str) -> bool:
    """One namespace target (exportTo entry, `ns/` of a namespaced host) admits `namespace`:
    `*` everyone, `.` the owner's namespace, else the namespace named (`~` nobody)."""
    return target in ("*", namespace) or (target == "." and owner_namespace == namespace)


def visible_to(export_to: Sequence[str], owner_namespace: str, client_namespace: str) -> bool:
    """exportTo (pkg/config/visibility): empty or `*` = everywhere, `.` = own namespace,
    `~` = nowhere, else the namespaces named."""
    if not export_to or "*" in export_to:
        return True
    if "~" in export_to:
        return False
    return any(namespace_admits(t, owner_namespace, client_namespace) for t in export_to)


def export_scope(export_to: Sequence[str], owner_namespace: str) -> frozenset[str]:
    """Where a rule is visible, `.` spelled out and nothing meaning `*` (two rules conflict
    only within one scope, pilot/pkg/model/push_context.go exportTo handling)."""
    return frozenset(owner_namespace if t == "." else t for t in export_to or ["*"])


# --- selectors -----------------------------------------------------------------------------

# The labels of meshlab's client pod, the sidecar whose config the plan is: the kind backend's
# probe pod carries them, and the embedded backend decides with them what a match's
# `sourceLabels` and a DestinationRule's `workloadSelector` pick (Istio reads the proxy's
# own labels: route.go sourceMatchHTTP, sidecar.go SidecarScope.DestinationRule).
CLIENT_LABELS: Mapping[str, str] = {"meshlab.io/probe": "true"}


def selects(selector: Mapping[str, str], labels: Mapping[str, str]) -> bool:
    """A plain label selector (subset labels, Service and Gateway selectors): every pair of the
    selector is on the pod; an empty selector selects everything (pkg/config/labels/instance.go,
    Instance.SubsetOf)."""
    return all(labels.get(k) == v for k, v in selector.items())


# --- gateways ------------------------------------------------------------------------------


def gateway_key(reference: str, namespace: str) -> tuple[str, str] | None:
    """Istio's resolveGatewayName (pilot/pkg/model/virtualservice.go): `name` and `./name` are
    in the VirtualService's namespace, `ns/name` is explicit, legacy `name.ns.svc.cluster.local`
    (any dotted name) means `ns/name`; `mesh` is None."""
    if reference == MESH:
        return None
    if "/" in reference:
        ns, _, name = reference.partition("/")
        return (namespace if ns == "." else ns, name)
    if "." in reference:
        name, _, rest = reference.partition(".")
        return (rest.split(".", 1)[0], name)
    return (namespace, reference)


def is_legacy_gateway_name(reference: str) -> bool:
    """A dotted gateway reference without `/` (istioctl's IST0133 warning)."""
    return reference != MESH and "/" not in reference and "." in reference


def bound_to_mesh(gateways: Sequence[str]) -> bool:
    """A VirtualService (or match) applies to sidecars when its gateways are empty or list
    `mesh` (pilot/pkg/model/virtualservice.go, getGatewayNames / constants.IstioMeshGateway)."""
    return not gateways or MESH in gateways


# --- routes --------------------------------------------------------------------------------

# The uri matchers that take every path (pilot/pkg/networking/core/route/route.go).
CATCH_ALL_URIS: frozenset[tuple[str, str]] = frozenset({("prefix", "/"), ("regex", ".*")})


def catch_all_uri(kind: str, value: str) -> bool:
    return (kind, value) in CATCH_ALL_URIS


def catch_all(match: istio.HTTPMatchRequest | None) -> str | None:
    """Why an HTTP match takes every request, or None (Istio's isCatchAllMatch in
    pilot/pkg/networking/core/route/route.go): no match at all, or a uri from CATCH_ALL_URIS
    (or none) and no other field; its name does not count. A filter (port, gateways,
    sourceLabels, sourceNamespace) makes it no catch-all: it only takes the requests it sees.
    The plan's route-level test (isCatchAllRoute, after those filters) is
    RouteMatchPlan.is_catch_all, built on catch_all_uri."""
    if match is None:
        return "no match"
    data = match.model_dump(mode="json", exclude_unset=True, exclude_defaults=True)
    data.pop("name", None)  # the name labels a match; it does not change what it matches
    uri = data.pop("uri", None)
    if data:
        return None
    if uri is None:
        return "an empty match"
    (kind, value), *rest = uri.items()
    if not rest and isinstance(value, str) and catch_all_uri(kind, value):
        return f"uri {kind} {value!r}"
    return None


# --- which fields carry names --------------------------------------------------------------

# (kind, field path) of every Istio field that holds a host, as the analyzers and the kind
# backend read them (pkg/config/validation calls validateHost / ValidateWildcardDomain on
# these). Gateway and Sidecar write `namespace/host` (split_namespaced_host).
HOST_FIELDS: tuple[tuple[str, str], ...] = (
    ("VirtualService", "spec.hosts"),
    ("VirtualService", "spec.http[].route[].destination.host"),
    ("VirtualService", "spec.http[].mirror.host"),
    ("VirtualService", "spec.http[].mirrors[].destination.host"),
    ("VirtualService", "spec.tcp[].route[].destination.host"),
    ("VirtualService", "spec.tls[].route[].destination.host"),
    ("DestinationRule", "spec.host"),
    ("ServiceEntry", "spec.hosts"),
    ("Gateway", "spec.servers[].hosts"),
    ("Sidecar", "spec.egress[].hosts"),
)
NAMESPACED_HOST_KINDS = frozenset({"Gateway", "Sidecar"})
# Fields holding namespaces, and gateway references (gateway_key).
NAMESPACE_FIELDS: tuple[tuple[str, str], ...] = (
    ("VirtualService", "spec.exportTo"),
    ("DestinationRule", "spec.exportTo"),
    ("ServiceEntry", "spec.exportTo"),
    ("VirtualService", "spec.http[].match[].sourceNamespace"),
)
GATEWAY_FIELDS: tuple[tuple[str, str], ...] = (
    ("VirtualService", "spec.gateways"),
    ("VirtualService", "spec.http[].match[].gateways"),
)

# The keys of those fields as the kind backend walks a spec (tests/unit/test_names.py checks
# they are the last keys of the paths above).
HOST_KEYS = frozenset({"host"})
HOST_LIST_KEYS = frozenset({"hosts"})
NAMESPACE_KEYS = frozenset({"sourceNamespace"})
NAMESPACE_LIST_KEYS = frozenset({"exportTo"})
GATEWAY_LIST_KEYS = frozenset({"gateways"})
