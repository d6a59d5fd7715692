"""Where ALLOW_ANY's PassthroughCluster takes a call: to the original destination.

A sidecar that imports no virtual host for a name (a Sidecar resource hides the Service, or
no VirtualService or Service declares it) still gets the call: the app resolved the name by
the cluster's DNS, connected to that address, and the sidecar's catch-all virtual host
(`allow_any`, the mesh default ALLOW_ANY: httproute.go buildCatchAllVirtualHost) sends it to
PassthroughCluster, an ORIGINAL_DST cluster: on to the address the app dialled. For a
Service that is its ClusterIP, where kube-proxy picks one of its pods; no VirtualService or
DestinationRule of the caller applies, and the call leaves in plaintext. A name the cluster's
DNS does not know (an outside host) would leave the machine: meshlab never lets it.
"""

from __future__ import annotations

from meshlab.mesh.matching import virtual_host_for
from meshlab.mesh.model import MeshPlan
from meshlab.mesh.names import service_fqdn, split_service_host
from meshlab.mesh.registry import MeshService

ALLOW_ANY = "allow_any"  # the catch-all virtual host's name (sidecar_scope.allow_any_vhost)


def cluster_dns(host: str, namespace: str) -> str | None:
    """The Service FQDN Kubernetes DNS gives `host` from a pod in `namespace` (`name`,
    `name.ns`, `name.ns.svc`, the FQDN); None for any other name."""
    if "." not in host:
        return service_fqdn(host, namespace)
    parts = split_service_host(host)
    return service_fqdn(parts[0], parts[1]) if parts else None


def passed_through(plan: MeshPlan, host: str, port: int, namespace: str) -> MeshService | None:
    """The Service a call from a sidecar with `plan` (its pod in `namespace`) to `host:port`
    reaches through PassthroughCluster: when the cluster's DNS knows the name as a Service
    with a ClusterIP and that port, and the sidecar passes it through: its listener for the
    port has only the catch-all for the name, or it has no listener for the port at all
    (the virtual outbound listener's passthrough chain, listener_builder.go); under ALLOW_ANY
    (REGISTRY_ONLY blocks both: 502, or BlackHoleCluster)."""
    if plan.outbound_mode != "ALLOW_ANY" or plan.gateway is not None:
        return None
    if plan.listener_for(port) is not None:
        vhost = virtual_host_for(plan, host, port)
        if vhost is None or vhost.name != ALLOW_ANY:
            return None
    fqdn = cluster_dns(host, namespace)
    service = plan.registry.service_by_fqdn(fqdn) if fqdn else None
    if service is None or service.headless:
        return None
    return service if any(p.number == port for p in service.ports) else None
