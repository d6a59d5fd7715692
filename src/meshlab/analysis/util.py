"""Helpers the analyzers share: the host index istioctl looks names up in, label formatting,
near-miss hints. Istio's naming rules themselves are in meshlab.mesh.names."""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Sequence

from meshlab.load import istio, k8s
from meshlab.load.manifests import Resource
from meshlab.mesh.names import host_matches, hosts_overlap, is_wildcard, service_fqdn, visible_to


def labels_text(labels: dict[str, str]) -> str:
    return ", ".join(f"{k}={v}" for k, v in labels.items()) or "(none)"


class HostIndex:
    """Which hosts the registry knows (Services, ServiceEntries), as istioctl looks them up."""

    def __init__(self, services: Sequence[Resource], entries: Sequence[Resource]) -> None:
        self.services = {service_fqdn(s.name, s.namespace): s for s in services}
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
        if is_wildcard(host):
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
            fqdn = service_fqdn(service.name, service.namespace)
            short = service.name if service.namespace == namespace else fqdn
            return f"a dotted host is taken literally, so {host} is not {fqdn}: write {short}" + (
                f" or {fqdn}" if short != fqdn else ""
            )
        names = [s.name for s in self.services.values() if s.namespace == namespace]
        close = difflib.get_close_matches(first, names, n=1, cutoff=0.6)
        return f"did you mean {close[0]}?" if close else None


def service_ports(service: Resource) -> list[int]:
    spec: k8s.ServiceSpec = service.body.spec
    return [p.port for p in spec.ports]


def close_match(word: str, choices: Iterable[str]) -> str | None:
    found = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return found[0] if found else None
