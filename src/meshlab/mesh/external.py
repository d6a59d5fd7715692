"""ServiceEntry hosts as istiod reads them, with every external address replaced.

istiod turns each host of a ServiceEntry into a Service of its own
(pilot/pkg/serviceregistry/serviceentry/conversion.go convertServices: hostname = the host,
ports from `ports`, MeshExternal from `location`, resolution DNS or STATIC) whose endpoints
are the DNS name itself (DNS or DNS_ROUND_ROBIN without `endpoints`) or the `endpoints`
addresses (conversion.go convertServiceEntryToInstances). meshlab never lets a request leave
the machine: each endpoint becomes a loopback stand-in pod (image `meshlab/external:<host>`,
answering as "external <host>"), so the Envoy config only ever holds 127.0.0.1 addresses.
Wildcard hosts, resolution NONE and MESH_INTERNAL entries are noted, not simulated. The
registry (registry.py) makes the Services and pods from these.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import field

from meshlab.load import istio
from meshlab.load.manifests import Resource
from meshlab.records import dataclass

EXTERNAL_IMAGE = "meshlab/external"
EXTERNAL_LABEL = "meshlab.external"
SIMULATED_RESOLUTIONS = ("DNS", "DNS_ROUND_ROBIN", "STATIC")


@dataclass(frozen=True)
class ExternalHost:
    """One host of a ServiceEntry: a Service of its own, `replicas` stand-ins answering it."""

    host: str
    resource: Resource
    ports: tuple[istio.ServiceEntryPort, ...]
    replicas: int
    export_to: tuple[str, ...]

    @property
    def image(self) -> str:
        return f"{EXTERNAL_IMAGE}:{self.host}"

    @property
    def slug(self) -> str:
        return re.sub(r"[^a-z0-9-]+", "-", self.host).strip("-")[:50] or "host"

    def pod_name(self, i: int) -> str:
        return f"external-{self.slug}-{i}"


@dataclass
class ExternalHosts:
    """The ServiceEntry hosts a lab's mesh will serve, plus what the plan must say out loud: the
    entries left out (and why) and the addresses that loopback stand-ins answer for instead."""

    hosts: list[ExternalHost] = field(default_factory=list)
    skipped: list[tuple[Resource, str]] = field(default_factory=list)  # (entry, what)
    replaced: list[tuple[Resource, str]] = field(default_factory=list)  # (entry, addresses)


def external_hosts(resources: Sequence[Resource]) -> ExternalHosts:
    """Every MESH_EXTERNAL host with DNS or STATIC resolution, in the lab's order."""
    out = ExternalHosts()
    for r in resources:
        if r.kind != "ServiceEntry":
            continue
        spec: istio.ServiceEntrySpec = r.body.spec
        # istio/api networking/v1alpha3/service_entry.proto: MESH_EXTERNAL and NONE are the
        # enums' zero values, what an unset field means (conversion.go ServiceToServiceEntry).
        location = spec.location or "MESH_EXTERNAL"
        resolution = spec.resolution or "NONE"
        if location != "MESH_EXTERNAL":
            out.skipped.append((r, "location MESH_INTERNAL"))
            continue
        if resolution not in SIMULATED_RESOLUTIONS:
            out.skipped.append((r, f"resolution {resolution}"))
            continue
        if spec.endpoints:
            written = ", ".join(e.address or "?" for e in spec.endpoints)
            out.replaced.append((r, written))
        for written_host in spec.hosts:
            host = written_host.lower().rstrip(".")
            if host.startswith("*"):
                out.skipped.append((r, f"wildcard host {host}"))
                continue
            # STATIC: one endpoint per address; DNS: the host itself, or each endpoint's
            # address when endpoints are given (conversion.go convertServiceEntryToInstances)
            replicas = max(1, len(spec.endpoints))
            out.hosts.append(
                ExternalHost(host, r, tuple(spec.ports), replicas, tuple(spec.exportTo))
            )
    return out
