"""Helpers the analyzers share: Istio's host and gateway-name resolution, label formatting."""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Sequence

from meshlab.load import istio, k8s
from meshlab.load.manifests import Resource
from meshlab.mesh.hosts import host_matches, resolve_host, visible_to
from meshlab.mesh.registry import CLUSTER_DOMAIN

MESH = "mesh"


def labels_text(labels: dict[str, str]) -> str:
    return ", ".join(f"{k}={v}" for k, v in labels.items()) or "(none)"


def selects(selector: dict[str, str], labels: dict[str, str]) -> bool:
    return all(labels.get(k) == v for k, v in selector.items())


def service_fqdn(service: Resource) -> str:
    return f"{service.name}.{service.namespace}.svc.{CLUSTER_DOMAIN}"


def short_name(fqdn: str) -> str:
    """`reviews.default.svc.cluster.local` -> `reviews` (how students write hosts)."""
    suffix = f".svc.{CLUSTER_DOMAIN}"
    return fqdn.removesuffix(suffix).split(".", 1)[0] if fqdn.endswith(suffix) else fqdn


def hosts_overlap(a: str, b: str) -> bool:
    """Either name covers the other (wildcard-aware both ways)."""
    return host_matches(a, b) or host_matches(b, a)


class HostIndex:
    """Which hosts the registry knows (Services, ServiceEntries), as istioctl looks them up."""

    def __init__(self, services: Sequence[Resource], entries: Sequence[Resource]) -> None:
        self.services = {service_fqdn(s): s for s in services}
        self.entries = entries

    def service(self, fqdn: str) -> Resource | None:
        return self.services.get(fqdn)

    def entry(self, host: str, from_namespace: str) -> Resource | None:
        for entry in self.entries:
            spec: istio.ServiceEntrySpec = entry.body.spec
            if not visible_to(spec.exportTo, entry.namespace, from_namespace):
                continue
            if any(hosts_overlap(h, host) for h in spec.hosts):
                return entry
        return None

    def known(self, host: str, from_namespace: str) -> bool:
        if "*" in host:
            return any(host_matches(host, fqdn) for fqdn in self.services) or (
                self.entry(host, from_namespace) is not None
            )
        return host in self.services or self.entry(host, from_namespace) is not None

    def suggest(self, host: str, namespace: str) -> str | None:
        """A hint for a host that is not found: Istio's literal dotted names, or a near miss."""
        first = host.split(".", 1)[0]
        same = [s for s in self.services.values() if s.name == first]
        if "." in host and same:
            service = same[0]
            short = service.name if service.namespace == namespace else service_fqdn(service)
            return (
                f"a dotted host is taken literally, so {host} is not "
                f"{service_fqdn(service)}: write {short}"
                + (f" or {service_fqdn(service)}" if short != service_fqdn(service) else "")
            )
        names = [s.name for s in self.services.values() if s.namespace == namespace]
        close = difflib.get_close_matches(first, names, n=1, cutoff=0.6)
        return f"did you mean {close[0]}?" if close else None


def resolve(host: str, namespace: str) -> str:
    return resolve_host(host, namespace)


def service_ports(service: Resource) -> list[int]:
    spec: k8s.ServiceSpec = service.body.spec
    return [p.port for p in spec.ports]


def close_match(word: str, choices: Iterable[str]) -> str | None:
    found = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return found[0] if found else None


def gateway_key(reference: str, namespace: str) -> tuple[str, str] | None:
    """Istio's resolveGatewayName: `name` and `./name` are in the VirtualService's namespace,
    `ns/name` is explicit, legacy `name.ns.svc.cluster.local` means `ns/name`; `mesh` is None."""
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
    return reference != MESH and "/" not in reference and "." in reference


def mesh_bound(spec: istio.VirtualServiceSpec) -> bool:
    return not spec.gateways or MESH in spec.gateways
