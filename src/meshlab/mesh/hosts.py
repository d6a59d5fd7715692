"""Host names as Istio reads them: short-name expansion, wildcard matching, vhost domains."""

from __future__ import annotations

from meshlab.mesh.registry import CLUSTER_DOMAIN, MeshService


def resolve_host(host: str, namespace: str) -> str:
    """Istio's ResolveShortnameToFQDN: dot-less names expand in the rule's namespace; any
    dotted name is taken literally (so `reviews.default` is NOT `reviews.default.svc...`)."""
    if host == "*" or "." in host:  # IPv4 addresses are dotted, so literal too
        return host
    return f"{host}.{namespace}.svc.{CLUSTER_DOMAIN}"


def host_matches(pattern: str, fqdn: str) -> bool:
    """Exact, or a `*.suffix` wildcard covering the name, or `*` covering everything."""
    if pattern == "*":
        return True
    if pattern.startswith("*"):
        return fqdn.endswith(pattern[1:])
    return pattern == fqdn


def specificity(pattern: str) -> tuple[int, int]:
    """Sort key: exact names before wildcards, longer wildcards before shorter."""
    return (1, -len(pattern)) if pattern.startswith("*") else (0, -len(pattern))


def vhost_domains(service: MeshService, client_namespace: str) -> list[str]:
    """The domains of a sidecar's vhost for `service`, without `:port` forms (Istio >= 1.16
    sets ignore_port_in_host_matching). A bare short name only works in the same namespace."""
    fqdn = service.fqdn
    domains = [fqdn, f"{fqdn}."]
    if service.namespace == client_namespace:
        domains.append(service.name)
    domains += [f"{service.name}.{service.namespace}.svc", f"{service.name}.{service.namespace}"]
    return domains


def visible_to(export_to: list[str], owner_namespace: str, client_namespace: str) -> bool:
    """exportTo: empty or `*` = everywhere, `.` = own namespace, `~` = nowhere, else names."""
    if not export_to or "*" in export_to:
        return True
    if "~" in export_to:
        return False
    return any(
        (target == "." and owner_namespace == client_namespace) or target == client_namespace
        for target in export_to
    )
